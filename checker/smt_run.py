"""SMT engines: bounded model checking, k-induction with lemmas, Spacer (CHC), maxima.

Verdicts say exactly what was shown (see checker.result):
- VIOLATED: a concrete run (decoded into the common Trace, re-executed on the reference
  semantics `checker.expr.evaluate` before it is reported);
- PROVED: every reachable state, all depths, every value of the symbolic constants. It
  comes from bounded model checking that ran out of runs (every run ends within k steps),
  an inductive invariant (the property with the spec's lemmas), k-induction over simple
  paths, or an invariant Spacer inferred;
- BOUNDED-OK: no violation in runs of at most k steps (a failed induction step is shown
  as a counterexample to induction in the result's detail);
- UNKNOWN: the solver gave up, ran out of time, or the property kind is not supported.

Every proof obligation includes "no step raises a spec error" (index out of range,
out-of-domain assignment): the transition relation blocks such steps, so a proof is only
a proof of the explicit engine's semantics when errors are shown unreachable too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import z3

from checker.compile import SpecRuntimeError
from checker.expr import ChoiceRef, Const, Expr, SlotSelect, contains, evaluate, rebuild
from checker.flat import Flat, Transition, instantiate, slot_refs
from checker.result import BOUNDED_OK, PROVED, UNKNOWN, VIOLATED, Result
from checker.run import expected_text
from checker.smt import Choices, Encoding, State, bounds
from checker.spec import Spec
from checker.trace import Trace, TraceStep, decode_state, var_names

DEFAULT_DEPTH = 20
DEFAULT_SECONDS = 60.0
MAX_INDUCTION = 8  # k-induction tries k = 1..min(this, base depth + 1)
LEMMA = "lemma:"


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


def new_solver() -> z3.Solver:
    """A fresh solver that first eliminates the equations s' = f(s) of an unrolling.

    Solving each query from scratch after `solve-eqs` is an order of magnitude faster
    than z3's incremental core on unrollings, which keeps every next-state variable.
    """
    return z3.Then("simplify", "propagate-values", "solve-eqs", "elim-uncnstr", "smt").solver()


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


# ---------------------------------------------------------------- runs and traces


@dataclass
class Move:
    """One decoded step of a run: the transition and its raw choice values."""

    transition: Transition
    raw: dict[str, int]
    shown: dict[str, Any]


class Unrolling:
    """Runs of the spec from its initial states: s0 -T- s1 -T- ... as a list of formulas."""

    def __init__(self, enc: Encoding, tag: str = "", facts: list[z3.BoolRef] | None = None) -> None:
        self.enc, self.tag = enc, tag
        self.facts = list(facts or [])  # templates proved to hold in every reachable state
        self.states: list[State] = [enc.state(f"{tag}0")]
        self.acts: list[z3.ArithRef] = []
        self.chs: list[Choices] = []
        self.formulas: list[z3.BoolRef] = [enc.params_ok(), enc.init(self.states[0])]
        self.formulas += [enc.at(f, self.states[0]) for f in self.facts]
        self.model: z3.ModelRef | None = None
        self.unknown = ""

    @property
    def depth(self) -> int:
        return len(self.acts)

    def extend(self) -> None:
        k = self.depth
        c = self.enc.choices(f"{self.tag}c{k}")
        a = self.enc.act_var(f"{self.tag}act{k}")
        s2 = self.enc.state(f"{self.tag}{k + 1}")
        self.formulas.append(self.enc.at(self.enc.trans(), self.states[k], c, a, s2))
        self.formulas += [self.enc.at(f, s2) for f in self.facts]
        self.states.append(s2)
        self.acts.append(a)
        self.chs.append(c)

    def check(self, budget: Budget, *extra: z3.BoolRef) -> z3.CheckSatResult:
        """Is there a run of the current depth satisfying extra? Keeps the model."""
        solver = new_solver()
        solver.add(*self.formulas)
        r = solve(solver, budget, *extra)
        self.model = solver.model() if r == z3.sat else None
        self.unknown = why_unknown(solver, budget) if r == z3.unknown else ""
        return r

    def run(self, m: z3.ModelRef, k: int) -> tuple[list[tuple[int, ...]], list[Move],
                                                    dict[str, int]]:
        """The run of length k in model m: state tuples, moves, symbolic constant values."""
        enc = self.enc
        states = [enc.decode_state(m, s) for s in self.states[:k + 1]]
        moves = []
        for i in range(k):
            t = enc.decode_act(m, self.acts[i])
            raw, shown = enc.decode_choice(m, t, self.chs[i])
            moves.append(Move(t, raw, shown))
        params = enc.decode_params(m)
        check_run(enc.flat, states, moves, params)
        return states, moves, params


def substitute_choices(e: Expr, raw: Mapping[str, int]) -> Expr:
    """e with its ChoiceRefs replaced by values (for the reference interpreter)."""

    def f(n: Expr) -> Expr | None:
        if isinstance(n, ChoiceRef):
            return Const(raw[n.name], n.sort)
        if isinstance(n, SlotSelect):
            return SlotSelect(n.base, n.size, rebuild(n.idx, f), n.name, n.type)
        return None

    return rebuild(e, f)


def step_reference(flat: Flat, s: tuple[int, ...], t: Transition, raw: Mapping[str, int],
                   params: Mapping[str, int]) -> tuple[int, ...] | None:
    """t's successor of s by `checker.expr.evaluate`, or None if t is not enabled."""
    if s[t.pc_slot] != t.pc_from or not evaluate(substitute_choices(t.guard, raw), s, params):
        return None
    nxt = list(s)
    statics = []
    for tgt, val in t.updates:
        v = evaluate(substitute_choices(val, raw), s, params)
        if not contains(tgt.type, v):
            raise SpecRuntimeError(f"process {t.process}: step {t.step.label}: assigns {v} to "
                                   f"{tgt.name}, outside its domain")
        if isinstance(tgt, SlotSelect):
            i = evaluate(substitute_choices(tgt.idx, raw), s, params)
            if not 0 <= i < tgt.size:
                raise SpecRuntimeError(f"index {i} out of range for {tgt.name}")
            nxt[tgt.base + i] = v
        else:
            statics.append((tgt.index, v))
    for i, v in statics:
        nxt[i] = v
    return tuple(nxt)


def check_run(flat: Flat, states: list[tuple[int, ...]], moves: list[Move],
              params: Mapping[str, int]) -> None:
    """Re-execute a decoded run on the reference semantics; raise if z3 disagreed."""
    p = flat.params | dict(params)
    if states[0] != flat.initial_state(p):
        raise SmtInternalError("decoded run does not start in the initial state")
    for k, mv in enumerate(moves):
        try:
            nxt = step_reference(flat, states[k], mv.transition, mv.raw, p)
        except (IndexError, SpecRuntimeError) as e:
            raise SmtInternalError(f"decoded step {k + 1} raises on the reference: {e}") from e
        if nxt != states[k + 1]:
            raise SmtInternalError(
                f"decoded step {k + 1} ({mv.transition.process} {mv.transition.step.label}) "
                f"does not match the reference semantics")


def make_trace(flat: Flat, source: str, states: list[tuple[int, ...]], moves: list[Move],
               params: Mapping[str, int], prop: str | None, kind: str,
               description: str) -> Trace:
    """A decoded run as the common Trace type (ITF, show, replay)."""
    spec = flat.spec
    parameters = dict(spec.parameters)
    for n, v in params.items():
        if n in parameters:
            parameters[n] = v
    steps = [TraceStep(m.transition.process, m.transition.step.label, m.transition.step.kernel,
                       m.transition.step.note, dict(m.shown)) for m in moves]
    extra: dict[str, Any] = {"engine": "smt"}
    if params:
        extra["constants"] = dict(params)
    return Trace(spec.name, source, spec.variant, parameters, var_names(flat),
                 [decode_state(flat, s) for s in states], steps, prop, kind, description,
                 extra=extra)


def witness(flat: Flat, e: Expr | None, s: tuple[int, ...]) -> dict[str, Any]:
    if e is None:
        return {}
    return {flat.slots[i].name: flat.slots[i].type.show(s[i]) for i in sorted(slot_refs(e))}


# ---------------------------------------------------------------- outcomes


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


# ---------------------------------------------------------------- BMC


def bmc(enc: Encoding, goals: list[Goal], depth: int, budget: Budget, source: str,
        facts: list[Goal] | None = None, errors: bool = True) -> dict[str, Outcome]:
    """Check every goal in runs of 0..depth steps; shortest counterexamples first.

    Spec errors (a step assigning outside a domain, an index out of range) at any depth
    reached raise SpecRuntimeError, as the explicit engine does (errors=False: they were
    proved unreachable already). Per depth, one query asks for any violation or error at
    all; only a satisfiable one is split up per goal. `facts` are goals already proved
    invariant: assuming them in every state of the unrolling loses no run and helps z3.
    """
    u = Unrolling(enc, facts=[f.holds for f in facts or []])
    if u.check(budget, enc.init_error()) == z3.sat:
        assert u.model is not None
        raise SpecRuntimeError(f"spec {enc.flat.spec.name}: an initial value is outside its "
                               f"variable's domain (constants {enc.decode_params(u.model)})")
    open_ = {g.name: g for g in goals}
    out: dict[str, Outcome] = {}
    prop_errors = [(g.name, enc.prop_error(g.name)) for g in goals if not g.name.startswith(LEMMA)]
    symb = f"; for all {describe_params(enc)}" if enc.symbolic else ""
    reached = -1
    for k in range(depth + 1):
        if k > 0:
            u.extend()
            r = u.check(budget)
            if r == z3.unsat:
                for name in open_:
                    out[name] = Outcome(PROVED, k - 1, "bmc-exhausted",
                                        f"every run ends within {k - 1} steps and none "
                                        f"violates it{symb}")
                return out
            if r == z3.unknown:
                break
        s = u.states[k]
        ce = enc.choices(f"err{k}")
        bads = {name: z3.Not(enc.at(g.holds, s)) for name, g in open_.items()}
        err = z3.Or(enc.at(enc.error(), s, ce), *[enc.at(e, s) for _, e in prop_errors]) \
            if errors else z3.BoolVal(False)
        r = u.check(budget, z3.Or(err, *bads.values()))
        if r == z3.unknown:
            break
        if r == z3.sat:
            for name, bad in bads.items():
                r = u.check(budget, bad)
                if r == z3.sat:
                    assert u.model is not None
                    g = open_.pop(name)
                    states, moves, params = u.run(u.model, k)
                    t = make_trace(enc.flat, source, states, moves, params, name, g.kind, g.doc)
                    t.witness = witness(enc.flat, g.expr, states[-1])
                    out[name] = Outcome(VIOLATED, k, "bmc", trace=t)
                elif r == z3.unknown:
                    g = open_.pop(name)
                    out[name] = Outcome(UNKNOWN, k - 1, "bmc", f"solver gave up at depth {k} "
                                        f"({u.unknown}); no violation within {k - 1} steps")
            if not open_ and goals:
                return out
            if errors:
                _spec_errors(enc, u, k, ce, prop_errors, budget)
        reached = k
    for name in open_:
        if reached < depth:
            out[name] = Outcome(UNKNOWN, max(reached, 0), "bmc",
                                f"solver gave up at depth {reached + 1} ({u.unknown}); "
                                f"no violation within {reached} steps")
        else:
            out[name] = Outcome(BOUNDED_OK, depth, "bmc",
                                f"no violation in runs of at most {depth} steps{symb}")
    return out


def _spec_errors(enc: Encoding, u: Unrolling, k: int, ce: Choices,
                 prop_errors: list[tuple[str, z3.BoolRef]], budget: Budget) -> None:
    """Raise SpecRuntimeError if a step from some state at depth k raises."""
    s = u.states[k]
    r = u.check(budget, enc.at(enc.error(), s, ce))
    if r == z3.sat:
        assert u.model is not None
        fail = enc.explain_error(u.model, s, ce)
        states, moves, params = u.run(u.model, k)
        path = "; ".join(f"{mv.transition.process} {mv.transition.step.label}" for mv in moves)
        consts = f" with {params}" if params else ""
        raise SpecRuntimeError(f"{fail.message} (SMT engine: reached after {k} steps{consts}: "
                               f"{path or 'initial state'})")
    if r == z3.unknown:
        raise SpecRuntimeError(f"SMT engine: could not decide whether a spec error is reachable "
                               f"at depth {k} ({u.unknown})")
    for name, bad in prop_errors:
        if u.check(budget, enc.at(bad, s)) == z3.sat:
            raise SpecRuntimeError(f"property {name}: evaluating it raises (index out of "
                                   f"range) in a state reached after {k} steps (SMT engine)")


# ---------------------------------------------------------------- induction


@dataclass
class Cti:
    """A counterexample to induction: a state satisfying the hypothesis and a bad step."""

    text: str
    data: dict[str, Any]


def induction(enc: Encoding, hyp: list[Goal], max_k: int,
              budget: Budget) -> tuple[int | None, Cti | None, str]:
    """k-induction of the conjunction `hyp` for k = 1..max_k over simple paths.

    k = 1 is the inductive-invariant check. The hypothesis is assumed on s0..s(k-1) only
    (with every slot in its domain); the conclusion at sk also demands that no step from
    sk raises a spec error. Sound given a base case: no violation in runs of < k steps.
    Returns (k that succeeded or None, the counterexample to induction at k = 1, why not).
    """
    conj = z3.And(*[g.holds for g in hyp])
    cti = None
    why = ""
    for k in range(1, max_k + 1):
        solver = new_solver()
        states = [enc.state(f"i{i}") for i in range(k + 1)]
        chs = [enc.choices(f"ic{i}") for i in range(k)]
        acts = [enc.act_var(f"iact{i}") for i in range(k)]
        solver.add(enc.params_ok(), enc.domain(states[0]))
        for i in range(k):
            solver.add(enc.at(conj, states[i]))
            solver.add(enc.at(enc.trans(), states[i], chs[i], acts[i], states[i + 1]))
        for i in range(k + 1):
            for j in range(i + 1, k + 1):
                solver.add(z3.Or(*[a != b for a, b in zip(states[i], states[j], strict=True)]))
        ce = enc.choices("ice")
        bad = z3.Or(z3.Not(enc.at(conj, states[k])), enc.at(enc.error(), states[k], ce))
        r = solve(solver, budget, bad)
        if r == z3.unsat:
            return k, cti, ""
        if r == z3.sat and k == 1:
            cti = describe_cti(enc, solver.model(), states, acts, chs, ce, hyp)
        if r == z3.unknown:
            why = f"{k}-induction: {why_unknown(solver, budget)}"
            break
    return None, cti, why


def describe_cti(enc: Encoding, m: z3.ModelRef, states: list[State], acts: list[z3.ArithRef],
                 chs: list[Choices], ce: Choices, hyp: list[Goal]) -> Cti:
    """The pre-state, the step and what breaks, worded for the spec author."""
    flat = enc.flat
    pre = enc.decode_state(m, states[0])
    post = enc.decode_state(m, states[1])
    t = enc.decode_act(m, acts[0])
    _raw, shown = enc.decode_choice(m, t, chs[0])
    failing = [g.name for g in hyp
               if not z3.is_true(m.eval(enc.at(g.holds, states[1]), model_completion=True))]
    if z3.is_true(m.eval(enc.at(enc.error(), states[1], ce), model_completion=True)):
        failing.append("no spec error (" + enc.explain_error(m, states[1], ce).message + ")")
    params = enc.decode_params(m)
    names = ", ".join(g.name for g in hyp)
    lines = ["induction step fails (counterexample to induction):",
             f"  a state where {names} hold" + (f" (constants {params})" if params else "")
             + ":"]
    lines.append("    " + ", ".join(f"{i.name}={i.type.show(pre[i.index])}" for i in flat.slots))
    desc = t.step.kernel + (f" [{t.step.note}]" if t.step.note else "")
    if shown:
        desc += " {" + ", ".join(f"{k}={v}" for k, v in shown.items()) + "}"
    lines.append(f"  step {t.process} {t.step.label}: {desc}")
    for i in flat.slots:
        if pre[i.index] != post[i.index]:
            lines.append(f"    {i.name}: {i.type.show(pre[i.index])} -> "
                         f"{i.type.show(post[i.index])}")
    lines.append("  leads to a state violating: " + "; ".join(failing))
    lines.append("  if the first state is unreachable, a lemma excluding it is missing "
                 "(s.lemma(name, expr) next to the properties)")
    data = {"pre": decode_state(flat, pre), "post": decode_state(flat, post),
            "step": {"process": t.process, "label": t.step.label, "choice": shown},
            "violates": failing, "constants": params}
    return Cti("\n".join(lines), data)


# ---------------------------------------------------------------- Spacer (CHC)


def spacer(enc: Encoding, goal: Goal, budget: Budget) -> tuple[str, str]:
    """Ask z3's CHC engine for an inductive invariant: ('proved'|'violated'|'unknown', why)."""
    from checker.smt import _has_quantifier

    if enc.num.bv:  # Spacer's strength is integer arithmetic
        enc = enc.twin("int")
        goal = goal.on(enc)
    if _has_quantifier(goal.holds):
        return "unknown", "Spacer skipped: the property quantifies over choices"
    sorts = [s.sort() for s in enc.s] + [z3.IntSort() for _ in enc.symbolic]
    inv = z3.Function("Inv", *sorts, z3.BoolSort())
    params = list(enc.symbolic.values())
    s, s2 = enc.state("h"), enc.state("h'")
    c, ce = enc.choices("hc"), enc.choices("hce")
    act = enc.act_var("hact")

    def at(st: State) -> z3.BoolRef:
        return inv(*st, *params)

    h = z3.SolverFor("HORN")
    h.add(z3.ForAll(s + params, z3.Implies(z3.And(enc.params_ok(), enc.init(s)), at(s))))
    h.add(z3.ForAll(s + s2 + list(c.values()) + [act] + params,
                    z3.Implies(z3.And(at(s), enc.at(enc.trans(), s, c, act, s2)), at(s2))))
    bad = z3.Or(z3.Not(enc.at(goal.holds, s)), enc.at(enc.error(), s, ce))
    h.add(z3.ForAll(s + list(ce.values()) + params, z3.Implies(z3.And(at(s), bad),
                                                               z3.BoolVal(False))))
    r = solve(h, budget)
    if r == z3.sat:
        return "proved", "Spacer inferred an inductive invariant"
    if r == z3.unsat:
        return "violated", "Spacer derived a reachable violation"
    return "unknown", f"Spacer: {why_unknown(h, budget)}"


# ---------------------------------------------------------------- proof driver


def _proved(method: str, depth: int, what: str, enc: Encoding) -> Outcome:
    reason = f"{what}: holds in every reachable state, all depths"
    if enc.symbolic:
        reason += f", for all {describe_params(enc)}"
    return Outcome(PROVED, depth, method, reason)


def _lemma_names(lemmas: list[Goal]) -> str:
    return ", ".join(lm.name[len(LEMMA):] for lm in lemmas)


def prove_inductive(enc: Encoding, goals: list[Goal], seconds: float
                    ) -> tuple[dict[str, Outcome], dict[str, Cti]]:
    """Houdini: the largest subset of the goals (lemmas included) whose conjunction is
    an inductive invariant.

    Each counterexample to induction drops the goals it breaks, until the rest is
    inductive; one query per round. The base case (the initial states) was checked by
    BMC at depth 0, so k = 1 needs no deeper BMC. A counterexample that breaks no goal
    but leads to a spec error stops the search: then nothing is proved.
    """
    proved: dict[str, Outcome] = {}
    ctis: dict[str, Cti] = {}
    cand = list(goals)
    budget = Budget(seconds)
    t0 = time.monotonic()
    while cand:
        solver = new_solver()
        s0, s1 = enc.state("h0"), enc.state("h1")
        c0, ce = enc.choices("hc0"), enc.choices("hce")
        a0 = enc.act_var("hact0")
        conj = z3.And(*[g.holds for g in cand])
        solver.add(enc.params_ok(), enc.domain(s0), enc.at(conj, s0),
                   enc.at(enc.trans(), s0, c0, a0, s1), z3.Or(*[a != b for a, b in zip(
                       s0, s1, strict=True)]))
        r = solve(solver, budget, z3.Or(z3.Not(enc.at(conj, s1)), enc.at(enc.error(), s1, ce)))
        if r == z3.unknown:
            return proved, ctis
        if r == z3.unsat:
            break
        m = solver.model()
        failing = [g for g in cand
                   if not z3.is_true(m.eval(enc.at(g.holds, s1), model_completion=True))]
        cti = describe_cti(enc, m, [s0, s1], [a0], [c0], ce, cand)
        if not failing:
            for g in cand:
                ctis[g.name] = cti
            return proved, ctis
        for g in failing:
            ctis[g.name] = cti
        cand = [g for g in cand if g not in failing]
    if cand:
        props = [g.name for g in cand if not g.name.startswith(LEMMA)]
        nlem = len(cand) - len(props)
        what = "inductive invariant (conjunction of " + ", ".join(
            props + ([f"{nlem} lemma{'s' if nlem > 1 else ''}"] if nlem else [])) + ")"
        for g in cand:
            proved[g.name] = _proved("induction", 1, what, enc)
            proved[g.name].extra["seconds"] = time.monotonic() - t0
    return proved, ctis


def prove_deep(enc: Encoding, goal: Goal, lemmas: list[Goal], bounded: Outcome,
               cti: Cti | None, budget: Budget, source: str) -> Outcome:
    """k-induction for k >= 2 (base case: the BMC depth), then Spacer, for one goal."""
    base = bounded.depth
    max_k = min(MAX_INDUCTION, base + 1)
    names = _lemma_names(lemmas)
    tried = ["not inductive" + (f" with lemmas {names}" if lemmas else "")]
    if max_k >= 2:
        k, _cti, why = induction(enc, [goal, *lemmas], max_k, budget)
        if k is not None:
            what = ("inductive invariant" if k == 1 else f"{k}-induction") + (
                f" with lemmas {names}" if lemmas else "")
            return _proved("k-induction", k, what, enc)
        tried.append(f"k-induction up to k={max_k} failed" + (f" ({why})" if why else ""))
    verdict, why = spacer(enc, goal, budget)
    if verdict == "proved":
        return _proved("spacer", base, "Spacer (CHC) inferred an inductive invariant", enc)
    tried.append(why)
    if verdict == "violated":
        deeper = bmc(enc, [goal], base * 4 + 8, budget, source)[goal.name]
        if deeper.verdict == VIOLATED:
            return deeper
        return Outcome(UNKNOWN, base, "spacer",
                       "Spacer derived a reachable violation deeper than the BMC could reach "
                       "in time; rerun with a larger --depth for the trace")
    out = Outcome(bounded.verdict, bounded.depth, bounded.method,
                  bounded.reason + "; not proved: " + "; ".join(tried))
    if cti is not None:
        out.detail, out.extra["cti"] = cti.text, cti.data
    return out


def run_goals(enc: Encoding, goals: list[Goal], depth: int, prove: bool, seconds: float,
              source: str) -> dict[str, Outcome]:
    """All engines in order of cost.

    Without --prove: BMC to `depth`. With --prove: the initial states, then inductive
    invariants; BMC to `depth` only for what is left (assuming what was proved), then
    k-induction and Spacer for what BMC did not refute.
    """
    if not prove:
        return bmc(enc, goals, depth, Budget(seconds), source)
    t0 = time.monotonic()
    out = bmc(enc, goals, 0, Budget(seconds), source)
    open_ = [g for g in goals if out[g.name].verdict == BOUNDED_OK]
    proved, ctis = prove_inductive(enc, open_, seconds)
    out.update(proved)
    rest = [g for g in open_ if g.name not in proved]
    if not rest:
        return out
    facts = [g for g in open_ if g.name in proved]
    deeper = bmc(enc, rest, depth, Budget(seconds), source, facts=facts, errors=not proved)
    bmc_seconds = time.monotonic() - t0
    lemmas = [g for g in goals if g.name.startswith(LEMMA)
              and deeper.get(g.name, out[g.name]).verdict in (PROVED, BOUNDED_OK)]
    for g in rest:
        o = deeper[g.name]
        if o.verdict == BOUNDED_OK:
            t1 = time.monotonic()
            others = [lm for lm in lemmas if lm.name != g.name]
            o = prove_deep(enc, g, others, o, ctis.get(g.name), Budget(seconds), source)
            o.extra["seconds"] = time.monotonic() - t1
        o.extra["seconds"] = o.extra.get("seconds", 0.0) + bmc_seconds
        out[g.name] = o
    return out


# ---------------------------------------------------------------- quantitative queries


@dataclass
class Extremum:
    """The largest value an expression takes over the reachable states (or runs <= depth)."""

    value: int | None  # None: no value found before the solver gave up
    verdict: str  # PROVED: value is the maximum over all reachable states; BOUNDED_OK: over
    #               runs of at most `depth` steps; UNKNOWN: the search was cut short
    depth: int  # steps covered by the bounded search
    reason: str
    trace: Trace | None = None  # a run reaching the value
    detail: str = ""  # counterexample to induction when the bound was not proved


def maximize(enc: Encoding, e: Expr, depth: int, prove: bool, seconds: float, source: str,
             text: str) -> Extremum:
    """Largest value of e over states reachable in <= depth steps, by BMC and search.

    Per depth: is there a state above the best so far? then binary search between it and
    the static upper bound. If every run ends within the depth, the value is exact; with
    `prove`, `e <= value` is proved for all depths as an invariant (with the lemmas).
    """
    budget = Budget(seconds)
    v = enc.sum_expr(e)
    static = bounds(e, enc.ranges)
    u = Unrolling(enc)
    best: int | None = None
    best_run: tuple[list[tuple[int, ...]], list[Move], dict[str, int]] | None = None
    best_k = 0
    cut = ""
    exhausted = False
    reached = -1
    for k in range(depth + 1):
        if k > 0:
            u.extend()
            r = u.check(budget)
            if r == z3.unsat:
                exhausted = True
                break
            if r == z3.unknown:
                cut = u.unknown
                break
        vk = enc.at(v, u.states[k])
        r = u.check(budget) if best is None else u.check(budget, vk > best)
        if r == z3.sat:
            assert u.model is not None
            lo = enc.value(u.model, vk)
            best, best_k, best_run = lo, k, u.run(u.model, k)
            hi = None if static is None else static[1]
            step = 1
            while hi is None or lo < hi:
                target = lo + step if hi is None else (lo + hi + 1) // 2
                r = u.check(budget, vk >= target)
                if r == z3.unsat:
                    hi = target - 1
                elif r == z3.sat:
                    assert u.model is not None
                    lo = enc.value(u.model, vk)
                    best, best_k, best_run = lo, k, u.run(u.model, k)
                    step *= 2
                else:
                    break
        if r == z3.unknown:
            cut = u.unknown
        if cut:
            break
        ce = enc.choices(f"err{k}")
        _spec_errors(enc, u, k, ce, [], budget)
        reached = k
    trace = None
    if best_run is not None:
        states, moves, params = best_run
        trace = make_trace(enc.flat, source, states, moves, params, None, "query",
                           f"max of {text} = {best}")
        trace.witness = witness(enc.flat, e, states[-1])
    symb = f", for all {describe_params(enc)}" if enc.symbolic else ""
    if best is None:
        return Extremum(None, UNKNOWN, max(reached, 0), f"solver gave up ({cut})")
    if exhausted:
        return Extremum(best, PROVED, u.depth - 1, f"every run ends within {u.depth - 1} steps: "
                        f"the maximum over all reachable states{symb}", trace)
    if cut:
        return Extremum(best, UNKNOWN, max(reached, 0), f"largest value found in runs of at "
                        f"most {max(reached, 0)} steps; the solver gave up ({cut})", trace)
    out = Extremum(best, BOUNDED_OK, depth,
                   f"maximum over runs of at most {depth} steps{symb}", trace)
    if prove:
        from checker.expr import Op

        bound = Op("<=", (e, Const(best, e.sort)), "bool")
        goal = Goal(f"{text} <= {best}", "invariant", "", enc.sum_bool(bound), e, bound)
        lemmas = goals_of(enc, [], lemmas=True)
        proved, ctis = prove_inductive(enc, [goal, *lemmas], seconds)
        if goal.name in proved:
            out.verdict = PROVED
            out.reason = f"{goal.name} proved ({proved[goal.name].reason}); reached after " \
                         f"{best_k} steps"
            return out
        o = prove_deep(enc, goal, [lm for lm in lemmas if lm.name in proved], Outcome(
            BOUNDED_OK, depth, "bmc", out.reason), ctis.get(goal.name), Budget(seconds), source)
        if o.verdict == PROVED:
            out.verdict, out.reason = PROVED, f"{goal.name} proved ({o.reason})"
        else:
            out.reason, out.detail = o.reason, o.detail
    return out


# ---------------------------------------------------------------- entry point


def check_smt(spec: Spec, source: str, properties: list[str] | None = None, *,
              depth: int | None = None, prove: bool = False, symbolic: Iterable[str] = (),
              max_seconds: float | None = None) -> list[Result]:
    """Check a built spec with z3; one Result per selected property (and per lemma).

    max_seconds bounds each engine phase (the shared BMC, each proof attempt) separately.
    """
    t0 = time.monotonic()
    flat = instantiate(spec)
    enc = Encoding(flat, symbolic)
    seconds = max_seconds if max_seconds is not None else DEFAULT_SECONDS
    k = depth if depth is not None else DEFAULT_DEPTH
    selected = [p for p in spec.properties if properties is None or p.name in properties]
    names = [p.name for p in selected if p.kind != "lock_order"]
    goals = goals_of(enc, names, lemmas=True)
    outcomes = run_goals(enc, goals, k, prove, seconds, source)
    common = time.monotonic() - t0 - sum(o.extra.get("seconds", 0.0) for o in outcomes.values())
    symb = {n: list(r) for n, r in enc.ranges.items()}
    results = []
    for p in selected:
        r = Result(spec.name, source, spec.variant, dict(spec.parameters), p.name, p.kind, "smt",
                   expected_text(spec, p.name), UNKNOWN, seconds=max(common, 0.0))
        if p.kind == "lock_order":
            r.reason = ("lock-order analysis runs over the explicit engine's state graph; use "
                        "--engine explicit")
        else:
            _fill(r, outcomes[p.name], symb)
        results.append(r)
    if properties is None:
        for g in goals:
            if g.name.startswith(LEMMA):
                r = Result(spec.name, source, spec.variant, dict(spec.parameters), g.name,
                           "lemma", "smt", "PASS", UNKNOWN, seconds=max(common, 0.0))
                _fill(r, outcomes[g.name], symb)
                results.append(r)
    return results


def _fill(r: Result, o: Outcome, symb: dict[str, list[int]]) -> None:
    r.verdict, r.depth, r.reason, r.trace, r.detail = o.verdict, o.depth, o.reason, o.trace, \
        o.detail
    r.seconds += o.extra.pop("seconds", 0.0)
    r.extra = {"method": o.method, **o.extra}
    if symb:
        r.extra["symbolic"] = symb


__all__ = ["Budget", "Outcome", "Unrolling", "bmc", "check_smt", "check_run", "make_trace",
           "maximize", "prove_deep", "prove_inductive", "run_goals",
           "step_reference"]
