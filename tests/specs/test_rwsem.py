"""The spec rw_semaphore component against kernel/locking/rwsem.c (v5.16), case by case.

Every operation runs on the spec component and on the model/ twin (RwPair asserts that
they agree after each step); the assertions here state what the kernel does.
"""

from __future__ import annotations

from model.locks import EINTR, WAIT
from tests.specs.test_rwsem_harness import RwPair

A, B, C = "a[0]", "b[0]", "b[1]"


def test_readers_share() -> None:
    h = RwPair()
    assert h.op(A, "down_read") is True
    assert h.op(B, "down_read") is True
    assert h.spec_value("sem_readers", A) == 1 and h.spec_value("sem_readers", B) == 1


def test_reader_blocked_behind_waiting_writer() -> None:
    """rwsem_read_trylock fails on RWSEM_FLAG_WAITERS; the slowpath queues (rcnt > 1)."""
    h = RwPair()
    assert h.op(A, "down_read") is True
    assert h.op(B, "down_write_killable") == WAIT
    assert h.op(C, "down_read") is False
    assert h.spec_value("sem_queue", B) == 1 and h.spec_value("sem_queue", C) == 2


def test_recursive_read_behind_waiting_writer_blocks() -> None:
    h = RwPair()
    assert h.op(A, "down_read") is True
    assert h.op(B, "down_write") is False
    assert h.op(A, "down_read") is False
    assert h.op(A, "down_read") is False, "still waiting: nothing will wake it"


def test_killable_failure_leaves_the_lock_untouched() -> None:
    h = RwPair()
    assert h.op(A, "down_read") is True
    assert h.op(B, "down_write_killable", signal=True) == -EINTR
    assert h.spec_value("sem_writer") == "none"
    assert h.spec_value("sem_readers", A) == 1 and h.spec_value("sem_queue", B) == 0


def test_killed_queued_writer_wakes_readers_behind_it() -> None:
    h = RwPair()
    assert h.op(A, "down_read") is True
    assert h.op(B, "down_write_killable") == WAIT
    assert h.op(C, "down_read") is False
    assert h.op(B, "down_write_killable", signal=True) == -EINTR
    assert h.spec_value("sem_granted", C) is True
    assert h.op(C, "down_read") is True


def test_free_lock_is_taken_despite_a_fatal_signal() -> None:
    h = RwPair()
    assert h.op(A, "down_write_killable", signal=True) == 0
    h.op(A, "up_write")
    assert h.op(B, "down_read_killable", signal=True) == 0


def test_up_write_grants_every_queued_reader() -> None:
    """Phase-fair rwsem_mark_wake: readers behind a queued writer are granted too."""
    h = RwPair()
    assert h.op(A, "down_write") is True
    assert h.op(B, "down_read") is False
    assert h.op(C, "down_write") is False
    h.op(A, "up_write")
    assert h.op(B, "down_read") is True
    assert h.op(C, "down_write") is False
    h.op(B, "up_read")
    assert h.op(C, "down_write") is True


def test_only_the_head_writer_retries() -> None:
    h = RwPair()
    assert h.op(A, "down_read") is True
    assert h.op(B, "down_write") is False
    assert h.op(C, "down_write") is False
    h.op(A, "up_read")
    assert h.op(C, "down_write") is False
    assert h.op(B, "down_write") is True


def test_reader_steals_a_free_lock_from_the_woken_writer() -> None:
    h = RwPair()
    assert h.op(A, "down_read") is True
    assert h.op(B, "down_write") is False
    h.op(A, "up_read")
    assert h.op(C, "down_read") is True
    assert h.op(B, "down_write") is False


def test_read_to_write_upgrade_never_proceeds() -> None:
    h = RwPair()
    assert h.op(A, "down_read") is True
    assert h.op(A, "down_write_killable") == WAIT
    assert h.op(A, "down_write_killable") == WAIT


def test_trylocks_never_queue() -> None:
    h = RwPair()
    assert h.op(A, "down_read") is True
    assert h.op(B, "down_write_trylock") is False
    assert h.op(B, "down_write") is False
    assert h.op(C, "down_read_trylock") is False
    assert h.spec_value("sem_queue", C) == 0


def test_downgrade_lets_queued_readers_in() -> None:
    h = RwPair()
    assert h.op(A, "down_write") is True
    assert h.op(B, "down_read") is False
    h.op(A, "downgrade_write")
    assert h.op(B, "down_read") is True
    assert h.spec_value("sem_readers", A) == 1


def test_up_write_grants_all_queued_readers_at_once() -> None:
    h = RwPair()
    assert h.op(A, "down_write") is True
    assert h.op(B, "down_read") is False
    assert h.op(C, "down_read") is False
    h.op(A, "up_write")
    assert h.spec_value("sem_granted", B) is True and h.spec_value("sem_granted", C) is True
