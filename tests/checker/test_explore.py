"""The explicit engine against answers known independently of it."""

from __future__ import annotations

import itertools

from benchmarks.specs_counter import build as counter
from checker.explore import Limits
from checker.result import INCOMPLETE, PASS, VIOLATED
from checker.run import check
from tests.checker.specs_deadlock import build as abba
from tests.checker.specs_mutex import build as mutex


def brute_force_counter(threads: int, rounds: int) -> set[tuple]:
    """Reachable states of the counter algorithm, by a plain simulation of its threads."""
    start = (0,) + tuple(("load", 0, rounds) for _ in range(threads))
    seen, todo = {start}, [start]
    while todo:
        x, *ts = todo.pop()
        for i, (pc, reg, left) in enumerate(ts):
            if pc == "load" and left > 0:
                nxt = (x, *ts[:i], ("store", x, left), *ts[i + 1:])
            elif pc == "load":
                nxt = (x, *ts[:i], ("done", reg, left), *ts[i + 1:])
            elif pc == "store":
                nxt = (reg + 1, *ts[:i], ("load", reg, left - 1), *ts[i + 1:])
            else:
                continue
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_state_count_matches_brute_force() -> None:
    for threads, rounds in [(1, 3), (2, 2), (3, 2), (2, 4)]:
        c = check(counter(threads=threads, rounds=rounds), "counter")
        assert c.exploration.complete
        assert c.exploration.stats.states == len(brute_force_counter(threads, rounds))


def test_lost_update_found_with_shortest_trace() -> None:
    c = check(counter(threads=2, rounds=1), "counter")
    r = {x.property: x for x in c.results}
    assert r["lost_update"].verdict == VIOLATED
    # load, load, store, store (both threads read 0), then both loop exits: 6 steps
    assert len(r["lost_update"].trace) == 6
    assert r["lost_update"].trace.states[-1]["x"] == 1
    assert r["bounded"].verdict == PASS


def test_peterson_is_safe_and_naive_is_not() -> None:
    ok = check(mutex(variant="peterson", rounds=2), "mutex")
    assert all(r.verdict == PASS for r in ok.results)
    bad = check(mutex(variant="naive", rounds=1), "mutex")
    me = next(r for r in bad.results if r.property == "mutual_exclusion")
    assert me.verdict == VIOLATED
    # each process must test, set and enter: 3 steps each is the minimum
    assert len(me.trace) == 6
    assert me.trace.states[-1]["in_cs"] == 2
    assert me.trace.witness == {"in_cs": 2}


def test_every_trace_step_is_a_real_transition() -> None:
    bad = check(mutex(variant="naive", rounds=1), "mutex")
    ex = bad.exploration
    sid = ex.violations["mutual_exclusion"]
    path = ex.path(sid)
    for (_, a), (aid, b) in itertools.pairwise(path):
        assert (aid, ex.states[b]) in bad.compiled.successors(ex.states[a])


def test_deadlock_found_with_shortest_trace() -> None:
    c = check(abba(variant="abba"), "abba")
    dl = next(r for r in c.results if r.property == "no_deadlock")
    assert dl.verdict == VIOLATED
    assert len(dl.trace) == 2  # each thread takes its first lock
    assert "blocked at" in dl.detail
    ok = check(abba(variant="ordered"), "abba")
    assert all(r.verdict == PASS for r in ok.results)


def test_limits_give_incomplete_never_pass() -> None:
    c = check(counter(threads=3, rounds=3), "counter", limits=Limits(max_states=5000))
    r = {x.property: x for x in c.results}
    assert not c.exploration.complete
    assert r["bounded"].verdict == INCOMPLETE
    assert "state limit" in r["bounded"].reason
    assert r["lost_update"].verdict in (VIOLATED, INCOMPLETE)
    t = check(counter(threads=4, rounds=3), "counter", limits=Limits(max_seconds=0.2))
    assert not t.exploration.complete
    assert all(x.verdict != PASS for x in t.results)


def test_lemmas_are_checked_in_every_state_when_every_property_is() -> None:
    """The spec's lemmas (strengthening invariants for --prove) are checked by the explicit
    engine too: a false one is reported with its trace; a true one passes."""
    from checker.spec import Property
    from tests.checker.specs_smt_cache import build as cache

    spec = cache(variant="split", threads=2, cache=1)
    flat_names = [lm.name for lm in spec.lemmas]
    exact = next(p for p in spec.properties if p.name == "exact")  # split breaks it
    spec.lemmas.append(Property("exact_as_lemma", "invariant", exact.expr, "false in split"))
    got = {r.property: r for r in check(spec, "smt_cache").results}
    assert got["lemma:exact_as_lemma"].verdict == VIOLATED
    assert got["lemma:exact_as_lemma"].trace is not None
    assert all(got[f"lemma:{n}"].verdict == PASS for n in flat_names)
    only = check(spec, "smt_cache", ["exact"]).results
    assert [r.property for r in only] == ["exact"]
    reduced = check(spec, "smt_cache", por=True).results
    assert not [r for r in reduced if r.property.startswith("lemma:")]
