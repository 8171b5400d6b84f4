r"""Henmi and Copas's interval for the fixed-effect estimate (metafor ``hc``).

An interval around the fixed-effect estimate that allows for heterogeneity and is robust
to publication bias.

References
----------
Henmi M, Copas JB (2010). Confidence intervals for random effects meta-analysis and
robustness to publication bias. Stat Med 29:2969-2983.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import integrate, optimize, stats

from analysis.results import HenmiCopasResult, PoolResult
from analysis.small_study import _data

__all__ = ["henmi_copas"]


def henmi_copas(yi: Any, vi: Any = None, *, level: float | None = None,
                tol: float = 1e-12) -> HenmiCopasResult:
    r"""Henmi-Copas interval around the fixed-effect estimate (metafor ``hc``).

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        A fitted :class:`~analysis.results.PoolResult` (metafor ``hc(res)``: its data and
        level; its estimate is reported alongside) or effect sizes and sampling variances.
    level : float, optional
        Confidence level (default the result's, else 0.95).
    tol : float
        Tolerance of the root for the interval's half-width (metafor uses
        :math:`\epsilon^{1/4} \approx 1.2 \times 10^{-4}`).

    Returns
    -------
    HenmiCopasResult
        :math:`\hat\beta_{FE} = \sum w_i y_i / W_1` with the DerSimonian-Laird
        :math:`\hat\tau^2`, standard error :math:`\sqrt{(\hat\tau^2 W_2 + 1)/W_1}` and the
        interval :math:`\hat\beta \pm u_0\, SE`, where :math:`u_0 = \sqrt{1 + \hat\tau^2
        W_2}\, t_0` solves Henmi and Copas's equation :math:`\int_{t_0}^\infty
        G(f^{-1}(r/t_0);\, r)\, \phi(r)\, dr = (1 - \text{level})/2` (:math:`G` the gamma
        approximation of the distribution of Q given the standardised estimate).

    Raises
    ------
    ValueError
        Fewer than 2 studies (the authors state no other minimum; the method needs a
        DerSimonian-Laird estimate).

    Notes
    -----
    Checked against metafor 3.8-1 ``hc(res)`` for REML and DL fits on the five fixture
    data sets: estimate, SE and :math:`\tau^2` at 1e-10; the interval at 1e-4 against the
    shared fixture (metafor's ``uniroot`` tolerance is :math:`\epsilon^{1/4}`) and at 1e-8
    against ``hc(res, control=list(tol=1e-12))`` (tests/reference/
    make_small_study_reference.R; R's ``integrate`` keeps its default accuracy).
    """
    y, v, d, _ = _data(yi, vi, None, "the Henmi-Copas interval", "REML", None, None, level)
    lev = d.level
    k = y.size
    if k < 2:
        raise ValueError(f"the Henmi-Copas method needs at least 2 studies; got k = {k}")
    w = 1 / v
    w1 = float(np.sum(w))
    w2, w3, w4 = (float(np.sum(w**p)) / w1 for p in (2, 3, 4))
    beta = float(np.sum(w * y)) / w1
    q = float(np.sum(w * (y - beta) ** 2))
    tau2 = max(0.0, (q - (k - 1)) / (w1 - w2))
    se = math.sqrt((tau2 * w2 + 1) / w1)
    vr = 1 + tau2 * w2
    sdr = math.sqrt(vr)
    c = w3 - w2**2

    def eq(r: float) -> float:
        return (k - 1) + tau2 * (w1 - w2) + tau2**2 * (r**2 / vr**2 - 1 / vr) * c

    def vq(r: float) -> float:
        a = r**2 / vr**2 - 1 / vr
        return (2 * (k - 1) + 4 * tau2 * (w1 - w2) + 2 * tau2**2 * (w1 * w2 - 2 * w3 + w2**2)
                + 4 * tau2**2 * a * c + 4 * tau2**3 * a * (w4 - 2 * w2 * w3 + w2**3)
                + 2 * tau2**4 * (1 / vr**2 - 2 * r**2 / vr**3) * c**2)

    def finv(f: float) -> float:
        return (w1 / w2 - 1) * (f**2 - 1) + (k - 1)

    def equation(x: float) -> float:
        def integrand(r: float) -> float:
            e, var = eq(sdr * r), vq(sdr * r)
            return float(stats.gamma.cdf(finv(r / x), a=e**2 / var, scale=var / e)
                         * math.exp(-r * r / 2) / math.sqrt(2 * math.pi))
        value = integrate.quad(integrand, x, np.inf, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
        return value - (1 - lev) / 2

    t0 = optimize.brentq(equation, 1e-8, 2.0, xtol=tol, rtol=4 * np.finfo(float).eps)
    u0 = sdr * t0
    res = d.result if isinstance(d.result, PoolResult) else None
    nan = math.nan
    return HenmiCopasResult(
        beta, se, beta - u0 * se, beta + u0 * se, tau2,
        res.estimate if res else nan, res.se if res else nan,
        res.ci_low if res else nan, res.ci_high if res else nan,
        res.tau2 if res else nan, res.method if res else "", lev, k, d.measure)
