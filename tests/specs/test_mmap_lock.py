"""specs/mmap_lock.py: verdicts per variant, the reports, shortest traces, saved traces."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from checker.compile import compile_flat
from checker.explore import Limits, explore
from checker.flat import instantiate
from checker.load import load_module
from checker.lockdep import trace_contention, witness_holds
from checker.replay import build_for_trace, violates
from checker.result import PASS, VIOLATED, Result
from checker.run import Checked, check
from checker.trace import load, replay_on_spec
from specs.mmap_lock import VARIANTS, build

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "tests" / "traces" / "mmap_lock"
WRONG = [v for v in VARIANTS if v != "correct"]


@cache
def checked(variant: str, **params: object) -> Checked:
    return check(build(variant=variant, **params), "specs/mmap_lock.py")  # type: ignore[arg-type]


def result(variant: str, prop: str) -> Result:
    return next(r for r in checked(variant).results if r.property == prop)


@pytest.mark.parametrize("variant", VARIANTS)
def test_verdicts_match_the_declared_expectations(variant: str) -> None:
    for r in checked(variant).results:
        assert r.settled and not r.mismatch, (variant, r.property, r.verdict, r.reason)


def test_correct_pattern_passes_exhaustively_for_three_threads() -> None:
    c = checked("correct")
    assert c.exploration.complete
    assert {r.property: r.verdict for r in c.results} == {
        "no_lock_inversion": PASS, "no_deadlock": PASS}
    assert c.spec.parameters["threads"] == 3


@pytest.mark.parametrize("variant", WRONG)
def test_each_wrong_variant_violates_both(variant: str) -> None:
    assert result(variant, "no_lock_inversion").verdict == VIOLATED
    assert result(variant, "no_deadlock").verdict == VIOLATED


def test_upgrade_report() -> None:
    text = result("upgrade", "no_lock_inversion").detail
    assert "WARNING: possible recursive locking detected" in text
    assert "(mmap_lock){write}, at: vaddr_get_pfns -> vfio_lock_acct" in text
    assert "(mmap_lock){read}, at: vaddr_get_pfns: mmap_read_lock" in text
    dead = result("upgrade", "no_deadlock").detail
    assert "ioctl[0] -> ioctl[0] (ioctl[0] holds mmap_lock for read)" in dead


def test_recursive_read_report_needs_a_queued_writer() -> None:
    text = result("recursive_read", "no_lock_inversion").detail
    assert "possible recursive locking detected" in text
    assert "rlock(mmap_lock);\n  rlock(mmap_lock);" in text
    dead = result("recursive_read", "no_deadlock").detail
    assert "waits for mmap_lock (write) ahead in the queue" in dead
    assert "holds mmap_lock for read" in dead


def test_ptl_inversion_report_and_three_thread_deadlock() -> None:
    text = result("ptl_inversion", "no_lock_inversion").detail
    assert "WARNING: possible circular locking dependency detected" in text
    assert "-> #1 (mmap_lock){read}" in text and "-> #0 (ptl){excl}" in text
    assert "pmd_lock (prefault peek)" in text
    dead = result("ptl_inversion", "no_deadlock").detail
    cycle = dead.split("wait-for cycle:")[1].strip().splitlines()
    assert len(cycle) == 3, "a reader, a queued writer and the ptl holder"


def test_iommu_inversion_report() -> None:
    text = result("iommu_inversion", "no_lock_inversion").detail
    assert "circular locking dependency" in text
    assert "(iommu_lock){excl}" in text and "vfio_dma_do_map: mutex_lock(&iommu->lock)" in text
    dead = result("iommu_inversion", "no_deadlock").detail
    assert "ioctl[0] holds iommu_lock" in dead


@pytest.mark.parametrize("variant", WRONG)
def test_deadlock_traces_are_shortest(variant: str) -> None:
    r = result(variant, "no_deadlock")
    assert r.trace is not None
    depth = len(r.trace.steps)
    shallower = explore(checked(variant).compiled, ["no_deadlock"], Limits(max_depth=depth))
    assert shallower.deadlock is None


@pytest.mark.parametrize("path", sorted(TRACES.glob("*.itf.json")), ids=lambda p: p.name)
def test_saved_traces_replay_and_violate(path: Path) -> None:
    trace = load(path)
    mod = load_module(ROOT / trace.source, trace.source)
    compiled = compile_flat(instantiate(build_for_trace(mod, trace, str(path))))
    states = replay_on_spec(compiled, trace)
    assert violates(compiled, trace, states[-1])
    if trace.kind == "lock_order":
        assert witness_holds(compiled, trace.witness, states[-1])


def test_saved_traces_cover_every_wrong_variant() -> None:
    names = {p.name for p in TRACES.glob("*.itf.json")}
    for v in WRONG:
        for prop in ("no_lock_inversion", "no_deadlock"):
            assert f"mmap_lock-{v}-{prop}-explicit.itf.json" in names


@pytest.mark.parametrize(("cache_on", "per_page"), [(True, 0.5), (False, 1.0)])
def test_writer_acquisitions_per_pinned_page(cache_on: bool, per_page: float) -> None:
    """RFC 08's point: the locked_vm cache takes the writer once per chunk, not per batch."""
    c = check(build("correct", threads=3, pages=2, cache=cache_on, efault=False,
                    fatal_signal=False), "t")
    ex = c.exploration
    finals = [sid for sid, st in enumerate(ex.states) if ex.compiled.finished(st)]
    assert len(finals) == 1, "without faults every run ends in the same state"
    final = finals[0]
    metrics = trace_contention(ex, final)["mmap_lock"]
    assert metrics["write_acquisitions"] / (3 * 2) == per_page
    assert metrics["read_acquisitions"] == 3 * 2


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_four_threads_two_pages(variant: str) -> None:
    c = check(build(variant=variant, threads=4, pages=2), "specs/mmap_lock.py")
    for r in c.results:
        assert r.settled and not r.mismatch, (variant, r.property, r.verdict)
