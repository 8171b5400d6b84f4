r"""Test of excess significance (Ioannidis & Trikalinos 2007; metafor ``tes``).

References
----------
Ioannidis JPA, Trikalinos TA (2007). An exploratory test for an excess of significant
findings. Clin Trials 4:245-253. Stanley TD, Doucouliagos H, Ioannidis JPA, Carter EC (2021).
Detecting publication selection bias through excess statistical significance. Res Synth
Methods 12:776-795.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import integrate, optimize, special, stats

from analysis._checks import check_choice
from analysis.results import ExcessSignificanceResult, PoolResult
from analysis.small_study import _data

__all__ = ["excess_significance"]


def _crit(alternative: str, alpha: float) -> float:
    if alternative == "two.sided":
        return float(special.ndtri(1 - alpha / 2))
    return float(special.ndtri(1 - alpha)) if alternative == "greater" else float(
        special.ndtri(alpha))


def _power_given(mu: np.ndarray, alternative: str, crit: float) -> np.ndarray:
    """Power of each study's z test when its z has mean ``mu`` (metafor's ``pnorm`` terms)."""
    if alternative == "two.sided":
        return special.ndtr(mu - crit) + special.ndtr(-crit - mu)
    return special.ndtr(mu - crit) if alternative == "greater" else special.ndtr(crit - mu)


def _power(theta: float, sei: np.ndarray, tau2: float, h0: float, alternative: str,
           crit: float) -> np.ndarray:
    if tau2 <= 0:
        return _power_given((theta - h0) / sei, alternative, crit)
    tau = math.sqrt(tau2)
    out = np.empty(sei.size)
    for i, s in enumerate(sei):  # metafor integrates over theta +- 5 tau
        out[i] = integrate.quad(
            lambda x, s=s: float(_power_given(np.array([(x - h0) / s]), alternative, crit)[0]
                                 * stats.norm.pdf(x, theta, tau)),
            theta - 5 * tau, theta + 5 * tau, epsabs=0, epsrel=1e-12, limit=200)[0]
    return out


def _poisson_binomial(p: np.ndarray) -> np.ndarray:
    dist = np.array([1.0])
    for pi in p:
        dist = np.r_[dist * (1 - pi), 0.0] + np.r_[0.0, dist * pi]
    return dist


def _binom_two_sided(o: int, k: int, p: float) -> float:
    """R ``binom.test(..., alternative="two.sided")`` p-value."""
    rel_err = 1 + 1e-7
    d = stats.binom.pmf(o, k, p)
    m = k * p
    if o == m:
        return 1.0
    if o < m:
        j = np.arange(math.ceil(m), k + 1)
        y = int(np.sum(stats.binom.pmf(j, k, p) <= d * rel_err))
        return float(min(1.0, stats.binom.cdf(o, k, p) + stats.binom.sf(k - y, k, p)))
    j = np.arange(0, math.floor(m) + 1)
    y = int(np.sum(stats.binom.pmf(j, k, p) <= d * rel_err))
    return float(min(1.0, stats.binom.cdf(y - 1, k, p) + stats.binom.sf(o - 1, k, p)))


def _test(o: int, k: int, power: np.ndarray, test: str, tes_alt: str) -> tuple[float, float]:
    e = float(np.sum(power))
    if test == "chi2":  # R prop.test(O, k, p = E/k, correct = FALSE)
        p0 = e / k
        x2 = (o - e) ** 2 / (e * (1 - p0))
        if tes_alt == "two.sided":
            return x2, float(stats.chi2.sf(x2, 1))
        z = math.copysign(math.sqrt(x2), o / k - p0)
        return x2, float(special.ndtr(-z) if tes_alt == "greater" else special.ndtr(z))
    if test == "binom":
        if tes_alt == "two.sided":
            return math.nan, _binom_two_sided(o, k, e / k)
        if tes_alt == "greater":
            return math.nan, float(stats.binom.sf(o - 1, k, e / k))
        return math.nan, float(stats.binom.cdf(o, k, e / k))
    prj = _poisson_binomial(power)
    if tes_alt == "two.sided":
        p = float(np.sum(prj[prj <= prj[o] + np.finfo(float).eps ** 0.5]))
    elif tes_alt == "greater":
        p = float(np.sum(prj[o:]))
    else:
        p = float(np.sum(prj[: o + 1]))
    return math.nan, min(p, 1.0)


def _choose_test(k: int, o: int, tes_alt: str) -> str:
    js = range(k + 1) if tes_alt == "two.sided" else (
        range(o, k + 1) if tes_alt == "greater" else range(o + 1))
    return "exact" if sum(math.comb(k, j) for j in js) <= 10**6 else "chi2"


def excess_significance(
    yi: Any,
    vi: Any = None,
    *,
    h0: float = 0.0,
    alternative: str = "two.sided",
    alpha: float = 0.05,
    theta: float | None = None,
    tau2: float | None = None,
    test: str | None = None,
    tes_alternative: str = "greater",
    tes_alpha: float = 0.1,
    find_limit: bool = True,
) -> ExcessSignificanceResult:
    r"""Test whether more studies are significant than their power predicts.

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        A fitted :class:`~analysis.results.PoolResult` (metafor ``tes(res)``: its estimate
        is ``theta`` and its :math:`\tau^2` enters the power) or effect sizes and sampling
        variances (then ``theta`` defaults to the inverse-variance mean, with ``tau2``).
    h0, alternative, alpha
        Null value, sidedness (``"two.sided"``, ``"greater"``, ``"less"``) and level of each
        study's z test :math:`z_i = (y_i - h_0)/\sqrt{v_i}` (a study is significant when it
        rejects).
    theta, tau2 : float, optional
        True effect and heterogeneity used for the power; with :math:`\tau^2 > 0` the power
        is averaged over :math:`N(\theta, \tau^2)` (integrated over :math:`\theta \pm 5\tau`
        as metafor does).
    test : {"exact", "binom", "chi2"}, optional
        Exact Poisson-binomial tail of O given the powers (default when the number of
        subsets is at most :math:`10^6`, as metafor), binomial with :math:`p = E/k`, or
        the chi-square test of R ``prop.test`` without continuity correction.
    tes_alternative, tes_alpha
        Sidedness of the excess test (``"greater"``: more significant results than expected)
        and the level at which ``theta_lim`` is found.
    find_limit : bool
        Find ``theta_lim``, the effect at which the test's p-value equals ``tes_alpha``.

    Returns
    -------
    ExcessSignificanceResult
        O, E (sum of power), O/E, the test's statistic and p-value, the powers, which
        studies are significant, theta and ``theta_lim`` (NaN where metafor returns NA).

    Raises
    ------
    ValueError
        No studies. Ioannidis and Trikalinos (2007) state no minimum but describe the test
        as exploratory with low power when k is small.

    Notes
    -----
    Checked against metafor 3.8-1 ``tes(res)`` (EE and REML fits) and ``tes(yi, vi,
    test="binom")`` on the five fixture data sets: O, E, the p-values and the powers at
    1e-6 (metafor integrates the power with R ``integrate``); ``theta_lim`` to 2e-4 absolute
    (metafor's ``uniroot`` tolerance is :math:`\epsilon^{1/4}`; ours is 1e-12).
    """
    for name, val, allowed in (("alternative", alternative, ("two.sided", "greater", "less")),
                               ("tes_alternative", tes_alternative,
                                ("two.sided", "greater", "less"))):
        check_choice(name, val, allowed)
    if test is not None:
        check_choice("test", test, ("exact", "binom", "chi2"))
    y, v, d, _ = _data(yi, vi, None, "the test of excess significance")
    k = y.size
    if k < 1:
        raise ValueError("the test of excess significance needs at least 1 study")
    if isinstance(d.result, PoolResult):
        theta = d.result.estimate if theta is None else theta
        tau2 = d.result.tau2 if tau2 is None else tau2
    t2 = 0.0 if tau2 is None or not tau2 > 0 else float(tau2)
    if theta is None:
        w = 1 / (v + t2)
        theta = float(np.sum(w * y) / np.sum(w))
    sei = np.sqrt(v)
    crit = _crit(alternative, alpha)
    zi = (y - h0) / sei
    sig = (np.abs(zi) >= crit if alternative == "two.sided"
           else zi >= crit if alternative == "greater" else zi <= crit)
    o = int(np.sum(sig))
    test = test or _choose_test(k, o, tes_alternative)

    def pval_at(th: float) -> float:
        return _test(o, k, _power(th, sei, t2, h0, alternative, crit), test, tes_alternative)[1]

    power = _power(float(theta), sei, t2, h0, alternative, crit)
    x2, pval = _test(o, k, power, test, tes_alternative)
    lim = math.nan
    if find_limit and tes_alternative != "two.sided":
        lim = _limit(pval_at, float(theta), h0, tes_alpha, tes_alternative)
    e = float(np.sum(power))
    return ExcessSignificanceResult(k, o, e, o / e, test, x2, pval, power, sig, float(theta),
                                    lim, alternative, tes_alternative, alpha, tes_alpha,
                                    d.measure)


def _limit(pval_at: Any, theta: float, h0: float, tes_alpha: float, tes_alt: str) -> float:
    """Find the theta between h0 and the estimate (extended outwards) where p = tes_alpha."""
    def f(th: float) -> float:
        return float(pval_at(th)) - tes_alpha

    f0 = f(h0)
    if (tes_alt == "greater" and f0 >= 0) or (tes_alt == "less" and f0 <= 0):
        return math.nan
    lo, hi = (h0, theta) if theta >= h0 else (theta, h0)
    step = max(hi - lo, 1e-3)
    for _ in range(60):  # extend the far end until the sign changes (uniroot's extendInt)
        if np.sign(f(lo)) != np.sign(f(hi)):
            return float(optimize.brentq(f, lo, hi, xtol=1e-12))
        if theta >= h0:
            hi += step
        else:
            lo -= step
        step *= 2
    return math.nan
