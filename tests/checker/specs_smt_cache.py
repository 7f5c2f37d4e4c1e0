"""Test spec for the SMT engine: per-thread page caches charged to a shared counter.

A miniature of the vfio locked_vm cache pattern: threads loop forever, refilling a local
cache by charging `cache` pages to `locked`, pinning a nondeterministic number of cached
pages, and unpinning them. In variant `split` the uncharge comes one step after the unpin,
so `exact` breaks transiently while `overaccount` still holds. The loop never ends, so
only induction or Spacer can prove properties for all depths; `cache` is a constant the
SMT engine may leave symbolic. `symmetric=True` declares the workers interchangeable
and states the per-thread lemmas once over all threads (AllOf), so the declaration holds;
with per-thread lemmas (the default) a declaration would be refused.
"""

from checker.expr import AllOf, Int, Sum
from checker.spec import Choice, Spec, SpecBuilder, specification

CACHE_HI = 64


@specification(variants=("correct", "split"))
def build(variant: str = "correct", threads: int = 2, cache: int = 2,
          lemmas: bool = True, symmetric: bool = False, declare: bool = False) -> Spec:
    """Looping threads with a charged page cache (SMT engine tests).

    declare: declare the symmetry even with per-thread lemmas (a refused declaration)."""
    s = SpecBuilder("smt_cache", __doc__, parameters={
        "variant": variant, "threads": threads, "cache": cache, "lemmas": lemmas,
        "symmetric": symmetric, "declare": declare}, variant=variant)
    T = s.index("thread", threads)
    c = s.const("cache", cache, lo=1, hi=CACHE_HI)
    top = threads * CACHE_HI
    locked = s.var("locked", Int(0, top), init=0)
    pinned = s.array("pinned", T, Int(0, CACHE_HI), init=0)
    h = s.process("worker", T)
    local = h.local("local", Int(0, CACHE_HI), init=0)
    held = h.local("held", Int(0, CACHE_HI), init=0)
    n = Choice("n", Int(1, CACHE_HI))
    h.step("refill", "cache refill: charge a whole cache", guard=local == 0,
           effects={locked: locked + c, local: c}, goto="pin")
    h.step("refill", "cache refill: cache still holds pages", guard=local > 0, goto="pin")
    h.step("pin", "pin n pages from the cache", choose=n, guard=n.ref <= local,
           effects={local: local - n.ref, pinned[h.self]: pinned[h.self] + n.ref}, goto="unpin")
    if variant == "correct":
        h.step("unpin", "unpin and uncharge", effects={locked: locked - pinned[h.self],
                                                       pinned[h.self]: 0}, goto="refill")
    else:
        h.step("unpin", "unpin, remember the count", effects={held: pinned[h.self],
                                                              pinned[h.self]: 0},
               goto="uncharge")
        h.step("uncharge", "uncharge later", effects={locked: locked - held, held: 0},
               goto="refill")
    total = Sum(T, lambda t: pinned[t]) + Sum(T, lambda t: local[t])
    s.invariant("exact", locked == total, "locked counts pinned and cached pages")
    s.invariant("overaccount", locked - Sum(T, lambda t: pinned[t]) <= threads * c,
                "at most threads x cache pages charged but not pinned")
    if symmetric or declare:
        s.symmetric("worker")
    if lemmas:
        s.lemma("charged", locked == total + Sum(T, lambda t: held[t]),
                "every charged page is pinned, cached or about to be uncharged")
    if lemmas and symmetric:
        s.lemma("per_thread", AllOf(T, lambda t: pinned[t] + local[t] + held[t] <= c))
        s.lemma("pinned_when", AllOf(T, lambda t: (pinned[t] == 0) | h.at(t, "unpin")))
        if variant == "split":
            s.lemma("held_when", AllOf(T, lambda t: (held[t] == 0) | h.at(t, "uncharge")))
        else:
            s.lemma("held_unused", AllOf(T, lambda t: held[t] == 0))
    elif lemmas:
        for t in T:
            s.lemma(f"per_thread_{t}", pinned[t] + local[t] + held[t] <= c,
                    "a thread never holds more than one cache's worth")
            s.lemma(f"pinned_when_{t}", (pinned[t] == 0) | h.at(t, "unpin"),
                    "pages stay pinned only until the unpin step")
            if variant == "split":
                s.lemma(f"held_when_{t}", (held[t] == 0) | h.at(t, "uncharge"),
                        "the uncharge count lives only between unpin and uncharge")
            else:
                s.lemma(f"held_unused_{t}", held[t] == 0, "only the split variant uses held")
    if variant == "split":
        s.expect_violated("exact")
    return s.build()
