"""The result of :func:`analysis.bayesmeta`: posterior summaries and accessors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis._checks import check_choice, check_level
from analysis.bayesian.posterior import NormalMixtures, TauPosterior
from analysis.bayesian.priors import MuPrior, TauPrior

__all__ = ["BayesFactors", "BayesMetaResult", "PosteriorSummary"]

PARAMETERS = ("tau", "mu", "theta_new")


@dataclass(frozen=True)
class PosteriorSummary:
    """Summary of one marginal posterior (``inf`` where a moment does not exist).

    ``ci_low``/``ci_high`` are the shortest intervals (bayesmeta's default), ``central_low``/
    ``central_high`` the equal-tailed ones, both at the result's ``level``.
    """

    mode: float
    median: float
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    central_low: float
    central_high: float


@dataclass(frozen=True)
class BayesFactors:
    """Bayes factors as bayesmeta's ``$bayesfactor`` (NaN where a prior is improper).

    ``tau0`` compares ``tau = 0`` with the model, ``mu0`` compares ``mu = 0`` with it (values
    below 1 favour the model); ``*_minimum`` are the minimum Bayes factors (the point
    hypothesis against the best alternative: the likelihood ratio at the maximum).
    """

    tau0: float
    mu0: float
    tau0_minimum: float
    mu0_minimum: float


@dataclass(frozen=True)
class BayesMetaResult:
    """Bayesian random-effects meta-analysis (bayesmeta's method), frozen.

    Attributes
    ----------
    yi, sei : ndarray
        The data (analysis scale).
    study : tuple of str
        Study labels.
    measure : str or None
        Effect measure code (ratio measures are on the log scale).
    level : float
        Probability of the intervals.
    tau_prior, mu_prior : TauPrior, MuPrior
        The priors.
    tau, mu, theta_new : PosteriorSummary
        Marginal posteriors of the heterogeneity, the overall effect and a new study's effect
        (posterior predictive).
    shrinkage : pandas.DataFrame
        Per study: ``study, yi, sei, mode, median, mean, sd, ci_low, ci_high, central_low,
        central_high`` of the study's true effect ``theta_i``.
    marginal_likelihood : float
        ``p(y)`` (NaN unless both priors are proper).
    bayes_factor : BayesFactors
    direct_tau, direct_weights : ndarray
        The DIRECT grid (reference points of tau and their weights).
    """

    yi: np.ndarray
    sei: np.ndarray
    study: tuple[str, ...]
    measure: str | None
    level: float
    tau_prior: TauPrior
    mu_prior: MuPrior
    tau: PosteriorSummary
    mu: PosteriorSummary
    theta_new: PosteriorSummary
    shrinkage: pd.DataFrame
    marginal_likelihood: float
    bayes_factor: BayesFactors
    direct_tau: np.ndarray
    direct_weights: np.ndarray
    _tau_post: TauPosterior = field(repr=False)
    _mixtures: NormalMixtures = field(repr=False)  # rows: mu, theta_new, theta_1..theta_k

    @property
    def k(self) -> int:
        """Number of studies."""
        return int(self.yi.size)

    # ------------------------------------------------------------------ accessors
    def _row(self, parameter: str, study: int | str | None) -> int | None:
        if study is not None:
            if parameter != "theta":
                raise ValueError(
                    f"argument 'study' = {study!r} needs parameter 'theta', not {parameter!r}"
                )
            if isinstance(study, str):
                if study not in self.study:
                    raise ValueError(
                        f"argument 'study' = {study!r} is not one of "
                        + ", ".join(map(repr, self.study))
                    )
                return 2 + self.study.index(study)
            if not 0 <= int(study) < self.k:
                raise ValueError(f"argument 'study' = {study!r} is not an index 0..{self.k - 1}")
            return 2 + int(study)
        check_choice("parameter", parameter, PARAMETERS)
        return None if parameter == "tau" else (0 if parameter == "mu" else 1)

    def _mix(self, row: int, n: int) -> NormalMixtures:
        m = self._mixtures
        return NormalMixtures(
            m.weights,
            np.repeat(m.means[row : row + 1], n, axis=0),
            np.repeat(m.sds[row : row + 1], n, axis=0),
        )

    def pdf(self, parameter: str, x: object, *, study: int | str | None = None) -> np.ndarray:
        """Posterior density of ``"tau"``, ``"mu"``, ``"theta_new"`` or (``study=``) ``"theta"``."""
        xs = np.atleast_1d(np.asarray(x, dtype=float))
        row = self._row(parameter, study)
        if row is None:
            return self._tau_post.pdf(xs)
        return self._mix(row, xs.size).pdf(xs)

    def cdf(self, parameter: str, x: object, *, study: int | str | None = None) -> np.ndarray:
        """Posterior distribution function (see :meth:`pdf`)."""
        xs = np.atleast_1d(np.asarray(x, dtype=float))
        row = self._row(parameter, study)
        if row is None:
            return self._tau_post.cdf(xs)
        return self._mix(row, xs.size).cdf(xs)

    def quantile(self, parameter: str, p: object, *, study: int | str | None = None) -> np.ndarray:
        """Posterior quantiles (see :meth:`pdf`)."""
        ps = np.atleast_1d(np.asarray(p, dtype=float))
        if np.any((ps < 0) | (ps > 1)) or np.any(np.isnan(ps)):
            raise ValueError(
                f"argument 'p' = {ps.tolist()!r} is not allowed; use probabilities in [0, 1]"
            )
        row = self._row(parameter, study)
        if row is None:
            return self._tau_post.quantile(ps)
        out = self._mix(row, ps.size).quantile(np.clip(ps, 1e-300, 1.0))
        return np.where(ps == 0, -np.inf, np.where(ps == 1, np.inf, out))

    def interval(
        self,
        parameter: str,
        level: float | None = None,
        method: str = "shortest",
        *,
        study: int | str | None = None,
    ) -> tuple[float, float]:
        """Credible (or prediction) interval: ``"shortest"`` or ``"central"`` (equal-tailed)."""
        from analysis.bayesian.fit import tau_interval

        lev = self.level if level is None else check_level(level)
        check_choice("method", method, ("shortest", "central"))
        row = self._row(parameter, study)
        if row is None:
            lo, hi = tau_interval(self._tau_post, lev, method)
            return lo, hi
        mix = self._mix(row, 1)
        a, b = mix.shortest(lev) if method == "shortest" else mix.central(lev)
        return float(a[0]), float(b[0])

    def prior_pdf(self, parameter: str, x: object) -> np.ndarray:
        """Prior density of ``"tau"`` or ``"mu"`` (1 everywhere for a flat prior of mu)."""
        check_choice("parameter", parameter, ("tau", "mu"))
        xs = np.atleast_1d(np.asarray(x, dtype=float))
        if parameter == "tau":
            return self.tau_prior.pdf(xs, self.sei**2)
        return np.exp(self.mu_prior.logpdf(xs))

    def i2(self, tau: object) -> np.ndarray:
        """I² (percent) for given tau, with Higgins & Thompson's typical within-study variance."""
        t = np.asarray(tau, dtype=float)
        w = 1.0 / self.sei**2
        s2 = (
            (self.k - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())
            if self.k > 1
            else self.sei[0] ** 2
        )
        return 100.0 * t**2 / (t**2 + s2)

    # ------------------------------------------------------------------ display
    def to_frame(self) -> pd.DataFrame:
        """One row per parameter (tau, mu, theta_new) with the summary columns."""
        rows = []
        for name in PARAMETERS:
            s: PosteriorSummary = getattr(self, name)
            rows.append({"parameter": name, **s.__dict__})
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """Return a text summary like bayesmeta's ``print``."""
        pct = f"{100 * self.level:g}%"
        lines = [
            "Bayesian random-effects meta-analysis (bayesmeta method: exact tau posterior, "
            "DIRECT mixture for mu)",
            f"  k = {self.k}"
            + (f", measure {self.measure} (analysis scale)" if self.measure else ""),
            f"  tau prior: {self.tau_prior.name} "
            f"({'proper' if self.tau_prior.proper else 'improper'})",
            f"  mu prior:  {self.mu_prior.name}",
            "",
            f"{'':10s}{'mode':>10s}{'median':>10s}{'mean':>10s}{'sd':>10s}"
            f"{pct + ' lower':>12s}{pct + ' upper':>12s}",
        ]
        for name in PARAMETERS:
            s: PosteriorSummary = getattr(self, name)
            lines.append(
                f"{name:10s}{s.mode:10.4f}{s.median:10.4f}{s.mean:10.4f}{s.sd:10.4f}"
                f"{s.ci_low:12.4f}{s.ci_high:12.4f}"
            )
        lines.append(f"({pct} intervals: shortest; theta_new = a new study's effect)")
        bf = self.bayes_factor
        ml = self.marginal_likelihood
        lines += [
            "",
            "marginal likelihood: " + ("n/a (improper prior)" if math.isnan(ml) else f"{ml:.6g}"),
            "Bayes factors (point hypothesis vs model; NaN = improper prior):",
            f"  tau = 0: {bf.tau0:.4g} (minimum {bf.tau0_minimum:.4g})",
            f"  mu = 0:  {bf.mu0:.4g} (minimum {bf.mu0_minimum:.4g})",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
