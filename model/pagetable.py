"""The plain page table core-mm believes in: one independent entry per page.

This is the abstract model the contpte layer must refine. Each page is either not present
or present with a page frame, a write permission and young/dirty state, and the per-PTE
API has its textbook meaning (include/linux/pgtable.h): set_ptes maps consecutive frames,
ptep_get returns the entry, the clears return and remove it, test_and_clear_young
reports and clears one page's access state, wrprotect removes write permission (keeping
dirty), ptep_set_access_flags only ever makes an entry more permissive.

The hardware's effect is recorded as it happens: a walk or descriptor update (the MMU
setting PTE_AF) makes the page young, a completed store makes it dirty - including a store
through a cached writable TLB entry, which updates no descriptor at all. (An access that
hits the TLB does not set PTE_AF on any architecture state, so it is not "young": ageing
without a TLB flush is allowed to miss it, as MGLRU's look-around does.) There is no TLB and no
contiguous bit: those are what the refinement hides.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class PlainPte:
    """What core-mm can observe of one present entry."""

    pfn: int
    write: bool
    young: bool
    dirty: bool


class PlainPageTable:
    """Per-page entries; None means not present (pte_none)."""

    def __init__(self, nr_ptes: int) -> None:
        self.entries: list[PlainPte | None] = [None] * nr_ptes

    def __len__(self) -> int:
        return len(self.entries)

    def set_ptes(self, i: int, pte: PlainPte, nr: int = 1) -> None:
        for k in range(nr):
            self.entries[i + k] = replace(pte, pfn=pte.pfn + k)

    def ptep_get(self, i: int) -> PlainPte | None:
        return self.entries[i]

    def ptep_get_and_clear(self, i: int) -> PlainPte | None:
        old, self.entries[i] = self.entries[i], None
        return old

    def get_and_clear_full_ptes(self, i: int, nr: int) -> PlainPte | None:
        """The first entry with the young/dirty state of the whole range OR-ed in."""
        first = self.ptep_get_and_clear(i)
        for k in range(1, nr):
            e = self.ptep_get_and_clear(i + k)
            if first is not None and e is not None:
                first = replace(first, young=first.young or e.young,
                                dirty=first.dirty or e.dirty)
        return first

    def clear_full_ptes(self, i: int, nr: int) -> None:
        for k in range(nr):
            self.entries[i + k] = None

    def ptep_test_and_clear_young(self, i: int) -> bool:
        e = self.entries[i]
        if e is None:
            return False
        self.entries[i] = replace(e, young=False)
        return e.young

    def wrprotect_ptes(self, i: int, nr: int = 1) -> None:
        for k in range(nr):
            e = self.entries[i + k]
            if e is not None:
                self.entries[i + k] = replace(e, write=False)

    def ptep_set_access_flags(self, i: int, young: bool, dirty: bool, write: bool) -> bool:
        """Raise young/dirty/write to at least the requested values; report a change."""
        e = self.entries[i]
        if e is None:
            return False
        new = replace(e, young=e.young or young, dirty=e.dirty or dirty, write=e.write or write)
        self.entries[i] = new
        return new != e

    # -------------------------------------------------------------- hardware
    def hw_access(self, i: int, young: bool, dirty: bool) -> None:
        """The MMU set page i's access flag (young) and/or stored to it (dirty)."""
        e = self.entries[i]
        if e is not None:
            self.entries[i] = replace(e, young=e.young or young, dirty=e.dirty or dirty)
