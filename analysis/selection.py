r"""Selection models for publication bias (metafor ``selmodel``).

The Vevea-Hedges (1995) step-function model and the beta selection model of Citkowicz and
Vevea (2017), fitted by maximum likelihood with a random-effects (:math:`\tau^2`) or
equal-effects model. An observed estimate :math:`y_i \sim N(\mu, v_i + \tau^2)` is published
with relative probability :math:`w(p_i)` of its one-sided (or two-sided) p-value
:math:`p_i`; the density of a published estimate is

.. math:: f(y_i) = \frac{w(p_i)\, \phi(y_i; \mu, v_i + \tau^2)}{A_i}, \qquad
          A_i = \int w(p(y))\, \phi(y; \mu, v_i + \tau^2)\, dy .

Step function: :math:`w(p) = \delta_j` for :math:`s_{j-1} < p \le s_j` (``steps``
:math:`s_1 < \dots < s_J = 1`, :math:`\delta_1 = 1`); :math:`A_i` is a sum of normal
probabilities. Beta: :math:`w(p) = p^{\delta_1 - 1} (1 - p)^{\delta_2 - 1}` with the
p-values truncated to :math:`[p_{min}, 1 - p_{min}]` (metafor's ``pval.min = 1e-5``);
:math:`A_i` is closed form where the truncation makes :math:`w` constant and Gauss-Legendre
quadrature in between.

References
----------
Vevea JL, Hedges LV (1995). A general linear model for estimating effect size in the
presence of publication bias. Psychometrika 60:419-435. Citkowicz M, Vevea JL (2017). A
parsimonious weight function for modeling publication bias. Psychol Methods 22:28-41.
Coburn KM, Vevea JL (2019). weightr: estimating weight-function models for publication
bias (R package; warns when an interval holds three or fewer p-values).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from analysis._checks import check_choice
from analysis.errors import FewStudiesWarning
from analysis.pooling import pool
from analysis.results import PoolResult, SelectionModelResult
from analysis.small_study import _data

__all__ = ["MIN_PER_INTERVAL", "selection_loglik", "selection_model"]

TYPES = ("stepfun", "beta")
ALTERNATIVES = ("greater", "less", "two.sided")
#: Fewer p-values than this in an interval of the step function draws a FewStudiesWarning
#: (weightr, Coburn & Vevea 2019, warns at three or fewer).
MIN_PER_INTERVAL = 4
_DEFAULT_STEPS = (0.025, 0.05, 0.5, 1.0)
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(96)
_BOUND_TOL = np.finfo(float).eps ** 0.25


@dataclass(frozen=True, slots=True)
class _Model:
    """Data and settings of one selection model (the log-likelihood's fixed arguments)."""

    y: np.ndarray
    v: np.ndarray
    type: str
    steps: np.ndarray
    alternative: str
    pval_min: float
    pvals: np.ndarray  # truncated to [pval_min, 1 - pval_min]
    pgrp: np.ndarray  # interval index of each p-value (stepfun)


def _pvalues(y: np.ndarray, v: np.ndarray, alternative: str) -> np.ndarray:
    """One- or two-sided p-values of ``y / sqrt(v)`` (metafor ``.selmodel.pval``)."""
    z = y / np.sqrt(v)
    if alternative == "two.sided":
        return 2 * special.ndtr(-np.abs(z))
    return special.ndtr(z) if alternative == "less" else special.ndtr(-z)


def _step_probabilities(m: _Model, mu: float, tau2: float) -> np.ndarray:
    """``k x J`` probabilities that study i's p-value falls in interval j (metafor's ``Ai``)."""
    sd = np.sqrt(m.v)[:, None]
    se = np.sqrt(m.v + tau2)[:, None]
    s = m.steps[None, :-1]

    def tail(q: np.ndarray, upper: bool) -> np.ndarray:  # P(Y > q) or P(Y < q)
        return special.ndtr((mu - q) / se) if upper else special.ndtr((q - mu) / se)

    if m.alternative == "two.sided":
        hi = -sd * special.ndtri(s / 2)  # |y| >= hi  <=>  p <= s
        cum = tail(hi, True) + tail(-hi, False)
    else:
        upper = m.alternative == "greater"
        q = -sd * special.ndtri(s) if upper else sd * special.ndtri(s)
        cum = tail(q, upper)  # P(p <= s_j), j < J
    first = cum[:, :1]
    middle = np.diff(cum, axis=1)
    if m.alternative == "two.sided":
        last = tail(hi[:, -1:], False) - tail(-hi[:, -1:], False)
    else:
        last = tail(q[:, -1:], not upper)
    return np.hstack([first, middle, last])


def _beta_weight(p: np.ndarray, delta: np.ndarray) -> np.ndarray:
    return np.asarray(p ** (delta[0] - 1) * (1 - p) ** (delta[1] - 1))


def _beta_integral(m: _Model, mu: float, tau2: float, delta: np.ndarray) -> np.ndarray:
    r""":math:`A_i` of the beta model: closed form where the truncated p-value is constant."""
    sd = np.sqrt(m.v)
    se = np.sqrt(m.v + tau2)
    lo_w, hi_w = _beta_weight(np.array([m.pval_min, 1 - m.pval_min]), delta)

    def prob(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # P(a < Y < b)
        return np.asarray(special.ndtr((b - mu) / se) - special.ndtr((a - mu) / se))

    def quad(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # Gauss-Legendre on (a, b)
        half = (b - a)[:, None] / 2
        yv = (a + b)[:, None] / 2 + half * _GL_NODES[None, :]
        p = np.clip(_pvalues(yv, m.v[:, None], m.alternative), m.pval_min, 1 - m.pval_min)
        dens = stats.norm.pdf(yv, mu, se[:, None])
        return np.asarray(np.sum(_GL_WEIGHTS * _beta_weight(p, delta) * dens, axis=1)
                          * half[:, 0])

    inf = np.full(sd.size, np.inf)
    if m.alternative == "two.sided":
        a = -sd * special.ndtri(m.pval_min / 2)  # |y| > a: p < pval_min
        b = -sd * special.ndtri((1 - m.pval_min) / 2)  # |y| < b: p > 1 - pval_min
        return np.asarray(lo_w * (prob(a, inf) + prob(-inf, -a)) + hi_w * prob(-b, b)
                          + quad(b, a) + quad(-a, -b))
    c = -sd * special.ndtri(m.pval_min)  # p < pval_min beyond c on the selected side
    if m.alternative == "greater":
        return np.asarray(lo_w * prob(c, inf) + hi_w * prob(-inf, -c) + quad(-c, c))
    return np.asarray(lo_w * prob(-inf, -c) + hi_w * prob(c, inf) + quad(-c, c))


def _loglik(m: _Model, mu: float, tau2: float, delta: np.ndarray) -> float:
    """Log-likelihood on the natural scale (metafor ``.selmodel.ll.stepfun`` / ``.cont``)."""
    if tau2 < np.finfo(float).eps * 10:
        tau2 = 0.0
    dens = stats.norm.logpdf(m.y, mu, np.sqrt(m.v + tau2))
    with np.errstate(divide="ignore", invalid="ignore"):
        if m.type == "stepfun":
            ai = _step_probabilities(m, mu, tau2) @ delta
            logw = np.log(delta[m.pgrp])
        else:
            ai = _beta_integral(m, mu, tau2, delta)
            logw = np.log(_beta_weight(m.pvals, delta))
        value = float(np.sum(logw + dens - np.log(ai)))
    return value if math.isfinite(value) else -math.inf


def _hessian(f: Callable[[np.ndarray], float], x: np.ndarray, r: int = 6) -> np.ndarray:
    """Richardson-extrapolated Hessian, numDeriv's ``hessian`` (d = 0.1, eps = 1e-4, v = 2)."""
    n = x.size
    h0 = np.abs(0.1 * x) + 1e-4 * (np.abs(x) < math.sqrt(np.finfo(float).eps / 7e-7))
    f0 = f(x)
    hdiag = np.empty(n)
    hess = np.empty((n, n))

    def extrapolate(a: np.ndarray) -> float:
        for mm in range(1, r):
            a = (a[1:] * 4**mm - a[:-1]) / (4**mm - 1)
        return float(a[0])

    for i in range(n):
        e = np.zeros(n)
        e[i] = 1
        h = h0.copy()
        approx = np.empty(r)
        for kk in range(r):
            approx[kk] = (f(x + e * h) - 2 * f0 + f(x - e * h)) / h[i] ** 2
            h = h / 2
        hdiag[i] = extrapolate(approx)
        hess[i, i] = hdiag[i]
    for i in range(n):
        for j in range(i):
            e = np.zeros(n)
            e[i] = e[j] = 1
            h = h0.copy()
            approx = np.empty(r)
            for kk in range(r):
                approx[kk] = ((f(x + e * h) - 2 * f0 + f(x - e * h) - hdiag[i] * h[i] ** 2
                               - hdiag[j] * h[j] ** 2) / (2 * h[i] * h[j]))
                h = h / 2
            hess[i, j] = hess[j, i] = extrapolate(approx)
    return hess


@dataclass(frozen=True, slots=True)
class _Settings:
    delta_min: np.ndarray
    delta_max: np.ndarray
    delta_init: np.ndarray
    pval_min: float
    gtol: float
    maxiter: int


def _settings(type_: str, n_delta: int, control: Mapping[str, Any] | None) -> _Settings:
    allowed = {"delta_min", "delta_max", "delta_init", "pval_min", "gtol", "maxiter"}
    con = dict(control or {})
    unknown = sorted(set(con) - allowed)
    if unknown:
        raise ValueError(f"unknown control setting(s) {unknown}; allowed: {sorted(allowed)}")
    beta = type_ == "beta"

    def vec(name: str, default: float) -> np.ndarray:
        value = np.broadcast_to(np.asarray(con.get(name, default), dtype=float), (n_delta,))
        return np.array(value, dtype=float)

    dmin, dmax = vec("delta_min", 1e-5 if beta else 0.0), vec("delta_max", 100.0)
    init = vec("delta_init", 1.0)
    lower_ok = dmin > 0 if beta else dmin >= 0
    if not np.all(lower_ok) or not np.all(dmax > dmin) or not np.all(np.isfinite(dmax)):
        raise ValueError(f"control 'delta_min'/'delta_max' must satisfy "
                         f"{'0 <' if beta else '0 <='} delta_min < delta_max < inf; got "
                         f"{dmin.tolist()} and {dmax.tolist()}")
    if not np.all((init > dmin) & (init < dmax)):
        raise ValueError(f"control 'delta_init' must lie strictly between delta_min and "
                         f"delta_max; got {init.tolist()}")
    pmin = float(con.get("pval_min", 1e-5 if beta else 0.0))
    if not (0 <= pmin < 0.5) or (beta and pmin <= 0):
        raise ValueError(f"control 'pval_min' must be in {'(0' if beta else '[0'}, 0.5); "
                         f"got {pmin}")
    return _Settings(dmin, dmax, init, pmin, float(con.get("gtol", 1e-9)),
                     int(con.get("maxiter", 1000)))


def _maximise(m: _Model, fixed: np.ndarray, st: _Settings, mu0: float, tau2_0: float,
              tau2_fixed: float | None) -> tuple[float, float, np.ndarray, float]:
    """Maximise the log-likelihood on metafor's scale (log tau2, logistic delta)."""
    free = np.isnan(fixed)
    lb, ub = st.delta_min[free], st.delta_max[free]

    def unpack(theta: np.ndarray) -> tuple[float, float, np.ndarray]:
        delta = fixed.copy()
        delta[free] = lb + (ub - lb) * special.expit(theta[2:] if tau2_fixed is None
                                                     else theta[1:])
        tau2 = math.exp(theta[1]) if tau2_fixed is None else tau2_fixed
        return float(theta[0]), tau2, delta

    def objective(theta: np.ndarray) -> float:
        value = -_loglik(m, *unpack(theta))
        return value if math.isfinite(value) else 1e300

    def gradient(theta: np.ndarray) -> np.ndarray:
        g = np.empty(theta.size)
        for i in range(theta.size):
            h = 1e-6 * max(1.0, abs(theta[i]))
            e = np.zeros(theta.size)
            e[i] = h
            g[i] = (objective(theta + e) - objective(theta - e)) / (2 * h)
        return g

    d0 = st.delta_init[free]
    start = [mu0] + ([math.log(tau2_0 + 0.001)] if tau2_fixed is None else [])
    theta0 = np.r_[start, np.log((d0 - lb) / (ub - d0))]
    fit = optimize.minimize(objective, theta0, jac=gradient, method="BFGS",
                            options={"gtol": st.gtol, "maxiter": st.maxiter})
    mu, tau2, delta = unpack(fit.x)
    if tau2 < np.finfo(float).eps * 10:
        tau2 = 0.0
    return mu, tau2, delta, _loglik(m, mu, tau2, delta)


def selection_loglik(yi: Any, vi: Any = None, *, mu: float, tau2: float, delta: Any,
                     type: str = "stepfun", steps: Any = None,
                     alternative: str = "greater", pval_min: float | None = None) -> float:
    r"""Log-likelihood of a selection model at given parameters (natural scale).

    The function :func:`selection_model` maximises; ``delta`` holds all weights (for the
    step function :math:`\delta_1 = 1` included). Checked against metafor's ``ll`` at its
    estimates (tests/test_selection_model.py).
    """
    y, v, _, _ = _data(yi, vi, None, "the selection model")
    m = _model(y, v, type, steps, alternative, pval_min)
    return _loglik(m, float(mu), float(tau2), np.asarray(delta, dtype=float))


def _model(y: np.ndarray, v: np.ndarray, type_: str, steps: Any, alternative: str,
           pval_min: float | None) -> _Model:
    check_choice("type", type_, TYPES)
    check_choice("alternative", alternative, ALTERNATIVES)
    if type_ == "stepfun":
        s = np.unique(np.asarray(_DEFAULT_STEPS if steps is None else steps, dtype=float))
        if s.size == 0 or np.any(~np.isfinite(s)) or np.any((s < 0) | (s > 1)):
            raise ValueError(f"argument 'steps' must hold values between 0 and 1; got {steps}")
        if s[-1] != 1:
            s = np.r_[s, 1.0]
        if s.size < 2:
            raise ValueError("argument 'steps' must define at least two intervals "
                             "(one cut-point below 1)")
    else:
        s = np.array([np.nan])
    pmin = (1e-5 if type_ == "beta" else 0.0) if pval_min is None else float(pval_min)
    p = np.clip(_pvalues(y, v, alternative), pmin, 1 - pmin)
    pgrp = (np.searchsorted(s, p, side="left") if type_ == "stepfun"
            else np.zeros(y.size, dtype=int))
    return _Model(y, v, type_, s, alternative, pmin, p, pgrp)


def _interval_labels(steps: np.ndarray) -> tuple[str, ...]:
    left = [f"{x:g}" for x in np.r_[0.0, steps[:-1]]]
    width = max(len(x) for x in left)
    return tuple(f"{a:<{width}} < p <= {b:g}" for a, b in zip(left, steps, strict=True))


def selection_model(
    yi: Any,
    vi: Any = None,
    *,
    type: str = "stepfun",
    steps: Any = None,
    alternative: str = "greater",
    method: str | None = None,
    level: float | None = None,
    control: Mapping[str, Any] | None = None,
) -> SelectionModelResult:
    r"""Fit a step-function or beta selection model by maximum likelihood (metafor ``selmodel``).

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        A fitted :class:`~analysis.results.PoolResult` (its data, method and level) or
        effect sizes and sampling variances.
    type : {"stepfun", "beta"}
        Vevea-Hedges step function or Citkowicz-Vevea beta weight function.
    steps : sequence of float, optional
        Cut-points of the p-value intervals of the step function (1 is appended when
        missing); default ``(0.025, 0.05, 0.5, 1)``. Ignored, with a warning, for
        ``type="beta"`` (as metafor).
    alternative : {"greater", "less", "two.sided"}
        Direction of the p-values the selection acts on: one-sided tests of
        :math:`y_i > 0` (``"greater"``), of :math:`y_i < 0`, or two-sided.
    method : {"REML", "ML", "EE", "FE", "DL", ...}, optional
        Any random-effects estimator fits :math:`\tau^2` by maximum likelihood together
        with the selection model (metafor refits REML, DL, ... models by ML first);
        ``"EE"``/``"FE"`` fixes :math:`\tau^2 = 0`. Default: the result's, else REML.
    level : float, optional
        Confidence level of the Wald intervals (default the result's, else 0.95).
    control : mapping, optional
        ``delta_min``, ``delta_max`` (bounds of the weights; metafor's defaults 0 and 100
        for the step function, 1e-5 and 100 for the beta model), ``delta_init`` (1),
        ``pval_min`` (truncation of the p-values: 0, beta 1e-5), ``gtol`` (gradient
        tolerance of BFGS on the transformed scale, 1e-9) and ``maxiter`` (1000).

    Returns
    -------
    SelectionModelResult
        Estimates :math:`\hat\mu` (``estimate``), :math:`\hat\tau^2`, :math:`\hat\delta`,
        with standard errors from the inverse of the numerical Hessian of the
        log-likelihood on the natural scale (numDeriv's Richardson scheme, r = 6, as
        metafor), Wald tests (:math:`\delta_j` against 1), the likelihood-ratio test of
        selection against the model without it (``ll0``, df = number of free weights) and,
        for random effects, of :math:`\tau^2 = 0` under selection.

    Raises
    ------
    ValueError
        An interval of the step function holds no observed p-value (metafor: "One or more
        intervals do not contain any observed p-values"); k smaller than the number of
        parameters; invalid arguments.

    Warns
    -----
    FewStudiesWarning
        An interval of the step function holds fewer than :data:`MIN_PER_INTERVAL`
        p-values.
    UserWarning
        A weight estimate at (or within :math:`\epsilon^{1/4}` of) its bound; the Hessian
        could not be inverted (standard errors are then NaN) -- metafor's two warnings.

    Notes
    -----
    Checked against metafor 3.8-1 ``selmodel(res, type=, steps=, alternative=)`` on the
    five data sets of tests/reference/small_study.json (REML, ML and EE inputs) and on the
    tight-tolerance refits of tests/reference/make_selmodel_reference.R. metafor maximises
    with ``optim`` (BFGS, finite-difference gradient with step 1e-3, relative tolerance
    1.5e-8) and integrates the beta model with ``integrate(rel.tol = eps^0.25)``; here the
    step function's normalising constants are closed form, the beta model's are closed form
    in the truncated tails and 96-point Gauss-Legendre in between (exact to ~1e-13), and
    BFGS stops at a gradient of 1e-9; the fit at :math:`\tau^2 = 0` (needed for the LRT)
    replaces the random-effects fit when its likelihood is at least as high (the maximum on
    the boundary, which BFGS on :math:`\log\tau^2` only approaches). The maxima are the
    exact ones: estimates, log-likelihoods and step-function SEs agree with the tight
    fixture at 1e-6 (beta-model SEs at 2e-4: metafor's Hessian differentiates its
    integrate() values); the Hessian uses numDeriv's steps (d = 0.1, r = 6) as metafor.
    """
    y, v, d, _ = _data(yi, vi, None, "the selection model", "REML", method, None, level)
    lev = d.level
    k = y.size
    fe = str(d.method).upper() in ("FE", "EE", "CE")
    if type == "beta" and steps is not None:
        warnings.warn("argument 'steps' ignored (not applicable to the beta selection model)",
                      UserWarning, stacklevel=2)
        steps = None
    check_choice("type", type, TYPES)
    n_delta = len(_model(y[:1], v[:1], type, steps, alternative, None).steps) \
        if type == "stepfun" else 2
    st = _settings(type, n_delta, control)
    m = _model(y, v, type, steps, alternative, st.pval_min)
    fixed = np.full(n_delta, np.nan)
    if type == "stepfun":
        fixed[0] = 1.0
    n_free = int(np.isnan(fixed).sum())
    if k < 1 + (0 if fe else 1) + n_free:
        raise ValueError(f"Number of studies (k={k}) is too small to fit the selection model "
                         f"({1 + (0 if fe else 1) + n_free} parameters).")
    counts: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()
    if type == "stepfun":
        counts = tuple(int(c) for c in np.bincount(m.pgrp, minlength=n_delta))
        labels = _interval_labels(m.steps)
        empty = [lab for lab, c in zip(labels, counts, strict=True) if c == 0]
        if empty:
            raise ValueError("One or more intervals do not contain any observed p-values "
                             f"(empty: {', '.join(empty)}); choose other 'steps'.")
        few = [f"{lab} ({c})" for lab, c in zip(labels, counts, strict=True)
               if c < MIN_PER_INTERVAL]
        if few:
            warnings.warn(
                f"step-function selection model: interval(s) {', '.join(few)} hold fewer "
                f"than {MIN_PER_INTERVAL} p-values; the weights of sparse intervals are "
                "poorly estimated (weightr, Coburn & Vevea 2019, warns at three or fewer)",
                FewStudiesWarning, stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = pool(y, v, method="FE" if fe else "ML")
    assert isinstance(base, PoolResult)
    tau2_0 = 0.0 if fe else float(base.tau2)
    mu, tau2, delta, ll = _maximise(m, fixed, st, float(base.estimate), tau2_0,
                                    0.0 if fe else None)
    ll_het = math.nan
    if not fe:  # the fit at tau2 = 0: the LRT for tau2, and the maximum when on the boundary
        zero = _maximise(m, fixed, st, float(base.estimate), tau2_0, 0.0)
        ll_het = zero[3]
        if ll_het >= ll:
            mu, tau2, delta, ll = zero
    free = np.isnan(fixed)
    if (np.any(delta <= st.delta_min + _BOUND_TOL)
            or np.any(delta >= st.delta_max - 100 * _BOUND_TOL)):
        warnings.warn("One or more 'delta' estimates are (almost) equal to their lower or upper "
                      "bound; treat the results with caution (or adjust control "
                      "'delta_min'/'delta_max').", UserWarning, stacklevel=2)

    # Hessian of -ll on the natural scale over the free parameters (mu, tau2, free deltas)
    def negll(x: np.ndarray) -> float:
        dd = fixed.copy()
        dd[free] = x[1:] if fe else x[2:]
        return -_loglik(m, float(x[0]), 0.0 if fe else float(x[1]), dd)

    x_hat = np.r_[mu, [] if fe else [tau2], delta[free]]
    cov = np.full((x_hat.size, x_hat.size), np.nan)
    with np.errstate(all="ignore"):
        hess = _hessian(negll, x_hat)
    try:
        if not np.all(np.isfinite(hess)):
            raise np.linalg.LinAlgError
        chol = np.linalg.cholesky(hess)
        inv = np.linalg.inv(chol)
        cov = inv.T @ inv
        if not np.all(np.isfinite(cov)):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        cov = np.full((x_hat.size, x_hat.size), np.nan)
        warnings.warn("Error when trying to invert the Hessian; standard errors are NaN.",
                      UserWarning, stacklevel=2)
    var = np.diag(cov)
    crit = float(special.ndtri(1 - (1 - lev) / 2))
    se = math.sqrt(var[0]) if var[0] >= 0 else math.nan
    zval = mu / se
    se_tau2 = math.nan if fe else (math.sqrt(var[1]) if var[1] >= 0 else math.nan)
    se_delta = np.full(n_delta, np.nan)
    se_delta[free] = np.sqrt(np.where(var[-n_free:] >= 0, var[-n_free:], np.nan))
    zval_delta = (delta - 1) / se_delta
    with np.errstate(invalid="ignore"):
        pval_delta = 2 * special.ndtr(-np.abs(zval_delta))
    ci_low_delta = np.maximum(delta - crit * se_delta, 0.0)
    ci_high_delta = delta + crit * se_delta

    ll0 = float(np.sum(stats.norm.logpdf(y, base.estimate, np.sqrt(v + tau2_0))))
    lrt = max(0.0, -2 * (ll0 - ll))
    lrt_tau2 = lrtp_tau2 = math.nan
    if not fe:
        lrt_tau2 = max(0.0, -2 * (ll_het - ll))
        lrtp_tau2 = float(stats.chi2.sf(lrt_tau2, 1))
    return SelectionModelResult(
        type=type, alternative=alternative, method="EE" if fe else "ML",
        estimate=mu, se=se, zval=zval, pvalue=float(2 * special.ndtr(-abs(zval))),
        ci_low=mu - crit * se, ci_high=mu + crit * se, tau2=tau2, se_tau2=se_tau2,
        tau2_ci_low=math.nan if fe else max(0.0, tau2 - crit * se_tau2),
        tau2_ci_high=math.nan if fe else tau2 + crit * se_tau2,
        delta=delta, se_delta=se_delta, zval_delta=zval_delta, pvalue_delta=pval_delta,
        ci_low_delta=ci_low_delta, ci_high_delta=ci_high_delta,
        steps=m.steps if type == "stepfun" else None,
        ptable_labels=labels, ptable_counts=counts, pvals=m.pvals,
        ll=ll, ll0=ll0, lrt=lrt, lrt_df=n_free, lrt_pvalue=float(stats.chi2.sf(lrt, n_free)),
        lrt_tau2=lrt_tau2, lrt_tau2_pvalue=lrtp_tau2, level=lev, k=k, measure=d.measure)
