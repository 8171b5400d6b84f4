r"""Small-study effects: Egger's regression test and trim-and-fill, as metafor computes them.

References
----------
Egger M, Davey Smith G, Schneider M, Minder C (1997). Bias in meta-analysis detected by a
simple, graphical test. BMJ 315:629-634. Sterne JAC, Egger M (2005). Regression methods to
detect publication and other bias in meta-analysis. In Rothstein et al. (eds), Publication
Bias in Meta-Analysis. Duval S, Tweedie R (2000). Trim and fill. Biometrics 56:455-463;
JASA 95:89-98.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis._checks import check_choice, check_level, check_positive_int
from analysis._inputs import omit_missing
from analysis.errors import ConvergenceError
from analysis.pooling import METHODS, Control, pool
from analysis.regression import _regression
from analysis.results import EggerResult, PoolResult, TrimFillResult
from analysis.sensitivity import FittedData, fitted_data
from analysis.small_study import fit_test_regression

__all__ = ["egger_test", "trim_and_fill"]


def _complete(d: FittedData, analysis: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Return yi, vi and labels of the studies with both values (warning about the others)."""
    keep = omit_missing(np.isfinite(d.yi) & np.isfinite(d.vi), d.study, values="yi or vi",
                        analysis=analysis)
    y, v = d.yi[keep], d.vi[keep]
    if np.any(v <= 0):
        raise ValueError("argument 'vi' has non-positive values; sampling variances must be > 0")
    labels = tuple(str(s) for s in np.asarray(d.study, dtype=object)[keep]) if len(
        d.study) == keep.size else tuple(str(i + 1) for i in range(y.size))
    return y, v, labels


def egger_test(
    yi: Any,
    vi: Any = None,
    model: str = "lm",
    method: str | None = None,
    ci: str | None = None,
    level: float | None = None,
    *,
    control: Control | Mapping[str, Any] | None = None,
    study: Any = None,
) -> EggerResult:
    r"""Regression test for funnel-plot asymmetry with the standard error as predictor.

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        A fitted :class:`~analysis.results.PoolResult` (metafor ``regtest(res)``: its data,
        labels, measure, method, ``ci`` and level are used), or effect sizes and sampling
        variances (or a DataFrame with ``yi``, ``vi``).
    model : {"lm", "rma"}
        ``"lm"``: Egger's classical test, weighted least squares of :math:`y_i` on
        :math:`(1, \sqrt{v_i})` with weights :math:`1/v_i` and a multiplicative dispersion,
        t test on k - 2 df. ``"rma"``: the meta-regression :math:`y_i = \beta_0 + \beta_1
        \sqrt{v_i} + u_i + e_i` fitted with ``method`` (metafor's default ``regtest``).
    method : str
        :math:`\tau^2` estimator for ``model="rma"`` (``"FE"`` for a fixed-effect model);
        default the result's, else ``"REML"``.
    ci : {"z", "hksj"}
        Inference for ``model="rma"``; default the result's, else ``"z"``.
    level : float
        Confidence level of the limit estimate's interval (default the result's, else 0.95).
    control : Control or dict, optional
        Iteration settings for ``model="rma"``.
    study : array_like, optional
        Study labels kept on the result (default the result's or the frame's).

    Returns
    -------
    EggerResult
        ``zval`` (t for ``"lm"``), ``pvalue``, ``df``, and the limit estimate
        :math:`\hat\beta_0` (the effect as :math:`SE \to 0`) with ``ci_low``, ``ci_high``.

    Notes
    -----
    Checked against metafor 3.8-1 ``regtest(res, model=..., predictor="sei")`` on the fixture
    cases (all methods) at rtol 1e-6, and against the published ``dat.egger2001`` values
    (t = -3.1783, df = 13; z = -2.8062).
    """
    check_choice("model", model, ("lm", "rma"))
    d = fitted_data(yi, vi, method, ci, level, study)
    method, ci = d.method, d.ci
    check_choice("method", method, METHODS)
    check_choice("ci", ci, ("z", "hksj", "hksj_adhoc"))
    level = check_level(d.level)
    y, v, labels = _complete(d, "Egger's test")
    if y.size < 3:
        raise ValueError(f"Egger's test needs at least 3 studies; got k = {y.size}")
    _check_predictor(v, "Egger's test")
    data = {"k": int(y.size), "measure": d.measure, "yi": y, "vi": v, "study": labels}
    used = method if model == "rma" else "FE"
    fit = fit_test_regression(y, v, np.sqrt(v), "sei", model, used, ci, level,
                              Control.from_any(control))
    return EggerResult(fit.zval, fit.pvalue, fit.df, float(fit.coef["intrcpt"]), fit.ci_low,
                       fit.ci_high, model, used, ci_method=ci if model == "rma" else "z",
                       level=level, **data)  # type: ignore[arg-type]


def _check_predictor(v: np.ndarray, what: str) -> None:
    """Refuse equal sampling variances: the predictor sqrt(vi) is then the intercept again."""
    sei = np.sqrt(v)
    if np.ptp(sei) <= 1e-12 * float(np.max(sei)):
        raise ValueError(
            f"argument 'vi' = {float(v[0])!r} for every study: {what} regresses yi on "
            "sqrt(vi), which must differ between studies (with equal vi it is collinear "
            "with the intercept)" + ("; give 'side'" if "side" in what else "")
        )


def _side(y: np.ndarray, v: np.ndarray, method: str, con: Control) -> str:
    xdf = pd.DataFrame({"intrcpt": np.ones(y.size), "sei": np.sqrt(v)})
    slope = _regression(y, v, xdf, method, "z", 0.95, con).coef["sei"]
    return "right" if slope < 0 else "left"


def _k0(yc: np.ndarray, estimator: str) -> tuple[float, float]:
    k = yc.size
    ranks = stats.rankdata(np.abs(yc), method="ordinal")
    signed = np.sign(yc) * ranks
    if estimator == "R0":
        neg = -signed[signed < 0]
        k0 = (k - (neg.max() if neg.size else -np.inf)) - 1
        return k0, float(np.sqrt(2 * max(0.0, k0) + 2))
    sr = float(signed[signed > 0].sum())
    k0 = (4 * sr - k * (k + 1)) / (2 * k - 1)
    var_sr = (k * (k + 1) * (2 * k + 1) + 10 * k0**3 + 27 * k0**2 + 17 * k0
              - 18 * k * k0**2 - 18 * k * k0 + 6 * k**2 * k0) / 24
    return k0, 4 * np.sqrt(var_sr) / (2 * k - 1)


def trim_and_fill(
    yi: Any,
    vi: Any = None,
    method: str | None = None,
    estimator: str = "L0",
    side: str | None = None,
    ci: str | None = None,
    level: float | None = None,
    *,
    maxiter: int = 100,
    study: Any = None,
    control: Control | Mapping[str, Any] | None = None,
    refit_control: Control | Mapping[str, Any] | None = None,
) -> TrimFillResult:
    r"""Duval and Tweedie's trim-and-fill method (metafor ``trimfill``).

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        A fitted :class:`~analysis.results.PoolResult` (metafor ``trimfill(res)``: its data,
        labels, measure, method, ``ci`` and level are used), or effect sizes and sampling
        variances (or a DataFrame with ``yi``, ``vi``).
    method : str
        Model used for trimming and for the final fit (``"FE"`` or a :math:`\tau^2`
        estimator); default the result's, else ``"FE"``.
    estimator : {"L0", "R0"}
        Estimator of the number of missing studies.
    side : {"left", "right"}, optional
        Side of the funnel where studies are missing. By default chosen as metafor does: the
        sign of the slope of the meta-regression of :math:`y_i` on :math:`\sqrt{v_i}` (fitted
        with ``method``); a negative slope means studies are missing on the right.
    ci, level : str, float
        Inference of the final model (default the result's, else ``"z"``, 0.95).
    maxiter : int
        Maximum number of trimming iterations.
    control : Control or dict, optional
        Iteration settings of the model as given (returned unchanged when ``k0 = 0``).
    refit_control : Control or dict, optional
        Iteration settings of the side-selection, trimming and final fits (default: as
        ``control``). metafor's ``trimfill`` does not pass the original model's ``control``
        on, so ``{"algorithm": "fisher", "threshold": 1e-5, "maxiter": 100, "tol": 2**-13}``
        reproduces it exactly for ML/REML.
    study : array_like, optional
        Study labels (default the result's or the frame's); the filled studies are labelled
        ``"Filled 1"`` ... on ``result``.

    Returns
    -------
    TrimFillResult
        ``k0`` (number of filled studies), ``se_k0``, ``side``, ``result`` (the model refitted to
        observed plus filled studies) and ``filled`` (DataFrame ``yi``, ``vi``).

    Notes
    -----
    Studies are sorted (after mirroring for ``side="right"``); at each step the model is fitted
    without the :math:`k_0` most extreme studies, centred ranks are computed and
    :math:`L_0 = (4 S_r - k(k+1))/(2k - 1)` (:math:`S_r` the sum of positive signed ranks) or
    :math:`R_0 = k - r^* - 1` is rounded and truncated at 0, until :math:`k_0` no longer
    changes. Filled studies are :math:`2\hat\mu - y_i` with the same :math:`v_i`.
    Checked against metafor 3.8-1 ``trimfill(rma(...), estimator="L0")`` (fixture, FE and
    REML) at rtol 1e-6 and the documented BCG example (k0 = 4 on the right, -0.2910).
    """
    d = fitted_data(yi, vi, method, ci, level, study, default_method="FE")
    method, ci = d.method, d.ci
    check_choice("method", method, METHODS)
    check_choice("estimator", estimator, ("L0", "R0"))
    if side is not None:
        check_choice("side", side, ("left", "right"))
    maxiter = check_positive_int("maxiter", maxiter)
    level = check_level(d.level)
    con0 = Control.from_any(control)
    con = con0 if refit_control is None else Control.from_any(refit_control)
    y0, v0, labels = _complete(d, "trim-and-fill")
    if y0.size < 2:
        raise ValueError("trim-and-fill needs at least 2 studies")
    if side is None:
        _check_predictor(v0, "trim-and-fill (its side, from Egger's regression)")
    side = side or _side(y0, v0, method, con)
    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * y0, kind="stable")
    y, v = sign * y0[order], v0[order]
    k = y.size
    k0, k0_prev, it, beta, se_k0 = 0, -1, 0, np.nan, np.nan
    while k0 != k0_prev:
        k0_prev = k0
        it += 1
        if it > maxiter:
            raise ConvergenceError("trim-and-fill did not converge; increase 'maxiter'")
        trimmed = pool(y[: k - k0], v[: k - k0], method=method, tau2_ci=False, control=con)
        assert isinstance(trimmed, PoolResult)  # one analysis (1-D input)
        beta = trimmed.estimate
        raw, se_k0 = _k0(y - beta, estimator)
        k0 = max(0, int(np.round(raw)))
        se_k0 = max(0.0, float(se_k0))
    fill_y = sign * (2 * beta - y[k - k0:])
    fill_v = v[k - k0:]
    common: dict[str, Any] = {"method": method, "ci": ci, "level": level,
                              "measure": d.measure, "convention": d.convention}
    original = pool(y0, v0, study=list(labels), control=con0, **common)
    assert isinstance(original, PoolResult)  # one analysis (1-D input)
    if k0 == 0:  # metafor returns the model as given
        result = original
    else:
        filled_labels = [f"Filled {i + 1}" for i in range(k0)]
        fitted = pool(np.r_[y0, fill_y], np.r_[v0, fill_v], study=list(labels) + filled_labels,
                      control=con, **common)
        assert isinstance(fitted, PoolResult)  # one analysis (1-D input)
        result = fitted
    return TrimFillResult(k0, se_k0, side, estimator, result,
                          pd.DataFrame({"yi": fill_y, "vi": fill_v}), original)
