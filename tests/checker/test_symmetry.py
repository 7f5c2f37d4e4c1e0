"""Symmetry reduction: the declaration is checked, and never changes a verdict.

The reference is the unreduced exploration: with symmetry the explorer must reach exactly
the same set of canonical states (hence the same verdicts) and counterexamples of the same
length that replay step by step on the spec.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings

from benchmarks.specs_counter import build as counter
from checker.compile import Compiled, compile_flat
from checker.explore import Exploration, Reductions, explore
from checker.expr import AllOf, Int, Sum
from checker.flat import instantiate
from checker.result import PASS, VIOLATED
from checker.run import check
from checker.spec import Spec, SpecBuilder
from checker.symmetry import SymmetryError, analyse
from checker.trace import replay_on_spec
from tests.checker.specs_mutex import build as mutex
from tests.checker.specs_random import random_spec


def explore_both(spec: Spec) -> tuple[Compiled, Exploration, Exploration]:
    """Unreduced and symmetry-reduced complete explorations of every property."""
    compiled = compile_flat(instantiate(spec))
    sym = analyse(compiled.flat)
    full = explore(compiled, stop_when_all_violated=False)
    red = explore(compiled, stop_when_all_violated=False, reductions=Reductions(sym))
    return compiled, full, red


def assert_equivalent(compiled: Compiled, full: Exploration, red: Exploration) -> None:
    assert full.complete and red.complete
    canon = red.canonical
    assert canon is not None
    assert {canon(s) for s in full.states} == red.canonical_states()
    assert len(red.states) == len(red.canonical_states())  # one state per orbit
    assert set(full.violations) == set(red.violations)
    assert (full.deadlock is None) == (red.deadlock is None)
    for prop, sid in red.violations.items():
        # same breadth-first depth: counterexamples stay shortest
        assert len(red.path(sid)) == len(full.path(full.violations[prop]))


def test_counter_orbits_verdicts_and_traces() -> None:
    compiled, full, red = explore_both(counter(threads=3, rounds=2))
    assert_equivalent(compiled, full, red)
    assert len(red.states) < len(full.states) / 4
    # stored states are concrete: each is the successor of its parent by its action
    for sid in range(1, len(red.states)):
        succ = dict(compiled.successors(red.states[red.parent[sid]]))
        assert succ[red.action[sid]] == red.states[sid]


def test_cli_level_results_agree_and_traces_replay() -> None:
    spec = counter(threads=3, rounds=2)
    plain = check(spec, "counter")
    reduced = check(spec, "counter", symmetry=True)
    assert [r.verdict for r in plain.results] == [r.verdict for r in reduced.results]
    assert reduced.exploration.stats.states < plain.exploration.stats.states
    lost = next(r for r in reduced.results if r.property == "lost_update")
    assert lost.verdict == VIOLATED and lost.trace is not None
    replay_on_spec(reduced.compiled, lost.trace)
    assert "t[0..2] interchangeable" in lost.extra["reductions"]


def _group_spec(n: int, prop: str = "sum", init: object = 0, guard: str = "") -> Spec:
    """n identical workers bumping their own slot; variations single one out."""
    b = SpecBuilder("workers")
    T = b.index("w", n)
    slot = b.array("slot", T, Int(0, 2), init=0)
    x = b.var("x", Int(0, 3), init=0)
    h = b.process("h", T)
    lc = h.local("lc", Int(0, 2), init=init)
    g = {"": lambda: True, "self0": lambda: h.self == 0, "pc0": lambda: h.at(0, "run"),
         "dyn": lambda: lc[x % n] == 0}[guard]()
    h.step("run", "bump", guard=g, effects={slot[h.self]: 1, lc: 1}, goto="publish")
    h.step("publish", "publish", effects={x: Sum(T, lambda t: slot[t])}, goto="done")
    props = {"sum": Sum(T, lambda t: slot[t]) <= n,
             "all": AllOf(T, lambda t: lc[t] <= 1) | (x > 0),
             "one": lc[1] <= 1}
    b.invariant("p", props[prop])
    b.symmetric("h")
    return b.build()


def test_wide_locals_use_the_instance_major_layout() -> None:
    """A local wider than a byte: states are packed instance by instance for the key."""
    b = SpecBuilder("wide")
    T = b.index("w", 3)
    total = b.var("total", Int(0, 900), init=0)
    h = b.process("h", T)
    big = h.local("big", Int(0, 300), init=0)
    h.step("add", "big += 150", guard=big < 300, effects={big: big + 150, total: total + 150},
           goto="add")
    h.step("add", "stop", guard=big == 300, goto="done")
    b.invariant("sum", total == Sum(T, lambda t: big[t]))
    b.symmetric("h")
    compiled, full, red = explore_both(b.build())
    assert_equivalent(compiled, full, red)
    assert len(red.states) < len(full.states)


def test_symmetric_expansions_are_accepted() -> None:
    for prop in ("sum", "all"):
        sym = analyse(instantiate(_group_spec(3, prop)))
        assert [c.instances for c in sym.classes] == [(0, 1, 2)]
        assert not sym.notes


def test_self_as_a_value_is_refused() -> None:
    with pytest.raises(SymmetryError, match=r"uses `self` as a value"):
        analyse(instantiate(mutex()), groups=["p"])


@pytest.mark.parametrize("guard", ["self0", "pc0"])
def test_a_constant_instance_reference_breaks_symmetry(guard: str) -> None:
    with pytest.raises(SymmetryError, match="no two instances of h are interchangeable"):
        analyse(instantiate(_group_spec(2, guard=guard)))
    sym = analyse(instantiate(_group_spec(3, guard=guard)))
    assert [c.instances for c in sym.classes] == [(1, 2)]
    assert "h[0] is singled out" in sym.describe()


def test_a_property_naming_one_instance_is_not_symmetric() -> None:
    sym = analyse(instantiate(_group_spec(3, "one")))
    assert [c.instances for c in sym.classes] == [(0, 2)]
    assert "property p is not symmetric" in sym.describe()
    # unless that property is not checked
    assert [c.instances for c in analyse(instantiate(_group_spec(3, "one")), []).classes] == [
        (0, 1, 2)]


def test_different_initial_values_split_the_group() -> None:
    sym = analyse(instantiate(_group_spec(4, init=[0, 1, 0, 1])))
    assert [c.instances for c in sym.classes] == [(0, 2), (1, 3)]
    with pytest.raises(SymmetryError, match="initial values differ"):
        analyse(instantiate(_group_spec(2, init=[0, 1])))


def test_a_computed_index_into_the_group_is_refused() -> None:
    with pytest.raises(SymmetryError, match="index computed at run time"):
        analyse(instantiate(_group_spec(3, guard="dyn")))


def test_refusal_reaches_the_cli_as_a_spec_error() -> None:
    from checker.cli import main

    assert main(["check", "tests/checker/specs_mutex.py", "--symmetry", "--quiet"]) == 0
    # mutex declares nothing: --symmetry is a no-op there; a false declaration exits 2
    import tests.checker.specs_mutex as m

    spec = m.build()
    spec.symmetric = ["p"]
    with pytest.raises(SymmetryError):
        check(spec, "mutex", symmetry=True)


def closed_under(states: set[tuple[int, ...]], rows: tuple[tuple[int, ...], ...]) -> bool:
    """Is the reachable set closed under every transposition of the rows?"""
    for a, b in itertools.combinations(range(len(rows)), 2):
        for s in states:
            t = list(s)
            for i, j in zip(rows[a], rows[b], strict=True):
                t[i], t[j] = s[j], s[i]
            if tuple(t) not in states:
                return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec(asymmetric=True))
def test_random_specs_accepted_symmetry_is_real_and_changes_nothing(spec: Spec) -> None:
    """Whatever the check accepts must be an automorphism of the reachable graph, and the
    reduced exploration must reach the same canonical states and verdicts."""
    try:
        compiled, full, red = explore_both(spec)
    except SymmetryError:
        return
    reach = set(full.states)
    sym = red.reductions.symmetry
    assert sym is not None
    for cls in sym.classes:
        assert closed_under(reach, cls.rows), cls
    assert_equivalent(compiled, full, red)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec())
def test_random_symmetric_specs_verdicts_agree(spec: Spec) -> None:
    plain = check(spec, "random")
    reduced = check(spec, "random", symmetry=True)
    assert [(r.property, r.verdict) for r in plain.results] == [
        (r.property, r.verdict) for r in reduced.results]
    for r in reduced.results:
        if r.verdict == VIOLATED and r.trace is not None:
            replay_on_spec(reduced.compiled, r.trace)
        assert r.verdict in (PASS, VIOLATED)
