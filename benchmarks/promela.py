"""Translate an instantiated spec to an equivalent Promela model for SPIN.

The model is generated, not hand-written, so that it is equivalent by construction: the
same variables with the same domains (each in the smallest Promela integer type that
holds it), one `active proctype` per process instance whose `do` loop has one `d_step`
per action of the explicit engine (a transition with its choice values fixed, constants
substituted, dead alternatives dropped, exactly as `checker.compile` enumerates them),
effects assigned simultaneously through hidden temporaries. SPIN's stored states are
therefore our states (plus its per-process bookkeeping), and its state count equals the
unreduced explicit engine's; `python -m checker bench` prints both.

Properties: invariants are asserted after every step, final properties as
`assert(!finished || P)` (a `d_step` must not end in an `if ... fi`: SPIN 6.5.2 then
computes different successors - found while checking that the state counts agree). The loops are
`end` states, so SPIN's own deadlock report is off (the benchmark checks `no_leak`, a
final property). Domain checks are not translated: the explicit engine proves the spec
free of out-of-domain assignments for the same parameters (it stops with an error
otherwise), so both tools explore the same graph.
"""

from __future__ import annotations

from collections.abc import Iterable

from checker.compile import Compiled, fold
from checker.expr import BOOL, BVT, Const, Expr, Op, Slot, SlotSelect
from checker.flat import Flat

PROMELA_TYPES = (("bit", 0, 1), ("byte", 0, 255), ("short", -32768, 32767),
                 ("int", -2**31, 2**31 - 1))


class PromelaError(Exception):
    """Something the translation does not support (e.g. domains beyond 32 bits)."""


def _ident(name: str) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in name)
    return out if not out[0].isdigit() else "v_" + out


class _Names:
    """Promela variable names: one scalar or array per ITF variable of the Flat."""

    def __init__(self, flat: Flat) -> None:
        self.flat = flat
        self.var_of: dict[int, tuple[str, int | None]] = {}
        self.decls: list[tuple[str, str, int | None, list[int]]] = []
        groups: dict[str, list[int]] = {}
        for info in flat.slots:
            groups.setdefault(info.var, []).append(info.index)
        init = flat.initial_state()
        used: set[str] = set()
        for var, slots in groups.items():
            name = _ident(var)
            while name in used:
                name += "_"
            used.add(name)
            lo = min(flat.slots[s].type.values().start for s in slots)
            hi = max(flat.slots[s].type.values().stop - 1 for s in slots)
            ptype = next((t for t, a, b in PROMELA_TYPES if a <= lo and hi <= b), None)
            if ptype is None:
                raise PromelaError(f"{var}: domain {lo}..{hi} does not fit a Promela int")
            infos = [flat.slots[s] for s in slots]
            array = len(slots) > 1 or infos[0].element is not None
            if array and [i.element for i in infos] != list(range(len(slots))):
                raise PromelaError(f"{var}: elements are not contiguous")
            for k, s in enumerate(slots):
                self.var_of[s] = (name, k if array else None)
            self.decls.append((ptype, name, len(slots) if array else None,
                               [init[s] for s in slots]))

    def slot(self, i: int) -> str:
        name, k = self.var_of[i]
        return name if k is None else f"{name}[{k}]"

    def select(self, base: int, idx: str) -> str:
        name, k = self.var_of[base]
        if k != 0:
            raise PromelaError("an indexed read does not start at an array's first element")
        return f"{name}[{idx}]"


class _Expr:
    """Resolved expressions as Promela (C-like) expressions."""

    def __init__(self, names: _Names) -> None:
        self.names = names

    def __call__(self, e: Expr) -> str:
        if isinstance(e, Const):
            return str(e.value)
        if isinstance(e, Slot):
            return self.names.slot(e.index)
        if isinstance(e, SlotSelect):
            return self.names.select(e.base, self(e.idx))
        if not isinstance(e, Op):
            raise PromelaError(f"cannot translate {e!r}")
        a = [self(x) for x in e.args]
        mask = e.args[0].sort.mask if e.args and isinstance(e.args[0].sort, BVT) else None
        match e.op:
            case "and":
                return "(" + " && ".join(a) + ")"
            case "or":
                return "(" + " || ".join(a) + ")"
            case "not":
                return f"(!{a[0]})"
            case "=>":
                return f"(!{a[0]} || {a[1]})"
            case "ite":
                return f"({a[0]} -> {a[1]} : {a[2]})"
            case "~":
                return f"({a[0]} ^ {mask})"
            case "bit":
                return f"(({a[0]} >> {a[1]}) & 1)"
            case "//":
                return f"({a[0]} / {a[1]})"
            case "+" | "-" | "*" | "<<" if mask is not None:
                return f"(({a[0]} {e.op} {a[1]}) & {mask})"
            case "+" | "-" | "*" | "%" | "&" | "|" | "^" | "<<" | ">>":
                return f"({a[0]} {e.op} {a[1]})"
            case "==" | "!=" | "<" | "<=" | ">" | ">=":
                return f"({a[0]} {e.op} {a[1]})"
        raise PromelaError(f"unknown operator {e.op}")


def to_promela(compiled: Compiled, properties: Iterable[str] | None = None,
               source: str = "") -> str:
    """The Promela model of a compiled spec, checking the named properties."""
    flat = compiled.flat
    params = flat.params
    names = _Names(flat)
    py = _Expr(names)
    kinds = {p.name: p.kind for p in flat.spec.properties}
    wanted = list(kinds) if properties is None else list(properties)
    invariants = [(n, py(fold(flat.properties[n], params, {})))  # type: ignore[arg-type]
                  for n in wanted if kinds[n] == "invariant"]
    finals = [(n, py(fold(flat.properties[n], params, {})))  # type: ignore[arg-type]
              for n in wanted if kinds[n] == "final"]
    finished = py(fold(flat.finished, params, {}))
    lines = [f"/* Generated by benchmarks/promela.py from {source or flat.spec.name}",
             f"   parameters: {flat.spec.parameters}",
             f"   properties: {', '.join(wanted) or 'none'}",
             "   One d_step per action of mmcheck's explicit engine (see docs/performance.md).",
             "   Run: spin -a FILE && gcc -O2 -DSAFETY -DMEMLIM=16000 -o pan pan.c",
             "        && ./pan -m1000000 -w28 */", ""]
    for ptype, name, size, init in names.decls:
        if size is None:
            lines.append(f"{ptype} {name} = {init[0]};")
    width = max((len(t.updates) for t in flat.transitions), default=0)
    lines += [f"hidden int t{k};" for k in range(width)]
    lines += [f"hidden int i{k};" for k in range(width)]
    checks = [f"assert({e}); /* {n} */" for n, e in invariants]
    checks += [f"assert(!{finished} || {e}); /* {n} */" for n, e in finals]
    uniform = all(len(set(init)) == 1 for _, _, size, init in names.decls if size)
    lines.append("")
    for ptype, name, size, init in names.decls:
        if size is not None and not uniform:
            lines.append(f"{ptype} {name}[{size}];")
        elif size is not None:
            lines.append(f"{ptype} {name}[{size}] = {init[0]};")
    by_proc: dict[tuple[str, int], list[str]] = {}
    for act in compiled.actions:
        t = act.transition
        shown = dict(act.choice)
        cvals = {c.name: next(v for v in c.type.values() if c.type.show(v) == shown[c.name])
                 for c in t.choices}
        guard = fold(t.guard, params, cvals)
        cond = f"{names.slot(t.pc_slot)} == {t.pc_from}"
        if not (isinstance(guard, Const) and guard.sort == BOOL and guard.value):
            cond += f" && {py(guard)}"
        temps: list[str] = []
        assigns: list[str] = []
        for k, (tgt, val) in enumerate(t.updates):
            temps.append(f"t{k} = {py(fold(val, params, cvals))}")
            if isinstance(tgt, Slot):
                assigns.append(f"{names.slot(tgt.index)} = t{k}")
            else:  # the index is evaluated in the pre-state too
                temps.append(f"i{k} = {py(fold(tgt.idx, params, cvals))}")
                assigns.append(f"{names.select(tgt.base, f'i{k}')} = t{k}")
        stmts = "; ".join(temps + assigns + [c.rstrip(";") for c in checks])
        by_proc.setdefault((t.group, t.instance), []).append(
            f"        :: d_step {{ ({cond}) -> {stmts} }}  /* {act.describe()} */")
    active = "active " if uniform else ""
    if not uniform:
        lines += ["", "init {", "    d_step {"]
        for _ptype, name, size, init in names.decls:
            if size is not None:
                lines += [f"        {name}[{k}] = {v};" for k, v in enumerate(init)]
        lines.append("    }")
        lines += [f"    run p_{_ident(g)}_{i}();" for g, i in by_proc]
        lines.append("}")
    for (g, i), alts in by_proc.items():
        lines += ["", f"{active}proctype p_{_ident(g)}_{i}() {{", "end:", "    do"] + alts + [
            "    od", "}"]
    return "\n".join(lines) + "\n"


__all__ = ["PromelaError", "to_promela"]
