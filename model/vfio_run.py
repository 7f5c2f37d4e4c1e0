"""Running the VFIO pinning model: configuration, fault plans, properties, outcomes.

``VfioRun(config, faults)`` builds the simulated mm, the vfio_dma and the threads (the
MAP_DMA caller is thread 0; padata's kworkers get ids 1..threads-1 as they are queued)
and runs them with ``model.schedule``. After every step it evaluates the properties the
spec checks, with the same names:

- ``overaccount_bound``: locked_vm - (initial + accountable pages pinned) <= threads x
  cache, where pages a thread has unpinned and is about to uncharge in the same kernel
  step still count as pinned (the step is atomic in the spec);
- ``rlimit``: unless CAP_IPC_LOCK, locked_vm <= max(RLIMIT_MEMLOCK, initial locked_vm);
- ``no_spurious_enomem``: no pin failed with RLIMIT_MEMLOCK's -ENOMEM while the initial
  locked_vm plus every page of the range that needs accounting fits under the limit;
- at the end, ``no_leak``: locked_vm == initial + accountable pages still pinned;
- ``no_deadlock``: the run did not end with every unfinished thread blocked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from model.mm import MmStruct, PageKind, Task, parse_layout
from model.padata import PadataMtJobState, PadataWork, padata_mt_helper
from model.schedule import ModelThread, RunLog, Scheduler, ThreadId
from model.vfio import Ctx, FaultPlan, NoFaults, Thread, VfioDma, VfioIommu, vfio_pin_map_dma
from model.vfio_variants import variant

PROPERTIES = ("no_leak", "overaccount_bound", "no_spurious_enomem", "rlimit", "no_deadlock")
SIGKILL = "sigkill"


@dataclass(frozen=True)
class VfioConfig:
    """One MAP_DMA: sizes in pages, like the spec's parameters."""

    variant: str = "fixed"
    threads: int = 2
    chunks: int = 2
    chunk_pages: int = 2
    cache_pages: int = 1
    batch_pages: int = 2
    limit_pages: int = 3
    initial_locked: int = 1
    lock_cap: bool = False
    layout: str = "NNNN"
    unpin_drawn_step: bool = False  # see Ctx.unpin_drawn_step

    def validate(self) -> None:
        """ValueError naming the first bad field."""
        variant(self.variant)
        for name in ("threads", "chunks", "chunk_pages", "cache_pages", "batch_pages"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.chunks < self.threads:
            raise ValueError("chunks must be at least threads (padata makes one chunk per "
                             "helper at least)")
        if self.initial_locked < 0 or self.limit_pages < 0:
            raise ValueError("limit_pages and initial_locked must be non-negative")
        pages = parse_layout(self.layout)
        if len(pages) != self.chunks * self.chunk_pages:
            raise ValueError(f"the layout has {len(pages)} pages, the mapping "
                             f"{self.chunks} x {self.chunk_pages}")

    @property
    def pages(self) -> int:
        return self.chunks * self.chunk_pages

    @property
    def bound(self) -> int:
        return self.threads * self.cache_pages


@dataclass
class StepFaults:
    """Faults at given scheduler steps (what a spec trace's choices say)."""

    map_fail_steps: frozenset[int] = frozenset()
    contended_steps: frozenset[int] = frozenset()

    def iommu_map_fails(self, tid: int, step: int) -> bool:
        return step in self.map_fail_steps

    def mmap_lock_contended(self, tid: int, step: int) -> bool:
        return step in self.contended_steps


@dataclass
class RandomFaults:
    """Seeded random faults for fuzzing: each map fails / each acquisition is contended
    with the given probability."""

    seed: int
    p_map_fail: float = 0.0
    p_contended: float = 0.0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def iommu_map_fails(self, tid: int, step: int) -> bool:
        return self.rng.random() < self.p_map_fail

    def mmap_lock_contended(self, tid: int, step: int) -> bool:
        return self.rng.random() < self.p_contended


@dataclass
class Outcome:
    """What a run ended with."""

    violated: set[str]
    first_violation: dict[str, int]  # property -> step index where it first failed
    locked_vm: int
    acc_pinned: int
    ret: int | None
    finished: bool
    metrics: dict[str, int]
    log: RunLog
    pins_left: int
    mapped_left: int

    def final(self) -> dict[str, Any]:
        """Values named like the spec's trace variables."""
        return {"locked_vm": self.locked_vm, "acc_pinned": self.acc_pinned}


class VfioRun:
    """One MAP_DMA ioctl on the model, ready to run along an interleaving."""

    def __init__(self, config: VfioConfig, faults: FaultPlan | None = None) -> None:
        config.validate()
        self.config = config
        self.mm = MmStruct.from_layout(config.layout, config.initial_locked,
                                       config.limit_pages)
        caller = Task(0, killable=True)
        self.mm.tasks[0] = caller
        pfn_list = {p.index for p in self.mm.pages if p.kind is PageKind.PINNED}
        self.dma = VfioDma(0, 0, 0, caller, config.lock_cap, pfn_list)
        self.ctx = Ctx(variant(config.variant), self.mm, VfioIommu(), self.dma,
                       config.cache_pages, config.batch_pages, faults or NoFaults(),
                       unpin_drawn_step=config.unpin_drawn_step)
        self.violated: dict[str, int] = {}
        self.result: list[int] = []
        self.sched = Scheduler({}, {SIGKILL: self._sigkill}, self._observe)
        self.ctx.clock = lambda: self.sched.step_index
        main = Thread(0, caller)
        self.sched.spawn(0, self._ioctl(main))

    # -- threads ------------------------------------------------------------------------

    def _ioctl(self, t: Thread) -> ModelThread:
        """The MAP_DMA caller: vfio_dma_do_map -> vfio_pin_map_dma."""
        cfg = self.config
        ret = yield from vfio_pin_map_dma(self.ctx, t, self.dma, cfg.pages, cfg.chunk_pages,
                                          cfg.threads, self._queue_work)
        self.result.append(ret)

    def _queue_work(self, ps: PadataMtJobState) -> None:
        tid = len(self.sched.threads)
        task = Task(tid, killable=False)
        self.mm.tasks[tid] = task
        self.sched.spawn(tid, padata_mt_helper(Thread(tid, task), ps, PadataWork(tid)))

    def _sigkill(self) -> None:
        self.mm.tasks[0].fatal_signal = True

    # -- properties ---------------------------------------------------------------------

    def excess(self) -> int:
        """locked_vm - (initial + accountable pages pinned, pending uncharges included)."""
        held = self.mm.accountable_pinned() + sum(self.ctx.pending_release.values())
        return self.mm.locked_vm - (self.config.initial_locked + held)

    def _observe(self, who: ThreadId, label: str, step: int) -> None:
        cfg, mm = self.config, self.mm
        bad = []
        if self.excess() > cfg.bound:
            bad.append("overaccount_bound")
        if not cfg.lock_cap and mm.locked_vm > max(cfg.limit_pages, cfg.initial_locked):
            bad.append("rlimit")
        if (self.ctx.rlimit_enomem and not cfg.lock_cap
                and cfg.initial_locked + mm.accountable_total() <= cfg.limit_pages):
            bad.append("no_spurious_enomem")
        if self.sched.all_finished() and mm.locked_vm != cfg.initial_locked + \
                mm.accountable_pinned():
            bad.append("no_leak")
        for name in bad:
            self.violated.setdefault(name, step)

    # -- running ------------------------------------------------------------------------

    def run_steps(self, schedule: list[ThreadId], labels: list[str | None] | None = None
                  ) -> Outcome:
        """Follow a step-level interleaving (thread ids and ``"sigkill"``)."""
        self.sched.run_steps(schedule, labels)
        return self.outcome()

    def run_random(self, seed: int, p_sigkill: float = 0.0) -> Outcome:
        """Run to the end along a seeded random fine-grained interleaving."""
        def events(rng: random.Random, tick: int) -> str | None:
            if not self.mm.tasks[0].fatal_signal and rng.random() < p_sigkill:
                return SIGKILL
            return None

        log = self.sched.run_random(seed, events=events if p_sigkill else None)
        if log.deadlock:
            self.violated.setdefault("no_deadlock", self.sched.step_index)
        return self.outcome()

    def outcome(self) -> Outcome:
        mm = self.mm
        stats = mm.mmap_lock.stats
        metrics = {
            "mmap_write_acquisitions": stats.write_acquisitions,
            "mmap_read_acquisitions": stats.read_acquisitions,
            "pages_pinned": mm.pages_pinned,
            "refills": self.ctx.metrics.refills,
            "lock_acct_calls": self.ctx.metrics.lock_acct_calls,
            "iommu_maps": self.ctx.metrics.iommu_maps,
        }
        return Outcome(set(self.violated), dict(self.violated), mm.locked_vm,
                       mm.accountable_pinned(), self.result[0] if self.result else None,
                       self.sched.all_finished(), metrics, self.sched.log,
                       sum(p.pinned for p in mm.pages),
                       sum(1 for p in mm.pages if p.iommu_mapped))
