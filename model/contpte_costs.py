"""Cost counts for the series' fork() and munmap() observations: basic versus batched.

`python -m model.contpte_costs` prints, for one PMD's worth of PTEs (512 with 4 KiB
pages, CONT_PTES = 16), the PTE loads, stores and atomics, TLBI instructions, TLB flush
sequences and contpte_convert calls the arm64 layer performs when core-mm (v6.9
copy_present_ptes / zap_present_ptes, which batch per folio with folio_pte_batch) forks
or unmaps a range mapped by order-0 folios or by one PTE-mapped order-9 folio, with:

- `basic`: the series' functional stage (patch 12, "contpte-basic" in the cover letter):
  no wrprotect_ptes / clear_full_ptes batch implementations, so core-mm's batch calls fall
  back to the generic per-PTE loops of include/linux/pgtable.h, and the first PTE touched in
  each folded block unfolds it (a contpte_convert: 16 exchanges, a 16-page TLBI, 16 stores);
- `batched`: v6.9 as merged (patches 13-14, 18): whole blocks are write-protected or
  cleared in place, only partially covered blocks are unfolded, and setting the last PTE
  of a block that one folio maps consistently folds it (patch 18).

Counts are of the kernel's own accesses (the MMU's are not counted) and exclude the
caller's final TLB flush, which is the same in both modes. These are operation counts, not
times: the cover letter's +1948.7% for fork of an order-9 folio is what a per-block
unfold costs in cycles on Ampere Altra; the counts show where it comes from.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from model.arm64_pgtable import Costs
from model.contpte import ContPteMm
from model.steps import run

PMD_PTES = 512


@dataclass(frozen=True)
class Row:
    scenario: str
    order: int
    mode: str
    costs: Costs


def _mm(order: int, batched: bool, nr: int) -> ContPteMm:
    """basic = patch 12 (no batch APIs, no folding); batched = v6.9 as merged."""
    return ContPteMm(nr_ptes=nr, cont_ptes=16, batched=batched, fold=batched,
                     folio_pages=1 << order)


def _mapped(order: int, batched: bool, nr: int) -> ContPteMm:
    """A range of nr pages mapped as core-mm maps it: one set_ptes per folio."""
    mm = _mm(order, batched, nr)
    lay = mm.layout
    per = min(1 << order, nr)
    for start in range(0, nr, per):
        run(mm.set_ptes(start, lay.mk_user_pte(start, writable=True), per))
    return mm


def fork(order: int, batched: bool, nr: int = PMD_PTES) -> Costs:
    """copy_present_ptes: wrprotect the parent's batch, set_ptes the child's."""
    parent = _mapped(order, batched, nr)
    child = _mm(order, batched, nr)
    before_p, before_c = parent.costs.snapshot(), child.costs.snapshot()
    per = min(1 << order, nr)
    lay = parent.layout
    for start in range(0, nr, per):
        run(parent.wrprotect_ptes(start, per))
        pte = lay.pte_wrprotect(lay.mk_user_pte(start, writable=True))
        run(child.set_ptes(start, pte, per))
    p, c = parent.costs.minus(before_p), child.costs.minus(before_c)
    return Costs(**{k: getattr(p, k) + getattr(c, k) for k in vars(p)})


def munmap(order: int, batched: bool, nr: int = PMD_PTES) -> Costs:
    """zap_present_ptes for anonymous folios: clear_full_ptes per folio batch."""
    mm = _mapped(order, batched, nr)
    before = mm.costs.snapshot()
    per = min(1 << order, nr)
    for start in range(0, nr, per):
        run(mm.clear_full_ptes(start, per, True))
    return mm.costs.minus(before)


def fault_pages(order: int, batched: bool, nr: int = PMD_PTES) -> Costs:
    """finish_fault mapping one page per fault (a write fault on a file mapping in v6.9):
    set_ptes(nr=1) for every page; with folding, the last page of each block folds it."""
    mm = _mm(order, batched, nr)
    lay = mm.layout
    for i in range(nr):
        run(mm.set_ptes(i, lay.mk_user_pte(i, writable=True), 1))
    return mm.costs.snapshot()


SCENARIOS: dict[str, Callable[[int, bool], Costs]] = {
    "fork": fork, "munmap": munmap, "fault one page at a time": fault_pages}


def table() -> list[Row]:
    rows = []
    for name, fn in SCENARIOS.items():
        for order in (0, 9):
            for mode in ("basic", "batched"):
                rows.append(Row(name, order, mode, fn(order, mode == "batched")))
    return rows


def render(rows: list[Row]) -> str:
    head = ("| scenario | folio order | mode | PTE reads | PTE writes | atomics | TLBI | "
            "flushes | converts |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        c = r.costs
        lines.append(f"| {r.scenario} | {r.order} | {r.mode} | {c.reads} | {c.writes} | "
                     f"{c.atomics} | {c.tlbi} | {c.flushes} | {c.converts} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    print(render(table()))
    print(f"\n(one PMD: {PMD_PTES} PTEs, CONT_PTES = 16; reads = loads + atomics, "
          "writes = stores + atomics)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
