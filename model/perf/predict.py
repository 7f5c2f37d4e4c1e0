"""Predicted pin time and speedup for one configuration, and for many in parallel.

The base kernel (no padata, no cache: the ``upstream`` variant on one thread) and the
patched kernel are both timed by ``sim.TimedRun`` with the same costs, and the speedup is
their ratio, like the published speedups (base / test).

Simulation budget: a job is simulated in full when it is small; otherwise for a window of
units that covers the steady state (``budget_units``) and the rest is extrapolated at the
measured rate. With a cache the window spans at least one refill per thread where it
can (T x cache units), so refills are in the measured rate. Of a job much larger than its
window only the start is laid out: ``WINDOW_JOB_FACTOR`` x budget units, or one chunk of
the whole job per helper if that is more (the helpers then start as far apart as in the
kernel). Windows are memoised.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from model.perf.costs import UNIT_PAGES, Params, UnitCosts, unit_costs
from model.perf.machines import BACKINGS, Machine, machine
from model.perf.sim import RunTiming, TimedRun, Workload, padata_chunk_units

BASE_BUDGET = 1000
SINGLE_BUDGET = 1000
NOCACHE_BUDGET = 3000
CACHE_BUDGET_MIN = 3000
CACHE_BUDGET_MAX = 20000
SEED = 1
PATCHES = ("seed", "fixed")
"""Test-kernel variants the timing layer runs (model/vfio_variants.py)."""
WINDOW_JOB_FACTOR = 8


@dataclass(frozen=True)
class Config:
    """One row: what ``predict`` takes on the command line."""

    machine: str
    backing: str
    mem_gib: float
    qthr: int
    threads: int
    cache_pages: int
    patch: str = "seed"

    def validate(self, m: Machine) -> None:
        if self.backing not in BACKINGS:
            raise ValueError(f"backing must be one of {', '.join(BACKINGS)}, got {self.backing!r}")
        if self.mem_gib <= m.lowmem_gib:
            raise ValueError(f"mem must be more than the {m.lowmem_gib:g} GiB below 4G")
        if self.qthr < 0 or self.threads < 0 or self.cache_pages < 0:
            raise ValueError("qthr, threads and cache pages must be >= 0")
        if self.patch not in PATCHES:
            raise ValueError(f"patch must be one of {', '.join(PATCHES)}, got {self.patch!r}")
        if self.patch == "fixed" and self.threads > 0 and self.cache_pages == 0:
            raise ValueError("the fixed variant charges every page through its cache: "
                             "cache pages must be > 0")


@dataclass(frozen=True)
class Prediction:
    """Predicted times; ``extrapolated`` says whether the test run used a window."""

    config: Config
    pin_s: float
    base_s: float
    extrapolated: bool
    simulated_units: int

    @property
    def speedup(self) -> float:
        return self.base_s / self.pin_s


def budget_units(units: int, threads: int, cache_pages: int) -> int:
    """How many units to simulate before extrapolating (see the module doc)."""
    if threads <= 1:
        want = SINGLE_BUDGET
    elif cache_pages == 0:
        want = NOCACHE_BUDGET
    else:
        cache_units = -(-cache_pages // UNIT_PAGES)
        want = min(max(threads * cache_units * 6 // 5, CACHE_BUDGET_MIN), CACHE_BUDGET_MAX)
    return min(units, want)


_WINDOWS: dict[tuple[object, ...], RunTiming] = {}


def timed_pin(costs: UnitCosts, units: int, threads: int, cache_pages: int,
              seed: int = SEED, patch: str = "seed") -> tuple[float, int, bool]:
    """Predicted pin seconds for ``units``, units simulated, and whether extrapolated."""
    budget = budget_units(units, threads, cache_pages)
    sim_units = units
    if budget >= units:
        key = (costs, threads, cache_pages, units, units, seed, patch, 0)
    else:
        # In a job of 8 x budget units or more, every chunk is at least twice a thread's
        # share of the window (chunk = units / (4 x threads)), so no thread finishes its
        # first chunk inside the window, and only the start of the job is simulated. It
        # keeps the whole job's chunks, one per helper, so that the helpers start as far
        # apart as in the kernel (that decides which PMD tables they share): threads x
        # chunk is a quarter of the job (padata's load balance factor).
        chunk = padata_chunk_units(units, threads) if threads > 1 else 0
        sim_units = min(units, max(WINDOW_JOB_FACTOR * budget, threads * chunk))
        key = (costs, threads, cache_pages, budget, sim_units, seed, patch, chunk)
    run = _WINDOWS.get(key)
    if run is None:
        job = units if sim_units < units and threads > 1 else 0
        run = TimedRun(Workload(sim_units, threads, cache_pages, patch, job), costs, seed,
                       budget).run()
        _WINDOWS[key] = run
    return run.pin_s_for(units), run.simulated_units, run.extrapolated


def predict(cfg: Config, params: Params, seed: int = SEED) -> Prediction:
    """Base and patched pin times for one configuration."""
    m = machine(cfg.machine)
    cfg.validate(m)
    units = max(m.pinned_pages(cfg.mem_gib) // UNIT_PAGES, 1)
    costs = unit_costs(m, cfg.backing, cfg.qthr > 0, params)
    base, _, _ = timed_pin(costs, units, 0, 0, seed)
    pin, sim, ext = timed_pin(costs, units, cfg.threads, cfg.cache_pages, seed, cfg.patch)
    return Prediction(cfg, pin, base, ext, sim)


def _predict_star(args: tuple[Config, Params, int]) -> Prediction:
    return predict(*args)


def predict_many(cfgs: Iterable[Config], params: Params, seed: int = SEED,
                 jobs: int = 2) -> list[Prediction]:
    """``predict`` for many configurations, on ``jobs`` processes (results in order).

    Configurations that share a simulation window are sent to the same process so the
    memo is used.
    """
    cfgs = list(cfgs)
    if jobs <= 1 or len(cfgs) < 4:
        return [predict(c, params, seed) for c in cfgs]
    groups: dict[tuple[str, str, bool, int, int, str], list[int]] = {}
    for i, c in enumerate(cfgs):
        groups.setdefault((c.machine, c.backing, c.qthr > 0, c.threads, c.cache_pages,
                           c.patch), []).append(i)
    buckets: list[list[int]] = [[] for _ in range(jobs)]
    for members in sorted(groups.values(), key=len, reverse=True):
        min(buckets, key=len).extend(members)
    out: list[Prediction | None] = [None] * len(cfgs)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_predict_bucket, [cfgs[i] for i in b], params, seed)
                   for b in buckets if b]
        for b, fut in zip([b for b in buckets if b], futures, strict=True):
            for i, pred in zip(b, fut.result(), strict=True):
                out[i] = pred
    return [p for p in out if p is not None]


def _predict_bucket(cfgs: list[Config], params: Params, seed: int) -> list[Prediction]:
    return [predict(c, params, seed) for c in cfgs]
