"""model/vfio.py and its simulated mm, padata and scheduler, case by case.

The cases are the kernel behaviours the spec relies on: __account_locked_vm's limit,
GUP stopping at PFNMAP and faulting pages and at a pending SIGKILL, vfio_pin_pages_remote's
runs and batches, the four variants on clean runs, the documented counterexamples on
hand-written schedules, and the scheduler's own contract.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from model.locks import EINTR
from model.mm import (
    EFAULT,
    ENOMEM,
    MmStruct,
    PageKind,
    Task,
    __account_locked_vm,
    parse_layout,
    pin_user_pages_remote,
)
from model.schedule import Blocked, ScheduleError, Scheduler, Step, Yield
from model.vfio_run import SIGKILL, Outcome, StepFaults, VfioConfig, VfioRun
from model.vfio_variants import VARIANTS, variant

# ---------------------------------------------------------------- mm


def mm_with(layout: str, locked: int = 0, limit: int = 10) -> MmStruct:
    mm = MmStruct.from_layout(layout, locked, limit)
    mm.tasks[0] = Task(0, killable=True)
    mm.tasks[1] = Task(1, killable=False)
    return mm


def test_account_locked_vm_refuses_what_exceeds_the_limit() -> None:
    mm = mm_with("NN", locked=2, limit=3)
    t = mm.tasks[0]
    assert mm.mmap_lock.down_write(0)
    assert __account_locked_vm(mm, 2, True, t, False) == -ENOMEM
    assert mm.locked_vm == 2
    assert __account_locked_vm(mm, 1, True, t, False) == 0
    assert __account_locked_vm(mm, 5, True, t, True) == 0  # CAP_IPC_LOCK bypasses
    assert __account_locked_vm(mm, 9, False, t, False) == 0
    assert mm.locked_vm == -1  # the kernel would WARN and wrap: the model shows it


def test_account_locked_vm_needs_the_write_lock() -> None:
    mm = mm_with("N")
    with pytest.raises(Exception, match="not the writer"):
        __account_locked_vm(mm, 1, True, mm.tasks[0], False)


def test_gup_stops_at_pfnmap_and_faulting_pages() -> None:
    mm = mm_with("NPRNF")
    pages: list = []
    assert pin_user_pages_remote(mm, 0, 5, mm.tasks[1], pages) == 2
    assert [p.index for p in pages] == [0, 1]
    assert pin_user_pages_remote(mm, 2, 1, mm.tasks[1], pages) == -EFAULT  # PFNMAP vma
    assert pin_user_pages_remote(mm, 3, 2, mm.tasks[1], pages) == 1
    assert pin_user_pages_remote(mm, 4, 1, mm.tasks[1], pages) == -EFAULT
    assert [p.pinned for p in mm.pages] == [1, 1, 0, 1, 0]


def test_gup_sees_sigkill_only_in_the_caller() -> None:
    mm = mm_with("NN")
    mm.tasks[0].fatal_signal = mm.tasks[1].fatal_signal = True
    pages: list = []
    assert pin_user_pages_remote(mm, 0, 2, mm.tasks[0], pages) == -EINTR
    assert pin_user_pages_remote(mm, 0, 2, mm.tasks[1], pages) == 2  # a kworker


def test_layout_breaks_make_pfn_holes() -> None:
    pages = parse_layout("NN|N")
    assert [k for k, _ in pages] == [PageKind.NORMAL] * 3
    assert pages[1][1] + 1 != pages[2][1]
    with pytest.raises(ValueError, match="layout letter 'X'"):
        parse_layout("NX")


# ---------------------------------------------------------------- clean runs


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_clean_run_pins_maps_and_charges_every_normal_page(name: str, threads: int) -> None:
    layout = "NNRP|NNPN|RNNN"
    cfg = VfioConfig(name, threads, 3, 4, cache_pages=2, batch_pages=3, limit_pages=100,
                     initial_locked=5, layout=layout)
    out = VfioRun(cfg).run_random(seed=threads)
    assert out.finished and out.ret == 0
    normal = layout.count("N")
    assert out.locked_vm == 5 + normal == 5 + out.acc_pinned
    assert out.mapped_left == 12
    assert out.pins_left == normal + layout.count("P")
    assert out.violated <= ({"overaccount_bound"} if name == "upfront" else set())


def test_the_cache_takes_the_writer_lock_less_often() -> None:
    layout = "|".join(["NN"] * 32)  # 2-page physical runs, as with small folios
    runs = {}
    for name in VARIANTS:
        cfg = VfioConfig(name, 4, 8, 8, cache_pages=8, batch_pages=4, limit_pages=1000,
                         initial_locked=0, layout=layout)
        runs[name] = VfioRun(cfg).run_random(seed=3).metrics["mmap_write_acquisitions"]
    assert runs["upstream"] == 32  # one vfio_lock_acct per run at out:
    assert runs["seed"] <= 8 + 8  # a refill (and a release) per chunk
    assert runs["fixed"] <= 64 // 8 + 2  # one refill per cache-full, job-wide


def test_rlimit_failure_undoes_everything() -> None:
    cfg = VfioConfig("upstream", 2, 2, 2, limit_pages=2, initial_locked=1, layout="NNNN")
    out = VfioRun(cfg).run_random(seed=1)
    assert out.ret == -ENOMEM and out.pins_left == 0 and out.mapped_left == 0
    assert out.locked_vm == 1 and not out.violated  # 4 pages never fit: not spurious


# ---------------------------------------------------------------- the counterexamples


def run(cfg: VfioConfig, schedule: list[int | str], labels: list[str | None],
        faults: StepFaults | None = None) -> Outcome:
    return VfioRun(cfg, faults).run_steps(schedule, labels)  # type: ignore[arg-type]


def test_seed_leaks_the_drawn_page_when_the_next_gup_faults() -> None:
    cfg = VfioConfig("seed", layout="NFRR", limit_pages=4, initial_locked=1)
    sched = [0, 0, 0, 0, 0, 0, 0, 1, 0]
    labels = ["helper", "refill", "gup", "page", "gup", "release", "helper", "helper", "wait"]
    out = run(cfg, sched, labels)
    assert out.finished and out.ret == -EFAULT
    assert out.locked_vm == 2 and out.acc_pinned == 0
    assert out.violated == {"no_leak"}


def test_fixed_gives_the_drawn_page_back() -> None:
    cfg = VfioConfig("fixed", layout="NFRR", limit_pages=4, initial_locked=1)
    out = VfioRun(cfg).run_random(seed=0)
    assert out.ret == -EFAULT and out.locked_vm == 1 and not out.violated


def test_seed_spurious_enomem_from_another_helpers_cache() -> None:
    cfg = VfioConfig("seed", layout="NRNN", limit_pages=4, initial_locked=1)
    sched = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    labels = ["helper", "refill", "gup", "page", "gup", "page", "out", "refill", "helper",
              "refill", "gup", "page", "page"]
    out = run(cfg, sched, labels)
    assert out.violated == {"no_spurious_enomem"}
    assert out.locked_vm == 4


def test_upstream_loses_an_uncharge_to_sigkill() -> None:
    cfg = VfioConfig("upstream", layout="NPRR", limit_pages=4, initial_locked=1)
    sched = [0, 0, 0, 0, 0, SIGKILL, 0, 0, 1, 0]
    labels = ["helper", "gup", "page", "page", "out", None, "unpin_remote", "helper",
              "helper", "wait"]
    # step 4 (out) maps and fails, step 6 (unpin_remote) finds mmap_lock contended
    out = run(cfg, sched, labels, StepFaults(frozenset({4}), frozenset({6})))
    assert out.locked_vm == 2 and out.acc_pinned == 0
    assert out.violated == {"no_leak"}


def test_fixed_uncharges_despite_sigkill() -> None:
    cfg = VfioConfig("fixed", layout="NPRR", limit_pages=4, initial_locked=1)
    run_ = VfioRun(cfg, StepFaults(frozenset(range(40)), frozenset(range(40))))
    run_.mm.tasks[0].fatal_signal = True
    out = run_.run_random(seed=5)
    assert out.ret is not None and out.ret < 0
    assert out.locked_vm == 1 and not out.violated


def test_undo_releases_vpfn_charges_upstream_but_not_fixed() -> None:
    for name, final in (("upstream", -1), ("fixed", 1)):
        cfg = VfioConfig(name, threads=2, chunks=2, layout="PPFR", limit_pages=4,
                         initial_locked=1)
        out = VfioRun(cfg).run_random(seed=2)
        assert out.ret == -EFAULT
        assert out.locked_vm == final, name


# ---------------------------------------------------------------- the scheduler


def ticker(label: str, n: int) -> Generator[Yield, None, None]:
    for i in range(n):
        yield Step(f"{label}{i}")


def test_run_steps_checks_labels_and_finished_threads() -> None:
    sched = Scheduler({"a": ticker("a", 2), "b": ticker("b", 1)})
    sched.run_steps(["a", "b"], ["a0", "b0"])
    with pytest.raises(ScheduleError, match="is at 'a1'"):
        sched.run_step("a", "a7")
    sched.run_step("a", "a1")
    with pytest.raises(ScheduleError, match="has finished"):
        sched.run_step("b")


def blocker() -> Generator[Yield, None, None]:
    yield Step("wait")
    while True:
        yield Blocked("never")


def test_random_run_detects_a_deadlock() -> None:
    log = Scheduler({0: blocker(), 1: blocker()}).run_random(seed=1)
    assert log.deadlock and set(log.blocked) == {0, 1}


def test_random_runs_are_reproducible() -> None:
    cfg = VfioConfig("seed", threads=3, chunks=4, chunk_pages=3, layout="NNNPNNRNNFNN",
                     limit_pages=9)
    a = VfioRun(cfg).run_random(seed=11)
    b = VfioRun(cfg).run_random(seed=11)
    assert a.log.schedule() == b.log.schedule() and a.locked_vm == b.locked_vm


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        variant("nope")
    with pytest.raises(ValueError, match="layout has 3 pages"):
        VfioRun(VfioConfig(layout="NNN"))
    with pytest.raises(ValueError, match="chunks must be at least threads"):
        VfioRun(VfioConfig(threads=3, chunks=2, layout="NNNN"))
