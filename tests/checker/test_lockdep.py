"""checker/lockdep.py on small specs built from the lock components."""

from __future__ import annotations

import pytest

from checker.compile import compile_flat
from checker.explore import Exploration, Limits, explore
from checker.flat import instantiate
from checker.lockdep import (
    check_lock_order,
    describe_wait_for,
    held_stacks,
    lock_graph,
    trace_contention,
    wait_for,
    wait_for_cycle,
)
from checker.result import PASS, VIOLATED
from checker.run import check
from checker.spec import LockOp, Spec, SpecBuilder
from specs.rwsem import Mutex, RwSem, lock_properties


def abba(order_b: str = "ba", trylock_second: bool = False, q_after_p: bool = False) -> Spec:
    """p takes A then B; q takes B then A ("ba") or A then B ("ab")."""
    s = SpecBuilder("abba", "two mutexes")
    p = s.process("p", 1)
    q = s.process("q", 1)
    a = Mutex(s, "A", (p, q))
    b = Mutex(s, "B", (p, q))
    a.mutex_lock(p, "p1", kernel="p: lock A", goto="p2")
    b.mutex_lock(p, "p2", kernel="p: lock B", goto="p3")
    b.mutex_unlock(p, "p3", kernel="p: unlock B", goto="p4")
    a.mutex_unlock(p, "p4", kernel="p: unlock A", goto="done")
    first, second = (b, a) if order_b == "ba" else (a, b)
    if q_after_p:
        q.step("q0", "q: wait for p", guard=p.at(0, "done"), goto="q1")
    first.mutex_lock(q, "q1", kernel=f"q: lock {first.name}", goto="q2")
    if trylock_second:
        q.step("q2", "q: mutex_trylock", guard=second.owner == second.owners.none,
               effects={second.owner: second.owners.enum_of(q)}, goto="q3",
               locks=(LockOp(second.name, "trylock", "excl"),))
        q.step("q2", "q: mutex_trylock failed", guard=second.owner != second.owners.none,
               goto="q4")
    else:
        second.mutex_lock(q, "q2", kernel=f"q: lock {second.name}", goto="q3")
    second.mutex_unlock(q, "q3", kernel=f"q: unlock {second.name}", goto="q4")
    first.mutex_unlock(q, "q4", kernel=f"q: unlock {first.name}", goto="done")
    lock_properties(s)
    return s.build()


def upgrade() -> Spec:
    """One reader asks for the write side while holding the read side."""
    s = SpecBuilder("upgrade", "read then write")
    t = s.process("t", 1)
    mm = RwSem(s, "mmap_lock", (t,))
    mm.down_read(t, "r", kernel="mmap_read_lock", goto="w")
    mm.down_write(t, "w", kernel="mmap_write_lock", goto="uw")
    mm.up_write(t, "uw", kernel="mmap_write_unlock", goto="ur")
    mm.up_read(t, "ur", kernel="mmap_read_unlock", goto="done")
    lock_properties(s)
    return s.build()


def explored(spec: Spec) -> Exploration:
    return explore(compile_flat(instantiate(spec)), None, Limits())


def test_consistent_order_passes_both_properties() -> None:
    results = {r.property: r.verdict for r in check(abba("ab"), "t").results}
    assert results == {"no_lock_inversion": PASS, "no_deadlock": PASS}


def test_abba_is_reported_like_print_circular_bug() -> None:
    ex = explored(abba("ba"))
    report = check_lock_order(ex, "t")
    assert report.violated
    assert set(report.cycle) == {("A", "B"), ("B", "A")}
    text = report.text
    assert "WARNING: possible circular locking dependency detected" in text
    assert "-> #1 (" in text and "-> #0 (" in text
    assert "Possible unsafe locking scenario" in text and "CPU0" in text and "CPU1" in text
    # Both chains name the step that created them.
    assert "p: lock B" in text and "q: lock A" in text
    assert report.trace is not None and report.trace.kind == "lock_order"


def test_cycle_is_reported_although_no_state_deadlocks() -> None:
    """q only starts once p is done: the inversion can never bite here, lockdep still says so."""
    checked = check(abba("ba", q_after_p=True), "t")
    verdicts = {r.property: r.verdict for r in checked.results}
    assert verdicts == {"no_lock_inversion": VIOLATED, "no_deadlock": PASS}


def test_every_edge_keeps_its_shallowest_witness() -> None:
    ex = explored(abba("ab"))
    g = lock_graph(ex)
    assert set(g.edges) == {("A", "B")}
    w = g.edges["A", "B"]["witness"]
    assert w.held == "A" and w.attempt.lock == "B"
    assert len(ex.path(w.sid)) - 1 == 1, "p holds A after one step"


def test_trylock_records_no_dependency() -> None:
    ex = explored(abba("ba", trylock_second=True))
    assert ("B", "A") not in lock_graph(ex).edges
    assert not check_lock_order(ex, "t").violated


def test_upgrade_is_recursive_locking_and_a_self_deadlock() -> None:
    checked = check(upgrade(), "t")
    verdicts = {r.property: r for r in checked.results}
    assert verdicts["no_lock_inversion"].verdict == VIOLATED
    assert "possible recursive locking detected" in verdicts["no_lock_inversion"].detail
    assert "rlock(mmap_lock);\n  lock(mmap_lock);" in verdicts["no_lock_inversion"].detail
    dead = verdicts["no_deadlock"]
    assert dead.verdict == VIOLATED
    assert "t[0] -> t[0] (t[0] holds mmap_lock for read)" in dead.detail


def test_wait_for_cycle_of_an_abba_deadlock() -> None:
    ex = explored(abba("ba"))
    sid = ex.deadlock
    assert sid is not None
    waits = wait_for(ex, sid)
    assert {(w.proc, w.lock) for w in waits} == {(("p", 0), "B"), (("q", 0), "A")}
    assert sorted(wait_for_cycle(waits)) == [("p", 0), ("q", 0)]
    text = describe_wait_for(ex, sid)
    assert "wait-for cycle:" in text and "q[0] holds B" in text and "p[0] holds A" in text


def test_held_stacks_follow_lock_ops() -> None:
    ex = explored(abba("ba"))
    stacks = held_stacks(ex, ex.deadlock)  # type: ignore[arg-type]
    assert [h.lock for h in stacks[("p", 0)]] == ["A"]
    assert [h.lock for h in stacks[("q", 0)]] == ["B"]


@pytest.mark.parametrize("readers", [1, 2])
def test_trace_contention_counts_acquisitions_and_waits(readers: int) -> None:
    s = SpecBuilder("contention", "a writer and readers")
    w = s.process("w", 1)
    r = s.process("r", readers)
    mm = RwSem(s, "mmap_lock", (w, r))
    mm.down_write(w, "lock", kernel="writer", goto="unlock")
    mm.up_write(w, "unlock", kernel="writer", goto="done")
    r.step("start", "reader starts after the writer", guard=mm.held_write(w) | w.at(0, "done"),
           goto="lock")
    mm.down_read(r, "lock", kernel="reader", goto="unlock")
    mm.up_read(r, "unlock", kernel="reader", goto="done")
    ex = explored(s.build())
    granted = ex.compiled.flat.var_slots["mmap_lock_granted"] + 1  # owner 1 is r[0]
    sid = next(i for i, st in enumerate(ex.states) if st[granted])
    metrics = trace_contention(ex, sid)["mmap_lock"]
    assert metrics["write_acquisitions"] == 1
    assert metrics["read_wait_steps"] >= 1, "r[0] was queued behind the writer"
    assert metrics["read_acquisitions"] == 0, "the grant is not returned yet"


def test_downgrade_is_no_recursive_acquisition() -> None:
    s = SpecBuilder("downgrade", "write, downgrade, read")
    t = s.process("t", 2)
    mm = RwSem(s, "mmap_lock", (t,))
    mm.down_write(t, "w", kernel="mmap_write_lock", goto="dg")
    mm.downgrade_write(t, "dg", kernel="mmap_write_downgrade", goto="ur")
    mm.up_read(t, "ur", kernel="mmap_read_unlock", goto="done")
    lock_properties(s)
    verdicts = {r.property: r.verdict for r in check(s.build(), "t").results}
    assert verdicts == {"no_lock_inversion": PASS, "no_deadlock": PASS}
