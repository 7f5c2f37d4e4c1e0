"""What each scheduling point of the reference implementation costs, in seconds.

The timing layer runs ``model/vfio.py`` at the granularity of one *unit* of 256 base pages
(1 MiB): the model's "page" is a unit, its batch holds ``BATCH_UNITS`` = 2 units (the
kernel's VFIO_BATCH_MAX_CAPACITY = PAGE_SIZE / sizeof(struct page *) = 512 pages) and a
physically contiguous run is ``RUN_UNITS`` = 2 units (one 2 MiB huge page);
LOCKED_VM_CACHE_PAGES is given in units. Nothing in the algorithm depends on the page
count other than linearly, except what these sizes keep exactly: one GUP call (one
mmap_lock read hold) per 512 pages, and the end of a contiguous run, where
vfio_pin_pages_remote calls vfio_lock_acct, at each huge page. (A unit of a whole huge
page with a one-unit batch would not do: vfio_pin_pages_remote treats a leftover batch
of size 1 at offset 0 as a possible VM_PFNMAP pfn, drops it and pins it again.)

Costs per unit come from the machine's single-thread per-page costs (``machines.py``)
and from the few fitted ``Params``:

- ``gup``: pin_user_pages_remote of one unit, under the mmap_lock reader;
- ``fault``: faulting the unit in when QEMU did not preallocate (qthr = 0): allocation and
  clear_huge_page, also under the reader; it streams 2 MiB of stores, so concurrent
  faults share the DRAM bandwidth (``fault_parallel``: how many run at full speed);
- ``page_step``: vfio_pin_pages_remote's per-page loop over the unit (vfio_find_vpfn,
  the RLIMIT check or the cache draw), outside mmap_lock;
- ``iommu_map``: vfio_iommu_map of the unit, outside mmap_lock;
- ``write_cs``: the mmap_lock writer's critical section in vfio_lock_acct;
- ``wake``: mean latency from a sleeping waiter being woken to it running;
- ``jitter``: log-normal spread of the per-unit work (page placement, cache misses);
- ``writer_spin``: a writer that finds mmap_lock taken first spins (rwsem_optimistic_spin)
  instead of queuing, see sim.py; not a fitted number, the kernel's own limits apply;
- ``deep_exit`` / ``deep_target``: the machine's deepest CPU idle state (exit latency and
  target residency, C6 on Skylake-SP): a waiter whose CPU the menu governor expects to
  idle long enough sleeps in it and wakes that much later, see sim.py; 0 / inf: none;
- ``pmd_lock``: GUP follows pages under their PMD table's lock, shared by the helpers
  working in the same 1 GiB (see sim.py); not a fitted number;
- ``line``: every mmap_lock operation (down/up, read or write) is an atomic on the
  rw_semaphore's count word; its cache line serves one CPU at a time, so with many
  threads the lock operations themselves queue (the reader-side scalability limit of a
  single-count rwsem, which matters when GUP is short, i.e. prefaulted memory). The slow
  paths (queuing, waking, the osq) access the same line several times; an access is a
  transfer only if another CPU touched the line since, or a spinning writer polls it
  (``slowpath_line``, see sim.py; no new parameter). One thread alone keeps the line in
  its cache, so the single-thread baseline contains no transfers.

The outside-the-lock work (``page_step + iommu_map``) is the same for both backings (same
number of pages, same IOMMU); the rest of the faulted per-page cost is GUP, so THP's much
slower GUP (per-4K follow_page under the pmd lock) is all under the reader.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from model.perf.machines import PAGE_SIZE, Machine

UNIT_PAGES = 256
UNIT_BYTES = UNIT_PAGES * PAGE_SIZE
BATCH_UNITS = 2
RUN_UNITS = 2
RWSEM_WAIT_TIMEOUT = 4e-3
"""kernel/locking/rwsem.c: DIV_ROUND_UP(HZ, 250) jiffies, 4 ms: a writer first in the queue
that waited this long sets RWSEM_FLAG_HANDOFF and new lockers may no longer steal."""


@dataclass(frozen=True)
class Params:
    """The fitted, machine-independent parameters (see fit.py for which rows fit them)."""

    out_frac: float = 0.5
    """Share of the faulted hugetlb per-page cost spent outside mmap_lock."""
    wake_us: float = 5.0
    write_cs_us: float = 1.0
    bw_eff: float = 0.3
    """Share of peak DRAM bandwidth that concurrent page zeroing reaches."""
    jitter: float = 0.2
    wake_each_us: float = 0.0
    """Waker's cost per task in wake_up_q (try_to_wake_up, an IPI to an idle CPU)."""
    line_ns: float = 0.0
    """One atomic on mmap_lock's count word when its cache line bounces between CPUs."""

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class UnitCosts:
    """Seconds per scheduling point for one machine, backing and prefault setting."""

    gup: float
    fault: float
    fault_parallel: float
    page_step: float
    iommu_map: float
    write_cs: float
    wake: float
    jitter: float
    wake_each: float = 0.0
    line: float = 0.0
    spin: float = 50e-9
    handoff: float = RWSEM_WAIT_TIMEOUT
    writer_spin: bool = True
    """rwsem_optimistic_spin for writers (CONFIG_RWSEM_SPIN_ON_OWNER); off for ablation."""
    pmd_lock: bool = True
    """GUP's page-table lock is per PMD table (split ptlock): see sim.py; off for ablation."""
    slowpath_line: bool = True
    """The lock's cache line stays with its last user, spinners poll it, and the rwsem
    slow paths' own accesses are charged (see sim.py ``_line``); off for ablation: one
    transfer per lock operation, single-thread runs included."""
    deep_exit: float = 0.0
    """Exit latency of the deepest idle state (0: no deep idle state modelled)."""
    deep_target: float = float("inf")
    """Target residency of that state: the idle time the governor must expect to use it."""

    @property
    def single_thread_unit(self) -> float:
        """A unit's cost on the base kernel (a reader and a writer per batch, uncontended)."""
        transfers = 0 if self.slowpath_line else 4 * self.line
        return (self.gup + self.fault + self.page_step + self.iommu_map
                + (self.write_cs + transfers) / BATCH_UNITS)


def unit_costs(m: Machine, backing: str, prefaulted: bool, p: Params,
               slowpath_line: bool = True) -> UnitCosts:
    """Split the machine's single-thread per-page cost into the scheduling points' costs.

    ``slowpath_line`` chooses the lock-line model (see ``UnitCosts.slowpath_line``); the
    split depends on it, because it decides whether the baseline paid transfers.
    """
    per_page = m.per_page[backing]
    out_unit = p.out_frac * m.per_page["hugetlb"].faulted * UNIT_PAGES
    write_cs = p.write_cs_us * 1e-6
    faulted_unit = per_page.faulted * UNIT_PAGES
    # The single-thread baseline also paid, per batch, the writer's critical section and,
    # unless the line stays in the one CPU's cache, four transfers of the lock word's line
    # (down/up read, down/up write): take them out of GUP.
    line = p.line_ns * 1e-9
    lock_ops = (write_cs + (0.0 if slowpath_line else 4 * line)) / BATCH_UNITS
    gup = max(faulted_unit - out_unit - lock_ops, 0.05 * faulted_unit)
    fault = 0.0 if prefaulted else per_page.fault * UNIT_PAGES
    if fault > 0:
        single_rate = UNIT_BYTES / fault
        fault_parallel = max(p.bw_eff * m.memory_bandwidth / single_rate, 1.0)
    else:
        fault_parallel = float("inf")
    deep = m.deep_idle
    return UnitCosts(gup=gup, fault=fault, fault_parallel=fault_parallel,
                     page_step=out_unit / 2, iommu_map=out_unit / 2, write_cs=write_cs,
                     wake=p.wake_us * 1e-6, jitter=p.jitter,
                     wake_each=p.wake_each_us * 1e-6, line=p.line_ns * 1e-9,
                     slowpath_line=slowpath_line,
                     deep_exit=deep.exit_latency if deep else 0.0,
                     deep_target=deep.target_residency if deep else float("inf"))
