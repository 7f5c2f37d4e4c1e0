"""Solver plumbing of the SMT engines: time budgets, solver set-up, goals and outcomes."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import z3

from checker.explore import LEMMA
from checker.expr import Expr
from checker.smt import Encoding
from checker.trace import Trace

DEFAULT_DEPTH = 20
DEFAULT_SECONDS = 60.0


class SmtInternalError(RuntimeError):
    """The z3 encoding disagrees with the reference semantics (a bug in checker.smt)."""


class Budget:
    """A wall-clock deadline shared by the solver calls of one job."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.t0 = time.monotonic()
        self.deadline = self.t0 + seconds

    def millis(self) -> int:
        return max(1, int((self.deadline - time.monotonic()) * 1000))

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def share(self, fraction: float, floor: float = 5.0) -> Budget:
        """A sub-budget: `fraction` of what is left (at least `floor` seconds, at most all)."""
        left = max(0.0, self.deadline - time.monotonic())
        sub = Budget(min(left, max(floor, left * fraction)))
        sub.seconds = self.seconds
        return sub


PREPROCESS = ("simplify", "propagate-values", "solve-eqs", "elim-uncnstr")


def new_solver(enc: Encoding | None = None) -> z3.Solver:
    """A fresh solver that first eliminates the equations s' = f(s) of an unrolling.

    Solving each query from scratch after `solve-eqs` is an order of magnitude faster
    than z3's incremental core on unrollings, which keeps every next-state variable. In
    bit-vector mode the rest is bit-blasted to SAT (the SMT core is the fallback for
    formulas SAT cannot take, e.g. with quantifiers).
    """
    smt = z3.Then(*PREPROCESS, "smt")
    if enc is None or not enc.num.bv:
        return smt.solver()
    return z3.OrElse(z3.Then(*PREPROCESS, "simplify", "bit-blast", "sat"), smt).solver()


def solve(solver: z3.Solver, budget: Budget, *extra: z3.BoolRef) -> z3.CheckSatResult:
    """One bounded solver call (extra formulas are added, not assumed: use a fresh solver)."""
    if budget.expired:
        return z3.unknown
    solver.set("timeout", budget.millis())
    solver.add(*extra)
    return solver.check()


def why_unknown(solver: z3.Solver, budget: Budget) -> str:
    if budget.expired:
        return f"time limit {budget.seconds:g}s"
    try:
        return solver.reason_unknown() or "solver gave up"
    except z3.Z3Exception:
        return "solver gave up"


@dataclass
class Outcome:
    """What one engine established about one goal."""

    verdict: str
    depth: int = 0
    method: str = ""
    reason: str = ""
    trace: Trace | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Goal:
    """A property (or lemma) as templates over the encoding's state vector."""

    name: str
    kind: str
    doc: str
    holds: z3.BoolRef  # template over enc.s
    expr: Expr | None  # for the witness values
    formula: Expr | None = None  # the bool expression of a goal that is not in the spec

    def on(self, enc: Encoding) -> Goal:
        """The same goal over another encoding of the spec."""
        if self.formula is not None:
            holds = enc.sum_bool(self.formula)
        elif self.name.startswith(LEMMA):
            holds = enc.lemma(self.name[len(LEMMA):])
        else:
            holds = enc.holds(self.name)
        return Goal(self.name, self.kind, self.doc, holds, self.expr, self.formula)


def goals_of(enc: Encoding, names: Iterable[str], lemmas: bool) -> list[Goal]:
    spec = enc.flat.spec
    out = [Goal(n, spec.property(n).kind, spec.property(n).doc, enc.holds(n),
                enc.flat.properties[n]) for n in names]
    if lemmas:
        out += [Goal(LEMMA + n, "invariant", next(p.doc for p in spec.lemmas if p.name == n),
                     enc.lemma(n), enc.flat.lemmas[n]) for n in enc.lemmas]
    return out


def describe_params(enc: Encoding) -> str:
    if not enc.symbolic:
        return ""
    return ", ".join(f"{n} in [{lo}, {hi}]" for n, (lo, hi) in enc.ranges.items())


