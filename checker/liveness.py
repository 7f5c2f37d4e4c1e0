"""Dead-variable reset: a process's local that is dead at its label is set to its initial value.

A local slot of a process instance is *dead* at a label when every path of that instance
from the label writes it before reading it. Its value there cannot influence any guard,
any update or anything checked, yet it splits otherwise equal states: a helper thread at
`done` still carries the counters of its last chunk. The reduction adds, to every
transition, `x := initial value` for each local `x` of the moving instance that is dead
at the transition's target label. States that differ only in dead locals become one, and
the reduced system is bisimilar to the spec on everything observable (SPIN's data-flow
optimisation does the same by default).

Which locals qualify: a local slot that only its own instance's transitions read (not
another instance, not a checked property or lemma, not the "finished" condition, not a
lock's held condition). Liveness is the classic backward fixpoint over the instance's
label graph, with the step's updates simultaneous (their right-hand sides read the
pre-state): live(L) = union over steps L -> M of reads(step) + (live(M) - written(step)).
It over-approximates (a disabled step still counts), which only keeps more locals live.

Traces stay concrete: the reduced exploration is replayed on the spec like a sliced one
(`checker.slicing.SlicedStates`): guards read no dead local, so every action is enabled
there too.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable

from checker.expr import Expr, Slot, SlotSelect
from checker.flat import Flat, Transition, slot_refs

State = tuple[int, ...]


def _reads(t: Transition) -> set[int]:
    out = set(slot_refs(t.guard))
    for tgt, val in t.updates:
        out |= slot_refs(val)
        if isinstance(tgt, SlotSelect):
            out |= slot_refs(tgt.idx)
    return out


def _kills(t: Transition) -> set[int]:
    return {tgt.index for tgt, _ in t.updates if isinstance(tgt, Slot)}


def observed_slots(flat: Flat, properties: list[str] | None, lemmas: bool = False) -> set[int]:
    """Slots that something other than a transition reads: checked properties, lemmas,
    the finished condition, locks' held conditions."""
    wanted = [p.name for p in flat.spec.properties] if properties is None else properties
    obs: set[int] = set(slot_refs(flat.finished))
    for name in wanted:
        e = flat.properties.get(name)
        if e is not None:
            obs |= slot_refs(e)
    if properties is None or lemmas:
        for e in flat.lemmas.values():
            obs |= slot_refs(e)
    for per_group in flat.lock_held.values():
        for exprs in per_group.values():
            for e in exprs:
                obs |= slot_refs(e)
    return obs


def dead_locals(flat: Flat, properties: list[str] | None,
                lemmas: bool = False) -> dict[tuple[str, int], dict[int, frozenset[int]]]:
    """Per (group, instance): label code -> the instance's local slots dead there."""
    obs = observed_slots(flat, properties, lemmas)
    # per instance: (from label, to label, slots read, slots written) of each step
    by_instance: dict[tuple[str, int], list[tuple[int, int, set[int], set[int]]]] = \
        defaultdict(list)
    readers: dict[int, set[tuple[str, int]]] = defaultdict(set)
    for t in flat.transitions:
        reads = _reads(t)
        by_instance[(t.group, t.instance)].append((t.pc_from, t.pc_to, reads, _kills(t)))
        for s in reads:
            readers[s].add((t.group, t.instance))
    out: dict[tuple[str, int], dict[int, frozenset[int]]] = {}
    for g in flat.spec.groups:
        labels = range(len(g.pc_type.names))
        for pos, inst in enumerate(g.index):
            key = (g.name, inst)
            mine = {base + pos for base in flat.local_slots[g.name].values()}
            cand = {s for s in mine if s not in obs and readers[s] <= {key}}
            if not cand:
                continue
            steps = by_instance[key]
            live: dict[int, set[int]] = {lab: set() for lab in labels}
            changed = True
            while changed:
                changed = False
                for frm, to, reads, kills in steps:
                    need = (reads | (live[to] - kills)) & cand
                    if not need <= live[frm]:
                        live[frm] |= need
                        changed = True
            dead = {lab: frozenset(cand - live[lab]) for lab in labels}
            if any(dead.values()):
                out[key] = dead
    return out


def reset_dead(flat: Flat, properties: list[str] | None,
               lemmas: bool = False) -> tuple[Flat, list[int]]:
    """The spec with every transition resetting the mover's locals dead at its target,
    and the slots that are reset somewhere."""
    dead = dead_locals(flat, properties, lemmas)
    if not dead:
        return flat, []
    touched: set[int] = set()
    transitions = []
    for t in flat.transitions:
        gone = dead.get((t.group, t.instance), {}).get(t.pc_to, frozenset())
        if not gone:
            transitions.append(t)
            continue
        ups: list[tuple[Slot | SlotSelect, Expr]] = [
            (tgt, v) for tgt, v in t.updates if not (isinstance(tgt, Slot) and tgt.index in gone)]
        ups += [(Slot(s, flat.slots[s].name, flat.slots[s].type), flat.init[s])
                for s in sorted(gone)]
        touched |= gone
        transitions.append(dataclasses.replace(t, updates=tuple(ups)))
    return dataclasses.replace(flat, transitions=transitions), sorted(touched)


def dead_mask(flat: Flat, properties: list[str] | None,
              lemmas: bool = False) -> Callable[[State], State]:
    """Map a state to its representative: each instance's locals dead at its label reset.

    Two states with one representative have the same future on everything observable;
    the reduced exploration stores one state per representative (tests compare on it).
    """
    dead = dead_locals(flat, properties, lemmas)
    init = flat.initial_state()
    table = [(flat.pc_slots[g][i], per_label)
             for (g, i), per_label in dead.items()]

    def mask(s: State) -> State:
        out = list(s)
        for pc, per_label in table:
            for x in per_label.get(s[pc], ()):
                out[x] = init[x]
        return tuple(out)

    return mask


__all__ = ["dead_locals", "dead_mask", "observed_slots", "reset_dead"]
