"""Compile a Flat spec to Python source: one successor function, one per property.

Walking expression trees per state would cost an order of magnitude; generated code
reads the state tuple directly. Choices are enumerated here (one action per transition
and choice value), spec constants are substituted, and constant subexpressions folded.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    _apply,
    rebuild,
)
from checker.flat import Flat, Transition
from checker.spec import SpecError

MAX_CHOICES = 4096


class SpecRuntimeError(Exception):
    """A spec misbehaved during exploration (out-of-domain assignment, bad index)."""


@dataclass(frozen=True)
class Action:
    """One transition with its choice values fixed: what a trace step records."""

    id: int
    transition: Transition
    choice: tuple[tuple[str, Any], ...]  # (name, display value)

    @property
    def process(self) -> str:
        return self.transition.process

    def describe(self) -> str:
        st = self.transition.step
        txt = f"{st.kernel}"
        if st.note:
            txt += f" [{st.note}]"
        if self.choice:
            txt += " {" + ", ".join(f"{n}={v}" for n, v in self.choice) + "}"
        return txt


@dataclass
class Compiled:
    """Executable form of a Flat spec for the explicit-state engine."""

    flat: Flat
    actions: list[Action]
    successors: Callable[[tuple[int, ...]], list[tuple[int, tuple[int, ...]]]]
    properties: dict[str, Callable[[tuple[int, ...]], bool]]
    finished: Callable[[tuple[int, ...]], bool]
    initial: tuple[int, ...]
    source: str
    action_guards: dict[int, Callable[[tuple[int, ...]], bool]]

    def step(self, state: tuple[int, ...], action_id: int) -> tuple[int, ...] | None:
        """The successor of state by one action, or None if it is not enabled."""
        for aid, nxt in self.successors(state):
            if aid == action_id:
                return nxt
        return None


def fold(e: Expr, params: dict[str, int], choice: dict[str, int]) -> Expr:
    """Substitute constants and choices, then fold constant subexpressions."""

    def f(n: Expr) -> Expr | None:
        if isinstance(n, Param):
            return Const(params.get(n.name, n.value), INT)
        if isinstance(n, ChoiceRef):
            return Const(choice[n.name], n.sort)
        if isinstance(n, Op):
            args = tuple(rebuild(a, f) for a in n.args)
            if n.op == "and":
                if any(isinstance(a, Const) and not a.value for a in args):
                    return Const(0, BOOL)
                args = tuple(a for a in args if not isinstance(a, Const))
                return Const(1, BOOL) if not args else (
                    args[0] if len(args) == 1 else Op("and", args, BOOL))
            if n.op == "or":
                if any(isinstance(a, Const) and a.value for a in args):
                    return Const(1, BOOL)
                args = tuple(a for a in args if not isinstance(a, Const))
                return Const(0, BOOL) if not args else (
                    args[0] if len(args) == 1 else Op("or", args, BOOL))
            if n.op == "ite" and isinstance(args[0], Const):
                return args[1] if args[0].value else args[2]
            if all(isinstance(a, Const) for a in args):
                mask = args[0].sort.mask if isinstance(args[0].sort, BVT) else None
                try:
                    value = _apply(n.op, [a.value for a in args], mask)
                except (ValueError, ZeroDivisionError):
                    return Op(n.op, args, n.sort)  # undefined: fails only if evaluated
                return Const(value, n.sort)
            return Op(n.op, args, n.sort)
        if isinstance(n, SlotSelect):
            return SlotSelect(n.base, n.size, rebuild(n.idx, f), n.name, n.type)
        return None

    return rebuild(e, f)


class _Gen:
    """Expression to Python source, with temporaries for indexed reads."""

    def __init__(self) -> None:
        self.tmp = 0

    def py(self, e: Expr) -> str:
        if isinstance(e, Const):
            return str(e.value)
        if isinstance(e, Slot):
            return f"s[{e.index}]"
        if isinstance(e, SlotSelect):
            self.tmp += 1
            t = f"_t{self.tmp}"
            return (f"(s[{e.base} + {t}] if 0 <= ({t} := {self.py(e.idx)}) < {e.size} "
                    f"else _oob({e.name!r}, {t}))")
        if not isinstance(e, Op):
            raise SpecError("compile", f"unresolved reference {e!r}")
        a = [self.py(x) for x in e.args]
        op = e.op
        mask = e.args[0].sort.mask if e.args and isinstance(e.args[0].sort, BVT) else None
        match op:
            case "and":
                return "(" + " and ".join(a) + ")"
            case "or":
                return "(" + " or ".join(a) + ")"
            case "not":
                return f"(not {a[0]})"
            case "=>":
                return f"((not {a[0]}) or {a[1]})"
            case "ite":
                return f"({a[1]} if {a[0]} else {a[2]})"
            case "~":
                return f"({a[0]} ^ {mask})"
            case "bit":
                return f"(({a[0]} >> {a[1]}) & 1)"
            case "+" | "-" | "*" | "<<" if mask is not None:
                return f"(({a[0]} {op} {a[1]}) & {mask})"
            case "+" | "-" | "*" | "//" | "%" | "&" | "|" | "^" | "<<" | ">>":
                return f"({a[0]} {op} {a[1]})"
            case "==" | "!=" | "<" | "<=" | ">" | ">=":
                return f"({a[0]} {op} {a[1]})"
        raise SpecError("compile", f"unknown operator {op}")


def _choice_values(t: Transition) -> list[tuple[tuple[str, int, Any], ...]]:
    doms = []
    for c in t.choices:
        vals = list(c.type.values())
        doms.append([(c.name, v, c.type.show(v)) for v in vals])
    combos = list(itertools.product(*doms))
    if len(combos) > MAX_CHOICES:
        raise SpecError(f"process {t.group}: step {t.step.label}",
                        f"{len(combos)} choice values are too many for the explicit engine")
    return combos


def _needs_check(t: Any, v: Expr) -> bool:
    if isinstance(t, BoolT):
        return v.sort != BOOL
    if isinstance(t, EnumT):
        return v.sort != t
    if isinstance(t, BVT):
        return not isinstance(v.sort, BVT)
    if isinstance(t, IntT):
        if isinstance(v, Const):
            return not t.lo <= v.value <= t.hi
        if isinstance(v, Slot | SlotSelect) and isinstance(v.type, IntT):
            return not (t.lo <= v.type.lo and v.type.hi <= t.hi)
        return True
    return True


@dataclass(frozen=True)
class PlannedAction:
    """One action as every code generator emits it: guard folded, choice values fixed."""

    aid: int
    transition: Transition
    choice: dict[str, int]
    shown: tuple[tuple[str, Any], ...]
    guard: Expr


def action_plan(flat: Flat, p: dict[str, int]
                ) -> list[tuple[int, list[tuple[int, list[PlannedAction]]]]]:
    """Actions grouped by pc slot and label, numbered in the order successors list them.

    The one definition of action ids and successor order, shared by the Python code
    generator and the C one (`checker.cgen`), so both engines number alike.
    """
    by_pc: dict[int, dict[int, list[Transition]]] = {}
    for t in flat.transitions:
        by_pc.setdefault(t.pc_slot, {}).setdefault(t.pc_from, []).append(t)
    out: list[tuple[int, list[tuple[int, list[PlannedAction]]]]] = []
    aid = 0
    for pc_slot, by_label in by_pc.items():
        labels: list[tuple[int, list[PlannedAction]]] = []
        for label_code, ts in by_label.items():
            planned: list[PlannedAction] = []
            for t in ts:
                for combo in _choice_values(t):
                    cvals = {n: v for n, v, _ in combo}
                    guard = fold(t.guard, p, cvals)
                    if isinstance(guard, Const) and not guard.value:
                        continue
                    planned.append(PlannedAction(aid, t, cvals,
                                                 tuple((n, d) for n, _, d in combo), guard))
                    aid += 1
            labels.append((label_code, planned))
        out.append((pc_slot, labels))
    return out


def compile_flat(flat: Flat, params: dict[str, int] | None = None) -> Compiled:
    """Generate and load the Python code for a Flat spec."""
    p = flat.params | (params or {})
    g = _Gen()
    actions: list[Action] = []
    lines = ["def successors(s):", "    out = []", "    ap = out.append"]
    guard_src: dict[int, str] = {}
    for pc_slot, by_label in action_plan(flat, p):
        lines.append(f"    pc = s[{pc_slot}]")
        kw = "if"
        for label_code, planned in by_label:
            body: list[str] = []
            for pa in planned:
                assert pa.aid == len(actions)
                actions.append(Action(pa.aid, pa.transition, pa.shown))
                body += _emit_action(g, flat, pa.transition, pa.aid, pa.guard, p, pa.choice,
                                     guard_src)
            if body:
                lines.append(f"    {kw} pc == {label_code}:")
                lines += ["        " + b for b in body]
                kw = "elif"
    lines.append("    return out")
    src = "\n".join(lines) + "\n"
    prop_src = []
    for name, e in list(flat.properties.items()) + [("__finished__", flat.finished)]:
        if e is None:
            continue
        prop_src.append(f"def prop_{_ident(name)}(s):\n    return {g.py(fold(e, p, {}))}\n")
    for aid, gs in guard_src.items():
        prop_src.append(f"def guard_{aid}(s):\n    return bool({gs})\n")
    full = src + "\n" + "\n".join(prop_src)
    ns: dict[str, Any] = {"_oob": _oob, "_dom": _make_dom(flat, actions)}
    exec(compile(full, f"<mmcheck:{flat.spec.name}>", "exec"), ns)  # noqa: S102 - our own codegen
    props = {n: ns[f"prop_{_ident(n)}"] for n, e in flat.properties.items() if e is not None}
    return Compiled(flat, actions, ns["successors"], props, ns["prop___finished__"],
                    flat.initial_state(p), full,
                    {aid: ns[f"guard_{aid}"] for aid in guard_src})


def _emit_action(g: _Gen, flat: Flat, t: Transition, aid: int, guard: Expr, p: dict[str, int],
                 cvals: dict[str, int], guard_src: dict[int, str]) -> list[str]:
    out: list[str] = []
    gs = g.py(guard)
    guard_src[aid] = gs
    ind = ""
    if not (isinstance(guard, Const) and guard.value):
        out.append(f"if {gs}:")
        ind = "    "
    statics: list[tuple[int, str]] = []
    dynamics: list[tuple[str, int, int, str]] = []
    for k, (tgt, val) in enumerate(t.updates):
        v = fold(val, p, cvals)
        if isinstance(v, Const) and not _needs_check(tgt.type, v) and isinstance(tgt, Slot):
            statics.append((tgt.index, str(v.value)))
            continue
        out.append(f"{ind}v{k} = {g.py(v)}")
        if _needs_check(tgt.type, v):
            lo, hi = _bounds(tgt.type)
            out.append(f"{ind}if not ({lo} <= v{k} <= {hi}): _dom({aid}, {tgt.name!r}, v{k})")
        if isinstance(tgt, Slot):
            statics.append((tgt.index, f"v{k}"))
        else:
            idx = fold(tgt.idx, p, cvals)
            out.append(f"{ind}i{k} = {g.py(idx)}")
            out.append(f"{ind}if not 0 <= i{k} < {tgt.size}: _oob({tgt.name!r}, i{k})")
            dynamics.append((f"i{k}", tgt.base, tgt.size, f"v{k}"))
    if dynamics:
        out.append(f"{ind}n = list(s)")
        for idx, base, _size, v in dynamics:
            out.append(f"{ind}n[{base} + {idx}] = {v}")
        for slot, v in statics:
            out.append(f"{ind}n[{slot}] = {v}")
        out.append(f"{ind}ap(({aid}, tuple(n)))")
        return out
    out.append(f"{ind}ap(({aid}, {_successor_tuple(dict(statics), len(flat.slots))}))")
    return out


def _successor_tuple(changed: dict[int, str], n: int) -> str:
    """Source for the successor tuple: a tuple display for short states (one allocation),
    slices around the changed slots for long ones; runs of up to 3 unchanged slots inline."""
    parts: list[str] = []
    run: list[str] = []
    k = 0
    while k < n:
        if k in changed:
            run.append(changed[k])
            k += 1
            continue
        end = k
        while end < n and end not in changed:
            end += 1
        if end - k <= 3 or n <= 32:
            run += [f"s[{j}]" for j in range(k, end)]
        else:
            if run:
                parts.append("(" + ", ".join(run) + ",)")
                run = []
            parts.append(f"s[{k}:{end}]" if end < n else f"s[{k}:]")
        k = end
    if run:
        parts.append("(" + ", ".join(run) + ",)")
    return " + ".join(parts)


def _bounds(t: Any) -> tuple[int, int]:
    if isinstance(t, IntT):
        return t.lo, t.hi
    r = t.values()
    return r.start, r.stop - 1


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _oob(name: str, i: int) -> int:
    raise SpecRuntimeError(f"index {i} out of range for {name}")


def _make_dom(flat: Flat, actions: list[Action]) -> Callable[[int, str, int], None]:
    def dom(aid: int, target: str, value: int) -> None:
        a = actions[aid]
        st = a.transition.step
        raise SpecRuntimeError(
            f"process {a.process}: step {st.label} ({a.describe()}): assigns {value} to "
            f"{target}, outside its domain")

    return dom


__all__ = ["Action", "Compiled", "PlannedAction", "SpecRuntimeError", "action_plan",
           "compile_flat", "fold", "INT"]
