"""checker.movers: the idle instances' finishing steps taken as one unrolling step."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from checker.compile import compile_flat
from checker.expr import BOOL, INT, Const, Op, Slot, SlotSelect, evaluate
from checker.flat import Flat, instantiate
from checker.load import load_module
from checker.movers import Composite, compose, restrict_movers
from checker.result import VIOLATED
from checker.smt_run import check_smt
from checker.smt_unroll import step_reference
from checker.trace import encode_state, replay_on_spec

VFIO = Path(__file__).parents[2] / "specs" / "vfio_locked_vm_cache.py"


def vfio(**params: object) -> Flat:
    mod = load_module(VFIO)
    return instantiate(mod.build({"variant": "seed", "granularity": "batch", **params}))


def composite_of(flat: Flat) -> Composite:
    [c] = [t for t in flat.transitions if isinstance(t, Composite)]
    return c


def test_idle_helpers_finish_together() -> None:
    flat = vfio(threads=4, chunks=4)
    sub, _ = restrict_movers(flat, 2)
    c = composite_of(sub)
    assert [p.process for p in c.parts] == ["helper[2]", "helper[3]"]
    assert all(p in flat.transitions and p.step.note.endswith("no more work") for p in c.parts)
    assert "helper[2] .. helper[3]" in c.step.note
    frozen, _ = restrict_movers(flat, 2, first_steps=False)
    assert not [t for t in frozen.transitions if isinstance(t, Composite)]
    single, _ = restrict_movers(vfio(threads=3, chunks=3), 2)  # one idle helper: nothing
    assert not [t for t in single.transitions if isinstance(t, Composite)]


def test_composite_is_its_parts_in_sequence() -> None:
    """From every state reachable within 6 steps (and those with the chunks used up or an
    error set, where the idle helpers can finish), the composite fires exactly when its
    parts fire one after the other, and ends where they end."""
    flat = vfio(threads=4, chunks=4)
    sub, _ = restrict_movers(flat, 2)
    c = composite_of(sub)
    compiled = compile_flat(flat)
    frontier, seen = {compiled.initial}, {compiled.initial}
    for _ in range(6):
        frontier = {t for s in frontier for _a, t in compiled.successors(s)} - seen
        seen |= frontier
    pos = next(i for i, s in enumerate(flat.slots) if s.name == "position")
    states = seen | {s[:pos] + (4,) + s[pos + 1:] for s in seen}
    fired = 0
    for s in states:
        seq: tuple[int, ...] | None = s
        for part in c.parts:
            seq = step_reference(flat, seq, part, {}, flat.params) if seq else None
        assert step_reference(flat, s, c, {}, flat.params) == seq
        fired += seq is not None
    assert fired > 0


def test_a_part_reading_an_array_an_earlier_part_wrote_is_not_composed() -> None:
    flat = vfio(threads=4, chunks=4)
    c = composite_of(restrict_movers(flat, 2)[0])
    first, second = c.parts
    acc = next(i for i, s in enumerate(flat.slots) if s.name == "done_acc[0]")
    info = flat.slots[acc]
    writes = dataclasses.replace(first, updates=(
        *first.updates, (Slot(acc, info.name, info.type), Const(1, INT))))
    read = SlotSelect(acc, 4, Const(0, INT), "done_acc", info.type)
    reads = dataclasses.replace(second, guard=Op("and", (second.guard, Op(
        "==", (read, Const(0, INT)), BOOL)), BOOL))
    assert compose(flat, [writes, reads], 999) is None
    assert compose(flat, [first, second], 999) is not None


def test_violation_through_the_composite_is_shown_step_by_step() -> None:
    """seed's no_leak with 6 helpers, 2 moving: the four idle helpers finish in one
    unrolling step; the trace shows each of them and replays on the full spec."""
    mod = load_module(VFIO)
    spec = mod.build({"variant": "seed", "granularity": "batch", "threads": 6, "chunks": 6})
    [r] = check_smt(spec, str(VFIO), ["no_leak"], depth=12, movers=2, max_seconds=120)
    assert r.verdict == VIOLATED and r.trace is not None
    procs = [s.process for s in r.trace.steps]
    assert all(procs.count(f"helper[{i}]") == 1 for i in range(2, 6))
    assert r.trace.steps[-1].process == "helper[0]"
    flat = instantiate(spec)
    states = replay_on_spec(compile_flat(flat), r.trace)
    assert not evaluate(flat.properties["no_leak"], states[-1], flat.params)


REAL = {"granularity": "batch", "threads": 16, "chunks": 16, "chunk_pages": 32768,
        "batch_pages": 512, "cache_pages": 65536, "limit_pages": 16 * 32768,
        "initial_locked": 0}


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "prop", "movers", "depth"), [
    ("seed", "no_leak", 2, 12),
    ("seed", "overaccount_bound", 2, 9),
    ("upstream", "no_leak", 1, 12),
])
def test_violations_with_the_rfcs_16_helpers(variant: str, prop: str, movers: int,
                                             depth: int) -> None:
    """The RFC's sizes, cache, limit and initial locked_vm symbolic: the run found is one
    of the full spec (re-executed on the reference semantics when decoded) and its last
    state, under the constants z3 chose, violates the property."""
    mod = load_module(VFIO)
    spec = mod.build({"variant": variant, **REAL})
    [r] = check_smt(spec, str(VFIO), [prop], depth=depth, movers=movers, max_seconds=300,
                    symbolic=["cache_pages", "limit_pages", "initial_locked"])
    assert r.verdict == VIOLATED and r.trace is not None
    consts = r.trace.extra["constants"]
    flat = instantiate(mod.build({"variant": variant, **REAL, **consts}))
    last = encode_state(flat, r.trace.states[-1], "last state")
    assert not evaluate(flat.properties[prop], last, flat.params)
