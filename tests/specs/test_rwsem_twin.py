"""The spec rwsem/mutex/spinlock components agree with their model/ twins.

Random operation sequences run on the twin (model/rwsem.py, model/locks.py) and, step for
step, on the compiled harness spec; the lock states are compared after every operation.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.locks import EINTR, WAIT, Mutex, SpinLock
from tests.specs.test_rwsem_harness import (
    OWNERS,
    RW_OPS,
    Driver,
    RwPair,
    compiled_harness,
    valid_rw_ops,
)

rw_program = st.lists(st.tuples(st.integers(0, len(OWNERS) - 1), st.integers(0, 20),
                                 st.booleans()), min_size=5, max_size=60)


def run_rw_program(program: list[tuple[int, int, bool]]) -> None:
    """Interpret (owner, op pick, fatal signal) triples; a waiting owner re-polls its op."""
    pair = RwPair()
    pending: dict[str, str] = {}
    for who, pick, signal in program:
        owner = OWNERS[who]
        op = pending.get(owner)
        if op is None:
            ops = valid_rw_ops(pair.sem, owner)
            op = ops[pick % len(ops)]
        result = pair.op(owner, op, signal)
        waiting = not op.endswith("trylock") and (
            result is False or (type(result) is int and result == WAIT))
        if waiting:
            pending[owner] = op
        else:
            pending.pop(owner, None)


@settings(max_examples=300, deadline=None)
@given(program=rw_program)
def test_rwsem_spec_matches_twin(program: list[tuple[int, int, bool]]) -> None:
    run_rw_program(program)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None)
@given(program=rw_program)
def test_rwsem_spec_matches_twin_thousands(program: list[tuple[int, int, bool]]) -> None:
    run_rw_program(program)


def test_harness_offers_every_operation() -> None:
    """The harness lets every owner start every operation from the initial state."""
    rw_compiled = compiled_harness("rwsem")
    succ = rw_compiled.successors(rw_compiled.initial)
    assert len(succ) == len(OWNERS) * len(RW_OPS)


excl_program = st.lists(st.tuples(st.integers(0, len(OWNERS) - 1), st.integers(0, 5),
                                  st.booleans()), max_size=30)


@pytest.mark.parametrize("kind", ["mutex", "spinlock"])
@settings(max_examples=60, deadline=None)
@given(program=excl_program)
def test_exclusive_locks_match_twins(kind: str, program: list[tuple[int, int, bool]]) -> None:
    compiled = compiled_harness(kind)
    twin: Mutex | SpinLock = Mutex("m") if kind == "mutex" else SpinLock("m")
    d = Driver(compiled, compiled.initial)
    pending: dict[str, str] = {}
    for who, pick, signal in program:
        owner = OWNERS[who]
        op = pending.get(owner)
        if op is None:
            ops = ["unlock"] if twin.owner == owner else (
                ["lock", "lock_killable"] if kind == "mutex" else ["lock"])
            op = ops[pick % len(ops)]
        sig = signal and pending.get(owner) is None
        res: object
        if isinstance(twin, Mutex):
            if op == "lock":
                res = twin.mutex_lock(owner)
            elif op == "lock_killable":
                res = twin.mutex_lock_killable(owner, sig)
            else:
                res = twin.mutex_unlock(owner)
        else:
            res = twin.spin_lock(owner) if op == "lock" else twin.spin_unlock(owner)
        label = d.run(owner, op, sig)
        if res is False or (type(res) is int and res == WAIT):
            pending[owner] = op
            assert label == op
        else:
            pending.pop(owner, None)
            assert label == "idle"
            assert res in (None, True, 0, -EINTR)
        holder = d.value("m_owner")
        assert (None if holder == "none" else holder) == twin.owner
        queued = sorted((d.value("m_queue", k), o) for k, o in enumerate(OWNERS)
                        if d.value("m_queue", k))
        assert [o for _, o in queued] == [w for w, _ in twin.waiters()]
