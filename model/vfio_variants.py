"""The four versions of multithreaded VFIO pinning, as feature flags shared by model and spec.

- ``upstream``: the series up to RFC 07/16 (padata helpers run vfio_pin_map_dma_chunk),
  without the locked_vm cache: every vfio_pin_pages_remote call charges its pages at
  ``out:`` with one vfio_lock_acct (one mmap_lock writer acquisition).
- ``seed``: RFC 08/16 as posted: a per-thread ``lock_cache`` refilled with
  ``min(unmapped pages, LOCKED_VM_CACHE_PAGES)`` whenever it is empty; a refill failing
  with -ENOMEM falls back to per-page accounting; the rest is released at the chunk end.
- ``upfront``: the reviewer's suggestion ("do the pinned page accounting once at the
  start"), per padata chunk: charge every page of the chunk once, fail the chunk if that
  does not fit, return the unused rest at the end. Built on ``fixed``'s error paths, so
  its verdicts show what the design itself changes.
- ``fixed``: the correction of every defect the checker finds in ``seed``, keeping the
  patch's intent (few writer acquisitions): one cache shared by the job's threads,
  refilled on demand (only when a page that needs accounting finds it empty) under the
  write lock with at most the headroom left below RLIMIT_MEMLOCK; pages drawn from it and
  unpinned on an error path are uncharged at once; every uncharge takes mmap_lock with
  the uninterruptible mmap_write_lock(); the undo does not release the charge of pages
  that were already pinned (and charged) through the mdev pinning interface.
"""

from __future__ import annotations

from dataclasses import dataclass

NONE = "none"
THREAD = "thread"
SHARED = "shared"


@dataclass(frozen=True)
class Variant:
    """What distinguishes the versions; every flag names the code it changes."""

    name: str
    cache: str  # NONE | THREAD (per helper, per chunk) | SHARED (one per MAP_DMA job)
    refill_whole_chunk: bool  # upfront: charge the whole chunk once at its start
    refill_enomem_fallback: bool  # seed: -ENOMEM from a refill is not an error
    uncharge_drawn_on_error: bool  # fixed/upfront: unpinned pages give their charge back
    killable_uncharge: bool  # upstream/seed: decrements use mmap_write_lock_killable
    vpfn_aware_undo: bool  # fixed/upfront: vfio_unmap_unpin skips vfio_pfn pages

    @property
    def has_cache(self) -> bool:
        return self.cache != NONE


VARIANTS: dict[str, Variant] = {
    "upstream": Variant("upstream", NONE, False, False, False, True, False),
    "seed": Variant("seed", THREAD, False, True, False, True, False),
    "upfront": Variant("upfront", THREAD, True, False, True, False, True),
    "fixed": Variant("fixed", SHARED, False, False, True, False, True),
}


def variant(name: str) -> Variant:
    """The named variant; ValueError listing the valid names otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; one of {', '.join(VARIANTS)}") from None
