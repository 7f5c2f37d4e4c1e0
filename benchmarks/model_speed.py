"""Speed of the VFIO reference implementation, alone and under the simpy timing layer.

Run on demand: `python benchmarks/model_speed.py [--units 4000 --threads 16 --cache 65536]`.
Prints simulated pages per second (a model page here is a 1 MiB unit of 256 base pages,
see model/perf/costs.py; "base pages/s" multiplies by 256) for:

- ``reference``: model/vfio.py run by the deterministic scheduler's random interleaving
  (no timing), the cost of the algorithm's own Python;
- ``timed``: the same MAP_DMA under model/perf/sim.py (simpy processes, rwsem wake-ups,
  costs), what `python -m model.perf table` pays per simulated unit.

Never part of the test suite; compare the numbers before and after an optimisation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.mm import MmStruct, Task  # noqa: E402
from model.padata import PadataWork, padata_mt_helper  # noqa: E402
from model.perf.costs import BATCH_UNITS, RUN_UNITS, UNIT_PAGES, Params, unit_costs  # noqa: E402
from model.perf.machines import machine  # noqa: E402
from model.perf.sim import TimedRun, Workload, hugepage_layout, padata_chunk_units  # noqa: E402
from model.schedule import Scheduler  # noqa: E402
from model.vfio import Ctx, NoFaults, Thread, VfioDma, VfioIommu, vfio_pin_map_dma  # noqa: E402
from model.vfio_variants import variant  # noqa: E402


def reference_rate(units: int, threads: int, cache_pages: int) -> float:
    """Units pinned per second by the scheduler's random interleaving, no timing."""
    mm = MmStruct.from_layout(hugepage_layout(units, RUN_UNITS), 0, 4 * units)
    caller = Task(0, killable=True)
    mm.tasks[0] = caller
    dma = VfioDma(0, 0, 0, caller, False)
    ctx = Ctx(variant("seed"), mm, VfioIommu(), dma, -(-cache_pages // UNIT_PAGES),
              BATCH_UNITS, NoFaults())
    sched = Scheduler({})

    def queue_work(ps):  # type: ignore[no-untyped-def]
        tid = len(sched.threads)
        task = Task(tid, killable=False)
        mm.tasks[tid] = task
        sched.spawn(tid, padata_mt_helper(Thread(tid, task), ps, PadataWork(tid)))

    def ioctl():  # type: ignore[no-untyped-def]
        yield from vfio_pin_map_dma(ctx, Thread(0, caller), dma, units,
                                    padata_chunk_units(units, threads), threads, queue_work)

    sched.spawn(0, ioctl())
    start = time.perf_counter()
    sched.run_random(1, max_yields=100 * units + 10_000)
    return mm.pages_pinned / (time.perf_counter() - start)


def timed_rate(units: int, threads: int, cache_pages: int) -> tuple[float, float]:
    """(units per second, events per second) under the timing layer, full simulation."""
    costs = unit_costs(machine("intel-skylake-8167m"), "hugetlb", False, Params())
    run = TimedRun(Workload(units, threads, cache_pages), costs)
    start = time.perf_counter()
    result = run.run()
    elapsed = time.perf_counter() - start
    return result.simulated_units / elapsed, result.events / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--units", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--cache", type=int, default=65536)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    ref = reference_rate(args.units, args.threads, args.cache)
    timed, events = timed_rate(args.units, args.threads, args.cache)
    print(json.dumps({
        "units": args.units, "threads": args.threads, "cache_pages": args.cache,
        "reference_units_per_s": round(ref), "reference_base_pages_per_s": round(ref * 256),
        "timed_units_per_s": round(timed), "timed_base_pages_per_s": round(timed * 256),
        "timed_events_per_s": round(events),
    }))


if __name__ == "__main__":
    main()
