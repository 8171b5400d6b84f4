r"""Mixed-effects meta-regression and subgroup analysis, as metafor ``rma(mods=...)``.

The model is :math:`y = X\beta + u + e`, :math:`u \sim N(0, \tau^2 I)`, :math:`e \sim N(0, V)`
with :math:`V = \mathrm{diag}(v_i)`. With :math:`W = (V + \tau^2 I)^{-1}` and
:math:`P = W - W X (X^\top W X)^{-1} X^\top W`, the residual heterogeneity :math:`\tau^2` is
estimated as in :func:`analysis.pooling.pool` with k - p in place of k - 1, then
:math:`\hat\beta = (X^\top W X)^{-1} X^\top W y` with covariance :math:`(X^\top W X)^{-1}`
(Knapp-Hartung: times :math:`y^\top P y/(k-p)`).

References
----------
Viechtbauer W (2010), J Stat Softw 36(3); Raudenbush SW (2009), Analyzing effect sizes:
random-effects models, in The Handbook of Research Synthesis and Meta-Analysis;
Knapp G, Hartung J (2003), Stat Med 22:2693-2710.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from analysis._checks import as_float_array, check_choice, check_level
from analysis.errors import ConvergenceError
from analysis.heterogeneity import METHODS, Control, DesignRows, fit_heterogeneity, wald
from analysis.pooling import pool
from analysis.results import BatchPoolResult, MetaRegressionResult, PoolResult, SubgroupResult

__all__ = ["design_matrix", "meta_regression", "subgroup_analysis"]

# --------------------------------------------------------------------------------------------
# design matrix
# --------------------------------------------------------------------------------------------


def _is_categorical(series: pd.Series) -> bool:
    return bool(
        isinstance(series.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
        or pd.api.types.is_bool_dtype(series)
    )


def _levels(series: pd.Series) -> list[Any]:
    if isinstance(series.dtype, pd.CategoricalDtype):
        present = set(series.dropna())
        return [c for c in series.cat.categories if c in present]
    return sorted(series.dropna().unique().tolist(), key=str)


def design_matrix(moderators: pd.DataFrame, intercept: bool = True) -> pd.DataFrame:
    """Build the model matrix as R's ``model.matrix(~ a + b)`` does.

    Numeric columns enter as they are; categorical columns (strings, booleans, pandas
    categoricals) are dummy-coded with the first level (alphabetical for strings, category
    order for categoricals, False for booleans) as reference, named ``<column><level>``
    (e.g. ``allocrandom``). The intercept column is ``intrcpt`` as in metafor.

    Parameters
    ----------
    moderators : pandas.DataFrame
        One column per moderator, one row per study.
    intercept : bool
        Prepend the intercept column.

    Returns
    -------
    pandas.DataFrame
        Float model matrix, index as ``moderators``.

    Notes
    -----
    Checked against the coefficient names and values of metafor's ``rma(mods = ~ alloc)``
    on the fixture (BCG allocation: ``intrcpt, allocrandom, allocsystematic``).
    """
    if not isinstance(moderators, pd.DataFrame):
        raise ValueError(
            f"argument 'moderators' = {type(moderators).__name__} is not allowed; use a pandas "
            "DataFrame with one column per moderator"
        )
    columns: dict[str, np.ndarray] = {}
    if intercept:
        columns["intrcpt"] = np.ones(len(moderators))
    for name in moderators.columns:
        series = moderators[name]
        if _is_categorical(series):
            levels = _levels(series)
            for level in levels[1:]:
                dummy = np.array((series == level).astype(float), dtype=float)
                dummy[series.isna().to_numpy()] = np.nan
                label = "TRUE" if level is True else str(level)
                columns[f"{name}{label}"] = dummy
        else:
            columns[str(name)] = pd.to_numeric(series, errors="raise").to_numpy(dtype=float)
    return pd.DataFrame(columns, index=moderators.index)


# --------------------------------------------------------------------------------------------
# the fit: the rma.uni core (analysis.heterogeneity) with a general design matrix
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Model:
    beta: np.ndarray
    vb: np.ndarray
    tau2: float
    se_tau2: float
    df: float
    qe: float
    qe_p: float
    i2: float
    h2: float
    tau2_ci_low: float
    tau2_ci_high: float
    converged: bool


def _fit(y: np.ndarray, v: np.ndarray, x: np.ndarray, method: str, ci: str, con: Control,
         *, level: float = 0.95, tau2_ci: bool = False, errors: str = "raise") -> _Model:
    fit = fit_heterogeneity(DesignRows.build(y, v, x), method, ci, level, tau2_ci=tau2_ci,
                            control=con, errors=errors)
    return _Model(fit.beta[0], fit.vb[0], float(fit.tau2[0]), float(fit.se_tau2[0]),
                  float(fit.df[0]), float(fit.q[0]), float(fit.q_pvalue[0]), float(fit.i2[0]),
                  float(fit.h2[0]), float(fit.tau2_ci_low[0]), float(fit.tau2_ci_high[0]),
                  bool(fit.converged[0]))


def _wald(model: _Model, btt: np.ndarray) -> tuple[float, tuple[int, ...], float]:
    b = model.beta[btt]
    qm = float(b @ np.linalg.solve(model.vb[np.ix_(btt, btt)], b))
    m = int(btt.size)
    if np.isfinite(model.df):
        qm /= m
        return qm, (m, int(model.df)), float(special.fdtrc(m, model.df, qm))
    return qm, (m,), float(special.chdtrc(m, qm))


def _r2(y: np.ndarray, v: np.ndarray, x: np.ndarray, model: _Model, method: str,
        con: Control) -> float:
    """Metafor's pseudo-R² (percent, truncated at 0); FE: adjusted weighted R²."""
    k, p = x.shape
    if method == "FE":
        if np.var(y) == 0:
            return 0.0
        w = 1 / v
        fitted = x @ model.beta
        ybar = np.sum(w * y) / w.sum()
        r2 = 1 - np.sum(w * (y - fitted) ** 2) / np.sum(w * (y - ybar) ** 2)
        return max(0.0, 100 * (1 - (1 - r2) * (k - 1) / (k - p)))
    try:
        fit = pool(y, v, method=method, tau2_ci=False, control=con)
    except (ConvergenceError, ValueError):
        return np.nan
    assert isinstance(fit, PoolResult)  # one analysis (1-D input)
    tau2_re = float(fit.tau2)
    if tau2_re == 0:
        return 0.0
    return max(0.0, 100 * (tau2_re - model.tau2) / tau2_re)


def _inputs(yi: Any, vi: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(yi, pd.DataFrame):
        if vi is not None:
            raise ValueError("argument 'vi' must be None when 'yi' is a DataFrame with yi, vi")
        return yi["yi"].to_numpy(dtype=float), yi["vi"].to_numpy(dtype=float)
    if vi is None:
        raise ValueError("argument 'vi' is missing; give sampling variances (or a yi/vi frame)")
    y, v = as_float_array("yi", yi), as_float_array("vi", vi)
    if y.shape != v.shape:
        raise ValueError(f"arguments 'yi' and 'vi' differ in shape: {y.shape} vs {v.shape}")
    return y, v


def _moderator_frame(moderators: Any) -> pd.DataFrame:
    """Moderators as a DataFrame: a frame as is, a Series as one column, an array as x1, x2..."""
    if isinstance(moderators, str):
        raise ValueError(
            f"argument 'moderators' = {moderators!r} is not allowed: formula moderators are not "
            "supported yet; use a pandas DataFrame with one column per moderator (or a numeric "
            "array, one column per moderator)"
        )
    if isinstance(moderators, pd.Series):
        return moderators.to_frame()
    if isinstance(moderators, pd.DataFrame):
        return moderators
    if isinstance(moderators, np.ndarray):
        if moderators.ndim not in (1, 2):
            raise ValueError(
                f"argument 'moderators' is a {moderators.ndim}-D array of shape "
                f"{moderators.shape}; use a 1-D array (one moderator) or a 2-D array (one row "
                "per study, one column per moderator)"
            )
        matrix = moderators.reshape(-1, 1) if moderators.ndim == 1 else moderators
        names = [f"x{j + 1}" for j in range(matrix.shape[1])]
        return pd.DataFrame(matrix, columns=names)
    raise ValueError(
        f"argument 'moderators' = {type(moderators).__name__} is not allowed; use a pandas "
        "DataFrame with one column per moderator, a Series, or a 1-D/2-D numpy array"
    )


def _check_common(method: str, ci: str, level: float) -> float:
    check_choice("method", method, METHODS)
    check_choice("ci", ci, ("z", "hksj", "hksj_adhoc"))
    return check_level(level)


def meta_regression(
    yi: Any,
    vi: Any = None,
    moderators: pd.DataFrame | pd.Series | np.ndarray | None = None,
    method: str = "REML",
    ci: str = "z",
    level: float = 0.95,
    *,
    tau2_ci: bool = True,
    control: Control | Mapping[str, Any] | None = None,
    errors: str = "raise",
) -> MetaRegressionResult:
    r"""Mixed-effects meta-regression (metafor ``rma(yi, vi, mods = ~ ...)``).

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (or a DataFrame with ``yi``, ``vi`` as ``yi``).
    moderators : pandas.DataFrame, pandas.Series or numpy.ndarray
        One column per moderator, one row per study; an intercept is added; categorical
        columns are dummy-coded with the first level (alphabetical) as reference, as R
        factors (:func:`design_matrix`). A 1-D or 2-D numeric array is taken as the
        moderator matrix (metafor ``mods = matrix``) with columns ``x1, x2, ...``. Formula
        strings (``"~ ablat"``) are not supported yet and raise ``ValueError``.
    method : str
        :math:`\tau^2` estimator, as in :func:`analysis.pooling.pool`.
    ci : {"z", "hksj", "hksj_adhoc"}
        z tests and chi-square omnibus test, or Knapp-Hartung t tests on k - p df and an F
        omnibus test.
    level : float
        Confidence level.
    tau2_ci : bool
        Q-profile confidence interval of the residual :math:`\tau^2` (metafor ``confint``),
        as in :func:`analysis.pooling.pool`.
    control : Control or dict, optional
        Iteration settings (see :class:`analysis.heterogeneity.Control`; the same meaning as
        in :func:`analysis.pooling.pool`).
    errors : {"raise", "nan"}
        When the iteration fails: raise :class:`~analysis.errors.ConvergenceError`, or return
        NaN estimates with ``converged=False`` (as :func:`analysis.pooling.pool` for batches).

    Returns
    -------
    MetaRegressionResult
        ``coef, se, zval, pvalue, ci_low, ci_high`` (Series by coefficient name), ``vcov``,
        ``tau2``, ``qm, qm_df, qm_pvalue`` (test of all moderators), ``qe, qe_df,
        qe_pvalue`` (residual heterogeneity), ``r2`` (percent), ``i2``, ``h2``.

    Notes
    -----
    :math:`Q_M = \hat\beta_{[-1]}^\top \mathrm{Var}(\hat\beta_{[-1]})^{-1}\hat\beta_{[-1]}`
    (divided by its df under KH, F distribution); :math:`Q_E = y^\top P_0 y` with
    :math:`P_0` at :math:`\tau^2 = 0`; pseudo-:math:`R^2 = \max\{0, (\hat\tau^2_0 -
    \hat\tau^2)/\hat\tau^2_0\}` with :math:`\hat\tau^2_0` from the intercept-only model
    (FE: adjusted weighted :math:`R^2`). Studies with a missing value are omitted.

    Checked against metafor 3.8-1 ``rma(mods=...)`` on the fixture cases (BCG, Colditz and
    a generated k = 30 set; numeric, categorical and mixed moderators; every method x z/knha)
    at relative tolerance 1e-6.
    """
    level = _check_common(method, ci, level)
    check_choice("errors", errors, ("raise", "nan"))
    con = Control.from_any(control)
    y, v = _inputs(yi, vi)
    if moderators is None:
        raise ValueError("argument 'moderators' is missing; use pool() for no moderators")
    moderators = _moderator_frame(moderators)
    if len(moderators) != y.size:
        raise ValueError(
            f"argument 'moderators' has {len(moderators)} rows but there are {y.size} studies"
        )
    xdf = design_matrix(moderators.reset_index(drop=True))
    keep = np.isfinite(y) & np.isfinite(v) & np.isfinite(xdf.to_numpy()).all(axis=1)
    if not np.all(keep):
        warnings.warn(
            f"{int((~keep).sum())} stud(y/ies) with missing yi, vi or moderator values omitted "
            f"from the meta-regression (rows {np.flatnonzero(~keep)[:10].tolist()})",
            UserWarning, stacklevel=2,
        )
    return _regression(y[keep], v[keep], xdf[keep], method, ci, level, con,
                       tau2_ci=tau2_ci, errors=errors)


def _regression(y: np.ndarray, v: np.ndarray, xdf: pd.DataFrame, method: str, ci: str,
                level: float, con: Control, *, tau2_ci: bool = False,
                errors: str = "raise") -> MetaRegressionResult:
    x = xdf.to_numpy(dtype=float)
    k, p = x.shape
    if np.any(v <= 0):
        raise ValueError("argument 'vi' has non-positive values; sampling variances must be > 0")
    need = p if method == "FE" else p + 1
    if k < need:
        raise ValueError(f"too few studies (k = {k}) for {p} coefficients with method {method!r}")
    if np.linalg.matrix_rank(x) < p:
        raise ValueError("the model matrix is not of full rank (redundant moderators)")
    model = _fit(y, v, x, method, ci, con, level=level, tau2_ci=tau2_ci, errors=errors)
    names = list(xdf.columns)
    se = np.sqrt(np.diag(model.vb))
    z, pval, crit = wald(model.beta, se, np.full(p, model.df), level)
    has_int = names[0] == "intrcpt"
    btt = np.arange(1 if has_int and p > 1 else 0, p)
    qm, qm_df, qm_p = _wald(model, btt)
    r2 = _r2(y, v, x, model, method, con) if has_int and p > 1 else np.nan

    def series(a: np.ndarray) -> pd.Series:
        return pd.Series(a, index=names, dtype=float)

    return MetaRegressionResult(
        coef=series(model.beta), se=series(se), zval=series(z), pvalue=series(pval),
        ci_low=series(model.beta - crit * se), ci_high=series(model.beta + crit * se),
        vcov=pd.DataFrame(model.vb, index=names, columns=names), tau2=model.tau2,
        se_tau2=model.se_tau2, qm=qm, qm_df=qm_df, qm_pvalue=qm_p, qe=model.qe, qe_df=k - p,
        qe_pvalue=model.qe_p, r2=r2, i2=model.i2, h2=model.h2, k=k, method=method,
        ci_method=ci, level=level, tau2_ci_low=model.tau2_ci_low,
        tau2_ci_high=model.tau2_ci_high, converged=model.converged,
    )


def subgroup_analysis(
    yi: Any,
    vi: Any = None,
    groups: Any = None,
    method: str = "REML",
    ci: str = "z",
    tau2: str = "separate",
    level: float = 0.95,
    *,
    control: Control | Mapping[str, Any] | None = None,
    order: Sequence[Any] | None = None,
) -> SubgroupResult:
    r"""Pooled estimate per subgroup and the test for subgroup differences.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (or a DataFrame with ``yi``, ``vi``).
    groups : array_like
        Subgroup label of each study (levels sorted alphabetically, as R factors, unless
        ``order`` is given).
    method, ci, level, control
        As in :func:`analysis.pooling.pool`.
    tau2 : {"separate", "common"}
        ``"separate"``: an independent random-effects model per subgroup; the test is the
        fixed-effect Q between subgroup estimates, :math:`Q_B = \sum_g (\hat\mu_g -
        \bar\mu)^2/SE_g^2` on G - 1 df (metafor: ``rma(est, sei=se, mods=~factor(g),
        method="FE")``). ``"common"``: one meta-regression on the subgroup factor with a
        common :math:`\tau^2`; estimates from ``~ 0 + factor(g)`` and :math:`Q_B` the
        omnibus test of ``~ factor(g)`` (an F test under ``ci="hksj"``).

    order : sequence, optional
        The order of the subgroups in the result (levels absent from the data are skipped;
        labels not listed raise ``ValueError``). The test does not depend on it.

    Returns
    -------
    SubgroupResult
        ``subgroups`` (one row per subgroup: group, k, estimate, se, zval, pvalue, ci_low,
        ci_high, tau2, i2, q), ``qb``, ``qb_df``, ``qb_pvalue``; for ``"separate"`` also the
        per-subgroup :class:`PoolResult` objects in ``results``.

    Notes
    -----
    Checked against metafor 3.8-1 on the fixture subgroup cases (BCG allocation, Colditz,
    Hackshaw, generated data; every method x z/knha x separate/common) at rtol 1e-6.
    """
    level = _check_common(method, ci, level)
    check_choice("tau2", tau2, ("separate", "common"))
    con = Control.from_any(control)
    y, v = _inputs(yi, vi)
    if groups is None:
        raise ValueError("argument 'groups' is missing; give one subgroup label per study")
    g = pd.Series(np.asarray(groups, dtype=object))
    if len(g) != y.size:
        raise ValueError(f"argument 'groups' has {len(g)} labels but there are {y.size} studies")
    keep = np.isfinite(y) & np.isfinite(v) & g.notna().to_numpy()
    y, v, g = y[keep], v[keep], g[keep].reset_index(drop=True)
    levels = sorted(g.unique().tolist(), key=str)
    if order is not None:
        unknown = [lev for lev in levels if lev not in list(order)]
        if unknown:
            raise ValueError(f"argument 'order' does not list the group label(s) {unknown}")
        levels = [lev for lev in order if lev in set(levels)]
    if len(levels) < 2:
        raise ValueError(f"argument 'groups' has {len(levels)} level(s); at least 2 are needed")
    if tau2 == "separate":
        return _separate(y, v, g, levels, method, ci, level, con)
    return _common(y, v, g, levels, method, ci, level, con)


def _separate(y: np.ndarray, v: np.ndarray, g: pd.Series, levels: list[Any], method: str,
              ci: str, level: float, con: Control) -> SubgroupResult:
    """One random-effects model per subgroup: one batched fit, a padded row per subgroup."""
    sizes = [int((g == lev).sum()) for lev in levels]
    yb = np.full((len(levels), max(sizes)), np.nan)
    vb = np.full_like(yb, np.nan)
    for row, lev in enumerate(levels):
        sel = (g == lev).to_numpy()
        yb[row, : sizes[row]], vb[row, : sizes[row]] = y[sel], v[sel]
    batch = pool(yb, vb, method=method, ci=ci, level=level, control=con, tau2_ci=False)
    assert isinstance(batch, BatchPoolResult)  # 2-D input
    results: dict[str, PoolResult] = {}
    for row, lev in enumerate(levels):
        results[str(lev)] = batch.row(row, sizes[row])
    table = pd.DataFrame({
        "group": levels, "k": sizes, "estimate": batch.estimate, "se": batch.se,
        "zval": batch.zval, "pvalue": batch.pvalue, "ci_low": batch.ci_low,
        "ci_high": batch.ci_high, "tau2": batch.tau2, "i2": batch.i2, "q": batch.q,
    })
    w = 1 / batch.se**2
    est = batch.estimate
    qb = float(np.sum(w * (est - np.sum(w * est) / w.sum()) ** 2))
    df = len(levels) - 1
    return SubgroupResult(table, qb, (df,), float(special.chdtrc(df, qb)), method, ci,
                          "separate", level, results)


def _common(y: np.ndarray, v: np.ndarray, g: pd.Series, levels: list[Any], method: str,
            ci: str, level: float, con: Control) -> SubgroupResult:
    cell = pd.DataFrame({str(lev): (g == lev).astype(float).to_numpy() for lev in levels})
    cell_fit = _regression(y, v, cell, method, ci, level, con)
    with_int = pd.concat([pd.DataFrame({"intrcpt": np.ones(y.size)}), cell.iloc[:, 1:]], axis=1)
    omnibus = _regression(y, v, with_int, method, ci, level, con)
    counts = g.value_counts()
    table = pd.DataFrame({
        "group": levels, "k": [int(counts[lev]) for lev in levels],
        "estimate": cell_fit.coef.to_numpy(), "se": cell_fit.se.to_numpy(),
        "zval": cell_fit.zval.to_numpy(), "pvalue": cell_fit.pvalue.to_numpy(),
        "ci_low": cell_fit.ci_low.to_numpy(), "ci_high": cell_fit.ci_high.to_numpy(),
        "tau2": cell_fit.tau2, "i2": cell_fit.i2, "q": np.nan,
    })
    return SubgroupResult(table, omnibus.qm, omnibus.qm_df, omnibus.qm_pvalue, method, ci,
                          "common", level, {})
