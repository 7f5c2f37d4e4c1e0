"""The native explorer: the breadth-first search compiled to C, with the same results.

`--native` generates C for the spec (`checker.cgen`: successors, checked properties,
state packing, symmetry canonicalisation), compiles it with the system C compiler into a
shared library cached under ~/.cache/mmcheck, and runs the search loop of
`checker.explore._explore` there (`native_bfs.c`). It is the Python engine's loop
translated, not a different algorithm: the same action ids and successor order, the
same state ids, parents and actions, the same violations, deadlock, cycle proviso for
partial-order reduction and stop rules (tests/checker/test_native.py compares them state
for state on every spec and variant). Only the speed differs. Limits, progress and
Ctrl-C are handled between slices of the search, in Python.

Out of scope (the Python engine is used, or the run is refused with a clear message):
several workers, specs whose values need more than 62 bits.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import weakref
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from checker.cgen import Unsupported, c_source
from checker.compile import Compiled
from checker.explore import (
    CHECK_EVERY,
    Exploration,
    Limits,
    PackedStates,
    Progress,
    Reductions,
    StateCodec,
    StateSequence,
    Stats,
    check_expr,
    limit_reached,
    peak_rss_mib,
    property_checks,
)

MM_MORE, MM_DONE, MM_ERROR, MM_LIMIT, MM_ALLVIOL, MM_DEPTH, MM_NOMEM = range(7)
SLICE = 4 * CHECK_EVERY  # states expanded per call into C between limit checks


class NativeUnavailable(Exception):
    """No C compiler, or the spec needs what the C engine does not do."""


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmcheck" / "native"


def build(source: str) -> Path:
    """Compile the C source to a shared library (cached by content hash)."""
    wanted = os.environ.get("CC")
    cc = shutil.which(wanted) if wanted else (shutil.which("cc") or shutil.which("gcc"))
    if cc is None:
        raise NativeUnavailable("--native needs a C compiler (cc or gcc on PATH, or $CC)"
                                + (f"; $CC={wanted!r} is not one" if wanted else ""))
    opt = os.environ.get("MMCHECK_NATIVE_OPT", "-O2")
    digest = hashlib.sha256((opt + source).encode()).hexdigest()[:24]
    out = _cache_dir() / f"mm_{digest}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "model.c"
        src.write_text(source)
        lib = Path(tmp) / "model.so"
        r = subprocess.run([cc, *opt.split(), "-shared", "-fPIC", "-o", str(lib), str(src)],
                           capture_output=True, text=True, check=False)
        if r.returncode != 0:
            first = (r.stderr.strip().splitlines() or ["(no output)"])[0]
            raise NativeUnavailable(f"the C compiler failed: {first}")
        part = out.with_suffix(f".{os.getpid()}.part")
        shutil.copyfile(lib, part)
        os.replace(part, out)
    return out


class _Rows(Sequence[bytes]):
    """Fixed-width packed states in C memory taken over by Python."""

    def __init__(self, owned: _Owned, width: int) -> None:
        self.owned, self.data, self.width = owned, owned.view, width

    def __len__(self) -> int:
        return len(self.data) // self.width

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        w = self.width
        return self.data[i * w:(i + 1) * w]


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    i64, i32 = ctypes.c_int64, ctypes.c_int
    lib.mm_init.restype = i32
    lib.mm_init.argtypes = [ctypes.POINTER(ctypes.c_int64), i64, i32, i32, i32, i32, i32,
                            ctypes.c_void_p, ctypes.c_void_p]
    lib.mm_run.restype = i32
    lib.mm_run.argtypes = [i64]
    for name in ("mm_count", "mm_transitions", "mm_deadlock", "mm_errstate"):
        getattr(lib, name).restype = i64
    lib.mm_violation.restype = i64
    lib.mm_violation.argtypes = [i32]
    lib.mm_depth.restype = i32
    lib.mm_release.restype = None
    lib.mm_nperms.restype = i32
    lib.mm_unkey.restype = None
    lib.mm_unkey.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64)]
    for name in ("mm_keys", "mm_perms"):
        getattr(lib, name).restype = ctypes.c_void_p
    lib.mm_width.restype = i32
    for name in ("mm_states", "mm_parents", "mm_actions"):
        getattr(lib, name).restype = ctypes.c_void_p
    return lib


def explore_native(compiled: Compiled, properties: list[str] | None, limits: Limits,
                   progress: Progress | None, stop_when_all_violated: bool,
                   reductions: Reductions) -> Exploration:
    """`checker.explore._explore`, run in C (see the module docstring)."""
    t0 = time.monotonic()  # statistics include generating and compiling the C
    checks = property_checks(compiled, properties)
    flat = compiled.flat
    codec = StateCodec(compiled)
    if not codec.packed:
        raise NativeUnavailable("--native: a domain does not fit 64 bits")
    inv = [(n, check_expr(flat, n)) for n, _ in checks.invariants]
    fin = [check_expr(flat, n) for n, _ in checks.finals]
    sym = reductions.symmetry
    classes = [c.rows for c in sym.classes] if sym is not None and sym.active else []
    por = reductions.por if reductions.por is not None and reductions.por.active else None
    try:
        src = c_source(compiled, inv, fin, codec.codes, classes)
    except Unsupported as e:
        raise NativeUnavailable(f"--native: {e}") from e
    lib = _load(build(src))
    built = time.monotonic() - t0
    init = (ctypes.c_int64 * len(compiled.initial))(*compiled.initial)
    n_act = max(len(compiled.actions), 1)
    safe = (ctypes.c_int8 * n_act)(*(por.safe if por else [0] * n_act))
    proc = (ctypes.c_int32 * n_act)(*(por.proc if por else [0] * n_act))
    max_states = limits.max_states if limits.max_states is not None else 1 << 62
    max_depth = limits.max_depth if limits.max_depth is not None else -1
    status = lib.mm_init(init, max_states, max_depth, int(checks.deadlock is not None),
                         int(stop_when_all_violated), checks.count, int(por is not None),
                         safe, proc)
    ex = Exploration(compiled, [], None, array("i"), array("i"), reductions=reductions,
                     canonical=sym.canonicalizer() if classes and sym is not None else None,
                     build_seconds=built)
    deadline = None if limits.max_seconds is None else t0 + limits.max_seconds
    last = t0
    try:
        while status == MM_MORE:
            status = lib.mm_run(SLICE)
            now = time.monotonic()
            if status != MM_MORE:
                break
            stop = limit_reached(limits, deadline, now)
            if stop:
                ex.stop_reason = stop
                break
            if progress is not None and now - last > 0.2:
                last = now
                progress(Stats(lib.mm_count(), lib.mm_transitions(), lib.mm_depth(),
                               now - t0, peak_rss_mib()))
    except KeyboardInterrupt:
        ex.stop_reason = "interrupted (Ctrl-C)"
    try:
        return _collect(lib, ex, compiled, codec, checks, status, limits, t0)
    finally:
        lib.mm_free()


class _Owned:
    """C memory handed over to Python, freed with the last reference."""

    _free = ctypes.CDLL(None).free
    _free.argtypes = [ctypes.c_void_p]

    def __init__(self, ptr: int | None, size: int) -> None:
        self.ptr = ptr
        self.view = (memoryview((ctypes.c_char * size).from_address(ptr)).cast("B")
                     if ptr and size else memoryview(b""))
        if ptr:
            weakref.finalize(self, self._free, ptr)


def _collect(lib: ctypes.CDLL, ex: Exploration, compiled: Compiled, codec: StateCodec,
             checks: Any, status: int, limits: Limits, t0: float) -> Exploration:
    """Hand the C results to an Exploration (no copy: the arrays are taken over)."""
    count, width, nperms = lib.mm_count(), lib.mm_width(), lib.mm_nperms()
    parents = _Owned(lib.mm_parents(), count * 4)
    actions = _Owned(lib.mm_actions(), count * 4)
    if nperms:
        keys = _Owned(lib.mm_keys(), count * width)
        perms = _Owned(lib.mm_perms(), count * nperms)
        lib.mm_release()
        ex.states = _KeyedStates(lib, keys, perms, width, nperms, len(compiled.initial))
    else:
        states = _Owned(lib.mm_states(), count * width)
        lib.mm_release()
        ex.states = PackedStates(_Rows(states, width), codec.unpack)
    ex.parent = _Ints(parents, count)  # type: ignore[assignment]
    ex.action = _Ints(actions, count)  # type: ignore[assignment]
    if status == MM_ERROR:
        _reraise(compiled, checks, ex.states[lib.mm_errstate()])
    if status == MM_NOMEM:
        raise MemoryError("--native: out of memory")
    names = [n for n, _ in checks.invariants] + [n for n, _ in checks.finals]
    found = sorted((lib.mm_violation(k), n) for k, n in enumerate(names)
                   if lib.mm_violation(k) >= 0)
    deadlock = lib.mm_deadlock()
    if deadlock >= 0 and checks.deadlock is not None:
        ex.deadlock = deadlock
        found.append((deadlock, checks.deadlock))
    for sid, name in sorted(found):
        ex.violations.setdefault(name, sid)
    if status == MM_DONE:
        ex.complete = True
    elif status == MM_LIMIT:
        ex.stop_reason = f"state limit {limits.max_states}"
    elif status == MM_DEPTH:
        ex.stop_reason = f"depth limit {limits.max_depth}"
    elif status == MM_ALLVIOL:
        ex.stop_reason = "every property already violated"
    ex.stats = Stats(count, lib.mm_transitions(), lib.mm_depth(), time.monotonic() - t0,
                     peak_rss_mib())
    return ex


class _KeyedStates(StateSequence):
    """States stored as their symmetry key and the permutation that sorted their rows:
    the concrete state is rebuilt by the C `unkey` on access."""

    def __init__(self, lib: ctypes.CDLL, keys: _Owned, perms: _Owned, width: int,
                 nperms: int, nslots: int) -> None:
        self.lib, self.keys, self.perms = lib, keys, perms
        self.width, self.nperms = width, nperms
        self.n = len(keys.view) // width if width else 0
        self.out = (ctypes.c_int64 * nslots)()

    def __len__(self) -> int:
        return self.n

    def _get(self, i: int) -> tuple[int, ...]:
        self.lib.mm_unkey(ctypes.c_void_p(self.keys.ptr + i * self.width),
                          ctypes.c_void_p(self.perms.ptr + i * self.nperms), self.out)
        return tuple(self.out)


class _Ints(Sequence[int]):
    """int32 values in C memory taken over by Python (parents, actions)."""

    def __init__(self, owned: _Owned, count: int) -> None:
        self.owned = owned
        self.values = owned.view.cast("i") if count else memoryview(array("i"))

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: Any) -> Any:
        return self.values[i] if not isinstance(i, slice) else list(self.values[i])


def _reraise(compiled: Compiled, checks: Any, state: tuple[int, ...]) -> None:
    """The C code flagged a runtime error at this state: raise the Python engine's error."""
    compiled.successors(state)
    for _, f in checks.invariants + checks.finals:
        f(state)
    compiled.finished(state)
    raise RuntimeError("the native engine flagged an error the Python engine does not see")


__all__ = ["NativeUnavailable", "build", "explore_native"]
