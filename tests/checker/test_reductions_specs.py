"""Every reduction on every spec and variant of specs/, at small sizes, changes no verdict.

For each shipped spec module and each of its variants (small parameters so the whole
sweep takes seconds) the unreduced exploration is the reference, and each reduction must
give what it promises:

- symmetry: exactly the same set of canonical states and the same violations (or, where
  the declaration is not an automorphism, a SymmetryError: never a silent reduction);
- partial-order reduction: the same violations and deadlock, the same terminal states, a
  subset of the reachable states;
- slicing: the same violations and the same reachable states projected on the slots the
  checked properties depend on;
- two workers: state for state the one-process exploration;
- all reductions together, with one and two workers: the same violations.

For specs with lock-order properties (judged on the explored graph by checker.lockdep)
the verdicts are also compared through `checker.run.check`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from checker.compile import Compiled, compile_flat
from checker.explore import Exploration, explore, make_reductions
from checker.flat import instantiate
from checker.run import check
from checker.slicing import relevant_slots, slice_view
from checker.spec import Spec
from checker.symmetry import SymmetryError
from specs.contpte import VARIANTS as CONTPTE_VARIANTS
from specs.contpte import build as contpte
from specs.mmap_lock import VARIANTS as MMAP_VARIANTS
from specs.mmap_lock import build as mmap_lock
from specs.vfio_locked_vm_cache import VARIANTS as VFIO_VARIANTS
from specs.vfio_locked_vm_cache import build as vfio

State = tuple[int, ...]

# spec id, builder, small parameters, properties to check (None: all)
CASES: list[tuple[str, Callable[..., Spec], dict[str, Any], list[str] | None]] = (
    [(f"contpte-{v}", contpte, {"variant": v, "cont_ptes": 2, "ops": "map,zap1",
                                "ranges": (0, 2, 1, 1), "pages": (1,)}, None)
     for v in CONTPTE_VARIANTS]
    + [(f"mmap_lock-{v}", mmap_lock, {"variant": v, "threads": 2}, None)
       for v in MMAP_VARIANTS]
    + [(f"vfio-{v}-{'all' if props is None else props[0]}", vfio,
        {"variant": v, "threads": 3, "chunks": 3, "chunk_pages": 1, "cache_pages": 1,
         "limit_pages": 2, "layout": "NFN", "iommu_fail": False}, props)
       for v in VFIO_VARIANTS for props in (None, ["no_leak"])]
    # the benchmark's setting: no SIGKILL, EFAULT and IOMMU faults
    + [("vfio-fixed-no_leak-no_signal", vfio,
        {"variant": "fixed", "threads": 3, "chunks": 3, "chunk_pages": 1, "cache_pages": 1,
         "limit_pages": 2, "layout": "NFN", "fatal_signal": False}, ["no_leak"])]
)
# two helpers for mmap_lock; every page kind free at every position (EFAULT anywhere) for
# vfio: minutes, so `-m slow`
SLOW_CASES: list[tuple[str, Callable[..., Spec], dict[str, Any], list[str] | None]] = [
    (f"mmap_lock-{v}-t3", mmap_lock, {"variant": v, "threads": 3}, None)
    for v in MMAP_VARIANTS] + [
    (f"vfio-free-{v}-{'all' if props is None else props[0]}-fatal_{fatal}", vfio,
     {"variant": v, "threads": 3, "chunks": 3, "chunk_pages": 1, "cache_pages": 1,
      "limit_pages": 2, "reserved": False, "pinned": False, "iommu_fail": False,
      "fatal_signal": fatal}, props)
    for v in VFIO_VARIANTS for props in (None, ["no_leak"]) for fatal in (True, False)]


def build(builder: Callable[..., Spec], params: dict[str, Any]) -> Spec:
    """The spec with every process group of several instances declared symmetric (the
    symmetry check then decides which instances really are interchangeable)."""
    spec = builder(**params)
    for g in spec.groups:
        if g.index.size > 1 and g.name not in spec.symmetric:
            spec.symmetric.append(g.name)
    return spec


def checked(spec: Spec, props: list[str] | None) -> list[str]:
    """The properties the explorer judges (lock-order ones go to checker.lockdep)."""
    return [p.name for p in spec.properties if p.kind != "lock_order"
            and (props is None or p.name in props)]


def same_verdicts(full: Exploration, red: Exploration) -> None:
    assert full.complete and red.complete
    assert set(full.violations) == set(red.violations)
    assert (full.deadlock is None) == (red.deadlock is None)


def terminal(compiled: Compiled, ex: Exploration) -> set[State]:
    canon = ex.canonical or (lambda s: s)
    return {canon(s) for s in ex.states if not compiled.successors(s)}


@pytest.mark.parametrize("name,builder,params,props", CASES, ids=[c[0] for c in CASES])
def test_every_reduction_keeps_the_verdicts(name: str, builder: Callable[..., Spec],
                                            params: dict[str, Any],
                                            props: list[str] | None) -> None:
    sweep(name, build(builder, params), props)


@pytest.mark.slow
@pytest.mark.parametrize("name,builder,params,props", SLOW_CASES,
                         ids=[c[0] for c in SLOW_CASES])
def test_every_reduction_keeps_the_verdicts_free_layout(
        name: str, builder: Callable[..., Spec], params: dict[str, Any],
        props: list[str] | None) -> None:
    sweep(name, build(builder, params), props)


def sweep(name: str, spec: Spec, props: list[str] | None) -> None:
    """Compare every reduction with the unreduced exploration (see the module doc)."""
    compiled = compile_flat(instantiate(spec))
    names = checked(spec, props)
    full = explore(compiled, names, stop_when_all_violated=False)
    assert full.complete

    # symmetry: the same canonical states, or a refusal
    try:
        red = make_reductions(compiled, names, symmetry=True, por=False)
    except SymmetryError:
        refused = True
    else:
        refused = False
        sym = explore(compiled, names, stop_when_all_violated=False, reductions=red)
        same_verdicts(full, sym)
        canon = sym.canonical
        if canon is not None:
            assert {canon(s) for s in full.states} == sym.canonical_states()
        else:
            assert set(sym.states) == set(full.states)

    # partial-order reduction
    por = explore(compiled, names, stop_when_all_violated=False,
                  reductions=make_reductions(compiled, names, symmetry=False, por=True))
    same_verdicts(full, por)
    assert terminal(compiled, full) == terminal(compiled, por)
    assert set(por.states) <= set(full.states)

    # cone-of-influence slicing
    sliced = explore(compiled, names, stop_when_all_violated=False,
                     reductions=make_reductions(compiled, names, symmetry=False, por=False,
                                                slice=True))
    same_verdicts(full, sliced)
    view = slice_view(compiled.flat, names)
    assert {view(s) for s in full.states} == {view(s) for s in sliced.states}

    # two workers: state for state
    two = explore(compiled, names, stop_when_all_violated=False, workers=2)
    assert list(two.states) == list(full.states)
    assert list(two.parent) == list(full.parent)
    assert two.violations == full.violations

    # everything together, one and two workers
    if not refused:
        every = make_reductions(compiled, names, symmetry=True, por=True, slice=True)
        for workers in (1, 2):
            same_verdicts(full, explore(compiled, names, stop_when_all_violated=False,
                                        reductions=every, workers=workers))

    # through check(): lock-order properties are judged by checker.lockdep on the graph
    if not any(p.kind == "lock_order" for p in spec.properties):
        return
    plain = [(r.property, r.verdict) for r in check(spec, name, props).results]
    for kw in ({"symmetry": not refused}, {"por": True}, {"slice": True}, {"workers": 2}):
        assert [(r.property, r.verdict) for r in check(spec, name, props, **kw).results] \
            == plain, kw


def test_the_sweep_exercises_each_reduction() -> None:
    """Guard against a sweep that tests nothing: on the vfio spec symmetry and POR reduce,
    and slicing drops slots when only no_leak is checked."""
    _, builder, params, _ = next(c for c in CASES if c[0] == "vfio-fixed-no_leak")
    spec = build(builder, params)
    compiled = compile_flat(instantiate(spec))
    full = explore(compiled, ["no_leak"], stop_when_all_violated=False)
    for kw in ({"symmetry": True, "por": False}, {"symmetry": False, "por": True}):
        red = explore(compiled, ["no_leak"], stop_when_all_violated=False,
                      reductions=make_reductions(compiled, ["no_leak"], **kw))
        assert len(red.states) < len(full.states), kw
    assert len(relevant_slots(compiled.flat, ["no_leak"])) < len(compiled.flat.slots)
