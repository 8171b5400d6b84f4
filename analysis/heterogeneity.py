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

Only the iteration drivers (:mod:`analysis.solvers`) exist twice, vectorised over rows and
scalar (a single analysis, Python floats): the root of :math:`Q(\tau^2) = c` (PM, EB,
Q-profile limits) and the global maximiser of ML/REML; a property test holds them together.
metafor's Fisher scoring runs vectorised only. The settings are :class:`~analysis.control.
Control`.

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

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from analysis.algebra import Basis, DesignRows, InterceptRows, Projection, Rows, ScalarIntercept
from analysis.control import METHODS, Control
from analysis.errors import ConvergenceError
from analysis.solvers import (
    global_one,
    q_upper,
    qroot_one,
    root_q_one,
    solve_q,
    tau2_fisher,
    tau2_global,
    tau2_qroot,
)

__all__ = [
    "METHODS",
    "Control",
    "DesignRows",
    "HeterogeneityFit",
    "InterceptRows",
    "PointFit",
    "ScalarIntercept",
    "fit_heterogeneity",
    "fit_one",
    "fit_points",
    "wald",
]

_EPS = float(np.finfo(float).eps)

_F = Any


def _at_limits(func: Callable[..., _F]) -> Callable[..., _F]:
    r"""Run a fit with NumPy's floating-point warnings off.

    Near the limits of floating point (sampling variances of 1e-300 or 1e300) sums such as
    :math:`\sum w_i^2` overflow or underflow; the formulas are arranged so that what they
    report is then what metafor reports (an infinite or NaN standard error of tau^2, say),
    and inputs whose Q itself overflows are refused on entry (:func:`analysis._inputs.
    check_limits`). The overflow is part of the answer, so it is not also a RuntimeWarning.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> _F:
        with np.errstate(all="ignore"):
            return func(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------------------------
# the formulas (any back-end: arrays per row or floats)
# --------------------------------------------------------------------------------------------


def _tau2_he(b: Basis) -> tuple[Any, Projection]:
    r"""HE: :math:`(y^\top \hat P y - \mathrm{tr}(\hat P V))/(k - p)`, :math:`\hat P` of OLS."""
    ph = b.d.proj(b.d.unit_weights())
    return (ph.q - ph.trdiag(b.d.v)) / b.keff, ph


def _tau2_sj0(d: Rows) -> Any:
    """SJ's start: the unweighted variance of y with divisor k (metafor, any design)."""
    y = d.masked_y()
    dev = y - np.nanmean(y, axis=1, keepdims=True)
    return d.per_row(np.nansum(dev * dev, axis=1)) / d.k


def _closed_form(b: Basis, method: str) -> Any:
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


def _se_tau2(b: Basis, method: str, tau2: Any, pr: Projection) -> Any:
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
        return np.sqrt(2 / pr.trp2())
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


def _qprofile(b: Basis, tau2: Any, level: float, con: Control) -> tuple[Any, Any, Any]:
    r"""Q-profile limits for tau^2 (any back-end; the roots by the matching driver).

    The search runs on :math:`[0, T]`: ``control tau2_max`` when given (metafor's
    ``tau2.max``), else :math:`T = \max(10\hat\tau^2, 1.01\,RSS/\chi^2_{lower})`
    (:func:`analysis.solvers.q_upper`), which holds both roots, so by default no limit is
    cut. A limit at :math:`T` (the root lies beyond it) is returned as :math:`T` with the
    third value, ``truncated``, true: the limit is then only a lower bound (">T").
    """
    d = b.d
    alpha = 1 - level
    crit_u = np.atleast_1d(special.chdtri(b.keff, alpha / 2))
    crit_l = np.atleast_1d(special.chdtri(b.keff, 1 - alpha / 2))
    if con.tau2_max is not None:
        tmax = np.atleast_1d(np.full(np.shape(b.keff), float(con.tau2_max)))
    else:
        tmax = np.atleast_1d(np.maximum(10 * tau2, q_upper(d, crit_l)))
    if isinstance(d, ScalarIntercept):
        qmax = np.array([d.proj(d.weights(float(tmax[0]))).q])

        def solve(rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
            return np.array([root_q_one(d, float(t), float(tmax[0]), con.tol) for t in targets])

        lb, ub = _qprofile_cases(np.array([b.p0.q]), qmax, tmax, crit_u, crit_l, solve)
        return float(lb[0]), float(ub[0]), bool(ub[0] > 0 and qmax[0] > crit_l[0])
    qmax = d.proj(d.weights(tmax)).q

    def solve_rows(rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return solve_q(d.take(rows), targets, tmax[rows], con.tol)

    lb, ub = _qprofile_cases(b.p0.q, qmax, tmax, crit_u, crit_l, solve_rows)
    return lb, ub, (ub > 0) & (qmax > crit_l)


def _estimate(b: Basis, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    """Return (tau2, converged) for every row (all rows have k > p)."""
    if method in ("FE", "DL", "HS", "HE", "SJ"):
        return _closed_form(b, method), np.ones(b.keff.size, dtype=bool)
    if con.algorithm == "fisher" and method in ("ML", "REML", "EB"):
        return tau2_fisher(b, method, con, np.maximum(0.0, _tau2_he(b)[0]))
    if method in ("PM", "EB"):
        return tau2_qroot(b, method, con)
    return tau2_global(b, method, con)


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
    (restricted) log-likelihood without constants (ML/REML only); ``tau2_ci_truncated``
    marks rows whose upper Q-profile limit was cut at ``control tau2_max`` (then only a lower
    bound for the limit; the I² and H² limits follow it).
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
    tau2_ci_truncated: np.ndarray


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


def _summaries(b: Basis, method: str, tau2: Any, ci: str, convention: str) -> dict[str, Any]:
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


@_at_limits
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
        b = Basis.of(d.take(idx))
        t, c = _estimate(b, method, con)
        if not np.all(c) and errors == "raise":
            rows = idx[~c].tolist()
            where = "" if n == 1 else f" (rows {rows[:10]}{'...' if len(rows) > 10 else ''})"
            raise ConvergenceError(_fail_message(method, con) + where)
        tau2[idx], conv[idx] = t, c
        part = _summaries(b, method, t, ci, convention)
        lb = ub = np.full(idx.size, np.nan)
        cut = np.zeros(idx.size, dtype=bool)
        if tau2_ci and method != "FE":
            lb, ub, cut = _qprofile(b, t, level, con)
        part.update(_ci_i2_h2(lb, ub, part.pop("vt")))
    empty = {"se_tau2": np.nan, "s2w": 1.0, "df": np.nan, "q": 0.0, "q_pvalue": 1.0,
             "i2": 0.0, "h2": 1.0, "loglik": np.nan, "tau2_ci_low": np.nan,
             "tau2_ci_high": np.nan, "i2_ci_low": np.nan, "i2_ci_high": np.nan,
             "h2_ci_low": np.nan, "h2_ci_high": np.nan}
    if idx.size == n:  # every row has k > p (the usual case): nothing to fill in
        fields = {name: np.asarray(part[name], dtype=float) for name in empty}
        beta, vb, w = part["beta"], part["vb"], part["w"]
    else:  # rows with k <= p: tau^2 = 0, the fixed-effect fit, no heterogeneity
        pr = d.proj(d.weights(tau2))
        (beta, vb), w = pr.coef(), pr.w
        for name, fill in empty.items():
            fields[name] = np.full(n, fill)
            if idx.size:
                fields[name][idx] = part[name]
        if idx.size:
            beta[idx], vb[idx], w[idx] = part["beta"], part["vb"], part["w"]
    truncated = np.zeros(n, dtype=bool)
    if idx.size:
        truncated[idx] = cut
    fit = HeterogeneityFit(tau2=tau2, converged=conv, beta=beta, vb=vb, w=w,
                           q_df=(d.k - d.p).astype(int), tau2_ci_truncated=truncated, **fields)
    if not np.all(conv):
        for name in ("tau2", *empty):
            getattr(fit, name)[~conv] = np.nan
        fit.beta[~conv] = np.nan
        fit.vb[~conv] = np.nan
    return fit


@_at_limits
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
    b = Basis.of(d)
    if method in ("FE", "DL", "HS", "HE", "SJ"):
        t, conv = float(_closed_form(b, method)), True
    elif method in ("PM", "EB"):
        t, conv = qroot_one(b, method, con)
    else:
        t, conv = global_one(b, method, con)
    if not conv:
        raise ConvergenceError(_fail_message(method, con))
    out = _summaries(b, method, t, ci, "metafor")
    lb = ub = math.nan
    cut = False
    if tau2_ci and method != "FE":
        lb, ub, cut = _qprofile(b, t, level, con)
    out.update(_ci_i2_h2(lb, ub, out.pop("vt")))
    out["tau2_ci_truncated"] = cut
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


@dataclass(frozen=True, slots=True)
class PointFit:
    r"""The point estimates of every row: what GOSH and the permutation tests refit for.

    ``beta`` (n x p), ``vb`` (n x p x p; Knapp-Hartung scaled when ``ci`` asks for it),
    ``tau2``, ``q`` (QE at :math:`\tau^2 = 0`), ``i2`` (percent), ``h2``, ``df`` (the t
    degrees of freedom, NaN for z) and ``converged``; rows whose estimator failed are NaN.
    """

    tau2: np.ndarray
    converged: np.ndarray
    beta: np.ndarray
    vb: np.ndarray
    df: np.ndarray
    q: np.ndarray
    i2: np.ndarray
    h2: np.ndarray


def fit_points(d: Rows, method: str, ci: str = "z", *,
               control: Control | None = None, convention: str = "metafor") -> PointFit:
    r"""Fit every row of ``d`` for its point estimates only (many refits of one data set).

    The same estimators and formulas as :func:`fit_heterogeneity` (:func:`_estimate`,
    :func:`_i2_h2`, the projection's coefficients and Knapp-Hartung factor) without the
    standard error of :math:`\hat\tau^2`, the Q-profile limits and the likelihood, which a
    GOSH plot (Olkin, Dahabreh & Trikalinos 2012) or a permutation test (Follmann & Proschan
    1999) never reads: with 65,535 subsets that is most of the time. A row with
    :math:`k \le p` gets the fixed-effect fit, :math:`\tau^2 = 0`, Q = 0, I² = 0, H² = 1
    (metafor). Failed rows (ML/REML/EB/PM iteration) are NaN with ``converged`` False.
    ``convention="revman5"`` gives the Q-based :math:`I^2 = (Q - df)/Q`, :math:`H^2 =
    Q/df`, as in :func:`fit_heterogeneity`.
    """
    con = Control() if control is None else control
    n = d.k.size
    idx = np.flatnonzero(d.k > d.p)
    tau2, conv = np.zeros(n), np.ones(n, dtype=bool)
    q, i2, h2 = np.zeros(n), np.zeros(n), np.ones(n)
    use_kh = ci in ("hksj", "hksj_adhoc")
    s2w = np.ones(n)
    if idx.size:
        sub = d.take(idx)
        b = Basis.of(sub)
        t, c = _estimate(b, method, con)
        tau2[idx], conv[idx] = t, c
        q[idx] = np.maximum(0.0, b.p0.q)
        i2[idx], h2[idx], _ = _i2_h2(q[idx], b.keff, b.p0.trp, t, method, convention)
    # FE: tau^2 = 0, the fixed-effect projection (already computed when every row has k > p)
    if method == "FE":
        pr = b.p0 if idx.size == n else d.proj(d.fe_weights())
    else:
        pr = d.proj(d.weights(np.where(conv, tau2, 0.0)))
    if use_kh and idx.size:
        s2w[idx] = _kh_scale(pr, d.k - d.p, ci)[idx]
    beta, vb = pr.coef(s2w)
    df = np.where(d.k > d.p, d.k - d.p, np.nan) if use_kh else np.full(n, np.nan)
    fit = PointFit(tau2=tau2, converged=conv, beta=np.array(beta, dtype=float),
                   vb=np.array(vb, dtype=float), df=df, q=q, i2=i2, h2=h2)
    if not np.all(conv):
        for name in ("tau2", "q", "i2", "h2", "beta", "vb"):
            getattr(fit, name)[~conv] = np.nan
    return fit
