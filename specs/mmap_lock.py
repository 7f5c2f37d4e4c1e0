"""mmap_lock ordering in multithreaded VFIO pinning: self-deadlocks and inversions.

THE KERNEL CODE (v5.16 with the RFC "padata, vfio, sched: Multithreaded VFIO page
pinning", drivers/vfio/vfio_iommu_type1.c, mm/util.c, mm/gup.c, kernel/padata.c).
VFIO_IOMMU_MAP_DMA runs ``vfio_dma_do_map`` with ``iommu->lock`` (a mutex) held for the
whole map. ``vfio_pin_map_dma`` hands the range to ``padata_do_multithreaded``: the
caller runs one chunk itself, kworker helpers run the others, and the caller then sleeps
in ``wait_for_completion`` until every helper is done; helpers never take iommu->lock.
A chunk (``vfio_pin_map_dma_chunk``, RFC 08's locked_vm cache) repeatedly

- refills its ``lock_cache`` with ``vfio_lock_acct`` -> ``mmap_write_lock_killable`` ->
  ``__account_locked_vm`` -> ``mmap_write_unlock`` (an -EINTR refill ends the chunk);
- pins one batch in ``vaddr_get_pfns``: ``mmap_read_lock``, ``pin_user_pages_remote``
  (``follow_page_mask`` takes the page-table lock, a spinlock, for each pmd/pte it
  walks), ``mmap_read_unlock``;
- finally gives back an unused cache with ``vfio_lock_acct(dma, -lock_cache)`` (only when
  a pin failed: a fully used cache is 0 and vfio_lock_acct returns at once).

Without the cache (``cache=False``, the series before RFC 08) every batch is charged
after its pin by ``vfio_lock_acct`` at ``out:`` of ``vfio_pin_pages_remote``.

Lock order of the correct code: iommu->lock -> mmap_lock -> ptl; mmap_lock is never
taken for write while held for read, never re-taken for read, and no lock is taken while
holding ptl except nothing. The wrong variants show each report:

- ``upgrade``: the chunk refills its cache inside vaddr_get_pfns, i.e. calls
  vfio_lock_acct (writer) while still holding mmap_lock for read. lockdep: possible
  recursive locking; actual deadlock: the thread waits for itself, and every other pinning
  thread queues behind its waiting writer.
- ``recursive_read``: vaddr_get_pfns falls back to a GUP helper that takes
  mmap_read_lock itself (pin_user_pages_unlocked) while the lock is held. lockdep:
  recursive locking; actual deadlock needs a writer (another chunk's refill) to queue
  between the two reads.
- ``ptl_inversion``: a chunk takes the pmd lock before mmap_read_lock (a prefault peek
  at the pmd). lockdep: circular dependency ptl -> mmap_lock -> ptl; actual deadlock
  needs three threads (a reader holding mmap_lock, a queued writer, the ptl holder).
- ``iommu_inversion``: a helper takes iommu->lock under mmap_read_lock (a vfio_find_vpfn
  lookup "under the iommu lock"). lockdep: circular dependency with the caller's
  iommu->lock -> mmap_lock; actual deadlock: the helper waits for iommu->lock, which the
  caller holds while it waits for the helper's completion.

ABSTRACTIONS. Each thread pins ``pages`` batches (one batch per vaddr_get_pfns call);
the values of locked_vm and of the pins are left out (specs/vfio_locked_vm_cache.py
checks them): only the lock operations and the control flow that decides them are kept,
which is all the lock-order and deadlock properties depend on. A fatal signal is a
choice at each killable acquisition that has to wait. One page-table lock stands for
all of them (every chunk may walk the same pmd).

PROPERTIES: ``no_lock_inversion`` (lockdep over every explored state) and
``no_deadlock``; the correct variant satisfies both.
"""

from __future__ import annotations

from dataclasses import dataclass

from checker.expr import AllOf, Bool, Int
from checker.spec import ProcessBuilder, Spec, SpecBuilder, specification
from specs.rwsem import Mutex, RwSem, SpinLock, lock_properties

VARIANTS = ("correct", "upgrade", "recursive_read", "ptl_inversion", "iommu_inversion")


@specification(variants=VARIANTS)
def build(variant: str = "correct", threads: int = 3, pages: int = 1,
          cache: bool = True, efault: bool = True, fatal_signal: bool = True) -> Spec:
    """The padata pinning pattern's locks: correct form and deadlocking variants."""
    if threads < 1 or pages < 1:
        raise ValueError("threads and pages must be at least 1")
    s = SpecBuilder("mmap_lock", __doc__ or "", parameters={
        "variant": variant, "threads": threads, "pages": pages, "cache": cache,
        "efault": efault, "fatal_signal": fatal_signal},
        variant=variant)
    ioctl = s.process("ioctl", 1, doc="VFIO_IOMMU_MAP_DMA caller: vfio_dma_do_map")
    helper = s.process("helper", max(threads - 1, 0) or 1,
                       doc="padata kworker running vfio_pin_map_dma_chunk")
    helpers = threads - 1
    users = (ioctl, helper)
    mm = RwSem(s, "mmap_lock", users, max_read_depth=2 if variant == "recursive_read" else 1)
    iommu = Mutex(s, "iommu_lock", users)
    ptl = SpinLock(s, "ptl", users)
    opt = Options(variant, pages, cache, efault, fatal_signal)
    started = s.var("padata_started", Int(0, 1), init=0,
                    doc="padata_do_multithreaded queued the helper works")

    # The helpers' program first: ioctl's wait guard reads their pc, whose label set must
    # be complete when the guard is built (ProcessBuilder.at captures the label enum).
    if helpers:
        helper.step("start", "padata_mt_helper: work runs", guard=started == 1,
                    goto="chunk")
        chunk(helper, opt, mm, iommu, ptl, finish="done", helper_side=True)
        s.symmetric("helper")
    else:
        helper.step("start", "padata_do_multithreaded: no helper thread", goto="done")

    iommu.mutex_lock(ioctl, "map", kernel="vfio_dma_do_map: mutex_lock(&iommu->lock)",
                     goto="start")
    ioctl.step("start", "vfio_pin_map_dma -> padata_do_multithreaded: queue_work helpers",
               effects={started: 1}, goto="chunk")
    chunk(ioctl, opt, mm, iommu, ptl, finish="wait", helper_side=False)
    ioctl.step("wait", "padata_do_multithreaded: wait_for_completion(&ps.completion)",
               guard=AllOf(range(helpers), lambda h: helper.at(h, "done")) if helpers else True,
               goto="unmap")
    iommu.mutex_unlock(ioctl, "unmap", kernel="vfio_dma_do_map: mutex_unlock(&iommu->lock)",
                       goto="done")

    lock_properties(s)
    if variant != "correct":
        s.expect_violated("no_lock_inversion", "no_deadlock")
    return s.build()


@dataclass(frozen=True)
class Options:
    """The build parameters that shape one thread's chunk."""

    variant: str
    pages: int
    cache: bool
    efault: bool
    fatal_signal: bool


def chunk(p: ProcessBuilder, opt: Options, mm: RwSem, iommu: Mutex, ptl: SpinLock, *,
          finish: str, helper_side: bool) -> None:
    """vfio_pin_map_dma_chunk for one thread, from label "chunk" to `finish`."""
    variant, pages, cache = opt.variant, opt.pages, opt.cache

    def write_lock(label: str, kernel: str, goto: str, on_eintr: str) -> None:
        """mmap_write_lock_killable; without fatal signals it can only succeed or wait."""
        if opt.fatal_signal:
            mm.down_write_killable(p, label, kernel=kernel, goto=goto, on_eintr=on_eintr)
        else:
            mm.down_write(p, label, kernel=kernel, goto=goto)

    left = p.local("left", Int(0, pages), init=pages)
    lock_cache = p.local("lock_cache", Int(0, pages), init=0)
    failed = p.local("failed", Bool(), init=False)
    acct = "vfio_lock_acct"

    p.step("chunk", "vfio_pin_map_dma_chunk: while (unmapped_size)", guard=left == 0,
           goto="release")
    if cache and variant != "upgrade":
        p.step("chunk", "vfio_pin_map_dma_chunk: lock_cache == 0, refill",
               guard=(left > 0) & (lock_cache == 0), goto="refill")
        p.step("chunk", "vfio_pin_map_dma_chunk: lock_cache > 0", guard=(left > 0) & (
            lock_cache > 0), goto="gup")
        write_lock("refill", f"{acct}: mmap_write_lock_killable", "refill_acct", "release")
        p.step("refill_acct", "__account_locked_vm: locked_vm += min(unmapped, CACHE)",
               effects={lock_cache: left}, goto="refill_unlock")
        mm.up_write(p, "refill_unlock", kernel=f"{acct}: mmap_write_unlock", goto="gup")
    else:
        p.step("chunk", "vfio_pin_map_dma_chunk -> vfio_pin_pages_remote", guard=left > 0,
               goto="gup")

    after_gup = "gup_unlock"
    if variant == "ptl_inversion":
        ptl.spin_lock(p, "gup", kernel="vfio_pin_pages_remote: pmd_lock (prefault peek)",
                      goto="gup_read")
        mm.down_read(p, "gup_read", kernel="vaddr_get_pfns: mmap_read_lock", goto="gup_peek")
        ptl.spin_unlock(p, "gup_peek", kernel="vfio_pin_pages_remote: spin_unlock(pmd)",
                        goto="walk")
    else:
        mm.down_read(p, "gup", kernel="vaddr_get_pfns: mmap_read_lock", goto="walk")
    ptl.spin_lock(p, "walk", kernel="pin_user_pages_remote -> follow_pmd_mask: pmd_lock",
                  goto="pin")
    pinned = {left: left - 1}
    if cache and variant != "upgrade":
        pinned[lock_cache] = lock_cache - 1
    p.step("pin", "follow_page_pte: try_grab_page(FOLL_PIN)", effects=pinned,
           goto="walk_unlock")
    if opt.efault:
        p.step("pin", "__get_user_pages: -EFAULT (no vma / fault failed)", note="-EFAULT",
               effects={failed: True}, goto="walk_unlock")
    next_after_walk = {
        "recursive_read": "nested",
        "upgrade": "upgrade_acct",
        "iommu_inversion": "vpfn" if helper_side else after_gup,
    }.get(variant, after_gup)
    ptl.spin_unlock(p, "walk_unlock", kernel="follow_pmd_mask: spin_unlock(ptl)",
                    goto=next_after_walk)
    if variant == "recursive_read":
        mm.down_read(p, "nested", kernel="vaddr_get_pfns -> pin_user_pages_unlocked: "
                     "mmap_read_lock", goto="nested_unlock")
        mm.up_read(p, "nested_unlock", kernel="pin_user_pages_unlocked: mmap_read_unlock",
                   goto=after_gup)
    if variant == "upgrade":
        write_lock("upgrade_acct", f"vaddr_get_pfns -> {acct}: mmap_write_lock_killable "
                   "(mmap_lock held for read)", "upgrade_unlock", after_gup)
        mm.up_write(p, "upgrade_unlock", kernel=f"{acct}: mmap_write_unlock", goto=after_gup)
    if variant == "iommu_inversion" and helper_side:
        iommu.mutex_lock(p, "vpfn", kernel="vfio_pin_pages_remote: mutex_lock(&iommu->lock) "
                         "for vfio_find_vpfn", goto="vpfn_unlock")
        iommu.mutex_unlock(p, "vpfn_unlock", kernel="vfio_find_vpfn done: mutex_unlock",
                           goto=after_gup)
    uncached = not cache or variant == "upgrade"
    mm.up_read(p, after_gup, kernel="vaddr_get_pfns: mmap_read_unlock", goto="gup_done")
    p.step("gup_done", "vfio_pin_pages_remote: vaddr_get_pfns failed, goto unpin_out",
           note="error: the chunk breaks out", guard=failed, goto="release")
    p.step("gup_done", "vfio_pin_pages_remote: pages pinned", guard=~failed,
           goto="charge" if uncached and variant != "upgrade" else "chunk")
    if uncached and variant != "upgrade":
        write_lock("charge", f"vfio_pin_pages_remote out: {acct}: mmap_write_lock_killable",
                   "charge_unlock", "release")
        mm.up_write(p, "charge_unlock", kernel=f"{acct}: mmap_write_unlock", goto="chunk")

    p.step("release", "vfio_pin_map_dma_chunk: vfio_lock_acct(dma, -lock_cache)",
           note="lock_cache == 0: returns at once", guard=lock_cache == 0, goto=finish)
    p.step("release", "vfio_pin_map_dma_chunk: vfio_lock_acct(dma, -lock_cache)",
           note="unused cache to give back", guard=lock_cache > 0, goto="uncharge")
    write_lock("uncharge", f"{acct}(-lock_cache): mmap_write_lock_killable", "uncharge_acct",
               finish)
    p.step("uncharge_acct", "__account_locked_vm: locked_vm -= lock_cache",
           effects={lock_cache: 0}, goto="uncharge_unlock")
    mm.up_write(p, "uncharge_unlock", kernel=f"{acct}: mmap_write_unlock", goto=finish)
