"""Symmetry reduction: which process instances are interchangeable, and canonical states.

A spec declares `s.symmetric("helper")`; nothing is trusted. For the group's index set I,
a permutation of I acts on the state by moving, for every process group over I, each
instance's pc and locals, and for every global array over I, its elements. A
transposition (a b) is an *automorphism* of the spec when, after renaming the slots it
moves, (1) the initial state is unchanged, (2) the multiset of transitions is unchanged
(guards and updates compared after substituting constants, folding them, and sorting the
arguments of associative-commutative operators, so `Sum`, `AllOf`, `AnyOf`, `Count` over I
are recognised as symmetric), and (3) every checked property, lemma, the "finished"
condition and every lock's held condition are unchanged. Transpositions that pass generate
the symmetry group actually used: the instances split into classes of mutually
interchangeable ones (interchangeability is an equivalence: (a c) = (a b)(b c)(a b)).

Anything that singles an instance out breaks the transposition and so is caught: `self`
used as a value (`owner := self`, `self == 0`), a constant index (`h.pc(0)`, `lc[1]`,
`pinned[2]`) outside a symmetric expansion, an array read with a computed index into a
permuted array (`lc[x]`, which would need x's value permuted too), or different initial
values. Such instances are left out of the permutation and named in `Symmetry.notes`; a
declared group with no two interchangeable instances is refused with `SymmetryError`.

The canonical form of a state sorts the per-instance rows (pc, locals, array elements) of
every class: two states get the same canonical form exactly when one is a permutation of
the other, so the explorer stores one state per orbit. Invariants, final properties,
deadlocks and lock-order edges are preserved because they are invariant under the
automorphisms, and breadth-first depth is too (an automorphism fixes the initial state),
so counterexamples stay shortest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from checker.expr import (
    BOOL,
    BVT,
    INT,
    ChoiceRef,
    Const,
    EnumT,
    Expr,
    LocalRef,
    Op,
    Param,
    PcRef,
    Select,
    SelfRef,
    Slot,
    SlotSelect,
    VarRef,
    _apply,
    walk,
)
from checker.flat import Flat, Transition
from checker.spec import IndexSet, SpecError

State = tuple[int, ...]
Key = tuple[Any, ...]

AC_OPS = frozenset({"+", "*", "and", "or", "&", "|", "^"})
COMMUTATIVE = frozenset({"==", "!="})
FLIPPED = {">": "<", ">=": "<="}


class SymmetryError(SpecError):
    """A declared symmetry that does not hold: the spec is refused for --symmetry."""


@dataclass(frozen=True)
class SymClass:
    """Mutually interchangeable instances of one index set and the slots each one owns."""

    index: str
    groups: tuple[str, ...]
    instances: tuple[int, ...]
    rows: tuple[tuple[int, ...], ...]  # per instance (same order): its slots

    def describe(self) -> str:
        who = "/".join(self.groups)
        inst = self.instances
        if inst == tuple(range(inst[0], inst[-1] + 1)):
            span = f"{inst[0]}..{inst[-1]}"
        else:
            span = ",".join(map(str, inst))
        return f"{who}[{span}]"


@dataclass
class Symmetry:
    """The verified symmetry: classes to permute and notes on what was left out."""

    classes: list[SymClass]
    notes: list[str] = field(default_factory=list)
    fixed_rows: list[tuple[int, ...]] = field(default_factory=list)  # singled-out instances

    @property
    def active(self) -> bool:
        return bool(self.classes)

    def describe(self) -> str:
        if not self.classes:
            return "symmetry: none" + "".join(f"; {n}" for n in self.notes)
        text = "symmetry: " + ", ".join(c.describe() for c in self.classes) + " interchangeable"
        return text + "".join(f"; {n}" for n in self.notes)

    def canonicalizer(self) -> Callable[[State], State]:
        """Generated code: sort each class's instance rows (identity if none)."""
        return make_canonicalizer(self.classes)

    def layout(self, n_slots: int) -> list[int]:
        """A slot order for packing: the slots outside every class, then each class's
        rows one after the other (so a row is a contiguous run of bytes)."""
        in_rows = {j for c in self.classes for r in c.rows for j in r}
        order = [j for j in range(n_slots) if j not in in_rows]
        for c in self.classes:
            for r in c.rows:
                order += list(r)
        return order

    def strided_key(self, offsets: list[int]) -> Callable[[bytes], bytes] | None:
        """The orbit key of a state packed in natural slot order, from byte slices.

        An instance's pc and locals sit at a fixed stride in the packed state (locals are
        stored local by local, instance by instance), so when every row slot is one byte
        wide, `b[start:stop:step]` extracts a row. Key: the bytes outside every row, then
        the singled-out instances' rows, then each class's rows sorted. None when some
        row slot is wider than a byte (then `layout`/`byte_key` are used).
        """
        return make_strided_key(self.classes, self.fixed_rows, offsets)

    def byte_key(self, offsets: list[int]) -> Callable[[bytes], bytes]:
        """The orbit key of a state packed in `layout` order: each class's rows (byte
        runs) sorted. `offsets[k]` is the byte offset of the k-th packed slot (one more
        entry: the total width). Two states get the same key exactly when one is a
        permutation of the other (the packing of a row is injective)."""
        return make_byte_key(self.classes, offsets, len(offsets) - 1)


def _slices(offs: list[int]) -> list[str]:
    """Slice expressions of `b` covering byte offsets `offs` in order (arithmetic runs)."""
    out: list[str] = []
    k = 0
    while k < len(offs):
        start = offs[k]
        if k + 1 < len(offs) and offs[k + 1] > start:
            step = offs[k + 1] - start
            m = k + 1
            while m + 1 < len(offs) and offs[m + 1] - offs[m] == step:
                m += 1
            stop = offs[m] + 1
            out.append(f"b[{start}:{stop}]" if step == 1 else f"b[{start}:{stop}:{step}]")
            k = m + 1
        else:
            out.append(f"b[{start}:{start + 1}]")
            k += 1
    return out


def _sorted_rows(names: list[str]) -> str:
    """Expression concatenating a class's row variables in sorted order (two: no sort)."""
    if len(names) == 2:
        a, b = names
        return f"({a} + {b} if {a} <= {b} else {b} + {a})"
    return f"b''.join(sorted(({', '.join(names)},)))"


def _compile_key(lines: list[str]) -> Callable[[Any], bytes]:
    """Compile generated `def key(b): ...` source."""
    ns: dict[str, Any] = {}
    exec("\n".join(lines) + "\n", ns)  # noqa: S102 - our own codegen
    return ns["key"]  # type: ignore[no-any-return]


def make_strided_key(classes: list[SymClass], fixed_rows: list[tuple[int, ...]],
                     offsets: list[int]) -> Callable[[bytes], bytes] | None:
    """See `Symmetry.strided_key`."""
    width = offsets[-1]
    rows = [r for c in classes for r in c.rows] + list(fixed_rows)
    if any(offsets[j + 1] - offsets[j] != 1 for r in rows for j in r):
        return None
    in_rows = {offsets[j] for r in rows for j in r}
    rest = [o for o in range(width) if o not in in_rows]
    parts = _slices(rest) + [p for r in fixed_rows for p in _slices([offsets[j] for j in r])]
    lines = ["def key(b):"]
    for ci, c in enumerate(classes):
        names = []
        for k, r in enumerate(c.rows):
            name = f"x{ci}_{k}"
            names.append(name)
            lines.append(f"    {name} = {' + '.join(_slices([offsets[j] for j in r]))}")
        parts.append(_sorted_rows(names))
    lines.append(f"    return {' + '.join(parts) or 'b'}")
    return _compile_key(lines)


def make_byte_key(classes: list[SymClass], offsets: list[int],
                  n_slots: int) -> Callable[[bytes], bytes]:
    """See `Symmetry.byte_key`: generated slicing code, no per-slot work."""
    in_rows = sum(len(r) for c in classes for r in c.rows)
    pos = n_slots - in_rows  # packed index of the first row slot
    lines = ["def key(b):"]
    parts: list[str] = []
    if pos:
        parts.append(f"b[:{offsets[pos]}]")
    for ci, c in enumerate(classes):
        names = []
        for k, r in enumerate(c.rows):
            lo, hi = offsets[pos], offsets[pos + len(r)]
            pos += len(r)
            names.append(f"x{ci}_{k}")
            lines.append(f"    x{ci}_{k} = b[{lo}:{hi}]")
        parts.append(_sorted_rows(names))
    lines.append(f"    return {' + '.join(parts)}")
    return _compile_key(lines)


def make_canonicalizer(classes: list[SymClass]) -> Callable[[State], State]:
    """Python source for canon(s): one tuple per instance row, sorted, written back."""
    if not classes:
        return _identity
    lines = ["def canon(s):", "    n = None"]
    for ci, c in enumerate(classes):
        names = [f"r{ci}_{k}" for k in range(len(c.rows))]
        for name, row in zip(names, c.rows, strict=True):
            lines.append(f"    {name} = ({', '.join(f's[{j}]' for j in row)},)")
        lines.append(f"    if not ({' <= '.join(names)}):")
        lines.append(f"        rs = sorted(({', '.join(names)},))")
        lines.append("        if n is None:")
        lines.append("            n = list(s)")
        for k, row in enumerate(c.rows):
            targets = ", ".join(f"n[{j}]" for j in row)
            lines.append(f"        ({targets},) = rs[{k}]")
    lines.append("    return s if n is None else tuple(n)")
    ns: dict[str, Any] = {}
    exec("\n".join(lines) + "\n", ns)  # noqa: S102 - our own codegen
    return ns["canon"]


def _identity(s: State) -> State:
    return s


# ---------------------------------------------------------------- analysis


@dataclass
class _Domain:
    """One index set's permutation domain: its groups, arrays and per-instance rows."""

    index: IndexSet
    groups: list[str]
    rows: list[tuple[int, ...]]
    labels: list[list[str]]  # per instance: a display name per row slot

    @property
    def slots(self) -> set[int]:
        return {j for r in self.rows for j in r}


def _domain(flat: Flat, index: IndexSet) -> _Domain:
    spec = flat.spec
    groups = [g for g in spec.groups if g.index == index]
    arrays = [v for v in spec.vars if v.index == index]
    rows: list[tuple[int, ...]] = []
    labels: list[list[str]] = []
    for k in range(index.size):
        row: list[int] = []
        for g in groups:
            row.append(flat.pc_slots[g.name][k])
            row += [base + k for base in flat.local_slots[g.name].values()]
        row += [flat.var_slots[v.name] + k for v in arrays]
        rows.append(tuple(row))
        labels.append([flat.slots[j].name for j in row])
    return _Domain(index, [g.name for g in groups], rows, labels)


class _Broken(Exception):
    """An expression cannot be renamed: it reads a permuted array at a computed index."""


class _Normalizer:
    """Hashable normal forms of resolved expressions under a slot renaming."""

    def __init__(self, params: dict[str, int], permuted: set[int]) -> None:
        self.params = params
        self.permuted = permuted

    def key(self, e: Expr, ren: dict[int, int]) -> Key:
        return self._norm(self._fold(e), ren)

    def _fold(self, e: Expr) -> Expr:
        if isinstance(e, Param):
            return Const(self.params.get(e.name, e.value), INT)
        if isinstance(e, SlotSelect):
            idx = self._fold(e.idx)
            if isinstance(idx, Const) and 0 <= idx.value < e.size:
                return Slot(e.base + idx.value, e.name, e.type)
            return SlotSelect(e.base, e.size, idx, e.name, e.type)
        if not isinstance(e, Op):
            return e
        args = tuple(self._fold(a) for a in e.args)
        consts = [isinstance(a, Const) for a in args]
        if e.op in ("and", "or"):
            absorbing = 0 if e.op == "and" else 1
            if any(c and a.value == absorbing for c, a in zip(consts, args, strict=True)):  # type: ignore[attr-defined]
                return Const(absorbing, BOOL)
            rest = tuple(a for c, a in zip(consts, args, strict=True) if not c)
            if not rest:
                return Const(1 - absorbing, BOOL)
            return rest[0] if len(rest) == 1 else Op(e.op, rest, BOOL)
        if e.op == "ite" and consts[0]:
            return args[1] if args[0].value else args[2]  # type: ignore[attr-defined]
        if all(consts):
            mask = args[0].sort.mask if isinstance(args[0].sort, BVT) else None
            return Const(_apply(e.op, [a.value for a in args], mask), e.sort)  # type: ignore[attr-defined]
        return Op(e.op, args, e.sort)

    def _norm(self, e: Expr, ren: dict[int, int]) -> Key:
        if isinstance(e, Const):
            return ("c", e.value, _sort_key(e.sort))
        if isinstance(e, Slot):
            return ("s", ren.get(e.index, e.index))
        if isinstance(e, SlotSelect):
            if self.permuted.intersection(range(e.base, e.base + e.size)):
                raise _Broken(f"{e.name}[{e.idx!r}] reads a permuted variable at an index "
                              "computed at run time")
            return ("sel", e.base, e.size, self._norm(e.idx, ren))
        if isinstance(e, ChoiceRef):
            return ("ch", e.name)
        if not isinstance(e, Op):
            raise _Broken(f"unresolved reference {e!r}")
        op = FLIPPED.get(e.op, e.op)
        args = e.args[::-1] if op != e.op else e.args
        if op in AC_OPS:
            flat_args: list[Expr] = []
            todo = list(args)
            while todo:
                a = todo.pop()
                if isinstance(a, Op) and a.op == op and a.sort == e.sort:
                    todo.extend(a.args)
                else:
                    flat_args.append(a)
            keys = sorted((self._norm(a, ren) for a in flat_args), key=repr)
            return ("op", op, _sort_key(e.sort), *keys)
        keys = [self._norm(a, ren) for a in args]
        if op in COMMUTATIVE:
            keys.sort(key=repr)
        return ("op", op, _sort_key(e.sort), *keys)


def _sort_key(s: Any) -> Any:
    if isinstance(s, EnumT):
        return ("enum", s.names)
    if isinstance(s, BVT):
        return ("bv", s.width)
    return s


def _slots_of(exprs: Iterable[Expr]) -> set[int]:
    out: set[int] = set()
    for e in exprs:
        for n in walk(e):
            if isinstance(n, Slot):
                out.add(n.index)
            elif isinstance(n, SlotSelect):
                out.update(range(n.base, n.base + n.size))
    return out


@dataclass
class _Item:
    """One thing that must map onto its counterpart: a transition, property or lock."""

    what: str
    slots: set[int]
    key: Callable[[dict[int, int]], Key]
    ident: Key | None = None


class _Checker:
    """Tests transpositions of one index set's instances for being automorphisms."""

    def __init__(self, flat: Flat, dom: _Domain, properties: list[str] | None) -> None:
        self.flat, self.dom = flat, dom
        self.norm = _Normalizer(flat.params, dom.slots)
        self.init = flat.initial_state()
        self.broken: list[str] = []
        self.transitions = [t for t in flat.transitions if not self._dead(t)]
        self.items_t = [self._titem(t) for t in self.transitions]
        self.items_p = self._property_items(properties)
        for it in self.items_t + self.items_p:
            try:
                it.ident = it.key({})
            except _Broken as e:
                self.broken.append(f"{it.what}: {e}")

    def _dead(self, t: Transition) -> bool:
        g = self.norm._fold(t.guard)
        return isinstance(g, Const) and not g.value

    def _titem(self, t: Transition) -> _Item:
        exprs = [t.guard] + [v for _, v in t.updates] + [tg for tg, _ in t.updates]
        slots = _slots_of(exprs) | {t.pc_slot}
        ch = tuple((c.name, repr(c.type)) for c in t.choices)
        locks = tuple(t.step.locks)
        n = self.norm

        def key(ren: dict[int, int]) -> Key:
            ups = sorted(((n.key(tg, ren), n.key(v, ren)) for tg, v in t.updates), key=repr)
            return (ren.get(t.pc_slot, t.pc_slot), t.pc_from, t.pc_to, ch, locks,
                    n.key(t.guard, ren), tuple(ups))

        what = f"step {t.step.label!r} of {t.process} ({t.step.kernel}" + (
            f" [{t.step.note}]" if t.step.note else "") + ")"
        return _Item(what, slots, key)

    def _property_items(self, properties: list[str] | None) -> list[_Item]:
        flat = self.flat
        out: list[_Item] = []
        exprs: list[tuple[str, Expr]] = [
            (f"property {n}", e) for n, e in flat.properties.items()
            if e is not None and (properties is None or n in properties)]
        exprs += [(f"lemma {n}", e) for n, e in flat.lemmas.items()]
        exprs.append(("the 'every process finished' condition", flat.finished))
        for what, e in exprs:
            out.append(_Item(what, _slots_of([e]),
                             lambda ren, e=e: self.norm.key(e, ren)))
        groups = set(self.dom.groups)
        for lock, per_group in flat.lock_held.items():
            for gname, held in per_group.items():
                if gname in groups:
                    slots = _slots_of(held) | self.dom.slots

                    def key(ren: dict[int, int], held: list[Expr] = held) -> Key:
                        # instance k's condition, renamed, is stored at position ren(k)
                        pos = self._instance_renaming(ren)
                        keyed = {pos.get(k, k): self.norm.key(e, ren) for k, e in
                                 enumerate(held)}
                        return tuple(sorted(keyed.items()))

                    out.append(_Item(f"lock {lock} (held by {gname})", slots, key))
                else:
                    for k, e in enumerate(held):
                        out.append(_Item(f"lock {lock} (held by {gname}[{k}])",
                                         _slots_of([e]),
                                         lambda ren, e=e: self.norm.key(e, ren)))
        return out

    def _instance_renaming(self, ren: dict[int, int]) -> dict[int, int]:
        rows = self.dom.rows
        first = {r[0]: k for k, r in enumerate(rows) if r}
        return {first[a]: first[b] for a, b in ren.items() if a in first and b in first}

    def renaming(self, a: int, b: int) -> dict[int, int]:
        ra, rb = self.dom.rows[a], self.dom.rows[b]
        ren = dict(zip(ra, rb, strict=True))
        ren.update(zip(rb, ra, strict=True))
        return ren

    def why_not(self, a: int, b: int) -> str | None:
        """None if (a b) is an automorphism, else the first reason it is not."""
        if self.broken:
            return self.broken[0]
        ren = self.renaming(a, b)
        moved = set(ren)
        names = self.dom.labels
        for j, (x, y) in enumerate(zip(self.dom.rows[a], self.dom.rows[b], strict=True)):
            if self.init[x] != self.init[y]:
                info = self.flat.slots
                return (f"initial values differ: {names[a][j]} = "
                        f"{info[x].type.show(self.init[x])}, {names[b][j]} = "
                        f"{info[y].type.show(self.init[y])}")
        for it in self.items_p:
            if it.slots & moved and it.key(ren) != it.ident:
                return f"{it.what} is not symmetric under swapping instances {a} and {b}"
        before = Counter(it.ident for it in self.items_t)
        after = Counter(it.key(ren) if it.slots & moved else it.ident for it in self.items_t)
        if before != after:
            missing = after - before
            for it in self.items_t:
                if it.slots & moved and missing.get(it.key(ren)):
                    return (f"{it.what} has no counterpart when instances {a} and {b} are "
                            f"swapped{_hint(self.flat, it.what)}")
            return f"the transitions differ when instances {a} and {b} are swapped"
        return None


def _hint(flat: Flat, what: str) -> str:
    """Name a likely culprit in the step's source expressions (constant index, self)."""
    for g in flat.spec.groups:
        for st in g.steps:
            if f"step {st.label!r} of {g.name}[" not in what or st.kernel not in what:
                continue
            if st.note and f"[{st.note}]" not in what:
                continue
            exprs = [("guard", st.guard)] + [(f"effect on {t!r}", v) for t, v in st.effects] \
                + [("effect target", t) for t, _ in st.effects]
            for where, e in exprs:
                culprit = _culprit(e, g.name, g.index)
                if culprit:
                    return f": its {where} {culprit}"
    return ""


def _culprit(e: Expr, group: str, index: IndexSet) -> str:
    """A reference singling out one instance, or self used as a value."""
    index_positions: set[int] = set()
    for n in walk(e):
        if isinstance(n, Select | LocalRef | PcRef):
            idx = n.idx if isinstance(n, Select) else n.of
            if idx is not None:
                index_positions.add(id(idx))
    for n in walk(e):
        if isinstance(n, SelfRef) and n.group == group and id(n) not in index_positions:
            return "uses `self` as a value (e.g. compares it with a constant)"
        if isinstance(n, VarRef) and n.index is not None and n.var.index == index:
            return f"mentions {n.var.name}[{n.index}] (a specific instance)"
        if isinstance(n, LocalRef | PcRef) and isinstance(n.of, Const):
            return f"mentions {n!r} (a specific instance)"
    return ""


def analyse(flat: Flat, properties: list[str] | None = None,
            groups: list[str] | None = None) -> Symmetry:
    """Verify the spec's declared symmetric groups; return the classes to permute.

    `properties`: the properties that will be checked (others need not be symmetric).
    `groups`: override the declaration (tests). Raises SymmetryError when a declared group
    has no two interchangeable instances.
    """
    declared = list(flat.spec.symmetric if groups is None else groups)
    by_name = {g.name: g for g in flat.spec.groups}
    classes: list[SymClass] = []
    notes: list[str] = []
    fixed: list[tuple[int, ...]] = []
    done: set[IndexSet] = set()
    for gname in declared:
        if gname not in by_name:
            raise SymmetryError(f"symmetry of {gname}", "no such process group")
        index = by_name[gname].index
        if index in done:
            continue
        done.add(index)
        dom = _domain(flat, index)
        chk = _Checker(flat, dom, properties)
        found: list[list[int]] = []
        reasons: dict[int, str] = {}
        for k in range(index.size):
            for cls in found:
                why = chk.why_not(cls[0], k)
                if why is None:
                    cls.append(k)
                    break
                reasons.setdefault(k, why)
            else:
                found.append([k])
        big = [c for c in found if len(c) > 1]
        who = "/".join(dom.groups)
        if not big:
            reason = reasons.get(1, "a single instance")
            raise SymmetryError(
                f"symmetry of {gname}",
                f"declared symmetric, but no two instances of {who} are interchangeable: "
                f"{reason}")
        for c in big:
            classes.append(SymClass(index.name, tuple(dom.groups), tuple(c),
                                    tuple(dom.rows[k] for k in c)))
        for c in found:
            if len(c) == 1:
                k = c[0]
                fixed.append(dom.rows[k])
                why = reasons.get(k) or _first_reason(chk, k, big)
                notes.append(f"{who}[{k}] is singled out ({why})")
    return Symmetry(classes, notes, fixed)


def _first_reason(chk: _Checker, k: int, big: list[list[int]]) -> str:
    for c in big:
        why = chk.why_not(c[0], k)
        if why:
            return why
    return "not interchangeable"


def orbit_key(canon: Callable[[State], State], states: Iterable[State]) -> set[State]:
    """The canonical forms of a collection of states (what a reduction must preserve)."""
    return {canon(s) for s in states}


__all__ = ["SymClass", "Symmetry", "SymmetryError", "analyse", "make_canonicalizer",
           "orbit_key"]
