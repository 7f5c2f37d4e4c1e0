"""arm64 contpte (v6.9): core-mm's per-PTE API over folded blocks, racing the MMU.

One aligned block of `cont_ptes` PTEs mapping one folio (frames 0..C-1 at pages 0..C-1).
Processes:

- `cpu` (`writers` instances): core-mm under the page-table lock (PTL), calling the v6.9
  API as the kernel's callers do: mapping a folio with set_ptes (fault-around, mTHP),
  mapping one page with set_ptes(nr=1) (which may fold), zapping one page
  (ptep_get_and_clear: try_to_unmap, mprotect's ptep_modify_prot_start) or a batch
  (get_and_clear_full_ptes: zap_present_ptes), ptep_clear_flush_young (reclaim),
  wrprotect_ptes (fork) and ptep_set_wrprotect, do_wp_page's reuse path
  (ptep_get + ptep_set_access_flags) and ptep_get. The caller's TLB flush after a zap or
  write-protect (mmu_gather / flush_tlb_mm) is modelled as a step under the PTL.
- `walker` (`readers` instances): ptep_get_lockless without the PTL (GUP-fast,
  handle_pte_fault's first read).
- `mmu` (daemon): the hardware agent with FEAT_HAFDBS and one TLB (model/tlb.py): walks
  set PTE_AF, a store through a clean DBM entry clears PTE_RDONLY on the accessed page's
  descriptor, a store through a cached writable entry updates no descriptor; TLB entries
  (page or block, with the permission they cache) stay until a TLBI or an eviction.

Every step does at most one PTE access or TLB flush, except that a cmpxchg loop is one
atomic step (a failed cmpxchg changes nothing and the loop retries on the fresh value).
Step labels are the `Point.site`s model/contpte.py yields at its accesses, so traces
replay on the model (specs/contpte_replay.py).

Ghost state: the plain page table core-mm believes in (a_present/a_write/a_young/a_dirty,
model/pagetable.py), updated at the atomic step that makes a change visible (the write of
a new entry, the exchange that clears one, the cmpxchg that write-protects or ages one,
the hardware's update), and taint bits t_young/t_dirty: the folio mapped by the block has
been young/dirty since the block was last mapped from empty.

Allowed deviations from the plain page table (everything else is a violation):
(A) young/dirty over-reporting: a page of the block may be reported young (dirty) when it
    is not, only if the block's folio has been young (dirty) since the block was mapped -
    core-mm tracks both per folio, and a contpte block maps exactly one folio;
(B) ptep_test_and_clear_young / ptep_clear_flush_young on a folded block consume the
    young state of every page of the block, provided they report young;
(C) ptep_get_lockless may return an empty entry for a present page while a
    break-before-make window of that block is open (the racing fault retries under the
    PTL, contpte.c mm_is_user()).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from checker.expr import (
    BOOL,
    FALSE,
    TRUE,
    AllOf,
    And,
    AnyOf,
    Bool,
    Const,
    Enum,
    EnumT,
    Expr,
    Implies,
    Int,
    Not,
    Or,
    ite,
    lift,
)
from checker.spec import Choice, LockOp, ProcessBuilder, Spec, SpecBuilder, specification
from model.pte import compact_layout
from specs.contpte_replay import replay_contpte
from specs.contpte_words import Words
from specs.rwsem import SpinLock

VARIANTS = ("contpte", "unfold_drops_dirty", "no_bbm", "rmw_race")

TLB = Enum("tlb", "none", "ro", "clean", "dirty")
"""A cached translation and the permission it caches: read-only, clean DBM, writable."""
OPS = Enum("op", "none", "map", "map1", "zap1", "zaprange", "young", "fork", "wprot1",
           "wpreuse", "get")
RET = Enum("ret", "none", "sp", "fold", "gac", "pfirst", "plast", "wp1", "saf", "get",
           "wpr", "safget")

EXPECTED: dict[str, tuple[str, ...]] = {
    "contpte": (),
    "unfold_drops_dirty": ("no_lost_dirty", "no_lost_young", "refines_core_mm"),
    "no_bbm": ("bbm", "no_lost_dirty", "no_lost_young", "refines_core_mm"),
    "rmw_race": ("no_lost_dirty", "no_lost_young", "refines_core_mm"),
}
"""Properties each variant violates at the default parameters (every other must hold)."""


def e(t: EnumT, name: str) -> Expr:
    """An enum literal as an expression (for ite branches and comparisons)."""
    return Const(t.code(name), t)


@specification(variants=VARIANTS, replay=replay_contpte)
def build(variant: str = "contpte", cont_ptes: int = 4, writers: int = 1, readers: int = -1,
          ops: str = "map,zap1,map1", pages: tuple[int, ...] = (3,),
          reader_pages: tuple[int, ...] = (0,), ranges: tuple[int, ...] = (0, 4, 1, 2),
          evict: bool = False, reader_snapshots: bool = False, strict: bool = False) -> Spec:
    """arm64 contpte (v6.9): fold/unfold, BBM and young/dirty vs. core-mm and the MMU.

    cont_ptes: entries per block (4; a power of two). writers: core-mm threads under the
    PTL. readers: lockless reader threads; -1 means 1 for `contpte` and 0 for the faulty
    variants (their bugs do not involve the reader, and they halt at the first violation).
    ops: the core-mm operations offered (comma-separated: map, map1, zap1, zaprange, young,
    fork, wprot1, wpreuse, get, or "all"); the default, map/zap1/map1, is the fold/unfold
    core that keeps the gate at ~10 s. pages / reader_pages: pages single-page operations /
    lockless reads may target. ranges: (first, nr) pairs for zaprange and fork. evict: the
    TLB may drop entries. reader_snapshots: also check lockless under-reporting.
    strict: drop the allowed deviations (A)-(C) (the merged code is then refuted).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    C = cont_ptes
    if C < 2 or C & (C - 1):
        raise ValueError("cont_ptes must be a power of two >= 2")
    if readers < 0:  # default: the faulty variants' bugs do not involve lockless readers
        readers = 1 if variant == "contpte" else 0
    rng = [(ranges[i], ranges[i + 1]) for i in range(0, len(ranges) - 1, 2)]
    rng = [(lo, n) for lo, n in rng if n >= 2 and lo + n <= C] or [(0, C)]
    pages = tuple(p for p in pages if 0 <= p < C) or tuple(range(C))
    menu = set(OPS.names[1:]) if ops == "all" else set(ops.split(","))
    s = SpecBuilder("contpte", __doc__ or "", variant=variant, parameters={
        "variant": variant, "cont_ptes": C, "writers": writers, "readers": readers,
        "evict": evict, "ranges": tuple(x for r in rng for x in r), "pages": pages,
        "ops": ops, "reader_pages": reader_pages, "reader_snapshots": reader_snapshots,
        "strict": strict})
    W = Words(compact_layout(max(1, (C - 1).bit_length())))
    L = W.L
    P = s.index("page", C)

    # ------------------------------------------------------------ state
    pte = s.array("pte", P, W.sort, 0, doc="the PTE words (model/pte.py COMPACT layout)")
    tlb_page = s.array("tlb_page", P, TLB, "none", doc="TLB page entry per page")
    tlb_blk = s.var("tlb_blk", TLB, "none", doc="TLB contiguous-block entry")
    a_present = s.array("a_present", P, Bool(), False, doc="plain page table: present")
    a_write = s.array("a_write", P, Bool(), False, doc="plain page table: writable")
    a_young = s.array("a_young", P, Bool(), False, doc="plain page table: young")
    a_dirty = s.array("a_dirty", P, Bool(), False, doc="plain page table: dirty")
    t_young = s.var("t_young", Bool(), False, doc="the folio was young since mapped")
    t_dirty = s.var("t_dirty", Bool(), False, doc="the folio was dirty since mapped")
    # the allowances (A) and (C); strict=True checks against the plain table without them
    over_young = FALSE if strict else t_young
    over_dirty = FALSE if strict else t_dirty

    cpu = s.process("cpu", writers, doc="core-mm under the PTL")
    walker = s.process("walker", readers, doc="lockless readers") if readers else None
    mmu = s.process("mmu", 1, daemon=True, doc="the MMU: walks, AF/DBM updates, TLB")
    ptl = SpinLock(s, "ptl", users=(cpu,))
    stale = (s.array("gl_stale", s.index("reader", readers), Bool(), False,
                     doc="core-mm changed the plain table while walker[r] was reading")
             if readers else None)

    op = cpu.local("op", OPS, "none")
    pg = cpu.local("pg", Int(0, C - 1), 0)
    nr = cpu.local("nr", Int(0, C), 0)
    k = cpu.local("k", Int(0, C), 0)
    hi = cpu.local("hi", Int(0, C), 0)
    acc = cpu.local("acc", W.sort, 0)
    cur = cpu.local("cur", W.sort, 0)
    ent = cpu.local("ent", W.sort, 0)
    ret = cpu.local("ret", RET, "none")
    res = cpu.local("res", Bool(), False)
    ay = cpu.local("ay", Bool(), False)
    ad = cpu.local("ad", Bool(), False)
    aw = cpu.local("aw", Bool(), False)
    sy = cpu.local("sy", Bool(), False)
    sd = cpu.local("sd", Bool(), False)
    locals_init: dict[Expr, Any] = {op: e(OPS, "none"), pg: 0, nr: 0, k: 0, hi: 0,
                                    acc: W.c(0), cur: W.c(0), ent: W.c(0),
                                    ret: e(RET, "none"), res: False, ay: False, ad: False,
                                    aw: False, sy: False, sd: False}

    MAP_PROT = L.valid | L.rdonly | L.dbm  # mk_pte + pte_mkwrite: writable, clean, old
    none = e(TLB, "none")

    def reset() -> dict[Expr, Any]:
        return dict(locals_init)

    def merge(*parts: dict[Expr, Any]) -> dict[Expr, Any]:
        out: dict[Expr, Any] = {}
        for part in parts:
            out.update(part)
        return out

    def flush(lo: Expr, n: Expr) -> dict[Expr, Any]:
        """TLBI by VA for pages [lo, lo + n): page entries in range and the block entry."""
        out: dict[Expr, Any] = {tlb_blk: none}
        for j in P:
            out[tlb_page[j]] = ite((lo <= j) & (j < lo + n), none, tlb_page[j])
        return out

    def stale_all(cond: Expr = TRUE) -> dict[Expr, Any]:
        """Mark every lockless read in progress as overlapping a plain-table change."""
        if walker is None or stale is None:
            return {}
        return {stale[r]: stale[r] | (cond & Not(walker.at(r, "gl_read")))
                for r in range(readers)}

    def consume(i: Expr) -> dict[Expr, Any]:
        """The plain table's view of a zap of page i."""
        return merge({a_present[i]: FALSE, a_write[i]: FALSE, a_young[i]: FALSE,
                      a_dirty[i]: FALSE}, stale_all())

    def appear(i: Expr, w: Expr) -> dict[Expr, Any]:
        """The plain table's view of a new entry w at page i (taint reset if block was empty)."""
        empty = AllOf(P, lambda j: Not(a_present[j]))
        return merge({a_present[i]: TRUE, a_write[i]: W.write(w), a_young[i]: W.young(w),
                      a_dirty[i]: W.dirty(w),
                      t_young: ite(empty, W.young(w), t_young | W.young(w)),
                      t_dirty: ite(empty, W.dirty(w), t_dirty | W.dirty(w))}, stale_all())

    release = (LockOp("ptl", "release", "excl"),)

    def step(label: str, kernel: str, *, guard: Any = True, effects: dict | None = None,
             goto: str, note: str = "", p: ProcessBuilder = cpu, choose: Any = ()) -> None:
        """One step; goto="unlock" also releases the PTL (pte_unmap_unlock) in that step."""
        locks: tuple[LockOp, ...] = ()
        if goto == "unlock":
            guard = lift(guard, BOOL) & ptl.held(cpu)
            effects = merge(effects or {}, reset(), {ptl.owner: ptl.owners.none})
            kernel, goto, locks = f"{kernel}; pte_unmap_unlock -> spin_unlock", "idle", release
        p.step(label, kernel, guard=guard, effects=effects or {}, goto=goto, note=note,
               choose=choose, locks=locks)

    # ============================================================ the MMU (hardware agent)
    page = Choice("page", Int(0, C - 1))
    pr = page.ref
    tp = tlb_page[pr]
    desc = pte[pr]
    hit = (tp != none) | (tlb_blk != none)
    cached = ite(tp != none, tp, tlb_blk)

    def fill(new: Expr) -> dict[Expr, Any]:
        st = W.tlb_state(new, TLB)
        return {tlb_blk: ite(W.cont(new), st, tlb_blk), tlb_page[pr]: ite(W.cont(new), tp, st)}

    def hw_seen(young: Expr, wrote: Expr) -> dict[Expr, Any]:
        pres = a_present[pr]
        return {a_young[pr]: a_young[pr] | (pres & young),
                a_dirty[pr]: a_dirty[pr] | (pres & wrote),
                t_young: t_young | (pres & young), t_dirty: t_dirty | (pres & wrote)}

    rd = W.mkyoung(desc)
    step("hw", "MMU: load misses the TLB, walk sets PTE_AF and fills the TLB", p=mmu,
         choose=page, guard=Not(hit) & W.valid(desc), note="read",
         effects=merge({pte[pr]: rd}, fill(rd), hw_seen(TRUE, FALSE)), goto="hw")
    wr = rd & W.c(~L.rdonly)
    step("hw", "MMU: store misses the TLB, walk sets PTE_AF, DBM clears PTE_RDONLY",
         p=mmu, choose=page, note="write",
         guard=Not(hit) & W.valid(desc) & (W.write(desc) | Not(W.rdonly(desc))),
         effects=merge({pte[pr]: wr}, fill(wr), hw_seen(TRUE, TRUE)), goto="hw")
    step("hw", "MMU: store hits a clean DBM TLB entry: dirty-state update of the descriptor",
         p=mmu, choose=page, note="write",
         guard=hit & (cached == e(TLB, "clean")) & W.valid(desc) & W.write(desc),
         effects=merge({pte[pr]: wr,
                        tlb_page[pr]: ite(tp != none, e(TLB, "dirty"), tp),
                        tlb_blk: ite(tp == none, e(TLB, "dirty"), tlb_blk)},
                       hw_seen(TRUE, TRUE)), goto="hw")
    step("hw", "MMU: store hits a writable TLB entry (no descriptor update)", p=mmu,
         choose=page, note="write", guard=hit & (cached == e(TLB, "dirty")),
         effects=hw_seen(FALSE, TRUE), goto="hw")
    if evict:
        slot = Choice("slot", Int(0, C))
        sr = slot.ref
        for j in P:
            step("hw", "MMU: TLB replacement evicts a page entry", p=mmu, choose=slot,
                 guard=(sr == j) & (tlb_page[j] != none), effects={tlb_page[j]: none},
                 goto="hw")
        step("hw", "MMU: TLB replacement evicts the block entry", p=mmu, choose=slot,
             guard=(sr == C) & (tlb_blk != none), effects={tlb_blk: none}, goto="hw")

    # ============================================================ core-mm: pick an operation
    ptl.spin_lock(cpu, "idle", kernel="pte_offset_map_lock", goto="dispatch")
    cp = Choice("page", Int(0, C - 1))
    cr = cp.ref
    on_pages = Or(*(cr == p for p in pages))

    def is_op(name: str) -> Expr:
        return op == e(OPS, name)

    def begin(name: str, first: int | Expr, n: int) -> dict[Expr, Any]:
        return {op: e(OPS, name), pg: first, nr: n}

    def dstep(name: str, kernel: str, **kw: Any) -> None:
        """A dispatch alternative for operation `name`, if the operation is in the menu."""
        if name not in menu:
            return
        if kw.get("choose") is cp:
            kw["guard"] = lift(kw.get("guard", True), BOOL) & on_pages
        step("dispatch", kernel, **kw)

    dstep("map", "do_anonymous_page/filemap_map_pages: set_ptes of a whole folio -> "
         "contpte_set_ptes", guard=AllOf(P, lambda j: Not(a_present[j])),
         effects=merge(begin("map", 0, C), {k: 0}), goto="csp_write")
    dstep("map1", "finish_fault: set_ptes(nr=1)", choose=cp, guard=Not(a_present[cr]),
         effects=begin("map1", cr, 1), goto="sp_read")
    dstep("zap1", "try_to_unmap_one / ptep_modify_prot_start: ptep_get_and_clear",
         choose=cp, guard=a_present[cr], effects=begin("zap1", cr, 1), goto="gac_read")
    dstep("young", "folio_referenced_one: ptep_clear_flush_young", choose=cp,
         guard=a_present[cr], effects=begin("young", cr, 1), goto="tcy_read")
    dstep("wprot1", "copy_present_pte (fork, nr=1): ptep_set_wrprotect -> wrprotect_ptes",
         choose=cp, guard=a_present[cr] & a_write[cr], effects=merge(begin("wprot1", cr, 1),
                                                                    {k: cr}), goto="wp_read")
    dstep("wpreuse", "do_wp_page -> wp_page_reuse: ptep_get", choose=cp,
         guard=a_present[cr] & Not(a_write[cr]),
         effects=merge(begin("wpreuse", cr, 1), {ret: e(RET, "wpr")}), goto="get_read")
    dstep("get", "core-mm: ptep_get under the PTL", choose=cp,
         effects=merge(begin("get", cr, 1), {ret: e(RET, "get"), sy: a_young[cr],
                                             sd: a_dirty[cr]}), goto="get_read")
    for lo, n in rng:
        first_partial = lo % C != 0 or n < C
        last_partial = (lo + n) % C != 0
        for name, kern, body, cond in (
                ("zaprange", "zap_present_ptes: get_and_clear_full_ptes", "clr_xchg",
                 lambda j: a_present[j]),
                ("fork", "copy_present_ptes: wrprotect_ptes", "wp_cmpxchg",
                 lambda j: a_present[j] & a_write[j])):
            goto = "part_first" if first_partial else "part_last" if last_partial else body
            extra = {} if first_partial or last_partial else {k: lo, hi: lo + n}
            dstep(name, kern, note=f"pages {lo}..{lo + n - 1}",
                 guard=AllOf(range(lo, lo + n), cond),
                 effects=merge(begin(name, lo, n), extra), goto=goto)
    partial_last = (pg + nr) % C != 0

    # ============================================================ contpte_convert
    def enter_convert(src: Expr, r: str, extra: dict[Expr, Any] | None = None
                      ) -> dict[Expr, Any]:
        """pte = pfn_pte(ALIGN_DOWN(pte_pfn(pte), CONT_PTES), pte_pgprot(pte)); loop from 0."""
        return merge({acc: W.prot(src), k: 0, ret: e(RET, r)}, extra or {})

    last = k == C - 1
    x = pte[k]
    if variant == "no_bbm":
        g = W.gather(acc, x)
        step("cv_clear", "contpte_convert (no BBM): __ptep_get, gather AF/dirty",
             guard=Not(last), effects={acc: g, k: k + 1}, goto="cv_clear")
        step("cv_clear", "contpte_convert (no BBM): __ptep_get, gather AF/dirty",
             guard=last, effects={acc: g, k: 0}, goto="cv_write")
    elif variant == "rmw_race":
        step("cv_clear", "contpte_convert: __ptep_get_and_clear (load)",
             effects={cur: x}, goto="cv_clear_store")
        g = W.gather(acc, cur)
        step("cv_clear_store", "contpte_convert: __ptep_get_and_clear (store 0)",
             guard=Not(last), effects={pte[k]: W.c(0), acc: g, k: k + 1}, goto="cv_clear")
        step("cv_clear_store", "contpte_convert: __ptep_get_and_clear (store 0)",
             guard=last, effects={pte[k]: W.c(0), acc: g, k: 0}, goto="cv_flush")
    else:
        g = acc if variant == "unfold_drops_dirty" else W.gather(acc, x)
        what = "xchg, not gathering AF/dirty" if variant == "unfold_drops_dirty" else \
            "xchg, gather AF/dirty"
        step("cv_clear", f"contpte_convert: __ptep_get_and_clear ({what})",
             guard=Not(last), effects={pte[k]: W.c(0), acc: g, k: k + 1}, goto="cv_clear")
        step("cv_clear", f"contpte_convert: __ptep_get_and_clear ({what})",
             guard=last, effects={pte[k]: W.c(0), acc: g, k: 0}, goto="cv_flush")
    if variant != "no_bbm":
        step("cv_flush", "contpte_convert: __flush_tlb_range (TLBI + DSB)",
             effects=merge({tlb_blk: none}, {tlb_page[j]: none for j in P}), goto="cv_write")
    wv = W.prot(acc) | W.pfn_word(k, C)
    step("cv_write", "contpte_convert: __set_ptes", guard=Not(last),
         effects={pte[k]: wv, k: k + 1}, goto="cv_write")
    targets = [
        ("sp", "sp_write", {}),
        ("fold", "unlock", {}),
        ("gac", "gac_xchg", {}),
        ("wp1", "wp_cmpxchg", {k: pg}),
        ("saf", "safr_cmpxchg", {k: pg, nr: 1}),
    ]
    for r, goto, extra in targets:
        step("cv_write", "contpte_convert: __set_ptes (last entry)", note=f"return to {goto}",
             guard=last & (ret == e(RET, r)),
             effects=merge({pte[k]: wv, ret: e(RET, "none")}, {k: 0}, extra), goto=goto)
    # unfold_partial continuations depend on the operation (zap or fork)
    for name, body in (("zaprange", "clr_xchg"), ("fork", "wp_cmpxchg")):
        step("cv_write", "contpte_convert: __set_ptes (last entry)", note="return to "
             "contpte_try_unfold_partial", guard=last & (ret == e(RET, "pfirst")) & is_op(name)
             & partial_last, effects={pte[k]: wv, ret: e(RET, "none"), k: 0}, goto="part_last")
        step("cv_write", "contpte_convert: __set_ptes (last entry)", note=f"return to {body}",
             guard=last & (ret == e(RET, "pfirst")) & is_op(name) & Not(partial_last),
             effects={pte[k]: wv, ret: e(RET, "none"), k: pg, hi: pg + nr}, goto=body)
        step("cv_write", "contpte_convert: __set_ptes (last entry)", note=f"return to {body}",
             guard=last & (ret == e(RET, "plast")) & is_op(name),
             effects={pte[k]: wv, ret: e(RET, "none"), k: pg, hi: pg + nr}, goto=body)

    # ============================================================ set_ptes
    step("csp_write", "contpte_set_ptes: __set_ptes (PTE_CONT, block fully covered)",
         guard=k < C - 1, effects=merge(
             {pte[k]: W.c(MAP_PROT | L.cont) | W.pfn_word(k, C), k: k + 1},
             appear(k, W.c(MAP_PROT | L.cont))), goto="csp_write")
    step("csp_write", "contpte_set_ptes: __set_ptes (PTE_CONT, last entry)",
         guard=last, effects=merge(
             {pte[k]: W.c(MAP_PROT | L.cont) | W.pfn_word(k, C), k: 0},
             appear(k, W.c(MAP_PROT | L.cont))), goto="unlock")
    y = pte[pg]
    step("sp_read", "set_ptes: __ptep_get for contpte_try_unfold", guard=W.valid_cont(y),
         effects=enter_convert(W.mknoncont(y), "sp"), goto="cv_clear")
    step("sp_read", "set_ptes: __ptep_get for contpte_try_unfold", guard=Not(W.valid_cont(y)),
         goto="sp_write")
    newp = W.c(MAP_PROT) | W.pfn_word(pg, C)
    step("sp_write", "set_ptes: __set_ptes(nr=1)", guard=pg != C - 1,
         effects=merge({pte[pg]: newp}, appear(pg, newp)), goto="unlock")
    step("sp_write", "set_ptes: __set_ptes(nr=1), then contpte_try_fold (last entry of block)",
         guard=pg == C - 1, effects=merge({pte[pg]: newp, k: 0}, appear(pg, newp)),
         goto="fold_read")
    expected = W.c(L.pte_pgprot(L.pte_mkold(L.pte_mkclean(MAP_PROT)))) | W.pfn_word(k, C)
    match = W.same(W.mkold(W.mkclean(x)), expected)
    step("fold_read", "__contpte_try_fold: __ptep_get, entry matches", guard=match & Not(last),
         effects={k: k + 1}, goto="fold_read")
    step("fold_read", "__contpte_try_fold: __ptep_get, block matches: fold",
         guard=match & last,
         effects=enter_convert(W.mkcont(W.c(MAP_PROT | ((C - 1) << L.pfn_shift))), "fold"),
         goto="cv_clear")
    step("fold_read", "__contpte_try_fold: __ptep_get, entry differs: no fold",
         guard=Not(match), effects={k: 0}, goto="unlock")

    # ============================================================ ptep_get_and_clear
    step("gac_read", "ptep_get_and_clear: __ptep_get for contpte_try_unfold",
         guard=W.valid_cont(y), effects=enter_convert(W.mknoncont(y), "gac"), goto="cv_clear")
    step("gac_read", "ptep_get_and_clear: __ptep_get for contpte_try_unfold",
         guard=Not(W.valid_cont(y)), goto="gac_xchg")
    take_pg = merge({ay: a_young[pg], ad: a_dirty[pg], aw: a_write[pg]}, consume(pg))
    if variant == "rmw_race":
        step("gac_xchg", "ptep_get_and_clear: __ptep_get_and_clear (load)",
             effects={acc: y}, goto="gac_xchg_store")
        step("gac_xchg_store", "ptep_get_and_clear: __ptep_get_and_clear (store 0)",
             effects=merge({pte[pg]: W.c(0)}, take_pg), goto="gac_ret")
    else:
        step("gac_xchg", "ptep_get_and_clear: __ptep_get_and_clear (xchg)",
             effects=merge({acc: y, pte[pg]: W.c(0)}, take_pg), goto="gac_ret")
    step("gac_ret", "ptep_get_and_clear returns; caller's flush (ptep_clear_flush)",
         effects=flush(pg, nr), goto="unlock")

    # ============================================================ unfold_partial + batches
    step("part_first", "contpte_try_unfold_partial: __ptep_get(first)",
         guard=W.valid_cont(y), effects=enter_convert(W.mknoncont(y), "pfirst"),
         goto="cv_clear")
    for name, body in (("zaprange", "clr_xchg"), ("fork", "wp_cmpxchg")):
        step("part_first", "contpte_try_unfold_partial: __ptep_get(first)",
             guard=Not(W.valid_cont(y)) & is_op(name) & partial_last, goto="part_last")
        step("part_first", "contpte_try_unfold_partial: __ptep_get(first)",
             guard=Not(W.valid_cont(y)) & is_op(name) & Not(partial_last),
             effects={k: pg, hi: pg + nr}, goto=body)
        ylast = pte[pg + nr - 1]
        step("part_last", "contpte_try_unfold_partial: __ptep_get(last)",
             guard=W.valid_cont(ylast) & is_op(name),
             effects=enter_convert(W.mknoncont(ylast), "plast"), goto="cv_clear")
        step("part_last", "contpte_try_unfold_partial: __ptep_get(last)",
             guard=Not(W.valid_cont(ylast)) & is_op(name),
             effects={k: pg, hi: pg + nr}, goto=body)

    # __get_and_clear_full_ptes
    def clr_effects(v: Expr) -> dict[Expr, Any]:
        first = k == pg
        return merge({acc: ite(first, v, W.gather(acc, v)), ay: ay | a_young[k],
                      ad: ad | a_dirty[k], aw: ite(first, a_write[k], aw)}, consume(k))

    more = k < hi - 1
    if variant == "rmw_race":
        step("clr_xchg", "__get_and_clear_full_ptes: __ptep_get_and_clear (load)",
             effects={cur: x}, goto="clr_xchg_store")
        step("clr_xchg_store", "__get_and_clear_full_ptes: __ptep_get_and_clear (store 0)",
             guard=more, effects=merge({pte[k]: W.c(0), k: k + 1}, clr_effects(cur)),
             goto="clr_xchg")
        step("clr_xchg_store", "__get_and_clear_full_ptes: __ptep_get_and_clear (store 0)",
             guard=Not(more), effects=merge({pte[k]: W.c(0)}, clr_effects(cur)),
             goto="clr_ret")
    else:
        step("clr_xchg", "__get_and_clear_full_ptes: __ptep_get_and_clear (xchg)",
             guard=more, effects=merge({pte[k]: W.c(0), k: k + 1}, clr_effects(x)),
             goto="clr_xchg")
        step("clr_xchg", "__get_and_clear_full_ptes: __ptep_get_and_clear (xchg)",
             guard=Not(more), effects=merge({pte[k]: W.c(0)}, clr_effects(x)),
             goto="clr_ret")
    step("clr_ret", "get_and_clear_full_ptes returns; caller's flush (tlb_flush_mmu)",
         effects=flush(pg, nr), goto="unlock")

    # ============================================================ ptep_clear_flush_young
    # The cmpxchg loops of __ptep_test_and_clear_young, ___ptep_set_wrprotect and
    # __ptep_set_access_flags are one atomic step each: a failed cmpxchg changes nothing and
    # the loop retries on the value it got, so the loop takes effect at its successful
    # cmpxchg, on the then-current entry.
    step("tcy_read", "ptep_clear_flush_young: __ptep_get", guard=W.valid_cont(y),
         effects={k: 0, hi: C}, goto="tcyr_cmpxchg", note="contpte_ptep_clear_flush_young")
    step("tcy_read", "ptep_clear_flush_young: __ptep_get", guard=Not(W.valid_cont(y)),
         effects={k: pg, hi: pg + 1}, goto="tcyr_cmpxchg", note="__ptep_clear_flush_young")
    more = k < hi - 1
    young_now = res | W.young(x)
    mine = TRUE if not strict else (k == pg)  # (B): siblings' young is handed over too
    aged = merge({pte[k]: W.mkold(x), res: young_now, ay: ay | (mine & a_young[k]),
                  a_young[k]: a_young[k] & Not(mine)}, stale_all())
    kern = "__ptep_test_and_clear_young: READ_ONCE + cmpxchg(pte_mkold) loop"
    step("tcyr_cmpxchg", kern, guard=more, effects=merge(aged, {k: k + 1}),
         goto="tcyr_cmpxchg")
    step("tcyr_cmpxchg", kern, guard=Not(more) & young_now, effects=aged, goto="cfy_flush")
    step("tcyr_cmpxchg", kern, guard=Not(more) & Not(young_now), effects=aged, goto="tcy_ret")
    lo_f = ite(hi == C, 0, pg)
    step("cfy_flush", "ptep_clear_flush_young: __flush_tlb_range_nosync / page_nosync",
         effects=flush(lo_f, hi - lo_f), goto="tcy_ret")
    step("tcy_ret", "ptep_clear_flush_young returns", goto="unlock")

    # ============================================================ wrprotect
    step("wp_read", "wrprotect_ptes(nr=1): __ptep_get, pte_cont: __contpte_try_unfold",
         guard=W.cont(y), effects=enter_convert(W.mknoncont(y), "wp1"), goto="cv_clear")
    step("wp_read", "wrprotect_ptes(nr=1): __ptep_get", guard=Not(W.cont(y)),
         goto="wp_cmpxchg")
    wp_done = merge({pte[k]: W.wrprotect(x), a_write[k]: FALSE}, stale_all())
    kern = "___ptep_set_wrprotect: cmpxchg(pte_wrprotect) loop"
    step("wp_cmpxchg", kern, note="__wrprotect_ptes: next entry",
         guard=is_op("fork") & more, effects=merge(wp_done, {k: k + 1}), goto="wp_cmpxchg")
    step("wp_cmpxchg", kern, guard=is_op("wprot1") | Not(more), effects=wp_done,
         goto="mm_flush")
    step("mm_flush", "caller's TLB flush (flush_tlb_mm at the end of dup_mmap)",
         effects=flush(pg, nr), goto="unlock")

    # ============================================================ ptep_get (+ gather)
    def get_return(val: Expr) -> list[tuple[Expr, dict[Expr, Any], str, str]]:
        """Where ptep_get returns to: (guard, effects, goto, note)."""
        orig = W.mknoncont(val)
        entry = W.mknoncont(W.mkwrite(W.mkdirty(W.mkyoung(val))))
        return [
            (ret == e(RET, "get"), {acc: val, ret: e(RET, "none"), k: 0}, "get_ret",
             "ptep_get returns"),
            (ret == e(RET, "wpr"), {ent: entry, ret: e(RET, "none"), k: 0, t_young: TRUE,
                                    t_dirty: TRUE}, "saf_read",
             "wp_page_reuse: entry = maybe_mkwrite(pte_mkdirty(pte_mkyoung(orig)))"),
            ((ret == e(RET, "safget")) & (orig == ent), {ret: e(RET, "none"), k: 0},
             "unlock", "contpte_ptep_set_access_flags: no change, return 0"),
            ((ret == e(RET, "safget")) & (orig != ent) & (W.write(orig) == W.write(ent)),
             {ret: e(RET, "none"), k: 0, nr: C}, "safr_cmpxchg",
             "contpte_ptep_set_access_flags: same write bit, whole block"),
            ((ret == e(RET, "safget")) & (orig != ent) & (W.write(orig) != W.write(ent)),
             enter_convert(orig, "saf"), "cv_clear",
             "contpte_ptep_set_access_flags: write bit changes, unfold"),
        ]

    for guard, eff, goto, note in get_return(y):
        step("get_read", "ptep_get: __ptep_get", guard=Not(W.valid_cont(y)) & guard,
             effects=eff, goto=goto, note=note)
    step("get_read", "ptep_get: __ptep_get, PTE_CONT: contpte_ptep_get", guard=W.valid_cont(y),
         effects={acc: y, k: 0}, goto="get_gather")
    gathered = W.gather(acc, x)
    step("get_gather", "contpte_ptep_get: __ptep_get, gather AF/dirty", guard=Not(last),
         effects={acc: gathered, k: k + 1}, goto="get_gather")
    for guard, eff, goto, note in get_return(gathered):
        step("get_gather", "contpte_ptep_get: __ptep_get, gather AF/dirty (last)",
             guard=last & guard, effects=eff, goto=goto, note=note)
    step("get_ret", "ptep_get returns", goto="unlock")

    # ============================================================ ptep_set_access_flags
    step("saf_read", "ptep_set_access_flags: __ptep_get", guard=Not(W.valid_cont(y)),
         effects={k: pg, nr: 1}, goto="safr_cmpxchg", note="__ptep_set_access_flags")
    step("saf_read", "ptep_set_access_flags: __ptep_get, PTE_CONT",
         guard=W.valid_cont(y), effects={ret: e(RET, "safget")}, goto="get_read",
         note="contpte_ptep_set_access_flags: orig_pte = pte_mknoncont(ptep_get(ptep))")
    single = nr == 1
    same = W.same(x, ent)
    target = k == pg
    merged = ite(same, x, W.access_merge(x, ent))
    up = target & Not(same)  # the abstract entry changes where the cmpxchg does
    raised = {a_young[k]: ite(up, a_young[k] | W.young(ent), a_young[k]),
              a_dirty[k]: ite(up, a_dirty[k] | W.dirty(ent), a_dirty[k]),
              a_write[k]: ite(up, a_write[k] | W.write(ent), a_write[k])}
    kern = "__ptep_set_access_flags: __ptep_get, pte_same, cmpxchg loop"
    step("safr_cmpxchg", kern, note="pte_same: return 0", guard=same & single,
         effects={k: 0}, goto="unlock")
    raised = merge(raised, stale_all(up))
    step("safr_cmpxchg", kern, guard=Not(same) & single,
         effects=merge({pte[k]: merged}, raised), goto="safr_flush")
    step("safr_cmpxchg", kern, note="contpte_ptep_set_access_flags: next entry",
         guard=Not(single) & Not(last), effects=merge({pte[k]: merged, k: k + 1}, raised),
         goto="safr_cmpxchg")
    step("safr_cmpxchg", kern, guard=Not(single) & last,
         effects=merge({pte[k]: merged, k: 0}, raised), goto="saf_flush")
    step("safr_flush", "__ptep_set_access_flags: flush_tlb_page (dirty)",
         effects=merge(flush(pg, 1), {k: 0}), goto="unlock")
    step("saf_flush", "contpte_ptep_set_access_flags: __flush_tlb_range (dirty)",
         effects=flush(0, C), goto="unlock")

    # ============================================================ lockless readers
    def at_cpu(w: int, *labels: str) -> Expr:
        """cpu[w] is at one of the labels (those this variant has)."""
        have = [lab for lab in labels if lab in cpu.group.labels]
        return cpu.at(w, *have) if have else FALSE

    in_bbm = AnyOf(cpu.group.index, lambda w: (at_cpu(w, "cv_clear") & (k[w] > 0))
                   | at_cpu(w, "cv_clear_store", "cv_flush", "cv_write"))
    gl_checks: list[Expr] = []
    gl_under: dict[str, list[Expr]] = {"dirty": [], "young": []}
    if walker is not None and stale is not None:
        rpg = walker.local("pg", Int(0, C - 1), 0)
        rk = walker.local("k", Int(0, C), 0)
        racc = walker.local("acc", W.sort, 0)
        rbb = walker.local("bbm", Bool(), False)
        rsy = walker.local("sy", Bool(), False) if reader_snapshots else None
        rsd = walker.local("sd", Bool(), False) if reader_snapshots else None
        wp = Choice("page", Int(0, C - 1))
        wr = wp.ref
        z = pte[wr]
        snap: dict[Expr, Any] = {rpg: wr}
        if rsy is not None and rsd is not None:
            snap.update({rsy: a_young[wr], rsd: a_dirty[wr]})
        on_rpages = Or(*(wr == p for p in reader_pages if 0 <= p < C))
        walker.step("gl_read", "ptep_get_lockless: __ptep_get", choose=wp,
                    guard=on_rpages & Not(W.valid_cont(z)),
                    effects=merge(snap, {racc: z, rbb: in_bbm}), goto="gl_ret")
        walker.step("gl_read", "ptep_get_lockless: __ptep_get, PTE_CONT", choose=wp,
                    guard=on_rpages & W.valid_cont(z), effects=snap, goto="gl_orig")
        q = pte[rpg]
        walker.step("gl_orig", "contpte_ptep_get_lockless: orig_pte = __ptep_get",
                    guard=Not(W.valid_cont(q)), effects={racc: q, rbb: in_bbm}, goto="gl_ret")
        walker.step("gl_orig", "contpte_ptep_get_lockless: orig_pte = __ptep_get",
                    guard=W.valid_cont(q), effects={racc: q, rk: 0}, goto="gl_gather")
        gx = pte[rk]
        # pfn check: the frames of this block are 0..C-1, so pte_pfn(orig_pte) minus the
        # target's offset is 0 whenever orig_pte is an entry of the block (refines_core_mm)
        bad = Not(W.valid_cont(gx)) | ((gx & W.c(L.pfn_mask)) != W.pfn_word(rk, C)) \
            | (W.attrs(gx) != W.attrs(racc))
        walker.step("gl_gather", "contpte_ptep_get_lockless: __ptep_get, inconsistent: retry",
                    guard=bad, effects={rk: 0}, goto="gl_orig")
        walker.step("gl_gather", "contpte_ptep_get_lockless: __ptep_get, gather",
                    guard=Not(bad) & (rk < C - 1),
                    effects={racc: W.gather(racc, gx), rk: rk + 1}, goto="gl_gather")
        walker.step("gl_gather", "contpte_ptep_get_lockless: __ptep_get, gather (last)",
                    guard=Not(bad) & (rk == C - 1),
                    effects={racc: W.gather(racc, gx), rk: 0}, goto="gl_ret")
        done: dict[Expr, Any] = {rpg: 0, rk: 0, racc: W.c(0), rbb: FALSE,
                                 stale[walker.self]: FALSE}
        if rsy is not None and rsd is not None:
            done.update({rsy: FALSE, rsd: FALSE})
        walker.step("gl_ret", "ptep_get_lockless returns", goto="gl_read", effects=done)
        def lockless_ok(R: Expr, i: Expr, st: Expr, j: int) -> Expr:
            """A valid lockless result for page j: its frame, and the plain entry's state."""
            return (i == j) & W.pfn_is(R, j) & Or(st, And(
                W.write(R) == a_write[j], Implies(W.young(R), a_young[j] | over_young),
                Implies(W.dirty(R), a_dirty[j] | over_dirty)))

        for r in range(readers):
            at = walker.at(r, "gl_ret")
            R, i, st = racc[r], rpg[r], stale[r]
            gl_checks.append(Implies(at, And(
                Implies(W.valid(R), Or(*(lockless_ok(R, i, st, j) for j in P))),
                Implies(Not(W.valid(R)), Not(a_present[i]) | (rbb[r] & Not(strict)) | st))))
            if rsy is not None and rsd is not None:
                fresh = at & W.valid(R) & Not(st)
                gl_under["dirty"].append(Implies(fresh & rsd[r], W.dirty(R)))
                gl_under["young"].append(Implies(fresh & rsy[r], W.young(R)))

    # ============================================================ properties
    ptl_free = ptl.owner == ptl.owners.none

    def view_young(j: int) -> Expr:
        return ite(W.valid_cont(pte[j]), AnyOf(P, lambda m: W.young(pte[m])), W.young(pte[j]))

    def view_dirty(j: int) -> Expr:
        return ite(W.valid_cont(pte[j]), AnyOf(P, lambda m: W.dirty(pte[m])), W.dirty(pte[j]))

    cpus = list(cpu.group.index)

    def get_ok(R: Expr, w: int, j: int) -> Expr:
        """ptep_get's result for page j equals the plain entry, up to (A)."""
        return (pg[w] == j) & And(
            W.valid(R) == a_present[j],
            Implies(W.valid(R), And(W.pfn_is(R, j), W.write(R) == a_write[j],
                                    Implies(W.dirty(R), a_dirty[j] | over_dirty),
                                    Implies(W.young(R), a_young[j] | over_young))))

    def ret_checks(young: bool, dirty: bool, over: bool) -> list[Expr]:
        """Return-value checks of the locked operations, per writer."""
        out: list[Expr] = []
        for w in cpus:
            R = acc[w]
            zap = at_cpu(w, "gac_ret", "clr_ret")
            exact = And(W.valid(R), Or(*((pg[w] == j) & W.pfn_is(R, j) for j in P)),
                        W.write(R) == aw[w])
            if over:
                out.append(Implies(zap, And(exact, Implies(W.dirty(R), ad[w] | over_dirty),
                                            Implies(W.young(R), ay[w] | over_young))))
                out.append(Implies(at_cpu(w, "tcy_ret"), Implies(res[w], ay[w] | over_young)))
                out.append(Implies(at_cpu(w, "get_ret"), Or(*(get_ok(R, w, j) for j in P))))
            if dirty:
                out.append(Implies(zap, Implies(ad[w], W.dirty(R))))
                out.append(Implies(at_cpu(w, "get_ret") & sd[w], W.dirty(R)))
            if young:
                out.append(Implies(zap, Implies(ay[w], W.young(R))))
                out.append(Implies(at_cpu(w, "get_ret") & sy[w], W.young(R)))
                out.append(Implies(at_cpu(w, "tcy_ret"), Implies(ay[w], res[w])))
        return out

    consistent = Or(Not(AnyOf(P, lambda j: W.cont(pte[j]))), AllOf(
        P, lambda j: W.valid_cont(pte[j]) & W.pfn_is(pte[j], j)
        & (W.attrs(pte[j]) == W.attrs(pte[0]))))
    window = Or(in_bbm, AnyOf(cpus, lambda w: Or(
        at_cpu(w, "csp_write") & (k[w] > 0),
        at_cpu(w, "clr_xchg") & (k[w] > pg[w]), at_cpu(w, "clr_xchg_store"),
        (op[w] == e(OPS, "fork")) & at_cpu(w, "wp_read", "wp_cmpxchg") & (k[w] > pg[w]))))
    props: dict[str, tuple[Expr, str]] = {
        "cont_consistency": (
            window | consistent,
            "outside a BBM window (and the make/teardown/full-block write-protect loops), a "
            "block with any PTE_CONT entry is all valid, PTE_CONT, frames 0..C-1, and equal "
            "apart from AF/dirty"),
        "bbm": (
            Not((tlb_blk != none) & AnyOf(P, lambda j: tlb_page[j] != none)),
            "the TLB never holds a block entry and a page entry for the same page"),
        "no_lost_dirty": (
            And(Implies(ptl_free, AllOf(P, lambda j: Implies(a_dirty[j], view_dirty(j)))),
                *ret_checks(False, True, False), *gl_under["dirty"]),
            "a page the MMU wrote is dirty in ptep_get's view until a zap returns its dirty "
            "state"),
        "no_lost_young": (
            And(Implies(ptl_free, AllOf(P, lambda j: Implies(a_young[j], view_young(j)))),
                *ret_checks(True, False, False), *gl_under["young"]),
            "a page the MMU accessed is young until an ageing or a zap returns its young "
            "state"),
        "refines_core_mm": (
            And(Implies(ptl_free, AllOf(P, lambda j: And(
                W.valid(pte[j]) == a_present[j],
                Implies(a_present[j], W.pfn_is(pte[j], j) & (W.write(pte[j]) == a_write[j])),
                Implies(a_present[j] & view_young(j), a_young[j] | over_young),
                Implies(a_present[j] & view_dirty(j), a_dirty[j] | over_dirty)))),
                *ret_checks(True, True, True), *gl_checks),
            "every value the API returns (and ptep_get's view of every page whenever the PTL "
            "is free) equals the plain page table's, up to the allowed deviations (A)-(C)"),
    }
    for name, (expr, doc) in props.items():
        s.invariant(name, expr, doc)
    if variant != "contpte":
        # A faulty variant halts at its first violation (the machine has lost data or taken
        # a TLB conflict abort there): nothing moves in a state that violates a property.
        # Verdicts for the other properties are about executions up to that point.
        # (Only the steps that start something new carry the guard: an operation already
        # under way finishes, then nothing else happens.)
        halted = Or(*(Not(expr) for expr, _ in props.values()))
        for g in (cpu.group, mmu.group, *((walker.group,) if walker else ())):
            g.steps = [replace(st, guard=And(st.guard, Not(halted)))
                       if st.label in ("idle", "dispatch", "hw", "gl_read") else st
                       for st in g.steps]
    s.expect_violated(*EXPECTED[variant])
    return s.build()
