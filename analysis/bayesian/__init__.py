"""Bayesian random-effects meta-analysis by numerical integration (Röver's bayesmeta method).

:func:`bayesmeta` fits the model (:mod:`analysis.bayesian.fit`); the priors are in
:mod:`analysis.bayesian.priors`; the numerical posterior (exact tau marginal, DIRECT normal
mixtures for mu, theta_new and the study effects) in :mod:`analysis.bayesian.posterior`; the
result class in :mod:`analysis.bayesian.result`.
"""

from __future__ import annotations

from analysis.bayesian.fit import bayesmeta
from analysis.bayesian.priors import (
    MuPrior,
    TauPrior,
    half_cauchy,
    half_normal,
    half_student_t,
    improper_uniform,
    jeffreys,
    log_normal,
    log_student_t,
    mu_flat,
    mu_normal,
    rhodes_prior,
    turner_prior,
    uniform,
)
from analysis.bayesian.result import BayesFactors, BayesMetaResult, PosteriorSummary

__all__ = [
    "BayesFactors",
    "BayesMetaResult",
    "MuPrior",
    "PosteriorSummary",
    "TauPrior",
    "bayesmeta",
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
