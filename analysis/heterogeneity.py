r"""The one rma.uni-style core: every heterogeneity estimator, written once.

The model is :math:`y = X\beta + u + e`, :math:`u \sim N(0, \tau^2 I)`,
:math:`e \sim N(0, \mathrm{diag}(v))`; the intercept-only model (:func:`analysis.pooling.pool`)
is the case :math:`p = 1`, meta-regression (:func:`analysis.regression.meta_regression`) any
full-rank :math:`X`. Every estimator (FE, DL, HS, HE, SJ, PM, EB, ML, REML), the standard
error of :math:`\hat\tau^2`, metafor's likelihood check at 0, Knapp-Hartung scaling,
:math:`I^2`/:math:`H^2`, the Q-profile limits and the (restricted) likelihood are written once
here, against the interface of :mod:`analysis.algebra` (the quantities of
:math:`P = W - WX(X^\top WX)^{-1}X^\top W` at given weights), whose back-ends are batched
intercept-only rows, one scalar intercept-only analysis, and a general design.

Only the iteration drivers exist twice, vectorised over rows and scalar (a single analysis,
Python floats): the root of :math:`Q(\tau^2) = c` (PM, EB, Q-profile limits) and the global
maximiser of ML/REML; a property test holds them together. metafor's Fisher scoring runs
vectorised only.

ML and REML return the **global** maximum of the (restricted) log-likelihood over
:math:`[0, \infty)`: the score is evaluated on a grid in :math:`\log \tau^2` over
:math:`[0, T]`, where :math:`T` is an upper bound above which the score is provably negative
(:func:`analysis.algebra.score_bound`); every bracket of a sign change from + to - is refined
by safeguarded Newton iteration, :math:`\tau^2 = 0` is a candidate when the score there is not
positive, and the candidate with the largest likelihood wins. metafor's Fisher scoring (one
local root, then its likelihood check at 0) is ``control={"algorithm": "fisher"}``.

References
----------
Viechtbauer W (2005). J Educ Behav Stat 30:261-293 (ML, REML, HE, HS, DL, SJ; Fisher scoring).
Viechtbauer W (2007). Stat Med 26:37-52 (Q-profile). Paule RC, Mandel J (1982). J Res Natl Bur
Stand 87:377-385 (PM). Morris CN (1983). JASA 78:47-55 (EB). Knapp G, Hartung J (2003). Stat
Med 22:2693-2710. Higgins JPT, Thompson SG (2002). Stat Med 21:1539-1558 (I², H²).
Viechtbauer W (2010). J Stat Softw 36(3) (metafor; the mixed-effects formulas).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from analysis._checks import check_choice
from analysis.algebra import (
    DesignRows,
    InterceptRows,
    Projection,
    Rows,
    ScalarIntercept,
    loglik,
    score_bound,
    score_deriv,
)
from analysis.errors import ConvergenceError

__all__ = [
    "METHODS",
    "Control",
    "DesignRows",
    "HeterogeneityFit",
    "InterceptRows",
    "ScalarIntercept",
    "fit_heterogeneity",
    "fit_one",
    "wald",
]

METHODS = ("FE", "DL", "REML", "PM", "SJ", "HE", "HS", "ML", "EB")
_EPS = float(np.finfo(float).eps)
#: Grid points per decade of tau^2 in the global search (ratio 10**(1/4) = 1.78 between
#: neighbours); checked against a brute-force maximisation on a million generated data sets.
GRID_PER_DECADE = 4
#: Lower end of the grid: this fraction of the smallest sampling variance (below it the score
#: is linear in tau^2 to within 1%), but at most 14 decades below T.
GRID_LOW = 1e-2
GRID_DECADES_MAX = 14
#: Batches are searched in chunks of this many rows (bounds the n x G x k work arrays).
_CHUNK = 2048


# --------------------------------------------------------------------------------------------
# control settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Control:
    r"""Settings of the iterative estimators (names follow metafor's ``control`` list).

    One meaning for :func:`analysis.pooling.pool`, :func:`analysis.regression.meta_regression`
    and :func:`analysis.regression.subgroup_analysis`.

    Attributes
    ----------
    threshold : float
        Convergence of the ML/REML iterations: Fisher scoring stops when
        :math:`|\tau^2_{new} - \tau^2_{old}|` is at most this (metafor default 1e-5; ours
        1e-12 so that results are exact to ~1e-10); the Newton refinement stops at a step
        below ``threshold`` relative to :math:`\tau^2` (1e-8 for full Newton steps, after
        which the error left is ~1e-16).
    maxiter : int
        Maximum number of iterations (metafor default 100).
    tol : float
        Absolute tolerance of the root finders (PM estimator, Q-profile limits) and of the
        log-likelihood check at :math:`\tau^2 = 0` (metafor default ``eps**0.25``).
    tau2_max : float or None
        Upper end of the PM search interval (default ``max(100, 10 mad(y)^2)`` as metafor).
    ll0check : bool
        With ``algorithm="fisher"``: after convergence, set :math:`\tau^2 = 0` when the
        (restricted) likelihood at 0 is larger, as metafor does (the global search compares
        :math:`\tau^2 = 0` with every local maximum anyway).
    stepadj : float
        Step length factor of Fisher scoring.
    algorithm : {"global", "newton", "fisher"}
        ML/REML solver. ``"global"`` (default; ``"newton"`` is an alias): the global maximum
        of the (restricted) likelihood, see the module docstring. ``"fisher"``: metafor's
        Fisher scoring step for step (same iterates, same stopping rule, same failures, same
        local maximum); with ``threshold=1e-5, maxiter=100`` it reproduces metafor's defaults
        digit for digit. EB with ``"fisher"`` uses metafor's EB scoring step.
    """

    threshold: float = 1e-12
    maxiter: int = 1000
    tol: float = 1e-12
    tau2_max: float | None = None
    ll0check: bool = True
    stepadj: float = 1.0
    algorithm: str = "global"

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
        check_choice("control['algorithm']", out.algorithm, ("global", "newton", "fisher"))
        for name in ("threshold", "tol"):
            value = getattr(out, name)
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise ValueError(f"control[{name!r}] = {value!r} is not allowed; use a number > 0")
        if not (isinstance(out.maxiter, int) and out.maxiter >= 1):
            raise ValueError(
                f"control['maxiter'] = {out.maxiter!r} is not allowed; use an integer >= 1"
            )
        return out



# --------------------------------------------------------------------------------------------
# the formulas (any back-end: arrays per row or floats)
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Basis:
    r"""The data and the fixed-effect (:math:`\tau^2 = 0`) projection every estimator uses."""

    d: Rows
    p0: Projection
    keff: Any

    @classmethod
    def of(cls, d: Rows) -> _Basis:
        return cls(d, d.proj(d.fe_weights()), d.k - d.p)


def _tau2_he(b: _Basis) -> tuple[Any, Projection]:
    r"""HE: :math:`(y^\top \hat P y - \mathrm{tr}(\hat P V))/(k - p)`, :math:`\hat P` of OLS."""
    ph = b.d.proj(b.d.unit_weights())
    return (ph.q - ph.trdiag(b.d.v)) / b.keff, ph


def _tau2_sj0(d: Rows) -> Any:
    """SJ's start: the unweighted variance of y with divisor k (metafor, any design)."""
    y = d.masked_y()
    dev = y - np.nanmean(y, axis=1, keepdims=True)
    out = np.nansum(dev * dev, axis=1) / d.k
    return float(out[0]) if isinstance(d, ScalarIntercept) else out


def _pm_upper(d: Rows, con: Control) -> Any:
    """Upper end of the PM search: ``max(100, 10 mad(y)^2)`` (metafor) or ``tau2_max``."""
    n = 1 if isinstance(d, ScalarIntercept) else d.k.size
    if con.tau2_max is not None:
        out = np.full(n, float(con.tau2_max))
    else:
        y = d.masked_y()
        med = np.nanmedian(y, axis=1)
        mad = 1.4826 * np.nanmedian(np.abs(y - med[:, None]), axis=1)
        out = np.maximum(100.0, 10 * mad**2)
    return float(out[0]) if isinstance(d, ScalarIntercept) else out


def _closed_form(b: _Basis, method: str) -> Any:
    """Return the non-iterative estimates (truncated at 0)."""
    d = b.d
    if method == "FE":
        return 0.0 * b.keff
    if method == "DL":
        return np.maximum(0.0, (b.p0.q - b.keff) / b.p0.trp)
    if method == "HS":
        return np.maximum(0.0, (b.p0.q - d.k) / b.p0.sw)
    if method == "HE":
        return np.maximum(0.0, _tau2_he(b)[0])
    t0 = _tau2_sj0(d)  # SJ
    return np.maximum(0.0, t0 * d.proj(d.weights(t0)).q / b.keff)


def _se_tau2(b: _Basis, method: str, tau2: Any, pr: Projection) -> Any:
    """Return the standard error of the tau^2 estimate (metafor's formula per estimator)."""
    d, k, kp, t = b.d, b.d.k, b.keff, tau2
    if method == "FE":
        return np.nan * k
    if method in ("DL", "HS"):
        inner = 2 * kp + 4 * t * b.p0.trp + 2 * t**2 * b.p0.psq()
        return np.sqrt(inner) / (b.p0.trp if method == "DL" else b.p0.sw)
    if method == "HE":
        _, ph = _tau2_he(b)
        inner = 2 * ph.psq(d.v, d.v) + 4 * t * ph.trdiag(d.v) + 2 * t**2 * kp
        return np.sqrt(inner) / kp
    if method == "SJ":
        t0 = _tau2_sj0(d)
        ps = d.proj(d.weights(t0))
        inner = 2 * ps.psq(d.v, d.v) + 4 * t * ps.psq(1.0, d.v) + 2 * t**2 * ps.psq()
        return np.sqrt(t0**2 / kp**2 * inner)
    if method == "ML":
        return np.sqrt(2 / pr.sw2)
    if method == "REML":
        return np.sqrt(2 / pr.psq())
    return np.sqrt(2 * k**2 / kp / pr.sw**2)  # EB, PM


def _kh_scale(pr: Projection, keff: Any, ci: str) -> Any:
    r"""Knapp-Hartung factor :math:`y^\top P y/(k - p)` (0 at exact fit; adhoc: at least 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s2w = np.where(pr.q <= _EPS, 0.0, pr.q / keff)
    return np.maximum(s2w, 1.0) if ci == "hksj_adhoc" else s2w


def _i2_h2(q: Any, keff: Any, trp0: Any, tau2: Any, method: str,
           convention: str) -> tuple[Any, Any, Any]:
    r"""I² (percent), H² and the typical within-study variance :math:`(k-p)/\mathrm{tr}P_0`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        vt = keff / trp0
        if method == "FE" or convention == "revman5":
            i2 = np.where(q == 0, 0.0, np.maximum(0.0, 100 * (q - keff) / q))
            h2 = q / keff
        else:
            i2 = 100 * tau2 / (vt + tau2)
            h2 = tau2 / vt + 1
    return i2, h2, vt


def _qprofile_cases(q0: np.ndarray, qmax: np.ndarray, tmax: np.ndarray, crit_u: np.ndarray,
                    crit_l: np.ndarray, solve: Callable[[np.ndarray, np.ndarray], np.ndarray],
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Q-profile limits exactly as metafor ``confint.rma.uni`` (type="QP"), rows as arrays.

    ``solve(rows, targets)`` returns the roots of Q(tau^2) = target on [0, tmax] for those rows.
    """
    lb = np.full(q0.shape, np.nan)
    ub = np.full(q0.shape, np.nan)
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
        roots = solve(rows, np.concatenate([crit_u[lb_root], crit_l[ub_root]]))
        n_lb = int(lb_root.sum())
        lb[np.flatnonzero(lb_root)] = roots[:n_lb]
        ub[np.flatnonzero(ub_root)] = roots[n_lb:]
    return lb, ub


def _qprofile(b: _Basis, tau2: Any, level: float, tol: float) -> tuple[Any, Any]:
    """Q-profile limits for tau^2 (any back-end; the roots by the matching driver)."""
    d = b.d
    alpha = 1 - level
    crit_u = np.atleast_1d(special.chdtri(b.keff, alpha / 2))
    crit_l = np.atleast_1d(special.chdtri(b.keff, 1 - alpha / 2))
    tmax = np.atleast_1d(np.maximum(100.0, 10 * tau2))
    if isinstance(d, ScalarIntercept):
        qmax = np.array([d.proj(d.weights(float(tmax[0]))).q])

        def solve(rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
            return np.array([_root_q_one(d, float(t), float(tmax[0]), tol) for t in targets])

        lb, ub = _qprofile_cases(np.array([b.p0.q]), qmax, tmax, crit_u, crit_l, solve)
        return float(lb[0]), float(ub[0])
    qmax = d.proj(d.weights(tmax)).q

    def solve_rows(rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return _solve_q(d.take(rows), targets, tmax[rows], tol)

    return _qprofile_cases(b.p0.q, qmax, tmax, crit_u, crit_l, solve_rows)


# --------------------------------------------------------------------------------------------
# iteration drivers, vectorised over rows
# --------------------------------------------------------------------------------------------


def _solve_q(d: Rows, target: np.ndarray, hi: np.ndarray, tol: float) -> np.ndarray:
    r"""Solve :math:`Q(\tau^2) = y^\top P y = \text{target}` on :math:`[0, hi]` for every row.

    Requires :math:`Q(0) \ge \text{target} \ge Q(hi)` (Q is decreasing). Newton iteration on
    :math:`1/Q(\tau^2) - 1/\text{target}` (nearly linear in :math:`\tau^2`; the derivative of Q
    is :math:`-y^\top P^2 y`), safeguarded by bisection whenever a step leaves the current
    bracket; exact to far below metafor's ``uniroot`` tolerance.
    """
    n = target.size
    x = np.zeros(n)
    lo = np.zeros(n)
    up = hi.astype(float).copy()
    act = np.arange(n)
    # Newton converges quadratically: once a step is below 1e-8 (relative), the error left
    # after taking it is of order 1e-16, so stop there (checked against 300-step bisection).
    xtol = max(min(tol, 1e-13), 1e-8)
    sub, ta = d, target
    for _ in range(300):
        xa = x[act]
        pr = sub.proj(sub.weights(xa))
        f = pr.q - ta
        la = np.where(f > 0, xa, lo[act])
        ua = np.where(f < 0, xa, up[act])
        with np.errstate(divide="ignore", invalid="ignore"):
            new = xa + pr.q * f / (ta * pr.ypp)
        bad = ~(new > la) | ~(new < ua)
        new = np.where(bad, 0.5 * (la + ua), new)
        scale = np.maximum(1.0, new)
        done = (f == 0) | (np.abs(new - xa) <= xtol * scale) & ~bad | (
            ua - la <= 4 * _EPS * scale)
        lo[act], up[act], x[act] = la, ua, new
        if done.all():
            return x
        keep = ~done
        act, ta = act[keep], ta[keep]
        sub = sub.take(np.flatnonzero(keep))
    raise ConvergenceError(_ROOT_FAIL)


_ROOT_FAIL = ("root finding for tau^2 (PM/EB estimator or Q-profile limit) did not converge in "
              "300 iterations; check the data for extreme variances or try another method")


def _tau2_qroot(b: _Basis, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    r"""PM and EB: the root of :math:`y^\top P y = k - p` (0 when Q(0) is below k - p).

    PM searches :math:`[0, \tau^2_{max}]` and fails when the root lies above it (metafor);
    EB (its fixed point is the same equation) widens the interval tenfold until it holds the
    root.
    """
    d, target = b.d, b.keff.astype(float)
    tau2 = np.zeros(target.size)
    conv = np.ones(target.size, dtype=bool)
    need = b.p0.q > target if method == "EB" else b.p0.q >= target
    if not np.any(need):
        return tau2, conv
    idx = np.flatnonzero(need)
    sub, tg = d.take(idx), target[idx]
    hi = _pm_upper(sub, con)
    q_hi = sub.proj(sub.weights(hi)).q
    for _ in range(60 if method == "EB" else 0):
        low = q_hi > tg
        if not np.any(low):
            break
        hi = np.where(low, hi * 10, hi)
        q_hi = sub.proj(sub.weights(hi)).q
    ok = q_hi <= tg
    conv[idx[~ok]] = False
    if np.any(ok):
        good = np.flatnonzero(ok)
        tau2[idx[good]] = _solve_q(sub.take(good), tg[good], hi[good],
                                   con.tol if method == "PM" else 1e-13)
    return tau2, conv


def _halve(tau2: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """Metafor's ``while (tau2 + adj < 0) adj <- adj/2`` (which ends at -0 when tau2 == 0)."""
    adj = np.where(np.isnan(adj), 0.0, adj)
    adj = np.where((tau2 == 0) & (adj < 0), 0.0, adj)
    neg = tau2 + adj < 0
    while np.any(neg):
        adj = np.where(neg, adj / 2, adj)
        neg = tau2 + adj < 0
    return adj


def _fisher_step(d: Rows, tau2: np.ndarray, method: str) -> np.ndarray:
    pr = d.proj(d.weights(tau2))
    if method == "ML":
        return (pr.ypp - pr.sw) / pr.sw2
    if method == "REML":
        return (pr.ypp - pr.trp) / pr.psq()
    return (pr.q * d.k / (d.k - d.p) - d.k) / pr.sw  # EB


def _tau2_fisher(b: _Basis, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    """Metafor's Fisher scoring for ML, REML and EB from the (truncated) HE estimate."""
    d = b.d
    tau2 = np.maximum(0.0, _tau2_he(b)[0])
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


def _ll0check(d: Rows, tau2: np.ndarray, conv: np.ndarray, method: str,
              con: Control) -> np.ndarray:
    """Metafor's check: set tau^2 = 0 where the likelihood at 0 is larger (by > tol)."""
    check = conv & (tau2 > con.threshold)
    if not np.any(check):
        return tau2
    idx = np.flatnonzero(check)
    sub = d.take(idx)
    reml = method == "REML"
    worse = loglik(sub, np.zeros(idx.size), reml) - loglik(sub, tau2[idx], reml) > con.tol
    if np.any(worse):
        warnings.warn(
            f"{method}: Fisher scoring stopped at a local maximum of the likelihood; tau^2 set "
            "to 0 as metafor does (the default control={'algorithm': 'global'} finds the "
            "global maximum)",
            RuntimeWarning,
            stacklevel=5,
        )
    tau2 = tau2.copy()
    tau2[idx[worse]] = 0.0
    return tau2


_FRACTIONS: dict[int, np.ndarray] = {}


def _grid(vmin: Any, bound: Any) -> np.ndarray:
    """Grid in log tau^2 from GRID_LOW * min(v) (at most 14 decades below T) up to T, and 0.

    1-D for one analysis, n x G for rows.
    """
    vmin, bound = np.atleast_1d(vmin), np.atleast_1d(bound)
    lo = np.minimum(np.maximum(GRID_LOW * vmin, bound * 10.0**-GRID_DECADES_MAX), bound * 0.5)
    decades = np.log10(bound / lo)
    g = max(int(np.ceil(GRID_PER_DECADE * float(decades.max()))) + 1, 2)
    frac = _FRACTIONS.get(g)
    if frac is None:
        frac = _FRACTIONS.setdefault(g, np.linspace(0.0, 1.0, g))
    grid = lo[:, None] * (bound / lo)[:, None] ** frac[None, :]
    return np.concatenate([np.zeros((bound.size, 1)), grid], axis=1)


def _refine(d: Rows, a: np.ndarray, b: np.ndarray, sa: np.ndarray, sb: np.ndarray,
            reml: bool, con: Control) -> tuple[np.ndarray, np.ndarray]:
    """Safeguarded Newton on the score inside brackets with score(a) > 0 >= score(b).

    Rows that have converged leave the active set only in large batches (in small ones the
    bookkeeping costs more than the arithmetic it saves).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(sb == 0, b, a + (b - a) * sa / (sa - sb))
    x = np.where(np.isfinite(x) & (x > a) & (x <= b), x, 0.5 * (a + b))
    lo, hi = a.copy(), b.copy()
    n = x.size
    act = np.arange(n)
    floor = np.minimum(1e-10, 0.5 * b)
    fine_tol = max(con.threshold, 1e-8)
    sub = d
    done = np.zeros(n, dtype=bool)
    for _ in range(con.maxiter):
        xa = x[act] if act.size < n else x
        sc, ds = score_deriv(sub, xa, reml)
        la = np.where(sc > 0, xa, lo[act])
        ha = np.where(sc < 0, xa, hi[act])
        with np.errstate(divide="ignore", invalid="ignore"):
            new = xa - sc / ds
            fine = (ds < 0) & (new > la) & (new < ha)
        new = np.where(fine, new, 0.5 * (la + ha))
        # Quadratic convergence: after a Newton step below 1e-8 (relative) the remaining error
        # is ~1e-16; bisection steps must shrink to `threshold` itself.
        tol_step = np.where(fine, fine_tol, con.threshold)
        fl = floor[act] if act.size < n else floor
        stop = ((sc == 0) | (np.abs(new - xa) <= tol_step * np.maximum(new, fl))
                | (ha - la <= 4 * _EPS * ha))
        if act.size < n:
            lo[act], hi[act] = la, ha
            x[act] = np.where(done[act], xa, new)
            done[act] |= stop
        else:
            lo, hi = la, ha
            x = np.where(done, xa, new)
            done |= stop
        if done.all():
            return x, np.ones(n, dtype=bool)
        if n > 64 and act.size > 2 * int((~done[act]).sum()):
            keep = ~done[act]
            act = act[keep]
            sub = sub.take(np.flatnonzero(keep)) if sub is not d else d.take(act)
    return x, done


def _tau2_global(b: _Basis, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    """ML/REML: the global maximum over [0, inf) for every row (see the module docstring)."""
    d = b.d
    reml = method == "REML"
    n = b.keff.size
    tau2 = np.zeros(n)
    conv = np.ones(n, dtype=bool)
    bound = score_bound(d, reml)
    live = np.flatnonzero(bound > 0)
    vmin, _ = d.vrange()
    for start in range(0, live.size, _CHUNK):
        idx = live[start:start + _CHUNK]
        t, c = _global_rows(d.take(idx), vmin[idx], bound[idx], reml, con)
        tau2[idx], conv[idx] = t, c
    return tau2, conv


def _global_rows(d: Rows, vmin: np.ndarray, bound: np.ndarray, reml: bool,
                 con: Control) -> tuple[np.ndarray, np.ndarray]:
    n = bound.size
    grid = _grid(vmin, bound)
    s = d.score_grid(grid, reml)
    rows, cols = np.nonzero((s[:, :-1] > 0) & (s[:, 1:] <= 0))
    conv = np.ones(n, dtype=bool)
    cand_t = [np.zeros(0)]
    if rows.size:
        t, c = _refine(d.take(rows), grid[rows, cols], grid[rows, cols + 1], s[rows, cols],
                       s[rows, cols + 1], reml, con)
        cand_t.append(t)
        bad = np.zeros(n, dtype=bool)
        np.logical_or.at(bad, rows, ~c)
        conv &= ~bad
    zero = np.flatnonzero(s[:, 0] <= 0)
    crow = np.concatenate([rows, zero])
    ct = np.concatenate([*cand_t, np.zeros(zero.size)])
    out = np.zeros(n)
    if np.unique(crow).size == crow.size:
        out[crow] = ct
        return out, conv
    ll = loglik(d.take(crow), ct, reml)
    order = np.lexsort((-ll, crow))
    first = np.ones(order.size, dtype=bool)
    first[1:] = crow[order][1:] != crow[order][:-1]
    out[crow[order][first]] = ct[order][first]
    return out, conv


def _estimate(b: _Basis, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    """Return (tau2, converged) for every row (all rows have k > p)."""
    if method in ("FE", "DL", "HS", "HE", "SJ"):
        return _closed_form(b, method), np.ones(b.keff.size, dtype=bool)
    if con.algorithm == "fisher" and method in ("ML", "REML", "EB"):
        return _tau2_fisher(b, method, con)
    if method in ("PM", "EB"):
        return _tau2_qroot(b, method, con)
    return _tau2_global(b, method, con)


# --------------------------------------------------------------------------------------------
# iteration drivers for one analysis (Python floats)
# --------------------------------------------------------------------------------------------


def _root_q_one(d: ScalarIntercept, target: float, hi: float, tol: float) -> float:
    """Scalar twin of :func:`_solve_q` (same iteration, same stopping rule)."""
    x, lo, up = 0.0, 0.0, hi
    xtol = max(min(tol, 1e-13), 1e-8)
    for _ in range(300):
        pr = d.proj(d.weights(x))
        f = pr.q - target
        if f > 0:
            lo = x
        elif f < 0:
            up = x
        new = x + pr.q * f / (target * pr.ypp) if pr.ypp > 0 else math.nan
        bad = not (lo < new < up)
        if bad:
            new = 0.5 * (lo + up)
        scale = max(1.0, new)
        if f == 0 or (abs(new - x) <= xtol * scale and not bad) or up - lo <= 4 * _EPS * scale:
            return new
        x = new
    raise ConvergenceError(_ROOT_FAIL)


def _qroot_one(b: _Basis, method: str, con: Control) -> tuple[float, bool]:
    """Scalar twin of :func:`_tau2_qroot`."""
    d = b.d
    assert isinstance(d, ScalarIntercept)
    target = float(b.keff)
    if (b.p0.q <= target) if method == "EB" else (b.p0.q < target):
        return 0.0, True
    hi = _pm_upper(d, con)
    q_hi = d.proj(d.weights(hi)).q
    for _ in range(60 if method == "EB" else 0):
        if q_hi <= target:
            break
        hi *= 10
        q_hi = d.proj(d.weights(hi)).q
    if q_hi > target:
        return math.nan, False
    return _root_q_one(d, target, hi, con.tol if method == "PM" else 1e-13), True


def _refine_one(d: ScalarIntercept, a: float, b: float, sa: float, sb: float, reml: bool,
                con: Control) -> tuple[float, bool]:
    """Scalar twin of :func:`_refine`."""
    x = b if sb == 0 else a + (b - a) * sa / (sa - sb)
    if not (a < x <= b) or not math.isfinite(x):
        x = 0.5 * (a + b)
    lo, hi = a, b
    floor = min(1e-10, 0.5 * b)
    fine_tol = max(con.threshold, 1e-8)
    for _ in range(con.maxiter):
        sc, ds = score_deriv(d, x, reml)
        if sc > 0:
            lo = x
        elif sc < 0:
            hi = x
        new = x - sc / ds if ds != 0 else math.nan
        fine = ds < 0 and lo < new < hi
        if not fine:
            new = 0.5 * (lo + hi)
        tol_step = fine_tol if fine else con.threshold
        if sc == 0 or abs(new - x) <= tol_step * max(new, floor) or hi - lo <= 4 * _EPS * hi:
            return new, True
        x = new
    return x, False


def _global_one(b: _Basis, method: str, con: Control) -> tuple[float, bool]:
    """Scalar twin of :func:`_tau2_global`."""
    d = b.d
    assert isinstance(d, ScalarIntercept)
    reml = method == "REML"
    bound = float(score_bound(d, reml))
    if bound <= 0:
        return 0.0, True
    vmin = float(d.v.min())
    lo = min(max(GRID_LOW * vmin, bound * 10.0**-GRID_DECADES_MAX), bound * 0.5)
    g = max(math.ceil(GRID_PER_DECADE * math.log10(bound / lo)) + 1, 2)
    frac = _FRACTIONS.get(g)
    if frac is None:
        frac = _FRACTIONS.setdefault(g, np.linspace(0.0, 1.0, g))
    grid = np.concatenate([[0.0], lo * (bound / lo) ** frac])  # as _grid, for one analysis
    s = d.score_grid(grid, reml)
    ups = np.flatnonzero((s[:-1] > 0) & (s[1:] <= 0))
    cands = [0.0] if s[0] <= 0 else []
    conv = True
    for j in ups:
        t, c = _refine_one(d, float(grid[j]), float(grid[j + 1]), float(s[j]), float(s[j + 1]),
                           reml, con)
        cands.append(t)
        conv &= c
    if len(cands) == 1:
        return cands[0], conv
    ll = [loglik(d, t, reml) for t in cands]
    return cands[int(np.argmax(ll))], conv


# --------------------------------------------------------------------------------------------
# the fit
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeterogeneityFit:
    r"""Everything the rma.uni core computes, one entry per row (analysis).

    ``beta`` (n x p) and ``vb`` (n x p x p; Knapp-Hartung scaled when ``ci`` asks for it) at
    :math:`\hat\tau^2`; ``w`` the weights :math:`1/(v_i + \hat\tau^2)` (0 on padding); ``df``
    the t degrees of freedom (NaN for z); ``q`` (QE at :math:`\tau^2 = 0`) on ``q_df = k - p``
    df; ``i2`` in percent; Q-profile limits (NaN unless asked for); ``loglik`` the
    (restricted) log-likelihood without constants (ML/REML only).
    """

    tau2: np.ndarray
    se_tau2: np.ndarray
    converged: np.ndarray
    beta: np.ndarray
    vb: np.ndarray
    w: np.ndarray
    df: np.ndarray
    s2w: np.ndarray
    q: np.ndarray
    q_df: np.ndarray
    q_pvalue: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    tau2_ci_low: np.ndarray
    tau2_ci_high: np.ndarray
    i2_ci_low: np.ndarray
    i2_ci_high: np.ndarray
    h2_ci_low: np.ndarray
    h2_ci_high: np.ndarray
    loglik: np.ndarray


def _fail_message(method: str, con: Control) -> str:
    if method == "PM":
        return (
            "PM estimator: Q(tau2_max) is still above k - p (the search interval's upper end, "
            "control tau2_max, is too low); pass control={'tau2_max': ...} with a larger value "
            "or use method='REML' or 'DL'"
        )
    if method == "EB":
        return ("EB estimator: no root of Q(tau^2) = k - p was bracketed; use method='PM' or "
                "'REML'")
    algo = "Fisher scoring" if con.algorithm == "fisher" else "Newton refinement"
    hint = ("control={'algorithm': 'global'} (if Fisher scoring oscillates), "
            if con.algorithm == "fisher" else "")
    return (
        f"{method} estimator: {algo} did not converge in {con.maxiter} iterations "
        f"(threshold {con.threshold:g}); try control={{'maxiter': {10 * con.maxiter}}}, "
        f"{hint}or another method ('PM', 'DL')"
    )


def _summaries(b: _Basis, method: str, tau2: Any, ci: str, convention: str) -> dict[str, Any]:
    """Everything after the estimate (any back-end; rows with k > p)."""
    d = b.d
    pr = d.proj(d.weights(tau2))
    use_kh = ci in ("hksj", "hksj_adhoc")
    s2w = _kh_scale(pr, b.keff, ci) if use_kh else 1.0 + 0.0 * b.keff
    beta, vb = pr.coef(s2w)
    q = np.maximum(0.0, b.p0.q)
    i2, h2, vt = _i2_h2(q, b.keff, b.p0.trp, tau2, method, convention)
    out = {"tau2": tau2, "se_tau2": _se_tau2(b, method, tau2, pr), "beta": beta, "vb": vb,
           "w": pr.w, "s2w": s2w, "df": b.keff + 0.0 if use_kh else np.nan * b.keff, "q": q,
           "q_pvalue": special.chdtrc(b.keff, q), "i2": i2, "h2": h2, "vt": vt}
    if method in ("ML", "REML"):
        ll = -0.5 * (d.sum_log(tau2) + pr.q)
        out["loglik"] = ll - 0.5 * pr.logdet if method == "REML" else ll
    else:
        out["loglik"] = np.nan * b.keff
    return out


def _ci_i2_h2(lb: Any, ub: Any, vt: Any) -> dict[str, Any]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"tau2_ci_low": lb, "tau2_ci_high": ub, "i2_ci_low": 100 * lb / (vt + lb),
                "i2_ci_high": 100 * ub / (vt + ub), "h2_ci_low": lb / vt + 1,
                "h2_ci_high": ub / vt + 1}


def fit_heterogeneity(
    d: Rows,
    method: str,
    ci: str = "z",
    level: float = 0.95,
    *,
    tau2_ci: bool = False,
    control: Control | None = None,
    convention: str = "metafor",
    errors: str = "raise",
) -> HeterogeneityFit:
    r"""Fit the random-effects (meta-regression) model of every row of ``d``.

    Parameters
    ----------
    d : InterceptRows or DesignRows
        The analyses (rows); a row with :math:`k \le p` gets :math:`\tau^2 = 0` and Q = 0.
    method : str
        One of :data:`METHODS` (metafor codes).
    ci : {"z", "hksj", "hksj_adhoc"}
        Knapp-Hartung scaling of ``vb`` by :math:`y^\top P y/(k - p)` (``"hksj_adhoc"``: at
        least 1) and t on k - p df.
    level : float
        Confidence level of the Q-profile limits.
    tau2_ci : bool
        Compute Q-profile limits for :math:`\tau^2`, :math:`I^2`, :math:`H^2`.
    control : Control, optional
        Iteration settings.
    convention : {"metafor", "revman5"}
        ``"revman5"``: :math:`I^2 = (Q - df)/Q` and :math:`H^2 = Q/df`.
    errors : {"raise", "nan"}
        Raise :class:`ConvergenceError` naming the failing rows, or set them to NaN (flagged
        in ``converged``).

    Returns
    -------
    HeterogeneityFit

    Notes
    -----
    Checked against metafor 3.8-1 ``rma``/``confint`` (intercept-only and with moderators;
    every method x z/knha) through :func:`analysis.pooling.pool` and
    :func:`analysis.regression.meta_regression`, and against a brute-force maximisation of
    the (restricted) likelihood on a million generated data sets (``benchmarks``).
    """
    con = Control() if control is None else control
    assert not isinstance(d, ScalarIntercept)
    n = d.k.size
    multi = d.k > d.p
    idx = np.flatnonzero(multi)
    fields: dict[str, np.ndarray] = {}
    conv = np.ones(n, dtype=bool)
    tau2 = np.zeros(n)
    if idx.size:
        b = _Basis.of(d.take(idx))
        t, c = _estimate(b, method, con)
        if not np.all(c) and errors == "raise":
            rows = idx[~c].tolist()
            where = "" if n == 1 else f" (rows {rows[:10]}{'...' if len(rows) > 10 else ''})"
            raise ConvergenceError(_fail_message(method, con) + where)
        tau2[idx], conv[idx] = t, c
        part = _summaries(b, method, t, ci, convention)
        lb = ub = np.full(idx.size, np.nan)
        if tau2_ci and method != "FE":
            lb, ub = _qprofile(b, t, level, con.tol)
        part.update(_ci_i2_h2(lb, ub, part.pop("vt")))
    pr = d.proj(d.weights(tau2))
    beta, vb = pr.coef()
    empty = {"se_tau2": np.nan, "s2w": 1.0, "df": np.nan, "q": 0.0, "q_pvalue": 1.0,
             "i2": 0.0, "h2": 1.0, "loglik": np.nan, "tau2_ci_low": np.nan,
             "tau2_ci_high": np.nan, "i2_ci_low": np.nan, "i2_ci_high": np.nan,
             "h2_ci_low": np.nan, "h2_ci_high": np.nan}
    for name, fill in empty.items():
        fields[name] = np.full(n, fill)
        if idx.size:
            fields[name][idx] = part[name]
    if idx.size:
        beta[idx], vb[idx] = part["beta"], part["vb"]
    fit = HeterogeneityFit(tau2=tau2, converged=conv, beta=beta, vb=vb, w=pr.w,
                           q_df=(d.k - d.p).astype(int), **fields)
    if not np.all(conv):
        for name in ("tau2", *empty):
            getattr(fit, name)[~conv] = np.nan
        fit.beta[~conv] = np.nan
        fit.vb[~conv] = np.nan
    return fit


def fit_one(
    d: ScalarIntercept,
    method: str,
    ci: str = "z",
    level: float = 0.95,
    *,
    tau2_ci: bool = False,
    control: Control | None = None,
) -> dict[str, Any]:
    """Fit one intercept-only analysis with k >= 2 (the scalar drivers; metafor convention).

    The same formulas as :func:`fit_heterogeneity`, with Python floats; returns the fields of
    :class:`HeterogeneityFit` as floats (``beta`` the pooled estimate, ``vb`` its variance).
    ``algorithm="fisher"`` is not available here (use :func:`fit_heterogeneity`).
    """
    con = Control() if control is None else control
    b = _Basis.of(d)
    if method in ("FE", "DL", "HS", "HE", "SJ"):
        t, conv = float(_closed_form(b, method)), True
    elif method in ("PM", "EB"):
        t, conv = _qroot_one(b, method, con)
    else:
        t, conv = _global_one(b, method, con)
    if not conv:
        raise ConvergenceError(_fail_message(method, con))
    out = _summaries(b, method, t, ci, "metafor")
    lb = ub = math.nan
    if tau2_ci and method != "FE":
        lb, ub = _qprofile(b, t, level, con.tol)
    out.update(_ci_i2_h2(lb, ub, out.pop("vt")))
    out["q_df"] = int(b.keff)
    return out


def wald(estimate: Any, se: Any, df: Any, level: float) -> tuple[Any, Any, Any]:
    """Test statistic, two-sided p-value and critical value: t on ``df`` where finite, else z."""
    qq = 1 - (1 - level) / 2
    if isinstance(estimate, float) and isinstance(se, float) and isinstance(df, float):
        if se > 0:
            stat = estimate / se
        else:
            stat = math.copysign(math.inf, estimate) if estimate != 0 else math.nan
        if math.isfinite(df):
            return stat, float(2 * special.stdtr(df, -abs(stat))), float(special.stdtrit(df, qq))
        return stat, float(2 * special.ndtr(-abs(stat))), float(special.ndtri(qq))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.divide(estimate, se)
        use_t = np.isfinite(df)
        dfx = np.where(use_t, df, 1.0)
        crit = np.where(use_t, special.stdtrit(dfx, qq), special.ndtri(qq))
        p = np.where(use_t, 2 * special.stdtr(dfx, -np.abs(stat)), 2 * special.ndtr(-np.abs(stat)))
    return stat, p, crit
