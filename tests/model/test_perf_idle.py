"""CPU idle states in the timing layer: a long sleeper's CPU picks C6 and wakes late."""

from __future__ import annotations

import dataclasses

import pytest

from model.perf.costs import Params, UnitCosts, unit_costs
from model.perf.machines import MachineError, _idle_state, machine
from model.perf.sim import IDLE_HISTORY, TICK_PERIOD, TimedRun, Workload

INTEL = "intel-skylake-8167m"


def costs(prefaulted: bool, **changes: float | bool) -> UnitCosts:
    c = unit_costs(machine(INTEL), "hugetlb", prefaulted, Params(jitter=0.0))
    return dataclasses.replace(c, **changes)


def run_with_history(history: list[float], **changes: float | bool) -> TimedRun:
    run = TimedRun(Workload(64, 2, 0), costs(True, **changes))
    for slept in history:
        run._record_idle(1, slept)
    return run


def test_skylake_deepest_state_is_intel_idles_c6() -> None:
    state = machine(INTEL).deep_idle
    assert state is not None and state.name == "C6"
    assert state.exit_latency == pytest.approx(133e-6)  # skx_cstates
    assert state.target_residency == pytest.approx(600e-6)
    c = costs(False)
    assert (c.deep_exit, c.deep_target) == (state.exit_latency, state.target_residency)
    amd = unit_costs(machine("amd-milan-7j13"), "hugetlb", False, Params())
    assert amd.deep_exit == 0.0  # not described: no deep idle state is modelled
    with pytest.raises(MachineError):
        _idle_state({"name": "C6", "exit_latency_us": 0, "target_residency_us": 600})


def test_history_keeps_the_last_eight_sleeps() -> None:
    run = run_with_history([1e-3] * 3 + [1e-5] * IDLE_HISTORY)
    assert run.idle_history[1] == [1e-5] * IDLE_HISTORY


def test_long_sleeps_past_the_tick_pick_c6() -> None:
    run = run_with_history([2 * TICK_PERIOD] * IDLE_HISTORY)
    assert all(run._enters_deep_idle(1) for _ in range(20))  # the tick is stopped


def test_short_sleeps_or_no_history_stay_shallow() -> None:
    assert not run_with_history([400e-6] * IDLE_HISTORY)._enters_deep_idle(1)
    assert not run_with_history([2 * TICK_PERIOD] * (IDLE_HISTORY - 1))._enters_deep_idle(1)
    off = run_with_history([2 * TICK_PERIOD] * IDLE_HISTORY, deep_exit=0.0)
    assert not off._enters_deep_idle(1)


def test_two_long_outliers_are_discarded() -> None:
    # get_typical_interval drops the largest down to the bottom three quarters.
    assert not run_with_history([300e-6] * 6 + [50e-3] * 2)._enters_deep_idle(1)
    assert run_with_history([300e-6] * 5 + [50e-3] * 3)._enters_deep_idle(1)


def test_below_one_tick_c6_must_fit_before_the_next_tick() -> None:
    # Predicted 800 us: C6 (600 us) only when the next tick is 600 us or more away,
    # a uniform draw over the 1 ms period, so about 40 % of sleeps.
    run = run_with_history([800e-6] * IDLE_HISTORY)
    deep = sum(run._enters_deep_idle(1) for _ in range(2000))
    assert 0.3 < deep / 2000 < 0.5


def test_only_long_sleepers_enter_c6() -> None:
    # Prefaulted hugetlb: sleeps last a few us, so no CPU goes deep; faulting (each read
    # hold takes a 400 us fault) with 16 helpers and no cache, writers sleep behind
    # readers for longer than C6's target residency.
    short = TimedRun(Workload(4096, 16, 0), costs(True))
    short.run()
    long = TimedRun(Workload(4096, 16, 0), costs(False))
    long.run()
    assert short.sleeps > 0 and short.deep_sleeps == 0
    assert long.deep_sleeps > 0
    assert long.mm.locked_vm == short.mm.locked_vm == 4096  # same accounting either way
