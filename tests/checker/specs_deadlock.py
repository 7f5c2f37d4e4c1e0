"""Example spec: two threads taking two mutexes, in opposite orders (ABBA) or the same."""

from checker.expr import Int
from checker.spec import LockDecl, LockOp, Spec, SpecBuilder, specification


@specification(variants=("abba", "ordered"))
def build(variant: str = "abba") -> Spec:
    """ABBA deadlock between two mutexes (thread 1 reverses the order unless 'ordered')."""
    s = SpecBuilder("abba", parameters={"variant": variant}, variant=variant)
    T = s.index("thread", 2)
    owner = {"A": s.var("owner_a", Int(-1, 1), init=-1), "B": s.var("owner_b", Int(-1, 1),
                                                                     init=-1)}
    p = s.process("t", T)
    for tid in T:
        first, second = ("A", "B") if variant == "ordered" or tid == 0 else ("B", "A")
        mine = p.self == tid
        p.step("take1", f"mutex_lock({first})", note=f"thread {tid}",
               guard=mine & (owner[first] == -1), effects={owner[first]: p.self}, goto="take2",
               locks=(LockOp(first, "acquire"),))
        p.step("take2", f"mutex_lock({second})", note=f"thread {tid}",
               guard=mine & (owner[second] == -1), effects={owner[second]: p.self},
               goto="release", locks=(LockOp(second, "acquire"),))
    p.step("release", "mutex_unlock(both)", effects={owner["A"]: -1, owner["B"]: -1}, goto="done",
           locks=(LockOp("A", "release"), LockOp("B", "release")))
    s.deadlock_free()
    s.final("released", (owner["A"] == -1) & (owner["B"] == -1), "both mutexes free at the end")
    if variant == "abba":
        s.expect_violated("no_deadlock")
    for name, var in owner.items():
        s.lock(LockDecl(name, "mutex", {"t": var == p.self}))
    return s.build()
