"""Replaying a saved trace: on the spec (every step re-executed) and on model/.

A spec module may pass `replay=fn` to `@specification`; `fn(trace, spec)` runs the
trace's schedule and choices on the executable reference implementation and returns a
`ModelReplay`. The checker compares the model's outcome with the trace's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checker.compile import Compiled, compile_flat
from checker.flat import instantiate
from checker.load import LoadError, SpecModule, load_module
from checker.spec import Spec
from checker.trace import Trace, TraceError, replay_on_spec


@dataclass
class ModelReplay:
    """What the reference implementation did under a trace's schedule."""

    violated: set[str]  # properties the model run violates
    final: dict[str, Any]  # observable values at the end, named like the trace's variables
    log: list[str] = field(default_factory=list)


@dataclass
class ReplayReport:
    trace: Trace
    spec_ok: bool
    spec_violates: bool
    model: ModelReplay | None
    disagreements: list[str]

    @property
    def agrees(self) -> bool:
        return self.spec_ok and self.spec_violates and not self.disagreements


def locate_spec(trace: Trace, trace_path: Path) -> Path:
    """The spec file a trace names: as given, or relative to the trace's ancestors."""
    src = Path(trace.source)
    if src.is_absolute() and src.exists():
        return src
    if src.exists():
        return src
    for d in [trace_path.resolve().parent, *trace_path.resolve().parents]:
        if (d / src).exists():
            return d / src
    raise LoadError(f"{trace_path}: the spec it names ({trace.source}) was not found")


def build_for_trace(mod: SpecModule, trace: Trace, where: str) -> Spec:
    unknown = sorted(set(trace.parameters) - set(mod.parameters))
    if unknown:
        raise TraceError(f"{where}: parameter {unknown[0]!r} is not a parameter of "
                         f"{mod.source}")
    params = dict(trace.parameters)
    for name, value in params.items():
        default = mod.parameters[name].default
        if isinstance(default, tuple) and isinstance(value, list):
            params[name] = tuple(value)
    return mod.build(params)


def violates(compiled: Compiled, trace: Trace, state: tuple[int, ...]) -> bool:
    """Whether the trace's last state violates the property the trace is about."""
    if trace.kind == "lock_order":
        from checker.lockdep import witness_holds

        return witness_holds(compiled, trace.witness, state)
    prop = trace.property
    if prop is None:
        return False
    if trace.kind == "deadlock":
        return not compiled.successors(state) and not compiled.finished(state)
    f = compiled.properties.get(prop)
    if f is None:
        raise TraceError(f"the trace's property {prop!r} is not a property of the spec")
    if trace.kind == "final":
        return compiled.finished(state) and not f(state)
    return not f(state)


def replay(trace: Trace, trace_path: Path, model: bool = True) -> ReplayReport:
    mod = load_module(locate_spec(trace, trace_path), trace.source)
    spec = build_for_trace(mod, trace, str(trace_path))
    compiled = compile_flat(instantiate(spec))
    states = replay_on_spec(compiled, trace)
    spec_violates = violates(compiled, trace, states[-1])
    report = ReplayReport(trace, True, spec_violates, None, [])
    if model and mod.info.replay is not None:
        mr: ModelReplay = mod.info.replay(trace, spec)
        report.model = mr
        if trace.property and trace.property not in mr.violated:
            report.disagreements.append(
                f"the model run does not violate {trace.property} "
                f"(it violates: {', '.join(sorted(mr.violated)) or 'nothing'})")
        last = trace.states[-1]
        for name, value in mr.final.items():
            if name in last and last[name] != value:
                report.disagreements.append(
                    f"final {name}: spec trace says {last[name]}, model says {value}")
    return report
