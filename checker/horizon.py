"""Which step alternatives can fire at unrolling depth k: a cheap over-approximation.

An unrolling of depth k offers every step alternative at every step; most cannot fire
that early (vfio's padata_undo has an alternative per range of completed chunks, and
chunk 14 cannot be complete after 6 steps). `Horizon` computes, per depth, an
over-approximation of the values each slot can hold in the states reachable within k
steps (a set of values for small domains, an interval otherwise; non-relational), and
from it the alternatives whose label is reachable and whose guard is not false in it.
Leaving the others out of step k of an unrolling loses no run: a run's k-th state lies
in the abstraction, so the alternative it takes there passes the test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from checker.expr import (
    BOOL,
    BVT,
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
    VarType,
    walk,
)

SMALL = 64  # value sets up to this size are kept exact, larger ones become intervals
PAIRS = 4096  # pointwise evaluation of a binary operator up to this many value pairs

Abs = frozenset[int] | tuple[int, int] | None  # a value set, an interval [lo, hi], or any
BOTH = frozenset((0, 1))
TRUE, FALSE = frozenset((1,)), frozenset((0,))


def hull(a: Abs) -> tuple[int, int] | None:
    if a is None or isinstance(a, tuple):
        return a
    return (min(a), max(a)) if a else None


def join(a: Abs, b: Abs) -> Abs:
    if a is None or b is None:
        return None
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        u = a | b
        return u if len(u) <= SMALL else (min(u), max(u))
    ha, hb = hull(a), hull(b)
    if ha is None:
        return hb
    if hb is None:
        return ha
    return min(ha[0], hb[0]), max(ha[1], hb[1])


def of_type(t: VarType) -> Abs:
    """Every value of a domain."""
    if isinstance(t, BoolT):
        return BOTH
    if isinstance(t, EnumT):
        return frozenset(range(len(t.names)))
    if isinstance(t, IntT):
        return frozenset(range(t.lo, t.hi + 1)) if t.hi - t.lo < SMALL else (t.lo, t.hi)
    return None


def clip(a: Abs, t: VarType) -> Abs:
    """a restricted to a domain (an assignment outside it is a blocked spec error)."""
    dom = of_type(t)
    if a is None:
        return dom
    if isinstance(dom, frozenset):
        if isinstance(a, frozenset):
            return a & dom
        return frozenset(v for v in dom if a[0] <= v <= a[1])
    if dom is None:
        return a
    if isinstance(a, frozenset):
        return frozenset(v for v in a if dom[0] <= v <= dom[1])
    lo, hi = max(a[0], dom[0]), min(a[1], dom[1])
    return (lo, hi) if lo <= hi else frozenset()


def _point(op: str, x: int, y: int) -> int | None:
    match op:
        case "+":
            return x + y
        case "-":
            return x - y
        case "*":
            return x * y
        case "//":
            return x // y if y else None
        case "%":
            return x % y if y else None
        case "==":
            return int(x == y)
        case "!=":
            return int(x != y)
        case "<":
            return int(x < y)
        case "<=":
            return int(x <= y)
        case ">":
            return int(x > y)
        case ">=":
            return int(x >= y)
    return None


def _compare(op: str, a: tuple[int, int], b: tuple[int, int]) -> Abs:
    if op in ("<", ">="):
        r = TRUE if a[1] < b[0] else FALSE if a[0] >= b[1] else BOTH
        return r if op == "<" else frozenset(1 - v for v in r)
    if op in (">", "<="):
        r = TRUE if a[0] > b[1] else FALSE if a[1] <= b[0] else BOTH
        return r if op == ">" else frozenset(1 - v for v in r)
    if op in ("==", "!="):
        disjoint = a[1] < b[0] or b[1] < a[0]
        same = a[0] == a[1] == b[0] == b[1]
        r = FALSE if disjoint else TRUE if same else BOTH
        return r if op == "==" else frozenset(1 - v for v in r)
    return BOTH


def _binary(op: str, a: Abs, b: Abs) -> Abs:
    comparison = op in ("==", "!=", "<", "<=", ">", ">=")
    if isinstance(a, frozenset) and isinstance(b, frozenset) and len(a) * len(b) <= PAIRS:
        vals = {_point(op, x, y) for x in a for y in b}
        if None in vals:
            return BOTH if comparison else None
        out = frozenset(v for v in vals if v is not None)
        return out if len(out) <= SMALL else (min(out), max(out))
    ha, hb = hull(a), hull(b)
    if ha is None or hb is None:
        return BOTH if comparison else None
    if comparison:
        return _compare(op, ha, hb)
    if op == "+":
        return ha[0] + hb[0], ha[1] + hb[1]
    if op == "-":
        return ha[0] - hb[1], ha[1] - hb[0]
    if op == "*":
        ps = [x * y for x in ha for y in hb]
        return min(ps), max(ps)
    return None


class AbstractState:
    """One abstract value per slot, and the evaluation of expressions over it."""

    def __init__(self, values: Sequence[Abs], params: Mapping[str, Abs]) -> None:
        self.values, self.params = list(values), params
        self.memo: dict[int, tuple[Expr, Abs]] = {}  # by id; holds e so the id stays its

    def eval(self, e: Expr) -> Abs:
        hit = self.memo.get(id(e))
        if hit is None:
            hit = self.memo[id(e)] = (e, self._eval(e))
        return hit[1]

    def _eval(self, e: Expr) -> Abs:
        if isinstance(e, Const):
            return frozenset((e.value,))
        if isinstance(e, Param):
            return self.params.get(e.name, frozenset((e.value,)))
        if isinstance(e, Slot):
            return self.values[e.index]
        if isinstance(e, SlotSelect):
            out: Abs = frozenset()
            for j in self.indices(e.idx, e.size):
                out = join(out, self.values[e.base + j])
            return out
        if isinstance(e, ChoiceRef):
            return of_type(e.type)
        if not isinstance(e, Op):
            return None
        return self._op(e)

    def indices(self, idx: Expr, size: int) -> list[int]:
        """The in-range values an index expression can take."""
        a = self.eval(idx)
        if isinstance(a, frozenset):
            return sorted(j for j in a if 0 <= j < size)
        h = hull(a) or (0, size - 1)
        return list(range(max(h[0], 0), min(h[1], size - 1) + 1))

    def _op(self, e: Op) -> Abs:
        op, args = e.op, e.args
        if op == "and" or op == "or":
            vals = [self.eval(a) for a in args]
            absorbing, neutral = (FALSE, TRUE) if op == "and" else (TRUE, FALSE)
            if any(v == absorbing for v in vals):
                return absorbing
            return neutral if all(v == neutral for v in vals) else BOTH
        if op == "not":
            v = self.eval(args[0])
            return frozenset(1 - x for x in v) if isinstance(v, frozenset) else BOTH
        if op == "=>":
            a, b = self.eval(args[0]), self.eval(args[1])
            if a == FALSE or b == TRUE:
                return TRUE
            return FALSE if a == TRUE and b == FALSE else BOTH
        if op == "ite":
            c = self.eval(args[0])
            if c == TRUE:
                return self.eval(args[1])
            if c == FALSE:
                return self.eval(args[2])
            return join(self.eval(args[1]), self.eval(args[2]))
        if len(args) == 2 and not isinstance(args[0].sort, BVT):
            return _binary(op, self.eval(args[0]), self.eval(args[1]))
        return BOTH if e.sort == BOOL else None  # bit-vector arithmetic wraps: any value


class Horizon:
    """Per depth k, the step alternatives that can fire from a state reached within k
    steps. `alternatives` lists each as (pc slot, pc value, guard, [(target, value)])."""

    def __init__(self, init: Sequence[Abs], types: Sequence[VarType],
                 alternatives: Sequence[tuple[int, int, Expr, Sequence[tuple[Expr, Expr]]]],
                 params: Mapping[str, Abs]) -> None:
        self.types, self.alts, self.params = types, alternatives, params
        self.states = [AbstractState([clip(v, t) for v, t in zip(init, types, strict=True)],
                                     params)]
        self.fixed = False  # the last state is a fixpoint: every later depth is the same
        self._allowed: list[tuple[frozenset[int], frozenset[int]]] = []
        self.partial = [any(isinstance(n, SlotSelect) or (isinstance(n, Op) and n.op in (
            "//", "%")) for n in walk(g)) for _, _, g, _ in alternatives]

    def allowed(self, k: int) -> frozenset[int]:
        """Indices of the alternatives that may fire in a state reached within k steps."""
        return self._at(k)[0]

    def may_raise(self, k: int) -> frozenset[int]:
        """allowed(k), and those whose guard is false there but may itself raise."""
        return self._at(k)[1]

    def _at(self, k: int) -> tuple[frozenset[int], frozenset[int]]:
        while len(self._allowed) <= k:
            d = len(self._allowed)
            if d >= len(self.states):
                self._grow()
            if d >= len(self.states):  # fixpoint reached before depth d
                self._allowed.append(self._allowed[-1])
                continue
            self._allowed.append(self._enabled(self.states[d]))
        return self._allowed[k]

    def _enabled(self, a: AbstractState) -> tuple[frozenset[int], frozenset[int]]:
        fire, raise_ = [], []
        for i, (pc, label, guard, _) in enumerate(self.alts):
            at = a.values[pc]
            if isinstance(at, frozenset) and label not in at:
                continue
            if a.eval(guard) != FALSE:
                fire.append(i)
                raise_.append(i)
            elif self.partial[i]:
                raise_.append(i)
        return frozenset(fire), frozenset(raise_)

    def _grow(self) -> None:
        if self.fixed:
            return
        a = self.states[-1]
        new = list(a.values)
        for i in self._allowed[len(self.states) - 1][0]:  # computed by _at before growing
            pc, label, _, updates = self.alts[i]
            for tgt, val in updates:
                v = a.eval(val)
                if isinstance(tgt, Slot):
                    new[tgt.index] = join(new[tgt.index], clip(v, self.types[tgt.index]))
                elif isinstance(tgt, SlotSelect):
                    for j in a.indices(tgt.idx, tgt.size):
                        s = tgt.base + j
                        new[s] = join(new[s], clip(v, self.types[s]))
        if new == a.values:
            self.fixed = True
            return
        self.states.append(AbstractState(new, self.params))


def params_abstraction(concrete: Mapping[str, int], ranges: Mapping[str, tuple[int, int]]
                       ) -> dict[str, Abs]:
    out: dict[str, Abs] = {n: frozenset((v,)) for n, v in concrete.items()}
    for n, (lo, hi) in ranges.items():
        out[n] = frozenset(range(lo, hi + 1)) if hi - lo < SMALL else (lo, hi)
    return out


def initial(exprs: Sequence[Expr], params: Mapping[str, Abs]) -> list[Abs]:
    """The initial values (expressions over constants only) as abstract values."""
    a = AbstractState([], params)
    return [a.eval(e) for e in exprs]


__all__ = ["Horizon", "initial", "params_abstraction"]
