"""Unrollings of a spec in z3 and their runs decoded into the common Trace type.

Every decoded run is re-executed on the reference semantics (`checker.expr.evaluate`)
before anyone sees it: a disagreement is a bug in the z3 translation, never a verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import z3

from checker.compile import SpecRuntimeError
from checker.expr import ChoiceRef, Const, Expr, SlotSelect, contains, evaluate, rebuild
from checker.flat import Flat, Transition, slot_refs
from checker.movers import Composite
from checker.smt import Choices, Encoding, State
from checker.smt_solve import Budget, SmtInternalError, new_solver, solve, why_unknown
from checker.trace import Trace, TraceStep, decode_state, var_names


@dataclass
class Move:
    """One decoded step of a run: the transition and its raw choice values."""

    transition: Transition
    raw: dict[str, int]
    shown: dict[str, Any]


class Unrolling:
    """Runs of the spec from its initial states: s0 -T- s1 -T- ... as a list of formulas.

    With stutter=True a step may also change nothing (only at the end of a run, once a
    run stutters it stutters to the end), so s_k ranges over the states reachable within
    k steps: one query covers every depth up to k.
    """

    def __init__(self, enc: Encoding, tag: str = "", facts: list[z3.BoolRef] | None = None,
                 stutter: bool = False) -> None:
        self.enc, self.tag, self.stutter = enc, tag, stutter
        self.facts = list(facts or [])  # templates proved to hold in every reachable state
        self.states: list[State] = [enc.state(f"{tag}0")]
        self.acts: list[z3.ExprRef] = []
        self.chs: list[Choices] = []
        self.formulas: list[z3.BoolRef] = [enc.params_ok(), enc.init(self.states[0])]
        self.formulas += [enc.at(f, self.states[0]) for f in self.facts]
        self.marks = [len(self.formulas)]  # formulas of the runs up to depth k
        self.model: z3.ModelRef | None = None
        self.unknown = ""

    @property
    def depth(self) -> int:
        return len(self.acts)

    def extend(self) -> None:
        enc, k = self.enc, self.depth
        c = enc.choices(f"{self.tag}c{k}")
        a = enc.act_var(f"{self.tag}act{k}")
        s2 = enc.state(f"{self.tag}{k + 1}")
        self.formulas.append(enc.at(enc.trans(self.stutter, depth=k), self.states[k], c, a,
                                    s2))
        if self.stutter and k > 0:
            self.formulas.append(z3.Implies(self.acts[-1] == enc.stutter, a == enc.stutter))
        self.formulas += [enc.at(f, s2) for f in self.facts]
        self.states.append(s2)
        self.acts.append(a)
        self.chs.append(c)
        self.marks.append(len(self.formulas))

    def check(self, budget: Budget, *extra: z3.BoolRef, depth: int | None = None
              ) -> z3.CheckSatResult:
        """Is there a run of `depth` (default: all) steps satisfying extra? Keeps the model."""
        solver = new_solver(self.enc)
        solver.add(*self.formulas[:self.marks[self.depth if depth is None else depth]])
        r = solve(solver, budget, *extra)
        self.model = solver.model() if r == z3.sat else None
        self.unknown = why_unknown(solver, budget) if r == z3.unknown else ""
        return r

    def run(self, m: z3.ModelRef, k: int) -> tuple[list[tuple[int, ...]], list[Move],
                                                    dict[str, int]]:
        """The run of (up to) k steps in model m: states, moves, symbolic constants.

        Stuttering steps are dropped, so the run may be shorter than k."""
        enc = self.enc
        states = [enc.decode_state(m, self.states[0])]
        moves = []
        for i in range(k):
            if self.stutter and enc.act_value(m, self.acts[i]) == enc.stutter:
                break
            t = enc.decode_act(m, self.acts[i])
            raw, shown = enc.decode_choice(m, t, self.chs[i])
            moves.append(Move(t, raw, shown))
            states.append(enc.decode_state(m, self.states[i + 1]))
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
    states, moves = expand(flat, states, moves, params)
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


def expand(flat: Flat, states: list[tuple[int, ...]], moves: list[Move],
           params: Mapping[str, int]) -> tuple[list[tuple[int, ...]], list[Move]]:
    """A decoded run with every Composite move replaced by its parts, one state each."""
    p = flat.params | dict(params)
    out_states, out_moves = [states[0]], []
    for i, mv in enumerate(moves):
        t = mv.transition
        if not isinstance(t, Composite):
            out_states.append(states[i + 1])
            out_moves.append(mv)
            continue
        s = states[i]
        for part in t.parts:
            nxt = step_reference(flat, s, part, {}, p)
            if nxt is None:
                raise SmtInternalError(f"composite step {i + 1}: {part.process} "
                                       f"{part.step.label} is not enabled")
            out_states.append(nxt)
            out_moves.append(Move(part, {}, {}))
            s = nxt
        if s != states[i + 1]:
            raise SmtInternalError(f"composite step {i + 1}: its parts do not add up")
    return out_states, out_moves


def witness(flat: Flat, e: Expr | None, s: tuple[int, ...]) -> dict[str, Any]:
    if e is None:
        return {}
    return {flat.slots[i].name: flat.slots[i].type.show(s[i]) for i in sorted(slot_refs(e))}


