"""Proofs for all depths: Houdini over lemmas, k-induction, Spacer (z3's CHC engine).

Every obligation includes "no step raises a spec error": the transition relation blocks
erroneous steps, so a proof is a proof of the explicit engine's semantics only when
errors are shown unreachable too. A failed induction step yields a counterexample to
induction (CTI) worded for the spec author: which state, which step, what breaks.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import z3

from checker.expr import Expr, IntT, Param, Slot, SlotSelect, rebuild, walk
from checker.flat import Flat
from checker.result import PROVED, UNKNOWN
from checker.smt import Choices, Encoding, State
from checker.smt_solve import (
    LEMMA,
    Budget,
    Goal,
    Outcome,
    describe_params,
    new_solver,
    solve,
    why_unknown,
)
from checker.symmetry import Symmetry, SymmetryError, analyse
from checker.trace import decode_state

SPACER_REFUTED = "spacer-refuted"  # Outcome.method: a violation exists, BMC must find it
MAX_INDUCTION = 8  # k-induction tries k = 1..min(this, base depth + 1)


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
        solver = new_solver(enc)
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


def describe_cti(enc: Encoding, m: z3.ModelRef, states: list[State], acts: list[z3.ExprRef],
                 chs: list[Choices], ce: Choices, hyp: list[Goal],
                 error_at: State | None = None) -> Cti:
    """The pre-state, the step and what breaks, worded for the spec author.

    error_at: the step itself raises a spec error in this state (per-step induction),
    instead of some step from the post-state."""
    flat = enc.flat
    pre = enc.decode_state(m, states[0])
    t = enc.decode_act(m, acts[0])
    _raw, shown = enc.decode_choice(m, t, chs[0])
    if error_at is not None:
        post = pre
        failing = ["no spec error (" + enc.explain_error(m, error_at, chs[0]).message + ")"]
    else:
        post = enc.decode_state(m, states[1])
        failing = [g.name for g in hyp if not z3.is_true(
            m.eval(enc.at(g.holds, states[1]), model_completion=True))]
        if z3.is_true(m.eval(enc.at(enc.error(), states[1], ce), model_completion=True)):
            failing.append("no spec error (" + enc.explain_error(m, states[1], ce).message
                           + ")")
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


def prove_inductive(enc: Encoding, goals: list[Goal], seconds: float,
                    plan: StepPlan | None = None) -> tuple[dict[str, Outcome], dict[str, Cti]]:
    """Houdini: the largest subset of the goals (lemmas included) whose conjunction is
    an inductive invariant.

    Each counterexample to induction drops the goals it breaks, until the rest is
    inductive. The base case (the initial states) was checked by BMC at depth 0, so
    k = 1 needs no deeper BMC. A counterexample that breaks no goal but leads to a spec
    error stops the search: then nothing is proved. With a `plan`, the induction step is
    one small query per step alternative (`houdini_per_step`), else one query over the
    whole transition relation (`houdini_monolithic`).
    """
    budget = Budget(seconds)
    t0 = time.monotonic()
    if plan is None:
        cand, ctis = houdini_monolithic(enc, goals, budget)
        how = ""
    else:
        cand, ctis = houdini_per_step(enc, goals, budget, plan)
        how = plan.describe()
    proved: dict[str, Outcome] = {}
    if cand:
        props = [g.name for g in cand if not g.name.startswith(LEMMA)]
        nlem = len(cand) - len(props)
        what = "inductive invariant (conjunction of " + ", ".join(
            props + ([f"{nlem} lemma{'s' if nlem > 1 else ''}"] if nlem else [])) + ")"
        for g in cand:
            proved[g.name] = _proved("induction", 1, what, enc)
            if how:
                proved[g.name].reason += f"; {how}"
            proved[g.name].extra["seconds"] = time.monotonic() - t0
    return proved, ctis


def houdini_monolithic(enc: Encoding, goals: list[Goal], budget: Budget
                       ) -> tuple[list[Goal], dict[str, Cti]]:
    """Houdini with one induction query per round over the whole transition relation.

    Returns the inductive subset (empty when the solver gave up or a spec error is
    reachable from the hypothesis) and the counterexamples to induction by goal."""
    ctis: dict[str, Cti] = {}
    cand = list(goals)
    while cand:
        solver = new_solver(enc)
        s0, s1 = enc.state("h0"), enc.state("h1")
        c0, ce = enc.choices("hc0"), enc.choices("hce")
        a0 = enc.act_var("hact0")
        conj = z3.And(*[g.holds for g in cand])
        solver.add(enc.params_ok(), enc.domain(s0), enc.at(conj, s0),
                   enc.at(enc.trans(), s0, c0, a0, s1), z3.Or(*[a != b for a, b in zip(
                       s0, s1, strict=True)]))
        r = solve(solver, budget, z3.Or(z3.Not(enc.at(conj, s1)), enc.at(enc.error(), s1, ce)))
        if r == z3.unknown:
            return [], ctis
        if r == z3.unsat:
            break
        m = solver.model()
        failing = [g for g in cand
                   if not z3.is_true(m.eval(enc.at(g.holds, s1), model_completion=True))]
        cti = describe_cti(enc, m, [s0, s1], [a0], [c0], ce, cand)
        if not failing:
            for g in cand:
                ctis[g.name] = cti
            return [], ctis
        for g in failing:
            ctis[g.name] = cti
        cand = [g for g in cand if g not in failing]
    return cand, ctis


# ---------------------------------------------------------------- per-step induction


@dataclass
class StepPlan:
    """The step alternatives an induction step checks one by one, and why that covers all.

    `checked` indexes `Encoding.prepared`. `follow` names the instances whose steps are
    not checked because a verified symmetry maps them onto a checked representative's
    (see `symmetric_plan`); empty when every step alternative is checked.
    """

    checked: list[int]
    follow: list[str]
    symmetry: str = ""

    def describe(self) -> str:
        text = f"induction step checked per step alternative ({len(self.checked)} queries)"
        if self.follow:
            text += (f"; {', '.join(self.follow)} by the verified symmetry ({self.symmetry}): "
                     "each of their steps is an automorphic image of a checked one")
        return text


def full_plan(enc: Encoding) -> StepPlan:
    """Every step alternative checked."""
    return StepPlan(list(range(len(enc.prepared))), [])


def _params_as_leaves(flat: Flat, names: list[str]) -> Flat:
    """flat with the symbolic constants as opaque leaves (slots beyond the state).

    `checker.symmetry.analyse` compares expressions after substituting every constant's
    concrete value; a symbolic constant must instead stay a free value, or two steps
    that differ only where the constant happens to equal another term would pass.
    """
    consts = flat.spec.constants
    leaf = {n: Slot(len(flat.slots) + k, n, IntT(consts[n].lo, consts[n].hi))
            for k, n in enumerate(names)}
    if not leaf:
        return flat

    def f(e: Expr) -> Expr | None:
        if isinstance(e, Param) and e.name in leaf:
            return leaf[e.name]
        if isinstance(e, SlotSelect):
            return SlotSelect(e.base, e.size, rebuild(e.idx, f), e.name, e.type)
        return None

    def sub(e: Expr) -> Expr:
        return rebuild(e, f)

    transitions = [dataclasses.replace(t, guard=sub(t.guard), updates=tuple(
        (tg if isinstance(tg, Slot) else sub(tg), sub(v)) for tg, v in t.updates))
        for t in flat.transitions]
    return dataclasses.replace(
        flat, transitions=transitions,
        properties={n: None if e is None else sub(e) for n, e in flat.properties.items()},
        lemmas={n: sub(e) for n, e in flat.lemmas.items()}, finished=sub(flat.finished),
        lock_held={lk: {g: [sub(e) for e in held] for g, held in per.items()}
                   for lk, per in flat.lock_held.items()})


def verified_symmetry(enc: Encoding, properties: list[str]) -> tuple[Symmetry | None, str]:
    """The spec's declared process symmetry, verified on the system being proved.

    `checker.symmetry.analyse` runs on the live step alternatives of `enc` (the others
    can never fire nor raise), with the symbolic constants as free leaves, for the
    properties and every lemma; an initial value of a permuted slot that depends on a
    symbolic constant is refused too. Returns (symmetry or None, why not).
    """
    flat = enc.flat
    if not flat.spec.symmetric:
        return None, "no symmetry declared"
    live = dataclasses.replace(flat, transitions=[p.t for p in enc.prepared])
    try:
        sym = analyse(_params_as_leaves(live, enc.sym_names), properties)
    except SymmetryError as e:
        return None, str(e)
    for cls in sym.classes:
        for row in cls.rows:
            for j in row:
                if any(isinstance(n, Param) and n.name in enc.symbolic
                       for n in walk(flat.init[j])):
                    return None, (f"the initial value of {flat.slots[j].name} depends on a "
                                  "symbolic constant")
    return (sym if sym.active else None), sym.describe()


def symmetric_plan(enc: Encoding, sym: Symmetry | None) -> StepPlan:
    """The step alternatives of one representative per symmetry class (and of every
    instance outside the classes).

    Why the others need no query: let a be a class's representative and b another
    instance of it. `analyse` verified that the transposition (a b) - swapping a's and
    b's pc, locals and array elements - fixes the initial state, maps the multiset of
    step alternatives onto itself (so b's steps onto a's), and leaves every checked
    property, lemma and the "finished" condition unchanged. So it maps reachable states
    to reachable states. Suppose every reachable state satisfies the hypothesis H (the
    conjunction of goals, all invariant under (a b)) up to some run length, and b's step
    t goes from reachable s to s'. Then (a b)t is a step of a from (a b)s, reachable and
    satisfying H, to (a b)s'; it is live (it fires from a reachable state), so it was
    checked: H((a b)s') holds and (a b)t raises no spec error at (a b)s, hence H(s')
    holds and t raises none at s. By induction on the run length, H holds in every
    reachable state.
    """
    if sym is None:
        return full_plan(enc)
    skip: set[tuple[str, int]] = set()
    follow = []
    for cls in sym.classes:
        for g in cls.groups:
            skip |= {(g, k) for k in cls.instances[1:]}
        rest = cls.instances[1:]
        follow.append(f"{'/'.join(cls.groups)}[{rest[0]}..{rest[-1]}] follow from "
                      f"{'/'.join(cls.groups)}[{cls.instances[0]}]")
    checked = [i for i, p in enumerate(enc.prepared) if (p.t.group, p.t.instance) not in skip]
    return StepPlan(checked, follow, sym.describe())


def _state_vars(enc: Encoding) -> dict[int, int]:
    return {v.get_id(): i for i, v in enumerate(enc.s)}


def _reads(e: z3.ExprRef, ids: dict[int, int]) -> set[int]:
    """The state slots a template formula reads."""
    out: set[int] = set()
    todo, seen = [e], set()
    while todo:
        x = todo.pop()
        if x.get_id() in seen:
            continue
        seen.add(x.get_id())
        if x.get_id() in ids:
            out.add(ids[x.get_id()])
        else:
            todo.extend(x.children())
    return out


def houdini_per_step(enc: Encoding, goals: list[Goal], budget: Budget, plan: StepPlan
                     ) -> tuple[list[Goal], dict[str, Cti]]:
    """Houdini where the induction step is one query per step alternative.

    For the hypothesis H (the candidate goals) and each step alternative t of the plan:
    is there a state s (in its domain, constants in range) with H(s) where t raises a
    spec error, or t fires and leads to s' with not H(s')? The next state is t's update
    terms substituted into the goals, and only the goals reading a slot t writes are
    concluded (the others are unchanged). H is inductive and no reachable step raises
    (given the base case) exactly when every query is unsatisfiable: the monolithic
    query's transition relation is the disjunction of these steps. The one difference:
    a spec error is looked for in every H-state, not only in H-successors, which is
    stronger. A goal broken by some step is dropped and the pass restarts (a smaller H
    can break a step that passed); the solver giving up proves nothing.
    """
    ids = _state_vars(enc)
    s, c = enc.s, enc.c
    reads = {g.name: _reads(g.holds, ids) for g in goals}
    ctis: dict[str, Cti] = {}
    cand = list(goals)
    base = [enc.params_ok(), enc.domain(s)]
    while cand:
        hyp = [g.holds for g in cand]
        dropped = False
        for i in plan.checked:
            p = enc.prepared[i]
            writes = enc._writes(p, s, c)
            touched = [g for g in cand if reads[g.name] & writes.keys()]
            post = [(s[k], v) for k, v in writes.items()]
            broken = z3.Not(z3.substitute(z3.And(*[g.holds for g in touched]), *post)) \
                if touched else z3.BoolVal(False)
            ok = enc.ok(p, s, c)
            solver = new_solver(enc)
            solver.add(*base, *hyp, s[p.t.pc_slot] == p.t.pc_from, enc.choice_domain(c, p.keys))
            g = enc.tr.value(p.guard, s, c)
            r = solve(solver, budget, z3.Or(z3.Not(ok), z3.And(g, broken)))
            if r == z3.unknown:
                return [], ctis
            if r == z3.unsat:
                continue
            m = solver.model()
            s1 = [writes.get(k, v) for k, v in enumerate(s)]
            act = z3.IntVal(i) if not enc.num.bv else z3.BitVecVal(i, enc.act_width)
            ce = enc.choices("hce")
            if not z3.is_true(m.eval(ok, model_completion=True)):
                cti = describe_cti(enc, m, [s, s1], [act], [c], ce, cand, error_at=s)
                for gl in cand:
                    ctis[gl.name] = cti
                return [], ctis
            failing = [gl for gl in touched if not z3.is_true(
                m.eval(z3.substitute(gl.holds, *post), model_completion=True))]
            cti = describe_cti(enc, m, [s, s1], [act], [c], ce, cand)
            for gl in failing:
                ctis[gl.name] = cti
            cand = [gl for gl in cand if gl not in failing]
            dropped = True
            break
        if not dropped:
            break
    return cand, ctis


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
        return Outcome(UNKNOWN, base, SPACER_REFUTED,
                       "Spacer derived a reachable violation deeper than the BMC could reach "
                       "in time; rerun with a larger --depth for the trace")
    out = Outcome(bounded.verdict, bounded.depth, bounded.method,
                  bounded.reason + "; not proved: " + "; ".join(tried))
    if cti is not None:
        out.detail, out.extra["cti"] = cti.text, cti.data
    return out


