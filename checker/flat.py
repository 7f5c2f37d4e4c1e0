"""Instantiation: a Spec resolved to a flat state vector and per-instance transitions.

This is the one place where the semantics of references (self, locals, pc, arrays) is
fixed; both engines read its output. A state is a tuple of ints, one per slot: globals in
declaration order (arrays element by element), then per process group its pcs and its
locals (each local's instances contiguous, so `local[expr]` is an indexed read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checker.expr import (
    BOOL,
    INT,
    ChoiceRef,
    Const,
    EnumT,
    Expr,
    IntT,
    LocalRef,
    Op,
    Param,
    PcRef,
    Select,
    SelfRef,
    Slot,
    SlotSelect,
    VarRef,
    VarType,
    evaluate,
    rebuild,
    walk,
)
from checker.spec import DONE, Choice, LockOp, ProcessGroup, Spec, SpecError, Step


@dataclass(frozen=True)
class SlotInfo:
    """One scalar of the state vector and where it comes from."""

    index: int
    name: str  # display name: locked_vm, pinned[1], helper[0].cache, helper[0].pc
    type: VarType
    var: str  # ITF variable: locked_vm, pinned, helper.cache, helper.pc
    element: int | None  # position within an array variable


@dataclass(frozen=True)
class Transition:
    """One step alternative of one process instance, references resolved.

    Guard and update values may still contain ChoiceRef (the step's choices) and Param
    (spec constants): the explicit engine enumerates and substitutes them, the SMT engine
    may keep them symbolic.
    """

    id: int
    group: str
    instance: int
    step: Step
    guard: Expr
    updates: tuple[tuple[Slot | SlotSelect, Expr], ...]  # includes the pc update
    pc_slot: int
    pc_from: int
    pc_to: int

    @property
    def process(self) -> str:
        return f"{self.group}[{self.instance}]"

    @property
    def choices(self) -> tuple[Choice, ...]:
        return self.step.choices

    def enabled(self, pc_type: VarType) -> Expr:
        """The full enabling condition: at the step's label and the guard holds.

        `guard` alone excludes the program-counter test, which the explicit engine
        dispatches on; an engine that needs the whole condition uses this.
        """
        pc = Slot(self.pc_slot, f"{self.process}.pc", pc_type)
        return Op("and", (Op("==", (pc, Const(self.pc_from, pc.sort)), BOOL), self.guard), BOOL)

    @property
    def locks(self) -> tuple[LockOp, ...]:
        return self.step.locks


@dataclass
class Flat:
    """The resolved spec: slots, initial values, transitions and resolved properties."""

    spec: Spec
    slots: list[SlotInfo]
    init: tuple[Expr, ...]  # per slot, over Params only
    transitions: list[Transition]
    properties: dict[str, Expr | None]
    lemmas: dict[str, Expr]
    finished: Expr  # every non-daemon process is done
    pc_slots: dict[str, list[int]]  # group -> pc slot per instance
    local_slots: dict[str, dict[str, int]]  # group -> local -> base slot
    var_slots: dict[str, int]  # global var -> base slot
    lock_held: dict[str, dict[str, list[Expr]]]  # lock -> group -> per-instance held expr

    @property
    def params(self) -> dict[str, int]:
        return {n: p.value for n, p in self.spec.constants.items()}

    def initial_state(self, params: dict[str, int] | None = None) -> tuple[int, ...]:
        p = self.params | (params or {})
        return tuple(evaluate(e, (), p) for e in self.init)

    def group(self, name: str) -> ProcessGroup:
        return next(g for g in self.spec.groups if g.name == name)


def instantiate(spec: Spec) -> Flat:
    """Resolve every reference of the spec to slots; raise SpecError on misuse."""
    slots: list[SlotInfo] = []
    init: list[Expr] = []
    var_slots: dict[str, int] = {}
    for v in spec.vars:
        var_slots[v.name] = len(slots)
        n = v.index.size if v.index else None
        for i, e in enumerate(v.init):
            name = v.name if n is None else f"{v.name}[{i}]"
            slots.append(SlotInfo(len(slots), name, v.type, v.name, None if n is None else i))
            init.append(e)
    pc_slots: dict[str, list[int]] = {}
    local_slots: dict[str, dict[str, int]] = {}
    for g in spec.groups:
        pct = g.pc_type
        pc_slots[g.name] = []
        for i in g.index:
            pc_slots[g.name].append(len(slots))
            slots.append(SlotInfo(len(slots), f"{g.name}[{i}].pc", pct, f"{g.name}.pc", i))
            init.append(Const(pct.code(g.entry), pct))
        local_slots[g.name] = {}
        for lname, (ltype, linit) in g.locals.items():
            local_slots[g.name][lname] = len(slots)
            for i in g.index:
                slots.append(SlotInfo(len(slots), f"{g.name}[{i}].{lname}", ltype,
                                      f"{g.name}.{lname}", i))
                init.append(linit[i])
    r = _Resolver(spec, slots, var_slots, pc_slots, local_slots)
    transitions: list[Transition] = []
    for g in spec.groups:
        labels = g.pc_type
        for i in g.index:
            for st in g.steps:
                where = f"process {g.name}: step {st.label}" + (f" ({st.note})" if st.note else "")
                ctx = (g.name, i, where)
                guard = r.resolve(st.guard, ctx)
                ups: list[tuple[Slot | SlotSelect, Expr]] = []
                for tgt, val in st.effects:
                    t = r.resolve(tgt, ctx)
                    if not isinstance(t, Slot | SlotSelect):
                        raise SpecError(where, f"cannot assign to {tgt!r}")
                    ups.append((t, r.resolve(val, ctx)))
                statics = [t.index for t, _ in ups if isinstance(t, Slot)]
                if len(statics) != len(set(statics)):
                    raise SpecError(where, "assigns the same variable twice")
                pc = pc_slots[g.name][i]
                if pc in statics:
                    raise SpecError(where, "assigns the program counter directly; use goto")
                frm, to = labels.code(st.label), labels.code(st.goto)
                ups.append((Slot(pc, slots[pc].name, labels), Const(to, labels)))
                transitions.append(Transition(len(transitions), g.name, i, st, guard,
                                              tuple(ups), pc, frm, to))
    props: dict[str, Expr | None] = {}
    for p in spec.properties:
        props[p.name] = None if p.expr is None else r.resolve(
            p.expr, (None, None, f"property {p.name}"))
    lemmas = {p.name: r.resolve(p.expr, (None, None, f"lemma {p.name}"))  # type: ignore[arg-type]
              for p in spec.lemmas}
    fin: list[Expr] = []
    for g in spec.groups:
        if g.daemon:
            continue
        done = g.pc_type.code(DONE)
        fin += [Op("==", (Slot(s, slots[s].name, g.pc_type), Const(done, g.pc_type)), BOOL)
                for s in pc_slots[g.name]]
    finished = Op("and", tuple(fin), BOOL) if len(fin) > 1 else (fin[0] if fin else Const(1, BOOL))
    lock_held: dict[str, dict[str, list[Expr]]] = {}
    for lk in spec.locks:
        lock_held[lk.name] = {}
        for gname, e in lk.held.items():
            g = next((x for x in spec.groups if x.name == gname), None)
            if g is None:
                raise SpecError(f"lock {lk.name}", f"unknown process group {gname!r}")
            lock_held[lk.name][gname] = [
                r.resolve(e, (gname, i, f"lock {lk.name}")) for i in g.index]
    return Flat(spec, slots, tuple(init), transitions, props, lemmas, finished, pc_slots,
                local_slots, var_slots, lock_held)


class _Resolver:
    """Replaces self/local/pc/array references by slots for one process instance."""

    def __init__(self, spec: Spec, slots: list[SlotInfo], var_slots: dict[str, int],
                 pc_slots: dict[str, list[int]], local_slots: dict[str, dict[str, int]]) -> None:
        self.spec, self.slots = spec, slots
        self.var_slots, self.pc_slots, self.local_slots = var_slots, pc_slots, local_slots
        self.groups = {g.name: g for g in spec.groups}
        self.pc_types = {g.pc_type.name: g.pc_type for g in spec.groups}

    def resolve(self, e: Expr, ctx: tuple[str | None, int | None, str]) -> Expr:
        group, inst, where = ctx

        def f(n: Expr) -> Expr | None:
            if isinstance(n, Const) and isinstance(n.sort, EnumT) and n.sort.name in self.pc_types:
                return Const(n.value, self.pc_types[n.sort.name])  # labels added after it
            if isinstance(n, Const | Param | ChoiceRef):
                return n
            if isinstance(n, SelfRef):
                if n.group != group:
                    raise SpecError(where, f"'self' of process {n.group} used outside it")
                return Const(inst, INT)  # type: ignore[arg-type]
            if isinstance(n, VarRef):
                base = self.var_slots[n.var.name]
                s = base + (n.index or 0)
                return Slot(s, self.slots[s].name, n.var.type)
            if isinstance(n, Select):
                return self._indexed(self.var_slots[n.var.name], n.var.index.size,
                                     rebuild(n.idx, f), n.var.name, n.var.type, where)
            if isinstance(n, LocalRef):
                g = self.groups[n.group]
                if n.of is None and n.group != group:
                    raise SpecError(where, f"local {n.name} of {n.group} needs an instance: "
                                    f"write {n.name}[i]")
                idx = Const(inst, INT) if n.of is None else rebuild(n.of, f)  # type: ignore[arg-type]
                base = self.local_slots[n.group][n.name]
                return self._indexed(base, g.index.size, idx, f"{n.group}.{n.name}", n.type,
                                     where)
            if isinstance(n, PcRef):
                g = self.groups[n.group]
                if n.of is None and n.group != group:
                    raise SpecError(where, f"pc of {n.group} needs an instance")
                idx = Const(inst, INT) if n.of is None else rebuild(n.of, f)  # type: ignore[arg-type]
                pcs = self.pc_slots[n.group]
                return self._indexed(pcs[0], g.index.size, idx, f"{n.group}.pc", g.pc_type, where)
            return None

        return rebuild(e, f)

    def _indexed(self, base: int, size: int, idx: Expr, name: str, type_: VarType,
                 where: str) -> Expr:
        if isinstance(idx, Const):
            if not 0 <= idx.value < size:
                raise SpecError(where, f"{name}[{idx.value}] is out of range 0..{size - 1}")
            s = base + idx.value
            return Slot(s, self.slots[s].name, type_)
        return SlotSelect(base, size, idx, name, type_)


def slot_refs(e: Expr) -> set[int]:
    """Slots an expression reads (a dynamic read counts as every element it may read)."""
    out: set[int] = set()
    for n in walk(e):
        if isinstance(n, Slot):
            out.add(n.index)
        elif isinstance(n, SlotSelect):
            out.update(range(n.base, n.base + n.size))
    return out


def param_values(spec: Spec, override: dict[str, Any] | None = None) -> dict[str, int]:
    """Concrete values of the spec constants."""
    return {n: p.value for n, p in spec.constants.items()} | (override or {})


def domain_text(t: VarType) -> str:
    if isinstance(t, IntT):
        return f"{t.lo}..{t.hi}"
    return repr(t)
