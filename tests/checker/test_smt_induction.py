"""Per-step and symmetric induction, and the restricted BMC of `--movers`.

- the induction step checked one step alternative at a time proves exactly the goals the
  monolithic query proves (Houdini's fixpoint), with and without a symmetry reduction;
- a symmetry is used only when `checker.symmetry.analyse` verifies it on the system being
  proved (a declaration with per-thread lemmas is refused);
- a search restricted to a few moving processes finds real violations but never answers
  BOUNDED-OK or PROVED.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from checker.compile import compile_flat
from checker.expr import evaluate
from checker.flat import instantiate
from checker.load import load_module
from checker.result import BOUNDED_OK, PROVED, UNKNOWN, VIOLATED
from checker.smt import Encoding
from checker.smt_prove import (
    full_plan,
    houdini_monolithic,
    houdini_per_step,
    symmetric_plan,
    verified_symmetry,
)
from checker.smt_run import check_smt, restrict_movers
from checker.smt_solve import Budget, goals_of
from checker.spec import Spec
from checker.trace import replay_on_spec

HERE = Path(__file__).parent
CACHE = HERE / "specs_smt_cache.py"
MUTEX = HERE / "specs_mutex.py"
VFIO = HERE.parents[1] / "specs" / "vfio_locked_vm_cache.py"


def build(path: Path, **params: Any) -> Spec:
    mod = load_module(path)
    spec = mod.build(params)
    spec.parameters = {n: params.get(n, p.default) for n, p in mod.parameters.items()}
    return spec


def fixpoints(spec: Spec, props: list[str], symbolic: list[str]) -> dict[str, set[str]]:
    """Houdini's inductive subset by each way of checking the induction step."""
    enc = Encoding(instantiate(spec), symbolic, "int")
    goals = goals_of(enc, props, lemmas=True)
    sym, _why = verified_symmetry(enc, props)
    out = {}
    mono, _ = houdini_monolithic(enc, goals, Budget(120))
    out["monolithic"] = {g.name for g in mono}
    step, _ = houdini_per_step(enc, goals, Budget(120), full_plan(enc))
    out["per-step"] = {g.name for g in step}
    symm, _ = houdini_per_step(enc, goals, Budget(120), symmetric_plan(enc, sym))
    out["symmetric"] = {g.name for g in symm}
    return out


@pytest.mark.parametrize("variant", ["correct", "split"])
@pytest.mark.parametrize("lemmas", [True, False])
def test_per_step_and_symmetric_induction_prove_what_the_monolithic_query_proves(
        variant: str, lemmas: bool) -> None:
    spec = build(CACHE, variant=variant, threads=3, symmetric=True, lemmas=lemmas)
    got = fixpoints(spec, ["exact", "overaccount"], ["cache"])
    assert got["per-step"] == got["monolithic"] == got["symmetric"]
    if lemmas:  # the lemmas make overaccount inductive in both variants, exact in correct
        assert "overaccount" in got["monolithic"]
        assert ("exact" in got["monolithic"]) == (variant == "correct")
    else:  # neither property is inductive on its own
        assert not got["monolithic"] & {"exact", "overaccount"}


def test_the_symmetric_plan_checks_one_representative_per_class() -> None:
    enc = Encoding(instantiate(build(CACHE, threads=3, symmetric=True)), ["cache"], "int")
    sym, why = verified_symmetry(enc, ["exact", "overaccount"])
    assert sym is not None, why
    plan = symmetric_plan(enc, sym)
    checked = {enc.prepared[i].t.process for i in plan.checked}
    assert checked == {"worker[0]"}
    assert "worker[1..2] follow from worker[0]" in plan.describe()


def test_a_declared_symmetry_with_per_thread_lemmas_is_not_used() -> None:
    enc = Encoding(instantiate(build(CACHE, threads=3, declare=True)), ["cache"], "int")
    sym, why = verified_symmetry(enc, ["exact"])
    assert sym is None and "per_thread_0" in why
    assert len(symmetric_plan(enc, sym).checked) == len(enc.prepared)


def test_a_dropped_goal_gets_a_counterexample_to_induction_per_step() -> None:
    """Without its lemmas `exact` is not inductive (a state where it holds can still
    overflow `locked`): the per-step Houdini proves nothing and words the state and step
    that break it (the engine's CTI text)."""
    spec = build(CACHE, variant="correct", threads=3, symmetric=True, lemmas=False)
    enc = Encoding(instantiate(spec), ["cache"], "int")
    goals = goals_of(enc, ["exact"], lemmas=True)
    sym, _why = verified_symmetry(enc, ["exact"])
    cand, ctis = houdini_per_step(enc, goals, Budget(60), symmetric_plan(enc, sym))
    assert cand == []
    assert "induction step fails" in ctis["exact"].text
    assert ctis["exact"].data["violates"]  # exact, or a spec error of the step


def test_vfio_fixed_is_proved_per_step_with_the_helper_symmetry() -> None:
    """3 helpers (the spec declares helper symmetry from 3): helper[2] follows from
    helper[1]; the caller helper[0] is checked on its own."""
    spec = build(VFIO, variant="fixed", threads=3, chunks=3, granularity="batch")
    results = check_smt(spec, str(VFIO), ["no_leak", "overaccount_bound", "rlimit"],
                        prove=True, slice=True, max_seconds=120,
                        symbolic=["cache_pages", "limit_pages", "initial_locked"])
    assert {r.verdict for r in results} == {PROVED}
    assert all("helper[2..2] follow from helper[1]" in r.reason for r in results)


# ---------------------------------------------------------------- restricted BMC


def test_restricted_search_never_answers_bounded_ok() -> None:
    """Peterson-less mutual exclusion needs both processes in the critical section:
    with one mover there is no violation, and the verdict says only that."""
    spec = build(MUTEX, variant="naive")
    results = {r.property: r for r in check_smt(spec, str(MUTEX), depth=8, movers=1)}
    assert {r.verdict for r in results.values()} == {UNKNOWN}
    assert "only p[0..0] move" in results["mutual_exclusion"].reason
    assert "only p[0..0] move" in results["all_left"].reason
    # p[1] stopped after its first step is not a deadlock of the spec: not searched
    assert "not searched with --movers" in results["no_deadlock"].reason
    full = {r.property: r for r in check_smt(spec, str(MUTEX), depth=8)}
    assert full["mutual_exclusion"].verdict == VIOLATED
    assert full["all_left"].verdict in (BOUNDED_OK, PROVED)
    assert full["no_deadlock"].verdict in (BOUNDED_OK, PROVED)


def test_restricted_flat_keeps_only_first_steps_of_idle_instances() -> None:
    flat = instantiate(build(VFIO, variant="seed", threads=3, chunks=3, granularity="batch"))
    sub, what = restrict_movers(flat, 2)
    idle = [t for t in sub.transitions if t.instance == 2]
    assert idle and {t.step.label for t in idle} == {"helper"}
    assert all(t in flat.transitions for t in sub.transitions)
    frozen, _ = restrict_movers(flat, 2, first_steps=False)
    assert not [t for t in frozen.transitions if t.instance == 2]
    assert "helper[2]" in what


@pytest.mark.slow
@pytest.mark.parametrize("prop", ["no_leak"])
def test_restricted_search_finds_a_violation_of_the_full_spec(prop: str) -> None:
    """seed with 3 helpers, only helpers 0 and 1 moving (helper 2 must still finish for
    no_leak, with its first step): the trace replays on the full spec and its last
    state violates the property."""
    spec = build(VFIO, variant="seed", threads=3, chunks=3, granularity="batch")
    [r] = check_smt(spec, str(VFIO), [prop], depth=14, movers=2, max_seconds=120)
    assert r.verdict == VIOLATED and r.trace is not None
    assert "searched only the runs" in r.reason
    flat = instantiate(spec)
    states = replay_on_spec(compile_flat(flat), r.trace)
    assert not evaluate(flat.properties[prop], states[-1], flat.params)
    if prop == "no_leak":  # every helper finished, helper 2 with its single step
        assert [s.process for s in r.trace.steps].count("helper[2]") == 1


@pytest.mark.slow
def test_vfio_fixed_is_proved_with_16_helpers_at_real_sizes() -> None:
    """The RFC's 16 helpers, chunks of 32768 pages, batches of 512, every cache size,
    limit and initial locked_vm: PROVED through the per-step, symmetric induction."""
    spec = build(VFIO, variant="fixed", granularity="batch", threads=16, chunks=16,
                 chunk_pages=32768, batch_pages=512, cache_pages=65536,
                 limit_pages=16 * 32768, initial_locked=0)
    results = check_smt(spec, str(VFIO), ["no_leak", "overaccount_bound", "rlimit"],
                        prove=True, slice=True, max_seconds=300,
                        symbolic=["cache_pages", "limit_pages", "initial_locked"])
    assert {r.verdict for r in results} == {PROVED}
    assert all("helper[2..15] follow from helper[1]" in r.reason for r in results)
