"""Comparisons and reports: published vs predicted tables, accuracy figures, trade-off.

Accuracy is computed only on the rows that were not used for fitting (``fit.FIT_ROWS``):
per table, Spearman's rho between published and predicted speedups (does the model rank
the (threads, cache) configurations in the published order?) and the absolute error of
the speedup relative to the published one; overall, the median of those errors.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from model.perf.costs import Params
from model.perf.fit import is_fit_row
from model.perf.machines import PAGES_PER_GIB
from model.perf.predict import Config, Prediction, predict_many
from model.perf.tables import INTEL_TABLES, Row, Table

TRADEOFF_CACHES = (0, 32768, 65536, 131072)
TRADEOFF_THREADS = (8, 16, 24, 32)
PUBLISHED_THREADS = (1, 8, 16, 24, 32)


@dataclass(frozen=True)
class RowResult:
    table: Table
    row: Row
    pred: Prediction
    fitted: bool

    @property
    def error(self) -> float:
        """Relative error of the predicted speedup."""
        return abs(self.pred.speedup - self.row.pin_speedup) / self.row.pin_speedup


@dataclass(frozen=True)
class TableResult:
    table: Table
    rows: list[RowResult]

    def held_out(self) -> list[RowResult]:
        return [r for r in self.rows if not r.fitted]

    def spearman(self) -> float:
        from scipy.stats import spearmanr

        held = self.held_out()
        rho = spearmanr([r.row.pin_speedup for r in held], [r.pred.speedup for r in held])
        return float(rho.statistic)

    def median_error(self) -> float:
        return statistics.median(r.error for r in self.held_out())


def config_of(t: Table, r: Row) -> Config:
    return Config(t.machine, t.backing, t.mem_gib, t.qthr, r.threads, r.cache_pages)


def compare_intel(params: Params, jobs: int = 2) -> list[TableResult]:
    """Predict every published Intel row."""
    pairs = [(t, r) for t in INTEL_TABLES for r in t.rows]
    preds = predict_many([config_of(t, r) for t, r in pairs], params, jobs=jobs)
    out: list[TableResult] = []
    for t in INTEL_TABLES:
        rows = [RowResult(tt, r, p, is_fit_row(tt, r))
                for (tt, r), p in zip(pairs, preds, strict=True) if tt is t]
        out.append(TableResult(t, rows))
    return out


def summary(results: list[TableResult]) -> dict[str, float]:
    """Overall accuracy on held-out rows."""
    held = [r for tr in results for r in tr.held_out()]
    rhos = [tr.spearman() for tr in results]
    return {
        "held_out_rows": float(len(held)),
        "median_abs_error_pct": 100 * statistics.median(r.error for r in held),
        "min_spearman": min(rhos),
        "median_spearman": statistics.median(rhos),
        "tables_rho_ge_0_9": float(sum(1 for x in rhos if x >= 0.9)),
    }


def format_table(tr: TableResult) -> str:
    """One published table next to the prediction, in the published row order."""
    t = tr.table
    lines = [f"{t.backing} qthr={t.qthr} mem={t.mem_gib}G  (base pin {t.base.pin_s:.1f}s, "
             f"predicted base {tr.rows[0].pred.base_s:.1f}s)",
             "   cache  thr | published  speedup pin(s) | predicted speedup pin(s) |  error",
             "  ------- --- | ------------------------- | ------------------------ | ------"]
    for r in tr.rows:
        mark = " fit" if r.fitted else ("  ~ " if r.pred.extrapolated else "    ")
        lines.append(f"  {r.row.cache_pages:7d} {r.row.threads:3d} |"
                     f"           {r.row.pin_speedup:5.1f}x {r.row.pin_s:6.1f} |"
                     f"          {r.pred.speedup:5.1f}x {r.pred.pin_s:7.2f} |"
                     f" {100 * r.error:5.1f}%{mark}")
    lines.append(f"  held-out rows: Spearman rho {tr.spearman():+.2f}, "
                 f"median |error| {100 * tr.median_error():.1f}%")
    return "\n".join(lines)


def format_summary(s: dict[str, float], ntables: int) -> str:
    return (f"Held-out Intel rows: {int(s['held_out_rows'])}; median |speedup error| "
            f"{s['median_abs_error_pct']:.1f}%; Spearman rho >= 0.9 in "
            f"{int(s['tables_rho_ge_0_9'])}/{ntables} tables (median rho "
            f"{s['median_spearman']:.2f}, worst {s['min_spearman']:.2f}).\n"
            "Marks: 'fit' = row used for fitting (excluded from the figures); "
            "'~' = extrapolated from a simulated window.")


def anomaly(results: list[TableResult]) -> list[str]:
    """Per table: does 8 threads beat 16, 24 and 32 with no cache (published, predicted)?"""
    out = []
    for tr in results:
        pub = {r.row.threads: r.row.pin_speedup for r in tr.rows if r.row.cache_pages == 0}
        pred = {r.row.threads: r.pred.speedup for r in tr.rows if r.row.cache_pages == 0}
        ok_pub = all(pub[8] > pub[t] for t in (16, 24, 32))
        ok_pred = all(pred[8] > pred[t] for t in (16, 24, 32))
        t = tr.table
        out.append(f"  {t.backing:7s} qthr={t.qthr:2d} mem={t.mem_gib:3d}G: published "
                   f"{'yes' if ok_pub else 'no '} "
                   f"({' '.join(f'{pub[k]:.1f}' for k in (8, 16, 24, 32))}), predicted "
                   f"{'yes' if ok_pred else 'no '} "
                   f"({' '.join(f'{pred[k]:.1f}' for k in (8, 16, 24, 32))})")
    return out


def overaccount_bound(patch: str, threads: int, cache_pages: int) -> int:
    """Worst-case pages charged for nothing: the spec's overaccount_bound.

    seed: every helper may hold a full cache (threads x cache); fixed: one shared cache.
    """
    return cache_pages if patch == "fixed" else threads * cache_pages


def tradeoff(machine: str, backing: str, mem_gib: float, qthr: int, params: Params,
             jobs: int = 2, patch: str = "seed") -> list[tuple[int, int, Prediction, int]]:
    """(cache, threads, prediction, worst-case overaccounting pages) for the grid."""
    caches = [c for c in TRADEOFF_CACHES if c or patch != "fixed"]
    cfgs = [Config(machine, backing, mem_gib, qthr, t, c, patch)
            for c in caches for t in TRADEOFF_THREADS]
    preds = predict_many(cfgs, params, jobs=jobs)
    return [(p.config.cache_pages, p.config.threads, p,
             overaccount_bound(patch, p.config.threads, p.config.cache_pages)) for p in preds]


def format_tradeoff(rows: list[tuple[int, int, Prediction, int]], title: str) -> str:
    """Markdown table: cache rows, thread columns, speedup and overaccounting bound."""
    lines = [f"**{title}**", "",
             "| cache pages | " + " | ".join(f"{t} threads" for t in TRADEOFF_THREADS) + " |",
             "|---:|" + "---:|" * len(TRADEOFF_THREADS)]
    for c in sorted({r[0] for r in rows}):
        cells = []
        for t in TRADEOFF_THREADS:
            _, _, p, over = next(r for r in rows if r[0] == c and r[1] == t)
            cells.append(f"{p.speedup:.1f}x / {over / PAGES_PER_GIB:g} GiB")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Each cell: predicted pin speedup over the single-thread base kernel / "
                 "worst-case locked_vm overaccounting in GiB (overaccount_bound of "
                 "specs/vfio_locked_vm_cache.py: threads x cache pages x 4 KiB for seed, "
                 "one cache for fixed).")
    return "\n".join(lines)


def machine_grid(machine: str, baselines: list[tuple[str, int, int, float]], params: Params,
                 jobs: int = 2) -> list[Prediction]:
    """Predictions for the published grid on a machine without published results."""
    cfgs = [Config(machine, b, mem, q, t, c) for b, q, mem, _ in baselines
            for c in TRADEOFF_CACHES for t in PUBLISHED_THREADS]
    return predict_many(cfgs, params, jobs=jobs)
