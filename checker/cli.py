"""`python -m checker`: check, list, show, replay.

Exit codes: 0 every verdict as expected; 1 some verdict differs from its expectation;
2 usage, spec or trace error; 3 some verdict incomplete (a limit cut the search short).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from checker.compile import SpecRuntimeError
from checker.explore import Limits, Stats
from checker.load import LoadError, SpecModule, load_module, parse_overrides, spec_files
from checker.native import NativeUnavailable
from checker.report import render_json, render_junit, render_text, render_trace
from checker.result import Result, exit_code
from checker.spec import SpecError
from checker.trace import TraceError, load, save

VERBS = ("check", "list", "show", "replay", "query", "bench")


class UsageError(Exception):
    """Bad command-line usage."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m checker",
                                description="Model checker for Linux mm concurrency specs.")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="verb")
    c = sub.add_parser("check", help="check specs (default verb)")
    c.add_argument("paths", nargs="+", metavar="SPEC_OR_DIR")
    c.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    c.add_argument("--variant", default="all", help="variant name, or 'all' (default)")
    c.add_argument("--property", action="append", default=None, metavar="P",
                   help="check only this property (repeatable)")
    c.add_argument("--format", choices=("text", "json", "junit"), default="text")
    c.add_argument("--out", type=Path, help="write the report to FILE instead of stdout")
    c.add_argument("--trace-dir", type=Path, default=Path("traces"),
                   help="where counterexamples are saved (default: traces/)")
    c.add_argument("--engine", choices=("explicit", "smt"), default="explicit")
    c.add_argument("--depth", type=int, default=None, help="SMT: bounded depth K")
    c.add_argument("--prove", action="store_true", help="SMT: prove for all depths")
    c.add_argument("--symbolic", default="", help="SMT: comma-separated symbolic constants")
    c.add_argument("--movers", type=int, default=None, metavar="N",
                   help="SMT: search only runs where instances 0..N-1 of each process move "
                   "freely, the rest at most one step (finds violations, proves nothing)")
    c.add_argument("--max-states", type=int, default=None)
    c.add_argument("--max-seconds", type=float, default=None)
    c.add_argument("--max-memory", type=int, default=None, metavar="MIB")
    c.add_argument("--quiet", action="store_true", help="no progress display")
    c.add_argument("--symmetry", action="store_true",
                   help="explicit: one state per orbit of the declared symmetric groups "
                   "(checked; a false declaration is refused)")
    c.add_argument("--por", action="store_true",
                   help="explicit: partial-order reduction (docs/performance.md)")
    c.add_argument("--slice", action="store_true",
                   help="drop variables outside the checked properties' cone of influence "
                   "(explicit: docs/performance.md; smt: for the proofs, docs/smt.md)")
    c.add_argument("--workers", type=int, default=1, metavar="N",
                   help="explicit: explore with N processes (same result as 1)")
    c.add_argument("--native", action="store_true",
                   help="explicit: run the search compiled to C, same results, faster "
                   "(needs a C compiler; docs/performance.md)")
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    ls = sub.add_parser("list", help="parameters, variants, properties and expectations")
    ls.add_argument("paths", nargs="+", metavar="SPEC_OR_DIR")
    ls.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    ls.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    sh = sub.add_parser("show", help="render a saved trace")
    sh.add_argument("trace", type=Path)
    sh.add_argument("--no-validate", action="store_true",
                    help="render without checking the trace against its spec")
    sh.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    bn = sub.add_parser("bench", help="benchmark the explorer and its reductions",
                        add_help=False)
    bn.add_argument("rest", nargs=argparse.REMAINDER)
    rp = sub.add_parser("replay", help="replay a trace on the spec and on model/")
    rp.add_argument("trace", type=Path)
    rp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and first not in VERBS:
        argv.insert(argv.index(first), "check")
    if first in ("bench", "query"):  # their own argument parsers (checker.bench, .query)
        return _extension(first, argv)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code not in (0, None) else 0
    if args.verb is None:
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False)
    try:
        if args.verb == "check":
            return cmd_check(args)
        if args.verb == "list":
            return cmd_list(args)
        if args.verb == "show":
            return cmd_show(args)
        if args.verb == "replay":
            return cmd_replay(args)
        return _extension(args.verb, argv)
    except (LoadError, SpecError, SpecRuntimeError, TraceError, UsageError,
            NativeUnavailable) as e:
        if debug:
            raise
        print(f"mmcheck: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmcheck: interrupted", file=sys.stderr)
        return 3
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # reader went away
        return 0


def _extension(verb: str, argv: list[str]) -> int:
    """Verbs provided by optional engines (query: SMT; bench: benchmarks)."""
    import importlib

    modname = {"query": "checker.query", "bench": "checker.bench"}[verb]
    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError:
        raise UsageError(f"the '{verb}' verb is not available in this build") from None
    rest = argv[argv.index(verb) + 1:]
    return int(mod.main(rest))


def _variants(mod: SpecModule, requested: str, overrides: dict[str, Any]) -> list[str | None]:
    if "variant" not in mod.parameters:
        if requested not in ("all", "default"):
            raise UsageError(f"{mod.source}: has no variants, --variant {requested} given")
        return [None]
    if "variant" in overrides:
        return [overrides["variant"]]
    if requested == "all":
        return list(mod.info.variants)
    if requested not in mod.info.variants:
        raise UsageError(f"{mod.source}: unknown variant {requested!r} "
                         f"(known: {', '.join(mod.info.variants)})")
    return [requested]


class _Progress:
    """Live progress on a terminal's stderr; the engines only call it with statistics."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.label = ""

    def __call__(self, st: Stats) -> None:
        if self.enabled:
            sys.stderr.write(f"\r{self.label}: {st.states:,} states, depth {st.depth}, "
                             f"{st.rate:,.0f} states/s, {st.peak_memory_mib:,.0f} MiB   ")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()


def cmd_check(args: argparse.Namespace) -> int:
    from checker.run import check

    limits = Limits(args.max_states, args.max_seconds, args.max_memory)
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.native and args.workers > 1:
        raise UsageError("--native runs one process: drop --workers")
    show_progress = sys.stderr.isatty() and not os.environ.get("CI") and not args.quiet
    prog = _Progress(show_progress)
    results: list[Result] = []
    interrupted = False
    for path in spec_files(args.paths):
        mod = load_module(path, str(path))
        overrides = parse_overrides(mod, args.param)
        for variant in _variants(mod, args.variant, overrides):
            params = dict(overrides)
            if variant is not None:
                params["variant"] = variant
            spec = mod.build(params)
            if args.property:
                for name in args.property:
                    spec.property(name)
            prog.label = f"{spec.name} [{spec.variant}]"
            if args.engine == "smt":
                results += _smt(spec, mod.source, args)
            else:
                checked = check(spec, mod.source, args.property, limits, prog,
                                symmetry=args.symmetry, por=args.por,
                                workers=args.workers, slice=args.slice,
                                native=args.native)
                if args.symmetry or args.por or args.slice:
                    print(f"{prog.label}: {checked.exploration.reductions.describe()}",
                          file=sys.stderr)
                if args.native:
                    print(f"{prog.label}: native: the search ran compiled to C",
                          file=sys.stderr)
                prog.done()
                results += checked.results
                if checked.exploration.stop_reason.startswith("interrupted"):
                    interrupted = True
            if interrupted:
                break
        if interrupted:
            break
    for r in results:
        if r.trace is not None:
            name = f"{r.spec}-{r.variant}-{r.property}-{r.engine}.itf.json"
            r.trace_path = save(r.trace, args.trace_dir / name)
    if args.format == "json":
        text = render_json(results)
    elif args.format == "junit":
        text = render_junit(results)
    else:
        text = render_text(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    if interrupted:
        print("mmcheck: interrupted: partial statistics above", file=sys.stderr)
        return 3
    return exit_code(results)


def _smt(spec: Any, source: str, args: argparse.Namespace) -> list[Result]:
    try:
        from checker.smt_run import check_smt
    except ModuleNotFoundError:
        raise UsageError("the SMT engine is not available in this build") from None
    symbolic = [s for s in args.symbolic.split(",") if s]
    return check_smt(spec, source, args.property, depth=args.depth, prove=args.prove,
                     symbolic=symbolic, max_seconds=args.max_seconds, slice=args.slice,
                     movers=args.movers)


def cmd_list(args: argparse.Namespace) -> int:
    for path in spec_files(args.paths):
        mod = load_module(path, str(path))
        overrides = parse_overrides(mod, args.param)
        print(f"{mod.source}")
        if mod.info.doc:
            print("  " + mod.info.doc.splitlines()[0])
        print("  parameters:")
        for p in mod.parameters.values():
            print(f"    {p.name}: {p.type_name} = {p.default!r}")
        print("  variants: " + ", ".join(mod.info.variants))
        for variant in _variants(mod, "all", overrides):
            params = dict(overrides)
            if variant is not None:
                params["variant"] = variant
            spec = mod.build(params)
            if variant is None or variant == mod.info.variants[0]:
                print("  properties:")
                for prop in spec.properties:
                    print(f"    {prop.name} ({prop.kind}): {prop.doc}")
            exp = ", ".join(
                f"{n}={'VIOLATED' if v else 'PASS'}" if v is not None else f"{n}=-"
                for n, v in spec.expected.items())
            print(f"  expected [{variant or 'default'}]: {exp}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from checker.replay import build_for_trace, locate_spec

    trace = load(args.trace)
    if not args.no_validate:
        from checker.compile import compile_flat
        from checker.flat import instantiate
        from checker.trace import replay_on_spec

        mod = load_module(locate_spec(trace, args.trace), trace.source)
        spec = build_for_trace(mod, trace, str(args.trace))
        replay_on_spec(compile_flat(instantiate(spec)), trace)
    print(render_trace(trace))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from checker.replay import replay

    trace = load(args.trace)
    rep = replay(trace, args.trace)
    print(render_trace(trace))
    print()
    print(f"spec replay: {len(trace.steps)} steps re-executed, every state matches; "
          f"final state {'violates' if rep.spec_violates else 'does NOT violate'} "
          f"{trace.property}")
    if rep.model is None:
        print("model replay: this spec has no reference-implementation replay")
    else:
        for line in rep.model.log:
            print(f"  model: {line}")
        print("model replay: violates " + (", ".join(sorted(rep.model.violated)) or "nothing")
              + "; final " + ", ".join(f"{k}={v}" for k, v in rep.model.final.items()))
        for d in rep.disagreements:
            print(f"DISAGREEMENT: {d}")
    if rep.agrees and rep.model is None:
        print("replay: the spec reproduces the failure (no model/ replay for this spec)")
        return 0
    if rep.agrees:
        print("replay: spec and model agree on the failure")
        return 0
    return 1
