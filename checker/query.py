"""`python -m checker query SPEC --max EXPR | --min EXPR`: extreme values with witnesses.

EXPR is parsed by the small recursive-descent parser below, never evaluated as Python:

    expr  := term (("+" | "-") term)*
    term  := unary ("*" unary)*
    unary := "-" unary | atom
    atom  := INT | "(" expr ")" | FUNC "(" expr ("," expr)* ")" | ref
    FUNC  := sum(ref) | count(ref) | min(a, b) | max(a, b)
    ref   := NAME ("[" INT "]")? ("." NAME)?

A ref names a state variable as traces show it (`locked_vm`, `pinned[1]`,
`helper[0].lock_cache`), a whole array or per-instance local inside `sum`/`count`
(`sum(pinned)`, `sum(helper.lock_cache)`), a spec constant (`cache_pages`, symbolic with
--symbolic), or an integer builder parameter (`threads`). Booleans count as 0/1. The
parsed tree is made of `checker.expr` nodes, so the SMT engine translates it like any
property.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import z3

from checker.compile import SpecRuntimeError
from checker.expr import (
    INT,
    BoolT,
    Const,
    Expr,
    IntT,
    Max,
    Min,
    Op,
    Slot,
    arith,
    ite,
)
from checker.flat import Flat, instantiate
from checker.load import LoadError, load_module, parse_overrides
from checker.result import BOUNDED_OK, PROVED, UNKNOWN
from checker.smt import Encoding, bounds
from checker.smt_prove import prove_deep, prove_inductive
from checker.smt_run import check_spec_errors, encodings
from checker.smt_solve import (
    DEFAULT_DEPTH,
    DEFAULT_SECONDS,
    Budget,
    Goal,
    Outcome,
    describe_params,
    goals_of,
)
from checker.smt_unroll import Move, Unrolling, make_trace, witness
from checker.spec import Spec, SpecError
from checker.trace import Trace, TraceError, save

TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(.))")


class QueryError(Exception):
    """A query expression that cannot be parsed or names nothing in the spec."""


def tokenize(text: str) -> list[tuple[str, str]]:
    out = []
    for num, name, other in TOKEN.findall(text):
        if num:
            out.append(("int", num))
        elif name:
            out.append(("name", name))
        elif other.strip():
            if other not in "+-*()[].,":
                raise QueryError(f"unexpected character {other!r} in {text!r}")
            out.append(("op", other))
    return out


class Parser:
    """EXPR text -> a resolved checker.expr tree over the spec's slots."""

    def __init__(self, text: str, flat: Flat) -> None:
        self.text, self.flat = text, flat
        self.toks = tokenize(text)
        self.i = 0
        self.slots = {info.name: info for info in flat.slots}
        self.vars: dict[str, list[Any]] = {}
        for info in flat.slots:
            if info.element is not None:
                self.vars.setdefault(info.var, []).append(info)
        spec = flat.spec
        self.consts = spec.constants
        self.params = {n: v for n, v in spec.parameters.items()
                       if isinstance(v, int) and not isinstance(v, bool)}

    def parse(self) -> Expr:
        if not self.toks:
            raise QueryError("empty expression")
        e = self.expr()
        if self.i < len(self.toks):
            raise QueryError(f"unexpected {self.toks[self.i][1]!r} in {self.text!r}")
        return e

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def eat(self, value: str | None = None, kind: str | None = None) -> str:
        t = self.peek()
        if t is None or (value is not None and t[1] != value) or (kind is not None
                                                                   and t[0] != kind):
            want = value or kind
            got = "the end" if t is None else repr(t[1])
            raise QueryError(f"expected {want} but found {got} in {self.text!r}")
        self.i += 1
        return t[1]

    def expr(self) -> Expr:
        e = self.term()
        while (t := self.peek()) is not None and t[1] in ("+", "-"):
            self.i += 1
            e = arith(t[1], e, self.term())
        return e

    def term(self) -> Expr:
        e = self.unary()
        while (t := self.peek()) is not None and t[1] == "*":
            self.i += 1
            e = arith("*", e, self.unary())
        return e

    def unary(self) -> Expr:
        t = self.peek()
        if t is not None and t[1] == "-":
            self.i += 1
            return arith("-", 0, self.unary())
        return self.atom()

    def atom(self) -> Expr:
        t = self.peek()
        if t is None:
            raise QueryError(f"expression ends too early: {self.text!r}")
        if t[0] == "int":
            self.i += 1
            return Const(int(t[1]), INT)
        if t[1] == "(":
            self.i += 1
            e = self.expr()
            self.eat(")")
            return e
        if t[0] != "name":
            raise QueryError(f"unexpected {t[1]!r} in {self.text!r}")
        nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
        if t[1] in ("sum", "count", "min", "max") and nxt == ("op", "("):
            return self.call(t[1])
        return self.ref()

    def call(self, fn: str) -> Expr:
        self.eat(kind="name")
        self.eat("(")
        if fn in ("sum", "count"):
            name = self.ref_text()
            self.eat(")")
            infos = self.vars.get(name)
            if infos is None:
                raise QueryError(f"{fn}({name}): not an array or per-instance local (known: "
                                 f"{', '.join(self.vars) or 'none'})")
            terms = [self.number(Slot(i.index, i.name, i.type), i.name) for i in infos]
            if fn == "count":
                terms = [ite(x != 0, 1, 0) for x in terms]
            acc = terms[0]
            for x in terms[1:]:
                acc = arith("+", acc, x)
            return acc
        a = self.expr()
        self.eat(",")
        b = self.expr()
        self.eat(")")
        return Min(a, b) if fn == "min" else Max(a, b)

    def ref_text(self) -> str:
        name = self.eat(kind="name")
        if (t := self.peek()) is not None and t[1] == "[":
            self.i += 1
            name += f"[{self.eat(kind='int')}]"
            self.eat("]")
        if (t := self.peek()) is not None and t[1] == ".":
            self.i += 1
            name += "." + self.eat(kind="name")
        return name

    def ref(self) -> Expr:
        name = self.ref_text()
        if name in self.slots:
            info = self.slots[name]
            return self.number(Slot(info.index, info.name, info.type), name)
        if name in self.consts:
            return self.consts[name]
        if name in self.params:
            return Const(self.params[name], INT)
        if name in self.vars:
            raise QueryError(f"{name} is an array: use sum({name}) or {name}[i]")
        raise QueryError(f"{name!r} is neither a state variable, a constant nor an integer "
                         f"parameter of {self.flat.spec.name}")

    @staticmethod
    def number(slot: Slot, name: str) -> Expr:
        if isinstance(slot.type, IntT):
            return slot
        if isinstance(slot.type, BoolT):
            return ite(slot, 1, 0)
        raise QueryError(f"{name} is not an integer or boolean variable")


def parse_query(text: str, flat: Flat) -> Expr:
    """Parse EXPR against a spec's resolved slots (QueryError on anything unknown)."""
    return Parser(text, flat).parse()


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


def maximize(enc: Encoding, ind: Encoding, e: Expr, depth: int, prove: bool, seconds: float,
             source: str, text: str) -> Extremum:
    """Largest value of e over states reachable in <= depth steps, by BMC and search.

    Per depth: is there a state above the best so far? then binary search between it and
    the static upper bound. If every run ends within the depth, the value is exact; with
    `prove`, `e <= value` is proved for all depths as an invariant (with the lemmas) over
    the integer encoding `ind`.
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
        if not check_spec_errors(enc, u, k, ce, [], budget, strict=False):
            cut = f"whether a step raises a spec error within {k} steps: {u.unknown}"
            break
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
        bound = Op("<=", (e, Const(best, e.sort)), "bool")
        goal = Goal(f"{text} <= {best}", "invariant", "", ind.sum_bool(bound), e, bound)
        lemmas = goals_of(ind, [], lemmas=True)
        proved, ctis = prove_inductive(ind, [goal, *lemmas], seconds)
        if goal.name in proved:
            out.verdict = PROVED
            out.reason = f"{goal.name} proved ({proved[goal.name].reason}); reached after " \
                         f"{best_k} steps"
            return out
        o = prove_deep(ind, goal, [lm for lm in lemmas if lm.name in proved], Outcome(
            BOUNDED_OK, depth, "bmc", out.reason), ctis.get(goal.name), Budget(seconds), source)
        if o.verdict == PROVED:
            out.verdict, out.reason = PROVED, f"{goal.name} proved ({o.reason})"
        else:
            out.reason, out.detail = o.reason, o.detail
    return out


def run_query(spec: Spec, source: str, text: str, *, minimize: bool = False,
              depth: int | None = None, prove: bool = False, symbolic: list[str] | None = None,
              max_seconds: float | None = None) -> Extremum:
    """The extreme value of EXPR over the spec's reachable states (see module docstring)."""
    flat = instantiate(spec)
    e = parse_query(text, flat)
    goal = arith("-", 0, e) if minimize else e
    enc, ind = encodings(flat, symbolic or [], extra=[goal])
    shown = f"-({text})" if minimize else text
    res = maximize(enc, ind, goal, DEFAULT_DEPTH if depth is None else depth, prove,
                   DEFAULT_SECONDS if max_seconds is None else max_seconds, source, shown)
    if minimize and res.value is not None:
        res.value = -res.value
        res.reason = res.reason.replace(f"{shown} <= ", f"{text} >= ").replace("maximum",
                                                                                "minimum")
    if res.trace is not None:
        res.trace.description = f"{'min' if minimize else 'max'} of {text} = {res.value}"
    return res


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m checker query",
                                description="Largest or smallest value of an expression over "
                                            "the reachable states (SMT engine).")
    p.add_argument("spec", type=Path, metavar="SPEC")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--variant", default=None)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--max", metavar="EXPR")
    g.add_argument("--min", metavar="EXPR")
    p.add_argument("--depth", type=int, default=None, help=f"BMC depth (default "
                   f"{DEFAULT_DEPTH})")
    p.add_argument("--prove", action="store_true", help="prove the bound for all depths")
    p.add_argument("--symbolic", default="", help="comma-separated symbolic constants")
    p.add_argument("--max-seconds", type=float, default=None)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--trace-dir", type=Path, default=Path("traces"))
    p.add_argument("--debug", action="store_true")
    return p


def main(argv: list[str]) -> int:
    """Exit codes: 0 a value was found; 2 usage, spec or expression error; 3 no value."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        return 2 if e.code not in (0, None) else 0
    try:
        return _run(args)
    except (LoadError, SpecError, SpecRuntimeError, TraceError, QueryError) as e:
        if args.debug:
            raise
        print(f"mmcheck: error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    mod = load_module(args.spec, str(args.spec))
    params = parse_overrides(mod, args.param)
    if args.variant is not None:
        if args.variant not in mod.info.variants:
            raise QueryError(f"unknown variant {args.variant!r} (known: "
                             f"{', '.join(mod.info.variants)})")
        params["variant"] = args.variant
    spec = mod.build(params)
    spec.parameters = {n: params.get(n, p.default) for n, p in mod.parameters.items()}
    text = args.max if args.max is not None else args.min
    t0 = time.monotonic()
    res = run_query(spec, mod.source, text, minimize=args.min is not None, depth=args.depth,
                    prove=args.prove, symbolic=[s for s in args.symbolic.split(",") if s],
                    max_seconds=args.max_seconds)
    seconds = time.monotonic() - t0
    path = None
    if res.trace is not None:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:40]
        kind = "max" if args.max is not None else "min"
        path = save(res.trace, args.trace_dir / f"{spec.name}-{spec.variant}-{kind}-{slug}"
                                                 f"-smt.itf.json")
    kind = "max" if args.max is not None else "min"
    if args.format == "json":
        print(json.dumps({"spec": spec.name, "source": mod.source, "variant": spec.variant,
                          "parameters": spec.parameters, "query": kind, "expr": text,
                          "value": res.value, "verdict": res.verdict, "depth": res.depth,
                          "witness_steps": None if res.trace is None else len(res.trace),
                          "reason": res.reason, "trace": None if path is None else str(path),
                          "seconds": round(seconds, 3)}, indent=1))
    else:
        print(render(spec, kind, text, res, path, seconds))
    return 0 if res.value is not None else 3


def render(spec: Spec, kind: str, text: str, res: Extremum, path: Path | None,
           seconds: float) -> str:
    params = ", ".join(f"{k}={v}" for k, v in spec.parameters.items() if k != "variant")
    lines = [f"query: {kind} {text}  over {spec.name} [variant {spec.variant}]"
             + (f" ({params})" if params else "")]
    if res.value is None:
        lines.append(f"  no value: {res.reason}")
        return "\n".join(lines)
    what = "maximum" if kind == "max" else "minimum"
    steps = "" if res.trace is None else f", reached after {len(res.trace)} steps"
    lines.append(f"  {what}: {res.value}{steps}")
    lines.append(f"  verdict: {res.verdict}" + (" (all depths)" if res.verdict == PROVED
                                                 else f" (depth {res.depth})"))
    lines.append(f"  {res.reason}")
    if res.trace is not None and res.trace.witness:
        lines.append("  witness values: " + ", ".join(f"{k}={v}" for k, v in
                                                     res.trace.witness.items()))
    consts = res.trace.extra.get("constants") if res.trace is not None else None
    if consts:
        lines.append("  witness constants: " + ", ".join(f"{k}={v}" for k, v in consts.items()))
    if path is not None:
        lines.append(f"  witness trace: {path} (python -m checker show {path})")
    if res.detail:
        lines.append(res.detail)
    lines.append(f"  {seconds:.2f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
