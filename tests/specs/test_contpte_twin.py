"""specs/contpte.py and model/contpte.py are twins: random spec runs replay on the model.

Random walks through the spec's state graph (every operation, lockless reads, MMU loads,
stores and evictions) become traces; the replay hook drives the model through the same
schedule. The model must perform exactly the access each spec step stands for (the hook
raises otherwise), see no violation on the merged code, and end with the same PTE words
and TLB (with its cached permissions) as the spec, at checkpoints along each run.
"""

from __future__ import annotations

import random

import pytest

from checker.compile import compile_flat
from checker.flat import instantiate
from checker.trace import build_trace
from specs.contpte import build
from specs.contpte_replay import replay_contpte

CONFIGS = {
    "all-ops-4": dict(ops="all", pages=(0, 1, 2, 3), reader_pages=(0, 1, 2, 3), evict=True,
                      readers=1),
    "all-ops-2-two-writers": dict(cont_ptes=2, ops="all", pages=(0, 1), reader_pages=(0, 1),
                                  ranges=(0, 2), evict=True, writers=2, readers=1),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("variant", ["contpte", "unfold_drops_dirty", "no_bbm", "rmw_race"])
def test_random_spec_runs_replay_on_the_model(name: str, variant: str) -> None:
    spec = build(variant=variant, **CONFIGS[name])  # type: ignore[arg-type]
    compiled = compile_flat(instantiate(spec))
    rng = random.Random(f"{name}/{variant}")
    runs = 8 if variant == "contpte" else 2  # faulty variants' halting guards are slow
    for _run in range(runs):
        states = [compiled.initial]
        path = [(-1, 0)]
        for _ in range(rng.randrange(20, 120)):
            succ = compiled.successors(states[-1])
            if not succ:
                break
            aid, nxt = rng.choice(succ)
            states.append(nxt)
            path.append((aid, len(states) - 1))
            spec_ok = all(f(nxt) for f in compiled.properties.values())
            if spec_ok and len(path) % 16:
                continue
            trace = build_trace(compiled, path, states, "specs/contpte.py", None, "")
            model = replay_contpte(trace, spec)
            last = trace.states[-1]
            for var in ("pte", "tlb_page", "tlb_blk"):
                assert model.final[var] == last[var], (var, model.log[-5:])
            if variant == "contpte":
                assert spec_ok and not model.violated, model.log[-3:]
            if not spec_ok:
                broken = {p for p, f in compiled.properties.items() if not f(nxt)}
                assert broken & model.violated, (broken, model.violated, model.log[-5:])
                break
