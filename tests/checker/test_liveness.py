"""Dead-variable reset (part of `--slice`): which locals are reset, and that nothing changes.

The reference is the unreduced exploration: the reduced one must give the same verdicts
and violation depths, and reach exactly the spec's reachable states once dead locals are
reset (`checker.slicing.slice_view`).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from checker.compile import compile_flat
from checker.explore import explore, make_reductions
from checker.expr import AllOf, Int
from checker.flat import instantiate
from checker.liveness import dead_locals, dead_mask
from checker.spec import Spec, SpecBuilder
from tests.checker.specs_random import random_spec
from tests.checker.test_por_slicing import compare


def worker_spec(threads: int = 2, watch: bool = False, peek: bool = False) -> Spec:
    """Workers add a two-valued draw to a shared sum through a temporary `tmp`.

    `tmp` is written at `draw`, read at `add`, and dead everywhere else, unless a property
    reads it (`watch`) or another worker's guard does (`peek`).
    """
    b = SpecBuilder("workers")
    T = b.index("t", threads)
    total = b.var("total", Int(0, 2 * threads), init=0)
    p = b.process("w", T)
    tmp = p.local("tmp", Int(0, 2), init=0)
    rounds = p.local("rounds", Int(0, 2), init=0)
    guard = AllOf(T, lambda t: tmp[t] < 2) if peek else True
    p.step("draw", "pick one", effects={tmp: 1}, goto="add")
    p.step("draw", "pick two", effects={tmp: 2}, goto="add")
    p.step("add", "add it", guard=guard, effects={total: total + tmp - 1, rounds: rounds + 1},
           goto="loop")
    p.step("loop", "again", guard=rounds < 2, goto="draw")
    p.step("loop", "stop", guard=rounds == 2, goto="done")
    b.final("bounded", total <= 2 * threads)
    if watch:
        b.invariant("tmp_small", AllOf(T, lambda t: tmp[t] <= 2))
    b.deadlock_free()
    return b.build()


def _dead_names(spec: Spec, props: list[str] | None) -> dict[str, set[str]]:
    flat = instantiate(spec)
    labels = flat.spec.groups[0].pc_type.names
    out: dict[str, set[str]] = {}
    for (_, inst), per_label in dead_locals(flat, props).items():
        if inst == 0:
            for code, slots in per_label.items():
                out[labels[code]] = {flat.slots[s].name for s in slots}
    return out


def test_a_temporary_is_dead_where_every_path_writes_it_first() -> None:
    dead = _dead_names(worker_spec(), None)
    assert dead["add"] == set()
    assert dead["draw"] == dead["loop"] == {"w[0].tmp"}
    assert dead["done"] == {"w[0].tmp", "w[0].rounds"}


def test_what_a_property_or_another_instance_reads_is_never_reset() -> None:
    assert _dead_names(worker_spec(watch=True), None)["done"] == {"w[0].rounds"}
    assert _dead_names(worker_spec(watch=True), ["bounded"])["done"] == {
        "w[0].tmp", "w[0].rounds"}
    assert _dead_names(worker_spec(peek=True), None)["done"] == {"w[0].rounds"}


def test_the_reset_merges_states_and_keeps_the_verdicts() -> None:
    full, reduced = compare(worker_spec(3), None)
    assert len(reduced.states) < len(full.states)
    mask = dead_mask(instantiate(worker_spec(3)), None)
    assert len({mask(s) for s in full.states}) == len(reduced.states)


def test_the_reset_goes_with_symmetry_and_por() -> None:
    spec = worker_spec(3)
    compiled = compile_flat(instantiate(spec))
    full = explore(compiled, None, stop_when_all_violated=False)
    red = make_reductions(compiled, None, symmetry=False, por=True, slice=True)
    ex = explore(compiled, None, stop_when_all_violated=False, reductions=red)
    assert ex.complete and set(ex.violations) == set(full.violations)
    assert "locals reset where dead" in red.describe()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec(ghost=True, local=True))
def test_random_specs_with_locals_keep_their_verdicts(spec: Spec) -> None:
    for props in (None, ["fin", "no_deadlock"]):
        compare(spec, props)
