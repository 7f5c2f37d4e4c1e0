"""Lock-order (lockdep) and wait-for analysis over an explored state graph.

Runs after the explorer, never inside its loop. It reads the lock annotations of the
spec: `LockDecl.held` (which instances hold which lock, per state) and the `LockOp`s of
steps. Semantics follow kernel/locking/lockdep.c:

- A dependency "B after A" is recorded when a process *attempts* B while holding A:
  lockdep's lock_acquire runs before the lock is contended, so a process that will wait
  forever still records it. A process attempts B in every state where its pc is at a label
  with a step that acquires B (`LockOp(B, "acquire", mode)`), enabled or not. Trylocks
  (`LockOp(B, "trylock", mode)`) record no dependency (lockdep skips check_prevs_add).
- Every visited state is examined in breadth-first order, so the first witness of each
  edge has a shortest trace. Edges are added to a networkx graph in that order; the first
  edge that closes a cycle is reported like print_circular_bug ("possible circular
  locking dependency"), and an edge from a lock to itself like print_deadlock_bug
  ("possible recursive locking"): a read-to-write upgrade, or a recursive read that can
  queue behind a waiting writer (rwsem down_read is a non-recursive read for lockdep).
  A cycle is a *possible* deadlock even if no explored state actually deadlocked.
- `describe_wait_for(ex, sid)` explains an actual deadlock state: which process waits
  for which lock held (or, for a reader of an rwsem, queued for write) by which process,
  and the wait-for cycle among them.
- `trace_contention(ex, sid)` counts lock acquisitions and the steps processes spent
  blocked at an acquire label along the shortest trace to a state (issue 4, point 5).

Entry points used by `checker.run`: `check_lock_order(ex, source) -> LockOrderReport`
(`.violated`, `.trace`, `.text`) and `describe_wait_for(ex, sid) -> str`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from checker.compile import Compiled, _Gen, fold
from checker.explore import Exploration
from checker.flat import Flat
from checker.run import common_call
from checker.spec import DONE, Step
from checker.trace import Trace, build_trace

ACQUIRE, RELEASE, TRYLOCK = "acquire", "release", "trylock"

State = tuple[int, ...]
Proc = tuple[str, int]  # (group, instance)


def proc_name(p: Proc) -> str:
    return f"{p[0]}[{p[1]}]"


@dataclass(frozen=True)
class Attempt:
    """A label at which a process tries to take a lock."""

    lock: str
    mode: str
    kernel: str


@dataclass(frozen=True)
class Witness:
    """The first (shallowest) state where an edge A -> B was recorded."""

    sid: int
    proc: Proc
    label: str
    held: str
    attempt: Attempt


@dataclass
class LockOrderReport:
    """Result of the lock-order pass: the graph, and the first problem found, if any."""

    violated: bool
    text: str = ""
    trace: Trace | None = None
    graph: Any = None  # networkx.DiGraph, edges carry their Witness as "witness"
    cycle: list[tuple[str, str]] = field(default_factory=list)


class LockModel:
    """The spec's lock annotations, compiled for fast per-state queries."""

    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled
        flat: Flat = compiled.flat
        self.flat = flat
        self.locks = [lk.name for lk in flat.spec.locks]
        self.kinds = {lk.name: lk.kind for lk in flat.spec.locks}
        self.procs: list[Proc] = [(g.name, i) for g in flat.spec.groups for i in g.index]
        self.pc_slot = {(g, i): flat.pc_slots[g][i] for g, i in self.procs}
        self.labels = {g.name: g.pc_type.names for g in flat.spec.groups}
        self.attempts: dict[str, dict[str, list[Attempt]]] = {}
        for g in flat.spec.groups:
            kernels: dict[tuple[str, tuple[str, str]], list[str]] = {}
            for st in g.steps:
                released = {op.lock for op in st.locks if op.op == RELEASE}
                for op in st.locks:
                    # A step that releases and re-acquires one lock converts the mode
                    # (downgrade_write): it cannot block, so it is no attempt.
                    if op.op == ACQUIRE and op.lock not in released:
                        kernels.setdefault((st.label, (op.lock, op.mode)), []).append(st.kernel)
            per: dict[str, list[Attempt]] = {}
            for (label, (lock, mode)), ks in kernels.items():
                per.setdefault(label, []).append(Attempt(lock, mode, common_call(ks)))
            self.attempts[g.name] = per
        params = flat.params
        self.held_fns: dict[str, dict[Proc, Callable[[State], bool]]] = {}
        for lock, groups in flat.lock_held.items():
            fns: dict[Proc, Callable[[State], bool]] = {}
            for gname, exprs in groups.items():
                for i, e in enumerate(exprs):
                    fns[(gname, i)] = _compile_bool(fold(e, params, {}))
            self.held_fns[lock] = fns

    def label(self, s: State, p: Proc) -> str:
        return self.labels[p[0]][s[self.pc_slot[p]]]

    def attempting(self, s: State, p: Proc) -> list[Attempt]:
        return self.attempts[p[0]].get(self.label(s, p), [])

    def held(self, s: State, p: Proc) -> list[str]:
        return [lk for lk in self.locks if (f := self.held_fns[lk].get(p)) is not None and f(s)]

    def holders(self, s: State, lock: str) -> list[Proc]:
        return [p for p, f in self.held_fns.get(lock, {}).items() if f(s)]


def _compile_bool(e: Any) -> Callable[[State], bool]:
    ns: dict[str, Any] = {}
    exec(f"def f(s):\n    return bool({_Gen().py(e)})\n", ns)  # noqa: S102 - our own codegen
    return ns["f"]


# ---------------------------------------------------------------- held-lock stacks


@dataclass(frozen=True)
class HeldLock:
    """A lock a process holds, as lockdep's held_locks entry: mode and where taken."""

    lock: str
    mode: str
    kernel: str
    depth: int  # step number in the trace


def held_stacks(ex: Exploration, sid: int) -> dict[Proc, list[HeldLock]]:
    """Replay the shortest path to sid, tracking each process's held locks by LockOp."""
    stacks: dict[Proc, list[HeldLock]] = {}
    for depth, (aid, _s) in enumerate(ex.path(sid)):
        if aid < 0:
            continue
        a = ex.compiled.actions[aid]
        p = (a.transition.group, a.transition.instance)
        st: Step = a.transition.step
        for op in st.locks:
            stack = stacks.setdefault(p, [])
            if op.op in (ACQUIRE, TRYLOCK):
                stack.append(HeldLock(op.lock, op.mode, st.kernel, depth))
            elif op.op == RELEASE:
                for k in range(len(stack) - 1, -1, -1):
                    if stack[k].lock == op.lock:
                        del stack[k]
                        break
    return stacks


def _mode_of(stacks: dict[Proc, list[HeldLock]], p: Proc, lock: str) -> HeldLock | None:
    return next((h for h in reversed(stacks.get(p, [])) if h.lock == lock), None)


# ---------------------------------------------------------------- lock order


def lock_graph(ex: Exploration, model: LockModel | None = None) -> Any:
    """The dependency graph over every visited state; edges keep their first Witness.

    Edges are inserted in breadth-first order of their witness, and the graph records
    that order in the edge attribute "order".
    """
    lm = model or LockModel(ex.compiled)
    graph = nx.DiGraph()
    graph.add_nodes_from(lm.locks)
    groups_with_attempts = [p for p in lm.procs if lm.attempts[p[0]]]
    for sid, s in enumerate(ex.states):
        for p in groups_with_attempts:
            atts = lm.attempting(s, p)
            if not atts:
                continue
            held = lm.held(s, p)
            for att in atts:
                for a_lock in held:
                    if not graph.has_edge(a_lock, att.lock):
                        w = Witness(sid, p, lm.label(s, p), a_lock, att)
                        graph.add_edge(a_lock, att.lock, witness=w,
                                       order=graph.number_of_edges())
    return graph


def check_lock_order(ex: Exploration, source: str) -> LockOrderReport:
    """Find the first recursive or circular dependency, lockdep style."""
    lm = LockModel(ex.compiled)
    graph = lock_graph(ex, lm)
    prop = next((p for p in ex.compiled.flat.spec.properties if p.kind == "lock_order"), None)
    prop_name = prop.name if prop else "no_lock_inversion"
    doc = prop.doc if prop else ""
    ordered = sorted(graph.edges(data=True), key=lambda e: e[2]["order"])
    seen = nx.DiGraph()
    for a, b, data in ordered:
        w: Witness = data["witness"]
        if a == b:
            text = _recursive_text(ex, w)
            return LockOrderReport(True, text, _witness_trace(ex, w, source, prop_name, doc),
                                   graph, [(a, b)])
        if seen.has_node(b) and seen.has_node(a) and nx.has_path(seen, b, a):
            path = nx.shortest_path(seen, b, a)
            chain = [(path[k], path[k + 1]) for k in range(len(path) - 1)]
            text = _circular_text(ex, graph, w, chain)
            return LockOrderReport(True, text, _witness_trace(ex, w, source, prop_name, doc),
                                   graph, chain + [(a, b)])
        seen.add_edge(a, b)
    return LockOrderReport(False, "", None, graph, [])


def _witness_trace(ex: Exploration, w: Witness, source: str, prop: str, doc: str) -> Trace:
    desc = (f"{proc_name(w.proc)} at {w.label} attempts {w.attempt.lock} "
            f"({w.attempt.mode}) in {w.attempt.kernel} while holding {w.held}")
    t = build_trace(ex.compiled, ex.path(w.sid), ex.states, source, prop, "lock_order",
                    f"{doc}: {desc}" if doc else desc)
    t.witness = {"process": proc_name(w.proc), "holding": w.held,
                 "acquiring": w.attempt.lock, "mode": w.attempt.mode,
                 "at": w.attempt.kernel}
    return t


def witness_holds(compiled: Compiled, witness: dict[str, Any], state: State) -> bool:
    """Whether a lock-order trace's last state shows its recorded attempt.

    The process named by the witness must be at a label where it acquires `acquiring`
    and must hold `holding` there: the dependency the trace was saved for.
    """
    lm = LockModel(compiled)
    proc = next((p for p in lm.procs if proc_name(p) == witness.get("process")), None)
    if proc is None:
        return False
    attempts = {a.lock for a in lm.attempting(state, proc)}
    return witness.get("acquiring") in attempts and witness.get("holding") in lm.held(
        state, proc)


def _lock_name(lock: str, mode: str | None) -> str:
    return f"({lock}){{{mode}}}" if mode else f"({lock})"


def _held_line(ex: Exploration, w: Witness) -> str:
    h = _mode_of(held_stacks(ex, w.sid), w.proc, w.held)
    if h is None:
        return f" {_lock_name(w.held, None)}"
    return f" {_lock_name(w.held, h.mode)}, at: {h.kernel} (step {h.depth})"


def _path_lines(ex: Exploration, sid: int, indent: str) -> list[str]:
    out = []
    for depth, (aid, _s) in enumerate(ex.path(sid)):
        if aid < 0:
            continue
        a = ex.compiled.actions[aid]
        out.append(f"{indent}{depth:>3}. {a.process}: {a.describe()}")
    return out


def _recursive_text(ex: Exploration, w: Witness) -> str:
    who = proc_name(w.proc)
    lock = w.attempt.lock
    return "\n".join([
        "============================================",
        "WARNING: possible recursive locking detected",
        "--------------------------------------------",
        f"{who} is trying to acquire lock:",
        f" {_lock_name(lock, w.attempt.mode)}, at: {w.attempt.kernel}",
        "",
        "but task is already holding lock:",
        _held_line(ex, w),
        "",
        "other info that might help us debug this:",
        " Possible unsafe locking scenario:",
        "",
        "       CPU0",
        "       ----",
        f"  {_verb(_mode_of(held_stacks(ex, w.sid), w.proc, lock))}({lock});",
        f"  {_verb_mode(w.attempt.mode)}({lock});",
        "",
        " *** DEADLOCK ***",
        "",
        f"(the trace reaches this attempt in {len(ex.path(w.sid)) - 1} steps, the fewest)",
    ])


def _verb_mode(mode: str) -> str:
    return "rlock" if mode == "read" else "lock"


def _verb(h: HeldLock | None) -> str:
    return _verb_mode(h.mode) if h else "lock"


def _circular_text(ex: Exploration, graph: Any, closing: Witness,
                   chain: list[tuple[str, str]]) -> str:
    """print_circular_bug: the closing attempt, then the existing chain in reverse."""
    src, tgt = closing.held, closing.attempt.lock
    who = proc_name(closing.proc)
    lines = [
        "======================================================",
        "WARNING: possible circular locking dependency detected",
        "------------------------------------------------------",
        f"{who} is trying to acquire lock:",
        f" {_lock_name(tgt, closing.attempt.mode)}, at: {closing.attempt.kernel}",
        "",
        "but task is already holding lock:",
        _held_line(ex, closing),
        "",
        "which lock already depends on the new lock.",
        "",
        "",
        "the existing dependency chain (in reverse order) is:",
    ]
    entries: list[tuple[str, Witness]] = [(b, graph.edges[a, b]["witness"]) for a, b in chain]
    entries.reverse()
    entries.append((tgt, closing))
    depth = len(entries) - 1
    for lock, w in entries:
        steps = len(ex.path(w.sid)) - 1
        lines += [
            "",
            f"-> #{depth} {_lock_name(lock, w.attempt.mode)}:",
            f"       {w.attempt.kernel}",
            f"       by {proc_name(w.proc)} holding {_lock_name(w.held, None)}, "
            + (f"first reached in {steps} steps:" if w is not closing else
               f"reached by the trace ({steps} steps)"),
        ]
        if w is not closing:
            lines += _path_lines(ex, w.sid, "       ")
        depth -= 1
    # print_circular_lock_scenario: parent is the lock just before the held one in the
    # existing chain new --> ... --> parent --> held.
    parent = chain[-1][0]
    dep: Witness = graph.edges[chain[-1]]["witness"]
    held_mode = _mode_of(held_stacks(ex, closing.sid), closing.proc, src)
    lines += ["", "other info that might help us debug this:", ""]
    if parent != tgt:
        lines += ["Chain exists of:", f"  {tgt} --> {parent} --> {src}", ""]
    lines += [
        " Possible unsafe locking scenario:",
        "",
        "       CPU0                    CPU1",
        "       ----                    ----",
        f"  {_verb(held_mode)}({src});",
        f"                               lock({parent});",
        f"                               {_verb_mode(dep.attempt.mode)}({src});",
        f"  {_verb_mode(closing.attempt.mode)}({tgt});",
        "",
        " *** DEADLOCK ***",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- wait-for graph


@dataclass(frozen=True)
class Wait:
    """One process blocked trying to take a lock."""

    proc: Proc
    lock: str
    mode: str
    kernel: str
    blockers: tuple[tuple[Proc, str], ...]  # (process, why)


def wait_for(ex: Exploration, sid: int, model: LockModel | None = None) -> list[Wait]:
    """Blocked lock waiters of state sid and whom each waits for.

    A waiter waits for every holder of the lock; an rwsem reader that no writer holds
    against waits for the blocked writers of that rwsem (it queued behind a waiting
    writer; the spec does not say which writer is ahead, and a writer behind it has the
    same holders to wait for, so no cycle appears that a real one does not imply).
    """
    lm = model or LockModel(ex.compiled)
    s = ex.states[sid]
    enabled = {(a.transition.group, a.transition.instance)
               for aid, _t in ex.compiled.successors(s) for a in [ex.compiled.actions[aid]]}
    stacks = held_stacks(ex, sid)
    blocked: list[tuple[Proc, Attempt]] = []
    for p in lm.procs:
        if p in enabled or lm.label(s, p) == DONE:
            continue
        for att in lm.attempting(s, p):
            blocked.append((p, att))
    waits = []
    for p, att in blocked:
        holders = lm.holders(s, att.lock)
        modes = {q: (h.mode if (h := _mode_of(stacks, q, att.lock)) else "held")
                 for q in holders}
        who: list[tuple[Proc, str]]
        if lm.kinds.get(att.lock) == "rwsem" and att.mode == "read":
            writers = [q for q in holders if modes[q] == "write"]
            who = [(q, f"holds {att.lock} for write") for q in writers]
            if not writers:
                who = [(q, f"waits for {att.lock} (write) ahead in the queue")
                       for q, a2 in blocked
                       if a2.lock == att.lock and a2.mode == "write" and q != p]
        else:
            who = [(q, f"holds {att.lock}" + (f" for {modes[q]}" if modes[q] in (
                "read", "write") else "")) for q in holders]
        waits.append(Wait(p, att.lock, att.mode, att.kernel, tuple(who)))
    return waits


def wait_for_cycle(waits: list[Wait]) -> list[Proc]:
    """The shortest cycle of the wait-for graph (a self-wait is a cycle of one)."""
    g = nx.DiGraph()
    for w in waits:
        for q, _why in w.blockers:
            g.add_edge(w.proc, q)
    best: list[Proc] = []
    for cyc in nx.simple_cycles(g):
        if not best or len(cyc) < len(best):
            best = cyc
    return best


def describe_wait_for(ex: Exploration, sid: int) -> str:
    """Text for a deadlock state: each lock waiter, its blockers, and the wait-for cycle."""
    waits = wait_for(ex, sid)
    if not waits:
        return ""
    lines = ["lock waiters:"]
    for w in waits:
        why = "; ".join(f"{proc_name(q)} {r}" for q, r in w.blockers) or "nobody holds it"
        lines.append(f"  {proc_name(w.proc)} wants {w.lock} ({w.mode}) in {w.kernel}: {why}")
    cyc = wait_for_cycle(waits)
    if cyc:
        by = {w.proc: w for w in waits}
        lines.append("wait-for cycle:")
        for k, p in enumerate(cyc):
            q = cyc[(k + 1) % len(cyc)]
            reason = next(r for b, r in by[p].blockers if b == q)
            lines.append(f"  {proc_name(p)} -> {proc_name(q)} ({proc_name(q)} {reason})")
    else:
        lines.append("no wait-for cycle among lock waiters")
    return "\n".join(lines)


# ---------------------------------------------------------------- contention metrics


def trace_contention(ex: Exploration, sid: int) -> dict[str, dict[str, int]]:
    """Per lock, along the shortest trace to sid: acquisitions by mode and wait steps.

    `read_wait_steps` counts, for every step of the trace, the processes blocked at a
    read-acquire label of the lock (a reader waiting behind a writer, for an rwsem);
    `write_wait_steps` likewise for writers and exclusive locks.
    """
    lm = LockModel(ex.compiled)
    out = {lk: {"read_acquisitions": 0, "write_acquisitions": 0, "read_wait_steps": 0,
                "write_wait_steps": 0} for lk in lm.locks}
    path = ex.path(sid)
    for aid, state_id in path:
        if aid >= 0:
            for op in ex.compiled.actions[aid].transition.step.locks:
                if op.op in (ACQUIRE, TRYLOCK) and op.lock in out:
                    key = "read_acquisitions" if op.mode == "read" else "write_acquisitions"
                    out[op.lock][key] += 1
        if state_id == sid:
            break
        s = ex.states[state_id]
        enabled = {(ex.compiled.actions[a].transition.group,
                    ex.compiled.actions[a].transition.instance)
                   for a, _t in ex.compiled.successors(s)}
        for p in lm.procs:
            if p in enabled:
                continue
            for att in lm.attempting(s, p):
                if att.lock in out:
                    key = "read_wait_steps" if att.mode == "read" else "write_wait_steps"
                    out[att.lock][key] += 1
    return out


__all__ = [
    "Attempt", "HeldLock", "LockModel", "LockOrderReport", "Wait", "Witness",
    "check_lock_order", "describe_wait_for", "held_stacks", "lock_graph", "trace_contention",
    "wait_for", "wait_for_cycle", "witness_holds",
]
