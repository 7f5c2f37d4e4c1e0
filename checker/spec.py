"""The spec language: typed variables, processes of labelled atomic steps, properties.

A spec module exposes one builder function decorated with `@specification`; called with
parameters it returns a `Spec`, which is pure data. Engines never see the builder: they
read the `Spec` after `checker.flat.instantiate` has resolved every reference to a slot of
the state vector. See docs/spec-language.md for the tour.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from checker.expr import (
    BOOL,
    INT,
    TRUE,
    BoolT,
    ChoiceRef,
    EnumT,
    Expr,
    LocalRef,
    Param,
    PcRef,
    Select,
    SelfRef,
    SpecTypeError,
    VarRef,
    VarType,
    contains,
    lift,
    sort_of,
)

DONE = "done"


class SpecError(Exception):
    """A mistake in a spec, naming the element it concerns."""

    def __init__(self, element: str, message: str) -> None:
        super().__init__(f"{element}: {message}")
        self.element, self.message = element, message


@dataclass(frozen=True)
class IndexSet:
    """A finite index set 0..size-1 (threads, pages, PTE slots)."""

    name: str
    size: int

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.size))

    def __len__(self) -> int:
        return self.size


@dataclass(frozen=True)
class Var:
    """A global variable: a scalar, or an array over an index set."""

    name: str
    type: VarType
    index: IndexSet | None
    init: tuple[Expr, ...]  # one init expression per element (over Params only)
    doc: str = ""


class ArrayVar:
    """Handle returned by `SpecBuilder.array`: index it with an int or an expression."""

    def __init__(self, var: Var) -> None:
        self.var = var

    def __getitem__(self, idx: Any) -> Expr:
        if isinstance(idx, int) and not isinstance(idx, bool):
            if not 0 <= idx < self.var.index.size:  # type: ignore[union-attr]
                raise SpecError(f"array {self.var.name}", f"index {idx} out of range")
            return VarRef(self.var, idx)
        return Select(self.var, lift(idx, INT))

    def __iter__(self) -> Iterator[Expr]:
        return (VarRef(self.var, i) for i in range(self.var.index.size))  # type: ignore[union-attr]

    def __len__(self) -> int:
        return self.var.index.size  # type: ignore[union-attr]


@dataclass(frozen=True)
class LockOp:
    """A lock operation a step performs, for lock-order analysis (lockdep-style)."""

    lock: str
    op: str  # "acquire" | "release"
    mode: str = "excl"  # "read" | "write" | "excl"


@dataclass(frozen=True)
class LockDecl:
    """A lock known to the spec: which process instances hold it, as expressions over self."""

    name: str
    kind: str  # "rwsem" | "mutex" | "spinlock"
    held: Mapping[str, Expr]  # group name -> bool expression (using the group's self)
    doc: str = ""


@dataclass(frozen=True)
class Choice:
    """A nondeterministic choice a step makes; `ref` is usable in its guard and effects."""

    name: str
    type: VarType

    @property
    def ref(self) -> ChoiceRef:
        return ChoiceRef(self.name, self.type)


@dataclass(frozen=True)
class Step:
    """One atomic alternative at a label: if guard, apply effects simultaneously, goto."""

    group: str
    label: str
    kernel: str  # the kernel function and point it models
    guard: Expr
    effects: tuple[tuple[Expr, Expr], ...]
    goto: str
    choices: tuple[Choice, ...] = ()
    note: str = ""
    locks: tuple[LockOp, ...] = ()


@dataclass
class ProcessGroup:
    """Instances of one program (e.g. the padata helper threads), indexed by an index set."""

    name: str
    index: IndexSet
    locals: dict[str, tuple[VarType, tuple[Expr, ...]]]
    labels: list[str]
    steps: list[Step]
    daemon: bool = False  # environment agents (hardware) need not finish
    doc: str = ""
    start: str | None = None

    @property
    def pc_type(self) -> EnumT:
        """Label codes are stable while the spec is built: 'done' is 0, then labels in the
        order they are first mentioned (step, goto, at, start)."""
        return EnumT(f"{self.name}.pc", (DONE, *self.labels))

    @property
    def entry(self) -> str:
        return self.start or self.labels[0]


@dataclass(frozen=True)
class Property:
    """A named property: invariant, final (end states), deadlock freedom, or lock order."""

    name: str
    kind: str  # "invariant" | "final" | "deadlock" | "lock_order"
    expr: Expr | None
    doc: str = ""


KINDS = ("invariant", "final", "deadlock", "lock_order")


@dataclass
class Spec:
    """A fully built specification for one parameter assignment: pure data."""

    name: str
    doc: str
    parameters: dict[str, Any]
    variant: str
    vars: list[Var]
    groups: list[ProcessGroup]
    properties: list[Property]
    expected: dict[str, bool | None]  # property -> expected violated? (None: no claim)
    constants: dict[str, Param] = field(default_factory=dict)
    locks: list[LockDecl] = field(default_factory=list)
    lemmas: list[Property] = field(default_factory=list)
    symmetric: list[str] = field(default_factory=list)  # groups declared interchangeable

    def property(self, name: str) -> Property:
        for p in self.properties:
            if p.name == name:
                return p
        raise SpecError(f"spec {self.name}", f"no property named {name!r}")


class ProcessBuilder:
    """Declares one process group's locals and steps."""

    def __init__(self, builder: SpecBuilder, group: ProcessGroup) -> None:
        self._b, self.group = builder, group
        self.self = SelfRef(group.name)

    @property
    def name(self) -> str:
        return self.group.name

    def local(self, name: str, type_: VarType, init: Any = None) -> LocalRef:
        """A per-instance variable; init is one value or one per instance."""
        where = f"process {self.name}: local {name}"
        if name in self.group.locals or name == "pc":
            raise SpecError(where, "declared twice")
        inits = self._b._inits(where, type_, init, self.group.index.size)
        self.group.locals[name] = (type_, inits)
        return LocalRef(self.name, name, type_)

    def pc(self, of: Any = None) -> PcRef:
        """The label instance `of` (default: the executing instance) is at."""
        return PcRef(self.name, None if of is None else lift(of, INT), self.group.pc_type)

    def at(self, of: Any, *labels: str) -> Expr:
        """Whether instance `of` is at one of the labels ('done' when finished)."""
        from checker.expr import Or

        for lab in labels:
            self._label(lab)
        pc = self.pc(of)
        return Or(*(pc == lab for lab in labels))

    def _label(self, label: str) -> None:
        if label != DONE and label not in self.group.labels:
            self.group.labels.append(label)
            self._b._pending_labels.append((self.name, label))

    def start(self, label: str) -> None:
        """Make `label` the entry label (default: the first label mentioned)."""
        self._label(label)
        self.group.start = label

    def step(
        self,
        label: str,
        kernel: str,
        *,
        guard: Any = True,
        effects: Mapping[Expr, Any] | list[tuple[Expr, Any]] | None = None,
        goto: str,
        choose: Choice | tuple[Choice, ...] = (),
        note: str = "",
        locks: tuple[LockOp, ...] = (),
    ) -> None:
        """Add an alternative at `label`; alternatives at one label are tried in any order."""
        where = f"process {self.name}: step {label}" + (f" ({note})" if note else "")
        if not kernel:
            raise SpecError(where, "every step must name the kernel function it models")
        if label == DONE:
            raise SpecError(where, "'done' is the final label and takes no steps")
        choices = (choose,) if isinstance(choose, Choice) else tuple(choose)
        try:
            g = lift(guard, BOOL)
            if g.sort != BOOL:
                raise SpecTypeError("the guard is not a bool")
            pairs = list(effects.items()) if isinstance(effects, Mapping) else list(effects or [])
            eff = []
            for target, value in pairs:
                if not isinstance(target, VarRef | Select | LocalRef):
                    raise SpecTypeError(f"cannot assign to {target!r}")
                v = lift(value, target.sort)
                if v.sort != target.sort:
                    raise SpecTypeError(f"{target!r} := {v!r}: sorts differ")
                eff.append((target, v))
        except SpecTypeError as e:
            raise SpecError(where, str(e)) from None
        self._label(label)
        self._label(goto)
        self.group.steps.append(
            Step(self.name, label, kernel, g, tuple(eff), goto, choices, note, tuple(locks)))


class SpecBuilder:
    """Collects declarations and returns a checked `Spec` from `build()`."""

    def __init__(self, name: str, doc: str = "", *, parameters: Mapping[str, Any] | None = None,
                 variant: str = "default") -> None:
        self.name, self.doc = name, doc
        self.parameters = dict(parameters or {})
        self.variant = variant
        self._vars: list[Var] = []
        self._groups: list[ProcessGroup] = []
        self._props: list[Property] = []
        self._lemmas: list[Property] = []
        self._violated: set[str] = set()
        self._unknown: set[str] = set()
        self._constants: dict[str, Param] = {}
        self._locks: list[LockDecl] = []
        self._symmetric: list[str] = []
        self._pending_labels: list[tuple[str, str]] = []
        self._names: set[str] = set()

    # -- declarations
    def _fresh(self, where: str, name: str) -> None:
        if name in self._names:
            raise SpecError(where, "name declared twice")
        self._names.add(name)

    def _inits(self, where: str, type_: VarType, init: Any, n: int | None) -> tuple[Expr, ...]:
        """Initial values; without one, the type's least value (false, lo, first name, 0)."""
        if init is None:
            from checker.expr import Const

            return (Const(type_.values()[0], sort_of(type_)),) * (n or 1)
        vals = list(init) if isinstance(init, list | tuple) else (
            [init] * (n or 1))
        if len(vals) != (n or 1):
            raise SpecError(where, f"init has {len(vals)} values, expected {n or 1}")
        out = []
        for v in vals:
            try:
                e = lift(v, sort_of(type_))
            except SpecTypeError as err:
                raise SpecError(where, f"init: {err}") from None
            if e.sort != sort_of(type_):
                raise SpecError(where, f"init {e!r} has the wrong sort")
            from checker.expr import Const

            if isinstance(e, Const) and not contains(type_, e.value):
                raise SpecError(where, f"init value {v!r} is outside the domain {type_}")
            out.append(e)
        return tuple(out)

    def index(self, name: str, size: int) -> IndexSet:
        if size < 1:
            raise SpecError(f"index set {name}", f"size must be at least 1, got {size}")
        return IndexSet(name, size)

    def const(self, name: str, value: int, lo: int | None = None, hi: int | None = None) -> Param:
        """A spec constant; the SMT engine may leave it symbolic within [lo, hi]."""
        self._fresh(f"constant {name}", name)
        p = Param(name, int(value), value if lo is None else lo, value if hi is None else hi)
        self._constants[name] = p
        return p

    def var(self, name: str, type_: VarType, init: Any = None, doc: str = "") -> VarRef:
        where = f"variable {name}"
        self._fresh(where, name)
        v = Var(name, type_, None, self._inits(where, type_, init, None), doc)
        self._vars.append(v)
        return VarRef(v, None)

    def array(self, name: str, index: IndexSet, type_: VarType, init: Any = None,
              doc: str = "") -> ArrayVar:
        where = f"array {name}"
        self._fresh(where, name)
        v = Var(name, type_, index, self._inits(where, type_, init, index.size), doc)
        self._vars.append(v)
        return ArrayVar(v)

    def process(self, name: str, index: IndexSet | int = 1, *, daemon: bool = False,
                doc: str = "") -> ProcessBuilder:
        self._fresh(f"process {name}", name)
        idx = index if isinstance(index, IndexSet) else IndexSet(name, index)
        g = ProcessGroup(name, idx, {}, [], [], daemon, doc)
        self._groups.append(g)
        return ProcessBuilder(self, g)

    def lock(self, decl: LockDecl) -> None:
        self._locks.append(decl)

    def symmetric(self, group: str) -> None:
        """Declare a process group's instances interchangeable (checked, not trusted)."""
        self._symmetric.append(group)

    # -- properties
    def _prop(self, name: str, kind: str, expr: Any, doc: str) -> None:
        where = f"property {name}"
        if any(p.name == name for p in self._props):
            raise SpecError(where, "declared twice")
        e = None
        if expr is not None:
            try:
                e = lift(expr, BOOL)
            except SpecTypeError as err:
                raise SpecError(where, str(err)) from None
            if e.sort != BOOL:
                raise SpecError(where, "a property must be a bool expression")
        self._props.append(Property(name, kind, e, doc))

    def invariant(self, name: str, expr: Any, doc: str = "") -> None:
        """Must hold in every reachable state."""
        self._prop(name, "invariant", expr, doc)

    def final(self, name: str, expr: Any, doc: str = "") -> None:
        """Must hold in every reachable state where every non-daemon process is done."""
        self._prop(name, "final", expr, doc)

    def deadlock_free(self, name: str = "no_deadlock", doc: str = "") -> None:
        """No reachable state where nothing can move and some process has not finished."""
        self._prop(name, "deadlock", None, doc or "no state where some process is stuck")

    def lock_order(self, name: str = "no_lock_inversion", doc: str = "") -> None:
        """The lock-order graph over the whole exploration is acyclic (lockdep)."""
        self._prop(name, "lock_order", None, doc or "no cycle in the acquired-while-holding graph")

    def lemma(self, name: str, expr: Any, doc: str = "") -> None:
        """A strengthening invariant for induction proofs (SMT engine); also checked."""
        e = lift(expr, BOOL)
        self._lemmas.append(Property(name, "invariant", e, doc))

    def expect_violated(self, *names: str) -> None:
        """Declare properties this variant is expected to violate; the rest must hold."""
        self._violated.update(names)

    def expect_unknown(self, *names: str) -> None:
        """No claim about these properties for this parameter assignment."""
        self._unknown.update(names)

    # -- result
    def build(self) -> Spec:
        for g in self._groups:
            if not g.steps:
                raise SpecError(f"process {g.name}", "has no steps")
        for gname, lab in self._pending_labels:
            g = next(x for x in self._groups if x.name == gname)
            if not any(st.label == lab for st in g.steps):
                raise SpecError(f"process {gname}", f"label {lab!r} is used but has no step")
        names = {p.name for p in self._props}
        for n in self._violated | self._unknown:
            if n not in names:
                raise SpecError(f"spec {self.name}", f"expectation names unknown property {n!r}")
        for s in self._symmetric:
            if s not in {g.name for g in self._groups}:
                raise SpecError(f"spec {self.name}", f"symmetric group {s!r} does not exist")
        expected: dict[str, bool | None] = {
            p.name: (None if p.name in self._unknown else p.name in self._violated)
            for p in self._props}
        return Spec(self.name, self.doc, self.parameters, self.variant, self._vars,
                    self._groups, self._props, expected, self._constants, self._locks,
                    self._lemmas, self._symmetric)


# ---------------------------------------------------------------- spec modules


@dataclass(frozen=True)
class SpecInfo:
    """What `@specification` records on a builder function."""

    variants: tuple[str, ...]
    replay: Callable[..., Any] | None
    doc: str


def specification(*, variants: tuple[str, ...] = ("default",),
                  replay: Callable[..., Any] | None = None) -> Callable[[Callable[..., Spec]],
                                                                      Callable[..., Spec]]:
    """Mark a module's builder: `def build(variant=..., threads=2, ...) -> Spec`.

    Every parameter needs a default (the CI gate runs the defaults) and a type annotation
    of int, bool, str or tuple[int, ...] so `-p name=value` can be parsed. `replay`, if
    given, runs a trace on the model/ reference implementation (see checker.replay).
    """

    def mark(fn: Callable[..., Spec]) -> Callable[..., Spec]:
        fn.__mmcheck__ = SpecInfo(tuple(variants), replay, inspect.getdoc(fn) or "")  # type: ignore[attr-defined]
        return fn

    return mark


__all__ = [
    "DONE", "ArrayVar", "BoolT", "Choice", "IndexSet", "LockDecl", "LockOp", "ProcessGroup",
    "Property", "Spec", "SpecBuilder", "SpecError", "SpecInfo", "Step", "Var", "specification",
    "TRUE",
]
