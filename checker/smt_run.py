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
from collections.abc import Iterable

import z3

from checker.compile import SpecRuntimeError
from checker.expr import Expr
from checker.flat import Flat, instantiate
from checker.movers import restrict_movers
from checker.result import BOUNDED_OK, PROVED, UNKNOWN, VIOLATED, Result
from checker.run import expected_text
from checker.slicing import slice_flat
from checker.smt import Choices, Encoding
from checker.smt_prove import (
    SPACER_REFUTED,
    StepPlan,
    prove_deep,
    prove_inductive,
    symmetric_plan,
    verified_symmetry,
)
from checker.smt_solve import (
    DEFAULT_DEPTH,
    DEFAULT_SECONDS,
    LEMMA,
    Budget,
    Goal,
    Outcome,
    describe_params,
    goals_of,
)
from checker.smt_unroll import Unrolling, make_trace, witness
from checker.spec import Spec, SpecError

# ---------------------------------------------------------------- BMC


SCHEDULE = (0, 1, 2, 4, 8)
STRIDE = 4  # after the schedule, bounds grow by this much
SHALLOW_SHARE = 0.2  # of the time left, for each bound of the schedule before the depth
ERROR_SHARE = 0.05  # of the time left, to refute spec errors at a bound before the depth


def schedule(depth: int) -> list[int]:
    """Bounds of the successive "within k steps" queries: 0, 1, 2, 4, 8, 12, 16, ... depth.

    Refuting violations within k steps gets expensive fast with k on interleavings, while
    finding one is cheap: the bounds grow fast, and only by STRIDE once they are deep, so
    a violation a little deeper than one bound is looked for before the next is far away.
    """
    deep = range(SCHEDULE[-1] + STRIDE, depth, STRIDE)
    return [k for k in (*SCHEDULE, *deep) if k < depth] + [depth]


def bmc(enc: Encoding, goals: list[Goal], depth: int, budget: Budget, source: str,
        facts: list[Goal] | None = None, errors: bool = True,
        shortest: bool = True) -> dict[str, Outcome]:
    """Check every goal in the runs of at most `depth` steps.

    Queries ask for a violation within k steps (a stuttering unrolling) for the bounds of
    `schedule(depth)`: violations, which are satisfiable queries, are found without first
    refuting every shallower depth one by one; spec errors within k are refuted after.
    A violation found within k is shortened by binary search (shortest=True), so traces
    are shortest like the explicit engine's.
    Spec errors (a step assigning outside a domain, an index out of range) raise
    SpecRuntimeError, as in the explicit engine (errors=False: proved unreachable). `facts`
    are goals already proved invariant: assuming them in every state loses no run.
    """
    u = Unrolling(enc, facts=[f.holds for f in facts or []], stutter=True)
    if u.check(budget, enc.init_error()) == z3.sat:
        assert u.model is not None
        raise SpecRuntimeError(f"spec {enc.flat.spec.name}: an initial value is outside its "
                               f"variable's domain (constants {enc.decode_params(u.model)})")
    open_ = {g.name: g for g in goals}
    out: dict[str, Outcome] = {}
    prop_errors = [(g.name, enc.prop_error(g.name)) for g in goals
                   if not g.name.startswith(LEMMA) and g.formula is None]
    symb = f"; for all {describe_params(enc)}" if enc.symbolic else ""
    done = -1  # every open goal holds, and no step raises, in the runs of at most `done` steps
    clean = -1  # every open goal holds in the runs of at most `clean` steps
    for k in schedule(depth):
        while u.depth < k:
            u.extend()
        s = u.states[k]
        ce = enc.choices(f"err{k}")
        bads = {name: z3.Not(enc.at(g.holds, s)) for name, g in open_.items()}
        # a shallower bound gets a share of the time: if it is not refuted in time, a
        # violation may still be found deeper (and shortened as far as time allows)
        share = budget if k == depth else budget.share(SHALLOW_SHARE)
        # violations first: finding one is cheap, while refuting spec errors within k
        # steps (every update in its domain in every state) is a proof over all runs
        r = u.check(share, z3.Or(*bads.values())) if bads else z3.unsat
        if r == z3.unknown:
            if k < depth:
                continue
            break
        if r == z3.sat:
            for name, bad in bads.items():
                r = u.check(budget, bad)
                if r == z3.sat:
                    assert u.model is not None
                    g = open_.pop(name)
                    out[name] = _violation(enc, u, g, k, clean, budget, source, shortest)
                elif r == z3.unknown:
                    open_.pop(name)
                    out[name] = Outcome(UNKNOWN, max(clean, 0), "bmc",
                                        f"solver gave up within {k} steps ({u.unknown}); no "
                                        f"violation in runs of at most {clean} steps")
            if not open_ and goals:
                return out
        clean = k  # the goals still open (violated and undecided ones left) hold within k
        if errors and not check_spec_errors(enc, u, k, ce, prop_errors, budget if k == depth
                                            else budget.share(ERROR_SHARE, floor=1.0),
                                            strict=False):
            if k < depth:
                continue
            break
        done = k
        if k > 0 and open_:
            r = u.check(budget, u.acts[k - 1] != enc.stutter)
            if r == z3.unsat:
                for name in open_:
                    out[name] = Outcome(PROVED, k - 1, "bmc-exhausted",
                                        f"every run ends within {k - 1} steps and none "
                                        f"violates it{symb}")
                return out
    for name in open_:
        if done < depth:
            why = (f"solver gave up ({u.unknown}); no violation in runs of at most {clean} "
                   f"steps" if clean >= 0 else
                   f"solver gave up on the initial states ({u.unknown})")
            if clean > done:
                why += (f"; no step raises a spec error in runs of at most {done}" if done >= 0
                        else "; spec errors not excluded")
            out[name] = Outcome(UNKNOWN, max(done, 0), "bmc", why)
        else:
            out[name] = Outcome(BOUNDED_OK, depth, "bmc",
                                f"no violation in runs of at most {depth} steps{symb}")
    return out


def _violation(enc: Encoding, u: Unrolling, g: Goal, k: int, done: int, budget: Budget,
               source: str, shortest: bool) -> Outcome:
    """The counterexample in u.model, shortened to a shortest one by binary search."""
    assert u.model is not None
    run = u.run(u.model, k)
    note = ""
    lo = done + 1  # no violation within `done` steps
    while shortest and lo < len(run[1]):
        mid = (lo + len(run[1])) // 2
        r = u.check(budget.share(0.25), z3.Not(enc.at(g.holds, u.states[mid])), depth=mid)
        if r == z3.sat:
            assert u.model is not None
            run = u.run(u.model, mid)
        elif r == z3.unsat:
            lo = mid + 1
        else:
            note = f"; a shorter run may exist (solver gave up: {u.unknown})"
            break
    states, moves, params = run
    t = make_trace(enc.flat, source, states, moves, params, g.name, g.kind, g.doc)
    t.witness = witness(enc.flat, g.expr, states[-1])
    return Outcome(VIOLATED, len(moves), "bmc", note.lstrip("; "), trace=t)


def check_spec_errors(enc: Encoding, u: Unrolling, k: int, ce: Choices,
                      prop_errors: list[tuple[str, z3.BoolRef]], budget: Budget,
                      strict: bool = True) -> bool:
    """Raise SpecRuntimeError if a step from some state at depth k raises.

    True when no step raises; False when the solver gave up and not `strict` (strict:
    raise then too)."""
    s = u.states[k]
    r = u.check(budget, enc.at(enc.error(depth=k), s, ce))
    if r == z3.sat:
        assert u.model is not None
        fail = enc.explain_error(u.model, s, ce)
        states, moves, params = u.run(u.model, k)
        path = "; ".join(f"{mv.transition.process} {mv.transition.step.label}" for mv in moves)
        consts = f" with {params}" if params else ""
        raise SpecRuntimeError(f"{fail.message} (SMT engine: reached after {len(moves)} steps"
                               f"{consts}: {path or 'initial state'})")
    if r == z3.unknown:
        if not strict:
            return False
        raise SpecRuntimeError(f"SMT engine: could not decide whether a spec error is reachable "
                               f"at depth {k} ({u.unknown})")
    for name, bad in prop_errors:
        if u.check(budget, enc.at(bad, s)) == z3.sat:
            raise SpecRuntimeError(f"property {name}: evaluating it raises (index out of "
                                   f"range) in a state reached after {k} steps (SMT engine)")
    return True


BV_AUTO_BITS = 8  # "auto" bit-blasts unrollings whose integers all fit this signed width


def encodings(flat: Flat, symbolic: Iterable[str], arith: str = "auto",
              extra: Iterable[Expr] = ()) -> tuple[Encoding, Encoding]:
    """(encoding for unrollings, integer encoding for induction and Spacer).

    Bit-blasting wins on interleavings of small-domain control state (lock specs); linear
    integer arithmetic wins on accounting invariants and wide values, and induction is
    always done over integers. "auto" bit-blasts unrollings only when every integer the
    spec computes fits BV_AUTO_BITS bits.
    """
    extra = list(extra)
    ind = Encoding(flat, symbolic, "int", extra)
    if arith == "int":
        return ind, ind
    unroll = Encoding(flat, symbolic, "bv" if arith == "bv" else "auto", extra, base=ind)
    if arith == "auto" and (unroll.num.width or 0) > BV_AUTO_BITS:
        return ind, ind
    return unroll, ind


def run_goals(eb: Encoding, ei: Encoding, goals: list[Goal], depth: int, prove: bool,
              seconds: float, source: str, plan: StepPlan | None = None
              ) -> dict[str, Outcome]:
    """All engines in order of cost; goals are over `eb` (unrollings), proofs use `ei`.

    Without --prove: BMC to `depth`. With --prove: the initial states, then inductive
    invariants (Houdini; per step alternative of `plan`, or one query if None); BMC to
    `depth` only for what is left (assuming what was proved), then k-induction and
    Spacer for what BMC did not refute.
    """
    if not prove:
        return bmc(eb, goals, depth, Budget(seconds), source)
    t0 = time.monotonic()
    out = bmc(eb, goals, 0, Budget(seconds), source)
    open_ = [g for g in goals if out[g.name].verdict == BOUNDED_OK]
    on_i = {g.name: g.on(ei) if ei is not eb else g for g in open_}
    proved, ctis = prove_inductive(ei, list(on_i.values()), seconds, plan)
    out.update(proved)
    rest = [g for g in open_ if g.name not in proved]
    if not rest:
        return out
    facts = [g for g in open_ if g.name in proved]
    deeper = bmc(eb, rest, depth, Budget(seconds), source, facts=facts, errors=not proved)
    bmc_seconds = time.monotonic() - t0
    lemmas = [on_i[g.name] for g in open_ if g.name.startswith(LEMMA)
              and deeper.get(g.name, out[g.name]).verdict in (PROVED, BOUNDED_OK)]
    for g in rest:
        o = deeper[g.name]
        if o.verdict == BOUNDED_OK:
            t1 = time.monotonic()
            others = [lm for lm in lemmas if lm.name != g.name]
            o = prove_deep(ei, on_i[g.name], others, o, ctis.get(g.name), Budget(seconds),
                           source)
            if o.method == SPACER_REFUTED:  # look deeper for the trace
                deep = bmc(eb, [g], o.depth * 4 + 8, Budget(seconds), source)[g.name]
                o = deep if deep.verdict == VIOLATED else o
            o.extra["seconds"] = time.monotonic() - t1
        o.extra["seconds"] = o.extra.get("seconds", 0.0) + bmc_seconds
        out[g.name] = o
    return out


# ---------------------------------------------------------------- entry point


def check_smt(spec: Spec, source: str, properties: list[str] | None = None, *,
              depth: int | None = None, prove: bool = False, symbolic: Iterable[str] = (),
              max_seconds: float | None = None, arith: str = "auto",
              slice: bool = False, induction: str = "per-step",
              movers: int | None = None) -> list[Result]:
    """Check a built spec with z3; one Result per selected property (and per lemma).

    max_seconds bounds each engine phase (the shared BMC, each proof attempt) separately.
    slice: prove on the cone of influence of the selected properties and the lemmas
    (checker.slicing): ghosts that only other properties read need no lemmas. Sound for
    the properties (the sliced system is bisimilar on the slots they read); an
    out-of-domain assignment to a dropped slot is then only looked for by BMC.
    arith: how unrollings represent integers ("auto", "int", "bv"; see `encodings`).
    induction: "per-step" checks the induction step one step alternative at a time, only
    a representative's steps for process instances a verified symmetry makes
    interchangeable (`checker.smt_prove.symmetric_plan`); "monolithic": one query over
    the whole transition relation.
    movers: look for violations only among the runs where instances 0..movers-1 of each
    process group move freely and every other instance takes at most its first step
    (`restrict_movers`): every run found is a run of the spec, but finding none proves
    nothing (UNKNOWN, never BOUNDED-OK). Not with --prove.
    """
    t0 = time.monotonic()
    flat = instantiate(spec)
    selected = [p for p in spec.properties if properties is None or p.name in properties]
    restricted = ""
    if movers is not None:
        if prove:
            raise SpecError(f"spec {spec.name}", "--movers restricts the runs searched; it "
                            "cannot prove (drop --prove)")
        finals = any(p.kind == "final" for p in selected)
        flat, restricted = restrict_movers(flat, movers, symbolic, first_steps=finals)
    enc, ind = encodings(flat, symbolic, arith)
    dropped: list[str] = []
    if slice:  # proofs on the cone of influence; BMC and its traces stay on the whole spec
        sliced, gone = slice_flat(flat, [p.name for p in selected], lemmas=True)
        if gone:
            ind = Encoding(sliced, symbolic, "int", [])
            dropped = [flat.slots[i].name for i in gone]
    seconds = max_seconds if max_seconds is not None else DEFAULT_SECONDS
    k = depth if depth is not None else DEFAULT_DEPTH
    skip = ("lock_order", "deadlock") if restricted else ("lock_order",)
    names = [p.name for p in selected if p.kind not in skip]
    goals = goals_of(enc, names, lemmas=True)
    plan = None
    if prove and induction != "monolithic":
        sym, _why = verified_symmetry(ind, names)
        plan = symmetric_plan(ind, sym)
    outcomes = run_goals(enc, ind, goals, k, prove, seconds, source, plan)
    common = time.monotonic() - t0 - sum(o.extra.get("seconds", 0.0) for o in outcomes.values())
    symb = {n: list(r) for n, r in enc.ranges.items()}
    results = []
    for p in selected:
        r = Result(spec.name, source, spec.variant, dict(spec.parameters), p.name, p.kind, "smt",
                   expected_text(spec, p.name), UNKNOWN, seconds=max(common, 0.0))
        if p.kind == "deadlock" and restricted:
            r.reason = ("not searched with --movers: a state where the restricted processes "
                        "cannot move need not be a deadlock of the spec")
        elif p.kind == "lock_order":
            r.reason = ("lock-order analysis runs over the explicit engine's state graph; use "
                        "--engine explicit")
        else:
            _fill(r, outcomes[p.name], symb, enc.arith)
            _restricted(r, restricted)
            if dropped and r.verdict == PROVED:
                r.reason += (f"; proved on the cone of influence (--slice: {', '.join(dropped)} "
                             "not tracked, their updates' domains checked only by BMC)")
        results.append(r)
    if properties is None:
        for g in goals:
            if g.name.startswith(LEMMA):
                r = Result(spec.name, source, spec.variant, dict(spec.parameters), g.name,
                           "lemma", "smt", "PASS", UNKNOWN, seconds=max(common, 0.0))
                _fill(r, outcomes[g.name], symb, enc.arith)
                _restricted(r, restricted)
                results.append(r)
    return results


def _restricted(r: Result, restricted: str) -> None:
    """A restricted search (--movers) refutes nothing: only VIOLATED stands."""
    if not restricted:
        return
    if r.verdict in (PROVED, BOUNDED_OK):
        r.verdict = UNKNOWN
        r.reason = (f"no violation among the runs where {restricted} ({r.reason}); other "
                    "runs were not searched")
    else:
        r.reason = f"searched only the runs where {restricted}" + (
            f"; {r.reason}" if r.reason else "")


def _fill(r: Result, o: Outcome, symb: dict[str, list[int]], arith: str) -> None:
    r.verdict, r.depth, r.reason, r.trace, r.detail = o.verdict, o.depth, o.reason, o.trace, \
        o.detail
    r.seconds += o.extra.pop("seconds", 0.0)
    r.extra = {"method": o.method, **o.extra}
    r.extra["arith"] = arith
    if symb:
        r.extra["symbolic"] = symb


__all__ = ["bmc", "check_smt", "check_spec_errors", "encodings", "run_goals", "schedule"]
