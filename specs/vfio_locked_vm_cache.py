"""VFIO multithreaded pinning and its locked_vm cache (RFC 08/16): leaks, overaccounting, ENOMEM.

THE KERNEL CODE. drivers/vfio/vfio_iommu_type1.c at v5.16 with the RFC series "padata,
vfio, sched: Multithreaded VFIO page pinning" (Jan 2022): VFIO_IOMMU_MAP_DMA runs
``vfio_pin_map_dma``, which hands the range to ``padata_do_multithreaded``; the caller
and ``threads - 1`` kworkers loop in ``padata_mt_helper`` taking chunks of
``chunk_pages`` under ``ps->lock`` and run ``vfio_pin_map_dma_chunk`` on each. A chunk is
pinned by repeated ``vfio_pin_pages_remote`` calls, each pinning a physically contiguous
run of pages of one reserved-ness through a batch refilled by ``vaddr_get_pfns`` (GUP
under mmap_read_lock), charging the pages that need it to ``mm->locked_vm`` with
``vfio_lock_acct`` -> ``__account_locked_vm`` under the mmap_lock *writer*, then mapping
them with ``vfio_iommu_map``. On an error the chunk undoes its own mapped part
(``vfio_pin_map_dma_undo`` -> ``vfio_unmap_unpin``) and, once every helper finished,
``padata_undo`` undoes every completed chunk. The variants (``model/vfio_variants.py``):

- ``upstream`` - the series before RFC 08: each vfio_pin_pages_remote call charges its
  pages at ``out:`` (one writer acquisition per contiguous run).
- ``seed`` - RFC 08 as posted: a per-thread ``lock_cache`` refilled with
  ``min(unmapped, LOCKED_VM_CACHE_PAGES)`` when empty, per-page fallback when a refill
  fails with -ENOMEM, the rest released at the end of the chunk.
- ``upfront`` - the reviewer's "account once at the start", per chunk: charge the whole
  chunk, fail it if that does not fit, return the unused rest at its end.
- ``fixed`` - the correction of every defect below, keeping few writer acquisitions.

Reference implementation: ``model/vfio.py`` (same function names, same step labels);
``python -m checker replay TRACE.json`` runs a trace's schedule and faults on it.

PARAMETERS. ``variant``; ``threads`` (padata helpers, the MAP_DMA caller is thread 0);
``chunks`` (padata chunks, >= threads); ``chunk_pages``; ``cache_pages``
(LOCKED_VM_CACHE_PAGES); ``batch_pages`` (vfio_batch capacity); ``limit_pages``
(RLIMIT_MEMLOCK in pages); ``initial_locked`` (locked_vm before the ioctl); ``lock_cap``
(CAP_IPC_LOCK: the limit is bypassed); ``layout``: ``"*"`` lets every page be any allowed
kind (decided when GUP first reaches it), or one letter per page, ``N`` normal, ``R``
reserved/PFNMAP, ``P`` already pinned through the mdev interface (vfio_find_vpfn finds
it), ``F`` faulting address; ``reserved``/``pinned``/``efault`` allow those kinds for
``"*"`` pages; ``fatal_signal`` lets SIGKILL reach the caller (it is taken to arrive with
the first step it affects: a killable mmap_lock acquisition that has to wait, or a GUP);
``iommu_fail`` lets any vfio_iommu_map fail; ``mmap_lock``: ``"atomic"`` sections or the
``"rwsem"`` component (see ABSTRACTIONS); ``granularity``: ``"page"`` (one iteration
of vfio_pin_pages_remote's inner loop per step) or ``"batch"`` (a step takes any run of
the batch's pages; no page index is in the state either way, so the SMT engine can use
real sizes; ``cache_pages``, ``limit_pages`` and ``initial_locked`` are spec constants that
``--engine smt --symbolic`` may leave free over ranges covering every value). The
defaults (2 threads, 2 chunks of 2 pages, cache 1, batch 2, limit 4, initial 1) switch
every page kind and every fault on, and 4 pages against a headroom of 3 make -ENOMEM
reachable; every step alternative is taken at the defaults
(tests/specs/test_vfio_locked_vm_cache.py checks this).

PROPERTIES.

- ``no_leak`` (final): once every thread finished and errors were undone, locked_vm ==
  initial + accountable pages still pinned (nothing charged for nothing, nothing pinned
  uncharged). "Accountable" = normal pages pinned by this MAP_DMA (``acc_pinned``).
- ``overaccount_bound``: in every state locked_vm - (initial + acc_pinned) <= threads x
  cache_pages. A kernel step that unpins pages and then uncharges them (vfio_unmap_unpin,
  vfio_unpin_pages_remote) is one step, so its internal lag is not counted; a charge
  that is lost for good counts from then on.
- ``no_spurious_enomem``: no pin fails with RLIMIT_MEMLOCK's -ENOMEM while initial +
  every page of the range that needs accounting fits under the limit (with ``"*"``
  layouts: every page decided to need accounting so far - the undecided rest can be
  reserved, so the failure is spurious for that layout).
- ``rlimit``: what the kernel guarantees. ``__account_locked_vm`` refuses a charge that
  would take locked_vm above RLIMIT_MEMLOCK, under the mmap_lock writer, and uncharges
  always succeed; the unlocked early check in vfio_pin_pages_remote is only a shortcut.
  So: unless CAP_IPC_LOCK, locked_vm <= max(limit, initial locked_vm) in every state.
  It is *not* a bound on pinned memory: upstream pins a batch before charging it, so
  pinned-but-uncharged pages may exist beyond the limit until the charge fails and they
  are unpinned.
- ``no_deadlock``: no state where a thread cannot move (the caller's wait_for_completion;
  with ``mmap_lock="rwsem"`` also every mmap_lock wait).
- ``no_lock_inversion`` (``mmap_lock="rwsem"`` only): lockdep's order graph has no cycle.

EXPECTED VERDICTS (gate = defaults; ``GATE_VIOLATIONS`` below also covers the two
configurations docs/vfio.md uses; elsewhere only ``ALWAYS_HOLD`` is claimed):

    variant    no_leak  overaccount_bound  no_spurious_enomem  rlimit  no_deadlock
    upstream   VIOL     VIOL               pass                pass    pass
    seed       VIOL     VIOL               VIOL                pass    pass
    upfront    pass     VIOL               VIOL                pass    pass
    fixed      pass     pass               pass                pass    pass

With ``fatal_signal=false`` upstream keeps only no_leak (story 4) and seed loses
overaccount_bound; with ``fatal_signal=false pinned=false`` upstream passes everything
while seed still violates no_leak and no_spurious_enomem: those two are the patch's own.

FINDINGS - the shortest counterexamples, committed as tests/traces/vfio/*.itf.json and
replayed on model/ by the tests (``python -m checker replay`` does the same).

1. The cache leaks on the error path (seed, no_leak; ``seed-no_leak-nosignal-nopinned``,
   9 steps). Helper 0 refills lock_cache with one page (locked_vm 1 -> 2), GUP returns a
   single normal page because the next one faults, the page draws from lock_cache, and
   the next vaddr_get_pfns fails with -EFAULT. ``unpin_out`` unpins the drawn page but
   nobody gives its page back to the cache: the chunk releases ``lock_cache == 0`` and
   locked_vm stays at 2 with nothing pinned. Any failure after a draw in the same
   vfio_pin_pages_remote call does this (-EFAULT, the -ENOMEM of the per-page check or
   of the ``out:`` charge, -EINTR).
2. Another helper's cache makes a pin fail (seed, no_spurious_enomem;
   ``seed-no_spurious_enomem``, 13 steps). Helper 0 charges its cache for page 1 of its
   chunk, which turns out to be a PFNMAP page; helper 1 charges its cache too, and
   locked_vm reaches the limit (4). Helper 1's second normal page finds its cache empty,
   the per-page check sees locked_vm + 1 > limit and the whole MAP_DMA fails with -ENOMEM
   - although the three normal pages of the range and the initial page fit exactly.
3. A killed caller loses uncharges (upstream and seed, no_leak and overaccount_bound;
   ``upstream-no_leak``, ``seed-no_leak``, ``*-overaccount_bound``). Every uncharge goes
   through vfio_lock_acct -> mmap_write_lock_killable; when SIGKILL is pending and
   mmap_lock is contended (a vCPU fault is enough) it returns -EINTR and the uncharge is
   dropped: after a failed vfio_iommu_map, vfio_unpin_pages_remote unpins the pages and
   keeps their charge; in seed the release of the unused cache is lost the same way;
   padata_undo loses a completed chunk's charge. Pre-existing in upstream and harmless
   unless the mm outlives the killed thread group (an mm shared with CLONE_VM).
4. Undo releases charges it never took (upstream, no_leak with ``fatal_signal=false``;
   ``upstream-no_leak-nosignal``, 11 steps, locked_vm ends at -1). Chunk 0 is two pages
   already pinned through the mdev interface (vfio_find_vpfn: not charged), chunk 1
   faults, padata_undo runs vfio_unmap_unpin on chunk 0, which uncharges every unpinned
   non-reserved page. The kernel relies on dma->pfn_list being empty there (a new
   vfio_dma is, and iommu->lock keeps mdev pins out during MAP_DMA), so this is latent
   in v5.16; it is reachable here because already-pinned pages are a page kind.
5. Accounting once per chunk (upfront): overaccount_bound (``upfront-overaccount_bound``,
   7 steps: helper 0 still holds the unused rest of its chunk's charge when helper 1
   charges its whole chunk before pinning anything: 3 pages charged for nothing, bound
   2) and no_spurious_enomem (``upfront-no_spurious_enomem``, 4 steps: helper 1's chunk
   does not fit next to helper 0's whole-chunk charge, whatever the pages are) - Alex
   Williamson's objection to pre-accounting, made concrete.

THE FIX (variant ``fixed``, ``model/vfio_variants.py``): one cache per MAP_DMA job shared
by its helpers (``args->lock_cache``), refilled only when a page that needs accounting
finds it empty, under mmap_lock for write, with min(LOCKED_VM_CACHE_PAGES, mapping size,
RLIMIT headroom) pages - -ENOMEM only when the empty cache meets no headroom, i.e. every
charged page is pinned and the asking page really does not fit; pages drawn from it and
unpinned on an error path are uncharged at once; every uncharge uses the uninterruptible
mmap_write_lock(); vfio_unmap_unpin keeps the charge of vfio_pfn pages; the rest of the
cache is released after padata_do_multithreaded returns. Writer acquisitions stay about
one per LOCKED_VM_CACHE_PAGES pages for the whole job, and the overaccount is at most one
cache, not one per helper.

ABSTRACTIONS (why they hide no violation of these properties).

- mmap_lock sections are atomic steps (GUP under the reader; each vfio_lock_acct under
  the writer): locked_vm is only written under the writer, so no interleaving inside a
  section changes what the properties see; the unlocked read of locked_vm in the RLIMIT
  check is its own step. A killable writer acquisition fails with -EINTR only when it
  must wait with SIGKILL pending; any mmap_lock user of the process (a vCPU fault) can
  make it wait, so with SIGKILL pending both outcomes are explored.
  ``mmap_lock="rwsem"`` checks this instead of assuming it: every section runs on the
  rw_semaphore component of specs/rwsem.py (acquire at L, the section at L_locked, release
  at L_unlock, the -EINTR path at L_eintr), a vCPU thread's page faults hold the reader
  side whenever they like (the contention that makes a killable acquisition fail), and
  ``no_lock_inversion`` joins the properties. Verdicts are the same
  (tests/specs/test_vfio_rwsem.py); there, fixed/upfront's uncharge of drawn pages in
  unpin_out is its own writer section (``unpin_drawn``), as in the kernel, instead of
  part of the failing step.
- Thread-local code between shared accesses runs inside the preceding step (local
  actions commute with every other thread's). vfio_iommu_map belongs to ``out``.
- pfns are consecutive, so a run ends exactly where reserved-ness changes; a physical
  discontinuity would only add another ``goto out``, which a kind change already takes.
  With ``"*"`` a GUP may stop short only before a reserved or faulting page, and a page's
  kind, once decided, stays (a dropped single-page batch remembers it in ``head``).
- One IOMMU domain; the unmap order inside vfio_unmap_unpin and the TLB gather do not
  change what is uncharged. Zero pages, hugetlb, disable_hugepages are left out.
- The chunk size is a parameter (padata's formula gives every size for some min_chunk);
  padata_mt_helper's ps->lock sections are atomic steps.
- Only the caller (thread 0) receives SIGKILL: padata helpers are kworkers. With SIGKILL
  pending, GUP returns -EINTR at a normal, already-pinned or faulting first page
  (__get_user_pages checks the signal before faulting); a reserved page goes through
  follow_fault_pfn on its (populated) pte and succeeds.
- vfio_iommu_replay also calls vfio_pin_pages_remote (with a cache of 0 in RFC 08, i.e.
  the upstream behaviour); it is single-threaded and not modelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from checker.expr import (
    FALSE,
    INT,
    TRUE,
    AllOf,
    Bool,
    Const,
    Enum,
    Expr,
    Int,
    Max,
    Min,
    Not,
    Or,
    Sum,
    ite,
)
from checker.spec import Choice, ProcessBuilder, Spec, SpecBuilder, SpecError, specification
from model.vfio_variants import SHARED, THREAD, VARIANTS, Variant
from specs.rwsem import RwSem, Signal

OK, EFAULT, ENOMEM, EINTR, EIOMMU = "ok", "EFAULT", "ENOMEM", "EINTR", "EIOMMU"
ERRNO = Enum("errno", OK, EFAULT, ENOMEM, EINTR, EIOMMU)
HEAD = Enum("head", "none", "N", "P", "R", "RF")
KINDS = "NRPF"

ONE, ZERO = Const(1, INT), Const(0, INT)


def _head(kind: str) -> Const:
    """A ``head`` enum literal (ite needs one expression operand)."""
    return Const(HEAD.code(kind), HEAD)


Effects = dict[Expr, Any]
Branch = tuple[Any, Effects, str]  # (condition on the post-state, extra effects, goto)

# mmap_lock="rwsem": the mmap_lock sections, the side each holds, and the continuations a
# section's release may go on to (the local ``resume``).
SECTION_LOCKS = {"gup": "read", "refill": "write", "out": "write", "unpin_remote": "write",
                 "release": "write", "undo": "write", "padata_undo": "write",
                 "finish": "write", "unpin_drawn": "write"}
# fixed's lemmas: where a helper works on a chunk, is inside vfio_pin_pages_remote, may hold
# a batch, has finished
WORKING = ("helper", "gup", "page", "out", "refill", "unpin_remote", "undo")
IN_CALL = ("gup", "page", "out", "refill", "unpin_remote")
BATCH_AT = ("out", "page", "refill", "unpin_remote")
FINISHED = ("wait", "done", "finish", "padata_undo")
RESUME = Enum("resume", "none", "helper", "wait", "done", "refill", "gup", "page", "out",
              "unpin_remote", "release", "undo", "padata_undo", "finish", "unpin_drawn")


@dataclass
class _Alt:
    """A section's step alternative, kept until ``_Builder.sections`` places it."""

    kernel: str
    guard: Any
    effects: dict[Expr, Any]
    goto: str
    note: str
    choose: tuple[Choice, ...]
    locked: Any  # True: under mmap_lock; False: no lock; an Expr: under it when true
    eintr: bool  # the path after a killable acquisition returned -EINTR


def _replay(trace: Any, spec: Spec) -> Any:
    """`python -m checker replay`: run the trace's schedule, layout and faults on model/."""
    from checker.replay import ModelReplay
    from model.vfio_replay import replay

    plan, out = replay(trace)
    log = [f"model layout {plan.config.layout}; map failures at steps "
           f"{sorted(plan.faults.map_fail_steps)}; contended mmap_lock at steps "
           f"{sorted(plan.faults.contended_steps)}"]
    log += [f"{e.index:3d}. {e.who}: {e.label} -> {e.next_label}" for e in out.log.entries]
    log.append(f"model: locked_vm={out.locked_vm} acc_pinned={out.acc_pinned} "
               f"violates {', '.join(sorted(out.violated)) or 'nothing'}")
    return ModelReplay(set(out.violated), out.final(), log)


@dataclass
class _Params:
    variant: Variant
    threads: int
    chunks: int
    cp: int
    cache: int
    batch: int
    limit: int
    initial: int
    lock_cap: bool
    layout: str  # "*" or one letter per page
    reserved: bool
    pinned: bool
    efault: bool
    fatal_signal: bool
    iommu_fail: bool
    granularity: str
    mmap_lock: str  # "atomic" sections or the "rwsem" component

    @property
    def pages(self) -> int:
        return self.chunks * self.cp

    @property
    def free(self) -> bool:
        return self.layout == "*"

    def allowed(self, kind: str) -> bool:
        """May a page be of this kind (N, R, P, F)?"""
        if not self.free:
            return kind in self.layout
        return {"N": True, "R": self.reserved, "P": self.pinned, "F": self.efault}[kind]


def _check(p: _Params) -> None:
    where = "spec vfio_locked_vm_cache"
    if p.threads < 2:
        raise SpecError(where, "threads must be at least 2 (one helper is the v5.16 loop)")
    if p.chunks < p.threads:
        raise SpecError(where, f"chunks ({p.chunks}) must be at least threads ({p.threads}):"
                        " padata makes at least one chunk per helper")
    for name, v in (("chunk_pages", p.cp), ("cache_pages", p.cache),
                    ("batch_pages", p.batch)):
        if v < 1:
            raise SpecError(where, f"{name} must be at least 1, got {v}")
    if p.limit < 0 or p.initial < 0:
        raise SpecError(where, "limit_pages and initial_locked must be non-negative")
    if p.granularity not in ("page", "batch"):
        raise SpecError(where, f"granularity must be 'page' or 'batch', got {p.granularity!r}")
    if p.mmap_lock not in ("atomic", "rwsem"):
        raise SpecError(where, f"mmap_lock must be 'atomic' or 'rwsem', got {p.mmap_lock!r}")
    if p.granularity == "batch" and not p.free:
        raise SpecError(where, "granularity=batch needs layout='*' (a step takes a run of "
                        "pages without naming them)")
    if not p.free:
        bad = [c for c in p.layout if c not in KINDS]
        if bad:
            raise SpecError(where, f"layout letter {bad[0]!r} is not one of N, R, P, F or '*'")
        if len(p.layout) != p.pages:
            raise SpecError(where, f"layout has {len(p.layout)} letters, the mapping has "
                            f"{p.pages} pages (chunks x chunk_pages)")


@specification(variants=tuple(VARIANTS), replay=_replay)
def build(variant: str = "seed", threads: int = 2, chunks: int = 2, chunk_pages: int = 2,
          cache_pages: int = 1, batch_pages: int = 2, limit_pages: int = 4,
          initial_locked: int = 1, lock_cap: bool = False, layout: str = "*",
          reserved: bool = True, pinned: bool = True, efault: bool = True,
          fatal_signal: bool = True, iommu_fail: bool = True,
          granularity: str = "page", mmap_lock: str = "atomic") -> Spec:
    """VFIO MAP_DMA on padata helpers with the RFC 08 locked_vm cache, four variants."""
    if variant not in VARIANTS:
        raise SpecError("spec vfio_locked_vm_cache",
                        f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    p = _Params(VARIANTS[variant], threads, chunks, chunk_pages, cache_pages, batch_pages,
                limit_pages, initial_locked, lock_cap, layout, reserved, pinned, efault,
                fatal_signal, iommu_fail, granularity, mmap_lock)
    _check(p)
    parameters = {
        "variant": variant, "threads": threads, "chunks": chunks, "chunk_pages": chunk_pages,
        "cache_pages": cache_pages, "batch_pages": batch_pages, "limit_pages": limit_pages,
        "initial_locked": initial_locked, "lock_cap": lock_cap, "layout": layout,
        "reserved": reserved, "pinned": pinned, "efault": efault,
        "fatal_signal": fatal_signal, "iommu_fail": iommu_fail, "granularity": granularity,
        "mmap_lock": mmap_lock,
    }
    s = SpecBuilder("vfio_locked_vm_cache", __doc__ or "", parameters=parameters,
                    variant=variant)
    _Builder(s, p).build()
    _expectations(s, p, parameters)
    return s.build()


class _Builder:
    """Declares the state and every step alternative for one parameter assignment."""

    def __init__(self, s: SpecBuilder, p: _Params) -> None:
        self.s, self.p = s, p
        v = p.variant
        T = s.index("thread", p.threads)
        C = s.index("chunk", p.chunks)
        self.T, self.C = T, C
        pages, cp = p.pages, p.cp
        # Spec constants (--symbolic cache_pages,limit_pages,initial_locked for the SMT
        # engine). Their ranges cover every value: a cache above the mapping behaves like
        # one of its size (every refill is min(unmapped or mapping, cache)) and only
        # loosens the bound threads x cache; only limit - initial decides a charge, and a
        # headroom below -pages or above what locked_vm can reach behaves like the range's
        # end, so [0, initial_hi] x [0, limit_hi] gives every headroom its behaviour.
        cache_hi = max(p.cache, pages)
        initial_hi = max(p.initial, 2 * pages)
        limit_hi = max(p.limit, initial_hi + 2 * pages + p.threads * cache_hi)
        self.cache_c = s.const("cache_pages", p.cache, 1, cache_hi)
        self.limit_c = s.const("limit_pages", p.limit, 0, limit_hi)
        self.initial_c = s.const("initial_locked", p.initial, 0, initial_hi)
        lo = -pages
        hi = limit_hi + 2 * pages + p.threads * cache_hi
        self.locked_vm = s.var("locked_vm", Int(lo, hi), init=self.initial_c,
                               doc="mm->locked_vm")
        self.acc_pinned = s.var("acc_pinned", Int(0, pages), init=0,
                                doc="normal pages this MAP_DMA holds pinned")
        self.position = s.var("position", Int(0, p.chunks), init=0,
                              doc="padata ps->position, in chunks")
        self.error = s.var("error", ERRNO, init=OK, doc="padata ps->error")
        self.nfini = s.var("nfini", Int(0, p.threads), init=0, doc="ps->nworks_fini")
        self.fatal = s.var("fatal", Bool(), init=False,
                           doc="SIGKILL pending for the MAP_DMA caller (thread 0); it is "
                           "set by the first step the signal affects")
        self.spurious = s.var("spurious", Bool(), init=False,
                              doc="a pin failed with -ENOMEM although everything fits")
        self.need = s.var("need", Int(0, pages), init=0,
                          doc="pages decided to need accounting so far") if p.free else None
        self.done_acc = s.array("done_acc", C, Int(0, cp), init=0,
                                doc="normal pages of a completed chunk")
        self.done_vp = s.array("done_vp", C, Int(0, cp), init=0,
                               doc="already-pinned pages of a completed chunk")
        self.failed_chunk = s.array("failed", C, Bool(), init=False,
                                    doc="padata's failed_works: chunks whose thread_fn failed")
        self.pool = s.var("pool", Int(0, cache_hi), init=0,
                          doc="fixed: the job's shared locked_vm cache") \
            if v.cache == SHARED else None

        h = s.process("helper", T, doc="padata_mt_helper running vfio_pin_map_dma_chunk; "
                      "helper[0] is the MAP_DMA caller")
        self.h = h
        self.chunk = h.local("chunk", Int(-1, p.chunks - 1), init=-1)
        self.mapped = h.local("mapped", Int(0, cp), init=0)
        self.m_acc = h.local("m_acc", Int(0, cp), init=0)
        self.m_vp = h.local("m_vp", Int(0, cp), init=0)
        self.pinned = h.local("pinned", Int(0, cp), init=0)
        self.p_acc = h.local("p_acc", Int(0, cp), init=0)
        self.p_vp = h.local("p_vp", Int(0, cp), init=0)
        self.lock_acct = h.local("lock_acct", Int(0, cp), init=0) \
            if v.cache != SHARED and not v.refill_whole_chunk else None
        self.drawn = h.local("drawn", Int(0, cp), init=0) \
            if v.uncharge_drawn_on_error else None
        self.bsize = h.local("bsize", Int(0, p.batch), init=0)
        self.bacc = h.local("bacc", Int(0, p.batch), init=0)
        self.bvp = h.local("bvp", Int(0, p.batch), init=0)
        self.bfresh = h.local("bfresh", Bool(), init=False)
        self.head = h.local("head", HEAD, init="none") if p.free else None
        self.cache = h.local("lock_cache", Int(0, cache_hi), init=0) \
            if v.cache == THREAD else None
        self.ret = h.local("ret", ERRNO, init=OK)
        self.undo_pos = h.local("undo_pos", Int(0, p.chunks), init=0)
        self.is0 = h.self == 0
        # SIGKILL reaches only the caller; it is pending from the first step it affects
        self.killed = self.is0 & self.fatal
        self.mm: RwSem | None = None
        self.vcpu: ProcessBuilder | None = None
        self.resume = None
        self.alts: dict[str, list[_Alt]] = {}
        if p.mmap_lock == "rwsem":
            # where the thread goes on once it dropped mmap_lock
            self.resume = h.local("resume", RESUME, init="none")
            if p.fatal_signal:
                self.vcpu = s.process("vcpu", 1, doc="a vCPU thread of the guest: its page "
                                      "faults hold mmap_lock for read")
            users = (h,) if self.vcpu is None else (h, self.vcpu)
            self.mm = RwSem(s, "mmap_lock", users=users, doc="mm->mmap_lock")

    # ---------------------------------------------------------------- derived values

    @property
    def pos(self) -> Expr:
        """vaddr of the next page of the current vfio_pin_pages_remote call."""
        return self.chunk * self.p.cp + self.mapped + self.pinned

    @property
    def npage(self) -> Expr:
        return self.p.cp - self.mapped - self.pinned

    @property
    def rsvd(self) -> Expr:
        """The run's reserved-ness (meaningful once pinned > 0)."""
        return (self.pinned > 0) & (self.p_acc + self.p_vp == 0)

    def failed(self, c: int) -> Expr:
        """Chunk c failed (padata's failed_works): its helper stopped with an error."""
        return self.failed_chunk[c]

    def step(self, label: str, kernel: str, guard: Any, effects: Effects, branches: list[Branch],
             note: str = "", choose: tuple[Choice, ...] = (), locked: Any = True,
             eintr: bool = False) -> None:
        """One alternative per continuation branch (conditions on post-state values)."""
        for cond, extra, goto in branches:
            eff = dict(effects)
            eff.update(extra)
            self.emit(label, kernel, guard & cond if cond is not True else guard, eff, goto,
                      note, choose, locked, eintr)

    # ---------------------------------------------------------------- continuations

    def call_reset(self) -> Effects:
        """A new vfio_pin_pages_remote call: its locals start at 0."""
        eff: Effects = {self.pinned: 0, self.p_acc: 0, self.p_vp: 0}
        if self.lock_acct is not None:
            eff[self.lock_acct] = 0
        if self.drawn is not None:
            eff[self.drawn] = 0
        return eff

    def pin_entry(self, bsize_post: Any) -> list[Branch]:
        """vfio_pin_pages_remote entry: leftover batch -> inner loop, else refill the batch."""
        return [(bsize_post > 0, self.call_reset(), "page"),
                (bsize_post == 0, self.call_reset(), "gup")]

    def loop_top(self, mapped_post: Any, cache_post: Any, bsize_post: Any) -> list[Branch]:
        """vfio_pin_map_dma_chunk: ``while (unmapped_size)`` and the seed refill test."""
        p, v = self.p, self.p.variant
        unmapped = p.cp - mapped_post
        out: list[Branch] = []
        for cond, eff, goto in self.chunk_end(OK):
            out.append(((unmapped == 0) & cond, eff, goto))
        if v.cache == THREAD and not v.refill_whole_chunk:
            out.append(((unmapped > 0) & (cache_post == 0), self.call_reset(), "refill"))
            for cond, eff, goto in self.pin_entry(bsize_post):
                out.append(((unmapped > 0) & (cache_post > 0) & cond, eff, goto))
        else:
            for cond, eff, goto in self.pin_entry(bsize_post):
                out.append(((unmapped > 0) & cond, eff, goto))
        return out

    def chunk_end(self, ret: str) -> list[Branch]:
        """After the loop: (seed/upfront) release the cache, then undo on error.

        vfio_unmap_unpin returns at once on an empty range, so an error before anything
        was mapped goes straight back to padata_mt_helper.
        """
        eff: Effects = {self.ret: ret}
        if self.p.variant.cache == THREAD:
            return [(True, eff, "release")]
        if ret == OK:
            return [(True, eff, "helper")]
        return [(self.mapped > 0, eff, "undo"), (self.mapped == 0, eff, "helper")]

    def batch_clear(self) -> Effects:
        eff: Effects = {self.bsize: 0, self.bacc: 0, self.bvp: 0, self.bfresh: False}
        if self.head is not None:
            eff[self.head] = "none"
        return eff

    def enomem_effects(self) -> Effects:
        """A pin fails with RLIMIT_MEMLOCK's -ENOMEM: is that spurious?"""
        p = self.p
        if p.lock_cap:
            return {}
        need = self.need if self.need is not None else p.layout.count("N")
        return {self.spurious: self.spurious | (self.initial_c + need <= self.limit_c)}

    def fail_call(self, ret: str) -> tuple[Effects, list[Branch]]:
        """unpin_out with ret < 0: drop every pin of the call and the batch; chunk fails."""
        v = self.p.variant
        eff: Effects = {self.acc_pinned: self.acc_pinned - self.p_acc - self.bacc}
        eff.update(self.batch_clear())
        eff.update(self.call_reset())
        if ret == ENOMEM:
            eff.update(self.enomem_effects())
        if v.uncharge_drawn_on_error and self.mm is not None:
            # rwsem form: the uncharge is its own vfio_lock_acct under the writer
            del eff[self.drawn]
            eff[self.ret] = ret
            return eff, [(True, {}, "unpin_drawn")]
        if v.uncharge_drawn_on_error:
            eff[self.locked_vm] = self.locked_vm - self.drawn
        return eff, self.chunk_end(ret)

    # ---------------------------------------------------------------- build

    def build(self) -> None:
        if self.p.threads >= 3 and self.mm is None:
            # padata's kworkers are interchangeable; the caller (helper[0]) is not, and
            # `--symmetry` checks that and permutes helper[1..] (the rwsem form numbers
            # lock owners, which the checker does not permute)
            self.s.symmetric("helper")
        self.helper_steps()
        self.refill_steps()
        self.gup_steps()
        self.page_steps()
        self.out_steps()
        self.unpin_remote_steps()
        if self.p.variant.cache == THREAD:
            self.release_steps()
        if self.mm is not None and self.p.variant.uncharge_drawn_on_error:
            self.unpin_drawn_steps()
        self.undo_steps()
        self.wait_steps()
        self.padata_undo_steps()
        if self.p.variant.cache == SHARED:
            self.finish_steps()
        if self.mm is not None:
            self.sections()
        if self.vcpu is not None:
            self.vcpu_steps()
        self.properties()

    # mmap_lock="rwsem": sections on the rw_semaphore component ---------------------

    def emit(self, label: str, kernel: str, guard: Any, effects: Effects, goto: str,
             note: str = "", choose: tuple[Choice, ...] = (), locked: Any = True,
             eintr: bool = False) -> None:
        """One step alternative. With mmap_lock="rwsem" a section's alternatives are kept for
        ``sections()``: ``locked`` says whether one runs under mmap_lock (True, False, or a
        condition: then it may also run without it), ``eintr`` marks the path after the
        section's killable acquisition returned -EINTR."""
        if self.mm is None or label not in SECTION_LOCKS:
            self.h.step(label, kernel, guard=guard, effects=effects, goto=goto, note=note,
                        choose=choose)
            return
        self.alts.setdefault(label, []).append(
            _Alt(kernel, guard, dict(effects), goto, note, choose, locked, eintr))

    def section_kind(self, label: str) -> tuple[str, bool]:
        """(acquisition, killable) of a section, as the kernel code takes mmap_lock."""
        v = self.p.variant
        if label == "gup":
            return "vaddr_get_pfns: mmap_read_lock", False
        if label == "refill" and v.cache == SHARED:
            return "vfio_lock_cache_refill: mmap_write_lock_killable", True
        if label in ("refill", "out") or (label != "finish" and v.killable_uncharge):
            return "vfio_lock_acct: mmap_write_lock_killable", True
        return "vfio_lock_acct: mmap_write_lock", False

    def sections(self) -> None:
        """Each section L: acquire at L, the section at L_locked, release at L_unlock.

        An alternative with nothing to do under the lock (vfio_lock_acct with npage == 0
        returns at once; fixed finds the shared cache already refilled) is a step at L. At
        L_locked every alternative is enabled by its own guard again, so what the code
        rechecks under the lock (fixed: did another helper refill meanwhile?) is rechecked.
        The atomic form's -EINTR alternatives become the path at L_eintr after the
        component's -EINTR (a SIGKILL pending when the acquisition would have to wait).
        """
        assert self.mm is not None and self.resume is not None
        h, mm, p = self.h, self.mm, self.p
        sig = Signal(possible=self.is0 if p.fatal_signal else FALSE, pending=self.killed)
        for label, alts in self.alts.items():
            write = SECTION_LOCKS[label] == "write"
            acquire, killable = self.section_kind(label)
            lockers = [a for a in alts if not a.eintr and a.locked is not False]
            for a in alts:
                if a.eintr or a.locked is True:
                    continue
                # (a queued waiter sleeps in the slowpath until it is granted the lock)
                direct = a.guard if a.locked is False else a.guard & Not(a.locked)
                direct = direct & Not(mm.waiting(h))
                h.step(label, a.kernel, guard=direct, effects=a.effects, goto=a.goto,
                       note=a.note if a.locked is False else f"{a.note} (without mmap_lock)",
                       choose=a.choose)
            if not lockers:
                continue
            # (a guard over a choice stands for "some value fits": GUP always answers)
            needs = Or(*(TRUE if a.choose else a.guard if a.locked is True
                         else a.guard & a.locked for a in lockers))
            locked, unlock = f"{label}_locked", f"{label}_unlock"
            if not write:
                mm.down_read(h, label, kernel=acquire, goto=locked, guard=needs)
            elif killable and any(a.eintr for a in alts):  # (no SIGKILL: it cannot fail)
                mm.down_write_killable(h, label, kernel=acquire, goto=locked,
                                       on_eintr=f"{label}_eintr", guard=needs, signal=sig)
            else:
                mm.down_write(h, label, kernel=acquire, goto=locked, guard=needs)
            for a in lockers:
                eff = dict(a.effects)
                eff[self.resume] = a.goto
                h.step(locked, a.kernel, guard=a.guard, effects=eff, goto=unlock, note=a.note,
                       choose=a.choose)
            for a in alts:
                if a.eintr:
                    h.step(f"{label}_eintr", a.kernel, guard=a.guard, effects=a.effects,
                           goto=a.goto, note=a.note, choose=a.choose)
            fn = acquire.split(":")[0]
            for goto in dict.fromkeys(a.goto for a in lockers):
                if write:
                    mm.up_write(h, unlock, kernel=f"{fn}: mmap_write_unlock", goto=goto,
                                effects={self.resume: "none"}, guard=self.resume == goto)
                else:
                    mm.up_read(h, unlock, kernel=f"{fn}: mmap_read_unlock", goto=goto,
                               effects={self.resume: "none"}, guard=self.resume == goto)

    def vcpu_steps(self) -> None:
        """The vCPU: a guest page fault takes mmap_lock for read (a contended killable
        acquisition is what lets SIGKILL make vfio_lock_acct fail); it may stop any time."""
        assert self.mm is not None and self.vcpu is not None
        g, mm = self.vcpu, self.mm
        g.step("run", "kvm: vCPU enters the host on a guest page fault", goto="fault_lock",
               note="guest page fault")
        g.step("run", "kvm: the vCPU thread stops faulting", goto="done", note="stops")
        mm.down_read(g, "fault_lock", kernel="hva_to_pfn_slow -> get_user_pages_unlocked: "
                     "mmap_read_lock", goto="fault")
        mm.up_read(g, "fault", kernel="hva_to_pfn_slow -> get_user_pages_unlocked: "
                   "mmap_read_unlock", goto="run")

    # padata_mt_helper -------------------------------------------------------------

    def helper_steps(self) -> None:
        p, v, h = self.p, self.p.variant, self.h
        kernel = "padata_mt_helper: spin_lock(&ps->lock), record the chunk's result, " \
                 "take the next chunk or finish"
        records: list[tuple[Any, Effects, Any, str]] = [
            (self.chunk < 0, {}, self.error, "first call"),
        ]
        # a completed chunk: remember what it pinned, for padata_undo
        for c in range(p.chunks):
            records.append(((self.chunk == c) & (self.ret == OK),
                            {self.done_acc[c]: self.m_acc, self.done_vp[c]: self.m_vp},
                            self.error, f"chunk {c} done"))
        records.append(((self.chunk >= 0) & (self.ret != OK),
                        {self.failed_chunk[self.chunk]: True},
                        ite(self.error == OK, self.ret, self.error),
                        "chunk failed: keep the first error"))
        for cond, rec, err_post, note in records:
            base = dict(rec)
            base[self.error] = err_post
            can_take = "failed" not in note and note != f"chunk {p.chunks - 1} done"
            # take the next chunk (impossible after a failure or after the last chunk)
            take = dict(base)
            take.update({self.chunk: self.position, self.position: self.position + 1,
                         self.mapped: 0, self.m_acc: 0, self.m_vp: 0, self.ret: OK})
            take.update(self.batch_clear())
            if self.cache is not None:
                take[self.cache] = 0
            if v.refill_whole_chunk:
                branches: list[Branch] = [(True, self.call_reset(), "refill")]
            else:
                branches = self.loop_top(0, 0, 0)
            if can_take:
                self.step("helper", kernel, cond & (self.position < p.chunks) &
                          (err_post == OK), take, branches, note=note + "; take chunk")
            fin = dict(base)
            fin[self.nfini] = self.nfini + 1
            stop = cond & ((self.position == p.chunks) | (err_post != OK))
            h.step("helper", kernel, guard=stop & self.is0, effects=fin, goto="wait",
                   note=note + "; no more work")
            h.step("helper", kernel, guard=stop & Not(self.is0), effects=fin, goto="done",
                   note=note + "; no more work")

    # refills ----------------------------------------------------------------------

    def refill_steps(self) -> None:
        p, v = self.p, self.p.variant
        if not v.has_cache:
            return
        eintr_eff = {self.acc_pinned: self.acc_pinned - self.bacc, self.fatal: True}
        eintr_eff.update(self.batch_clear())
        if p.fatal_signal:
            # (fixed takes the lock only after seeing its shared cache still empty)
            # (rwsem: it saw the cache empty before it tried the lock)
            may = self.is0 & (self.pool == 0) \
                if self.pool is not None and self.mm is None else self.is0
            self.step("refill", "vfio_lock_acct: mmap_write_lock_killable -> -EINTR",
                      may, eintr_eff, self.chunk_end(EINTR),
                      note="-EINTR: SIGKILL while mmap_lock is contended", eintr=True)
        unmapped = p.cp - self.mapped
        over = lambda n: Not(p.lock_cap) & (self.locked_vm + n > self.limit_c)  # noqa: E731
        if v.cache == THREAD and not v.refill_whole_chunk:
            size = Min(unmapped, self.cache_c)
            kernel = "vfio_pin_map_dma_chunk: refill lock_cache: vfio_lock_acct(dma, " \
                     "min(unmapped, LOCKED_VM_CACHE_PAGES))"
            self.step("refill", kernel, Not(over(size)),
                      {self.locked_vm: self.locked_vm + size, self.cache: size},
                      self.pin_entry(self.bsize), note="charged")
            self.step("refill", kernel, over(size), {self.cache: 0}, self.pin_entry(self.bsize),
                      note="-ENOMEM ignored: per-page accounting")
        elif v.refill_whole_chunk:
            kernel = "vfio_pin_map_dma_chunk (upfront): vfio_lock_acct(dma, whole chunk)"
            self.step("refill", kernel, Not(over(unmapped)),
                      {self.locked_vm: self.locked_vm + unmapped, self.cache: unmapped},
                      self.pin_entry(self.bsize), note="charged")
            eff, br = self.fail_call(ENOMEM)
            self.step("refill", kernel, over(unmapped), eff, br,
                      note="-ENOMEM: the chunk does not fit")
        else:
            assert self.pool is not None
            kernel = "vfio_lock_cache_refill (fixed): if the shared cache is still " \
                     "empty, charge min(CACHE, mapping size, headroom) under mmap_write_lock"
            self.step("refill", kernel, self.pool > 0, {}, self.loop_top(self.mapped, 0,
                                                                          self.bsize),
                      note="another helper refilled it", locked=self.pool == 0)
            amount: Any = Min(self.cache_c, p.pages)
            if not p.lock_cap:
                amount = Min(amount, self.limit_c - self.locked_vm)
            self.step("refill", kernel, (self.pool == 0) & (amount > 0),
                      {self.locked_vm: self.locked_vm + amount, self.pool: amount},
                      self.loop_top(self.mapped, 0, self.bsize), note="charged")
            eff, br = self.fail_call(ENOMEM)
            self.step("refill", kernel, (self.pool == 0) & (amount <= 0), eff, br,
                      note="-ENOMEM: no headroom left")

    # vaddr_get_pfns -----------------------------------------------------------------

    def gup_steps(self) -> None:
        p = self.p
        kernel = "vfio_pin_pages_remote: vaddr_get_pfns (pin_user_pages_remote under " \
                 "mmap_read_lock)"
        req = Min(self.npage, p.batch)
        if p.free:
            self.gup_free(kernel, req)
        else:
            self.gup_layout(kernel, req)

    def gup_free(self, kernel: str, req: Expr) -> None:
        p, head = self.p, self.head
        assert head is not None and self.need is not None
        k = Choice("k", Int(1, p.batch))
        a = Choice("a", Int(0, p.batch))
        kr, ar = k.ref, a.ref
        short_ok = p.allowed("R") or p.allowed("F")
        guard = (kr <= req) & (ar <= kr) & Not(self.killed)
        if not short_ok:
            guard = guard & (kr == req)
        if not p.allowed("P"):
            guard = guard & (ar == kr)
        guard = guard & (head != "R") & (head != "RF") & \
            ((head != "N") | (ar >= 1)) & ((head != "P") | (kr - ar >= 1))
        eff: Effects = {self.bsize: kr, self.bacc: ar, self.bvp: kr - ar, self.bfresh: True,
                        self.acc_pinned: self.acc_pinned + ar,
                        self.need: self.need + ar - ite(head == "N", ONE, ZERO),
                        head: ite(kr < req, _head("RF"), _head("none"))}
        self.step("gup", kernel, guard, eff, [(True, {}, "page")], note="pinned k pages, "
                  "a of them need accounting", choose=(k, a))
        if p.allowed("R"):
            self.step("gup", kernel, (head == "none") | (head == "R") | (head == "RF"),
                      {self.bsize: 1, self.bacc: 0, self.bvp: 0, self.bfresh: True,
                       head: "none"}, [(True, {}, "page")],
                      note="VM_PFNMAP: follow_fault_pfn, one reserved pfn")
        if p.allowed("F"):
            eff, br = self.fail_call(EFAULT)
            self.step("gup", kernel, ((head == "none") | (head == "RF")) & Not(self.killed),
                      eff, br, note="-EFAULT")
        if p.fatal_signal:
            eff, br = self.fail_call(EINTR)
            eff[self.fatal] = True
            may = (head == "none") | (head == "N") | (head == "P")
            if p.allowed("F"):
                may = may | (head == "RF")
            only_n = not p.allowed("P") and not p.allowed("F")
            if only_n:
                eff[self.need] = self.need + ite(head == "none", ONE, ZERO)
            self.step("gup", kernel, self.is0 & may, eff, br,
                      note="-EINTR: fatal signal pending")

    def gup_layout(self, kernel: str, req: Expr) -> None:
        p = self.p
        L = p.layout
        for start in range(p.pages):
            c, off = divmod(start, p.cp)
            at = self.pos == start
            kind = L[start]
            if kind == "R":
                self.step("gup", kernel, at, {self.bsize: 1, self.bacc: 0, self.bvp: 0,
                                              self.bfresh: True}, [(True, {}, "page")],
                          note=f"page {start}: VM_PFNMAP, one reserved pfn")
                continue
            if p.fatal_signal:
                eff, br = self.fail_call(EINTR)
                eff[self.fatal] = True
                self.step("gup", kernel, at & self.is0, eff, br,
                          note=f"page {start}: -EINTR, fatal signal pending")
            if kind == "F":
                eff, br = self.fail_call(EFAULT)
                self.step("gup", kernel, at & Not(self.killed), eff, br,
                          note=f"page {start}: -EFAULT")
                continue
            for r in range(1, p.batch + 1):
                if off + r > p.cp:
                    break
                n = 0
                while n < r and L[start + n] in "NP":
                    n += 1
                acc = L[start:start + n].count("N")
                self.step("gup", kernel, at & (req == r) & Not(self.killed),
                          {self.bsize: n, self.bacc: acc, self.bvp: n - acc,
                           self.bfresh: True, self.acc_pinned: self.acc_pinned + acc},
                          [(True, {}, "page")], note=f"pages {start}..{start + n - 1}")

    # the inner loop -----------------------------------------------------------------

    def page_kinds(self) -> list[tuple[Any, str]]:
        """(guard, kind) of the page at vaddr, the next one in the batch."""
        p = self.p
        if p.free:
            brsvd = self.bsize > self.bacc + self.bvp
            out = [(brsvd, "R"), (Not(brsvd) & (self.bacc > 0), "N")]
            if p.allowed("P"):
                out.append((Not(brsvd) & (self.bvp > 0), "P"))
            return out
        return [(self.pos == i, k) for i, k in enumerate(p.layout) if k in "NRP"]

    def page_steps(self) -> None:
        p, v = self.p, self.p.variant
        kernel = "vfio_pin_pages_remote: inner loop: contiguity, RLIMIT check, " \
                 "lock_acct/lock_cache"
        for kguard, kind in self.page_kinds():
            is_r = kind == "R"
            base = (self.bsize > 0) & kguard
            mismatch = (self.pinned > 0) & (Not(self.rsvd) if is_r else self.rsvd)
            self.h.step("page", kernel, guard=base & mismatch, effects={}, goto="out",
                        note=f"{kind} page ends the run: goto out")
            ok = base & Not(mismatch)
            if kind == "R":
                self.consume(kernel, ok, 0, 0, {}, note="R page: not accounted")
                continue
            if kind == "P":
                if self.p.granularity == "page":
                    self.consume(kernel, ok, 0, 1, {}, note="P page: not accounted")
                continue
            # granularity="batch" keeps the N alternatives that do not consume the page:
            # an -ENOMEM or an empty cache at the page after a run (consume_run)
            limit_hit = Not(p.lock_cap) & (self.locked_vm + self.lock_acct + 1 > self.limit_c) \
                if self.lock_acct is not None else None
            if v.cache == THREAD and not v.refill_whole_chunk:
                assert self.cache is not None and limit_hit is not None
                eff, br = self.fail_call(ENOMEM)
                self.step("page", kernel, ok & (self.cache == 0) & limit_hit, eff, br,
                          note="RLIMIT_MEMLOCK exceeded: -ENOMEM, goto unpin_out")
                if self.p.granularity == "batch":
                    continue
                self.consume(kernel, ok & (self.cache > 0), 1, 0,
                             {self.cache: self.cache - 1}, note="drawn from lock_cache")
                self.consume(kernel, ok & (self.cache == 0) & Not(limit_hit), 1, 0,
                             {self.lock_acct: self.lock_acct + 1}, note="lock_acct++")
            elif v.has_cache:
                cache = self.pool if v.cache == SHARED else self.cache
                assert cache is not None and self.drawn is not None
                if v.cache == SHARED:
                    # (upfront's cache covers its whole chunk: it never runs dry)
                    self.h.step("page", kernel, guard=ok & (cache == 0), effects={},
                                goto="out", note="cache empty: goto out, the caller refills it")
                if self.p.granularity == "batch":
                    continue
                self.consume(kernel, ok & (cache > 0), 1, 0,
                             {cache: cache - 1, self.drawn: self.drawn + 1},
                             note="drawn from the cache")
            else:
                assert limit_hit is not None and self.lock_acct is not None
                eff, br = self.fail_call(ENOMEM)
                self.step("page", kernel, ok & limit_hit, eff, br,
                          note="RLIMIT_MEMLOCK exceeded: -ENOMEM, goto unpin_out")
                if self.p.granularity == "batch":
                    continue
                self.consume(kernel, ok & Not(limit_hit), 1, 0,
                             {self.lock_acct: self.lock_acct + 1}, note="lock_acct++")

        if self.p.granularity == "batch":
            normal = (self.bsize > 0) & (self.bsize == self.bacc + self.bvp)
            self.consume_run(kernel, normal & Not((self.pinned > 0) & self.rsvd))

    def consume(self, kernel: str, guard: Any, na: Any, nv: Any, extra: Effects, note: str,
                choose: tuple[Choice, ...] = ()) -> None:
        """``na`` normal and ``nv`` already-pinned pages (one reserved page if both are 0)
        go through: pinned++, npage--, vaddr++, batch->offset++, batch->size--; then the
        inner loop goes on, or the batch is refilled, or the call is done (out:)."""
        n = max(na + nv, 1) if isinstance(na, int) and isinstance(nv, int) else na + nv
        eff = dict(extra)
        eff.update({self.pinned: self.pinned + n, self.bsize: self.bsize - n,
                    self.bfresh: False, self.p_acc: self.p_acc + na, self.bacc: self.bacc - na,
                    self.p_vp: self.p_vp + nv, self.bvp: self.bvp - nv})
        left = self.bsize - n
        npage_left = self.npage - n
        branches: list[Branch] = [(left > 0, {}, "page"),
                                  ((left == 0) & (npage_left > 0), {}, "gup"),
                                  ((left == 0) & (npage_left == 0), {}, "out")]
        self.step("page", kernel, guard, eff, branches, note=note, choose=choose)

    def consume_run(self, kernel: str, ok: Any) -> None:
        """granularity="batch": one step takes ``na`` normal and ``nv`` already-pinned pages
        of a normal batch, accounted as the page-by-page loop would (the loop's checks all
        read the same locked_vm, so the last page's check decides for all)."""
        p, v = self.p, self.p.variant
        na_c = Choice("na", Int(0, p.batch))
        nv_c = Choice("nv", Int(0, p.batch))
        na, nv = na_c.ref, nv_c.ref
        guard = ok & (na + nv >= 1) & (na <= self.bacc) & (nv <= self.bvp)
        note = "a run of pages: na normal, nv already pinned"
        if v.cache == THREAD and not v.refill_whole_chunk:
            assert self.cache is not None and self.lock_acct is not None
            drawn = Min(self.cache, na)
            rest = na - drawn
            fits = (rest == 0) | p.lock_cap | \
                (self.locked_vm + self.lock_acct + rest <= self.limit_c)
            extra: Effects = {self.cache: self.cache - drawn, self.lock_acct: self.lock_acct + rest}
        elif v.has_cache:
            cache = self.pool if v.cache == SHARED else self.cache
            assert cache is not None and self.drawn is not None
            fits = na <= cache
            extra = {cache: cache - na, self.drawn: self.drawn + na}
        else:
            assert self.lock_acct is not None
            fits = p.lock_cap | (self.locked_vm + self.lock_acct + na <= self.limit_c)
            extra = {self.lock_acct: self.lock_acct + na}
        self.consume(kernel, guard & fits, na, nv, extra, note, choose=(na_c, nv_c))

    # out: ---------------------------------------------------------------------------

    def out_steps(self) -> None:
        p, v = self.p, self.p.variant
        kernel = "vfio_pin_pages_remote: out: vfio_lock_acct(dma, lock_acct), unpin_out; " \
                 "vfio_pin_map_dma_chunk: vfio_iommu_map"
        drop = (self.bsize == 1) & self.bfresh
        # unpin_out: a fresh single-page batch (maybe a VM_PFNMAP pfn) is dropped
        after_drop: Effects = {
            self.acc_pinned: self.acc_pinned - ite(drop, self.bacc, ZERO),
            self.bsize: ite(drop, ZERO, self.bsize), self.bacc: ite(drop, ZERO, self.bacc),
            self.bvp: ite(drop, ZERO, self.bvp), self.bfresh: self.bfresh & Not(drop),
        }
        if self.head is not None:
            dropped = ite(self.bacc > 0, _head("N"), ite(self.bvp > 0, _head("P"), _head("R")))
            after_drop[self.head] = ite(drop, dropped, self.head)
        bsize_post = ite(drop, ZERO, self.bsize)
        la = self.lock_acct
        charges: list[tuple[Any, Effects, str]] = []
        if la is None:
            charges.append((True, {}, "nothing to charge"))
            unlocked: list[Any] = [False]
        else:
            over = Not(p.lock_cap) & (self.locked_vm + la > self.limit_c)
            charges.append((la == 0, {}, "lock_acct == 0"))
            charges.append(((la > 0) & Not(over), {self.locked_vm: self.locked_vm + la},
                            "charged lock_acct"))
            unlocked = [False, True]  # vfio_lock_acct(dma, 0) returns before the lock
            eff, br = self.fail_call(ENOMEM)
            self.step("out", kernel, (la > 0) & over, eff, br,
                      note="__account_locked_vm: -ENOMEM, goto unpin_out")
            if p.fatal_signal:
                eff, br = self.fail_call(EINTR)
                eff[self.fatal] = True
                self.step("out", kernel, (la > 0) & self.is0, eff, br,
                          note="-EINTR: SIGKILL while mmap_lock is contended", eintr=True)
        for (cguard, ceff, cnote), lk in zip(charges, unlocked, strict=True):
            base = dict(after_drop)
            base.update(ceff)
            if v.cache == SHARED:
                # fixed: the call stopped at its first page on an empty cache
                self.step("out", kernel, cguard & (self.pinned == 0), base,
                          [(True, {}, "refill")], note=cnote + "; nothing pinned: refill",
                          locked=lk)
            mapped = dict(base)
            mapped.update({self.mapped: self.mapped + self.pinned,
                           self.m_acc: self.m_acc + self.p_acc,
                           self.m_vp: self.m_vp + self.p_vp})
            cache_post = self.cache if self.cache is not None else 0
            self.step("out", kernel, cguard & (self.pinned > 0), mapped,
                      self.loop_top(self.mapped + self.pinned, cache_post, bsize_post),
                      note=cnote + "; mapped", locked=lk)
            if p.iommu_fail:
                self.step("out", kernel, cguard & (self.pinned > 0), base,
                          [(True, {}, "unpin_remote")], note=cnote + "; vfio_iommu_map failed",
                          locked=lk)

    def unpin_remote_steps(self) -> None:
        p, v = self.p, self.p.variant
        if not p.iommu_fail:
            return
        kernel = "vfio_pin_map_dma_chunk: map failed: vfio_unpin_pages_remote(..., true), " \
                 "vfio_batch_unpin"
        eff: Effects = {self.acc_pinned: self.acc_pinned - self.p_acc - self.bacc}
        eff.update(self.batch_clear())
        eff.update(self.call_reset())
        ok = dict(eff)
        ok[self.locked_vm] = self.locked_vm - self.p_acc
        self.step("unpin_remote", kernel, True, ok, self.chunk_end(EIOMMU), note="uncharged",
                  locked=self.p_acc > 0)
        if p.fatal_signal and v.killable_uncharge:
            eff = dict(eff)
            eff[self.fatal] = True
            self.step("unpin_remote", kernel, self.is0 & (self.p_acc > 0), eff,
                      self.chunk_end(EIOMMU), note="-EINTR: the uncharge is lost", eintr=True)

    def release_steps(self) -> None:
        p, v = self.p, self.p.variant
        assert self.cache is not None
        kernel = "vfio_pin_map_dma_chunk: vfio_lock_acct(dma, -lock_cache): release the " \
                 "unused cache"
        nxt = lambda: [(self.ret == OK, {}, "helper"),  # noqa: E731
                       ((self.ret != OK) & (self.mapped > 0), {}, "undo"),
                       ((self.ret != OK) & (self.mapped == 0), {}, "helper")]
        self.step("release", kernel, True, {self.locked_vm: self.locked_vm - self.cache,
                                            self.cache: 0}, nxt(), note="released",
                  locked=self.cache > 0)
        if p.fatal_signal and v.killable_uncharge:
            self.step("release", kernel, self.is0 & (self.cache > 0),
                      {self.cache: 0, self.fatal: True}, nxt(),
                      note="-EINTR: the release is lost", eintr=True)

    def unpin_drawn_steps(self) -> None:
        """rwsem form, fixed/upfront: unpin_out gives back what the unpinned pages drew."""
        kernel = "vfio_pin_pages_remote: unpin_out: vfio_lock_acct(dma, -drawn, false)"
        for cond, _, goto in self.chunk_end(EFAULT):  # (every error continues alike)
            self.emit("unpin_drawn", kernel, cond, {self.locked_vm: self.locked_vm - self.drawn,
                                                    self.drawn: 0}, goto,
                      note="the drawn pages uncharged", locked=self.drawn > 0)

    def undo_steps(self) -> None:
        p, v = self.p, self.p.variant
        kernel = "vfio_pin_map_dma_chunk: vfio_pin_map_dma_undo -> vfio_unmap_unpin(..., true)"
        release = self.m_acc if v.vpfn_aware_undo else self.m_acc + self.m_vp
        eff: Effects = {self.acc_pinned: self.acc_pinned - self.m_acc, self.mapped: 0,
                        self.m_acc: 0, self.m_vp: 0}
        ok = dict(eff)
        ok[self.locked_vm] = self.locked_vm - release
        self.emit("undo", kernel, TRUE, ok, "helper", note="uncharged", locked=release > 0)
        if p.fatal_signal and v.killable_uncharge:
            eff[self.fatal] = True
            self.emit("undo", kernel, self.is0 & (release > 0), eff, "helper",
                      note="-EINTR: the uncharge is lost", eintr=True)

    # the caller after its helper loop ---------------------------------------------

    def after_undo(self) -> str:
        return "finish" if self.p.variant.cache == SHARED else "done"

    def next_unfailed(self, start: int) -> Expr:
        """padata_undo's next undo_pos: skip failed chunks from ``start``."""
        res: Expr = ite(self.position == self.p.chunks, self.p.chunks, self.position)
        for c in reversed(range(start, self.p.chunks)):
            res = ite((self.position == c) | Not(self.failed(c)), c, res)
        return res

    def wait_steps(self) -> None:
        kernel = "padata_do_multithreaded: wait_for_completion(&ps->completion)"
        alldone = self.nfini == self.p.threads
        self.h.step("wait", kernel, guard=alldone & (self.error == OK), goto=self.after_undo(),
                    note="no error")
        first = self.next_unfailed(0)
        self.h.step("wait", kernel, guard=alldone & (self.error != OK) & (first == self.position),
                    goto=self.after_undo(), note="error, nothing completed to undo")
        self.h.step("wait", kernel, guard=alldone & (self.error != OK) & (first != self.position),
                    effects={self.undo_pos: first}, goto="padata_undo", note="error: padata_undo")

    def padata_undo_steps(self) -> None:
        p, v = self.p, self.p.variant
        kernel = "padata_undo: undo_fn = vfio_pin_map_dma_undo -> vfio_unmap_unpin on a " \
                 "completed range"
        for u in range(p.chunks):
            for e in range(u + 1, p.chunks + 1):
                if u == 0 and e == p.chunks:
                    continue  # every chunk completed: no error, no padata_undo
                rng = range(u, e)
                guard = (self.undo_pos == u) & (self.position >= e)
                for c in rng:
                    guard = guard & Not(self.failed(c))
                if e < p.chunks:
                    guard = guard & ((self.position == e) | self.failed(e))
                acc = Sum(rng, lambda c: self.done_acc[c])
                vp = Sum(rng, lambda c: self.done_vp[c])
                release = acc if v.vpfn_aware_undo else acc + vp
                nxt = self.next_unfailed(e) if e < p.chunks else self.position
                eff: Effects = {self.acc_pinned: self.acc_pinned - acc, self.undo_pos: nxt}
                branches: list[Branch] = [(nxt == self.position, {}, self.after_undo()),
                                          (nxt != self.position, {}, "padata_undo")]
                ok = dict(eff)
                ok[self.locked_vm] = self.locked_vm - release
                self.step("padata_undo", kernel, guard, ok, branches,
                          note=f"chunks {u}..{e - 1} uncharged", locked=release > 0)
                if p.fatal_signal and v.killable_uncharge:
                    eff[self.fatal] = True
                    self.step("padata_undo", kernel, guard & (release > 0), eff,
                              branches, note=f"chunks {u}..{e - 1}: -EINTR, uncharge lost",
                              eintr=True)

    def finish_steps(self) -> None:
        assert self.pool is not None
        self.emit("finish", "vfio_pin_map_dma (fixed): vfio_lock_acct(dma, -cache) releases "
                  "the shared cache (mmap_write_lock)", TRUE,
                  {self.locked_vm: self.locked_vm - self.pool, self.pool: 0}, "done",
                  locked=self.pool > 0)

    # properties -----------------------------------------------------------------------

    def properties(self) -> None:
        s, p = self.s, self.p
        excess = self.locked_vm - self.initial_c - self.acc_pinned
        s.final("no_leak", excess == 0,
                "at the end locked_vm == initial + accountable pages still pinned")
        s.invariant("overaccount_bound", excess <= p.threads * self.cache_c,
                    "locked_vm - (initial + accountable pinned) <= threads x cache_pages")
        s.invariant("no_spurious_enomem", Not(self.spurious),
                    "no pin fails with -ENOMEM while every page that needs accounting fits")
        s.invariant("rlimit", Or(p.lock_cap, self.locked_vm <= Max(self.limit_c, self.initial_c)),
                    "unless CAP_IPC_LOCK, locked_vm <= max(RLIMIT_MEMLOCK, initial)")
        s.deadlock_free("no_deadlock")
        if self.mm is not None:
            s.lock_order("no_lock_inversion")
        if self.pool is not None and self.mm is None:
            self.lemmas()

    def lemmas(self) -> None:
        """fixed: why it accounts exactly, as strengthening invariants for ``--prove``.

        The argument: every page that needs accounting is charged once, to the shared
        cache when it is refilled; it then sits in some helper's batch (pinned, counted in
        acc_pinned, not drawn yet) or was drawn (and is pinned, or was uncharged when it
        was unpinned). So locked_vm - initial - acc_pinned == pool - sum(bacc)
        (``charged_once``) and the overaccount is at most the cache. The rest pins the
        control structure down so that an induction step cannot start from a state no run
        reaches: where each counter can be non-zero, that acc_pinned is what the working
        helpers and the completed, not yet undone chunks hold, that nfini counts the
        finished helpers, that helpers work on distinct taken chunks. With them and
        ``need_lemmas`` (``"*"`` layouts), ``--engine smt --prove`` proves no_leak,
        overaccount_bound, rlimit and no_spurious_enomem for every cache size, limit and
        initial locked_vm (docs/smt.md). Every lemma holds in every state the explicit
        engine reaches (tests/specs/test_vfio_locked_vm_cache.py explores with them).
        Atomic mmap_lock form only (the rwsem form has other labels).
        """
        s, T, C, h, p, pool = self.s, self.T, self.C, self.h, self.p, self.pool
        assert pool is not None and self.drawn is not None
        drawn = self.drawn

        steps = {st.label for st in h.group.steps} | {"done"}

        def at(t: Any, labels: tuple[str, ...]) -> Expr:
            """t is at one of these labels (those this configuration has)."""
            here = [h.at(t, label) for label in labels if label in steps]
            return FALSE if not here else here[0] if len(here) == 1 else Or(*here)

        s.lemma("charged_once", self.locked_vm - self.initial_c - self.acc_pinned
                == pool - Sum(T, lambda t: self.bacc[t]),
                "what locked_vm holds beyond the pinned pages is the cache minus the "
                "batches' undrawn pages")
        s.lemma("pool_within_cache", pool <= self.cache_c)
        s.lemma("pool_empty_when_done", (pool == 0) | Not(at(0, ("done",))))
        s.lemma("drawn_is_pinned", AllOf(T, lambda t: drawn[t] == self.p_acc[t]),
                "every page a call drew from the cache is pinned by that call")
        held = lambda t: ite(at(t, WORKING), self.m_acc[t], ZERO) + ite(  # noqa: E731
            at(t, IN_CALL), self.p_acc[t], ZERO) + self.bacc[t]
        undone = lambda c: (self.error != OK) & (self.undo_pos[0] > c) & at(  # noqa: E731
            0, ("padata_undo", "finish", "done"))
        s.lemma("pins_accounted", self.acc_pinned == Sum(T, held) + Sum(
            C, lambda c: ite(undone(c), ZERO, self.done_acc[c])),
            "acc_pinned: the working helpers' pages and the completed chunks not undone")
        s.lemma("pins_within_taken", self.acc_pinned + Sum(T, lambda t: ite(
            at(t, WORKING) & (self.chunk[t] >= 0), p.cp - held(t), ZERO))
            <= p.cp * self.position,
            "the taken chunks hold every pinned page, a working helper's chunk the room "
            "left in it: the bound on acc_pinned as a sum, so induction needs no "
            "pigeonhole over distinct chunks (16 helpers)")
        s.lemma("nfini_counts", self.nfini == Sum(T, lambda t: ite(at(t, FINISHED), ONE, ZERO)))
        locals_ = (self.mapped, self.m_acc, self.m_vp, self.pinned, self.p_acc, self.p_vp,
                   drawn, self.bsize, self.bacc, self.bvp)
        per_helper = {
            "batch_only_in_call": lambda t: at(t, BATCH_AT) | (
                (self.bsize[t] == 0) & (self.bacc[t] == 0) & (self.bvp[t] == 0)),
            "call_counters_zero": lambda t: Not(at(t, ("refill", "undo"))) | (
                (self.pinned[t] == 0) & (self.p_acc[t] == 0) & (drawn[t] == 0)),
            "batch_counts": lambda t: self.bacc[t] + self.bvp[t] <= self.bsize[t],
            "call_counts": lambda t: self.p_acc[t] + self.p_vp[t] <= self.pinned[t],
            "mapped_counts": lambda t: self.m_acc[t] + self.m_vp[t] <= self.mapped[t],
            "chunk_room": lambda t: Not(at(t, IN_CALL)) | (
                self.mapped[t] + self.pinned[t] + self.bsize[t] <= p.cp),
            "gup_has_pages": lambda t: Not(at(t, ("gup",))) | (
                self.mapped[t] + self.pinned[t] < p.cp),
            "failed_chunk_clean": lambda t: Not(at(t, ("helper",))) | (self.ret[t] == OK) | (
                (self.m_acc[t] == 0) & (self.mapped[t] == 0)),
            "chunk_taken": lambda t: (self.chunk[t] < self.position) & (
                (self.chunk[t] >= 0) | Not(at(t, WORKING[1:]))),
            "no_chunk_no_pages": lambda t: (self.chunk[t] >= 0) | _all_zero(t, locals_),
            "only_the_caller_waits": lambda t: (t == 0) | Not(
                at(t, ("wait", "finish", "padata_undo"))),
            "caller_last": lambda t: (t == 0) | at(t, ("done",)) | Not(
                at(0, ("finish", "padata_undo", "done"))),
        }
        for name, f in per_helper.items():
            s.lemma(name, AllOf(T, f))
        s.lemma("distinct_chunks", AllOf(T, lambda t: AllOf(T, lambda u: (t == u) | Not(
            at(t, WORKING) & at(u, WORKING) & (self.chunk[t] >= 0)
            & (self.chunk[t] == self.chunk[u])))))
        s.lemma("working_chunk_not_done", AllOf(T, lambda t: AllOf(C, lambda c: Not(
            at(t, WORKING) & (self.chunk[t] == c)) | ((self.done_acc[c] == 0)
                                                      & Not(self.failed_chunk[c])))))
        s.lemma("chunk_records", AllOf(C, lambda c: (self.position > c) | (
            (self.done_acc[c] == 0) & Not(self.failed_chunk[c]))))
        s.lemma("failed_chunk_not_counted", AllOf(C, lambda c: Not(self.failed_chunk[c])
                                                  | (self.done_acc[c] == 0)))
        s.lemma("undo_starts_at_wait", Not(at(0, WORKING + ("wait",)))
                | (self.undo_pos[0] == 0))
        s.lemma("undo_only_on_error", Not(at(0, ("padata_undo",))) | (self.error != OK))
        if self.need is not None:
            self.need_lemmas(at, held)

    def need_lemmas(self, at: Callable[[Any, tuple[str, ...]], Expr],
                    held: Callable[[Any], Expr]) -> None:
        """fixed, ``"*"`` layouts: why a refill's -ENOMEM is never spurious.

        -ENOMEM comes only from the refill, when the shared cache is empty and locked_vm
        >= limit. Then ``charged_once`` gives locked_vm = initial + acc_pinned -
        sum(bacc). The refilling helper holds a page that needs accounting: either still
        in its batch (bacc >= 1, so locked_vm <= initial + acc_pinned - 1) or dropped
        with the fresh single-page batch and remembered in ``head == N`` (decided, so in
        ``need``, but no longer in acc_pinned). Since ``need`` counts every page decided
        to need accounting once and never decreases, need >= acc_pinned + (helpers whose
        head is N), so initial + need > limit either way. ``need_within_taken`` bounds
        ``need`` by the taken chunks for the domain check of GUP's ``need += a``, as a sum
        (like ``pins_within_taken``).
        """
        s, T, p = self.s, self.T, self.p
        head, need = self.head, self.need
        assert head is not None and need is not None
        head_n = lambda t: ite(head[t] == "N", ONE, ZERO)  # noqa: E731
        s.lemma("need_covers_pins", need >= self.acc_pinned + Sum(T, head_n),
                "every pinned page that needs accounting was decided once (GUP adds it to "
                "need and acc_pinned, a re-pinned head N page only to acc_pinned); unpins "
                "lower acc_pinned only; a dropped page remembered as head N stays in need")
        s.lemma("head_n_pending", AllOf(T, lambda t: (head[t] != "N") | (
            (self.bsize[t] == 0) & (self.mapped[t] + self.pinned[t] < p.cp))),
            "a page remembered as head N was dropped with its batch and is the next page "
            "of the chunk")
        s.lemma("need_within_taken", need + Sum(T, lambda t: ite(
            at(t, IN_CALL), p.cp - held(t) - head_n(t), ZERO)) <= p.cp * self.position,
            "the pages decided to need accounting lie in the taken chunks, and a helper "
            "inside vfio_pin_pages_remote leaves room for those of its chunk it does not "
            "hold yet (a failed call keeps its decided pages in need: its helper leaves "
            "the call, and its room with it)")
        s.lemma("empty_call_at_out_has_page", AllOf(T, lambda t: Not(at(t, ("out",))) | (
            self.pinned[t] > 0) | (self.bacc[t] >= 1)),
            "a call reaches out: with nothing pinned only when the cache was empty at a "
            "page that needs accounting")
        s.lemma("refill_has_page", AllOf(T, lambda t: Not(at(t, ("refill",))) | (
            self.bacc[t] >= 1) | (head[t] == "N")),
            "a helper refills for a page that needs accounting: in its batch, or dropped "
            "with it and remembered as head N")


def _all_zero(t: Any, locals_: tuple[Any, ...]) -> Expr:
    out: Expr = TRUE
    for x in locals_:
        out = out & (x[t] == 0)
    return out


NO_LEAK, BOUND, ENOMEM_OK, RLIMIT, DEADLOCK = (
    "no_leak", "overaccount_bound", "no_spurious_enomem", "rlimit", "no_deadlock")

# Verdicts established by the checker for the gate (the defaults) and for the two
# configurations docs/vfio.md uses to separate the findings; keys are the parameters
# that differ from the defaults (granularity aside: it does not change verdicts).
GATE_VIOLATIONS: dict[frozenset[tuple[str, Any]], dict[str, frozenset[str]]] = {
    frozenset(): {
        "upstream": frozenset({NO_LEAK, BOUND}),
        "seed": frozenset({NO_LEAK, BOUND, ENOMEM_OK}),
        "upfront": frozenset({BOUND, ENOMEM_OK}),
        "fixed": frozenset(),
    },
    frozenset({("chunks", 3)}): {
        "upstream": frozenset({NO_LEAK, BOUND}),
        "seed": frozenset({NO_LEAK, BOUND, ENOMEM_OK}),
        "upfront": frozenset({BOUND, ENOMEM_OK}),
        "fixed": frozenset(),
    },
    frozenset({("fatal_signal", False)}): {
        "upstream": frozenset({NO_LEAK}),
        "seed": frozenset({NO_LEAK, ENOMEM_OK}),
        "upfront": frozenset({BOUND, ENOMEM_OK}),
        "fixed": frozenset(),
    },
    frozenset({("fatal_signal", False), ("pinned", False)}): {
        "upstream": frozenset(),
        "seed": frozenset({NO_LEAK, ENOMEM_OK}),
        "upfront": frozenset({BOUND, ENOMEM_OK}),
        "fixed": frozenset(),
    },
}

# What holds for every parameter assignment, by construction (see FINDINGS): the kernel's
# limit check, the absence of blocking cycles, the fix, upfront's error paths (fixed's),
# and upstream's exact accounting (no cache, so no charge without a page).
ALWAYS_HOLD: dict[str, frozenset[str]] = {
    "upstream": frozenset({ENOMEM_OK, RLIMIT, DEADLOCK}),
    "seed": frozenset({RLIMIT, DEADLOCK}),
    "upfront": frozenset({NO_LEAK, RLIMIT, DEADLOCK}),
    "fixed": frozenset({NO_LEAK, BOUND, ENOMEM_OK, RLIMIT, DEADLOCK}),
}


def _expectations(s: SpecBuilder, p: _Params, parameters: dict[str, Any]) -> None:
    """Expected verdicts: exact on the gate configurations, else only the sure ones."""
    import inspect

    defaults = {k: v.default for k, v in inspect.signature(build).parameters.items()}
    key = frozenset((k, v) for k, v in parameters.items()
                    if k not in ("variant", "granularity", "mmap_lock") and defaults[k] != v)
    name = p.variant.name
    if key in GATE_VIOLATIONS:
        s.expect_violated(*GATE_VIOLATIONS[key][name])
        return
    unsure = {NO_LEAK, BOUND, ENOMEM_OK, RLIMIT, DEADLOCK} - ALWAYS_HOLD[name]
    s.expect_unknown(*sorted(unsure))
