"""Parallel breadth-first exploration: worker processes own partitions of the visited set.

Design (layer-synchronous, forked workers, this process coordinates):

- A state belongs to worker `crc32(packed canonical key) % N`; that worker alone holds it in
  its visited set and expands it when its layer comes.
- A layer is processed in rounds of consecutive state ids. In a round every worker expands
  its states of that id range, sends each successor (key, concrete state, parent id,
  position among the parent's successors, action) to its owner, and then, as owner, takes
  the candidates of the round from every worker in (parent id, position) order and keeps
  the first one of each new key. That is exactly the order in which the one-process
  explorer discovers states, so the new states, their parents and actions are the same.
- At the end of a layer the coordinator orders every worker's new states by (parent id,
  position), numbers them, stores them (one fixed-width row per state, `numpy`), and sends
  each worker the ids of its states. Violations are the smallest violating id per
  property, as in the one-process explorer.

Results equal the one-process explorer's - state ids, parents, actions, verdicts and
counterexamples - for every run that completes or stops because every property is
violated (then the state count may differ: the stop comes at the end of a layer). Time and
memory caps are checked by every worker and agreed on per round; the state cap is applied
at the end of a layer (ids beyond it are dropped).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from checker.compile import Compiled
from checker.explore import (
    Exploration,
    Limits,
    Progress,
    Reductions,
    State,
    StateCodec,
    StateSequence,
    Stats,
    _explore,
    ample,
    codec_and_key,
    peak_rss_mib,
    property_checks,
    rss_mib,
)

ROUND = 16384  # frontier states per round (over all workers)
POLL = 1.0  # seconds between liveness checks while waiting


class BlockStates(StateSequence):
    """Explored states stored as fixed-width rows, one numpy block per layer."""

    def __init__(self, unpack: Callable[[Any], State], width: int) -> None:
        self._unpack, self.width = unpack, width
        self.blocks: list[np.ndarray] = []
        self.starts: list[int] = []
        self.n = 0

    def add(self, block: np.ndarray) -> None:
        if len(block):
            self.starts.append(self.n)
            self.blocks.append(block)
            self.n += len(block)

    def truncate(self, n: int) -> None:
        while self.blocks and self.starts[-1] >= n:
            self.blocks.pop()
            self.n = self.starts.pop()
        if self.blocks and self.n > n:
            self.blocks[-1] = self.blocks[-1][: n - self.starts[-1]]
            self.n = n

    def __len__(self) -> int:
        return self.n

    def raw(self, i: int) -> bytes:
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(i)
        b = bisect_right(self.starts, i) - 1
        return self.blocks[b][i - self.starts[b]].tobytes()

    def _get(self, i: int) -> State:
        return self._unpack(self.raw(i))

    def __iter__(self) -> Iterator[State]:
        for blk in self.blocks:
            for row in blk:
                yield self._unpack(row.tobytes())


@dataclass
class _Job:
    """What a forked worker inherits: the spec, checks, reductions and channels."""

    compiled: Compiled
    properties: list[str] | None
    reductions: Reductions
    workers: int
    inboxes: list[Any]
    to_coord: Any
    commands: list[Any]
    deadline: float | None
    max_seconds: float | None
    max_memory_mib: int | None
    pids: list[int] = field(default_factory=list)


_JOB: _Job | None = None


def explore_parallel(compiled: Compiled, properties: list[str] | None, limits: Limits,
                     progress: Progress | None, stop_when_all_violated: bool,
                     reductions: Reductions, workers: int) -> Exploration:
    """Explore with `workers` processes; falls back to one process where fork is missing
    or states cannot be packed."""
    codec, _key = codec_and_key(compiled, reductions.symmetry)
    if ("fork" not in mp.get_all_start_methods() or not codec.packed
            or len(compiled.actions) >= 1 << 16):
        return _explore(compiled, properties, limits, progress, stop_when_all_violated,
                        reductions)
    return _Coordinator(compiled, properties, limits, progress, stop_when_all_violated,
                        reductions, workers, codec).run()


@dataclass
class _Reply:
    """A worker's report at the end of a layer."""

    worker: int
    rows: bytes  # packed concrete new states, in discovery order
    codes: bytes  # int64 (parent id, position, action) codes of the new states
    found: dict[str, int]  # property -> position of its first violating new state
    deadlock: int | None  # smallest expanded state id without successors
    transitions: int
    stop: str


class WorkerError(Exception):
    """A worker process died without reporting an exception."""


class _Coordinator:
    def __init__(self, compiled: Compiled, properties: list[str] | None, limits: Limits,
                 progress: Progress | None, stop_when_all_violated: bool,
                 reductions: Reductions, workers: int, codec: StateCodec) -> None:
        self.compiled, self.properties, self.limits = compiled, properties, limits
        self.progress, self.stop_all = progress, stop_when_all_violated
        self.reductions, self.n, self.codec = reductions, workers, codec

    def run(self) -> Exploration:
        global _JOB
        ctx = mp.get_context("fork")
        t0 = time.monotonic()
        limits = self.limits
        deadline = None if limits.max_seconds is None else t0 + limits.max_seconds
        job = _Job(self.compiled, self.properties, self.reductions, self.n,
                   [ctx.Queue() for _ in range(self.n)], ctx.Queue(),
                   [ctx.Queue() for _ in range(self.n)], deadline, limits.max_seconds,
                   limits.max_memory_mib,
                   [os.getpid()])
        _JOB = job
        procs = [ctx.Process(target=_worker_main, args=(w,), daemon=True)
                 for w in range(self.n)]
        try:
            for p in procs:
                p.start()
            job.pids += [p.pid for p in procs if p.pid is not None]
            for q in job.commands:
                q.put(("pids", job.pids))
            return self._drive(job, procs, t0)
        finally:
            _JOB = None
            for q in job.commands:
                q.put(("quit",))
            for p in procs:
                p.join(timeout=2)
                if p.is_alive():
                    p.terminate()
                    p.join(timeout=2)

    def _get(self, job: _Job, procs: list[Any]) -> Any:
        while True:
            try:
                msg = job.to_coord.get(timeout=POLL)
            except queue.Empty:
                dead = [p for p in procs if not p.is_alive()]
                if dead:
                    raise WorkerError(f"worker process {dead[0].pid} died "
                                      f"(exit code {dead[0].exitcode})") from None
                continue
            if msg[0] == "error":
                raise msg[1]
            return msg

    def _drive(self, job: _Job, procs: list[Any], t0: float) -> Exploration:
        compiled, codec, limits = self.compiled, self.codec, self.limits
        checks = property_checks(compiled, self.properties)
        sym = self.reductions.symmetry
        canon = sym.canonicalizer() if sym is not None and sym.active else None
        store = BlockStates(codec.unpack, codec.width)
        init = compiled.initial
        store.add(np.frombuffer(codec.encode(init), dtype=np.uint8).reshape(1, -1).copy())
        parent = array("i", [-1])
        action = array("i", [-1])
        ex = Exploration(compiled, store, None, parent, action, reductions=self.reductions,
                         workers=self.n, canonical=canon)
        violations = ex.violations
        for n, f in checks.invariants:
            if not f(init):
                violations.setdefault(n, 0)
        if compiled.finished(init):
            for n, f in checks.finals:
                if not f(init):
                    violations.setdefault(n, 0)
        a1 = len(compiled.actions)
        a2 = a1 * a1
        layer_start, layer_end = 0, 1
        depth = 0
        transitions = 0
        max_states = limits.max_states if limits.max_states is not None else 1 << 62
        try:
            while True:
                if self.stop_all and checks.count and len(violations) >= checks.count:
                    ex.stop_reason = "every property already violated"
                    break
                if layer_end == layer_start:
                    ex.complete = True
                    break
                if depth > 0 and limits.max_depth is not None and depth >= limits.max_depth:
                    ex.stop_reason = f"depth limit {limits.max_depth}"
                    break
                bounds = list(range(layer_start, layer_end, ROUND)) + [layer_end]
                for q in job.commands:
                    q.put(("layer", bounds, sorted(violations)))
                replies = sorted((_Reply(*self._get(job, procs)[1:]) for _ in range(self.n)),
                                 key=lambda m: m.worker)
                stop = next((m.stop for m in replies if m.stop), "")
                transitions += sum(m.transitions for m in replies)
                dls = [m.deadlock for m in replies if m.deadlock is not None]
                if dls and checks.deadlock and ex.deadlock is None:
                    ex.deadlock = min(dls)
                    violations.setdefault(checks.deadlock, ex.deadlock)
                counts = [len(m.codes) // 8 for m in replies]
                total = sum(counts)
                if total:
                    codes = np.concatenate([np.frombuffer(m.codes, dtype=np.int64)
                                            for m in replies])
                    rows = np.concatenate([np.frombuffer(m.rows, dtype=np.uint8).reshape(
                        -1, codec.width) for m in replies])
                    order = np.argsort(codes, kind="stable")
                    rank = np.empty(total, dtype=np.int64)
                    rank[order] = np.arange(total, dtype=np.int64)
                    gids = rank + layer_end
                    store.add(rows[order])
                    ordered = codes[order]
                    parent.frombytes((ordered // a2).astype(np.int32).tobytes())
                    action.frombytes((ordered % a1).astype(np.int32).tobytes())
                    off = 0
                    for m, c in zip(replies, counts, strict=True):
                        job.commands[m.worker].put(("gids", gids[off:off + c].tobytes()))
                        for prop, pos in m.found.items():
                            gid = int(gids[off + pos])
                            if prop not in violations or gid < violations[prop]:
                                violations[prop] = gid
                        off += c
                else:
                    for q in job.commands:
                        q.put(("gids", b""))
                layer_start, layer_end = layer_end, layer_end + total
                depth += 1 if total else 0
                if layer_end > max_states:
                    self._truncate(ex, max_states)
                    ex.stop_reason = f"state limit {limits.max_states}"
                    break
                if stop:
                    ex.stop_reason = stop
                    break
                if self.progress is not None:
                    self.progress(Stats(len(store), transitions, depth, time.monotonic() - t0,
                                        rss_mib(job.pids)))
        except KeyboardInterrupt:
            ex.stop_reason = "interrupted (Ctrl-C)"
            ex.complete = False
        ex.stats = Stats(len(store), transitions, depth, time.monotonic() - t0,
                         max(rss_mib(job.pids), peak_rss_mib()))
        return ex

    @staticmethod
    def _truncate(ex: Exploration, n: int) -> None:
        assert isinstance(ex.states, BlockStates)
        ex.states.truncate(n)
        del ex.parent[n:]
        del ex.action[n:]
        for prop, sid in list(ex.violations.items()):
            if sid >= n:
                del ex.violations[prop]
        if ex.deadlock is not None and ex.deadlock >= n:
            ex.deadlock = None


# ---------------------------------------------------------------- worker side


def _worker_main(w: int) -> None:
    job = _JOB
    assert job is not None
    try:
        _Worker(w, job).serve()
    except BaseException as e:  # noqa: BLE001 - reported to the coordinator, which raises it
        try:
            job.to_coord.put(("error", e))
        except Exception:  # noqa: BLE001
            job.to_coord.put(("error", WorkerError(f"worker {w}: {e!r}")))


class _Worker:
    def __init__(self, w: int, job: _Job) -> None:
        self.w, self.job, self.n = w, job, job.workers
        c = job.compiled
        self.codec, self.keyf = codec_and_key(c, job.reductions.symmetry)
        self.checks = property_checks(c, job.properties)
        por = job.reductions.por
        self.por = por if por is not None and por.active else None
        self.visited: set[bytes] = set()
        self.frontier: list[tuple[int, bytes]] = []
        self.pending: dict[int, list[Any]] = {}
        self.pids: list[int] = []
        init = c.initial
        packed = self.codec.encode(init)
        key = packed if self.keyf is None else self.keyf(packed)
        if zlib.crc32(key) % self.n == w:
            self.visited.add(key)
            self.frontier.append((0, packed))

    def serve(self) -> None:
        cmds = self.job.commands[self.w]
        while True:
            msg = cmds.get()
            if msg[0] == "quit":
                return
            if msg[0] == "pids":
                self.pids = msg[1]
            elif msg[0] == "layer":
                self.layer(msg[1], set(msg[2]))
                reply = cmds.get()
                while reply[0] != "gids":
                    if reply[0] == "quit":
                        return
                    reply = cmds.get()
                gids = np.frombuffer(reply[1], dtype=np.int64).tolist()
                self.frontier = list(zip(gids, self.new_conc, strict=True))

    def _stop_wanted(self) -> str:
        job = self.job
        if job.deadline is not None and time.monotonic() >= job.deadline:
            return f"time limit {job.max_seconds:g}s"
        if job.max_memory_mib is not None and rss_mib(self.pids) > job.max_memory_mib:
            return f"memory cap {job.max_memory_mib} MiB"
        return ""

    def layer(self, bounds: list[int], violated: set[str]) -> None:
        """Expand this worker's states of one layer, round by round; report new states.

        A candidate successor travels as its packed canonical key, its packed concrete
        state (only when they differ) and one int64 code = (parent id, position among the
        parent's successors, action), whose order is the one-process discovery order.
        With POR a round has two more exchanges for the cycle proviso: owners tell the
        expanding worker which ample successors lead back to an earlier layer, and the
        parents concerned send the rest of their successors.
        """
        c = self.job.compiled
        self.a1 = len(c.actions)
        self.a2 = self.a1 * self.a1
        self.deadlock_prop = (self.checks.deadlock if self.checks.deadlock not in violated
                              else None)
        self.invariants = [(p, f) for p, f in self.checks.invariants if p not in violated]
        self.finals = [(p, f) for p, f in self.checks.finals if p not in violated]
        self.new_conc: list[bytes] = []
        self.new_codes = array("q")
        self.found: dict[str, int] = {}
        self.deadlock: int | None = None
        self.transitions = 0
        self.this_layer: set[bytes] = set()
        stop = ""
        pos = 0
        for r in range(len(bounds) - 1):
            pos, stop, agreed = self._round(r, bounds[r + 1], pos, stop)
            if agreed:
                stop = agreed
                break
        self.job.to_coord.put(("layer", self.w, b"".join(self.new_conc),
                               self.new_codes.tobytes(), self.found, self.deadlock,
                               self.transitions, stop))

    def _round(self, r: int, hi: int, pos: int, stop: str) -> tuple[int, str, str]:
        job, n, w = self.job, self.n, self.w
        c = job.compiled
        succ, finished = c.successors, c.finished
        pack, unpack, encode = self.codec.pack, self.codec.unpack, self.codec.encode
        keyf, por = self.keyf, self.por
        safe = por.safe if por else []
        proc = por.proc if por else []
        a1, a2 = self.a1, self.a2
        crc = zlib.crc32
        out = [_Batch() for _ in range(n)]
        kapp = [b.keys.append for b in out]
        dapp = [b.codes.append for b in out]
        capp = [b.conc.append for b in out]
        tapp = [b.tentative.append for b in out]
        rest: dict[int, list[tuple[int, int, State, bytes, bytes | None]]] = {}
        frontier = self.frontier
        transitions = 0
        while pos < len(frontier) and frontier[pos][0] < hi:
            gid, cb = frontier[pos]
            pos += 1
            s = unpack(cb)
            nxt = succ(s)
            if not nxt and self.deadlock_prop and self.deadlock is None and not finished(s):
                self.deadlock = gid
            base = gid * a2
            if keyf is None and por is None:
                transitions += len(nxt)
                for k, (aid, t) in enumerate(nxt):
                    key = pack(*t)
                    o = crc(key) % n
                    kapp[o](key)
                    dapp[o](base + k * a1 + aid)
                continue
            if keyf is None:
                entries = [(aid, k, t, pack(*t), None) for k, (aid, t) in enumerate(nxt)]
            else:
                entries = [(aid, k, t, keyf(b), b) for k, (aid, t) in enumerate(nxt)
                           for b in (encode(t),)]
            tentative = 0
            if por is not None and len(entries) > 1:
                amp = ample(entries, safe, proc)
                if len(amp) < len(entries):
                    p = proc[amp[0][0]]
                    rest[gid] = [e for e in entries if proc[e[0]] != p]
                    entries = amp
                    tentative = 1
            transitions += len(entries)
            for aid, k, _t, key, b in entries:
                o = crc(key) % n
                kapp[o](key)
                dapp[o](base + k * a1 + aid)
                if b is not None:
                    capp[o](b)
                if por is not None:
                    tapp[o](tentative)
        self.transitions += transitions
        for b in out:
            if keyf is None:
                b.conc = b.keys
            else:
                b.distinct = True
        if not stop:
            stop = self._stop_wanted()
        got = self._exchange((r, 0), out, stop)
        stops = [stop] + [m[0] for m in got.values()]
        parts = [out[w]] + [_Batch.decode(m[1], self.codec.width) for m in got.values()]
        if por is not None:
            parts += self._proviso(r, parts, [w] + list(got), rest)
        self._dedupe(parts, unpack, finished)
        return pos, stop, next((x for x in stops if x), "")

    def _proviso(self, r: int, parts: list[_Batch], sources: list[int],
                 rest: dict[int, list[tuple[int, int, State, bytes, bytes | None]]]
                 ) -> list[_Batch]:
        """Owners flag parents whose ample successor is already known from an earlier
        layer; those parents' other successors are then sent as well."""
        n, w = self.n, self.w
        visited, this_layer = self.visited, self.this_layer
        a2 = self.a2
        flagged: dict[int, set[int]] = {src: set() for src in range(n)}
        for src, part in zip(sources, parts, strict=True):
            for j, tent in enumerate(part.tentative):
                if tent and part.keys[j] in visited and part.keys[j] not in this_layer:
                    flagged[src].add(part.codes[j] // a2)
        out = [_Batch() for _ in range(n)]
        for dst in range(n):
            out[dst].flags = sorted(flagged[dst])
        got = self._exchange((r, 1), out, "")
        parents = set(flagged[w])
        for m in got.values():
            parents.update(_Batch.decode(m[1], self.codec.width).flags)
        extra = [_Batch() for _ in range(n)]
        a1 = self.a1
        crc = zlib.crc32
        for gid in sorted(parents):
            more = rest[gid]
            self.transitions += len(more)
            for aid, k, _t, key, b in more:
                extra[crc(key) % n].add(key, key if b is None else b,
                                        gid * a2 + k * a1 + aid, 0)
        got = self._exchange((r, 2), extra, "")
        return [extra[w]] + [_Batch.decode(m[1], self.codec.width) for m in got.values()]

    def _exchange(self, tag: tuple[int, int], out: list[_Batch],
                  stop: str) -> dict[int, tuple[str, Any]]:
        """Send each other worker its batch; receive theirs: {source: (stop, data)}."""
        for dst in range(self.n):
            if dst != self.w:
                self.job.inboxes[dst].put((tag, self.w, stop, out[dst].encode()))
        got: dict[int, tuple[str, Any]] = {}
        while len(got) < self.n - 1:
            msg = self._receive(tag)
            got[msg[1]] = (msg[2], msg[3])
        return dict(sorted(got.items()))

    def _dedupe(self, parts: list[_Batch], unpack: Callable[[Any], State],
                finished: Callable[[State], bool]) -> None:
        """Keep, in discovery order, the first candidate of every new key."""
        keys: list[bytes] = []
        conc: list[bytes] = []
        codes = array("q")
        for part in parts:
            keys += part.keys
            conc += part.conc
            codes += part.codes
        if not keys:
            return
        order = np.argsort(np.frombuffer(codes, dtype=np.int64), kind="stable").tolist()
        visited = self.visited
        add = visited.add
        add_layer = self.this_layer.add if self.por is not None else None
        new_conc = self.new_conc
        napp = new_conc.append
        capp = self.new_codes.append
        invariants, finals, found = self.invariants, self.finals, self.found
        for j in order:
            key = keys[j]
            if key in visited:
                continue
            add(key)
            if add_layer is not None:
                add_layer(key)
            cb = conc[j]
            napp(cb)
            capp(codes[j])
            if invariants or finals:
                st = unpack(cb)
                for name, f in invariants:
                    if name not in found and not f(st):
                        found[name] = len(new_conc) - 1
                if finals and finished(st):
                    for name, f in finals:
                        if name not in found and not f(st):
                            found[name] = len(new_conc) - 1

    def _receive(self, tag: tuple[int, int]) -> Any:
        """The next message with this (round, phase) tag; others are kept for later."""
        stash = self.pending.get(tag)
        if stash:
            return stash.pop(0)
        while True:
            msg = self.job.inboxes[self.w].get()
            if msg[0] == tag:
                return msg
            self.pending.setdefault(msg[0], []).append(msg)

class _Batch:
    """Candidates bound for one owner in one exchange (or proviso flags for a source)."""

    __slots__ = ("keys", "conc", "codes", "tentative", "distinct", "flags")

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.conc: list[bytes] = []
        self.codes = array("q")
        self.tentative = array("b")
        self.distinct = False
        self.flags: list[int] = []

    def add(self, key: bytes, conc: bytes, code: int, tentative: int) -> None:
        self.keys.append(key)
        self.conc.append(conc)
        if conc is not key:
            self.distinct = True
        self.codes.append(code)
        self.tentative.append(tentative)

    def encode(self) -> tuple[bytes, bytes | None, bytes, bytes, list[int]]:
        distinct = self.distinct and any(c is not k for c, k in zip(self.conc, self.keys,
                                                                     strict=True))
        return (b"".join(self.keys), b"".join(self.conc) if distinct else None,
                self.codes.tobytes(), self.tentative.tobytes(), self.flags)

    @staticmethod
    def decode(data: tuple[bytes, bytes | None, bytes, bytes, list[int]], width: int) -> _Batch:
        b = _Batch()
        kb, cb, codes, tent, flags = data
        b.keys = [kb[i:i + width] for i in range(0, len(kb), width)]
        b.conc = b.keys if cb is None else [cb[i:i + width] for i in range(0, len(cb), width)]
        b.codes.frombytes(codes)
        b.tentative.frombytes(tent)
        b.flags = flags
        return b


__all__ = ["BlockStates", "WorkerError", "explore_parallel"]
