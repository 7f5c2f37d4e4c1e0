"""The transcribed tables and the machine descriptions (model/perf/tables.py, machines)."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from model.perf.machines import (
    PAGES_PER_GIB,
    MachineError,
    derive_per_page,
    load_machines,
    machine,
)
from model.perf.tables import (
    AMD,
    AMD_BASELINES,
    INTEL,
    INTEL_SUMMARY,
    INTEL_TABLES,
    SUMMARY_CACHE_PAGES,
    SUMMARY_THREADS,
    baselines,
)


def test_every_intel_table_has_the_full_grid() -> None:
    assert len(INTEL_TABLES) == 12
    keys = {(t.backing, t.qthr, t.mem_gib) for t in INTEL_TABLES}
    assert keys == {(b, q, m) for b in ("hugetlb", "thp") for q in (0, 16) for m in (16, 128, 360)}
    for t in INTEL_TABLES:
        assert t.machine == INTEL
        grid = sorted((r.cache_pages, r.threads) for r in t.rows)
        assert grid == sorted((c, n) for c in (0, 32768, 65536, 131072) for n in (1, 8, 16, 24, 32))


def test_spot_rows_as_published() -> None:
    # A few rows copied by hand from the RFC's "All Data" section, first/last of tables.
    def row(backing: str, qthr: int, mem: int, k: int) -> tuple[int, int, float, float]:
        t = next(t for t in INTEL_TABLES if (t.backing, t.qthr, t.mem_gib) == (backing, qthr, mem))
        r = t.rows[k]
        return r.cache_pages, r.threads, r.pin_speedup, r.pin_s

    assert row("hugetlb", 0, 16, 0) == (65536, 16, 11.2, 0.3)
    assert row("hugetlb", 0, 360, 12) == (0, 8, 3.2, 23.6)
    assert row("hugetlb", 16, 16, 1) == (65536, 32, 6.3, 0.0)
    assert row("thp", 0, 16, 9) == (32768, 8, 5.0, 0.7)
    assert row("thp", 16, 360, 19) == (0, 1, 1.0, 14.3)


def test_speedups_agree_with_the_times() -> None:
    # speedup = base / test; the published times are rounded to 0.1 s.
    for t in INTEL_TABLES:
        for r in t.rows:
            if r.pin_s >= 1.0:
                lo = t.base.pin_s / (r.pin_s + 0.05) - 0.06
                hi = t.base.pin_s / (r.pin_s - 0.05) + 0.06
                assert lo <= r.pin_speedup <= hi, (t.name, r)


def test_summary_matches_the_full_tables() -> None:
    assert len(INTEL_SUMMARY) == 12
    for s in INTEL_SUMMARY:
        t = next(t for t in INTEL_TABLES
                 if (t.backing, t.qthr, t.mem_gib) == (s.backing, s.qthr, s.mem_gib))
        row = next(r for r in t.rows
                   if (r.threads, r.cache_pages) == (SUMMARY_THREADS, SUMMARY_CACHE_PAGES))
        assert (row.pin_speedup, row.pin_s) == (s.pin_speedup, s.pin_s)
        assert t.base == s.base


def test_amd_has_only_baselines() -> None:
    assert len(AMD_BASELINES) == 12
    assert {b.mem_gib for b in AMD_BASELINES} == {16, 128, 980}
    assert baselines(AMD) == AMD_BASELINES
    assert len(baselines(INTEL)) == 12


def test_machines_json_baselines_are_the_published_ones() -> None:
    data = json.loads(resources.files("model.perf").joinpath("machines.json").read_text())
    for name in (INTEL, AMD):
        listed = {(b["backing"], b["qthr"], b["mem_gib"], b["pin_s"])
                  for b in data["machines"][name]["baselines"]}
        published = {(b.backing, b.qthr, b.mem_gib, b.base.pin_s) for b in baselines(name)}
        assert listed == published


def test_recorded_per_page_costs_are_the_derived_ones() -> None:
    data = json.loads(resources.files("model.perf").joinpath("machines.json").read_text())
    for name, m in load_machines().items():
        recorded = data["machines"][name]["per_page_ns"]
        for backing, pp in m.per_page.items():
            assert recorded[backing]["faulted"] == pytest.approx(pp.faulted * 1e9, abs=0.051)
            assert recorded[backing]["unfaulted"] == pytest.approx(pp.unfaulted * 1e9, abs=0.051)


def test_per_page_cost_is_the_least_squares_slope_over_pinned_pages() -> None:
    # Exactly proportional data gives the exact slope; lowmem is subtracted first.
    rows = [{"backing": b, "qthr": q, "mem_gib": m, "pin_s": (m - 2) * PAGES_PER_GIB * k}
            for b in ("hugetlb", "thp") for q, k in ((0, 1e-6), (16, 2e-8)) for m in (16, 128)]
    pp = derive_per_page(rows, 2)
    assert pp["thp"].unfaulted == pytest.approx(1e-6)
    assert pp["hugetlb"].faulted == pytest.approx(2e-8)
    assert pp["hugetlb"].fault == pytest.approx(1e-6 - 2e-8)


def test_unknown_machine_names_the_known_ones() -> None:
    with pytest.raises(MachineError, match="known: amd-milan-7j13, intel-skylake-8167m"):
        machine("sparc")


def test_largest_pin_excludes_lowmem() -> None:
    m = machine(INTEL)
    assert m.pinned_pages(16) == 14 * PAGES_PER_GIB
    assert m.memory_bandwidth == pytest.approx(2 * 6 * 2666e6 * 8)
