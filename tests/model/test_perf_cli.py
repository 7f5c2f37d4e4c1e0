"""python -m model.perf: commands, JSON output, bad input, the report helpers."""

from __future__ import annotations

import json

import pytest

from model.perf.cli import build_parser, main
from model.perf.costs import Params
from model.perf.fit import FIT_ROWS, fit_rows, is_fit_row, load_params
from model.perf.report import TRADEOFF_CACHES, TRADEOFF_THREADS, format_tradeoff, tradeoff
from model.perf.tables import INTEL_TABLES

SMALL = ["--machine", "intel-skylake-8167m", "--backing", "hugetlb", "--mem-gib", "2.5",
         "--qthr", "16"]


def test_predict_json_has_pin_s_and_speedup(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", *SMALL, "--threads", "4", "--cache-pages", "65536", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"pin_s", "speedup"}
    assert out["pin_s"] > 0 and 1.0 < out["speedup"] <= 4.5


def test_predict_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", *SMALL, "--threads", "0", "--cache-pages", "0"]) == 0
    out = capsys.readouterr().out
    assert "speedup 1.00x" in out and "simulated in full" in out


@pytest.mark.parametrize("argv, message", [
    (["predict", "--machine", "vax", "--backing", "thp", "--mem-gib", "16", "--qthr", "0",
      "--threads", "8", "--cache-pages", "0"], "unknown machine 'vax'"),
    (["predict", *SMALL, "--threads", "eight", "--cache-pages", "0"], "not a whole number"),
    (["predict", *SMALL, "--threads", "-1", "--cache-pages", "0"], "must be >= 0"),
    (["predict", "--machine", "amd-milan-7j13", "--backing", "thp", "--mem-gib", "1",
      "--qthr", "0", "--threads", "8", "--cache-pages", "0"], "below 4G"),
    (["predict", *SMALL, "--threads", "8"], "required"),
    (["table", "--machine", "vax"], "unknown machine"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_machines_lists_both(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["machines"]) == 0
    out = capsys.readouterr().out
    assert "intel-skylake-8167m" in out and "amd-milan-7j13" in out
    intel, amd = out.splitlines()
    assert "C6 (exit 133 us, target residency 600 us)" in intel
    assert "idle states not described" in amd


def test_fit_rows_are_few_and_published() -> None:
    rows = fit_rows()
    assert len(rows) == len(FIT_ROWS) <= 8
    total = sum(len(t.rows) for t in INTEL_TABLES)
    held = sum(1 for t in INTEL_TABLES for r in t.rows if not is_fit_row(t, r))
    assert held == total - len(FIT_ROWS)


def test_fit_takes_a_worker_count() -> None:
    # a refit on a shared machine runs on one process (fit --jobs 1)
    assert build_parser().parse_args(["fit", "--jobs", "1"]).jobs == 1
    assert build_parser().parse_args(["fit"]).jobs == 2


def test_saved_params_load() -> None:
    p = load_params()
    assert isinstance(p, Params) and 0 < p.out_frac < 1 and p.wake_us > 0


def test_tradeoff_pairs_speedup_with_the_overaccounting_bound() -> None:
    rows = tradeoff("intel-skylake-8167m", "hugetlb", 2.25, 16, Params(), jobs=1)
    assert len(rows) == len(TRADEOFF_CACHES) * len(TRADEOFF_THREADS)
    for cache, threads, pred, over in rows:
        assert over == threads * cache
        assert pred.speedup > 0
    text = format_tradeoff(rows, "tiny")
    assert "| 65536 |" in text and "4 GiB" in text  # 16 threads x 65536 pages x 4 KiB


def test_fixed_patch_bounds_overaccounting_by_one_cache(
        capsys: pytest.CaptureFixture[str]) -> None:
    rows = tradeoff("intel-skylake-8167m", "hugetlb", 2.25, 16, Params(), jobs=1, patch="fixed")
    assert rows and all(over == cache for cache, _, _, over in rows)
    assert 0 not in {cache for cache, _, _, _ in rows}  # fixed charges through its cache
    assert main(["predict", *SMALL, "--threads", "4", "--cache-pages", "32768", "--patch",
                 "fixed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["speedup"] > 1.0
    assert main(["predict", *SMALL, "--threads", "4", "--cache-pages", "0", "--patch",
                 "nope"]) == 2
