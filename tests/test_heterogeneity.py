"""The rma.uni core: its back-ends and its two kinds of iteration driver agree with each other.

metafor agreement is tested through ``pool`` and ``meta_regression`` (test_pooling.py,
test_regression.py); here the scalar drivers (one analysis, Python floats) are checked against
the vectorised ones, and the four back-ends of ``analysis.algebra`` against each other, on
generated data that include likelihoods with several local maxima.
"""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import ITERATIVE

from analysis.algebra import (
    DesignRows,
    InterceptRows,
    ScalarIntercept,
    SubsetRows,
    blocked_matmul,
    loglik,
    score,
    score_bound,
)
from analysis.heterogeneity import METHODS, Control, fit_heterogeneity, fit_one, fit_points

# Both drivers iterate the same formulas to the same stopping rule; what separates them is
# floating-point summation order (1-D dot products vs row sums), so 1e-9 relative.
DRIVERS_AGREE = 1e-9
FIELDS = ("tau2", "se_tau2", "q", "i2", "h2", "tau2_ci_low", "tau2_ci_high", "loglik")


def _datasets(seed: int, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(2, 25))
        spread = rng.uniform(0, 3)
        v = rng.uniform(0.02, 0.3, k) * np.exp(rng.normal(0, spread, k))
        y = rng.normal(-0.3, rng.uniform(0.05, 1.0), k) + rng.normal(0, np.sqrt(v))
        out.append((y, v))
    return out


def _close(a: float, b: float, rtol: float) -> bool:
    if np.isnan(a) or np.isnan(b):
        return bool(np.isnan(a) and np.isnan(b))
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("ci", ["z", "hksj"])
def test_scalar_and_vectorised_drivers_agree(method: str, ci: str) -> None:
    data = _datasets(11, 60)
    con = Control()
    k = max(y.size for y, _ in data)
    yb = np.full((len(data), k), np.nan)
    vb = np.full_like(yb, np.nan)
    for i, (y, v) in enumerate(data):
        yb[i, : y.size], vb[i, : y.size] = y, v
    m = np.isfinite(yb)
    batch = fit_heterogeneity(InterceptRows.build(yb, vb, m), method, ci, tau2_ci=True,
                              control=con)
    for i, (y, v) in enumerate(data):
        one = fit_one(ScalarIntercept.build(y, v), method, ci, tau2_ci=True, control=con)
        design = fit_heterogeneity(DesignRows.build(y, v, np.ones((y.size, 1))), method, ci,
                                   tau2_ci=True, control=con)
        for name in FIELDS:
            a, b, c = float(one[name]), float(getattr(batch, name)[i]), float(
                getattr(design, name)[0])
            assert _close(a, b, DRIVERS_AGREE), (method, ci, i, name, a, b)
            assert _close(a, c, DRIVERS_AGREE), (method, ci, i, name, a, c)
        assert _close(float(one["beta"]), float(batch.beta[i, 0]), DRIVERS_AGREE)
        assert _close(float(one["vb"]), float(batch.vb[i, 0, 0]), DRIVERS_AGREE)
        assert _close(float(one["beta"]), float(design.beta[0, 0]), DRIVERS_AGREE)


def test_score_is_negative_beyond_the_bound() -> None:
    # The grid of the global search ends at score_bound(); above it the score must be < 0.
    data = _datasets(3, 400)
    for reml in (False, True):
        for y, v in data:
            d = ScalarIntercept.build(y, v)
            t = float(score_bound(d, reml))
            for factor in (1.0 + 1e-9, 1.5, 10.0, 1e4):
                if t > 0:
                    assert score(d, t * factor, reml) < 0


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_global_maximum_against_a_dense_grid(method: str) -> None:
    # Reference: brute force, the (restricted) likelihood on 20,001 points of log tau^2 in
    # [1e-8, 1e3] plus 0. The solver may only be above it (it refines, the grid does not).
    reml = method == "REML"
    grid = np.concatenate([[0.0], np.geomspace(1e-8, 1e3, 20_000)])
    for y, v in _datasets(5, 150):
        d = ScalarIntercept.build(y, v)
        one = fit_one(d, method)
        rows = InterceptRows.build(np.tile(y, (grid.size, 1)), np.tile(v, (grid.size, 1)),
                                   np.ones((grid.size, y.size), dtype=bool))
        best = float(np.max(loglik(rows, grid, reml)))
        assert float(one["loglik"]) >= best - 1e-10


def test_egger2001_leave_one_out_ml_interior_maximum() -> None:
    # Reference: metafor 3.8-1 leave1out(rma(yi, vi, method="ML")) on dat.egger2001 (OR),
    # study 14 omitted (fixture case egger2001/OR/leave1out/ML/z): metafor stops at tau^2 = 0
    # (score there is -106); the likelihood is -14.93 there and -5.18 at the global maximum
    # tau^2 = 0.2952498 (a brute-force grid of 200,000 log-spaced points puts it at 0.2952415,
    # within its spacing of 6e-5 relative; the solver's value is the root of the score).
    import json
    from pathlib import Path

    cases = json.loads((Path(__file__).parent / "reference" / "metafor_reference.json")
                       .read_text())["cases"]
    case = next(c for c in cases if c["id"] == "egger2001/OR/leave1out/ML/z")
    y = np.delete(np.asarray(case["input"]["yi"], float), 13)
    v = np.delete(np.asarray(case["input"]["vi"], float), 13)
    d = ScalarIntercept.build(y, v)
    assert score(d, 0.0, False) < 0
    fit = fit_one(d, "ML")
    assert fit["tau2"] == pytest.approx(0.2952415, rel=6e-5)
    assert score(d, fit["tau2"], False) == pytest.approx(0.0, abs=1e-8)
    assert float(fit["loglik"]) - float(loglik(d, 0.0, False)) == pytest.approx(9.7527, abs=1e-3)
    fisher = fit_heterogeneity(InterceptRows.build(y[None], v[None], np.ones((1, y.size), bool)),
                               "ML", control=Control(algorithm="fisher", maxiter=10000))
    assert case["expected"]["tau2"][13] == pytest.approx(0.0, abs=ITERATIVE)
    assert fisher.tau2[0] == pytest.approx(0.0, abs=ITERATIVE)


def test_errors_nan_means_the_same_in_pool_and_meta_regression() -> None:
    # One meaning of errors= (issue 9): a failing iteration raises, or gives NaN estimates.
    import pandas as pd

    import analysis as ma
    from analysis.errors import ConvergenceError

    y = np.array([0.1, 0.5, 1.2, -0.3, 0.8])
    v = np.array([0.01, 0.02, 0.05, 0.03, 0.04])
    mods = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    con = {"algorithm": "fisher", "maxiter": 1}
    with pytest.raises(ConvergenceError, match="did not converge in 1 iterations"):
        ma.pool(y, v, control=con)
    with pytest.raises(ConvergenceError, match="did not converge in 1 iterations"):
        ma.meta_regression(y, v, mods, control=con)
    pooled = ma.pool(y, v, control=con, errors="nan")
    assert np.isnan(pooled.estimate) and np.isnan(pooled.tau2)
    reg = ma.meta_regression(y, v, mods, control=con, errors="nan")
    assert np.isnan(reg.coef).all() and np.isnan(reg.tau2) and not reg.converged


def _subsets(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.02, 0.3, k) * np.exp(rng.normal(0, 2, k))  # weights over ~1e3
    y = rng.normal(-0.3, 0.5, k) + rng.normal(0, np.sqrt(v))
    m = rng.random((n, k)) < 0.5
    m[:, 0] |= ~m.any(axis=1)
    return y, v, m


@pytest.mark.parametrize("method", METHODS)
def test_subset_sums_back_end_equals_padded_rows(method: str) -> None:
    # SubsetRows (the projection at per-study weights from subset sums, Q from pair terms)
    # gives what InterceptRows gives on the same subsets, for every estimator and every field
    # of the full fit (its n x k fallbacks: se of tau², Q-profile, likelihood) and the point
    # fit GOSH uses; rows of one study included.
    y, v, m = _subsets(3, 300, 12)
    con = Control()
    sums = SubsetRows.build(y, v, m)
    rows = InterceptRows.build(np.broadcast_to(y, m.shape), np.broadcast_to(v, m.shape), m)
    np.testing.assert_array_equal(sums.k, rows.k)
    a = fit_heterogeneity(sums, method, "hksj", tau2_ci=True, control=con, errors="nan")
    b = fit_heterogeneity(rows, method, "hksj", tau2_ci=True, control=con, errors="nan")
    for name in (*FIELDS, "beta", "vb", "w", "s2w"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=DRIVERS_AGREE,
                                   atol=1e-12, err_msg=name)
    for conv in ("metafor", "revman5"):
        pa = fit_points(sums, method, "hksj", control=con, convention=conv)
        pb = fit_points(rows, method, "hksj", control=con, convention=conv)
        for name in ("tau2", "beta", "vb", "q", "i2", "h2", "df"):
            np.testing.assert_allclose(getattr(pa, name), getattr(pb, name),
                                       rtol=DRIVERS_AGREE, atol=1e-12, err_msg=name)


def test_subset_q_has_no_cancellation() -> None:
    # Two clusters of effects, near 0 and near 1e5, spread about 0.5 within each: subsets of
    # one cluster lie about 5e4 from the mean of all studies, where even the centred one-pass
    # sum cancels to noise (the premise is checked); SubsetRows takes the pair terms there and
    # stays as exact as the two-pass residuals of the scalar back-end on every row.
    y, v, m = _subsets(5, 400, 10)
    y = y + np.where(np.arange(10) < 5, 0.0, 1e5)
    m[:200, 5:] = False  # the first 200 rows from the first cluster only
    m[:200, 0] = True
    w = 1.0 / v
    q = SubsetRows.build(y, v, m).proj(w).q
    want = np.empty(m.shape[0])
    for row in range(m.shape[0]):
        d = ScalarIntercept.build(y[m[row]], v[m[row]])
        want[row] = d.proj(d.fe_weights()).q
    mf, yc = m.astype(float), y - w @ y / w.sum()
    one_pass = mf @ (w * yc * yc) - (mf @ (w * yc)) ** 2 / (mf @ w)
    pos = want > 0
    assert np.max(np.abs(one_pass - want)[pos] / want[pos]) > 1e-6
    np.testing.assert_allclose(q, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n", [1, 7, 1000, 4097])
def test_blocked_matmul_is_the_product(n: int) -> None:
    rng = np.random.default_rng(n)
    a, b = rng.normal(size=(n, 16)), rng.normal(size=(16, 19))  # 4097 rows: 5 blocks
    np.testing.assert_allclose(blocked_matmul(a, b), a @ b, rtol=1e-13, atol=1e-13)
