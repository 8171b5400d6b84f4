r"""Fit statistics and model comparison, as metafor ``fitstats()``, ``logLik()`` and ``anova()``.

The log-likelihood is the rma.uni core's (:func:`analysis.algebra.loglik`) with metafor's
constants: ML :math:`\ell = -\frac{k}{2}\log 2\pi - \frac12\sum\log(v_i + \hat\tau^2) -
\frac12 y^\top P y`; REML :math:`\ell_R = -\frac{k-p}{2}\log 2\pi + \frac12\log\det X^\top X -
\frac12\sum\log(v_i + \hat\tau^2) - \frac12\log\det X^\top W X - \frac12 y^\top P y`. With
:math:`m = p + 1` parameters (random effects; FE: :math:`m = p`) and :math:`n = k` (ML) or
:math:`k - p` (REML): deviance (ML: :math:`-2\{\ell - \sum\log\phi(0; v_i)\}`, the saturated
model's likelihood removed; REML :math:`-2\ell_R`), AIC :math:`= -2\ell + 2m`, BIC
:math:`= -2\ell + m\log n`, AICc :math:`= -2\ell + 2m\max(n, m+2)/(\max(n, m+2) - m - 1)`.
REML is used for REML fits, ML for every other method (metafor ``logLik.rma``).

:func:`anova` compares two nested models by a likelihood-ratio test, or tests coefficients or
linear combinations of one model by Wald tests (metafor ``anova.rma``).

References
----------
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw
36(3). Harville DA (1977). JASA 72:320-338 (REML likelihood).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from analysis._checks import check_btt
from analysis.algebra import DesignRows, loglik
from analysis.heterogeneity import wald
from analysis.regression import wald_test
from analysis.results import AnovaResult, MetaRegressionResult, MultilevelResult, PoolResult

__all__ = ["FitStatistics", "anova", "fit_statistics"]

_LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True, slots=True)
class FitStatistics:
    """metafor's ``fitstats()`` of one model: log-likelihood, deviance, AIC, BIC, AICc."""

    loglik: float
    deviance: float
    aic: float
    bic: float
    aicc: float
    parameters: int
    reml: bool


def fit_statistics(yi: np.ndarray, vi: np.ndarray, x: np.ndarray, tau2: float,
                   method: str, *, reml: bool | None = None) -> FitStatistics:
    r"""Return metafor's fit statistics of an rma.uni model (``fitstats(res)``).

    Parameters
    ----------
    yi, vi : numpy.ndarray
        Effect sizes and sampling variances of the k studies used.
    x : numpy.ndarray
        The k x p design matrix.
    tau2 : float
        The estimate of :math:`\tau^2` (0 for FE).
    method : str
        The estimator: REML uses the restricted likelihood, every other method the ML one;
        FE has p parameters, every other method p + 1.
    reml : bool, optional
        Override the likelihood (metafor's ``fit.stats`` columns ``ML``/``REML``): an FE
        model compared with a REML model by :func:`anova` is evaluated by its REML likelihood.

    Returns
    -------
    FitStatistics

    Notes
    -----
    Formulas in the module docstring. Checked against metafor 3.8-1 ``fitstats()`` of
    ``rma()`` with and without moderators under ML, REML and FE on BCG and
    ``dat.bangertdrowns2004`` (``tests/reference/model_reference.json``) at rtol 1e-6.
    """
    k, p = x.shape
    reml = method == "REML" if reml is None else reml
    d = DesignRows.build(yi, vi, x)
    t = np.array([0.0 if method == "FE" else tau2])
    ll = float(loglik(d, t, reml)[0])
    if reml:
        xtx = float(d.proj(d.unit_weights()).logdet[0])
        ll += -0.5 * (k - p) * _LOG_2PI + 0.5 * xtx
        dev = -2 * ll
        n = k - p
    else:
        ll += -0.5 * k * _LOG_2PI
        dev = -2 * ll - float(np.sum(np.log(2 * np.pi * vi))) if k > p else 0.0
        n = k
    m = p + (0 if method == "FE" else 1)
    big = max(n, m + 2)
    return FitStatistics(ll, dev, -2 * ll + 2 * m, -2 * ll + m * float(np.log(n)),
                         -2 * ll + 2 * m * big / (big - m - 1), m, reml)


Model = PoolResult | MetaRegressionResult | MultilevelResult


def _warn_reml_fixed_effects(method: str, x_full: np.ndarray, x_reduced: np.ndarray) -> None:
    """Warn, as metafor's anova(), about REML likelihoods of different fixed effects."""
    if method == "REML" and not (x_full.shape == x_reduced.shape
                                 and np.array_equal(x_full, x_reduced)):
        warnings.warn(
            "REML comparisons are not meaningful for models with different fixed effects; "
            "fit both models with method='ML' (as metafor's anova() warns)",
            UserWarning, stacklevel=4,
        )


def _lrt_table(stats_f: FitStatistics, stats_r: FitStatistics, lrt: float,
               qe: tuple[float, float], tau2: tuple[float, float],
               r2: float) -> tuple[pd.DataFrame, int]:
    """Return the likelihood-ratio table (rows full, reduced; metafor's anova()) and its df."""
    df_diff = stats_f.parameters - stats_r.parameters
    table = pd.DataFrame({
        "df": [stats_f.parameters, stats_r.parameters],
        "loglik": [stats_f.loglik, stats_r.loglik],
        "deviance": [stats_f.deviance, stats_r.deviance],
        "aic": [stats_f.aic, stats_r.aic], "bic": [stats_f.bic, stats_r.bic],
        "aicc": [stats_f.aicc, stats_r.aicc],
        "lrt": [np.nan, lrt], "pvalue": [np.nan, float(special.chdtrc(df_diff, lrt))],
        "qe": list(qe), "tau2": list(tau2), "r2": [np.nan, r2],
    }, index=pd.Index(["full", "reduced"], name="model"))
    return table, df_diff


def _lrt_multilevel(model_full: Any, model_reduced: Any) -> AnovaResult:
    """Likelihood-ratio test of two nested :func:`analysis.multilevel.rma_mv` fits."""
    for name, model in (("model_full", model_full), ("model_reduced", model_reduced)):
        if not isinstance(model, MultilevelResult):
            raise ValueError(f"argument {name!r} is a {type(model).__name__}; a multilevel "
                             "model is compared with another rma_mv() fit only")
    if not (np.array_equal(model_full.yi, model_reduced.yi)
            and np.array_equal(model_full.V, model_reduced.V)):
        raise ValueError("arguments 'model_full' and 'model_reduced' were fitted to different "
                         "data (their yi or V differ); a likelihood-ratio test needs both "
                         "models fitted to the same estimates")
    if model_full.method != model_reduced.method:
        raise ValueError(f"the models use method={model_full.method!r} and "
                         f"{model_reduced.method!r}; fit both with 'ML' (or both with 'REML' "
                         "when their fixed effects are the same)")
    stats_f, stats_r = model_full.fit_stats, model_reduced.fit_stats
    if stats_f.parameters == stats_r.parameters:
        raise ValueError(f"arguments 'model_full' and 'model_reduced' have the same number of "
                         f"parameters ({stats_f.parameters}); a likelihood-ratio test needs "
                         "nested models")
    if stats_f.parameters < stats_r.parameters:  # as metafor: the larger model is the full one
        model_full, model_reduced = model_reduced, model_full
        stats_f, stats_r = stats_r, stats_f
    x_f, x_r = model_full.X.to_numpy(float), model_reduced.X.to_numpy(float)
    _warn_reml_fixed_effects(model_full.method, x_f, x_r)
    lrt = max(0.0, 2 * (stats_f.loglik - stats_r.loglik))
    table, df_diff = _lrt_table(stats_f, stats_r, lrt, (model_full.qe, model_reduced.qe),
                                (np.nan, np.nan), np.nan)
    return AnovaResult(test="LRT", table=table, statistic=lrt, df=(df_diff,),
                       pvalue=float(table["pvalue"].iloc[1]), method=model_full.method,
                       ci_method=model_full.test, coefficients=(), k=model_full.k)


def _parts(model: Any, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Return yi, vi, X and QE of a fitted model (the studies used)."""
    if isinstance(model, MetaRegressionResult):
        if model.yi is None or model.vi is None or model.X is None:
            raise ValueError(f"argument {name!r} keeps no data; refit with meta_regression()")
        return model.yi, model.vi, model.X.to_numpy(dtype=float), model.qe
    if isinstance(model, PoolResult):
        if model.yi is None or model.vi is None:
            raise ValueError(f"argument {name!r} keeps no data; refit with pool()")
        keep = np.isfinite(model.yi) & np.isfinite(model.vi)
        return (model.yi[keep], model.vi[keep], np.ones((int(keep.sum()), 1)), model.q)
    raise ValueError(
        f"argument {name!r} is a {type(model).__name__}; anova() takes a PoolResult or a "
        "MetaRegressionResult"
    )


def _names(model: Any) -> list[str]:
    return list(model.coef.index) if isinstance(model, MetaRegressionResult) else ["intrcpt"]


def _r2(full: Any, reduced: Any, qe_f: float, qe_r: float, p_f: int, p_r: int,
        k: int) -> float:
    """Return metafor's pseudo-R² of the full versus the reduced model (percent)."""
    if full.method == "FE":
        s2_f, s2_r = qe_f / (k - p_f), qe_r / (k - p_r)
        return 100 * max(0.0, (s2_r - s2_f) / s2_r)
    if reduced.tau2 == 0:
        return 0.0
    return 100 * max(0.0, (reduced.tau2 - full.tau2) / reduced.tau2)


def _lrt(model_full: Any, model_reduced: Any) -> AnovaResult:
    y_f, v_f, x_f, qe_f = _parts(model_full, "model_full")
    y_r, v_r, x_r, qe_r = _parts(model_reduced, "model_reduced")
    if not (np.array_equal(y_f, y_r) and np.array_equal(v_f, v_r)):
        raise ValueError(
            "arguments 'model_full' and 'model_reduced' were fitted to different data (their "
            "yi or vi differ); a likelihood-ratio test needs both models fitted to the same "
            "studies"
        )
    allowed = ("FE", "ML", "REML")
    for name, model in (("model_full", model_full), ("model_reduced", model_reduced)):
        if model.method not in allowed:
            raise ValueError(
                f"argument {name!r} was fitted with method={model.method!r}; a "
                f"likelihood-ratio test needs one of {list(allowed)}"
            )
    # metafor compares the fit statistics of the full model's likelihood (REML or ML)
    reml = "REML" in (model_full.method, model_reduced.method)
    stats_f = fit_statistics(y_f, v_f, x_f, model_full.tau2, model_full.method, reml=reml)
    stats_r = fit_statistics(y_r, v_r, x_r, model_reduced.tau2, model_reduced.method,
                             reml=reml)
    if stats_f.parameters == stats_r.parameters:
        raise ValueError(
            f"arguments 'model_full' and 'model_reduced' have the same number of parameters "
            f"({stats_f.parameters}); a likelihood-ratio test needs nested models"
        )
    if stats_f.parameters < stats_r.parameters:  # as metafor: the larger model is the full one
        model_full, model_reduced = model_reduced, model_full
        stats_f, stats_r = stats_r, stats_f
        (x_f, qe_f), (x_r, qe_r) = (x_r, qe_r), (x_f, qe_f)
    mf, mr = model_full.method, model_reduced.method
    if mf == "FE" and mr != "FE":
        raise ValueError(
            f"argument 'model_full' uses method='FE' and 'model_reduced' method={mr!r}; a "
            "fixed-effect full model cannot be compared with a random-effects reduced model"
        )
    if {mf, mr} == {"ML", "REML"}:
        raise ValueError(
            f"the full model uses method={mf!r} and the reduced model method={mr!r}; fit both "
            "with 'ML' (or both with 'REML' when their fixed effects are the same)"
        )
    _warn_reml_fixed_effects(mf, x_f, x_r)
    k = y_f.size
    lrt = max(0.0, stats_r.deviance - stats_f.deviance)
    table, df_diff = _lrt_table(
        stats_f, stats_r, lrt, (qe_f, qe_r), (model_full.tau2, model_reduced.tau2),
        _r2(model_full, model_reduced, qe_f, qe_r, x_f.shape[1], x_r.shape[1], k))
    return AnovaResult(test="LRT", table=table, statistic=lrt, df=(df_diff,),
                       pvalue=float(table["pvalue"].iloc[1]), method=mf,
                       ci_method=model_full.ci_method, coefficients=(), k=k)


def _coefficients(model: Any) -> tuple[np.ndarray, np.ndarray, float, list[str]]:
    """Return beta, its covariance, the t df (NaN for z) and the coefficient names."""
    if isinstance(model, MultilevelResult):
        return (model.coef.to_numpy(dtype=float), model.vcov.to_numpy(dtype=float), model.df,
                list(model.coef.index))
    if isinstance(model, MetaRegressionResult):
        df = (model.k - model.coef.size if model.ci_method in ("hksj", "hksj_adhoc")
              else np.nan)
        return (model.coef.to_numpy(dtype=float), model.vcov.to_numpy(dtype=float), df,
                list(model.coef.index))
    if isinstance(model, PoolResult):
        return (np.array([model.estimate]), np.array([[model.se**2]]), model.df, ["intrcpt"])
    raise ValueError(
        f"argument 'model_full' is a {type(model).__name__}; anova() takes a PoolResult or "
        "a MetaRegressionResult"
    )


def _hypothesis(row: np.ndarray, names: list[str]) -> str:
    terms = []
    for coef, name in zip(row, names, strict=True):
        if coef == 0:
            continue
        c = "" if coef == 1 else "-" if coef == -1 else f"{coef:g}*"
        terms.append(f"{c}{name}")
    text = " + ".join(terms).replace("+ -", "- ") or "0"
    return f"{text} = 0"


def _wald_one(model: Any, btt: Any, L: Any) -> AnovaResult:
    beta, vb, df, names = _coefficients(model)
    p = beta.size
    ci_method = model.ci_method
    if L is None:
        if btt is None:
            has_int = names[0] == "intrcpt"
            idx = np.arange(1 if has_int and p > 1 else 0, p)
        else:
            idx = check_btt(btt, names)
        qm, qm_df, qm_p = wald_test(beta[idx], vb[np.ix_(idx, idx)], df)
        table = pd.DataFrame({"qm": [qm], "df1": [qm_df[0]],
                              "df2": [qm_df[1] if len(qm_df) > 1 else np.nan],
                              "pvalue": [qm_p]})
        return AnovaResult(test="Wald", table=table, statistic=qm, df=qm_df, pvalue=qm_p,
                           method=model.method, ci_method=ci_method,
                           coefficients=tuple(names[i] for i in idx), k=model.k)
    lmat = np.asarray(L, dtype=float)
    if lmat.ndim == 1:
        lmat = lmat[None, :]
    if lmat.ndim != 2:
        raise ValueError(f"argument 'L' has shape {np.shape(L)}; use one row per combination")
    if names[0] == "intrcpt" and lmat.shape[1] == p - 1:
        lmat = np.column_stack([np.ones(lmat.shape[0]), lmat])
    if lmat.shape[1] != p:
        raise ValueError(
            f"argument 'L' has {lmat.shape[1]} column(s); the model has {p} coefficients "
            f"{names} (or give {p - 1} columns without the intercept)"
        )
    est = lmat @ beta
    cov = lmat @ vb @ lmat.T
    se = np.sqrt(np.diag(cov))
    zval, pval, _ = wald(est, se, np.full(est.size, df), model.level)
    table = pd.DataFrame({"hypothesis": [_hypothesis(r, names) for r in lmat],
                          "estimate": est, "se": se, "zval": zval, "pvalue": pval})
    qm, qm_df, qm_p = np.nan, (lmat.shape[0],), np.nan
    if np.linalg.matrix_rank(lmat) == lmat.shape[0]:
        qm, qm_df, qm_p = wald_test(est, cov, df)
    return AnovaResult(test="Wald.L", table=table, statistic=qm, df=qm_df, pvalue=qm_p,
                       method=model.method, ci_method=ci_method, coefficients=tuple(names),
                       k=model.k)


def anova(model_full: Model, model_reduced: Model | None = None, *,
          btt: int | str | Sequence[int | str] | None = None,
          L: Any = None) -> AnovaResult:
    r"""Compare two nested models (LRT) or test coefficients of one (Wald), as metafor ``anova``.

    Parameters
    ----------
    model_full : PoolResult, MetaRegressionResult or MultilevelResult
        A fitted model (for two models the order does not matter: the one with more
        parameters is the full model, as in metafor). Two :func:`analysis.multilevel.rma_mv`
        fits (same ``yi`` and ``V``, same method) are compared by
        :math:`2(\ell_f - \ell_r)` on the difference in coefficients plus variance
        components (metafor ``anova.rma`` of ``rma.mv`` fits; ``dat.konstantopoulos2011`` and
        ``dat.berkey1998`` in ``tests/reference/rma_mv_reference.json``).
    model_reduced : PoolResult, MetaRegressionResult or MultilevelResult, optional
        The nested model: a likelihood-ratio test (metafor ``anova(res1, res2)``). Both
        must be fitted to the same studies (same ``yi``, ``vi``) with ML, REML or FE; a
        random-effects full model may be compared with an FE reduced model (the test of
        :math:`\tau^2 = 0`); ML with REML is refused.
    btt : int, str or sequence, optional
        One model: the coefficients to test jointly (0-based positions or names; metafor's
        ``btt=`` is 1-based). Default: every coefficient but the intercept (the model's QM).
    L : array_like, optional
        One model: linear combinations, one row each, with p columns (or p - 1 without the
        intercept column, which is then 1; metafor ``anova(res, X=)``).

    Returns
    -------
    AnovaResult
        ``test`` ("LRT", "Wald", "Wald.L"), ``table`` (LRT: rows full/reduced with df,
        loglik, deviance, aic, bic, aicc, lrt, pvalue, qe, tau2, r2 as metafor prints;
        Wald: qm, df1, df2, pvalue; Wald.L: hypothesis, estimate, se, zval, pvalue per
        combination), ``statistic``, ``df`` and ``pvalue`` of the (omnibus) test.

    Raises
    ------
    ValueError
        Different data, methods that cannot be compared, models with the same number of
        parameters, ``btt``/``L`` with a model pair, unknown coefficients, ``L`` of the wrong
        width.

    Warns
    -----
    UserWarning
        REML models with different fixed effects (metafor's warning; refit with ML).

    Notes
    -----
    LRT :math:`= \max(0, D_r - D_f)` on :math:`m_f - m_r` df, with the deviances of
    :func:`fit_statistics` (REML deviances for REML fits). The Wald statistic is
    :math:`Q_M = b^\top V^{-1} b` (chi-square on m df) or :math:`Q_M/m` (F on m and k - p df
    under Knapp-Hartung); each combination :math:`L\hat\beta` has
    :math:`SE = \sqrt{\mathrm{diag}(LVL^\top)}` with z (or t on k - p df) tests, and the
    omnibus test is computed when L has full row rank.

    Checked against metafor 3.8-1 ``anova()`` (LRT under ML, REML with equal fixed effects
    and FE; Wald ``btt=``; ``X=`` combinations; z and knha) on BCG and
    ``dat.bangertdrowns2004`` (``tests/reference/model_reference.json``) at rtol 1e-6.
    """
    if model_reduced is not None:
        if btt is not None or L is not None:
            raise ValueError(
                "arguments 'btt' and 'L' test one model; give them without 'model_reduced' "
                "(two models are compared by a likelihood-ratio test)"
            )
        if isinstance(model_full, MultilevelResult) or isinstance(model_reduced,
                                                                  MultilevelResult):
            return _lrt_multilevel(model_full, model_reduced)
        return _lrt(model_full, model_reduced)
    if btt is not None and L is not None:
        raise ValueError("arguments 'btt' and 'L' are both given; give one of them")
    return _wald_one(model_full, btt, L)
