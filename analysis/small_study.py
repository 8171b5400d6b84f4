r"""Tests for small-study effects.

Rank correlation, regression tests, PET-PEESE, and the binary-outcome tests of Harbord,
Peters and Thompson-Sharp.

Every test warns (:class:`~analysis.errors.FewStudiesWarning`) below 10 studies: "As a rule
of thumb, tests for funnel plot asymmetry should be used only when there are at least 10
studies included in the meta-analysis, because when there are fewer studies the power of the
tests is too low to distinguish chance from real asymmetry" (Sterne et al. 2011, BMJ
343:d4002; Cochrane Handbook for Systematic Reviews of Interventions, version 6.4, section
13.3.5.4). Each refuses (ValueError) below the number of studies its statistic needs.

References
----------
Begg CB, Mazumdar M (1994). Operating characteristics of a rank correlation test for
publication bias. Biometrics 50:1088-1101. Egger M et al. (1997). BMJ 315:629-634.
Sterne JAC, Egger M (2005). Regression methods to detect publication and other bias in
meta-analysis. Harbord RM, Egger M, Sterne JAC (2006). A modified test for small-study
effects in meta-analyses of controlled trials with binary endpoints. Stat Med 25:3443-3457.
Peters JL et al. (2006). Comparison of two methods to detect publication bias in
meta-analysis. JAMA 295:676-680. Thompson SG, Sharp SJ (1999). Explaining heterogeneity in
meta-analysis: a comparison of methods. Stat Med 18:2693-2708. Stanley TD, Doucouliagos H
(2014). Meta-regression approximations to reduce publication selection bias. Res Synth
Methods 5:60-78.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from analysis._checks import as_float_array, check_choice, check_level
from analysis._inputs import omit_missing
from analysis.errors import AnalysisWarning, FewStudiesWarning
from analysis.pooling import METHODS, Control
from analysis.regression import _regression
from analysis.results import BinaryBiasResult, PetPeeseResult, RankTestResult, RegTestResult
from analysis.sensitivity import fitted_data

__all__ = ["harbord_test", "pet_peese", "peters_test", "rank_test", "regtest",
           "thompson_sharp_test", "warn_few_studies"]

#: Sterne et al. (2011) / Cochrane Handbook 13.3.5.4: at least 10 studies for any test of
#: funnel-plot asymmetry.
MIN_STUDIES_ASYMMETRY = 10
_ASYMMETRY_SOURCE = "Sterne et al. 2011, BMJ 343:d4002; Cochrane Handbook 13.3.5.4"
PREDICTORS = ("sei", "vi", "ninv", "sqrtninv")


def warn_few_studies(test: str, k: int, minimum: int = MIN_STUDIES_ASYMMETRY,
                     source: str = _ASYMMETRY_SOURCE) -> None:
    """Warn with :class:`FewStudiesWarning` when ``k < minimum``."""
    if k < minimum:
        warnings.warn(
            f"{test} on k = {k} studies: at least {minimum} are needed for the test to be "
            f"interpretable ({source}); the result has too little power to distinguish "
            "chance from real asymmetry", FewStudiesWarning, stacklevel=3)


def _data(yi: Any, vi: Any, study: Any, analysis: str, default_method: str = "REML",
          method: str | None = None, ci: str | None = None,
          level: float | None = None) -> tuple[np.ndarray, np.ndarray, Any, Any]:
    d = fitted_data(yi, vi, method, ci, level, study, default_method=default_method)
    keep = omit_missing(np.isfinite(d.yi) & np.isfinite(d.vi), d.study, values="yi or vi",
                        analysis=analysis)
    if np.any(d.vi[keep] <= 0):
        raise ValueError("argument 'vi' has non-positive values; sampling variances must be > 0")
    labels = (tuple(str(s) for s in np.asarray(d.study, dtype=object)[keep])
              if len(d.study) == keep.size else tuple(str(i + 1) for i in range(int(keep.sum()))))
    return d.yi[keep], d.vi[keep], d, (keep, labels)


# --- Begg's rank correlation -------------------------------------------------------------

def _kendall_exact_cdf(q: int, n: int) -> float:
    """P(T <= q) for T the number of concordant pairs of n untied pairs (Mahonian law)."""
    dist = np.array([1.0])
    for m in range(2, n + 1):  # inserting the m-th item adds 0..m-1 inversions
        new = np.zeros(dist.size + m - 1)
        for j in range(m):
            new[j:j + dist.size] += dist
        dist = new / m
    return float(dist[: q + 1].sum()) if q >= 0 else 0.0


def _kendall(x: np.ndarray, y: np.ndarray, exact: bool) -> tuple[float, float, bool]:
    """Kendall's tau-b and its two-sided p-value as R's ``cor.test(method="kendall")``."""
    n = x.size
    tau = float(stats.kendalltau(x, y).statistic)
    ties = np.unique(x).size < n or np.unique(y).size < n
    if exact and not ties:
        q = int(np.round((tau + 1) * n * (n - 1) / 4))
        upper = q > n * (n - 1) / 4
        p = 1 - _kendall_exact_cdf(q - 1, n) if upper else _kendall_exact_cdf(q, n)
        return tau, min(2 * p, 1.0), True
    tx = np.unique(x, return_counts=True)[1]
    ty = np.unique(y, return_counts=True)[1]
    tx, ty = tx[tx > 1].astype(float), ty[ty > 1].astype(float)
    t0 = n * (n - 1) / 2
    s = tau * np.sqrt((t0 - np.sum(tx * (tx - 1)) / 2) * (t0 - np.sum(ty * (ty - 1)) / 2))
    var_s = ((n * (n - 1) * (2 * n + 5) - np.sum(tx * (tx - 1) * (2 * tx + 5))
              - np.sum(ty * (ty - 1) * (2 * ty + 5))) / 18
             + np.sum(tx * (tx - 1)) * np.sum(ty * (ty - 1)) / (2 * n * (n - 1))
             + np.sum(tx * (tx - 1) * (tx - 2)) * np.sum(ty * (ty - 1) * (ty - 2))
             / (9 * n * (n - 1) * (n - 2)))
    z = s / np.sqrt(var_s)
    return tau, float(2 * min(special.ndtr(z), special.ndtr(-z))), False


def rank_test(yi: Any, vi: Any = None, *, exact: bool = True,
              study: Any = None) -> RankTestResult:
    r"""Begg and Mazumdar's rank correlation test for asymmetry (metafor ``ranktest``).

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        A fitted result (its data are used; the test always standardises against the
        fixed-effect estimate, whatever the model, as metafor does) or effect sizes and
        sampling variances (or a DataFrame with ``yi``, ``vi``).
    exact : bool
        Exact p-value from the distribution of Kendall's statistic when there are no ties
        (metafor's default, R ``cor.test(..., exact=TRUE)``); with ties, or ``exact=False``,
        the normal approximation with the tie-corrected variance (no continuity correction).
    study : array_like, optional
        Study labels kept on the result.

    Returns
    -------
    RankTestResult
        Kendall's :math:`\tau` between :math:`y_i^* = (y_i - \hat\theta_{FE}) / \sqrt{v_i -
        1/\sum w_i}` and :math:`v_i`, and its p-value.

    Raises
    ------
    ValueError
        Fewer than 3 studies. Warns (``FewStudiesWarning``) below 10 studies (Sterne et al.
        2011; Begg & Mazumdar 1994 found the test's power low even at k = 25).

    Notes
    -----
    Checked against metafor 3.8-1 ``ranktest(res)`` on the fixture data sets (k = 9 to 81,
    exact p throughout; collins has ties so the normal approximation) at 1e-10, and against
    :func:`scipy.stats.kendalltau` (tau and exact p) on random data.
    """
    y, v, d, (_, labels) = _data(yi, vi, study, "the rank correlation test")
    if y.size < 3:
        raise ValueError(f"the rank correlation test needs at least 3 studies; got k = {y.size}")
    warn_few_studies("Rank correlation test", y.size)
    w = 1 / v
    theta = np.sum(w * y) / np.sum(w)
    ystar = (y - theta) / np.sqrt(v - 1 / np.sum(w))
    tau, p, used_exact = _kendall(ystar, v, exact)
    return RankTestResult(tau, p, used_exact, int(y.size), d.measure, y, v, labels)


# --- regression tests --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _TestFit:
    zval: float
    pvalue: float
    df: float
    coef: pd.Series
    se: pd.Series
    ci_low: float
    ci_high: float
    tau2: float


def _predictor(name: str, v: np.ndarray, ni: np.ndarray | None) -> np.ndarray:
    if name == "sei":
        return np.sqrt(v)
    if name == "vi":
        return v
    if ni is None:
        raise ValueError(f"predictor {name!r} needs the sample sizes: pass 'ni'")
    return 1 / ni if name == "ninv" else 1 / np.sqrt(ni)


def fit_test_regression(y: np.ndarray, v: np.ndarray, x: np.ndarray, name: str, model: str,
                        method: str, ci: str, level: float, con: Control) -> _TestFit:
    r"""Fit :math:`y_i = \beta_0 + \beta_1 x_i` for a regression test (metafor ``regtest``).

    ``model="lm"``: weighted least squares with weights :math:`1/v_i` and a multiplicative
    dispersion, t on k - 2 df. ``model="rma"``: the meta-regression with ``method``; ``ci``
    ``"z"``, ``"hksj"`` (Knapp-Hartung, t on k - 2 df) or ``"t"`` (unadjusted standard
    errors, t on k - 2 df: metafor ``test="t"``, as R meta's Thompson-Sharp test).
    """
    k = y.size
    if model == "lm":
        xm = np.column_stack([np.ones(k), x])
        w = 1 / v
        xtwx = xm.T @ (xm * w[:, None])
        beta = np.linalg.solve(xtwx, xm.T @ (w * y))
        df = k - 2
        sigma2 = float(np.sum(w * (y - xm @ beta) ** 2)) / df
        se = np.sqrt(np.diag(sigma2 * np.linalg.inv(xtwx)))
        t = beta / se
        crit = special.stdtrit(df, 1 - (1 - level) / 2)
        return _TestFit(float(t[1]), float(2 * special.stdtr(df, -abs(t[1]))), float(df),
                        pd.Series(beta, index=["intrcpt", name]),
                        pd.Series(se, index=["intrcpt", name]),
                        float(beta[0] - crit * se[0]), float(beta[0] + crit * se[0]),
                        float(sigma2))
    xdf = pd.DataFrame({"intrcpt": np.ones(k), name: x})
    fit = _regression(y, v, xdf, method, "z" if ci == "t" else ci, level, con)
    coef = fit.coef
    if ci == "t":
        tdf = float(k - 2)
        tstat = float(fit.coef[name] / fit.se[name])
        tcrit = float(special.stdtrit(tdf, 1 - (1 - level) / 2))
        return _TestFit(tstat, float(2 * special.stdtr(tdf, -abs(tstat))), tdf,
                        coef, fit.se, float(fit.coef["intrcpt"] - tcrit * fit.se["intrcpt"]),
                        float(fit.coef["intrcpt"] + tcrit * fit.se["intrcpt"]), fit.tau2)
    zdf = float(fit.qe_df) if ci != "z" else np.nan
    return _TestFit(float(fit.zval[name]), float(fit.pvalue[name]), zdf, coef, fit.se,
                    float(fit.ci_low["intrcpt"]), float(fit.ci_high["intrcpt"]), fit.tau2)


def regtest(
    yi: Any,
    vi: Any = None,
    *,
    ni: Any = None,
    model: str = "rma",
    predictor: str = "sei",
    method: str | None = None,
    ci: str | None = None,
    level: float | None = None,
    control: Control | Mapping[str, Any] | None = None,
    study: Any = None,
) -> RegTestResult:
    r"""Regression test for funnel-plot asymmetry (metafor ``regtest``).

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        A fitted :class:`~analysis.results.PoolResult` (its data, method, ``ci`` and level
        are used) or effect sizes and sampling variances (or a DataFrame with ``yi``,
        ``vi``).
    ni : array_like, optional
        Total sample size per study (needed by ``"ninv"`` and ``"sqrtninv"``).
    model : {"rma", "lm"}
        ``"rma"``: meta-regression :math:`y_i = \beta_0 + \beta_1 x_i + u_i + e_i` fitted
        with ``method`` (metafor's default); ``"lm"``: weighted least squares with a
        multiplicative dispersion and a t test on k - 2 df (Egger's classical test for
        ``predictor="sei"``).
    predictor : {"sei", "vi", "ninv", "sqrtninv"}
        :math:`x_i`: the standard error (Egger), the variance (PEESE-type), the inverse of
        the sample size, or its square root.
    method, ci, level, control
        :math:`\tau^2` estimator (``"FE"`` for a fixed-effect test model; default the
        result's, else ``"REML"``), inference (``"z"``, ``"hksj"``), confidence level of the
        limit estimate's interval, iteration settings.
    study : array_like, optional
        Study labels.

    Returns
    -------
    RegTestResult
        The test of :math:`\beta_1` and the limit estimate :math:`\hat\beta_0` (the effect
        as the predictor goes to 0; metafor's ``est``) with its interval.

    Raises
    ------
    ValueError
        Fewer than 3 studies (and for ``model="rma"`` with :math:`\tau^2` fewer than 4);
        a sample-size predictor without ``ni``. Warns (``FewStudiesWarning``) below 10
        studies (Sterne et al. 2011; Cochrane Handbook 13.3.5.4).

    Notes
    -----
    Checked against metafor 3.8-1 ``regtest(res, model="rma", predictor=...)`` for REML and
    EE fits and ``regtest(yi, vi, ni=ni, model="lm", predictor=...)`` on the five fixture
    data sets, all four predictors: closed forms (EE, lm) at 1e-10, REML at 1e-6.
    """
    check_choice("model", model, ("lm", "rma"))
    check_choice("predictor", predictor, PREDICTORS)
    y, v, d, (keep, labels) = _data(yi, vi, study, "the regression test", "REML", method, ci,
                                    level)
    check_choice("method", d.method, METHODS)
    check_choice("ci", d.ci, ("z", "hksj", "t"))
    lev = check_level(d.level)
    n_arr = None if ni is None else as_float_array("ni", ni)
    if n_arr is not None:
        if n_arr.size != keep.size:
            raise ValueError(f"argument 'ni' has {n_arr.size} values for {keep.size} studies")
        n_arr = n_arr[keep]
        if np.any(~np.isfinite(n_arr)) or np.any(n_arr <= 0):
            raise ValueError("argument 'ni' must be positive and finite")
    if y.size < 3:
        raise ValueError(f"a regression test needs at least 3 studies; got k = {y.size}")
    warn_few_studies(f"Regression test (predictor {predictor})", y.size)
    x = _predictor(predictor, v, n_arr)
    if np.ptp(x) == 0:
        raise ValueError(f"predictor {predictor!r} is constant: the test regression cannot "
                         "be fitted")
    method_used = "FE" if model == "lm" else d.method
    fit = fit_test_regression(y, v, x, predictor, model, method_used, d.ci, lev,
                              Control.from_any(control))
    tau2 = float(fit.tau2) if model == "rma" else np.nan
    return RegTestResult(predictor, model, method_used, d.ci if model == "rma" else "t",
                         fit.zval, fit.pvalue, fit.df, float(fit.coef["intrcpt"]),
                         fit.ci_low, fit.ci_high, fit.coef, fit.se, tau2, lev, int(y.size),
                         d.measure, y, v, labels)


def pet_peese(yi: Any, vi: Any = None, *, alpha: float = 0.05,
              alternative: str = "two-sided", level: float | None = None,
              study: Any = None) -> PetPeeseResult:
    r"""PET-PEESE: the conditional precision-effect estimate with standard error.

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        Effect sizes and sampling variances (or a fitted result, whose data are used).
    alpha : float
        Level of PET's test of :math:`H_0: \beta_0 = 0`.
    alternative : {"two-sided", "greater", "less"}
        Sidedness of that test. Stanley & Doucouliagos (2014) test whether there is a
        genuine effect beyond selection, one-sided in the direction of the expected
        effect; choose ``"greater"``/``"less"`` for that, ``"two-sided"`` (the default)
        makes no assumption about the direction.
    level : float
        Confidence level of the reported interval (default 0.95).

    Returns
    -------
    PetPeeseResult
        PET: weighted least squares of :math:`y_i` on :math:`\sqrt{v_i}` with weights
        :math:`1/v_i` (metafor ``regtest(model="lm", predictor="sei")``); PEESE: the same
        on :math:`v_i` (``predictor="vi"``). The conditional rule of Stanley & Doucouliagos
        (2014, Res Synth Methods 5:60-78): if PET's intercept differs from 0 at ``alpha``
        the PEESE intercept is the estimate, otherwise PET's.

    Notes
    -----
    Both regressions are :func:`regtest` with ``model="lm"`` (checked against metafor);
    the rule is a choice between them. Warns below 10 studies (Sterne et al. 2011).
    """
    check_choice("alternative", alternative, ("two-sided", "greater", "less"))
    if not 0 < alpha < 1:
        raise ValueError(f"argument 'alpha' must be in (0, 1); got {alpha!r}")
    _data(yi, vi, study, "PET-PEESE", level=level)  # names omitted studies once
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnalysisWarning)  # few studies: warned below
        pet = regtest(yi, vi, model="lm", predictor="sei", level=level, study=study)
        peese = regtest(yi, vi, model="lm", predictor="vi", level=level, study=study)
    warn_few_studies("PET-PEESE", pet.k)
    t0 = float(pet.coef["intrcpt"] / pet.se["intrcpt"])
    if alternative == "two-sided":
        p = float(2 * special.stdtr(pet.df, -abs(t0)))
    elif alternative == "greater":
        p = float(special.stdtr(pet.df, -t0))
    else:
        p = float(special.stdtr(pet.df, t0))
    chosen = peese if p < alpha else pet
    return PetPeeseResult(pet, peese, "PEESE" if p < alpha else "PET", p, alpha, alternative,
                          chosen.estimate, chosen.ci_low, chosen.ci_high, pet.k, pet.measure)


# --- binary-outcome tests (R meta metabias) ------------------------------------------------

def _counts(ai: Any, n1i: Any, ci: Any, n2i: Any, test: str) -> tuple[np.ndarray, ...]:
    a, n1, c, n2 = (as_float_array(n, x) for n, x in
                    (("ai", ai), ("n1i", n1i), ("ci", ci), ("n2i", n2i)))
    if not a.size == n1.size == c.size == n2.size:
        raise ValueError("arguments 'ai', 'n1i', 'ci', 'n2i' must have the same length")
    keep = omit_missing(np.isfinite(a) & np.isfinite(n1) & np.isfinite(c) & np.isfinite(n2),
                        None, values="ai, n1i, ci or n2i", analysis=test)
    a, n1, c, n2 = a[keep], n1[keep], c[keep], n2[keep]
    if np.any((a < 0) | (c < 0) | (a > n1) | (c > n2)):
        raise ValueError("events must lie between 0 and the group size")
    # studies without an event, or with all events, carry no information (meta drops them)
    informative = (a + c > 0) & (a + c < n1 + n2)
    return a[informative], n1[informative], c[informative], n2[informative]


def _lm_bias(te: np.ndarray, sete: np.ndarray, covar: np.ndarray, test: str,
             measure: str | None) -> BinaryBiasResult:
    """Fit R meta's ``linregcore``: lm(TE ~ covar, weights = 1/seTE^2), slope tested on k-2 df."""
    k = te.size
    if k < 3:
        raise ValueError(f"{test}'s test needs at least 3 informative studies; got k = {k}")
    warn_few_studies(f"{test}'s test", k)
    fit = fit_test_regression(te, sete**2, covar, "covar", "lm", "FE", "t", 0.95,
                              Control.from_any(None))
    return BinaryBiasResult(test, float(fit.coef["covar"]), float(fit.se["covar"]), fit.zval,
                            fit.df, fit.pvalue, float(fit.coef["intrcpt"]),
                            float(fit.se["intrcpt"]), float(np.sqrt(fit.tau2)),
                            "multiplicative", k, measure)


def harbord_test(ai: Any, n1i: Any, ci: Any, n2i: Any) -> BinaryBiasResult:
    r"""Harbord's test for binary outcomes (R meta ``metabias(method.bias="Harbord")``).

    Parameters
    ----------
    ai, n1i, ci, n2i : array_like
        Events and group sizes in the treatment and control groups.

    Returns
    -------
    BinaryBiasResult
        With the efficient score :math:`Z_i = a_i - (a_i + c_i) n_{1i} / n_i` and its
        hypergeometric variance :math:`V_i = n_{1i} n_{2i} (a_i + c_i)(n_i - a_i - c_i) /
        (n_i^2 (n_i - 1))`: weighted regression of :math:`Z_i/V_i` on :math:`1/\sqrt{V_i}`
        with weights :math:`V_i` and multiplicative dispersion (equivalently
        :math:`Z_i/\sqrt{V_i}` on :math:`\sqrt{V_i}`); ``bias`` is the slope, tested with t
        on k - 2 df.

    Raises
    ------
    ValueError
        Fewer than 3 studies with an event. Warns (``FewStudiesWarning``) below 10 studies
        (Harbord et al. 2006 simulated k >= 5 but, as every asymmetry test, Sterne et al.
        2011 require 10).

    Notes
    -----
    Studies without events or with only events (:math:`V_i = 0`) are left out, as meta
    does. Checked against R meta 7.0-0 ``metabias(metabin(..., sm="OR"),
    method.bias="Harbord", k.min=3)`` (dat.bcg, dat.collins1985a) at 1e-10.
    """
    a, n1, c, n2 = _counts(ai, n1i, ci, n2i, "Harbord's test")
    n = n1 + n2
    z = a - (a + c) * n1 / n
    var = n1 * n2 * (a + c) * (n - a - c) / (n**2 * (n - 1))
    return _lm_bias(z / var, 1 / np.sqrt(var), 1 / np.sqrt(var), "Harbord", "OR")


def peters_test(ai: Any, n1i: Any, ci: Any, n2i: Any, *,
                add: float = 0.5) -> BinaryBiasResult:
    r"""Peters' test for binary outcomes (R meta ``metabias(method.bias="Peters")``).

    Parameters
    ----------
    ai, n1i, ci, n2i : array_like
        Events and group sizes in the treatment and control groups.
    add : float
        Continuity correction added to every cell of a study with a zero cell (for its log
        odds ratio; meta's and metafor's default 1/2).

    Returns
    -------
    BinaryBiasResult
        Weighted regression of the log odds ratio on :math:`1/n_i` (total sample size) with
        weights :math:`1/(1/(a_i + c_i) + 1/(b_i + d_i))` and multiplicative dispersion;
        ``bias`` is the slope on :math:`1/n_i`, tested with t on k - 2 df.

    Raises
    ------
    ValueError
        Fewer than 3 informative studies. Warns below 10 studies (Sterne et al. 2011).

    Notes
    -----
    Checked against R meta 7.0-0 ``metabias(metabin(..., sm="OR"), method.bias="Peters",
    k.min=3)`` (dat.bcg, dat.collins1985a) at 1e-10.
    """
    from analysis.effects import effect_sizes

    a, n1, c, n2 = _counts(ai, n1i, ci, n2i, "Peters' test")
    es = effect_sizes("OR", events_t=a, n_t=n1, events_c=c, n_c=n2, add=add)
    te = es["yi"].to_numpy(dtype=float)
    b, d = n1 - a, n2 - c
    weight = 1 / (1 / (a + c) + 1 / (b + d))
    return _lm_bias(te, 1 / np.sqrt(weight), 1 / (n1 + n2), "Peters", "OR")


def thompson_sharp_test(
    yi: Any, vi: Any = None, *, method: str = "REML",
    control: Control | Mapping[str, Any] | None = None,
) -> BinaryBiasResult:
    r"""Thompson and Sharp's test (R meta ``metabias(method.bias="Thompson")``).

    Regression on the standard error with an additive between-study variance.

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        Effect sizes and sampling variances (or a fitted result, whose data are used).
    method : str
        :math:`\tau^2` estimator of the test regression (meta's default ``method.tau``,
        ``"REML"``).
    control : Control or dict, optional
        Iteration settings.

    Returns
    -------
    BinaryBiasResult
        Meta-regression :math:`y_i = \beta_0 + \beta_1 \sqrt{v_i} + u_i + e_i`; ``bias`` is
        :math:`\hat\beta_1` with its (unadjusted) standard error, tested with t on k - 2
        df (metafor ``rma(..., test="t")``, as meta does); ``tau`` is
        :math:`\hat\tau`.

    Raises
    ------
    ValueError
        Fewer than 4 studies. Warns below 10 studies (Sterne et al. 2011).

    Notes
    -----
    Checked against R meta 7.0-0 ``metabias(m, method.bias="Thompson", k.min=3)`` on the
    five fixture data sets at 1e-6 (REML iteration).
    """
    check_choice("method", method, METHODS)
    y, v, d, _ = _data(yi, vi, None, "Thompson-Sharp's test", method, method)
    if y.size < 4:
        raise ValueError(f"Thompson-Sharp's test needs at least 4 studies; got k = {y.size}")
    warn_few_studies("Thompson-Sharp's test", y.size)
    fit = fit_test_regression(y, v, np.sqrt(v), "sei", "rma", method, "t", 0.95,
                              Control.from_any(control))
    return BinaryBiasResult("Thompson-Sharp", float(fit.coef["sei"]), float(fit.se["sei"]),
                            fit.zval, fit.df, fit.pvalue, float(fit.coef["intrcpt"]),
                            float(fit.se["intrcpt"]), float(np.sqrt(fit.tau2)), "additive",
                            int(y.size), d.measure)
