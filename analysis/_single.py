"""Scalar fast path of :func:`analysis.pooling.pool` for one analysis (private).

The vectorised engine in :mod:`analysis.pooling` fits any number of analyses at once; for a
single analysis its per-call overhead (masks, row indexing) dominates. This module computes the
same quantities with 1-D arrays and Python floats. It is a second, independent implementation
of the same formulas: the tests check it against metafor (fixture) and against the batched
engine (property test), so each implementation validates the other.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import special

from analysis.errors import ConvergenceError

_EPS = float(np.finfo(float).eps)


def _fe(y: np.ndarray, v: np.ndarray, t: float) -> tuple[np.ndarray, float, float, np.ndarray]:
    w = 1.0 / (v + t)
    sw = float(w.sum())
    mu = float(w @ y) / sw
    return w, sw, mu, y - mu


def _q(y: np.ndarray, v: np.ndarray, t: float) -> tuple[float, float]:
    w, _, _, r = _fe(y, v, t)
    wr = w * r
    return float(wr @ r), float(wr @ wr)


def _psq(w: np.ndarray, sw: float, a: Any = 1.0, b: Any = 1.0) -> float:
    w2 = w * w
    return float((a * b * w2).sum() - 2 * (a * b * w2 * w).sum() / sw
                 + (a * w2).sum() * (b * w2).sum() / sw**2)


def _root_q(y: np.ndarray, v: np.ndarray, target: float, hi: float, tol: float) -> float:
    """Newton on 1/Q - 1/target with bisection safeguard (as ``pooling._solve_q``)."""
    x, lo, up = 0.0, 0.0, hi
    xtol = max(min(tol, 1e-13), 1e-8)
    for _ in range(300):
        q, s2 = _q(y, v, x)
        f = q - target
        if f > 0:
            lo = x
        elif f < 0:
            up = x
        new = x + q * f / (target * s2) if s2 > 0 else math.nan
        bad = not (lo < new < up)
        if bad:
            new = 0.5 * (lo + up)
        scale = max(1.0, new)
        if f == 0 or (abs(new - x) <= xtol * scale and not bad) or up - lo <= 4 * _EPS * scale:
            return new
        x = new
    raise ConvergenceError(
        "root finding for tau^2 (PM estimator or Q-profile limit) did not converge in 300 "
        "iterations; check the data for extreme variances or try another method"
    )


def _score(y: np.ndarray, v: np.ndarray, t: float, reml: bool) -> tuple[float, float]:
    w, sw, _, r = _fe(y, v, t)
    w2 = w * w
    sw2 = float(w2.sum())
    w2r = w2 * r
    ypp = float(w2r @ r)
    yppp = float((w2r * w) @ r) - float(w2r.sum()) ** 2 / sw
    if reml:
        return ypp - (sw - sw2 / sw), -2 * yppp + sw2 - 2 * float(w2 @ w) / sw + (sw2 / sw) ** 2
    return ypp - sw, -2 * yppp + sw2


def _loglik(y: np.ndarray, v: np.ndarray, t: float, reml: bool) -> float:
    w, sw, _, r = _fe(y, v, t)
    ll = -0.5 * float(np.log(v + t).sum()) - 0.5 * float((w * r) @ r)
    return ll - 0.5 * math.log(sw) if reml else ll


def _newton(y: np.ndarray, v: np.ndarray, x0: float, method: str, con: Any) -> float:
    reml = method == "REML"
    s0, _ = _score(y, v, 0.0, reml)
    if s0 <= 0:
        return 0.0
    x, lo, hi = x0, 0.0, math.inf
    tol_fine = max(con.threshold, 1e-8)
    for _ in range(con.maxiter):
        sc, ds = _score(y, v, x, reml)
        if sc > 0:
            lo = x
        elif sc < 0:
            hi = x
        new = x - sc / ds if ds != 0 else math.nan
        fine = math.isfinite(new) and ds < 0 and lo < new < hi
        if not fine:
            new = 0.5 * (lo + hi) if math.isfinite(hi) else 2 * x + 1.0
        step = abs(new - x)
        x = new
        # Relative to tau^2 itself (floored at 1e-10): with very small sampling variances the
        # score is steep near 0 and Newton creeps there in tiny absolute steps.
        if sc == 0 or step <= (tol_fine if fine else con.threshold) * max(new, 1e-10):
            break
    else:
        raise ConvergenceError(
            f"{method} estimator: Newton iteration did not converge in {con.maxiter} "
            "iterations; try control={'maxiter': ...} or another method ('PM', 'DL')"
        )
    if con.ll0check and x > con.threshold and (
        _loglik(y, v, 0.0, reml) - _loglik(y, v, x, reml) > con.tol
    ):
        warnings.warn(
            f"{method}: the iteration stopped at a local maximum of the likelihood; tau^2 set "
            "to 0 as metafor does (check the profile likelihood)",
            RuntimeWarning, stacklevel=5,
        )
        return 0.0
    return x


def _pm_upper(y: np.ndarray, con: Any) -> float:
    if con.tau2_max is not None:
        return float(con.tau2_max)
    mad = 1.4826 * float(np.median(np.abs(y - np.median(y))))
    return max(100.0, 10 * mad**2)


def _tau2(y: np.ndarray, v: np.ndarray, k: int, q: float, sw0: float, trp0: float,
          method: str, con: Any) -> float:
    if method == "FE":
        return 0.0
    if method == "DL":
        return max(0.0, (q - (k - 1)) / trp0)
    if method == "HS":
        return max(0.0, (q - k) / sw0)
    dev = y - y.mean()
    rss = float(dev @ dev)
    if method == "SJ":
        t0 = rss / k
        return max(0.0, t0 * _q(y, v, t0)[0] / (k - 1))
    he = (rss - float(v.sum()) * (k - 1) / k) / (k - 1)
    if method == "HE":
        return max(0.0, he)
    if method in ("PM", "EB"):
        if q < k - 1 or (method == "EB" and q == k - 1):
            return 0.0
        hi = _pm_upper(y, con) if method == "PM" else max(100.0, 10 * q)
        while _q(y, v, hi)[0] > k - 1:
            if method == "PM":
                raise ConvergenceError(
                    "PM estimator: Q(tau2_max) is still above k - 1 (the search interval's upper "
                    "end, control tau2_max, is too low); pass control={'tau2_max': ...} with a "
                    "larger value or use method='REML' or 'DL'"
                )
            hi *= 10
        return _root_q(y, v, k - 1.0, hi, con.tol if method == "PM" else 1e-13)
    return _newton(y, v, max(0.0, he), method, con)


def _se_tau2(y: np.ndarray, v: np.ndarray, k: int, t: float, w0: np.ndarray, sw0: float,
             trp0: float, method: str) -> float:
    if method == "FE":
        return math.nan
    if method in ("DL", "HS"):
        inner = 2 * (k - 1) + 4 * t * trp0 + 2 * t**2 * _psq(w0, sw0)
        return math.sqrt(inner) / (trp0 if method == "DL" else sw0)
    if method == "HE":
        one = np.ones(k)
        trpv = float(v.sum()) * (k - 1) / k
        inner = 2 * _psq(one, k, v, v) + 4 * t * trpv + 2 * t**2 * (k - 1)
        return math.sqrt(inner) / (k - 1)
    if method == "SJ":
        dev = y - y.mean()
        t0 = float(dev @ dev) / k
        w, sw, _, _ = _fe(y, v, t0)
        inner = 2 * _psq(w, sw, v, v) + 4 * t * _psq(w, sw, 1.0, v) + 2 * t**2 * _psq(w, sw)
        return math.sqrt(t0**2 / (k - 1) ** 2 * inner)
    w, sw, _, _ = _fe(y, v, t)
    if method == "ML":
        return math.sqrt(2 / float(w @ w))
    if method == "REML":
        return math.sqrt(2 / _psq(w, sw))
    return math.sqrt(2 * k**2 / (k - 1) / sw**2)


def _qprofile(y: np.ndarray, v: np.ndarray, k: int, q0: float, t: float, level: float,
              tol: float) -> tuple[float, float]:
    alpha, df = 1 - level, k - 1
    crit_u = float(special.chdtri(df, alpha / 2))
    crit_l = float(special.chdtri(df, 1 - alpha / 2))
    tmax = max(100.0, 10 * t)
    qmax = _q(y, v, tmax)[0]
    if qmax > crit_u:
        return tmax, tmax
    if q0 < crit_l:
        return 0.0, 0.0
    ub = tmax if qmax > crit_l else _root_q(y, v, crit_l, tmax, tol)
    lb = 0.0 if q0 < crit_u else _root_q(y, v, crit_u, tmax, tol)
    return lb, ub


def fit_single(y: np.ndarray, v: np.ndarray, method: str, ci: str, level: float,
               tau2_ci: bool, con: Any) -> dict[str, Any]:
    """Fit one analysis (k >= 2, metafor convention, Newton solver); engine's field names."""
    k = y.size
    w0, sw0, _, r0 = _fe(y, v, 0.0)
    q = max(0.0, float((w0 * r0) @ r0))
    trp0 = sw0 - float(w0 @ w0) / sw0
    t = _tau2(y, v, k, q, sw0, trp0, method, con)
    w, sw, mu, r = _fe(y, v, t)
    df = math.nan
    s2w = 1.0
    p = 1 - (1 - level) / 2
    if ci in ("hksj", "hksj_adhoc"):
        rss = float((w * r) @ r)
        s2w = 0.0 if rss <= _EPS else rss / (k - 1)
        if ci == "hksj_adhoc":
            s2w = max(s2w, 1.0)
        df = float(k - 1)
    se = math.sqrt(s2w / sw)
    zval = mu / se if se > 0 else math.copysign(math.inf, mu) if mu != 0 else math.nan
    if math.isnan(df):
        crit, pval = float(special.ndtri(p)), float(2 * special.ndtr(-abs(zval)))
    else:
        crit, pval = float(special.stdtrit(df, p)), float(2 * special.stdtr(df, -abs(zval)))
    vt = (k - 1) / trp0
    if method == "FE":
        i2 = 0.0 if q == 0 else max(0.0, 100 * (q - (k - 1)) / q)
        h2 = q / (k - 1)
    else:
        i2, h2 = 100 * t / (vt + t), t / vt + 1
    lb = ub = math.nan
    if tau2_ci and method != "FE":
        lb, ub = _qprofile(y, v, k, q, t, level, con.tol)
    half = crit * math.sqrt(se**2 + t)
    return {
        "estimate": mu, "se": se, "zval": zval, "pvalue": pval, "ci_low": mu - crit * se,
        "ci_high": mu + crit * se, "tau2": t,
        "se_tau2": _se_tau2(y, v, k, t, w0, sw0, trp0, method), "df": df, "k": k,
        "q": q, "q_df": k - 1, "q_pvalue": float(special.chdtrc(k - 1, q)), "i2": i2, "h2": h2,
        "tau2_ci_low": lb, "tau2_ci_high": ub, "i2_ci_low": 100 * lb / (vt + lb),
        "i2_ci_high": 100 * ub / (vt + ub), "h2_ci_low": lb / vt + 1, "h2_ci_high": ub / vt + 1,
        "pi_low": mu - half, "pi_high": mu + half, "weights": 100 * w / sw,
    }
