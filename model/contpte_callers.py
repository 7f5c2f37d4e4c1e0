"""The core-mm call sequences that drive the contpte layer (v6.9 mm/memory.c, mm/rmap.c).

Each is a generator over a `ContPteMm` (see model/steps.py), run under the PTL except
`lockless_read`. They record the API's return value in an `OpRecord` before any trailing
TLB flush, so a checker can compare it with the plain page table at the same moment the
spec does (its return labels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from model.contpte import ContPteMm
from model.steps import Op

LOCKLESS = "lockless"
KINDS = ("map", "map1", "zap1", "zaprange", "clear", "young", "fork", "wprot1", "wpreuse",
         "get", LOCKLESS)


@dataclass
class OpRecord:
    """One core-mm operation: what was asked, and what the API answered."""

    kind: str
    start: int
    nr: int = 1
    result: Any = None
    returned: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def map_pte(mm: ContPteMm, pfn: int) -> int:
    """mk_pte(page, vma->vm_page_prot) + pte_mkwrite: writable, clean, old."""
    return mm.layout.mk_user_pte(pfn, writable=True)


def operation(mm: ContPteMm, rec: OpRecord) -> Op[Any]:
    """The core-mm caller for `rec.kind`; frames are page indices (page i maps frame i)."""
    lay, i, nr = mm.layout, rec.start, rec.nr

    def ret(value: Any) -> Any:
        rec.result, rec.returned = value, True
        return value

    match rec.kind:
        case "map":  # do_anonymous_page / filemap_map_pages: one folio, one call
            yield from mm.set_ptes(i, map_pte(mm, i), nr)
        case "map1":  # finish_fault: one page
            yield from mm.set_ptes(i, map_pte(mm, i), 1)
        case "zap1":  # try_to_unmap_one (ptep_clear_flush), ptep_modify_prot_start
            ret((yield from mm.ptep_get_and_clear(i)))
            yield from mm.flush_tlb_range(i, 1)
        case "zaprange":  # zap_present_ptes for a file folio: collect AF/dirty
            ret((yield from mm.get_and_clear_full_ptes(i, nr)))
            yield from mm.flush_tlb_range(i, nr)
        case "clear":  # zap_present_ptes for an anon folio: AF/dirty not needed
            yield from mm.clear_full_ptes(i, nr)
            ret(None)
            yield from mm.flush_tlb_range(i, nr)
        case "young":  # folio_referenced_one
            ret((yield from mm.ptep_clear_flush_young(i)))
        case "fork":  # copy_present_ptes: write-protect the parent's batch
            yield from mm.wrprotect_ptes(i, nr)
            yield from mm.flush_tlb_range(i, nr)
        case "wprot1":  # copy_present_pte for a single pte
            yield from mm.ptep_set_wrprotect(i)
            yield from mm.flush_tlb_range(i, 1)
        case "wpreuse":  # do_wp_page -> wp_page_reuse
            orig = yield from mm.ptep_get(i)
            entry = lay.pte_mkwrite_novma(lay.pte_mkdirty(lay.pte_mkyoung(orig)))
            rec.extra["entry"] = entry
            ret((yield from mm.ptep_set_access_flags(i, entry, True)))
        case "get":
            ret((yield from mm.ptep_get(i)))
        case "lockless":  # GUP-fast, handle_pte_fault's first read
            ret((yield from mm.ptep_get_lockless(i)))
        case _:
            raise ValueError(f"unknown operation {rec.kind!r}")
    return rec.result
