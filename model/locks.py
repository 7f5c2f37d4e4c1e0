"""Twins of the kernel's sleeping mutex and spinlock for the deterministic scheduler.

Threads in ``model/`` are generators run by a deterministic scheduler; a thread that would
sleep (or spin) in the kernel instead *polls*: it calls the lock operation, and if the
operation reports that it must wait, it yields and calls the same operation again later.
Every lock twin therefore has non-blocking operations:

- ``Mutex.mutex_lock(owner) -> bool``: True once ``owner`` holds the mutex; False means
  "queued, yield and call again" (kernel/locking/mutex.c: mutex_lock).
- ``Mutex.mutex_lock_killable(owner, fatal_signal=False) -> int``: ``0`` (acquired),
  ``-EINTR`` (a fatal signal was pending while the caller had to wait: the caller is taken
  off the wait list and the mutex is untouched), or ``WAIT`` (queued, call again).
- ``Mutex.mutex_trylock(owner) -> bool``, ``Mutex.mutex_unlock(owner)``.
- ``SpinLock.spin_lock(owner) -> bool`` (False: spinning, call again), ``spin_unlock(owner)``,
  ``spin_trylock(owner) -> bool``.

Owners are any hashable thread ids. ``holders()`` maps each holder to its mode,
``waiters()`` lists queued owners in queue order and ``wait_for(owner)`` names the owners a
waiting ``owner`` is blocked behind (edges of a wait-for graph: a cycle is a deadlock).
Misuse the kernel would WARN about (unlocking a lock you do not hold) raises
``LockUsageError``. ``stats`` counts acquisitions and wait steps (failed polls).

Abstractions (sound for lock-order and deadlock properties): each call is one atomic step;
optimistic spinning and the mutex HANDOFF flag are not modelled separately. Spinning only
lets a newcomer take a *free* mutex ahead of a sleeping waiter, which the twin allows
anyway (a free mutex goes to whichever caller runs first); HANDOFF only forbids such
steals, so omitting it over-approximates the interleavings. Sleeping waiters are woken
only at the head of the queue (__mutex_unlock_slowpath wakes the first waiter), so only
the head waiter's poll can succeed.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Final

Owner = Hashable

EINTR: Final[int] = 4
"""errno EINTR; killable lock operations return ``-EINTR`` like the kernel."""

WAIT: Final[int] = 1
"""Returned by killable operations when the caller is queued and must poll again.

Positive, so it can never be confused with a kernel return value (0 or -errno)."""

EXCLUSIVE: Final[str] = "exclusive"
"""Mode name used by ``holders()`` for mutexes, spinlocks and rwsem writers."""


class LockUsageError(RuntimeError):
    """A lock operation the kernel would WARN about (DEBUG_MUTEXES, DEBUG_RWSEMS, spin_bug)."""


@dataclass
class LockStats:
    """Contention counters of one lock, for the performance model."""

    acquisitions: int = 0
    contended_acquisitions: int = 0
    wait_steps: int = 0
    interrupted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "acquisitions": self.acquisitions,
            "contended_acquisitions": self.contended_acquisitions,
            "wait_steps": self.wait_steps,
            "interrupted": self.interrupted,
        }


@dataclass
class Mutex:
    """struct mutex (kernel/locking/mutex.c), e.g. vfio_iommu->lock."""

    name: str = "mutex"
    owner: Owner | None = None
    wait_list: list[Owner] = field(default_factory=list)
    stats: LockStats = field(default_factory=LockStats)

    def mutex_lock_killable(self, owner: Owner, fatal_signal: bool = False) -> int:
        """__mutex_lock_common: fast path, then the wait loop (trylock, then signal check)."""
        queued = owner in self.wait_list
        if self.owner is None and (not queued or self.wait_list[0] == owner):
            # __mutex_trylock_fast / __mutex_trylock: a free mutex goes to the caller.
            if queued:
                self.wait_list.remove(owner)
                self.stats.contended_acquisitions += 1
            self.owner = owner
            self.stats.acquisitions += 1
            return 0
        if fatal_signal:
            # signal_pending_state() -> err: __mutex_remove_waiter, lock untouched.
            if queued:
                self.wait_list.remove(owner)
            self.stats.interrupted += 1
            return -EINTR
        if not queued:
            self.wait_list.append(owner)  # __mutex_add_waiter: FIFO
        self.stats.wait_steps += 1
        return WAIT

    def mutex_lock(self, owner: Owner) -> bool:
        """mutex_lock: TASK_UNINTERRUPTIBLE, so no signal can end the wait."""
        return self.mutex_lock_killable(owner, fatal_signal=False) == 0

    def mutex_trylock(self, owner: Owner) -> bool:
        """mutex_trylock -> __mutex_trylock: takes a free mutex even past waiters, never queues."""
        if self.owner is not None:
            return False
        self.owner = owner
        self.stats.acquisitions += 1
        return True

    def mutex_unlock(self, owner: Owner) -> None:
        """mutex_unlock: release; the head waiter (if any) is woken and polls next."""
        if self.owner != owner:
            raise LockUsageError(f"{self.name}: mutex_unlock by {owner!r}, owner {self.owner!r}")
        self.owner = None

    def is_locked(self) -> bool:
        return self.owner is not None

    def holders(self) -> dict[Owner, str]:
        return {} if self.owner is None else {self.owner: EXCLUSIVE}

    def waiters(self) -> list[tuple[Owner, str]]:
        return [(w, EXCLUSIVE) for w in self.wait_list]

    def wait_for(self, owner: Owner) -> frozenset[Owner]:
        """Owners a queued ``owner`` waits behind: the holder and the waiters ahead of it."""
        if owner not in self.wait_list:
            return frozenset()
        ahead = self.wait_list[: self.wait_list.index(owner)]
        holder = set() if self.owner is None else {self.owner}
        return frozenset(holder | set(ahead))


@dataclass
class SpinLock:
    """spinlock_t as a queued spinlock (kernel/locking/qspinlock.c), e.g. the pmd/pte lock.

    Waiters spin in an MCS queue, so the lock is FIFO: a newcomer cannot overtake queued
    spinners (queued_spin_lock's fast path needs the whole lock word to be 0, and the queue
    tail is part of it).
    """

    name: str = "ptl"
    owner: Owner | None = None
    spinners: list[Owner] = field(default_factory=list)
    stats: LockStats = field(default_factory=LockStats)

    def spin_lock(self, owner: Owner) -> bool:
        """queued_spin_lock: True once held; False means still spinning (poll again)."""
        queued = owner in self.spinners
        if self.owner is None and (self.spinners[:1] == [owner] or not self.spinners):
            if queued:
                self.spinners.remove(owner)
                self.stats.contended_acquisitions += 1
            self.owner = owner
            self.stats.acquisitions += 1
            return True
        if not queued:
            self.spinners.append(owner)
        self.stats.wait_steps += 1
        return False

    def spin_trylock(self, owner: Owner) -> bool:
        """queued_spin_trylock: only an entirely free lock word can be taken."""
        if self.owner is not None or self.spinners:
            return False
        self.owner = owner
        self.stats.acquisitions += 1
        return True

    def spin_unlock(self, owner: Owner) -> None:
        if self.owner != owner:
            raise LockUsageError(f"{self.name}: spin_unlock by {owner!r}, owner {self.owner!r}")
        self.owner = None

    def is_locked(self) -> bool:
        return self.owner is not None

    def holders(self) -> dict[Owner, str]:
        return {} if self.owner is None else {self.owner: EXCLUSIVE}

    def waiters(self) -> list[tuple[Owner, str]]:
        return [(w, EXCLUSIVE) for w in self.spinners]

    def wait_for(self, owner: Owner) -> frozenset[Owner]:
        if owner not in self.spinners:
            return frozenset()
        ahead = self.spinners[: self.spinners.index(owner)]
        holder = set() if self.owner is None else {self.owner}
        return frozenset(holder | set(ahead))
