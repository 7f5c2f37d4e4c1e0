"""mmap_lock's cache line in the timing layer: it stays with its last user, spinners poll
it, and the rwsem slow paths' own accesses are charged (model/perf/sim.py ``_line``)."""

from __future__ import annotations

import pytest

from model.perf.costs import Params, UnitCosts, unit_costs
from model.perf.machines import machine
from model.perf.sim import TimedRun, Workload

INTEL = "intel-skylake-8167m"
PARAMS = Params(jitter=0.0, line_ns=300.0, write_cs_us=0.8, out_frac=0.8, wake_us=2.0,
                wake_each_us=1.0)


def costs(slowpath_line: bool = True) -> UnitCosts:
    return unit_costs(machine(INTEL), "hugetlb", True, PARAMS, slowpath_line=slowpath_line)


def test_the_line_stays_in_the_cache_of_its_last_user() -> None:
    run = TimedRun(Workload(64, 2, 0), costs())
    line = run.costs.line
    assert run._line(1) == (0.0, line)  # first touch: a transfer, the line was free
    assert run._line(1, 3) == (0.0, 0.0)  # wait_lock, the count, ...: all local
    # another CPU takes it, behind the transfer still under way
    assert run._line(2) == (pytest.approx(line), line)
    assert run.line_ops == 2
    run._line(1)
    assert run.line_free == pytest.approx(3 * line)


def test_a_spinner_polling_the_line_makes_every_access_a_transfer() -> None:
    run = TimedRun(Workload(64, 2, 0), costs())
    line = run.costs.line
    run._line(1)
    run.spinners[2] = run.env.event()  # rwsem_spin_on_owner reads sem->owner in a loop
    wait, own = run._line(1, 3)
    assert (wait, own) == (pytest.approx(3 * line), line)  # behind the first, back to back
    assert run.line_ops == 4
    assert run._line(2) == (pytest.approx(4 * line), line)  # the poller itself is not robbed


def test_without_the_mechanism_every_access_is_a_transfer() -> None:
    run = TimedRun(Workload(64, 2, 0), costs(slowpath_line=False))
    line = run.costs.line
    assert run._line(1) == (0.0, line)
    assert run._line(1) == (pytest.approx(line), line)
    assert run.line_ops == 2


def test_the_waker_takes_wait_lock_and_grants_readers_with_two_atomics() -> None:
    run = TimedRun(Workload(64, 2, 0), costs())
    sem, line = run.sem, run.costs.line
    assert sem.down_write(1)
    assert not sem.down_read(2) and not sem.down_write(3) and not sem.down_read(4)
    events = {tid: run.env.event() for tid in (2, 3, 4)}
    run.sleepers.update(events)
    run.line_holder = 1  # __up_write's own atomic just took the line
    sem.up_write(1)  # rwsem_mark_wake grants readers 2 and 4, not writer 3
    assert run._wake(1) == pytest.approx(2 * run.costs.wake_each)  # all three local
    assert events[2].value == 0.0
    assert events[4].value == pytest.approx(run.costs.wake_each)
    assert 3 in run.sleepers
    run2 = TimedRun(Workload(64, 2, 0), costs())
    sem2 = run2.sem
    assert sem2.down_write(1) and not sem2.down_read(2)
    ev = run2.sleepers[2] = run2.env.event()
    run2.spinners[5] = run2.env.event()  # a spinner polls: wait_lock, fetch_add, add
    sem2.up_write(1)
    assert run2._wake(1) == pytest.approx(3 * line + run2.costs.wake_each)
    assert ev.value == pytest.approx(3 * line)


def batch_figures(threads: int, slowpath_line: bool = True) -> tuple[float, float]:
    """Lock-line transfers per batch (of 512 pages) and the simulated pin time."""
    run = TimedRun(Workload(1024, threads, 0), costs(slowpath_line))
    result = run.run()
    return run.line_ops / (result.metrics["units_pinned"] / 2), result.pin_s


def test_one_thread_never_moves_the_line() -> None:
    ops, pin = batch_figures(0)
    assert ops * 512 == 1.0  # the first touch; the base kernel's lock operations stay local
    c = costs()
    assert pin == pytest.approx(1024 * c.single_thread_unit, rel=0.01)
    old_ops, _ = batch_figures(0, slowpath_line=False)
    assert old_ops == 4.0


def test_transfers_per_batch_grow_with_contention() -> None:
    ops2, _ = batch_figures(2)
    ops4, _ = batch_figures(4)
    ops8, _ = batch_figures(8)
    assert 0.0 < ops2 < ops4 < ops8
