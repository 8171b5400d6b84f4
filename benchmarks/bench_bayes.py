"""Bayesian random-effects meta-analysis (``analysis.bayesmeta``): time per fit for k <= 50.

Target (issue 15, item 5): a fit in under 50 ms for k <= 50. Baseline measured in the same
run: brute-force quadrature of the same posterior with ``scipy.integrate.quad`` (the tau
normalising constant, then the marginal density of mu on 20 points by nested quadrature),
which gives far fewer quantities than one fit. bayesmeta 3.4 itself is not installed here and
the fixture README records no timing. Data: simulated log odds ratios (seed 1), half-normal(0.5)
prior for tau, flat prior for mu.

Times are medians of ``REPEATS`` runs (the machine may be shared; compare the ratio to the
baseline of the same run). Run: ``.venv/bin/python benchmarks/bench_bayes.py`` (or through
``benchmarks/run_all.py``).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import integrate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's `analysis`

from analysis.bayesian import bayesmeta, half_normal

REPEATS = 7


def simulate(k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    s = rng.uniform(0.15, 0.6, k)
    return rng.normal(-0.3, 0.25, k) + rng.normal(0, s), s


def brute_force(y: np.ndarray, s: np.ndarray) -> None:
    prior = half_normal(0.5)

    def joint(mu: float, t: float) -> float:
        v = t * t + s * s
        return math.exp(prior.logpdf(np.array([t]), s**2)[0]
                        - 0.5 * float(np.sum(np.log(2 * np.pi * v) + (y - mu) ** 2 / v)))

    c, span = float(np.mean(y)), 20 * float(s.max() + np.ptp(y))
    z = integrate.quad(lambda t: integrate.quad(lambda m: joint(m, t), c - span, c + span)[0],
                       0, np.inf)[0]
    for m in np.linspace(c - 1, c + 1, 20):
        integrate.quad(lambda t, m=m: joint(m, t), 0, np.inf)[0] / z


def median_time(fn, *args) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> list[tuple[str, float, str]]:
    rows = []
    bayesmeta(*simulate(5), tau_prior=half_normal(0.5))  # warm-up (imports, caches)
    for k in (5, 20, 50):
        y, s = simulate(k)
        ours = median_time(lambda y=y, s=s: bayesmeta(y, sei=s, tau_prior=half_normal(0.5)))
        t0 = time.perf_counter()
        brute_force(y, s)
        brute = time.perf_counter() - t0
        rows.append((f"bayesmeta fit, k = {k}", ours,
                     f"{'OK' if ours < 0.05 else 'OVER'} 50 ms target; brute-force quadrature "
                     f"(normaliser + mu density at 20 points) {brute * 1000:.0f} ms = "
                     f"{brute / ours:.0f}x"))
    return rows


if __name__ == "__main__":
    for label, seconds, note in main():
        print(f"{label:40s} {seconds * 1000:10.2f} ms  {note}")
