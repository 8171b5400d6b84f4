"""ML and REML with equal sampling variances: closed forms the global search must reach.

With :math:`v_i = v` for all studies the (restricted) likelihood of the random-effects model
has its maximum at :math:`\\hat\\tau^2_{ML} = \\max(0, \\sum(y_i - \\bar y)^2/k - v)` and
:math:`\\hat\\tau^2_{REML} = \\max(0, \\sum(y_i - \\bar y)^2/(k-1) - v)` (the score is
proportional to :math:`S/k - v - \\tau^2`, resp. :math:`S/(k-1) - v - \\tau^2`). There the
score bound T of :func:`analysis.algebra.score_bound` equals the maximum itself, the edge
case where both solvers once returned a bisection midpoint (0.78 instead of 0.9996 for
y = (0.828125, -2), v = 1, ML: found by the hypothesis property test in CI, 2026-12-01).
"""

from __future__ import annotations

import numpy as np
import pytest

import analysis as ma


def _closed_form(y: np.ndarray, v: float, reml: bool) -> float:
    s = float(np.sum((y - y.mean()) ** 2))
    return max(0.0, s / (y.size - (1 if reml else 0)) - v)


def _cases(n: int, seed: int) -> list[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(2, 13))
        v = float(rng.choice([1.0, 0.25, 0.01, 3.0, rng.uniform(0.001, 5)]))
        y = rng.normal(0.0, np.sqrt(v + rng.choice([0.0, 0.1, 1.0, 10.0])), size=k)
        if rng.random() < 0.2:  # dyadic values as hypothesis draws them
            y = np.round(y * 64) / 64
        out.append((y, v))
    return out


CASES = [(np.array([0.828125, -2.0]), 1.0), (np.array([0.0, 0.0]), 1.0),
         (np.array([1.0, -1.0]), 1.0), *_cases(400, 20261201)]


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_single_analyses_reach_the_closed_form(method: str) -> None:
    worst = 0.0
    for y, v in CASES:
        expected = _closed_form(y, v, method == "REML")
        got = ma.pool(y, np.full(y.size, v), method=method, tau2_ci=False).tau2
        worst = max(worst, abs(got - expected) / max(expected, v))
    assert worst < 1e-8


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_batched_analyses_reach_the_closed_form(method: str) -> None:
    cases = CASES + _cases(20_000, 7)
    width = max(y.size for y, _ in cases)
    yy = np.full((len(cases), width), np.nan)
    vv = np.full_like(yy, np.nan)
    for i, (y, v) in enumerate(cases):
        yy[i, : y.size], vv[i, : y.size] = y, v
    res = ma.pool(yy, vv, method=method, tau2_ci=False)
    expected = np.array([_closed_form(y, v, method == "REML") for y, v in cases])
    scale = np.maximum(expected, np.array([v for _, v in cases]))
    assert np.max(np.abs(res.tau2 - expected) / scale) < 1e-8


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_meta_regressions_reach_the_closed_form(method: str) -> None:
    # with equal v the model is OLS plus tau2 = max(0, RSS/(k - p_reml) - v): the design
    # back-end (DesignRows) meets the same bound-equals-maximum edge
    rng = np.random.default_rng(11)
    worst = 0.0
    for _ in range(300):
        k = int(rng.integers(3, 13))
        v = float(rng.choice([1.0, 0.25, rng.uniform(0.01, 3)]))
        x = rng.normal(size=k)
        y = 0.3 * x + rng.normal(0, np.sqrt(v + rng.choice([0.0, 0.5, 2.0])), size=k)
        design = np.column_stack([np.ones(k), x])
        rss = float(np.sum((y - design @ np.linalg.lstsq(design, y, rcond=None)[0]) ** 2))
        expected = max(0.0, rss / (k - (2 if method == "REML" else 0)) - v)
        got = ma.meta_regression(y, np.full(k, v), x, method=method, tau2_ci=False).tau2
        worst = max(worst, abs(got - expected) / max(expected, v))
    assert worst < 1e-8
