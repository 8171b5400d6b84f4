"""Result objects of the network meta-analysis (frozen, named fields, ``summary``/``to_frame``).

They follow the conventions of :mod:`analysis.results`: estimates on the analysis scale (log for
OR and RR), the confidence level a field and a column (never part of a name), tidy frames with
fixed column names. League matrices are indexed ``[i, j]`` = effect of treatment ``i`` versus
treatment ``j`` (``treatments`` order), as netmeta's ``TE.common``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.network.data import NetworkData

__all__ = ["DesignDecompositionResult", "NetSplitResult", "NetworkFit", "NetworkResult",
           "PScoreResult"]


def _fmt(value: Any, digits: int = 4) -> str:
    x = float(value)
    return "NA" if not np.isfinite(x) else f"{x:.{digits}f}"


def _p(value: Any) -> str:
    x = float(value)
    return "NA" if not np.isfinite(x) else ("< 0.0001" if x < 1e-4 else f"{x:.4f}")


def _p_eq(value: Any) -> str:
    text = _p(value)
    return text if text.startswith("<") else f"= {text}"


@dataclass(frozen=True, slots=True)
class NetworkFit:
    """One model (``"common"`` or ``"random"``) of a network meta-analysis.

    ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``zval``, ``pvalue`` are ``n x n`` league
    matrices; ``direct`` and ``direct_se`` the inverse-variance pooled direct evidence (NaN
    where two treatments were never compared), ``weights`` the (reduced) weight of each
    comparison row and ``tau2`` the heterogeneity variance in them (0 for ``"common"``).
    """

    model: str
    treatments: tuple[str, ...]
    estimate: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    zval: np.ndarray
    pvalue: np.ndarray
    direct: np.ndarray
    direct_se: np.ndarray
    weights: np.ndarray
    fitted: np.ndarray
    tau2: float
    level: float

    def to_frame(self) -> pd.DataFrame:
        """All pairs ``treat1`` < ``treat2`` (treatment order): network and direct estimates."""
        out = []
        n = len(self.treatments)
        for i in range(n):
            for j in range(i + 1, n):
                out.append({"model": self.model, "treat1": self.treatments[i],
                            "treat2": self.treatments[j], "estimate": self.estimate[i, j],
                            "se": self.se[i, j], "ci_low": self.ci_low[i, j],
                            "ci_high": self.ci_high[i, j], "zval": self.zval[i, j],
                            "pvalue": self.pvalue[i, j], "direct": self.direct[i, j],
                            "direct_se": self.direct_se[i, j], "level": self.level})
        return pd.DataFrame(out)


@dataclass(frozen=True, slots=True)
class NetworkResult:
    """Result of :func:`analysis.network.network_meta_analysis` (netmeta ``netmeta``).

    ``q``/``df``/``pvalue`` are the total Q of the common-effects model with its degrees of
    freedom (independent contrasts minus treatments plus one); ``i2`` (percent) with the
    interval of meta's ``calcH``; ``tau2`` by ``method_tau`` (REML/ML with the multi-arm
    covariance ``ml_covariance``).
    """

    data: NetworkData
    common: NetworkFit
    random: NetworkFit
    tau2: float
    q: float
    df: int
    pvalue: float
    i2: float
    i2_ci_low: float
    i2_ci_high: float
    method_tau: str
    measure: str | None
    level: float
    reference: str | None
    ml_covariance: str = "implied"

    @property
    def treatments(self) -> tuple[str, ...]:
        """Treatment labels, sorted (the order of every league matrix)."""
        return self.data.treatments

    @property
    def tau(self) -> float:
        """Square root of ``tau2``."""
        return float(np.sqrt(self.tau2))

    def fit(self, model: str) -> NetworkFit:
        """Return the ``"common"`` or ``"random"`` fit."""
        from analysis._checks import check_choice

        return self.common if check_choice("model", model, ("common", "random")) == "common" \
            else self.random

    def versus(self, reference: str | None = None, model: str = "random") -> pd.DataFrame:
        """Return every treatment against ``reference``.

        Default: the result's reference, else the first treatment. Columns ``treatment``,
        ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``zval``, ``pvalue``.
        """
        ref = reference if reference is not None else (self.reference or self.treatments[0])
        if ref not in self.treatments:
            raise ValueError(f"argument 'reference' = {ref!r} is not a treatment; "
                             f"treatments: {', '.join(self.treatments)}")
        f = self.fit(model)
        j = self.treatments.index(ref)
        return pd.DataFrame({"treatment": self.treatments, "reference": ref,
                             "estimate": f.estimate[:, j], "se": f.se[:, j],
                             "ci_low": f.ci_low[:, j], "ci_high": f.ci_high[:, j],
                             "zval": f.zval[:, j], "pvalue": f.pvalue[:, j],
                             "model": model, "level": self.level})

    def to_frame(self) -> pd.DataFrame:
        """All pairwise network estimates of both models (tidy, see :meth:`NetworkFit.to_frame`)."""
        return pd.concat([self.common.to_frame(), self.random.to_frame()], ignore_index=True)

    def summary(self) -> str:
        """Readable summary: network size, heterogeneity, estimates versus the reference."""
        d = self.data
        lines = [f"Network meta-analysis (graph-theoretical method), measure {self.measure or '-'}",
                 f"studies k = {len(d.studies)}, comparisons m = {d.te.size}, "
                 f"treatments n = {len(d.treatments)}, designs = {len(set(d.design))}",
                 f"tau^2 = {_fmt(self.tau2)} ({self._tau_method()}), I^2 = {self.i2:.1f}% "
                 f"[{self.i2_ci_low:.1f}%; {self.i2_ci_high:.1f}%]",
                 f"Q = {self.q:.2f}, df = {self.df}, p {_p_eq(self.pvalue)}", ""]
        pct = f"{100 * self.level:g}%"
        for model in ("common", "random"):
            frame = self.versus(model=model)
            lines.append(f"{model} effects model, versus {frame['reference'].iloc[0]} "
                         f"({pct} CI; analysis scale):")
            for r in frame.itertuples():
                if str(r.treatment) == str(r.reference):
                    continue
                lines.append(f"  {r.treatment:<12} {_fmt(r.estimate)} [{_fmt(r.ci_low)}; "
                             f"{_fmt(r.ci_high)}]  p {_p_eq(r.pvalue)}")
        return "\n".join(lines)

    def _tau_method(self) -> str:
        if self.method_tau == "DL" or max(self.data.n_arms.values()) < 3:
            return self.method_tau
        return f"{self.method_tau}, {self.ml_covariance} multi-arm covariance"

    def __str__(self) -> str:
        return self.summary()


@dataclass(frozen=True, slots=True)
class PScoreResult:
    """Result of :func:`analysis.network.p_scores` (netmeta ``netrank``)."""

    treatments: tuple[str, ...]
    common: np.ndarray
    random: np.ndarray
    small_values: str

    def to_frame(self) -> pd.DataFrame:
        """``treatment``, ``model``, ``pscore``, ``rank`` (1 = best), both models."""
        out = []
        for model, values in (("common", self.common), ("random", self.random)):
            order = np.argsort(-values, kind="stable")
            rank = np.empty(values.size, dtype=int)
            rank[order] = np.arange(1, values.size + 1)
            out.append(pd.DataFrame({"treatment": self.treatments, "model": model,
                                     "pscore": values, "rank": rank}))
        return pd.concat(out, ignore_index=True)

    def summary(self) -> str:
        """P-scores of both models, best first (random-effects order)."""
        order = np.argsort(-self.random, kind="stable")
        lines = [f"P-scores (small values {self.small_values})", "treatment    common  random"]
        lines += [f"{self.treatments[i]:<12} {self.common[i]:.4f}  {self.random[i]:.4f}"
                  for i in order]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


@dataclass(frozen=True, slots=True)
class DesignDecompositionResult:
    """Result of :func:`analysis.network.decomp_design` (netmeta ``decomp.design``).

    ``q_table``: rows Total / Within designs / Between designs with ``Q``, ``df``, ``pvalue``;
    ``within``: per design ``Q``, ``df``, ``pvalue``; ``detached``: between-designs Q after
    detaching each design; ``between_random``: between-designs Q of the random-effects model
    with ``tau_within`` from the full design-by-treatment interaction model.
    """

    q_table: pd.DataFrame
    within: pd.DataFrame
    detached: pd.DataFrame
    q_between_random: float
    df_between_random: int
    pvalue_between_random: float
    tau_within: float

    def to_frame(self) -> pd.DataFrame:
        """Return the three-row Q table, plus the random-effects between-designs row."""
        extra = pd.DataFrame([{"source": "Between designs (random, tau within)",
                               "Q": self.q_between_random, "df": self.df_between_random,
                               "pvalue": self.pvalue_between_random}])
        return pd.concat([self.q_table, extra], ignore_index=True)

    def summary(self) -> str:
        """Q decomposition table, as netmeta prints it."""
        lines = ["Q statistics to assess homogeneity / consistency",
                 f"{'':<40}{'Q':>10}{'df':>5}  p-value"]
        for r in self.to_frame().itertuples():
            lines.append(f"{r.source:<40}{r.Q:>10.2f}{r.df:>5}  {_p(r.pvalue)}")
        lines.append(f"tau within designs = {_fmt(self.tau_within)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


@dataclass(frozen=True, slots=True)
class NetSplitResult:
    """Result of :func:`analysis.network.netsplit` (netmeta ``netsplit``, back-calculation).

    ``common`` and ``random`` are frames, one row per comparison ``treat1`` vs ``treat2``:
    ``nma``/``nma_se`` network, ``direct``/``direct_se``, ``indirect``/``indirect_se``,
    ``prop_direct``, and the difference direct - indirect with ``diff_se``, ``zval``,
    ``pvalue`` (NaN where a comparison has no direct or no indirect evidence).
    """

    common: pd.DataFrame
    random: pd.DataFrame
    level: float
    measure: str | None

    def to_frame(self) -> pd.DataFrame:
        """Both models stacked, with a ``model`` column."""
        return pd.concat([self.common.assign(model="common"), self.random.assign(model="random")],
                         ignore_index=True)

    def summary(self) -> str:
        """Direct, indirect and their difference for the random-effects model."""
        lines = ["Node splitting (back-calculation), random effects",
                 f"{'comparison':<16}{'direct':>9}{'indirect':>10}{'diff':>9}  p-value"]
        for r in self.random.itertuples():
            lines.append(f"{r.comparison:<16}{_fmt(r.direct):>9}{_fmt(r.indirect):>10}"
                         f"{_fmt(r.difference):>9}  {_p(r.pvalue)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
