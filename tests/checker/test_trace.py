"""ITF traces: round trip, validation against the spec, and hostile files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker.cli import main
from checker.compile import compile_flat
from checker.flat import instantiate
from checker.run import check
from checker.trace import TraceError, from_itf, load, replay_on_spec, save, to_itf
from tests.checker.specs_mutex import build as mutex

MUTEX = "tests/checker/specs_mutex.py"


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    c = check(mutex(variant="naive"), MUTEX)
    r = next(x for x in c.results if x.trace is not None)
    return save(r.trace, tmp_path / "t.itf.json")


def test_round_trip_and_itf_shape(saved: Path) -> None:
    raw = json.loads(saved.read_text())
    assert set(raw) == {"#meta", "vars", "states"}
    assert raw["states"][1]["#meta"]["process"] == "p[0]"
    assert raw["states"][1]["#meta"]["kernel"] == "naive: test other's flag"
    t = load(saved)
    assert to_itf(t) == raw
    compiled = compile_flat(instantiate(mutex(variant="naive")))
    states = replay_on_spec(compiled, t)
    assert len(states) == 7


def test_bigint_values_round_trip() -> None:
    raw = {"#meta": {"generator": "mmcheck", "spec": "s", "source": "x.py"},
           "vars": ["w"], "states": [{"#meta": {"index": 0}, "w": {"#bigint": str(2**60)}}]}
    assert from_itf(raw).states[0]["w"] == 2**60


def _mutate(path: Path, f) -> Path:
    raw = json.loads(path.read_text())
    f(raw)
    out = path.with_name("bad.itf.json")
    out.write_text(json.dumps(raw))
    return out


@pytest.mark.parametrize(
    "mutation, message",
    [
        (lambda r: r["states"][2].update(in_cs=1), "state 2: the step p[1] 'set_flag' leads"),
        (lambda r: r["states"][2].update(bogus=1), "unknown variable 'bogus'"),
        (lambda r: r["states"][2].update(turn="one"), "expected an integer, got 'one'"),
        (lambda r: r["states"][2].update(turn=7), "value 7 outside the domain 0..1"),
        (lambda r: r["states"][3]["#meta"].update(step="teleport"), "no step 'teleport'"),
        (lambda r: r["states"][1]["#meta"].update(process="p[1]", step="wait"),
         "not enabled here"),
        (lambda r: r["#meta"].update(generator="apalache"), "not an mmcheck trace"),
        (lambda r: r["#meta"]["parameters"].update(evil="__import__('os')"),
         "parameter 'evil' is not a parameter"),
    ],
)
def test_corrupt_traces_are_rejected_with_one_line(capsys, saved: Path, mutation,
                                                    message: str) -> None:
    bad = _mutate(saved, mutation)
    code = main(["show", str(bad)])
    _, err = capsys.readouterr()
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("content", ["not json {", "[1, 2, 3]", '{"vars": 1}', "\x00\x01"])
def test_garbage_files(capsys, tmp_path: Path, content: str) -> None:
    f = tmp_path / "g.json"
    f.write_text(content)
    assert main(["show", str(f)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_show_and_replay_without_model(capsys, saved: Path) -> None:
    assert main(["show", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "violated: mutual_exclusion" in out
    assert main(["replay", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "final state violates mutual_exclusion" in out
    assert "no model/ replay for this spec" in out


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such file"):
        load(tmp_path / "missing.json")
