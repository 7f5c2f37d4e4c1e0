"""Run the contpte model and the plain page table side by side, and check the refinement.

The harness owns a `ContPteMm`, a `PlainPageTable` and the in-flight operations of any
number of threads. It applies the plain table's changes at the same atomic accesses as
specs/contpte.py applies its ghost state (the write of a new entry, the exchange that
clears one, the successful cmpxchg that ages, write-protects or upgrades one, the MMU's
update), and evaluates the spec's five properties with the same definitions:

- `cont_consistency`: outside a break-before-make window (and the make / teardown /
  whole-block write-protect loops), a block with any PTE_CONT entry is all valid and
  PTE_CONT, maps consecutive frames from an aligned one, and is equal apart from AF/dirty;
- `bbm`: no virtual page is matched by two TLB entries;
- `no_lost_dirty` / `no_lost_young`: a page the MMU wrote (accessed) shows dirty (young)
  through ptep_get's view whenever no locked operation is in progress, and every API
  result that hands the state to core-mm includes it;
- `refines_core_mm`: results and views equal the plain table's, except (A) young/dirty
  over-reporting for a block whose folio has been young/dirty since the block was mapped,
  (B) test_and_clear_young consuming a whole block's young state when it reports young,
  (C) ptep_get_lockless returning none while a BBM window of that block is open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from model.contpte import ContPteMm
from model.contpte_callers import LOCKLESS, OpRecord, operation
from model.pagetable import PlainPageTable, PlainPte
from model.steps import Point, Thread
from model.tlb import HwEvent

WINDOW_SITES = ("cv_clear_store", "cv_flush", "cv_write")


@dataclass
class InFlight:
    """A thread's current operation and what the checks need to remember about it."""

    thread: Thread
    rec: OpRecord
    checked: bool = False
    ay: bool = False  # plain young state consumed by this operation
    ad: bool = False  # plain dirty state consumed
    aw: bool = False  # write permission of the first consumed entry
    consumed: int = 0
    sy: bool = False  # ptep_get: plain young/dirty when the operation started
    sd: bool = False
    stale: bool = False  # lockless: the plain table changed (not by the MMU) meanwhile
    bbm: bool = False  # lockless: a BBM window was open at the read that decided
    in_window: bool = False  # inside contpte_convert's break-before-make window
    tainted: bool = False  # wp_page_reuse has announced the folio young and dirty


@dataclass
class Harness:
    """The contpte model, its plain page table, threads and the properties seen violated."""

    mm: ContPteMm
    plain: PlainPageTable = field(init=False)
    taint_young: list[bool] = field(init=False)
    taint_dirty: list[bool] = field(init=False)
    ops: dict[str, InFlight] = field(default_factory=dict)
    violations: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.mm.words)
        rmw = self.mm.variant == "rmw_race"
        self.clear_sites = ("gac_xchg_store", "clr_xchg_store") if rmw else ("gac_xchg",
                                                                            "clr_xchg")
        self.plain = PlainPageTable(n)
        self.taint_young = [False] * (n // self.mm.C)
        self.taint_dirty = [False] * (n // self.mm.C)

    # ------------------------------------------------------------------ driving
    def start(self, name: str, rec: OpRecord) -> None:
        """Begin an operation on thread `name` (it runs up to its first access)."""
        t = Thread(name)
        fl = InFlight(t, rec)
        self.ops[name] = fl
        e = self.plain.entries[rec.start]
        fl.sy, fl.sd = bool(e and e.young), bool(e and e.dirty)
        t.start(operation(self.mm, rec))
        self._after(fl, None)

    def busy(self, name: str) -> bool:
        fl = self.ops.get(name)
        return fl is not None and not fl.thread.finished

    def next_point(self, name: str) -> Point | None:
        fl = self.ops.get(name)
        return None if fl is None else fl.thread.point

    def step(self, name: str) -> Point:
        """Perform thread `name`'s next access and apply its plain-table effect."""
        fl = self.ops[name]
        point = fl.thread.step()
        self._effect(fl, point)
        self._after(fl, point)
        return point

    def run(self, name: str, rec: OpRecord) -> object:
        """Start and finish an operation with no interleaving."""
        self.start(name, rec)
        while self.busy(name):
            self.step(name)
        return rec.result

    def hw(self, page: int, write: bool) -> HwEvent:
        ev = self.mm.mmu.access(page, write)
        if (ev.young or ev.wrote) and self.plain.entries[page] is not None:
            self.plain.hw_access(page, ev.young, ev.wrote)
            b = page // self.mm.C
            self.taint_young[b] |= ev.young
            self.taint_dirty[b] |= ev.wrote
        self.check_state()
        return ev

    def evict(self, start: int, size: int) -> bool:
        """Evict the TLB entry covering [start, start + size) if there is one."""
        for entry in self.mm.table.tlb.entries:
            if entry.start == start and entry.size == size:
                self.mm.table.tlb.evict(entry)
                self.check_state()
                return True
        return False

    # ------------------------------------------------------------------ ghost effects
    def _changed(self) -> None:
        for fl in self.ops.values():
            if fl.rec.kind == LOCKLESS and not fl.thread.finished:
                fl.stale = True

    def _effect(self, fl: InFlight, p: Point) -> None:
        mm, lay, i = self.mm, self.mm.layout, p.index
        now = mm.words[i]
        e = self.plain.entries[i]
        if p.site in ("csp_write", "sp_write"):
            b = i // mm.C
            if all(x is None for x in self.plain.entries[b * mm.C:(b + 1) * mm.C]):
                self.taint_young[b] = self.taint_dirty[b] = False
            self.plain.entries[i] = PlainPte(lay.pte_pfn(now), lay.pte_write(now),
                                             lay.pte_young(now), lay.pte_dirty(now))
            self.taint_young[b] |= lay.pte_young(now)
            self.taint_dirty[b] |= lay.pte_dirty(now)
            self._changed()
        elif p.site in self.clear_sites and e is not None:
            fl.ay |= e.young
            fl.ad |= e.dirty
            if fl.consumed == 0:
                fl.aw = e.write
            fl.consumed += 1
            self.plain.entries[i] = None
            self._changed()
        elif p.site == "tcyr_cmpxchg" and mm.table.last_cmpxchg_ok and e is not None:
            fl.ay |= e.young
            self.plain.entries[i] = PlainPte(e.pfn, e.write, False, e.dirty)
            self._changed()
        elif p.site == "wp_cmpxchg" and mm.table.last_cmpxchg_ok and e is not None:
            self.plain.wrprotect_ptes(i)
            self._changed()
        elif p.site == "safr_cmpxchg" and mm.table.last_cmpxchg_ok and e is not None \
                and i == fl.rec.start:
            entry = fl.rec.extra["entry"]
            self.plain.ptep_set_access_flags(i, lay.pte_young(entry), lay.pte_dirty(entry),
                                             lay.pte_write(entry))
            self._changed()
        if p.site == "cv_clear":
            fl.in_window = True
        elif p.site == "cv_write" and i % mm.C == mm.C - 1:
            fl.in_window = False
        if fl.rec.kind == "wpreuse" and "entry" in fl.rec.extra and not fl.tainted:
            fl.tainted = True  # pte_mkdirty(pte_mkyoung(orig)): core-mm dirties the folio
            b = fl.rec.start // mm.C
            self.taint_young[b] = self.taint_dirty[b] = True
        if fl.rec.kind == LOCKLESS and p.site in ("gl_read", "gl_orig"):
            fl.bbm = self.in_bbm(i)

    def in_bbm(self, page: int) -> bool:
        """Some thread is inside contpte_convert's BBM window for page's block."""
        b = page // self.mm.C
        return any(fl.in_window and not fl.thread.finished and fl.thread.point is not None
                   and fl.thread.point.index // self.mm.C == b
                   for fl in self.ops.values())

    def _window(self, fl: InFlight) -> bool:
        """The spec's exemption windows for cont_consistency, from the thread's next access."""
        p = fl.thread.point
        if fl.thread.finished or p is None:
            return False
        start = fl.rec.start
        if fl.in_window or p.site in WINDOW_SITES:
            return True
        if p.site == "csp_write" and p.index > start:
            return True
        if p.site in ("clr_xchg", "clr_xchg_store") and p.index > start:
            return True
        return fl.rec.kind == "fork" and p.site in ("wp_load", "wp_cmpxchg") and p.index > start

    # ------------------------------------------------------------------ checks
    def violate(self, prop: str, why: str) -> None:
        self.violations.setdefault(prop, why)

    def lost(self, prop: str, why: str) -> None:
        """A result that under-reports: a lost state, and a result the plain table refutes."""
        self.violate(prop, why)
        self.violate("refines_core_mm", why)

    def _after(self, fl: InFlight, point: Point | None) -> None:
        if fl.rec.returned and not fl.checked:
            fl.checked = True
            self._check_return(fl)
        self.check_state()

    def view(self, i: int) -> int:
        """What ptep_get(i) would return now (contpte_ptep_get's gather, no side effects)."""
        mm, lay = self.mm, self.mm.layout
        w = mm.words[i]
        if not lay.pte_valid_cont(w):
            return w
        start = i - i % mm.C
        for x in mm.words[start:start + mm.C]:
            if lay.pte_dirty(x):
                w = lay.pte_mkdirty(w)
            if lay.pte_young(x):
                w = lay.pte_mkyoung(w)
        return w

    def locked_busy(self) -> bool:
        return any(not fl.thread.finished and fl.rec.kind != LOCKLESS for fl in self.ops.values())

    def check_state(self) -> None:
        mm, lay = self.mm, self.mm.layout
        if mm.table.tlb.conflicting_pages():
            self.violate("bbm", f"TLB conflict on pages {mm.table.tlb.conflicting_pages()}")
        if not any(self._window(fl) for fl in self.ops.values()):
            for b in range(len(mm.words) // mm.C):
                why = self.block_inconsistency(b)
                if why:
                    self.violate("cont_consistency", why)
        if self.locked_busy():
            return
        for i, e in enumerate(self.plain.entries):
            v = self.view(i)
            b = i // mm.C
            if lay.pte_valid(v) != (e is not None):
                self.violate("refines_core_mm", f"page {i}: present {lay.pte_valid(v)}, plain "
                             f"table says {e is not None}")
                continue
            if e is None:
                continue
            if lay.pte_pfn(v) != e.pfn or lay.pte_write(v) != e.write:
                self.violate("refines_core_mm", f"page {i}: {lay.describe(v)} vs {e}")
            if e.dirty and not lay.pte_dirty(v):
                self.violate("no_lost_dirty", f"page {i} was written but ptep_get shows clean")
            if e.young and not lay.pte_young(v):
                self.violate("no_lost_young", f"page {i} was accessed but ptep_get shows old")
            if lay.pte_dirty(v) and not (e.dirty or self.taint_dirty[b]):
                self.violate("refines_core_mm", f"page {i} reported dirty beyond (A)")
            if lay.pte_young(v) and not (e.young or self.taint_young[b]):
                self.violate("refines_core_mm", f"page {i} reported young beyond (A)")

    def block_inconsistency(self, b: int) -> str:
        mm, lay = self.mm, self.mm.layout
        ws = mm.words[b * mm.C:(b + 1) * mm.C]
        if not any(lay.pte_cont(w) for w in ws):
            return ""
        if not all(lay.pte_valid_cont(w) for w in ws):
            return f"block {b}: PTE_CONT on some entries but not all valid+CONT"
        base = lay.pte_pfn(ws[0])
        if base % mm.C or any(lay.pte_pfn(w) != base + k for k, w in enumerate(ws)):
            return f"block {b}: frames not contiguous and aligned"
        if len({lay.attrs(w) for w in ws}) != 1:
            return f"block {b}: attributes differ beyond AF/dirty"
        return ""

    def _check_return(self, fl: InFlight) -> None:
        lay, rec = self.mm.layout, fl.rec
        i, R, b = rec.start, rec.result, rec.start // self.mm.C
        ty, td = self.taint_young[b], self.taint_dirty[b]
        if rec.kind in ("zap1", "zaprange"):
            if not lay.pte_valid(R) or lay.pte_pfn(R) != i or lay.pte_write(R) != fl.aw:
                self.violate("refines_core_mm", f"{rec.kind} returned {lay.describe(R)}")
            if fl.ad and not lay.pte_dirty(R):
                self.lost("no_lost_dirty", f"{rec.kind} returned clean for a written page")
            if fl.ay and not lay.pte_young(R):
                self.lost("no_lost_young", f"{rec.kind} returned old for an accessed page")
            if (lay.pte_dirty(R) and not (fl.ad or td)) or (lay.pte_young(R) and not (fl.ay or ty)):
                self.violate("refines_core_mm", f"{rec.kind} over-reported beyond (A)")
        elif rec.kind == "young":
            if fl.ay and not R:
                self.lost("no_lost_young", "ptep_clear_flush_young lost an access")
            if R and not (fl.ay or ty):
                self.violate("refines_core_mm", "ptep_clear_flush_young over-reported")
        elif rec.kind == "get":
            e = self.plain.entries[i]
            if lay.pte_valid(R) != (e is not None) or (e is not None and (
                    lay.pte_pfn(R) != e.pfn or lay.pte_write(R) != e.write
                    or (lay.pte_dirty(R) and not (e.dirty or td))
                    or (lay.pte_young(R) and not (e.young or ty)))):
                self.violate("refines_core_mm", f"ptep_get returned {lay.describe(R)}, plain {e}")
            if fl.sd and not lay.pte_dirty(R):
                self.lost("no_lost_dirty", "ptep_get lost a dirty state")
            if fl.sy and not lay.pte_young(R):
                self.lost("no_lost_young", "ptep_get lost a young state")
        elif rec.kind == LOCKLESS:
            e = self.plain.entries[i]
            if lay.pte_valid(R):
                ok = lay.pte_pfn(R) == i and (fl.stale or (e is not None and (
                    lay.pte_write(R) == e.write
                    and (not lay.pte_young(R) or e.young or ty)
                    and (not lay.pte_dirty(R) or e.dirty or td))))
                if not ok:
                    self.violate("refines_core_mm",
                                 f"ptep_get_lockless returned {lay.describe(R)}, plain {e}")
            elif e is not None and not fl.bbm and not fl.stale:
                self.violate("refines_core_mm",
                             "ptep_get_lockless returned none for a present page outside BBM")
