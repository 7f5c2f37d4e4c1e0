"""Random core-mm call sequences and MMU activity on the contpte model vs the plain table.

A hypothesis RuleBasedStateMachine drives model/contpte_refinement.Harness at the kernel's
real sizes (CONT_PTES = 16, two blocks), sizes the explicit engine cannot reach: every
rule runs one core-mm operation from model/contpte_callers.py and, between any two of its
PTE accesses, lets the MMU load, store or evict, and lets a lockless reader start or
advance. The harness checks the spec's five properties after every access; the merged
code must never violate one, and the faulty variants must be caught.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from model.contpte import ContPteMm
from model.contpte_callers import LOCKLESS, OpRecord
from model.contpte_refinement import Harness

C = 16
NR = 2 * C
ACTS = ("go", "mmu", "go", "evict", "go", "reader")


class ContPteMachine(RuleBasedStateMachine):
    """The contpte layer under random core-mm operations, MMU accesses and lockless reads."""

    variant = "contpte"
    C = C
    NR = NR

    @initialize()
    def setup(self) -> None:
        self.h = Harness(ContPteMm(nr_ptes=self.NR, cont_ptes=self.C, variant=self.variant))

    # ------------------------------------------------------------ helpers
    def present(self, i: int) -> bool:
        return self.h.plain.entries[i] is not None

    def writable(self, i: int) -> bool:
        e = self.h.plain.entries[i]
        return e is not None and e.write

    def hot_page(self, data: Any) -> int:
        """A page for the MMU: often the one the kernel is about to access (contention)."""
        p = self.h.next_point("cpu")
        if p is not None and data.draw(st.booleans(), label="hot"):
            return p.index
        return data.draw(st.integers(0, self.NR - 1), label="page")

    def interleave(self, data: Any) -> None:
        """What may happen before the next access: MMU, eviction, or the lockless reader."""
        while True:
            act = data.draw(st.sampled_from(ACTS), label="between")
            if act == "go":
                return
            if act == "mmu":
                self.h.hw(self.hot_page(data), data.draw(st.booleans(), label="w"))
            elif act == "evict" and self.h.mm.table.tlb.entries:
                e = data.draw(st.sampled_from(self.h.mm.table.tlb.entries), label="evict")
                self.h.evict(e.start, e.size)
            elif self.h.busy("reader"):
                self.h.step("reader")
            else:
                page = data.draw(st.integers(0, self.NR - 1), label="rpage")
                self.h.start("reader", OpRecord(LOCKLESS, page))

    def op(self, data: Any, kind: str, start: int, nr: int = 1) -> None:
        self.h.start("cpu", OpRecord(kind, start, nr))
        while self.h.busy("cpu"):
            self.interleave(data)
            self.h.step("cpu")
        while self.h.busy("reader") and data.draw(st.booleans(), label="finish reader"):
            self.h.step("reader")

    # ------------------------------------------------------------ core-mm operations
    @rule(data=st.data(), block=st.integers(0, 1), two=st.booleans())
    def map_folio(self, data: Any, block: int, two: bool) -> None:
        start, nr = (0, self.NR) if two else (block * self.C, self.C)
        if not any(self.present(i) for i in range(start, start + nr)):
            self.op(data, "map", start, nr)

    @rule(data=st.data(), i=st.integers(0, NR - 1))
    def map_page(self, data: Any, i: int) -> None:
        i %= self.NR
        if not self.present(i):
            self.op(data, "map1", i)

    @rule(data=st.data(), i=st.integers(0, NR - 1), n=st.integers(1, NR),
          kind=st.sampled_from(["zap1", "zaprange", "clear", "fork"]))
    def batch(self, data: Any, i: int, n: int, kind: str) -> None:
        i %= self.NR
        n = 1 if kind == "zap1" else min(n, self.NR - i)
        ok = self.writable if kind == "fork" else self.present
        if all(ok(j) for j in range(i, i + n)):
            self.op(data, kind, i, n)

    @rule(data=st.data(), i=st.integers(0, NR - 1),
          kind=st.sampled_from(["young", "wprot1", "wpreuse", "get"]))
    def single(self, data: Any, i: int, kind: str) -> None:
        i %= self.NR
        need = {"young": self.present(i), "wprot1": self.writable(i),
                "wpreuse": self.present(i) and not self.writable(i), "get": True}
        if need[kind]:
            self.op(data, kind, i)

    @rule(i=st.integers(0, NR - 1), write=st.booleans())
    def mmu_access(self, i: int, write: bool) -> None:
        self.h.hw(i % self.NR, write)

    @precondition(lambda self: self.h.busy("reader"))
    @rule()
    def reader_step(self) -> None:
        self.h.step("reader")

    @invariant()
    def no_violation(self) -> None:
        assert not self.h.violations, self.h.violations


@pytest.mark.parametrize("examples", [pytest.param(40, id="default"),
                                      pytest.param(2000, marks=pytest.mark.slow, id="slow")])
def test_merged_code_refines_the_plain_page_table(examples: int) -> None:
    run_state_machine_as_test(ContPteMachine, settings=settings(
        max_examples=examples, stateful_step_count=30, deadline=None))


@pytest.mark.parametrize("variant", ["unfold_drops_dirty", "rmw_race", "no_bbm"])
def test_faulty_variants_are_caught(variant: str) -> None:
    """On a table of two 4-entry blocks: the rmw race needs the MMU's store to land
    between a load and a store on a page whose block is otherwise clean (a dirty sibling
    masks the loss), which random runs on 16-entry blocks rarely produce."""
    machine = type(f"Machine_{variant}", (ContPteMachine,),
                   {"variant": variant, "C": 4, "NR": 8})
    with pytest.raises(AssertionError, match="violation|no_lost|bbm|refines"):
        run_state_machine_as_test(machine, settings=settings(
            max_examples=300, stateful_step_count=30, deadline=None, derandomize=True,
            phases=[Phase.generate], database=None))
