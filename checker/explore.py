"""Breadth-first explicit-state exploration with parent links.

The explorer only explores: it records, per property, the first (hence shallowest) state
that violates it, the first deadlock, and the statistics; turning those into verdicts and
traces is `checker.run`'s job. States are tuples of ints; every visited state is kept with
its parent and the action that reached it, so counterexamples are shortest paths.
"""

from __future__ import annotations

import resource
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from checker.compile import Compiled

CHECK_EVERY = 4096


@dataclass(frozen=True)
class Limits:
    """Where to stop early; a stop makes every unsettled verdict INCOMPLETE."""

    max_states: int | None = None
    max_seconds: float | None = None
    max_memory_mib: int | None = None
    max_depth: int | None = None


@dataclass
class Stats:
    states: int = 0
    transitions: int = 0
    depth: int = 0
    seconds: float = 0.0
    peak_memory_mib: float = 0.0

    @property
    def rate(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Exploration:
    """What a breadth-first run found: the visited graph, violations and statistics."""

    compiled: Compiled
    states: list[tuple[int, ...]]
    index: dict[tuple[int, ...], int]
    parent: array
    action: array
    violations: dict[str, int] = field(default_factory=dict)  # property -> state id
    deadlock: int | None = None
    complete: bool = False
    stop_reason: str = ""
    stats: Stats = field(default_factory=Stats)

    def path(self, sid: int) -> list[tuple[int, int]]:
        """(action id, state id) pairs from the initial state to sid; action -1 first."""
        out = []
        while sid >= 0:
            out.append((self.action[sid], sid))
            sid = self.parent[sid]
        out.reverse()
        return out


Progress = Callable[[Stats], None]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def explore(compiled: Compiled, properties: list[str] | None = None, limits: Limits | None = None,
            progress: Progress | None = None, stop_when_all_violated: bool = True) -> Exploration:
    """Explore every reachable state breadth-first, checking the named properties.

    Invariants are checked on every state, final properties on states where every
    non-daemon process is done, deadlock freedom on states without successors.
    """
    limits = limits or Limits()
    flat = compiled.flat
    kinds = {p.name: p.kind for p in flat.spec.properties}
    wanted = list(kinds) if properties is None else list(properties)
    invariants = [(n, compiled.properties[n]) for n in wanted if kinds[n] == "invariant"]
    invariants += [(f"lemma:{n}", _lemma(compiled, n)) for n in flat.lemmas if properties is None]
    finals = [(n, compiled.properties[n]) for n in wanted if kinds[n] == "final"]
    deadlock_prop = next((n for n in wanted if kinds[n] == "deadlock"), None)
    finished = compiled.finished
    succ = compiled.successors

    init = compiled.initial
    states = [init]
    index = {init: 0}
    parent = array("q", [-1])
    action = array("q", [-1])
    ex = Exploration(compiled, states, index, parent, action)
    violations = ex.violations
    t0 = time.monotonic()
    deadline = None if limits.max_seconds is None else t0 + limits.max_seconds
    last_progress = t0
    transitions = 0
    depth = 0
    layer_end = 1
    open_checks = len(invariants) + len(finals) + (1 if deadlock_prop else 0)

    def check_state(sid: int, s: tuple[int, ...]) -> None:
        nonlocal invariants, finals
        bad = [n for n, f in invariants if not f(s)]
        if bad:
            for n in bad:
                violations.setdefault(n, sid)
            invariants = [(n, f) for n, f in invariants if n not in violations]
        if finals and finished(s):
            badf = [n for n, f in finals if not f(s)]
            if badf:
                for n in badf:
                    violations.setdefault(n, sid)
                finals = [(n, f) for n, f in finals if n not in violations]

    max_states = limits.max_states if limits.max_states is not None else 1 << 62
    i = 0
    try:
        check_state(0, init)
        while i < len(states):
            if i == layer_end:
                depth += 1
                layer_end = len(states)
                if limits.max_depth is not None and depth >= limits.max_depth:
                    ex.stop_reason = f"depth limit {limits.max_depth}"
                    break
            s = states[i]
            nxt = succ(s)
            if not nxt and deadlock_prop and ex.deadlock is None and not finished(s):
                ex.deadlock = i
                violations[deadlock_prop] = i
            for aid, t in nxt:
                transitions += 1
                if t in index:
                    continue
                sid = len(states)
                if sid >= max_states:
                    raise _StateLimit
                index[t] = sid
                states.append(t)
                parent.append(i)
                action.append(aid)
                if invariants or finals:
                    check_state(sid, t)
            i += 1
            if stop_when_all_violated and open_checks and len(violations) >= open_checks:
                ex.stop_reason = "every property already violated"
                break
            if i % CHECK_EVERY == 0:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    ex.stop_reason = f"time limit {limits.max_seconds:g}s"
                    break
                if limits.max_memory_mib is not None and peak_rss_mib() > limits.max_memory_mib:
                    ex.stop_reason = f"memory cap {limits.max_memory_mib} MiB"
                    break
                if progress is not None and now - last_progress > 0.2:
                    last_progress = now
                    progress(Stats(len(states), transitions, depth, now - t0, peak_rss_mib()))
        else:
            ex.complete = True
    except _StateLimit:
        ex.stop_reason = f"state limit {limits.max_states}"
    except KeyboardInterrupt:
        ex.stop_reason = "interrupted (Ctrl-C)"
        ex.complete = False
    ex.stats = Stats(len(states), transitions, depth, time.monotonic() - t0, peak_rss_mib())
    return ex


class _StateLimit(Exception):
    """Raised inside the hot loop when the state budget is spent."""


def _lemma(compiled: Compiled, name: str) -> Callable[[tuple[int, ...]], bool]:
    from checker.compile import _Gen, fold

    e = fold(compiled.flat.lemmas[name], compiled.flat.params, {})
    ns: dict = {}
    exec(f"def f(s):\n    return bool({_Gen().py(e)})\n", ns)  # noqa: S102 - our own codegen
    return ns["f"]
