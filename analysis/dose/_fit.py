"""Data preparation, sparse-data checks and the one-/two-stage linear fits (private)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis._checks import as_float_array
from analysis._inputs import omit_missing
from analysis.dose._basis import DoseBasis
from analysis.dose._common import SparseDataError
from analysis.dose._engine import CovarianceTerm, MixedFit, fit_mixed, psi_from_theta
from analysis.results import DoseResponseResult

__all__ = ["Data", "fit_linear_model", "prepare", "result_from_fit"]

SHAPES = {"linear": "linear model", "log": "log-dose model", "quadratic": "quadratic model",
          "spline": "restricted cubic spline", "emax": "Emax model"}


@dataclass(frozen=True, slots=True)
class Data:
    """Comparisons after dropping missing values and the reference rows."""

    y: np.ndarray
    V: np.ndarray
    dose: np.ndarray
    ref_dose: np.ndarray
    study: np.ndarray
    all_doses: np.ndarray
    k_omitted: int

    @property
    def k(self) -> int:
        """Number of comparisons."""
        return int(self.y.size)

    @property
    def n_studies(self) -> int:
        """Number of studies."""
        return int(pd.unique(self.study).size)


def _as_matrix(V_or_vi: object, k: int) -> np.ndarray:
    arr = as_float_array("V_or_vi", V_or_vi, ndim=(1, 2))
    if arr.ndim == 1:
        if arr.size != k:
            raise ValueError(f"argument 'V_or_vi' has {arr.size} variances for {k} rows of 'yi'")
        return np.diag(arr)
    if arr.shape != (k, k):
        raise ValueError(f"argument 'V_or_vi' is a {arr.shape} matrix; expected ({k}, {k})")
    if not np.allclose(arr, arr.T, equal_nan=True):
        raise ValueError("argument 'V_or_vi' must be a symmetric matrix")
    return arr


def prepare(yi: object, V_or_vi: object, dose: object, study: object | None,
            reference_dose: float) -> Data:
    """Check and align the inputs; split off reference rows (``V[i, i] == 0``).

    A study's reference row (at most one) gives the reference dose of the study's other
    rows; rows of studies without one are contrasts against ``reference_dose``. Rows with a
    missing ``yi``, variance or dose are dropped (counted in ``k_omitted``) with an
    :class:`~analysis.errors.AnalysisWarning` naming them (study and 0-based row).
    """
    y = as_float_array("yi", yi)
    k = y.size
    V = _as_matrix(V_or_vi, k)
    d = as_float_array("dose", dose)
    if d.size != k:
        raise ValueError(f"argument 'dose' has {d.size} values for {k} rows of 'yi'")
    groups = np.arange(k) if study is None else np.asarray(study, dtype=object).reshape(-1)
    if groups.size != k:
        raise ValueError(f"argument 'study' has {groups.size} values for {k} rows of 'yi'")
    if np.any(pd.isna(groups)):
        raise ValueError("argument 'study' has missing values")
    diag = np.diag(V)
    row_names = None if study is None else [f"{g} (row {i})" for i, g in enumerate(groups)]
    keep = omit_missing(np.isfinite(y) & np.isfinite(diag) & np.isfinite(d), row_names,
                        values="yi, variance or dose", analysis="the dose-response model")
    if np.any(diag[keep] < 0):
        raise ValueError("argument 'V_or_vi' has negative variances")
    is_ref = keep & (diag == 0)
    ref_dose = np.full(k, float(reference_dose))
    for g in pd.unique(groups[is_ref]):
        rows = is_ref & (groups == g)
        if rows.sum() > 1:
            raise ValueError(f"study {g!r} has {rows.sum()} reference rows (variance 0); "
                             "allowed: one")
        ref_dose[groups == g] = d[rows][0]
    used = keep & ~is_ref
    sub = V[np.ix_(used, used)]
    if np.any(~np.isfinite(sub)):
        raise ValueError("argument 'V_or_vi' has missing covariances among the used rows")
    return Data(y[used], sub, d[used], ref_dose[used], groups[used], d[keep],
                int(np.sum(~keep)))


def design(basis: DoseBasis, data: Data, intercept: bool) -> np.ndarray:
    """Dose terms centred at each row's reference dose, plus an intercept column if asked."""
    X = basis.matrix(data.dose) - basis.matrix(data.ref_dose, "reference_dose")
    if intercept:
        X = np.column_stack([np.ones(data.k), X])
    return X


def sparse_message(data: Data, what: str, need: str) -> str:
    """Sparse-data message: what the data offer, what the model needs."""
    n_doses = np.unique(data.dose).size
    return (f"{data.k} comparisons from {data.n_studies} studies with {n_doses} distinct "
            f"doses: {what} needs {need}")


def check_identifiable(X: np.ndarray, data: Data, what: str, method: str) -> None:
    """Raise SparseDataError when the design cannot support the model."""
    p = X.shape[1]
    # Random effects: two comparisons more than coefficients (heterogeneity and one residual
    # degree of freedom); a curve (p > 1) needs one more, so that its shape is not fitted
    # exactly through the points (the example: a spline needs at least 5).
    need_k = p if method == "FE" else p + 2 + (p > 1)
    if data.k < need_k or np.linalg.matrix_rank(X) < p:
        extra = "" if method == "FE" else (
            " (heterogeneity and a residual degree of freedom" + (" for a curve)" if p > 1
                                                                  else ")"))
        raise SparseDataError(sparse_message(
            data, what, f"at least {need_k} comparisons{extra} and {p} distinct doses other "
            "than the reference"))


def one_stage_terms(random: str, X_dose: np.ndarray, data: Data) -> list[CovarianceTerm]:
    """Random-effects terms of the one-stage model (``random`` of dose_response)."""
    ones = np.ones((data.k, 1))
    if random == "study":
        return [CovarianceTerm("study", ones, data.study)]
    if random == "study/comparison":
        return [CovarianceTerm("study", ones, data.study),
                CovarianceTerm("comparison", ones, np.arange(data.k))]
    return [CovarianceTerm("slopes", X_dose, data.study)]


def two_stage(X: np.ndarray, data: Data, what: str) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray, np.ndarray]:
    r"""First stage: per-study GLS :math:`b_s = (X_s'S_s^{-1}X_s)^{-1}X_s'S_s^{-1}y_s`.

    Returns the stacked ``b`` (n p), block-diagonal covariance, stacked design (identity
    blocks) and study labels.
    """
    p = X.shape[1]
    studies = pd.unique(data.study)
    bad = []
    b_all, S_blocks = [], []
    for s in studies:
        rows = data.study == s
        Xs = X[rows]
        if rows.sum() < p or np.linalg.matrix_rank(Xs) < p:
            bad.append(str(s))
            continue
        W = np.linalg.inv(data.V[np.ix_(rows, rows)])
        vb = np.linalg.inv(Xs.T @ W @ Xs)
        b_all.append(vb @ Xs.T @ W @ data.y[rows])
        S_blocks.append(vb)
    if bad:
        raise SparseDataError(
            f"two-stage {what} ({p} coefficients) needs at least {p} non-reference doses in "
            f"every study; not estimable in: {', '.join(bad)} (use stage='one')")
    n = len(studies)
    S = np.zeros((n * p, n * p))
    for i, block in enumerate(S_blocks):
        S[i * p:(i + 1) * p, i * p:(i + 1) * p] = block
    return (np.concatenate(b_all), S, np.tile(np.eye(p), (n, 1)),
            np.repeat(np.asarray(studies, dtype=object), p))


def fit_linear_model(X: np.ndarray, X_dose: np.ndarray, data: Data, stage: str, method: str,
                     random: str, what: str) -> tuple[MixedFit, np.ndarray, np.ndarray,
                                                      np.ndarray, list[CovarianceTerm]]:
    """Fit the one- or two-stage model; returns the fit and the (y, X, V) actually used."""
    if stage == "two":
        y, V, Xs, labels = two_stage(X, data, what)
        if method != "FE" and pd.unique(labels).size < 2:
            raise SparseDataError(sparse_message(
                data, f"a two-stage random-effects {what}", "at least 2 studies"))
        terms = [CovarianceTerm("coefficients", Xs, labels)]
        return fit_mixed(y, Xs, V, terms, method), y, Xs, V, terms
    check_identifiable(X, data, what, method)
    terms = [] if method == "FE" else one_stage_terms(random, X_dose, data)
    return fit_mixed(data.y, X, data.V, terms, method), data.y, X, data.V, terms


def heterogeneity(y: np.ndarray, X: np.ndarray, V: np.ndarray) -> tuple[float, int, float,
                                                                        float]:
    """Generalised Cochran Q of the fixed-effect fit, df, p-value and I² (percent)."""
    fe = fit_mixed(y, X, V, [], "FE")
    resid = y - X @ fe.beta
    q = float(resid @ fe.weights @ resid)
    df = int(y.size - X.shape[1])
    p = float(stats.chi2.sf(q, df)) if df > 0 else float("nan")
    i2 = max(0.0, (q - df) / q) * 100 if q > 0 else 0.0
    return q, df, p, i2


def wald(b: np.ndarray, vb: np.ndarray, idx: list[int]) -> tuple[float, int, float]:
    """Wald chi-square test that the coefficients ``idx`` are all 0."""
    if not idx:
        return float("nan"), 0, float("nan")
    sub = b[idx]
    stat = float(sub @ np.linalg.solve(vb[np.ix_(idx, idx)], sub))
    return stat, len(idx), float(stats.chi2.sf(stat, len(idx)))


def result_from_fit(*, fit: MixedFit, names: list[str], het: tuple[float, int, float, float],
                    terms: list[CovarianceTerm], data: Data, basis: DoseBasis, model: str,
                    method: str, stage: str, random: str, intercept: bool, level: float,
                    vcov: np.ndarray | None = None,
                    ci: tuple[np.ndarray, np.ndarray] | None = None) -> DoseResponseResult:
    """Assemble the frozen result."""
    b = fit.beta
    vb = fit.vcov if vcov is None else vcov
    se = np.sqrt(np.diag(vb))
    z = b / se
    crit = stats.norm.ppf(0.5 + level / 2)
    low, high = (b - crit * se, b + crit * se) if ci is None else ci
    sigma2: tuple[float, ...] = ()
    psi = None
    if terms and terms[0].q > 1:
        q = terms[0].q
        labels = names[1:] if intercept else names
        psi = pd.DataFrame(psi_from_theta(fit.theta, q), index=labels, columns=labels)
        tau2 = float(psi.to_numpy(float)[0, 0])
    else:
        sigma2 = tuple(float(t) for t in fit.theta)
        tau2 = sigma2[0] if sigma2 else 0.0
    dose_idx = list(range(1 if intercept else 0, len(names)))
    qm = wald(b, vb, dose_idx) if model != "emax" else wald(b, vb, [0])
    offset = 1 if intercept else 0
    nl = wald(b, vb, [offset + i for i in basis.nonlinear_terms])
    series = {name: pd.Series(vals, index=names) for name, vals in
              (("coef", b), ("se", se), ("zval", z), ("pvalue", 2 * stats.norm.sf(np.abs(z))),
               ("ci_low", low), ("ci_high", high))}
    return DoseResponseResult(
        **series, vcov=pd.DataFrame(vb, index=names, columns=names), tau2=tau2, sigma2=sigma2,
        psi=psi, q=het[0], q_df=het[1], q_pvalue=het[2], i2=het[3], qm=qm[0], qm_df=qm[1],
        qm_pvalue=qm[2], nonlinearity=nl[0], nonlinearity_df=nl[1], nonlinearity_pvalue=nl[2],
        loglik=fit.loglik, k=data.k, n_studies=data.n_studies, k_omitted=data.k_omitted,
        model=model, method=method, stage=stage, random=random, intercept=intercept,
        basis=basis, level=level,
    )
