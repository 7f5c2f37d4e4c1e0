"""The PTE table in memory and arm64's private (double-underscore) PTE helpers, v6.9.

These are the helpers the contpte layer is built on (arch/arm64/include/asm/pgtable.h and
arch/arm64/mm/fault.c): `__ptep_get` (READ_ONCE), `__set_ptes` (WRITE_ONCE per entry),
`__ptep_get_and_clear` (xchg), the cmpxchg loops of `__ptep_test_and_clear_young`,
`___ptep_set_wrprotect` and `__ptep_set_access_flags`, and `__flush_tlb_range`. Every
access goes through `PteTable`, which counts it and yields a `Point` first (see
model/steps.py), so the hardware agent can act between any two accesses.

Variant `rmw_race` replaces the xchg in `__ptep_get_and_clear` by a load and a separate
store, the read-modify-write the real code avoids.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from model.pte import PteLayout
from model.steps import Op, Point
from model.tlb import Tlb


@dataclass
class Costs:
    """Shared-memory work done by the kernel side (the hardware's accesses are not counted)."""

    loads: int = 0  # READ_ONCE of a PTE
    stores: int = 0  # WRITE_ONCE of a PTE
    atomics: int = 0  # xchg / cmpxchg on a PTE (one read and one write each)
    tlbi: int = 0  # per-page TLBI instructions issued
    flushes: int = 0  # TLB maintenance sequences (each ends in a DSB)
    converts: int = 0  # contpte_convert calls (fold or unfold)

    @property
    def reads(self) -> int:
        return self.loads + self.atomics

    @property
    def writes(self) -> int:
        return self.stores + self.atomics

    def snapshot(self) -> Costs:
        return Costs(**{f.name: getattr(self, f.name) for f in fields(self)})

    def minus(self, other: Costs) -> Costs:
        return Costs(**{f.name: getattr(self, f.name) - getattr(other, f.name)
                        for f in fields(self)})


MAX_TLBI_OPS = 512
"""arch/arm64/include/asm/tlbflush.h: above this many pages __flush_tlb_range flushes the mm."""


class PteTable:
    """One page of PTEs (a PMD's worth, or less) shared by the kernel and the MMU."""

    def __init__(self, nr_ptes: int, layout: PteLayout, cont_ptes: int, *,
                 rmw_race: bool = False) -> None:
        if nr_ptes % cont_ptes:
            raise ValueError("the table must hold whole contpte blocks")
        self.layout, self.cont_ptes = layout, cont_ptes
        self.words = [0] * nr_ptes
        self.tlb = Tlb(cont_ptes)
        self.costs = Costs()
        self.rmw_race = rmw_race
        self.last_cmpxchg_ok = False

    def __len__(self) -> int:
        return len(self.words)

    # ------------------------------------------------------------ memory accesses
    def load(self, site: str, kernel: str, i: int) -> Op[int]:
        yield Point(site, kernel, i)
        self.costs.loads += 1
        return self.words[i]

    def store(self, site: str, kernel: str, i: int, value: int) -> Op[None]:
        yield Point(site, kernel, i)
        self.costs.stores += 1
        self.words[i] = value

    def xchg(self, site: str, kernel: str, i: int, value: int) -> Op[int]:
        yield Point(site, kernel, i)
        self.costs.atomics += 1
        old, self.words[i] = self.words[i], value
        return old

    def cmpxchg(self, site: str, kernel: str, i: int, old: int, new: int) -> Op[int]:
        yield Point(site, kernel, i)
        self.costs.atomics += 1
        cur = self.words[i]
        self.last_cmpxchg_ok = cur == old
        if cur == old:
            self.words[i] = new
        return cur

    def flush(self, site: str, kernel: str, start: int, end: int) -> Op[None]:
        """__flush_tlb_range(vma, start, end, PAGE_SIZE, ...): TLBI per page, then DSB."""
        yield Point(site, kernel, start)
        pages = end - start
        self.costs.tlbi += 1 if pages > MAX_TLBI_OPS else pages
        self.costs.flushes += 1
        self.tlb.invalidate(start, end)

    # ------------------------------------------------------------ private helpers
    def ptep_get_raw(self, i: int, site: str, kernel: str) -> Op[int]:
        """__ptep_get: READ_ONCE(*ptep)."""
        return (yield from self.load(site, f"{kernel}: __ptep_get", i))

    def set_ptes_raw(self, i: int, pte: int, nr: int, site: str, kernel: str) -> Op[None]:
        """__set_ptes: __set_pte (WRITE_ONCE) per entry, advancing the pfn."""
        lay = self.layout
        for k in range(nr):
            yield from self.store(site, f"{kernel}: __set_ptes", i + k, pte)
            if k + 1 < nr:
                pte = lay.pte_advance_pfn(pte, 1)

    def get_and_clear_raw(self, i: int, site: str, kernel: str) -> Op[int]:
        """__ptep_get_and_clear: xchg_relaxed(&pte_val(*ptep), 0)."""
        if self.rmw_race:
            old = yield from self.load(site, f"{kernel}: __ptep_get_and_clear (load)", i)
            yield from self.store(f"{site}_store", f"{kernel}: __ptep_get_and_clear (store 0)",
                                  i, 0)
            return old
        return (yield from self.xchg(site, f"{kernel}: __ptep_get_and_clear", i, 0))

    def test_and_clear_young_raw(self, i: int, site: str, kernel: str) -> Op[bool]:
        """__ptep_test_and_clear_young: READ_ONCE, then cmpxchg pte_mkold until it sticks."""
        lay = self.layout
        k = f"{kernel}: __ptep_test_and_clear_young"
        pte = yield from self.load(f"{site}_read", k, i)
        while True:
            old = pte
            pte = yield from self.cmpxchg(f"{site}_cmpxchg", k, i, old, lay.pte_mkold(old))
            if pte == old:
                return lay.pte_young(pte)

    def set_wrprotect_raw(self, i: int, pte: int, site: str, kernel: str) -> Op[None]:
        """___ptep_set_wrprotect: cmpxchg pte_wrprotect() starting from a value already read."""
        lay = self.layout
        while True:
            old = pte
            pte = yield from self.cmpxchg(site, f"{kernel}: ___ptep_set_wrprotect", i, old,
                                          lay.pte_wrprotect(old))
            if pte == old:
                return

    def set_access_flags_raw(self, i: int, entry: int, dirty: bool, site: str,
                             kernel: str) -> Op[bool]:
        """__ptep_set_access_flags (arch/arm64/mm/fault.c): only ever more permissive."""
        lay = self.layout
        k = f"{kernel}: __ptep_set_access_flags"
        pte = yield from self.load(f"{site}_read", k, i)
        if lay.pte_same(pte, entry):
            return False
        entry &= lay.rdonly | lay.af | lay.write | lay.dirty
        entry ^= lay.rdonly
        pteval = pte
        while True:
            old = pteval
            pteval ^= lay.rdonly
            pteval |= entry
            pteval ^= lay.rdonly
            pteval = yield from self.cmpxchg(f"{site}_cmpxchg", k, i, old, pteval)
            if pteval == old:
                break
        if dirty:
            yield from self.flush(f"{site}_flush", f"{k}: flush_tlb_page", i, i + 1)
        return True
