"""specs/vfio_locked_vm_cache.py with ``mmap_lock="rwsem"``: mmap_lock as the rwsem component.

The atomic form argues that running each mmap_lock section as one step hides nothing
from the accounting properties. The rwsem form checks that argument instead of trusting
it: the same verdicts, the lock-order and deadlock properties on top, and - read off every
explored transition - locked_vm only ever written by the thread holding the writer side,
pins only taken under the reader side. Its counterexamples replay on model/ like the
atomic ones (tests/specs/test_vfio_locked_vm_cache.py replays every committed trace).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from checker.compile import Compiled, compile_flat
from checker.explore import explore
from checker.flat import instantiate
from checker.result import PASS, VIOLATED
from checker.trace import load
from tests.specs.test_vfio_locked_vm_cache import SPEC, TRACES, VARIANTS, checked, module, verdicts

NOSIGNAL = {"fatal_signal": False}


@pytest.mark.parametrize("variant", VARIANTS)
def test_rwsem_form_gives_the_atomic_verdicts_and_no_lock_problem(variant: str) -> None:
    rw = checked(variant, mmap_lock="rwsem", **NOSIGNAL)
    atomic = checked(variant, **NOSIGNAL)
    assert rw.exploration.complete
    got = verdicts(rw)
    assert got.pop("no_lock_inversion") == PASS
    plain = verdicts(atomic)
    lemmas = {k: plain.pop(k) for k in list(plain) if k.startswith("lemma:")}
    assert got == plain
    assert set(lemmas.values()) <= {PASS}  # the rwsem form declares no lemmas (other labels)
    for r in rw.results:
        assert r.verdict == r.expected, f"{variant} {r.property}"


def _slots(compiled: Compiled) -> tuple[int, int, int, list[int]]:
    flat = compiled.flat
    return (flat.var_slots["locked_vm"], flat.var_slots["acc_pinned"],
            flat.var_slots["mmap_lock_writer"], [flat.var_slots["mmap_lock_readers"] + i
                                                 for i in range(2)])


@pytest.mark.parametrize("variant", VARIANTS)
def test_locked_vm_is_written_under_the_writer_and_pins_taken_under_the_reader(
        variant: str) -> None:
    """What the atomic form assumes about the kernel code, checked on every transition."""
    spec = module().build({"variant": variant, "mmap_lock": "rwsem", **NOSIGNAL})
    compiled = compile_flat(instantiate(spec))
    ex = explore(compiled, [])
    locked_vm, acc_pinned, writer, readers = _slots(compiled)
    writes = pins = 0
    for s in ex.states:
        for aid, t in compiled.successors(s):
            tr = compiled.actions[aid].transition
            me = tr.instance
            if t[locked_vm] != s[locked_vm]:
                writes += 1
                assert s[writer] == 1 + me, f"{tr.process} {tr.step.label} writes locked_vm"
            if t[acc_pinned] > s[acc_pinned]:
                pins += 1
                assert s[readers[me]] == 1, f"{tr.process} {tr.step.label} pins unlocked"
    assert writes and pins


RWSEM_TRACES = sorted(TRACES.glob("*-rwsem.itf.json"))


def test_every_gate_violation_has_a_committed_rwsem_trace() -> None:
    from specs.vfio_locked_vm_cache import GATE_VIOLATIONS

    names = {f.name for f in RWSEM_TRACES}
    for variant, props in GATE_VIOLATIONS[frozenset()].items():
        for prop in props:
            assert f"{variant}-{prop}-rwsem.itf.json" in names


@pytest.mark.parametrize("path", RWSEM_TRACES, ids=lambda p: p.name)
def test_rwsem_traces_show_the_lock(path: Path) -> None:
    trace = load(path)
    assert trace.parameters["mmap_lock"] == "rwsem"
    labels = [s.label for s in trace.steps]
    assert any(x.endswith("_locked") for x in labels)
    assert any(x.endswith("_unlock") for x in labels)
    assert any(any(st["mmap_lock_readers"]) or st["mmap_lock_writer"] != "none"
               for st in trace.states), "no state shows mmap_lock held"


def test_a_killed_caller_loses_its_uncharge_behind_a_faulting_vcpu() -> None:
    """Finding 3 with the lock state: the vCPU holds mmap_lock for read, so the caller's
    killable uncharge has to wait, and with SIGKILL pending it returns -EINTR."""
    trace = load(TRACES / "upstream-overaccount_bound-rwsem.itf.json")
    steps = trace.steps
    k = next(i for i, s in enumerate(steps) if s.note == "fatal signal pending")
    assert steps[k].process == "helper[0]"
    assert trace.states[k]["mmap_lock_readers"][2] == 1  # the vCPU (owner 2) holds it
    assert any(s.process == "vcpu[0]" for s in steps[:k])
    assert steps[k + 1].label.endswith("_eintr")


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_rwsem_form_at_the_gate(variant: str) -> None:
    """The gate configuration (SIGKILL on, vCPU faults); CI runs it as a gate step too."""
    c = checked(variant, mmap_lock="rwsem")
    assert c.exploration.complete
    for r in c.results:
        assert r.verdict == r.expected, f"{variant} {r.property}"
        if r.verdict == VIOLATED:
            committed = load(TRACES / f"{variant}-{r.property}-rwsem.itf.json")
            assert r.trace is not None and len(r.trace.steps) == len(committed.steps)


@pytest.mark.parametrize("variant", ["upfront", "fixed"])
def test_runs_through_the_drawn_uncharge_replay_on_the_model(variant: str) -> None:
    """fixed/upfront give back drawn pages in unpin_out with their own vfio_lock_acct: the
    rwsem form makes that a section, the model a step; completed runs through it end with
    the same locked_vm and pins on both."""
    from checker.trace import build_trace, decode_state
    from model.vfio_replay import replay as model_replay

    spec = module().build({"variant": variant, "mmap_lock": "rwsem", **NOSIGNAL})
    compiled = compile_flat(instantiate(spec))
    ex = explore(compiled, [])
    seen = 0
    for sid in range(len(ex.states)):
        if seen == 10:
            break
        last = decode_state(compiled.flat, ex.states[sid])
        if any(pc != "done" for pc in last["helper.pc"]):
            continue
        path = ex.path(sid)
        if not any(compiled.actions[a].transition.step.label == "unpin_drawn_locked"
                   for a, _ in path[1:]):
            continue
        seen += 1
        trace = build_trace(compiled, path, list(ex.states), str(SPEC), None, "run")
        _, out = model_replay(trace)
        assert (out.locked_vm, out.acc_pinned) == (last["locked_vm"], last["acc_pinned"])
    assert seen == 10


@pytest.mark.parametrize(("threads", "form", "declared"), [
    (2, "atomic", False), (3, "atomic", True), (3, "rwsem", False)])
def test_helpers_are_declared_symmetric_where_they_can_be(threads: int, form: str,
                                                           declared: bool) -> None:
    """padata's kworkers are interchangeable (the caller is not, `--symmetry` checks which);
    the rwsem form numbers lock owners, which the checker does not permute."""
    spec = module().build({"variant": "fixed", "threads": threads, "chunks": threads,
                           "mmap_lock": form})
    assert ("helper" in spec.symmetric) is declared
