"""The native explorer (`--native`) gives the Python engine's result, state for state.

The reference is `checker.explore._explore`: the C search must store the same states
with the same ids, parents and actions, find the same violations and deadlock, apply
the same stop rules and limits, and report spec runtime errors with the same message,
with and without each reduction. Skipped without a C compiler. The C is compiled at -O0
here (the code is the same; only speed differs).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from checker.cli import main
from checker.compile import SpecRuntimeError, compile_flat
from checker.explore import Exploration, Limits, explore, make_reductions
from checker.expr import Int
from checker.flat import instantiate
from checker.spec import Spec, SpecBuilder
from checker.symmetry import SymmetryError
from tests.checker.specs_random import random_spec
from tests.checker.test_compile import oob_spec, overflow_spec
from tests.checker.test_reductions_specs import CASES, build, checked

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler")

KINDS: list[dict[str, bool]] = [{}, {"symmetry": True}, {"por": True}, {"slice": True},
                                {"symmetry": True, "por": True, "slice": True}]


@pytest.fixture(autouse=True)
def _fast_cc(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("MMCHECK_NATIVE_OPT", "-O0")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


def same(a: Exploration, b: Exploration) -> None:
    assert list(a.states) == list(b.states)
    assert list(a.parent) == list(b.parent)
    assert list(a.action) == list(b.action)
    assert a.violations == b.violations
    assert a.deadlock == b.deadlock
    assert (a.complete, a.stop_reason) == (b.complete, b.stop_reason)
    assert (a.stats.states, a.stats.transitions, a.stats.depth) == (
        b.stats.states, b.stats.transitions, b.stats.depth)


def compare(spec: Spec, props: list[str] | None, kinds: list[dict[str, bool]] = KINDS,
            **kw: Any) -> None:
    compiled = compile_flat(instantiate(spec))
    for kind in kinds:
        try:
            red = make_reductions(compiled, props, symmetry=kind.get("symmetry", False),
                                  por=kind.get("por", False), slice=kind.get("slice", False))
        except SymmetryError:
            continue
        py = explore(compiled, props, reductions=red, **kw)
        c = explore(compiled, props, reductions=red, native=True, **kw)
        same(py, c)


SOME = [c for c in CASES if c[0] in (
    "contpte-contpte", "mmap_lock-correct", "vfio-seed-all", "vfio-fixed-no_leak-no_signal")]
EVERY = {"symmetry": True, "por": True, "slice": True}


@pytest.mark.parametrize("name,builder,params,props", SOME, ids=[c[0] for c in SOME])
def test_native_matches_python(name: str, builder: Callable[..., Spec],
                               params: dict[str, Any], props: list[str] | None) -> None:
    spec = build(builder, params)
    compare(spec, checked(spec, props), kinds=[{}, EVERY])


@pytest.mark.slow
@pytest.mark.parametrize("name,builder,params,props", SOME, ids=[c[0] for c in SOME])
def test_native_matches_python_with_each_reduction(name: str, builder: Callable[..., Spec],
                                                   params: dict[str, Any],
                                                   props: list[str] | None) -> None:
    spec = build(builder, params)
    compare(spec, checked(spec, props))


@pytest.mark.slow
@pytest.mark.parametrize("name,builder,params,props", CASES, ids=[c[0] for c in CASES])
def test_native_matches_python_on_every_spec_and_variant(
        name: str, builder: Callable[..., Spec], params: dict[str, Any],
        props: list[str] | None) -> None:
    spec = build(builder, params)
    compare(spec, checked(spec, props))
    compare(spec, checked(spec, props), stop_when_all_violated=False)


def test_the_sweep_has_cases_of_every_spec() -> None:
    assert {c[0].split("-")[0] for c in SOME} == {"contpte", "mmap_lock", "vfio"}


def test_limits_stop_both_engines_alike() -> None:
    spec = build(*[(b, p) for n, b, p, _ in CASES if n == "vfio-fixed-all"][0])
    for limits in (Limits(max_states=500), Limits(max_depth=6)):
        compare(spec, None, kinds=[EVERY], limits=limits)


def test_spec_errors_have_the_python_wording() -> None:
    compiled = compile_flat(instantiate(overflow_spec()))
    with pytest.raises(SpecRuntimeError, match=r"process p\[0\]: step inc .*assigns 3 to x"):
        explore(compiled, native=True)
    with pytest.raises(SpecRuntimeError, match="out of range for a"):
        explore(compile_flat(instantiate(oob_spec())), native=True)


def test_python_integer_semantics() -> None:
    """Floor division and modulo of negatives, as Python computes them."""
    b = SpecBuilder("arith")
    x = b.var("x", Int(-7, 7), init=-7)
    q = b.var("q", Int(-8, 8), init=0)
    r = b.var("r", Int(-8, 8), init=0)
    p = b.process("p")
    p.step("go", "x += 3", guard=x < 5, effects={x: x + 3, q: x // 2, r: x % -3}, goto="go")
    b.final("never", x == 100)
    compare(b.build(), None, kinds=[{}])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec(ghost=True, local=True))
def test_random_specs(spec: Spec) -> None:
    compare(spec, None, kinds=[EVERY], stop_when_all_violated=False)


def test_cli_native_gives_the_gate_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "specs/vfio_locked_vm_cache.py", "--variant", "seed", "--native",
                 "--quiet"]) == 0
    out = capsys.readouterr()
    assert "native: the search ran compiled to C" in out.err
    assert main(["check", "specs/vfio_locked_vm_cache.py", "--native", "--workers", "2"]) == 2
    assert "--native runs one process" in capsys.readouterr().err


def test_counterexamples_are_the_python_engines() -> None:
    """Same trace, step by step and value by value, and it replays on the spec."""
    from checker.run import check
    from checker.trace import replay_on_spec
    from specs.vfio_locked_vm_cache import build as vfio

    spec = vfio(variant="seed", threads=3, chunks=3, chunk_pages=1, cache_pages=1,
                limit_pages=2, layout="NFN", iommu_fail=False)
    assert "helper" in spec.symmetric
    py = check(spec, "specs/vfio_locked_vm_cache.py", symmetry=True, slice=True)
    c = check(spec, "specs/vfio_locked_vm_cache.py", symmetry=True, slice=True, native=True)
    violated = [r for r in py.results if r.trace is not None]
    assert violated
    for a, b in zip(violated, [r for r in c.results if r.trace is not None], strict=True):
        assert (a.property, a.trace.steps, a.trace.states) == (b.property, b.trace.steps,
                                                               b.trace.states)
        replay_on_spec(c.compiled, b.trace)


def test_without_a_compiler_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert main(["check", "specs/vfio_locked_vm_cache.py", "--native", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mmcheck: error: --native needs a C compiler (cc or gcc on PATH, or $CC); "
                   "$CC='/nonexistent/cc' is not one"]


def test_time_and_memory_caps_stop_the_native_search() -> None:
    """Checked between slices of the C search: INCOMPLETE with the reason, never PASS."""
    from checker.run import check
    from specs.vfio_locked_vm_cache import build as vfio

    spec = vfio()
    for limits, reason in ((Limits(max_seconds=1e-6), "time limit"),
                           (Limits(max_memory_mib=1), "memory cap 1 MiB")):
        c = check(spec, "specs/vfio_locked_vm_cache.py", None, limits, native=True)
        assert not c.exploration.complete
        assert c.exploration.stop_reason.startswith(reason)
        assert all(r.verdict in ("INCOMPLETE", "VIOLATED") for r in c.results)
        assert any(r.verdict == "INCOMPLETE" for r in c.results)
