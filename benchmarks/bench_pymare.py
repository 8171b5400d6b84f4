"""Batched tau^2 estimators, ours (``ma.pool`` on 2-D input) versus PyMARE, same data, same run.

Run: ``python benchmarks/bench_pymare.py`` (or ``make bench``). 10,000 data sets x k = 16.
PyMARE takes y, v of shape (k, n_datasets) (columns are data sets) and X of shape (k, p); its
estimators that have a counterpart here: DerSimonianLaird (DL), Hedges (HE),
VarianceBasedLikelihoodEstimator ML / REML, WeightedLeastSquares (FE, tau2 = 0).
SampleSizeBasedLikelihoodEstimator needs sample sizes, not variances (no counterpart). Prints
per-fit times, the ratio PyMARE / ours, and the largest relative difference in tau2 and in the
pooled estimate.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import analysis as ma
from benchmarks.global_max import loglik_exact, prepare

K = 16
N = 10_000
REPEATS = 3


def _data(n: int = N, seed: int = 20240601) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.2, size=(n, K))
    y = rng.normal(-0.3, 0.3, size=(n, K)) + rng.normal(0, np.sqrt(v))
    return y, v


def _timed(fn):
    times, out = [], None
    for _ in range(REPEATS):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def _pymare(name: str):
    from pymare import estimators as est

    return {
        "FE": lambda: est.WeightedLeastSquares(tau2=0.0),
        "DL": est.DerSimonianLaird,
        "HE": est.Hedges,
        "ML": lambda: est.VarianceBasedLikelihoodEstimator(method="ML"),
        "REML": lambda: est.VarianceBasedLikelihoodEstimator(method="REML"),
    }[name]()


def _rel(a: np.ndarray, b: np.ndarray, floor: float = 1e-12) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)))


def main() -> list[tuple[str, float, str]] | None:
    try:
        import pymare  # noqa: F401
    except ImportError:
        print("  PyMARE not installed (pip install -e '.[bench]')")
        return None
    y, v = _data()
    X = np.ones((K, 1))
    rows = []
    table = []
    better: dict[str, tuple[int, int, float, float]] = {}
    for m in ("FE", "DL", "HE", "ML", "REML"):
        t_ours, ours = _timed(lambda m=m: ma.pool(y, v, method=m, tau2_ci=False))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if m == "FE":  # WeightedLeastSquares.fit(y, X, v)
                t_py, fit = _timed(lambda: _pymare("FE").fit(y.T, X, v.T))
            else:
                t_py, fit = _timed(lambda m=m: _pymare(m).fit(y.T, v.T, X))
        tau_py = np.zeros(N) if m == "FE" else np.ravel(fit.params_["tau2"])
        est_py = np.ravel(fit.params_["fe_params"])
        tau_ours = np.asarray(ours.tau2, dtype=float)
        est_ours = np.asarray(ours.estimate, dtype=float)
        d_tau = _rel(tau_ours, tau_py, floor=1e-8)
        d_est = _rel(est_ours, est_py)
        n_diff = int((np.abs(tau_ours - tau_py) > 1e-6 * np.maximum(tau_ours, 1e-8)).sum())
        if m in ("ML", "REML"):  # who is higher on the likelihood where the two differ
            which = 0 if m == "ML" else 1
            d = prepare(y, v)
            gap = loglik_exact(d, tau_ours)[which] - loglik_exact(d, np.maximum(tau_py, 0))[which]
            better[m] = (int((gap > 1e-10).sum()), int((gap < -1e-10).sum()),
                         float(gap.max()), float(gap.min()))
        table.append((m, t_ours / N * 1e6, t_py / N * 1e6, t_py / t_ours, d_tau, d_est, n_diff))
        rows.append((f"ours pool({m}), {N:,} x k={K} batched", t_ours,
                     f"{t_ours / N * 1e6:.2f} us/fit"))
        rows.append((f"PyMARE {m}, {N:,} x k={K} batched", t_py,
                     f"{t_py / N * 1e6:.2f} us/fit, ratio PyMARE/ours {t_py / t_ours:.1f}x, "
                     f"max rel diff tau2 {d_tau:.2e}, estimate {d_est:.2e}"))
    print(f"  {'method':6s} {'ours us/fit':>12s} {'PyMARE us/fit':>14s} {'PyMARE/ours':>12s} "
          f"{'max rel d tau2':>15s} {'max rel d est':>14s} {'rows tau2 differ':>17s}")
    for m, a, b, r, dt, de, nd in table:
        print(f"  {m:6s} {a:12.2f} {b:14.2f} {r:12.1f} {dt:15.2e} {de:14.2e} {nd:17d}")
    for m, (n_ours, n_py, hi, lo) in better.items():
        print(f"  {m}: log-likelihood higher (> 1e-10) at ours in {n_ours} rows, at PyMARE's in "
              f"{n_py} rows; ours - PyMARE's in [{lo:.2e}, {hi:.2e}]")
    return rows


if __name__ == "__main__":
    for label, seconds, note in main() or ():
        print(f"  {label:60s} {seconds * 1000:12.3f} ms  {note}")
