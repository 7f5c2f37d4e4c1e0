"""The benchmark command and the Promela translation it compares against.

No timing is asserted: the tests check that the benchmark runs its configurations, that
reductions change state counts but not verdicts, that it copes without SPIN, and (when
SPIN is installed) that SPIN explores exactly as many states as the unreduced explicit
engine on the generated model - the evidence that the side-by-side compares like with
like.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.promela import to_promela
from benchmarks.specs_counter import build as counter
from checker import bench
from checker.compile import Compiled, compile_flat
from checker.explore import explore
from checker.flat import instantiate
from specs.vfio_locked_vm_cache import build as vfio
from tests.checker.specs_mutex import build as mutex

TINY = bench.Config("locked_vm tiny", bench.VFIO,
                    {"variant": "fixed", "threads": 2, "chunks": 2, "chunk_pages": 1,
                     "cache_pages": 1, "limit_pages": 4}, ["no_leak"])


def test_quick_counter_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--quick", "--no-spin", "--only", "counter"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("counter t=3 r=2")]
    assert len(rows) == 7
    states = {}
    for line in rows:
        # bounded and no_deadlock hold, lost_update does not
        m = re.match(r"(.{34}) (.+?)\s+(PASS/VIOLATED)\s+([\d,]+) ", line)
        assert m is not None, line
        states[m.group(2)] = int(m.group(4).replace(",", ""))
    assert states["none"] == states["por"] == 6663
    assert states["slice"] < states["none"]  # a thread's register is dead once stored
    assert states["symmetry+por+slice"] == states["symmetry+por+slice+2 workers"] == states[
        "symmetry+por+slice+native"] < states["symmetry"] < states["none"]
    assert "machine:" in out and "load average" in out


def test_without_spin_the_benchmark_says_so(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(bench, "configurations", lambda quick: [TINY])
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "skipped: spin or gcc not installed" in out
    assert "locked_vm tiny" in out and "PASS" in out


def spin_states(compiled: Compiled, props: list[str], tmp: Path) -> int:
    (tmp / "m.pml").write_text(to_promela(compiled, props))
    subprocess.run(["spin", "-o2", "-a", "m.pml"], cwd=tmp, check=True, capture_output=True)
    subprocess.run(["gcc", "-O1", "-DSAFETY", "-o", "pan", "pan.c"], cwd=tmp, check=True,
                   capture_output=True)
    out = subprocess.run(["./pan", "-m100000", "-w20"], cwd=tmp, capture_output=True,
                         text=True).stdout
    assert "errors: 0" in out, out
    return int(next(line.split()[0] for line in out.splitlines() if "states, stored" in line))


needs_spin = pytest.mark.skipif(not bench.spin_available(), reason="spin is not installed")


@needs_spin
@pytest.mark.parametrize("name", ["counter", "peterson"])
def test_spin_explores_the_same_states(name: str, tmp_path: Path) -> None:
    spec = counter(threads=3, rounds=2) if name == "counter" else mutex(rounds=2)
    props = ["bounded"] if name == "counter" else ["mutual_exclusion", "all_left"]
    compiled = compile_flat(instantiate(spec))
    assert spin_states(compiled, props, tmp_path) == len(explore(compiled, props).states)


@needs_spin
@pytest.mark.slow
def test_spin_explores_the_same_states_on_locked_vm(tmp_path: Path) -> None:
    spec = vfio(variant="fixed", threads=2, chunks=2, chunk_pages=2, cache_pages=1,
                limit_pages=16, batch_pages=2)
    compiled = compile_flat(instantiate(spec))
    assert spin_states(compiled, ["no_leak"], tmp_path) == len(
        explore(compiled, ["no_leak"]).states)


@needs_spin
def test_spin_finds_the_violation(tmp_path: Path) -> None:
    compiled = compile_flat(instantiate(mutex(variant="naive")))
    (tmp_path / "m.pml").write_text(to_promela(compiled, ["mutual_exclusion"]))
    subprocess.run(["spin", "-a", "m.pml"], cwd=tmp_path, check=True, capture_output=True)
    subprocess.run(["gcc", "-O1", "-DSAFETY", "-o", "pan", "pan.c"], cwd=tmp_path, check=True,
                   capture_output=True)
    out = subprocess.run(["./pan"], cwd=tmp_path, capture_output=True, text=True).stdout
    assert "assertion violated" in out and "errors: 1" in out


def test_reductions_filter_runs_only_those(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--quick", "--no-spin", "--only", "counter",
                       "--reductions", "symmetry"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("counter t=3 r=2")]
    assert len(rows) == 1 and " symmetry " in rows[0]


def test_only_a_lower_bound_without_a_spin_verdict() -> None:
    ours = bench.Row("c", "symmetry", "PASS", 10, 20, 2.0)
    stopped = bench.Row("c", "SPIN", "INCOMPLETE", 99, 200, 5.0, note="memory limit")
    done = bench.Row("c", "SPIN", "PASS", 99, 200, 1.0)
    assert bench.ratio_line(stopped, ours).startswith("ratio: > 2.50x, SPIN gave no verdict")
    assert bench.ratio_line(done, ours).endswith("= 0.50x")


@needs_spin
def test_spin_only_runs_just_spin(monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(bench, "configurations", lambda quick: [TINY])
    monkeypatch.setattr(bench, "run_isolated", lambda *a: pytest.fail("ran mmcheck"))
    assert bench.main(["--quick", "--spin-only"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"locked_vm tiny\s+SPIN\s+PASS", out), out


def test_caller_symmetry_estimate_is_bounded_by_the_group_sizes() -> None:
    """Permuting all three helpers instead of two can merge at most 3!/2! = 3 orbits."""
    from benchmarks.caller_symmetry import count

    now, full, _ = count(["threads=3", "chunks=3"], None)
    assert full < now <= 3 * full


def test_pan_counts_in_exponent_notation_are_read() -> None:
    line = "1.2345678e+08 transitions (= stored+matched)"
    m = re.search(rf"{bench.NUM} transitions", line)
    assert m is not None and bench._count(m.group(1)) == 123_456_780
    assert bench._count("3151837") == 3_151_837 and bench._count(None) == 0
