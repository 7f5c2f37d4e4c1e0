"""The compiled successor function against a naive interpreter of the expression layer.

Random small specs (hypothesis) must reach exactly the same states through the generated
Python code as through `checker.expr.evaluate` applied transition by transition.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from checker.compile import SpecRuntimeError, compile_flat
from checker.explore import Limits, explore
from checker.expr import (
    BV,
    INT,
    Bool,
    ChoiceRef,
    Const,
    Expr,
    Int,
    Max,
    Min,
    Not,
    Param,
    SlotSelect,
    evaluate,
    ite,
    rebuild,
)
from checker.flat import Flat, instantiate
from checker.spec import Choice, Spec, SpecBuilder


def naive_reachable(flat: Flat) -> set[tuple[int, ...]]:
    """Breadth-first search using only `evaluate`: the reference semantics."""
    init = flat.initial_state()
    seen, todo = {init}, [init]
    params = flat.params
    while todo:
        s = todo.pop()
        for t in flat.transitions:
            if s[t.pc_slot] != t.pc_from:
                continue
            doms = [[(c.name, v) for v in c.type.values()] for c in t.choices]
            for combo in itertools.product(*doms):
                ch = dict(combo)

                def sub(n: Expr, ch: dict[str, int] = ch) -> Expr | None:
                    if isinstance(n, ChoiceRef):
                        return Const(ch[n.name], n.sort)
                    if isinstance(n, Param):
                        return Const(params[n.name], INT)
                    if isinstance(n, SlotSelect):
                        return SlotSelect(n.base, n.size, rebuild(n.idx, sub), n.name, n.type)
                    return None

                if not evaluate(rebuild(t.guard, sub), s):
                    continue
                new = list(s)
                for tgt, val in t.updates:
                    v = evaluate(rebuild(val, sub), s)
                    if isinstance(tgt, SlotSelect):
                        new[tgt.base + evaluate(rebuild(tgt.idx, sub), s)] = v
                    else:
                        new[tgt.index] = v
                nt = tuple(new)
                if nt not in seen:
                    seen.add(nt)
                    todo.append(nt)
    return seen


@st.composite
def random_spec(draw: st.DrawFn) -> Flat:
    """Two or three processes over a few small globals, an array and a bit-vector."""
    b = SpecBuilder("random")
    n = draw(st.integers(2, 3))
    T = b.index("t", n)
    x = b.var("x", Int(0, 3), init=draw(st.integers(0, 3)))
    f = b.var("f", Bool(), init=draw(st.booleans()))
    w = b.var("w", BV(4), init=draw(st.integers(0, 15)))
    arr = b.array("arr", T, Int(0, 2), init=0)
    k = b.const("k", draw(st.integers(1, 2)))
    p = b.process("p", T)
    loc = p.local("loc", Int(0, 2), init=0)
    ch = Choice("c", Int(0, 1))
    ints = [x, loc, arr[p.self], k, arr[x % n], Const(1, INT)]
    labels = ["a", "b", "c"]
    for lab in labels:
        for _ in range(draw(st.integers(1, 2))):
            i1, i2 = draw(st.sampled_from(ints)), draw(st.sampled_from(ints))
            gk = draw(st.integers(0, 4))
            guard = [i1 < i2, i1 == i2, f, Not(f) | (loc == 0), (w & 3) != 0][gk]
            ek = draw(st.integers(0, 5))
            eff = [
                {x: Min(i1 + i2, 3)},
                {f: Not(f), loc: Max(0, Min(2, i1 - 1))},
                {w: (w << 1) ^ (w >> 3)},
                {arr[p.self]: ite(ch.ref == 1, 2, 0), x: (x + ch.ref) % 4},
                {arr[x % n]: Min(2, loc + 1)},
                {w: w + 5, f: w.bit(0)},
            ][ek]
            goto = draw(st.sampled_from(labels + ["done"]))
            p.step(lab, "random step", guard=guard, effects=eff, goto=goto,
                   choose=ch if ek == 3 else ())
    b.invariant("x_small", x <= 3)
    b.deadlock_free()
    return instantiate(b.build())


MAX_STATES = 20_000


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.filter_too_much])
@given(random_spec())
def test_compiled_engine_matches_naive_interpreter(flat: Flat) -> None:
    """(Specs with more than MAX_STATES states are skipped: the naive interpreter needs
    minutes for them, and hypothesis's derandomized CI profile draws a few.)"""
    compiled = compile_flat(flat)
    ex = explore(compiled, limits=Limits(max_states=MAX_STATES))
    assume(ex.complete)
    assert set(ex.states) == naive_reachable(flat)


def overflow_spec() -> Spec:
    """A counter that steps past its domain: a spec runtime error at x = 3."""
    b = SpecBuilder("overflow")
    x = b.var("x", Int(0, 2), init=0)
    p = b.process("p")
    p.step("inc", "x++", effects={x: x + 1}, goto="inc")
    b.invariant("ok", x >= 0)
    return b.build()


def oob_spec() -> Spec:
    """A walk that indexes past its array: a spec runtime error at i = 3."""
    b = SpecBuilder("oob")
    i = b.var("i", Int(0, 5), init=0)
    a = b.array("a", b.index("n", 3), Int(0, 1), init=0)
    p = b.process("p")
    p.step("walk", "a[i] = 1; i++", guard=i < 5, effects={a[i]: 1, i: i + 1}, goto="walk")
    return b.build()


def test_out_of_domain_assignment_is_a_spec_error() -> None:
    compiled = compile_flat(instantiate(overflow_spec()))
    with pytest.raises(SpecRuntimeError, match=r"process p\[0\]: step inc .*assigns 3 to x"):
        explore(compiled)


def test_dynamic_index_out_of_range_is_a_spec_error() -> None:
    compiled = compile_flat(instantiate(oob_spec()))
    with pytest.raises(SpecRuntimeError, match="out of range for a"):
        explore(compiled)
