"""specs/contpte.py: gate verdicts, committed counterexamples, the allowances, wider scopes.

- every variant's verdicts at the defaults equal its declared expectations (both ways),
  and every counterexample is exactly as long as the committed regression trace;
- every committed trace under tests/traces/contpte/ replays on the spec and on model/,
  both ending in the same violation and the same PTE words and TLB;
- the allowed deviations (A)-(C) are needed: with `strict=True` the merged code is
  refuted, so they are not slack that hides nothing;
- the slow runs check the merged code on wider operation menus.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from checker.explore import Limits
from checker.load import SpecModule, load_module
from checker.replay import replay
from checker.result import PASS, VIOLATED
from checker.run import Checked, check
from checker.trace import load
from specs.contpte import EXPECTED, VARIANTS

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "contpte.py"
TRACES = ROOT / "tests" / "traces" / "contpte"
HEADLINE = {"unfold_drops_dirty": "no_lost_dirty", "no_bbm": "bbm",
            "rmw_race": "no_lost_dirty"}


@cache
def module() -> SpecModule:
    return load_module(SPEC, "specs/contpte.py")


@cache
def _checked(variant: str, params: tuple[tuple[str, Any], ...]) -> Checked:
    spec = module().build(dict(params, variant=variant))
    return check(spec, "specs/contpte.py", limits=Limits(max_seconds=900))


def checked(variant: str, **params: Any) -> Checked:
    return _checked(variant, tuple(sorted(params.items())))


def verdicts(c: Checked) -> dict[str, str]:
    return {r.property: r.verdict for r in c.results}


@pytest.mark.parametrize("variant", VARIANTS)
def test_gate_verdicts_match_expectations(variant: str) -> None:
    c = checked(variant)
    assert c.exploration.complete
    for r in c.results:
        assert r.expected is not None
        assert r.verdict == r.expected, f"{variant} {r.property}: {r.verdict} != {r.expected}"
    assert {p for p, v in verdicts(c).items() if v == VIOLATED} == set(EXPECTED[variant])


def test_merged_code_passes_every_property() -> None:
    assert set(verdicts(checked("contpte")).values()) == {PASS}


@pytest.mark.parametrize("variant", sorted(HEADLINE))
def test_counterexample_is_as_short_as_the_committed_one(variant: str) -> None:
    prop = HEADLINE[variant]
    r = next(x for x in checked(variant).results if x.property == prop)
    committed = load(TRACES / f"{variant}-{prop}.itf.json")
    assert r.trace is not None
    assert len(r.trace.steps) == len(committed.steps)
    assert [s.label for s in r.trace.steps] == [s.label for s in committed.steps]


@pytest.mark.parametrize("path", sorted(TRACES.glob("*.itf.json")), ids=lambda p: p.name)
def test_committed_trace_replays_on_spec_and_model(path: Path) -> None:
    rep = replay(load(path), path)
    assert rep.spec_violates
    assert rep.model is not None
    assert rep.trace.property in rep.model.violated
    assert not rep.disagreements, rep.disagreements
    assert rep.agrees


def test_over_reporting_allowance_is_needed() -> None:
    """Without (A)-(C) the merged code is refuted at once: one access to a folded block
    makes contpte_ptep_get report every page of the block young."""
    spec = module().build({"variant": "contpte", "strict": True})
    c = check(spec, "specs/contpte.py", properties=["refines_core_mm"])
    (r,) = c.results
    assert r.verdict == VIOLATED and r.trace is not None
    labels = [s.label for s in r.trace.steps]
    assert labels == ["idle", "dispatch"] + ["csp_write"] * 4 + ["hw"]


ALL_OPS = "map,zap1,map1,zaprange,young,fork,wprot1,wpreuse,get"


def test_every_operation_on_a_two_entry_block_passes() -> None:
    c = checked("contpte", cont_ptes=2, readers=0, ops=ALL_OPS, pages=(0, 1), ranges=(0, 2),
                evict=True)
    assert c.exploration.complete
    assert set(verdicts(c).values()) == {PASS}
    taken = {c.compiled.actions[a].transition.step.label for a in c.exploration.action
             if a >= 0}
    assert {"tcyr_cmpxchg", "cfy_flush", "wp_cmpxchg", "safr_cmpxchg", "get_gather",
            "clr_xchg", "fold_read", "cv_flush"} <= taken


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    {"readers": 0, "ops": "map,zap1,map1,zaprange,young,fork,wprot1,wpreuse",
     "pages": (0, 3)},
    {"ops": "map,zap1,map1,young"},
    {"ops": "map,zap1,map1,fork"},
    {"ops": "map,zap1,map1,zaprange"},
    {"pages": (0, 3), "evict": True},
    {"cont_ptes": 2, "ops": "map,zap1,map1,young,wprot1,wpreuse,get", "pages": (0, 1),
     "reader_pages": (0, 1), "ranges": (0, 2)},
], ids=["all-ops-no-reader", "young+reader", "fork+reader", "zaprange+reader",
        "pages-0-3+evict", "two-entries+reader"])
def test_wider_scopes_pass(params: dict[str, Any]) -> None:
    c = checked("contpte", **params)
    assert c.exploration.complete
    assert set(verdicts(c).values()) == {PASS}
