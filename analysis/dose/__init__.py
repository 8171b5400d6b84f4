r"""Dose-response meta-analysis across and within trials.

Public functions: :func:`dose_response` (linear, log, quadratic, restricted cubic spline and
Emax curves; one-stage or two-stage; REML, ML or fixed effect), :func:`gl_covariance`
(Greenland-Longnecker covariance of log relative risks sharing a reference),
:func:`md_covariance`, :func:`gl_block_covariance` (the block-diagonal matrix of a long
data set), :func:`dose_class_subgroups` (subgroups by dose class with the test for
differences) and :func:`dose_classes`.

Two kinds of data fit the same call:

- *across trials*: one row per treatment-vs-control comparison (``analysis.contrasts``);
  the dose of the treatment arm is compared with ``reference_dose`` (0, placebo); multi-arm
  trials enter with the covariance implied by the shared control
  (``contrasts(multiarm="correlated")`` + ``shared_control_covariance``);
- *within trials* (dosresmeta's long format): one row per dose level, the study's reference
  row has variance 0 and gives the reference dose of the study's other rows; the
  within-study covariance comes from :func:`gl_covariance` (or :func:`md_covariance`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis._checks import as_float_array, check_choice, check_level
from analysis.dose._basis import MODELS, DoseBasis, check_log_doses, make_basis
from analysis.dose._classes import (
    DEFAULT_CUTS,
    DEFAULT_LABELS,
    DoseClassResult,
    dose_class_subgroups,
    dose_classes,
)
from analysis.dose._common import SparseDataError
from analysis.dose._emax import fit_emax
from analysis.dose._fit import (
    SHAPES,
    design,
    fit_linear_model,
    heterogeneity,
    prepare,
    result_from_fit,
)
from analysis.dose._gl import GL_TYPES, check_gl_variances, gl_covariance, md_covariance
from analysis.results import DoseResponseResult

__all__ = [
    "DEFAULT_CUTS",
    "DEFAULT_LABELS",
    "GL_TYPES",
    "DoseBasis",
    "DoseClassResult",
    "DoseResponseResult",
    "SparseDataError",
    "dose_class_subgroups",
    "dose_classes",
    "dose_response",
    "gl_block_covariance",
    "gl_covariance",
    "md_covariance",
]

STAGES = ("one", "two")
METHODS = ("REML", "ML", "FE")
RANDOM = ("study", "study/comparison", "slopes")


def gl_block_covariance(cases: object, n: object, yi: object, vi: object, study: object,
                        type: str | Sequence[str] = "cc") -> np.ndarray:
    """Block-diagonal covariance of a long dose-response data set (reference rows kept as 0).

    Parameters
    ----------
    cases, n, yi, vi : array_like
        As :func:`gl_covariance`, for all studies stacked (one row per dose level).
    study : array_like
        Study label of each row; rows of a study need not be contiguous.
    type : str or sequence of str
        Design of all studies, or one value per row (constant within a study).

    Returns
    -------
    numpy.ndarray
        ``k x k`` matrix: :func:`gl_covariance` of each study on its non-reference rows, 0 on
        the reference rows, ready for :func:`dose_response` (``V_or_vi``).

    Notes
    -----
    Checked through :func:`gl_covariance` (dosresmeta's published ``covar.logrr``).
    """
    arrays = [as_float_array(name, value) for name, value in
              (("cases", cases), ("n", n), ("yi", yi), ("vi", vi))]
    groups = np.asarray(study, dtype=object).reshape(-1)
    k = arrays[0].size
    kinds = np.full(k, type, dtype=object) if isinstance(type, str) else np.asarray(type, object)
    if groups.size == k:
        check_gl_variances(arrays[3], [f"{g} (row {i})" for i, g in enumerate(groups)])
    V = np.zeros((k, k))
    for g in pd.unique(groups):
        rows = np.flatnonzero(groups == g)
        vi_g = np.nan_to_num(arrays[3][rows])
        others = rows[vi_g != 0]
        cases_g, n_g, yi_g = (a[rows] for a in arrays[:3])
        S = gl_covariance(cases_g, n_g, yi_g, vi_g, type=str(kinds[rows[0]]))
        V[np.ix_(others, others)] = S
    return V


def _check_options(model: str, stage: str, method: str, random: str, intercept: bool,
                   level: float) -> float:
    check_choice("model", model, MODELS)
    check_choice("stage", stage, STAGES)
    check_choice("method", method, METHODS)
    check_choice("random", random, RANDOM)
    if model == "emax" and (stage == "two" or intercept):
        raise ValueError("model 'emax' is fitted one-stage without intercept; got "
                         f"stage={stage!r}, intercept={intercept!r}")
    if stage == "two" and intercept:
        raise ValueError("argument 'intercept' = True is not allowed with stage='two' (the "
                         "within-study curves are anchored at each study's reference dose)")
    return check_level(level)


def dose_response(
    yi: object,
    V_or_vi: object,
    dose: object,
    study: object | None = None,
    model: str = "linear",
    stage: str = "one",
    method: str = "REML",
    *,
    random: str = "study",
    intercept: bool = False,
    knots: Sequence[float] | int | None = None,
    knot_percentiles: Sequence[float] | None = None,
    log_shift: float = 1.0,
    reference_dose: float = 0.0,
    ed50_bounds: tuple[float, float] | None = None,
    level: float = 0.95,
) -> DoseResponseResult:
    r"""Fit a dose-response meta-analysis.

    One-stage model (``stage="one"``, all comparisons in one model):

    .. math::

       y = (X(d) - X(d_0))\beta + u + e, \quad e \sim N(0, V), \quad u \sim N(0, \Sigma_u),

    with :math:`X(d)` the dose terms of ``model`` (see :class:`DoseBasis`), :math:`d_0` the
    reference dose of each row, and ``random`` choosing :math:`\Sigma_u`:

    ``"study"``
        a random intercept per study, :math:`\sigma^2` on every pair of comparisons of the
        same study: metafor ``rma.mv(yi, V, mods = ~ X - 1, random = ~ 1 | study)``;
    ``"study/comparison"``
        plus an independent effect per comparison (``random = ~ 1 | study/comparison``);
    ``"slopes"``
        random dose coefficients :math:`b_s \sim N(0, \Psi)` (unstructured), so that
        :math:`\Sigma_{u,s} = X_s \Psi X_s'`: dosresmeta's one-stage model.

    Two-stage model (``stage="two"``, dosresmeta's default): per-study GLS estimates
    :math:`b_s` with covariance :math:`S_s`, then the multivariate random-effects model
    :math:`b_s \sim N(\beta, S_s + \Psi)` (mixmeta; metafor ``rma.mv(b, S, mods = ~ coef - 1,
    random = ~ coef | study, struct = "UN")``). Needs every study to estimate every
    coefficient (at least ``p`` non-reference doses).

    Parameters
    ----------
    yi : array_like
        Effects (log OR/RR, MD, ...) of each comparison / dose level; 0 at reference rows.
    V_or_vi : array_like
        Sampling variances (1-D) or the ``k x k`` within-study covariance matrix (block
        diagonal by study: ``shared_control_covariance`` or :func:`gl_block_covariance`).
        Rows with variance 0 are the reference rows of their study.
    dose : array_like
        Dose of each row, in any metric the caller chooses (target, maximum, mean achieved).
    study : array_like, optional
        Study label of each row (default: every row its own study).
    model : {"linear", "log", "quadratic", "spline", "emax"}
        Shape of the curve (see :class:`DoseBasis`; Emax:
        :math:`E(d) = E_{max} d / (ED_{50} + d)`).
    stage : {"one", "two"}
        One-stage (pooled) or two-stage model.
    method : {"REML", "ML", "FE"}
        Estimator of the between-study (co)variance; ``"FE"`` sets it to 0.
    random : {"study", "study/comparison", "slopes"}
        Random-effects structure of the one-stage model (ignored for two-stage: random
        coefficients).
    intercept : bool
        Add an intercept (``rma.mv`` default ``mods = ~ X``). Default False: the curve is 0
        at the reference dose (a contrast against placebo at dose 0 is 0), as dosresmeta.
    knots : int or sequence of float, optional
        Spline knots or their number (3-7; default 3) at Harrell's default percentiles
        (3 knots: 10th, 50th, 90th) of all doses given (reference rows included), computed
        as R's ``quantile`` (type 7).
    knot_percentiles : sequence of float, optional
        Percentiles (as proportions) for the knots, e.g. ``(0.05, 0.35, 0.65, 0.95)``.
    log_shift : float
        ``log`` model: :math:`x = \log(d + c) - \log c` (default :math:`c = 1`,
        ``log1p(d)``); ``0`` gives :math:`\log d` (doses and reference must be > 0).
    reference_dose : float
        Reference dose of rows whose study has no reference row (default 0: placebo).
    ed50_bounds : (float, float), optional
        Search interval for :math:`ED_{50}` (default: smallest positive dose / 100 to
        largest dose x 100).
    level : float
        Confidence level (default 0.95).

    Returns
    -------
    DoseResponseResult
        ``coef, se, vcov, tau2, sigma2, psi``, heterogeneity ``q, q_df, q_pvalue, i2``, Wald
        tests of the dose terms (``qm``) and of non-linearity, ``k, n_studies``, and
        ``predict(doses, reference=0, level=0.95)``.

    Raises
    ------
    SparseDataError
        (a ``ValueError``) when the data cannot support the model, e.g. fewer comparisons
        than coefficients + 2 under a random-effects model, too few distinct doses for the
        knots, or (two-stage) a study that cannot estimate every coefficient.
    analysis.errors.ConvergenceError
        When the estimator does not converge (Emax: ED50 at a search bound).

    Notes
    -----
    Checked against metafor 3.8 ``rma.mv`` (REML and ML): linear, log, quadratic and spline
    designs with random intercepts (``~ 1 | study``) and nested intercepts
    (``~ 1 | study/comparison``) on generated multi-arm data and the shipped trials (relative
    error < 1e-7); one-stage random slopes (``struct = "GEN"``, < 1e-6 for coefficients and SEs)
    and two-stage ``struct = "UN"`` (< 5e-6; metafor the less converged) on generated
    Greenland-Longnecker data; and against dosresmeta's published ``cc_ex`` slope 0.0454
    (SE 0.0207) of Greenland & Longnecker (1992).

    References
    ----------
    Greenland S, Longnecker MP (1992). Am J Epidemiol 135:1301-1309. Orsini N, Li R, Wolk A,
    Khudyakov P, Spiegelman D (2012). Am J Epidemiol 175:66-73. Crippa A, Discacciati A,
    Bottai M, Spiegelman D, Orsini N (2019). One-stage dose-response meta-analysis for
    aggregated data. Stat Methods Med Res 28:1579-1596. Viechtbauer W (2010). J Stat Softw
    36(3).
    """
    lev = _check_options(model, stage, method, random, intercept, level)
    if model == "log":  # named by input row, before missing rows are dropped
        doses = as_float_array("dose", dose)
        groups = None if study is None else np.asarray(study, dtype=object).reshape(-1)
        rows = (None if groups is None or groups.size != doses.size
                else [f"{g} (row {i})" for i, g in enumerate(groups)])
        check_log_doses("dose", doses, float(log_shift), rows)
    data = prepare(yi, V_or_vi, dose, study, float(reference_dose))
    if model == "log" and np.any(data.ref_dose == float(reference_dose)):  # some study uses it
        check_log_doses("reference_dose", np.array([float(reference_dose)]), float(log_shift))
    if data.k == 0:
        given = "no comparisons given" if data.k_omitted == 0 else (
            f"0 of {data.k_omitted} comparisons have a non-missing effect, variance and dose "
            "(is the dose column empty for these studies?)")
        raise SparseDataError(f"{given}: no dose-response model can be fitted")
    if model == "emax":
        fit, vcov, terms, (q, df) = fit_emax(data, method, random, ed50_bounds)
        from scipy import stats

        het = (q, df, float(stats.chi2.sf(q, df)) if df > 0 else float("nan"),
               max(0.0, (q - df) / q) * 100 if q > 0 else 0.0)
        b, se = fit.beta, np.sqrt(np.diag(vcov))
        crit = stats.norm.ppf(0.5 + lev / 2)
        low = np.array([b[0] - crit * se[0], b[1] * np.exp(-crit * se[1] / b[1])])
        high = np.array([b[0] + crit * se[0], b[1] * np.exp(crit * se[1] / b[1])])
        return result_from_fit(fit=fit, names=["emax", "ed50"], het=het,
                               terms=[] if method == "FE" else terms, data=data,
                               basis=DoseBasis("emax"), model=model, method=method,
                               stage=stage, random=random, intercept=False, level=lev,
                               vcov=vcov, ci=(low, high))
    try:
        basis = make_basis(model, data.all_doses, knots=knots,
                           knot_percentiles=knot_percentiles, log_shift=log_shift)
    except SparseDataError as exc:
        raise SparseDataError(f"{data.k} comparisons from {data.n_studies} studies: {exc}") from exc
    X = design(basis, data, intercept)
    X_dose = X[:, 1:] if intercept else X
    what = SHAPES[model] + (f" with {len(basis.knots)} knots" if model == "spline" else "")
    what += f" ({X.shape[1]} coefficients) fitted by {method}"
    fit, y_used, X_used, V_used, terms = fit_linear_model(X, X_dose, data, stage, method,
                                                          random, what)
    names = (["intrcpt"] if intercept else []) + basis.names
    return result_from_fit(
        fit=fit, names=names, het=heterogeneity(y_used, X_used, V_used),
        terms=[] if method == "FE" else terms, data=data, basis=basis, model=model,
        method=method, stage=stage, random="coefficients" if stage == "two" else random,
        intercept=intercept, level=lev,
    )

