"""The rwsem component's `guard` and `Signal` options (used by the locked_vm spec).

`guard` gates only the start of an acquisition: a waiter already queued is committed, as in
the kernel's slowpath. `Signal.possible` decides whether -EINTR can happen at all,
`Signal.pending` forbids waiting (a killable sleep with SIGKILL pending returns at once).
"""

from __future__ import annotations

from typing import Any

from checker.compile import compile_flat
from checker.explore import explore
from checker.expr import FALSE, TRUE, Bool, Expr
from checker.flat import instantiate
from checker.trace import decode_state
from specs.rwsem import RwSem, Signal


def _states(possible: Expr = FALSE, pending: Expr = FALSE) -> list[dict[str, Any]]:
    from checker.spec import SpecBuilder

    s = SpecBuilder("guarded")
    go = s.var("go", Bool(), init=True)
    a = s.process("a", 1)
    b = s.process("b", 1)
    sem = RwSem(s, "sem", users=(a, b))
    sem.down_read(a, "r", kernel="reader: down_read", goto="hold")
    a.step("hold", "reader: the condition goes away", effects={go: False}, goto="rel")
    sem.up_read(a, "rel", kernel="reader: up_read", goto="done")
    sem.down_write_killable(b, "w", kernel="writer: down_write_killable", goto="crit",
                            on_eintr="gave_up", guard=go,
                            signal=Signal(possible=possible, pending=pending))
    sem.up_write(b, "crit", kernel="writer: up_write", goto="done")
    b.step("gave_up", "writer: -EINTR", goto="done")
    s.deadlock_free()
    compiled = compile_flat(instantiate(s.build()))
    ex = explore(compiled, [])
    return [decode_state(compiled.flat, st) for st in ex.states]


def _b(st: dict[str, Any], name: str) -> Any:
    return st[f"b.{name}"][0] if name == "pc" else st[name][1]


def test_guard_stops_new_attempts_but_not_a_queued_waiter() -> None:
    states = _states()
    assert any(_b(st, "pc") == "crit" and not st["go"] for st in states), \
        "a writer queued while go held must still get the lock"
    assert any(_b(st, "pc") == "w" and _b(st, "sem_queue") == 0 and not st["go"]
               and st["a.pc"][0] == "done" for st in states), "a fresh attempt needs go"
    assert not any(_b(st, "pc") == "gave_up" for st in states)


def test_signal_possible_allows_eintr_and_pending_forbids_waiting() -> None:
    assert any(_b(st, "pc") == "gave_up" for st in _states(possible=TRUE))
    states = _states(possible=TRUE, pending=TRUE)
    assert any(_b(st, "pc") == "gave_up" for st in states)
    assert all(_b(st, "sem_queue") == 0 for st in states)
