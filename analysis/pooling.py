r"""Fixed- and random-effects pooling, Mantel-Haenszel and Peto, as metafor computes them.

The random-effects model is :math:`y_i = \mu + u_i + e_i`, :math:`u_i \sim N(0, \tau^2)`,
:math:`e_i \sim N(0, v_i)`. :func:`pool` estimates :math:`\tau^2` with one of nine estimators,
pools with weights :math:`w_i = 1/(v_i + \hat\tau^2)`, and reports heterogeneity (Q, I², H²),
Q-profile confidence intervals for :math:`\tau^2`, I² and H² (metafor ``confint``) and the
prediction interval (metafor ``predict``).

All estimators are written once, vectorised over rows of a 2-D array: a single analysis is a
batch of one row, so ``pool(yi2d, vi2d)`` and a loop of ``pool(yi, vi)`` run the same code.

References
----------
Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the
random-effects model. J Educ Behav Stat 30:261-293 (ML, REML, HE, HS, DL, SJ; Fisher scoring).
Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in meta-analysis.
Stat Med 26:37-52 (Q-profile). Paule RC, Mandel J (1982). J Res Natl Bur Stand 87:377-385 (PM).
Morris CN (1983). JASA 78:47-55 (EB). Knapp G, Hartung J (2003). Stat Med 22:2693-2710.
Higgins JPT, Thompson SG (2002). Stat Med 21:1539-1558 (I², H²). Robins J, Breslow N,
Greenland S (1986). Biometrics 42:311-323 (MH OR variance). Greenland S, Robins JM (1985).
Biometrics 41:55-68 (MH RR). Sato T, Greenland S, Robins JM (1989). Biometrics 45:1323-1324
(MH RD). Yusuf S et al. (1985). Prog Cardiovasc Dis 27:335-371 (Peto).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from analysis._checks import as_float_array, check_choice, check_level
from analysis._single import fit_single
from analysis.errors import ConvergenceError
from analysis.results import BatchPoolResult, MantelHaenszelResult, PoolResult

__all__ = ["METHODS", "Control", "mantel_haenszel", "peto", "pool"]

METHODS = ("FE", "DL", "REML", "PM", "SJ", "HE", "HS", "ML", "EB")
CI_METHODS = ("z", "hksj", "hksj_adhoc")
CONVENTIONS = ("metafor", "revman5")
_EPS = np.finfo(float).eps


# --------------------------------------------------------------------------------------------
# control settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Control:
    r"""Settings of the iterative estimators (names follow metafor's ``control`` list).

    Attributes
    ----------
    threshold : float
        Fisher scoring (ML, REML, EB) stops when :math:`|\tau^2_{new} - \tau^2_{old}|` is at
        most this (metafor default 1e-5; ours 1e-12 so that results are exact to ~1e-10).
    maxiter : int
        Maximum number of Fisher scoring iterations (metafor default 100).
    tol : float
        Absolute tolerance of the root finders (PM estimator, Q-profile limits) and of the
        log-likelihood check at :math:`\tau^2 = 0` (metafor default ``eps**0.25``).
    tau2_max : float or None
        Upper end of the PM search interval (default ``max(100, 10 mad(y)^2)`` as metafor).
    ll0check : bool
        After ML/REML convergence, set :math:`\tau^2 = 0` when the (restricted) likelihood at
        0 is larger, as metafor does.
    stepadj : float
        Step length factor of Fisher scoring.
    algorithm : {"newton", "fisher"}
        ML/REML/EB solver. ``"newton"`` (default): safeguarded Newton iteration on the score
        equation (bracketed, quadratic convergence, converges where Fisher scoring
        oscillates); it reaches the same root as metafor. ``"fisher"``: metafor's Fisher
        scoring step for step (same iterates, same stopping rule, same failures); use it
        with ``threshold=1e-5, maxiter=100`` to reproduce metafor's defaults digit for digit.
    """

    threshold: float = 1e-12
    maxiter: int = 1000
    tol: float = 1e-12
    tau2_max: float | None = None
    ll0check: bool = True
    stepadj: float = 1.0
    algorithm: str = "newton"

    @classmethod
    def from_any(cls, control: Control | Mapping[str, Any] | None) -> Control:
        """Build from ``None``, a ``Control`` or a mapping of field names."""
        if control is None:
            return cls()
        if isinstance(control, Control):
            return control
        if not isinstance(control, Mapping):
            raise ValueError(
                f"argument 'control' = {control!r} is not allowed; use a dict with keys "
                "threshold, maxiter, tol, tau2_max, ll0check, stepadj, algorithm"
            )
        allowed = ("threshold", "maxiter", "tol", "tau2_max", "ll0check", "stepadj", "algorithm")
        unknown = [key for key in control if key not in allowed]
        if unknown:
            raise ValueError(
                f"argument 'control' has unknown key(s) {unknown}; allowed: {', '.join(allowed)}"
            )
        out = cls(**dict(control))
        check_choice("control['algorithm']", out.algorithm, ("newton", "fisher"))
        return out


# --------------------------------------------------------------------------------------------
# small vectorised helpers (rows = analyses, columns = studies; invalid cells have M == False)
# --------------------------------------------------------------------------------------------


_ONES: dict[int, np.ndarray] = {}


def _rsum(x: np.ndarray) -> np.ndarray:
    """Return row sums as a matrix-vector product (faster than ``sum(axis=1)`` on short rows)."""
    k = x.shape[1]
    ones = _ONES.get(k)
    if ones is None:
        ones = _ONES.setdefault(k, np.ones(k))
    return x @ ones


def _wstats(y: np.ndarray, v: np.ndarray, m: np.ndarray, tau2: np.ndarray) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray
]:
    """Weights, their sum, the weighted mean and the masked residuals at ``tau2``."""
    w = m / (v + tau2[:, None])
    sw = _rsum(w)
    mu = _rsum(w * y) / sw
    r = m * (y - mu[:, None])
    return w, sw, mu, r


def _psq(w: np.ndarray, sw: np.ndarray, a: Any = 1.0, b: Any = 1.0) -> np.ndarray:
    r""":math:`\sum_{ij} P_{ij}^2 a_i b_j` for :math:`P = W - w w^\top / \sum w`."""
    w2 = w * w
    return (
        _rsum(a * b * w2)
        - 2 * _rsum(a * b * w2 * w) / sw
        + _rsum(a * w2) * _rsum(b * w2) / sw**2
    )


def _qgen(y: np.ndarray, v: np.ndarray, m: np.ndarray, tau2: np.ndarray) -> tuple[
    np.ndarray, np.ndarray
]:
    r"""Return :math:`Q(\tau^2) = \sum w_i (y_i - \hat\mu)^2` and its derivative."""
    w, _, _, r = _wstats(y, v, m, tau2)
    wr2 = w * r * r
    return _rsum(wr2), -_rsum(w * wr2)


def _solve_q(
    y: np.ndarray,
    v: np.ndarray,
    m: np.ndarray,
    target: np.ndarray,
    hi: np.ndarray,
    tol: float,
) -> np.ndarray:
    r"""Solve :math:`Q(\tau^2) = \text{target}` on :math:`[0, hi]` for every row.

    Requires :math:`Q(0) \ge \text{target} \ge Q(hi)` (Q is decreasing). Newton iteration on
    :math:`1/Q(\tau^2) - 1/\text{target}` (nearly linear in :math:`\tau^2`), safeguarded by
    bisection whenever a step leaves the current bracket; the result is exact to far below
    metafor's ``uniroot`` tolerance (``tol`` = 1e-12 in the reference fixture).
    """
    n = y.shape[0]
    x = np.zeros(n)
    lo = np.zeros(n)
    up = hi.astype(float).copy()
    act = np.arange(n)
    # Newton converges quadratically: once a step is below 1e-8 (relative), the error left
    # after taking it is of order 1e-16, so stop there (checked against 300-step bisection).
    xtol = max(min(tol, 1e-13), 1e-8)
    ya, va, ma, ta = y, v, m, target
    for _ in range(300):
        xa = x[act] if act.size < n else x
        w, _, _, r = _wstats(ya, va, ma, xa)
        wr2 = w * r * r
        q = _rsum(wr2)
        s2 = _rsum(w * wr2)
        f = q - ta
        la = np.where(f > 0, xa, lo[act])
        ua = np.where(f < 0, xa, up[act])
        with np.errstate(divide="ignore", invalid="ignore"):
            new = xa + q * f / (ta * s2)
        bad = ~(new > la) | ~(new < ua)
        if bad.any():
            new = np.where(bad, 0.5 * (la + ua), new)
        scale = np.maximum(1.0, new)
        done = (f == 0) | (np.abs(new - xa) <= xtol * scale) & ~bad | (
            ua - la <= 4 * _EPS * scale)
        lo[act], up[act], x[act] = la, ua, new
        if done.all():
            return x
        if done.any():
            act = act[~done]
            ya, va, ma, ta = y[act], v[act], m[act], target[act]
    raise ConvergenceError(
        "root finding for tau^2 (PM estimator or Q-profile limit) did not converge in 300 "
        "iterations; check the data for extreme variances or try another method"
    )


# --------------------------------------------------------------------------------------------
# tau^2 estimators (intercept-only model, vectorised over rows)
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Rows:
    """Padded data of a batch: y, v, mask, per-row k and FE quantities."""

    y: np.ndarray
    v: np.ndarray
    m: np.ndarray
    k: np.ndarray
    w0: np.ndarray
    sw0: np.ndarray
    q: np.ndarray
    trp0: np.ndarray

    @classmethod
    def build(cls, y: np.ndarray, v: np.ndarray, m: np.ndarray) -> _Rows:
        k = m.sum(axis=1).astype(float)
        w0, sw0, _, r0 = _wstats(y, v, m, np.zeros(y.shape[0]))
        q = np.maximum(0.0, _rsum(w0 * r0 * r0))
        trp0 = sw0 - _rsum(w0 * w0) / sw0
        return cls(y, v, m, k, w0, sw0, q, trp0)

    def take(self, idx: np.ndarray) -> _Rows:
        if idx.size == self.k.size:
            return self
        return _Rows(*(getattr(self, f)[idx] for f in self.__slots__))


def _tau2_he(d: _Rows) -> np.ndarray:
    ybar = _rsum(d.y * d.m) / d.k
    rss = _rsum(d.m * (d.y - ybar[:, None]) ** 2)
    trpv = _rsum(d.v * d.m) * (d.k - 1) / d.k
    return (rss - trpv) / (d.k - 1)


def _tau2_sj0(d: _Rows) -> np.ndarray:
    ybar = _rsum(d.y * d.m) / d.k
    return _rsum(d.m * (d.y - ybar[:, None]) ** 2) / d.k


def _tau2_sj(d: _Rows) -> np.ndarray:
    t0 = _tau2_sj0(d)
    w, _, _, r = _wstats(d.y, d.v, d.m, t0)
    return t0 * _rsum(w * r * r) / (d.k - 1)


def _fisher_step(d: _Rows, tau2: np.ndarray, method: str) -> np.ndarray:
    w, sw, _, r = _wstats(d.y, d.v, d.m, tau2)
    w2 = w * w
    sw2 = _rsum(w2)
    if method == "ML":
        return (_rsum(w2 * r * r) - sw) / sw2
    if method == "REML":
        trp = sw - sw2 / sw
        trpp = sw2 - 2 * _rsum(w2 * w) / sw + (sw2 / sw) ** 2
        return (_rsum(w2 * r * r) - trp) / trpp
    return (_rsum(w * r * r) * d.k / (d.k - 1) - d.k) / sw  # EB


def _halve(tau2: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """Metafor's ``while (tau2 + adj < 0) adj <- adj/2`` (which ends at -0 when tau2 == 0)."""
    adj = np.where(np.isnan(adj), 0.0, adj)
    adj = np.where((tau2 == 0) & (adj < 0), 0.0, adj)
    neg = tau2 + adj < 0
    while np.any(neg):
        adj = np.where(neg, adj / 2, adj)
        neg = tau2 + adj < 0
    return adj


def _loglik(d: _Rows, tau2: np.ndarray, reml: bool) -> np.ndarray:
    w, sw, _, r = _wstats(d.y, d.v, d.m, tau2)
    ll = -0.5 * _rsum(d.m * np.log(np.where(d.m, d.v + tau2[:, None], 1.0)))
    ll -= 0.5 * _rsum(w * r * r)
    if reml:
        ll -= 0.5 * np.log(sw)
    return ll


def _tau2_fisher(d: _Rows, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    """Fisher scoring for ML, REML and EB from the (truncated) HE estimate, as metafor."""
    tau2 = np.maximum(0.0, _tau2_he(d))
    conv = np.ones(tau2.shape, dtype=bool)
    active = np.arange(tau2.size)
    it = 0
    while active.size:
        it += 1
        sub = d.take(active)
        adj = _halve(tau2[active], _fisher_step(sub, tau2[active], method) * con.stepadj)
        new = tau2[active] + adj
        change = np.abs(new - tau2[active])
        tau2[active] = new
        if it > con.maxiter:
            conv[active] = False
            break
        active = active[change > con.threshold]
    if method in ("ML", "REML") and con.ll0check:
        tau2 = _ll0check(d, tau2, conv, method, con)
    return tau2, conv


def _ll0check(d: _Rows, tau2: np.ndarray, conv: np.ndarray, method: str,
              con: Control) -> np.ndarray:
    """Metafor's check: set tau^2 = 0 where the likelihood at 0 is larger (by > tol)."""
    check = conv & (tau2 > con.threshold)
    if np.any(check):
        idx = np.flatnonzero(check)
        sub = d.take(idx)
        reml = method == "REML"
        worse = _loglik(sub, np.zeros(idx.size), reml) - _loglik(sub, tau2[idx], reml) > con.tol
        if np.any(worse):
            warnings.warn(
                f"{method}: the iteration stopped at a local maximum of the likelihood; tau^2 "
                "set to 0 as metafor does (check the profile likelihood)",
                RuntimeWarning,
                stacklevel=4,
            )
        tau2 = tau2.copy()
        tau2[idx[worse]] = 0.0
    return tau2


def _score(d: _Rows, tau2: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    r"""Score of the (restricted) log-likelihood (times 2) and its derivative in tau^2.

    REML: :math:`S = y^\top P^2 y - \mathrm{tr}P`, ML: :math:`S = y^\top P^2 y - \sum w`;
    :math:`S' = -2 y^\top P^3 y + \mathrm{tr}P^2` (ML: :math:`+ \sum w^2`).
    """
    w, sw, _, r = _wstats(d.y, d.v, d.m, tau2)
    w2 = w * w
    sw2 = _rsum(w2)
    w2r = w2 * r
    ypp = _rsum(w2r * r)
    yppp = _rsum(w2r * w * r) - _rsum(w2r) ** 2 / sw
    if method == "REML":
        return ypp - (sw - sw2 / sw), -2 * yppp + sw2 - 2 * _rsum(w2 * w) / sw + (sw2 / sw) ** 2
    return ypp - sw, -2 * yppp + sw2


def _tau2_newton(d: _Rows, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    """ML/REML by bracketed Newton iteration on the score; 0 when the score at 0 is <= 0."""
    n = d.k.size
    tau2 = np.zeros(n)
    conv = np.ones(n, dtype=bool)
    s0, _ = _score(d, tau2, method)
    idx = np.flatnonzero(s0 > 0)
    if idx.size == 0:
        return tau2, conv
    sub = d.take(idx)
    x = np.maximum(0.0, _tau2_he(sub))
    lo = np.zeros(idx.size)
    hi = np.full(idx.size, np.inf)
    act = np.arange(idx.size)
    for _ in range(con.maxiter):
        part = sub.take(act)
        sc, ds = _score(part, x[act], method)
        lo[act] = np.where(sc > 0, x[act], lo[act])
        hi[act] = np.where(sc < 0, x[act], hi[act])
        with np.errstate(divide="ignore", invalid="ignore"):
            new = x[act] - sc / ds
        fine = np.isfinite(new) & (ds < 0) & (new > lo[act]) & (new < hi[act])
        fallback = np.where(np.isfinite(hi[act]), 0.5 * (lo[act] + hi[act]),
                            2 * x[act] + 1.0)
        new = np.where(fine, new, fallback)
        step = np.abs(new - x[act])
        x[act] = new
        # Quadratic convergence: after a Newton step below 1e-8 (relative) the remaining error
        # is ~1e-16, far inside `threshold`; bisection steps must shrink to `threshold` itself.
        # Steps are relative to tau^2 (floored at 1e-10), not to max(1, tau^2): with very small
        # sampling variances the score is steep near 0 and Newton creeps in tiny steps there.
        tol_step = np.where(fine, np.maximum(con.threshold, 1e-8), con.threshold)
        act = act[~((sc == 0) | (step <= tol_step * np.maximum(new, 1e-10)))]
        if act.size == 0:
            break
    conv[idx[act]] = False
    tau2[idx] = x
    return tau2, conv


def _tau2_eb(d: _Rows) -> tuple[np.ndarray, np.ndarray]:
    """EB for the intercept-only model: the root of Q(tau^2) = k - 1 (0 if Q < k - 1)."""
    tau2 = np.zeros(d.k.shape)
    need = d.q > d.k - 1
    if np.any(need):
        idx = np.flatnonzero(need)
        sub = d.take(idx)
        hi = np.maximum(100.0, 10 * sub.q)
        for _ in range(60):
            q_hi, _ = _qgen(sub.y, sub.v, sub.m, hi)
            low = q_hi > sub.k - 1
            if not np.any(low):
                break
            hi = np.where(low, hi * 10, hi)
        tau2[idx] = _solve_q(sub.y, sub.v, sub.m, sub.k - 1, hi, 1e-13)
    return tau2, np.ones(d.k.shape, dtype=bool)


def _pm_upper(d: _Rows, con: Control) -> np.ndarray:
    if con.tau2_max is not None:
        return np.full(d.k.shape, float(con.tau2_max))
    ynan = np.where(d.m, d.y, np.nan)
    med = np.nanmedian(ynan, axis=1)
    mad = 1.4826 * np.nanmedian(np.abs(ynan - med[:, None]), axis=1)
    return np.maximum(100.0, 10 * mad**2)


def _tau2_pm(d: _Rows, con: Control) -> tuple[np.ndarray, np.ndarray]:
    target = d.k - 1
    hi = _pm_upper(d, con)
    tau2 = np.zeros(d.k.shape)
    conv = np.ones(d.k.shape, dtype=bool)
    need = d.q >= target
    if np.any(need):
        idx = np.flatnonzero(need)
        q_hi, _ = _qgen(d.y[idx], d.v[idx], d.m[idx], hi[idx])
        too_low = q_hi > target[idx]
        conv[idx[too_low]] = False
        ok = idx[~too_low]
        if ok.size:
            tau2[ok] = _solve_q(d.y[ok], d.v[ok], d.m[ok], target[ok], hi[ok], con.tol)
    return tau2, conv


def _estimate_tau2(d: _Rows, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    """Return (tau2, converged) for every row with k >= 2."""
    ok = np.ones(d.k.shape, dtype=bool)
    if method == "FE":
        return np.zeros(d.k.shape), ok
    if method == "DL":
        return np.maximum(0.0, (d.q - (d.k - 1)) / d.trp0), ok
    if method == "HE":
        return np.maximum(0.0, _tau2_he(d)), ok
    if method == "HS":
        return np.maximum(0.0, (d.q - d.k) / d.sw0), ok
    if method == "SJ":
        return np.maximum(0.0, _tau2_sj(d)), ok
    if method == "PM":
        return _tau2_pm(d, con)
    if con.algorithm == "fisher":
        return _tau2_fisher(d, method, con)
    if method == "EB":
        return _tau2_eb(d)
    tau2, conv = _tau2_newton(d, method, con)
    if con.ll0check:
        tau2 = _ll0check(d, tau2, conv, method, con)
    return tau2, conv


def _se_tau2(d: _Rows, method: str, tau2: np.ndarray) -> np.ndarray:
    """Return the standard error of the tau^2 estimate (metafor's formula per estimator)."""
    k, t = d.k, tau2
    if method == "FE":
        return np.full(k.shape, np.nan)
    if method in ("DL", "HS"):
        inner = 2 * (k - 1) + 4 * t * d.trp0 + 2 * t**2 * _psq(d.w0, d.sw0)
        return np.sqrt(inner) / (d.trp0 if method == "DL" else d.sw0)
    if method == "HE":
        one = d.m.astype(float)
        trpv = _rsum(d.v * d.m) * (k - 1) / k
        inner = 2 * _psq(one, k, d.v, d.v) + 4 * t * trpv + 2 * t**2 * (k - 1)
        return np.sqrt(inner) / (k - 1)
    if method == "SJ":
        t0 = _tau2_sj0(d)
        w, sw, _, _ = _wstats(d.y, d.v, d.m, t0)
        inner = 2 * _psq(w, sw, d.v, d.v) + 4 * t * _psq(w, sw, 1.0, d.v) + 2 * t**2 * _psq(w, sw)
        return np.sqrt(t0**2 / (k - 1) ** 2 * inner)
    w, sw, _, _ = _wstats(d.y, d.v, d.m, t)
    if method == "ML":
        return np.sqrt(2 / _rsum(w * w))
    if method == "REML":
        return np.sqrt(2 / _psq(w, sw))
    return np.sqrt(2 * k**2 / (k - 1) / sw**2)  # EB, PM


def _qprofile(d: _Rows, tau2: np.ndarray, level: float, tol: float) -> tuple[
    np.ndarray, np.ndarray
]:
    """Q-profile limits for tau^2 exactly as metafor ``confint.rma.uni`` (type="QP")."""
    alpha = 1 - level
    df = d.k - 1
    crit_u = special.chdtri(df, alpha / 2)
    crit_l = special.chdtri(df, 1 - alpha / 2)
    tmax = np.maximum(100.0, 10 * tau2)
    q0 = d.q
    qmax, _ = _qgen(d.y, d.v, d.m, tmax)
    lb = np.full(tau2.shape, np.nan)
    ub = np.full(tau2.shape, np.nan)
    null = q0 < crit_l
    lb[null] = 0.0
    ub[null] = 0.0
    ub_max = ~null & (qmax > crit_l)
    ub[ub_max] = tmax[ub_max]
    ub_root = ~null & ~ub_max
    both_max = qmax > crit_u
    lb[both_max] = tmax[both_max]
    ub[both_max] = tmax[both_max]
    ub_root &= ~both_max
    lb_zero = ~both_max & ~null & (q0 < crit_u)
    lb[lb_zero] = 0.0
    lb_root = ~both_max & ~null & ~lb_zero
    rows = np.concatenate([np.flatnonzero(lb_root), np.flatnonzero(ub_root)])
    if rows.size:
        targets = np.concatenate([crit_u[lb_root], crit_l[ub_root]])
        roots = _solve_q(d.y[rows], d.v[rows], d.m[rows], targets, tmax[rows], tol)
        n_lb = int(lb_root.sum())
        lb[np.flatnonzero(lb_root)] = roots[:n_lb]
        ub[np.flatnonzero(ub_root)] = roots[n_lb:]
    return lb, ub


# --------------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------------


def _crit_p(stat: np.ndarray, df: np.ndarray, use_t: bool, level: float) -> tuple[
    np.ndarray, np.ndarray
]:
    q = 1 - (1 - level) / 2
    if use_t:
        with np.errstate(invalid="ignore"):
            return special.stdtrit(df, q), 2 * special.stdtr(df, -np.abs(stat))
    return np.full(stat.shape, special.ndtri(q)), 2 * special.ndtr(-np.abs(stat))


def _fail_message(method: str, con: Control) -> str:
    if method == "PM":
        return (
            "PM estimator: Q(tau2_max) is still above k - 1 (the search interval's upper end, "
            "control tau2_max, is too low); pass control={'tau2_max': ...} with a larger value "
            "or use method='REML' or 'DL'"
        )
    algo = "Fisher scoring" if con.algorithm == "fisher" else "Newton iteration"
    return (
        f"{method} estimator: {algo} did not converge in {con.maxiter} iterations "
        f"(threshold {con.threshold:g}); try control={{'maxiter': {10 * con.maxiter}}}, "
        "control={'algorithm': 'newton'} (if Fisher scoring oscillates), or another method "
        "('PM', 'DL')"
    )


def _engine(
    y: np.ndarray,
    v: np.ndarray,
    m: np.ndarray,
    method: str,
    ci: str,
    level: float,
    tau2_ci: bool,
    con: Control,
    convention: str,
    errors: str,
) -> dict[str, np.ndarray]:
    """Fit every row; return a dict of arrays named like :class:`PoolResult` fields."""
    y = np.where(m, y, 0.0)
    v = np.where(m, v, 1.0)
    d = _Rows.build(y, v, m)
    n = y.shape[0]
    k = d.k
    multi = k >= 2
    tau2 = np.zeros(n)
    conv = np.ones(n, dtype=bool)
    se_tau2 = np.full(n, np.nan)
    if np.any(multi):
        idx = np.flatnonzero(multi)
        sub = d.take(idx)
        t, c = _estimate_tau2(sub, method, con)
        tau2[idx], conv[idx] = t, c
        if not np.all(c) and errors == "raise":
            rows = idx[~c].tolist()
            where = "" if n == 1 else f" (rows {rows[:10]}{'...' if len(rows) > 10 else ''})"
            raise ConvergenceError(_fail_message(method, con) + where)
        se_tau2[idx] = _se_tau2(sub, method, tau2[idx])
    w, sw, mu, r = _wstats(y, v, m, tau2)
    use_t = ci in ("hksj", "hksj_adhoc")
    s2w = np.ones(n)
    df = np.full(n, np.nan)
    if use_t:
        rss = _rsum(w * r * r)
        with np.errstate(divide="ignore", invalid="ignore"):
            s2w = np.where(rss <= _EPS, 0.0, rss / (k - 1))
        if ci == "hksj_adhoc":
            s2w = np.maximum(s2w, 1.0)
        s2w = np.where(multi, s2w, 1.0)
        df = np.where(multi, k - 1, np.nan)
    se = np.sqrt(s2w / sw)
    with np.errstate(divide="ignore", invalid="ignore"):
        zval = mu / se
    t_rows = use_t & multi
    crit, pval = _crit_p(zval, np.where(multi, k - 1, 1.0), False, level)
    if use_t:
        crit_t, pval_t = _crit_p(zval, np.where(multi, k - 1, 1.0), True, level)
        crit = np.where(t_rows, crit_t, crit)
        pval = np.where(t_rows, pval_t, pval)
    out: dict[str, np.ndarray] = {
        "estimate": mu, "se": se, "zval": zval, "pvalue": pval,
        "ci_low": mu - crit * se, "ci_high": mu + crit * se,
        "tau2": tau2, "se_tau2": se_tau2, "df": df, "k": k.astype(int),
    }
    q = np.where(multi, d.q, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vt = (k - 1) / d.trp0
        if method == "FE" or convention == "revman5":
            i2 = np.maximum(0.0, 100 * (q - (k - 1)) / q)
            h2 = q / (k - 1)
        else:
            i2 = 100 * tau2 / (vt + tau2)
            h2 = tau2 / vt + 1
        q_p = special.chdtrc(np.maximum(k - 1, 1), q)
    out.update(
        q=q, q_df=(k - 1).astype(int), q_pvalue=np.where(multi, q_p, 1.0),
        i2=np.where(multi, i2, 0.0), h2=np.where(multi, h2, 1.0),
    )
    _add_profile(out, d, tau2, multi, method, level, tau2_ci, con, vt)
    _add_prediction(out, mu, se, tau2, crit, k, level, convention, multi)
    with np.errstate(invalid="ignore"):
        out["weights"] = np.where(m, 100 * w / sw[:, None], np.nan)
    out["converged"] = conv
    if not np.all(conv):
        for key, val in out.items():
            if key not in ("k", "q_df", "converged", "weights") and val.dtype.kind == "f":
                val[~conv] = np.nan
    return out


def _add_profile(
    out: dict[str, np.ndarray],
    d: _Rows,
    tau2: np.ndarray,
    multi: np.ndarray,
    method: str,
    level: float,
    tau2_ci: bool,
    con: Control,
    vt: np.ndarray,
) -> None:
    n = tau2.shape[0]
    lb = np.full(n, np.nan)
    ub = np.full(n, np.nan)
    if tau2_ci and method != "FE" and np.any(multi):
        idx = np.flatnonzero(multi)
        lb[idx], ub[idx] = _qprofile(d.take(idx), tau2[idx], level, con.tol)
    with np.errstate(invalid="ignore", divide="ignore"):
        out.update(
            tau2_ci_low=lb, tau2_ci_high=ub,
            i2_ci_low=100 * lb / (vt + lb), i2_ci_high=100 * ub / (vt + ub),
            h2_ci_low=lb / vt + 1, h2_ci_high=ub / vt + 1,
        )


def _add_prediction(
    out: dict[str, np.ndarray],
    mu: np.ndarray,
    se: np.ndarray,
    tau2: np.ndarray,
    crit: np.ndarray,
    k: np.ndarray,
    level: float,
    convention: str,
    multi: np.ndarray,
) -> None:
    if convention == "revman5":
        with np.errstate(invalid="ignore"):
            crit = np.where(k >= 3, special.stdtrit(np.maximum(k - 2, 1), 1 - (1 - level) / 2),
                            np.nan)
    half = crit * np.sqrt(se**2 + tau2)
    out["pi_low"] = mu - half
    out["pi_high"] = mu + half


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def _split_input(yi: Any, vi: Any) -> tuple[Any, Any]:
    if isinstance(yi, pd.DataFrame):
        if vi is not None:
            raise ValueError("argument 'vi' must be None when 'yi' is a DataFrame with yi, vi")
        missing = [c for c in ("yi", "vi") if c not in yi.columns]
        if missing:
            raise ValueError(
                f"argument 'yi' is a DataFrame without column(s) {missing}; it needs yi and vi"
            )
        return yi["yi"].to_numpy(dtype=float), yi["vi"].to_numpy(dtype=float)
    if vi is None:
        raise ValueError("argument 'vi' is missing; give sampling variances (or a yi/vi frame)")
    return yi, vi


def _check_data(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    if y.shape != v.shape:
        raise ValueError(f"arguments 'yi' and 'vi' differ in shape: {y.shape} vs {v.shape}")
    m = np.isfinite(y) & np.isfinite(v)
    bad = m & (v <= 0)
    if np.any(bad):
        raise ValueError(
            f"argument 'vi' has non-positive value(s) {v[bad][:5].tolist()}; sampling variances "
            "must be > 0"
        )
    inf = (np.isinf(y) | np.isinf(v))
    if np.any(inf):
        raise ValueError("arguments 'yi'/'vi' contain infinite values; use NaN for missing")
    return m


def _check_options(method: str, ci: str, convention: str, errors: str) -> None:
    check_choice("method", method, METHODS)
    check_choice("ci", ci, CI_METHODS)
    check_choice("convention", convention, CONVENTIONS)
    check_choice("errors", errors, ("raise", "nan"))
    if convention == "revman5":
        if method not in ("FE", "DL"):
            raise ValueError(
                f"argument 'method' = {method!r} is not allowed with convention='revman5'; "
                "RevMan 5 uses 'FE' (inverse variance) or 'DL'"
            )
        if ci != "z":
            raise ValueError("argument 'ci' must be 'z' with convention='revman5'")


def pool(
    yi: Any,
    vi: Any = None,
    method: str = "REML",
    ci: str = "z",
    level: float = 0.95,
    *,
    tau2_ci: bool = True,
    control: Control | Mapping[str, Any] | None = None,
    convention: str = "metafor",
    errors: str = "raise",
    measure: str | None = None,
) -> PoolResult | BatchPoolResult:
    r"""Pool ``yi`` with sampling variances ``vi`` in a fixed- or random-effects model.

    Parameters
    ----------
    yi : array_like or pandas.DataFrame
        Effect sizes (1-D: one analysis; 2-D: ``n_analyses x k``, NaN padding allowed), or a
        DataFrame with columns ``yi`` and ``vi``.
    vi : array_like, optional
        Sampling variances, same shape as ``yi`` (omit when ``yi`` is a DataFrame).
    method : {"REML", "FE", "DL", "PM", "SJ", "HE", "HS", "ML", "EB"}
        Estimator of :math:`\tau^2` (metafor codes; ``"FE"`` is metafor's ``"EE"``/``"FE"``).
    ci : {"z", "hksj", "hksj_adhoc"}
        Wald-type z inference, or Knapp-Hartung(-Sidik-Jonkman) t on k - 1 df (metafor
        ``test="knha"``); ``"hksj_adhoc"`` floors the KH scale factor at 1 (``test="adhoc"``).
    level : float
        Confidence level (proportion).
    tau2_ci : bool
        Compute Q-profile intervals for :math:`\tau^2`, I² and H².
    control : Control or dict, optional
        Iteration settings, see :class:`Control`. ``{"threshold": 1e-5, "maxiter": 100,
        "tol": 2**-13}`` reproduces metafor's defaults exactly.
    convention : {"metafor", "revman5"}
        ``"revman5"``: only FE/DL with z, I² = (Q - df)/Q and the prediction interval on
        t with k - 2 df (Higgins, Thompson & Spiegelhalter 2009), as RevMan 5.
    errors : {"raise", "nan"}
        For 2-D input: raise :class:`ConvergenceError` on any failing row, or return NaN for
        those rows (flagged in ``converged``). 1-D input always raises.
    measure : str, optional
        Recorded on the result (e.g. ``"OR"``, so that display code knows to exponentiate);
        taken from a ``measure`` column when ``yi`` is a DataFrame that has one.

    Returns
    -------
    PoolResult or BatchPoolResult
        Fields ``estimate, se, zval, pvalue, ci_low, ci_high, tau2, se_tau2, tau2_ci_low,
        tau2_ci_high, i2, i2_ci_low, i2_ci_high, h2, h2_ci_low, h2_ci_high, q, q_df,
        q_pvalue, pi_low, pi_high, k, method, ci_method, level, weights``.

    Raises
    ------
    ConvergenceError
        ML/REML/EB Fisher scoring exceeded ``maxiter``, or PM's search interval is too short.
    ValueError
        Invalid arguments (the message names the argument, the value and what is allowed).

    Notes
    -----
    With :math:`w_i = 1/v_i`, :math:`Q = \sum w_i (y_i - \hat\mu_{FE})^2` and
    :math:`P = W - W 1 (1^\top W 1)^{-1} 1^\top W`:

    - DL: :math:`\hat\tau^2 = \max\{0, (Q - (k-1)) / \mathrm{tr} P\}`;
    - HE: :math:`(\sum (y_i - \bar y)^2 - \frac{k-1}{k}\sum v_i)/(k-1)`, truncated at 0;
    - HS: :math:`\max\{0, (Q - k)/\sum w_i\}`;
    - SJ: :math:`\hat\tau_0^2 = \sum(y_i - \bar y)^2/k`, then
      :math:`\hat\tau^2 = \hat\tau_0^2\,Q(\hat\tau_0^2)/(k-1)`;
    - PM: root of :math:`Q(\tau^2) = k - 1` (0 when :math:`Q(0) < k-1`);
    - ML/REML/EB: Fisher scoring from the truncated HE value with step halving at 0,
      ML :math:`\Delta = (y^\top P^2 y - \sum w)/\sum w^2`, REML
      :math:`\Delta = (y^\top P^2 y - \mathrm{tr}P)/\mathrm{tr}P^2`, EB
      :math:`\Delta = (\frac{k}{k-1} y^\top P y - k)/\sum w`; then, for ML/REML, the
      likelihood at :math:`\tau^2 = 0` is checked as metafor does.

    The estimate is :math:`\hat\mu = \sum w_i^* y_i / \sum w_i^*` with
    :math:`w_i^* = 1/(v_i + \hat\tau^2)`, :math:`SE = (\sum w_i^*)^{-1/2}` (KH: times
    :math:`\sqrt{\sum w_i^* (y_i - \hat\mu)^2/(k-1)}`). I² = :math:`100\hat\tau^2/(\hat\tau^2 +
    \tilde s^2)` with :math:`\tilde s^2 = (k-1)/\mathrm{tr}P` (FE: :math:`(Q - df)/Q`),
    H² = :math:`\hat\tau^2/\tilde s^2 + 1`. The Q-profile interval solves
    :math:`Q(\tau^2) = \chi^2_{k-1, 1-\alpha/2}` and :math:`\chi^2_{k-1,\alpha/2}` on
    :math:`[0, \max(100, 10\hat\tau^2)]` with metafor's truncation rules. The prediction
    interval is :math:`\hat\mu \pm c\sqrt{SE^2 + \hat\tau^2}` with the CI's critical value c.
    k = 1 gives :math:`\hat\tau^2 = 0`, Q = 0, I² = 0, H² = 1 and z inference, as metafor.

    Checked against metafor 3.8-1 ``rma()``, ``confint()`` and ``predict()`` on every fixture
    case (all methods x z/knha, textbook and generated data sets) at relative tolerance 1e-6,
    and against RevMan 5's published Fleiss (1993) output for ``convention="revman5"``.
    """
    level = check_level(level)
    _check_options(method, ci, convention, errors)
    con = Control.from_any(control)
    if measure is None and isinstance(yi, pd.DataFrame) and "measure" in yi.columns:
        measures = yi["measure"].dropna().unique()
        measure = str(measures[0]) if len(measures) == 1 else None
    yi, vi = _split_input(yi, vi)
    y = as_float_array("yi", yi, ndim=(1, 2))
    v = as_float_array("vi", vi, ndim=(1, 2))
    m = _check_data(y, v)
    if y.ndim == 2:
        return _pool_batch(y, v, m, method, ci, level, tau2_ci, con, convention, errors)
    keep = np.flatnonzero(m)
    if keep.size == 0:
        raise ValueError("no study has both 'yi' and 'vi' available (k = 0)")
    if keep.size < y.size:
        warnings.warn(
            f"{y.size - keep.size} stud(y/ies) with missing yi or vi omitted from pooling",
            UserWarning, stacklevel=2,
        )
    weights = np.full(y.size, np.nan)
    if keep.size >= 2 and convention == "metafor" and con.algorithm == "newton":
        single = fit_single(y[keep], v[keep], method, ci, level, tau2_ci, con)
        weights[keep] = single.pop("weights")
    else:
        out = _engine(
            y[None, keep], v[None, keep], np.ones((1, keep.size), dtype=bool),
            method, ci, level, tau2_ci, con, convention, "raise",
        )
        weights[keep] = out["weights"][0]
        single = {key: val[0].item() for key, val in out.items()
                  if key not in ("weights", "converged")}
    single["k"] = int(single["k"])
    single["q_df"] = int(single["q_df"])
    return PoolResult(
        **single, method=method, ci_method=ci if single["k"] > 1 else "z", level=level,
        weights=weights, convention=convention, measure=measure,
    )


def _pool_batch(
    y: np.ndarray, v: np.ndarray, m: np.ndarray, method: str, ci: str, level: float,
    tau2_ci: bool, con: Control, convention: str, errors: str,
) -> BatchPoolResult:
    k = m.sum(axis=1)
    if np.any(k == 0):
        raise ValueError(
            f"rows {np.flatnonzero(k == 0)[:10].tolist()} of 'yi' have no study with both yi "
            "and vi (k = 0)"
        )
    out = _engine(y, v, m, method, ci, level, tau2_ci, con, convention, errors)
    return BatchPoolResult(
        **out, method=method, ci_method=ci, level=level, convention=convention
    )


# --------------------------------------------------------------------------------------------
# Mantel-Haenszel and Peto
# --------------------------------------------------------------------------------------------


def _tables(events_t: Any, n_t: Any, events_c: Any, n_c: Any) -> tuple[np.ndarray, ...]:
    arrs = [as_float_array(nm, x) for nm, x in
            (("events_t", events_t), ("n_t", n_t), ("events_c", events_c), ("n_c", n_c))]
    if len({a.shape for a in arrs}) > 1:
        raise ValueError("arguments events_t, n_t, events_c, n_c must have the same length")
    a, n1, c, n2 = arrs
    for name, val in (("events_t", a), ("n_t", n1), ("events_c", c), ("n_c", n2)):
        if np.any(val < 0):
            raise ValueError(f"argument {name!r} has negative value(s); counts must be >= 0")
    if np.any(a > n1) or np.any(c > n2):
        raise ValueError("an event count is larger than its group size (events_t > n_t or "
                         "events_c > n_c)")
    keep = np.isfinite(a) & np.isfinite(n1) & np.isfinite(c) & np.isfinite(n2)
    if not np.any(keep):
        raise ValueError("no complete 2x2 table (k = 0)")
    return a[keep], n1[keep] - a[keep], c[keep], n2[keep] - c[keep]


def _i2_from_q(q: float, df: int) -> float:
    r"""Q-based I² in percent, :math:`\max(0, 100 (Q - df)/Q)` (0 when Q = 0, as in R)."""
    return 0.0 if q == 0 else max(0.0, 100 * (q - df) / q)


def _iv_heterogeneity(
    measure: str, a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, beta: float
) -> tuple[float, int, float, float, float, np.ndarray, np.ndarray]:
    """Q around ``beta`` from escalc yi/vi (add 1/2 to zero-cell tables, double zeros dropped)."""
    from analysis.effects import effect_sizes

    es = effect_sizes(measure, events_t=a, n_t=a + b, events_c=c, n_c=c + d, drop00=True)
    ok = es["yi"].notna().to_numpy()
    yi, vi = es["yi"].to_numpy()[ok], es["vi"].to_numpy()[ok]
    k_yi = int(ok.sum())
    if k_yi > 1 and not np.isfinite(beta):
        return np.nan, k_yi - 1, np.nan, np.nan, np.nan, yi, vi
    if k_yi > 1:
        q = max(0.0, float(np.sum((yi - beta) ** 2 / vi)))
        df = k_yi - 1
        return q, df, float(special.chdtrc(df, q)), _i2_from_q(q, df), q / df, yi, vi
    return 0.0, max(k_yi - 1, 0), 1.0, 0.0, 1.0, yi, vi


def _mh_or(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, correct: bool) -> dict[
    str, float
]:
    n1, n2 = a + b, c + d
    big_n = n1 + n2
    p_, q_ = (a + d) / big_n, (b + c) / big_n
    r_, s_ = a * d / big_n, b * c / big_n
    rr, ss = r_.sum(), s_.sum()
    out = dict.fromkeys(("beta", "se", "mh", "mh_p", "ta", "ta_p"), np.nan)
    if rr > 0 and ss > 0:
        out["beta"] = float(np.log(rr / ss))
        out["se"] = float(np.sqrt(0.5 * ((p_ * r_).sum() / rr**2
                                        + (p_ * s_ + q_ * r_).sum() / (rr * ss)
                                        + (q_ * s_).sum() / ss**2)))
    xt, yt = a + c, b + d
    if xt.sum() > 0 and yt.sum() > 0:
        num = (abs(np.sum(a - n1 / big_n * xt)) - (0.5 if correct else 0.0)) ** 2
        out["mh"] = float(num / np.sum(n1 / big_n * (n2 / big_n) * (xt * (yt / (big_n - 1)))))
        out["mh_p"] = float(special.chdtrc(1, out["mh"]))
    if np.isfinite(out["beta"]):
        out["ta"], out["ta_p"] = _tarone(a, n1, n2, xt, yt, big_n, float(np.exp(out["beta"])))
    return out


def _tarone(a: np.ndarray, n1: np.ndarray, n2: np.ndarray, xt: np.ndarray, yt: np.ndarray,
            big_n: np.ndarray, psi: float) -> tuple[float, float]:
    """Breslow-Day statistic with Tarone's correction (metafor ``rma.mh``)."""
    if psi == 1:
        n11 = n1 / big_n * xt
    else:
        aa = psi * (n1 + xt) + (n2 - xt)
        bb = np.sqrt(aa**2 - 4 * n1 * xt * psi * (psi - 1))
        n11 = (aa - bb) / (2 * (psi - 1))
    pos = (n11 > 0) & (xt > 0) & (yt > 0)
    n11 = n11[pos]
    n12, n21 = n1[pos] - n11, xt[pos] - n11
    n22 = n11 - n1[pos] - xt[pos] + big_n[pos]
    inv = 1 / (1 / n11 + 1 / n12 + 1 / n21 + 1 / n22)
    bd = max(0.0, float(np.sum((a[pos] - n11) ** 2 / inv)))
    ta = max(0.0, bd - float(np.sum(a[pos] - n11) ** 2 / np.sum(inv)))
    k_pos = int(pos.sum())
    return ta, float(special.chdtrc(k_pos - 1, ta)) if k_pos > 1 else np.nan


def _mh_rr(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> tuple[float, float]:
    n1, n2 = a + b, c + d
    big_n = n1 + n2
    rr, ss = np.sum(a * (n2 / big_n)), np.sum(c * (n1 / big_n))
    if a.sum() == 0 or c.sum() == 0:
        return np.nan, np.nan
    se = np.sqrt(np.sum(n1 / big_n * (n2 / big_n) * (a + c) - a / big_n * c) / (rr * ss))
    return float(np.log(rr / ss)), float(se)


def _mh_rd(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> tuple[float, float]:
    n1, n2 = a + b, c + d
    big_n = n1 + n2
    den = np.sum(n1 * (n2 / big_n))
    beta = np.sum(a * (n2 / big_n) - c * (n1 / big_n)) / den
    num = beta * np.sum(c * (n1 / big_n) ** 2 - a * (n2 / big_n) ** 2
                        + n1 / big_n * (n2 / big_n) * (n2 - n1) / 2)
    num += np.sum(a * (n2 - c) / big_n + c * (n1 - a) / big_n) / 2
    return float(beta), float(np.sqrt(num / den**2))


def _revman_cells(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray,
                  measure: str) -> tuple[np.ndarray, ...]:
    """RevMan 5: drop double-zero tables (OR/RR), add 1/2 to every cell of zero-cell tables."""
    if measure in ("OR", "RR"):
        keep = ~(((a == 0) & (c == 0)) | ((b == 0) & (d == 0)))
        a, b, c, d = a[keep], b[keep], c[keep], d[keep]
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    return tuple(np.where(zero, x + 0.5, x) for x in (a, b, c, d))


def mantel_haenszel(
    events_t: Any,
    n_t: Any,
    events_c: Any,
    n_c: Any,
    measure: str = "OR",
    level: float = 0.95,
    correct: bool = True,
    *,
    convention: str = "metafor",
    model: str = "fixed",
) -> MantelHaenszelResult:
    r"""Mantel-Haenszel pooled OR, RR or RD (metafor ``rma.mh``).

    Parameters
    ----------
    events_t, n_t, events_c, n_c : array_like
        Events and totals of the treatment and control groups, one entry per study.
    measure : {"OR", "RR", "RD"}
        Log odds ratio, log risk ratio or risk difference.
    level : float
        Confidence level.
    correct : bool
        Continuity correction of the CMH test (OR only).
    convention : {"metafor", "revman5"}
        ``"metafor"``: no continuity correction in the MH estimate (metafor default).
        ``"revman5"``: RevMan 5 adds 1/2 to every cell of tables with a zero cell and drops
        double-zero tables (OR/RR) before computing the MH estimate.
    model : {"fixed", "random"}
        ``"random"`` (RevMan 5 only): DerSimonian-Laird with Q from the MH estimate
        (meta's ``Q.Cochrane``), inverse-variance random-effects estimate.

    Returns
    -------
    MantelHaenszelResult
        ``estimate`` (log scale for OR/RR), ``se``, ``zval``, ``pvalue``, ``ci_low``,
        ``ci_high``, ``q``, ``q_pvalue``, ``i2``, ``h2``, ``k``; for OR also the CMH test
        (``mh_chisq``) and Tarone's heterogeneity test.

    Notes
    -----
    OR: :math:`\hat\psi = \sum R_i / \sum S_i` with :math:`R_i = a_i d_i/N_i`,
    :math:`S_i = b_i c_i/N_i`; Robins-Breslow-Greenland variance
    :math:`\frac12[\sum P_iR_i/R^2 + \sum(P_iS_i + Q_iR_i)/(RS) + \sum Q_iS_i/S^2]`.
    RR: :math:`\sum a_i n_{2i}/N_i / \sum c_i n_{1i}/N_i`, Greenland-Robins variance.
    RD: Sato-Greenland-Robins variance. Q is :math:`\sum (y_i - \hat\theta_{MH})^2/v_i` with
    escalc's ``yi``/``vi`` (1/2 added to zero-cell tables, double-zero tables dropped) and
    :math:`I^2 = (Q - df)/Q`.

    Checked against metafor 3.8-1 ``rma.mh`` (fixture cases, rtol 1e-6) and RevMan 5's
    published Fleiss (1993) aspirin output (MH OR 0.8969, CI 0.8405 to 0.9570).
    """
    check_choice("measure", measure, ("OR", "RR", "RD"))
    check_choice("convention", convention, CONVENTIONS)
    check_choice("model", model, ("fixed", "random"))
    if model == "random" and convention != "revman5":
        raise ValueError("argument 'model' = 'random' needs convention='revman5' (metafor's "
                         "rma.mh is fixed-effect only; use pool() for random effects)")
    level = check_level(level)
    a, b, c, d = _tables(events_t, n_t, events_c, n_c)
    k = int(a.size)
    ma, mb, mc, md = _revman_cells(a, b, c, d, measure) if convention == "revman5" else (a, b, c, d)
    extra: dict[str, float] = {}
    if measure == "OR":
        res = _mh_or(ma, mb, mc, md, bool(correct))
        beta, se = res["beta"], res["se"]
        extra = {"mh_chisq": res["mh"], "mh_pvalue": res["mh_p"],
                 "tarone": res["ta"], "tarone_pvalue": res["ta_p"]}
    elif measure == "RR":
        beta, se = _mh_rr(ma, mb, mc, md)
    else:
        beta, se = _mh_rd(ma, mb, mc, md)
    q, df, q_p, i2, h2, yi, vi = _iv_heterogeneity(measure, a, b, c, d, beta)
    tau2 = 0.0
    method = "MH"
    if model == "random":
        w = 1 / vi
        tau2 = max(0.0, (q - df) / (w.sum() - (w**2).sum() / w.sum())) if df > 0 else 0.0
        ws = 1 / (vi + tau2)
        beta, se = float(np.sum(ws * yi) / ws.sum()), float(np.sqrt(1 / ws.sum()))
        method = "MH-DL"
    z = special.ndtri(1 - (1 - level) / 2)
    # metafor gives z = NaN (and SE 0) when no study has an event, e.g. RD of 0/n vs 0/n.
    zval = beta / se if se > 0 else float("nan")
    lo, hi = beta - z * se, beta + z * se
    pi_lo, pi_hi = lo, hi
    if model == "random":
        kk = yi.size
        tcrit = special.stdtrit(kk - 2, 1 - (1 - level) / 2) if kk >= 3 else np.nan
        half = tcrit * np.sqrt(se**2 + tau2)
        pi_lo, pi_hi = beta - half, beta + half
    return MantelHaenszelResult(
        estimate=beta, se=se, zval=zval, pvalue=float(2 * special.ndtr(-abs(zval))),
        ci_low=lo, ci_high=hi, q=q, q_df=df, q_pvalue=q_p, i2=i2, h2=h2, k=k,
        measure=measure, method=method, level=level, tau2=tau2, pi_low=pi_lo, pi_high=pi_hi,
        convention=convention, model=model, **extra,
    )


def peto(
    events_t: Any, n_t: Any, events_c: Any, n_c: Any, level: float = 0.95
) -> MantelHaenszelResult:
    r"""Peto's one-step pooled log odds ratio (metafor ``rma.peto``).

    Parameters
    ----------
    events_t, n_t, events_c, n_c : array_like
        Events and totals per study.
    level : float
        Confidence level.

    Returns
    -------
    MantelHaenszelResult
        With ``measure="OR"`` and ``method="PETO"``.

    Notes
    -----
    :math:`\hat\theta = \sum (a_i - E_i) / \sum V_i`, :math:`SE = (\sum V_i)^{-1/2}` with
    :math:`E_i = (a_i + c_i) n_{1i}/N_i` and
    :math:`V_i = (a_i + c_i)(b_i + d_i) n_{1i} n_{2i} / (N_i^2 (N_i - 1))`;
    :math:`Q = \sum (a_i - E_i)^2/V_i - (\sum(a_i - E_i))^2/\sum V_i` over tables with
    :math:`V_i > 0`; df from the tables with an estimable escalc PETO value. No continuity
    correction. Checked against metafor 3.8-1 ``rma.peto`` (fixture cases, rtol 1e-6).
    """
    level = check_level(level)
    a, b, c, d = _tables(events_t, n_t, events_c, n_c)
    n1, n2 = a + b, c + d
    big_n = n1 + n2
    xt, yt = a + c, b + d
    ei = xt * n1 / big_n
    with np.errstate(invalid="ignore", divide="ignore"):
        vv = xt * yt * (n1 / big_n) * (n2 / big_n) / (big_n - 1)
    vv = np.where(np.isfinite(vv), vv, 0.0)
    if vv.sum() == 0:
        raise ValueError("one of the two outcomes never occurred in any table; Peto's method "
                         "cannot be used")
    beta = float(np.sum(a - ei) / vv.sum())
    se = float(np.sqrt(1 / vv.sum()))
    pos = vv > 0
    id00 = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    k_yi = int((~id00).sum())
    q = max(0.0, float(np.sum((a[pos] - ei[pos]) ** 2 / vv[pos])
                       - np.sum(a - ei) ** 2 / np.sum(vv[pos])))
    df = max(k_yi - 1, 0)
    if int(pos.sum()) > 1:
        q_p, i2, h2 = float(special.chdtrc(df, q)), _i2_from_q(q, df), q / df
    else:
        q_p, i2, h2 = 1.0, 0.0, 1.0
    z = special.ndtri(1 - (1 - level) / 2)
    zval = beta / se
    return MantelHaenszelResult(
        estimate=beta, se=se, zval=zval, pvalue=float(2 * special.ndtr(-abs(zval))),
        ci_low=beta - z * se, ci_high=beta + z * se, q=q, q_df=df, q_pvalue=q_p, i2=i2,
        h2=h2, k=int(a.size), measure="OR", method="PETO", level=level,
        pi_low=beta - z * se, pi_high=beta + z * se,
    )
