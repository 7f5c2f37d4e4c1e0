"""Partial-order reduction never changes a verdict.

POR explores fewer states by design, so the comparison is on what it promises: the same
verdicts, the same set of terminal states (deadlocks and finished states), a subset of the
reachable states, and counterexamples that replay on the spec; deadlock and final
counterexamples keep their shortest length.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from checker.compile import Compiled, SpecRuntimeError, compile_flat
from checker.explore import Exploration, Reductions, explore, make_reductions
from checker.expr import Int, Sum
from checker.flat import instantiate
from checker.por import plan
from checker.result import VIOLATED
from checker.run import check
from checker.spec import Spec, SpecBuilder
from checker.trace import replay_on_spec
from specs.mmap_lock import build as mmap_lock
from tests.checker.specs_deadlock import build as abba
from tests.checker.specs_random import random_spec

State = tuple[int, ...]


def terminal(compiled: Compiled, ex: Exploration) -> set[State]:
    canon = ex.canonical or (lambda s: s)
    return {canon(s) for s in ex.states if not compiled.successors(s)}


def compare(spec: Spec, symmetry: bool = False) -> tuple[Exploration, Exploration]:
    compiled = compile_flat(instantiate(spec))
    full = explore(compiled, stop_when_all_violated=False,
                   reductions=make_reductions(compiled, None, symmetry=symmetry, por=False))
    red = explore(compiled, stop_when_all_violated=False,
                  reductions=make_reductions(compiled, None, symmetry=symmetry, por=True))
    assert full.complete and red.complete
    assert set(full.violations) == set(red.violations)
    assert (full.deadlock is None) == (red.deadlock is None)
    assert terminal(compiled, full) == terminal(compiled, red)
    assert red.canonical_states() <= full.canonical_states()
    kinds = {p.name: p.kind for p in spec.properties}
    for prop, sid in red.violations.items():
        if kinds.get(prop) in ("final", "deadlock"):
            assert len(red.path(sid)) == len(full.path(full.violations[prop]))
    return full, red


def local_work(threads: int, steps: int, shared_bug: bool) -> Spec:
    """Threads do `steps` private steps, then one shared update (racy if shared_bug)."""
    b = SpecBuilder("local_work")
    T = b.index("t", threads)
    x = b.var("x", Int(0, threads), init=0)
    p = b.process("p", T)
    work = p.local("work", Int(0, steps), init=0)
    reg = p.local("reg", Int(0, threads), init=0)
    p.step("compute", "private computation", guard=work < steps,
           effects={work: work + 1}, goto="compute")
    p.step("compute", "done computing", guard=work == steps, goto="load")
    if shared_bug:
        p.step("load", "read x", effects={reg: x}, goto="store")
        p.step("store", "write x", effects={x: reg + 1}, goto="done")
    else:
        p.step("load", "atomic add", effects={x: x + 1}, goto="done")
    b.final("all_counted", x == threads)
    b.deadlock_free()
    if shared_bug:
        b.expect_violated("all_counted")
    return b.build()


def test_private_steps_collapse_and_verdicts_stay() -> None:
    for bug in (False, True):
        full, red = compare(local_work(3, 3, bug))
        assert len(red.states) * 4 < len(full.states)
        assert ("all_counted" in red.violations) == bug


def test_invariants_need_invisible_steps_outside_loops() -> None:
    b = SpecBuilder("inv")
    T = b.index("t", 2)
    x = b.var("x", Int(0, 2), init=0)
    p = b.process("p", T)
    loc = p.local("loc", Int(0, 1), init=0)
    p.step("a", "private", effects={loc: 1}, goto="b")
    p.step("b", "shared", effects={x: x + loc}, goto="done")
    b.invariant("never_two", x + Sum(T, lambda t: loc[t]) <= 3)  # reads loc: visible
    b.invariant("x_small", x <= 1)
    b.deadlock_free()
    spec2 = b.build()
    pl = plan(compile_flat(instantiate(spec2)))
    assert pl.proviso and pl.reducible == 0
    full, red = compare(spec2)
    assert set(red.violations) == {"never_two", "x_small"}
    pl_final = plan(compile_flat(instantiate(spec2)), ["no_deadlock"])
    # without the invariants every step is reducible: "x := x + loc" updates commute
    assert not pl_final.proviso and pl_final.reducible == pl_final.pairs == 4


def test_loops_never_postpone_other_processes_forever() -> None:
    """The ignoring problem: p spins privately for ever; q's two steps end in a spec error
    and an invariant violation. Without the loop proviso the explorer would follow only
    p's spin (an ample set) around its cycle and never run q."""
    b = SpecBuilder("ignoring")
    x = b.var("x", Int(0, 1), init=0)
    p = b.process("p")
    loc = p.local("loc", Int(0, 1), init=0)
    p.step("spin", "private toggle", effects={loc: 1 - loc}, goto="spin")
    q = b.process("q")
    q.step("one", "set x", effects={x: 1}, goto="two")
    q.step("two", "overflow x", effects={x: x + 1}, goto="done")
    b.final("fin", x == 1)
    spec = b.build()
    compiled = compile_flat(instantiate(spec))
    pl = plan(compiled, ["fin"])
    assert pl.safe[0]  # p's spin is private: an ample set, around a cycle
    with pytest.raises(SpecRuntimeError, match="assigns 2 to x"):
        explore(compiled, ["fin"], reductions=Reductions(por=pl))


def test_deadlock_is_found_with_shortest_trace() -> None:
    full, red = compare(abba(variant="abba"))
    assert red.deadlock is not None
    c = check(abba(variant="abba"), "abba", por=True)
    dl = next(r for r in c.results if r.property == "no_deadlock")
    assert dl.verdict == VIOLATED and dl.trace is not None and len(dl.trace) == 2
    replay_on_spec(c.compiled, dl.trace)


def test_lock_order_switches_por_off() -> None:
    spec = mmap_lock(variant="ptl_inversion", threads=2)
    plain = check(spec, "mmap_lock")
    reduced = check(spec, "mmap_lock", por=True)
    assert [(r.property, r.verdict) for r in plain.results] == [
        (r.property, r.verdict) for r in reduced.results]
    assert "off: the lock-order analysis needs every state" in reduced.results[0].extra[
        "reductions"]
    assert reduced.exploration.stats.states == plain.exploration.stats.states


def test_deadlock_only_check_on_mmap_lock_reduces() -> None:
    spec = mmap_lock(variant="iommu_inversion", threads=3)
    plain = check(spec, "mmap_lock", ["no_deadlock"])
    reduced = check(spec, "mmap_lock", ["no_deadlock"], por=True)
    assert plain.results[0].verdict == reduced.results[0].verdict == VIOLATED
    assert reduced.exploration.stats.states < plain.exploration.stats.states
    assert len(reduced.results[0].trace) == len(plain.results[0].trace)  # type: ignore[arg-type]
    replay_on_spec(reduced.compiled, reduced.results[0].trace)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec())
def test_random_specs_por_changes_no_verdict(spec: Spec) -> None:
    compare(spec)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec(local=True))
def test_random_local_specs_por_changes_no_verdict(spec: Spec) -> None:
    compare(spec)
    compare_subset(spec, ["fin", "no_deadlock"])


def compare_subset(spec: Spec, props: list[str]) -> None:
    """Only final and deadlock properties: no proviso, the strongest reduction."""
    compiled = compile_flat(instantiate(spec))
    full = explore(compiled, props, stop_when_all_violated=False)
    red = explore(compiled, props, stop_when_all_violated=False,
                  reductions=make_reductions(compiled, props, symmetry=False, por=True))
    assert set(full.violations) == set(red.violations)
    assert terminal(compiled, full) == terminal(compiled, red)
    for prop, sid in red.violations.items():
        assert len(red.path(sid)) == len(full.path(full.violations[prop]))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec(daemon=True))
def test_random_specs_with_a_daemon(spec: Spec) -> None:
    compare(spec)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec(local=True))
def test_random_specs_por_with_symmetry(spec: Spec) -> None:
    compare(spec, symmetry=True)


def test_reductions_record_what_they_did() -> None:
    compiled = compile_flat(instantiate(local_work(2, 2, False)))
    r = make_reductions(compiled, None, symmetry=True, por=True)
    assert isinstance(r, Reductions) and r.active
    assert "por:" in r.describe() and "symmetry:" in r.describe()
