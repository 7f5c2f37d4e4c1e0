"""arm64's contpte layer (v6.9): the public PTE API core-mm calls, folding blocks of PTEs.

Mirrors arch/arm64/mm/contpte.c and the CONFIG_ARM64_CONTPTE wrappers of
arch/arm64/include/asm/pgtable.h as merged for v6.9 (Ryan Roberts' series "Transparent
Contiguous PTEs for User Mappings", v6, patches 12-18). Addresses are PTE indices in one
table; a folio is a naturally aligned run of `folio_pages` page frames.

Every function is a generator that yields before each PTE access or TLB flush (see
model/steps.py); `run()` calls it to completion. The yielded `Point.site` is the label of
the matching step in specs/contpte.py, which is what lets a spec trace replay here.

Variants (faults the checker must find):
- `contpte`: as merged.
- `unfold_drops_dirty`: contpte_convert repaints the block without OR-ing in the access
  and dirty bits of the entries it clears.
- `no_bbm`: contpte_convert rewrites the live entries without break-before-make (reads
  instead of clearing, no TLB invalidation before the new entries are written).
- `rmw_race`: __ptep_get_and_clear is a load followed by a store of 0 instead of an xchg.

Modes for the cost counts: `batched=False` is the "contpte-basic" stage of the series
(core-mm's batch calls fall back to the generic per-PTE loops of include/linux/pgtable.h,
and ptep_set_wrprotect re-reads the entry), `fold=False` leaves out automatic folding.
"""

from __future__ import annotations

from model.arm64_pgtable import Costs, PteTable
from model.pte import ARM64, PteLayout
from model.steps import Op
from model.tlb import Mmu

VARIANTS = ("contpte", "unfold_drops_dirty", "no_bbm", "rmw_race")


class ContPteMm:
    """One user mm's PTE table behind the v6.9 contpte API, with its MMU and TLB."""

    def __init__(self, nr_ptes: int = 16, cont_ptes: int = 16, *, layout: PteLayout = ARM64,
                 variant: str = "contpte", batched: bool = True, fold: bool = True,
                 folio_pages: int | None = None) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; one of {VARIANTS}")
        if cont_ptes < 2 or cont_ptes & (cont_ptes - 1):
            raise ValueError("CONT_PTES must be a power of two >= 2")
        self.variant, self.batched, self.fold = variant, batched, fold
        self.C = cont_ptes
        self.folio_pages = folio_pages or cont_ptes
        self.layout = layout
        self.table = PteTable(nr_ptes, layout, cont_ptes, rmw_race=variant == "rmw_race")
        self.mmu = Mmu(self.table.words, layout, self.table.tlb)

    @property
    def words(self) -> list[int]:
        return self.table.words

    @property
    def costs(self) -> Costs:
        return self.table.costs

    def align_down(self, i: int) -> int:
        return i - i % self.C

    # ================================================================ contpte.c
    def contpte_convert(self, i: int, pte: int) -> Op[None]:
        """Break-before-make repaint of the whole block with `pte` (+ gathered AF/dirty)."""
        lay, t, C = self.layout, self.table, self.C
        start = self.align_down(i)
        pte = lay.pfn_pte(lay.pte_pfn(pte) - lay.pte_pfn(pte) % C, lay.pte_pgprot(pte))
        self.costs.converts += 1
        for k in range(C):
            if self.variant == "no_bbm":
                ptent = yield from t.load("cv_clear", "contpte_convert (no BBM): __ptep_get",
                                          start + k)
            else:
                ptent = yield from t.get_and_clear_raw(start + k, "cv_clear", "contpte_convert")
            if self.variant == "unfold_drops_dirty":
                continue
            if lay.pte_dirty(ptent):
                pte = lay.pte_mkdirty(pte)
            if lay.pte_young(ptent):
                pte = lay.pte_mkyoung(pte)
        if self.variant != "no_bbm":
            yield from t.flush("cv_flush", "contpte_convert: __flush_tlb_range", start,
                               start + C)
        yield from t.set_ptes_raw(start, pte, C, "cv_write", "contpte_convert")

    def contpte_try_fold_slow(self, i: int, pte: int) -> Op[None]:
        """__contpte_try_fold: one folio covers the block, all entries match but AF/dirty."""
        lay, C = self.layout, self.C
        pfn = lay.pte_pfn(pte)
        folio_start = i - pfn % self.folio_pages
        folio_end = folio_start + self.folio_pages
        cont_start = self.align_down(i)
        if folio_start > cont_start or folio_end < cont_start + C:
            return
        expected = lay.pfn_pte(pfn - pfn % C, lay.pte_pgprot(lay.pte_mkold(lay.pte_mkclean(pte))))
        for k in range(C):
            sub = yield from self.table.ptep_get_raw(cont_start + k, "fold_read",
                                                     "__contpte_try_fold")
            if not lay.pte_same(lay.pte_mkold(lay.pte_mkclean(sub)), expected):
                return
            if k + 1 < C:  # the kernel also advances past the block; the value is unused
                expected = lay.pte_advance_pfn(expected, 1)
        yield from self.contpte_convert(i, lay.pte_mkcont(pte))

    def contpte_try_fold(self, i: int, pte: int) -> Op[None]:
        """contpte_try_fold (pgtable.h): only when setting the last entry of an aligned block."""
        lay, mask = self.layout, self.C - 1
        if not self.fold or i & mask != mask:
            return
        if lay.pte_pfn(pte) & mask == mask and lay.pte_valid(pte) and not lay.pte_cont(pte):
            yield from self.contpte_try_fold_slow(i, pte)

    def contpte_try_unfold(self, i: int, pte: int) -> Op[None]:
        """contpte_try_unfold -> __contpte_try_unfold: repaint the block without PTE_CONT."""
        if self.layout.pte_valid_cont(pte):
            yield from self.contpte_convert(i, self.layout.pte_mknoncont(pte))

    def contpte_try_unfold_partial(self, i: int, nr: int) -> Op[None]:
        """Unfold a block the range [i, i + nr) covers only in part, at either end."""
        t = self.table
        if i != self.align_down(i) or nr < self.C:
            pte = yield from t.ptep_get_raw(i, "part_first", "contpte_try_unfold_partial")
            yield from self.contpte_try_unfold(i, pte)
        if (i + nr) % self.C:
            last = i + nr - 1
            pte = yield from t.ptep_get_raw(last, "part_last", "contpte_try_unfold_partial")
            yield from self.contpte_try_unfold(last, pte)

    def contpte_ptep_get(self, i: int, orig: int) -> Op[int]:
        """Gather AF/dirty from every entry of the block (the PTL keeps the block stable)."""
        lay = self.layout
        start = self.align_down(i)
        for k in range(self.C):
            pte = yield from self.table.ptep_get_raw(start + k, "get_gather", "contpte_ptep_get")
            if lay.pte_dirty(pte):
                orig = lay.pte_mkdirty(orig)
            if lay.pte_young(pte):
                orig = lay.pte_mkyoung(orig)
        return orig

    def contpte_ptep_get_lockless(self, i: int) -> Op[int]:
        """Without the PTL: retry until one pass sees a consistent block."""
        lay, t = self.layout, self.table
        start = self.align_down(i)
        while True:
            orig = yield from t.ptep_get_raw(i, "gl_orig", "contpte_ptep_get_lockless")
            if not lay.pte_valid_cont(orig):
                return orig
            orig_prot = lay.pte_pgprot(lay.pte_mkold(lay.pte_mkclean(orig)))
            pfn = lay.pte_pfn(orig) - (i - start)
            for k in range(self.C):
                pte = yield from t.ptep_get_raw(start + k, "gl_gather",
                                                "contpte_ptep_get_lockless")
                prot = lay.pte_pgprot(lay.pte_mkold(lay.pte_mkclean(pte)))
                if not lay.pte_valid_cont(pte) or lay.pte_pfn(pte) != pfn + k or \
                        prot != orig_prot:
                    break
                if lay.pte_dirty(pte):
                    orig = lay.pte_mkdirty(orig)
                if lay.pte_young(pte):
                    orig = lay.pte_mkyoung(orig)
            else:
                return orig

    def contpte_set_ptes(self, i: int, pte: int, nr: int) -> Op[None]:
        """Map nr > 1 not-present entries, with PTE_CONT on every fully covered block."""
        lay, C = self.layout, self.C
        end, pfn, prot = i + nr, lay.pte_pfn(pte), lay.pte_pgprot(pte)
        while i != end:
            nxt = min(self.align_down(i) + C, end)
            pte = lay.pfn_pte(pfn, prot)
            if i % C == 0 and nxt % C == 0 and pfn % C == 0:
                pte = lay.pte_mkcont(pte)
            else:
                pte = lay.pte_mknoncont(pte)
            yield from self.table.set_ptes_raw(i, pte, nxt - i, "csp_write", "contpte_set_ptes")
            pfn += nxt - i
            i = nxt

    def clear_full_raw(self, i: int, nr: int) -> Op[None]:
        """__clear_full_ptes: __ptep_get_and_clear on each entry."""
        for k in range(nr):
            yield from self.table.get_and_clear_raw(i + k, "clr_xchg", "__clear_full_ptes")

    def get_and_clear_full_raw(self, i: int, nr: int) -> Op[int]:
        """__get_and_clear_full_ptes: clear each entry, OR AF/dirty into the first's value."""
        lay = self.layout
        pte = yield from self.table.get_and_clear_raw(i, "clr_xchg", "__get_and_clear_full_ptes")
        for k in range(1, nr):
            tmp = yield from self.table.get_and_clear_raw(i + k, "clr_xchg",
                                                          "__get_and_clear_full_ptes")
            if lay.pte_dirty(tmp):
                pte = lay.pte_mkdirty(pte)
            if lay.pte_young(tmp):
                pte = lay.pte_mkyoung(pte)
        return pte

    def contpte_test_and_clear_young(self, i: int) -> Op[bool]:
        """Clear AF on the whole block: core-mm tracks access per folio, one folio per block."""
        start, young = self.align_down(i), False
        for k in range(self.C):
            young |= yield from self.table.test_and_clear_young_raw(
                start + k, "tcyr", "contpte_ptep_test_and_clear_young")
        return young

    def wrprotect_raw(self, i: int, nr: int) -> Op[None]:
        """__wrprotect_ptes: __ptep_set_wrprotect (READ_ONCE + cmpxchg loop) per entry."""
        for k in range(nr):
            pte = yield from self.table.ptep_get_raw(i + k, "wp_load", "__ptep_set_wrprotect")
            yield from self.table.set_wrprotect_raw(i + k, pte, "wp_cmpxchg",
                                                    "__ptep_set_wrprotect")

    # ================================================================ pgtable.h API
    def set_ptes(self, i: int, pte: int, nr: int = 1) -> Op[None]:
        """set_ptes: nr == 1 unfolds the target's block, writes, then maybe folds."""
        pte = self.layout.pte_mknoncont(pte)
        if nr == 1:
            cur = yield from self.table.ptep_get_raw(i, "sp_read", "set_ptes")
            yield from self.contpte_try_unfold(i, cur)
            yield from self.table.set_ptes_raw(i, pte, 1, "sp_write", "set_ptes")
            yield from self.contpte_try_fold(i, pte)
        else:
            yield from self.contpte_set_ptes(i, pte, nr)

    def ptep_get(self, i: int) -> Op[int]:
        pte = yield from self.table.ptep_get_raw(i, "get_read", "ptep_get")
        if not self.layout.pte_valid_cont(pte):
            return pte
        return (yield from self.contpte_ptep_get(i, pte))

    def ptep_get_lockless(self, i: int) -> Op[int]:
        pte = yield from self.table.ptep_get_raw(i, "gl_read", "ptep_get_lockless")
        if not self.layout.pte_valid_cont(pte):
            return pte
        return (yield from self.contpte_ptep_get_lockless(i))

    def ptep_get_and_clear(self, i: int) -> Op[int]:
        cur = yield from self.table.ptep_get_raw(i, "gac_read", "ptep_get_and_clear")
        yield from self.contpte_try_unfold(i, cur)
        return (yield from self.table.get_and_clear_raw(i, "gac_xchg", "ptep_get_and_clear"))

    def clear_full_ptes(self, i: int, nr: int, full: bool = False) -> Op[None]:
        """clear_full_ptes: zap without collecting AF/dirty (anonymous folios)."""
        if not self.batched:
            for k in range(nr):
                yield from self.ptep_get_and_clear(i + k)
            return
        if nr == 1:
            cur = yield from self.table.ptep_get_raw(i, "part_first", "clear_full_ptes")
            yield from self.contpte_try_unfold(i, cur)
        else:
            yield from self.contpte_try_unfold_partial(i, nr)
        yield from self.clear_full_raw(i, nr)

    def get_and_clear_full_ptes(self, i: int, nr: int, full: bool = False) -> Op[int]:
        """get_and_clear_full_ptes: zap, returning the first entry with AF/dirty OR-ed in."""
        lay = self.layout
        if not self.batched:
            pte = yield from self.ptep_get_and_clear(i)
            for k in range(1, nr):
                tmp = yield from self.ptep_get_and_clear(i + k)
                if lay.pte_dirty(tmp):
                    pte = lay.pte_mkdirty(pte)
                if lay.pte_young(tmp):
                    pte = lay.pte_mkyoung(pte)
            return pte
        if nr == 1:
            cur = yield from self.table.ptep_get_raw(i, "part_first", "get_and_clear_full_ptes")
            yield from self.contpte_try_unfold(i, cur)
        else:
            yield from self.contpte_try_unfold_partial(i, nr)
        return (yield from self.get_and_clear_full_raw(i, nr))

    def ptep_test_and_clear_young(self, i: int) -> Op[bool]:
        orig = yield from self.table.ptep_get_raw(i, "tcy_read", "ptep_test_and_clear_young")
        if not self.layout.pte_valid_cont(orig):
            return (yield from self.table.test_and_clear_young_raw(
                i, "tcyr", "ptep_test_and_clear_young"))
        return (yield from self.contpte_test_and_clear_young(i))

    def ptep_clear_flush_young(self, i: int) -> Op[bool]:
        """As test_and_clear_young, then a TLBI without the trailing DSB if it was young."""
        t = self.table
        orig = yield from t.ptep_get_raw(i, "tcy_read", "ptep_clear_flush_young")
        if not self.layout.pte_valid_cont(orig):
            young = yield from t.test_and_clear_young_raw(i, "tcyr", "__ptep_clear_flush_young")
            if young:
                yield from t.flush("cfy_flush", "__ptep_clear_flush_young: "
                                   "__flush_tlb_page_nosync", i, i + 1)
            return young
        young = yield from self.contpte_test_and_clear_young(i)
        if young:
            start = self.align_down(i)
            yield from t.flush("cfy_flush", "contpte_ptep_clear_flush_young: "
                               "__flush_tlb_range_nosync", start, start + self.C)
        return young

    def wrprotect_ptes(self, i: int, nr: int) -> Op[None]:
        """wrprotect_ptes (fork): a whole block is write-protected without unfolding."""
        lay, t = self.layout, self.table
        if not self.batched:
            for k in range(nr):
                yield from self.ptep_set_wrprotect(i + k)
            return
        if nr == 1:
            orig = yield from t.ptep_get_raw(i, "wp_read", "wrprotect_ptes")
            if lay.pte_cont(orig):
                yield from self.contpte_convert(i, lay.pte_mknoncont(orig))
                orig = lay.pte_mknoncont(orig)
            yield from t.set_wrprotect_raw(i, orig, "wp_cmpxchg", "wrprotect_ptes")
        else:
            yield from self.contpte_try_unfold_partial(i, nr)
            yield from self.wrprotect_raw(i, nr)

    def ptep_set_wrprotect(self, i: int) -> Op[None]:
        if self.batched:
            yield from self.wrprotect_ptes(i, 1)
            return
        cur = yield from self.table.ptep_get_raw(i, "wp_unfold_read", "ptep_set_wrprotect")
        yield from self.contpte_try_unfold(i, cur)
        yield from self.wrprotect_raw(i, 1)

    def ptep_set_access_flags(self, i: int, entry: int, dirty: bool) -> Op[bool]:
        """Make an entry more permissive (fault path); whole block unless write changes."""
        lay, t = self.layout, self.table
        orig = yield from t.ptep_get_raw(i, "saf_read", "ptep_set_access_flags")
        entry = lay.pte_mknoncont(entry)
        if not lay.pte_valid_cont(orig):
            return (yield from t.set_access_flags_raw(i, entry, dirty, "safr",
                                                      "ptep_set_access_flags"))
        orig = lay.pte_mknoncont((yield from self.ptep_get(i)))
        if orig == entry:
            return False
        if lay.pte_write(orig) == lay.pte_write(entry):
            start = self.align_down(i)
            for k in range(self.C):
                yield from t.set_access_flags_raw(start + k, entry, False, "safr",
                                                  "contpte_ptep_set_access_flags")
            if dirty:
                yield from t.flush("saf_flush", "contpte_ptep_set_access_flags: "
                                   "__flush_tlb_range", start, start + self.C)
        else:
            yield from self.contpte_convert(i, lay.pte_mknoncont(orig))
            yield from t.set_access_flags_raw(i, entry, dirty, "safr",
                                              "contpte_ptep_set_access_flags")
        return True

    # ================================================================ core-mm's flush
    def flush_tlb_range(self, i: int, nr: int) -> Op[None]:
        """The caller's flush after zap/fork/mprotect (tlb_finish_mmu, flush_tlb_range)."""
        yield from self.table.flush("mm_flush", "tlb_finish_mmu: flush_tlb_range", i, i + nr)
