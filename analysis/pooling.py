r"""Fixed- and random-effects pooling, Mantel-Haenszel and Peto, as metafor computes them.

The random-effects model is :math:`y_i = \mu + u_i + e_i`, :math:`u_i \sim N(0, \tau^2)`,
:math:`e_i \sim N(0, v_i)`. :func:`pool` estimates :math:`\tau^2` with one of nine estimators,
pools with weights :math:`w_i = 1/(v_i + \hat\tau^2)`, and reports heterogeneity (Q, I², H²),
Q-profile confidence intervals for :math:`\tau^2`, I² and H² (metafor ``confint``) and the
prediction interval (metafor ``predict``).

The estimators are the rma.uni core's (:mod:`analysis.heterogeneity`, written once): a 2-D
input runs its batched back-end (one row per analysis), a single analysis its scalar one, and
the property tests hold the two together; ML and REML return the global maximum of the
(restricted) likelihood.

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

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from analysis._checks import as_float_array, check_choice, check_level
from analysis._inputs import (
    check_data,
    check_limits,
    column,
    frame_measure,
    frame_ni,
    omit_missing,
    resolve_variances,
    study_labels,
    yi_vi,
)
from analysis.algebra import InterceptRows, ScalarIntercept, rsum
from analysis.effects import effect_sizes
from analysis.heterogeneity import METHODS, Control, fit_heterogeneity, fit_one, wald
from analysis.results import BatchPoolResult, MantelHaenszelResult, PoolResult

__all__ = ["METHODS", "Control", "mantel_haenszel", "peto", "pool"]

CI_METHODS = ("z", "hksj", "hksj_adhoc")
CONVENTIONS = ("metafor", "revman5")


# --------------------------------------------------------------------------------------------
# the engine: the rma.uni core (analysis.heterogeneity) with p = 1, plus the pooled summaries
# --------------------------------------------------------------------------------------------


#: Fields of the core's fit that a pooled result reports as they are.
_HETEROGENEITY_FIELDS = ("tau2", "se_tau2", "df", "q", "q_df", "q_pvalue", "i2", "h2",
                         "tau2_ci_low", "tau2_ci_high", "i2_ci_low", "i2_ci_high", "h2_ci_low",
                         "h2_ci_high")


def _pooled(fit: Mapping[str, Any], mu: Any, var: Any, k: Any, level: float,
            convention: str) -> dict[str, Any]:
    """Return the tests and the confidence and prediction intervals (rows or one fit)."""
    se = np.sqrt(var)
    zval, pval, crit = wald(mu, se, fit["df"], level)
    out = {name: fit[name] for name in _HETEROGENEITY_FIELDS}
    out.update(estimate=mu, se=se, zval=zval, pvalue=pval, ci_low=mu - crit * se,
               ci_high=mu + crit * se, k=k)
    if convention == "revman5":
        # Higgins, Thompson & Spiegelhalter (2009): t on k - 2 df (RevMan 5).
        with np.errstate(invalid="ignore"):
            crit = np.where(k >= 3, special.stdtrit(np.maximum(k - 2, 1), 1 - (1 - level) / 2),
                            np.nan)
    half = crit * np.sqrt(var + fit["tau2"])
    out.update(pi_low=mu - half, pi_high=mu + half)
    return out


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
    d = InterceptRows.build(y, v, m)
    fit = fit_heterogeneity(d, method, ci, level, tau2_ci=tau2_ci, control=con,
                            convention=convention, errors=errors)
    fields = {name: getattr(fit, name) for name in _HETEROGENEITY_FIELDS}
    out = _pooled(fields, fit.beta[:, 0], fit.vb[:, 0, 0], d.k.astype(int), level, convention)
    out["tau2_ci_truncated"] = fit.tau2_ci_truncated
    with np.errstate(invalid="ignore"):
        out["weights"] = np.where(m, 100 * fit.w / rsum(fit.w)[:, None], np.nan)
    out["converged"] = fit.converged
    if not np.all(fit.converged):
        bad = ~fit.converged
        for key, val in out.items():
            if key not in ("k", "q_df", "converged", "weights") and val.dtype.kind == "f":
                val[bad] = np.nan
    return out


def _single(y: np.ndarray, v: np.ndarray, method: str, ci: str, level: float, tau2_ci: bool,
            con: Control) -> dict[str, Any]:
    """One analysis through the scalar drivers: the fields of :func:`_engine`, as floats."""
    fit = fit_one(ScalarIntercept.build(y, v), method, ci, level, tau2_ci=tau2_ci, control=con)
    out = {key: float(val) for key, val in
           _pooled(fit, fit["beta"], fit["vb"], y.size, level, "metafor").items()}
    out["tau2_ci_truncated"] = bool(fit["tau2_ci_truncated"])
    out["weights"] = 100 * fit["w"] / fit["w"].sum()
    return out


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def _check_data(y: np.ndarray, v: np.ndarray) -> np.ndarray:
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
    check_limits(y, v, m)
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
    sei: Any = None,
    data: pd.DataFrame | None = None,
    study: Any = None,
    tau2_ci: bool = True,
    control: Control | Mapping[str, Any] | None = None,
    convention: str = "metafor",
    errors: str = "raise",
    measure: str | None = None,
    ni: Any = None,
) -> PoolResult | BatchPoolResult:
    r"""Pool ``yi`` with sampling variances ``vi`` in a fixed- or random-effects model.

    Parameters
    ----------
    yi : array_like, str or pandas.DataFrame
        Effect sizes (1-D: one analysis; 2-D: ``n_analyses x k``, NaN padding allowed), a
        column name of ``data``, or a DataFrame with columns ``yi`` and ``vi``.
    vi : array_like or str, optional
        Sampling variances, same shape as ``yi``, or a column name of ``data`` (omit when
        ``yi`` is a DataFrame, or give ``sei``).
    method : {"REML", "FE", "DL", "PM", "SJ", "HE", "HS", "ML", "EB"}
        Estimator of :math:`\tau^2` (metafor codes; ``"FE"`` is metafor's ``"EE"``/``"FE"``).
    ci : {"z", "hksj", "hksj_adhoc"}
        Wald-type z inference, or Knapp-Hartung(-Sidik-Jonkman) t on k - 1 df (metafor
        ``test="knha"``); ``"hksj_adhoc"`` floors the KH scale factor at 1 (``test="adhoc"``).
    level : float
        Confidence level (proportion).
    sei : array_like or str, optional
        Standard errors instead of ``vi`` (metafor ``sei=``; ``vi = sei**2``).
    data : pandas.DataFrame, optional
        A frame whose columns ``yi``, ``vi``, ``sei`` and ``study`` name (metafor ``data=``);
        its ``measure`` column, if it has one value, is recorded as ``measure``.
    study : array_like or str, optional
        One label per study (metafor ``slab``), kept on the result for plots and
        sensitivity analyses. Default: the ``study``/``label``/``slab`` column of the frame
        given as ``yi`` or ``data``, else ``"1"``..``"k"``. Ignored for 2-D input.
    tau2_ci : bool
        Compute Q-profile intervals for :math:`\tau^2`, I² and H².
    control : Control or dict, optional
        Iteration settings, see :class:`Control`. ``{"threshold": 1e-5, "maxiter": 100,
        "tol": 2**-13}`` reproduces metafor's defaults exactly.
    convention : {"metafor", "revman5"}
        ``"revman5"``: only FE/DL with z, I² = (Q - df)/Q and the prediction interval on
        t with k - 2 df (Higgins, Thompson & Spiegelhalter 2009), as RevMan 5.
    errors : {"raise", "nan"}
        When an estimator fails: raise :class:`ConvergenceError` (naming the rows of a 2-D
        input), or return NaN estimates for those analyses (flagged in ``converged`` for 2-D
        input); the same meaning as in :func:`analysis.regression.meta_regression`.
    measure : str, optional
        Recorded on the result (e.g. ``"OR"``, so that display code knows to exponentiate);
        taken from a ``measure`` column when ``yi`` is a DataFrame that has one.
    ni : array_like or str, optional
        Sample sizes of the studies (metafor ``rma(ni=)``), recorded on a single analysis
        for the PFT back-transformation (their harmonic mean); taken from an ``ni`` column
        of the ``yi`` frame or ``data`` (:func:`analysis.effects.effect_sizes` writes one
        for the one-group measures).

    Returns
    -------
    PoolResult or BatchPoolResult
        Fields ``estimate, se, zval, pvalue, ci_low, ci_high, tau2, se_tau2, tau2_ci_low,
        tau2_ci_high, i2, i2_ci_low, i2_ci_high, h2, h2_ci_low, h2_ci_high, q, q_df,
        q_pvalue, pi_low, pi_high, k, method, ci_method, level, weights``; a single
        analysis also keeps the data it was fitted to (``yi``, ``vi`` of every input row,
        ``study`` labels), so that ``plots.forest(result)`` draws it in one call.

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
    :math:`[0, T]`, T a bound from the data that holds both roots (``control tau2_max``
    cuts it, as metafor's ``tau2.max``; a cut limit is flagged ``tau2_ci_truncated``). The
    prediction interval is :math:`\hat\mu \pm c\sqrt{SE^2 + \hat\tau^2}` with the CI's
    critical value c.
    k = 1 gives :math:`\hat\tau^2 = 0`, Q = 0, I² = 0, H² = 1 and z inference, as metafor.

    Checked against metafor 3.8-1 ``rma()``, ``confint()`` and ``predict()`` on every fixture
    case (all methods x z/knha, textbook and generated data sets) at relative tolerance 1e-6,
    and against RevMan 5's published Fleiss (1993) output for ``convention="revman5"``.
    """
    level = check_level(level)
    _check_options(method, ci, convention, errors)
    con = Control.from_any(control)
    data = check_data(data)
    source = yi
    measure = frame_measure(measure, yi, data)
    y, v = yi_vi(column("yi", yi, data), resolve_variances(vi, sei, data), ndim=(1, 2))
    m = _check_data(y, v)
    if y.ndim == 2:
        return _pool_batch(y, v, m, method, ci, level, tau2_ci, con, convention, errors,
                           measure)
    labels = study_labels(source, study, y.size, data)
    sizes = frame_ni(column("ni", ni, data), y.size, source, data)
    keep = np.flatnonzero(m)
    if keep.size == 0:
        raise ValueError("no study has both 'yi' and 'vi' available (k = 0)")
    omit_missing(m, labels, values="yi or vi", analysis="pooling")
    weights = np.full(y.size, np.nan)
    if keep.size >= 2 and convention == "metafor" and con.algorithm != "fisher" and (
            errors == "raise"):
        single = _single(y[keep], v[keep], method, ci, level, tau2_ci, con)
        weights[keep] = single.pop("weights")
    else:
        out = _engine(
            y[None, keep], v[None, keep], np.ones((1, keep.size), dtype=bool),
            method, ci, level, tau2_ci, con, convention, errors,
        )
        weights[keep] = out["weights"][0]
        single = {key: val[0].item() for key, val in out.items()
                  if key not in ("weights", "converged")}
        single["tau2_ci_truncated"] = bool(single["tau2_ci_truncated"])
    single["k"] = int(single["k"])
    single["q_df"] = int(single["q_df"])
    return PoolResult(
        **single, method=method, ci_method=ci if single["k"] > 1 else "z", level=level,
        weights=weights, convention=convention, measure=measure, yi=y, vi=v, study=labels,
        ni=sizes,
    )


def _pool_batch(
    y: np.ndarray, v: np.ndarray, m: np.ndarray, method: str, ci: str, level: float,
    tau2_ci: bool, con: Control, convention: str, errors: str, measure: str | None = None,
) -> BatchPoolResult:
    k = m.sum(axis=1)
    if np.any(k == 0):
        raise ValueError(
            f"rows {np.flatnonzero(k == 0)[:10].tolist()} of 'yi' have no study with both yi "
            "and vi (k = 0)"
        )
    out = _engine(y, v, m, method, ci, level, tau2_ci, con, convention, errors)
    return BatchPoolResult(
        **out, method=method, ci_method=ci, level=level, convention=convention,
        measure=measure,
    )


# --------------------------------------------------------------------------------------------
# Mantel-Haenszel and Peto
# --------------------------------------------------------------------------------------------


def _tables(events_t: Any, n_t: Any, events_c: Any, n_c: Any, analysis: str,
            labels: tuple[str, ...] | None = None) -> tuple[np.ndarray, ...]:
    """Return the complete 2x2 tables (a, b, c, d) and the mask of complete input rows.

    Incomplete tables are dropped with a warning naming them (``labels``, else 0-based rows).
    """
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
    omit_missing(keep, labels, values="events_t, n_t, events_c or n_c",
                 analysis=f"the {analysis}")
    return a[keep], n1[keep] - a[keep], c[keep], n2[keep] - c[keep], keep


def _counts(data: pd.DataFrame | None, study: Any, **counts: Any) -> tuple[Any, ...]:
    """Return the four count arguments (columns of ``data`` when named) and the study labels."""
    data = check_data(data)
    values = [column(name, value, data) for name, value in counts.items()]
    k = int(np.asarray(values[0], dtype=object).size)
    return (*values, study_labels(None, study, k, data))


def _full(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Spread values of the complete tables back over every input row (NaN elsewhere)."""
    out = np.full(keep.size, np.nan)
    out[keep] = values
    return out


def _i2_from_q(q: float, df: int) -> float:
    r"""Q-based I² in percent, :math:`\max(0, 100 (Q - df)/Q)` (0 when Q = 0, as in R)."""
    return 0.0 if q == 0 else max(0.0, 100 * (q - df) / q)


def _iv_heterogeneity(
    measure: str, a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, beta: float
) -> tuple[float, int, float, float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Q around ``beta`` from escalc yi/vi (add 1/2 to zero-cell tables, double zeros dropped).

    Returns Q, df, its p, I², H², the estimable yi/vi, and yi/vi of every table (NaN for
    double zeros).
    """
    es = effect_sizes(measure, events_t=a, n_t=a + b, events_c=c, n_c=c + d, drop00=True)
    all_yi, all_vi = es["yi"].to_numpy(dtype=float), es["vi"].to_numpy(dtype=float)
    ok = np.isfinite(all_yi)
    yi, vi = all_yi[ok], all_vi[ok]
    k_yi = int(ok.sum())
    if k_yi > 1 and not np.isfinite(beta):
        return np.nan, k_yi - 1, np.nan, np.nan, np.nan, yi, vi, all_yi, all_vi
    if k_yi > 1:
        q = max(0.0, float(np.sum((yi - beta) ** 2 / vi)))
        df = k_yi - 1
        return (q, df, float(special.chdtrc(df, q)), _i2_from_q(q, df), q / df, yi, vi,
                all_yi, all_vi)
    return 0.0, max(k_yi - 1, 0), 1.0, 0.0, 1.0, yi, vi, all_yi, all_vi


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


def _mh_weights(measure: str, a: np.ndarray, b: np.ndarray, c: np.ndarray,
                d: np.ndarray) -> np.ndarray:
    r"""Mantel-Haenszel weights in percent (metafor ``weights.rma.mh``).

    OR: :math:`b_i c_i / N_i`; RR: :math:`c_i n_{1i} / N_i`; RD: :math:`n_{1i} n_{2i} / N_i`.
    """
    n1, n2 = a + b, c + d
    big_n = n1 + n2
    w = {"OR": b * c / big_n, "RR": c * n1 / big_n, "RD": n1 * n2 / big_n}[measure]
    total = w.sum()
    return 100 * w / total if total > 0 else np.full(w.size, np.nan)


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
    data: pd.DataFrame | None = None,
    study: Any = None,
) -> MantelHaenszelResult:
    r"""Mantel-Haenszel pooled OR, RR or RD (metafor ``rma.mh``).

    Parameters
    ----------
    events_t, n_t, events_c, n_c : array_like or str
        Events and totals of the treatment and control groups, one entry per study, or
        column names of ``data``.
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
    data : pandas.DataFrame, optional
        Frame whose columns the count arguments and ``study`` name (metafor ``data=``).
    study : array_like or str, optional
        Study labels (metafor ``slab``; default the frame's ``study``/``label`` column, else
        ``"1"``..``"k"``), kept on the result with escalc's per-study ``yi``, ``vi``.

    Returns
    -------
    MantelHaenszelResult
        ``estimate`` (log scale for OR/RR), ``se``, ``zval``, ``pvalue``, ``ci_low``,
        ``ci_high``, ``q``, ``q_pvalue``, ``i2``, ``h2``, ``k``; for OR also the CMH test
        (``mh_chisq``) and Tarone's heterogeneity test; ``weights``, each study's percent
        weight (metafor ``weights.rma.mh``: :math:`b_i c_i/N_i` for OR, :math:`c_i
        n_{1i}/N_i` for RR, :math:`n_{1i} n_{2i}/N_i` for RD; under ``convention="revman5"``
        of the corrected cells, 0 for a dropped double-zero table; under
        ``model="random"`` the inverse-variance random-effects weights; NaN for omitted
        rows).

    Notes
    -----
    OR: :math:`\hat\psi = \sum R_i / \sum S_i` with :math:`R_i = a_i d_i/N_i`,
    :math:`S_i = b_i c_i/N_i`; Robins-Breslow-Greenland variance
    :math:`\frac12[\sum P_iR_i/R^2 + \sum(P_iS_i + Q_iR_i)/(RS) + \sum Q_iS_i/S^2]`.
    RR: :math:`\sum a_i n_{2i}/N_i / \sum c_i n_{1i}/N_i`, Greenland-Robins variance.
    RD: Sato-Greenland-Robins variance. Q is :math:`\sum (y_i - \hat\theta_{MH})^2/v_i` with
    escalc's ``yi``/``vi`` (1/2 added to zero-cell tables, double-zero tables dropped) and
    :math:`I^2 = (Q - df)/Q`.

    Studies with a missing count are omitted with an
    :class:`~analysis.errors.AnalysisWarning` naming them (labels, else 0-based rows), as
    metafor warns.

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
    events_t, n_t, events_c, n_c, labels = _counts(
        data, study, events_t=events_t, n_t=n_t, events_c=events_c, n_c=n_c)
    a, b, c, d, kept = _tables(events_t, n_t, events_c, n_c, "Mantel-Haenszel analysis", labels)
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
    q, df, q_p, i2, h2, yi, vi, study_yi, study_vi = _iv_heterogeneity(measure, a, b, c, d, beta)
    tau2 = 0.0
    method = "MH"
    if convention == "revman5":
        dropped = (((a == 0) & (c == 0)) | ((b == 0) & (d == 0))) if measure in ("OR", "RR") \
            else np.zeros(a.size, dtype=bool)
        weights = np.zeros(a.size)
        weights[~dropped] = _mh_weights(measure, ma, mb, mc, md)
    else:
        weights = _mh_weights(measure, a, b, c, d)
    if model == "random":
        w = 1 / vi
        tau2 = max(0.0, (q - df) / (w.sum() - (w**2).sum() / w.sum())) if df > 0 else 0.0
        ws = 1 / (vi + tau2)
        beta, se = float(np.sum(ws * yi) / ws.sum()), float(np.sqrt(1 / ws.sum()))
        method = "MH-DL"
        weights = np.zeros(a.size)
        weights[np.isfinite(study_yi)] = 100 * ws / ws.sum()
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
        yi=_full(study_yi, kept), vi=_full(study_vi, kept), study=labels,
        weights=_full(weights, kept),
    )


def peto(
    events_t: Any, n_t: Any, events_c: Any, n_c: Any, level: float = 0.95, *,
    data: pd.DataFrame | None = None, study: Any = None,
) -> MantelHaenszelResult:
    r"""Peto's one-step pooled log odds ratio (metafor ``rma.peto``).

    Parameters
    ----------
    events_t, n_t, events_c, n_c : array_like or str
        Events and totals per study, or column names of ``data``.
    level : float
        Confidence level.
    data : pandas.DataFrame, optional
        Frame whose columns the count arguments and ``study`` name (metafor ``data=``).
    study : array_like or str, optional
        Study labels, as in :func:`mantel_haenszel`; kept on the result with the per-study
        Peto log odds ratios and variances as metafor's ``rma.peto`` stores them (escalc
        ``measure="PETO"``: 1/2 added to tables with a zero cell, double zeros NaN).

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
    correction. Studies with a missing count are omitted with an
    :class:`~analysis.errors.AnalysisWarning` naming them (labels, else 0-based rows), as
    metafor warns. Checked against metafor 3.8-1
    ``rma.peto`` (fixture cases, rtol 1e-6).
    """
    level = check_level(level)
    events_t, n_t, events_c, n_c, labels = _counts(
        data, study, events_t=events_t, n_t=n_t, events_c=events_c, n_c=n_c)
    a, b, c, d, kept = _tables(events_t, n_t, events_c, n_c, "Peto analysis", labels)
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
    per_study = effect_sizes("PETO", events_t=a, n_t=a + b, events_c=c, n_c=c + d, drop00=True)
    weights = 100 * vv / vv.sum()  # metafor weights.rma.peto: the hypergeometric variances
    return MantelHaenszelResult(
        estimate=beta, se=se, zval=zval, pvalue=float(2 * special.ndtr(-abs(zval))),
        ci_low=beta - z * se, ci_high=beta + z * se, q=q, q_df=df, q_pvalue=q_p, i2=i2,
        h2=h2, k=int(a.size), measure="OR", method="PETO", level=level,
        pi_low=beta - z * se, pi_high=beta + z * se,
        yi=_full(per_study["yi"].to_numpy(dtype=float), kept),
        vi=_full(per_study["vi"].to_numpy(dtype=float), kept), study=labels,
        weights=_full(weights, kept),
    )
