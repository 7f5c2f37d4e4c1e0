"""Random small specs for the reduction tests (hypothesis strategies).

A group of 2-3 interchangeable-looking processes over a few globals, an array indexed by
the group, and a per-instance local; steps and properties are drawn from menus. With
`asymmetric=True` the menus also offer things that single an instance out (`self == 0`,
`arr[0]`, `h.pc(0)`, `x := self`, differing initial values), so the symmetry check must
sort out what it may use. Local-only steps give partial-order reduction something to do.
"""

from __future__ import annotations

from hypothesis import strategies as st

from checker.expr import AllOf, AnyOf, Bool, Count, Int, Max, Min, Not, Sum, ite
from checker.spec import Choice, Spec, SpecBuilder

LABELS = ("a", "b", "c")


@st.composite
def random_spec(draw: st.DrawFn, asymmetric: bool = False, daemon: bool = False,
                local: bool = False, ghost: bool = False) -> Spec:
    """One random spec; `s.symmetric("p")` is always declared (the engine must check it).

    `local=True` draws three steps in four from private-only menus (a second local
    `aux`), so that partial-order reduction has independent steps to work with.
    `ghost=True` adds a counter `g` that only the property "ghost" reads (slicing drops it
    when "ghost" is not checked).
    """
    b = SpecBuilder("random")
    n = draw(st.integers(2, 3))
    T = b.index("t", n)
    x = b.var("x", Int(0, 3), init=draw(st.integers(0, 3)))
    f = b.var("f", Bool(), init=draw(st.booleans()))
    if asymmetric and draw(st.booleans()):
        arr_init: int | list[int] = [draw(st.integers(0, 2)) for _ in T]
    else:
        arr_init = draw(st.integers(0, 2))
    arr = b.array("arr", T, Int(0, 2), init=arr_init)
    p = b.process("p", T)
    loc = p.local("loc", Int(0, 2), init=0)
    me = p.self
    ch = Choice("c", Int(0, 1))
    guards = [
        lambda: loc < 2,
        lambda: loc == 0,
        lambda: x == loc,
        lambda: f,
        lambda: Not(f),
        lambda: arr[me] == 0,
        lambda: AllOf(T, lambda t: arr[t] <= loc),
        lambda: AnyOf(T, lambda t: p.at(t, "c")),
        lambda: x < 3,
    ]
    effects = [
        lambda: ({loc: Min(loc + 1, 2)}, False),
        lambda: ({loc: 0}, False),
        lambda: ({arr[me]: Min(arr[me] + 1, 2)}, False),
        lambda: ({x: Min(x + 1, 3)}, False),
        lambda: ({f: Not(f)}, False),
        lambda: ({x: loc}, False),
        lambda: ({arr[me]: ite(ch.ref == 1, 2, 0), loc: Max(0, loc - 1)}, True),
        lambda: ({x: Min(3, Sum(T, lambda t: arr[t]))}, False),
    ]
    g = b.var("g", Int(0, 3), init=0) if ghost else None
    if g is not None:
        effects += [lambda: ({g: Min(g + loc, 3), loc: Min(loc + 1, 2)}, False),
                    lambda: ({g: Min(3, x + Sum(T, lambda t: arr[t])), f: Not(f)}, False)]
    if asymmetric:
        guards += [lambda: me == 0, lambda: arr[0] == 1, lambda: p.at(0, "b"),
                   lambda: loc[n - 1] == 1]
        effects += [lambda: ({x: me}, False), lambda: ({arr[0]: 1}, False)]
    aux = p.local("aux", Int(0, 2), init=0) if local else None
    local_guards = [lambda: loc < 2, lambda: aux == loc, lambda: aux < 2, lambda: loc == 0]
    local_effects = [
        lambda: ({loc: Min(loc + 1, 2)}, False),
        lambda: ({aux: Min(aux + 1, 2), loc: 0}, False),
        lambda: ({aux: ite(ch.ref == 1, loc, 0)}, True),
        lambda: ({loc: aux}, False),
    ]
    for lab in LABELS:
        for _ in range(draw(st.integers(1, 2))):
            private = local and draw(st.integers(0, 3)) < 3
            gm = local_guards if private else guards
            em = local_effects if private else effects
            guard = gm[draw(st.integers(0, len(gm) - 1))]()
            eff, choice = em[draw(st.integers(0, len(em) - 1))]()
            goto = draw(st.sampled_from(LABELS + ("done",)))
            p.step(lab, "random step", guard=guard, effects=eff, goto=goto,
                   choose=ch if choice else ())
    if daemon:
        d = b.process("env", 1, daemon=True)
        d.step("tick", "environment flips f", guard=x < 3, effects={f: Not(f)}, goto="tick")
    invariants = [
        lambda: Sum(T, lambda t: arr[t]) <= draw(st.integers(1, 2 * n)),
        lambda: Not(AllOf(T, lambda t: loc[t] == 2)),
        lambda: Not(AllOf(T, lambda t: loc[t] == 1)),
        lambda: Count(T, lambda t: arr[t] == 1) <= 1,
        lambda: x != 2,
        lambda: Count(T, lambda t: p.at(t, "b")) <= 1,
        lambda: f | (x <= 2),
    ]
    finals = [
        lambda: x <= draw(st.integers(0, 3)),
        lambda: AllOf(T, lambda t: arr[t] != 1),
        lambda: Not(f),
    ]
    if asymmetric:
        invariants.append(lambda: arr[0] <= 1)
        finals.append(lambda: loc[0] == 0)
    b.invariant("inv", invariants[draw(st.integers(0, len(invariants) - 1))]())
    b.final("fin", finals[draw(st.integers(0, len(finals) - 1))]())
    b.deadlock_free()
    if g is not None:
        b.invariant("ghost", g <= draw(st.integers(1, 3)))
    b.symmetric("p")
    return b.build()
