"""checker.horizon: the alternatives an unrolling offers at depth k lose no run."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from checker.compile import SpecRuntimeError, compile_flat
from checker.expr import BOOL, INT, Const, Int, Op, Slot
from checker.flat import Flat, instantiate
from checker.horizon import BOTH, FALSE, TRUE, AbstractState, hull, join
from checker.load import load_module
from checker.smt import Encoding
from checker.smt_unroll import step_reference
from checker.spec import Spec
from tests.checker.specs_random import random_spec

ROOT = Path(__file__).parent.parent.parent


def within(flat: Flat, k: int) -> list[set[tuple[int, ...]]]:
    """The states reachable within 0..k steps (explicit successors)."""
    compiled = compile_flat(flat)
    layers = [{compiled.initial}]
    seen = set(layers[0])
    for _ in range(k):
        nxt = {t for s in layers[-1] for _aid, t in compiled.successors(s)} - seen
        seen |= nxt
        layers.append(set(seen))
    return layers


def fires(flat: Flat, enc: Encoding, i: int, s: tuple[int, ...]) -> bool:
    """Whether prepared transition i has a successor from s for some choice value."""
    p = enc.prepared[i]
    domains = [list(key[1].values()) for key in p.keys]
    for combo in itertools.product(*domains):
        raw = {key[0]: v for key, v in zip(p.keys, combo, strict=True)}
        try:
            if step_reference(flat, s, p.t, raw, flat.params) is not None:
                return True
        except (SpecRuntimeError, IndexError, ZeroDivisionError):
            continue
    return False


def contains(a: object, v: int) -> bool:
    if a is None:
        return True
    if isinstance(a, frozenset):
        return v in a
    assert isinstance(a, tuple)
    return a[0] <= v <= a[1]


def assert_sound(spec: Spec, depth: int) -> None:
    flat = instantiate(spec)
    enc = Encoding(flat)
    h = enc.horizon()
    for k, states in enumerate(within(flat, depth)):
        allowed = h.allowed(k)
        abstract = h.states[min(k, len(h.states) - 1)]
        for s in states:
            for j, v in enumerate(s):
                assert contains(abstract.values[j], v), (k, flat.slots[j].name, v)
            for i in range(len(enc.prepared)):
                if i not in allowed:
                    assert not fires(flat, enc, i, s), (k, enc.prepared[i].t.step.label)


@given(random_spec(local=True))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_transition_that_fires_within_k_steps_is_offered(spec: Spec) -> None:
    assert_sound(spec, 5)


@given(random_spec(asymmetric=True))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_asymmetric_specs_too(spec: Spec) -> None:
    assert_sound(spec, 5)


def test_vfio_small_configuration_is_sound() -> None:
    mod = load_module(ROOT / "specs" / "vfio_locked_vm_cache.py")
    spec = mod.build({"variant": "seed", "granularity": "batch"})
    assert_sound(spec, 6)


def test_vfio_at_sixteen_helpers_offers_few_alternatives_early() -> None:
    """padata_undo has an alternative per range of completed chunks: none can fire while
    fewer chunks than the range's end were taken."""
    mod = load_module(ROOT / "specs" / "vfio_locked_vm_cache.py")
    spec = mod.build({"variant": "seed", "granularity": "batch", "threads": 16, "chunks": 16})
    enc = Encoding(instantiate(spec))
    h = enc.horizon()
    total = len(enc.prepared)
    early = [len(h.allowed(k)) for k in range(6)]
    assert early == sorted(early)  # within k steps: monotone in k
    assert early[0] == 16  # each helper's first padata_mt_helper call
    assert early[5] < total // 3
    undo = [i for i, p in enumerate(enc.prepared) if p.t.step.label == "padata_undo"]
    assert undo and not set(undo) & h.allowed(5)


def test_abstract_values() -> None:
    x, y = Slot(0, "x", Int(0, 3)), Slot(1, "y", Int(0, 5000))
    a = AbstractState([frozenset({1, 2}), (0, 1000)], {})
    one = Const(1, INT)
    assert a.eval(Op("+", (x, one), INT)) == frozenset({2, 3})
    assert a.eval(Op("<", (y, Const(2000, INT)), BOOL)) == TRUE
    assert a.eval(Op("==", (y, Const(5000, INT)), BOOL)) == FALSE
    assert a.eval(Op("==", (x, one), BOOL)) == BOTH
    assert a.eval(Op("and", (Op("==", (x, Const(3, INT)), BOOL), Op("==", (x, one), BOOL)),
                     BOOL)) == FALSE
    assert a.eval(Op("ite", (Op("<", (y, Const(2000, INT)), BOOL), x, y), INT)) == \
        frozenset({1, 2})
    assert join(frozenset({1}), frozenset({3})) == frozenset({1, 3})
    assert join(frozenset(range(60)), frozenset(range(60, 70))) == (0, 69)
    assert hull(join((0, 5), frozenset({9}))) == (0, 9)
    assert join(None, frozenset({1})) is None
