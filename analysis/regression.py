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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from analysis._checks import check_choice, check_level
from analysis._inputs import (
    check_data,
    check_limits,
    column,
    frame_measure,
    omit_missing,
    resolve_variances,
    study_labels,
    yi_vi,
)
from analysis.errors import ConvergenceError
from analysis.formula import FormulaDesign, FrameDesign
from analysis.heterogeneity import METHODS, Control, DesignRows, fit_heterogeneity, wald
from analysis.pooling import pool
from analysis.results import BatchPoolResult, MetaRegressionResult, PoolResult, SubgroupResult

__all__ = ["design_matrix", "meta_regression", "subgroup_analysis", "wald_test"]

# --------------------------------------------------------------------------------------------
# design matrix
# --------------------------------------------------------------------------------------------


def design_matrix(moderators: pd.DataFrame, intercept: bool = True) -> pd.DataFrame:
    """Build the model matrix as R's ``model.matrix(~ a + b)`` does.

    Numeric columns enter as they are; categorical columns (strings, booleans, pandas
    categoricals) are dummy-coded with the first level (alphabetical for strings, category
    order for categoricals, False for booleans) as reference, named ``<column><level>``
    (e.g. ``allocrandom``). The intercept column is ``intrcpt`` as in metafor. The coding
    is :class:`analysis.formula.FrameDesign` (kept on a meta-regression's result, so that
    ``predict`` codes new values the same way).

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
    return FrameDesign.of(moderators, intercept).build(moderators)


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
    i2_ci_low: float
    i2_ci_high: float
    h2_ci_low: float
    h2_ci_high: float
    converged: bool
    tau2_ci_truncated: bool


def _fit(y: np.ndarray, v: np.ndarray, x: np.ndarray, method: str, ci: str, con: Control,
         *, level: float = 0.95, tau2_ci: bool = False, errors: str = "raise") -> _Model:
    fit = fit_heterogeneity(DesignRows.build(y, v, x), method, ci, level, tau2_ci=tau2_ci,
                            control=con, errors=errors)
    return _Model(fit.beta[0], fit.vb[0], float(fit.tau2[0]), float(fit.se_tau2[0]),
                  float(fit.df[0]), float(fit.q[0]), float(fit.q_pvalue[0]), float(fit.i2[0]),
                  float(fit.h2[0]), float(fit.tau2_ci_low[0]), float(fit.tau2_ci_high[0]),
                  float(fit.i2_ci_low[0]), float(fit.i2_ci_high[0]), float(fit.h2_ci_low[0]),
                  float(fit.h2_ci_high[0]), bool(fit.converged[0]),
                  bool(fit.tau2_ci_truncated[0]))


def wald_test(estimate: np.ndarray, vcov: np.ndarray,
              df: float) -> tuple[float, tuple[int, ...], float]:
    r"""Omnibus Wald test of ``estimate = 0``: QM, its df and p-value (metafor ``QM``).

    :math:`Q_M = b^\top V^{-1} b` on m df (chi-square), or :math:`Q_M/m` on (m, ``df``) df
    (F) when ``df`` is finite (Knapp-Hartung). ``estimate`` is any m coefficients or linear
    combinations :math:`L\hat\beta` with covariance ``vcov`` (:math:`LVL^\top`). Checked
    against metafor 3.8-1 ``QM`` of ``rma(mods=)`` and ``anova(res, btt=)``/``anova(res, X=)``.
    """
    qm = float(estimate @ np.linalg.solve(vcov, estimate))
    m = int(estimate.size)
    if np.isfinite(df):
        qm /= m
        return qm, (m, int(df)), float(special.fdtrc(m, df, qm))
    return qm, (m,), float(special.chdtrc(m, qm))


def _r2(y: np.ndarray, v: np.ndarray, x: np.ndarray, model: _Model, method: str,
        con: Control) -> float:
    """Metafor's pseudo-R² (percent, truncated at 0); FE: adjusted weighted R²."""
    k, p = x.shape
    if method == "FE":
        if np.var(y) == 0:
            return 0.0
        if k <= p:  # an exact fit: the adjusted R² is undefined (k - p = 0)
            return np.nan
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


def _moderator_frame(moderators: Any) -> pd.DataFrame:
    """Moderators as a DataFrame: a frame as is, a Series as one column, an array as x1, x2..."""
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


def _design(moderators: Any, data: pd.DataFrame | None,
            k: int) -> tuple[pd.DataFrame, FormulaDesign | FrameDesign]:
    """Return the design matrix (k rows, NaN where a value is missing) and its coding."""
    if moderators is None:
        raise ValueError("argument 'moderators' is missing; use pool() for no moderators")
    if isinstance(moderators, str):
        if "~" not in moderators:
            raise ValueError(
                f"argument 'moderators' = {moderators!r} is not allowed; give a formula such "
                "as '~ ablat + alloc' (with data=), a DataFrame, a Series or a numeric array"
            )
        if data is None:
            raise ValueError(
                f"argument 'moderators' = {moderators!r} is a formula but 'data' is not "
                "given; pass data=<DataFrame> with the moderator columns, or the moderators "
                "themselves as a DataFrame or array"
            )
        if len(data) != k:
            raise ValueError(f"argument 'data' has {len(data)} rows but there are {k} studies")
        formula, xdf = FormulaDesign.of(moderators, data)
        return xdf, formula
    frame = _moderator_frame(moderators)
    if len(frame) != k:
        raise ValueError(f"argument 'moderators' has {len(frame)} rows but there are {k} studies")
    frame = frame.reset_index(drop=True)
    coding = FrameDesign.of(frame)
    return coding.build(frame), coding


def meta_regression(
    yi: Any,
    vi: Any = None,
    moderators: str | pd.DataFrame | pd.Series | np.ndarray | None = None,
    method: str = "REML",
    ci: str = "z",
    level: float = 0.95,
    *,
    sei: Any = None,
    data: pd.DataFrame | None = None,
    study: Any = None,
    tau2_ci: bool = True,
    control: Control | Mapping[str, Any] | None = None,
    errors: str = "raise",
    measure: str | None = None,
) -> MetaRegressionResult:
    r"""Mixed-effects meta-regression (metafor ``rma(yi, vi, mods = ~ ..., data = dat)``).

    Parameters
    ----------
    yi : array_like, str or pandas.DataFrame
        Effect sizes, a column name of ``data``, or a DataFrame with ``yi`` and ``vi``.
    vi : array_like or str, optional
        Sampling variances or a column name of ``data`` (or give ``sei``).
    moderators : str, pandas.DataFrame, pandas.Series or numpy.ndarray
        A one-sided formula evaluated on ``data`` (metafor ``mods = ~ ablat + alloc``):
        R's treatment contrasts with the first level (sorted) as reference, ``~ 0 + x`` or
        ``- 1`` without intercept, ``C(x)``/``factor(x)``, ``I(x^2)``, ``np.log(x)``,
        interactions ``a:b``, ``a*b`` (:class:`analysis.formula.FormulaDesign`). Or one
        column per moderator, one row per study: an intercept is added and categorical
        columns are dummy-coded with the first level (alphabetical) as reference, as R
        factors (:func:`design_matrix`); a 1-D or 2-D numeric array is the moderator matrix
        (metafor ``mods = matrix``) with columns ``x1, x2, ...``.
    method : str
        :math:`\tau^2` estimator, as in :func:`analysis.pooling.pool`.
    ci : {"z", "hksj", "hksj_adhoc"}
        z tests and chi-square omnibus test, or Knapp-Hartung t tests on k - p df and an F
        omnibus test.
    level : float
        Confidence level.
    sei : array_like or str, optional
        Standard errors instead of ``vi`` (metafor ``sei=``).
    data : pandas.DataFrame, optional
        The frame that column names (``yi``, ``vi``, ``sei``, ``study``) and a formula refer
        to (metafor ``data=``).
    study : array_like or str, optional
        Study labels (metafor ``slab``); default the ``study``/``label``/``slab`` column of
        the frame given as ``yi`` or ``data``, else ``"1"``..``"k"``.
    tau2_ci : bool
        Q-profile confidence interval of the residual :math:`\tau^2`, I² and H² (metafor
        ``confint``), as in :func:`analysis.pooling.pool`.
    control : Control or dict, optional
        Iteration settings (see :class:`analysis.heterogeneity.Control`; the same meaning as
        in :func:`analysis.pooling.pool`).
    errors : {"raise", "nan"}
        When the iteration fails: raise :class:`~analysis.errors.ConvergenceError`, or return
        NaN estimates with ``converged=False`` (as :func:`analysis.pooling.pool` for batches).
    measure : str, optional
        Recorded on the result (e.g. ``"RR"``: plots and predictions know the log scale);
        default the single value of a ``measure`` column of the frame given as ``yi`` or
        ``data``.

    Returns
    -------
    MetaRegressionResult
        ``coef, se, zval, pvalue, ci_low, ci_high`` (Series by coefficient name), ``vcov``,
        ``tau2``, ``qm, qm_df, qm_pvalue`` (test of all moderators), ``qe, qe_df,
        qe_pvalue`` (residual heterogeneity), ``r2`` (percent), ``i2``, ``h2``; the data it
        was fitted to (``yi``, ``vi``, ``study`` of the studies used, the design ``X``) and
        the coding (``design``) for :meth:`~MetaRegressionResult.predict`.

    Warns
    -----
    AnalysisWarning
        Studies with a missing ``yi``, ``vi`` or moderator value are omitted; the warning
        names them (their labels).

    Notes
    -----
    :math:`Q_M = \hat\beta_{[-1]}^\top \mathrm{Var}(\hat\beta_{[-1]})^{-1}\hat\beta_{[-1]}`
    (divided by its df under KH, F distribution); :math:`Q_E = y^\top P_0 y` with
    :math:`P_0` at :math:`\tau^2 = 0`; pseudo-:math:`R^2 = \max\{0, (\hat\tau^2_0 -
    \hat\tau^2)/\hat\tau^2_0\}` with :math:`\hat\tau^2_0` from the intercept-only model
    (FE: adjusted weighted :math:`R^2`).

    Checked against metafor 3.8-1 ``rma(mods=...)`` on the fixture cases (BCG, Colditz and
    a generated k = 30 set; numeric, categorical and mixed moderators; every method x z/knha)
    at relative tolerance 1e-6, and the formula, ``data=`` and ``sei=`` forms against
    ``rma(yi, sei=, mods = ~ ..., data=)`` on BCG and ``dat.bangertdrowns2004``
    (``tests/reference/model_reference.json``: numeric, factor, interaction, ``I()`` and
    no-intercept formulas).
    """
    level = _check_common(method, ci, level)
    check_choice("errors", errors, ("raise", "nan"))
    con = Control.from_any(control)
    data = check_data(data)
    source = yi
    measure = frame_measure(measure, yi, data)
    y, v = yi_vi(column("yi", yi, data), resolve_variances(vi, sei, data))
    xdf, design = _design(moderators, data, y.size)
    labels = study_labels(source, study, y.size, data)
    keep = np.isfinite(y) & np.isfinite(v) & np.isfinite(xdf.to_numpy()).all(axis=1)
    if not np.any(keep):
        raise ValueError("no study has yi, vi and every moderator available (k = 0)")
    omit_missing(keep, labels, values="yi, vi or moderator values",
                 analysis="the meta-regression")
    used = tuple(labels[i] for i in np.flatnonzero(keep))
    return _regression(y[keep], v[keep], xdf[keep], method, ci, level, con,
                       tau2_ci=tau2_ci, errors=errors, study=used, design=design,
                       measure=measure)


def _regression(y: np.ndarray, v: np.ndarray, xdf: pd.DataFrame, method: str, ci: str,
                level: float, con: Control, *, tau2_ci: bool = False,
                errors: str = "raise", study: tuple[str, ...] | None = None,
                design: FormulaDesign | FrameDesign | None = None,
                measure: str | None = None) -> MetaRegressionResult:
    x = xdf.to_numpy(dtype=float)
    k, p = x.shape
    if np.any(v <= 0):
        raise ValueError("argument 'vi' has non-positive values; sampling variances must be > 0")
    check_limits(y, v, np.ones(y.shape, dtype=bool))
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
    qm, qm_df, qm_p = wald_test(model.beta[btt], model.vb[np.ix_(btt, btt)], model.df)
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
        yi=y, vi=v, study=tuple(str(i + 1) for i in range(k)) if study is None else study,
        X=pd.DataFrame(x, columns=names, index=pd.RangeIndex(k)), design=design,
        i2_ci_low=model.i2_ci_low, i2_ci_high=model.i2_ci_high, h2_ci_low=model.h2_ci_low,
        h2_ci_high=model.h2_ci_high, measure=measure,
        tau2_ci_truncated=model.tau2_ci_truncated,
    )


def predict_design(res: MetaRegressionResult, newmods: Any,
                   intercept: bool = True) -> tuple[np.ndarray, list[str] | None]:
    """Return the design rows of ``newmods`` (metafor ``predict.rma(newmods=)``) and labels.

    ``None``: the fitted model's own rows (labels: the studies). A scalar or 1-D array with
    one moderator: one row per value; a 1-D array of p - 1 values with several moderators:
    one row; a 2-D array: design columns without the intercept; a DataFrame or dict: raw
    moderator values, coded as the fit was (its formula or frame coding).
    """
    if res.X is None:
        raise ValueError("this result keeps no design matrix; refit with meta_regression()")
    names = list(res.X.columns)
    has_int = names[0] == "intrcpt"
    if newmods is None:
        x = res.X.to_numpy(dtype=float).copy()
        labels = list(res.study) if res.study is not None else None
    elif isinstance(newmods, (pd.DataFrame, Mapping)):
        frame = pd.DataFrame(newmods) if not isinstance(newmods, pd.DataFrame) else newmods
        if res.design is None:
            raise ValueError("argument 'newmods' is a DataFrame/dict but the result keeps no "
                             "coding; give the design columns as an array")
        built = res.design.build(frame)
        if list(built.columns) != names:
            raise ValueError(
                f"argument 'newmods' gives the design columns {list(built.columns)}, not the "
                f"fitted model's {names} (a factor level missing from the new values?)"
            )
        x = built.to_numpy(dtype=float)
        labels = None
    else:
        arr = np.asarray(newmods, dtype=float)
        nmods = len(names) - (1 if has_int else 0)
        if arr.ndim == 0 or (arr.ndim == 1 and nmods == 1):
            arr = arr.reshape(-1, 1)
        elif arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != nmods:
            raise ValueError(
                f"argument 'newmods' has shape {np.shape(newmods)}; the model has {nmods} "
                f"moderator column(s) {names[1:] if has_int else names} (give an array with "
                "that many columns, or a DataFrame of moderator values)"
            )
        x = np.column_stack([np.ones(arr.shape[0]), arr]) if has_int else arr
        labels = None
    if has_int and not intercept:
        x[:, 0] = 0.0
    return x, labels


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
    study: Any = None,
    measure: str | None = None,
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
    study : array_like, optional
        Study labels, used to name studies omitted for a missing ``yi``, ``vi`` or group
        (default the frame's ``study``/``label`` column, else ``"1"``..``"k"``).
    measure : str, optional
        Recorded on the result and its subgroup results (default: the single value of the
        frame's ``measure`` column).

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
    measure = frame_measure(measure, yi)
    labels = study_labels(yi, study, len(yi))
    y, v = yi_vi(yi, vi)
    if groups is None:
        raise ValueError("argument 'groups' is missing; give one subgroup label per study")
    g = pd.Series(np.asarray(groups, dtype=object))
    if len(g) != y.size:
        raise ValueError(f"argument 'groups' has {len(g)} labels but there are {y.size} studies")
    keep = np.isfinite(y) & np.isfinite(v) & g.notna().to_numpy()
    omit_missing(keep, labels, values="yi, vi or group", analysis="the subgroup analysis")
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
        return _separate(y, v, g, levels, method, ci, level, con, measure)
    return _common(y, v, g, levels, method, ci, level, con, measure)


def _separate(y: np.ndarray, v: np.ndarray, g: pd.Series, levels: list[Any], method: str,
              ci: str, level: float, con: Control, measure: str | None) -> SubgroupResult:
    """One random-effects model per subgroup: one batched fit, a padded row per subgroup."""
    sizes = [int((g == lev).sum()) for lev in levels]
    yb = np.full((len(levels), max(sizes)), np.nan)
    vb = np.full_like(yb, np.nan)
    for row, lev in enumerate(levels):
        sel = (g == lev).to_numpy()
        yb[row, : sizes[row]], vb[row, : sizes[row]] = y[sel], v[sel]
    batch = pool(yb, vb, method=method, ci=ci, level=level, control=con, tau2_ci=False,
                 measure=measure)
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
                          "separate", level, results, measure)


def _common(y: np.ndarray, v: np.ndarray, g: pd.Series, levels: list[Any], method: str,
            ci: str, level: float, con: Control, measure: str | None) -> SubgroupResult:
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
                          "common", level, {}, measure)
