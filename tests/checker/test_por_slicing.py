"""Cone-of-influence slicing never changes a verdict, and traces stay concrete.

The sliced exploration must give the unsliced verdicts and violation depths, reach the
same states once the dropped slots are ignored, and present full states (rebuilt on the
unsliced spec) to traces and analyses.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings

from checker.compile import compile_flat
from checker.explore import Exploration, explore, make_reductions
from checker.expr import AllOf, Bool, Int, Not, ite
from checker.flat import instantiate
from checker.result import VIOLATED
from checker.run import check
from checker.slicing import SlicedStates, relevant_slots, slice_view
from checker.spec import Spec, SpecBuilder
from checker.trace import replay_on_spec
from specs.mmap_lock import build as mmap_lock
from tests.checker.specs_random import random_spec


def ghost_spec(threads: int = 2) -> Spec:
    """Workers race on x; ghosts record which worker loaded first and a toggle."""
    b = SpecBuilder("ghost")
    T = b.index("t", threads)
    x = b.var("x", Int(0, threads), init=0)
    first = b.var("first_loader", Int(0, threads), init=0)
    flag = b.var("flag", Bool(), init=False)
    p = b.process("p", T)
    reg = p.local("reg", Int(0, threads), init=0)
    p.step("load", "read x", effects={reg: x, first: ite(first == 0, p.self + 1, first)},
           goto="store")
    p.step("store", "write x", effects={x: reg + 1, flag: Not(flag)}, goto="done")
    b.final("all_counted", x == threads)
    b.invariant("first_set", (first > 0) | AllOf(T, lambda t: p.at(t, "load")))
    b.deadlock_free()
    b.expect_violated("all_counted")
    return b.build()


def test_the_ghost_is_dropped_only_when_not_checked() -> None:
    flat = instantiate(ghost_spec())
    names = {i.index: i.name for i in flat.slots}
    assert {names[i] for i in set(range(len(names))) - relevant_slots(flat, ["all_counted"])
            } == {"first_loader", "flag"}
    assert "first_loader" not in {names[i] for i in set(range(len(names))) - relevant_slots(
        flat, ["first_set"])}


def compare(spec: Spec, props: list[str] | None) -> tuple[Exploration, Exploration]:
    compiled = compile_flat(instantiate(spec))
    full = explore(compiled, props, stop_when_all_violated=False)
    red = make_reductions(compiled, props, symmetry=False, por=False, slice=True)
    sliced = explore(compiled, props, stop_when_all_violated=False, reductions=red)
    assert full.complete and sliced.complete
    assert set(full.violations) == set(sliced.violations)
    assert (full.deadlock is None) == (sliced.deadlock is None)
    for prop, sid in sliced.violations.items():
        assert len(sliced.path(sid)) == len(full.path(full.violations[prop]))
    view = slice_view(compiled.flat, props)
    assert {view(s) for s in full.states} == {view(s) for s in sliced.states}
    # stored states are full and concrete: each is its parent's successor on the spec
    for sid in range(1, len(sliced.states)):
        succ = dict(compiled.successors(sliced.states[sliced.parent[sid]]))
        assert succ[sliced.action[sid]] == sliced.states[sid]
    assert set(sliced.states) <= set(full.states)
    return full, sliced


def test_ghost_slicing_merges_states_and_keeps_verdicts() -> None:
    full, sliced = compare(ghost_spec(3), ["all_counted", "no_deadlock"])
    assert isinstance(sliced.states, SlicedStates)
    assert len(sliced.states) < len(full.states)
    compare(ghost_spec(3), None)


def test_traces_show_the_dropped_variables() -> None:
    spec = ghost_spec(2)
    c = check(spec, "ghost", ["all_counted"], slice=True)
    r = c.results[0]
    assert r.verdict == VIOLATED and r.trace is not None
    replay_on_spec(c.compiled, r.trace)  # full values, odd_seen and flag included
    assert any(st["flag"] for st in r.trace.states)
    assert "first_loader" in r.extra["reductions"]


def test_lock_order_switches_slicing_off() -> None:
    spec = mmap_lock(variant="ptl_inversion", threads=2)
    plain = check(spec, "mmap_lock")
    sliced = check(spec, "mmap_lock", slice=True)
    assert [(r.property, r.verdict) for r in plain.results] == [
        (r.property, r.verdict) for r in sliced.results]
    assert sliced.exploration.stats.states == plain.exploration.stats.states


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec(ghost=True))
def test_random_specs_slicing_changes_no_verdict(spec: Spec) -> None:
    for props in (None, ["inv", "fin", "no_deadlock"], ["fin"]):
        compare(spec, props)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec(ghost=True, local=True))
def test_random_specs_all_reductions_together(spec: Spec) -> None:
    props = ["inv", "fin", "no_deadlock"]
    compiled = compile_flat(instantiate(spec))
    full = explore(compiled, props, stop_when_all_violated=False)
    try:
        red = make_reductions(compiled, props, symmetry=True, por=True, slice=True)
    except Exception as e:  # a refused symmetry declaration is tested elsewhere
        assert type(e).__name__ == "SymmetryError"
        return
    for workers in (1, 2):
        ex = explore(compiled, props, stop_when_all_violated=False, reductions=red,
                     workers=workers)
        assert set(ex.violations) == set(full.violations)
        for sid in ex.violations.values():
            path = ex.path(sid)
            for (_, a), (aid, b2) in itertools.pairwise(path):
                assert dict(compiled.successors(ex.states[a]))[aid] == ex.states[b2]
