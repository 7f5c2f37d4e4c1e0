"""The command line as a user meets it: verbs, formats, exit codes, one-line errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from checker.cli import main

MUTEX = "tests/checker/specs_mutex.py"
ABBA = "tests/checker/specs_deadlock.py"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_is_the_default_verb_and_prints_the_table(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, MUTEX, "--trace-dir", str(tmp_path))
    assert code == 0
    assert "mutual_exclusion" in out and "VIOLATED" in out
    assert "4. p[0]" in out and "in_cs: 0 -> 1" in out
    assert (tmp_path / "mutex-naive-mutual_exclusion-explicit.itf.json").exists()


def test_json_format_shape(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "check", MUTEX, "--format", "json", "--trace-dir", str(tmp_path))
    assert code == 0
    data = json.loads(out)
    rows = data["results"]
    assert len(rows) == 6
    keys = {"spec", "variant", "parameters", "property", "engine", "expected", "verdict",
            "states", "transitions", "seconds", "trace"}
    assert all(keys <= set(r) for r in rows)
    bad = [r for r in rows if r["verdict"] == "VIOLATED"]
    assert len(bad) == 1 and Path(bad[0]["trace"]).exists()
    assert bad[0]["parameters"] == {"variant": "naive", "rounds": 1}


def test_junit_format(capsys, tmp_path: Path) -> None:
    out_file = tmp_path / "r.xml"
    code, _, _ = run(capsys, MUTEX, "--format", "junit", "--out", str(out_file),
                     "--trace-dir", str(tmp_path))
    assert code == 0
    root = ET.fromstring(out_file.read_text())
    cases = root.findall(".//testcase")
    assert len(cases) == 6 and not root.findall(".//failure")


def test_unexpected_verdict_exits_1(capsys, tmp_path: Path) -> None:
    spec = tmp_path / "wrong.py"
    spec.write_text(Path(MUTEX).read_text().replace(
        's.expect_violated("mutual_exclusion")', 'pass'))
    code, out, _ = run(capsys, str(spec), "--trace-dir", str(tmp_path))
    assert code == 1
    assert "UNEXPECTED" in out


def test_incomplete_exits_3(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, MUTEX, "--variant", "peterson", "-p", "rounds=3",
                       "--max-states", "10", "--trace-dir", str(tmp_path), "--format", "json")
    assert code == 3
    rows = json.loads(out)["results"]
    assert {r["verdict"] for r in rows} == {"INCOMPLETE"}
    assert all(r["states"] == 10 and r["reason"] == "state limit 10" for r in rows)


def test_property_and_variant_selection(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, MUTEX, "--variant", "naive", "--property", "all_left",
                       "--format", "json", "--trace-dir", str(tmp_path))
    assert code == 0
    rows = json.loads(out)["results"]
    assert [(r["variant"], r["property"]) for r in rows] == [("naive", "all_left")]


def test_list(capsys) -> None:
    code, out, _ = run(capsys, "list", MUTEX)
    assert code == 0
    assert "rounds: int = 1" in out
    assert "expected [naive]: mutual_exclusion=VIOLATED" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nope.py"], "nope.py: no such file"),
        ([MUTEX, "-p", "bogus=1"], "unknown parameter 'bogus'"),
        ([MUTEX, "-p", "rounds=many"], "parameter rounds expects int, got 'many'"),
        ([MUTEX, "--variant", "fast"], "unknown variant 'fast'"),
        ([MUTEX, "--property", "liveness"], "no property named 'liveness'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv: list[str], message: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_spec_that_does_not_import(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "broken.py"
    bad.write_text("from checker.spec import specification\nraise RuntimeError('boom')\n")
    code, _, err = run(capsys, str(bad))
    assert code == 2
    assert "broken.py: does not import: RuntimeError: boom" in err
    with pytest.raises(Exception, match="boom"):
        main([str(bad), "--debug"])


def test_out_of_domain_at_run_time(capsys, tmp_path: Path) -> None:
    spec = tmp_path / "dom.py"
    spec.write_text(
        "from checker.expr import Int\n"
        "from checker.spec import SpecBuilder, specification\n"
        "@specification()\n"
        "def build(limit: int = 2):\n"
        "    s = SpecBuilder('dom')\n"
        "    x = s.var('x', Int(0, limit))\n"
        "    p = s.process('worker')\n"
        "    p.step('inc', 'atomic_inc(x)', effects={x: x + 1}, goto='inc')\n"
        "    s.invariant('ok', x >= 0)\n"
        "    return s.build()\n")
    code, _, err = run(capsys, str(spec))
    assert code == 2
    assert "process worker[0]: step inc (atomic_inc(x)): assigns 3 to x" in err


def test_deadlock_report(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, ABBA, "--trace-dir", str(tmp_path))
    assert code == 0
    assert "t[0] blocked at take2: mutex_lock(B)" in out
    assert "t[1] blocked at take2: mutex_lock(A)" in out


def test_ill_sorted_expression_in_builder_is_one_line(capsys, tmp_path: Path) -> None:
    spec = tmp_path / "sorts.py"
    spec.write_text(
        "from checker.expr import Bool, Int\n"
        "from checker.spec import SpecBuilder, specification\n"
        "@specification()\n"
        "def build(n: int = 1):\n"
        "    s = SpecBuilder('sorts')\n"
        "    x = s.var('x', Int(0, 2))\n"
        "    f = s.var('f', Bool())\n"
        "    s.invariant('bad', (x + f) > 0)\n"
        "    return s.build()\n")
    code, _, err = run(capsys, str(spec))
    assert code == 2
    assert "sorts.py: build: + needs integers, got int and bool" in err
    assert "Traceback" not in err
