"""The z3 translation of expressions against the explicit engine's compiled semantics.

Random well-sorted expressions over int, bool and bit-vector slots, dynamic array reads, a
choice and a constant: in random states, z3's value must equal the compiled code's value,
and z3's definedness must be false exactly where the compiled code raises (index out of
range, division by zero, negative shift) - including the short-circuit and folding rules.
"""

from __future__ import annotations

import contextlib
from typing import Any

import z3
from hypothesis import example, given, settings
from hypothesis import strategies as st

from checker.compile import SpecRuntimeError, _Gen, _oob, fold
from checker.expr import (
    BOOL,
    BVT,
    INT,
    And,
    BoolT,
    ChoiceRef,
    Const,
    Expr,
    Implies,
    IntT,
    Not,
    Op,
    Or,
    Param,
    Slot,
    SlotSelect,
    arith,
    bvop,
    compare,
    evaluate,
    ite,
)
from checker.smt import Translator, as_int, literal, prepare

INT_T = IntT(-2, 5)
BV4 = BVT(4)
SLOTS = [Slot(0, "x0", INT_T), Slot(1, "x1", INT_T), Slot(2, "x2", INT_T),
         Slot(3, "b0", BoolT()), Slot(4, "b1", BoolT()), Slot(5, "v0", BV4),
         Slot(6, "v1", BV4)]
CHOICE = ChoiceRef("c", IntT(0, 3))
PARAM = Param("P", 2, 0, 4)


def _leaf(draw: Any, sort: Any) -> Expr:
    if sort == INT:
        kind = draw(st.sampled_from(["slot", "const", "choice", "param"]))
        if kind == "slot":
            return draw(st.sampled_from(SLOTS[:3]))
        if kind == "choice":
            return CHOICE
        if kind == "param":
            return PARAM
        return Const(draw(st.integers(-3, 6)), INT)
    if sort == BOOL:
        if draw(st.booleans()):
            return draw(st.sampled_from(SLOTS[3:5]))
        return Const(int(draw(st.booleans())), BOOL)
    if draw(st.booleans()):
        return draw(st.sampled_from(SLOTS[5:]))
    return Const(draw(st.integers(0, 15)), BV4)


@st.composite
def exprs(draw: Any, sort: Any = BOOL, depth: int = 3) -> Expr:
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return _leaf(draw, sort)
    sub = lambda s: exprs(s, depth - 1)  # noqa: E731
    if sort == INT:
        op = draw(st.sampled_from(["+", "-", "*", "//", "%", "ite", "select"]))
        if op == "ite":
            return ite(draw(sub(BOOL)), draw(sub(INT)), draw(sub(INT)))
        if op == "select":
            return SlotSelect(0, 3, draw(sub(INT)), "x", INT_T)
        return arith(op, draw(sub(INT)), draw(sub(INT)))
    if sort == BOOL:
        op = draw(st.sampled_from(["and", "or", "not", "=>", "cmp", "bvcmp", "beq", "bit"]))
        if op in ("and", "or"):
            args = draw(st.lists(sub(BOOL), min_size=2, max_size=3))
            return And(*args) if op == "and" else Or(*args)
        if op == "not":
            return Not(draw(sub(BOOL)))
        if op == "=>":
            return Implies(draw(sub(BOOL)), draw(sub(BOOL)))
        if op == "beq":
            return compare(draw(st.sampled_from(["==", "!="])), draw(sub(BOOL)), draw(sub(BOOL)))
        if op == "bit":
            return draw(sub(BV4)).bit(draw(st.integers(0, 3)))
        s = INT if op == "cmp" else BV4
        return compare(draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="])),
                       draw(sub(s)), draw(sub(s)))
    op = draw(st.sampled_from(["&", "|", "^", "~", "+", "-", "*", "<<", ">>", "shint", "ite"]))
    if op == "~":
        return ~draw(sub(BV4))
    if op == "ite":
        return ite(draw(sub(BOOL)), draw(sub(BV4)), draw(sub(BV4)))
    if op == "shint":
        return Op(draw(st.sampled_from(["<<", ">>"])), (draw(sub(BV4)), draw(sub(INT))), BV4)
    if op in ("+", "-", "*"):
        return arith(op, draw(sub(BV4)), draw(sub(BV4)))
    return bvop(op, draw(sub(BV4)), draw(sub(BV4)))


states = st.tuples(st.integers(-2, 5), st.integers(-2, 5), st.integers(-2, 5),
                   st.integers(0, 1), st.integers(0, 1), st.integers(0, 15), st.integers(0, 15))


def compiled_value(e: Expr, state: tuple[int, ...], p: int, c: int) -> int | None:
    """What the explicit engine computes, or None where it raises."""
    try:
        folded = fold(e, {"P": p}, {"c": c})
        ns: dict[str, Any] = {"_oob": _oob}
        exec(f"def f(s):\n    return {_Gen().py(folded)}\n", ns)  # noqa: S102 - test codegen
        return int(ns["f"](state))
    except (SpecRuntimeError, ZeroDivisionError, ValueError):
        return None


def z3_value(e: Expr, state: tuple[int, ...], p: int, c: int) -> int | None:
    tr = Translator({})
    vec = [literal(s.type, v) for s, v in zip(SLOTS, state, strict=True)]
    val, wd = tr.term(prepare(e, {"P": p}), vec, {("c", CHOICE.type): z3.IntVal(c)})
    if not z3.is_true(z3.simplify(wd)):
        assert z3.is_false(z3.simplify(wd))
        return None
    return as_int(z3.simplify(val))


# a pure argument of the absorbing value decides the junction before an undefined one
@example(e=And(Not(compare("==", CHOICE, CHOICE)),
               compare("==", CHOICE, arith("//", CHOICE, CHOICE))),
         state=(0, 0, 0, 0, 0, 0, 0), p=0, c=0)
@settings(max_examples=150, deadline=None)
@given(exprs(BOOL), states,
       st.integers(0, 4), st.integers(0, 3))
def test_bool_expressions_match_the_compiled_engine(e: Expr, state: tuple[int, ...], p: int,
                                                    c: int) -> None:
    assert z3_value(e, state, p, c) == compiled_value(e, state, p, c)


@settings(max_examples=100, deadline=None)
@given(exprs(INT), states, st.integers(0, 4), st.integers(0, 3))
def test_int_expressions_match_the_compiled_engine(e: Expr, state: tuple[int, ...], p: int,
                                                   c: int) -> None:
    want = compiled_value(e, state, p, c)
    assert z3_value(e, state, p, c) == want
    if want is not None:
        sub = fold(e, {"P": p}, {"c": c})
        # evaluate is eager where the compiled code short-circuits: it may raise instead
        with contextlib.suppress(IndexError, ZeroDivisionError, ValueError):
            assert evaluate(sub, state, {"P": p}) == want


@settings(max_examples=100, deadline=None)
@given(exprs(BV4), states, st.integers(0, 4), st.integers(0, 3))
def test_bitvector_expressions_match_the_compiled_engine(e: Expr, state: tuple[int, ...],
                                                         p: int, c: int) -> None:
    assert z3_value(e, state, p, c) == compiled_value(e, state, p, c)


def test_out_of_range_read_is_undefined_only_when_evaluated() -> None:
    x = SLOTS[0]
    sel = SlotSelect(0, 3, x, "x", INT_T)
    guarded = And(compare("<", x, 3), compare("==", sel, 1))
    assert z3_value(guarded, (4, 0, 0, 0, 0, 0, 0), 2, 0) == 0  # short-circuit: defined
    assert z3_value(compare("==", sel, 1), (4, 0, 0, 0, 0, 0, 0), 2, 0) is None
    # an `and` with an argument that reads no state is decided by it first (folding)
    folded = And(compare("==", sel, 1), compare("==", CHOICE, 3))
    assert z3_value(folded, (4, 0, 0, 0, 0, 0, 0), 2, 0) == 0
    assert compiled_value(folded, (4, 0, 0, 0, 0, 0, 0), 2, 0) == 0
    assert z3_value(folded, (4, 0, 0, 0, 0, 0, 0), 2, 3) is None


def test_floor_division_and_modulo_follow_python() -> None:
    x, y = SLOTS[0], SLOTS[1]
    for a in range(-2, 6):
        for b in (-2, -1, 1, 2, 5):
            st_ = (a, b, 0, 0, 0, 0, 0)
            assert z3_value(arith("//", x, y), st_, 2, 0) == a // b
            assert z3_value(arith("%", x, y), st_, 2, 0) == a % b
    assert z3_value(arith("//", x, y), (3, 0, 0, 0, 0, 0, 0), 2, 0) is None
