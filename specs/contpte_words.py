"""The arm64 pte_* helpers as spec expressions over bit-vector PTE words.

Same semantics as model/pte.py (and the kernel macros it mirrors), built from the masks of
a `PteLayout` so the spec's words and the model's COMPACT words agree bit for bit. Every
function returns an expression tree; nothing here runs per state.
"""

from __future__ import annotations

from checker.expr import BV, Const, EnumT, Expr, Not, ite
from model.pte import PteLayout


class Words:
    """Expression builders for one layout (the spec uses `compact_layout(pfn_bits)`)."""

    def __init__(self, layout: PteLayout) -> None:
        self.L = layout
        self.sort = BV(layout.width)
        self.width = layout.width

    def c(self, value: int) -> Expr:
        """A word literal."""
        return Const(value & ((1 << self.width) - 1), self.sort)

    def _bit(self, w: Expr, mask: int) -> Expr:
        return w.bit(mask.bit_length() - 1)

    # predicates
    def valid(self, w: Expr) -> Expr:
        return self._bit(w, self.L.valid)

    def cont(self, w: Expr) -> Expr:
        return self._bit(w, self.L.cont)

    def valid_cont(self, w: Expr) -> Expr:
        return self.valid(w) & self.cont(w)

    def young(self, w: Expr) -> Expr:
        return self._bit(w, self.L.af)

    def write(self, w: Expr) -> Expr:
        return self._bit(w, self.L.write)

    def rdonly(self, w: Expr) -> Expr:
        return self._bit(w, self.L.rdonly)

    def hw_dirty(self, w: Expr) -> Expr:
        return self.write(w) & Not(self.rdonly(w))

    def dirty(self, w: Expr) -> Expr:
        return self._bit(w, self.L.dirty) | self.hw_dirty(w)

    def pfn_is(self, w: Expr, pfn: int) -> Expr:
        return (w & self.c(self.L.pfn_mask)) == self.c(pfn << self.L.pfn_shift)

    # constructors
    def mkold(self, w: Expr) -> Expr:
        return w & self.c(~self.L.af)

    def mkyoung(self, w: Expr) -> Expr:
        return w | self.c(self.L.af)

    def mkclean(self, w: Expr) -> Expr:
        return (w & self.c(~self.L.dirty)) | self.c(self.L.rdonly)

    def mkdirty(self, w: Expr) -> Expr:
        d = w | self.c(self.L.dirty)
        return ite(self.write(w), d & self.c(~self.L.rdonly), d)

    def wrprotect(self, w: Expr) -> Expr:
        d = ite(self.hw_dirty(w), w | self.c(self.L.dirty), w)
        return (d & self.c(~self.L.write)) | self.c(self.L.rdonly)

    def mkwrite(self, w: Expr) -> Expr:
        """pte_mkwrite_novma: PTE_WRITE, and clear PTE_RDONLY only if software-dirty."""
        d = w | self.c(self.L.write)
        return ite(self._bit(w, self.L.dirty), d & self.c(~self.L.rdonly), d)

    def mkcont(self, w: Expr) -> Expr:
        return w | self.c(self.L.cont | self.L.valid)

    def mknoncont(self, w: Expr) -> Expr:
        return w & self.c(~self.L.cont)

    def prot(self, w: Expr) -> Expr:
        """pte_pgprot: everything but the page frame."""
        return w & self.c(~self.L.pfn_mask)

    def with_pfn(self, w: Expr, pfn: int) -> Expr:
        """pfn_pte(pfn, pte_pgprot(w))."""
        return self.prot(w) | self.c(pfn << self.L.pfn_shift)

    def attrs(self, w: Expr) -> Expr:
        """pte_pgprot(pte_mkold(pte_mkclean(w))): compared across a contpte block."""
        return self.prot(self.mkold(self.mkclean(w)))

    def gather(self, acc: Expr, w: Expr) -> Expr:
        """`if (pte_dirty(w)) acc = pte_mkdirty(acc); if (pte_young(w)) acc = pte_mkyoung(acc)`."""
        d = ite(self.dirty(w), self.mkdirty(acc), acc)
        return ite(self.young(w), self.mkyoung(d), d)

    def same(self, a: Expr, b: Expr) -> Expr:
        """pte_same: PTE_RDONLY ignored on present entries."""
        ro = self.c(~self.L.rdonly)
        return ite(self.valid(a), a & ro, a) == ite(self.valid(b), b & ro, b)

    def access_merge(self, cur: Expr, entry: Expr) -> Expr:
        """__ptep_set_access_flags' cmpxchg value: flags only ever become more permissive."""
        L = self.L
        e = (entry & self.c(L.rdonly | L.af | L.write | L.dirty)) ^ self.c(L.rdonly)
        return ((cur ^ self.c(L.rdonly)) | e) ^ self.c(L.rdonly)

    def pfn_word(self, k: Expr, n: int) -> Expr:
        """The page-frame field holding the value of int expression k (0 <= k < n)."""
        out = self.c(0)
        for v in range(n - 1, 0, -1):
            out = ite(k == v, self.c(v << self.L.pfn_shift), out)
        return out

    def tlb_state(self, w: Expr, tlb: EnumT) -> Expr:
        """The permission a TLB entry filled from w caches: ro, clean (DBM) or dirty."""
        return ite(Not(self.rdonly(w)), Const(tlb.code("dirty"), tlb),
                   ite(self.write(w), Const(tlb.code("clean"), tlb), Const(tlb.code("ro"), tlb)))
