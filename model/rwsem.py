"""Twin of the kernel's rw_semaphore (kernel/locking/rwsem.c, v5.16) and of mmap_lock.h.

API (all operations are non-blocking; a thread generator that must wait yields and calls
the *same* operation again, which is how a sleeping task is modelled):

    sem = RwSemaphore("mmap_lock")
    sem.down_read(owner) -> bool              True: read lock held. False: queued, poll again.
    sem.down_read_killable(owner, fatal_signal=False) -> int
    sem.down_write(owner) -> bool             True: write lock held. False: queued, poll again.
    sem.down_write_killable(owner, fatal_signal=False) -> int
    sem.down_read_trylock(owner) -> bool      never queues
    sem.down_write_trylock(owner) -> bool     never queues
    sem.up_read(owner), sem.up_write(owner), sem.downgrade_write(owner)

Killable operations return ``0`` (acquired), ``-EINTR`` or ``WAIT`` (from model.locks).
``fatal_signal`` says whether a fatal signal is pending at this poll. As in the kernel it
only matters when the caller cannot get the lock: a free lock is taken even with a signal
pending, a waiting reader already granted the lock returns 0, and -EINTR takes the caller
off the wait list and leaves the lock's holders untouched (a killed writer wakes whoever is
now at the head of the queue, see rwsem_down_write_slowpath's out_nolock).

Polling loop, e.g. vfio_lock_acct -> __account_locked_vm's caller in a model thread::

    while (ret := mmap_write_lock_killable(mm, tid, fatal_signal=killed)) == WAIT:
        yield
    if ret == -EINTR:
        return ret

Waiting and fairness, as in the kernel:

- A queued writer blocks later readers: rwsem_read_trylock fails once RWSEM_FLAG_WAITERS is
  set, and rwsem_down_read_slowpath queues a reader when the lock is owned by readers
  (rcnt > 1) or by a writer. So a *recursive* read while a writer waits deadlocks.
- Reader optimistic lock stealing: a reader arriving when nobody holds the lock takes it
  even past queued waiters (the woken head writer has not run yet), then wakes the queued
  readers (RWSEM_WAKE_READ_OWNED).
- Writers steal a free lock on arrival (optimistic spinning: rwsem_try_write_lock_unqueued);
  otherwise they queue FIFO and only the head writer (the one rwsem_mark_wake woke) retries.
- Releasing the lock grants it to *all* queued readers when the head waiter is a reader
  (phase-fair rwsem_mark_wake), or lets the head writer retry.

Reports and metrics: ``holders()`` maps owner -> "read"/"write", ``waiters()`` lists
(owner, mode) in queue order, ``wait_for(owner)`` names the owners a waiter is blocked
behind (wait-for graph edges; a waiter blocked behind itself is a self-deadlock).
``stats`` (RwsemStats) counts acquisitions, reader optimistic steals, and wait steps: every
failed poll of a reader (``reader_wait_steps``; a reader only ever waits behind a writer,
holding or queued) and of a writer. ``snapshot()`` is a canonical hashable state.

Abstractions (why they are sound for the lock-order and deadlock properties): each call is
one atomic step, so the count's transient reader bias between the fast path and the
slowpath is not visible; optimistic spinning is "steal if free, else queue" (a spinner
that gives up and queues at once is a real kernel behaviour, longer spinning is the same
as this caller being scheduled later); the time-based HANDOFF bit is not modelled - it
only forbids steals, so the twin's interleavings over-approximate the kernel's; the
MAX_READERS_WAKEUP (256) cap on one wakeup is never reached by a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol

from model.locks import EINTR, WAIT, LockUsageError, Owner

READ: Final[str] = "read"
WRITE: Final[str] = "write"

# enum rwsem_wake_type
WAKE_ANY: Final[str] = "RWSEM_WAKE_ANY"
WAKE_READERS: Final[str] = "RWSEM_WAKE_READERS"
WAKE_READ_OWNED: Final[str] = "RWSEM_WAKE_READ_OWNED"

__all__ = [
    "EINTR",
    "READ",
    "WAIT",
    "WRITE",
    "LockUsageError",
    "MmStructLike",
    "RwSemaphore",
    "RwsemStats",
    "RwsemWaiter",
    "mmap_assert_locked",
    "mmap_assert_write_locked",
    "mmap_lock_is_contended",
    "mmap_read_lock",
    "mmap_read_lock_killable",
    "mmap_read_trylock",
    "mmap_read_unlock",
    "mmap_write_downgrade",
    "mmap_write_lock",
    "mmap_write_lock_killable",
    "mmap_write_trylock",
    "mmap_write_unlock",
]


@dataclass(frozen=True)
class RwsemWaiter:
    """struct rwsem_waiter: who waits, for which side (RWSEM_WAITING_FOR_READ/_WRITE)."""

    owner: Owner
    mode: str


@dataclass
class RwsemStats:
    """Contention counters (issue 4, point 5); the performance model reads them."""

    read_acquisitions: int = 0
    write_acquisitions: int = 0
    read_steals: int = 0
    reader_wait_steps: int = 0
    writer_wait_steps: int = 0
    interrupted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "read_acquisitions": self.read_acquisitions,
            "write_acquisitions": self.write_acquisitions,
            "read_steals": self.read_steals,
            "reader_wait_steps": self.reader_wait_steps,
            "writer_wait_steps": self.writer_wait_steps,
            "interrupted": self.interrupted,
        }


@dataclass
class RwSemaphore:
    """struct rw_semaphore with its holders made explicit (the kernel keeps only a count).

    ``readers`` maps each reader to its number of read holds (recursive reads are legal
    when no writer waits); ``granted`` holds readers that rwsem_mark_wake already made
    holders while they sleep, whose down_read() has not returned yet.
    """

    name: str = "mmap_lock"
    readers: dict[Owner, int] = field(default_factory=dict)
    writer: Owner | None = None
    wait_list: list[RwsemWaiter] = field(default_factory=list)
    granted: set[Owner] = field(default_factory=set)
    stats: RwsemStats = field(default_factory=RwsemStats)

    # -- read side -------------------------------------------------------------------

    def down_read_killable(self, owner: Owner, fatal_signal: bool = False) -> int:
        """__down_read_common: rwsem_read_trylock, then rwsem_down_read_slowpath."""
        if owner in self.granted:
            # Woken by rwsem_mark_wake with waiter.task == NULL: the lock is ours.
            self.granted.remove(owner)
            return 0
        waiter = self._queued(owner, READ)
        if waiter is None:
            if self.writer is None and not self.wait_list:
                # rwsem_read_trylock: no RWSEM_WRITER_LOCKED, RWSEM_FLAG_WAITERS (or HANDOFF).
                self._add_reader(owner)
                return 0
            if self.writer is None and not self.readers:
                # Reader optimistic lock stealing: not writer owned, rcnt == 1.
                self._add_reader(owner)
                self.stats.read_steals += 1
                self._mark_wake(WAKE_READ_OWNED)
                return 0
            # queue: writer owned, or reader owned with rcnt > 1 (this also catches a
            # recursive read by a holder). The lock is held, so neither wakeup condition
            # after rwsem_add_waiter applies.
            waiter = RwsemWaiter(owner, READ)
            self.wait_list.append(waiter)
        if fatal_signal:
            # out_nolock: rwsem_del_waiter; the v5.16 reader path wakes nobody.
            self.wait_list.remove(waiter)
            self.stats.interrupted += 1
            return -EINTR
        self.stats.reader_wait_steps += 1
        return WAIT

    def down_read(self, owner: Owner) -> bool:
        """down_read: TASK_UNINTERRUPTIBLE, so only the lock ends the wait."""
        return self.down_read_killable(owner, fatal_signal=False) == 0

    def down_read_trylock(self, owner: Owner) -> bool:
        """__down_read_trylock: fails on RWSEM_READ_FAILED_MASK (writer or waiters)."""
        if self.writer is not None or self.wait_list:
            return False
        self._add_reader(owner)
        return True

    def up_read(self, owner: Owner) -> None:
        """__up_read: the last reader out wakes the queue (rwsem_wake)."""
        if self.readers.get(owner, 0) == 0 or owner in self.granted:
            raise LockUsageError(f"{self.name}: up_read by {owner!r}, not a read holder")
        self.readers[owner] -= 1
        if self.readers[owner] == 0:
            del self.readers[owner]
        if not self.readers and self.writer is None:
            self._mark_wake(WAKE_ANY)

    # -- write side ------------------------------------------------------------------

    def down_write_killable(self, owner: Owner, fatal_signal: bool = False) -> int:
        """__down_write_common: rwsem_write_trylock, then rwsem_down_write_slowpath."""
        waiter = self._queued(owner, WRITE)
        if waiter is None:
            if self._is_free():
                # rwsem_write_trylock, or rwsem_optimistic_spin's unqueued trylock.
                self._set_writer(owner)
                return 0
            first = not self.wait_list
            waiter = RwsemWaiter(owner, WRITE)
            self.wait_list.append(waiter)
            if not first and self.writer is None:
                # Reader owned: wake read waiters queued ahead (RWSEM_WAKE_READERS).
                self._mark_wake(WAKE_READERS)
        elif self.wait_list[0] == waiter and self._is_free():
            # The woken head writer: rwsem_try_write_lock succeeds on a free lock.
            self.wait_list.remove(waiter)
            self._set_writer(owner)
            return 0
        if fatal_signal:
            # out_nolock: take us off the list, wake the new head; holders untouched.
            self.wait_list.remove(waiter)
            self._mark_wake(WAKE_ANY)
            self.stats.interrupted += 1
            return -EINTR
        self.stats.writer_wait_steps += 1
        return WAIT

    def down_write(self, owner: Owner) -> bool:
        """down_write: TASK_UNINTERRUPTIBLE."""
        return self.down_write_killable(owner, fatal_signal=False) == 0

    def down_write_trylock(self, owner: Owner) -> bool:
        """rwsem_write_trylock: needs count == 0, i.e. no holders and no waiters."""
        if not self._is_free() or self.wait_list:
            return False
        self._set_writer(owner)
        return True

    def up_write(self, owner: Owner) -> None:
        """__up_write: clear the owner, wake the queue if RWSEM_FLAG_WAITERS."""
        if self.writer != owner:
            raise LockUsageError(f"{self.name}: up_write by {owner!r}, writer {self.writer!r}")
        self.writer = None
        self._mark_wake(WAKE_ANY)

    def downgrade_write(self, owner: Owner) -> None:
        """__downgrade_write: become a reader, wake queued readers (RWSEM_WAKE_READ_OWNED)."""
        if self.writer != owner:
            raise LockUsageError(f"{self.name}: downgrade by {owner!r}, writer {self.writer!r}")
        self.writer = None
        self.readers[owner] = self.readers.get(owner, 0) + 1
        self._mark_wake(WAKE_READ_OWNED)

    # -- state for reports -----------------------------------------------------------

    def is_locked(self) -> bool:
        """rwsem_is_locked."""
        return not self._is_free()

    def is_contended(self) -> bool:
        """rwsem_is_contended: somebody is on the wait list."""
        return bool(self.wait_list)

    def holders(self) -> dict[Owner, str]:
        """Owner -> "read"/"write" for every current holder (granted readers included)."""
        held: dict[Owner, str] = dict.fromkeys(self.readers, READ)
        if self.writer is not None:
            held[self.writer] = WRITE
        return held

    def waiters(self) -> list[tuple[Owner, str]]:
        return [(w.owner, w.mode) for w in self.wait_list]

    def wait_for(self, owner: Owner) -> frozenset[Owner]:
        """Owners that must move before the queued ``owner`` can get the lock.

        A waiting reader is blocked by the writer holder and by writers queued ahead of
        it (readers ahead are granted together with it). A waiting writer is blocked by
        every holder and every waiter ahead of it. Empty if ``owner`` does not wait.
        """
        waiter = next((w for w in self.wait_list if w.owner == owner), None)
        if waiter is None:
            return frozenset()
        ahead = self.wait_list[: self.wait_list.index(waiter)]
        blockers: set[Owner] = set() if self.writer is None else {self.writer}
        if waiter.mode == READ:
            blockers |= {w.owner for w in ahead if w.mode == WRITE}
        else:
            blockers |= set(self.readers) | {w.owner for w in ahead}
        return frozenset(blockers)

    def snapshot(self) -> tuple[object, ...]:
        """Canonical hashable state: (writer, readers, wait list, granted)."""
        return (
            self.writer,
            tuple(sorted(self.readers.items(), key=repr)),
            tuple((w.owner, w.mode) for w in self.wait_list),
            tuple(sorted(self.granted, key=repr)),
        )

    # -- internals -------------------------------------------------------------------

    def _is_free(self) -> bool:
        return self.writer is None and not self.readers

    def _queued(self, owner: Owner, mode: str) -> RwsemWaiter | None:
        waiter = RwsemWaiter(owner, mode)
        return waiter if waiter in self.wait_list else None

    def _add_reader(self, owner: Owner) -> None:
        self.readers[owner] = self.readers.get(owner, 0) + 1
        self.stats.read_acquisitions += 1

    def _set_writer(self, owner: Owner) -> None:
        self.writer = owner
        self.stats.write_acquisitions += 1

    def _mark_wake(self, wake_type: str) -> None:
        """rwsem_mark_wake: grant the read lock to every queued reader if one is first.

        A writer at the head is only woken (it retries on its next poll), so nothing
        changes for it. Unless the waker holds the lock for read, a writer holding the
        lock (it stole it) cancels the reader grant.
        """
        if not self.wait_list or self.wait_list[0].mode == WRITE:
            return
        if wake_type != WAKE_READ_OWNED and self.writer is not None:
            return
        for waiter in [w for w in self.wait_list if w.mode == READ]:
            self.wait_list.remove(waiter)
            self._add_reader(waiter.owner)
            self.granted.add(waiter.owner)


class MmStructLike(Protocol):
    """Anything with an ``mmap_lock`` rw_semaphore, like struct mm_struct."""

    mmap_lock: RwSemaphore


def mmap_read_lock(mm: MmStructLike, owner: Owner) -> bool:
    """include/linux/mmap_lock.h: mmap_read_lock -> down_read."""
    return mm.mmap_lock.down_read(owner)


def mmap_read_lock_killable(mm: MmStructLike, owner: Owner, fatal_signal: bool = False) -> int:
    """mmap_read_lock_killable -> down_read_killable."""
    return mm.mmap_lock.down_read_killable(owner, fatal_signal)


def mmap_read_trylock(mm: MmStructLike, owner: Owner) -> bool:
    """mmap_read_trylock -> down_read_trylock."""
    return mm.mmap_lock.down_read_trylock(owner)


def mmap_read_unlock(mm: MmStructLike, owner: Owner) -> None:
    """mmap_read_unlock -> up_read."""
    mm.mmap_lock.up_read(owner)


def mmap_write_lock(mm: MmStructLike, owner: Owner) -> bool:
    """mmap_write_lock -> down_write."""
    return mm.mmap_lock.down_write(owner)


def mmap_write_lock_killable(mm: MmStructLike, owner: Owner, fatal_signal: bool = False) -> int:
    """mmap_write_lock_killable -> down_write_killable (used by __account_locked_vm's callers)."""
    return mm.mmap_lock.down_write_killable(owner, fatal_signal)


def mmap_write_trylock(mm: MmStructLike, owner: Owner) -> bool:
    """mmap_write_trylock -> down_write_trylock."""
    return mm.mmap_lock.down_write_trylock(owner)


def mmap_write_unlock(mm: MmStructLike, owner: Owner) -> None:
    """mmap_write_unlock -> up_write."""
    mm.mmap_lock.up_write(owner)


def mmap_write_downgrade(mm: MmStructLike, owner: Owner) -> None:
    """mmap_write_downgrade -> downgrade_write."""
    mm.mmap_lock.downgrade_write(owner)


def mmap_lock_is_contended(mm: MmStructLike) -> bool:
    """mmap_lock_is_contended -> rwsem_is_contended."""
    return mm.mmap_lock.is_contended()


def mmap_assert_locked(mm: MmStructLike, owner: Owner) -> None:
    """mmap_assert_locked: lockdep_assert_held, i.e. ``owner`` holds it in either mode."""
    if owner not in mm.mmap_lock.holders():
        raise LockUsageError(f"mmap_assert_locked: {owner!r} does not hold mmap_lock")


def mmap_assert_write_locked(mm: MmStructLike, owner: Owner) -> None:
    """mmap_assert_write_locked: lockdep_assert_held_write."""
    if mm.mmap_lock.writer != owner:
        raise LockUsageError(f"mmap_assert_write_locked: {owner!r} is not the writer")
