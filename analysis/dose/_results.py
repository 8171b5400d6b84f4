"""Frozen result of :func:`analysis.dose.dose_response` (private module)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis._checks import as_float_array, check_level
from analysis.dose._basis import DoseBasis

__all__ = ["DoseResponseResult"]


@dataclass(frozen=True, slots=True)
class DoseResponseResult:
    r"""A fitted dose-response model.

    Attributes
    ----------
    coef, se, zval, pvalue, ci_low, ci_high : pandas.Series
        Coefficients (indexed by term name: ``"intrcpt"`` when an intercept is fitted, then
        the dose terms ``dose``, ``dose^2``, ``log_dose``, ``rcs1`` ..., or ``emax, ed50``)
        with Wald z-tests and intervals. For ``ed50`` the interval is computed on the log
        scale, :math:`\hat\theta \exp(\pm z\, se/\hat\theta)`.
    vcov : pandas.DataFrame
        Covariance matrix of the coefficients.
    tau2 : float
        First between-study variance component (the study-level ``sigma2`` of ``rma.mv``, or
        :math:`\Psi_{11}` for random coefficients); 0 for ``method="FE"``.
    sigma2 : tuple of float
        All variance components for random-intercept structures (``rma.mv``'s ``sigma2``),
        empty for random coefficients.
    psi : pandas.DataFrame or None
        Between-study covariance of the coefficients for random coefficients (two-stage,
        ``random="slopes"``), else ``None``.
    q, q_df, q_pvalue, i2 : float, int, float, float
        Residual heterogeneity: generalised Cochran Q under the fixed-effect model
        :math:`Q = (y - X b)' V^{-1} (y - X b)`, its degrees of freedom
        (:math:`k - p`; two-stage: :math:`p(n-1)`), p-value and :math:`I^2 = (Q - df)/Q`
        (percent, floored at 0), as dosresmeta's summary.
    qm, qm_df, qm_pvalue : float, int, float
        Wald test that all dose terms are 0.
    nonlinearity, nonlinearity_df, nonlinearity_pvalue : float, int, float
        Wald test that the non-linear terms (``dose^2``; spline terms 2, 3, ...) are 0; NaN
        for one-term models.
    loglik : float
        (Restricted) log-likelihood, as metafor's ``logLik``.
    k, n_studies, k_omitted : int
        Comparisons used, studies, rows dropped for missing values.
    model, method, stage, random : str
        Shape, estimator, ``"one"``/``"two"`` and the random-effects structure.
    intercept : bool
        Whether an intercept was fitted (it cancels in :meth:`predict` with a reference).
    basis : DoseBasis
        The dose transformation (knots, log shift).
    level : float
        Confidence level of the intervals.
    """

    coef: pd.Series
    se: pd.Series
    zval: pd.Series
    pvalue: pd.Series
    ci_low: pd.Series
    ci_high: pd.Series
    vcov: pd.DataFrame
    tau2: float
    sigma2: tuple[float, ...]
    psi: pd.DataFrame | None
    q: float
    q_df: int
    q_pvalue: float
    i2: float
    qm: float
    qm_df: int
    qm_pvalue: float
    nonlinearity: float
    nonlinearity_df: int
    nonlinearity_pvalue: float
    loglik: float
    k: int
    n_studies: int
    k_omitted: int
    model: str
    method: str
    stage: str
    random: str
    intercept: bool
    basis: DoseBasis
    level: float

    def _rows(self, dose: np.ndarray, reference: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Estimates and their standard errors of f(dose) - f(reference) (delta method)."""
        b = self.coef.to_numpy()
        vb = self.vcov.to_numpy()
        if self.model == "emax":
            emax, ed50 = b
            ref = 0.0 if reference is None else float(reference)
            g1 = dose / (ed50 + dose) - ref / (ed50 + ref)
            g2 = emax * (-dose / (ed50 + dose) ** 2 + ref / (ed50 + ref) ** 2)
            grad = np.column_stack([g1, g2])
            return emax * g1, np.sqrt(np.einsum("ij,jk,ik->i", grad, vb, grad))
        X = self.basis.matrix(dose)
        if reference is not None:
            X = X - self.basis.matrix(np.array([float(reference)]))
        if self.intercept:
            X = np.column_stack([np.full(dose.size, 0.0 if reference is not None else 1.0), X])
        return X @ b, np.sqrt(np.einsum("ij,jk,ik->i", X, vb, X))

    def predict(self, doses: object, reference: float | None = 0.0,
                level: float | None = None) -> pd.DataFrame:
        r"""Predicted effect at ``doses`` against ``reference`` with Wald intervals.

        :math:`\hat f(d) - \hat f(d_0) = (x(d) - x(d_0))'\hat\beta` with variance
        :math:`(x(d) - x(d_0))' \widehat{\operatorname{var}}(\hat\beta) (x(d) - x(d_0))`
        (for Emax the delta method), as dosresmeta's ``predict(xref=)`` and metafor's
        ``predict(newmods=)``.

        Parameters
        ----------
        doses : array_like
            Doses at which to predict.
        reference : float or None
            Reference dose (default 0: the effect against placebo). ``None`` gives the
            linear predictor itself (with the intercept when one was fitted), as
            ``predict.rma(newmods=)``.
        level : float, optional
            Confidence level (default: the model's).

        Returns
        -------
        pandas.DataFrame
            Columns ``dose, reference, estimate, se, ci_low, ci_high`` (log scale for ratio
            measures; :func:`analysis.results.back_transform` exponentiates).

        Notes
        -----
        Checked against metafor ``predict(rma.mv(...), newmods=)`` in the reference cases.
        """
        lev = self.level if level is None else check_level(level)
        dose = as_float_array("doses", doses)
        est, se = self._rows(dose, reference)
        crit = stats.norm.ppf(0.5 + lev / 2)
        return pd.DataFrame({
            "dose": dose,
            "reference": np.nan if reference is None else float(reference),
            "estimate": est, "se": se, "ci_low": est - crit * se, "ci_high": est + crit * se,
        })

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient, with the model-level statistics repeated on each row."""
        frame = pd.DataFrame({
            "term": self.coef.index.to_list(), "estimate": self.coef.to_numpy(),
            "se": self.se.to_numpy(), "zval": self.zval.to_numpy(),
            "pvalue": self.pvalue.to_numpy(), "ci_low": self.ci_low.to_numpy(),
            "ci_high": self.ci_high.to_numpy(),
        })
        for name in ("tau2", "q", "q_df", "q_pvalue", "i2", "qm", "qm_df", "qm_pvalue",
                     "nonlinearity", "nonlinearity_pvalue", "loglik", "k", "n_studies",
                     "model", "method", "stage", "random", "level"):
            frame[name] = getattr(self, name)
        return frame
