"""Frozen result objects returned by the statistical engine.

Every result is a ``dataclass(frozen=True, slots=True)`` with named fields (never tuples) and a
``to_frame()`` method returning a tidy DataFrame with fixed column names (the confidence level
is a column, never part of a name). Ratio measures (OR, RR, HR) are estimated on the log scale;
:func:`back_transform` exponentiates the estimate and interval columns for display.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

__all__ = [
    "RATIO_MEASURES",
    "BatchPoolResult",
    "EggerResult",
    "MantelHaenszelResult",
    "MetaRegressionResult",
    "PoolResult",
    "SubgroupResult",
    "TrimFillResult",
    "back_transform",
]

#: Measures estimated on the log scale.
RATIO_MEASURES = frozenset({"OR", "RR", "HR", "PETO", "IRR", "ROM"})

#: Columns exponentiated by :func:`back_transform`.
INTERVAL_COLUMNS = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")


def back_transform(
    frame: pd.DataFrame, columns: Sequence[str] = INTERVAL_COLUMNS
) -> pd.DataFrame:
    """Exponentiate log-scale estimate and interval columns for display.

    Parameters
    ----------
    frame : pandas.DataFrame
        A tidy frame from a ``to_frame()`` method (or any frame with those columns).
    columns : sequence of str
        Columns to exponentiate when present; ``se``, ``zval`` and the heterogeneity
        columns are left on the log scale, as metafor's ``predict(res, transf=exp)`` does.

    Returns
    -------
    pandas.DataFrame
        A copy with ``exp`` applied to the listed columns that are present.

    Notes
    -----
    ``exp(ci_low), exp(ci_high)`` is the usual back-transformed interval; checked against the
    exponentiated metafor values of ``predict(rma(...), transf=exp)`` for BCG (R-4).
    """
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = np.exp(out[column].astype(float))
    return out


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


@dataclass(frozen=True, slots=True)
class PoolResult:
    """Result of :func:`analysis.pooling.pool` (one meta-analysis).

    Attributes mirror metafor's ``rma.uni`` object, ``confint()`` (Q-profile) and
    ``predict()``; ``zval`` is a t statistic and ``df`` its degrees of freedom when
    ``ci_method == "hksj"``; ``weights`` are percent weights per input study (NaN for
    studies omitted because ``yi`` or ``vi`` was missing).
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

    @property
    def tau(self) -> float:
        """Square root of ``tau2``."""
        return float(np.sqrt(self.tau2))

    def to_frame(self, *, exponentiate: bool = False) -> pd.DataFrame:
        """Return a one-row tidy DataFrame (without ``weights``).

        Parameters
        ----------
        exponentiate : bool
            Apply :func:`back_transform` (for OR/RR/HR on the log scale).
        """
        frame = pd.DataFrame([_scalar_row(self, skip=("weights",))])
        return back_transform(frame) if exponentiate else frame


@dataclass(frozen=True, slots=True)
class BatchPoolResult:
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

    def __len__(self) -> int:
        return int(self.estimate.shape[0])

    def row(self, i: int, n_studies: int | None = None) -> PoolResult:
        """Return analysis ``i`` as a :class:`PoolResult` (weights: its first ``n_studies``)."""
        single: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "weights":
                value = value[i] if n_studies is None else value[i, :n_studies]
            elif f.name == "converged":
                continue
            elif isinstance(value, np.ndarray):
                value = value[i].item()
            single[f.name] = value
        single["k"] = int(single["k"])  # type: ignore[call-overload]
        single["q_df"] = int(single["q_df"])  # type: ignore[call-overload]
        if single["k"] == 1:
            single["ci_method"] = "z"
        return PoolResult(**single)  # type: ignore[arg-type]

    def to_frame(self, *, exponentiate: bool = False) -> pd.DataFrame:
        """Return a tidy DataFrame with one row per analysis (without ``weights``)."""
        data = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("weights", "method", "ci_method", "level", "convention")
        }
        frame = pd.DataFrame(data)
        frame["method"] = self.method
        frame["ci_method"] = self.ci_method
        frame["level"] = self.level
        return back_transform(frame) if exponentiate else frame


@dataclass(frozen=True, slots=True)
class MantelHaenszelResult:
    """Result of :func:`analysis.pooling.mantel_haenszel` or :func:`analysis.pooling.peto`.

    ``estimate`` is on the log scale for OR and RR. ``mh_chisq``/``mh_pvalue`` (Cochran-
    Mantel-Haenszel test) and ``tarone``/``tarone_pvalue`` are given for OR under MH only
    (NaN otherwise). For a fixed-effect result ``tau2`` is 0 and the prediction interval equals
    the confidence interval, as metafor stores it.
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

    def to_frame(self, *, exponentiate: bool = False) -> pd.DataFrame:
        """Return a one-row tidy DataFrame."""
        frame = pd.DataFrame([_scalar_row(self)])
        return back_transform(frame) if exponentiate else frame


@dataclass(frozen=True, slots=True)
class MetaRegressionResult:
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

    def to_frame(self) -> pd.DataFrame:
        """Return one row per coefficient with the model-level statistics repeated."""
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
        for name in ("tau2", "qm", "qm_pvalue", "qe", "qe_pvalue", "r2", "i2", "h2", "k"):
            frame[name] = getattr(self, name)
        frame["method"] = self.method
        frame["ci_method"] = self.ci_method
        frame["level"] = self.level
        return frame


@dataclass(frozen=True, slots=True)
class SubgroupResult:
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

    def to_frame(self) -> pd.DataFrame:
        """Return the per-subgroup table with the test columns repeated on every row."""
        frame = self.subgroups.copy()
        frame["qb"] = self.qb
        frame["qb_df"] = ",".join(str(d) for d in self.qb_df)
        frame["qb_pvalue"] = self.qb_pvalue
        return frame


@dataclass(frozen=True, slots=True)
class EggerResult:
    """Result of :func:`analysis.bias.egger_test` (metafor ``regtest``, predictor ``sei``).

    ``zval`` is a t statistic with ``df`` degrees of freedom for ``model="lm"`` (and for
    ``model="rma"`` under ``ci="hksj"``); ``estimate`` is the limit estimate (intercept, as
    ``sei -> 0``) with its interval.
    """

    zval: float
    pvalue: float
    df: float
    estimate: float
    ci_low: float
    ci_high: float
    model: str
    method: str

    def to_frame(self) -> pd.DataFrame:
        """Return a one-row tidy DataFrame."""
        return pd.DataFrame([_scalar_row(self)])


@dataclass(frozen=True, slots=True)
class TrimFillResult:
    """Result of :func:`analysis.bias.trim_and_fill` (metafor ``trimfill``).

    ``k0`` studies were imputed on ``side``; ``result`` is the model refitted to the observed
    plus filled studies; ``filled`` holds the imputed studies (columns ``yi, vi``).
    """

    k0: int
    se_k0: float
    side: str
    estimator: str
    result: PoolResult
    filled: pd.DataFrame

    @property
    def estimate(self) -> float:
        """Pooled estimate after filling."""
        return self.result.estimate

    def to_frame(self) -> pd.DataFrame:
        """Return the filled model's one-row frame with ``k0``, ``se_k0`` and ``side``."""
        frame = self.result.to_frame()
        frame.insert(0, "side", self.side)
        frame.insert(0, "se_k0", self.se_k0)
        frame.insert(0, "k0", self.k0)
        return frame
