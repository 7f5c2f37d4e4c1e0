"""The TLB and the hardware agent (an MMU with FEAT_HAFDBS) that races with the kernel.

Architecture (Arm ARM D8.4 hardware management of the access flag and dirty state,
D8.7.1 the Contiguous bit), reduced to what the contpte layer depends on:

- A walk reads the descriptor of the accessed page; an invalid descriptor faults. With
  hardware access-flag management the walker sets PTE_AF by an atomic read-modify-write
  of that descriptor, and for a write to a PTE_DBM descriptor it also clears PTE_RDONLY in
  the same update (the page becomes hardware-dirty).
- The TLB caches the translation: a descriptor with PTE_CONT yields one entry covering the
  whole aligned block of CONT_PTES pages, otherwise one page entry. Entries stay until an
  explicit TLBI (or an eviction, which the hardware may do at any time).
- A store that hits a cached writable entry changes no descriptor: for a block entry made
  writable by one page's update, stores to the other 15 pages leave their descriptors
  clean (which is why contpte_ptep_get gathers dirty across the block). A store that hits
  a cached read-only entry with DBM performs the dirty-state update on the descriptor *in
  memory* of the accessed page (re-read atomically); if that descriptor is no longer valid
  or no longer has DBM, the access faults instead.
- Two entries matching one virtual page are a TLB conflict (the condition break-before-
  make prevents; the architecture may raise a TLB conflict abort or return garbage).

Abstracted: one hardware agent with one TLB (a CPU running the user code; the kernel
threads do not access user memory), no ASIDs, no walk caches, and the output address of a
cached entry is not tracked (conflicts and permissions are what the properties need).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from model.pte import PteLayout


@dataclass
class TlbEntry:
    """One cached translation: pages [start, start + size) from descriptor `word`."""

    start: int
    size: int
    word: int
    source: int  # the page whose descriptor was walked

    def covers(self, page: int) -> bool:
        return self.start <= page < self.start + self.size


@dataclass
class Tlb:
    """A TLB that keeps every entry until invalidated or evicted."""

    cont_ptes: int
    entries: list[TlbEntry] = field(default_factory=list)
    conflicts_seen: int = 0

    def lookup(self, page: int) -> list[TlbEntry]:
        return [e for e in self.entries if e.covers(page)]

    def fill(self, page: int, word: int, layout: PteLayout) -> TlbEntry:
        if layout.pte_cont(word):
            start = page - page % self.cont_ptes
            entry = TlbEntry(start, self.cont_ptes, word, page)
        else:
            entry = TlbEntry(page, 1, word, page)
        if any(self.lookup(p) for p in range(entry.start, entry.start + entry.size)):
            self.conflicts_seen += 1
        self.entries.append(entry)
        return entry

    def invalidate(self, start: int, end: int) -> int:
        """TLBI by VA for every page of [start, end); returns how many entries went."""
        keep = [e for e in self.entries
                if e.start + e.size <= start or e.start >= end]
        gone = len(self.entries) - len(keep)
        self.entries = keep
        return gone

    def evict(self, entry: TlbEntry) -> None:
        self.entries.remove(entry)

    def conflicting_pages(self) -> list[int]:
        """Virtual pages matched by more than one entry (property `bbm`)."""
        pages = {p for e in self.entries for p in range(e.start, e.start + e.size)}
        return sorted(p for p in pages if len(self.lookup(p)) > 1)


@dataclass(frozen=True)
class HwEvent:
    """What one hardware access did, for the plain page table running alongside."""

    page: int
    write: bool
    outcome: str  # "walk", "dbm", "hit", "fault", "conflict"
    young: bool = False  # the MMU set PTE_AF on the page's descriptor (a walk or an update)
    wrote: bool = False  # a store completed: the page's data changed


class Mmu:
    """The hardware agent: translates user accesses against the live PTE words."""

    def __init__(self, words: list[int], layout: PteLayout, tlb: Tlb) -> None:
        self.words, self.layout, self.tlb = words, layout, tlb

    def access(self, page: int, write: bool) -> HwEvent:
        """One user load (write=False) or store (write=True) to `page`, atomically."""
        hits = self.tlb.lookup(page)
        if len(hits) > 1:
            return HwEvent(page, write, "conflict")
        if not hits:
            return self._walk(page, write)
        entry = hits[0]
        lay = self.layout
        if not write:
            return HwEvent(page, write, "hit")
        if not entry.word & lay.rdonly:  # cached writable: no descriptor update at all
            return HwEvent(page, write, "hit", wrote=True)
        if not entry.word & lay.dbm:
            return HwEvent(page, write, "fault")  # permission fault: core-mm's do_wp_page
        desc = self.words[page]
        if not lay.pte_valid(desc) or not desc & lay.dbm:
            return HwEvent(page, write, "fault")
        self.words[page] = (desc & ~lay.rdonly) | lay.af
        entry.word = (entry.word & ~lay.rdonly) | lay.af
        return HwEvent(page, write, "dbm", young=True, wrote=True)

    def _walk(self, page: int, write: bool) -> HwEvent:
        lay = self.layout
        desc = self.words[page]
        if not lay.pte_valid(desc):
            return HwEvent(page, write, "fault")  # translation fault: core-mm's fault path
        new = desc | lay.af
        if write and not desc & lay.dbm and desc & lay.rdonly:
            return HwEvent(page, write, "fault")  # read-only without DBM: permission fault
        if write:
            new &= ~lay.rdonly
        self.words[page] = new
        self.tlb.fill(page, new, lay)
        return HwEvent(page, write, "walk", young=True, wrote=write)

    def evict(self, pick: Callable[[list[TlbEntry]], TlbEntry | None]) -> TlbEntry | None:
        """Drop one cached entry (chosen by `pick`), as replacement may at any time."""
        if not self.tlb.entries:
            return None
        entry = pick(self.tlb.entries)
        if entry is not None:
            self.tlb.evict(entry)
        return entry
