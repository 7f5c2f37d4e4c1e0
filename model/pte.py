"""arm64 level-3 descriptors (PTEs) and the pte_* helpers the contpte layer uses.

Mirrors arch/arm64/include/asm/pgtable-hwdef.h, pgtable-prot.h and the pte helpers of
pgtable.h (v6.9). A `PteLayout` fixes where each bit lives, so the same helpers serve the
real arm64 word (`ARM64`, bit positions as in the kernel) and the narrow word the spec
stores in a bit-vector (`COMPACT`): the model can replay a spec trace bit for bit.

Bits modelled, because they are the ones the contpte code reads or writes:
PTE_VALID (0), PTE_RDONLY / AP[2] (7), PTE_AF (10), PTE_DBM == PTE_WRITE (51),
PTE_CONT (52), software PTE_DIRTY (55) and the output page frame (bits 12..47 with 4 KiB
pages). Abstracted: PTE_TYPE_PAGE's table bit, PTE_USER/UXN/PXN/nG/AttrIndx/SH (constant
for one mapping, so they only add a constant to every word and to every pgprot compare),
PTE_SPECIAL/DEVMAP (we only map normal folios) and PTE_PROT_NONE (no PROT_NONE mappings,
so pte_present() == pte_valid()).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PteLayout:
    """Bit masks of one PTE encoding; all helpers are methods so both layouts share them."""

    name: str
    valid: int
    rdonly: int
    af: int
    dbm: int
    cont: int
    dirty: int
    pfn_shift: int
    pfn_bits: int

    # ------------------------------------------------------------------ fields
    @property
    def write(self) -> int:
        """PTE_WRITE is the DBM bit (pgtable-prot.h: `#define PTE_WRITE (PTE_DBM)`)."""
        return self.dbm

    @property
    def pfn_mask(self) -> int:
        return ((1 << self.pfn_bits) - 1) << self.pfn_shift

    @property
    def width(self) -> int:
        """Bits needed to hold every word of this layout."""
        return max(self.pfn_shift + self.pfn_bits, self.dirty.bit_length())

    def pte_pfn(self, pte: int) -> int:
        return (pte & self.pfn_mask) >> self.pfn_shift

    def pfn_pte(self, pfn: int, prot: int) -> int:
        if not 0 <= pfn < (1 << self.pfn_bits):
            raise ValueError(f"pfn {pfn} does not fit the {self.name} layout")
        return (pfn << self.pfn_shift) | (prot & ~self.pfn_mask)

    def pte_pgprot(self, pte: int) -> int:
        """Everything but the output address (pte_pgprot)."""
        return pte & ~self.pfn_mask

    def pte_advance_pfn(self, pte: int, nr: int) -> int:
        return self.pfn_pte(self.pte_pfn(pte) + nr, self.pte_pgprot(pte))

    # ------------------------------------------------------------------ predicates
    def pte_valid(self, pte: int) -> bool:
        return bool(pte & self.valid)

    def pte_present(self, pte: int) -> bool:
        """No PROT_NONE in the model, so present == valid."""
        return self.pte_valid(pte)

    def pte_none(self, pte: int) -> bool:
        return pte == 0

    def pte_cont(self, pte: int) -> bool:
        return bool(pte & self.cont)

    def pte_valid_cont(self, pte: int) -> bool:
        return self.pte_valid(pte) and self.pte_cont(pte)

    def pte_young(self, pte: int) -> bool:
        return bool(pte & self.af)

    def pte_write(self, pte: int) -> bool:
        return bool(pte & self.write)

    def pte_hw_dirty(self, pte: int) -> bool:
        """DBM set and AP[2] clear: the hardware made it writable-dirty."""
        return self.pte_write(pte) and not pte & self.rdonly

    def pte_sw_dirty(self, pte: int) -> bool:
        return bool(pte & self.dirty)

    def pte_dirty(self, pte: int) -> bool:
        return self.pte_sw_dirty(pte) or self.pte_hw_dirty(pte)

    def pte_same(self, a: int, b: int) -> bool:
        """pte_same(): PTE_RDONLY is ignored on present entries."""
        if self.pte_present(a):
            a &= ~self.rdonly
        if self.pte_present(b):
            b &= ~self.rdonly
        return a == b

    # ------------------------------------------------------------------ constructors
    def pte_mkold(self, pte: int) -> int:
        return pte & ~self.af

    def pte_mkyoung(self, pte: int) -> int:
        return pte | self.af

    def pte_mkclean(self, pte: int) -> int:
        """Clear PTE_DIRTY, set PTE_RDONLY: neither software- nor hardware-dirty."""
        return (pte & ~self.dirty) | self.rdonly

    def pte_mkdirty(self, pte: int) -> int:
        pte |= self.dirty
        if self.pte_write(pte):
            pte &= ~self.rdonly
        return pte

    def pte_wrprotect(self, pte: int) -> int:
        """Transfer hardware dirty to PTE_DIRTY, then clear PTE_WRITE and set PTE_RDONLY."""
        if self.pte_hw_dirty(pte):
            pte |= self.dirty
        return (pte & ~self.write) | self.rdonly

    def pte_mkwrite_novma(self, pte: int) -> int:
        """v6.6+ (143937ca51cc): only a software-dirty pte becomes hardware-writable."""
        pte |= self.write
        if self.pte_sw_dirty(pte):
            pte &= ~self.rdonly
        return pte

    def pte_mkcont(self, pte: int) -> int:
        """Also sets PTE_TYPE_PAGE in the kernel; of that only PTE_VALID is modelled."""
        return pte | self.cont | self.valid

    def pte_mknoncont(self, pte: int) -> int:
        return pte & ~self.cont

    def attrs(self, pte: int) -> int:
        """pte_pgprot(pte_mkold(pte_mkclean(pte))): what must match across a block."""
        return self.pte_pgprot(self.pte_mkold(self.pte_mkclean(pte)))

    def mk_user_pte(self, pfn: int, *, writable: bool, young: bool = False,
                    dirty: bool = False) -> int:
        """A present user PTE as core-mm builds it (mk_pte + pte_mkwrite/young/dirty)."""
        pte = self.pfn_pte(pfn, self.valid | self.rdonly)
        if writable:
            pte = self.pte_mkwrite_novma(pte)
        if young:
            pte = self.pte_mkyoung(pte)
        if dirty:
            pte = self.pte_mkdirty(pte)
        return pte

    def describe(self, pte: int) -> str:
        """Short human-readable rendering, e.g. `V|CONT|AF|DBM|RDONLY pfn=3`."""
        if pte == 0:
            return "none"
        names = [("V", self.valid), ("CONT", self.cont), ("AF", self.af), ("DBM", self.dbm),
                 ("RDONLY", self.rdonly), ("DIRTY", self.dirty)]
        flags = "|".join(n for n, m in names if pte & m) or "-"
        return f"{flags} pfn={self.pte_pfn(pte)}"


ARM64 = PteLayout("arm64", valid=1 << 0, rdonly=1 << 7, af=1 << 10, dbm=1 << 51,
                  cont=1 << 52, dirty=1 << 55, pfn_shift=12, pfn_bits=36)
"""The kernel's encoding (4 KiB pages, 48-bit PA: PTE_ADDR_LOW covers bits 12..47)."""

COMPACT = PteLayout("compact", valid=1 << 0, rdonly=1 << 1, af=1 << 2, dbm=1 << 3,
                    cont=1 << 4, dirty=1 << 5, pfn_shift=6, pfn_bits=2)
"""The same bits packed into 8 bits for the spec's bit-vector PTE words (4 page frames)."""


def compact_layout(pfn_bits: int) -> PteLayout:
    """COMPACT with room for `pfn_bits` of page frame number."""
    return PteLayout("compact", COMPACT.valid, COMPACT.rdonly, COMPACT.af, COMPACT.dbm,
                     COMPACT.cont, COMPACT.dirty, COMPACT.pfn_shift, pfn_bits)


def convert_word(pte: int, src: PteLayout, dst: PteLayout) -> int:
    """Re-encode a word from one layout to the other (bit for bit on the modelled bits)."""
    out = 0
    for field in ("valid", "rdonly", "af", "dbm", "cont", "dirty"):
        if pte & getattr(src, field):
            out |= getattr(dst, field)
    return out | (src.pte_pfn(pte) << dst.pfn_shift)
