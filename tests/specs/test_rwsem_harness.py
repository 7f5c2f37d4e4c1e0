"""Harness driving the spec lock components and their model/ twins side by side.

A harness spec lets every owner start any lock operation from an `idle` label. `RwPair`
runs one operation on the twin (model/rwsem.py) and the same operation on the compiled
spec, and checks after every operation that both agree on the outcome (acquired, waiting,
-EINTR) and on the lock state. Used by test_rwsem.py (kernel behaviour, case by case) and
test_rwsem_twin.py (random operation sequences).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from checker.compile import Compiled, compile_flat
from checker.flat import instantiate
from checker.spec import Spec, SpecBuilder
from model.locks import WAIT
from model.rwsem import RwSemaphore
from specs.rwsem import Mutex as MutexSpec
from specs.rwsem import RwSem
from specs.rwsem import SpinLock as SpinLockSpec

GROUPS = (("a", 1), ("b", 2))
OWNERS = [f"{g}[{i}]" for g, n in GROUPS for i in range(n)]
DEPTH = 2

RW_OPS = ("down_read", "down_read_killable", "down_write", "down_write_killable",
          "down_read_trylock", "down_write_trylock", "up_read", "up_write", "downgrade_write")


def rwsem_harness() -> Spec:
    s = SpecBuilder("rwsem_harness", "every owner may run any rwsem operation")
    procs = [s.process(g, n) for g, n in GROUPS]
    rw = RwSem(s, "sem", procs, max_read_depth=DEPTH, signal_while_waiting=True)
    for p in procs:
        for op in RW_OPS:
            p.step("idle", f"harness: start {op}", goto=op)
        k = "harness"
        rw.down_read(p, "down_read", kernel=k, goto="idle")
        rw.down_read_killable(p, "down_read_killable", kernel=k, goto="idle", on_eintr="idle")
        rw.down_write(p, "down_write", kernel=k, goto="idle")
        rw.down_write_killable(p, "down_write_killable", kernel=k, goto="idle",
                               on_eintr="idle")
        rw.down_read_trylock(p, "down_read_trylock", kernel=k, goto="idle", on_fail="idle")
        rw.down_write_trylock(p, "down_write_trylock", kernel=k, goto="idle", on_fail="idle")
        rw.up_read(p, "up_read", kernel=k, goto="idle")
        rw.up_write(p, "up_write", kernel=k, goto="idle")
        rw.downgrade_write(p, "downgrade_write", kernel=k, goto="idle")
    return s.build()


def excl_harness(kind: str) -> Spec:
    s = SpecBuilder(f"{kind}_harness", "every owner may lock and unlock")
    procs = [s.process(g, n) for g, n in GROUPS]
    if kind == "mutex":
        m = MutexSpec(s, "m", procs)
        for p in procs:
            for op in ("lock", "lock_killable", "unlock"):
                p.step("idle", f"harness: start {op}", goto=op)
            m.mutex_lock(p, "lock", kernel="harness", goto="idle")
            m.mutex_lock_killable(p, "lock_killable", kernel="harness", goto="idle",
                                  on_eintr="idle")
            m.mutex_unlock(p, "unlock", kernel="harness", goto="idle")
    else:
        sl = SpinLockSpec(s, "m", procs)
        for p in procs:
            for op in ("lock", "unlock"):
                p.step("idle", f"harness: start {op}", goto=op)
            sl.spin_lock(p, "lock", kernel="harness", goto="idle")
            sl.spin_unlock(p, "unlock", kernel="harness", goto="idle")
    return s.build()


@dataclass
class Driver:
    """Runs one operation of one owner on the compiled spec."""

    compiled: Compiled
    state: tuple[int, ...]

    def value(self, var: str, element: int | None = None) -> Any:
        for info in self.compiled.flat.slots:
            if info.var == var and info.element == element:
                return info.type.show(self.state[info.index])
        raise KeyError(var)

    def pc(self, owner: str) -> str:
        g, i = owner[:-3], int(owner[-2])
        return str(self.value(f"{g}.pc", i))

    def enabled(self, owner: str) -> list[tuple[int, tuple[int, ...]]]:
        return [(aid, nxt) for aid, nxt in self.compiled.successors(self.state)
                if self.compiled.actions[aid].process == owner]

    def run(self, owner: str, op: str, signal: bool) -> str:
        """Start (if idle) and poll `op`; return the label the owner ends at."""
        if self.pc(owner) == "idle":
            (nxt,) = [n for a, n in self.enabled(owner)
                      if self.compiled.actions[a].transition.step.goto == op]
            self.state = nxt
        assert self.pc(owner) == op
        killers = ("killed while waiting", "fatal signal pending")
        options = {self.compiled.actions[a].transition.step.note: n
                   for a, n in self.enabled(owner)}
        chosen = [options[k] for k in killers if k in options] if signal else []
        if not chosen:
            chosen = [n for note, n in options.items() if note not in killers]
        assert len(chosen) <= 1 or signal, options.keys()
        if chosen:
            self.state = chosen[0]
        return self.pc(owner)


_COMPILED: dict[str, Compiled] = {}


def compiled_harness(kind: str) -> Compiled:
    """Compiled once per session; not a fixture, so hypothesis never prints it."""
    if kind not in _COMPILED:
        spec = rwsem_harness() if kind == "rwsem" else excl_harness(kind)
        _COMPILED[kind] = compile_flat(instantiate(spec))
    return _COMPILED[kind]


def spec_rw_snapshot(d: Driver) -> tuple[object, ...]:
    writer = d.value("sem_writer")
    readers = tuple((o, d.value("sem_readers", k)) for k, o in enumerate(OWNERS)
                    if d.value("sem_readers", k))
    queued = sorted((d.value("sem_queue", k), o, "write" if d.value("sem_qwrite", k) else "read")
                    for k, o in enumerate(OWNERS) if d.value("sem_queue", k))
    granted = tuple(o for k, o in enumerate(OWNERS) if d.value("sem_granted", k))
    return (None if writer == "none" else writer, readers,
            tuple((o, m) for _, o, m in queued), granted)


def twin_rw_call(sem: RwSemaphore, owner: str, op: str, signal: bool) -> int | bool | None:
    calls: dict[str, Callable[[], Any]] = {
        "down_read": lambda: sem.down_read(owner),
        "down_read_killable": lambda: sem.down_read_killable(owner, signal),
        "down_write": lambda: sem.down_write(owner),
        "down_write_killable": lambda: sem.down_write_killable(owner, signal),
        "down_read_trylock": lambda: sem.down_read_trylock(owner),
        "down_write_trylock": lambda: sem.down_write_trylock(owner),
        "up_read": lambda: sem.up_read(owner),
        "up_write": lambda: sem.up_write(owner),
        "downgrade_write": lambda: sem.downgrade_write(owner),
    }
    return calls[op]()


def valid_rw_ops(sem: RwSemaphore, owner: str) -> list[str]:
    """Operations the twin accepts for an idle owner (no usage errors, depth bound)."""
    ops = ["down_write", "down_write_killable", "down_write_trylock"]
    held = sem.readers.get(owner, 0)
    if held < DEPTH and sem.writer != owner:
        ops += ["down_read", "down_read_killable", "down_read_trylock"]
    if held and owner not in sem.granted:
        ops.append("up_read")
    if sem.writer == owner:
        ops += ["up_write"] + (["downgrade_write"] if held < DEPTH else [])
        ops = [o for o in ops if not o.startswith("down_write")]
    return ops




class RwPair:
    """The rwsem twin and the spec component, run in lockstep."""

    def __init__(self) -> None:
        self.sem = RwSemaphore("sem")
        compiled = compiled_harness("rwsem")
        self.driver = Driver(compiled, compiled.initial)

    def op(self, owner: str, op: str, signal: bool = False) -> Any:
        """Run (or poll) op for owner on both; return the twin's result."""
        result = twin_rw_call(self.sem, owner, op, signal)
        label = self.driver.run(owner, op, signal)
        waiting = not op.endswith("trylock") and (
            result is False or (type(result) is int and result == WAIT))
        assert label == (op if waiting else "idle"), (owner, op, result, label)
        assert spec_rw_snapshot(self.driver) == self.sem.snapshot(), (owner, op, signal)
        return result

    def spec_value(self, var: str, owner: str | None = None) -> Any:
        return self.driver.value(var, None if owner is None else OWNERS.index(owner))
