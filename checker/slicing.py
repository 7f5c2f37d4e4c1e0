"""Cone-of-influence slicing: drop updates of variables nothing checked depends on.

A slot is *relevant* if a guard reads it (every guard: control flow matters to every
property), a checked property or lemma reads it, the "finished" condition reads it, an
assigned array index reads it, or an update of a relevant slot reads it (fixpoint). The
other slots - ghosts such as a flag computed for a property that is not being checked -
never influence a guard, a relevant slot or a checked property. Removing their updates
keeps them at their initial values; the sliced system is then a bisimulation quotient of
the spec for the relevant slots, so every verdict of a checked property (invariant,
final, deadlock) is unchanged, and so is the breadth-first depth of every violation.

Traces stay concrete: `SlicedStates` rebuilds a stored state's full value by replaying
its path's actions on the unsliced spec (guards do not read the dropped slots, so every
action is enabled there too). Not checked while sliced: out-of-domain assignments to the
dropped slots (a replayed trace would still report one on its path). Lock-order analysis
reads every state, so `checker.explore.make_reductions` does not slice when it is
checked. SPIN's default "hide write-only variables" is the special case with no reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from checker.compile import Compiled, compile_flat
from checker.explore import StateSequence
from checker.expr import Slot, SlotSelect
from checker.flat import Flat, slot_refs
from checker.liveness import dead_mask, observed_slots, reset_dead

State = tuple[int, ...]


@dataclass
class Slice:
    """The sliced spec: which slots were dropped, and its compiled form."""

    irrelevant: list[int]
    names: list[str]
    compiled: Compiled  # the spec without updates of irrelevant slots, dead locals reset
    reset: list[str] = dataclasses.field(default_factory=list)  # locals reset where dead

    @property
    def active(self) -> bool:
        return bool(self.irrelevant or self.reset)

    def describe(self) -> str:
        parts = []
        if self.irrelevant:
            parts.append(f"{len(self.irrelevant)} slots outside the cone of influence of the "
                         f"checked properties ({', '.join(self.names)})")
        if self.reset:
            parts.append(f"{len(self.reset)} locals reset where dead ({_short(self.reset)})")
        return "slice: " + ("; ".join(parts) or "every variable is relevant and live")


def _short(names: list[str], most: int = 6) -> str:
    more = f", ... ({len(names) - most} more)" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def relevant_slots(flat: Flat, properties: list[str] | None,
                   lemmas: bool = False) -> set[int]:
    """The cone of influence of the guards and of what is observed: the checked
    properties, the finished condition, locks' held conditions, and the lemmas (always
    when every property is checked, or when `lemmas`: induction proofs use them)."""
    rel = observed_slots(flat, properties, lemmas)
    for t in flat.transitions:
        rel |= slot_refs(t.guard)
        rel.add(t.pc_slot)
        for tgt, _ in t.updates:
            if isinstance(tgt, SlotSelect):
                rel |= slot_refs(tgt.idx)
    changed = True
    while changed:
        changed = False
        for t in flat.transitions:
            for tgt, val in t.updates:
                written = ({tgt.index} if isinstance(tgt, Slot)
                           else set(range(tgt.base, tgt.base + tgt.size)))
                if written & rel:
                    new = slot_refs(val) - rel
                    if new:
                        rel |= new
                        changed = True
    return rel


def slice_flat(flat: Flat, properties: list[str] | None,
               lemmas: bool = False) -> tuple[Flat, list[int]]:
    """The spec without the updates of irrelevant slots, and those slots."""
    rel = relevant_slots(flat, properties, lemmas)
    irrelevant = sorted(set(range(len(flat.slots))) - rel)
    if not irrelevant:
        return flat, []
    drop = set(irrelevant)
    transitions = [dataclasses.replace(t, updates=tuple(
        (tgt, v) for tgt, v in t.updates if not (isinstance(tgt, Slot) and tgt.index in drop)))
        for t in flat.transitions]
    return dataclasses.replace(flat, transitions=transitions), irrelevant


def slice_spec(compiled: Compiled, properties: list[str] | None) -> Slice:
    """Drop the updates of irrelevant slots (static targets only) and reset dead locals
    (checker.liveness)."""
    flat = compiled.flat
    sliced_flat, irrelevant = slice_flat(flat, properties)
    sliced_flat, reset = reset_dead(sliced_flat, properties)
    if not irrelevant and not reset:
        return Slice([], [], compiled)
    sliced = compile_flat(sliced_flat)
    same = [(a.transition.id, a.choice) for a in compiled.actions] == [
        (a.transition.id, a.choice) for a in sliced.actions]
    if not same:  # cannot happen: guards are unchanged; refuse rather than mislabel actions
        return Slice([], [], compiled)
    return Slice(irrelevant, [flat.slots[i].name for i in irrelevant], sliced,
                 [flat.slots[i].name for i in reset])


def slice_view(flat: Flat, properties: list[str] | None) -> Callable[[State], State]:
    """What a sliced exploration tells apart: the relevant slots, dead locals reset.

    Two reachable states with one view have the same future on everything checked; the
    sliced exploration reaches exactly the views of the spec's reachable states.
    """
    sliced, _ = slice_flat(flat, properties)
    mask = dead_mask(sliced, properties)
    keep = sorted(relevant_slots(flat, properties))

    def view(s: State) -> State:
        m = mask(s)
        return tuple(m[i] for i in keep)

    return view


class SlicedStates(StateSequence):
    """Full concrete states of a sliced exploration, rebuilt by replaying actions.

    `stored` are the sliced states; state sid's full value is the full spec's successor
    of its parent's full value by `action[sid]`. Recent results are cached, so walking a
    path (traces) costs one step per state.
    """

    CACHE = 1 << 16

    def __init__(self, stored: Sequence[State], parent: Any, action: Any,
                 full: Compiled) -> None:
        self.stored, self.parent, self.action, self.full = stored, parent, action, full
        self._cache: dict[int, State] = {}

    def __len__(self) -> int:
        return len(self.stored)

    def _get(self, sid: int) -> State:
        if sid == 0:
            return self.full.initial
        cache = self._cache
        if sid in cache:
            return cache[sid]
        chain = []
        k = sid
        while k > 0 and k not in cache:
            chain.append(k)
            k = self.parent[k]
        s = self.full.initial if k <= 0 else cache[k]
        for k in reversed(chain):
            s = dict(self.full.successors(s))[self.action[k]]
            if len(cache) >= self.CACHE:
                cache.clear()
            cache[k] = s
        return s

    def __iter__(self) -> Iterator[State]:
        for i in range(len(self)):
            yield self._get(i)


__all__ = ["Slice", "SlicedStates", "relevant_slots", "slice_spec", "slice_view"]
