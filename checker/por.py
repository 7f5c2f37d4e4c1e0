"""Partial-order reduction: ample sets of one process's steps that commute with all others.

In a state s, let P be a process at label L. If every step alternative of P at L (enabled
or not, every choice value) is *independent* of every step of every other process - it
writes no slot another process reads or writes, and reads no slot another process writes
- then the enabled steps of P at L form an ample set: the explorer may follow only them.
Updates `x := x + e` (likewise `-`, and `or`/`and`/`|`/`&`/`^` within their own family)
commute with each other when e does not read x, so two steps that only accumulate into
the same counter (a ghost like `acc_pinned`) are independent; the final value and any
domain error of the second update are the same in both orders, and the first update's
error is seen in the state itself, where the explorer evaluates every enabled step.
Independence is decided statically from the resolved transitions, so the test is a
lookup per action. Reads of another process's program counter are refined: a guard that
only compares `pc == label` depends on a step only if the step leaves or enters a label it
compares with (`h.at(i, "done")` does not depend on the middle steps of h[i]).

What is preserved (`properties` = the properties being checked):

- Deadlocks and, when the spec has no daemon process, final properties: both are about
  terminal states (no enabled step; with no daemon, "every process done" is terminal),
  and ample sets with the two conditions above (C0 non-empty, C1 independence) reach
  every reachable terminal state by a path of the same length (Valmari's stubborn-set
  theorem), so final/deadlock counterexamples stay shortest.
- Invariants and lemmas (and finals when a daemon exists, as "finished => P"): the ample
  steps must also be invisible (C2: write no slot the predicate reads; for finals, not
  enter "done"), and every cycle of the reduced graph must contain a fully expanded state
  (C3, below). Violations are found, but an invariant's counterexample may be longer
  than the shortest one.
- Spec runtime errors (out-of-domain assignments, bad indexes): the explorer evaluates
  every enabled step of every expanded state, and C3 keeps any step from being postponed
  forever, so an error reachable without reduction is reached with it.

C3 is the breadth-first cycle proviso, applied by the explorer in every run: a state whose
ample successors include one already known at a depth no greater than its own is fully
expanded. Every cycle of the reduced graph has an edge u -> v with depth(v) <= depth(u)
(depths cannot rise all the way round), and when u was expanded v was already known, so
u was fully expanded: no cycle consists of ample steps only, and no step is postponed for
ever. The test depends only on the layers before the current one, so the parallel
explorer makes the same decisions. With symmetry the depths are those of orbits, and the
argument is the same on the quotient graph.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from checker.compile import Compiled
from checker.expr import Const, Expr, Op, Slot, SlotSelect
from checker.flat import Transition
from checker.spec import DONE

ALL = None  # a pc read that is not a plain comparison with labels


@dataclass(frozen=True)
class _Access:
    """The slots a transition reads and writes; pcs of other processes kept apart.

    `adds` are slots updated only as `x := x op e` with op one of the commutative,
    associative families below and e not reading x: such updates of one family commute
    with each other, so they conflict only with other reads and writes of x.
    """

    reads: frozenset[int]
    writes: frozenset[int]
    pc_reads: dict[int, frozenset[int] | None]  # pc slot -> compared label codes (ALL: any)
    adds: dict[int, str] = field(default_factory=dict)  # slot -> operator family


FAMILIES = {"+": "add", "-": "add", "or": "or", "and": "and", "|": "bitor", "&": "bitand",
            "^": "xor"}


def _accumulate(slot: int, val: Expr) -> tuple[str, list[Expr]] | None:
    """If val is `slot op e...` for an operator family (`+`/`-` chains such as
    `(x - a) - b` included, x with a plus sign), the family and the other operands."""
    if not isinstance(val, Op) or val.op not in FAMILIES:
        return None
    family = FAMILIES[val.op]
    leaves: list[tuple[Expr, bool]] = []  # (operand, positive)

    def flatten(e: Expr, positive: bool) -> None:
        if isinstance(e, Op) and e.op in FAMILIES and FAMILIES[e.op] == family \
                and e.sort == val.sort:
            if e.op == "-":
                flatten(e.args[0], positive)
                flatten(e.args[1], not positive)
            else:
                for a in e.args:
                    flatten(a, positive)
        else:
            leaves.append((e, positive))

    flatten(val, True)
    hits = [k for k, (e, _) in enumerate(leaves) if isinstance(e, Slot) and e.index == slot]
    if len(hits) != 1 or not leaves[hits[0]][1]:
        return None
    rest = [e for k, (e, _) in enumerate(leaves) if k != hits[0]]
    if any(isinstance(n, Slot) and n.index == slot or
           isinstance(n, SlotSelect) and n.base <= slot < n.base + n.size
           for e in rest for n in _walk(e)):
        return None
    return family, rest


def _walk(e: Expr) -> Iterable[Expr]:
    stack = [e]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.children())


@dataclass
class PorPlan:
    """Per action: may its (process, label) be an ample set; which process runs it."""

    safe: list[bool]
    proc: list[int]
    proviso: bool  # C2 applied (invariants, lemmas or daemon finals checked)
    reducible: int = 0  # (process, label) pairs that can be ample
    pairs: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return any(self.safe)

    def describe(self) -> str:
        txt = (f"por: {self.reducible} of {self.pairs} (process, label) pairs reducible"
               + (", invisible steps only" if self.proviso else ""))
        return txt + "".join(f"; {n}" for n in self.notes)


def _pc_reads(exprs: Iterable[Expr], pc_slots: set[int]) -> dict[int, frozenset[int] | None]:
    """For each pc slot read: the label codes it is compared with, or ALL."""
    out: dict[int, set[int] | None] = {}

    def note(slot: int, code: int | None) -> None:
        if code is None:
            out[slot] = ALL
        elif slot not in out:
            out[slot] = {code}
        elif out[slot] is not ALL:
            out[slot].add(code)  # type: ignore[union-attr]

    def visit(e: Expr) -> None:
        if isinstance(e, Op) and e.op in ("==", "!=") and len(e.args) == 2:
            a, b = e.args
            if isinstance(a, Slot) and a.index in pc_slots and isinstance(b, Const):
                note(a.index, b.value)
                return
            if isinstance(b, Slot) and b.index in pc_slots and isinstance(a, Const):
                note(b.index, a.value)
                return
        if isinstance(e, Slot):
            if e.index in pc_slots:
                note(e.index, None)
            return
        if isinstance(e, SlotSelect):
            for j in range(e.base, e.base + e.size):
                if j in pc_slots:
                    note(j, None)
        for c in e.children():
            visit(c)

    for e in exprs:
        visit(e)
    return {k: (None if v is ALL else frozenset(v)) for k, v in out.items()}


def _slots(exprs: Iterable[Expr], pc_slots: set[int]) -> frozenset[int]:
    out: set[int] = set()
    for e in exprs:
        stack = [e]
        while stack:
            n = stack.pop()
            if isinstance(n, Slot):
                out.add(n.index)
            elif isinstance(n, SlotSelect):
                out.update(range(n.base, n.base + n.size))
            stack.extend(n.children())
    return frozenset(out - pc_slots)


def access(t: Transition, pc_slots: set[int]) -> _Access:
    """Reads and writes of one transition (its own pc excluded: it is in pc_from/pc_to)."""
    reads_e: list[Expr] = [t.guard]
    writes: set[int] = set()
    adds: dict[int, str] = {}
    for tgt, val in t.updates:
        if isinstance(tgt, Slot):
            if tgt.index == t.pc_slot:
                continue
            acc = _accumulate(tgt.index, val) if tgt.index not in pc_slots else None
            if acc is not None:
                adds[tgt.index] = acc[0]
                reads_e += acc[1]
                continue
            writes.add(tgt.index)
        else:
            reads_e.append(tgt.idx)
            writes.update(range(tgt.base, tgt.base + tgt.size))
        reads_e.append(val)
    pcr = _pc_reads(reads_e, pc_slots)
    pcr.pop(t.pc_slot, None)
    reads = _slots(reads_e, pc_slots)
    if reads & set(adds) or writes & set(adds):  # x also read or written otherwise
        for x in list(adds):
            if x in reads or x in writes:
                writes.add(x)
                del adds[x]
    return _Access(reads, frozenset(writes - pc_slots), pcr, adds)


def _moves(reader: _Access, t: Transition) -> bool:
    """Does t's pc move change what `reader` reads of t's pc?"""
    if t.pc_slot not in reader.pc_reads:
        return False
    codes = reader.pc_reads[t.pc_slot]
    return codes is ALL or t.pc_from in codes or t.pc_to in codes


def independent(t: Transition, a: _Access, u: Transition, b: _Access) -> bool:
    """t and u (of different processes) commute and never enable or disable each other."""
    if a.writes & (b.writes | b.reads) or a.reads & b.writes:
        return False
    if a.adds or b.adds:
        ta, ua = a.adds.keys(), b.adds.keys()
        if ta & (b.writes | b.reads) or ua & (a.writes | a.reads):
            return False
        if any(a.adds[x] != b.adds[x] for x in ta & ua):
            return False
    return not (_moves(b, t) or _moves(a, u))


def plan(compiled: Compiled, properties: list[str] | None = None) -> PorPlan:
    """Decide, per action, whether its process's steps at its label may be an ample set.

    `properties`: the properties being checked (None: all, lemmas included).
    """
    flat = compiled.flat
    spec = flat.spec
    kinds = {p.name: p.kind for p in spec.properties}
    wanted = list(kinds) if properties is None else list(properties)
    pc_slots = {s for ss in flat.pc_slots.values() for s in ss}
    daemons = {g.name for g in spec.groups if g.daemon}
    visible_exprs: list[Expr] = [flat.properties[n] for n in wanted  # type: ignore[misc]
                                 if kinds[n] == "invariant"]
    if properties is None:
        visible_exprs += list(flat.lemmas.values())
    final_exprs = [flat.properties[n] for n in wanted if kinds[n] == "final"]
    finals_visible = bool(final_exprs) and bool(daemons)
    if finals_visible:
        visible_exprs += final_exprs  # type: ignore[arg-type]
    proviso = bool(visible_exprs)
    vis_slots = _slots(visible_exprs, pc_slots)  # type: ignore[arg-type]
    vis_pcs = _pc_reads(visible_exprs, pc_slots)  # type: ignore[arg-type]

    procs: dict[tuple[str, int], int] = {}
    for t in flat.transitions:
        procs.setdefault((t.group, t.instance), len(procs))
    acc = {t.id: access(t, pc_slots) for t in flat.transitions}
    by_pl: dict[tuple[int, int], list[Transition]] = {}
    for t in flat.transitions:
        by_pl.setdefault((procs[(t.group, t.instance)], t.pc_from), []).append(t)
    by_proc: dict[int, list[Transition]] = {}
    for t in flat.transitions:
        by_proc.setdefault(procs[(t.group, t.instance)], []).append(t)

    def visible(t: Transition) -> bool:
        if acc[t.id].writes & vis_slots or acc[t.id].adds.keys() & vis_slots:
            return True
        if t.pc_slot in vis_pcs and _moves(_Access(frozenset(), frozenset(), vis_pcs), t):
            return True
        if finals_visible and t.group not in daemons:
            return t.pc_to == flat.group(t.group).pc_type.code(DONE)
        return False

    ok_pl: dict[tuple[int, int], bool] = {}
    for (p, label), ts in by_pl.items():
        ok = True
        for t in ts:
            if proviso and visible(t):
                ok = False
                break
            a = acc[t.id]
            for q, us in by_proc.items():
                if q == p:
                    continue
                if not all(independent(t, a, u, acc[u.id]) for u in us):
                    ok = False
                    break
            if not ok:
                break
        ok_pl[(p, label)] = ok
    safe: list[bool] = []
    proc: list[int] = []
    for act in compiled.actions:
        t = act.transition
        pid = procs[(t.group, t.instance)]
        proc.append(pid)
        safe.append(ok_pl[(pid, t.pc_from)])
    return PorPlan(safe, proc, proviso, sum(ok_pl.values()), len(ok_pl))


__all__ = ["PorPlan", "access", "independent", "plan"]
