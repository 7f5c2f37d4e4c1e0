"""Replay a specs/contpte.py trace on the reference implementation in model/.

The trace's schedule drives `model.contpte_refinement.Harness`: a `dispatch` step starts
the core-mm operation the trace chose (on the model thread of the same name), every
other CPU or walker step performs the model accesses that the spec step stands for (one
access, or a whole cmpxchg loop where the spec makes the loop atomic), and an `mmu` step
is the same hardware access or TLB eviction on the model's MMU. The harness evaluates the
spec's properties on the model as it goes; the replay reports those it saw violated and
the model's final PTE words and TLB, named like the trace's variables.
"""

from __future__ import annotations

from typing import Any

from checker.replay import ModelReplay
from checker.spec import Spec
from checker.trace import Trace
from model.contpte import ContPteMm
from model.contpte_callers import LOCKLESS, OpRecord
from model.contpte_refinement import Harness
from model.pte import PteLayout, compact_layout

MACRO: dict[str, tuple[str, ...]] = {
    "tcyr_cmpxchg": ("tcyr_read", "tcyr_cmpxchg"),
    "wp_cmpxchg": ("wp_load", "wp_cmpxchg"),
    "safr_cmpxchg": ("safr_read", "safr_cmpxchg"),
    "gac_ret": ("mm_flush",),
    "clr_ret": ("mm_flush",),
    "mm_flush": ("mm_flush",),
    "tcy_ret": (),
    "get_ret": (),
    "gl_ret": (),
}
"""Spec labels that stand for other (or several) model access sites; others are 1:1."""

BOOKKEEPING = ("idle", "dispatch", "hw")


class ReplayError(Exception):
    """The model cannot follow the trace: the spec and model/ disagree on the code path."""


def _consume(h: Harness, name: str, label: str, log: list[str]) -> None:
    sites = MACRO.get(label, (label,))
    first = None
    while h.busy(name):
        p = h.next_point(name)
        if p is None or p.site not in sites or (first is not None and p.index != first):
            break
        first = p.index if first is None else first
        h.step(name)
        log.append(f"{name}: {p}")
    if sites and first is None:
        p = h.next_point(name)
        raise ReplayError(f"{name} at spec label {label}: the model's next access is "
                          f"{p if p else 'none (operation finished)'}")


def replay_contpte(trace: Trace, spec: Spec) -> ModelReplay:
    """Run the trace's schedule on model/contpte.py and report what the model violates."""
    params = trace.parameters
    C = int(params["cont_ptes"])
    layout = compact_layout(max(1, (C - 1).bit_length()))
    mm = ContPteMm(nr_ptes=C, cont_ptes=C, layout=layout, variant=trace.variant)
    h = Harness(mm)
    log: list[str] = []
    for n, st in enumerate(trace.steps):
        after = trace.states[n + 1]
        name = st.process
        group, inst = name.split("[")[0], int(name.split("[")[1].rstrip("]"))
        if group == "mmu":
            _hardware(h, st.choice, st.note, log, C)
        elif group == "cpu" and st.label == "dispatch":
            rec = OpRecord(str(after["cpu.op"][inst]), int(after["cpu.pg"][inst]),
                           int(after["cpu.nr"][inst]))
            h.start(name, rec)
            log.append(f"{name}: start {rec.kind}({rec.start}, nr={rec.nr})")
        elif group == "walker" and st.label == "gl_read":
            h.start(name, OpRecord(LOCKLESS, int(st.choice["page"])))
            log.append(f"{name}: start ptep_get_lockless({st.choice['page']})")
            _consume(h, name, "gl_read", log)
        elif st.label not in BOOKKEEPING:
            _consume(h, name, st.label, log)
    final: dict[str, Any] = {"pte": list(mm.words)}
    tlb = mm.table.tlb
    final["tlb_page"] = [_cached(layout, [e.word for e in tlb.entries
                                          if e.size == 1 and e.start == p]) for p in range(C)]
    final["tlb_blk"] = _cached(layout, [e.word for e in tlb.entries if e.size == C])
    return ModelReplay(set(h.violations), final,
                       log + [f"violated {k}: {v}" for k, v in h.violations.items()])


def _cached(layout: PteLayout, words: list[int]) -> str:
    """The spec's TLB slot value for the model's entry (none, ro, clean or dirty)."""
    if not words:
        return "none"
    w = words[0]
    if not w & layout.rdonly:
        return "dirty"
    return "clean" if w & layout.write else "ro"


def _hardware(h: Harness, choice: dict[str, Any], note: str, log: list[str], C: int) -> None:
    if "slot" in choice:
        slot = int(choice["slot"])
        start, size = (0, C) if slot == C else (slot, 1)
        if not h.evict(start, size):
            raise ReplayError(f"no TLB entry at slot {slot} to evict")
        log.append(f"mmu: evict TLB slot {slot}")
        return
    page, write = int(choice["page"]), note == "write"
    ev = h.hw(page, write)
    log.append(f"mmu: {'store' if write else 'load'} page {page}: {ev.outcome}")
