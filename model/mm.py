"""A simulated mm_struct for the VFIO pinning model: pages, locked_vm, mmap_lock, signals.

What the vfio code of v5.16 needs from mm/ and the scheduler, one function per kernel
function it calls:

- ``__account_locked_vm`` (mm/util.c) checks RLIMIT_MEMLOCK and moves ``mm.locked_vm``;
  the caller holds mmap_lock for write (asserted with the rw_semaphore twin).
- ``pin_user_pages_remote`` (mm/gup.c) pins consecutive pages of ordinary vmas; it stops
  at a VM_PFNMAP vma (check_vma_flags: -EFAULT) and at a page that cannot be faulted in
  (-EFAULT), and returns -EINTR at a page when the caller has a fatal signal pending
  (__get_user_pages checks fatal_signal_pending() before each page). Like the kernel it
  returns the number pinned so far, or the error if that number is 0.
- ``follow_fault_pfn``'s result for a VM_PFNMAP page, ``is_invalid_reserved_pfn``,
  ``unpin_user_page`` and ``fatal_signal_pending``.

Pages are given as a layout string, one letter per page of the DMA range:

- ``N`` normal anonymous memory: pinned, accounted to locked_vm;
- ``R`` reserved/PFNMAP (e.g. an mmap'd MMIO BAR): not pinned, never accounted
  (is_invalid_reserved_pfn);
- ``P`` already pinned through the mdev pinning interface (a ``vfio_pfn`` exists, so
  ``vfio_find_vpfn`` finds it): pinned once more, not accounted again;
- ``F`` a user address that faults: ``pin_user_pages_remote`` fails there with -EFAULT.

A ``|`` between two letters starts a new physically contiguous run (the pfns jump), as
between two THP or hugetlb pages: vfio_pin_pages_remote then ends its run there
(``goto out``), which is what makes upstream take mmap_lock for write once per run.

Abstractions: zero pages, hugetlb and THP
compound pages are not modelled (they only change how many pages one GUP call returns,
which the model's batch capacity already varies). ``locked_vm`` is an unbounded Python
int: an underflow shows as a negative value where the kernel would WARN and wrap.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from model.locks import EINTR
from model.rwsem import RwSemaphore, mmap_assert_write_locked

EFAULT: Final[int] = 14
ENOMEM: Final[int] = 12
PFN_BASE: Final[int] = 0x1000
"""pfn of page 0; nonzero because vfio uses pfn_base == 0 as "not set yet"."""

TaskId = Hashable


class PageKind(Enum):
    """What backs one user page of the DMA range (a layout letter)."""

    NORMAL = "N"
    RESERVED = "R"
    PINNED = "P"
    EFAULT = "F"


@dataclass
class Page:
    """One user page: its kind and pfn, whether this MAP_DMA pins it, IOMMU mapping."""

    index: int
    kind: PageKind
    pfn: int
    pinned: int = 0  # pins taken by this MAP_DMA (0 or 1)
    iommu_mapped: bool = False

    @property
    def accountable(self) -> bool:
        """A page whose pin this MAP_DMA must charge to locked_vm."""
        return self.kind is PageKind.NORMAL


def parse_layout(layout: str) -> list[tuple[PageKind, int]]:
    """'NN|RP' -> (kind, pfn) per page; ValueError naming the first bad letter."""
    pages: list[tuple[PageKind, int]] = []
    pfn = PFN_BASE
    for ch in layout:
        if ch == "|":
            pfn += 2  # a hole in the physical address space: the run ends
            continue
        try:
            pages.append((PageKind(ch), pfn))
        except ValueError:
            raise ValueError(f"layout letter {ch!r} at page {len(pages)} is not one of "
                             "N, R, P, F or |") from None
        pfn += 1
    if not pages:
        raise ValueError("the layout is empty")
    return pages


@dataclass
class Task:
    """A task_struct: the MAP_DMA caller (can be killed) or a padata kworker (cannot)."""

    tid: TaskId
    killable: bool
    fatal_signal: bool = False


@dataclass
class MmStruct:
    """struct mm_struct, reduced to what vfio pinning touches."""

    pages: list[Page]
    locked_vm: int
    rlimit_memlock: int  # task_rlimit(task, RLIMIT_MEMLOCK) >> PAGE_SHIFT
    mmap_lock: RwSemaphore = field(default_factory=lambda: RwSemaphore("mmap_lock"))
    tasks: dict[TaskId, Task] = field(default_factory=dict)
    pages_pinned: int = 0  # metric: pin_user_pages_remote pins taken
    account_calls: int = 0  # metric: __account_locked_vm calls

    pfn_index: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pfn_index = {p.pfn: p.index for p in self.pages}

    @classmethod
    def from_layout(cls, layout: str, locked_vm: int, rlimit_memlock: int) -> MmStruct:
        pages = [Page(i, k, pfn) for i, (k, pfn) in enumerate(parse_layout(layout))]
        return cls(pages, locked_vm, rlimit_memlock)

    def task(self, tid: TaskId) -> Task:
        return self.tasks[tid]

    def accountable_pinned(self) -> int:
        """Pages this MAP_DMA pinned that locked_vm must cover."""
        return sum(p.pinned for p in self.pages if p.accountable)

    def accountable_total(self) -> int:
        """Every page of the range that really needs accounting if pinned."""
        return sum(1 for p in self.pages if p.accountable)


def fatal_signal_pending(task: Task) -> bool:
    """include/linux/sched/signal.h; kworkers (padata helpers) never see signals."""
    return task.killable and task.fatal_signal


def __account_locked_vm(mm: MmStruct, pages: int, inc: bool, task: Task,
                        bypass_rlim: bool) -> int:
    """mm/util.c: charge or uncharge ``pages``; -ENOMEM if RLIMIT_MEMLOCK would be exceeded."""
    mmap_assert_write_locked(mm, task.tid)
    mm.account_calls += 1
    locked_vm = mm.locked_vm
    ret = 0
    if inc:
        if not bypass_rlim and locked_vm + pages > mm.rlimit_memlock:
            ret = -ENOMEM
        if not ret:
            mm.locked_vm = locked_vm + pages
    else:
        # WARN_ON_ONCE(pages > locked_vm): the model keeps the negative value visible.
        mm.locked_vm = locked_vm - pages
    return ret


def pin_user_pages_remote(mm: MmStruct, start: int, nr_pages: int, task: Task,
                          pages: list[Page]) -> int:
    """mm/gup.c __get_user_pages: pin up to nr_pages from ``start``; count or -errno.

    Per page, in the kernel's order: a VM_PFNMAP vma fails check_vma_flags (-EFAULT), a
    pending fatal signal stops the walk (-EINTR), a page that cannot be faulted in fails
    (-EFAULT). The walk returns the pages pinned so far when it stops after the first.
    """
    pages.clear()
    i = 0
    ret = 0
    while i < nr_pages and start + i < len(mm.pages):
        page = mm.pages[start + i]
        if page.kind is PageKind.RESERVED:
            ret = -EFAULT
            break
        if fatal_signal_pending(task):
            ret = -EINTR
            break
        if page.kind is PageKind.EFAULT:
            ret = -EFAULT
            break
        page.pinned += 1
        mm.pages_pinned += 1
        pages.append(page)
        i += 1
    return i if i else ret


def vma_is_pfnmap(mm: MmStruct, index: int) -> bool:
    """vma_lookup(mm, vaddr)->vm_flags & VM_PFNMAP: reserved pages live in PFNMAP vmas."""
    return 0 <= index < len(mm.pages) and mm.pages[index].kind is PageKind.RESERVED


def follow_fault_pfn(mm: MmStruct, index: int) -> int:
    """follow_pte on a populated VM_PFNMAP pte: the pfn (fixup_user_fault is not needed)."""
    return mm.pages[index].pfn


def page_of_pfn(mm: MmStruct, pfn: int) -> Page:
    """pfn_to_page."""
    return mm.pages[mm.pfn_index[pfn]]


def is_invalid_reserved_pfn(mm: MmStruct, pfn: int) -> bool:
    """vfio: !pfn_valid(pfn) || PageReserved(pfn_to_page(pfn))."""
    return page_of_pfn(mm, pfn).kind is PageKind.RESERVED


def unpin_user_page(page: Page) -> None:
    """mm/gup.c: drop the pin taken by pin_user_pages_remote."""
    if page.pinned <= 0:
        raise RuntimeError(f"unpin of page {page.index}, which is not pinned")
    page.pinned -= 1

