"""specs/vfio_locked_vm_cache.py: the gate's verdicts, its coverage, the committed traces.

- every variant's verdicts at the defaults equal its declared expectations, and each
  counterexample is as short as the committed regression trace for it;
- every step alternative of the spec is taken somewhere at the defaults (a path the
  defaults cannot reach is a path the gate never checks);
- every committed trace under tests/traces/vfio/ replays on the spec and on model/ and
  both end in the same violation with the same final locked_vm;
- bad parameters are refused with a SpecError naming the parameter.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from checker.compile import compile_flat
from checker.explore import Limits, explore
from checker.flat import instantiate
from checker.load import SpecModule, load_module
from checker.replay import replay
from checker.result import PASS, VIOLATED
from checker.run import Checked, check
from checker.spec import SpecError
from checker.trace import load

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "vfio_locked_vm_cache.py"
TRACES = ROOT / "tests" / "traces" / "vfio"
VARIANTS = ("upstream", "seed", "upfront", "fixed")


@cache
def module() -> SpecModule:
    return load_module(SPEC, "specs/vfio_locked_vm_cache.py")


@cache
def checked(variant: str, **params: Any) -> Checked:
    spec = module().build(dict(params, variant=variant))
    return check(spec, "specs/vfio_locked_vm_cache.py", limits=Limits(max_seconds=300))


def verdicts(c: Checked) -> dict[str, str]:
    return {r.property: r.verdict for r in c.results}


@pytest.mark.parametrize("variant", VARIANTS)
def test_gate_verdicts_match_expectations(variant: str) -> None:
    c = checked(variant)
    assert c.exploration.complete
    for r in c.results:
        assert r.expected is not None, f"{r.property}: the gate must make a claim"
        assert r.verdict == r.expected, f"{variant} {r.property}: {r.verdict} != {r.expected}"


def test_fixed_passes_and_seed_fails_at_the_gate() -> None:
    assert set(verdicts(checked("fixed")).values()) == {PASS}
    got = verdicts(checked("seed"))
    assert {p for p, v in got.items() if v == VIOLATED} == {
        "no_leak", "overaccount_bound", "no_spurious_enomem"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_counterexamples_are_as_short_as_the_committed_ones(variant: str) -> None:
    for r in checked(variant).results:
        if r.verdict != VIOLATED:
            continue
        committed = load(TRACES / f"{variant}-{r.property}.itf.json")
        assert r.trace is not None
        assert len(r.trace.steps) == len(committed.steps), r.property


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_step_alternative_is_taken_at_the_defaults(variant: str) -> None:
    spec = module().build({"variant": variant})
    compiled = compile_flat(instantiate(spec))
    ex = explore(compiled, [])
    taken = set()
    for s in ex.states:
        for aid, _ in compiled.successors(s):
            st = compiled.actions[aid].transition.step
            taken.add((st.label, st.note))
    declared = {(st.label, st.note) for g in spec.groups for st in g.steps}
    assert declared - taken == set()


TRACE_FILES = sorted(TRACES.glob("*.itf.json"))


def test_every_gate_violation_has_a_committed_trace() -> None:
    from specs.vfio_locked_vm_cache import GATE_VIOLATIONS

    suffix = {frozenset(): "", frozenset({("fatal_signal", False)}): "-nosignal",
              frozenset({("fatal_signal", False), ("pinned", False)}): "-nosignal-nopinned"}
    names = {f.name for f in TRACE_FILES}
    for key, tail in suffix.items():
        for variant, props in GATE_VIOLATIONS[key].items():
            for prop in props:
                assert f"{variant}-{prop}{tail}.itf.json" in names


@pytest.mark.parametrize("path", TRACE_FILES, ids=lambda p: p.name)
def test_committed_trace_replays_on_spec_and_model(path: Path) -> None:
    trace = load(path)
    report = replay(trace, path)
    assert report.spec_violates, "the trace no longer ends in its violation"
    assert report.model is not None
    assert not report.disagreements, report.disagreements
    assert trace.property in report.model.violated
    assert report.model.final["locked_vm"] == trace.states[-1]["locked_vm"]


def test_trace_stories_are_the_documented_ones() -> None:
    leak = load(TRACES / "seed-no_leak-nosignal-nopinned.itf.json")
    notes = [s.note for s in leak.steps]
    assert "drawn from lock_cache" in notes and "-EFAULT" in notes
    assert leak.states[-1]["locked_vm"] == 2 and leak.states[-1]["acc_pinned"] == 0
    vpfn = load(TRACES / "upstream-no_leak-nosignal.itf.json")
    assert vpfn.states[-1]["locked_vm"] < vpfn.states[0]["locked_vm"]
    assert vpfn.steps[-1].label == "padata_undo"


def test_no_signal_configurations_separate_the_findings() -> None:
    nosig = verdicts(checked("upstream", fatal_signal=False, pinned=False))
    assert set(nosig.values()) == {PASS}
    seed = verdicts(checked("seed", fatal_signal=False, pinned=False))
    assert seed["no_leak"] == VIOLATED and seed["no_spurious_enomem"] == VIOLATED


def test_batch_granularity_gives_the_page_verdicts() -> None:
    for variant in ("seed", "fixed"):
        page = verdicts(checked(variant))
        batch = verdicts(checked(variant, granularity="batch"))
        assert page == batch


NEED_LEMMAS = {"need_covers_pins", "head_n_pending", "need_within_taken",
               "empty_call_at_out_has_page", "refill_has_page"}


def lemma_violations(**params: Any) -> dict[str, int]:
    """Explore fixed with every property and every lemma checked in every state."""
    spec = module().build(dict(params, variant="fixed"))
    compiled = compile_flat(instantiate(spec))
    assert set(compiled.flat.lemmas) >= NEED_LEMMAS
    ex = explore(compiled, None, Limits(max_seconds=600), stop_when_all_violated=False)
    assert ex.complete
    return dict(ex.violations)


@pytest.mark.parametrize("granularity", ["page", "batch"])
def test_fixed_lemmas_hold_in_every_reachable_state(granularity: str) -> None:
    """The SMT proofs assume fixed's lemmas; they must be true, not only inductive."""
    assert lemma_violations(granularity=granularity) == {}


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    dict(chunks=3), dict(chunks=3, granularity="batch"),
    dict(threads=3, chunks=3, chunk_pages=1, cache_pages=2, batch_pages=1, limit_pages=3,
         fatal_signal=False),
    dict(threads=2, chunks=2, chunk_pages=3, cache_pages=2, batch_pages=2, limit_pages=5),
    dict(threads=2, chunks=3, chunk_pages=2, cache_pages=3, batch_pages=3, limit_pages=3,
         initial_locked=0, iommu_fail=False),
])
def test_fixed_lemmas_hold_beyond_the_gate(params: dict[str, Any]) -> None:
    assert lemma_violations(**params) == {}


def test_fixed_layout_reproduces_the_leak() -> None:
    # page 0 normal, page 1 faults: the draw for page 0 is never given back (seed)
    params = dict(layout="NFRR", fatal_signal=False, iommu_fail=False)
    assert verdicts(checked("seed", **params))["no_leak"] == VIOLATED
    assert set(verdicts(checked("fixed", **params)).values()) == {PASS}


def test_lock_cap_bypasses_the_limit() -> None:
    got = verdicts(checked("fixed", lock_cap=True, limit_pages=0))
    assert set(got.values()) == {PASS}


def test_off_gate_expectations_claim_only_the_sure_properties() -> None:
    spec = module().build({"variant": "seed", "cache_pages": 2})
    assert spec.expected["rlimit"] is False and spec.expected["no_deadlock"] is False
    assert spec.expected["no_leak"] is None
    fixed = module().build({"variant": "fixed", "cache_pages": 2})
    assert all(v is False for v in fixed.expected.values())


@pytest.mark.parametrize("params, word", [
    ({"variant": "nope"}, "variant"),
    ({"threads": 3, "chunks": 2}, "chunks"),
    ({"layout": "NNN"}, "layout"),
    ({"layout": "NNXN"}, "layout letter"),
    ({"granularity": "word"}, "granularity"),
    ({"granularity": "batch", "layout": "NNNN"}, "granularity"),
    ({"cache_pages": 0}, "cache_pages"),
    ({"mmap_lock": "spin"}, "mmap_lock"),
])
def test_bad_parameters_are_refused(params: dict[str, Any], word: str) -> None:
    with pytest.raises(SpecError, match=word):
        module().build(params)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_three_chunks_give_the_gate_verdicts(variant: str) -> None:
    for r in checked(variant, chunks=3).results:
        assert r.verdict == r.expected


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    dict(threads=3, chunks=3, chunk_pages=1, cache_pages=2, batch_pages=1, limit_pages=3,
         fatal_signal=False),
    dict(threads=3, chunks=3, chunk_pages=2, cache_pages=2, batch_pages=2, limit_pages=5,
         fatal_signal=False, pinned=False, iommu_fail=False),
    dict(threads=2, chunks=2, chunk_pages=3, cache_pages=2, batch_pages=2, limit_pages=5),
    dict(threads=2, chunks=3, chunk_pages=2, cache_pages=3, batch_pages=3, limit_pages=3,
         initial_locked=0, iommu_fail=False),
])
def test_fixed_passes_beyond_the_gate(params: dict[str, Any]) -> None:
    c = checked("fixed", **params)
    assert c.exploration.complete
    assert set(verdicts(c).values()) == {PASS}


@pytest.mark.parametrize("variant, params", [
    ("upstream", {"granularity": "batch", "fatal_signal": False}),
    ("seed", {"granularity": "batch", "fatal_signal": False, "pinned": False}),
    ("seed", {"layout": "FNNR"}),
    ("upfront", {"layout": "NPRN"}),
])
def test_fresh_counterexamples_replay_on_the_model(variant: str, params: dict[str, Any],
                                                    tmp_path: Path) -> None:
    """Not only the committed traces: batch-granularity and fixed-layout ones too."""
    from checker.trace import save

    found = [r for r in checked(variant, **params).results if r.trace is not None]
    assert found
    for r in found:
        assert r.trace is not None
        r.trace.source = str(SPEC)  # found from anywhere, not only the repository root
        path = save(r.trace, tmp_path / f"{r.property}.itf.json")
        report = replay(load(path), path)
        assert report.agrees, report.disagreements
