"""Reference implementation of multithreaded VFIO_IOMMU_MAP_DMA pinning (v5.16 + RFC 07-08).

One Python generator per kernel function of drivers/vfio/vfio_iommu_type1.c (as of v5.16,
with the RFC series' ``vfio_pin_map_dma_chunk``/``vfio_pin_map_dma_undo`` and the padata
multithreaded job with its undo callback), running over the simulated mm of
``model.mm``. Variant-specific code is marked ``seed:``, ``upfront:``, ``fixed:`` (see
``model.vfio_variants``); unmarked code is the kernel's.

Scheduling points (what ``model.schedule`` interleaves, and where a performance model
attaches costs) are explicit:

- ``yield Step(label)`` before each spec step, i.e. before each access to shared state:
  ``helper`` (padata's ps->lock), ``refill`` (a cache refill: vfio_lock_acct),
  ``gup`` (vaddr_get_pfns under mmap_read_lock), ``page`` (one iteration of
  vfio_pin_pages_remote's inner loop: it reads mm->locked_vm for the RLIMIT check or
  draws from the cache), ``out`` (vfio_lock_acct of ``lock_acct``, then
  vfio_iommu_map), ``unpin_remote`` (vfio_unpin_pages_remote after a failed map),
  ``release`` (the chunk's final cache release), ``undo`` (vfio_pin_map_dma_undo),
  ``wait`` (wait_for_completion), ``padata_undo`` (undo_fn on one completed range),
  ``finish`` (fixed: release of the shared cache);
- ``yield Point(...)`` inside a step where a lock is held or work is done
  (``mmap_lock read``/``mmap_lock write`` with the pages handled);
- ``yield Blocked(...)`` while polling a lock (``model.rwsem``) or the completion.

Contention metrics (``Metrics``): mmap_lock writer and reader acquisitions, pages pinned
by GUP, cache refills, vfio_lock_acct calls.

Abstractions: one IOMMU domain; vfio_unmap_unpin unmaps and unpins page by page (the
kernel batches contiguous ranges and TLB syncs, which only changes when the unpins
happen inside the step, not what is released); zero pages, hugetlb and
``disable_hugepages`` are left out; the padata chunk size is a parameter instead of
``max(size / (4 * nworks), min_chunk)`` aligned to PMD_SIZE (any chunk size is the one
padata picks for some mapping size). A fatal signal reaches only the MAP_DMA caller
(thread 0): padata helpers are kworkers, which ignore signals.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Protocol

from model.locks import WAIT
from model.mm import (
    EFAULT,
    ENOMEM,
    MmStruct,
    Page,
    Task,
    __account_locked_vm,
    fatal_signal_pending,
    follow_fault_pfn,
    is_invalid_reserved_pfn,
    page_of_pfn,
    pin_user_pages_remote,
    unpin_user_page,
    vma_is_pfnmap,
)
from model.padata import PadataMtJob, QueueWork, padata_do_multithreaded
from model.schedule import Blocked, Point, Step, Yield
from model.vfio_variants import SHARED, THREAD, Variant

EINVAL = 22
IOMMU_MAP_ERR = -EINVAL
"""What an injected vfio_iommu_map failure returns (iommu_map's -EINVAL/-ENOMEM); kept
distinct from RLIMIT_MEMLOCK's -ENOMEM so that no_spurious_enomem is about the limit."""

EXTERNAL = "vcpu"
"""Owner name of an mmap_lock user outside the model (a vCPU page fault, QEMU's mmap)."""

Gen = Generator[Yield, None, int]


class FaultPlan(Protocol):
    """Decisions the model cannot make itself; the step index is the scheduler's."""

    def iommu_map_fails(self, tid: int, step: int) -> bool: ...

    def mmap_lock_contended(self, tid: int, step: int) -> bool: ...


@dataclass
class NoFaults:
    """No injected IOMMU failure, no outside mmap_lock user."""

    def iommu_map_fails(self, tid: int, step: int) -> bool:
        return False

    def mmap_lock_contended(self, tid: int, step: int) -> bool:
        return False


@dataclass
class Metrics:
    """Contention metrics for the performance model (issue 7)."""

    refills: int = 0
    lock_acct_calls: int = 0
    iommu_maps: int = 0


@dataclass
class VfioDma:
    """struct vfio_dma: the range (in pages), its task, CAP_IPC_LOCK, the vfio_pfn list."""

    iova: int
    vaddr: int
    size: int
    task: Task
    lock_cap: bool
    pfn_list: set[int] = field(default_factory=set)  # iovas of vfio_pfn entries
    prot: int = 3  # IOMMU_READ | IOMMU_WRITE
    iommu_mapped: bool = False


@dataclass
class VfioIommu:
    """struct vfio_iommu with one domain: iova page -> pfn mappings."""

    mapping: dict[int, int] = field(default_factory=dict)


@dataclass
class VfioBatch:
    """struct vfio_batch: pages from pin_user_pages_remote, ``size`` left from ``offset``."""

    capacity: int
    pages: list[Page] = field(default_factory=list)
    size: int = 0
    offset: int = 0


@dataclass
class Ctx:
    """Everything a model thread reaches: the kernel objects and the run's switches."""

    variant: Variant
    mm: MmStruct
    iommu: VfioIommu
    dma: VfioDma
    cache_pages: int  # LOCKED_VM_CACHE_PAGES
    batch_pages: int  # VFIO_BATCH_MAX_CAPACITY
    faults: FaultPlan
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], int] = lambda: 0  # index of the scheduler step being executed
    rlimit_enomem: int = 0  # pins failed with RLIMIT_MEMLOCK's -ENOMEM
    pending_release: dict[int, int] = field(default_factory=dict)  # tid -> pages
    # the spec's mmap_lock="rwsem" form: unpin_out's uncharge of drawn pages is a step
    unpin_drawn_step: bool = False

    @property
    def step(self) -> int:
        return self.clock()


@dataclass
class Thread:
    """A model thread: the MAP_DMA caller (tid 0) or a padata kworker."""

    tid: int
    task: Task


@dataclass
class Cell:
    """A ``long *`` argument (seed: ``long *lock_cache``)."""

    value: int = 0


@dataclass
class VfioPinArgs:
    """struct vfio_pin_args, plus fixed:'s shared cache."""

    dma: VfioDma
    limit: int
    map_size: int
    lock_cache: Cell = field(default_factory=Cell)  # fixed: one cache for the whole job


# ------------------------------------------------------------------ locking helpers


def mmap_read_lock(ctx: Ctx, t: Thread) -> Generator[Yield, None, None]:
    """mmap_read_lock: down_read, sleeping (polling) until granted."""
    while not ctx.mm.mmap_lock.down_read(t.tid):
        yield Blocked("mmap_lock read")


def mmap_write_lock_killable(ctx: Ctx, t: Thread) -> Gen:
    """mmap_write_lock_killable: 0 or -EINTR (only when it has to wait with SIGKILL pending).

    When the fault plan says the lock is contended at this step, an outside user (a vCPU
    fault) holds mmap_lock for read during the first poll.
    """
    sem = ctx.mm.mmap_lock
    # (if the trylock fails the lock is contended already)
    outside = ctx.faults.mmap_lock_contended(t.tid, ctx.step) and sem.down_read_trylock(EXTERNAL)
    while True:
        ret = sem.down_write_killable(t.tid, fatal_signal=fatal_signal_pending(t.task))
        if outside:
            sem.up_read(EXTERNAL)
            outside = False
        if ret != WAIT:
            return ret
        yield Blocked("mmap_lock write")


def mmap_write_lock(ctx: Ctx, t: Thread) -> Gen:
    """mmap_write_lock: uninterruptible (fixed: used for every uncharge)."""
    sem = ctx.mm.mmap_lock
    # (if the trylock fails the lock is contended already)
    outside = ctx.faults.mmap_lock_contended(t.tid, ctx.step) and sem.down_read_trylock(EXTERNAL)
    while True:
        ok = sem.down_write(t.tid)
        if outside:
            sem.up_read(EXTERNAL)
            outside = False
        if ok:
            return 0
        yield Blocked("mmap_lock write")


# ------------------------------------------------------------------ accounting


def vfio_lock_acct(ctx: Ctx, t: Thread, dma: VfioDma, npage: int, async_: bool) -> Gen:
    """vfio_lock_acct: charge (npage > 0) or uncharge locked_vm under the mmap_lock writer.

    ``async_`` selects get_task_mm(dma->task) over dma->task->mm in the kernel; both are
    the one mm here. fixed/upfront: an uncharge must not fail, so it takes the lock with
    the uninterruptible mmap_write_lock().
    """
    if not npage:
        return 0
    ctx.metrics.lock_acct_calls += 1
    mm = ctx.mm
    if npage < 0 and not ctx.variant.killable_uncharge:
        ret = yield from mmap_write_lock(ctx, t)
    else:
        ret = yield from mmap_write_lock_killable(ctx, t)
    if not ret:
        ret = __account_locked_vm(mm, abs(npage), npage > 0, t.task, dma.lock_cap)
        yield Point("mmap_lock write", abs(npage))
        mm.mmap_lock.up_write(t.tid)
    return ret


def vfio_lock_cache_refill(ctx: Ctx, t: Thread, args: VfioPinArgs) -> Gen:
    """fixed: refill the job's shared cache when it is empty, with at most what fits.

    A helper that finds the cache refilled by another one (an atomic read) goes on
    without the lock. Under the mmap_lock writer the cache and locked_vm are stable: if
    another helper refilled meanwhile there is nothing to do; otherwise charge
    min(LOCKED_VM_CACHE_PAGES, size of the mapping, RLIMIT_MEMLOCK headroom). -ENOMEM
    only when the empty cache meets no headroom, i.e. every charged page is pinned and
    the page that asked really does not fit.
    """
    mm, dma = ctx.mm, args.dma
    if args.lock_cache.value:
        return 0
    ctx.metrics.refills += 1
    ret = yield from mmap_write_lock_killable(ctx, t)
    if ret:
        return ret
    if args.lock_cache.value == 0:
        npage = min(args.map_size, ctx.cache_pages)
        if not dma.lock_cap:
            npage = min(npage, mm.rlimit_memlock - mm.locked_vm)
        if npage <= 0:
            ret = -ENOMEM
        else:
            ret = __account_locked_vm(mm, npage, True, t.task, dma.lock_cap)
            if not ret:
                args.lock_cache.value += npage
    yield Point("mmap_lock write", args.lock_cache.value)
    mm.mmap_lock.up_write(t.tid)
    return ret


# ------------------------------------------------------------------ pages and batches


def put_pfn(ctx: Ctx, pfn: int) -> int:
    """put_pfn: unpin unless reserved; 1 if a pin was dropped."""
    if not is_invalid_reserved_pfn(ctx.mm, pfn):
        unpin_user_page(page_of_pfn(ctx.mm, pfn))
        return 1
    return 0


def vfio_find_vpfn(dma: VfioDma, iova: int) -> bool:
    """vfio_find_vpfn: is this iova pinned (and accounted) through the mdev interface?"""
    return iova in dma.pfn_list


def vfio_batch_unpin(ctx: Ctx, batch: VfioBatch) -> None:
    """vfio_batch_unpin: drop the pins of the batch's unconsumed pages."""
    while batch.size:
        put_pfn(ctx, batch.pages[batch.offset].pfn)
        batch.offset += 1
        batch.size -= 1


def vaddr_get_pfns(ctx: Ctx, t: Thread, vaddr: int, npages: int,
                   batch: VfioBatch) -> Generator[Yield, None, tuple[int, int]]:
    """vaddr_get_pfns: pin_user_pages_remote under mmap_read_lock; PFNMAP: follow_fault_pfn.

    Returns (count or -errno, first pfn).
    """
    mm = ctx.mm
    yield from mmap_read_lock(ctx, t)
    ret = pin_user_pages_remote(mm, vaddr, npages, t.task, batch.pages)
    pfn = 0
    if ret > 0:
        pfn = batch.pages[0].pfn
    elif vma_is_pfnmap(mm, vaddr):
        pfn = follow_fault_pfn(mm, vaddr)
        ret = 1 if is_invalid_reserved_pfn(mm, pfn) else -EFAULT
    yield Point("mmap_lock read", max(ret, 0))
    mm.mmap_lock.up_read(t.tid)
    return ret, pfn


# ------------------------------------------------------------------ pinning


def vfio_pin_pages_remote(ctx: Ctx, t: Thread, dma: VfioDma, vaddr: int, npage: int,
                          pfn_base: Cell, limit: int, batch: VfioBatch,
                          lock_cache: Cell) -> Gen:
    """vfio_pin_pages_remote: pin a physically contiguous run of same-reservedness pages.

    Returns the pages pinned, or -errno with every pin of this call dropped.
    seed: pages that need accounting draw from ``*lock_cache`` first; the RLIMIT check
    only runs when it is empty. fixed/upfront: such pages must draw from the cache; an
    empty cache ends the call there (``goto out``) and the caller refills it.
    """
    mm, v = ctx.mm, ctx.variant
    pinned = lock_acct = drawn = 0
    iova = vaddr - dma.vaddr + dma.iova
    rsvd = False
    pfn = 0
    ret = 0
    if batch.size:
        # Leftover pages in batch from an earlier call.
        pfn_base.value = batch.pages[batch.offset].pfn
        pfn = pfn_base.value
        rsvd = is_invalid_reserved_pfn(mm, pfn_base.value)
    else:
        pfn_base.value = 0

    error = False  # "goto unpin_out" with ret < 0
    stop = False  # "goto out"
    while npage and not (error or stop):
        if not batch.size:
            # Empty batch, so refill it.
            req_pages = min(npage, batch.capacity)
            yield Step("gup")
            ret, pfn = yield from vaddr_get_pfns(ctx, t, vaddr, req_pages, batch)
            if ret < 0:
                error = True
                break
            batch.size = ret
            batch.offset = 0
            if not pfn_base.value:
                pfn_base.value = pfn
                rsvd = is_invalid_reserved_pfn(mm, pfn_base.value)
        while True:
            yield Step("page")
            if pfn != pfn_base.value + pinned or rsvd != is_invalid_reserved_pfn(mm, pfn):
                stop = True
                break
            # Reserved pages aren't counted against the user, externally pinned pages
            # are already counted against the user.
            if not rsvd and not vfio_find_vpfn(dma, iova):
                if v.cache == THREAD and not v.refill_whole_chunk:
                    # seed: RLIMIT check only when the cache is empty, then draw from it.
                    if (not dma.lock_cap and lock_cache.value == 0
                            and mm.locked_vm + lock_acct + 1 > limit):
                        ret = -ENOMEM
                        error = True
                        break
                    if lock_cache.value > 0:
                        lock_cache.value -= 1
                    else:
                        lock_acct += 1
                elif v.has_cache:
                    # fixed/upfront: every accounted page is charged through the cache.
                    if lock_cache.value == 0:
                        stop = True
                        break
                    lock_cache.value -= 1
                    drawn += 1
                else:
                    if not dma.lock_cap and mm.locked_vm + lock_acct + 1 > limit:
                        ret = -ENOMEM
                        error = True
                        break
                    lock_acct += 1
            pinned += 1
            npage -= 1
            vaddr += 1
            iova += 1
            batch.offset += 1
            batch.size -= 1
            if not batch.size:
                break
            pfn = batch.pages[batch.offset].pfn

    if not error:
        # out:
        yield Step("out")
        ret = yield from vfio_lock_acct(ctx, t, dma, lock_acct, False)
    # unpin_out:
    if batch.size == 1 and not batch.offset:
        # May be a VM_PFNMAP pfn, which the batch can't remember.
        put_pfn(ctx, pfn)
        batch.size = 0
    if ret < 0:
        if ret == -ENOMEM:
            ctx.rlimit_enomem += 1
        if pinned and not rsvd:
            for p in range(pfn_base.value, pfn_base.value + pinned):
                put_pfn(ctx, p)
        vfio_batch_unpin(ctx, batch)
        if v.uncharge_drawn_on_error and drawn:
            # fixed/upfront: the unpinned pages give back what they drew.
            if ctx.unpin_drawn_step:
                yield Step("unpin_drawn")
            ctx.pending_release[t.tid] = drawn
            yield from vfio_lock_acct(ctx, t, dma, -drawn, False)
            ctx.pending_release[t.tid] = 0
        return ret
    return pinned


def vfio_unpin_pages_remote(ctx: Ctx, t: Thread, dma: VfioDma, iova: int, pfn: int,
                            npage: int, do_accounting: bool) -> Gen:
    """vfio_unpin_pages_remote: unpin; with accounting, uncharge the non-vfio_pfn pages."""
    unlocked = locked = 0
    for _ in range(npage):
        if put_pfn(ctx, pfn):
            unlocked += 1
            if vfio_find_vpfn(dma, iova):
                locked += 1
        pfn += 1
        iova += 1
    if do_accounting:
        ctx.pending_release[t.tid] = unlocked - locked
        yield from vfio_lock_acct(ctx, t, dma, locked - unlocked, True)
        ctx.pending_release[t.tid] = 0
    return unlocked


def vfio_unmap_unpin(ctx: Ctx, t: Thread, dma: VfioDma, iova: int, end: int,
                     do_accounting: bool) -> Gen:
    """vfio_unmap_unpin (RFC 06/16 form, with a range): unmap, unpin, uncharge.

    Like the kernel it uncharges every unpinned non-reserved page (``unlocked``), which
    assumes dma->pfn_list is empty (vfio_remove_dma WARNs otherwise). fixed/upfront: pages
    that are in the vfio_pfn list keep their charge (it belongs to the mdev pin).
    """
    if iova == end:
        return 0
    unlocked = vpfn = 0
    for i in range(iova, end):
        pfn = ctx.iommu.mapping.pop(i, None)
        if pfn is None:
            continue  # WARN_ON(!phys)
        page_of_pfn(ctx.mm, pfn).iommu_mapped = False
        got = yield from vfio_unpin_pages_remote(ctx, t, dma, i, pfn, 1, False)
        unlocked += got
        if got and vfio_find_vpfn(dma, i):
            vpfn += 1
    if do_accounting:
        # the unpinned pages' charge is on its way back (one step in the spec)
        ctx.pending_release[t.tid] = unlocked - vpfn
    yield Point("unmap_unpin", end - iova)
    if do_accounting:
        release = unlocked - vpfn if ctx.variant.vpfn_aware_undo else unlocked
        yield from vfio_lock_acct(ctx, t, dma, -release, True)
        ctx.pending_release[t.tid] = 0
        return 0
    return unlocked


def vfio_iommu_map(ctx: Ctx, t: Thread, iova: int, pfn: int, npage: int) -> int:
    """vfio_iommu_map: iommu_map into the (single) domain; failures come from the plan."""
    ctx.metrics.iommu_maps += 1
    if ctx.faults.iommu_map_fails(t.tid, ctx.step):
        return IOMMU_MAP_ERR
    for i in range(npage):
        ctx.iommu.mapping[iova + i] = pfn + i
        page_of_pfn(ctx.mm, pfn + i).iommu_mapped = True
    return 0


def vfio_pin_map_dma_undo(ctx: Ctx, t: Thread, args: VfioPinArgs, start_vaddr: int,
                          end_vaddr: int) -> Gen:
    """vfio_pin_map_dma_undo: padata's undo_fn for one range of the job."""
    dma = args.dma
    iova = dma.iova + (start_vaddr - dma.vaddr)
    end = dma.iova + (end_vaddr - dma.vaddr)
    yield from vfio_unmap_unpin(ctx, t, dma, iova, end, True)
    return 0


def vfio_pin_map_dma_chunk(ctx: Ctx, t: Thread, start_vaddr: int, end_vaddr: int,
                           args: VfioPinArgs) -> Gen:
    """vfio_pin_map_dma_chunk: padata's thread_fn, pin and map [start_vaddr, end_vaddr).

    seed: refill ``lock_cache`` with min(unmapped, LOCKED_VM_CACHE_PAGES) whenever it is
    empty (an -ENOMEM refill leaves it empty: per-page accounting); release it at the end.
    upfront: charge the whole chunk once (an -ENOMEM is the chunk's error); release the
    rest at the end. fixed: refill the shared cache when a call stopped on it being empty.
    """
    v, dma = ctx.variant, args.dma
    iova = dma.iova + (start_vaddr - dma.vaddr)
    unmapped_size = end_vaddr - start_vaddr
    mapped_size = 0
    pfn = Cell()
    lock_cache = Cell()
    charged = False
    batch = VfioBatch(ctx.batch_pages)
    ret = 0

    while unmapped_size:
        if v.cache == THREAD and not v.refill_whole_chunk and lock_cache.value == 0:
            # seed
            cache_size = min(unmapped_size, ctx.cache_pages)
            yield Step("refill")
            ctx.metrics.refills += 1
            ret = yield from vfio_lock_acct(ctx, t, dma, cache_size, False)
            # More locked_vm is cached than might be used, so don't fail on -ENOMEM,
            # i.e. exceeding RLIMIT_MEMLOCK.
            if ret:
                if ret != -ENOMEM:
                    vfio_batch_unpin(ctx, batch)
                    break
                cache_size = 0
            lock_cache.value = cache_size
        elif v.refill_whole_chunk and not charged:
            # upfront: account the whole chunk once.
            yield Step("refill")
            ctx.metrics.refills += 1
            ret = yield from vfio_lock_acct(ctx, t, dma, unmapped_size, False)
            if ret:
                if ret == -ENOMEM:
                    ctx.rlimit_enomem += 1
                vfio_batch_unpin(ctx, batch)
                break
            lock_cache.value = unmapped_size
            charged = True

        # Pin a contiguous chunk of memory
        npage = yield from vfio_pin_pages_remote(
            ctx, t, dma, start_vaddr + mapped_size, unmapped_size, pfn, args.limit, batch,
            args.lock_cache if v.cache == SHARED else lock_cache)
        if npage == 0 and v.cache == SHARED:
            # fixed: the first page needing accounting found the shared cache empty.
            yield Step("refill")
            ret = yield from vfio_lock_cache_refill(ctx, t, args)
            if ret:
                if ret == -ENOMEM:
                    ctx.rlimit_enomem += 1
                vfio_batch_unpin(ctx, batch)
                break
            continue
        if npage <= 0:
            ret = npage
            break

        # Map it!
        ret = vfio_iommu_map(ctx, t, iova + mapped_size, pfn.value, npage)
        if ret:
            yield Step("unpin_remote")
            yield from vfio_unpin_pages_remote(ctx, t, dma, iova + mapped_size, pfn.value,
                                               npage, True)
            vfio_batch_unpin(ctx, batch)
            break

        unmapped_size -= npage
        mapped_size += npage

    # vfio_batch_fini(&batch)
    if v.cache == THREAD:
        yield Step("release")
        yield from vfio_lock_acct(ctx, t, dma, -lock_cache.value, False)
        lock_cache.value = 0

    # Undo the successfully completed part of this chunk now.  padata will undo
    # previously completed chunks internally at the end of the job.
    if ret:
        if mapped_size:
            # (on an empty range vfio_unmap_unpin returns at once: no step)
            yield Step("undo")
        yield from vfio_pin_map_dma_undo(ctx, t, args, start_vaddr, start_vaddr + mapped_size)
        return ret
    return 0


# ------------------------------------------------------------------ the ioctl path


VFIO_MAX_THREADS = 16


def vfio_pin_map_dma(ctx: Ctx, t: Thread, dma: VfioDma, map_size: int, chunk_pages: int,
                     max_threads: int, queue_work: QueueWork) -> Gen:
    """vfio_pin_map_dma (RFC 07/16): pin and map the range with a padata job.

    fixed: the shared cache outlives the helpers; its rest is released here, after
    padata_do_multithreaded returned (every helper finished, every error undone).
    """
    args = VfioPinArgs(dma, ctx.mm.rlimit_memlock, map_size)

    def thread_fn(th: Thread, start: int, end: int, a: VfioPinArgs) -> Gen:
        return vfio_pin_map_dma_chunk(ctx, th, start, end, a)

    def undo_fn(th: Thread, start: int, end: int, a: VfioPinArgs) -> Gen:
        return vfio_pin_map_dma_undo(ctx, th, a, start, end)

    job = PadataMtJob(thread_fn, args, dma.vaddr, map_size, chunk_pages, undo_fn, max_threads)
    ret = yield from padata_do_multithreaded(t, job, t.tid, queue_work)
    if ctx.variant.cache == SHARED:
        yield Step("finish")
        yield from vfio_lock_acct(ctx, t, dma, -args.lock_cache.value, False)
        args.lock_cache.value = 0
    dma.iommu_mapped = True
    if not ret:
        dma.size += map_size
    return ret
