"""Turn a trace of specs/vfio_locked_vm_cache.py into a model run: schedule, layout, faults.

A trace is plain data (what ``checker.trace`` loads from ITF): its parameters, its
states (variable -> value; a process local is a list indexed by instance, e.g.
``helper.chunk``) and its steps (process such as ``helper[1]`` or ``sigkill[0]``,
step label, note, choice). From it this module derives

- the schedule: helper ``i`` is model thread ``i`` (the MAP_DMA caller is helper 0 and
  thread 0; padata's kworkers are queued in order); where the trace's ``fatal`` turns
  true, a ``sigkill`` event is inserted before the step;
- the page layout: the trace's own ``layout`` parameter, or, for ``"*"``, the kinds the
  trace decided (GUP results, consumed pages, dropped batches); pages it never decided
  become the least demanding kind allowed (reserved, else already pinned, else faulting,
  else normal), which keeps "everything that needs accounting fits" true whenever the
  trace's prefix says so;
- the faults: the steps where vfio_iommu_map fails, and the steps where a killable
  mmap_lock acquisition is contended (the ``-EINTR`` alternatives);
- with ``granularity="batch"``, a step taking a run of ``na + nv`` pages becomes that many
  iterations of the model's inner loop (normal pages first);
- with ``mmap_lock="rwsem"`` the spec splits every mmap_lock section ``L`` into the
  acquisition at ``L`` (queueing, waking, -EINTR), the section at ``L_locked``, the release
  at ``L_unlock`` and, after a killable acquisition failed, the -EINTR path at ``L_eintr``.
  The model runs a section as one step that takes and drops the lock itself, so the
  section (or the -EINTR path) is the model's step ``L`` and the acquisition and release
  steps are not steps of the model; neither are the vCPU's page faults, whose only effect
  is that a killable acquisition may have to wait, which the trace's -EINTR step says.

``replay(trace_like)`` runs it on ``model.vfio_run.VfioRun`` and returns the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from model.vfio_run import SIGKILL, Outcome, StepFaults, VfioConfig, VfioRun

LOCK_STEPS = ("refill", "out", "unpin_remote", "release", "undo", "padata_undo", "finish")
SECTIONS = ("gup", "unpin_drawn", *LOCK_STEPS)


class StepLike(Protocol):
    process: str
    label: str
    note: str
    choice: dict[str, Any]


class TraceLike(Protocol):
    parameters: dict[str, Any]
    states: list[dict[str, Any]]
    steps: list[Any]


class ReplayError(Exception):
    """A trace that does not describe a run of this spec."""


@dataclass
class Plan:
    """Everything a model run needs to follow a trace."""

    config: VfioConfig
    schedule: list[int | str]
    labels: list[str | None]
    faults: StepFaults
    layout_decided: list[str | None] = field(default_factory=list)


def _instance(process: str) -> tuple[str, int]:
    name, _, rest = process.partition("[")
    if not rest.endswith("]") or not rest[:-1].isdigit():
        raise ReplayError(f"process {process!r} is not of the form group[index]")
    return name, int(rest[:-1])


def _local(state: dict[str, Any], name: str, i: int) -> Any:
    try:
        return state[f"helper.{name}"][i]
    except (KeyError, IndexError, TypeError):
        raise ReplayError(f"the trace has no helper.{name}[{i}]") from None


def _least_demanding(params: dict[str, Any]) -> str:
    for kind, allowed in (("R", params.get("reserved", True)), ("P", params.get("pinned", True)),
                          ("F", params.get("efault", True))):
        if allowed:
            return kind
    return "N"


@dataclass
class _Batch:
    positions: list[int]
    normal: int
    pinned: int


@dataclass
class _Relabelled:
    process: str
    label: str
    note: str
    choice: dict[str, Any]


def _section_step(label: str, pre: dict[str, Any], post: dict[str, Any], i: int) -> str | None:
    """mmap_lock="rwsem": the model step a spec step is, or None for lock-only steps."""
    base, _, part = label.rpartition("_")
    if part in ("locked", "eintr") and base in SECTIONS:
        return base
    if (part == "unlock" and base in SECTIONS) or label == "unpin_drawn":
        return None  # (unpin_drawn at its own label: nothing drawn, no model step)
    if label not in SECTIONS:
        return label
    to = _local(post, "pc", i)
    try:
        requeued = pre["mmap_lock_queue"][i] != post["mmap_lock_queue"][i]
    except (KeyError, IndexError, TypeError):
        raise ReplayError(f"the trace has no mmap_lock_queue[{i}]") from None
    if to in (f"{label}_locked", f"{label}_eintr") or (to == label and requeued):
        return None
    return label  # nothing to charge: vfio_lock_acct returned without the lock


def plan(trace: TraceLike) -> Plan:
    """Schedule, layout and faults of a trace (see the module docstring)."""
    prm = dict(trace.parameters)
    cp = int(prm["chunk_pages"])
    pages = int(prm["chunks"]) * cp
    layout = str(prm.get("layout", "*"))
    free = layout == "*"
    kinds: list[str | None] = [None] * pages if free else list(layout)
    batches: dict[int, _Batch] = {}
    schedule: list[int | str] = []
    labels: list[str | None] = []
    map_fail: set[int] = set()
    contended: set[int] = set()

    def setk(pos: int, kind: str) -> None:
        if free and 0 <= pos < pages:
            kinds[pos] = kind

    rwsem = prm.get("mmap_lock", "atomic") == "rwsem"
    for k, step in enumerate(trace.steps):
        group, i = _instance(step.process)
        if rwsem and group == "vcpu":
            continue
        if group != "helper":
            raise ReplayError(f"step {k}: unknown process group {group!r}")
        pre, post = trace.states[k], trace.states[k + 1]
        if rwsem:
            label = _section_step(step.label, pre, post, i)
            if label is None:
                continue
            step = _Relabelled(step.process, label, step.note, step.choice)
        if post.get("fatal") and not pre.get("fatal"):
            # the spec lets SIGKILL arrive with the first step it affects
            schedule.append(SIGKILL)
            labels.append(None)
        m = len(schedule)  # the model's step index
        schedule.append(i)
        labels.append(step.label)
        note = step.note
        if "vfio_iommu_map failed" in note:
            map_fail.add(m)
        if "-EINTR" in note and step.label in LOCK_STEPS:
            contended.add(m)
        if not free:
            continue
        pos = (_local(pre, "chunk", i) * cp + _local(pre, "mapped", i)
               + _local(pre, "pinned", i))
        if step.label == "gup":
            if step.choice:
                n, a = int(step.choice["k"]), int(step.choice["a"])
                batches[i] = _Batch(list(range(pos, pos + n)), a, n - a)
            elif "PFNMAP" in note:
                setk(pos, "R")
            elif "-EFAULT" in note:
                setk(pos, "F")
            elif "-EINTR" in note and kinds[pos] is None:
                setk(pos, "P" if prm.get("pinned", True) else
                     "F" if prm.get("efault", True) else "N")
        elif step.label == "page" and "na" in step.choice:
            # granularity="batch": one spec step is na + nv iterations of the inner loop
            na, nv = int(step.choice["na"]), int(step.choice["nv"])
            schedule.extend([i] * (na + nv - 1))
            labels.extend(["page"] * (na + nv - 1))
            b = batches.get(i)
            for off, kind in enumerate("N" * na + "P" * nv):
                setk(pos + off, kind)
                if b is not None and pos + off in b.positions:
                    b.positions.remove(pos + off)
                    b.normal -= kind == "N"
                    b.pinned -= kind == "P"
        elif step.label == "page":
            b = batches.get(i)
            if _local(post, "p_acc", i) > _local(pre, "p_acc", i):
                kind = "N"
            elif _local(post, "p_vp", i) > _local(pre, "p_vp", i):
                kind = "P"
            elif _local(post, "pinned", i) > _local(pre, "pinned", i):
                kind = "R"
            elif note[:2] in ("N ", "P ", "R "):
                kind = note[0]  # "X page ends the run"
            else:
                kind = "N"  # -ENOMEM at the RLIMIT check, or an empty cache
            setk(pos, kind)
            if b is not None and pos in b.positions:
                b.positions.remove(pos)
                if kind == "N":
                    b.normal -= 1
                elif kind == "P":
                    b.pinned -= 1
        elif step.label == "out" and _local(pre, "bsize", i) == 1 and _local(pre, "bfresh", i):
            dropped = "N" if _local(pre, "bacc", i) else "P" if _local(pre, "bvp", i) else "R"
            setk(pos, dropped)
            b = batches.get(i)
            if b is not None and pos in b.positions:
                b.positions.remove(pos)
                b.normal -= dropped == "N"
                b.pinned -= dropped == "P"

    if free:
        for b in batches.values():
            for pos in b.positions:
                if kinds[pos] is None:
                    if b.normal > 0:
                        kinds[pos], b.normal = "N", b.normal - 1
                    elif b.pinned > 0:
                        kinds[pos], b.pinned = "P", b.pinned - 1
        decided = list(kinds)
        rest = _least_demanding(prm)
        layout = "".join(k or rest for k in kinds)
    else:
        decided = list(kinds)
    config = VfioConfig(str(prm["variant"]) if "variant" in prm else "fixed",
                        int(prm["threads"]), int(prm["chunks"]), cp, int(prm["cache_pages"]),
                        int(prm["batch_pages"]), int(prm["limit_pages"]),
                        int(prm["initial_locked"]), bool(prm["lock_cap"]), layout, rwsem)
    return Plan(config, schedule, labels, StepFaults(frozenset(map_fail), frozenset(contended)),
                decided)


def replay(trace: TraceLike, variant: str | None = None) -> tuple[Plan, Outcome]:
    """Run the trace's schedule on the model; ``variant`` overrides the trace's."""
    p = plan(trace)
    if variant is not None:
        p.config = VfioConfig(variant, *[getattr(p.config, f) for f in (
            "threads", "chunks", "chunk_pages", "cache_pages", "batch_pages", "limit_pages",
            "initial_locked", "lock_cap", "layout", "unpin_drawn_step")])
    run = VfioRun(p.config, p.faults)
    return p, run.run_steps(p.schedule, p.labels)
