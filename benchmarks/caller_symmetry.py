"""How many states full helper symmetry would save in the locked_vm spec (an estimate).

In specs/vfio_locked_vm_cache.py the MAP_DMA caller is `helper[0]`: after its last
padata_mt_helper step it goes to `wait` (then `padata_undo`, `finish`) where the
kworkers go to `done`. With `fatal_signal=false` that is the only thing that singles it
out, so the symmetry check permutes only `helper[1..]`. If the spec modelled the
caller's tail (padata_do_multithreaded's wait_for_completion, padata_undo, the fixed
variant's release of the shared cache) as a separate one-instance process `caller` that
starts blocked on `nfini == threads`, every helper would be a kworker-like instance and
all of them interchangeable.

The two specs are bisimilar under the map f: (helper[0] at wait/padata_undo/finish/done
after the tail) <-> (helper[0] at done, caller at that label), (helper[0] still in
the helper loop) <-> (same, caller blocked at wait), helper[0].undo_pos <-> caller's
undo_pos: the tail reads only shared variables and undo_pos, and a helper's locals are
frozen once it is done. This script explores the current spec with the verified
symmetry (helper[1..] permuted), maps every reached state through f and counts the
classes under every permutation of all helpers: the state count the changed spec would
have with `--symmetry`. It is an estimate to decide whether the spec change is worth it,
not a verdict; the change itself would be verified by the symmetry check as usual.

    python -m benchmarks.caller_symmetry [-p name=value ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from checker.compile import compile_flat
from checker.explore import Limits, explore, make_reductions
from checker.flat import instantiate
from checker.load import load_module, parse_overrides

SPEC = "specs/vfio_locked_vm_cache.py"
TAIL = ("wait", "padata_undo", "finish", "done")
DEFAULTS = {"variant": "fixed", "threads": "4", "chunks": "4", "chunk_pages": "1",
            "cache_pages": "1", "limit_pages": "4", "reserved": "false", "pinned": "false",
            "fatal_signal": "false", "efault": "true", "iommu_fail": "true"}


def count(pairs: list[str], max_seconds: float | None) -> tuple[int, int, int]:
    """States with helper[1..] symmetry, estimated states with full symmetry, seconds."""
    given = dict(p.split("=", 1) for p in pairs)
    args = DEFAULTS | given
    if args["fatal_signal"] != "false":
        raise SystemExit("only fatal_signal=false: SIGKILL reaches the caller alone")
    mod = load_module(Path(SPEC), SPEC)
    spec = mod.build(parse_overrides(mod, [f"{k}={v}" for k, v in args.items()]))
    spec.symmetric.append("helper")
    compiled = compile_flat(instantiate(spec))
    t0 = time.monotonic()
    red = make_reductions(compiled, ["no_leak"], symmetry=True, por=False)
    ex = explore(compiled, ["no_leak"], Limits(max_states=None, max_seconds=max_seconds),
                 reductions=red)
    if not ex.complete:
        raise SystemExit(f"exploration incomplete: {ex.stop_reason}")
    flat = compiled.flat
    names = [s.name for s in flat.slots]
    threads = int(args["threads"])
    rows = [[i for i, n in enumerate(names) if n.startswith(f"helper[{k}].")]
            for k in range(threads)]
    in_rows = {i for r in rows for i in r}
    shared = [i for i in range(len(names)) if i not in in_rows]
    pc = names.index("helper[0].pc")
    undo = names.index("helper[0].undo_pos")
    labels = flat.spec.groups[0].pc_type.names
    tail = {labels.index(x) for x in TAIL}
    done, wait = labels.index("done"), labels.index("wait")
    keys = set()
    for s in ex.states:
        caller = (s[pc], s[undo]) if s[pc] in tail else (wait, s[undo])
        mapped = list(s)
        if s[pc] in tail:
            mapped[pc] = done
        mapped[undo] = 0
        keys.add((tuple(s[i] for i in shared), caller,
                  tuple(sorted(tuple(mapped[i] for i in r) for r in rows))))
    return len(ex.states), len(keys), round(time.monotonic() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.caller_symmetry",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-p", dest="params", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--max-seconds", type=float, default=None)
    args = ap.parse_args(argv)
    now, full, secs = count(args.params, args.max_seconds)
    print(f"helper[1..] symmetric (today): {now:,} states; all helpers symmetric "
          f"(caller as its own process): {full:,} states; {now / full:.2f}x fewer "
          f"({secs} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
