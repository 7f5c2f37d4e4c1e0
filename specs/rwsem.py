"""Reusable lock components for specs: rw_semaphore (mmap_lock), mutex, spinlock.

A component declares the lock's state variables and its `LockDecl`, and adds the step
alternatives of one lock operation at a label of a process. Usage::

    s = SpecBuilder(...)
    ioctl = s.process("ioctl", 1)
    helper = s.process("helper", T)
    mm = RwSem(s, "mmap_lock", users=(ioctl, helper))     # after the processes, before steps
    mm.down_read(helper, "pin_lock", kernel="vaddr_get_pfns: mmap_read_lock", goto="pin")
    helper.step("pin", "vaddr_get_pfns: pin_user_pages_remote", ..., goto="pin_unlock")
    mm.up_read(helper, "pin_unlock", kernel="vaddr_get_pfns: mmap_read_unlock", goto="acct")
    mm.down_write_killable(helper, "acct", kernel="vfio_lock_acct: mmap_write_lock_killable",
                           goto="acct_locked", on_eintr="done")

Operations (each adds every alternative of the kernel code path at `label`; `effects`
are extra effects of the successful alternative, `on_eintr`/`eintr_effects` of the -EINTR
alternative):

- `RwSem.down_read / down_write (p, label, *, kernel, goto, effects=None)`
- `RwSem.down_read_killable / down_write_killable (..., on_eintr, eintr_effects=None)`
- `RwSem.down_read_trylock / down_write_trylock (..., on_fail)`, `RwSem.up_read / up_write /
  downgrade_write (p, label, *, kernel, goto, effects=None)`
- `Mutex.mutex_lock / mutex_lock_killable / mutex_unlock`, `SpinLock.spin_lock / spin_unlock`

The rwsem operations also take `guard` (a condition for starting the operation, e.g.
"there is something to charge"; a queued waiter is committed and ignores it), and the
killable ones `signal=Signal(possible, pending)` to say whom a fatal signal can reach.

While a process waits it stays at `label` with no enabled alternative: a wait that never
ends is a deadlock state for `s.deadlock_free()`, and `checker.lockdep` reads the lock
annotations (`LockOp`) to print the wait-for cycle and the lockdep-style order report.

Semantics are those of the `model/` twins (model/rwsem.py, model/locks.py), kernel v5.16:
a queued writer blocks later readers; reader optimistic lock stealing; phase-fair wakeup of
all queued readers; a killable operation that must wait and has a fatal signal pending
returns -EINTR leaving the lock's holders untouched (a killed writer wakes the new head).
The fatal signal is a nondeterministic choice made when the caller would start waiting
(two alternatives, notes "fatal signal pending" / "no fatal signal"). With
`signal_while_waiting=True` a queued waiter may also be killed later; it is off by default
because a process that only a SIGKILL can release is hung (TASK_KILLABLE is a D state), and
with it on such a hang would not be a deadlock state.

State (for lock name L, owners numbered over the `users` groups in order): `L_writer`
(enum: none or the owner), `L_readers[o]` (read holds), `L_queue[o]` (1-based wait-list
position, 0 = not queued), `L_qwrite[o]` (queued for write), `L_granted[o]` (woken with the
read lock granted, its down_read has not returned yet). `held(p)` is the LockDecl expression:
a granted reader does not hold the lock until its down_read returns (lockdep's view).
Releasing a lock the process does not hold is not enabled, so the process shows as stuck
at that release step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from checker.expr import (
    FALSE,
    INT,
    TRUE,
    Bool,
    Const,
    EnumT,
    Expr,
    Int,
    Or,
    ite,
)
from checker.spec import ArrayVar, IndexSet, LockDecl, LockOp, ProcessBuilder, SpecBuilder

NONE = "none"

Effects = Mapping[Expr, Any] | None
_ONE, _ZERO = Const(1, INT), Const(0, INT)


def _count(conds: Sequence[Expr]) -> Expr:
    """Number of true conditions, as an int expression."""
    acc: Expr = Const(0, INT)
    for c in conds:
        acc = acc + ite(c, _ONE, _ZERO)
    return acc


def _at(xs: Sequence[Expr], i: Expr) -> Expr:
    """xs[i] for a (build-time symbolic, instantiation-time constant) owner index i."""
    out = xs[-1]
    for k in range(len(xs) - 2, -1, -1):
        out = ite(i == k, xs[k], out)
    return out


class Owners:
    """Global numbering of the process instances that use one lock."""

    def __init__(self, lock: str, users: Sequence[ProcessBuilder]) -> None:
        self.offsets: dict[str, int] = {}
        names: list[str] = []
        for p in users:
            self.offsets[p.name] = len(names)
            names += [f"{p.name}[{i}]" for i in p.group.index]
        self.names = names
        self.index = IndexSet(f"{lock}.owner", len(names))
        self.enum = EnumT(f"{lock}.owner", (NONE, *names))

    def index_of(self, p: ProcessBuilder) -> Expr:
        """The executing instance's owner number (a constant once instantiated)."""
        if p.name not in self.offsets:
            raise ValueError(f"process {p.name} is not a user of this lock")
        off = self.offsets[p.name]
        return p.self if off == 0 else p.self + off

    def enum_of(self, p: ProcessBuilder) -> Expr:
        """The executing instance as a value of the owner enum."""
        off, n = self.offsets[p.name], p.group.index.size
        out: Expr = Const(self.enum.code(self.names[off + n - 1]), self.enum)
        for i in range(n - 2, -1, -1):
            out = ite(p.self == i, Const(self.enum.code(self.names[off + i]), self.enum), out)
        return out

    @property
    def none(self) -> Expr:
        return Const(0, self.enum)


def _merge(where: str, *parts: Effects) -> dict[Expr, Any]:
    out: dict[Expr, Any] = {}
    for part in parts:
        for k, v in (part or {}).items():
            if k in out:
                raise ValueError(f"{where}: effect on {k!r} given twice")
            out[k] = v
    return out


@dataclass(frozen=True)
class Signal:
    """Who a fatal signal can reach, for the killable operations.

    `possible`: the -EINTR alternative may be taken (a SIGKILL may be pending when the
    process would start to wait); `pending`: one certainly is (then it cannot wait). The
    defaults leave both outcomes open for everyone, as the kernel code alone does; a spec
    narrows them, e.g. to the one thread a signal can reach.
    """

    possible: Expr = TRUE
    pending: Expr = FALSE


# ---------------------------------------------------------------- rw_semaphore


@dataclass(frozen=True)
class _Rw:
    """Symbolic rwsem state: each field an expression over the pre-state of a step."""

    writer: Expr
    readers: tuple[Expr, ...]
    queue: tuple[Expr, ...]
    qwrite: tuple[Expr, ...]
    granted: tuple[Expr, ...]


class RwSem:
    """struct rw_semaphore (kernel/locking/rwsem.c v5.16) as a spec component."""

    kind = "rwsem"

    def __init__(self, s: SpecBuilder, name: str, users: Sequence[ProcessBuilder], *,
                 max_read_depth: int = 1, signal_while_waiting: bool = False,
                 doc: str = "") -> None:
        self.name, self.owners = name, Owners(name, users)
        self.signal_while_waiting = signal_while_waiting
        n = len(self.owners.names)
        idx = self.owners.index
        self.writer = s.var(f"{name}_writer", self.owners.enum, init=NONE,
                            doc=f"{name}: owner holding it for write")
        self.readers: ArrayVar = s.array(f"{name}_readers", idx, Int(0, max_read_depth), 0,
                                         doc=f"{name}: read holds per owner")
        self.queue: ArrayVar = s.array(f"{name}_queue", idx, Int(0, n), 0,
                                       doc=f"{name}: wait-list position (0: not waiting)")
        self.qwrite: ArrayVar = s.array(f"{name}_qwrite", idx, Bool(), False,
                                        doc=f"{name}: waiting for write")
        self.granted: ArrayVar = s.array(f"{name}_granted", idx, Bool(), False,
                                         doc=f"{name}: woken with the read lock granted")
        s.lock(LockDecl(name, self.kind, {p.name: self.held(p) for p in users}, doc))

    # -- expressions for properties and guards -----------------------------------------

    def _pre(self) -> _Rw:
        return _Rw(self.writer, tuple(self.readers), tuple(self.queue), tuple(self.qwrite),
                   tuple(self.granted))

    def held(self, p: ProcessBuilder) -> Expr:
        """p holds the lock (either mode) and its down_* has returned."""
        o = self.owners.index_of(p)
        return (self.writer == self.owners.enum_of(p)) | (
            _at(tuple(self.readers), o) - ite(_at(tuple(self.granted), o), _ONE, _ZERO) > 0)

    def held_write(self, p: ProcessBuilder) -> Expr:
        return self.writer == self.owners.enum_of(p)

    def is_free(self) -> Expr:
        return self._free(self._pre())

    def waiting(self, p: ProcessBuilder) -> Expr:
        """p is on the wait list."""
        return _at(tuple(self.queue), self.owners.index_of(p)) > 0

    # -- symbolic operations (rwsem.c internals) ---------------------------------------

    def _free(self, st: _Rw) -> Expr:
        return (st.writer == self.owners.none) & _all(r == 0 for r in st.readers)

    def _add_reader(self, st: _Rw, o: Expr) -> _Rw:
        rs = tuple(ite(o == x, r + 1, r) for x, r in enumerate(st.readers))
        return replace(st, readers=rs)

    def _enqueue(self, st: _Rw, o: Expr, write: bool) -> _Rw:
        """rwsem_add_waiter: append to the FIFO wait list."""
        tail = _count([q > 0 for q in st.queue]) + 1
        return replace(
            st,
            queue=tuple(ite(o == x, tail, q) for x, q in enumerate(st.queue)),
            qwrite=tuple(ite(o == x, write, w) for x, w in enumerate(st.qwrite)))

    def _dequeue(self, st: _Rw, o: Expr) -> _Rw:
        """rwsem_del_waiter / list_del: close the gap behind the leaving waiter."""
        k = _at(st.queue, o)
        return replace(
            st,
            queue=tuple(ite(o == x, 0, ite(q > k, q - 1, q)) for x, q in enumerate(st.queue)),
            qwrite=tuple(ite(o == x, FALSE, w) for x, w in enumerate(st.qwrite)))

    def _mark_wake(self, st: _Rw, read_owned: bool) -> _Rw:
        """rwsem_mark_wake: a reader at the head gets every queued reader granted.

        A writer at the head is only woken (it retries with its next poll). Unless the
        waker holds the lock for read (RWSEM_WAKE_READ_OWNED), a writer holding the lock
        cancels the grant.
        """
        head_reader = Or(*((q == 1) & ~w for q, w in zip(st.queue, st.qwrite, strict=True)))
        cond = head_reader if read_owned else head_reader & (st.writer == self.owners.none)
        is_r = [(q > 0) & ~w for q, w in zip(st.queue, st.qwrite, strict=True)]
        queue, readers, granted = [], [], []
        for x, q in enumerate(st.queue):
            grant = cond & is_r[x]
            ahead = _count([is_r[y] & (st.queue[y] < q) for y in range(len(st.queue)) if y != x])
            queue.append(ite(grant, 0, ite(cond & (q > 0), q - ahead, q)))
            readers.append(ite(grant, st.readers[x] + 1, st.readers[x]))
            granted.append(st.granted[x] | grant)
        return replace(st, queue=tuple(queue), readers=tuple(readers), granted=tuple(granted))

    def _effects(self, st: _Rw) -> dict[Expr, Expr]:
        pre = self._pre()
        out: dict[Expr, Expr] = {}
        if st.writer is not pre.writer:
            out[self.writer] = st.writer
        for arr, new, old in ((self.readers, st.readers, pre.readers),
                              (self.queue, st.queue, pre.queue),
                              (self.qwrite, st.qwrite, pre.qwrite),
                              (self.granted, st.granted, pre.granted)):
            for x, (n_, o_) in enumerate(zip(new, old, strict=True)):
                if n_ is not o_:
                    out[arr[x]] = n_
        return out

    # -- read side ---------------------------------------------------------------------

    def down_read(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                  effects: Effects = None, guard: Expr = TRUE) -> None:
        """down_read: TASK_UNINTERRUPTIBLE."""
        self._down_read(p, label, kernel, goto, effects, None, None, guard, Signal())

    def down_read_killable(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                           on_eintr: str, effects: Effects = None,
                           eintr_effects: Effects = None, guard: Expr = TRUE,
                           signal: Signal | None = None) -> None:
        """down_read_killable: -EINTR if a fatal signal is pending when it must wait."""
        self._down_read(p, label, kernel, goto, effects, on_eintr, eintr_effects, guard,
                        signal or Signal())

    def _down_read(self, p: ProcessBuilder, label: str, kernel: str, goto: str,
                   effects: Effects, on_eintr: str | None, eintr_effects: Effects,
                   guard: Expr, sig: Signal) -> None:
        o, pre = self.owners.index_of(p), self._pre()
        acq = (LockOp(self.name, "acquire", "read"),)
        granted, queued = _at(pre.granted, o), _at(pre.queue, o) > 0
        fresh = ~granted & ~queued & guard
        no_writer = pre.writer == self.owners.none
        no_waiters = _all(q == 0 for q in pre.queue)
        no_readers = _all(r == 0 for r in pre.readers)
        fast = no_writer & no_waiters
        steal = no_writer & ~no_waiters & no_readers
        where = f"{self.name}: down_read at {p.name}.{label}"
        ok = effects
        p.step(label, f"{kernel} -> rwsem_read_trylock", note="fast path", guard=fresh & fast,
               effects=_merge(where, self._effects(self._add_reader(pre, o)), ok),
               goto=goto, locks=acq)
        st = self._mark_wake(self._add_reader(pre, o), read_owned=True)
        p.step(label, f"{kernel} -> rwsem_down_read_slowpath: reader optimistic lock stealing",
               note="steal past queued waiters", guard=fresh & steal,
               effects=_merge(where, self._effects(st), ok), goto=goto, locks=acq)
        p.step(label, f"{kernel} -> rwsem_down_read_slowpath: woken by rwsem_mark_wake",
               note="lock granted", guard=granted,
               effects=_merge(where, {self.granted[x]: ite(o == x, FALSE, g)
                                      for x, g in enumerate(pre.granted)}, ok),
               goto=goto, locks=acq)
        must_wait = fresh & ~fast & ~steal
        queued_st = self._enqueue(pre, o, False)
        p.step(label, f"{kernel} -> rwsem_down_read_slowpath: rwsem_add_waiter",
               note="no fatal signal" if on_eintr else "queued",
               guard=must_wait & ~sig.pending if on_eintr else must_wait,
               effects=self._effects(queued_st), goto=label)
        if on_eintr is None:
            return
        p.step(label, f"{kernel} -> rwsem_down_read_slowpath: out_nolock, -EINTR",
               note="fatal signal pending", guard=must_wait & sig.possible,
               effects=eintr_effects, goto=on_eintr)
        if self.signal_while_waiting:
            st = self._dequeue(pre, o)
            p.step(label, f"{kernel} -> rwsem_down_read_slowpath: out_nolock, -EINTR",
                   note="killed while waiting", guard=queued & ~granted & sig.possible,
                   effects=_merge(where, self._effects(st), eintr_effects), goto=on_eintr)

    def down_read_trylock(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                          on_fail: str, effects: Effects = None) -> None:
        """down_read_trylock: fails on a writer or waiters (RWSEM_READ_FAILED_MASK)."""
        o, pre = self.owners.index_of(p), self._pre()
        ok = (pre.writer == self.owners.none) & _all(q == 0 for q in pre.queue)
        where = f"{self.name}: down_read_trylock at {p.name}.{label}"
        p.step(label, f"{kernel} -> __down_read_trylock", note="acquired", guard=ok,
               effects=_merge(where, self._effects(self._add_reader(pre, o)), effects),
               goto=goto, locks=(LockOp(self.name, "trylock", "read"),))
        p.step(label, f"{kernel} -> __down_read_trylock", note="contended", guard=~ok,
               goto=on_fail)

    def up_read(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                effects: Effects = None, guard: Expr = TRUE) -> None:
        """up_read: the last reader out wakes the wait list (rwsem_wake)."""
        o, pre = self.owners.index_of(p), self._pre()
        rs = tuple(ite(o == x, r - 1, r) for x, r in enumerate(pre.readers))
        after = replace(pre, readers=rs)
        # rwsem_wake runs only when the count drops to "waiters, no lock holders".
        st = _pick(self._free(after), self._mark_wake(after, read_owned=False), after)
        held = (_at(pre.readers, o) - ite(_at(pre.granted, o), _ONE, _ZERO)) > 0
        p.step(label, f"{kernel} -> up_read", guard=held & guard,
               effects=_merge(f"{self.name}: up_read", self._effects(st), effects), goto=goto,
               locks=(LockOp(self.name, "release", "read"),))

    # -- write side --------------------------------------------------------------------

    def down_write(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                   effects: Effects = None, guard: Expr = TRUE) -> None:
        """down_write: TASK_UNINTERRUPTIBLE."""
        self._down_write(p, label, kernel, goto, effects, None, None, guard, Signal())

    def down_write_killable(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                            on_eintr: str, effects: Effects = None,
                            eintr_effects: Effects = None, guard: Expr = TRUE,
                            signal: Signal | None = None) -> None:
        """down_write_killable: -EINTR if a fatal signal is pending when it must wait."""
        self._down_write(p, label, kernel, goto, effects, on_eintr, eintr_effects, guard,
                         signal or Signal())

    def _down_write(self, p: ProcessBuilder, label: str, kernel: str, goto: str,
                    effects: Effects, on_eintr: str | None, eintr_effects: Effects,
                    guard: Expr, sig: Signal) -> None:
        o, me, pre = self.owners.index_of(p), self.owners.enum_of(p), self._pre()
        acq = (LockOp(self.name, "acquire", "write"),)
        queue_o = _at(pre.queue, o)
        fresh = (queue_o == 0) & guard
        free = self._free(pre)
        no_waiters = _all(q == 0 for q in pre.queue)
        where = f"{self.name}: down_write at {p.name}.{label}"
        take = replace(pre, writer=me)
        p.step(label, f"{kernel} -> rwsem_write_trylock", note="fast path",
               guard=fresh & free & no_waiters,
               effects=_merge(where, self._effects(take), effects), goto=goto, locks=acq)
        p.step(label, f"{kernel} -> rwsem_optimistic_spin: rwsem_try_write_lock_unqueued",
               note="steal past queued waiters", guard=fresh & free & ~no_waiters,
               effects=_merge(where, self._effects(take), effects), goto=goto, locks=acq)
        head = replace(self._dequeue(pre, o), writer=me)
        p.step(label, f"{kernel} -> rwsem_down_write_slowpath: rwsem_try_write_lock",
               note="woken head waiter", guard=(queue_o == 1) & free,
               effects=_merge(where, self._effects(head), effects), goto=goto, locks=acq)
        # rwsem_add_waiter, then (not first, no writer holding) rwsem_mark_wake with
        # RWSEM_WAKE_READERS. That wakeup only grants readers queued ahead of this writer,
        # so granting first and appending the writer after gives the same state with far
        # smaller expressions. On an empty list or under a writer it changes nothing.
        woke = self._mark_wake(pre, read_owned=False)
        p.step(label, f"{kernel} -> rwsem_down_write_slowpath: rwsem_add_waiter",
               note="no fatal signal" if on_eintr else "queued",
               guard=fresh & ~free & ~sig.pending if on_eintr else fresh & ~free,
               effects=self._effects(self._enqueue(woke, o, True)), goto=label)
        if on_eintr is None:
            return
        # Queue, wake readers ahead, then out_nolock: dequeue and rwsem_mark_wake(ANY) on
        # the list without this writer. Net effect: the reader grant of the wakeup alone.
        p.step(label, f"{kernel} -> rwsem_down_write_slowpath: out_nolock, -EINTR",
               note="fatal signal pending", guard=fresh & ~free & sig.possible,
               effects=_merge(where, self._effects(woke), eintr_effects), goto=on_eintr)
        if self.signal_while_waiting:
            killed = self._mark_wake(self._dequeue(pre, o), read_owned=False)
            p.step(label, f"{kernel} -> rwsem_down_write_slowpath: out_nolock, -EINTR",
                   note="killed while waiting",
                   guard=(queue_o > 0) & ~((queue_o == 1) & free) & sig.possible,
                   effects=_merge(where, self._effects(killed), eintr_effects), goto=on_eintr)

    def down_write_trylock(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                           on_fail: str, effects: Effects = None) -> None:
        """down_write_trylock: needs count == 0 (no holder, no waiter)."""
        pre = self._pre()
        ok = self._free(pre) & _all(q == 0 for q in pre.queue)
        where = f"{self.name}: down_write_trylock at {p.name}.{label}"
        p.step(label, f"{kernel} -> rwsem_write_trylock", note="acquired", guard=ok,
               effects=_merge(where, self._effects(replace(pre, writer=self.owners.enum_of(p))),
                              effects),
               goto=goto, locks=(LockOp(self.name, "trylock", "write"),))
        p.step(label, f"{kernel} -> rwsem_write_trylock", note="contended", guard=~ok,
               goto=on_fail)

    def up_write(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                 effects: Effects = None, guard: Expr = TRUE) -> None:
        """up_write: clear the owner, wake the wait list."""
        pre = self._pre()
        st = self._mark_wake(replace(pre, writer=self.owners.none), read_owned=False)
        p.step(label, f"{kernel} -> up_write", guard=self.held_write(p) & guard,
               effects=_merge(f"{self.name}: up_write", self._effects(st), effects), goto=goto,
               locks=(LockOp(self.name, "release", "write"),))

    def downgrade_write(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                        effects: Effects = None) -> None:
        """downgrade_write: become a reader, wake queued readers (RWSEM_WAKE_READ_OWNED)."""
        o, pre = self.owners.index_of(p), self._pre()
        st = replace(pre, writer=self.owners.none)
        st = self._mark_wake(self._add_reader(st, o), read_owned=True)
        p.step(label, f"{kernel} -> downgrade_write", guard=self.held_write(p),
               effects=_merge(f"{self.name}: downgrade_write", self._effects(st), effects),
               goto=goto, locks=(LockOp(self.name, "release", "write"),
                                 LockOp(self.name, "acquire", "read")))


def _all(conds: Any) -> Expr:
    out: Expr = TRUE
    for c in conds:
        out = c if out is TRUE else out & c
    return out


def _pick(cond: Expr, a: _Rw, b: _Rw) -> _Rw:
    """Field-wise ite(cond, a, b), keeping untouched fields identical."""

    def sel(x: Expr, y: Expr) -> Expr:
        return x if x is y else ite(cond, x, y)

    def sels(xs: tuple[Expr, ...], ys: tuple[Expr, ...]) -> tuple[Expr, ...]:
        return tuple(sel(x, y) for x, y in zip(xs, ys, strict=True))

    return _Rw(sel(a.writer, b.writer), sels(a.readers, b.readers), sels(a.queue, b.queue),
               sels(a.qwrite, b.qwrite), sels(a.granted, b.granted))


# ---------------------------------------------------------------- mutex and spinlock


class _Exclusive:
    """Shared state of a mutex or a queued spinlock: owner and FIFO wait positions."""

    kind = "mutex"
    mode = "excl"

    def __init__(self, s: SpecBuilder, name: str, users: Sequence[ProcessBuilder],
                 doc: str = "") -> None:
        self.name, self.owners = name, Owners(name, users)
        n = len(self.owners.names)
        self.owner = s.var(f"{name}_owner", self.owners.enum, init=NONE,
                           doc=f"{name}: holder")
        self.queue: ArrayVar = s.array(f"{name}_queue", self.owners.index, Int(0, n), 0,
                                       doc=f"{name}: wait position (0: not waiting)")
        s.lock(LockDecl(name, self.kind, {p.name: self.held(p) for p in users}, doc))

    def held(self, p: ProcessBuilder) -> Expr:
        return self.owner == self.owners.enum_of(p)

    def waiting(self, p: ProcessBuilder) -> Expr:
        return _at(tuple(self.queue), self.owners.index_of(p)) > 0

    def _enqueue(self, o: Expr) -> dict[Expr, Expr]:
        tail = _count([q > 0 for q in self.queue]) + 1
        return {self.queue[x]: ite(o == x, tail, q) for x, q in enumerate(self.queue)}

    def _dequeue(self, o: Expr) -> dict[Expr, Expr]:
        k = _at(tuple(self.queue), o)
        return {self.queue[x]: ite(o == x, 0, ite(q > k, q - 1, q))
                for x, q in enumerate(self.queue)}

    def _lock(self, p: ProcessBuilder, label: str, kernel: str, goto: str, effects: Effects,
              on_eintr: str | None, eintr_effects: Effects, newcomer_may_steal: bool,
              names: tuple[str, str, str]) -> None:
        o, me = self.owners.index_of(p), self.owners.enum_of(p)
        fast_fn, slow_fn, add_fn = names
        q = _at(tuple(self.queue), o)
        free = self.owner == self.owners.none
        no_waiters = _all(x == 0 for x in self.queue)
        newcomer_ok = free if newcomer_may_steal else free & no_waiters
        acq = (LockOp(self.name, "acquire", self.mode),)
        where = f"{self.name}: lock at {p.name}.{label}"
        p.step(label, f"{kernel} -> {fast_fn}", note="uncontended",
               guard=(q == 0) & newcomer_ok,
               effects=_merge(where, {self.owner: me}, effects), goto=goto, locks=acq)
        p.step(label, f"{kernel} -> {slow_fn}", note="woken head waiter",
               guard=(q == 1) & free,
               effects=_merge(where, {self.owner: me}, self._dequeue(o), effects), goto=goto,
               locks=acq)
        p.step(label, f"{kernel} -> {add_fn}",
               note="no fatal signal" if on_eintr else "queued",
               guard=(q == 0) & ~newcomer_ok, effects=self._enqueue(o), goto=label)
        if on_eintr is not None:
            p.step(label, f"{kernel} -> {slow_fn}: signal_pending_state, -EINTR",
                   note="fatal signal pending", guard=(q == 0) & ~newcomer_ok,
                   effects=eintr_effects, goto=on_eintr)

    def _unlock(self, p: ProcessBuilder, label: str, kernel: str, goto: str,
                effects: Effects) -> None:
        p.step(label, kernel, guard=self.held(p),
               effects=_merge(f"{self.name}: unlock", {self.owner: self.owners.none}, effects),
               goto=goto, locks=(LockOp(self.name, "release", self.mode),))


class Mutex(_Exclusive):
    """struct mutex (kernel/locking/mutex.c), e.g. vfio_iommu->lock; see model/locks.py."""

    kind = "mutex"

    def mutex_lock(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                   effects: Effects = None) -> None:
        self._lock(p, label, f"{kernel} -> mutex_lock", goto, effects, None, None, True,
                   ("__mutex_trylock_fast", "__mutex_lock_slowpath: __mutex_trylock",
                    "__mutex_lock_slowpath: __mutex_add_waiter"))

    def mutex_lock_killable(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                            on_eintr: str, effects: Effects = None,
                            eintr_effects: Effects = None) -> None:
        self._lock(p, label, f"{kernel} -> mutex_lock_killable", goto, effects, on_eintr,
                   eintr_effects, True,
                   ("__mutex_trylock_fast", "__mutex_lock_killable_slowpath: __mutex_trylock",
                    "__mutex_lock_killable_slowpath: __mutex_add_waiter"))

    def mutex_unlock(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                     effects: Effects = None) -> None:
        self._unlock(p, label, f"{kernel} -> mutex_unlock", goto, effects)


class SpinLock(_Exclusive):
    """spinlock_t as a FIFO queued spinlock (e.g. the pmd/pte page-table lock)."""

    kind = "spinlock"

    def spin_lock(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                  effects: Effects = None) -> None:
        self._lock(p, label, f"{kernel} -> spin_lock", goto, effects, None, None, False,
                   ("queued_spin_lock", "queued_spin_lock_slowpath: head of the MCS queue",
                    "queued_spin_lock_slowpath: join the MCS queue"))

    def spin_unlock(self, p: ProcessBuilder, label: str, *, kernel: str, goto: str,
                    effects: Effects = None) -> None:
        self._unlock(p, label, f"{kernel} -> spin_unlock", goto, effects)


def lock_properties(s: SpecBuilder) -> None:
    """Declare `no_lock_inversion` and `no_deadlock`, the properties every lock user gets."""
    s.lock_order("no_lock_inversion")
    s.deadlock_free("no_deadlock")


__all__ = ["Mutex", "Owners", "RwSem", "Signal", "SpinLock", "lock_properties"]
