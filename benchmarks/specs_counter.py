"""Benchmark spec: N threads doing non-atomic increments of a shared counter.

Each thread loads the counter into a register, then stores register+1, `rounds` times:
the classic lost-update race. The state space grows fast with threads and rounds, which
makes it the explorer's speed benchmark; `lost_update` is violated whenever threads > 1.
"""

from checker.expr import Int, Sum
from checker.spec import Spec, SpecBuilder, specification


@specification(variants=("racy",))
def build(variant: str = "racy", threads: int = 3, rounds: int = 2) -> Spec:
    """Non-atomic counter increments (benchmark)."""
    s = SpecBuilder("counter", parameters={"threads": threads, "rounds": rounds},
                    variant=variant)
    T = s.index("thread", threads)
    total = threads * rounds
    x = s.var("x", Int(0, total), init=0)
    p = s.process("t", T)
    reg = p.local("reg", Int(0, total), init=0)
    left = p.local("left", Int(0, rounds), init=rounds)
    p.step("load", "READ_ONCE(counter)", guard=left > 0, effects={reg: x}, goto="store")
    p.step("load", "loop exit", guard=left == 0, goto="done")
    p.step("store", "WRITE_ONCE(counter, reg + 1)", effects={x: reg + 1, left: left - 1},
           goto="load")
    s.invariant("bounded", x <= Sum(T, lambda t: rounds - left[t]), "never more than done")
    s.final("lost_update", x == total, "every increment lands")
    s.deadlock_free()
    s.symmetric("t")
    if threads > 1:
        s.expect_violated("lost_update")
    return s.build()
