"""The rw_semaphore twin against kernel/locking/rwsem.c (v5.16), case by case."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from model.locks import EINTR, WAIT, LockUsageError
from model.rwsem import (
    READ,
    WRITE,
    RwSemaphore,
    mmap_assert_locked,
    mmap_assert_write_locked,
    mmap_lock_is_contended,
    mmap_read_lock,
    mmap_read_unlock,
    mmap_write_lock_killable,
    mmap_write_unlock,
)


def test_readers_share_the_lock() -> None:
    sem = RwSemaphore()
    assert sem.down_read("A") and sem.down_read("B")
    assert sem.holders() == {"A": READ, "B": READ}
    assert not sem.is_contended()


def test_writer_excludes_readers_and_writers() -> None:
    sem = RwSemaphore()
    assert sem.down_write("W")
    assert not sem.down_read("R")
    assert not sem.down_write("V")
    assert sem.holders() == {"W": WRITE}
    assert sem.waiters() == [("R", READ), ("V", WRITE)]
    assert sem.wait_for("R") == {"W"}
    assert sem.wait_for("V") == {"W", "R"}


def test_waiting_writer_blocks_later_readers() -> None:
    """rwsem_read_trylock fails on RWSEM_FLAG_WAITERS; the slowpath queues (rcnt > 1)."""
    sem = RwSemaphore()
    assert sem.down_read("A")
    assert sem.down_write_killable("W") == WAIT
    assert not sem.down_read("B")
    assert sem.wait_for("B") == {"W"}
    assert not sem.down_read_trylock("C")


def test_recursive_read_behind_waiting_writer_waits_on_itself() -> None:
    sem = RwSemaphore()
    assert sem.down_read("A")
    assert not sem.down_write("W")
    assert not sem.down_read("A")
    # A waits for W, W waits for A's first read hold: a wait-for cycle.
    assert sem.wait_for("A") == {"W"} and sem.wait_for("W") == {"A"}


def test_recursive_read_without_waiter_is_fine() -> None:
    sem = RwSemaphore()
    assert sem.down_read("A") and sem.down_read("A")
    sem.up_read("A")
    assert sem.holders() == {"A": READ}


def test_read_to_write_upgrade_waits_on_itself() -> None:
    sem = RwSemaphore()
    assert sem.down_read("A")
    assert sem.down_write_killable("A") == WAIT
    assert sem.wait_for("A") == {"A"}


def test_killable_write_failure_leaves_the_lock_untouched() -> None:
    sem = RwSemaphore()
    assert sem.down_read("A")
    assert sem.down_write_killable("W") == WAIT
    before = sem.holders()
    assert sem.down_write_killable("W", fatal_signal=True) == -EINTR
    assert sem.holders() == before
    assert sem.waiters() == []
    assert sem.stats.write_acquisitions == 0 and sem.stats.interrupted == 1


def test_killed_writer_wakes_readers_queued_behind_it() -> None:
    """out_nolock: rwsem_mark_wake(RWSEM_WAKE_ANY) for the new head of the queue."""
    sem = RwSemaphore()
    assert sem.down_read("A")
    assert sem.down_write_killable("W") == WAIT
    assert not sem.down_read("B")
    assert sem.down_write_killable("W", fatal_signal=True) == -EINTR
    assert sem.holders() == {"A": READ, "B": READ}
    assert sem.down_read("B")


def test_killable_takes_a_free_lock_despite_a_pending_signal() -> None:
    """The fast path does not look at signals."""
    sem = RwSemaphore()
    assert sem.down_write_killable("W", fatal_signal=True) == 0
    sem.up_write("W")
    assert sem.down_read_killable("R", fatal_signal=True) == 0


def test_fresh_killable_writer_with_signal_never_queues() -> None:
    sem = RwSemaphore()
    assert sem.down_read("A")
    assert sem.down_write_killable("W", fatal_signal=True) == -EINTR
    assert sem.waiters() == [] and sem.holders() == {"A": READ}


def test_granted_reader_returns_zero_even_if_killed() -> None:
    """The wait loop checks waiter.task (granted) before signal_pending_state."""
    sem = RwSemaphore()
    assert sem.down_write("W")
    assert sem.down_read_killable("R") == WAIT
    sem.up_write("W")
    assert sem.down_read_killable("R", fatal_signal=True) == 0
    assert sem.holders() == {"R": READ}


def test_killed_reader_leaves_the_queue() -> None:
    sem = RwSemaphore()
    assert sem.down_write("W")
    assert sem.down_read_killable("R") == WAIT
    assert sem.down_read_killable("R", fatal_signal=True) == -EINTR
    assert sem.waiters() == [] and sem.holders() == {"W": WRITE}


def test_up_write_grants_all_queued_readers_phase_fair() -> None:
    """rwsem_mark_wake grants every queued reader, even those behind a writer."""
    sem = RwSemaphore()
    assert sem.down_write("W1")
    assert not sem.down_read("R1")
    assert not sem.down_write("W2")
    assert not sem.down_read("R2")
    sem.up_write("W1")
    assert sem.holders() == {"R1": READ, "R2": READ}
    assert sem.waiters() == [("W2", WRITE)]
    assert sem.down_read("R2") and sem.down_read("R1")
    assert not sem.down_write("W2")


def test_head_writer_gets_the_lock_when_readers_leave() -> None:
    sem = RwSemaphore()
    assert sem.down_read("A")
    assert not sem.down_write("W1")
    assert not sem.down_write("W2")
    sem.up_read("A")
    assert not sem.down_write("W2"), "only the head writer is woken"
    assert sem.down_write("W1")
    assert sem.holders() == {"W1": WRITE}


def test_reader_steals_a_free_lock_past_the_woken_writer() -> None:
    """Reader optimistic lock stealing: not writer owned and rcnt == 1."""
    sem = RwSemaphore()
    assert sem.down_read("A")
    assert not sem.down_write("W")
    sem.up_read("A")
    assert sem.down_read("B")
    assert sem.stats.read_steals == 1
    assert not sem.down_write("W")


def test_new_writer_steals_a_free_lock_by_spinning() -> None:
    """rwsem_optimistic_spin -> rwsem_try_write_lock_unqueued ignores waiters."""
    sem = RwSemaphore()
    assert sem.down_read("A")
    assert not sem.down_write("W1")
    sem.up_read("A")
    assert sem.down_write("W2")
    assert not sem.down_write("W1")


def test_write_trylock_needs_no_waiters() -> None:
    sem = RwSemaphore()
    assert sem.down_read("A")
    assert not sem.down_write("W")
    sem.up_read("A")
    assert not sem.down_write_trylock("T"), "count has RWSEM_FLAG_WAITERS"
    assert sem.down_write("W")


def test_downgrade_wakes_queued_readers() -> None:
    sem = RwSemaphore()
    assert sem.down_write("W")
    assert not sem.down_read("R")
    sem.downgrade_write("W")
    assert sem.holders() == {"W": READ, "R": READ}


@pytest.mark.parametrize(
    "misuse",
    [
        lambda s: s.up_read("X"),
        lambda s: s.up_write("X"),
        lambda s: s.downgrade_write("X"),
    ],
)
def test_unlocking_a_lock_you_do_not_hold_warns(misuse: Callable[[RwSemaphore], None]) -> None:
    sem = RwSemaphore()
    assert sem.down_read("A")
    with pytest.raises(LockUsageError):
        misuse(sem)


def test_contention_metrics() -> None:
    sem = RwSemaphore()
    assert sem.down_write("W")
    for _ in range(3):
        assert not sem.down_read("R")
    sem.up_write("W")
    assert sem.down_read("R")
    assert sem.stats.as_dict() == {
        "read_acquisitions": 1,
        "write_acquisitions": 1,
        "read_steals": 0,
        "reader_wait_steps": 3,
        "writer_wait_steps": 0,
        "interrupted": 0,
    }


@dataclass
class _Mm:
    mmap_lock: RwSemaphore = field(default_factory=RwSemaphore)


def test_mmap_lock_wrappers() -> None:
    mm = _Mm()
    assert mmap_read_lock(mm, "helper")
    mmap_assert_locked(mm, "helper")
    with pytest.raises(LockUsageError):
        mmap_assert_write_locked(mm, "helper")
    assert mmap_write_lock_killable(mm, "ioctl") == WAIT
    assert mmap_lock_is_contended(mm)
    mmap_read_unlock(mm, "helper")
    assert mmap_write_lock_killable(mm, "ioctl") == 0
    mmap_assert_write_locked(mm, "ioctl")
    mmap_write_unlock(mm, "ioctl")
    assert not mm.mmap_lock.is_locked()
