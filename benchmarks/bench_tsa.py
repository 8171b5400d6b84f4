"""Trial sequential analysis (``analysis.trial_sequential_analysis``): time of a full TSA.

A full TSA of 10 simulated trials (risk ratios; anticipated RR 0.8, control risk 0.3,
alpha 0.05 two-sided, beta 0.2, DL, D²-adjusted, O'Brien-Fleming alpha spending and
non-binding beta-spending futility): the information size, the boundaries by recursive
numerical integration at every look (the design's inflation factor solved through them), the
cumulative Z-curve, the adjusted CIs and the conclusion. Also the alpha-spending boundaries
alone at 10 equally spaced looks.

Baselines measured in the same run, for the same 10-look alpha-spending boundaries:

- Monte Carlo: ``MC_PATHS`` simulated Brownian paths under the null; each look's boundary is
  the empirical quantile of ``|Z_k|`` on the paths that have not crossed, at the spending
  increment (seed 1; its error is the Monte Carlo error, printed as the largest boundary
  difference from ours);
- the same recursive integration on a grid ``FINE`` times finer (``_PER_SD``), whose
  difference from ours is the integration error.

Times are medians of ``REPEATS`` runs (the machine may be shared; compare the ratios).
Run: ``.venv/bin/python benchmarks/bench_tsa.py`` (or through ``benchmarks/run_all.py``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's `analysis`

from analysis.sequential import boundaries as bd
from analysis.sequential import trial_sequential_analysis

REPEATS = 5
LOOKS = 10
MC_PATHS = 1_000_000
FINE = 10


def simulate(k: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log risk ratios, their variances and trial sizes of ``k`` simulated trials."""
    rng = np.random.default_rng(1)
    n_arm = rng.integers(60, 400, k)
    pc = rng.uniform(0.2, 0.4, k)
    pe = np.clip(pc * np.exp(rng.normal(np.log(0.8), 0.15, k)), 0.01, 0.99)
    ec, ee = rng.binomial(n_arm, pc) + 0.5, rng.binomial(n_arm, pe) + 0.5
    na = n_arm + 1.0
    yi = np.log((ee / na) / (ec / na))
    vi = 1 / ee - 1 / na + 1 / ec - 1 / na
    return yi, vi, 2 * n_arm


def full_tsa(yi: np.ndarray, vi: np.ndarray, n: np.ndarray) -> Any:
    return trial_sequential_analysis(yi, vi, n, measure="RR", effect=0.8, control_rate=0.3,
                                     alpha=0.05, beta=0.2, futility="non-binding")


def monte_carlo_bounds(timing: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Two-sided O'Brien-Fleming-type boundaries from simulated null paths."""
    rng = np.random.default_rng(1)
    incr = np.diff(np.concatenate([[0.0], timing]))
    s = np.cumsum(rng.standard_normal((MC_PATHS, timing.size)) * np.sqrt(incr), axis=1)
    z = np.abs(s / np.sqrt(timing))
    spend = np.diff(np.concatenate([[0.0], bd.spending(timing, alpha / 2, "obf") * 2]))
    alive = np.ones(MC_PATHS, dtype=bool)
    out = np.empty(timing.size)
    for k in range(timing.size):
        zk = np.sort(z[alive, k])[::-1]
        m = round(spend[k] * MC_PATHS)  # paths that must cross at look k
        out[k] = np.inf if m == 0 else 0.5 * (zk[m - 1] + zk[m])
        alive &= z[:, k] < out[k]
    return out


def fine_grid_bounds(timing: np.ndarray) -> np.ndarray:
    saved = bd._PER_SD
    bd._PER_SD = saved * FINE
    try:
        return bd.alpha_boundaries(timing, 0.05, 2, "obf").upper
    finally:
        bd._PER_SD = saved


def median_time(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> list[tuple[str, float, str]]:
    yi, vi, n = simulate(10)
    full_tsa(yi, vi, n)  # warm-up (imports)
    timing = np.arange(1, LOOKS + 1) / LOOKS
    ours_full = median_time(lambda: full_tsa(yi, vi, n))
    ours = median_time(lambda: bd.alpha_boundaries(timing, 0.05, 2, "obf"))
    upper = bd.alpha_boundaries(timing, 0.05, 2, "obf").upper
    t0 = time.perf_counter()
    mc = monte_carlo_bounds(timing)
    t_mc = time.perf_counter() - t0
    t0 = time.perf_counter()
    fine = fine_grid_bounds(timing)
    t_fine = time.perf_counter() - t0
    both = np.isfinite(mc)  # Monte Carlo cannot resolve a spend below 1 / MC_PATHS
    d_mc = float(np.max(np.abs(mc[both] - upper[both])))
    d_fine = float(np.max(np.abs(fine - upper)))
    return [
        ("TSA, 10 trials (RIS, futility, Z-curve, adjusted CI)", ours_full, ""),
        (f"alpha-spending boundaries, {LOOKS} looks", ours, ""),
        (f"  baseline: Monte Carlo, {MC_PATHS:.0e} paths", t_mc,
         f"{t_mc / ours:.0f}x ours; max |boundary diff| {d_mc:.1e} over the "
         f"{int(both.sum())} looks it resolves (last look {abs(mc[-1] - upper[-1]):.1e})"),
        (f"  baseline: recursive integration, grid {FINE}x finer", t_fine,
         f"{t_fine / ours:.0f}x ours; max |boundary diff| {d_fine:.1e}"),
    ]


if __name__ == "__main__":
    for label, seconds, note in main():
        print(f"{label:60s} {seconds * 1000:10.2f} ms  {note}")
