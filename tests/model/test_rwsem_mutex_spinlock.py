"""The mutex and spinlock twins of model/locks.py (the rwsem component's siblings)."""

from __future__ import annotations

import pytest

from model.locks import EINTR, WAIT, LockUsageError, Mutex, SpinLock


def test_mutex_excludes_and_queues_fifo() -> None:
    m = Mutex("iommu->lock")
    assert m.mutex_lock("A")
    assert not m.mutex_lock("B") and not m.mutex_lock("C")
    assert m.waiters() == [("B", "exclusive"), ("C", "exclusive")]
    assert m.wait_for("C") == {"A", "B"}
    m.mutex_unlock("A")
    assert not m.mutex_lock("C"), "only the head waiter is woken"
    assert m.mutex_lock("B")


def test_mutex_recursion_waits_on_itself() -> None:
    m = Mutex()
    assert m.mutex_lock("A")
    assert not m.mutex_lock("A")
    assert m.wait_for("A") == {"A"}


def test_mutex_killable_failure_leaves_lock_untouched() -> None:
    m = Mutex()
    assert m.mutex_lock("A")
    assert m.mutex_lock_killable("B") == WAIT
    assert m.mutex_lock_killable("B", fatal_signal=True) == -EINTR
    assert m.holders() == {"A": "exclusive"} and m.waiters() == []
    assert m.stats.interrupted == 1


def test_mutex_newcomer_may_take_a_free_mutex() -> None:
    m = Mutex()
    assert m.mutex_lock("A")
    assert not m.mutex_lock("B")
    m.mutex_unlock("A")
    assert m.mutex_trylock("C")
    assert not m.mutex_lock("B")


def test_spinlock_is_fifo() -> None:
    s = SpinLock("pmd lock")
    assert s.spin_lock("A")
    assert not s.spin_lock("B")
    s.spin_unlock("A")
    assert not s.spin_lock("C"), "a newcomer queues behind spinners"
    assert not s.spin_trylock("C")
    assert s.spin_lock("B")
    assert s.wait_for("C") == {"B"}


@pytest.mark.parametrize("lock", [Mutex(), SpinLock()])
def test_unlock_by_non_owner_warns(lock: Mutex | SpinLock) -> None:
    unlock = lock.mutex_unlock if isinstance(lock, Mutex) else lock.spin_unlock
    with pytest.raises(LockUsageError):
        unlock("nobody")
