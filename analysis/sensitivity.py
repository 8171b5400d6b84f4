"""Leave-one-out, cumulative meta-analysis and influence diagnostics.

metafor's ``leave1out``, ``cumul``, ``baujat`` and ``influence``.

The intercept-only refits are computed with one batched call of :func:`analysis.pooling.pool`
(one row per subset), so they cost about as much as a handful of single fits.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis._checks import as_float_array
from analysis._inputs import omit_missing, study_labels, yi_vi
from analysis.errors import AnalysisWarning, ConvergenceError
from analysis.pooling import Control, pool
from analysis.regression import _check_common, design_matrix, meta_regression
from analysis.results import (
    BatchPoolResult,
    CumulativeResult,
    InfluenceResult,
    LeaveOneOutResult,
    MantelHaenszelResult,
    PoolResult,
)

__all__ = ["baujat", "cumulative", "fitted_data", "influence", "leave_one_out"]

COLUMNS = ["study", "k", "estimate", "se", "zval", "pvalue", "ci_low", "ci_high", "q",
           "q_pvalue", "tau2", "i2", "h2"]

#: Per-fit statistics copied from the batched fit into the sequential results.
_STATS = ("k", "estimate", "se", "zval", "pvalue", "ci_low", "ci_high", "q", "q_pvalue",
          "tau2", "i2", "h2", "df")


@dataclass(frozen=True, slots=True)
class FittedData:
    """The data and settings a refit uses: from a fitted result or from the arguments."""

    yi: np.ndarray
    vi: np.ndarray
    study: np.ndarray
    method: str
    ci: str
    level: float
    measure: str | None
    convention: str
    result: PoolResult | None


def fitted_data(yi: Any, vi: Any, method: str | None, ci: str | None, level: float | None,
                study: Any, *, default_method: str = "REML") -> FittedData:
    """Resolve ``yi`` (a fitted :class:`PoolResult`, a yi/vi frame or values) for a refit.

    metafor's ``leave1out(res)``, ``cumul(res)``, ``influence(res)``, ``regtest(res)``,
    ``trimfill(res)``: with a result, its ``yi``, ``vi``, ``study``, ``method``, ``ci_method``,
    ``level``, ``measure`` and ``convention`` are used (``method``, ``ci``, ``level``,
    ``study`` override them when given). Otherwise the values (or frame) with ``method``
    (default ``default_method``), ``ci`` (default ``"z"``) and ``level`` (default 0.95).

    Raises
    ------
    ValueError
        ``vi`` given with a result; a result without its data; a Mantel-Haenszel/Peto or
        batched result (refit those with :func:`analysis.pooling.pool` first).
    """
    if isinstance(yi, (MantelHaenszelResult, BatchPoolResult)):
        raise ValueError(
            f"argument 'yi' is a {type(yi).__name__}; refits need an inverse-variance model: "
            "pass a PoolResult of pool() (one analysis), or yi and vi")
    if isinstance(yi, PoolResult):
        if vi is not None:
            raise ValueError("argument 'vi' must be None when 'yi' is a fitted PoolResult "
                             "(its yi and vi are used)")
        if yi.yi is None or yi.vi is None:
            raise ValueError("argument 'yi' is a PoolResult without its data (yi, vi); fit it "
                             "with pool(), which keeps them")
        y = np.asarray(yi.yi, dtype=float)
        v = np.asarray(yi.vi, dtype=float)
        labels = _study_labels(None, study if study is not None else yi.study, y.size)
        return FittedData(y, v, labels, method or yi.method, ci or yi.ci_method,
                          yi.level if level is None else level, yi.measure, yi.convention, yi)
    y, v = yi_vi(yi, vi)
    labels = _study_labels(yi, study, y.size) if y.ndim == 1 else np.array([], dtype=object)
    return FittedData(y, v, labels, method or default_method, ci or "z",
                      0.95 if level is None else level, _measure(yi), "metafor", None)


def _full_fit(d: FittedData, control: Control | Mapping[str, Any] | None) -> PoolResult | None:
    """Return the model of all studies (the given result, else one fit; None if it fails)."""
    if d.result is not None:
        return d.result
    try:
        with warnings.catch_warnings():  # omitted studies are NaN rows of the table already
            warnings.simplefilter("ignore")
            full = pool(d.yi, d.vi, method=d.method, ci=d.ci, level=d.level,
                        study=list(d.study), measure=d.measure, control=control,
                        convention=d.convention)
    except (ConvergenceError, ValueError):
        return None
    assert isinstance(full, PoolResult)
    return full


def _clusters(cluster: Any, yi: Any, data: Any, k: int) -> tuple[np.ndarray, list[str]] | None:
    """Resolve ``cluster`` to one id per row (strings) and the ids in order of first row.

    ``cluster`` is None (rows are studies), one id per row, or the name of a column of
    ``data`` (if given) or of the ``yi`` frame.
    """
    if cluster is None:
        return None
    if isinstance(cluster, str):
        frame = data if data is not None else yi if isinstance(yi, pd.DataFrame) else None
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"argument 'cluster' = {cluster!r} names a column, but there is no "
                             "frame to take it from; pass data=<DataFrame> or one id per row")
        if cluster not in frame.columns:
            raise ValueError(f"argument 'cluster' = {cluster!r} is not a column of the frame; "
                             f"columns are {', '.join(map(str, frame.columns))}")
        values = frame[cluster].to_numpy(dtype=object)
    else:
        values = np.asarray(cluster, dtype=object)
        if values.ndim != 1:
            raise ValueError(f"argument 'cluster' must be 1-D (one id per row); got shape "
                             f"{values.shape}")
    if values.size != k:
        raise ValueError(f"argument 'cluster' has {values.size} ids but there are {k} rows")
    if pd.isna(pd.Series(values, dtype=object)).any():
        raise ValueError("argument 'cluster' has missing ids; every row needs a study id")
    ids = np.array([str(c) for c in values], dtype=object)
    return ids, list(dict.fromkeys(ids.tolist()))


def _stats(res: Any) -> dict[str, np.ndarray]:
    return {name: np.asarray(getattr(res, name)) for name in _STATS}


def leave_one_out(
    yi: Any,
    vi: Any = None,
    method: str | None = None,
    ci: str | None = None,
    level: float | None = None,
    *,
    control: Control | Mapping[str, Any] | None = None,
    study: Any = None,
    cluster: Any = None,
    data: pd.DataFrame | None = None,
) -> LeaveOneOutResult:
    """Refit the model omitting each study in turn (metafor ``leave1out``).

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        A fitted :class:`~analysis.results.PoolResult` (``leave_one_out(pool(...))``, as
        metafor's ``leave1out(res)``: its ``yi``, ``vi``, ``study``, ``method``, ``ci``,
        ``level`` and ``measure`` are used), or effect sizes and sampling variances (or a
        DataFrame with ``yi``, ``vi``, and optionally a ``study`` or ``label`` column used as
        labels, as from :func:`analysis.contrasts`).
    method, ci, level, control
        As in :func:`analysis.pooling.pool`; default the result's, else ``"REML"``, ``"z"``,
        0.95.
    study : array_like, optional
        One label per study (default: the result's or the frame's ``study``/``label``
        column, else ``"1"``..``"k"`` as metafor's ``slab``).
    cluster : array_like or str, optional
        Study (cluster) id of each row, or the name of a column of ``data`` (or of the ``yi``
        frame) holding them, e.g. ``"study_id"`` of :func:`analysis.contrasts`. Each refit
        then omits a whole study with all its comparisons (a multi-arm trial's arms and
        their shared control), as metafor's ``leave1out(res, cluster=)`` (metafor >= 4.0)
        and RevMan. Default None: each row is a study. With a fitted result, give the ids
        explicitly or as a column name with ``data``.
    data : pandas.DataFrame, optional
        Frame (one row per comparison, in the fit's order) in which ``cluster`` is looked up.

    Returns
    -------
    LeaveOneOutResult
        Entry i is the fit without study i (``study`` its label); ``full`` the model of all
        studies. ``to_frame()`` gives one row per omitted study: ``study, k, estimate, se,
        zval, pvalue, ci_low, ci_high, q, q_pvalue, tau2, i2, h2`` (``tval`` and ``df`` under
        Knapp-Hartung). Rows whose fit fails are NaN, as metafor leaves them NA. Studies
        with missing ``yi``/``vi`` get NaN rows. With ``cluster``, one row per cluster in
        order of its first row: ``study`` is the cluster id, ``k`` the number of
        comparisons in the refit.

    Notes
    -----
    Checked against metafor 3.8-1 ``leave1out(rma(...))`` on the fixture cases (every
    method x z/knha) at rtol 1e-6 and the published BCG study-1 values (R-2). The
    ``cluster`` refits against ``rma()`` refitted in R on each subset (metafor 3.8 has no
    ``cluster`` argument), REML/DL x z/knha, rtol 1e-6
    (tests/reference/cluster_reference.json).
    """
    d = fitted_data(yi, vi, method, ci, level, study)
    y, v = d.yi, d.vi
    ok = omit_missing(np.isfinite(y) & np.isfinite(v), d.study, values="yi or vi",
                      analysis="the leave-one-out analysis")
    ids, names, member = _membership(d, cluster, yi, data)
    has_data = (member & ok).any(axis=1)
    if has_data.sum() < 2:
        what = "studies (clusters)" if cluster is not None else "studies"
        raise ValueError(f"leave-one-out needs at least 2 {what} with data")
    keep = ~member & ok
    yy = np.where(keep, y, np.nan)
    vv = np.where(keep, v, np.nan)
    res = pool(yy, vv, method=d.method, ci=d.ci, level=d.level, tau2_ci=False,
               control=control, errors="nan", convention=d.convention)
    values = _stats(res)
    if not has_data.all():
        for name, array in values.items():
            array = array.astype(float)
            array[~has_data] = np.nan
            values[name] = array
    return LeaveOneOutResult(
        study=tuple(names), **values, method=d.method, ci_method=d.ci,
        level=d.level, measure=d.measure, full=_full_fit(d, control), yi=y, vi=v,
        labels=tuple(str(s) for s in d.study), cluster=ids)


def _membership(d: FittedData, cluster: Any, yi: Any, data: Any) -> tuple[
        tuple[str, ...] | None, list[str], np.ndarray]:
    """Return the cluster ids per row, the unit labels and the (units x rows) membership.

    Without clusters: None, the row labels and the identity; with clusters: the id of each
    row, the ids in order of their first row and which rows each cluster holds.
    """
    k = d.yi.size
    resolved = _clusters(cluster, yi, data, k)
    if resolved is None:
        return None, [str(s) for s in d.study], np.eye(k, dtype=bool)
    ids, uniq = resolved
    return tuple(ids), uniq, ids[None, :] == np.array(uniq, dtype=object)[:, None]


def cumulative(
    yi: Any,
    vi: Any = None,
    order: Any = None,
    method: str | None = None,
    ci: str | None = None,
    level: float | None = None,
    *,
    control: Control | Mapping[str, Any] | None = None,
    study: Any = None,
    cluster: Any = None,
    data: pd.DataFrame | None = None,
) -> CumulativeResult:
    """Cumulative meta-analysis: add studies one at a time in the order of ``order``.

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        A fitted :class:`~analysis.results.PoolResult` (metafor ``cumul(res, order=)``), or
        effect sizes and sampling variances (or a DataFrame with ``yi``, ``vi``, and
        optionally a ``study`` or ``label`` column used as labels).
    order : array_like, optional
        Sort key per study (e.g. publication year); ties keep the input order (R's stable
        ``order()``). Default: input order.
    method, ci, level, control
        As in :func:`leave_one_out`.
    study : array_like, optional
        One label per study, in input order (as :func:`leave_one_out`).
    cluster, data
        As in :func:`leave_one_out`: each step adds a whole study (cluster) with all its
        comparisons; studies enter in the order of their first row under ``order``.

    Returns
    -------
    CumulativeResult
        Entry j is the model fitted to the first j + 1 studies in that order; ``study`` the
        label of the study added at that step, ``order`` its input position; ``full`` the
        model of all studies. ``to_frame()``: columns as :func:`leave_one_out`. With
        ``cluster``, one entry per cluster: ``study`` its id, ``order`` its position among
        the clusters in input order, ``k`` the comparisons in the fit.

    Notes
    -----
    Checked against metafor's published BCG cumulative REML estimates by year (R-11); the
    ``cluster`` steps against ``rma()`` refitted in R on each subset, REML/DL x z/knha, rtol
    1e-6 (tests/reference/cluster_reference.json).
    """
    d = fitted_data(yi, vi, method, ci, level, study)
    y, v = d.yi, d.vi
    k = y.size
    omit_missing(np.isfinite(y) & np.isfinite(v), d.study, values="yi or vi",
                 analysis="the cumulative meta-analysis")
    if order is None:
        idx = np.arange(k)
    else:
        key = as_float_array("order", order) if not isinstance(order, pd.Series) else order
        if len(key) != k:
            raise ValueError(f"argument 'order' has {len(key)} values but there are {k} studies")
        idx = np.asarray(pd.Series(np.asarray(key)).argsort(kind="stable"))
    ids, names, member = _membership(d, cluster, yi, data)
    unit = np.argmax(member, axis=0)  # the unit (row or cluster) of each row
    # units enter in the order of their first row in the sorted order
    steps = np.array(list(dict.fromkeys(unit[idx].tolist())), dtype=int)
    rank = np.empty(len(names), dtype=int)
    rank[steps] = np.arange(len(names))
    ys, vs, rs = y[idx], v[idx], rank[unit[idx]]
    ok = np.isfinite(ys) & np.isfinite(vs)
    include = (rs[None, :] <= np.arange(len(names))[:, None]) & ok
    yy = np.where(include, ys, np.nan)
    vv = np.where(include, vs, np.nan)
    first = int(np.argmax(include.any(axis=1)))
    res = pool(yy[first:], vv[first:], method=d.method, ci=d.ci, level=d.level,
               tau2_ci=False, control=control, errors="nan", convention=d.convention)
    return CumulativeResult(
        study=tuple(names[i] for i in steps[first:]), **_stats(res), method=d.method,
        ci_method=d.ci, level=d.level, measure=d.measure, full=_full_fit(d, control), yi=y,
        vi=v, labels=tuple(str(s) for s in d.study), order=steps[first:], cluster=ids)


def baujat(
    yi: Any,
    vi: Any = None,
    method: str | None = None,
    *,
    control: Control | Mapping[str, Any] | None = None,
    study: Any = None,
) -> pd.DataFrame:
    r"""Coordinates of the Baujat plot: each study's contribution to heterogeneity and influence.

    .. math::

       x_i = \frac{(y_i - \hat\mu)^2}{v_i + \hat\tau^2}, \qquad
       y_i = \frac{(\hat\mu_{(-i)} - \hat\mu)^2}{\widehat{\mathrm{Var}}(\hat\mu_{(-i)})}

    with :math:`\hat\mu, \hat\tau^2` from the model fitted to all studies and
    :math:`\hat\mu_{(-i)}` from the same model without study i (Baujat et al. 2002, Stat
    Med 21:2641-52; as metafor's ``baujat()``).

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        A fitted :class:`~analysis.results.PoolResult` (metafor ``baujat(res)``; its data,
        labels and method are used, and its test for the deletion variances), or effect
        sizes and sampling variances (or a DataFrame with ``yi``, ``vi`` and optionally a
        ``study``/``label`` column).
    method, control
        As in :func:`analysis.pooling.pool` (default the result's, else ``"REML"``).
    study : array_like, optional
        Study labels (default: the result's or the frame's, else ``"1"``..``"k"``).

    Returns
    -------
    pandas.DataFrame
        Columns ``study`` (labels, for :func:`analysis.plots.baujat`), ``x`` and ``y``, one
        row per study.

    Notes
    -----
    Checked against metafor 3.8-1 ``baujat(rma(yi, vi, data = dat.bcg log RR))`` for FE, DL
    and REML.
    """
    d = fitted_data(yi, vi, method, None, None, study)
    y, v = d.yi, d.vi
    omit_missing(np.isfinite(y) & np.isfinite(v), d.study, values="yi or vi",
                 analysis="the Baujat coordinates")
    with warnings.catch_warnings():  # named just above, once
        warnings.simplefilter("ignore", AnalysisWarning)
        if d.result is not None and d.method == d.result.method:
            full = d.result
        else:
            fit = pool(y, v, method=d.method, tau2_ci=False, control=control)
            assert isinstance(fit, PoolResult)
            full = fit
        omitted = leave_one_out(y, v, method=d.method, ci=d.ci, level=d.level,
                                control=control)
    x = (y - full.estimate) ** 2 / (v + full.tau2)
    influence = (omitted.estimate - full.estimate) ** 2 / (omitted.se ** 2)
    return pd.DataFrame({"study": np.array(d.study, dtype=object), "x": x, "y": influence})


# --------------------------------------------------------------------------------------------
# influence diagnostics (metafor influence.rma.uni)
# --------------------------------------------------------------------------------------------


def _study_labels(yi: Any, study: Any, k: int) -> np.ndarray:
    """One label per study as an object array (:func:`analysis._inputs.study_labels`)."""
    return np.array(study_labels(yi, study, k), dtype=object)


def _wls(y: np.ndarray, v: np.ndarray, x: np.ndarray, tau2: float) -> tuple[
        np.ndarray, np.ndarray, float]:
    """Weighted least squares at ``tau2``: beta, (X'WX)^-1 and the weighted residual SS."""
    w = 1.0 / (v + tau2)
    xtwx_inv = np.linalg.inv(x.T @ (w[:, None] * x))
    beta = xtwx_inv @ (x.T @ (w * y))
    resid = y - x @ beta
    return beta, xtwx_inv, float(np.sum(w * resid**2))


def _s2w(rss: float, df: int, ci: str) -> float:
    """Return the Knapp-Hartung scale factor.

    1 for z tests and for fits with no residual df (metafor falls back to z for k = 1).
    """
    if ci == "z" or df <= 0:
        return 1.0
    s2w = rss / df
    return max(1.0, s2w) if ci == "hksj_adhoc" else s2w


def _deletion_fits(y: np.ndarray, v: np.ndarray, x: np.ndarray, names: list[str], method: str,
                   ci: str, level: float, control: Control | Mapping[str, Any] | None
                   ) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Full-model tau2 and QE, and tau2, QE of each deletion refit (NaN where it fails)."""
    k, p = x.shape
    if p == 1:  # intercept only: the full fit and all k deletions in one batched pool()
        yy = np.vstack([y, np.tile(y, (k, 1))])
        vv = np.vstack([v, np.tile(v, (k, 1))])
        yy[1 + np.arange(k), np.arange(k)] = np.nan
        vv[1 + np.arange(k), np.arange(k)] = np.nan
        res = pool(yy, vv, method=method, ci=ci, level=level, tau2_ci=False, control=control,
                   errors="nan")
        tau2 = np.asarray(res.tau2, dtype=float)
        q = np.asarray(res.q, dtype=float)
        if not np.isfinite(tau2[0]):
            raise ValueError(f"the {method} fit of all {k} studies failed; no influence "
                             "diagnostics")
        return float(tau2[0]), float(q[0]), tau2[1:], q[1:]
    mods = pd.DataFrame(x[:, 1:], columns=names[1:])
    full = meta_regression(y, v, mods, method=method, ci=ci, level=level, tau2_ci=False,
                           control=control)
    tau2_del = np.full(k, np.nan)
    qe_del = np.full(k, np.nan)
    for i in range(k):
        keep = np.arange(k) != i
        try:
            fit = meta_regression(y[keep], v[keep], mods[keep].reset_index(drop=True),
                                  method=method, ci=ci, level=level, tau2_ci=False,
                                  control=control, errors="nan")
        except ValueError:  # e.g. a moderator constant without study i (metafor: coef.na)
            continue
        if fit.converged:
            tau2_del[i], qe_del[i] = fit.tau2, fit.qe
    return full.tau2, full.qe, tau2_del, qe_del


def influence(
    yi: Any,
    vi: Any = None,
    moderators: pd.DataFrame | None = None,
    method: str | None = None,
    ci: str | None = None,
    level: float | None = None,
    *,
    control: Control | Mapping[str, Any] | None = None,
    study: Any = None,
) -> InfluenceResult:
    r"""Case-deletion influence diagnostics of a pooled model or meta-regression.

    metafor's ``influence.rma.uni`` (Viechtbauer & Cheung 2010, Res Synth Methods 1:112-25):
    the model is refitted without each study i in turn (same method, same ``ci``), giving
    :math:`\hat\beta_{(-i)}`, :math:`\hat\tau^2_{(-i)}`, :math:`Q_{E(-i)}`,
    :math:`\mathrm{Var}(\hat\beta_{(-i)})` and the Knapp-Hartung factor :math:`s^2_{(-i)}`
    (1 for ``ci="z"``). With :math:`x_i` the study's row of the model matrix, :math:`h_i` its
    hat value in the full model and :math:`\hat\beta, V` the full model's estimates:

    .. math::

       \mathrm{rstudent}_i = \frac{y_i - x_i\hat\beta_{(-i)}}
           {\sqrt{s^2_{(-i)}(v_i + \hat\tau^2_{(-i)}) + x_i \mathrm{Var}(\hat\beta_{(-i)})
           x_i^\top}}, \qquad
       \mathrm{DFFITS}_i = \frac{x_i\hat\beta - x_i\hat\beta_{(-i)}}
           {\sqrt{s^2_{(-i)} h_i (v_i + \hat\tau^2_{(-i)})}},

       D_i = (\hat\beta - \hat\beta_{(-i)})^\top V^{-1} (\hat\beta - \hat\beta_{(-i)}),
       \qquad \mathrm{COVRATIO}_i = \det \mathrm{Var}(\hat\beta_{(-i)}) / \det V,

       \mathrm{DFBETAS}_{ij} = \frac{\hat\beta_j - \hat\beta_{(-i)j}}
           {\sqrt{s^2_{(-i)} [(X^\top W_{(-i)} X)^{-1}]_{jj}}}, \quad
           W_{(-i)} = \mathrm{diag}\{1/(v + \hat\tau^2_{(-i)})\} \text{ over all k studies},

    hat :math:`h = \mathrm{diag}\{X (X^\top W X)^{-1} X^\top W\}` and weight
    :math:`100 w_i/\sum w` with the full model's :math:`W = \mathrm{diag}\{1/(v +
    \hat\tau^2)\}`. Influential (metafor's rule): :math:`|\mathrm{DFFITS}_i| > 3\sqrt{p/(k -
    p)}`, :math:`P(\chi^2_p \le D_i) > 0.5`, :math:`h_i > 3p/k` or any
    :math:`|\mathrm{DFBETAS}_{ij}| > 1`.

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        A fitted :class:`~analysis.results.PoolResult` (metafor ``influence(res)``: its data,
        labels, method, ``ci`` and level are used), or effect sizes and sampling variances
        (or a DataFrame with ``yi``, ``vi``, and optionally a ``study`` or ``label`` column
        used as labels).
    moderators : pandas.DataFrame, optional
        Moderators of a meta-regression (coded as :func:`analysis.regression.meta_regression`
        codes them); default: the intercept-only model of :func:`analysis.pooling.pool`.
    method, ci, level, control
        As in :func:`analysis.pooling.pool` (``ci="hksj"`` is metafor's ``test="knha"``);
        default the result's, else ``"REML"``, ``"z"``, 0.95.
    study : array_like, optional
        Study labels (default: the frame's ``study``/``label`` column, else ``"1"``..``"k"``).

    Returns
    -------
    InfluenceResult
        ``to_frame()`` gives one row per study: ``study, rstudent, dffits, cook_d, cov_r,
        tau2_del, qe_del, hat, weight, dfbetas_<coef>..., influential``. Studies with a
        missing value are left out of the fits and get NaN rows (metafor's
        ``na.action="na.exclude"``); so do deletions whose refit fails.

    Notes
    -----
    The deletion fits are :func:`analysis.pooling.pool` (intercept only: one batched call on
    a k x k padded array, plus the full model) or :func:`analysis.regression.meta_regression`
    (one call per deletion); :math:`\hat\tau^2_{(-i)}` and :math:`Q_{E(-i)}` come from them,
    everything else is the closed form above at those :math:`\tau^2`. Checked against
    metafor 3.8-1 ``influence(rma(...))`` (``$inf``, ``$dfbs``, ``$is.infl``) on BCG (log RR),
    ``dat.normand1999`` (MD), ``dat.hackshaw1998`` and a generated set with an outlier for
    REML, DL, FE, ML x z/knha, and BCG ``mods = ~ ablat`` and ``~ ablat + year`` (REML,
    z/knha), at relative tolerance 1e-6 (tests/reference/influence_reference.json).
    """
    d = fitted_data(yi, vi, method, ci, level, study)
    method, ci = d.method, d.ci
    level = _check_common(method, ci, d.level)
    y, v = d.yi, d.vi
    if y.ndim != 1:
        raise ValueError(f"arguments 'yi' and 'vi' must be 1-D (one analysis); got shape {y.shape}")
    k_all = y.size
    labels = d.study
    if moderators is None:
        xdf = pd.DataFrame({"intrcpt": np.ones(k_all)})
    else:
        if isinstance(moderators, pd.Series):
            moderators = moderators.to_frame()
        if not isinstance(moderators, pd.DataFrame):
            raise ValueError(f"argument 'moderators' = {type(moderators).__name__} is not "
                             "allowed; use a pandas DataFrame with one column per moderator")
        if len(moderators) != k_all:
            raise ValueError(f"argument 'moderators' has {len(moderators)} rows but there are "
                             f"{k_all} studies")
        xdf = design_matrix(moderators.reset_index(drop=True))
    names = [str(c) for c in xdf.columns]
    x_all = xdf.to_numpy(dtype=float)
    ok = omit_missing(np.isfinite(y) & np.isfinite(v) & np.isfinite(x_all).all(axis=1), labels,
                      values="yi, vi or moderator values", analysis="the influence diagnostics")
    y, v, x = y[ok], v[ok], x_all[ok]
    k, p = x.shape
    if np.any(v <= 0):
        raise ValueError("argument 'vi' has non-positive values; sampling variances must be > 0")
    if k < p + 1:
        raise ValueError(f"influence() needs at least {p + 1} studies with complete data for "
                         f"{p} coefficient(s) (each deletion refit needs {p}); got k = {k}")
    if np.linalg.matrix_rank(x) < p:
        raise ValueError("the model matrix is not of full rank (redundant moderators)")

    tau2, qe, tau2_del, qe_del = _deletion_fits(y, v, x, names, method, ci, level, control)
    if method == "FE":
        tau2, tau2_del = 0.0, np.where(np.isfinite(tau2_del), 0.0, np.nan)
    beta, xtwx_inv, rss = _wls(y, v, x, tau2)
    vb = _s2w(rss, k - p, ci) * xtwx_inv
    w = 1.0 / (v + tau2)
    hat = np.einsum("ij,jk,ik->i", x, xtwx_inv, x) * w
    hat[hat > 1 - 10 * np.finfo(float).eps] = 1.0
    weight = 100 * w / w.sum()
    pred = x @ beta
    svb = np.linalg.inv(vb)
    det_vb = np.linalg.det(vb)

    rstudent, dffits, cook, covr = (np.full(k, np.nan) for _ in range(4))
    dfbs = np.full((k, p), np.nan)
    for i in range(k):
        t2 = tau2_del[i]
        if not np.isfinite(t2):
            continue
        keep = np.arange(k) != i
        b_del, inv_del, rss_del = _wls(y[keep], v[keep], x[keep], t2)
        s2w = _s2w(rss_del, k - 1 - p, ci)
        vb_del = s2w * inv_del
        xi = x[i]
        delpred = float(xi @ b_del)
        resid = y[i] - delpred
        if abs(resid) < 100 * np.finfo(float).eps:
            resid = 0.0
        rstudent[i] = resid / np.sqrt(s2w * (v[i] + t2) + xi @ vb_del @ xi)
        dffits[i] = (pred[i] - delpred) / np.sqrt(s2w * hat[i] * (t2 + v[i]))
        vb_all = np.linalg.inv(x.T @ (x / (v + t2)[:, None]))
        dfb = beta - b_del
        dfbs[i] = dfb / np.sqrt(s2w * np.diag(vb_all))
        cook[i] = float(dfb @ svb @ dfb)
        covr[i] = np.linalg.det(vb_del) / det_vb

    with np.errstate(invalid="ignore"):
        infl = (np.abs(dffits) > 3 * np.sqrt(p / (k - p))) | (stats.chi2.cdf(cook, p) > 0.5) \
            | (hat > 3 * p / k) | (np.abs(dfbs) > 1).any(axis=1)

    def full(a: np.ndarray) -> np.ndarray:
        out = np.full(k_all, np.nan)
        out[ok] = a
        return out

    dfb_full = np.full((k_all, p), np.nan)
    dfb_full[ok] = dfbs
    infl_full = np.zeros(k_all, dtype=bool)
    infl_full[ok] = infl
    return InfluenceResult(
        study=labels, rstudent=full(rstudent), dffits=full(dffits), cook_d=full(cook),
        cov_r=full(covr), tau2_del=full(tau2_del), qe_del=full(qe_del), hat=full(hat),
        weight=full(weight), dfbetas=pd.DataFrame(dfb_full, columns=names),
        influential=infl_full, tau2=float(tau2), qe=float(qe), k=k, p=p, method=method,
        ci_method=ci, level=level,
        measure=d.measure,
    )


def _measure(yi: Any) -> str | None:
    """Return the measure of a yi/vi frame with a single-valued ``measure`` column (as ``pool``)."""
    if isinstance(yi, pd.DataFrame) and "measure" in yi.columns:
        measures = yi["measure"].dropna().unique()
        return str(measures[0]) if len(measures) == 1 else None
    return None
