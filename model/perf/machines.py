"""Machine descriptions (machines.json) and the per-page costs derived from their baselines.

A machine is what a user can write down without running the patched kernel: topology,
clock, memory channels, and single-thread pin times of the base kernel for each backing
with and without QEMU's prealloc threads (``qthr``). The per-page costs are the slopes of
pin time against pages pinned (least squares through the origin), so one entry serves
any guest size. The largest pin QEMU does is the RAM above 4 GiB: ``mem - lowmem_gib``
(the published baselines are proportional to that size, not to ``mem``, to within their
rounding).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

PAGE_SIZE = 4096
PAGES_PER_GIB = (1 << 30) // PAGE_SIZE
BACKINGS = ("hugetlb", "thp")


class MachineError(ValueError):
    """A machine entry that cannot be used (unknown name, missing field, bad value)."""


@dataclass(frozen=True)
class PerPage:
    """Single-thread cost of one 4 KiB page, seconds: already faulted, and faulted by GUP."""

    faulted: float
    unfaulted: float

    @property
    def fault(self) -> float:
        """What faulting the page in adds (allocation and zeroing)."""
        return max(self.unfaulted - self.faulted, 0.0)


@dataclass(frozen=True)
class IdleState:
    """A CPU idle state as the cpuidle driver lists it (intel_idle's tables), seconds."""

    name: str
    exit_latency: float
    target_residency: float


@dataclass(frozen=True)
class Machine:
    """One machine: topology, memory system and per-page single-thread costs."""

    name: str
    sockets: int
    cores_per_socket: int
    threads_per_core: int
    clock_ghz: float
    memory_channels_per_socket: int
    memory_mts: int
    lowmem_gib: float
    per_page: dict[str, PerPage]
    deep_idle: IdleState | None = None
    """The deepest CPU idle state the cpuidle driver offers (None: not described)."""

    @property
    def memory_bandwidth(self) -> float:
        """Peak DRAM bandwidth of all sockets, bytes/s (channels x transfers x 8 bytes)."""
        return self.sockets * self.memory_channels_per_socket * self.memory_mts * 1e6 * 8

    @property
    def cpus(self) -> int:
        return self.sockets * self.cores_per_socket * self.threads_per_core

    def pinned_pages(self, mem_gib: float) -> int:
        """4 KiB pages in the largest pin of a ``mem_gib`` guest."""
        return max(int(round((mem_gib - self.lowmem_gib) * PAGES_PER_GIB)), 0)


def derive_per_page(baselines: list[dict[str, Any]], lowmem_gib: float) -> dict[str, PerPage]:
    """Slope of pin_s over pinned pages, per backing and faulted/unfaulted."""
    out: dict[str, PerPage] = {}
    for backing in BACKINGS:
        slopes: dict[bool, float] = {}
        for faulted in (False, True):
            rows = [b for b in baselines
                    if b["backing"] == backing and (int(b["qthr"]) > 0) == faulted]
            if not rows:
                raise MachineError(f"no {backing} baseline with qthr {'>0' if faulted else '0'}")
            xs = [(float(b["mem_gib"]) - lowmem_gib) * PAGES_PER_GIB for b in rows]
            ys = [float(b["pin_s"]) for b in rows]
            if min(xs) <= 0:
                raise MachineError("a baseline guest is not larger than lowmem_gib")
            slopes[faulted] = sum(x * y for x, y in zip(xs, ys, strict=True)) / sum(
                x * x for x in xs)
        out[backing] = PerPage(faulted=slopes[True], unfaulted=slopes[False])
    return out


def _idle_state(entry: dict[str, Any] | None) -> IdleState | None:
    if entry is None:
        return None
    state = IdleState(str(entry["name"]), float(entry["exit_latency_us"]) * 1e-6,
                      float(entry["target_residency_us"]) * 1e-6)
    if state.exit_latency <= 0 or state.target_residency <= 0:
        raise MachineError(f"idle state {state.name}: latency and residency must be positive")
    return state


def _machine(name: str, entry: dict[str, Any]) -> Machine:
    try:
        lowmem = float(entry.get("lowmem_gib", 2))
        if "baselines" in entry:
            per_page = derive_per_page(entry["baselines"], lowmem)
        else:
            per_page = {b: PerPage(entry["per_page_ns"][b]["faulted"] * 1e-9,
                                   entry["per_page_ns"][b]["unfaulted"] * 1e-9)
                        for b in BACKINGS}
        m = Machine(name, int(entry["sockets"]), int(entry["cores_per_socket"]),
                    int(entry["threads_per_core"]), float(entry["clock_ghz"]),
                    int(entry["memory_channels_per_socket"]), int(entry["memory_mts"]),
                    lowmem, per_page, _idle_state(entry.get("deep_idle")))
    except (KeyError, TypeError) as e:
        raise MachineError(f"machine {name!r}: missing or bad field {e}") from None
    if min(m.sockets, m.cores_per_socket, m.threads_per_core, m.memory_channels_per_socket,
           m.memory_mts) < 1 or m.clock_ghz <= 0:
        raise MachineError(f"machine {name!r}: counts and clock must be positive")
    return m


def load_machines(path: Path | None = None) -> dict[str, Machine]:
    """Every machine of ``path`` (default: the packaged machines.json)."""
    if path is None:
        text = resources.files("model.perf").joinpath("machines.json").read_text()
    else:
        text = path.read_text()
    data = json.loads(text)
    return {name: _machine(name, entry) for name, entry in data["machines"].items()}


def machine(name: str, path: Path | None = None) -> Machine:
    """The named machine; MachineError listing the known names otherwise."""
    machines = load_machines(path)
    if name not in machines:
        raise MachineError(f"unknown machine {name!r}; known: {', '.join(sorted(machines))}")
    return machines[name]
