"""Example specs used by the engine tests: Peterson's mutual exclusion and a broken one.

They double as a tour of the spec language for spec authors.
"""

from checker.expr import Bool, Int, Not
from checker.spec import Spec, SpecBuilder, specification


@specification(variants=("peterson", "naive"))
def build(variant: str = "peterson", rounds: int = 1) -> Spec:
    """Two processes entering a critical section `rounds` times."""
    s = SpecBuilder("mutex", "Peterson's algorithm and a broken test-then-set variant",
                    parameters={"variant": variant, "rounds": rounds}, variant=variant)
    procs = s.index("proc", 2)
    flag = s.array("flag", procs, Bool(), init=False)
    turn = s.var("turn", Int(0, 1), init=0)
    in_cs = s.var("in_cs", Int(0, 2), init=0)
    p = s.process("p", procs)
    left = p.local("left", Int(0, rounds), init=rounds)
    other = 1 - p.self
    if variant == "peterson":
        p.step("set_flag", "peterson: flag[self] = true", guard=left > 0,
               effects={flag[p.self]: True}, goto="set_turn")
        p.step("set_turn", "peterson: turn = other", effects={turn: other}, goto="wait")
        p.step("wait", "peterson: await !flag[other] || turn == self",
               guard=Not(flag[other]) | (turn == p.self), effects={in_cs: in_cs + 1},
               goto="leave")
    else:
        p.step("set_flag", "naive: test other's flag", guard=(left > 0) & Not(flag[other]),
               goto="set_turn")
        p.step("set_turn", "naive: then set own flag", effects={flag[p.self]: True},
               goto="wait")
        p.step("wait", "naive: enter", effects={in_cs: in_cs + 1}, goto="leave")
    p.step("leave", "leave critical section", effects={in_cs: in_cs - 1, flag[p.self]: False,
                                                        left: left - 1}, goto="loop")
    p.step("loop", "loop back", guard=left > 0, goto="set_flag")
    p.step("loop", "finish", guard=left == 0, goto="done")
    s.invariant("mutual_exclusion", in_cs <= 1, "at most one process in the critical section")
    s.final("all_left", in_cs == 0, "nobody is in the critical section at the end")
    s.deadlock_free()
    if variant == "naive":
        s.expect_violated("mutual_exclusion")
    return s.build()

