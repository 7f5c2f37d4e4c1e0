"""The expression layer: guards, effects and properties as data.

Every spec expression is a tree of these nodes, never a Python callable, because two
interpreters read the same trees: the explicit-state engine compiles them to Python
source (`checker.compile`) and the SMT engine translates them to z3 (`checker.smt`).
`evaluate` is a third, naive interpreter used by tests as the reference semantics.

Sorts: booleans, mathematical integers (variables carry a bounded domain, checked on
assignment), enums (compared with their value names), and fixed-width unsigned
bit-vectors (arithmetic wraps modulo 2**width, comparisons are unsigned).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# ---------------------------------------------------------------- types / sorts


@dataclass(frozen=True)
class BoolT:
    """Boolean variable type."""

    def values(self) -> range:
        return range(2)

    def show(self, v: int) -> Any:
        return bool(v)


@dataclass(frozen=True)
class IntT:
    """Integer variable type with an inclusive domain [lo, hi]."""

    lo: int
    hi: int

    def __post_init__(self) -> None:
        if self.lo > self.hi:
            raise ValueError(f"empty integer domain [{self.lo}, {self.hi}]")

    def values(self) -> range:
        return range(self.lo, self.hi + 1)

    def show(self, v: int) -> Any:
        return v


@dataclass(frozen=True)
class EnumT:
    """Enumeration: values are names, stored as their position."""

    name: str
    names: tuple[str, ...]

    def code(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"{name!r} is not a value of enum {self.name} {self.names}") from None

    def values(self) -> range:
        return range(len(self.names))

    def show(self, v: int) -> Any:
        return self.names[v]


@dataclass(frozen=True)
class BVT:
    """Unsigned bit-vector of a fixed width (PTE words)."""

    width: int

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    def values(self) -> range:
        return range(1 << self.width)

    def show(self, v: int) -> Any:
        return v


VarType = BoolT | IntT | EnumT | BVT


def Bool() -> BoolT:
    return BoolT()


def Int(lo: int, hi: int) -> IntT:
    return IntT(lo, hi)


def Enum(name: str, *names: str) -> EnumT:
    return EnumT(name, tuple(names))


def BV(width: int) -> BVT:
    return BVT(width)


BOOL = "bool"
INT = "int"
Sort = str | EnumT | BVT  # "bool", "int", an EnumT or a BVT


def sort_of(t: VarType) -> Sort:
    """The expression sort of values of a variable type."""
    if isinstance(t, BoolT):
        return BOOL
    if isinstance(t, IntT):
        return INT
    return t


def contains(t: VarType, v: int) -> bool:
    """Whether the stored value v lies in the variable type's domain."""
    if isinstance(t, BoolT):
        return v in (0, 1)
    if isinstance(t, IntT):
        return t.lo <= v <= t.hi
    if isinstance(t, EnumT):
        return 0 <= v < len(t.names)
    return 0 <= v <= t.mask


# ---------------------------------------------------------------- nodes


class Expr:
    """Base of all expression nodes; operators build new nodes."""

    __slots__ = ("sort",)
    sort: Sort
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError(
            "a spec expression has no truth value at build time: "
            "use & | ~ (or And/Or/Not/ite) instead of and/or/not/if"
        )

    # arithmetic / bitwise
    def __add__(self, o: Any) -> Expr:
        return arith("+", self, o)

    def __radd__(self, o: Any) -> Expr:
        return arith("+", o, self)

    def __sub__(self, o: Any) -> Expr:
        return arith("-", self, o)

    def __rsub__(self, o: Any) -> Expr:
        return arith("-", o, self)

    def __mul__(self, o: Any) -> Expr:
        return arith("*", self, o)

    def __rmul__(self, o: Any) -> Expr:
        return arith("*", o, self)

    def __floordiv__(self, o: Any) -> Expr:
        return arith("//", self, o)

    def __mod__(self, o: Any) -> Expr:
        return arith("%", self, o)

    def __neg__(self) -> Expr:
        return arith("-", 0, self)

    def __lshift__(self, o: Any) -> Expr:
        return bvop("<<", self, o)

    def __rshift__(self, o: Any) -> Expr:
        return bvop(">>", self, o)

    def __xor__(self, o: Any) -> Expr:
        return bvop("^", self, o)

    def __and__(self, o: Any) -> Expr:
        return And(self, o) if self.sort == BOOL else bvop("&", self, o)

    def __rand__(self, o: Any) -> Expr:
        return And(o, self) if self.sort == BOOL else bvop("&", o, self)

    def __or__(self, o: Any) -> Expr:
        return Or(self, o) if self.sort == BOOL else bvop("|", self, o)

    def __ror__(self, o: Any) -> Expr:
        return Or(o, self) if self.sort == BOOL else bvop("|", o, self)

    def __invert__(self) -> Expr:
        if self.sort == BOOL:
            return Not(self)
        if isinstance(self.sort, BVT):
            return Op("~", (self,), self.sort)
        raise SpecTypeError(f"~ needs a bool or bit-vector, got {describe_sort(self.sort)}")

    # comparisons
    def __eq__(self, o: Any) -> Expr:  # type: ignore[override]
        return compare("==", self, o)

    def __ne__(self, o: Any) -> Expr:  # type: ignore[override]
        return compare("!=", self, o)

    def __lt__(self, o: Any) -> Expr:
        return compare("<", self, o)

    def __le__(self, o: Any) -> Expr:
        return compare("<=", self, o)

    def __gt__(self, o: Any) -> Expr:
        return compare(">", self, o)

    def __ge__(self, o: Any) -> Expr:
        return compare(">=", self, o)

    def bit(self, i: int) -> Expr:
        """Bit i of a bit-vector, as a bool."""
        if not isinstance(self.sort, BVT) or not 0 <= i < self.sort.width:
            raise SpecTypeError(f"bit({i}) needs a bit-vector wider than {i}")
        return Op("bit", (self, Const(i, INT)), BOOL)

    def children(self) -> tuple[Expr, ...]:
        return ()


class Const(Expr):
    """A literal; enum literals are stored as their code."""

    __slots__ = ("value",)

    def __init__(self, value: int, sort: Sort) -> None:
        self.value = int(value)
        self.sort = sort

    def __repr__(self) -> str:
        if isinstance(self.sort, EnumT):
            return repr(self.sort.names[self.value])
        return "true" if self.sort == BOOL and self.value else (
            "false" if self.sort == BOOL else str(self.value))


class Param(Expr):
    """A named spec constant: concrete for the explicit engine, may be symbolic for SMT."""

    __slots__ = ("name", "value", "lo", "hi")

    def __init__(self, name: str, value: int, lo: int, hi: int) -> None:
        self.name, self.value, self.lo, self.hi = name, value, lo, hi
        self.sort = INT

    def __repr__(self) -> str:
        return self.name


class Slot(Expr):
    """A resolved state slot (after instantiation): one scalar of the state vector."""

    __slots__ = ("index", "name", "type")

    def __init__(self, index: int, name: str, type_: VarType) -> None:
        self.index, self.name, self.type = index, name, type_
        self.sort = sort_of(type_)

    def __repr__(self) -> str:
        return self.name


class SlotSelect(Expr):
    """A resolved array read with a dynamic index: slot base + idx, idx in [0, size)."""

    __slots__ = ("base", "size", "idx", "name", "type")

    def __init__(self, base: int, size: int, idx: Expr, name: str, type_: VarType) -> None:
        self.base, self.size, self.idx, self.name, self.type = base, size, idx, name, type_
        self.sort = sort_of(type_)

    def children(self) -> tuple[Expr, ...]:
        return (self.idx,)

    def __repr__(self) -> str:
        return f"{self.name}[{self.idx!r}]"


class Op(Expr):
    """An operator application; op names are shared by all interpreters."""

    __slots__ = ("op", "args")

    def __init__(self, op: str, args: tuple[Expr, ...], sort: Sort) -> None:
        self.op, self.args, self.sort = op, args, sort

    def children(self) -> tuple[Expr, ...]:
        return self.args

    def __repr__(self) -> str:
        if self.op in INFIX:
            return "(" + f" {self.op} ".join(map(repr, self.args)) + ")"
        return f"{self.op}({', '.join(map(repr, self.args))})"


INFIX = {"+", "-", "*", "//", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or",
         "&", "|", "^", "<<", ">>", "=>"}


class SpecTypeError(TypeError):
    """An ill-sorted expression, reported when the spec is built."""


# Unresolved references, replaced by Slot/SlotSelect/Const at instantiation.


class VarRef(Expr):
    """A global scalar variable, or one element of a global array at a constant index."""

    __slots__ = ("var", "index")

    def __init__(self, var: Any, index: int | None) -> None:
        self.var, self.index = var, index
        self.sort = sort_of(var.type)

    def __repr__(self) -> str:
        return self.var.name if self.index is None else f"{self.var.name}[{self.index}]"


class Select(Expr):
    """A global array element at an index expression (e.g. the process's own index)."""

    __slots__ = ("var", "idx")

    def __init__(self, var: Any, idx: Expr) -> None:
        self.var, self.idx = var, idx
        self.sort = sort_of(var.type)

    def children(self) -> tuple[Expr, ...]:
        return (self.idx,)

    def __repr__(self) -> str:
        return f"{self.var.name}[{self.idx!r}]"


class LocalRef(Expr):
    """A process-local variable of the process executing the step (or of process `of`)."""

    __slots__ = ("group", "name", "type", "of")

    def __init__(self, group: str, name: str, type_: VarType, of: Expr | None = None) -> None:
        self.group, self.name, self.type, self.of = group, name, type_, of
        self.sort = sort_of(type_)

    def __getitem__(self, idx: Any) -> LocalRef:
        """The same local of another instance of the group: `cache[t]` inside a Sum."""
        return LocalRef(self.group, self.name, self.type, lift(idx, INT))

    def children(self) -> tuple[Expr, ...]:
        return () if self.of is None else (self.of,)

    def __repr__(self) -> str:
        return self.name if self.of is None else f"{self.group}[{self.of!r}].{self.name}"


class PcRef(Expr):
    """The program counter (current label) of a process instance."""

    __slots__ = ("group", "of", "labels")

    def __init__(self, group: str, of: Expr | None, labels: EnumT) -> None:
        self.group, self.of, self.labels = group, of, labels
        self.sort = labels

    def children(self) -> tuple[Expr, ...]:
        return () if self.of is None else (self.of,)

    def __repr__(self) -> str:
        return f"{self.group}.pc" if self.of is None else f"{self.group}[{self.of!r}].pc"


class SelfRef(Expr):
    """The index of the process instance executing the step."""

    __slots__ = ("group",)

    def __init__(self, group: str) -> None:
        self.group = group
        self.sort = INT

    def __repr__(self) -> str:
        return "self"


class ChoiceRef(Expr):
    """The value of a step's nondeterministic choice."""

    __slots__ = ("name", "type")

    def __init__(self, name: str, type_: VarType) -> None:
        self.name, self.type = name, type_
        self.sort = sort_of(type_)

    def __repr__(self) -> str:
        return self.name


# ---------------------------------------------------------------- builders


def describe_sort(s: Sort) -> str:
    if isinstance(s, EnumT):
        return f"enum {s.name}"
    if isinstance(s, BVT):
        return f"bv{s.width}"
    return s


def lift(v: Any, like: Sort) -> Expr:
    """Turn a Python literal into a Const of the sort it is combined with."""
    if isinstance(v, Expr):
        return v
    if isinstance(v, bool):
        if like != BOOL:
            raise SpecTypeError(f"boolean literal {v} used where {describe_sort(like)} expected")
        return Const(int(v), BOOL)
    if isinstance(v, int):
        if like == BOOL:
            raise SpecTypeError(f"integer literal {v} used where a bool is expected")
        if isinstance(like, EnumT):
            raise SpecTypeError(f"integer literal {v} used where enum {like.name} expected")
        if isinstance(like, BVT):
            if not 0 <= v <= like.mask:
                raise SpecTypeError(f"literal {v} does not fit bv{like.width}")
            return Const(v, like)
        return Const(v, INT)
    if isinstance(v, str):
        if not isinstance(like, EnumT):
            raise SpecTypeError(f"string literal {v!r} used where {describe_sort(like)} expected")
        try:
            return Const(like.code(v), like)
        except ValueError as e:
            raise SpecTypeError(str(e)) from None
    raise SpecTypeError(f"cannot use {type(v).__name__} {v!r} in a spec expression")


def _pair(a: Any, b: Any) -> tuple[Expr, Expr]:
    if isinstance(a, Expr):
        return a, lift(b, a.sort)
    if isinstance(b, Expr):
        return lift(a, b.sort), b
    if isinstance(a, bool) and isinstance(b, bool):
        return lift(a, BOOL), lift(b, BOOL)
    if isinstance(a, int) and isinstance(b, int):
        return lift(a, INT), lift(b, INT)
    raise SpecTypeError("at least one operand must be a spec expression")


def arith(op: str, a: Any, b: Any) -> Expr:
    x, y = _pair(a, b)
    if isinstance(x.sort, BVT) and x.sort == y.sort and op in ("+", "-", "*"):
        return Op(op, (x, y), x.sort)
    if x.sort != INT or y.sort != INT:
        raise SpecTypeError(
            f"{op} needs integers, got {describe_sort(x.sort)} and {describe_sort(y.sort)}")
    return Op(op, (x, y), INT)


def bvop(op: str, a: Any, b: Any) -> Expr:
    x, y = _pair(a, b)
    if op in ("<<", ">>") and isinstance(x.sort, BVT) and y.sort in (INT, x.sort):
        if isinstance(y, Const) and y.sort != x.sort:
            y = Const(y.value, x.sort)
        return Op(op, (x, y), x.sort)
    if not isinstance(x.sort, BVT) or x.sort != y.sort:
        raise SpecTypeError(
            f"{op} needs two bit-vectors of one width, got "
            f"{describe_sort(x.sort)} and {describe_sort(y.sort)}")
    return Op(op, (x, y), x.sort)


def compare(op: str, a: Any, b: Any) -> Expr:
    x, y = _pair(a, b)
    if x.sort != y.sort:
        raise SpecTypeError(
            f"cannot compare {describe_sort(x.sort)} with {describe_sort(y.sort)} ({op})")
    if op not in ("==", "!=") and (x.sort == BOOL or isinstance(x.sort, EnumT)):
        raise SpecTypeError(f"{op} is not defined on {describe_sort(x.sort)}")
    return Op(op, (x, y), BOOL)


def _bools(xs: Iterable[Any]) -> tuple[Expr, ...]:
    out = tuple(lift(x, BOOL) for x in xs)
    for x in out:
        if x.sort != BOOL:
            raise SpecTypeError(f"expected a bool, got {describe_sort(x.sort)}: {x!r}")
    return out


TRUE = Const(1, BOOL)
FALSE = Const(0, BOOL)


def And(*xs: Any) -> Expr:
    args = _bools(xs)
    if not args:
        return TRUE
    return args[0] if len(args) == 1 else Op("and", args, BOOL)


def Or(*xs: Any) -> Expr:
    args = _bools(xs)
    if not args:
        return FALSE
    return args[0] if len(args) == 1 else Op("or", args, BOOL)


def Not(x: Any) -> Expr:
    return Op("not", _bools([x]), BOOL)


def Implies(a: Any, b: Any) -> Expr:
    return Op("=>", _bools([a, b]), BOOL)


def ite(c: Any, a: Any, b: Any) -> Expr:
    """If-then-else: c ? a : b."""
    (cond,) = _bools([c])
    x, y = _pair(a, b)
    if x.sort != y.sort:
        raise SpecTypeError(
            f"ite branches differ: {describe_sort(x.sort)} vs {describe_sort(y.sort)}")
    return Op("ite", (cond, x, y), x.sort)


def Min(a: Any, b: Any) -> Expr:
    x, y = _pair(a, b)
    return ite(x <= y, x, y)


def Max(a: Any, b: Any) -> Expr:
    x, y = _pair(a, b)
    return ite(x >= y, x, y)


def Sum(over: Iterable[Any], f: Callable[[Any], Any]) -> Expr:
    """Sum of f(i) for every i of a finite index set, expanded when the spec is built."""
    terms = [lift(f(i), INT) for i in over]
    if not terms:
        return Const(0, INT)
    acc = terms[0]
    for t in terms[1:]:
        acc = arith("+", acc, t)
    return acc


def Count(over: Iterable[Any], f: Callable[[Any], Any]) -> Expr:
    """How many i of a finite index set satisfy f(i)."""
    return Sum(over, lambda i: ite(f(i), 1, 0))


def AllOf(over: Iterable[Any], f: Callable[[Any], Any]) -> Expr:
    """Conjunction of f(i) over a finite index set, expanded when the spec is built."""
    return And(*(f(i) for i in over))


def AnyOf(over: Iterable[Any], f: Callable[[Any], Any]) -> Expr:
    """Disjunction of f(i) over a finite index set, expanded when the spec is built."""
    return Or(*(f(i) for i in over))


# ---------------------------------------------------------------- walking


def walk(e: Expr) -> Iterable[Expr]:
    """Every node of e, parents before children."""
    stack = [e]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.children())


def rebuild(e: Expr, f: Callable[[Expr], Expr | None]) -> Expr:
    """Rewrite bottom-up: f returns a replacement for a node, or None to keep it."""
    r = f(e)
    if r is not None:
        return r
    if isinstance(e, Op):
        args = tuple(rebuild(a, f) for a in e.args)
        return Op(e.op, args, e.sort)
    return e


# ---------------------------------------------------------------- reference semantics


def evaluate(e: Expr, state: tuple[int, ...], params: Mapping[str, int] | None = None) -> int:
    """Naive tree-walking interpreter over a resolved expression (Slot/SlotSelect/Param).

    Slow and obviously correct: the compiled engine and the z3 translation are tested
    against it.
    """
    params = params or {}
    if isinstance(e, Const):
        return e.value
    if isinstance(e, Param):
        return params.get(e.name, e.value)
    if isinstance(e, Slot):
        return state[e.index]
    if isinstance(e, SlotSelect):
        i = evaluate(e.idx, state, params)
        if not 0 <= i < e.size:
            raise IndexError(f"{e.name}[{i}] is out of range 0..{e.size - 1}")
        return state[e.base + i]
    if not isinstance(e, Op):
        raise TypeError(f"unresolved reference {e!r}: instantiate the spec first")
    op = e.op
    if op == "and":
        return int(all(evaluate(a, state, params) for a in e.args))
    if op == "or":
        return int(any(evaluate(a, state, params) for a in e.args))
    if op == "ite":
        c = evaluate(e.args[0], state, params)
        return evaluate(e.args[1] if c else e.args[2], state, params)
    v = [evaluate(a, state, params) for a in e.args]
    mask = e.args[0].sort.mask if isinstance(e.args[0].sort, BVT) else None
    return _apply(op, v, mask)


def _apply(op: str, v: list[int], mask: int | None) -> int:
    match op:
        case "not":
            return int(not v[0])
        case "=>":
            return int((not v[0]) or bool(v[1]))
        case "+":
            r = v[0] + v[1]
        case "-":
            r = v[0] - v[1]
        case "*":
            r = v[0] * v[1]
        case "//":
            r = v[0] // v[1]
        case "%":
            r = v[0] % v[1]
        case "&":
            r = v[0] & v[1]
        case "|":
            r = v[0] | v[1]
        case "^":
            r = v[0] ^ v[1]
        case "~":
            r = ~v[0]
        case "<<":
            r = v[0] << v[1]
        case ">>":
            r = v[0] >> v[1]
        case "bit":
            return (v[0] >> v[1]) & 1
        case "==":
            return int(v[0] == v[1])
        case "!=":
            return int(v[0] != v[1])
        case "<":
            return int(v[0] < v[1])
        case "<=":
            return int(v[0] <= v[1])
        case ">":
            return int(v[0] > v[1])
        case ">=":
            return int(v[0] >= v[1])
        case _:
            raise ValueError(f"unknown operator {op}")
    return r & mask if mask is not None else r
