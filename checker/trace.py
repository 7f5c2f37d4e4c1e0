"""The one trace type, its ITF (Informal Trace Format) form, and validation against a spec.

ITF is the JSON shape Apalache and Quint emit: `{"#meta": ..., "vars": [...],
"states": [...]}`, integers beyond 2**53 as `{"#bigint": "..."}`. Each state after the
first carries in its `#meta` the process, step label, kernel function and choice that led
to it. Trace files are data: they are parsed with `json` only and checked field by field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checker.compile import Compiled
from checker.expr import BVT, BoolT, EnumT, IntT, VarType, contains
from checker.flat import Flat

FORMAT_NOTE = "https://apalache-mc.org/docs/adr/015adr-trace.html"
SAFE_INT = 2**53


class TraceError(Exception):
    """A trace file that is not a valid trace of the spec it names."""


@dataclass
class TraceStep:
    """How one state led to the next."""

    process: str
    label: str
    kernel: str
    note: str = ""
    choice: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        txt = self.kernel + (f" [{self.note}]" if self.note else "")
        if self.choice:
            txt += " {" + ", ".join(f"{k}={v}" for k, v in self.choice.items()) + "}"
        return txt


@dataclass
class Trace:
    """A run of a spec: states (var -> value) and the steps between them."""

    spec: str
    source: str
    variant: str
    parameters: dict[str, Any]
    vars: list[str]
    states: list[dict[str, Any]]
    steps: list[TraceStep]
    property: str | None = None
    kind: str = ""
    description: str = ""
    witness: dict[str, Any] = field(default_factory=dict)  # values that broke the property
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.steps)


# ---------------------------------------------------------------- decode / encode states


def decode_state(flat: Flat, s: tuple[int, ...]) -> dict[str, Any]:
    """State tuple -> {ITF var: value}: bools, ints, enum names, lists for arrays."""
    out: dict[str, Any] = {}
    for info in flat.slots:
        v = info.type.show(s[info.index])
        if info.element is None:
            out[info.var] = v
        else:
            out.setdefault(info.var, []).append(v)
    return out


def encode_state(flat: Flat, values: dict[str, Any], where: str) -> tuple[int, ...]:
    """{ITF var: value} -> state tuple, with a precise error for anything off."""
    expected = var_names(flat)
    unknown = sorted(set(values) - set(expected))
    if unknown:
        raise TraceError(f"{where}: unknown variable {unknown[0]!r}")
    missing = [v for v in expected if v not in values]
    if missing:
        raise TraceError(f"{where}: variable {missing[0]!r} is missing")
    out: list[int] = []
    for info in flat.slots:
        raw = values[info.var]
        if info.element is not None:
            size = sum(1 for x in flat.slots if x.var == info.var)
            if not isinstance(raw, list) or len(raw) != size:
                raise TraceError(f"{where}: {info.var} must be a list of {size} values")
            raw = raw[info.element]
        out.append(_code(info.type, raw, f"{where}: {info.name}"))
    return tuple(out)


def _code(t: VarType, raw: Any, where: str) -> int:
    if isinstance(t, BoolT):
        if not isinstance(raw, bool):
            raise TraceError(f"{where}: expected a boolean, got {raw!r}")
        return int(raw)
    if isinstance(t, EnumT):
        if not isinstance(raw, str) or raw not in t.names:
            raise TraceError(f"{where}: expected one of {list(t.names)}, got {raw!r}")
        return t.code(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TraceError(f"{where}: expected an integer, got {raw!r}")
    if not contains(t, raw):
        rng = f"{t.lo}..{t.hi}" if isinstance(t, IntT) else f"0..{t.mask}" if isinstance(
            t, BVT) else ""
        raise TraceError(f"{where}: value {raw} outside the domain {rng}")
    return raw


def var_names(flat: Flat) -> list[str]:
    seen: dict[str, None] = {}
    for info in flat.slots:
        seen.setdefault(info.var, None)
    return list(seen)


def build_trace(compiled: Compiled, path: list[tuple[int, int]], states: list[tuple[int, ...]],
                source: str, prop: str | None, kind: str, description: str = "") -> Trace:
    """A Trace from an explorer path of (action id, state id)."""
    flat = compiled.flat
    spec = flat.spec
    steps = []
    for aid, _sid in path[1:]:
        a = compiled.actions[aid]
        st = a.transition.step
        steps.append(TraceStep(a.process, st.label, st.kernel, st.note, dict(a.choice)))
    decoded = [decode_state(flat, states[sid]) for _aid, sid in path]
    return Trace(spec.name, source, spec.variant, dict(spec.parameters), var_names(flat), decoded,
                 steps, prop, kind, description)


def replay_on_spec(compiled: Compiled, trace: Trace) -> list[tuple[int, ...]]:
    """Re-execute every step on the spec; return the state tuples or raise TraceError."""
    flat = compiled.flat
    if not trace.states:
        raise TraceError("the trace has no states")
    s = encode_state(flat, trace.states[0], "state 0")
    if s != compiled.initial:
        diff = _first_diff(flat, compiled.initial, s)
        raise TraceError(f"state 0 is not the spec's initial state ({diff})")
    out = [s]
    if len(trace.steps) != len(trace.states) - 1:
        raise TraceError("every state after the first needs its step in #meta")
    for k, step in enumerate(trace.steps, start=1):
        want = encode_state(flat, trace.states[k], f"state {k}")
        cands = [a for a in compiled.actions if a.process == step.process
                 and a.transition.step.label == step.label
                 and dict(a.choice) == step.choice]
        if not cands:
            raise TraceError(f"state {k}: no step {step.label!r} of process {step.process} "
                             f"with choice {step.choice} exists in this spec")
        succ = dict(compiled.successors(s))
        if not any(succ.get(a.id) == want for a in cands):
            if not any(a.id in succ for a in cands):
                raise TraceError(f"state {k}: impossible step: {step.process} {step.label!r} "
                                 "is not enabled here")
            got = next(succ[a.id] for a in cands if a.id in succ)
            raise TraceError(f"state {k}: the step {step.process} {step.label!r} leads to a "
                             f"different state ({_first_diff(flat, got, want)})")
        s = want
        out.append(s)
    return out


def _first_diff(flat: Flat, a: tuple[int, ...], b: tuple[int, ...]) -> str:
    for info in flat.slots:
        if a[info.index] != b[info.index]:
            return (f"{info.name}: spec says {info.type.show(a[info.index])}, "
                    f"trace says {info.type.show(b[info.index])}")
    return "no difference"


# ---------------------------------------------------------------- ITF JSON


def _itf_value(v: Any) -> Any:
    if isinstance(v, bool | str):
        return v
    if isinstance(v, int):
        return {"#bigint": str(v)} if abs(v) >= SAFE_INT else v
    if isinstance(v, list):
        return [_itf_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _itf_value(x) for k, x in v.items()}
    return v


def _plain(v: Any, where: str) -> Any:
    if isinstance(v, dict):
        if set(v) == {"#bigint"}:
            try:
                return int(v["#bigint"])
            except (TypeError, ValueError):
                raise TraceError(f"{where}: bad #bigint {v['#bigint']!r}") from None
        return {k: _plain(x, where) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x, where) for x in v]
    if isinstance(v, float):
        raise TraceError(f"{where}: floating-point value {v} is not allowed")
    return v


def to_itf(trace: Trace) -> dict[str, Any]:
    meta = {
        "format": "ITF",
        "format-description": FORMAT_NOTE,
        "generator": "mmcheck",
        "source": trace.source,
        "spec": trace.spec,
        "variant": trace.variant,
        "parameters": _itf_value(trace.parameters),
        "property": trace.property,
        "kind": trace.kind,
        "description": trace.description,
        "witness": _itf_value(trace.witness),
    }
    if trace.extra:
        meta["extra"] = _itf_value(trace.extra)
    states = []
    for k, st in enumerate(trace.states):
        m: dict[str, Any] = {"index": k}
        if k > 0:
            step = trace.steps[k - 1]
            m.update(process=step.process, step=step.label, kernel=step.kernel,
                     note=step.note, choice=_itf_value(step.choice))
        states.append({"#meta": m, **{v: _itf_value(st[v]) for v in trace.vars}})
    return {"#meta": meta, "vars": list(trace.vars), "states": states}


def save(trace: Trace, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_itf(trace), indent=1) + "\n")
    return path


def load(path: Path) -> Trace:
    """Parse an ITF file written by mmcheck; raise TraceError naming what is wrong."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TraceError(f"{path}: not JSON ({e})") from None
    return from_itf(raw, str(path))


def _need(d: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise TraceError(f"{where}: missing {key!r}")
    if not isinstance(d[key], typ):
        raise TraceError(f"{where}: {key!r} has the wrong type")
    return d[key]


def from_itf(raw: Any, where: str = "trace") -> Trace:
    if not isinstance(raw, dict):
        raise TraceError(f"{where}: not an ITF object")
    meta = _need(raw, "#meta", dict, where)
    if meta.get("generator") != "mmcheck":
        raise TraceError(f"{where}: not an mmcheck trace (#meta.generator is "
                         f"{meta.get('generator')!r})")
    vars_ = _need(raw, "vars", list, where)
    if not all(isinstance(v, str) for v in vars_):
        raise TraceError(f"{where}: 'vars' must be a list of names")
    states_raw = _need(raw, "states", list, where)
    states, steps = [], []
    for k, st in enumerate(states_raw):
        sw = f"{where}: state {k}"
        if not isinstance(st, dict):
            raise TraceError(f"{sw}: not an object")
        m = st.get("#meta", {})
        if not isinstance(m, dict):
            raise TraceError(f"{sw}: '#meta' must be an object")
        extra = set(st) - set(vars_) - {"#meta"}
        if extra:
            raise TraceError(f"{sw}: unknown variable {sorted(extra)[0]!r}")
        states.append({v: _plain(st[v], sw) for v in vars_ if v in st})
        if k > 0:
            choice = _plain(m.get("choice", {}), sw)
            if not isinstance(choice, dict):
                raise TraceError(f"{sw}: '#meta.choice' must be an object")
            steps.append(TraceStep(str(_need(m, "process", str, sw)),
                                   str(_need(m, "step", str, sw)),
                                   str(m.get("kernel", "")), str(m.get("note", "")), choice))
    params = _plain(meta.get("parameters", {}), where)
    if not isinstance(params, dict):
        raise TraceError(f"{where}: '#meta.parameters' must be an object")
    return Trace(str(_need(meta, "spec", str, where)), str(_need(meta, "source", str, where)),
                 str(meta.get("variant", "")), params, list(vars_), states, steps,
                 meta.get("property"), str(meta.get("kind", "")),
                 str(meta.get("description", "")),
                 _plain(meta.get("witness", {}), where) or {},
                 _plain(meta.get("extra", {}), where) or {})
