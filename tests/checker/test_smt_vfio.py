"""The SMT engine on specs/vfio_locked_vm_cache.py at small sizes.

- the first BFS layers of the explicit engine are z3's exactly-k state sets (the pruning
  of unreachable labels in `checker.smt.live` and the batch form are translated right);
- with the cache size, RLIMIT_MEMLOCK and the initial locked_vm symbolic, a found
  violation names constants under which the explicit engine finds it too;
- (slow) at the RFC's sizes the saved counterexample replays on the reference
  semantics;
- `fixed`'s lemmas prove its four safety properties for every cache size, limit and
  initial locked_vm, and each lemma about the ghost `need` is needed for that.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from checker.compile import compile_flat
from checker.expr import evaluate
from checker.flat import instantiate
from checker.load import load_module
from checker.result import VIOLATED
from checker.run import check
from checker.smt import Encoding
from checker.smt_prove import Cti, full_plan, prove_inductive
from checker.smt_run import check_smt
from checker.smt_solve import Outcome, goals_of
from checker.smt_unroll import step_reference
from checker.spec import Spec
from checker.trace import encode_state, load, save
from tests.checker.test_smt_crosscheck import explicit_exact, z3_exact

SPEC = Path(__file__).resolve().parents[2] / "specs" / "vfio_locked_vm_cache.py"
SYMBOLIC = ("cache_pages", "limit_pages", "initial_locked")


def build(**params: Any) -> Spec:
    mod = load_module(SPEC)
    spec = mod.build(params)
    spec.parameters = {n: params.get(n, p.default) for n, p in mod.parameters.items()}
    return spec


def test_labels_only_the_caller_reaches_are_dropped_for_the_helpers() -> None:
    flat = instantiate(build(variant="seed", threads=3, chunks=3, granularity="batch"))
    kept = {id(p.t) for p in Encoding(flat).prepared}
    dropped = [t for t in flat.transitions if id(t) not in kept]
    assert dropped
    assert all(t.instance != 0 for t in dropped)
    undo = [t for t in flat.transitions if t.step.label == "padata_undo"]
    assert {t.instance for t in undo if id(t) in kept} == {0}


@pytest.mark.parametrize("variant", ["seed", "fixed"])
@pytest.mark.parametrize("granularity", ["page", "batch"])
def test_first_layers_match_the_explicit_engine(variant: str, granularity: str) -> None:
    flat = instantiate(build(variant=variant, granularity=granularity, chunk_pages=1,
                             efault=False, iommu_fail=False))
    compiled = compile_flat(flat)
    enc = Encoding(flat, arith="int")
    for k in range(4):
        assert z3_exact(enc, k) == explicit_exact(compiled, k), f"exactly {k} steps"


@pytest.mark.parametrize(("variant", "prop"), [("upfront", "overaccount_bound"),
                                               ("upfront", "no_spurious_enomem")])
def test_symbolic_constants_give_a_violation_the_explicit_engine_confirms(
        variant: str, prop: str) -> None:
    spec = build(variant=variant, granularity="batch", threads=2, chunks=2, chunk_pages=4,
                 batch_pages=4, cache_pages=4, limit_pages=64, initial_locked=0)
    [res] = check_smt(spec, str(SPEC), [prop], depth=6, symbolic=SYMBOLIC, max_seconds=60)
    assert res.verdict == VIOLATED and res.trace is not None
    found = dict(res.trace.extra["constants"])
    assert set(found) == set(SYMBOLIC)
    params = dict(spec.parameters) | found
    explicit = check(build(**params), str(SPEC), properties=[prop])
    [again] = [r for r in explicit.results if r.property == prop]
    assert again.verdict == VIOLATED


@pytest.mark.slow
def test_real_size_counterexample_replays_on_the_reference_semantics(tmp_path: Path) -> None:
    """16 helpers, chunks of 32768 pages, batches of 512, everything else symbolic.

    (The explicit engine cannot compile this size: a GUP step has 512 x 513 choice
    values; the saved trace is re-executed with `checker.expr.evaluate` instead.)"""
    spec = build(variant="upfront", granularity="batch", threads=16, chunks=16,
                 chunk_pages=32768, batch_pages=512, cache_pages=65536,
                 limit_pages=16 * 32768, initial_locked=0)
    [res] = check_smt(spec, str(SPEC), ["overaccount_bound"], depth=8, symbolic=SYMBOLIC,
                      max_seconds=120)
    assert res.verdict == VIOLATED and res.trace is not None
    trace = load(save(res.trace, tmp_path / "t.itf.json"))
    found = trace.extra["constants"]
    assert all(trace.parameters[n] == v for n, v in found.items())
    flat = instantiate(build(**trace.parameters))
    params = flat.params | found
    s = encode_state(flat, trace.states[0], "state 0")
    assert s == flat.initial_state(params)
    for k, step in enumerate(trace.steps, start=1):
        want = encode_state(flat, trace.states[k], f"state {k}")
        nexts = [step_reference(flat, s, t, step.choice, params) for t in flat.transitions
                 if t.process == step.process and t.step.label == step.label]
        assert want in nexts, f"step {k}"
        s = want
    prop = next(p for p in spec.properties if p.name == "overaccount_bound")
    assert not evaluate(flat.properties[prop.name], s, params)


ACCOUNTING = ["no_leak", "overaccount_bound", "rlimit"]
SYMBOLIC = ["cache_pages", "limit_pages", "initial_locked"]


@pytest.mark.parametrize("granularity", ["page", "batch"])
def test_fixed_accounting_is_proved_for_every_cache_and_limit(granularity: str) -> None:
    """The spec's lemmas make no_leak, overaccount_bound and rlimit of `fixed` inductive
    (on their cone of influence): PROVED, all depths, every cache size, limit, initial."""
    params = {"granularity": granularity}
    if granularity == "batch":
        params |= {"chunk_pages": 32768, "batch_pages": 512, "cache_pages": 65536}
    results = check_smt(build(variant="fixed", **params), str(SPEC), ACCOUNTING, prove=True,
                        symbolic=SYMBOLIC, max_seconds=120, slice=True)
    assert {r.property: r.verdict for r in results} == dict.fromkeys(ACCOUNTING, "PROVED")
    assert all("cone of influence" in r.reason for r in results)


REAL_2 = {"granularity": "batch", "chunk_pages": 32768, "batch_pages": 512,
          "cache_pages": 65536}
ALL_FOUR = [*ACCOUNTING, "no_spurious_enomem"]
NEED_LEMMAS = ("need_covers_pins", "head_n_pending", "need_within_taken",
               "empty_call_at_out_has_page", "refill_has_page")


def test_fixed_never_fails_spuriously_for_every_cache_and_limit() -> None:
    """With the ghost `need`'s lemmas, no_spurious_enomem joins the inductive invariant:
    two helpers at the RFC's chunk, batch and cache sizes, every cache size, limit and
    initial locked_vm, unsliced (every slot tracked, so no domain is left to BMC)."""
    results = check_smt(build(variant="fixed", **REAL_2), str(SPEC), ALL_FOUR, prove=True,
                        symbolic=SYMBOLIC, max_seconds=60, depth=2)
    assert {r.property: r.verdict for r in results} == dict.fromkeys(ALL_FOUR, "PROVED")
    assert not any("cone of influence" in r.reason for r in results)


@pytest.mark.slow
def test_fixed_never_fails_spuriously_with_the_rfcs_16_helpers() -> None:
    """The same four properties with 16 helpers: per-step induction, helper[2..15]
    covered by the verified symmetry."""
    spec = build(variant="fixed", threads=16, chunks=16, limit_pages=16 * 32768, **REAL_2)
    results = check_smt(spec, str(SPEC), ALL_FOUR, prove=True, symbolic=SYMBOLIC,
                        max_seconds=300, depth=2)
    assert {r.property: r.verdict for r in results} == dict.fromkeys(ALL_FOUR, "PROVED")
    assert all("verified symmetry" in r.reason for r in results)


def houdini_without(lemma: str) -> tuple[dict[str, Outcome], dict[str, Cti]]:
    """Houdini (per step alternative) on no_spurious_enomem and the lemmas but one."""
    spec = build(variant="fixed", **REAL_2)
    assert lemma in {lm.name for lm in spec.lemmas}
    spec = dataclasses.replace(spec, lemmas=[lm for lm in spec.lemmas if lm.name != lemma])
    enc = Encoding(instantiate(spec), SYMBOLIC, "int")
    goals = goals_of(enc, ["no_spurious_enomem"], lemmas=True)
    return prove_inductive(enc, goals, 60, full_plan(enc))


@pytest.mark.parametrize("lemma", NEED_LEMMAS)
def test_each_need_lemma_is_needed(lemma: str) -> None:
    """Without any one of them the induction step fails (deterministically, no Spacer):
    at the refill's -ENOMEM, which would set `spurious`, or, when nothing bounds `need`,
    at a GUP whose `need += a` leaves need's domain (a spec error stops Houdini)."""
    proved, ctis = houdini_without(lemma)
    assert "no_spurious_enomem" not in proved
    cti = ctis["no_spurious_enomem"].data
    if lemma in ("head_n_pending", "need_within_taken"):
        assert not proved
        assert cti["step"]["label"] == "gup"
        assert any("to need, outside its domain" in v for v in cti["violates"])
    else:
        assert cti["step"]["label"] == "refill"
        assert "no_spurious_enomem" in cti["violates"]


def test_a_violated_variant_is_not_proved_with_the_slice() -> None:
    results = check_smt(build(variant="upfront"), str(SPEC), ["overaccount_bound"], prove=True,
                        symbolic=SYMBOLIC, max_seconds=60, slice=True)
    assert results[0].verdict == VIOLATED
