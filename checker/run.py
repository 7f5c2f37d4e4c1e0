"""From a spec to verdicts with the explicit-state engine: build, compile, explore, judge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checker.compile import Compiled, compile_flat
from checker.explore import LEMMA, Exploration, Limits, Progress, explore, make_reductions
from checker.flat import Flat, instantiate, slot_refs
from checker.result import INCOMPLETE, PASS, VIOLATED, Result
from checker.spec import Spec
from checker.trace import Trace, build_trace


@dataclass
class Checked:
    """An exploration with its verdicts, kept together for analyses and tests."""

    spec: Spec
    flat: Flat
    compiled: Compiled
    exploration: Exploration
    results: list[Result]


def expected_text(spec: Spec, prop: str) -> str | None:
    e = spec.expected.get(prop)
    return None if e is None else (VIOLATED if e else PASS)


def check(spec: Spec, source: str, properties: list[str] | None = None,
          limits: Limits | None = None, progress: Progress | None = None, *,
          symmetry: bool = False, por: bool = False, workers: int = 1,
          slice: bool = False, native: bool = False) -> Checked:
    """Explore a built spec once and judge every selected property.

    `symmetry`/`por`/`slice` switch on the reductions of checker.symmetry / checker.por /
    checker.slicing (a false symmetry declaration raises SymmetryError); `workers > 1`
    explores in parallel; `native` runs the same search compiled to C (checker.native).
    """
    flat = instantiate(spec)
    compiled = compile_flat(flat)
    props = [p for p in spec.properties if properties is None or p.name in properties]
    names = [p.name for p in props if p.kind != "lock_order"]
    reductions = make_reductions(compiled, names, symmetry=symmetry, por=por,
                                 lock_order=any(p.kind == "lock_order" for p in props),
                                 slice=slice)
    # every property selected: the spec's lemmas are checked in every state too, unless a
    # reduction chosen for the properties alone (symmetry, POR) could hide a violation
    lemmas = list(flat.lemmas) if properties is None and not (symmetry or por) else []
    ex = explore(compiled, None if lemmas else names, limits or Limits(), progress,
                 reductions=reductions, workers=workers, native=native)
    st = ex.stats

    def row(name: str, kind: str, expected: str | None) -> Result:
        return Result(spec.name, source, spec.variant, dict(spec.parameters), name, kind,
                      "explicit", expected, PASS, st.states, st.transitions, st.depth,
                      st.seconds, st.peak_memory_mib)

    results = []
    for p in props:
        r = row(p.name, p.kind, expected_text(spec, p.name))
        if p.kind == "lock_order":
            _lock_order(ex, r, source)
        elif p.name in ex.violations:
            sid = ex.violations[p.name]
            r.verdict = VIOLATED
            r.trace = _trace(ex, sid, source, p.name, p.kind, p.doc)
            if p.kind == "deadlock":
                r.detail = describe_deadlock(ex, sid)
        elif not ex.complete:
            r.verdict, r.reason = INCOMPLETE, ex.stop_reason
        if symmetry or por or slice or workers > 1 or native:
            r.extra["reductions"] = reductions.describe()
            r.extra["workers"] = ex.workers
            r.extra["native"] = native
        results.append(r)
    for name in lemmas:
        r = row(LEMMA + name, "lemma", PASS)
        if LEMMA + name in ex.violations:
            r.verdict = VIOLATED
            r.trace = _trace(ex, ex.violations[LEMMA + name], source, LEMMA + name, "lemma",
                             f"lemma {name} (a strengthening invariant for --prove)")
        elif not ex.complete:
            r.verdict, r.reason = INCOMPLETE, ex.stop_reason
        results.append(r)
    return Checked(spec, flat, compiled, ex, results)


def _trace(ex: Exploration, sid: int, source: str, prop: str, kind: str, doc: str) -> Trace:
    compiled = ex.compiled
    t = build_trace(compiled, ex.path(sid), ex.states, source, prop, kind, doc)
    expr = compiled.flat.properties.get(prop)
    if expr is not None:
        s = ex.states[sid]
        t.witness = {compiled.flat.slots[i].name: compiled.flat.slots[i].type.show(s[i])
                     for i in sorted(slot_refs(expr))}
    return t


def describe_deadlock(ex: Exploration, sid: int) -> str:
    """Which processes are stuck where; the lockdep module adds the wait-for cycle."""
    flat = ex.compiled.flat
    s = ex.states[sid]
    lines = ["no step is enabled; processes that have not finished:"]
    for g in flat.spec.groups:
        for i, slot in enumerate(flat.pc_slots[g.name]):
            label = g.pc_type.show(s[slot])
            if label != "done":
                kern = sorted({a.transition.step.kernel for a in ex.compiled.actions
                               if a.process == f"{g.name}[{i}]"
                               and a.transition.step.label == label})
                lines.append(f"  {g.name}[{i}] blocked at {label}: {common_call(kern)}")
    try:
        from checker import lockdep
    except ImportError:
        return "\n".join(lines)
    extra = getattr(lockdep, "describe_wait_for", None)
    if extra is not None:
        more = extra(ex, sid)
        if more:
            lines.append(more)
    return "\n".join(lines)


def common_call(kernels: list[str]) -> str:
    """What the alternatives at one label share: "caller: mmap_read_lock -> ..."."""
    if not kernels:
        return ""
    if len(set(kernels)) == 1:
        return kernels[0]
    prefix = kernels[0]
    for k in kernels[1:]:
        while not k.startswith(prefix):
            prefix = prefix[:-1]
    cut = prefix.rfind(" -> ")
    short = prefix[:cut] if cut > 0 else prefix.rstrip(" ->:")
    return short or " / ".join(kernels)


def _lock_order(ex: Exploration, r: Result, source: str) -> None:
    try:
        from checker import lockdep
    except ImportError:
        r.verdict, r.reason = INCOMPLETE, "lock-order analysis (checker.lockdep) not available"
        return
    report: Any = lockdep.check_lock_order(ex, source)
    if report.violated:
        r.verdict, r.trace, r.detail = VIOLATED, report.trace, report.text
    elif not ex.complete:
        r.verdict, r.reason = INCOMPLETE, ex.stop_reason
