"""Reporters: render results and traces as text, JSON or JUnit XML. They only render."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from typing import Any

from rich.console import Console
from rich.table import Table

from checker.result import Result
from checker.trace import Trace


def _flat_values(state: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for var, v in state.items():
        if isinstance(v, list):
            for i, x in enumerate(v):
                name = f"{var.split('.', 1)[0]}[{i}].{var.split('.', 1)[1]}" if "." in var \
                    else f"{var}[{i}]"
                out[name] = x
        else:
            out[var] = v
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int) and v > 255:
        return hex(v)
    return str(v)


def render_trace(trace: Trace) -> str:
    """A counterexample read like a lockdep splat: step, thread, kernel point, what changed."""
    lines = []
    head = f"{trace.spec} [variant {trace.variant}]"
    if trace.property:
        head = f"property {trace.property} ({trace.kind}) violated in {head}"
    lines.append(f"{head}: {len(trace.steps)} steps")
    if trace.parameters:
        lines.append("parameters: " + ", ".join(f"{k}={v}" for k, v in trace.parameters.items()))
    prev = _flat_values(trace.states[0]) if trace.states else {}
    lines.append("initial state:")
    lines.append("    " + ", ".join(f"{k}={_fmt(v)}" for k, v in prev.items()
                                    if not k.endswith(".pc")))
    width = len(str(len(trace.steps)))
    for k, step in enumerate(trace.steps, start=1):
        cur = _flat_values(trace.states[k])
        lines.append(f"{k:>{width}}. {step.process:<10} {step.label}: {step.describe()}")
        for name, v in cur.items():
            if prev.get(name) != v and not name.endswith(".pc"):
                lines.append(f"{'':>{width}}      {name}: {_fmt(prev.get(name))} -> {_fmt(v)}")
        prev = cur
    if trace.property:
        lines.append(f"violated: {trace.property}" + (f": {trace.description}"
                                                         if trace.description else ""))
        if trace.witness:
            lines.append("    values: " + ", ".join(f"{k}={_fmt(v)}"
                                                     for k, v in trace.witness.items()))
    return "\n".join(lines)


def results_table(results: list[Result]) -> Table:
    t = Table(title="verdicts", show_lines=False)
    for col in ("spec", "variant", "property", "expected", "got", "states", "seconds"):
        t.add_column(col, justify="right" if col in ("states", "seconds") else "left")
    for r in results:
        got = r.verdict + ("  << UNEXPECTED" if r.mismatch else "")
        t.add_row(r.spec, r.variant, r.property, r.expected or "-", got, str(r.states),
                  f"{r.seconds:.2f}")
    return t


def render_text(results: list[Result], show_traces: bool = True) -> str:
    buf = io.StringIO()
    con = Console(file=buf, width=120, force_terminal=False, color_system=None)
    for r in results:
        if r.trace is not None and show_traces:
            con.print(f"--- {r.spec} [{r.variant}] {r.property}: {r.verdict}", markup=False)
            con.print(render_trace(r.trace), markup=False, highlight=False)
            if r.detail:
                con.print(r.detail, markup=False, highlight=False)
            if r.trace_path is not None:
                con.print(f"trace saved: {r.trace_path}", markup=False)
            con.print()
        elif r.detail and show_traces:
            con.print(f"--- {r.spec} [{r.variant}] {r.property}: {r.verdict}", markup=False)
            con.print(r.detail, markup=False, highlight=False)
        if r.reason and r.verdict not in ("PASS", "VIOLATED"):
            con.print(f"{r.spec} [{r.variant}] {r.property}: {r.verdict} ({r.reason})",
                      markup=False)
    seen: set[tuple[str, str, str]] = set()
    for r in results:
        key = (r.spec, r.variant, r.engine)
        if key in seen or r.engine != "explicit":
            continue
        seen.add(key)
        rate = r.states / r.seconds if r.seconds > 0 else 0.0
        con.print(f"{r.spec} [{r.variant}]: {r.states:,} states, {r.transitions:,} transitions, "
                  f"depth {r.depth}, {r.seconds:.2f} s, {rate:,.0f} states/s, "
                  f"peak {r.peak_memory_mib:,.0f} MiB", markup=False, highlight=False)
    con.print(results_table(results))
    return buf.getvalue()


def render_json(results: list[Result]) -> str:
    return json.dumps({"version": 1, "results": [r.to_json() for r in results]}, indent=1)


def render_junit(results: list[Result]) -> str:
    suites = ET.Element("testsuites", name="mmcheck")
    by_spec: dict[str, list[Result]] = {}
    for r in results:
        by_spec.setdefault(r.spec, []).append(r)
    for spec, rs in by_spec.items():
        suite = ET.SubElement(suites, "testsuite", name=spec, tests=str(len(rs)),
                              failures=str(sum(r.mismatch for r in rs)),
                              skipped=str(sum(r.inconclusive for r in rs)),
                              time=f"{sum(r.seconds for r in rs):.3f}")
        for r in rs:
            case = ET.SubElement(suite, "testcase", classname=f"{spec}.{r.variant}",
                                 name=r.property, time=f"{r.seconds:.3f}")
            if r.mismatch:
                f = ET.SubElement(case, "failure",
                                  message=f"expected {r.expected}, got {r.verdict}")
                f.text = render_trace(r.trace) if r.trace else r.detail
            elif r.inconclusive:
                ET.SubElement(case, "skipped", message=f"{r.verdict}: {r.reason}")
            out = ET.SubElement(case, "system-out")
            out.text = f"verdict {r.verdict}; states {r.states}" + (
                f"; trace {r.trace_path}" if r.trace_path else "")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode") + "\n"
