"""The parallel explorer gives the one-process explorer's result, state for state.

Same state numbering, parents, actions, violations (hence the same counterexamples),
transition counts and depth, with and without reductions; limits and spec errors behave
the same way.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from benchmarks.specs_counter import build as counter
from checker.compile import SpecRuntimeError, compile_flat
from checker.explore import Exploration, Limits, explore, make_reductions
from checker.expr import Int
from checker.flat import instantiate
from checker.result import INCOMPLETE, PASS
from checker.run import check
from checker.spec import Spec, SpecBuilder
from tests.checker.specs_deadlock import build as abba
from tests.checker.specs_mutex import build as mutex
from tests.checker.specs_random import random_spec


def same(a: Exploration, b: Exploration, stats: bool = True) -> None:
    assert list(a.states) == list(b.states)
    assert list(a.parent) == list(b.parent)
    assert list(a.action) == list(b.action)
    assert a.violations == b.violations
    assert a.deadlock == b.deadlock
    assert a.complete == b.complete
    if stats:
        assert a.stats.transitions == b.stats.transitions
        assert a.stats.depth == b.stats.depth


def both(spec: Spec, workers: int = 2, symmetry: bool = False, por: bool = False,
         props: list[str] | None = None, stop: bool = False) -> tuple[Exploration, Exploration]:
    compiled = compile_flat(instantiate(spec))
    red = make_reductions(compiled, props, symmetry=symmetry, por=por)
    one = explore(compiled, props, stop_when_all_violated=stop, reductions=red)
    many = explore(compiled, props, stop_when_all_violated=stop, reductions=red,
                   workers=workers)
    assert many.workers == workers
    return one, many


@pytest.mark.parametrize("symmetry,por", [(False, False), (True, False), (False, True),
                                          (True, True)])
def test_counter_identical(symmetry: bool, por: bool) -> None:
    one, many = both(counter(threads=3, rounds=2), symmetry=symmetry, por=por)
    same(one, many)


def test_three_workers_and_small_specs() -> None:
    for spec in (mutex(rounds=2), mutex(variant="naive"), abba(), abba(variant="ordered")):
        one, many = both(spec, workers=3)
        same(one, many)


def test_results_and_traces_identical_through_run() -> None:
    spec = mutex(variant="naive", rounds=2)
    a = check(spec, "mutex")
    b = check(spec, "mutex", workers=2)
    for ra, rb in zip(a.results, b.results, strict=True):
        assert ra.verdict == rb.verdict
        assert (ra.trace is None) == (rb.trace is None)
        if ra.trace is not None and rb.trace is not None:
            assert ra.trace.states == rb.trace.states
            assert [s.process for s in ra.trace.steps] == [s.process for s in rb.trace.steps]


def test_stop_at_first_violations_gives_the_same_violations() -> None:
    one, many = both(counter(threads=3, rounds=2), props=["lost_update"], stop=True)
    assert one.violations == many.violations
    assert one.stop_reason == many.stop_reason == "every property already violated"


def test_limits_give_incomplete_never_pass() -> None:
    spec = counter(threads=3, rounds=3)
    for limits in (Limits(max_states=3000), Limits(max_seconds=0.0),
                   Limits(max_memory_mib=1)):
        c = check(spec, "counter", limits=limits, workers=2)
        assert not c.exploration.complete
        assert all(r.verdict != PASS for r in c.results)
        assert any(r.verdict == INCOMPLETE for r in c.results)
    c = check(spec, "counter", limits=Limits(max_states=3000), workers=2)
    assert len(c.exploration.states) <= 3000
    assert "state limit" in c.exploration.stop_reason


def test_spec_errors_reach_the_caller() -> None:
    b = SpecBuilder("overflow")
    T = b.index("t", 2)
    x = b.var("x", Int(0, 2), init=0)
    p = b.process("p", T)
    p.step("inc", "x++", effects={x: x + 1}, goto="inc")
    compiled = compile_flat(instantiate(b.build()))
    with pytest.raises(SpecRuntimeError, match="assigns 3 to x"):
        explore(compiled, workers=2)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec(local=True))
def test_random_specs_identical(spec: Spec) -> None:
    one, many = both(spec, symmetry=False, por=True)
    same(one, many)
    try:
        one, many = both(spec, symmetry=True, por=True, props=["fin", "no_deadlock"])
    except Exception as e:  # a refused symmetry declaration is not what is tested here
        assert type(e).__name__ == "SymmetryError"
        return
    same(one, many)
