"""Random MAP_DMAs on model/: the spec's properties as assertions, per variant.

Hypothesis draws the sizes (threads, chunks, pages per chunk, cache, batch), the page
layout (normal, reserved, already pinned, faulting pages and physical run breaks), the
limit and initial locked_vm, CAP_IPC_LOCK, a fine-grained schedule seed and the faults
(failing vfio_iommu_map, contended mmap_lock, SIGKILL at a random moment). Every run must

- end (no deadlock), with everything undone on error and everything mapped on success;
- violate only properties the spec does not promise for that variant for every
  parameter assignment (``ALWAYS_HOLD`` in the spec): so ``fixed`` violates nothing,
  ``upfront`` never leaks, nobody breaks ``rlimit``.

The default run is a few hundred examples per variant; the slow-marked one thousands.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.vfio_run import PROPERTIES, RandomFaults, VfioConfig, VfioRun
from specs.vfio_locked_vm_cache import ALWAYS_HOLD

VARIANTS = ("upstream", "seed", "upfront", "fixed")


@dataclass(frozen=True)
class Case:
    config: VfioConfig
    seed: int
    p_map_fail: float
    p_contended: float
    p_sigkill: float


@st.composite
def cases(draw: st.DrawFn, variant: str) -> Case:
    threads = draw(st.integers(1, 4))
    chunks = threads + draw(st.integers(0, 2))
    chunk_pages = draw(st.integers(1, 5))
    pages = chunks * chunk_pages
    kinds = draw(st.lists(st.sampled_from("NNNNRPF"), min_size=pages, max_size=pages))
    breaks = draw(st.lists(st.booleans(), min_size=pages, max_size=pages))
    layout = "".join(k + ("|" if b and i < pages - 1 else "")
                     for i, (k, b) in enumerate(zip(kinds, breaks, strict=True)))
    initial = draw(st.integers(0, 3))
    config = VfioConfig(variant, threads, chunks, chunk_pages,
                        cache_pages=draw(st.integers(1, 4)),
                        batch_pages=draw(st.integers(1, 4)),
                        limit_pages=initial + draw(st.integers(0, pages + 1)),
                        initial_locked=initial, lock_cap=draw(st.booleans()), layout=layout)
    return Case(config, draw(st.integers(0, 2**32 - 1)),
                draw(st.sampled_from([0.0, 0.1, 0.3])), draw(st.sampled_from([0.0, 0.3, 1.0])),
                draw(st.sampled_from([0.0, 0.01, 0.1])))


def check_case(case: Case) -> None:
    cfg = case.config
    run = VfioRun(cfg, RandomFaults(case.seed, case.p_map_fail, case.p_contended))
    out = run.run_random(case.seed, p_sigkill=case.p_sigkill)
    assert "no_deadlock" not in out.violated and out.finished
    promised = ALWAYS_HOLD[cfg.variant]
    assert not (out.violated & promised), (out.violated, cfg)
    assert out.violated <= set(PROPERTIES)
    if out.ret == 0:
        assert out.mapped_left == cfg.pages
        assert out.pins_left == sum(1 for c in cfg.layout if c in "NP")
    else:
        assert out.pins_left == 0 and out.mapped_left == 0
    if not out.violated:
        assert out.locked_vm == cfg.initial_locked + out.acc_pinned


@pytest.mark.parametrize("variant", VARIANTS)
def test_random_runs_keep_the_promised_properties(variant: str) -> None:
    @settings(max_examples=150, deadline=None)
    @given(cases(variant))
    def prop(case: Case) -> None:
        check_case(case)

    prop()


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_thousands_of_random_runs_keep_the_promised_properties(variant: str) -> None:
    @settings(max_examples=3000, deadline=None)
    @given(cases(variant))
    def prop(case: Case) -> None:
        check_case(case)

    prop()


def test_the_fuzzer_finds_the_seed_leak() -> None:
    """The random driver is strong enough to see what the spec reports for seed."""
    seen: set[str] = set()
    for seed in range(400):
        cfg = VfioConfig("seed", 2, 2, 2, cache_pages=1, batch_pages=2, limit_pages=4,
                         initial_locked=1, layout=["NFRR", "NNNN", "NRNN", "PNFN"][seed % 4])
        out = VfioRun(cfg, RandomFaults(seed, 0.1, 0.3)).run_random(seed, p_sigkill=0.05)
        seen |= out.violated
    assert {"no_leak", "no_spurious_enomem"} <= seen
