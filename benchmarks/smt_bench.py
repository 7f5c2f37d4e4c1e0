"""SMT engine at the RFC's real parameters: the time and verdict of each query.

Run on demand: `python benchmarks/smt_bench.py [--only ID ...] [--seconds S]
[--chunk-pages N]`. Every query is the command line a reviewer would type (printed with
its result), run as a subprocess so the time includes loading and encoding; never part
of the test suite.

The configuration (docs/smt.md says why it is sound): specs/vfio_locked_vm_cache.py
with granularity=batch, 16 padata helpers, 16 chunks of `--chunk-pages` pages (32768 by
default; the RFC's range is 32768..262144), vfio_batch of 512 pages
(VFIO_BATCH_MAX_CAPACITY with 4 KiB pages), LOCKED_VM_CACHE_PAGES 65536, and the cache
size, RLIMIT_MEMLOCK and the initial locked_vm left symbolic over ranges that cover every
value (`--symbolic cache_pages,limit_pages,initial_locked`). The `*-movers` queries search
only the runs where helpers 0 and 1 (or 0 alone, `--movers 1`) move and the others at most
finish (docs/smt.md): they can find a violation, never refute one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.explore_speed import machine  # noqa: E402

SPEC = "specs/vfio_locked_vm_cache.py"
SYMBOLIC = "cache_pages,limit_pages,initial_locked"


@dataclass
class Query:
    """One command: `check` (BMC or --prove) or `query --max`, and what the explicit
    engine says at small sizes (the verdict the real-size run should agree with)."""

    ident: str
    verb: str  # "check" or "query"
    variant: str
    args: list[str]
    small: str


def real_params(chunk_pages: int, threads: int = 16) -> list[str]:
    """The RFC's sizes (the concrete values are the defaults of the symbolic constants)."""
    params = {"granularity": "batch", "threads": threads, "chunks": threads,
              "chunk_pages": chunk_pages, "batch_pages": 512, "cache_pages": 65536,
              "limit_pages": threads * chunk_pages, "initial_locked": 0}
    return [a for k, v in params.items() for a in ("-p", f"{k}={v}")]


QUERIES = [
    Query("upfront-bound", "check", "upfront",
          ["--property", "overaccount_bound", "--depth", "8"], "VIOLATED (7 steps)"),
    Query("upfront-enomem", "check", "upfront",
          ["--property", "no_spurious_enomem", "--depth", "6"], "VIOLATED (4 steps)"),
    Query("seed-bound", "check", "seed",
          ["--property", "overaccount_bound", "--depth", "9"], "VIOLATED (9 steps)"),
    Query("seed-enomem", "check", "seed",
          ["--property", "no_spurious_enomem", "--depth", "13"], "VIOLATED (13 steps)"),
    Query("upstream-bound", "check", "upstream",
          ["--property", "overaccount_bound", "--depth", "15"], "VIOLATED (15 steps)"),
    Query("seed-leak", "check", "seed",
          ["--property", "no_leak", "--depth", "12"], "VIOLATED (7 steps)"),
    Query("upstream-leak", "check", "upstream",
          ["--property", "no_leak", "--depth", "12"], "VIOLATED (9 steps)"),
    Query("fixed-bounded", "check", "fixed",
          ["--property", "overaccount_bound", "--property", "no_spurious_enomem",
           "--property", "rlimit", "--depth", "6"], "PASS"),
    Query("fixed-prove", "check", "fixed",
          ["--property", "no_leak", "--property", "overaccount_bound", "--property", "rlimit",
           "--property", "no_spurious_enomem", "--prove", "--depth", "2"], "PASS"),
    Query("seed-bound-movers", "check", "seed",
          ["--property", "overaccount_bound", "--depth", "9", "--movers", "2"],
          "VIOLATED (9 steps)"),
    Query("seed-enomem-movers", "check", "seed",
          ["--property", "no_spurious_enomem", "--depth", "8", "--movers", "2"],
          "VIOLATED (13 steps)"),
    Query("upstream-bound-movers", "check", "upstream",
          ["--property", "overaccount_bound", "--depth", "8", "--movers", "2"],
          "VIOLATED (15 steps)"),
    Query("seed-leak-movers", "check", "seed",
          ["--property", "no_leak", "--depth", "12", "--movers", "2"], "VIOLATED (7 steps)"),
    Query("upstream-leak-movers", "check", "upstream",
          ["--property", "no_leak", "--depth", "12", "--movers", "1"], "VIOLATED (9 steps)"),
    Query("seed-max-excess", "query", "seed",
          ["--max", "locked_vm - initial_locked - acc_pinned - threads * cache_pages",
           "--depth", "10"], "> 0 (overaccount_bound violated)"),
]


def command(q: Query, chunk_pages: int, threads: int, seconds: float) -> list[str]:
    cmd = [sys.executable, "-m", "checker", q.verb, SPEC, "--variant", q.variant,
           *real_params(chunk_pages, threads), "--symbolic", SYMBOLIC,
           "--max-seconds", str(seconds), "--format", "json", "--trace-dir", "traces/smt_bench",
           *q.args]
    if q.verb == "check":
        cmd += ["--engine", "smt", "--quiet"]
    return cmd


def constants(path: str | None) -> str:
    """The symbolic constants' values in a counterexample (from the saved trace)."""
    if not path:
        return ""
    from checker.trace import load

    try:
        found = load(Path(path)).extra.get("constants") or {}
    except (OSError, ValueError):
        return ""
    return " with " + ", ".join(f"{k}={v}" for k, v in found.items()) if found else ""


def summary(q: Query, out: str) -> str:
    """The verdicts (check) or the extremum (query) from the JSON report."""
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        return "no JSON report: " + (out.strip().splitlines() or ["(empty)"])[-1][:200]
    if q.verb == "query":
        return (f"max {data.get('value')} ({data.get('verdict')}, witness "
                f"{data.get('witness_steps')} steps{constants(data.get('trace'))}): "
                f"{data.get('reason', '')}")
    parts = []
    for r in data["results"]:
        what = f"{r['property']}: {r['verdict']}"
        if r.get("trace_length") is not None:
            what += f" ({r['trace_length']} steps)"
        what += constants(r.get("trace"))
        if r["verdict"] not in ("VIOLATED", "PROVED"):
            what += f" [{r.get('reason', '')}]"
        parts.append(what)
    return "; ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", default=None, metavar="ID",
                    help="run only this query (repeatable): " +
                    ", ".join(q.ident for q in QUERIES))
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="--max-seconds for each engine phase (default 60)")
    ap.add_argument("--chunk-pages", type=int, default=32768)
    ap.add_argument("--threads", type=int, default=16,
                    help="padata helpers (and chunks); 16 in the RFC's measurements")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(f"spec {SPEC}: {' '.join(real_params(args.chunk_pages, args.threads))} "
          f"--symbolic {SYMBOLIC}")
    for q in QUERIES:
        if args.only and q.ident not in args.only:
            continue
        cmd = command(q, args.chunk_pages, args.threads, args.seconds)
        t0 = time.monotonic()
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.monotonic() - t0
        print(f"\n{q.ident}: {wall:.1f} s (exit {run.returncode}); small sizes: {q.small}")
        print("  " + " ".join(cmd[1:]).replace(" -p ", " -p ").replace(str(ROOT) + "/", ""))
        print("  -> " + summary(q, run.stdout or run.stderr), flush=True)


if __name__ == "__main__":
    main()
