"""The SMT engine: verdicts, traces, proofs, counterexamples to induction, errors, queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker.cli import main as cli_main
from checker.compile import SpecRuntimeError, compile_flat
from checker.expr import Int, evaluate
from checker.flat import instantiate
from checker.load import load_module
from checker.query import QueryError, parse_query, run_query
from checker.query import main as query_main
from checker.result import BOUNDED_OK, PROVED, UNKNOWN, VIOLATED
from checker.run import check
from checker.smt import Encoding
from checker.smt_prove import prove_inductive
from checker.smt_run import check_smt
from checker.smt_solve import goals_of
from checker.spec import Choice, Spec, SpecBuilder, SpecError
from checker.trace import encode_state, load, replay_on_spec

HERE = Path(__file__).parent
MUTEX = HERE / "specs_mutex.py"
CACHE = HERE / "specs_smt_cache.py"
ABBA = HERE / "specs_deadlock.py"


def build(path: Path, **params: object) -> Spec:
    mod = load_module(path)
    spec = mod.build(params)
    spec.parameters = {n: params.get(n, p.default) for n, p in mod.parameters.items()}
    return spec


def by_name(results: list) -> dict:
    return {r.property: r for r in results}


# ---------------------------------------------------------------- verdicts and traces


def test_bmc_finds_the_shortest_counterexample_and_it_replays() -> None:
    spec = build(MUTEX, variant="naive")
    r = by_name(check_smt(spec, str(MUTEX), depth=8))["mutual_exclusion"]
    assert r.verdict == VIOLATED and r.engine == "smt"
    assert r.trace is not None and len(r.trace) == 6
    assert r.trace.witness == {"in_cs": 2}
    states = replay_on_spec(compile_flat(instantiate(spec)), r.trace)
    assert states[-1][instantiate(spec).var_slots["in_cs"]] == 2


def test_cli_saves_a_trace_that_show_and_replay_accept(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    code = cli_main(["check", str(MUTEX), "--engine", "smt", "--variant", "naive",
                     "--depth", "12", "--trace-dir", str(tmp_path), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    rows = {r["property"]: r for r in out["results"]}
    assert rows["mutual_exclusion"]["verdict"] == VIOLATED
    assert rows["all_left"]["verdict"] == PROVED  # every run ends within 10 steps
    path = Path(rows["mutual_exclusion"]["trace"])
    assert load(path).extra["engine"] == "smt"
    assert cli_main(["show", str(path)]) == 0
    assert cli_main(["replay", str(path)]) == 0


def test_a_short_bound_is_only_bounded_ok(capsys: pytest.CaptureFixture) -> None:
    spec = build(MUTEX, variant="peterson")
    r = by_name(check_smt(spec, str(MUTEX), depth=3))["mutual_exclusion"]
    assert r.verdict == BOUNDED_OK and r.depth == 3
    assert "at most 3 steps" in r.reason
    assert cli_main(["check", str(MUTEX), "--engine", "smt", "--variant", "peterson",
                     "--depth", "3"]) == 3  # expected PASS, only bounded: inconclusive
    capsys.readouterr()


def test_deadlock_is_found_like_the_explicit_engine() -> None:
    spec = build(ABBA, variant="abba")
    r = by_name(check_smt(spec, str(ABBA), depth=6))["no_deadlock"]
    e = by_name(check(spec, str(ABBA)).results)["no_deadlock"]
    assert r.verdict == VIOLATED and e.verdict == VIOLATED
    assert r.trace is not None and e.trace is not None and len(r.trace) == len(e.trace) == 2
    ok = by_name(check_smt(build(ABBA, variant="ordered"), str(ABBA), depth=6, prove=True))
    assert ok["no_deadlock"].verdict == PROVED


def test_deadlock_with_a_large_choice_domain_eliminates_the_choice() -> None:
    def spec(start: int) -> Spec:
        s = SpecBuilder("wide", parameters={"start": start})
        x = s.var("x", Int(0, 1000), init=start)
        p = s.process("p", 1)
        n = Choice("n", Int(0, 1000))
        p.step("wait", "wait for a matching n", choose=n,
               guard=(n.ref + x == 500) & (n.ref <= 10), effects={x: n.ref}, goto="done")
        s.deadlock_free()
        return s.build()

    assert by_name(check_smt(spec(0), "wide", depth=2))["no_deadlock"].verdict == VIOLATED
    assert by_name(check_smt(spec(495), "wide", depth=2))["no_deadlock"].verdict == PROVED
    assert by_name(check(spec(0), "wide").results)["no_deadlock"].verdict == VIOLATED


def test_lock_order_is_left_to_the_explicit_engine() -> None:
    s = SpecBuilder("lo")
    p = s.process("p", 1)
    p.step("a", "nothing", goto="done")
    s.lock_order()
    r = by_name(check_smt(s.build(), "lo", depth=1))["no_lock_inversion"]
    assert r.verdict == UNKNOWN and "--engine explicit" in r.reason


# ---------------------------------------------------------------- proofs


def test_looping_spec_is_proved_for_every_cache_size() -> None:
    spec = build(CACHE, variant="correct", threads=3)
    rs = by_name(check_smt(spec, str(CACHE), depth=4, prove=True, symbolic=["cache"]))
    for name in ("exact", "overaccount"):
        assert rs[name].verdict == PROVED, rs[name].reason
        assert "for all cache in [1, 64]" in rs[name].reason
        assert rs[name].extra["symbolic"] == {"cache": [1, 64]}
    assert all(r.verdict == PROVED for r in rs.values() if r.kind == "lemma")


def test_symbolic_violation_reports_the_constants_and_replays(tmp_path: Path) -> None:
    spec = build(CACHE, variant="split")
    rs = by_name(check_smt(spec, str(CACHE), depth=4, prove=True, symbolic=["cache"]))
    assert rs["overaccount"].verdict == PROVED
    r = rs["exact"]
    assert r.verdict == VIOLATED and r.trace is not None
    cache = r.trace.extra["constants"]["cache"]
    assert 1 <= cache <= 64 and r.trace.parameters["cache"] == cache
    rebuilt = build(CACHE, variant="split", cache=cache)
    replay_on_spec(compile_flat(instantiate(rebuilt)), r.trace)


def test_failed_induction_shows_a_counterexample_to_induction() -> None:
    spec = build(CACHE, variant="correct", lemmas=False)
    enc = Encoding(instantiate(spec))
    proved, ctis = prove_inductive(enc, goals_of(enc, ["overaccount"], lemmas=False), 30)
    assert not proved
    cti = ctis["overaccount"]
    assert "counterexample to induction" in cti.text and "lemma" in cti.text
    flat = enc.flat
    pre = encode_state(flat, cti.data["pre"], "pre")
    post = encode_state(flat, cti.data["post"], "post")
    prop = flat.properties["overaccount"]
    assert evaluate(prop, pre, flat.params)
    assert cti.data["violates"]
    for what in cti.data["violates"]:  # the property, or a step raising a spec error
        assert what == "overaccount" or what.startswith("no spec error (process worker[")
    assert ("overaccount" in cti.data["violates"]) == (not evaluate(prop, post, flat.params))


def test_unproved_property_keeps_the_bounded_verdict_and_the_cti() -> None:
    spec = build(CACHE, variant="correct", lemmas=False)
    rs = by_name(check_smt(spec, str(CACHE), ["overaccount"], depth=2, prove=True,
                           max_seconds=1))
    r = rs["overaccount"]
    assert r.verdict in (PROVED, BOUNDED_OK)  # Spacer may still find the invariant
    if r.verdict == BOUNDED_OK:
        assert "counterexample to induction" in r.detail and "cti" in r.extra


def test_a_wrong_lemma_is_reported_violated() -> None:
    s = SpecBuilder("badlemma")
    x = s.var("x", Int(0, 3), init=0)
    p = s.process("p", 1)
    p.step("inc", "x++", effects={x: x + 1}, goto="done")
    s.invariant("small", x <= 1)
    s.lemma("zero", x == 0)
    rs = by_name(check_smt(s.build(), "badlemma", depth=3, prove=True))
    assert rs["lemma:zero"].verdict == VIOLATED
    assert rs["small"].verdict == PROVED


# ---------------------------------------------------------------- spec errors


def _overflow() -> Spec:
    s = SpecBuilder("overflow")
    x = s.var("x", Int(0, 2), init=0)
    p = s.process("p", 2)
    p.step("inc", "x++", effects={x: x + 1}, goto="inc2")
    p.step("inc2", "x++ again", effects={x: x + 1}, goto="done")
    s.invariant("true", x >= 0)
    return s.build()


def test_out_of_domain_assignment_is_a_spec_error_in_both_engines() -> None:
    with pytest.raises(SpecRuntimeError, match="assigns 3 to x, outside its domain"):
        check_smt(_overflow(), "overflow", depth=5)
    with pytest.raises(SpecRuntimeError, match="outside its domain"):
        check(_overflow(), "overflow")


def test_symbolic_constant_outside_a_domain_is_a_spec_error() -> None:
    s = SpecBuilder("init")
    c = s.const("c", 1, lo=1, hi=100)
    s.var("x", Int(0, 10), init=c)
    p = s.process("p", 1)
    p.step("a", "nothing", goto="done")
    s.invariant("true", c >= 1)
    spec = s.build()
    assert by_name(check_smt(spec, "init", depth=2))["true"].verdict == PROVED
    with pytest.raises(SpecRuntimeError, match="initial value"):
        check_smt(spec, "init", depth=1, symbolic=["c"])
    with pytest.raises(SpecError, match="not a constant"):
        check_smt(spec, "init", depth=1, symbolic=["nope"])


# ---------------------------------------------------------------- queries


def test_query_parser_builds_expressions_and_rejects_the_rest() -> None:
    flat = instantiate(build(CACHE, threads=2))
    e = parse_query("locked - sum(pinned) + 2*(worker[1].local - -1)", flat)
    state = list(flat.initial_state())
    state[flat.var_slots["locked"]] = 7
    state[flat.var_slots["pinned"] + 1] = 3
    state[flat.local_slots["worker"]["local"] + 1] = 4
    assert evaluate(e, tuple(state), flat.params) == 7 - 3 + 2 * 5
    assert evaluate(parse_query("threads * cache", flat), tuple(state), flat.params) == 4
    assert evaluate(parse_query("max(sum(worker.local), 9) + count(pinned)", flat),
                    tuple(state), flat.params) == 9 + 1
    for bad in ("pinned", "nope + 1", "__import__('os')", "locked +", "locked ** 2",
                "sum(locked)", "worker[0].pc"):
        with pytest.raises(QueryError):
            parse_query(bad, flat)


def test_query_max_is_exact_when_runs_end() -> None:
    res = run_query(build(MUTEX, variant="naive"), str(MUTEX), "in_cs", depth=12)
    assert res.value == 2 and res.verdict == PROVED
    assert res.trace is not None and res.trace.witness == {"in_cs": 2}
    low = run_query(build(MUTEX, variant="peterson"), str(MUTEX), "in_cs", minimize=True,
                    depth=12)
    assert low.value == 0 and low.verdict == PROVED
    top = run_query(build(MUTEX, variant="peterson"), str(MUTEX), "in_cs", depth=12)
    assert top.value == 1


def test_query_max_over_all_cache_sizes_is_proved_with_a_witness() -> None:
    spec = build(CACHE, variant="split", threads=2)
    res = run_query(spec, str(CACHE), "locked - sum(pinned)", depth=3, prove=True,
                    symbolic=["cache"])
    assert res.value == 2 * 64 and res.verdict == PROVED
    assert res.trace is not None and res.trace.extra["constants"] == {"cache": 64}
    flat = instantiate(build(CACHE, variant="split", threads=2, cache=64))
    last = replay_on_spec(compile_flat(flat), res.trace)[-1]
    assert evaluate(parse_query("locked - sum(pinned)", flat), last, flat.params) == 128
    bounded = run_query(spec, str(CACHE), "locked - sum(pinned)", depth=1,
                        symbolic=["cache"])
    assert bounded.value == 64 and bounded.verdict == BOUNDED_OK


def test_query_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = query_main([str(MUTEX), "--variant", "naive", "--max", "in_cs", "--format", "json",
                       "--trace-dir", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["value"] == 2 and out["verdict"] == PROVED
    assert Path(out["trace"]).exists() and out["witness_steps"] == 6
    assert query_main([str(MUTEX), "--max", "nope"]) == 2
    assert "neither a state variable" in capsys.readouterr().err
    assert query_main([str(MUTEX), "--max", "in_cs", "--min", "in_cs"]) == 2


def test_query_is_a_verb_of_the_checker_cli(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    code = cli_main(["query", str(MUTEX), "--variant", "naive", "--max", "in_cs",
                     "--format", "json", "--trace-dir", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["value"] == 2


def test_query_that_cannot_exclude_spec_errors_is_unknown(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A solver that gives up on the spec-error check is an UNKNOWN with what was found,
    not an error exit."""
    import checker.query as query

    calls = []

    def gives_up(*args: object, **kwargs: object) -> bool:
        calls.append(kwargs.get("strict"))
        return len(calls) < 3

    monkeypatch.setattr(query, "check_spec_errors", gives_up)
    res = run_query(build(MUTEX, variant="naive"), str(MUTEX), "in_cs", depth=12)
    assert res.verdict == UNKNOWN and res.value is not None
    assert "spec error within 2 steps" in res.reason and calls == [False] * 3


def test_bounds_grow_by_four_after_eight() -> None:
    from checker.smt_run import schedule

    assert schedule(3) == [0, 1, 2, 3]
    assert schedule(8) == [0, 1, 2, 4, 8]
    assert schedule(22) == [0, 1, 2, 4, 8, 12, 16, 20, 22]


def test_violation_is_reported_when_spec_errors_cannot_be_excluded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Violations are looked for before spec errors are refuted: a solver that gives up on
    the error check still yields the violation, and a property that holds is UNKNOWN with
    how far each search got, never BOUNDED-OK."""
    import checker.smt_run as smt_run
    from checker.smt_run import check_smt

    monkeypatch.setattr(smt_run, "check_spec_errors", lambda *a, **k: False)
    spec = build(MUTEX, variant="naive")
    got = {r.property: r for r in check_smt(spec, str(MUTEX), depth=8)}
    assert got["mutual_exclusion"].verdict == VIOLATED
    assert got["all_left"].verdict == UNKNOWN
    assert "no violation in runs of at most 8 steps" in got["all_left"].reason
    assert "spec errors not excluded" in got["all_left"].reason
