"""Breadth-first explicit-state exploration with parent links.

The explorer only explores: it records, per property, the first (hence shallowest) state
that violates it, the first deadlock, and the statistics; turning those into verdicts and
traces is `checker.run`'s job. Every visited state is kept with its parent and the action
that reached it, so counterexamples are shortest paths.

Memory: a state is stored once, packed to one to eight bytes per slot by its domain
(`StateCodec`, exact: no hashing, no loss), in the visited set and the state list alike;
`Exploration.states` decodes on access. Reductions (`Reductions`): with symmetry the
visited set holds the canonical form of each state while the list keeps the concrete
state reached (so paths stay concrete and replayable: the stored state is exactly the
successor of its stored parent by the recorded action); with partial-order reduction a
state is expanded along an ample set (`checker.por`) unless one of the ample successors
is already known at a depth no greater than the state's own (the breadth-first cycle
proviso: every cycle of the reduced graph has such an edge, so it contains a fully
expanded state). `workers > 1` runs
`checker.parallel`, which gives the same states, numbering and verdicts.
"""

from __future__ import annotations

import os
import resource
import struct
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, overload

from checker.compile import Compiled

if TYPE_CHECKING:
    from checker.expr import Expr
    from checker.flat import Flat
    from checker.por import PorPlan
    from checker.slicing import Slice
    from checker.symmetry import Symmetry

CHECK_EVERY = 4096

State = tuple[int, ...]


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


@dataclass(frozen=True)
class Reductions:
    """Which reductions an exploration applies (None: that reduction is off)."""

    symmetry: Symmetry | None = None
    por: PorPlan | None = None
    slice: Slice | None = None

    @property
    def active(self) -> bool:
        return bool((self.symmetry and self.symmetry.active) or (self.por and self.por.active)
                    or (self.slice and self.slice.active))

    def describe(self) -> str:
        parts = []
        if self.slice is not None:
            parts.append(self.slice.describe())
        if self.symmetry is not None:
            parts.append(self.symmetry.describe())
        if self.por is not None:
            parts.append(self.por.describe())
        return "; ".join(parts) or "no reduction"


def make_reductions(compiled: Compiled, properties: list[str] | None, *, symmetry: bool,
                    por: bool, lock_order: bool = False, slice: bool = False) -> Reductions:
    """The reductions asked for, verified for this spec and these properties.

    Symmetry uses the spec's declared groups (`SymmetryError` if a declaration is false);
    POR and slicing are switched off, with a note, when a lock-order property needs every
    state. With slicing, symmetry and POR are decided on the sliced spec.
    """
    sym = None
    plan = None
    sl = None
    if slice:
        from checker.slicing import Slice, slice_spec

        if lock_order:
            sl = Slice([], [], compiled)
        else:
            sl = slice_spec(compiled, properties)
            compiled = sl.compiled
    if symmetry:
        from checker.symmetry import Symmetry, analyse

        if compiled.flat.spec.symmetric:
            sym = analyse(compiled.flat, properties)
        else:
            sym = Symmetry([], ["the spec declares no symmetric process group"])
    if por:
        from checker.por import PorPlan
        from checker.por import plan as por_plan

        if lock_order:
            plan = PorPlan([False] * len(compiled.actions), [0] * len(compiled.actions), False,
                           notes=["off: the lock-order analysis needs every state"])
        else:
            plan = por_plan(compiled, properties)
    return Reductions(sym, plan, sl)


class StateCodec:
    """Exact fixed-width packing of states: each slot in the smallest signed/unsigned C
    integer holding its domain, optionally in another slot order (`order`: packed
    position k holds slot order[k]; symmetry packs each instance's slots together).
    Falls back to plain tuples for domains beyond 64 bits."""

    FORMATS = (("B", 0, 255), ("b", -128, 127), ("H", 0, 65535), ("h", -32768, 32767),
               ("I", 0, 2**32 - 1), ("i", -2**31, 2**31 - 1), ("Q", 0, 2**64 - 1),
               ("q", -2**63, 2**63 - 1))

    def __init__(self, compiled: Compiled, order: list[int] | None = None) -> None:
        self.codes: list[str] = []
        for info in compiled.flat.slots:
            r = info.type.values()
            lo, hi = r.start, r.stop - 1
            code = next((c for c, a, b in self.FORMATS if a <= lo and hi <= b), None)
            if code is None:
                self.codes = []
                break
            self.codes.append(code)
        self.packed = bool(self.codes)
        self.offsets: list[int] = []
        self.width = 0
        if not self.packed:
            self.pack: Callable[..., Any] = _tuple_of
            self.unpack: Callable[[Any], State] = _same
            self.encode: Callable[[State], Any] = _same
            return
        seq = order if order is not None else list(range(len(self.codes)))
        st = struct.Struct("<" + "".join(self.codes[j] for j in seq))
        self.width = st.size
        self.offsets = [0]
        for j in seq:
            self.offsets.append(self.offsets[-1] + struct.calcsize("<" + self.codes[j]))
        if seq == list(range(len(seq))):
            self.pack = st.pack
            self.unpack = st.unpack
            self.encode = _star(st.pack)
            return
        fwd = itemgetter(*seq)
        inverse = [0] * len(seq)
        for k, j in enumerate(seq):
            inverse[j] = k
        back = itemgetter(*inverse)
        raw_pack, raw_unpack = st.pack, st.unpack

        def encode(t: State) -> bytes:
            return raw_pack(*fwd(t))

        def pack(*t: int) -> bytes:
            return raw_pack(*fwd(t))

        def unpack(b: bytes) -> State:
            return back(raw_unpack(b))  # type: ignore[no-any-return]

        self.pack, self.unpack, self.encode = pack, unpack, encode


def _star(f: Callable[..., Any]) -> Callable[[State], Any]:
    return lambda t: f(*t)


def _tuple_of(*s: int) -> State:
    return s


def _same(s: Any) -> State:
    return s  # type: ignore[no-any-return]


class StateSequence(Sequence[State]):
    """States in id order, produced on access by `_get` (packed, block-stored, rebuilt)."""

    def _get(self, i: int) -> State:
        raise NotImplementedError

    @overload
    def __getitem__(self, i: int) -> State: ...

    @overload
    def __getitem__(self, i: slice) -> list[State]: ...

    def __getitem__(self, i: int | slice) -> State | list[State]:
        n = len(self)
        if isinstance(i, slice):
            return [self._get(j) for j in range(*i.indices(n))]
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self._get(i)


class PackedStates(StateSequence):
    """The explored states in id order, decoded from their packed form on access."""

    def __init__(self, raw: list[Any], unpack: Callable[[Any], State]) -> None:
        self.raw, self._unpack = raw, unpack

    def __len__(self) -> int:
        return len(self.raw)

    def _get(self, i: int) -> State:
        return self._unpack(self.raw[i])

    def __iter__(self) -> Iterator[State]:
        return map(self._unpack, self.raw)


@dataclass
class Exploration:
    """What a breadth-first run found: the visited graph, violations and statistics.

    `states[sid]` is a concrete state, `parent[sid]` the state it was first reached from
    and `action[sid]` the action taken (-1 for the initial state); with symmetry, other
    members of a state's orbit were not stored. `visited` holds the packed (canonical)
    keys.
    """

    compiled: Compiled
    states: Sequence[State]
    visited: Any
    parent: array
    action: array
    violations: dict[str, int] = field(default_factory=dict)  # property -> state id
    deadlock: int | None = None
    complete: bool = False
    stop_reason: str = ""
    stats: Stats = field(default_factory=Stats)
    reductions: Reductions = field(default_factory=Reductions)
    workers: int = 1
    canonical: Callable[[State], State] | None = None
    build_seconds: float = 0.0  # --native: generating and compiling the C (in stats.seconds)

    def path(self, sid: int) -> list[tuple[int, int]]:
        """(action id, state id) pairs from the initial state to sid; action -1 first."""
        out = []
        while sid >= 0:
            out.append((self.action[sid], sid))
            sid = self.parent[sid]
        out.reverse()
        return out

    def canonical_states(self) -> set[State]:
        """Canonical forms of the stored states (the states themselves without symmetry)."""
        canon = self.canonical
        return set(self.states) if canon is None else {canon(s) for s in self.states}


Progress = Callable[[Stats], None]


def peak_rss_mib() -> float:
    """Peak resident memory of this process: Linux VmHWM (ru_maxrss would include the
    high-water mark inherited from the process that started this one)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mib(pids: Sequence[int]) -> float:
    """Current resident memory of several processes (Linux /proc), in MiB."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
    return total / (1 << 20)


@dataclass
class _Checks:
    """The compiled property checks of one run."""

    invariants: list[tuple[str, Callable[[State], bool]]]
    finals: list[tuple[str, Callable[[State], bool]]]
    deadlock: str | None

    @property
    def count(self) -> int:
        return len(self.invariants) + len(self.finals) + (1 if self.deadlock else 0)


LEMMA = "lemma:"  # prefix of a lemma's name among the invariant checks


def check_expr(flat: Flat, name: str) -> Expr:
    """The expression behind a check of `property_checks` (a property or a lemma)."""
    if name.startswith(LEMMA):
        return flat.lemmas[name[len(LEMMA):]]
    e = flat.properties[name]
    assert e is not None  # deadlock freedom is no expression and never an invariant check
    return e


def property_checks(compiled: Compiled, properties: list[str] | None) -> _Checks:
    flat = compiled.flat
    kinds = {p.name: p.kind for p in flat.spec.properties}
    wanted = list(kinds) if properties is None else list(properties)
    invariants = [(n, compiled.properties[n]) for n in wanted if kinds[n] == "invariant"]
    invariants += [(LEMMA + n, _lemma(compiled, n)) for n in flat.lemmas if properties is None]
    finals = [(n, compiled.properties[n]) for n in wanted if kinds[n] == "final"]
    deadlock_prop = next((n for n in wanted if kinds[n] == "deadlock"), None)
    return _Checks(invariants, finals, deadlock_prop)


def explore(compiled: Compiled, properties: list[str] | None = None, limits: Limits | None = None,
            progress: Progress | None = None, stop_when_all_violated: bool = True,
            reductions: Reductions | None = None, workers: int = 1,
            native: bool = False) -> Exploration:
    """Explore every reachable state breadth-first, checking the named properties.

    Invariants are checked on every state, final properties on states where every
    non-daemon process is done, deadlock freedom on states without successors.
    `reductions` (from `make_reductions`) selects symmetry, partial-order reduction and
    slicing; `workers > 1` explores in parallel processes with the same result, `native`
    runs the same search compiled to C (checker.native). With slicing, `states` rebuilds
    full states and `compiled` is the unsliced spec.
    """
    limits = limits or Limits()
    reductions = reductions or Reductions()
    sl = reductions.slice
    target = sl.compiled if sl is not None and sl.active else compiled
    if native:
        from checker.native import explore_native

        ex = explore_native(target, properties, limits, progress, stop_when_all_violated,
                            reductions)
    elif workers > 1:
        from checker.parallel import explore_parallel

        ex = explore_parallel(target, properties, limits, progress, stop_when_all_violated,
                              reductions, workers)
    else:
        ex = _explore(target, properties, limits, progress, stop_when_all_violated, reductions)
    if target is not compiled:
        from checker.slicing import SlicedStates

        ex.states = SlicedStates(ex.states, ex.parent, ex.action, compiled)
        ex.compiled = compiled
    return ex


def _explore(compiled: Compiled, properties: list[str] | None, limits: Limits,
             progress: Progress | None, stop_when_all_violated: bool,
             reductions: Reductions) -> Exploration:
    checks = property_checks(compiled, properties)
    invariants, finals, deadlock_prop = checks.invariants, checks.finals, checks.deadlock
    finished = compiled.finished
    succ = compiled.successors
    sym = reductions.symmetry
    canon = sym.canonicalizer() if sym is not None and sym.active else None
    codec, keyf = codec_and_key(compiled, sym)
    pack, unpack, encode = codec.pack, codec.unpack, codec.encode
    por = reductions.por if reductions.por is not None and reductions.por.active else None
    safe = por.safe if por else []
    proc = por.proc if por else []

    init = compiled.initial
    init_packed = encode(init)
    raw = [init_packed]
    visited = {init_packed if keyf is None else keyf(init_packed)}
    parent = array("i", [-1])
    action = array("i", [-1])
    ex = Exploration(compiled, PackedStates(raw, unpack), visited, parent, action,
                     reductions=reductions, canonical=canon)
    violations = ex.violations
    t0 = time.monotonic()
    deadline = None if limits.max_seconds is None else t0 + limits.max_seconds
    last_progress = t0
    transitions = 0
    depth = 0
    layer_end = 1
    open_checks = checks.count

    def check_state(sid: int, s: State) -> None:
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
    add, app, papp, aapp = visited.add, raw.append, parent.append, action.append
    reduced = canon is not None or por is not None
    this_layer: set[Any] = set()  # keys first reached in the layer being generated
    i = 0
    try:
        check_state(0, init)
        while i < len(raw):
            if i == layer_end:
                depth += 1
                layer_end = len(raw)
                this_layer = set()
                if limits.max_depth is not None and depth >= limits.max_depth:
                    ex.stop_reason = f"depth limit {limits.max_depth}"
                    break
            s = unpack(raw[i])
            nxt = succ(s)
            if not nxt and deadlock_prop and ex.deadlock is None and not finished(s):
                ex.deadlock = i
                violations[deadlock_prop] = i
            if not reduced:
                for aid, t in nxt:
                    transitions += 1
                    k = pack(*t)
                    if k in visited:
                        continue
                    sid = len(raw)
                    if sid >= max_states:
                        raise _StateLimit
                    add(k)
                    app(k)
                    papp(i)
                    aapp(aid)
                    if invariants or finals:
                        check_state(sid, t)
            else:
                if keyf is None:
                    entries = [(aid, t, pack(*t), None) for aid, t in nxt]
                else:
                    entries = [(aid, t, keyf(b), b) for aid, t in nxt for b in (encode(t),)]
                if por is not None and len(entries) > 1:
                    amp = ample(entries, safe, proc)
                    # cycle proviso: an ample step back to a known layer expands fully
                    if len(amp) < len(entries) and not any(
                            e[2] in visited and e[2] not in this_layer for e in amp):
                        entries = amp
                for aid, t, k, b in entries:
                    transitions += 1
                    if k in visited:
                        continue
                    sid = len(raw)
                    if sid >= max_states:
                        raise _StateLimit
                    add(k)
                    if por is not None:
                        this_layer.add(k)
                    app(k if b is None else b)
                    papp(i)
                    aapp(aid)
                    if invariants or finals:
                        check_state(sid, t)
            i += 1
            if stop_when_all_violated and open_checks and len(violations) >= open_checks:
                ex.stop_reason = "every property already violated"
                break
            if i % CHECK_EVERY == 0:
                now = time.monotonic()
                stop = limit_reached(limits, deadline, now)
                if stop:
                    ex.stop_reason = stop
                    break
                if progress is not None and now - last_progress > 0.2:
                    last_progress = now
                    progress(Stats(len(raw), transitions, depth, now - t0, peak_rss_mib()))
        else:
            ex.complete = True
    except _StateLimit:
        ex.stop_reason = f"state limit {limits.max_states}"
    except KeyboardInterrupt:
        ex.stop_reason = "interrupted (Ctrl-C)"
        ex.complete = False
    ex.stats = Stats(len(raw), transitions, depth, time.monotonic() - t0, peak_rss_mib())
    return ex


def limit_reached(limits: Limits, deadline: float | None, now: float) -> str:
    """Why the run must stop now (time or memory cap), or "" to go on."""
    if deadline is not None and now >= deadline:
        return f"time limit {limits.max_seconds:g}s"
    if limits.max_memory_mib is not None and peak_rss_mib() > limits.max_memory_mib:
        return f"memory cap {limits.max_memory_mib} MiB"
    return ""


def codec_and_key(compiled: Compiled, sym: Symmetry | None
                  ) -> tuple[StateCodec, Callable[[Any], Any] | None]:
    """The state packing and the visited-set key of a packed state.

    Without symmetry the key is the packed state itself (None). With symmetry the key
    sorts each class's instance rows: byte slices of the packed state when every row
    slot is one byte (`Symmetry.strided_key`), otherwise states are packed instance by
    instance (`Symmetry.layout`, `Symmetry.byte_key`); if states cannot be packed, the
    key is the canonical tuple.
    """
    if sym is None or not sym.active:
        return StateCodec(compiled), None
    natural = StateCodec(compiled)
    if natural.packed:
        key = sym.strided_key(natural.offsets)
        if key is not None:
            return natural, key
    codec = StateCodec(compiled, sym.layout(len(compiled.flat.slots)))
    if codec.packed:
        return codec, sym.byte_key(codec.offsets)
    return codec, sym.canonicalizer()


def ample(nxt: list[Any], safe: list[bool], proc: list[int]) -> list[Any]:
    """The successors (tuples starting with the action id) along an ample set: every step
    of the first process whose current label is reducible (`checker.por`), or all
    successors if there is none. The caller applies the cycle proviso."""
    for x in nxt:
        if safe[x[0]]:
            p = proc[x[0]]
            return [y for y in nxt if proc[y[0]] == p]
    return nxt


class _StateLimit(Exception):
    """Raised inside the hot loop when the state budget is spent."""


def _lemma(compiled: Compiled, name: str) -> Callable[[State], bool]:
    from checker.compile import _Gen, fold

    e = fold(compiled.flat.lemmas[name], compiled.flat.params, {})
    ns: dict = {}
    exec(f"def f(s):\n    return bool({_Gen().py(e)})\n", ns)  # noqa: S102 - our own codegen
    return ns["f"]
