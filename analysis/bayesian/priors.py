"""Prior distributions for the heterogeneity ``tau`` and the overall effect ``mu``.

A :class:`TauPrior` knows its log density (normalised when proper), its support, whether
it is proper, and how its density behaves as ``tau -> inf`` (``tau^-alpha (log tau)^-beta``),
which decides whether the posterior is proper and which posterior moments exist.

The empirical priors are bayesmeta 3.4's tables (``TurnerEtAlPrior``, ``RhodesEtAlPrior``;
R/bayesmeta.R of the CRAN package):

- Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT (2015). Predictive distributions for
  between-study heterogeneity and simple methods for their application in Bayesian
  meta-analysis. *Statistics in Medicine* 34(6):984-998, Table IV: ``tau^2 ~ log-normal(m, s^2)``
  for log odds ratios, so ``tau ~ log-normal(m/2, (s/2)^2)``.
- Rhodes KM, Turner RM, Higgins JPT (2015). Predictive distributions were developed for the
  extent of heterogeneity in meta-analyses of continuous outcome data. *J Clin Epidemiol*
  68(1):52-60, Table 3 (and A.3.1/A.3.2 for respiratory and cancer): ``log tau^2 ~ t_5(m, s)``
  for standardised mean differences, so ``log tau ~ t_5(m/2, s/2)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats

from analysis._checks import check_choice

__all__ = [
    "RHODES_COMPARISONS",
    "RHODES_OUTCOMES",
    "TURNER_COMPARISONS",
    "TURNER_OUTCOMES",
    "MuPrior",
    "TauPrior",
    "half_cauchy",
    "half_normal",
    "half_student_t",
    "improper_uniform",
    "jeffreys",
    "log_normal",
    "log_student_t",
    "mu_flat",
    "mu_normal",
    "rhodes_prior",
    "turner_prior",
    "uniform",
]

_LOG2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class TauPrior:
    """A prior for the between-study standard deviation ``tau``.

    Attributes
    ----------
    name : str
        Short label, e.g. ``"half-normal(scale=0.5)"``.
    proper : bool
        True when the density integrates to one (its ``logpdf`` is then normalised).
    lower, upper : float
        Support ``[lower, upper]`` (``upper`` may be ``inf``).
    tail_alpha, tail_beta : float
        The density behaves like ``tau^-alpha (log tau)^-beta`` as ``tau -> inf``
        (``alpha = inf`` for tails lighter than any power).
    logpdf_fn : callable
        ``logpdf_fn(tau, sei2)`` -> log density at the array ``tau`` (``sei2`` = the studies'
        squared standard errors, used only by data-dependent priors such as Jeffreys').
    """

    name: str
    proper: bool
    lower: float
    upper: float
    tail_alpha: float
    tail_beta: float
    logpdf_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] = field(repr=False)

    def logpdf(self, tau: np.ndarray, sei2: np.ndarray) -> np.ndarray:
        """Log prior density at ``tau`` (``-inf`` outside the support)."""
        t = np.asarray(tau, dtype=float)
        out = np.full(t.shape, -np.inf)
        inside = (t >= self.lower) & (t <= self.upper)
        if np.any(inside):
            with np.errstate(divide="ignore", invalid="ignore"):
                val = self.logpdf_fn(t[inside], np.asarray(sei2, dtype=float))
            out[inside] = np.where(np.isnan(val), -np.inf, val)  # e.g. log-normal at 0
        return out

    def pdf(self, tau: np.ndarray, sei2: np.ndarray) -> np.ndarray:
        """Prior density at ``tau``."""
        return np.exp(self.logpdf(tau, sei2))


@dataclass(frozen=True)
class MuPrior:
    """Prior for the overall effect ``mu``: normal(mean, sd), or flat when ``sd`` is None."""

    mean: float | None = None
    sd: float | None = None

    @property
    def proper(self) -> bool:
        """True for a normal prior."""
        return self.sd is not None

    @property
    def name(self) -> str:
        """Short label."""
        return (
            "flat (improper uniform)"
            if self.sd is None
            else f"normal(mean={self.mean:g}, sd={self.sd:g})"
        )

    def logpdf(self, mu: np.ndarray) -> np.ndarray:
        """Log prior density of ``mu`` (0 for the flat prior)."""
        m = np.asarray(mu, dtype=float)
        if self.sd is None or self.mean is None:
            return np.zeros(m.shape)
        return -0.5 * _LOG2PI - math.log(self.sd) - 0.5 * ((m - self.mean) / self.sd) ** 2


def _positive(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"argument {name!r} = {value!r} is not allowed; use a finite number > 0")
    return v


def mu_flat() -> MuPrior:
    """Return the improper uniform prior for ``mu`` (bayesmeta's default)."""
    return MuPrior()


def mu_normal(mean: float = 0.0, sd: float = 4.0) -> MuPrior:
    """Return a normal prior for ``mu`` (bayesmeta's ``mu.prior.mean``, ``mu.prior.sd``)."""
    m = float(mean)
    if not math.isfinite(m):
        raise ValueError(f"argument 'mean' = {mean!r} is not allowed; use a finite number")
    return MuPrior(mean=m, sd=_positive("sd", sd))


def half_normal(scale: float) -> TauPrior:
    """Half-normal prior, density ``2/scale phi(tau/scale)`` (bayesmeta ``dhalfnormal``)."""
    s = _positive("scale", scale)
    c = math.log(2.0) - 0.5 * _LOG2PI - math.log(s)
    return TauPrior(
        f"half-normal(scale={s:g})",
        True,
        0.0,
        math.inf,
        math.inf,
        0.0,
        lambda t, _s2: c - 0.5 * (t / s) ** 2,
    )


def half_cauchy(scale: float) -> TauPrior:
    """Half-Cauchy prior, density ``2 / (pi scale (1 + (tau/scale)^2))`` (``dhalfcauchy``)."""
    s = _positive("scale", scale)
    c = math.log(2.0 / (math.pi * s))
    return TauPrior(
        f"half-Cauchy(scale={s:g})",
        True,
        0.0,
        math.inf,
        2.0,
        0.0,
        lambda t, _s2: c - np.log1p((t / s) ** 2),
    )


def half_student_t(df: float, scale: float) -> TauPrior:
    """Half-Student-t prior with ``df`` degrees of freedom (twice the t density on tau >= 0)."""
    nu = _positive("df", df)
    s = _positive("scale", scale)
    c = (
        math.log(2.0)
        + special.gammaln((nu + 1) / 2)
        - special.gammaln(nu / 2)
        - 0.5 * math.log(nu * math.pi)
        - math.log(s)
    )
    return TauPrior(
        f"half-Student-t(df={nu:g}, scale={s:g})",
        True,
        0.0,
        math.inf,
        nu + 1.0,
        0.0,
        lambda t, _s2: c - (nu + 1) / 2 * np.log1p((t / s) ** 2 / nu),
    )


def uniform(lower: float, upper: float) -> TauPrior:
    """Proper uniform prior on ``[lower, upper]`` (``dunif(tau, min, max)``)."""
    a, b = float(lower), float(upper)
    if not (math.isfinite(a) and math.isfinite(b) and 0.0 <= a < b):
        raise ValueError(
            f"arguments 'lower' = {lower!r}, 'upper' = {upper!r} are not allowed; "
            "use finite 0 <= lower < upper (improper_uniform() for no upper bound)"
        )
    c = -math.log(b - a)
    return TauPrior(
        f"uniform({a:g}, {b:g})", True, a, b, math.inf, 0.0, lambda t, _s2: np.full(t.shape, c)
    )


def improper_uniform() -> TauPrior:
    """Improper uniform prior on ``tau >= 0`` (bayesmeta's default ``"uniform"``)."""
    return TauPrior(
        "improper uniform", False, 0.0, math.inf, 0.0, 0.0, lambda t, _s2: np.zeros(t.shape)
    )


def _jeffreys_logpdf(t: np.ndarray, s2: np.ndarray) -> np.ndarray:
    tt = t[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * np.log(np.sum((tt / (s2[None, :] + tt * tt)) ** 2, axis=1))


def jeffreys() -> TauPrior:
    """Jeffreys prior for ``tau`` given the standard errors (bayesmeta's ``"Jeffreys"``).

    Density ``sqrt(sum_i (tau / (sigma_i^2 + tau^2))^2)`` (Tibshirani 1989; Bodnar et al.
    2017), improper: it behaves like ``sqrt(k) / tau`` as ``tau -> inf``.
    """
    return TauPrior("Jeffreys", False, 0.0, math.inf, 1.0, 0.0, _jeffreys_logpdf)


def log_normal(meanlog: float, sdlog: float) -> TauPrior:
    """Log-normal prior for ``tau``: ``log tau ~ N(meanlog, sdlog^2)``."""
    m = float(meanlog)
    s = _positive("sdlog", sdlog)
    c = -0.5 * _LOG2PI - math.log(s)

    def logpdf(t: np.ndarray, _s2: np.ndarray) -> np.ndarray:
        lt = np.log(t)
        return c - lt - 0.5 * ((lt - m) / s) ** 2

    return TauPrior(
        f"log-normal(meanlog={m:.3f}, sdlog={s:.3f})", True, 0.0, math.inf, math.inf, 0.0, logpdf
    )


def log_student_t(location: float, scale: float, df: float = 5.0) -> TauPrior:
    """Log-Student-t prior for ``tau``: ``log tau ~ t_df(location, scale)``."""
    loc = float(location)
    s = _positive("scale", scale)
    nu = _positive("df", df)
    dist = stats.t(df=nu)

    def logpdf(t: np.ndarray, _s2: np.ndarray) -> np.ndarray:
        lt = np.log(t)
        return dist.logpdf((lt - loc) / s) - math.log(s) - lt

    return TauPrior(
        f"log-Student-t(location={loc:.3f}, scale={s:.3f}, df={nu:g})",
        True,
        0.0,
        math.inf,
        1.0,
        nu + 1.0,
        logpdf,
    )


_COMPARATORS = ("pharmacological", "non-pharmacological", "placebo / control")

#: Turner et al. (2015) outcome types (Table IV), in bayesmeta's order.
TURNER_OUTCOMES = (
    "all-cause mortality",
    "obstetric outcomes",
    "cause-specific mortality / major morbidity event / composite (mortality or morbidity)",
    "resource use / hospital stay / process",
    "surgical / device related success / failure",
    "withdrawals / drop-outs",
    "internal / structure-related outcomes",
    "general physical health indicators",
    "adverse events",
    "infection / onset of new disease",
    "signs / symptoms reflecting continuation / end of condition",
    "pain",
    "quality of life / functioning (dichotomized)",
    "mental health indicators",
    "biological markers (dichotomized)",
    "subjective outcomes (various)",
)
#: Turner et al. (2015) comparison types (Table IV columns).
TURNER_COMPARISONS = (
    "pharmacological vs. placebo / control",
    "pharmacological vs. pharmacological",
    "non-pharmacological vs. placebo / control",
    "non-pharmacological vs. pharmacological",
    "non-pharmacological vs. non-pharmacological",
)
# log-normal parameters (mean, sd) of tau^2; rows = outcomes, columns = comparisons.
_TURNER_MEAN = -np.array(
    [
        [
            3.95,
            3.52,
            3.71,
            2.34,
            2.14,
            2.99,
            2.71,
            2.29,
            1.87,
            2.49,
            2.06,
            1.83,
            2.54,
            2.12,
            1.77,
            2.70,
        ],
        [
            4.18,
            3.75,
            3.95,
            2.58,
            2.37,
            3.23,
            2.94,
            2.53,
            2.10,
            2.73,
            2.29,
            2.06,
            2.78,
            2.35,
            2.00,
            2.93,
        ],
        [
            4.17,
            3.74,
            3.93,
            2.56,
            2.36,
            3.21,
            2.93,
            2.51,
            2.10,
            2.71,
            2.28,
            2.05,
            2.77,
            2.34,
            1.99,
            2.92,
        ],
        [
            2.92,
            2.49,
            2.68,
            1.31,
            1.11,
            1.96,
            1.67,
            1.26,
            0.84,
            1.46,
            1.03,
            0.80,
            1.51,
            1.09,
            0.74,
            1.67,
        ],
        [
            3.50,
            3.08,
            3.27,
            1.90,
            1.69,
            2.55,
            2.26,
            1.85,
            1.43,
            2.05,
            1.61,
            1.38,
            2.10,
            1.67,
            1.33,
            2.26,
        ],
    ]
).T
_TURNER_SD = np.array(
    [
        [
            1.34,
            1.74,
            1.74,
            1.74,
            1.74,
            1.74,
            1.74,
            1.53,
            1.52,
            1.52,
            1.51,
            1.52,
            1.54,
            1.53,
            1.52,
            1.52,
        ],
        [
            1.41,
            1.79,
            1.79,
            1.79,
            1.79,
            1.79,
            1.79,
            1.58,
            1.58,
            1.58,
            1.58,
            1.58,
            1.60,
            1.60,
            1.58,
            1.58,
        ],
        [
            1.55,
            1.91,
            1.91,
            1.91,
            1.91,
            1.91,
            1.92,
            1.72,
            1.71,
            1.71,
            1.71,
            1.71,
            1.73,
            1.72,
            1.71,
            1.71,
        ],
        [
            1.02,
            1.50,
            1.51,
            1.50,
            1.50,
            1.51,
            1.51,
            1.25,
            1.24,
            1.24,
            1.24,
            1.25,
            1.27,
            1.27,
            1.24,
            1.25,
        ],
        [
            1.26,
            1.68,
            1.68,
            1.68,
            1.68,
            1.68,
            1.68,
            1.46,
            1.45,
            1.45,
            1.45,
            1.45,
            1.47,
            1.47,
            1.45,
            1.45,
        ],
    ]
).T
# comparator pair -> comparison type index (bayesmeta's cmatrix; placebo vs placebo undefined)
_TURNER_PAIR = {
    ("pharmacological", "pharmacological"): 1,
    ("pharmacological", "non-pharmacological"): 3,
    ("pharmacological", "placebo / control"): 0,
    ("non-pharmacological", "non-pharmacological"): 4,
    ("non-pharmacological", "placebo / control"): 2,
}


def _pair(table: dict[tuple[str, str], int], c1: str, c2: str) -> int:
    check_choice("comparator1", c1, _COMPARATORS)
    check_choice("comparator2", c2, _COMPARATORS)
    idx = table.get((c1, c2), table.get((c2, c1)))
    if idx is None:
        raise ValueError(
            f"arguments 'comparator1' = {c1!r}, 'comparator2' = {c2!r}: no "
            "empirical prior for a comparison of two controls"
        )
    return idx


def turner_prior(
    outcome: str | None = "all-cause mortality",
    comparator1: str = "pharmacological",
    comparator2: str = "placebo / control",
) -> TauPrior:
    """Turner et al. (2015) empirical log-normal prior for ``tau`` (log odds ratios).

    ``outcome=None`` gives the marginal prior over all settings, ``tau^2 ~ LN(-2.56, 1.74^2)``
    (Turner et al. 2015, p. 993). Values as in bayesmeta 3.4's ``TurnerEtAlPrior``.
    """
    if outcome is None:
        m2, s2 = -2.56, 1.74
        label = "any outcome"
    else:
        j = TURNER_OUTCOMES.index(check_choice("outcome", outcome, TURNER_OUTCOMES))
        c = _pair(_TURNER_PAIR, comparator1, comparator2)
        m2, s2 = float(_TURNER_MEAN[j, c]), float(_TURNER_SD[j, c])
        label = f"{outcome}, {TURNER_COMPARISONS[c]}"
    p = log_normal(m2 / 2, s2 / 2)
    return TauPrior(
        f"Turner et al. 2015 ({label}): {p.name}", True, 0.0, math.inf, math.inf, 0.0, p.logpdf_fn
    )


#: Rhodes et al. (2015) outcome types (Table 3), in bayesmeta's order.
RHODES_OUTCOMES = (
    "obstetric outcome",
    "resource use and hospital stay / process",
    "internal and external structure-related outcome",
    "general physical health and adverse event and pain and quality of life / functioning",
    "signs / symptoms reflecting continuation / end of condition and infection / onset of new "
    "acute / chronic disease",
    "mental health outcome",
    "biological marker",
    "various subjectively measured outcomes",
)
#: Rhodes et al. (2015) comparison types.
RHODES_COMPARISONS = (
    "pharmacological vs. placebo / control",
    "pharmacological vs. pharmacological",
    "non-pharmacological (any)",
)
# log-t(5) location and scale of tau^2: area -> (location, scale), rows outcomes, cols comparisons
_RHODES = {
    "other": (
        -np.array(
            [
                [4.13, 2.55, 2.43, 3.16, 3.00, 2.99, 3.41, 2.76],
                [4.40, 2.83, 2.70, 3.44, 3.27, 3.27, 3.68, 3.03],
                [3.99, 2.41, 2.29, 3.02, 2.86, 3.85, 3.27, 2.62],
            ]
        ).T,
        np.array(
            [
                [2.34, 2.73, 2.50, 2.50, 2.50, 2.16, 2.83, 2.58],
                [2.31, 2.70, 2.46, 2.44, 2.47, 2.14, 2.78, 2.59],
                [2.11, 2.57, 2.32, 2.27, 2.33, 1.93, 2.66, 2.41],
            ]
        ).T,
    ),
    "respiratory": (
        -np.array(
            [
                [6.03, 4.46, 4.33, 5.07, 4.90, 4.90, 5.31, 4.66],
                [6.31, 4.73, 4.61, 5.34, 5.18, 5.17, 5.59, 4.94],
                [5.89, 4.32, 4.19, 4.93, 4.76, 4.76, 5.17, 4.52],
            ]
        ).T,
        np.array(
            [
                [2.36, 2.74, 2.51, 2.51, 2.50, 2.17, 2.83, 2.59],
                [2.31, 2.70, 2.46, 2.45, 2.47, 2.14, 2.78, 2.59],
                [2.21, 2.57, 2.33, 2.28, 2.33, 1.94, 2.66, 2.41],
            ]
        ).T,
    ),
    "cancer": (
        -np.array(
            [
                [1.57, -0.01, 0.13, 0.60, 0.44, 0.43, 0.85, 0.20],
                [1.85, 0.27, 0.14, 0.88, 0.71, 0.71, 1.13, 0.48],
                [1.43, -0.15, -0.27, 0.46, 0.30, 0.29, 0.71, 0.06],
            ]
        ).T,
        np.array(
            [
                [2.45, 2.83, 2.61, 2.61, 2.60, 2.28, 2.93, 2.68],
                [2.41, 2.79, 2.56, 2.55, 2.57, 2.25, 2.87, 2.68],
                [2.24, 2.68, 2.45, 2.40, 2.46, 2.08, 2.78, 2.53],
            ]
        ).T,
    ),
}
_RHODES_PAIR = {
    ("pharmacological", "pharmacological"): 1,
    ("pharmacological", "non-pharmacological"): 2,
    ("pharmacological", "placebo / control"): 0,
    ("non-pharmacological", "non-pharmacological"): 2,
    ("non-pharmacological", "placebo / control"): 2,
}


def rhodes_prior(
    outcome: str | None = "mental health outcome",
    comparator1: str = "pharmacological",
    comparator2: str = "placebo / control",
    area: str = "other",
) -> TauPrior:
    """Rhodes et al. (2015) empirical log-t(5) prior for ``tau`` (standardised mean differences).

    ``outcome=None`` gives the general prior ``log tau^2 ~ t_5(-3.44, 2.59)``. Values as in
    bayesmeta 3.4's ``RhodesEtAlPrior`` (Tables 3, A.3.1, A.3.2).
    """
    if outcome is None:
        loc, sc = -3.44, 2.59
        label = "any outcome"
    else:
        j = RHODES_OUTCOMES.index(check_choice("outcome", outcome, RHODES_OUTCOMES))
        c = _pair(_RHODES_PAIR, comparator1, comparator2)
        locs, scales = _RHODES[check_choice("area", area, tuple(_RHODES))]
        loc, sc = float(locs[j, c]), float(scales[j, c])
        label = f"{outcome}, {RHODES_COMPARISONS[c]}, {area}"
    p = log_student_t(loc / 2, sc / 2, 5.0)
    return TauPrior(
        f"Rhodes et al. 2015 ({label}): {p.name}", True, 0.0, math.inf, 1.0, 6.0, p.logpdf_fn
    )
