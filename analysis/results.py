"""Frozen result objects returned by the statistical engine.

Every result is a ``dataclass(frozen=True, slots=True)`` with named fields (never tuples) and a
``to_frame()`` method returning a tidy DataFrame with fixed column names (the confidence level
is a column, never part of a name). Ratio measures (OR, RR, HR) are estimated on the log scale;
:func:`back_transform` exponentiates the estimate and interval columns for display.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

from analysis._checks import as_float_array, check_level
from analysis.measures import RATIO_MEASURES, measure_info, to_display

if TYPE_CHECKING:  # pragma: no cover - the basis is only stored and called, never built here
    from analysis.dose._basis import DoseBasis
    from analysis.formula import FormulaDesign, FrameDesign
    from analysis.model_comparison import FitStatistics

__all__ = [
    "RATIO_MEASURES",
    "BatchPoolResult",
    "CumulativeResult",
    "DoseResponseResult",
    "EggerResult",
    "LeaveOneOutResult",
    "MantelHaenszelResult",
    "MetaRegressionResult",
    "PoolResult",
    "SubgroupResult",
    "TrialSequentialResult",
    "TrimFillResult",
    "back_transform",
]


#: Columns exponentiated by :func:`back_transform`.
INTERVAL_COLUMNS = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")


def back_transform(
    frame: pd.DataFrame, columns: Sequence[str] = INTERVAL_COLUMNS, *,
    measure: str | None = None, ni: object = None,
) -> pd.DataFrame:
    """Back-transform the estimate and interval columns to the measure's scale for display.

    Parameters
    ----------
    frame : pandas.DataFrame
        A tidy frame from a ``to_frame()`` method (or any frame with those columns).
    columns : sequence of str
        Columns to transform when present; ``se``, ``zval`` and the heterogeneity
        columns are left on the analysis scale, as metafor's ``predict(res, transf=...)``.
    measure : str, optional
        The measure code; else the frame's single ``measure`` value. Without either, the
        columns are exponentiated (the ratio measures' ``exp``, as before the registry).
    ni : array_like or float, optional
        Sample sizes for PFT (harmonic mean, metafor ``transf.ipft.hm``) or one n
        (``transf.ipft``); else the frame's ``ni`` column when it has one.

    Returns
    -------
    pandas.DataFrame
        A copy with the measure's back-transformation (:func:`analysis.measures.to_display`:
        ``exp`` for ratios and PLN, inverse logit for PLO, ``tanh`` for ZCOR, Miller's
        inverse for PFT, ``sin^2`` for PAS, none for differences) applied to the listed
        columns that are present.

    Notes
    -----
    ``exp(ci_low), exp(ci_high)`` is the usual back-transformed interval; checked against the
    exponentiated metafor values of ``predict(rma(...), transf=exp)`` for BCG (R-4), and the
    other transformations against ``predict(rma(...), transf=...)`` of metafor 3.8-1 on the
    measures fixture (1e-10).
    """
    if measure is None and "measure" in frame.columns:
        found = frame["measure"].dropna().unique()
        measure = str(found[0]) if len(found) == 1 else None
    if ni is None and "ni" in frame.columns:
        ni = frame["ni"].to_numpy(dtype=float)
    known = measure is not None and measure_info(measure) is not None
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            values = out[column].astype(float)
            out[column] = to_display(values, measure, ni) if known else np.exp(values)
    return out


#: Per-study fields a result keeps for plotting; never columns of the one-row ``to_frame()``.
DATA_FIELDS = ("weights", "yi", "vi", "study", "ni")


def _scalar_row(obj: object, skip: Sequence[str] = ()) -> dict[str, object]:
    row: dict[str, object] = {}
    for f in fields(obj):  # type: ignore[arg-type]
        if f.name in skip:
            continue
        value = getattr(obj, f.name)
        if isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        row[f.name] = value
    return row


def t_based(ci_method: str, df: float = 1.0) -> bool:
    """Return True when the statistic is a t (Knapp-Hartung) statistic with finite ``df``."""
    return str(ci_method).startswith("hksj") and bool(np.isfinite(df))


def check_exponentiate(measure: str | None) -> None:
    """Raise ValueError when ``exponentiate=True`` is asked of a known non-ratio measure."""
    if measure is not None and str(measure).upper() not in RATIO_MEASURES:
        raise ValueError(
            f"to_frame(exponentiate=True) is not allowed for measure {measure!r}: it is not "
            f"estimated on the log scale; exponentiate only {sorted(RATIO_MEASURES)}"
        )


def metafor_frame(frame: pd.DataFrame, *, t: bool, exponentiate: bool = False,
                  measure: str | None = None) -> pd.DataFrame:
    """Name the statistic and scale columns of a tidy frame as metafor does.

    The test statistic is ``tval`` under a t test (``df`` is then its degrees of freedom)
    and ``zval`` under a z test. With ``exponentiate=True`` the estimate and interval
    columns are exponentiated (:func:`back_transform`) and ``se`` (still on the log scale)
    is renamed ``se_log``, so no unlabelled log-scale column sits beside natural-scale ones.

    Raises
    ------
    ValueError
        ``exponentiate=True`` with a measure that is not a ratio measure.
    """
    out = frame.rename(columns={"zval": "tval"}) if t else frame
    if exponentiate:
        check_exponentiate(measure)
        out = back_transform(out).rename(columns={"se": "se_log"})
    return out


class _Printable:
    """Results print as their :meth:`summary`: ``str(result) == result.summary()``."""

    __slots__ = ()

    def summary(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.summary()


class _FitStatistics:
    """metafor's ``fitstats()`` as properties, for results that give ``_fit_statistics()``.

    ``loglik`` is REML's restricted log-likelihood for REML fits, else ML's; AIC, BIC and
    AICc count the coefficients plus tau² unless FE; BIC uses log k (REML: log(k - p)).
    Checked against metafor 3.8-1 ``fitstats()`` under ML, REML and FE (rtol 1e-6).
    """

    __slots__ = ()

    def _fit_statistics(self) -> FitStatistics:
        raise NotImplementedError

    @property
    def loglik(self) -> float:
        """Log-likelihood as metafor's ``logLik(res)`` (REML for REML fits, else ML)."""
        return self._fit_statistics().loglik

    @property
    def deviance(self) -> float:
        """Deviance as metafor's ``deviance(res)``."""
        return self._fit_statistics().deviance

    @property
    def aic(self) -> float:
        """AIC as metafor's ``AIC(res)``."""
        return self._fit_statistics().aic

    @property
    def bic(self) -> float:
        """BIC as metafor's ``BIC(res)``."""
        return self._fit_statistics().bic

    @property
    def aicc(self) -> float:
        """AICc as metafor's ``fitstats(res)``."""
        return self._fit_statistics().aicc


@dataclass(frozen=True, slots=True)
class PoolResult(_FitStatistics, _Printable):
    """Result of :func:`analysis.pooling.pool` (one meta-analysis).

    Attributes mirror metafor's ``rma.uni`` object, ``confint()`` (Q-profile) and
    ``predict()``; ``zval`` is a t statistic and ``df`` its degrees of freedom when
    ``ci_method == "hksj"``; ``weights`` are percent weights per input study (NaN for
    studies omitted because ``yi`` or ``vi`` was missing). ``yi``, ``vi`` and ``study`` are
    the data it was fitted to, one entry per input study (omitted studies included, NaN);
    ``ni`` their sample sizes when known (metafor's ``ni``; the PFT back-transformation uses
    their harmonic mean).
    ``tau2_ci_truncated`` is True when the upper Q-profile limit of tau² (and with it those of
    I² and H²) was cut at ``control tau2_max``: the limit is then only a lower bound, shown
    as ">x" by :meth:`summary` and :meth:`confint`.
    """

    estimate: float
    se: float
    zval: float
    pvalue: float
    ci_low: float
    ci_high: float
    tau2: float
    se_tau2: float
    tau2_ci_low: float
    tau2_ci_high: float
    i2: float
    i2_ci_low: float
    i2_ci_high: float
    h2: float
    h2_ci_low: float
    h2_ci_high: float
    q: float
    q_df: int
    q_pvalue: float
    pi_low: float
    pi_high: float
    k: int
    method: str
    ci_method: str
    level: float
    weights: np.ndarray
    df: float = float("nan")
    convention: str = "metafor"
    measure: str | None = None
    yi: np.ndarray | None = None
    vi: np.ndarray | None = None
    study: tuple[str, ...] | None = None
    tau2_ci_truncated: bool = False
    ni: np.ndarray | None = None

    @property
    def tau(self) -> float:
        """Square root of ``tau2``."""
        return float(np.sqrt(self.tau2))

    def summary(self) -> str:
        """Return a readable summary (model, heterogeneity, estimate, intervals)."""
        from analysis.summaries import summarise_pool

        return summarise_pool(self)

    def to_frame(self, *, exponentiate: bool = False) -> pd.DataFrame:
        """Return a one-row tidy DataFrame (without ``weights``).

        The statistic column is ``tval`` under Knapp-Hartung (``ci_method`` ``"hksj"`` or
        ``"hksj_adhoc"``; ``df`` its degrees of freedom) and ``zval`` otherwise (metafor's
        names).

        Parameters
        ----------
        exponentiate : bool
            Exponentiate ``estimate``, ``ci_low``, ``ci_high``, ``pi_low``, ``pi_high`` (for
            ratio measures on the log scale); ``se`` stays on the log scale and is renamed
            ``se_log``. A non-ratio ``measure`` (MD, SMD, RD ...) raises ValueError.
        """
        frame = pd.DataFrame([_scalar_row(self, skip=DATA_FIELDS)])
        return metafor_frame(frame, t=t_based(self.ci_method, self.df),
                             exponentiate=exponentiate, measure=self.measure)

    # -- metafor's fitstats(), confint() and predict() of the pooled model -------------------

    def _fit_statistics(self) -> FitStatistics:
        from analysis.model_comparison import fit_statistics

        if self.yi is None or self.vi is None:
            raise ValueError("this result keeps no yi/vi; refit with pool()")
        keep = np.isfinite(self.yi) & np.isfinite(self.vi)
        return fit_statistics(self.yi[keep], self.vi[keep], np.ones((int(keep.sum()), 1)),
                              self.tau2, self.method)

    def confint(self) -> pd.DataFrame:
        """Return the Q-profile intervals of tau2, tau, i2, h2 (metafor ``confint(res)``).

        Returns
        -------
        pandas.DataFrame
            Index ``tau2, tau, i2, h2``; columns ``estimate, ci_low, ci_high`` (I² in
            percent), from the fields computed by :func:`analysis.pooling.pool` with
            ``tau2_ci=True``. Checked against metafor 3.8-1 ``confint()`` (rtol 1e-6).

        Raises
        ------
        ValueError
            An FE model (no heterogeneity parameter) or a fit with ``tau2_ci=False``.
        """
        return _heterogeneity_ci(self.method, self.tau2, self.i2, self.h2, self.tau2_ci_low,
                                 self.tau2_ci_high, self.i2_ci_low, self.i2_ci_high,
                                 self.h2_ci_low, self.h2_ci_high, self.tau2_ci_truncated)

    def predict(self, transf: Callable[[np.ndarray], np.ndarray] | None = None) -> pd.DataFrame:
        """Return the pooled estimate with its CI and PI (metafor ``predict(res)``).

        Parameters
        ----------
        transf : callable, optional
            Applied to pred and the limits (e.g. ``np.exp``); ``se`` is then dropped.

        Returns
        -------
        pandas.DataFrame
            One row: ``pred, se, ci_low, ci_high, pi_low, pi_high``. Checked against
            metafor 3.8-1 ``predict(res)`` and ``predict(res, transf=exp)`` (rtol 1e-6).
        """
        frame = pd.DataFrame({"pred": [self.estimate], "se": [self.se],
                              "ci_low": [self.ci_low], "ci_high": [self.ci_high],
                              "pi_low": [self.pi_low], "pi_high": [self.pi_high]})
        return _transformed(frame, transf)


@dataclass(frozen=True, slots=True)
class BatchPoolResult(_Printable):
    """Result of :func:`analysis.pooling.pool` on 2-D input: one array entry per analysis.

    Fields are the same as :class:`PoolResult`, each an array of length ``n_analyses``;
    ``weights`` has the shape of the input. ``converged`` is False where an estimator failed
    (only possible with ``errors="nan"``; those rows are NaN).
    """

    estimate: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pvalue: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    tau2: np.ndarray
    se_tau2: np.ndarray
    tau2_ci_low: np.ndarray
    tau2_ci_high: np.ndarray
    i2: np.ndarray
    i2_ci_low: np.ndarray
    i2_ci_high: np.ndarray
    h2: np.ndarray
    h2_ci_low: np.ndarray
    h2_ci_high: np.ndarray
    q: np.ndarray
    q_df: np.ndarray
    q_pvalue: np.ndarray
    pi_low: np.ndarray
    pi_high: np.ndarray
    k: np.ndarray
    df: np.ndarray
    weights: np.ndarray
    converged: np.ndarray
    method: str
    ci_method: str
    level: float
    convention: str = "metafor"
    measure: str | None = None
    tau2_ci_truncated: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.estimate.shape[0])

    def row(self, i: int, n_studies: int | None = None) -> PoolResult:
        """Return analysis ``i`` as a :class:`PoolResult` (weights: its first ``n_studies``)."""
        single: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "weights":
                value = value[i] if n_studies is None else value[i, :n_studies]
            elif f.name == "converged" or (f.name == "tau2_ci_truncated" and value is None):
                continue
            elif isinstance(value, np.ndarray):
                value = value[i].item()
            single[f.name] = value
        single["k"] = int(single["k"])  # type: ignore[call-overload]
        single["q_df"] = int(single["q_df"])  # type: ignore[call-overload]
        if single["k"] == 1:
            single["ci_method"] = "z"
        return PoolResult(**single)  # type: ignore[arg-type]

    def summary(self) -> str:
        """Return a short description and the first rows of :meth:`to_frame`."""
        frame = self.to_frame()
        cols = ["k", "estimate", "se", "ci_low", "ci_high", "tau2", "i2", "q_pvalue"]
        head = frame[cols].head(10).to_string(float_format=lambda x: f"{x:.4f}")
        more = "" if len(self) <= 10 else f"\n... {len(self) - 10} more rows (to_frame())"
        return (f"{len(self)} analyses; tau² estimator {self.method}; {self.ci_method} "
                f"inference; {int((~self.converged).sum())} not converged\n{head}{more}")

    def to_frame(self, *, exponentiate: bool = False) -> pd.DataFrame:
        """Return a tidy DataFrame with one row per analysis (without ``weights``).

        Column names and ``exponentiate`` as :meth:`PoolResult.to_frame` (``tval`` under
        Knapp-Hartung; rows with k = 1 keep their z statistic in that column).
        """
        data = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("weights", "method", "ci_method", "level", "convention")
        }
        frame = pd.DataFrame(data)
        frame["method"] = self.method
        frame["ci_method"] = self.ci_method
        frame["level"] = self.level
        return metafor_frame(frame, t=t_based(self.ci_method), exponentiate=exponentiate)


@dataclass(frozen=True, slots=True)
class MantelHaenszelResult(_Printable):
    """Result of :func:`analysis.pooling.mantel_haenszel` or :func:`analysis.pooling.peto`.

    ``estimate`` is on the log scale for OR and RR. ``mh_chisq``/``mh_pvalue`` (Cochran-
    Mantel-Haenszel test) and ``tarone``/``tarone_pvalue`` are given for OR under MH only
    (NaN otherwise). For a fixed-effect result ``tau2`` is 0 and the prediction interval equals
    the confidence interval, as metafor stores it. ``yi``, ``vi`` (escalc's, as metafor's
    ``rma.mh`` stores them: 1/2 added to tables with a zero cell) and ``study`` are the
    complete tables' per-study data, for plots, with ``weights``, each study's percent
    weight in the pooled estimate (metafor's ``weights()``; NaN for omitted rows).
    """

    estimate: float
    se: float
    zval: float
    pvalue: float
    ci_low: float
    ci_high: float
    q: float
    q_df: int
    q_pvalue: float
    i2: float
    h2: float
    k: int
    measure: str
    method: str
    level: float
    mh_chisq: float = float("nan")
    mh_pvalue: float = float("nan")
    tarone: float = float("nan")
    tarone_pvalue: float = float("nan")
    tau2: float = 0.0
    pi_low: float = float("nan")
    pi_high: float = float("nan")
    convention: str = "metafor"
    model: str = "fixed"
    yi: np.ndarray | None = None
    vi: np.ndarray | None = None
    study: tuple[str, ...] | None = None
    weights: np.ndarray | None = None

    def summary(self) -> str:
        """Return a readable summary (model, heterogeneity, estimate, intervals)."""
        from analysis.summaries import summarise_pool

        return summarise_pool(self)

    def to_frame(self, *, exponentiate: bool = False) -> pd.DataFrame:
        """Return a one-row tidy DataFrame (without the study data).

        ``zval`` is a z statistic; ``exponentiate`` as :meth:`PoolResult.to_frame` (RD
        raises ValueError).
        """
        frame = pd.DataFrame([_scalar_row(self, skip=DATA_FIELDS)])
        return metafor_frame(frame, t=False, exponentiate=exponentiate, measure=self.measure)


@dataclass(frozen=True, slots=True)
class MetaRegressionResult(_FitStatistics, _Printable):
    """Result of :func:`analysis.regression.meta_regression` (metafor ``rma(mods=...)``).

    ``coef``, ``se``, ``zval``, ``pvalue``, ``ci_low``, ``ci_high`` are pandas Series indexed by
    coefficient name (``"intrcpt"`` first, dummy columns named as R does, e.g.
    ``"allocrandom"``); ``vcov`` is a DataFrame. ``qm_df`` is ``(df1, df2)`` under
    ``ci="hksj"`` (F test) and ``(df1,)`` otherwise. ``r2`` is metafor's pseudo-R² in percent
    (NaN when not defined).
    """

    coef: pd.Series
    se: pd.Series
    zval: pd.Series
    pvalue: pd.Series
    ci_low: pd.Series
    ci_high: pd.Series
    vcov: pd.DataFrame
    tau2: float
    se_tau2: float
    qm: float
    qm_df: tuple[int, ...]
    qm_pvalue: float
    qe: float
    qe_df: int
    qe_pvalue: float
    r2: float
    i2: float
    h2: float
    k: int
    method: str
    ci_method: str
    level: float
    tau2_ci_low: float = float("nan")
    tau2_ci_high: float = float("nan")
    converged: bool = True

    def summary(self) -> str:
        """Return a readable summary in metafor's layout (tests, coefficient table)."""
        from analysis.summaries import summarise_meta_regression

        return summarise_meta_regression(self)

    def to_frame(self) -> pd.DataFrame:
        """Return one row per coefficient with the model-level statistics repeated.

        The statistic column is ``tval`` with ``df`` (k - p) under Knapp-Hartung, else
        ``zval`` (metafor's names).
        """
        frame = pd.DataFrame(
            {
                "term": self.coef.index.to_list(),
                "estimate": self.coef.to_numpy(),
                "se": self.se.to_numpy(),
                "zval": self.zval.to_numpy(),
                "pvalue": self.pvalue.to_numpy(),
                "ci_low": self.ci_low.to_numpy(),
                "ci_high": self.ci_high.to_numpy(),
            }
        )
        t = t_based(self.ci_method)
        if t:
            frame.insert(4, "df", float(self.qe_df))
        for name in ("tau2", "qm", "qm_pvalue", "qe", "qe_pvalue", "r2", "i2", "h2", "k"):
            frame[name] = getattr(self, name)
        frame["method"] = self.method
        frame["ci_method"] = self.ci_method
        frame["level"] = self.level
        return metafor_frame(frame, t=t)

    # -- the data it was fitted to; metafor's predict(), confint(), fitstats() ---------------
    #: Effect sizes, sampling variances and labels of the studies used.
    yi: np.ndarray | None = None
    vi: np.ndarray | None = None
    study: tuple[str, ...] | None = None
    #: The design matrix (coefficient names as columns) and its coding (formula or frame).
    X: pd.DataFrame | None = None
    design: FormulaDesign | FrameDesign | None = None
    i2_ci_low: float = float("nan")
    i2_ci_high: float = float("nan")
    h2_ci_low: float = float("nan")
    h2_ci_high: float = float("nan")
    measure: str | None = None
    tau2_ci_truncated: bool = False

    def predict(self, newmods: object = None, *,
                transf: Callable[[np.ndarray], np.ndarray] | None = None,
                level: float | None = None, intercept: bool = True) -> pd.DataFrame:
        r"""Predicted values with CIs and PIs, as metafor ``predict.rma``.

        Parameters
        ----------
        newmods : scalar, array_like, DataFrame or dict, optional
            New moderator values: a scalar or 1-D array for a model with one moderator (one
            prediction per value; metafor ``newmods=c(10, 30, 50)``); a 2-D array of design
            columns without the intercept (metafor's matrix); a DataFrame or dict of raw
            moderator values, coded as the fit was (its formula or its frame coding, with
            the same reference levels). None: the fitted value of every study.
        transf : callable, optional
            Applied to ``pred`` and every limit (e.g. ``np.exp``); ``se`` is dropped then,
            so the frame never mixes scales.
        level : float, optional
            Confidence level (default: the fit's).
        intercept : bool
            False sets the intercept column to 0 (metafor ``intercept=FALSE``).

        Returns
        -------
        pandas.DataFrame
            ``pred, se, ci_low, ci_high, pi_low, pi_high`` (one row per prediction; index the
            study labels without ``newmods``).

        Notes
        -----
        :math:`\hat y = x^\top\hat\beta`, :math:`SE = \sqrt{x^\top V x}`, CI
        :math:`\hat y \pm c\,SE`, PI :math:`\hat y \pm c\sqrt{SE^2 + \hat\tau^2}` with
        c the normal quantile, or t on k - p df under Knapp-Hartung (as metafor). Checked
        against metafor 3.8-1 ``predict(res, newmods=)`` (vector, matrix, ``transf=exp``) on
        BCG and ``dat.bangertdrowns2004`` (rtol 1e-6).
        """
        from analysis.heterogeneity import wald
        from analysis.regression import predict_design

        lev = self.level if level is None else check_level(level)
        x, labels = predict_design(self, newmods, intercept)
        beta = self.coef.to_numpy(dtype=float)
        pred = x @ beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", x, self.vcov.to_numpy(dtype=float), x))
        df = self.k - beta.size if self.ci_method in ("hksj", "hksj_adhoc") else np.nan
        _, _, crit = wald(pred, se, np.full(pred.size, df), lev)
        half = crit * np.sqrt(se**2 + self.tau2)
        frame = pd.DataFrame({"pred": pred, "se": se, "ci_low": pred - crit * se,
                              "ci_high": pred + crit * se, "pi_low": pred - half,
                              "pi_high": pred + half}, index=labels)
        return _transformed(frame, transf)

    def confint(self, fixed: bool = False) -> pd.DataFrame:
        """Confidence intervals as metafor ``confint.rma.uni``.

        Parameters
        ----------
        fixed : bool
            False: the Q-profile intervals of the residual tau2, tau, i2 (percent) and h2;
            True: the coefficients' intervals (metafor ``confint(res, fixed=TRUE)``).

        Returns
        -------
        pandas.DataFrame
            Columns ``estimate, ci_low, ci_high``; index ``tau2, tau, i2, h2`` or the
            coefficient names. Checked against metafor 3.8-1 ``confint()`` (rtol 1e-6).

        Raises
        ------
        ValueError
            ``fixed=False`` for an FE model or a fit with ``tau2_ci=False``.
        """
        if fixed:
            return pd.DataFrame({"estimate": self.coef, "ci_low": self.ci_low,
                                 "ci_high": self.ci_high})
        return _heterogeneity_ci(self.method, self.tau2, self.i2, self.h2, self.tau2_ci_low,
                                 self.tau2_ci_high, self.i2_ci_low, self.i2_ci_high,
                                 self.h2_ci_low, self.h2_ci_high, self.tau2_ci_truncated)

    def _fit_statistics(self) -> FitStatistics:
        from analysis.model_comparison import fit_statistics

        if self.yi is None or self.vi is None or self.X is None:
            raise ValueError("this result keeps no data; refit with meta_regression()")
        return fit_statistics(self.yi, self.vi, self.X.to_numpy(dtype=float), self.tau2,
                              self.method)



@dataclass(frozen=True, slots=True)
class SubgroupResult(_Printable):
    """Result of :func:`analysis.regression.subgroup_analysis`.

    ``subgroups`` is a DataFrame with one row per subgroup (``group, k, estimate, se, zval,
    pvalue, ci_low, ci_high, tau2, i2, q``); ``qb``, ``qb_df``, ``qb_pvalue`` are the test for
    subgroup differences (``qb_df = (df1, df2)`` for an F test).
    """

    subgroups: pd.DataFrame
    qb: float
    qb_df: tuple[int, ...]
    qb_pvalue: float
    method: str
    ci_method: str
    tau2_model: str
    level: float
    results: dict[str, PoolResult]
    measure: str | None = None

    def summary(self) -> str:
        """Return a readable summary (one line per subgroup, the test for differences)."""
        from analysis.summaries import summarise_subgroups

        return summarise_subgroups(self)

    def to_frame(self) -> pd.DataFrame:
        """Return the per-subgroup table with the test columns repeated on every row.

        Under Knapp-Hartung the per-subgroup statistic is ``tval`` (``df`` beside it).
        """
        frame = self.subgroups.copy()
        t = t_based(self.ci_method)
        if t and "df" not in frame.columns and "zval" in frame.columns:
            dfs = [float(getattr(self.results.get(str(g)), "df", np.nan))
                   for g in frame["group"]] if "group" in frame.columns else np.nan
            frame.insert(list(frame.columns).index("zval") + 1, "df", dfs)
        frame = metafor_frame(frame, t=t)
        frame["qb"] = self.qb
        frame["qb_df"] = ",".join(str(d) for d in self.qb_df)
        frame["qb_pvalue"] = self.qb_pvalue
        return frame


@dataclass(frozen=True, slots=True)
class EggerResult(_Printable):
    """Result of :func:`analysis.bias.egger_test` (metafor ``regtest``, predictor ``sei``).

    ``zval`` is a t statistic with ``df`` degrees of freedom for ``model="lm"`` (and for
    ``model="rma"`` under ``ci="hksj"``); ``estimate`` is the limit estimate (intercept, as
    ``sei -> 0``) with its interval. ``yi``, ``vi`` and ``study`` are the complete studies
    the test was fitted to.
    """

    zval: float
    pvalue: float
    df: float
    estimate: float
    ci_low: float
    ci_high: float
    model: str
    method: str
    ci_method: str = "z"
    level: float = 0.95
    k: int = 0
    measure: str | None = None
    yi: np.ndarray | None = None
    vi: np.ndarray | None = None
    study: tuple[str, ...] | None = None

    @property
    def t_test(self) -> bool:
        """Whether the statistic is a t statistic (``model="lm"`` or Knapp-Hartung)."""
        return self.model == "lm" or t_based(self.ci_method, self.df)

    def summary(self) -> str:
        """Return a readable summary in the layout of metafor's ``print.regtest``."""
        from analysis.summaries import summarise_egger

        return summarise_egger(self)

    def to_frame(self, *, exponentiate: bool = False) -> pd.DataFrame:
        """Return a one-row tidy DataFrame.

        Columns ``zval`` (``tval`` for a t test), ``pvalue, df, estimate, ci_low, ci_high,
        model, method, ci_method, level, k, measure``; ``exponentiate`` exponentiates the
        limit estimate and its interval (ratio measures only).
        """
        frame = pd.DataFrame([_scalar_row(self, skip=DATA_FIELDS)])
        return metafor_frame(frame, t=self.t_test, exponentiate=exponentiate,
                             measure=self.measure)


@dataclass(frozen=True, slots=True)
class TrimFillResult(_Printable):
    """Result of :func:`analysis.bias.trim_and_fill` (metafor ``trimfill``).

    ``k0`` studies were imputed on ``side``; ``result`` is the model refitted to the observed
    plus filled studies (its ``yi``, ``vi``, ``study`` hold both, the filled studies last,
    labelled ``"Filled 1"`` ...); ``filled`` holds the imputed studies (columns ``yi, vi``);
    ``original`` is the model fitted to the observed studies (for the funnel plot).
    """

    k0: int
    se_k0: float
    side: str
    estimator: str
    result: PoolResult
    filled: pd.DataFrame
    original: PoolResult | None = None

    @property
    def estimate(self) -> float:
        """Pooled estimate after filling."""
        return self.result.estimate

    @property
    def measure(self) -> str | None:
        """Measure of the filled model."""
        return self.result.measure

    @property
    def level(self) -> float:
        """Confidence level of the filled model."""
        return self.result.level

    def summary(self) -> str:
        """Return a readable summary (metafor ``print(trimfill(res))``)."""
        from analysis.summaries import summarise_trimfill

        return summarise_trimfill(self)

    def to_frame(self, *, exponentiate: bool = False) -> pd.DataFrame:
        """Return the filled model's one-row frame with ``k0``, ``se_k0`` and ``side``.

        Column names and ``exponentiate`` as :meth:`PoolResult.to_frame`.
        """
        frame = self.result.to_frame(exponentiate=exponentiate)
        frame.insert(0, "side", self.side)
        frame.insert(0, "se_k0", self.se_k0)
        frame.insert(0, "k0", self.k0)
        return frame


#: Columns of :meth:`LeaveOneOutResult.to_frame` and :meth:`CumulativeResult.to_frame`
#: (``zval`` is ``tval``, followed by ``df``, under Knapp-Hartung).
SEQUENTIAL_COLUMNS = ("study", "k", "estimate", "se", "zval", "pvalue", "ci_low", "ci_high",
                      "q", "q_pvalue", "tau2", "i2", "h2")


@dataclass(frozen=True, slots=True)
class _SequentialFits(_Printable):
    """Fits of subsets of one set of studies (leave-one-out, cumulative); see subclasses.

    One entry per fit in every array; ``study`` labels the fit (the study omitted or added).
    ``full`` is the model fitted to all studies (None when that fit failed); ``yi``, ``vi``
    and ``labels`` are the data in input order.
    """

    study: tuple[str, ...]
    k: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    pvalue: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    q: np.ndarray
    q_pvalue: np.ndarray
    tau2: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    df: np.ndarray
    method: str
    ci_method: str
    level: float
    measure: str | None = None
    full: PoolResult | None = None
    yi: np.ndarray | None = None
    vi: np.ndarray | None = None
    labels: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.study)

    def to_frame(self, *, exponentiate: bool = False) -> pd.DataFrame:
        """Return one row per fit.

        Columns ``study, k, estimate, se, zval, pvalue, ci_low, ci_high, q, q_pvalue, tau2,
        i2, h2`` (log scale for ratio measures), the frame the function returned before it
        returned this object. Under Knapp-Hartung ``zval`` is ``tval`` and ``df`` follows
        it. ``exponentiate=True`` exponentiates ``estimate, ci_low, ci_high`` and renames
        ``se`` to ``se_log`` (ratio measures only).
        """
        data: dict[str, object] = {"study": np.array(self.study, dtype=object)}
        for column in SEQUENTIAL_COLUMNS[1:]:
            data[column] = np.asarray(getattr(self, column))
        frame = pd.DataFrame(data, columns=list(SEQUENTIAL_COLUMNS))
        t = t_based(self.ci_method)
        if t:
            frame.insert(5, "df", np.asarray(self.df, dtype=float))
        return metafor_frame(frame, t=t, exponentiate=exponentiate, measure=self.measure)

    def summary(self) -> str:
        """Return a readable table in the layout of metafor's ``print(leave1out(res))``."""
        from analysis.summaries import summarise_sequential

        return summarise_sequential(self)


@dataclass(frozen=True, slots=True)
class LeaveOneOutResult(_SequentialFits):
    """Result of :func:`analysis.sensitivity.leave_one_out` (metafor ``leave1out``).

    Entry i is the model fitted without study i (``study[i]`` is its label); NaN where that
    fit failed or the study had missing data. ``full`` is the model of all studies.
    With ``cluster=``, entry i omits the i-th study (cluster, in order of its first row) with
    all its comparisons; ``study[i]`` is its id and ``cluster`` the id of every input row.
    """

    cluster: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class CumulativeResult(_SequentialFits):
    """Result of :func:`analysis.sensitivity.cumulative` (metafor ``cumul``).

    Entry j is the model fitted to the first j + 1 studies in the requested order;
    ``study[j]`` is the label of the study added at that step and ``order[j]`` its position
    in the input. ``full`` is the model of all studies. With ``cluster=``, each step adds a
    whole study (cluster) with all its comparisons; ``study[j]`` is its id, ``order[j]`` its
    position among the clusters in input order (of first rows) and ``cluster`` the id of
    every input row.
    """

    order: np.ndarray | None = None
    cluster: tuple[str, ...] | None = None


#: Conclusions of a trial sequential analysis, in words.
TSA_CONCLUSIONS = {
    "benefit": "firm evidence of benefit: the Z-curve crossed the monitoring boundary in the "
               "direction of the anticipated effect",
    "harm": "firm evidence of harm: the Z-curve crossed the monitoring boundary opposite to "
            "the anticipated effect",
    "futility": "futility: the Z-curve entered the futility region, so the anticipated effect "
                "is unlikely",
    "reached": "the required information size was reached without crossing a boundary: an "
               "effect as large as anticipated is unlikely",
    "insufficient": "not enough information: no boundary was crossed and the required "
                    "information size was not reached",
}


@dataclass(frozen=True, slots=True)
class TrialSequentialResult(_Printable):
    """Result of :func:`analysis.sequential.trial_sequential_analysis`.

    Per trial (in trial order): ``study``, ``n``, ``cumulative_n``, the cumulative pooled
    ``estimate`` (analysis scale), ``se``, ``zval``, the monitoring boundaries ``upper`` /
    ``lower`` and ``futility`` (NaN where the trial is not a look or has no futility
    boundary; two-sided futility means ``|zval| < futility``) and the TSA-adjusted interval
    ``adjusted_ci_low/high`` (estimate +- boundary x SE). Per look (the last is the planned
    look at the inflated RIS): ``look_fraction`` (of ``sequential_information_size``),
    ``look_upper``, ``look_futility``, ``look_trial`` (trial position, -1 for the planned
    look), cumulative ``alpha_spent`` (both sides) and ``beta_spent``. Sizes are
    participants: ``fixed_information_size`` (fixed-effect RIS), ``information_size`` (after
    the heterogeneity correction by ``d2`` or ``i2``) and ``sequential_information_size`` (x
    ``inflation``). ``conclusion`` is a key of :data:`TSA_CONCLUSIONS`, reached at trial
    position ``conclusion_trial`` (-1 if none).
    """

    study: tuple[str, ...]
    n: np.ndarray
    cumulative_n: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    futility: np.ndarray
    adjusted_ci_low: np.ndarray
    adjusted_ci_high: np.ndarray
    look_fraction: np.ndarray
    look_upper: np.ndarray
    look_futility: np.ndarray
    look_trial: np.ndarray
    alpha_spent: np.ndarray
    beta_spent: np.ndarray
    fixed_information_size: float
    information_size: float
    sequential_information_size: float
    inflation: float
    d2: float
    i2: float
    tau2: float
    final_ci_low: float
    final_ci_high: float
    conclusion: str
    conclusion_trial: int
    measure: str
    effect: float
    alpha: float
    beta: float
    sides: int
    method: str
    ci_method: str
    spending: str
    futility_spending: str | None
    heterogeneity: str

    @property
    def conclusion_text(self) -> str:
        """The conclusion in words."""
        return TSA_CONCLUSIONS[self.conclusion]

    def to_frame(self, *, exponentiate: bool = False) -> pd.DataFrame:
        """Return one row per trial.

        Columns ``study, n, cumulative_n, estimate, se, zval, upper, lower, futility,
        adjusted_ci_low, adjusted_ci_high`` (exponentiated estimate and interval for ratio
        measures with ``exponentiate=True``).
        """
        frame = pd.DataFrame({
            "study": np.array(self.study, dtype=object), "n": self.n,
            "cumulative_n": self.cumulative_n, "estimate": self.estimate, "se": self.se,
            "zval": self.zval, "upper": self.upper, "lower": self.lower,
            "futility": self.futility, "adjusted_ci_low": self.adjusted_ci_low,
            "adjusted_ci_high": self.adjusted_ci_high})
        if exponentiate:
            check_exponentiate(self.measure)
            for column in ("estimate", "adjusted_ci_low", "adjusted_ci_high"):
                frame[column] = np.exp(frame[column])
        return frame

    def summary(self) -> str:
        """Return a readable summary: design, information sizes, Z-curve and conclusion."""
        ratio = self.measure in RATIO_MEASURES
        show: Callable[[float], float] = np.exp if ratio else float
        model = {"FE": "fixed-effect"}.get(self.method, f"random-effects ({self.method}")
        if self.method != "FE":
            model += ", Knapp-Hartung SE)" if self.ci_method == "hksj" else ")"
        fut = (f", non-binding beta-spending futility ({self.futility_spending})"
               if self.futility_spending else "")
        lines = [
            "Trial sequential analysis",
            f"  {self.sides}-sided alpha = {self.alpha:g}, beta = {self.beta:g}, "
            f"{self.spending} alpha-spending{fut}; {model} model",
            f"  anticipated {self.measure} = {self.effect:g}; required information size "
            f"{self.fixed_information_size:.0f} (fixed effect), {self.information_size:.0f} "
            f"(heterogeneity: {self.heterogeneity}, D2 = {100 * self.d2:.1f}%, "
            f"I2 = {100 * self.i2:.1f}%), {self.sequential_information_size:.0f} (sequential, "
            f"x{self.inflation:.4f})",
            f"  accrued information {self.cumulative_n[-1]:.0f} participants "
            f"({100 * self.cumulative_n[-1] / self.sequential_information_size:.1f}%)",
            "",
            f"  {'study':<24}{'N':>8}{'Z':>9}{'bound':>9}{'futility':>10}",
        ]
        for j, name in enumerate(self.study):
            lines.append(f"  {name[:23]:<24}{self.cumulative_n[j]:>8.0f}{self.zval[j]:>9.3f}"
                         f"{self.upper[j]:>9.3f}{self.futility[j]:>10.3f}")
        scale = f" ({self.measure})" if ratio else ""
        lines += [
            "",
            f"  final estimate{scale} {show(self.estimate[-1]):.4g}, TSA-adjusted "
            f"{100 * (1 - self.alpha):g}% CI {show(self.final_ci_low):.4g} to "
            f"{show(self.final_ci_high):.4g}",
            f"  Conclusion: {self.conclusion_text}"
            + (f" (at {self.study[self.conclusion_trial]})" if self.conclusion_trial >= 0
               else "") + ".",
        ]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class DoseResponseResult(_Printable):
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
        X = self.basis.matrix(dose, "doses")
        if reference is not None:
            X = X - self.basis.matrix(np.array([float(reference)]), "reference")
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
        crit = special.ndtri(0.5 + lev / 2)
        return pd.DataFrame({
            "dose": dose,
            "reference": np.nan if reference is None else float(reference),
            "estimate": est, "se": se, "ci_low": est - crit * se, "ci_high": est + crit * se,
        })

    def summary(self) -> str:
        """Return a readable summary (model, heterogeneity, tests, coefficient table)."""
        from analysis.summaries import summarise_dose_response

        return summarise_dose_response(self)

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


#: Columns of :meth:`InfluenceResult.to_frame` before the ``dfbetas_<coef>`` columns.
INFLUENCE_COLUMNS = ("study", "rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "qe_del",
                     "hat", "weight")


@dataclass(frozen=True, slots=True)
class InfluenceResult(_Printable):
    r"""Result of :func:`analysis.sensitivity.influence` (metafor ``influence.rma.uni``).

    One value per study in every array (input order; NaN for a study with missing data or
    whose deletion fit failed, as metafor's NA). ``dfbetas`` has one column per coefficient
    (``"intrcpt"``, moderators named as in :func:`analysis.regression.design_matrix`).
    ``influential`` is metafor's rule: :math:`|\mathrm{DFFITS}| > 3\sqrt{p/(k-p)}`,
    :math:`P(\chi^2_p \le D) > 0.5` for Cook's distance D, hat :math:`> 3p/k`, or any
    :math:`|\mathrm{DFBETAS}| > 1`. ``tau2`` and ``qe`` are the full model's.
    """

    study: np.ndarray
    rstudent: np.ndarray
    dffits: np.ndarray
    cook_d: np.ndarray
    cov_r: np.ndarray
    tau2_del: np.ndarray
    qe_del: np.ndarray
    hat: np.ndarray
    weight: np.ndarray
    dfbetas: pd.DataFrame
    influential: np.ndarray
    tau2: float
    qe: float
    k: int
    p: int
    method: str
    ci_method: str
    level: float
    measure: str | None = None

    def cutoffs(self) -> dict[str, float]:
        r"""Return the cut-offs of metafor's rule for ``influential``.

        ``dffits``: :math:`3\sqrt{p/(k-p)}`; ``cook_d``: the median of :math:`\chi^2_p`;
        ``hat``: :math:`3p/k`; ``dfbetas``: 1.
        """
        k, p = self.k, self.p
        return {"dffits": 3 * float(np.sqrt(p / (k - p))) if k > p else float("nan"),
                "cook_d": float(special.chdtri(p, 0.5)), "hat": 3 * p / k, "dfbetas": 1.0}

    def to_frame(self) -> pd.DataFrame:
        """Return one row per study.

        Columns ``study, rstudent, dffits, cook_d, cov_r, tau2_del, qe_del, hat, weight,
        dfbetas_<coef>..., influential``.
        """
        data: dict[str, object] = {name: getattr(self, name) for name in INFLUENCE_COLUMNS}
        for coef in self.dfbetas.columns:
            data[f"dfbetas_{coef}"] = self.dfbetas[coef].to_numpy()
        data["influential"] = np.asarray(self.influential, dtype=bool)
        return pd.DataFrame(data)

    def summary(self) -> str:
        """Return the diagnostics table as metafor prints ``influence(res)``."""
        from analysis.summaries import summarise_influence

        return summarise_influence(self)


__all__ += ["INFLUENCE_COLUMNS", "InfluenceResult"]


@dataclass(frozen=True, slots=True)
class AnovaResult(_Printable):
    """Result of :func:`analysis.model_comparison.anova` (metafor ``anova.rma``).

    ``test`` is ``"LRT"`` (two models: ``table`` has rows ``full``, ``reduced`` and columns
    ``df, loglik, deviance, aic, bic, aicc, lrt, pvalue, qe, tau2, r2``), ``"Wald"`` (tests
    of ``coefficients``: ``qm, df1, df2, pvalue``) or ``"Wald.L"`` (linear combinations:
    ``hypothesis, estimate, se, zval, pvalue`` per row, and the omnibus test). ``statistic``,
    ``df`` and ``pvalue`` are those of the (omnibus) test: LRT on ``(df,)``, QM chi-square on
    ``(m,)`` or F on ``(m, k - p)`` under Knapp-Hartung.
    """

    test: str
    table: pd.DataFrame
    statistic: float
    df: tuple[int, ...]
    pvalue: float
    method: str
    ci_method: str
    coefficients: tuple[str, ...]
    k: int

    def to_frame(self) -> pd.DataFrame:
        """Return the table (a copy), with the test's name as a column."""
        frame = self.table.copy()
        frame["test"] = self.test
        return frame

    def summary(self) -> str:
        """Return a readable summary in metafor's layout."""
        from analysis.summaries import format_p

        if self.test == "LRT":
            table = self.table.copy()
            table.index.name = None
            body = table.to_string(float_format=lambda x: f"{x:.4f}", na_rep="")
            return (f"Likelihood-ratio test ({self.method}), k = {self.k}: "
                    f"LRT = {self.statistic:.4f}, df = {self.df[0]}, "
                    f"p-val {format_p(self.pvalue)}\n\n{body}")
        dist = (f"F(df1 = {self.df[0]}, df2 = {self.df[1]})" if len(self.df) > 1
                else f"QM(df = {self.df[0]})")
        omnibus = f"{dist} = {self.statistic:.4f}, p-val {format_p(self.pvalue)}"
        if self.test == "Wald":
            return (f"Test of moderators (coefficient(s) {', '.join(self.coefficients)}):\n"
                    f"{omnibus}")
        body = self.table.to_string(float_format=lambda x: f"{x:.4f}", index=False)
        return f"Hypotheses (linear combinations):\n\n{body}\n\nOmnibus test: {omnibus}"


__all__ += ["AnovaResult"]


def _transformed(frame: pd.DataFrame,
                 transf: Callable[[np.ndarray], np.ndarray] | None) -> pd.DataFrame:
    """Apply ``transf`` to a prediction frame's pred and limits and drop ``se`` (metafor)."""
    if transf is None:
        return frame
    out = frame.drop(columns=["se"])
    for name in ("pred", "ci_low", "ci_high", "pi_low", "pi_high"):
        out[name] = np.asarray(transf(out[name].to_numpy(dtype=float)), dtype=float)
    return out


def _heterogeneity_ci(method: str, tau2: float, i2: float, h2: float, lo: float, hi: float,
                      i2_lo: float, i2_hi: float, h2_lo: float, h2_hi: float,
                      truncated: bool = False) -> pd.DataFrame:
    """Return the confint() frame of tau2, tau, i2, h2 from stored Q-profile limits.

    ``ci_high_truncated`` is True on every row when the upper limit was cut at ``control
    tau2_max`` (metafor prints ">"): ``ci_high`` is then only a lower bound for the limit.
    """
    if method == "FE":
        raise ValueError("confint() of tau2 is not available for method='FE' (no "
                         "heterogeneity parameter); use confint(fixed=True) for coefficients")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("the model was fitted with tau2_ci=False (no Q-profile limits); "
                         "refit with tau2_ci=True")
    return pd.DataFrame(
        {"estimate": [tau2, float(np.sqrt(tau2)), i2, h2],
         "ci_low": [lo, float(np.sqrt(lo)), i2_lo, h2_lo],
         "ci_high": [hi, float(np.sqrt(hi)), i2_hi, h2_hi],
         "ci_high_truncated": [bool(truncated)] * 4},
        index=pd.Index(["tau2", "tau", "i2", "h2"]),
    )


#: Per-subset columns of :meth:`GoshResult.to_frame` (metafor's ``res`` of ``gosh.rma``).
GOSH_COLUMNS = ("k", "q", "i2", "h2", "tau2", "estimate")


@dataclass(frozen=True, slots=True)
class GoshResult(_Printable):
    """Result of :func:`analysis.gosh.gosh` (metafor ``gosh.rma``): one fit per subset.

    Arrays have one entry per subset: ``estimate``, ``tau2`` (0 for FE), ``i2`` (percent),
    ``h2``, ``q`` (QE), ``k`` (subset size) and ``converged``; ``incl`` is the subsets x
    studies inclusion matrix (column j: study ``study[j]``). ``exact`` is True when every
    non-empty subset was fitted (in metafor's order: by size, then ``expand.grid`` order),
    False for a random sample drawn from ``seed``. ``yi``, ``vi`` are the data.
    """

    estimate: np.ndarray
    tau2: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    q: np.ndarray
    k: np.ndarray
    incl: np.ndarray
    converged: np.ndarray
    method: str
    exact: bool
    study: tuple[str, ...]
    yi: np.ndarray
    vi: np.ndarray
    measure: str | None = None
    seed: int | None = None

    def __len__(self) -> int:
        return int(self.estimate.size)

    def to_frame(self, *, inclusion: bool = False) -> pd.DataFrame:
        """Return one row per subset: ``k, q, i2, h2, tau2, estimate``.

        Parameters
        ----------
        inclusion : bool
            Append one boolean column per study (named by its label) marking the subsets
            that contain it (metafor's ``incl``).
        """
        frame = pd.DataFrame({name: getattr(self, name) for name in GOSH_COLUMNS})
        if inclusion:
            incl = pd.DataFrame(self.incl, columns=list(self.study))
            frame = pd.concat([frame, incl], axis=1)
        return frame

    def summary(self) -> str:
        """Return metafor's ``print.gosh.rma`` layout: fits, then the per-column summary."""
        from analysis.summaries import summarise_gosh

        return summarise_gosh(self)


@dataclass(frozen=True, slots=True)
class PermutationResult(_Printable):
    """Result of :func:`analysis.permutation.permutest` (metafor ``permutest.rma.uni``).

    ``estimate``, ``se``, ``zval`` (a t statistic under Knapp-Hartung), ``ci_low``,
    ``ci_high`` and ``pvalue_model`` (the model's Wald p-values) are the observed model's,
    one per coefficient (``coef_names``); ``pvalue`` are the permutation p-values, and
    ``qm``, ``qm_df``, ``qm_pvalue`` (permutation) and ``qm_pvalue_model`` the omnibus test.
    ``iterations`` permutations were used, all of them when ``exact``; their distributions
    are ``beta_perm``, ``zval_perm`` (iterations x coefficients) and ``qm_perm`` (NaN for
    a failed refit, which the p-values skip, as metafor). ``kind`` is ``"sign-flip"`` (a
    pooled model: the signs of ``yi``) or ``"permutation"`` (meta-regression: the rows of
    the moderators).
    """

    coef_names: tuple[str, ...]
    estimate: np.ndarray
    se: np.ndarray
    zval: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    pvalue_model: np.ndarray
    pvalue: np.ndarray
    qm: float
    qm_df: tuple[int, ...]
    qm_pvalue_model: float
    qm_pvalue: float
    iterations: int
    exact: bool
    kind: str
    beta_perm: np.ndarray
    zval_perm: np.ndarray
    qm_perm: np.ndarray
    method: str
    ci_method: str
    level: float
    k: int
    btt: tuple[int, ...]
    seed: int | None = None
    measure: str | None = None

    def to_frame(self) -> pd.DataFrame:
        """Return one row per coefficient (``pvalue`` is the permutation p-value).

        Columns ``term, estimate, se, zval (tval under Knapp-Hartung), pvalue,
        pvalue_model, ci_low, ci_high, qm, qm_pvalue, iterations, exact``.
        """
        frame = pd.DataFrame({
            "term": list(self.coef_names), "estimate": self.estimate, "se": self.se,
            "zval": self.zval, "pvalue": self.pvalue, "pvalue_model": self.pvalue_model,
            "ci_low": self.ci_low, "ci_high": self.ci_high})
        frame["qm"] = self.qm
        frame["qm_pvalue"] = self.qm_pvalue
        frame["iterations"] = self.iterations
        frame["exact"] = self.exact
        if t_based(self.ci_method):
            frame = frame.rename(columns={"zval": "tval"})
        return frame

    def summary(self) -> str:
        """Return metafor's ``print.permutest.rma.uni`` layout (``pval*``: permutation)."""
        from analysis.summaries import summarise_permutest

        return summarise_permutest(self)


__all__ += ["GOSH_COLUMNS", "GoshResult", "PermutationResult"]


class _BiasResult(_Printable):
    """Shared ``summary()``, ``__str__`` and ``to_frame()`` of the small-study results.

    ``summary()`` is the text of :mod:`analysis.bias_summaries` (layout of metafor's
    ``print`` method of the test); ``to_frame()`` is one row of the scalar fields.
    """

    def summary(self) -> str:
        """Return a readable summary in the layout of metafor's ``print`` method."""
        from analysis.bias_summaries import summarise

        return summarise(self)

    def to_frame(self) -> pd.DataFrame:
        """Return a one-row tidy DataFrame of the scalar fields (arrays and data left out)."""
        row = {f.name: getattr(self, f.name) for f in fields(self)  # type: ignore[arg-type]
               if np.ndim(getattr(self, f.name)) == 0
               and not isinstance(getattr(self, f.name), (pd.Series, pd.DataFrame))}
        return pd.DataFrame([row])


@dataclass(frozen=True, slots=True)
class RankTestResult(_BiasResult):
    """Result of :func:`analysis.small_study.rank_test` (metafor ``ranktest``).

    ``tau`` is Kendall's tau (tau-b) between the standardised deviates and ``vi``;
    ``pvalue`` is exact (``exact=True``) or from the normal approximation.
    """

    tau: float
    pvalue: float
    exact: bool
    k: int
    measure: str | None = None
    yi: np.ndarray | None = None
    vi: np.ndarray | None = None
    study: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class RegTestResult(_BiasResult):
    """Result of :func:`analysis.small_study.regtest` (metafor ``regtest``).

    ``zval`` is the test of the predictor's coefficient (a t statistic on ``df`` degrees of
    freedom when ``df`` is finite); ``estimate`` (with ``ci_low``, ``ci_high``) is the limit
    estimate, the intercept as the predictor goes to 0; ``coef`` and ``se`` are the test
    regression's coefficients (``intrcpt`` and the predictor); ``tau2`` its residual
    heterogeneity (``model="rma"``) or NaN.
    """

    predictor: str
    model: str
    method: str
    ci_method: str
    zval: float
    pvalue: float
    df: float
    estimate: float
    ci_low: float
    ci_high: float
    coef: pd.Series
    se: pd.Series
    tau2: float
    level: float
    k: int
    measure: str | None = None
    yi: np.ndarray | None = None
    vi: np.ndarray | None = None
    study: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class PetPeeseResult(_BiasResult):
    """Result of :func:`analysis.small_study.pet_peese`.

    ``pet`` (predictor ``sei``) and ``peese`` (predictor ``vi``) are the two weighted
    regressions; ``selected`` names the one whose intercept is reported as ``estimate``.
    """

    pet: RegTestResult
    peese: RegTestResult
    selected: str
    pet_pvalue: float
    alpha: float
    alternative: str
    estimate: float
    ci_low: float
    ci_high: float
    k: int
    measure: str | None = None


@dataclass(frozen=True, slots=True)
class BinaryBiasResult(_BiasResult):
    r"""Result of Harbord's, Peters' or Thompson-Sharp's test (R meta ``metabias``).

    ``bias`` is the slope of the test regression (the asymmetry term meta reports), tested
    with ``statistic`` = ``bias / se_bias`` on ``df`` = k - 2 degrees of freedom;
    ``intercept`` is the regression's intercept; ``tau`` the residual scale (square root of
    the multiplicative dispersion, or of the additive :math:`\tau^2`).
    """

    test: str
    bias: float
    se_bias: float
    statistic: float
    df: float
    pvalue: float
    intercept: float
    se_intercept: float
    tau: float
    var_model: str
    k: int
    measure: str | None = None


@dataclass(frozen=True, slots=True)
class FailSafeResult(_BiasResult):
    """Result of :func:`analysis.fail_safe.fail_safe_n` (metafor ``fsn``)."""

    type: str
    fsnum: float
    alpha: float
    pvalue: float
    meanes: float
    target: float
    k: int
    measure: str | None = None


@dataclass(frozen=True, slots=True)
class HenmiCopasResult(_BiasResult):
    """Result of :func:`analysis.henmi_copas.henmi_copas` (metafor ``hc``).

    ``estimate``, ``se``, ``ci_low``, ``ci_high`` and ``tau2`` (DerSimonian-Laird) are the
    Henmi-Copas values; the ``*_rma`` fields are those of the model it was given.
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    tau2: float
    estimate_rma: float
    se_rma: float
    ci_low_rma: float
    ci_high_rma: float
    tau2_rma: float
    method_rma: str
    level: float
    k: int
    measure: str | None = None


@dataclass(frozen=True, slots=True)
class ExcessSignificanceResult(_BiasResult):
    """Result of :func:`analysis.excess_significance.excess_significance` (metafor ``tes``).

    ``observed`` significant studies against ``expected`` (the sum of ``power``);
    ``theta_lim`` is the effect at which the test's p-value equals ``tes_alpha`` (NaN where
    metafor gives none).
    """

    k: int
    observed: int
    expected: float
    oe_ratio: float
    test: str
    x2: float
    pvalue: float
    power: np.ndarray
    significant: np.ndarray
    theta: float
    theta_lim: float
    alternative: str
    tes_alternative: str
    alpha: float
    tes_alpha: float
    measure: str | None = None


@dataclass(frozen=True, slots=True)
class SelectionModelResult(_BiasResult):
    r"""Result of :func:`analysis.selection.selection_model` (metafor ``selmodel``).

    ``estimate`` (with ``se``, ``zval``, ``pvalue``, ``ci_low``, ``ci_high``) is the
    selection-adjusted :math:`\mu`; ``delta`` the weights (step function: one per p-value
    interval of ``steps``, the first fixed at 1 with NaN inference; beta: the two shape
    parameters), each tested against 1. ``ll`` is the maximised log-likelihood, ``ll0`` that
    of the model without selection; ``lrt`` (``lrt_df``, ``lrt_pvalue``) tests selection,
    ``lrt_tau2`` tests :math:`\tau^2 = 0` under selection (NaN for EE). ``ptable_labels``
    and ``ptable_counts`` are metafor's ``ptable`` (step function only); ``pvals`` the
    p-values the weights act on.
    """

    type: str
    alternative: str
    method: str
    estimate: float
    se: float
    zval: float
    pvalue: float
    ci_low: float
    ci_high: float
    tau2: float
    se_tau2: float
    tau2_ci_low: float
    tau2_ci_high: float
    delta: np.ndarray
    se_delta: np.ndarray
    zval_delta: np.ndarray
    pvalue_delta: np.ndarray
    ci_low_delta: np.ndarray
    ci_high_delta: np.ndarray
    steps: np.ndarray | None
    ptable_labels: tuple[str, ...]
    ptable_counts: tuple[int, ...]
    pvals: np.ndarray
    ll: float
    ll0: float
    lrt: float
    lrt_df: int
    lrt_pvalue: float
    lrt_tau2: float
    lrt_tau2_pvalue: float
    level: float
    k: int
    measure: str | None = None

    def delta_frame(self) -> pd.DataFrame:
        """Return one row per weight: ``term, k, estimate, se, zval, pvalue, ci_low, ci_high``.

        ``term`` is the p-value interval (step function) or ``delta.1``/``delta.2`` (beta);
        ``k`` the number of p-values in the interval (NaN for the beta model).
        """
        n = self.delta.size
        terms = list(self.ptable_labels) or [f"delta.{j + 1}" for j in range(n)]
        counts = (list(self.ptable_counts) if self.ptable_counts else [np.nan] * n)
        return pd.DataFrame({"term": terms, "k": counts, "estimate": self.delta,
                             "se": self.se_delta, "zval": self.zval_delta,
                             "pvalue": self.pvalue_delta, "ci_low": self.ci_low_delta,
                             "ci_high": self.ci_high_delta})


__all__ += ["BinaryBiasResult", "ExcessSignificanceResult", "FailSafeResult",
            "HenmiCopasResult", "PetPeeseResult", "RankTestResult", "RegTestResult",
            "SelectionModelResult"]


@dataclass(frozen=True, slots=True)
class GlmmResult(_Printable):
    """Result of :func:`analysis.glmm.glmm_or` (metafor's ``rma.glmm(measure="OR")``).

    ``estimate`` is the pooled log odds ratio with its Wald SE, ``zval``, ``pvalue`` and CI;
    ``tau2`` (0 under EE) with ``se_tau2`` (CM.EL ML only, metafor's delta-method SE; NaN
    otherwise, as metafor leaves it for UM.FS); ``i2``/``h2`` from metafor's typical
    within-study variance of escalc's log odds ratios. ``q_wald``/``q_lrt`` are metafor's
    ``QE.Wld``/``QE.LRT`` heterogeneity tests on ``q_df = k - 1`` degrees of freedom (for
    CM.EL, ``q_wald`` uses the exact information, which metafor's default numerical Hessian
    does not reproduce; see :mod:`analysis.glmm`). ``loglik``, ``deviance``, ``aic``,
    ``bic``, ``aicc`` are metafor's ``fit.stats`` (ML column); for UM.FS ML metafor's
    ``loglik`` is the binomial log-likelihood at the conditional modes (the saturated
    log-likelihood less half of lme4's ``deviance()``), and ``loglik_marginal`` is the
    maximised (quadrature) marginal log-likelihood, which equals ``loglik`` for the other
    fits. ``k`` counts the studies fitted (double-zero tables,
    named in ``dropped``, are left out); ``ai``, ``bi``, ``ci``, ``di`` and ``study`` are
    the tables as given.
    """

    estimate: float
    se: float
    zval: float
    pvalue: float
    ci_low: float
    ci_high: float
    tau2: float
    se_tau2: float
    i2: float
    h2: float
    q_wald: float
    q_wald_pvalue: float
    q_lrt: float
    q_lrt_pvalue: float
    q_df: int
    loglik: float
    loglik_marginal: float
    deviance: float
    aic: float
    bic: float
    aicc: float
    k: int
    k_all: int
    model: str
    method: str
    level: float
    measure: str
    nagq: int
    dropped: tuple[str, ...]
    ai: np.ndarray
    bi: np.ndarray
    ci: np.ndarray
    di: np.ndarray
    study: tuple[str, ...]

    @property
    def tau(self) -> float:
        """Square root of ``tau2``."""
        return float(np.sqrt(self.tau2))

    def summary(self) -> str:
        """Return metafor's ``print(rma.glmm)`` layout (model, heterogeneity, estimate)."""
        from analysis.summaries import summarise_glmm

        return summarise_glmm(self)

    def to_frame(self, *, exponentiate: bool = False) -> pd.DataFrame:
        """Return a one-row tidy DataFrame (without the tables).

        ``exponentiate`` as :meth:`PoolResult.to_frame`.
        """
        frame = pd.DataFrame([_scalar_row(self, skip=("ai", "bi", "ci", "di", "study"))])
        return metafor_frame(frame, t=False, exponentiate=exponentiate, measure=self.measure)


__all__ += ["GlmmResult"]


#: The choices of :func:`analysis.multiverse.multiverse`, in the order of its product
#: (a study-level exclusion column goes after ``reported_estimates``).
MULTIVERSE_CHOICES = ("outcome", "timepoint", "analysis_set", "derived", "reported_estimates",
                      "dose_class", "measure", "method", "ci")
#: Fit columns of :attr:`MultiverseResult.table`, after the choices.
MULTIVERSE_COLUMNS = ("k", "n_studies", "studies", "dataset", "estimate", "se", "ci_low",
                      "ci_high", "pvalue", "tau2", "i2", "display_estimate",
                      "display_ci_low", "display_ci_high")


@dataclass(frozen=True, slots=True)
class MultiverseResult(_Printable):
    """Result of :func:`analysis.multiverse.multiverse`: one row per specification.

    ``table`` holds the feasible specifications (one column per choice, then
    :data:`MULTIVERSE_COLUMNS`; estimates on the analysis scale, log for ratio measures, and
    ``display_*`` on the measure's scale); ``infeasible`` the other combinations of levels
    with a ``reason``; ``levels`` every choice's levels in the order given (``choices`` are
    the ones with at least two levels); ``datasets`` the distinct selections of data
    (``study_id, label, yi, vi``), indexed by ``table["dataset"]``. ``measure`` is the first
    measure (all share its scale: null 0 on the analysis scale).
    """

    table: pd.DataFrame
    infeasible: pd.DataFrame
    levels: dict[str, tuple[str, ...]]
    datasets: tuple[pd.DataFrame, ...]
    measure: str
    level: float

    @classmethod
    def build(cls, rows: list[dict[str, object]], dropped: list[dict[str, object]],
              datasets: tuple[pd.DataFrame, ...], levels: dict[str, tuple[str, ...]], *,
              measure: str, level: float) -> MultiverseResult:
        """Assemble the tables in the order of the levels (the product's order)."""
        names = list(levels)
        table = pd.DataFrame(rows, columns=[*names, *MULTIVERSE_COLUMNS[:-3]])
        for name in ("estimate", "ci_low", "ci_high"):
            shown = np.full(len(table), np.nan)
            for m in table["measure"].unique():
                rows_m = (table["measure"] == m).to_numpy()
                shown[rows_m] = to_display(table.loc[rows_m, name].to_numpy(float), str(m))
            table["display_" + name] = shown
        infeasible = pd.DataFrame(dropped, columns=[*names, "reason"])

        def ordered(frame: pd.DataFrame) -> pd.DataFrame:
            if frame.empty:
                return frame.reset_index(drop=True)
            ranks = [frame[n].map({v: i for i, v in enumerate(levels[n])}) for n in names]
            order = np.lexsort([r.to_numpy() for r in reversed(ranks)])
            return frame.iloc[order].reset_index(drop=True)

        return cls(ordered(table), ordered(infeasible), dict(levels), datasets, measure,
                   level)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def n_total(self) -> int:
        """Every combination of levels (feasible or not)."""
        return len(self.table) + len(self.infeasible)

    @property
    def choices(self) -> tuple[str, ...]:
        """The choices with at least two levels (those the multiverse varies)."""
        return tuple(name for name, values in self.levels.items() if len(values) > 1)

    def shares(self) -> dict[str, float]:
        """Shares of the feasible specifications by conclusion.

        ``above``: estimate above the null (0 on the analysis scale); ``ci_above`` /
        ``ci_below``: the CI excludes the null above / below; ``ci_includes``: neither.
        """
        t = self.table
        n = len(t)
        if n == 0:
            return dict.fromkeys(("above", "ci_above", "ci_below", "ci_includes"), np.nan)
        above = float((t["estimate"] > 0).mean())
        ci_above = float((t["ci_low"] > 0).mean())
        ci_below = float((t["ci_high"] < 0).mean())
        return {"above": above, "ci_above": ci_above, "ci_below": ci_below,
                "ci_includes": 1.0 - ci_above - ci_below}

    def level_medians(self) -> pd.DataFrame:
        """Return, per choice and level, the median estimate and the shares by conclusion.

        Columns ``choice, level, n`` (specifications), ``median`` (analysis scale),
        ``display_median`` and ``ci_above`` / ``ci_below`` (shares whose CI excludes the
        null above / below).
        """
        out = []
        for name in self.choices:
            for value in self.levels[name]:
                group = self.table[self.table[name] == value]
                median = float(group["estimate"].median()) if len(group) else np.nan
                out.append({
                    "choice": name, "level": value, "n": len(group), "median": median,
                    "display_median": float(to_display(np.array([median]), self.measure)[0]),
                    "ci_above": float((group["ci_low"] > 0).mean()) if len(group) else np.nan,
                    "ci_below": float((group["ci_high"] < 0).mean()) if len(group) else np.nan,
                })
        return pd.DataFrame(out, columns=["choice", "level", "n", "median", "display_median",
                                          "ci_above", "ci_below"])

    def influence(self) -> pd.DataFrame:
        """Which choices move the estimate most: the range of the level medians.

        For each choice with at least two feasible levels, ``range`` is the largest minus the
        smallest median estimate over its levels (analysis scale; for ratio measures a
        ratio of medians ``exp(range)`` on the display scale), with the levels giving the
        lowest and the highest median; sorted by ``range``, largest first. This is the
        descriptive summary of Simonsohn et al. (2020) per choice, not a variance
        decomposition: the levels of one choice are compared over all the other choices.
        """
        medians = self.level_medians()
        medians = medians[medians["n"] > 0]
        out = []
        for name, group in medians.groupby("choice", sort=False):
            if len(group) < 2:
                continue
            values = group["median"].to_numpy(float)
            low = group.iloc[int(np.argmin(values))]
            high = group.iloc[int(np.argmax(values))]
            out.append({"choice": name, "range": float(high["median"] - low["median"]),
                        "lowest": str(low["level"]), "lowest_median": float(low["median"]),
                        "highest": str(high["level"]),
                        "highest_median": float(high["median"])})
        frame = pd.DataFrame(out, columns=["choice", "range", "lowest", "lowest_median",
                                           "highest", "highest_median"])
        return frame.sort_values("range", ascending=False, kind="stable").reset_index(
            drop=True)

    def to_frame(self) -> pd.DataFrame:
        """Return :attr:`table` (a copy)."""
        return self.table.copy()

    def summary(self) -> str:
        """Return the number of specifications, the shares and the choices that matter."""
        s = self.shares()
        lines = [
            f"Multiverse: {len(self.table)} feasible specifications of {self.n_total} "
            f"({len(self.infeasible)} infeasible), measure scale {self.measure}",
            "Choices varied: " + (", ".join(
                f"{c} ({len(self.levels[c])})" for c in self.choices) or "none"),
        ]
        if len(self.table):
            est = self.table["display_estimate"]
            lines += [
                f"Estimate (display scale): median {est.median():.3g}, range "
                f"{est.min():.3g} to {est.max():.3g}",
                f"Estimate above the null: {100 * s['above']:.1f}%; CI excludes the null "
                f"above: {100 * s['ci_above']:.1f}%, below: {100 * s['ci_below']:.1f}%",
                "Range of level medians (analysis scale), largest first:",
            ]
            for _, row in self.influence().iterrows():
                lines.append(f"  {row['choice']}: {row['range']:.3f} ({row['lowest']} "
                             f"{row['lowest_median']:.3f} to {row['highest']} "
                             f"{row['highest_median']:.3f})")
        return "\n".join(lines)


__all__ += ["MULTIVERSE_CHOICES", "MULTIVERSE_COLUMNS", "MultiverseResult"]


@dataclass(frozen=True, slots=True)
class MultilevelResult(_FitStatistics, _Printable):
    r"""Result of :func:`analysis.multilevel.rma_mv` (metafor ``rma.mv``).

    ``coef``, ``se``, ``zval`` (a t statistic under ``test="t"``), ``pvalue``, ``ci_low``,
    ``ci_high`` are Series indexed by coefficient name; ``vcov`` a DataFrame. ``sigma2`` are
    the variances of the nested random intercepts, named by ``sigma2_names`` (metafor's
    ``sigma2``); ``psi`` the covariance matrix of an ``inner | outer`` term with
    ``struct="UN"`` (then :attr:`tau2` and :attr:`rho`). ``qe`` is the generalised Cochran Q
    of the fixed-effect fit; ``qm`` the Wald test of the moderators (chi-square on
    ``(m,)``, or F on ``(m, k - p)`` under ``test="t"``). ``yi``, ``V``, ``X``, ``data`` are
    the data it was fitted to; ``marginal`` the fitted marginal covariance
    :math:`V + \sum_l \sigma^2_l G_l` (metafor ``M``); ``term_groups`` the row labels of
    each random term (for the nesting check of :func:`analysis.robust.robust`).
    """

    coef: pd.Series
    se: pd.Series
    zval: pd.Series
    pvalue: pd.Series
    ci_low: pd.Series
    ci_high: pd.Series
    vcov: pd.DataFrame
    sigma2: tuple[float, ...]
    sigma2_names: tuple[str, ...]
    psi: pd.DataFrame | None
    qe: float
    qe_df: int
    qe_pvalue: float
    qm: float
    qm_df: tuple[float, ...]
    qm_pvalue: float
    k: int
    method: str
    test: str
    level: float
    random: str
    fit_stats: FitStatistics
    yi: np.ndarray
    V: np.ndarray
    X: pd.DataFrame
    design: FormulaDesign | FrameDesign | None
    marginal: np.ndarray
    data: pd.DataFrame | None = None
    term_groups: tuple[np.ndarray, ...] = ()
    measure: str | None = None

    def _fit_statistics(self) -> FitStatistics:
        return self.fit_stats

    @property
    def ci_method(self) -> str:
        """``"z"`` or ``"t"`` (the test of the coefficients)."""
        return self.test

    @property
    def df(self) -> float:
        """Degrees of freedom of the t tests (k - p), NaN for z tests."""
        return float(self.qe_df) if self.test == "t" else float("nan")

    @property
    def tau2(self) -> tuple[float, ...]:
        """Variances of the UN term (the diagonal of ``psi``); empty without one."""
        if self.psi is None:
            return ()
        return tuple(float(v) for v in np.diag(self.psi.to_numpy(float)))

    @property
    def rho(self) -> tuple[float, ...]:
        """Correlations of the UN term (upper triangle of ``psi``, row-major)."""
        if self.psi is None:
            return ()
        psi = self.psi.to_numpy(float)
        sd = np.sqrt(np.diag(psi))
        rows, cols = np.triu_indices(psi.shape[0], 1)
        return tuple(float(psi[r, c] / (sd[r] * sd[c])) if sd[r] * sd[c] > 0 else float("nan")
                     for r, c in zip(rows, cols, strict=True))

    def summary(self) -> str:
        """Return a readable summary in metafor's layout."""
        from analysis.summaries import summarise_multilevel

        return summarise_multilevel(self)

    def to_frame(self) -> pd.DataFrame:
        """Return one row per coefficient (``tval`` and ``df`` under ``test="t"``)."""
        frame = pd.DataFrame({"term": self.coef.index.to_list(),
                              "estimate": self.coef.to_numpy(), "se": self.se.to_numpy(),
                              "zval": self.zval.to_numpy(), "pvalue": self.pvalue.to_numpy(),
                              "ci_low": self.ci_low.to_numpy(),
                              "ci_high": self.ci_high.to_numpy()})
        t = self.test == "t"
        if t:
            frame.insert(4, "df", self.df)
        for name in ("qm", "qm_pvalue", "qe", "qe_pvalue", "k"):
            frame[name] = getattr(self, name)
        frame["method"] = self.method
        frame["level"] = self.level
        return metafor_frame(frame, t=t)


@dataclass(frozen=True, slots=True)
class RobustResult(_Printable):
    """Result of :func:`analysis.robust.robust` (metafor ``robust(res, cluster=)``).

    ``vcov_type`` is ``"CR1"`` (metafor's default: the sandwich times n/(n - p), t tests on
    n - p df, n clusters) or ``"CR2"`` (clubSandwich's bias-reduced linearisation with
    Satterthwaite df per coefficient). ``df`` is a Series (one df per coefficient);
    ``qm`` is the F test of the coefficients ``qm_coefficients`` (``qm_df = (q, df2)``):
    under CR1 on (q, n - p), under CR2 clubSandwich's HTZ test (F = 0 and ``qm_pvalue`` NaN
    when its df2 is not positive). ``model`` is the fitted model (rma_mv or
    meta_regression).
    """

    coef: pd.Series
    se: pd.Series
    tval: pd.Series
    df: pd.Series
    pvalue: pd.Series
    ci_low: pd.Series
    ci_high: pd.Series
    vcov: pd.DataFrame
    qm: float
    qm_df: tuple[float, ...]
    qm_pvalue: float
    n_clusters: int
    vcov_type: str
    level: float
    model: MultilevelResult | MetaRegressionResult
    qm_coefficients: tuple[str, ...] = ()

    @property
    def k(self) -> int:
        """Number of estimates."""
        return self.model.k

    def summary(self) -> str:
        """Return a readable summary in metafor's layout."""
        from analysis.summaries import summarise_robust

        return summarise_robust(self)

    def to_frame(self) -> pd.DataFrame:
        """Return one row per coefficient: estimate, se, tval, df, pvalue, ci_low, ci_high."""
        frame = pd.DataFrame({"term": self.coef.index.to_list(),
                              "estimate": self.coef.to_numpy(), "se": self.se.to_numpy(),
                              "tval": self.tval.to_numpy(), "df": self.df.to_numpy(),
                              "pvalue": self.pvalue.to_numpy(),
                              "ci_low": self.ci_low.to_numpy(),
                              "ci_high": self.ci_high.to_numpy()})
        frame["vcov_type"] = self.vcov_type
        frame["n_clusters"] = self.n_clusters
        frame["level"] = self.level
        return frame
