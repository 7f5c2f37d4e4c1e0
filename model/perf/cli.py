"""``python -m model.perf``: table, predict, tradeoff, machines, fit.

Bad input (unknown machine, a number that is not one) prints one ``error:`` line and
exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from model.perf.costs import Params
from model.perf.fit import FIT_ROWS, fit, load_params, save_params
from model.perf.machines import BACKINGS, MachineError, load_machines, machine
from model.perf.predict import PATCHES, Config, predict
from model.perf.report import (
    anomaly,
    compare_intel,
    format_summary,
    format_table,
    format_tradeoff,
    machine_grid,
    summary,
    tradeoff,
)
from model.perf.tables import INTEL, baselines


class UsageError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _pos_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def build_parser() -> Parser:
    p = Parser(prog="python -m model.perf",
               description="Timing model of multithreaded VFIO pinning with the locked_vm cache.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = sub.add_parser("table", help="published tables next to the predictions")
    t.add_argument("--plot", metavar="FILE.png", help="draw speedup vs threads per cache size")
    t.add_argument("--machine", default=INTEL,
                   help="a machine without published results prints predictions only")
    t.add_argument("--jobs", type=_nonneg_int, default=2, help="worker processes")

    pr = sub.add_parser("predict", help="predicted pin time and speedup of one configuration")
    pr.add_argument("--machine", required=True)
    pr.add_argument("--backing", required=True, choices=BACKINGS)
    pr.add_argument("--mem-gib", required=True, type=_pos_float)
    pr.add_argument("--qthr", required=True, type=_nonneg_int)
    pr.add_argument("--threads", required=True, type=_nonneg_int)
    pr.add_argument("--cache-pages", required=True, type=_nonneg_int)
    pr.add_argument("--json", action="store_true", help="one JSON object: pin_s, speedup")
    pr.add_argument("--patch", default="seed", choices=PATCHES,
                    help="test kernel: the RFC as posted (seed) or the checker's fix")

    tr = sub.add_parser("tradeoff", help="speedup vs worst-case overaccounting per cache size")
    tr.add_argument("--machine", default=INTEL)
    tr.add_argument("--backing", default="hugetlb", choices=BACKINGS)
    tr.add_argument("--mem-gib", type=_pos_float, default=360.0)
    tr.add_argument("--qthr", type=_nonneg_int, default=0)
    tr.add_argument("--jobs", type=_nonneg_int, default=2)
    tr.add_argument("--patch", default="seed", choices=PATCHES)

    sub.add_parser("machines", help="list machines and their derived per-page costs")

    f = sub.add_parser("fit", help="refit the parameters on the fit rows (slow)")
    f.add_argument("--max-evals", type=_nonneg_int, default=40)
    f.add_argument("--jobs", type=_nonneg_int, default=2, help="worker processes")
    return p


def cmd_table(args: argparse.Namespace, params: Params) -> int:
    machine(args.machine)
    if args.machine != INTEL:
        return _machine_table(args, params)
    results = compare_intel(params, jobs=max(args.jobs, 1))
    print(f"Predicted vs published pin speedups, {INTEL} (parameters: {params})\n")
    for tr in results:
        print(format_table(tr))
        print()
    print(format_summary(summary(results), len(results)))
    print("\nCache-0 anomaly (8 threads beat 16, 24 and 32 with no cache):")
    print("\n".join(anomaly(results)))
    if args.plot:
        from model.perf.plot import plot_tables

        plot_tables(results, args.plot)
        print(f"\nplot written to {args.plot}")
    return 0


def _machine_table(args: argparse.Namespace, params: Params) -> int:
    base = baselines(args.machine)
    if not base:
        raise UsageError(f"machine {args.machine!r} has no baselines in model/perf/tables.py")
    rows = [(b.backing, b.qthr, b.mem_gib, b.base.pin_s) for b in base]
    preds = machine_grid(args.machine, rows, params, jobs=max(args.jobs, 1))
    print(f"Predicted pin speedups on {args.machine} (no published results to compare)\n")
    for backing, qthr, mem, pin in rows:
        ps = [p for p in preds if (p.config.backing, p.config.qthr, p.config.mem_gib)
              == (backing, qthr, mem)]
        print(f"{backing} qthr={qthr} mem={mem}G  (published base pin {pin:.1f}s, "
              f"predicted base {ps[0].base_s:.1f}s)")
        for p in sorted(ps, key=lambda p: p.pin_s):
            print(f"  {p.config.cache_pages:7d} {p.config.threads:3d}  "
                  f"{p.speedup:5.1f}x {p.pin_s:8.2f}s")
        print()
    return 0


def cmd_predict(args: argparse.Namespace, params: Params) -> int:
    cfg = Config(args.machine, args.backing, args.mem_gib, args.qthr, args.threads,
                 args.cache_pages, args.patch)
    try:
        p = predict(cfg, params)
    except ValueError as e:
        if isinstance(e, MachineError):
            raise
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps({"pin_s": p.pin_s, "speedup": p.speedup}))
    else:
        how = "extrapolated from a simulated window" if p.extrapolated else "simulated in full"
        print(f"pin {p.pin_s:.3f} s, speedup {p.speedup:.2f}x over the single-thread base "
              f"kernel ({p.base_s:.3f} s); {how} ({p.simulated_units} units of 1 MiB)")
    return 0


def cmd_tradeoff(args: argparse.Namespace, params: Params) -> int:
    machine(args.machine)
    rows = tradeoff(args.machine, args.backing, args.mem_gib, args.qthr, params,
                    jobs=max(args.jobs, 1), patch=args.patch)
    print(format_tradeoff(rows, f"{args.machine}, {args.backing}, {args.mem_gib:g} GiB guest, "
                                f"qthr={args.qthr}, {args.patch}"))
    return 0


def cmd_machines() -> int:
    for name, m in load_machines().items():
        costs = ", ".join(f"{b}: {pp.faulted * 1e9:.1f} ns prefaulted, "
                          f"{pp.unfaulted * 1e9:.1f} ns faulting" for b, pp in m.per_page.items())
        d = m.deep_idle
        idle = (f"deepest idle state {d.name} (exit {d.exit_latency * 1e6:g} us, target "
                f"residency {d.target_residency * 1e6:g} us)" if d else "idle states not described")
        print(f"{name}: {m.sockets}x{m.cores_per_socket}x{m.threads_per_core} CPUs, "
              f"{m.clock_ghz:g} GHz, {m.memory_bandwidth / 1e9:.0f} GB/s peak DRAM; "
              f"per 4 KiB page: {costs}; {idle}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    p, value = fit(load_params(), max_evals=max(args.max_evals, 1),
                   log=lambda s: print(s, flush=True), jobs=max(args.jobs, 1))
    save_params(p, value)
    print(f"fitted on {len(FIT_ROWS)} rows: {p} (loss {value:.4f}); saved")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        params = load_params()
        if args.command == "table":
            return cmd_table(args, params)
        if args.command == "predict":
            return cmd_predict(args, params)
        if args.command == "tradeoff":
            return cmd_tradeoff(args, params)
        if args.command == "machines":
            return cmd_machines()
        return cmd_fit(args)
    except (UsageError, MachineError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
