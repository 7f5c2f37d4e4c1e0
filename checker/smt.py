"""Translation of the Flat form to z3: states, transition relation, errors, properties.

The SMT engine reads the same resolved expression trees as the explicit engine
(`checker.flat.instantiate`); nothing here knows any particular spec. A state is one z3
constant per slot (bools as z3 Bool, integers and enum codes as z3 Int, bit-vectors as z3
BitVec). One step of the system is

    act = t  =>  pc_t == from_t /\\ choices in domain /\\ guard_t /\\ ok_t
    next[i]  =   ite(act = t1, value_t1_i, ite(act = t2, ..., cur[i]))

where the chain for slot i lists only the transitions that may write it (everything
else is the frame condition `next[i] = cur[i]`), and `ok_t` says that every value the
step computes is defined (array index in range, no division by zero) and lies in its
target's domain. Where the explicit engine raises a spec error, `error` is satisfiable:
the SMT engine never silently wraps, clips or blocks an out-of-domain assignment.

Definedness follows the compiled engine's evaluation order: `and`/`or`/`=>`/`ite`
short-circuit, and an `and` (`or`) with an argument that reads no state is decided by
that argument first, because `checker.compile.fold` folds it to a constant once choices
and constants are substituted.

Choices are fresh z3 variables per step constrained to their type's domain; spec
constants (`Param`) are integers, or z3 constants bounded by the declared [lo, hi] when
symbolic.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import z3

from checker.expr import (
    BOOL,
    BVT,
    INT,
    BoolT,
    ChoiceRef,
    Const,
    EnumT,
    Expr,
    IntT,
    Op,
    Param,
    Slot,
    SlotSelect,
    Sort,
    VarType,
    _apply,
    rebuild,
    walk,
)
from checker.flat import Flat, Transition
from checker.horizon import Horizon, initial, params_abstraction
from checker.spec import SpecError

ENUMERATE_CHOICES = 256  # choice domains up to this size are enumerated in `enabled`
QE_MILLIS = 5000  # budget for eliminating a large choice domain from a guard

ChoiceKey = tuple[str, VarType]
State = list[z3.ExprRef]
Choices = dict[ChoiceKey, z3.ExprRef]


def z3_sort(s: Sort) -> z3.SortRef:
    """The z3 sort of an expression sort (enums are their integer codes)."""
    if s == BOOL:
        return z3.BoolSort()
    if isinstance(s, BVT):
        return z3.BitVecSort(s.width)
    return z3.IntSort()


def in_domain(t: VarType, v: z3.ExprRef) -> z3.BoolRef:
    """Whether a z3 value lies in a variable type's domain."""
    if isinstance(t, IntT):
        return z3.And(v >= t.lo, v <= t.hi)
    if isinstance(t, EnumT):
        return z3.And(v >= 0, v < len(t.names))
    return z3.BoolVal(True)


def literal(t: VarType | Sort, v: int) -> z3.ExprRef:
    """A stored value (an int) as a z3 literal of the type's sort."""
    if isinstance(t, BoolT) or t == BOOL:
        return z3.BoolVal(bool(v))
    if isinstance(t, BVT):
        return z3.BitVecVal(v, t.width)
    return z3.IntVal(v)


def as_int(v: z3.ExprRef) -> int:
    """A z3 model value back to the int the state tuple stores."""
    if z3.is_bool(v):
        return int(z3.is_true(v))
    return int(v.as_long())  # type: ignore[attr-defined]


class Numbers:
    """How spec integers (and enum codes) are represented in z3.

    Mode "int": z3 Int (linear integer arithmetic). Mode "bv": signed bit-vectors of one
    width, chosen from static bounds of every integer subterm so that no computation of
    the spec can overflow; the unrolled formulas are then pure bit-vector logic, which z3
    bit-blasts to SAT, much faster on interleavings than its arithmetic core.
    """

    def __init__(self, width: int | None = None) -> None:
        self.width = width

    @property
    def bv(self) -> bool:
        return self.width is not None

    def sort(self, s: VarType | Sort) -> z3.SortRef:
        s = _sort(s) if isinstance(s, BoolT | IntT | EnumT) else s
        if s == BOOL:
            return z3.BoolSort()
        if isinstance(s, BVT):
            return z3.BitVecSort(s.width)
        return z3.BitVecSort(self.width) if self.width else z3.IntSort()

    def lit(self, t: VarType | Sort, v: int) -> z3.ExprRef:
        if isinstance(t, BoolT) or t == BOOL:
            return z3.BoolVal(bool(v))
        if isinstance(t, BVT):
            return z3.BitVecVal(v, t.width)
        return z3.BitVecVal(v, self.width) if self.width else z3.IntVal(v)

    def decode(self, v: z3.ExprRef, t: VarType | Sort) -> int:
        """A model value back to the int a state tuple stores."""
        if z3.is_bool(v):
            return int(z3.is_true(v))
        if self.width and not isinstance(t, BVT):
            return int(v.as_signed_long())  # type: ignore[attr-defined]
        return int(v.as_long())  # type: ignore[attr-defined]


INT_MODE = Numbers()


Interval = tuple[int, int] | None


def bounds(e: Expr, ranges: Mapping[str, tuple[int, int]],
           memo: dict[int, Interval] | None = None) -> Interval:
    """Static [lo, hi] of an integer expression from domains and constant ranges."""
    if memo is None:
        return _bounds(e, ranges, {})
    return _bounds(e, ranges, memo)


def _bounds(e: Expr, ranges: Mapping[str, tuple[int, int]], memo: dict[int, Interval]
            ) -> Interval:
    if id(e) in memo:
        return memo[id(e)]
    r = _bounds_node(e, ranges, memo)
    memo[id(e)] = r
    return r


def _bounds_node(e: Expr, ranges: Mapping[str, tuple[int, int]], memo: dict[int, Interval]
                 ) -> Interval:
    if isinstance(e, Const):
        return e.value, e.value
    if isinstance(e, Param):
        return ranges.get(e.name, (e.value, e.value))
    if isinstance(e, ChoiceRef | Slot | SlotSelect):
        t = e.type
        if isinstance(t, IntT):
            return t.lo, t.hi
        if isinstance(t, EnumT):
            return 0, len(t.names) - 1
        return (0, 1) if isinstance(t, BoolT) else None
    if not isinstance(e, Op):
        return None
    if e.op == "ite":
        a, b = _bounds(e.args[1], ranges, memo), _bounds(e.args[2], ranges, memo)
        return None if a is None or b is None else (min(a[0], b[0]), max(a[1], b[1]))
    if len(e.args) < 2:
        return None
    a, b = _bounds(e.args[0], ranges, memo), _bounds(e.args[1], ranges, memo)
    if a is None or b is None:
        return None
    if e.op == "+":
        return a[0] + b[0], a[1] + b[1]
    if e.op == "-":
        return a[0] - b[1], a[1] - b[0]
    if e.op == "*":
        prods = [x * y for x in a for y in b]
        return min(prods), max(prods)
    if e.op == "//":
        m = max(abs(a[0]), abs(a[1]))
        return -m, m
    if e.op == "%":
        m = max(abs(b[0]), abs(b[1]))
        return -m, m
    return None


def bv_width(exprs: Iterable[Expr], ranges: Mapping[str, tuple[int, int]],
             types: Iterable[VarType]) -> int | None:
    """A signed width holding every integer value the expressions can compute, or None."""
    top = 1
    for t in types:
        if isinstance(t, IntT):
            top = max(top, abs(t.lo), abs(t.hi))
        elif isinstance(t, EnumT):
            top = max(top, len(t.names))
    for lo, hi in ranges.values():
        top = max(top, abs(lo), abs(hi))
    memo: dict[int, Interval] = {}
    seen: set[int] = set()
    for root in exprs:
        for n in walk(root):
            if id(n) in seen:
                continue
            seen.add(id(n))
            if n.sort != INT and not isinstance(n.sort, EnumT):
                continue
            b = _bounds(n, ranges, memo)
            if b is None:
                return None
            top = max(top, abs(b[0]), abs(b[1]))
    return top.bit_length() + 2


def domain_size(t: VarType) -> int:
    return len(t.values())


def reads_state(e: Expr) -> bool:
    """Whether an expression reads any slot (otherwise the compiler folds it)."""
    return any(isinstance(n, Slot | SlotSelect) for n in walk(e))


def prepare(e: Expr, params: Mapping[str, int]) -> Expr:
    """Substitute the concrete constants and fold like `checker.compile.fold`.

    Choices and symbolic constants stay; the folding mirrors the compiler so the
    definedness of a guard (which subexpressions get evaluated) is the same.
    """

    def f(n: Expr) -> Expr | None:
        if isinstance(n, Param):
            return Const(params[n.name], INT) if n.name in params else n
        if isinstance(n, Op):
            args = tuple(rebuild(a, f) for a in n.args)
            if n.op in ("and", "or"):
                absorbing = 0 if n.op == "and" else 1
                if any(isinstance(a, Const) and a.value == absorbing for a in args):
                    return Const(absorbing, BOOL)
                args = tuple(a for a in args if not isinstance(a, Const))
                if not args:
                    return Const(1 - absorbing, BOOL)
                return args[0] if len(args) == 1 else Op(n.op, args, BOOL)
            if n.op == "ite" and isinstance(args[0], Const):
                return args[1] if args[0].value else args[2]
            if all(isinstance(a, Const) for a in args):
                mask = args[0].sort.mask if isinstance(args[0].sort, BVT) else None
                try:
                    return Const(_apply(n.op, [a.value for a in args], mask), n.sort)  # type: ignore[attr-defined]
                except (ZeroDivisionError, ValueError):
                    return Op(n.op, args, n.sort)  # left for the definedness check
            if all(a is b for a, b in zip(args, n.args, strict=True)):
                return n
            return Op(n.op, args, n.sort)
        if isinstance(n, SlotSelect):
            return SlotSelect(n.base, n.size, rebuild(n.idx, f), n.name, n.type)
        return None

    return rebuild(e, f)


class Translator:
    """Expression trees to z3 terms over given state and choice vectors.

    `term` returns (value, defined): `defined` is false exactly where the compiled engine
    would raise (index out of range, division by zero, negative shift). Results are
    hash-consed on the z3 terms of the operands, so the many structurally equal
    subexpressions of a spec's instances are translated once.
    """

    def __init__(self, params: Mapping[str, z3.ExprRef], num: Numbers = INT_MODE) -> None:
        self.params, self.num = params, num
        self.T = z3.BoolVal(True)
        self._cons: dict[tuple[Any, ...], tuple[z3.ExprRef, z3.BoolRef, tuple[Any, ...]]] = {}
        self._reads: dict[int, bool] = {}

    def term(self, e: Expr, state: Sequence[z3.ExprRef],
             choices: Mapping[ChoiceKey, z3.ExprRef] | None = None) -> tuple[z3.ExprRef,
                                                                             z3.BoolRef]:
        memo: dict[int, tuple[z3.ExprRef, z3.BoolRef]] = {}
        ch = choices or {}
        return self._t(e, state, ch, memo)

    def value(self, e: Expr, state: Sequence[z3.ExprRef],
              choices: Mapping[ChoiceKey, z3.ExprRef] | None = None) -> z3.ExprRef:
        return self.term(e, state, choices)[0]

    def conj(self, *xs: z3.BoolRef) -> z3.BoolRef:
        """And, without the (very common) `true` definedness conditions."""
        ys = [x for x in xs if x is not self.T]
        return self.T if not ys else ys[0] if len(ys) == 1 else z3.And(*ys)

    def reads_state(self, e: Expr) -> bool:
        hit = self._reads.get(id(e))
        if hit is None:
            hit = isinstance(e, Slot | SlotSelect) or any(
                self.reads_state(c) for c in e.children())
            self._reads[id(e)] = hit
        return hit

    def _t(self, e: Expr, s: Sequence[z3.ExprRef], ch: Mapping[ChoiceKey, z3.ExprRef],
           memo: dict[int, tuple[z3.ExprRef, z3.BoolRef]]) -> tuple[z3.ExprRef, z3.BoolRef]:
        hit = memo.get(id(e))
        if hit is not None:
            return hit
        r = self._node(e, s, ch, memo)
        memo[id(e)] = r
        return r

    def _node(self, e: Expr, s: Sequence[z3.ExprRef], ch: Mapping[ChoiceKey, z3.ExprRef],
              memo: dict[int, tuple[z3.ExprRef, z3.BoolRef]]) -> tuple[z3.ExprRef, z3.BoolRef]:
        if isinstance(e, Const):
            return self.num.lit(e.sort, e.value), self.T
        if isinstance(e, Param):
            if e.name not in self.params:
                return self.num.lit(INT, e.value), self.T
            return self.params[e.name], self.T
        if isinstance(e, ChoiceRef):
            return ch[(e.name, e.type)], self.T
        if isinstance(e, Slot):
            return s[e.index], self.T
        if isinstance(e, SlotSelect):
            idx, wd = self._t(e.idx, s, ch, memo)
            key = ("select", e.base, e.size, s[e.base].get_id(), idx.get_id(), wd.get_id())
            hit = self._cons.get(key)
            if hit is not None:
                return hit[0], hit[1]
            v = s[e.base + e.size - 1]
            for j in range(e.size - 2, -1, -1):
                v = z3.If(idx == j, s[e.base + j], v)
            out = v, self.conj(wd, idx >= 0, idx < e.size)
            self._cons[key] = (*out, (idx, wd, s[e.base]))
            return out
        if not isinstance(e, Op):
            raise SpecError("smt", f"unresolved reference {e!r}")
        args = [self._t(a, s, ch, memo) for a in e.args]
        if e.op in ("and", "or"):
            pure = tuple(not self.reads_state(a) for a in e.args)
            key: tuple[Any, ...] = (e.op, pure) + tuple((v.get_id(), w.get_id())
                                                        for v, w in args)
        else:
            key = (e.op,) + tuple((v.get_id(), w.get_id()) for v, w in args)
        hit = self._cons.get(key)
        if hit is not None:
            return hit[0], hit[1]
        out = self._junction(e, args) if e.op in ("and", "or") else self._op(e, args)
        self._cons[key] = (*out, tuple(args))  # keeps the operands (their ids) alive
        return out

    def _op(self, e: Op, args: list[tuple[z3.ExprRef, z3.BoolRef]]) -> tuple[z3.ExprRef,
                                                                            z3.BoolRef]:
        op = e.op
        v = [a[0] for a in args]
        wds = [a[1] for a in args]
        if op == "ite":
            w = wds[1] if wds[1] is wds[2] else z3.If(v[0], wds[1], wds[2])
            return z3.If(v[0], v[1], v[2]), self.conj(wds[0], w)
        if op == "=>":
            w = self.T if wds[1] is self.T else z3.Implies(v[0], wds[1])
            return z3.Implies(v[0], v[1]), self.conj(wds[0], w)
        wd = self.conj(*wds)
        bv = e.args[0].sort if isinstance(e.args[0].sort, BVT) else None
        match op:
            case "not":
                return z3.Not(v[0]), wd
            case "+":
                return v[0] + v[1], wd
            case "-":
                return v[0] - v[1], wd
            case "*":
                return v[0] * v[1], wd
            case "//" | "%":
                a, b = v
                if self.num.bv:  # z3's bvsdiv truncates: step down when signs differ
                    r = z3.SRem(a, b)
                    q = z3.If(z3.And(r != 0, (r < 0) != (b < 0)), a / b - 1, a / b)
                else:  # SMT-LIB div is floor division for a positive divisor
                    q = z3.If(b > 0, a / b, (-a) / (-b))
                return (q if op == "//" else a - b * q), self.conj(wd, b != 0)
            case "&":
                return v[0] & v[1], wd
            case "|":
                return v[0] | v[1], wd
            case "^":
                return v[0] ^ v[1], wd
            case "~":
                return ~v[0], wd
            case "<<" | ">>":
                return self._shift(op, v[0], v[1], e.args[1].sort, bv, wd)  # type: ignore[arg-type]
            case "bit":
                i = e.args[1].value  # type: ignore[attr-defined]
                return z3.Extract(i, i, v[0]) == 1, wd
            case "==":
                return v[0] == v[1], wd
            case "!=":
                return v[0] != v[1], wd
            case "<" | "<=" | ">" | ">=":
                return _compare(op, v[0], v[1], bv is not None), wd
        raise SpecError("smt", f"unknown operator {op}")

    def _shift(self, op: str, x: z3.ExprRef, y: z3.ExprRef, ysort: Sort, bv: BVT,
               wd: z3.BoolRef) -> tuple[z3.ExprRef, z3.BoolRef]:
        def sh(amount: z3.ExprRef) -> z3.ExprRef:
            return x << amount if op == "<<" else z3.LShR(x, amount)

        if isinstance(ysort, BVT):
            return sh(y), wd
        zero = z3.BitVecVal(0, bv.width)
        if self.num.width is None:
            amount = z3.Int2BV(y, bv.width)
        elif self.num.width >= bv.width:
            amount = z3.Extract(bv.width - 1, 0, y)
        else:
            amount = z3.ZeroExt(bv.width - self.num.width, y)
        return z3.If(y >= bv.width, zero, sh(amount)), self.conj(wd, y >= 0)

    def _junction(self, e: Op, args: list[tuple[z3.ExprRef, z3.BoolRef]]
                  ) -> tuple[z3.ExprRef, z3.BoolRef]:
        is_and = e.op == "and"
        vals = [v for v, _ in args]
        value = z3.And(*vals) if is_and else z3.Or(*vals)
        pure = [self.reads_state(x) is False for x in e.args]
        # compile.fold first decides the junction by a defined pure argument of the
        # absorbing value; otherwise the rest is evaluated in order, short-circuiting
        wd: z3.BoolRef = self.T
        for (v, d), is_pure in zip(reversed(args), reversed(pure), strict=True):
            if not is_pure and wd is not self.T:
                wd = z3.Implies(v, wd) if is_and else z3.Implies(z3.Not(v), wd)
            wd = self.conj(d, wd)
        if any(pure) and wd is not self.T:
            decided = z3.Or(*[z3.And(d, z3.Not(v) if is_and else v)
                              for (v, d), p in zip(args, pure, strict=True) if p])
            wd = z3.Or(decided, wd)
        return value, wd


def _compare(op: str, a: z3.ExprRef, b: z3.ExprRef, unsigned: bool) -> z3.BoolRef:
    if unsigned:
        return {"<": z3.ULT, "<=": z3.ULE, ">": z3.UGT, ">=": z3.UGE}[op](a, b)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


@dataclass
class Prepared:
    """A transition with concrete constants substituted and folded."""

    t: Transition
    guard: Expr
    updates: tuple[tuple[Slot | SlotSelect, Expr], ...]
    keys: tuple[ChoiceKey, ...]


def live(prepared: list[Prepared], flat: Flat) -> list[Prepared]:
    """The transitions whose label its process instance can reach; act values index these.

    Reachability over each instance's control graph, an edge per transition whose guard
    is not constantly false once concrete constants are folded (`h.self == 0` on helper
    3, say): an over-approximation of the labels a run can reach, so the transitions
    dropped can never fire nor raise. Specs whose caller alone runs a long tail (vfio's
    padata_undo, 136 alternatives per helper at 16 chunks) lose most of their size.
    """
    edges: dict[tuple[int, int], set[int]] = {}
    for p in prepared:
        if isinstance(p.guard, Const) and not p.guard.value:
            continue
        edges.setdefault((p.t.pc_slot, p.t.pc_from), set()).add(p.t.pc_to)
    reach: set[tuple[int, int]] = set()
    todo = []
    for slot in {p.t.pc_slot for p in prepared}:
        init = flat.init[slot]
        if not isinstance(init, Const):
            return prepared  # a symbolic initial label: keep everything
        todo.append((slot, init.value))
    while todo:
        node = todo.pop()
        if node in reach:
            continue
        reach.add(node)
        todo += [(node[0], pc) for pc in edges.get(node, ())]
    return [p for p in prepared if (p.t.pc_slot, p.t.pc_from) in reach]


@dataclass
class Failure:
    """Why a transition is a spec error in some state (decoded from a model)."""

    transition: Transition
    choice: dict[str, Any]
    message: str


class Encoding:
    """The Flat form of one spec as z3 formulas over state vectors.

    Formulas are built once over template vectors and instantiated per unrolling step by
    substitution, so a deep unrolling costs no Python re-translation.
    """

    def __init__(self, flat: Flat, symbolic: Iterable[str] = (), arith: str = "auto",
                 extra: Iterable[Expr] = (), base: Encoding | None = None) -> None:
        """arith: "int", "bv", or "auto" (bit-vectors whenever every integer is bounded).
        extra: further expressions (queries) the chosen width must hold. base: an
        encoding of the same spec and constants whose prepared expressions are reused."""
        self.flat = flat
        consts = flat.spec.constants
        sym = list(dict.fromkeys(symbolic))
        for name in sym:
            if name not in consts:
                known = ", ".join(consts) or "none"
                raise SpecError(f"spec {flat.spec.name}",
                                f"--symbolic {name}: not a constant of the spec (constants: "
                                f"{known})")
        self.concrete: dict[str, int] = {n: p.value for n, p in consts.items() if n not in sym}
        self.ranges: dict[str, tuple[int, int]] = {n: (consts[n].lo, consts[n].hi) for n in sym}
        self.sym_names = sym
        if base is not None and base.sym_names == sym:
            self.prepared, self.keys = base.prepared, base.keys
            self.init_exprs, self.props, self.lemmas = base.init_exprs, base.props, base.lemmas
            self.finished_expr = base.finished_expr
        else:
            self.prepared = live([self._prepare(t) for t in flat.transitions], flat)
            self.keys = list(dict.fromkeys(k for p in self.prepared for k in p.keys))
            self.init_exprs = [prepare(e, self.concrete) for e in flat.init]
            self.props = {n: None if e is None else prepare(e, self.concrete)
                          for n, e in flat.properties.items()}
            self.lemmas = {n: prepare(e, self.concrete) for n, e in flat.lemmas.items()}
            self.finished_expr = prepare(flat.finished, self.concrete)
        self.extra = [prepare(e, self.concrete) for e in extra]
        width = None
        if arith != "int":
            width = bv_width(self._all_exprs(), self.ranges, [i.type for i in flat.slots]
                             + [k[1] for k in self.keys])
            if width is None and arith == "bv":
                raise SpecError(f"spec {flat.spec.name}", "--arith bv: some integer "
                                "expression has no static bound")
        self.arith = "bv" if width else "int"
        self.num = Numbers(width)
        self.symbolic: dict[str, z3.ExprRef] = {n: z3.Const(n, self.num.sort(INT)) for n in sym}
        self.tr = Translator(self.symbolic, self.num)
        self.act_width = (len(self.prepared) + 1).bit_length()  # holds the stutter bound
        self.s = self.state("s")
        self.c = self.choices("c")
        self.act = self.act_var("act")
        self.s2 = self.state("s'")
        self._trans: z3.BoolRef | None = None
        self._trans_at: dict[frozenset[int], z3.BoolRef] = {}
        self._horizon: Horizon | None = None
        self._error: z3.BoolRef | None = None
        self._enabled: z3.BoolRef | None = None
        self._alts: dict[int, tuple[z3.BoolRef, z3.BoolRef, dict[int, z3.ExprRef]]] = {}

    def _all_exprs(self) -> list[Expr]:
        out = list(self.init_exprs) + [self.finished_expr] + list(self.lemmas.values())
        out += [e for e in self.props.values() if e is not None] + self.extra
        for p in self.prepared:
            out.append(p.guard)
            for tgt, v in p.updates:
                out.append(v)
                if isinstance(tgt, SlotSelect):
                    out.append(tgt.idx)
        return out

    def twin(self, arith: str) -> Encoding:
        """The same spec encoded with another arithmetic (Spacer wants integers)."""
        return Encoding(self.flat, self.sym_names, arith, self.extra, base=self)

    # -- vectors
    def state(self, tag: str) -> State:
        return [z3.Const(f"{tag}|{info.name}", self.num.sort(info.type))
                for info in self.flat.slots]

    def act_var(self, name: str) -> z3.ExprRef:
        """Which transition a step takes (a bit-vector in bv mode: no arithmetic mixed in)."""
        return z3.BitVec(name, self.act_width) if self.num.bv else z3.Int(name)

    def choices(self, tag: str) -> Choices:
        out: Choices = {}
        names: set[str] = set()
        for key in self.keys:
            name = key[0] if key[0] not in names else f"{key[0]}#{len(names)}"
            names.add(name)
            out[key] = z3.Const(f"{tag}|{name}", self.num.sort(key[1]))
        return out

    def _prepare(self, t: Transition) -> Prepared:
        ups = tuple((tgt if isinstance(tgt, Slot) else prepare(tgt, self.concrete), prepare(v,
                    self.concrete)) for tgt, v in t.updates)
        keys = tuple((c.name, c.type) for c in t.choices)
        return Prepared(t, prepare(t.guard, self.concrete), ups, keys)  # type: ignore[arg-type]

    # -- instantiation of templates
    def at(self, f: z3.ExprRef, s: State, c: Choices | None = None, act: z3.ExprRef | None = None,
           s2: State | None = None) -> z3.ExprRef:
        """A template formula instantiated on given vectors."""
        pairs = list(zip(self.s, s, strict=True))
        if c is not None:
            pairs += [(self.c[k], c[k]) for k in self.keys]
        if act is not None:
            pairs.append((self.act, act))
        if s2 is not None:
            pairs += list(zip(self.s2, s2, strict=True))
        return z3.substitute(f, *pairs) if pairs else f

    # -- constraints
    def params_ok(self) -> z3.BoolRef:
        """The symbolic constants within their declared ranges."""
        return z3.And(*[z3.And(v >= self.ranges[n][0], v <= self.ranges[n][1])
                        for n, v in self.symbolic.items()])

    def domain(self, s: State) -> z3.BoolRef:
        """Every slot within its variable's domain."""
        return z3.And(*[in_domain(info.type, s[info.index]) for info in self.flat.slots])

    def choice_domain(self, c: Choices, keys: Iterable[ChoiceKey] | None = None) -> z3.BoolRef:
        return z3.And(*[in_domain(k[1], c[k]) for k in (self.keys if keys is None else keys)])

    def init(self, s: State) -> z3.BoolRef:
        """s is the initial state (over the symbolic constants)."""
        return z3.And(*[s[i] == self.tr.value(e, []) for i, e in enumerate(self.init_exprs)])

    def init_error(self) -> z3.BoolRef:
        """Some initial value is undefined or outside its variable's domain."""
        bad = []
        for info, e in zip(self.flat.slots, self.init_exprs, strict=True):
            v, wd = self.tr.term(e, [])
            bad.append(z3.Or(z3.Not(wd), z3.Not(in_domain(info.type, v))))
        return z3.Or(*bad)

    def ok(self, p: Prepared, s: State, c: Choices) -> z3.BoolRef:
        """Evaluating p's guard, and if it holds its updates, raises no spec error."""
        tr = self.tr
        g, gwd = tr.term(p.guard, s, c)
        parts = []
        for tgt, val in p.updates:
            v, wd = tr.term(val, s, c)
            parts.append(wd)
            if not _fits(tgt, val):
                parts.append(in_domain(tgt.type, v))
            if isinstance(tgt, SlotSelect):
                i, iwd = tr.term(tgt.idx, s, c)
                parts += [iwd, i >= 0, i < tgt.size]
        upd = tr.conj(*parts)
        return tr.conj(gwd, tr.T if upd is tr.T else z3.Implies(g, upd))

    def _writes(self, p: Prepared, s: State, c: Choices) -> dict[int, z3.ExprRef]:
        """New values of the slots p may write (dynamic writes first, statics win)."""
        out: dict[int, z3.ExprRef] = {}
        statics = []
        for tgt, val in p.updates:
            v = self.tr.value(val, s, c)
            if isinstance(tgt, Slot):
                statics.append((tgt.index, v))
                continue
            i = self.tr.value(tgt.idx, s, c)
            for j in range(tgt.size):
                slot = tgt.base + j
                out[slot] = z3.If(i == j, v, out.get(slot, s[slot]))
        out.update(statics)
        return out

    @property
    def stutter(self) -> int:
        """The act value of a stuttering step (s' = s), used for "within k steps" runs."""
        return len(self.prepared)

    def act_range(self, act: z3.ExprRef, stutter: bool = False) -> z3.BoolRef:
        n = len(self.prepared) + (1 if stutter else 0)
        return z3.ULT(act, n) if self.num.bv else z3.And(act >= 0, act < n)

    def trans(self, stutter: bool = False, depth: int | None = None) -> z3.BoolRef:
        """Template T(s, c, act, s'): one transition fires, guard true, no spec error.

        With stutter, act may also be `self.stutter`: nothing changes. With a depth, s
        is a state reached within that many steps and only the transitions that can fire
        there are offered (`checker.horizon`): the same runs, a smaller formula."""
        if depth is None:
            return z3.And(self.act_range(self.act, stutter), self._step())
        allowed = self.horizon().allowed(depth)
        if len(allowed) == len(self.prepared):
            return z3.And(self.act_range(self.act, stutter), self._step())
        if allowed not in self._trans_at:
            self._trans_at[allowed] = self._build_step(sorted(allowed))
        acts = [self.act == i for i in sorted(allowed)]
        if stutter:
            acts.append(self.act == self.stutter)
        return z3.And(z3.Or(*acts), self._trans_at[allowed])

    def horizon(self) -> Horizon:
        if self._horizon is None:
            params = params_abstraction({}, self.ranges)
            alts = [(p.t.pc_slot, p.t.pc_from, p.guard, p.updates) for p in self.prepared]
            self._horizon = Horizon(initial(self.init_exprs, params),
                                    [i.type for i in self.flat.slots], alts, params)
        return self._horizon

    def _step(self) -> z3.BoolRef:
        if self._trans is None:
            self._trans = self._build_step(range(len(self.prepared)))
        return self._trans

    def _alt(self, i: int) -> tuple[z3.BoolRef, z3.BoolRef, dict[int, z3.ExprRef]]:
        """Alternative i over the template vectors: guard, no-error condition, writes.

        Translated once and shared by the templates of every depth (`trans`, `error`)."""
        hit = self._alts.get(i)
        if hit is None:
            p, s, c = self.prepared[i], self.s, self.c
            hit = (self.tr.value(p.guard, s, c), self.ok(p, s, c), self._writes(p, s, c))
            self._alts[i] = hit
        return hit

    def _build_step(self, indices: Iterable[int]) -> z3.BoolRef:
        s, c, act = self.s, self.c, self.act
        nxt: list[z3.ExprRef] = list(s)
        parts = [self.choice_domain(c)]
        for i in reversed(list(indices)):
            t = self.prepared[i].t
            g, ok, writes = self._alt(i)
            parts.append(z3.Implies(act == i, z3.And(s[t.pc_slot] == t.pc_from, g, ok)))
            for slot, v in writes.items():
                nxt[slot] = z3.If(act == i, v, nxt[slot])
        parts += [self.s2[i] == nxt[i] for i in range(len(s))]
        return z3.And(*parts)

    def error(self, depth: int | None = None) -> z3.BoolRef:
        """Template E(s, c): some transition at its label raises a spec error.

        With a depth, s is a state reached within that many steps: only the transitions
        that may raise there are asked about (`Horizon.may_raise`)."""
        if depth is not None:
            which = self.horizon().may_raise(depth)
            if len(which) < len(self.prepared):
                return self._error_of(sorted(which))
        if self._error is None:
            self._error = self._error_of(range(len(self.prepared)))
        return self._error

    def _error_of(self, indices: Iterable[int]) -> z3.BoolRef:
        s, c = self.s, self.c
        return z3.Or(*[z3.And(s[p.t.pc_slot] == p.t.pc_from, self.choice_domain(c, p.keys),
                              z3.Not(self._alt(i)[1]))
                       for i, p in ((i, self.prepared[i]) for i in indices)])

    def enabled(self) -> z3.BoolRef:
        """Template: some transition's guard holds for some choice value (choices removed)."""
        if self._enabled is None:
            s, c = self.s, self.c
            parts = []
            for p in self.prepared:
                g = self.tr.value(p.guard, s, c)
                parts.append(z3.And(s[p.t.pc_slot] == p.t.pc_from, self._exists(p.keys, g)))
            self._enabled = z3.Or(*parts)
        return self._enabled

    def _exists(self, keys: tuple[ChoiceKey, ...], g: z3.BoolRef) -> z3.BoolRef:
        if not keys:
            return g
        size = 1
        for k in keys:
            size *= domain_size(k[1])
        if size <= ENUMERATE_CHOICES:
            combos = itertools.product(*[[self.num.lit(k[1], v) for v in k[1].values()]
                                         for k in keys])
            return z3.Or(*[z3.substitute(g, *[(self.c[k], v) for k, v in zip(keys, combo,
                                                                                strict=True)])
                           for combo in combos])
        ex = z3.Exists([self.c[k] for k in keys], z3.And(self.choice_domain(self.c, keys), g))
        try:
            goals = z3.TryFor(z3.Tactic("qe"), QE_MILLIS)(ex)
            qf = goals.as_expr()
        except z3.Z3Exception:
            return ex
        return ex if _has_quantifier(qf) else qf

    def finished(self) -> z3.BoolRef:
        return self.tr.value(self.finished_expr, self.s)

    def holds(self, name: str) -> z3.BoolRef:
        """Template: property `name` holds in state s (deadlock: finished or enabled)."""
        kind = self.flat.spec.property(name).kind
        if kind == "deadlock":
            return z3.Or(self.finished(), self.enabled())
        e = self.props[name]
        assert e is not None
        v = self.tr.value(e, self.s)
        return z3.Implies(self.finished(), v) if kind == "final" else v

    def prop_error(self, name: str) -> z3.BoolRef:
        """Template: evaluating property `name` in s raises (index out of range)."""
        kind = self.flat.spec.property(name).kind
        e = self.props.get(name)
        if e is None:
            return z3.BoolVal(False)
        wd = self.tr.term(e, self.s)[1]
        return z3.And(self.finished(), z3.Not(wd)) if kind == "final" else z3.Not(wd)

    def lemma(self, name: str) -> z3.BoolRef:
        return self.tr.value(self.lemmas[name], self.s)

    def sum_expr(self, e: Expr) -> z3.ExprRef:
        """Template: an integer expression (queries) over s."""
        return self.tr.value(prepare(e, self.concrete), self.s)

    def sum_bool(self, e: Expr) -> z3.BoolRef:
        """Template: a bool expression over s (a bound being proved)."""
        return self.tr.value(prepare(e, self.concrete), self.s)

    # -- decoding
    def value(self, m: z3.ModelRef, v: z3.ExprRef, t: VarType | Sort = INT) -> int:
        """The int a model gives a term of type t."""
        return self.num.decode(m.eval(v, model_completion=True), t)

    def decode_state(self, m: z3.ModelRef, s: State) -> tuple[int, ...]:
        return tuple(self.value(m, v, info.type) for v, info in zip(s, self.flat.slots,
                                                                      strict=True))

    def decode_params(self, m: z3.ModelRef) -> dict[str, int]:
        return {n: self.value(m, v) for n, v in self.symbolic.items()}

    def decode_choice(self, m: z3.ModelRef, t: Transition, c: Choices) -> tuple[dict[str, int],
                                                                                dict[str, Any]]:
        """The choice values of t in a model: (name -> stored int, name -> display value)."""
        raw: dict[str, int] = {}
        shown: dict[str, Any] = {}
        for ch in t.choices:
            v = self.value(m, c[(ch.name, ch.type)], ch.type)
            raw[ch.name] = v
            shown[ch.name] = ch.type.show(v)
        return raw, shown

    def act_value(self, m: z3.ModelRef, act: z3.ExprRef) -> int:
        return as_int(m.eval(act, model_completion=True))

    def decode_act(self, m: z3.ModelRef, act: z3.ExprRef) -> Transition:
        return self.prepared[self.act_value(m, act)].t

    def explain_error(self, m: z3.ModelRef, s: State, c: Choices) -> Failure:
        """Which transition raises in the model's state, worded like the explicit engine."""
        state = self.decode_state(m, s)
        for p in self.prepared:
            t = p.t
            if state[t.pc_slot] != t.pc_from:
                continue
            # as in error(): only choice values within their domains count
            bad = z3.And(self.choice_domain(c, p.keys), z3.Not(self.ok(p, s, c)))
            if not z3.is_true(m.eval(bad, model_completion=True)):
                continue
            raw, shown = self.decode_choice(m, t, c)
            where = f"process {t.process}: step {t.step.label}"
            desc = t.step.kernel + (f" [{t.step.note}]" if t.step.note else "")
            if shown:
                desc += " {" + ", ".join(f"{k}={v}" for k, v in shown.items()) + "}"
            return Failure(t, shown, f"{where} ({desc}): {self._which(m, p, s, c)}")
        raise AssertionError("explain_error: no failing transition in the model")

    def _which(self, m: z3.ModelRef, p: Prepared, s: State, c: Choices) -> str:
        def ev(x: z3.ExprRef) -> z3.ExprRef:
            return m.eval(x, model_completion=True)

        g, gwd = self.tr.term(p.guard, s, c)
        if not z3.is_true(ev(gwd)):
            return f"evaluating the guard {p.guard!r} fails (index out of range or division " \
                   "by zero)"
        for tgt, val in p.updates:
            v, wd = self.tr.term(val, s, c)
            if not z3.is_true(ev(wd)):
                return f"evaluating {val!r} fails (index out of range or division by zero)"
            if not z3.is_true(ev(in_domain(tgt.type, v))):
                return f"assigns {self.value(m, v, tgt.type)} to {tgt.name}, outside its domain"
            if isinstance(tgt, SlotSelect):
                i = ev(self.tr.value(tgt.idx, s, c))
                if not z3.is_true(ev(z3.And(i >= 0, i < tgt.size))):
                    return f"index {self.value(m, i)} out of range for {tgt.name}"
        return "raises a spec error"


def _fits(tgt: Slot | SlotSelect, v: Expr) -> bool:
    """The value is statically in the target's domain (as `checker.compile` decides)."""
    t = tgt.type
    if not isinstance(t, IntT):
        return True  # bools, enums and bit-vectors are well-sorted by construction
    if isinstance(v, Const):
        return t.lo <= v.value <= t.hi
    if isinstance(v, Slot | SlotSelect) and isinstance(v.type, IntT):
        return t.lo <= v.type.lo and v.type.hi <= t.hi
    return False


def _sort(t: VarType) -> Sort:
    if isinstance(t, BoolT):
        return BOOL
    if isinstance(t, BVT):
        return t
    return INT


def _has_quantifier(e: z3.ExprRef) -> bool:
    todo = [e]
    seen: set[int] = set()
    while todo:
        x = todo.pop()
        if x.get_id() in seen:
            continue
        seen.add(x.get_id())
        if z3.is_quantifier(x):
            return True
        todo.extend(x.children())
    return False


__all__ = ["Encoding", "Failure", "Numbers", "Translator", "as_int", "bounds", "bv_width",
           "literal", "prepare", "z3_sort"]
