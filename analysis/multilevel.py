r"""Multilevel and multivariate meta-analysis, as metafor ``rma.mv`` (nested intercepts, UN).

:func:`rma_mv` fits :math:`y = X\beta + u + e`, :math:`e \sim N(0, V)` with a known
within-study covariance :math:`V` (a vector of variances or a full/block matrix, e.g. from
shared controls or assumed correlations) and random effects

* nested random intercepts, metafor's ``random = ~ 1 | district/school``: one variance
  :math:`\sigma^2_l` per level, rows sharing the level's (interaction of) labels correlated;
* a random effect per level of an inner factor with an unstructured covariance, metafor's
  ``random = ~ outcome | trial, struct = "UN"``: :math:`\tau^2_a` per outcome and the
  correlations :math:`\rho_{ab}`.

The estimation (REML or ML, global search then Fisher scoring) is the one multivariate
fitter of the package, :func:`analysis.dose._engine.fit_mixed`, which the dose-response
models (:func:`analysis.dose.dose_response`) use too. Fit statistics count
:math:`p` coefficients plus the covariance parameters; the ML deviance removes the saturated
model's log-likelihood :math:`-\frac k2\log 2\pi - \frac12\log|V|` (metafor). Rows with a
missing ``yi``, ``V`` or moderator value are omitted with a warning naming them, as metafor's
default ``na.action``; a missing grouping value of ``random`` is an error, as in metafor.

Checked against metafor 3.8-1 ``rma.mv`` on ``dat.konstantopoulos2011`` (nested) and
``dat.berkey1998`` (known V, ``struct = "UN"``), REML and ML, with and without moderators,
z and t tests (``tests/reference/rma_mv_reference.json``), and with missing values
(``tests/reference/rma_mv_na_reference.json``).

References
----------
Konstantopoulos S (2011). Fixed effects and variance components estimation in three-level
meta-analysis. Res Synth Methods 2:61-76. Berkey CS, Hoaglin DC, Antczak-Bouckoms A,
Mosteller F, Colditz GA (1998). Meta-analysis of multiple outcomes by regression with random
effects. Stat Med 17:2537-2550. Viechtbauer W (2010). J Stat Softw 36(3).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis._checks import check_choice, check_level
from analysis._inputs import omit_missing, study_labels
from analysis.dose._engine import CovarianceTerm, fit_mixed, psi_from_theta
from analysis.formula import FormulaDesign, FrameDesign
from analysis.model_comparison import FitStatistics
from analysis.results import MultilevelResult

__all__ = ["rma_mv"]

_LOG_2PI = float(np.log(2 * np.pi))
_UN_FORMULA = re.compile(r"^\s*~\s*(\w+)\s*\|\s*(\w+)\s*$")
_NESTED_FORMULA = re.compile(r"^\s*~\s*1\s*\|\s*([\w/\s]+)$")


def _column(name: str, value: Any, data: pd.DataFrame | None, k: int | None) -> np.ndarray:
    """Return the column of ``data`` named by ``value``, or ``value`` itself as an array."""
    if isinstance(value, str):
        if data is None or value not in data.columns:
            raise ValueError(f"argument {name!r} = {value!r} names no column of 'data'")
        value = data[value]
    arr = np.asarray(value)
    if k is not None and arr.shape[0] != k:
        raise ValueError(f"argument {name!r} has {arr.shape[0]} rows; 'yi' has {k}")
    return arr


def _covariance(V: Any, data: pd.DataFrame | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the k x k covariance and the rows it leaves missing (metafor's rule).

    A row is missing when its variance is NaN, or when it has a NaN covariance with a row
    whose variance is given (metafor 3.8-1 ``.anyNAv``: both rows of a NaN covariance go).
    """
    arr = np.asarray(_column("V", V, data, k), dtype=float)
    if arr.ndim == 1:
        arr = np.diag(arr)
    if arr.shape != (k, k):
        raise ValueError(f"argument 'V' has shape {arr.shape}; give {k} variances or a "
                         f"({k}, {k}) matrix")
    if np.any(np.isinf(arr)):
        raise ValueError("argument 'V' has infinite values; use NaN for missing")
    given = ~np.isnan(np.diag(arr))
    missing = ~given | np.isnan(arr[:, given]).any(axis=1)
    sub = arr[np.ix_(~missing, ~missing)]
    scale = max(1.0, float(np.abs(sub).max(initial=0.0)))
    if not np.allclose(sub, sub.T, rtol=0, atol=1e-12 * scale):
        raise ValueError("argument 'V' must be a symmetric matrix")
    if np.any(np.diag(sub) <= 0):
        raise ValueError("argument 'V' has sampling variances <= 0")
    return arr, missing


def _design(mods: Any, data: pd.DataFrame | None, k: int,
            intercept: bool) -> tuple[pd.DataFrame, FormulaDesign | FrameDesign | None]:
    if mods is None:
        return pd.DataFrame({"intrcpt": np.ones(k)}), None
    if isinstance(mods, str):
        if data is None:
            raise ValueError(f"argument 'mods' = {mods!r} is a formula; give data=")
        formula, X = FormulaDesign.of(mods, data)
        return X, formula
    if isinstance(mods, pd.Series):
        mods = mods.to_frame()
    if isinstance(mods, pd.DataFrame):
        if len(mods) != k:
            raise ValueError(f"argument 'mods' has {len(mods)} rows; 'yi' has {k}")
        frame = mods.reset_index(drop=True)
        coding = FrameDesign.of(frame, intercept)
        return coding.build(frame), coding
    arr = np.asarray(mods, dtype=float)
    arr = arr[:, None] if arr.ndim == 1 else arr
    if arr.ndim != 2 or arr.shape[0] != k:
        raise ValueError(f"argument 'mods' has shape {np.shape(mods)}; expected {k} rows")
    names = [f"X{j + 1}" for j in range(arr.shape[1])]
    X = pd.DataFrame(arr, columns=names)
    if intercept:
        X.insert(0, "intrcpt", 1.0)
    return X, None


def _labels(columns: Sequence[str], data: pd.DataFrame | None, k: int) -> np.ndarray:
    """One label per row: the interaction of the named columns (none may be missing).

    As metafor 3.8-1 ("No NAs allowed in variables specified in the 'random' argument"), a
    missing grouping value is an error, naming the column and rows (1-based).
    """
    raw = [_column("random", c, data, k) for c in columns]
    for c, values in zip(columns, raw, strict=True):
        gone = np.flatnonzero(pd.isna(values))
        if gone.size:
            raise ValueError(f"argument 'random': column {c!r} has missing values in rows "
                             + ", ".join(str(i + 1) for i in gone)
                             + " (1-based); give every row a group or drop those rows")
    parts = [values.astype(str) for values in raw]
    out = parts[0].astype(object)
    for p in parts[1:]:
        out = out + "/" + p.astype(object)
    return np.asarray(out, dtype=object)


def _terms(random: Any, struct: str, data: pd.DataFrame | None,
           k: int) -> tuple[list[CovarianceTerm], str, list[str] | None]:
    """Random-effects terms, their metafor spelling, and the inner levels of a UN term."""
    if isinstance(random, str):
        un = _UN_FORMULA.match(random)
        if un and un.group(1) != "1":
            check_choice("struct", struct, ("UN",))
            inner = _labels([un.group(1)], data, k)
            levels = sorted(set(inner.tolist()))
            z = np.column_stack([(inner == lv).astype(float) for lv in levels])
            groups = _labels([un.group(2)], data, k)
            return ([CovarianceTerm(un.group(2), z, groups)],
                    f"~ {un.group(1)} | {un.group(2)}", levels)
        nested = _NESTED_FORMULA.match(random)
        if not nested:
            raise ValueError(f"argument 'random' = {random!r} is not allowed; give '~ 1 | a/b' "
                             "(nested intercepts), '~ inner | outer' (struct='UN') or a list "
                             "of column tuples")
        cols = [c.strip() for c in nested.group(1).split("/")]
        random = [tuple(cols[:i + 1]) for i in range(len(cols))]
    items = [(item,) if isinstance(item, str) else tuple(item) for item in random]
    if not items:
        raise ValueError("argument 'random' is empty; give at least one random-effects term")
    ones = np.ones((k, 1))
    terms = [CovarianceTerm("/".join(cols), ones, _labels(cols, data, k)) for cols in items]
    return terms, "~ 1 | " + ", ".join(t.name for t in terms), None


def _fit_statistics(loglik: float, k: int, p: int, n_theta: int, reml: bool,
                    V: np.ndarray) -> FitStatistics:
    m = p + n_theta
    n = k - p if reml else k
    saturated = -0.5 * k * _LOG_2PI - 0.5 * float(np.linalg.slogdet(V)[1])
    dev = -2 * loglik if reml else -2 * (loglik - saturated)
    big = max(n, m + 2)
    return FitStatistics(loglik, dev, -2 * loglik + 2 * m, -2 * loglik + m * float(np.log(n)),
                         -2 * loglik + 2 * m * big / (big - m - 1), m, reml)


def _wald(beta: np.ndarray, vb: np.ndarray, idx: list[int],
          df: float) -> tuple[float, tuple[float, ...], float]:
    sub = beta[idx]
    qm = float(sub @ np.linalg.solve(vb[np.ix_(idx, idx)], sub))
    if np.isfinite(df):
        return qm / len(idx), (len(idx), df), float(stats.f.sf(qm / len(idx), len(idx), df))
    return qm, (len(idx),), float(stats.chi2.sf(qm, len(idx)))


def rma_mv(yi: Any, V: Any, mods: Any = None, *, random: Any = "~ 1 | study",
           struct: str = "UN", method: str = "REML", data: pd.DataFrame | None = None,
           level: float = 0.95, test: str = "z", intercept: bool = True,
           measure: str | None = None, study: Any = None) -> MultilevelResult:
    r"""Fit a multilevel or multivariate meta-analysis (metafor ``rma.mv``).

    Parameters
    ----------
    yi : array_like or str
        Effect sizes (or the name of a column of ``data``).
    V : array_like or str
        Sampling variances (k) or the known k x k within-study covariance matrix (or the name
        of a column of variances).
    mods : str, DataFrame or array_like, optional
        Moderators: an R-style formula evaluated on ``data`` (``"~ I(year - 1990)"``,
        ``"~ outcome - 1"``; :class:`analysis.formula.FormulaDesign`), a moderator frame
        (dummy-coded as :func:`analysis.regression.design_matrix`) or a numeric design
        without the intercept column (``intercept`` adds it).
    random : str or list of tuple
        ``"~ 1 | district/school"`` or ``[("district",), ("district", "school")]``: nested
        random intercepts, one variance per term (rows whose labels in all the tuple's
        columns agree share the effect). ``"~ outcome | trial"``: one random effect per
        level of ``outcome`` within ``trial`` with the covariance ``struct``.
    struct : {"UN"}
        Covariance of an ``inner | outer`` term: unstructured.
    method : {"REML", "ML"}
        Estimator of the variance components.
    data : pandas.DataFrame, optional
        The columns named by ``yi``, ``V``, ``mods`` and ``random``; kept on the result
        (:func:`analysis.robust.robust` finds ``cluster=`` there).
    level : float
        Confidence level.
    test : {"z", "t"}
        Normal tests, or t tests on k - p df with an F test of the moderators (metafor
        ``test="t"``).
    intercept : bool
        Add an intercept to a moderator frame or array (formulas say it themselves).
    measure : str, optional
        The effect measure, for display.
    study : array_like or str, optional
        Row labels (metafor ``slab``) naming omitted rows; default a ``study``, ``label`` or
        ``slab`` column of ``data``, else the 1-based row numbers.

    Returns
    -------
    MultilevelResult
        Fitted to the complete rows; its ``data`` holds those rows of ``data`` (their
        original index), so ``robust(cluster=...)`` finds the clusters of the rows used.

    Warns
    -----
    AnalysisWarning
        Rows with a missing (NaN) ``yi``, ``V`` or moderator value are omitted, as metafor's
        "Rows with NAs omitted from model fitting."; the warning names them. A row's ``V`` is
        missing when its variance is, or a covariance with a row whose variance is given
        (both rows of such a covariance go, metafor 3.8-1's rule).

    Raises
    ------
    ValueError
        Infinite ``yi`` or ``V``; a missing value in a column of ``random`` (metafor refuses
        these too); no complete row; and the argument checks.

    Notes
    -----
    Model and estimation in the module docstring; :math:`Q_E = e'V^{-1}e` of the fixed-effect
    GLS fit on k - p df; :math:`Q_M = b'\,\mathrm{Var}(b)^{-1}b` over the coefficients but the
    intercept (all of them without one), chi-square, or :math:`Q_M/m` as F on
    :math:`(m, k - p)` under ``test="t"``.
    """
    check_choice("method", method, ("REML", "ML"))
    check_choice("test", test, ("z", "t"))
    level = check_level(level)
    y = np.asarray(_column("yi", yi, data, None), dtype=float).reshape(-1)
    k = y.size
    if np.any(np.isinf(y)):
        raise ValueError("argument 'yi' has infinite values; use NaN for missing")
    Vm, v_missing = _covariance(V, data, k)
    X_frame, coding = _design(mods, data, k, intercept)
    terms, random_text, inner_levels = _terms(random, struct, data, k)
    keep = ~np.isnan(y) & ~v_missing & np.isfinite(X_frame.to_numpy(dtype=float)).all(axis=1)
    if not keep.any():
        raise ValueError("no row has yi, V and every moderator available (k = 0)")
    omit_missing(keep, study_labels(None, study, k, data), values="yi, V or moderator values",
                 analysis="the multilevel model")
    omitted = not keep.all()
    if omitted:
        rows = np.flatnonzero(keep)
        y, Vm = y[rows], Vm[np.ix_(rows, rows)]
        data = data.iloc[rows] if data is not None else None
        if isinstance(mods, str | pd.DataFrame | pd.Series):
            # coded again from the rows kept: a factor level seen only in omitted rows
            # gets no column (metafor drops it as a redundant predictor)
            X_frame, coding = _design(
                mods if isinstance(mods, str) else mods.iloc[rows],
                None if data is None else data.reset_index(drop=True), rows.size, intercept)
        else:
            X_frame = X_frame.iloc[rows].reset_index(drop=True)
        terms, random_text, inner_levels = _terms(random, struct, data, rows.size)
        k = rows.size
    X = X_frame.to_numpy(dtype=float)
    p = X.shape[1]
    if np.linalg.matrix_rank(X) < p:
        raise ValueError(f"the design of 'mods' ({list(X_frame.columns)}) is not of full "
                         "column rank" + (" on the rows kept after omitting those with "
                                          "missing values" if omitted else ""))
    if k <= p:
        raise ValueError(f"{k} estimates cannot fit {p} coefficients and random effects")
    fit = fit_mixed(y, X, Vm, terms, method)
    names = [str(c) for c in X_frame.columns]
    b, vb = fit.beta, fit.vcov
    se = np.sqrt(np.diag(vb))
    zval = b / se
    df = float(k - p) if test == "t" else float("nan")
    if test == "t":
        pval = 2 * stats.t.sf(np.abs(zval), df)
        crit = float(stats.t.ppf(0.5 + level / 2, df))
    else:
        pval = 2 * stats.norm.sf(np.abs(zval))
        crit = float(stats.norm.ppf(0.5 + level / 2))
    has_int = names[0] == "intrcpt"
    idx = list(range(1 if has_int and p > 1 else 0, p))
    qm, qm_df, qm_p = _wald(b, vb, idx, df)
    fe = fit_mixed(y, X, Vm, [], "FE")
    resid = y - X @ fe.beta
    qe = float(resid @ fe.weights @ resid)
    if inner_levels is None:
        sigma2 = tuple(float(t) for t in fit.theta)
        sigma2_names = tuple(t.name for t in terms)
        psi = None
    else:
        sigma2, sigma2_names = (), ()
        psi = pd.DataFrame(psi_from_theta(fit.theta, len(inner_levels)), index=inner_levels,
                           columns=inner_levels)
    series = {n: pd.Series(v, index=names) for n, v in
              (("coef", b), ("se", se), ("zval", zval), ("pvalue", pval),
               ("ci_low", b - crit * se), ("ci_high", b + crit * se))}
    return MultilevelResult(
        **series, vcov=pd.DataFrame(vb, index=names, columns=names), sigma2=sigma2,
        sigma2_names=sigma2_names, psi=psi, qe=qe, qe_df=k - p,
        qe_pvalue=float(stats.chi2.sf(qe, k - p)), qm=qm, qm_df=qm_df, qm_pvalue=qm_p,
        k=k, method=method, test=test, level=level, random=random_text,
        fit_stats=_fit_statistics(fit.loglik, k, p, fit.theta.size, method == "REML", Vm),
        yi=y, V=Vm, X=X_frame, design=coding, marginal=fit.sigma, data=data,
        term_groups=tuple(t.groups for t in terms), measure=measure,
    )
