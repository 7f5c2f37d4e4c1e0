"""The restricted systems `--movers N` searches: a few instances move, the rest stay idle.

A restriction keeps a subset of the spec's step alternatives with the same initial state,
so every run it has is a run of the spec: a violation found in it is one of the spec,
while finding none shows nothing. `Composite` adds one more kind of alternative, the
idle instances' finishing steps taken back to back in one unrolling step; it is the
sequence of those real steps, and traces show them one by one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from checker.expr import BOOL, Const, EnumT, Expr, Op, Slot, SlotSelect, rebuild
from checker.flat import Flat, Transition
from checker.smt import prepare
from checker.spec import DONE, SpecError


@dataclass(frozen=True)
class Composite(Transition):
    """Several choice-free step alternatives of different instances taken in order.

    guard and updates are the sequential composition of the parts' (each part's guard
    and update values read the state its predecessors left), so an engine treats it as
    one transition; `parts` are what a trace shows.
    """

    parts: tuple[Transition, ...] = ()


def restrict_movers(flat: Flat, movers: int, symbolic: Iterable[str] = (),
                    first_steps: bool = True) -> tuple[Flat, str]:
    """The spec where only instances 0..movers-1 of each process group move freely.

    Every other instance keeps only the step alternatives from its initial label whose
    guard can hold while its own pc and locals still have their initial values (its
    first step; it never runs again unless that step returns to the initial label with
    changed locals, when the kept alternatives may fire again - still steps of the
    spec), or none without `first_steps` (invariants need no idle instance to move;
    final properties need them to finish, e.g. padata helpers that find no chunk left).
    With `first_steps`, the idle instances' finishing first steps (choice-free, static
    updates, to the process's end) are also offered as one
    `Composite`, in instance order, so that a run where they all finish is as many
    unrolling steps shorter. Returns (restricted flat, its description).
    """
    if movers < 1:
        raise SpecError(f"spec {flat.spec.name}", "--movers must be at least 1")
    sizes = {g.name: g.index.size for g in flat.spec.groups}
    idle = {(g, k) for g, n in sizes.items() for k in range(movers, n)}
    if not idle:
        return flat, ""
    init = flat.initial_state()
    concrete = {n: v for n, v in flat.params.items() if n not in set(symbolic)}
    own: dict[tuple[str, int], dict[int, int]] = {}
    for g, k in idle:
        slots = [flat.pc_slots[g][k]] + [base + k for base in flat.local_slots[g].values()]
        own[(g, k)] = {j: init[j] for j in slots if isinstance(flat.init[j], Const)}
    keep = []
    for t in flat.transitions:
        key = (t.group, t.instance)
        if key not in idle:
            keep.append(t)
            continue
        if not first_steps or t.pc_from != init[t.pc_slot]:
            continue
        vals = own[key]

        def at_start(e: Expr, vals: dict[int, int] = vals) -> Expr | None:
            if isinstance(e, Slot) and e.index in vals:
                return Const(vals[e.index], e.sort)
            return None

        g = prepare(rebuild(t.guard, at_start), concrete)
        if not (isinstance(g, Const) and not g.value):
            keep.append(t)
    names = sorted({f"{g}[{k}]" for g, k in idle}, key=lambda x: (x.split("[")[0],
                                                                  int(x[x.index("[") + 1:-1])))
    moving = ", ".join(f"{g}[0..{min(movers, n) - 1}]" for g, n in sizes.items())
    what = (f"only {moving} move" + (f" freely and {span(names)} take at most their "
                                      "first step" if first_steps else "") +
            f" (--movers {movers})")
    if first_steps:
        together = finishing_together(flat, keep, sorted(idle), len(flat.transitions))
        if together is not None:
            keep.append(together)
    return dataclasses.replace(flat, transitions=keep), what


def finishing_together(flat: Flat, kept: list[Transition], idle: list[tuple[str, int]],
                       new_id: int) -> Composite | None:
    """The idle instances' finishing steps (to their process's end) as one Composite, or
    None if some instance has no single composable one (choices, a dynamic write, or
    several candidates)."""
    parts = []
    for g, k in idle:
        cands = [t for t in kept if (t.group, t.instance) == (g, k)
                 and t.pc_to == _done(flat, t) and _composable(t)]
        if len(cands) != 1:
            return None
        parts.append(cands[0])
    if len(parts) < 2:
        return None
    return compose(flat, parts, new_id)


def _composable(t: Transition) -> bool:
    """Choice-free and writing only static slots: its updates substitute into a successor."""
    return not t.choices and all(isinstance(tgt, Slot) for tgt, _ in t.updates)


def _done(flat: Flat, t: Transition) -> int:
    pc_type = flat.slots[t.pc_slot].type
    assert isinstance(pc_type, EnumT)
    return pc_type.code(DONE)


def compose(flat: Flat, parts: list[Transition], new_id: int) -> Composite | None:
    """The sequential composition of choice-free, statically writing transitions (None
    for any other, or when a part reads an array an earlier part wrote)."""
    if not all(_composable(t) for t in parts):
        return None
    now: dict[int, Expr] = {}  # slot -> its value after the parts so far, over the start

    def read(e: Expr) -> Expr | None:
        if isinstance(e, Slot):
            return now.get(e.index, e)
        if isinstance(e, SlotSelect):
            if any(e.base <= j < e.base + e.size for j in now):
                raise _NotComposable
            return SlotSelect(e.base, e.size, rebuild(e.idx, read), e.name, e.type)
        return None

    conds: list[Expr] = []
    try:
        for t in parts:
            pc_type = flat.slots[t.pc_slot].type
            conds.append(rebuild(t.enabled(pc_type), read))
            new: dict[int, Expr] = {}
            for tgt, v in t.updates:
                assert isinstance(tgt, Slot)
                new[tgt.index] = rebuild(v, read)
            now.update(new)
    except _NotComposable:
        return None
    first = parts[0]
    guard = Op("and", (first.guard, *conds[1:]), BOOL) if len(conds) > 1 else first.guard
    updates = tuple((Slot(j, flat.slots[j].name, flat.slots[j].type), v)
                    for j, v in sorted(now.items()))
    label = f"{parts[0].process} .. {parts[-1].process}"
    step = dataclasses.replace(first.step, note=f"{first.step.note} ({label}, one after "
                               "the other)")
    return Composite(new_id, first.group, first.instance, step, guard, updates,
                     first.pc_slot, first.pc_from, first.pc_to, tuple(parts))


class _NotComposable(Exception):
    """A part reads an array an earlier part wrote (not composed, kept apart)."""


def span(names: list[str]) -> str:
    if len(names) <= 3:
        return ", ".join(names)
    return f"{names[0]} .. {names[-1]}"


__all__ = ["Composite", "compose", "restrict_movers", "span"]
