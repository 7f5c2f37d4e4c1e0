"""model/contpte.py and friends: the v6.9 behaviour, access by access.

Each test states a kernel fact (bit layout, a helper's effect, what a contpte path does to
the PTEs, the TLB and the cost counters) and would fail if the model did otherwise.
"""

from __future__ import annotations

import pytest

from model.contpte import ContPteMm
from model.contpte_callers import LOCKLESS, OpRecord
from model.contpte_costs import fault_pages, fork, munmap
from model.contpte_refinement import Harness
from model.pte import ARM64, COMPACT, convert_word
from model.steps import Thread, run

L = ARM64


def mapped(nr: int = 32, C: int = 16, **kw: object) -> ContPteMm:
    mm = ContPteMm(nr_ptes=nr, cont_ptes=C, **kw)  # type: ignore[arg-type]
    run(mm.set_ptes(0, L.mk_user_pte(0, writable=True), nr))
    return mm


# ---------------------------------------------------------------- pte helpers
def test_bit_positions_are_the_kernels() -> None:
    assert (L.valid, L.rdonly, L.af, L.dbm, L.cont, L.dirty) == (
        1, 1 << 7, 1 << 10, 1 << 51, 1 << 52, 1 << 55)
    assert L.write == L.dbm
    assert L.pfn_pte(5, 0) == 5 << 12


def test_dirty_table_of_pgtable_h() -> None:
    """Dirty/Writable vs PTE_RDONLY/PTE_WRITE/PTE_DIRTY, the table above set_pte_at."""
    clean_ro = L.valid | L.rdonly
    clean_rw = L.valid | L.rdonly | L.write
    dirty_ro = L.valid | L.rdonly | L.dirty
    dirty_rw = L.valid | L.write
    assert [L.pte_dirty(x) for x in (clean_ro, clean_rw, dirty_ro, dirty_rw)] == [
        False, False, True, True]
    assert [L.pte_write(x) for x in (clean_ro, clean_rw, dirty_ro, dirty_rw)] == [
        False, True, False, True]


def test_wrprotect_keeps_hardware_dirty_as_software_dirty() -> None:
    w = L.pte_wrprotect(L.valid | L.write)
    assert L.pte_dirty(w) and not L.pte_write(w) and w & L.rdonly


def test_pte_same_ignores_rdonly_and_mkcont_sets_valid() -> None:
    assert L.pte_same(L.valid | L.rdonly, L.valid)
    assert not L.pte_same(L.rdonly, 0)
    assert L.pte_valid_cont(L.pte_mkcont(0))


def test_compact_layout_round_trips() -> None:
    w = L.pte_mkcont(L.pte_mkdirty(L.mk_user_pte(3, writable=True, young=True)))
    assert convert_word(convert_word(w, L, COMPACT), COMPACT, L) == w


# ---------------------------------------------------------------- set_ptes / ptep_get
def test_set_ptes_folds_only_fully_covered_aligned_blocks() -> None:
    mm = ContPteMm(nr_ptes=48, cont_ptes=16)
    run(mm.set_ptes(8, L.mk_user_pte(8, writable=True), 40))
    assert [L.pte_cont(mm.words[i]) for i in (8, 15, 16, 31, 32, 47)] == [
        False, False, True, True, True, True]
    assert [L.pte_pfn(mm.words[i]) for i in (8, 16, 47)] == [8, 16, 47]


def test_misaligned_pfn_is_not_folded() -> None:
    mm = ContPteMm(nr_ptes=16, cont_ptes=16)
    run(mm.set_ptes(0, L.mk_user_pte(1, writable=True), 16))
    assert not any(L.pte_cont(w) for w in mm.words)


def test_ptep_get_gathers_young_and_dirty_of_the_block() -> None:
    mm = mapped()
    assert mm.mmu.access(5, write=True).outcome == "walk"
    got = run(mm.ptep_get(12))
    assert L.pte_young(got) and L.pte_dirty(got) and L.pte_pfn(got) == 12
    assert not L.pte_dirty(run(mm.ptep_get(20)))  # the other block is untouched


# ---------------------------------------------------------------- unfold / fold
def test_get_and_clear_unfolds_with_break_before_make() -> None:
    mm = mapped()
    mm.mmu.access(3, write=True)
    assert mm.table.tlb.entries and mm.table.tlb.entries[0].size == 16
    before = mm.costs.snapshot()
    got = run(mm.ptep_get_and_clear(7))
    c = mm.costs.minus(before)
    assert (c.converts, c.flushes, c.tlbi, c.atomics, c.stores) == (1, 1, 16, 17, 16)
    assert not mm.table.tlb.entries  # invalidated before the new entries were written
    assert L.pte_dirty(got) and mm.words[7] == 0
    others = [w for i, w in enumerate(mm.words[:16]) if i != 7]
    assert all(not L.pte_cont(w) and L.pte_dirty(w) for w in others)  # dirty spread


def test_setting_the_last_pte_refolds_the_block() -> None:
    mm = mapped()
    old = run(mm.ptep_get_and_clear(15))
    assert not any(L.pte_cont(w) for w in mm.words[:16])
    run(mm.set_ptes(15, old, 1))
    assert all(L.pte_cont(w) for w in mm.words[:16])
    assert mm.costs.converts == 2


@pytest.mark.parametrize("why", ["prot", "folio", "middle"])
def test_fold_is_refused_when_the_block_does_not_match(why: str) -> None:
    mm = mapped(folio_pages=8 if why == "folio" else 16)
    run(mm.ptep_get_and_clear(15))
    if why == "prot":
        run(mm.ptep_set_wrprotect(3))
    if why == "middle":
        run(mm.ptep_get_and_clear(4))
    run(mm.set_ptes(15, L.mk_user_pte(15, writable=True), 1))
    assert not any(L.pte_cont(w) for w in mm.words[:16])


def test_fold_disabled_and_single_page_set_leaves_block_unfolded() -> None:
    mm = mapped(fold=False)
    run(mm.set_ptes(15, run(mm.ptep_get_and_clear(15)), 1))
    assert not any(L.pte_cont(w) for w in mm.words[:16])


# ---------------------------------------------------------------- batched APIs
def test_wrprotect_of_whole_blocks_keeps_them_folded() -> None:
    mm = mapped()
    mm.mmu.access(2, write=True)
    run(mm.wrprotect_ptes(0, 32))
    assert mm.costs.converts == 0
    assert all(L.pte_cont(w) and not L.pte_write(w) for w in mm.words)
    assert L.pte_dirty(run(mm.ptep_get(9)))  # hardware dirty moved to PTE_DIRTY


def test_partial_range_unfolds_only_its_end_blocks() -> None:
    mm = mapped(48)
    run(mm.clear_full_ptes(4, 30))  # pages 4..33: blocks 0 and 2 partially covered
    assert mm.costs.converts == 2
    assert all(w == 0 for w in mm.words[4:34])
    assert not L.pte_cont(mm.words[0]) and not L.pte_cont(mm.words[40])


def test_get_and_clear_full_returns_the_batch_state() -> None:
    mm = mapped()
    mm.mmu.access(21, write=False)
    mm.mmu.access(30, write=True)
    got = run(mm.get_and_clear_full_ptes(16, 16))
    assert L.pte_pfn(got) == 16 and L.pte_young(got) and L.pte_dirty(got)
    assert mm.costs.converts == 0


def test_clear_flush_young_clears_the_whole_block() -> None:
    mm = mapped()
    mm.mmu.access(6, write=False)
    assert run(mm.ptep_clear_flush_young(0)) is True
    assert not any(L.pte_young(w) for w in mm.words[:16])
    assert not mm.table.tlb.entries
    assert run(mm.ptep_clear_flush_young(0)) is False


def test_set_access_flags_unfolds_when_write_changes() -> None:
    mm = mapped()
    run(mm.wrprotect_ptes(0, 16))
    orig = run(mm.ptep_get(5))
    entry = L.pte_mkwrite_novma(L.pte_mkdirty(L.pte_mkyoung(orig)))
    assert run(mm.ptep_set_access_flags(5, entry, True)) is True
    assert mm.costs.converts == 1
    assert L.pte_write(mm.words[5]) and not L.pte_write(mm.words[6])


def test_set_access_flags_same_write_updates_every_entry() -> None:
    mm = mapped()
    entry = L.pte_mkyoung(run(mm.ptep_get(5)))
    assert run(mm.ptep_set_access_flags(5, entry, False)) is True
    assert all(L.pte_young(w) and L.pte_cont(w) for w in mm.words[:16])
    assert run(mm.ptep_set_access_flags(5, entry, False)) is False  # gathered: no change


# ---------------------------------------------------------------- lockless reads
def test_lockless_read_retries_across_an_unfold() -> None:
    h = Harness(ContPteMm(nr_ptes=4, cont_ptes=4, layout=COMPACT))
    h.run("cpu", OpRecord("map", 0, 4))
    h.hw(2, True)
    h.start("reader", OpRecord(LOCKLESS, 0))
    h.step("reader")  # ptep_get_lockless: valid+cont
    h.step("reader")  # orig_pte
    h.start("cpu", OpRecord("zap1", 3))
    while h.busy("cpu"):
        h.step("cpu")
    while h.busy("reader"):
        h.step("reader")
    got = h.ops["reader"].rec.result
    lay = h.mm.layout
    assert lay.pte_valid(got) and not lay.pte_cont(got) and lay.pte_dirty(got)
    assert not h.violations


def test_lockless_read_in_the_bbm_window_sees_none() -> None:
    h = Harness(ContPteMm(nr_ptes=4, cont_ptes=4, layout=COMPACT))
    h.run("cpu", OpRecord("map", 0, 4))
    h.start("cpu", OpRecord("zap1", 3))
    while h.next_point("cpu").site != "cv_flush":  # type: ignore[union-attr]
        h.step("cpu")
    assert h.run("reader", OpRecord(LOCKLESS, 0)) == 0  # allowance (C)
    while h.busy("cpu"):
        h.step("cpu")
    assert not h.violations


# ---------------------------------------------------------------- the MMU
def test_store_through_a_clean_tlb_entry_updates_the_descriptor() -> None:
    mm = mapped()
    assert mm.mmu.access(4, write=False).outcome == "walk"
    ev = mm.mmu.access(9, write=True)
    assert ev.outcome == "dbm" and not mm.words[9] & L.rdonly
    assert mm.mmu.access(9, write=True).outcome == "hit"


def test_store_to_a_write_protected_page_faults() -> None:
    mm = mapped()
    run(mm.wrprotect_ptes(0, 16))
    assert mm.mmu.access(1, write=True).outcome == "fault"


def test_missing_break_before_make_is_a_tlb_conflict() -> None:
    mm = mapped(16, variant="no_bbm")
    old = run(mm.ptep_get_and_clear(15))  # unfold (no TLBI in this variant)
    mm.mmu.access(0, write=False)  # a page entry for page 0
    run(mm.set_ptes(15, old, 1))  # refold without invalidating
    mm.mmu.access(1, write=False)  # walks a PTE_CONT entry: a block entry
    assert mm.table.tlb.conflicting_pages() == [0]


# ---------------------------------------------------------------- the faulty variants
def test_rmw_race_loses_the_dirty_state() -> None:
    mm = mapped(16, variant="rmw_race")
    run(mm.ptep_get_and_clear(3))  # unfold first, so the next clear is a single entry
    t = Thread("cpu")
    t.start(mm.ptep_get_and_clear(5))
    while t.point is not None and t.point.site != "gac_xchg_store":
        t.step()
    mm.mmu.access(5, write=True)  # the MMU dirties the page between load and store
    while not t.finished:
        t.step()
    assert not L.pte_dirty(t.result)


def test_unfold_drops_dirty_loses_a_siblings_dirty_state() -> None:
    mm = mapped(16, variant="unfold_drops_dirty")
    mm.mmu.access(2, write=True)
    run(mm.ptep_get_and_clear(9))
    assert not L.pte_dirty(run(mm.ptep_get(2)))


# ---------------------------------------------------------------- costs
def test_batched_apis_avoid_unfolding_order9_folios() -> None:
    assert fork(9, batched=False).converts == 32 and fork(9, batched=True).converts == 0
    assert munmap(9, batched=False).tlbi == 512 and munmap(9, batched=True).tlbi == 0
    assert fork(0, batched=False).converts == 0
    assert fork(0, batched=True).reads < fork(0, batched=False).reads  # no re-read
    assert fault_pages(9, batched=True).converts == 32  # folding costs a convert per block


def test_stores_through_a_writable_block_entry_update_no_other_descriptor() -> None:
    """Why contpte_ptep_get gathers dirty: the block's TLB entry became writable when page 0
    was dirtied; a store to page 5 through it leaves PTE 5 clean."""
    h = Harness(ContPteMm(nr_ptes=16, cont_ptes=16))
    h.run("cpu", OpRecord("map", 0, 16))
    assert h.hw(0, True).outcome == "walk"
    ev = h.hw(5, True)
    assert ev.outcome == "hit" and ev.wrote and not ev.young
    assert not L.pte_dirty(h.mm.words[5]) and L.pte_dirty(run(h.mm.ptep_get(5)))
    assert h.plain.entries[5] is not None and h.plain.entries[5].dirty
    assert not h.violations
