"""A/B of the explorer's default path: checker/explore.py now against a git revision.

Run on demand: `python benchmarks/explore_ab.py [--rev ebb2b30] [--spec counter|vfio]`.
Both versions explore the same compiled spec in the same process, alternating, so machine
load affects them alike; prints CPU seconds per run, the best and the median, and the peak
memory per state of each (each measured in a fresh process). Never part of the tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checker.compile import Compiled, compile_flat  # noqa: E402
from checker.flat import instantiate  # noqa: E402


def old_explorer(rev: str) -> ModuleType:
    """checker/explore.py as of a git revision, loaded as a module of its own."""
    src = subprocess.run(["git", "show", f"{rev}:checker/explore.py"], capture_output=True,
                         text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "explore_old.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("explore_old", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["explore_old"] = mod
    spec.loader.exec_module(mod)
    return mod


def high_water_kib() -> int:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited from
    the parent that started it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def compiled_spec(name: str) -> tuple[Compiled, list[str]]:
    if name == "counter":
        from benchmarks.specs_counter import build

        spec = build(threads=4, rounds=2)
    else:
        from specs.vfio_locked_vm_cache import build as vfio

        spec = vfio(variant="fixed", threads=3, chunks=3, chunk_pages=3, cache_pages=2,
                    limit_pages=16, reserved=False, pinned=False, fatal_signal=False)
    props = [p.name for p in spec.properties if p.kind != "lock_order"]
    return compile_flat(instantiate(spec)), props


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rev", default="ebb2b30", help="git revision of the old explorer")
    ap.add_argument("--spec", choices=("counter", "vfio"), default="counter")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--memory-of", choices=("old", "new"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    compiled, props = compiled_spec(args.spec)
    if args.memory_of:
        if args.memory_of == "old":
            mod = old_explorer(args.rev)
        else:
            from checker import explore as mod
        base = high_water_kib()
        ex = mod.explore(compiled, props)
        print(f"{(high_water_kib() - base) * 1024 / len(ex.states):.0f}")
        return
    from checker import explore as new

    old = old_explorer(args.rev)
    times: dict[str, list[float]] = {"old": [], "new": []}
    states = 0
    for _ in range(args.rounds):
        for name, mod in (("old", old), ("new", new)):
            t = time.process_time()
            ex = mod.explore(compiled, props)
            times[name].append(time.process_time() - t)
            states = len(ex.states)
    print(f"{args.spec}: {states:,} states; old = {args.rev}, new = working tree")
    for name, ts in times.items():
        mem = subprocess.run([sys.executable, __file__, "--spec", args.spec, "--rev", args.rev,
                              "--memory-of", name], capture_output=True, text=True).stdout
        print(f"{name}: cpu s {', '.join(f'{t:.2f}' for t in ts)}; best {min(ts):.2f}, "
              f"median {sorted(ts)[len(ts) // 2]:.2f}; {mem.strip()} bytes/state")


if __name__ == "__main__":
    main()
