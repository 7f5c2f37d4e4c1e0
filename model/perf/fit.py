"""Fitting the few machine-independent parameters to a handful of published Intel rows.

Only ``FIT_ROWS`` are used: seven (table, cache, threads) rows of the 360G tables, chosen
to pin one physical effect each (the bandwidth ceiling of page zeroing, the refill cost
of a small cache, writer contention with no cache, the lock word's cache line at 32
threads, and the share of the work outside mmap_lock for each backing). Every other
Intel row is a prediction, and the AMD rows are predicted from the AMD baselines and
machine description with the same parameters.

The objective is the sum of squared log errors of the speedup; parameters are searched
in a bounded transform with Nelder-Mead (scipy). ``jitter``, ``wake_each_us`` and
``wake_us`` are fixed physical estimates, not fitted (see ``FIXED``). The result is written to
``params.json`` next to this module, with the rows it was fitted on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from model.perf import predict as predict_mod
from model.perf.costs import Params
from model.perf.predict import Config, predict_many
from model.perf.tables import INTEL_TABLES, Row, Table


@dataclass(frozen=True)
class FitRow:
    """A published row used for fitting: the table key and the (cache, threads) row."""

    backing: str
    qthr: int
    mem_gib: int
    cache_pages: int
    threads: int


FIT_ROWS: tuple[FitRow, ...] = (
    FitRow("hugetlb", 0, 360, 131072, 24),
    FitRow("hugetlb", 0, 360, 32768, 8),
    FitRow("hugetlb", 0, 360, 0, 16),
    FitRow("hugetlb", 16, 360, 65536, 16),
    FitRow("hugetlb", 16, 360, 0, 16),
    FitRow("hugetlb", 16, 360, 131072, 32),
    FitRow("thp", 16, 360, 65536, 16),
)

FIXED = {"jitter": 0.3, "wake_each_us": 1.0, "wake_us": 2.0}
"""Not fitted. ``wake_us`` is intel_idle's C1 exit latency (skx_cstates): the wake-up of a
CPU in a shallow idle state; the deep state's exit is added by the timing layer."""
BOUNDS = {"out_frac": (0.05, 0.95), "write_cs_us": (0.1, 20.0),
          "bw_eff": (0.05, 1.0), "line_ns": (5.0, 2000.0)}
PARAMS_FILE = "params.json"
STEP = 0.8
"""Initial simplex step in the logit of each bounded parameter."""


def is_fit_row(table: Table, row: Row) -> bool:
    return FitRow(table.backing, table.qthr, table.mem_gib, row.cache_pages,
                  row.threads) in FIT_ROWS


def fit_rows() -> list[tuple[Table, Row]]:
    """The published rows named by FIT_ROWS."""
    out = []
    for t in INTEL_TABLES:
        for r in t.rows:
            if is_fit_row(t, r):
                out.append((t, r))
    if len(out) != len(FIT_ROWS):
        raise RuntimeError("FIT_ROWS names a row that is not in the tables")
    return out


def _to_params(x: list[float]) -> Params:
    vals = {}
    for xi, (name, (lo, hi)) in zip(x, BOUNDS.items(), strict=True):
        s = 1.0 / (1.0 + math.exp(-xi))
        vals[name] = math.exp(math.log(lo) + s * (math.log(hi) - math.log(lo)))
    return Params(**vals, **FIXED)


def _from_params(p: Params) -> list[float]:
    x = []
    for name, (lo, hi) in BOUNDS.items():
        s = (math.log(getattr(p, name)) - math.log(lo)) / (math.log(hi) - math.log(lo))
        s = min(max(s, 1e-6), 1 - 1e-6)
        x.append(math.log(s / (1 - s)))
    return x


def loss(p: Params, jobs: int = 2) -> float:
    """Sum of squared log errors of the predicted speedup over the fit rows."""
    predict_mod._WINDOWS.clear()
    rows = fit_rows()
    preds = predict_many([Config(t.machine, t.backing, t.mem_gib, t.qthr, r.threads,
                                 r.cache_pages) for t, r in rows], p, jobs=jobs)
    return sum((math.log(pred.speedup) - math.log(r.pin_speedup)) ** 2
               for (_, r), pred in zip(rows, preds, strict=True))


def fit(start: Params | None = None, max_evals: int = 60,
        log: Callable[[str], None] | None = None, jobs: int = 2) -> tuple[Params, float]:
    """Nelder-Mead from ``start`` on ``jobs`` processes; the best parameters and their loss."""
    from scipy.optimize import minimize

    x0 = _from_params(start or Params(**FIXED))
    seen: list[tuple[float, list[float]]] = []

    def objective(x: list[float]) -> float:
        value = loss(_to_params(list(x)), jobs=jobs)
        seen.append((value, list(x)))
        if log is not None:
            log(f"eval {len(seen):3d} loss {value:.4f} {_to_params(list(x))}")
        return value

    simplex = [x0] + [[xi + (STEP if i == j else 0.0) for j, xi in enumerate(x0)]
                      for i in range(len(x0))]
    minimize(objective, x0, method="Nelder-Mead",
             options={"maxfev": max_evals, "xatol": 0.05, "fatol": 1e-3,
                      "initial_simplex": simplex})
    best_value, best_x = min(seen, key=lambda s: s[0])
    return _to_params(best_x), best_value


def params_path() -> Path:
    return Path(str(resources.files("model.perf").joinpath(PARAMS_FILE)))


def save_params(p: Params, value: float, path: Path | None = None) -> None:
    data = {"params": p.as_dict(), "loss": value, "fixed": sorted(FIXED),
            "fitted_on": [r.__dict__ for r in FIT_ROWS]}
    (path or params_path()).write_text(json.dumps(data, indent=2) + "\n")


def load_params(path: Path | None = None) -> Params:
    """The fitted parameters (defaults if no fit was saved)."""
    p = path or params_path()
    if not p.exists():
        return Params(**FIXED)
    data = json.loads(p.read_text())
    return Params(**{k: float(v) for k, v in data["params"].items()})
