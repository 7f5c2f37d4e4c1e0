"""The SMT engine against the explicit engine: same states, same verdicts, same errors.

Which comparison is right: the explicit BFS layer k holds the states *first* reached at
depth k; an unrolling of k steps reaches the states reachable in *exactly* k steps, a
different set (a state may be reachable in 2 and in 5 steps). So the test compares

- z3's exactly-k set (all-SAT over s_k of a k-step unrolling) with the k-th image of the
  initial state under the explicit successor function, and
- the union of z3's exactly-j sets for j <= k ("reachable within k") with the union of
  BFS layers 0..k, hence BFS layer k = within(k) - within(k-1).

Verdicts: for every variant and property, explicit VIOLATED <=> SMT VIOLATED with a
counterexample of the same (shortest) length; explicit PASS <=> SMT PROVED (with --prove;
these specs declare the lemmas their proofs need). On random small specs the first depth
at which a step raises a spec error is the same for both engines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import z3
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from checker.compile import Compiled, SpecRuntimeError, compile_flat
from checker.explore import explore
from checker.expr import INT, Bool, Const, Expr, Int, Min, compare, ite
from checker.flat import instantiate
from checker.load import load_module
from checker.result import BOUNDED_OK, PASS, PROVED, UNKNOWN, VIOLATED
from checker.run import check
from checker.smt import Encoding
from checker.smt_run import bmc, check_smt
from checker.smt_solve import Budget
from checker.smt_unroll import Unrolling
from checker.spec import Choice, Spec, SpecBuilder

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SPECS: list[tuple[Path, dict[str, Any]]] = [
    (HERE / "specs_mutex.py", {}),
    (HERE / "specs_smt_cache.py", {"cache": 1}),
    (HERE / "specs_deadlock.py", {}),
    (ROOT / "benchmarks" / "specs_counter.py", {"threads": 2, "rounds": 1}),
]


SLOW_SPECS: list[tuple[Path, dict[str, Any]]] = [
    (HERE / "specs_mutex.py", {"rounds": 2}),  # depth 25: minutes of all-SAT
]


def cases() -> list[Any]:
    out = []
    for path, params in SPECS + SLOW_SPECS:
        mod = load_module(path)
        marks = [pytest.mark.slow] if (path, params) in SLOW_SPECS else []
        for variant in mod.info.variants:
            out.append(pytest.param(path, params | {"variant": variant}, marks=marks,
                                    id=f"{path.stem}-{variant}-{params}"))
    return out


def build(path: Path, params: dict[str, Any]) -> Spec:
    mod = load_module(path)
    spec = mod.build(params)
    spec.parameters = {n: params.get(n, p.default) for n, p in mod.parameters.items()}
    return spec


def bfs_layers(compiled: Compiled) -> list[set[tuple[int, ...]]]:
    ex = explore(compiled, [], stop_when_all_violated=False)
    assert ex.complete
    depth = [0] * len(ex.states)
    layers: list[set[tuple[int, ...]]] = []
    for i, s in enumerate(ex.states):
        if i:
            depth[i] = depth[ex.parent[i]] + 1
        while len(layers) <= depth[i]:
            layers.append(set())
        layers[depth[i]].add(s)
    return layers


def explicit_exact(compiled: Compiled, k: int) -> set[tuple[int, ...]]:
    cur = {compiled.initial}
    for _ in range(k):
        cur = {t for s in cur for _aid, t in compiled.successors(s)}
    return cur


def z3_exact(enc: Encoding, k: int) -> set[tuple[int, ...]]:
    """All-SAT: every state s_k of a k-step run."""
    u = Unrolling(enc)
    for _ in range(k):
        u.extend()
    solver = z3.Solver()
    solver.add(*u.formulas)
    out: set[tuple[int, ...]] = set()
    sk = u.states[k]
    while solver.check() == z3.sat:
        m = solver.model()
        s = enc.decode_state(m, sk)
        out.add(s)
        solver.add(z3.Or(*[v != m.eval(v, model_completion=True) for v in sk]))
    return out


@pytest.mark.parametrize("arith", ["int", "bv"])
@pytest.mark.parametrize(("path", "params"), cases())
def test_reachable_sets_equal_bfs_layers(path: Path, params: dict[str, Any], arith: str) -> None:
    spec = build(path, params)
    flat = instantiate(spec)
    compiled = compile_flat(flat)
    enc = Encoding(flat, arith=arith)
    layers = bfs_layers(compiled)
    within: set[tuple[int, ...]] = set()
    for k in range(len(layers) + 1):
        exact = z3_exact(enc, k)
        assert exact == explicit_exact(compiled, k), f"exactly {k} steps"
        before = set(within)
        within |= exact
        bfs_within = set().union(*layers[:k + 1])
        assert within == bfs_within, f"within {k} steps"
        assert within - before == (layers[k] if k < len(layers) else set()), f"layer {k}"


@pytest.mark.parametrize("arith", ["int", "bv"])
@pytest.mark.parametrize(("path", "params"), cases())
def test_both_engines_give_the_same_verdicts(path: Path, params: dict[str, Any],
                                             arith: str) -> None:
    spec = build(path, params)
    explicit = {r.property: r for r in check(spec, str(path)).results}
    layers = bfs_layers(compile_flat(instantiate(spec)))
    smt = check_smt(spec, str(path), depth=len(layers), prove=True, max_seconds=60,
                    arith=arith)
    by_name = {r.property: r for r in smt}
    assert set(explicit) <= set(by_name)
    for name, e in explicit.items():
        r = by_name[name]
        if e.kind == "lock_order":
            assert r.verdict == UNKNOWN and "explicit" in r.reason
        elif e.verdict == VIOLATED:
            assert r.verdict == VIOLATED, (name, r.reason)
            assert r.trace is not None and e.trace is not None
            assert len(r.trace) == len(e.trace), name
        else:
            assert e.verdict == PASS
            assert r.verdict == PROVED, (name, r.reason, r.detail)
    for r in smt:
        if r.kind == "lemma":
            assert r.verdict == PROVED, (r.property, r.reason)


# ---------------------------------------------------------------- random specs


@st.composite
def random_specs(draw: Any) -> Spec:
    """Two instances of one process over tiny domains: guards, effects, choices, arrays."""
    s = SpecBuilder("random", parameters={}, variant="default")
    x = s.var("x", Int(0, 3), init=draw(st.integers(0, 3)))
    flag = s.var("flag", Bool(), init=draw(st.booleans()))
    T = s.index("t", 2)
    a = s.array("a", T, Int(0, 3), init=draw(st.lists(st.integers(0, 3), min_size=2,
                                                           max_size=2)))
    p = s.process("p", T)
    r = p.local("r", Int(0, 3), init=0)
    n = Choice("n", Int(0, 2))

    def ints(depth: int, choice: bool) -> Expr:
        leaves = [x, r, a[p.self], a[x], a[1 - p.self], Const(1, INT), Const(2, INT)]
        if depth == 0 or draw(st.booleans()):
            return draw(st.sampled_from(leaves + ([n.ref] if choice else [])))
        op = draw(st.sampled_from(["+", "-", "ite", "min"]))
        u, v = ints(depth - 1, choice), ints(depth - 1, choice)
        if op == "ite":
            return ite(bools(depth - 1, choice), u, v)
        if op == "min":
            return Min(u, v)
        return u + v if op == "+" else u - v

    def bools(depth: int, choice: bool) -> Expr:
        if depth == 0 or draw(st.booleans()):
            if draw(st.booleans()):
                return flag == draw(st.booleans())
            return compare(draw(st.sampled_from(["<", "==", "!="])), ints(0, choice),
                           ints(0, choice))
        op = draw(st.sampled_from(["&", "|", "~"]))
        if op == "~":
            return ~bools(depth - 1, choice)
        u, v = bools(depth - 1, choice), bools(depth - 1, choice)
        return u & v if op == "&" else u | v

    labels = ["l0", "l1", "l2"]
    used: set[str] = set()
    targets: set[str] = {"l0"}
    for i in range(draw(st.integers(2, 5))):
        label = "l0" if i == 0 else draw(st.sampled_from(sorted(targets)))
        goto = draw(st.sampled_from(labels + ["done"]))
        choice = draw(st.booleans())
        effects: dict[Any, Any] = {}
        for tgt in draw(st.sets(st.sampled_from(["x", "flag", "mine", "r", "other"]),
                                max_size=2)):
            if tgt == "flag":
                effects[flag] = bools(1, choice)
                continue
            val = ints(2, choice)
            if draw(st.integers(0, 4)) > 0:
                val = val % 4
            ref = {"x": x, "r": r, "mine": a[p.self], "other": a[x]}[tgt]
            if tgt == "other":
                effects = {k: v for k, v in effects.items() if k is not a[p.self]}
            effects[ref] = val
        p.step(label, f"random step {i}", guard=bools(2, choice), effects=effects, goto=goto,
               choose=(n,) if choice else ())
        used.add(label)
        if goto != "done":
            targets.add(goto)
    for lab in sorted(targets - used):
        p.step(lab, "random exit", goto="done")
    s.invariant("inv", compare(draw(st.sampled_from(["<", "==", "!="])), x,
                               a[0] + draw(st.integers(0, 2))) | flag)
    s.final("fin", (x + r[0] + r[1]) % 2 == draw(st.integers(0, 1)))
    s.deadlock_free()
    return s.build()


def first_error_depth(compiled: Compiled) -> tuple[int | None, int]:
    """BFS by layers on the compiled engine: depth of the first state whose expansion
    raises a spec error (None if none), and the number of layers."""
    seen = {compiled.initial}
    layer = [compiled.initial]
    depth = 0
    while layer:
        nxt = []
        for s in layer:
            try:
                succ = compiled.successors(s)
            except SpecRuntimeError:
                return depth, depth + 1
            for _aid, t in succ:
                if t not in seen:
                    seen.add(t)
                    nxt.append(t)
        layer = nxt
        depth += 1
    return None, depth


def _check_random(spec: Spec, arith: str) -> None:
    flat = instantiate(spec)
    compiled = compile_flat(flat)
    err_depth, n_layers = first_error_depth(compiled)
    enc = Encoding(flat, arith=arith)
    if err_depth is not None:
        event("spec error")
        if err_depth > 0:
            bmc(enc, [], err_depth - 1, Budget(60), "random")  # no error before
        with pytest.raises(SpecRuntimeError):
            bmc(enc, [], err_depth, Budget(60), "random")
        return
    explicit = {r.property: r for r in check(spec, "random").results}
    smt = {r.property: r for r in check_smt(spec, "random", depth=n_layers, max_seconds=60,
                                            arith=arith)}
    for name, e in explicit.items():
        r = smt[name]
        if e.verdict == VIOLATED:
            event(f"{e.kind} violated")
            assert r.verdict == VIOLATED, name
            assert r.trace is not None and e.trace is not None
            assert len(r.trace) == len(e.trace), name
        else:
            assert r.verdict in (PROVED, BOUNDED_OK), (name, r.verdict, r.reason)
    layers = bfs_layers(compiled)
    if sum(map(len, layers)) <= 150:
        within: set[tuple[int, ...]] = set()
        for k in range(len(layers)):
            within |= z3_exact(enc, k)
            assert within == set().union(*layers[:k + 1])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_specs(), st.sampled_from(["int", "bv"]))
def test_random_specs_agree(spec: Spec, arith: str) -> None:
    _check_random(spec, arith)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_specs(), st.sampled_from(["int", "bv"]))
def test_random_specs_agree_many(spec: Spec, arith: str) -> None:
    _check_random(spec, arith)
