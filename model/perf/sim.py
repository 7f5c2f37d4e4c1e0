"""Discrete-event timing of the reference implementation (simpy).

Every model thread of ``model/vfio.py`` (the MAP_DMA caller running vfio_pin_map_dma and
padata_do_multithreaded, and one padata_mt_helper per queued kworker) runs as a simpy
process. The process advances its generator to the next scheduling point, then holds
simulated time for the work done in that segment, priced from the model's own counters
(``mm.pages_pinned``, ``ctx.metrics.iommu_maps``, ``mm.account_calls``) and the step
label: see ``costs.py``. Each vfio_iommu_map call maps one huge page (a run of RUN_UNITS
units) whose pages vfio_pin_pages_remote's loop has just gone over, so the loop and the
map are priced per call: both sit between the writer's up_write and the next GUP. No
part of the algorithm is re-implemented here: which lock is taken when, how the cache is
refilled, drawn and released, and how padata hands out chunks is whatever the model code
does.

Because a segment's time is held *after* its yield, work ends up on the right side of the
locks: the segment that ends at ``Point("mmap_lock read")`` took the reader and pinned the
batch, so the batch's GUP (and fault) time is spent holding the reader; the write-side
critical section likewise; vfio_iommu_map's time is spent before the next lock attempt.

Waiting follows the rwsem twin (``model/rwsem.py``): a thread whose poll reports WAIT
sleeps until the twin says it can succeed (it was granted the read lock by
rwsem_mark_wake, or it is the head writer and the lock is free), then takes a wake-up
latency before it polls again, which is the window in which a newcomer can steal the
lock. The twin leaves out RWSEM_FLAG_HANDOFF (it only removes interleavings, so the
checker does not need it), but it bounds how long a writer can be overtaken, so the
timing layer applies it: once the head writer has waited RWSEM_WAIT_TIMEOUT, threads about
to take mmap_lock are held back until that writer got it.

A sleeping waiter's CPU idles. If the menu governor's prediction from that CPU's recent
idle periods reaches the target residency of the machine's deepest idle state (C6 on
Skylake-SP), the CPU enters it and the wake-up takes the state's exit latency on top
(``_enters_deep_idle``). Long sleeps thus get longer wake-ups, which leave the lock free
for a stealing reader: the regime the published cache-0 rows show from 16 threads on.

Writers spin before they sleep (rwsem_optimistic_spin, v5.16): a writer whose trylock fails
keeps spinning on its CPU for as long as a writer owns the lock, and for
rwsem_rspin_threshold, (20 + readers) / 2 us, once readers own it; then it queues. The twin
queues a writer at once, so while it spins the timing layer takes it back off the wait list
(``_unqueue``), which is the kernel's state: no RWSEM_FLAG_WAITERS, readers keep the fast
path. The spinner retries the twin when the lock is free and takes it with no wake-up
latency. Abstracted: the osq (all spinners retry, the twin lets the first one in) and
RWSEM_NONSPINNABLE (each writer keeps its own reader limit), and the reader grant the twin
does when it queues a writer behind readers (rwsem_down_write_slowpath's
RWSEM_WAKE_READERS) still happens on the first failed attempt.

The lock's cache line follows its user (``_line``, kernel/locking/rwsem.c, v5.14): count,
owner, the osq tail and wait_lock share one line (struct rw_semaphore is 40 bytes), and
an access costs a transfer (``line``, FIFO) only when another CPU touched the line since
this CPU did, or when a spinning writer polls it: rwsem_spin_on_owner reads sem->owner in
a loop, so the holder's next access must take the line back. The slow paths' extra
accesses are charged the same way: a task that queues takes wait_lock and updates the
count (2); rwsem_wake takes wait_lock and grants readers with two atomics (1 or 3); a
woken writer takes wait_lock and tries the cmpxchg (2), a woken reader was granted by
its waker and touches nothing; a spinner enters and leaves the osq (1 + 1). Without a
spinner these follow the task's own access and hit its cache; with spinners every one is
a transfer. So a contended handoff costs several transfers where an uncontended lock
operation costs none. One thread alone never moves the line, so the base kernel pays no
transfers.

GUP follows each page under the lock of its PMD table (``_pmd_wait``): helpers whose
chunks lie in the same 1 GiB of address space take turns there. It only matters when the
job is small enough that padata's chunks are under 1 GiB (the 16G guests), as the RFC's
author reports ("there's some contention on pmd lock").

Scale: 1 model page = 1 unit of 256 base pages, a batch is 2 units (512 pages) and a huge
page 2 units, see ``costs.py``. Real huge pages are physically contiguous only within
themselves, so the layout given to model.mm has a hole (``|``) after every huge page
(``hugepage_layout``): each vfio_pin_pages_remote call ends at a huge page boundary, as
on the measured systems (where successive huge pages are rarely physically adjacent).

Large jobs are simulated up to a budget of units and the rest is extrapolated at the rate
measured over the second half of the simulated part (``TimedRun.run``); every reported
result says whether it was extrapolated. A simulated window keeps the whole job's chunk
size (``Workload.job_units``), so the helpers start as far apart as in the kernel.
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from model.mm import MmStruct, Task
from model.padata import PadataMtJobState, PadataWork, padata_mt_helper
from model.perf.costs import BATCH_UNITS, RUN_UNITS, UNIT_PAGES, UnitCosts
from model.rwsem import WRITE, RwsemWaiter
from model.schedule import Blocked, Point, Step
from model.vfio import Ctx, NoFaults, Thread, VfioDma, VfioIommu, vfio_pin_map_dma
from model.vfio_variants import variant

MIN_CHUNK_UNITS = (128 << 20) // (UNIT_PAGES * 4096)
"""The RFC's padata min_chunk for VFIO, 128M, in units."""
LOAD_BALANCE_FACTOR = 4
PMD_TABLE_UNITS = (1 << 30) // (UNIT_PAGES * 4096)
"""One PMD table maps PTRS_PER_PMD (512) huge pages, 1 GiB: the reach of one pmd lock."""
RSPIN_MAX_READERS = 30
"""rwsem_rspin_threshold caps the readers it counts at 30 (a 25 us limit)."""
TICK_PERIOD = 1e-3
"""HZ=1000: the scheduler tick the menu governor keeps when it expects a short idle."""
IDLE_HISTORY = 8
"""menu's INTERVALS: the governor predicts from a CPU's last 8 idle periods."""
LOCK_STEPS = frozenset({"gup", "out", "refill", "release"})
"""Step labels after which the thread's next action is an mmap_lock acquisition."""


def hugepage_layout(units: int, run: int = RUN_UNITS) -> str:
    """A model.mm layout of ``units`` normal pages with a physical hole after each run."""
    full, rest = divmod(units, run)
    return ("N" * run + "|") * full + "N" * rest


def padata_chunk_units(units: int, max_threads: int, align_units: int = RUN_UNITS) -> int:
    """padata_do_multithreaded's chunk size for the VFIO job, in units.

    nworks = min(size / min_chunk, max_threads); chunk = max(size / (nworks * 4),
    min_chunk) rounded up to the alignment (the RFC aligns to the huge page here).
    """
    nworks = max(min(units // MIN_CHUNK_UNITS, max_threads), 1)
    if nworks == 1:
        return max(units, 1)
    chunk = max(units // (nworks * LOAD_BALANCE_FACTOR), MIN_CHUNK_UNITS)
    return -(-chunk // align_units) * align_units


@dataclass(frozen=True)
class Workload:
    """One MAP_DMA: its size in units, padata threads (0: base kernel) and cache pages."""

    units: int
    threads: int
    cache_pages: int
    patch: str = "seed"
    """The test kernel's variant (model/vfio_variants.py): the RFC as posted, or "fixed"."""
    job_units: int = 0
    """The whole MAP_DMA when only its start is simulated (0: ``units`` is the whole job).

    With helpers, padata's chunk size is the whole job's, so they start as far apart as
    they do in the kernel (which PMD tables they share depends on it)."""

    def validate(self) -> None:
        if self.units < 1:
            raise ValueError("the pin must cover at least one 2 MiB unit")
        if self.threads < 0:
            raise ValueError("threads must be >= 0")
        if self.cache_pages < 0:
            raise ValueError("cache pages must be >= 0")
        if self.job_units and self.threads > 1 and \
                self.units < min(self.job_units, self.threads * self.chunk_units):
            raise ValueError("a window must hold one chunk of the whole job per helper")

    @property
    def variant(self) -> str:
        """The base kernel has no cache (upstream); the test kernel runs ``patch``."""
        return "upstream" if self.threads == 0 else self.patch

    @property
    def chunk_units(self) -> int:
        """padata_do_multithreaded's chunk for the whole job."""
        if self.threads > 1 and self.job_units:
            return padata_chunk_units(self.job_units, self.threads)
        return padata_chunk_units(self.units, max(self.threads, 1))

    @property
    def cache_units(self) -> int:
        """LOCKED_VM_CACHE_PAGES in units, rounded up (a partial unit is drawn whole)."""
        return -(-self.cache_pages // UNIT_PAGES)


@dataclass
class RunTiming:
    """What one timed run reports."""

    pin_s: float
    simulated_units: int
    extrapolated: bool
    metrics: dict[str, int] = field(default_factory=dict)
    events: int = 0
    window_s: float = 0.0
    rate: float = 0.0

    def pin_s_for(self, units: int) -> float:
        """The same window extrapolated to a job of ``units`` (identical below the window)."""
        if not self.extrapolated:
            return self.pin_s
        return self.window_s + (units - self.simulated_units) / self.rate


class TimedRun:
    """One MAP_DMA on the reference implementation, timed by simpy."""

    def __init__(self, work: Workload, costs: UnitCosts, seed: int = 1,
                 budget_units: int | None = None) -> None:
        work.validate()
        self.work = work
        self.costs = costs
        self.rng = random.Random(seed)
        self.budget = work.units if budget_units is None else min(budget_units, work.units)
        self.env = simpy.Environment()
        self.mm = MmStruct.from_layout(hugepage_layout(work.units), 0, 4 * work.units)
        caller = Task(0, killable=True)
        self.mm.tasks[0] = caller
        self.dma = VfioDma(0, 0, 0, caller, False)
        self.ctx = Ctx(variant(work.variant), self.mm, VfioIommu(), self.dma,
                       work.cache_units, BATCH_UNITS, NoFaults())
        self.sem = self.mm.mmap_lock
        self.sleepers: dict[int, simpy.Event] = {}
        self.spin_deadline: dict[int, float] = {}
        self.spinners: dict[int, simpy.Event] = {}
        self.osq: set[int] = set()
        self.write_wait_since: dict[int, float] = {}
        self.held_back: dict[int, simpy.Event] = {}
        self.faulting = 0
        self.pmd_free: dict[int, float] = {}
        self.idle_history: dict[int, list[float]] = {}
        self.deep_sleeps = 0
        self.sleeps = 0
        self.line_free = 0.0
        self.line_ops = 0
        self.line_holder: int | None = None
        self.events = 0
        self.helpers_done = self.env.event()
        self.stop = self.env.event()
        self.mark: tuple[float, int] | None = None
        self.caller = Thread(0, caller)
        self.ps: PadataMtJobState | None = None
        self.ret = 0

    # -- threads ------------------------------------------------------------------------

    def _ioctl(self) -> Generator[Any, None, int]:
        w = self.work
        self.ret = yield from vfio_pin_map_dma(self.ctx, self.caller, self.dma, w.units,
                                               w.chunk_units,
                                               max(w.threads, 1), self._queue_work)
        return self.ret

    def _queue_work(self, ps: PadataMtJobState) -> None:
        """queue_work(system_unbound_wq): a kworker starts after a wake-up latency."""
        self.ps = ps
        tid = len(self.mm.tasks)
        task = Task(tid, killable=False)
        self.mm.tasks[tid] = task
        gen = padata_mt_helper(Thread(tid, task), ps, PadataWork(tid))
        self.env.process(self._drive(tid, gen, start_delay=self._wake_latency()))

    # -- costs --------------------------------------------------------------------------

    def _wake_latency(self) -> float:
        return self.rng.expovariate(1.0 / self.costs.wake) if self.costs.wake > 0 else 0.0

    def _spread(self) -> float:
        j = self.costs.jitter
        return self.rng.lognormvariate(-j * j / 2, j) if j > 0 else 1.0

    # -- lock waiting -------------------------------------------------------------------

    def _handoff_writer(self) -> int | None:
        """The head writer that waited RWSEM_WAIT_TIMEOUT (it has set HANDOFF), if any."""
        wl = self.sem.wait_list
        if not wl or wl[0].mode != WRITE:
            return None
        since = self.write_wait_since.get(wl[0].owner)  # type: ignore[arg-type]
        if since is not None and self.env.now - since >= self.costs.handoff:
            return wl[0].owner  # type: ignore[return-value]
        return None

    def _wake(self, waker: int) -> float:
        """Wake sleepers the twin would let through; release held-back lockers.

        Returns the waker's time: rwsem_wake's own accesses to the lock's line
        (``_waker_line``), then wake_up_q wakes the sleepers one after the other, so the
        k-th starts ``k * wake_each`` after those accesses and the waker spends that long.
        """
        sem = self.sem
        free = sem.writer is None and not sem.readers
        head = sem.wait_list[0] if sem.wait_list else None
        wakees = [tid for tid in self.sleepers if tid in sem.granted
                  or (free and head is not None and head.owner == tid)]
        first = self._waker_line(waker, any(t in sem.granted for t in wakees)) if wakees \
            else 0.0
        for k, tid in enumerate(wakees):
            self.sleepers.pop(tid).succeed(first + k * self.costs.wake_each)
        if self.spinners:
            # Spinners retry when the lock is free; one spinning on a writer starts its
            # reader limit when readers own the lock (rwsem_optimistic_spin's loop).
            readers_own = sem.writer is None and bool(sem.readers)
            for tid in list(self.spinners):
                if free or (readers_own and self.spin_deadline.get(tid, math.inf) == math.inf):
                    self.spinners.pop(tid).succeed()
        if self.held_back and self._handoff_writer() is None:
            for tid in list(self.held_back):
                self.held_back.pop(tid).succeed()
        return first + len(wakees) * self.costs.wake_each

    def _waker_line(self, waker: int, readers: bool) -> float:
        """rwsem_wake's accesses to the lock's cache line before wake_up_q.

        rwsem_wake (from __up_read / __up_write with RWSEM_FLAG_WAITERS, from the reader
        that stole the lock, or from a writer queuing behind readers) takes wait_lock, a
        raw spinlock in the same line as the count, and rwsem_mark_wake grants readers
        with two atomics on the count (the first reader's fetch_add, then the others'
        add); a writer at the head is only put on the wake queue. They follow the
        waker's own atomic on the count, so they find the line in its cache unless a
        spinner polls it (``_line``). Returns the time until they are done.
        """
        if not self.costs.slowpath_line:
            return 0.0
        wait, own = self._line(waker, 3 if readers else 1)
        return wait + own

    # -- CPU idle states ------------------------------------------------------------

    def _enters_deep_idle(self, tid: int) -> bool:
        """Whether the CPU of a thread that goes to sleep now picks the deepest idle state.

        menu_select (v5.14) takes the deepest state whose target residency fits the idle
        time it predicts from the CPU's last 8 idle periods (get_typical_interval): their
        average once the largest are discarded, down to the bottom three quarters (6 of
        8). Below one tick it keeps the tick, and the state must also fit before the next
        tick, which is a uniform draw over the tick period (the sleeps are not
        synchronised with it). A woken thread runs again on the CPU it slept on
        (select_idle_sibling keeps an idle previous CPU; at most 33 helpers share 52
        cores), so the CPU's history is the thread's own.

        Abstracted: only the deepest state costs extra; the shallow states' exit (C1
        2 us) is part of ``wake``. get_typical_interval's variance test and the
        timer-based prediction it falls back on are left out: the timers are not known
        here (see docs/perf.md: with the plain average of the 8, the 8-thread runs fall
        into the slow regime in most seeds). Until a CPU has 8 idle periods, the
        prediction is short.
        """
        c = self.costs
        self.sleeps += 1
        if not c.deep_exit:
            return False
        history = self.idle_history.get(tid, [])
        if len(history) < IDLE_HISTORY:
            return False
        kept = sorted(history)[:IDLE_HISTORY * 3 // 4]
        predicted = sum(kept) / len(kept)
        if predicted < c.deep_target:
            return False
        if predicted < TICK_PERIOD and self.rng.uniform(0.0, TICK_PERIOD) < c.deep_target:
            return False
        self.deep_sleeps += 1
        return True

    def _record_idle(self, tid: int, slept: float) -> None:
        """menu_update: the idle period just ended joins the CPU's last 8."""
        history = self.idle_history.setdefault(tid, [])
        history.append(slept)
        del history[:-IDLE_HISTORY]

    # -- writer optimistic spinning -------------------------------------------------

    def _rspin_deadline(self) -> float:
        """rwsem_rspin_threshold: spin (10 + readers / 2) us on a reader-owned lock."""
        readers = min(sum(self.sem.readers.values()), RSPIN_MAX_READERS)
        return self.env.now + (20 + readers) * 1e-6 / 2

    def _spin_limit(self, tid: int) -> float:
        """Until when a writer that found the lock taken keeps spinning instead of queuing.

        rwsem_optimistic_spin spins for as long as a writer owns the lock (its critical
        sections are short and it runs), and from the moment it sees readers own it for
        rwsem_rspin_threshold; past that it gives up and queues.
        """
        if not self.costs.writer_spin:
            return -math.inf
        if self.sem.writer is not None:
            return self.spin_deadline.get(tid, math.inf)
        return self.spin_deadline.setdefault(tid, self._rspin_deadline())

    def _unqueue(self, tid: int) -> bool:
        """Take a writer that is still spinning back off the twin's wait list.

        The twin queues a writer as soon as its trylock fails; in the kernel a spinning
        writer is not on the wait list yet (no RWSEM_FLAG_WAITERS, readers still take the
        fast path). The timing layer restores that state; the writer retries the twin
        (rwsem_optimistic_spin's unqueued trylock) at the next owner change.
        """
        waiter = RwsemWaiter(tid, WRITE)
        if waiter not in self.sem.wait_list:
            return False
        self.sem.wait_list.remove(waiter)
        return True

    # -- the driver ---------------------------------------------------------------------

    def _drive(self, tid: int, gen: Generator[Any, None, Any],
               start_delay: float = 0.0) -> Generator[simpy.Event, Any, None]:
        env, mm, ctx, c = self.env, self.mm, self.ctx, self.costs
        if start_delay:
            yield env.timeout(start_delay)
        pending = 0.0
        while True:
            pinned0, maps0, accts0 = mm.pages_pinned, ctx.metrics.iommu_maps, mm.account_calls
            sem = self.sem
            sig0 = (sem.writer, len(sem.readers), len(sem.wait_list), len(sem.granted))
            try:
                y = next(gen)
            except StopIteration:
                self._check_completion()
                if tid == 0 and not self.stop.triggered:
                    self.stop.succeed()
                return
            self.events += 1
            self._check_completion()
            spin_until = 0.0
            if type(y) is Blocked and y.what == "mmap_lock write":
                limit = self._spin_limit(tid)
                if env.now < limit and self._unqueue(tid):
                    spin_until = limit
            waking = 0.0
            if (sem.writer, len(sem.readers), len(sem.wait_list), len(sem.granted)) != sig0:
                waking = self._wake(tid)
            pinned = mm.pages_pinned - pinned0
            if pinned and mm.pages_pinned >= self.budget // 2 and self.mark is None:
                self.mark = (env.now, mm.pages_pinned)
            if mm.pages_pinned >= self.budget and not self.stop.triggered and \
                    self.budget < self.work.units:
                self.stop.succeed()
            if type(y) is Blocked:
                if y.what.startswith("mmap_lock"):
                    if spin_until:
                        if c.slowpath_line and tid not in self.osq:
                            # rwsem_optimistic_spin: osq_lock's xchg on sem->osq, in the
                            # lock's cache line; osq_unlock's when the spin ends.
                            self.osq.add(tid)
                            self._line(tid)
                        ev = env.event()
                        self.spinners[tid] = ev
                        if spin_until < math.inf:
                            yield ev | env.timeout(spin_until - env.now)
                        else:
                            yield ev
                        self.spinners.pop(tid, None)
                        continue
                    writer = y.what.endswith("write")
                    if writer:
                        self.write_wait_since.setdefault(tid, env.now)
                    if c.slowpath_line:
                        # rwsem_down_{read,write}_slowpath queue: wait_lock, then the
                        # count (the reader backs its bias out, a first writer sets
                        # RWSEM_FLAG_WAITERS), right after the failed fast path. The
                        # line is busy meanwhile; the sleeper does not care when it
                        # goes to sleep.
                        self._line(tid, 2)
                    ev = env.event()
                    self.sleepers[tid] = ev
                    deep, slept_at = self._enters_deep_idle(tid), env.now
                    late = yield ev
                    self._record_idle(tid, env.now - slept_at)
                    yield env.timeout(self._wake_latency() + late
                                      + (c.deep_exit if deep else 0.0))
                    if writer or not c.slowpath_line:
                        # A woken writer takes wait_lock and tries rwsem_try_write_lock's
                        # cmpxchg; a woken reader was granted by its waker and finds
                        # waiter.task NULL without touching the lock.
                        wait, own = self._line(tid, 2 if c.slowpath_line else 1)
                        if wait:
                            yield env.timeout(wait)
                        pending += own
                elif y.what == "completion":
                    yield self.helpers_done
                else:
                    yield env.timeout(c.spin)
                continue
            self.write_wait_since.pop(tid, None)
            self.spin_deadline.pop(tid, None)
            if tid in self.osq:
                self.osq.discard(tid)
                self._line(tid)
            cost = waking + pending
            pending = 0.0
            cost += (ctx.metrics.iommu_maps - maps0) * RUN_UNITS * (c.page_step + c.iommu_map)
            cost += (mm.account_calls - accts0) * c.write_cs
            if pinned:
                # Point("mmap_lock read"): GUP (and faults) under the reader, then up_read.
                # A fault (qthr 0) comes first: GUP faults the page in, then follows it
                # under the PMD table's lock.
                gup = pinned * c.gup * self._spread()
                fault = 0.0
                if c.fault:
                    self.faulting += 1
                    share = max(1.0, self.faulting / c.fault_parallel)
                    fault = pinned * c.fault * share * self._spread()
                cost += fault + gup + self._pmd_wait(gen, cost + fault, gup)
                yield env.timeout(cost)
                if c.fault:
                    self.faulting -= 1
                wait, pending = self._line(tid)
                if wait:
                    yield env.timeout(wait)
                continue
            kind = type(y)
            if kind is Step:
                if y.label == "page":
                    # Thread-local work: no other thread can observe it, so its time is
                    # added to the next segment that touches shared state (saves an event).
                    pending = cost
                    continue
                if y.label in LOCK_STEPS:
                    owner = self._handoff_writer()
                    while owner is not None and owner != tid:
                        ev = env.event()
                        self.held_back[tid] = ev
                        yield ev
                        owner = self._handoff_writer()
                    if cost:
                        yield env.timeout(cost)
                    wait, pending = self._line(tid)
                    if wait:
                        yield env.timeout(wait)
                    continue
            elif kind is Point and y.what == "mmap_lock write":
                # the critical section, then up_write
                if cost:
                    yield env.timeout(cost)
                wait, pending = self._line(tid)
                if wait:
                    yield env.timeout(wait)
                continue
            if cost:
                yield env.timeout(cost)

    def _pmd_wait(self, gen: Generator[Any, None, Any], after: float, follow: float) -> float:
        """How long this batch's GUP waits for its PMD table's page-table lock.

        The lock is the split pmd ptlock of the page holding the PMD table, one per 1 GiB
        of address space. v5.14's __get_user_pages resets ``ctx.page_mask`` whenever it
        fills ``pages``, so a THP is followed one 4 KiB page at a time, each step taking
        the lock in follow_pmd_mask (pmd_lock, follow_trans_huge_pmd, spin_unlock); a
        hugetlb page is followed under the same lock by follow_hugetlb_page
        (huge_pte_lock). Helpers whose chunks share a PMD table therefore follow their
        pages one after the other. The fault-in that precedes the follow (clear_huge_page)
        runs outside the lock. The batch's address is read from the model itself: the
        ``vaddr`` argument of vaddr_get_pfns, the thread's innermost generator.

        Abstracted: the whole follow time ``follow`` counts as serial (what runs outside
        the lock, the walk down to the pmd and cond_resched, is a few loads, while every
        acquisition moves the lock's cache line between the helpers), and a table serves
        its batches first come, first served instead of interleaving 4 KiB steps, which
        gives the same throughput. The guest RAM is taken as 1 GiB aligned.
        """
        if not self.costs.pmd_lock:
            return 0.0
        g = gen
        while g.gi_yieldfrom is not None:
            g = g.gi_yieldfrom
        vaddr = g.gi_frame.f_locals.get("vaddr") if g.gi_frame is not None else None
        if not isinstance(vaddr, int):
            raise RuntimeError("pages were pinned outside vaddr_get_pfns")
        table = vaddr // PMD_TABLE_UNITS
        ready = self.env.now + after
        start = max(ready, self.pmd_free.get(table, 0.0))
        self.pmd_free[table] = start + follow
        return start - ready

    def _line(self, tid: int, accesses: int = 1) -> tuple[float, float]:
        """Thread ``tid``'s next ``accesses`` to mmap_lock's cache line, from now.

        Returns the wait before the last access can start and that access's own time,
        which the caller charges afterwards. The line serves one CPU at a time, ``line``
        seconds per transfer, in arrival order. With ``slowpath_line`` the line stays in
        the cache of the CPU that touched it last: an access is a transfer only if
        another CPU touched the line since, or if a spinning writer polls it
        (rwsem_spin_on_owner reads sem->owner, in the same line, in a loop), which takes
        the line back between any two accesses of the holder. Without it every access
        is one transfer (the model before this mechanism).
        """
        line = self.costs.line
        if not line:
            return 0.0, 0.0
        if self.costs.slowpath_line:
            polled = any(s != tid for s in self.spinners)
            transfers = (0 if self.line_holder == tid and not polled else 1) \
                + (accesses - 1 if polled else 0)
            self.line_holder = tid
            if not transfers:
                return 0.0, 0.0
        else:
            transfers = accesses
        self.line_ops += transfers
        now = self.env.now
        start = max(now, self.line_free)
        self.line_free = start + transfers * line
        return start - now + (transfers - 1) * line, line

    def _check_completion(self) -> None:
        """complete(&ps->completion) happened in the segment just run: wake the caller."""
        if self.ps is not None and self.ps.completion and not self.helpers_done.triggered:
            self.helpers_done.succeed()

    # -- running ------------------------------------------------------------------------

    def run(self) -> RunTiming:
        """Simulate; extrapolate the rest of a job larger than the budget."""
        env = self.env
        env.process(self._drive(0, self._ioctl()))
        env.run(until=self.stop)
        done = self.mm.pages_pinned
        metrics = {
            "mmap_write_acquisitions": self.sem.stats.write_acquisitions,
            "mmap_read_acquisitions": self.sem.stats.read_acquisitions,
            "refills": self.ctx.metrics.refills,
            "lock_acct_calls": self.ctx.metrics.lock_acct_calls,
            "units_pinned": done,
        }
        if self.ret:
            raise RuntimeError(f"the modelled MAP_DMA failed with {self.ret} after "
                               f"{done} of {self.work.units} units")
        if done >= self.work.units:
            return RunTiming(env.now, done, False, metrics, self.events, env.now)
        assert self.mark is not None
        t0, p0 = self.mark
        rate = (done - p0) / (env.now - t0) if env.now > t0 and done > p0 else math.nan
        total = env.now + (self.work.units - done) / rate
        return RunTiming(total, done, True, metrics, self.events, env.now, rate)
