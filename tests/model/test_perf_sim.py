"""The timing layer (model/perf/sim.py) drives model/vfio.py and prices its steps."""

from __future__ import annotations

import dataclasses
import math

import pytest

from model.mm import MmStruct
from model.perf.costs import RUN_UNITS, UNIT_PAGES, Params, UnitCosts, unit_costs
from model.perf.machines import machine
from model.perf.predict import budget_units, timed_pin
from model.perf.sim import TimedRun, Workload, hugepage_layout, padata_chunk_units

INTEL = "intel-skylake-8167m"


def costs(prefaulted: bool, **changes: float | bool) -> UnitCosts:
    c = unit_costs(machine(INTEL), "hugetlb", prefaulted, Params(jitter=0.0))
    return dataclasses.replace(c, **changes)


def test_each_huge_page_is_its_own_contiguous_run() -> None:
    mm = MmStruct.from_layout(hugepage_layout(6, run=2), 0, 100)
    pfns = [p.pfn for p in mm.pages]  # "|" is a hole: the next run starts two pfns later
    assert [b - a for a, b in zip(pfns, pfns[1:], strict=False)] == [1, 3, 1, 3, 1]
    assert hugepage_layout(5, run=2) == "NN|NN|N"


def test_padata_chunk_size_is_the_kernels() -> None:
    # 126 GiB with 16 threads: size / (16 * 4) = 2016 MiB, above the 128 MiB minimum.
    units = 126 * 1024
    assert padata_chunk_units(units, 16) == units // 64
    # 14 GiB with 32 threads: 14G / 128 = 112 MiB < min_chunk, so 128 MiB chunks.
    assert padata_chunk_units(14 * 1024, 32) == 128
    assert padata_chunk_units(100, 8) == 100  # below min_chunk: one work, whole range


def test_single_thread_base_time_is_the_sum_of_unit_costs() -> None:
    c = costs(False)
    run = TimedRun(Workload(400, 0, 0), c).run()
    assert not run.extrapolated
    assert run.pin_s == pytest.approx(400 * c.single_thread_unit, rel=0.01)
    # one writer per huge page: vfio_pin_pages_remote ends at each contiguity break
    assert run.metrics["mmap_write_acquisitions"] == 400 // RUN_UNITS
    assert run.metrics["units_pinned"] == 400


def test_the_model_code_does_the_accounting() -> None:
    w = Workload(1024, 4, 64 * UNIT_PAGES)
    run = TimedRun(w, costs(True))
    result = run.run()
    assert run.mm.locked_vm == 1024  # every unit charged once, caches released
    assert run.mm.accountable_pinned() == 1024
    chunk = padata_chunk_units(1024, 4)
    # seed: a refill per 64 units of each chunk, then the chunk's release (nothing left)
    assert result.metrics["refills"] == (1024 // chunk) * -(-chunk // 64)


def test_readers_run_in_parallel_with_a_cache() -> None:
    # The four helpers share a PMD table here; the test is about mmap_lock, not pmd_lock.
    c = costs(True, pmd_lock=False)
    one = TimedRun(Workload(2048, 1, 131072), c).run().pin_s
    four = TimedRun(Workload(2048, 4, 131072), c).run().pin_s
    assert 3.0 < one / four <= 4.0 + 1e-9
    # the base kernel pays a writer per huge page that the cache saves
    base = TimedRun(Workload(2048, 0, 0), c).run().pin_s
    assert base > one


def test_no_cache_means_writer_contention() -> None:
    c = costs(True)
    cached = TimedRun(Workload(2048, 8, 65536), c).run().pin_s
    uncached = TimedRun(Workload(2048, 8, 0), c).run()
    assert uncached.pin_s > 1.5 * cached
    assert uncached.metrics["mmap_write_acquisitions"] >= 2048 // RUN_UNITS


def test_page_zeroing_shares_memory_bandwidth() -> None:
    c = costs(False, fault_parallel=2.0)
    base = TimedRun(Workload(1024, 0, 0), c).run().pin_s
    eight = TimedRun(Workload(1024, 8, 131072), c).run().pin_s
    # the faults dominate and only two run at full speed at a time
    assert base / eight < 2.6
    unlimited = TimedRun(Workload(1024, 8, 131072), costs(False)).run().pin_s
    assert unlimited < eight


def test_extrapolated_window_matches_a_full_run() -> None:
    c = costs(True, jitter=0.2)
    full = TimedRun(Workload(6000, 8, 0), c).run()
    window = TimedRun(Workload(6000, 8, 0), c, budget_units=2000).run()
    assert window.extrapolated and not full.extrapolated
    assert window.pin_s == pytest.approx(full.pin_s, rel=0.15)
    assert window.pin_s_for(6000) == pytest.approx(window.pin_s)


def test_budget_covers_a_refill_per_thread_when_it_can() -> None:
    assert budget_units(10**6, 1, 0) < budget_units(10**6, 8, 0)
    assert budget_units(10**6, 8, 65536) >= 8 * 65536 // UNIT_PAGES
    assert budget_units(500, 32, 131072) == 500
    t, simulated, extrapolated = timed_pin(costs(True), 300, 2, 32768)
    assert simulated == 300 and not extrapolated and t > 0


def test_bad_workload_is_refused() -> None:
    with pytest.raises(ValueError):
        TimedRun(Workload(0, 1, 0), costs(True))
    with pytest.raises(ValueError):  # 8 helpers need 8 chunks of 16128 units
        TimedRun(Workload(24000, 8, 0, job_units=126 * 1024), costs(True))


def test_writer_spin_limit_is_the_kernels() -> None:
    run = TimedRun(Workload(64, 2, 0), costs(True))
    sem = run.sem
    assert sem.down_write(99)
    assert run._spin_limit(1) == math.inf  # a writer owner: spin while it runs
    sem.up_write(99)
    assert sem.down_read(97) and sem.down_read(98)
    # rwsem_rspin_threshold: (20 + readers) / 2 us from when readers are seen to own it
    assert run._spin_limit(1) == pytest.approx((20 + 2) * 1e-6 / 2)
    assert run._spin_limit(1) == pytest.approx((20 + 2) * 1e-6 / 2)  # set once
    off = TimedRun(Workload(64, 2, 0), costs(True, writer_spin=False))
    assert off.sem.down_read(97)
    assert off._spin_limit(1) == -math.inf


def test_a_spinning_writer_is_not_on_the_wait_list() -> None:
    run = TimedRun(Workload(64, 2, 0), costs(True))
    sem = run.sem
    assert sem.down_read(97)
    assert not sem.down_write(1)  # the twin queues it at once
    assert run._unqueue(1) and not sem.wait_list
    assert not run._unqueue(1)
    assert sem.down_read(96)  # no RWSEM_FLAG_WAITERS: readers still take the fast path


def test_writer_spinning_saves_wake_ups_without_a_cache() -> None:
    spin = TimedRun(Workload(2048, 8, 0), costs(True))
    queue = TimedRun(Workload(2048, 8, 0), costs(True, writer_spin=False))
    assert spin.run().pin_s < queue.run().pin_s
    assert spin.mm.locked_vm == queue.mm.locked_vm == 2048  # same accounting either way


def thp_prefaulted(**changes: float | bool) -> UnitCosts:
    c = unit_costs(machine(INTEL), "thp", True, Params(jitter=0.0))
    return dataclasses.replace(c, **changes)


def test_helpers_in_one_pmd_table_follow_their_pages_in_turn() -> None:
    # 4 GiB, 8 helpers: 128-unit chunks, so the helpers always work in the same 1 GiB
    # PMD table and GUP's follow of THP pages (per 4 KiB under pmd_lock) is serial.
    c = thp_prefaulted()
    locked = TimedRun(Workload(4096, 8, 65536), c).run()
    free = TimedRun(Workload(4096, 8, 65536), dataclasses.replace(c, pmd_lock=False)).run()
    serial = 4096 * c.gup
    assert locked.pin_s >= 0.9 * serial
    assert free.pin_s < 0.5 * serial


def test_helpers_in_separate_pmd_tables_do_not_wait() -> None:
    # 32 GiB, 8 helpers: 1 GiB chunks, one PMD table each.
    c = thp_prefaulted()
    locked = TimedRun(Workload(32768, 8, 65536), c, budget_units=3000).run()
    free = TimedRun(Workload(32768, 8, 65536), dataclasses.replace(c, pmd_lock=False),
                    budget_units=3000).run()
    assert locked.pin_s == free.pin_s


def test_a_window_keeps_the_whole_jobs_chunks() -> None:
    units = 126 * 1024  # the 128G guest
    assert Workload(24000, 8, 0, job_units=units).chunk_units == padata_chunk_units(units, 8)
    # The window starts each helper on its own 3.9 GiB chunk, so they share no PMD table
    # (a window laid out with its own, smaller chunks would put them in shared tables).
    c = thp_prefaulted()
    locked = timed_pin(c, units, 8, 65536)
    free = timed_pin(dataclasses.replace(c, pmd_lock=False), units, 8, 65536)
    assert locked[2] and locked[0] == free[0]
