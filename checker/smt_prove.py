"""Proofs for all depths: Houdini over lemmas, k-induction, Spacer (z3's CHC engine).

Every obligation includes "no step raises a spec error": the transition relation blocks
erroneous steps, so a proof is a proof of the explicit engine's semantics only when
errors are shown unreachable too. A failed induction step yields a counterexample to
induction (CTI) worded for the spec author: which state, which step, what breaks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import z3

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
        return Outcome(UNKNOWN, base, SPACER_REFUTED,
                       "Spacer derived a reachable violation deeper than the BMC could reach "
                       "in time; rerun with a larger --depth for the trace")
    out = Outcome(bounded.verdict, bounded.depth, bounded.method,
                  bounded.reason + "; not proved: " + "; ".join(tried))
    if cti is not None:
        out.detail, out.extra["cti"] = cti.text, cti.data
    return out


