"""Trial sequential analysis: required information size, spending boundaries, the TSA.

:mod:`analysis.sequential.information` (required information size and its diversity /
inconsistency corrections), :mod:`analysis.sequential.boundaries` (Lan-DeMets alpha- and
beta-spending boundaries by recursive numerical integration) and
:mod:`analysis.sequential.tsa` (:func:`trial_sequential_analysis`, the cumulative Z-curve
against the boundaries, with the TSA-adjusted interval and the conclusion in words). The
plot is :func:`analysis.plots.tsa`.
"""

from __future__ import annotations

from analysis.sequential.boundaries import (
    SequentialBoundaries,
    alpha_boundaries,
    crossing_probabilities,
    design_inflation,
    futility_boundaries,
    spending,
)
from analysis.sequential.information import (
    diversity,
    heterogeneity_adjusted,
    required_information_size,
    tau2_information_size,
)
from analysis.sequential.tsa import trial_sequential_analysis

__all__ = [
    "SequentialBoundaries",
    "alpha_boundaries",
    "crossing_probabilities",
    "design_inflation",
    "diversity",
    "futility_boundaries",
    "heterogeneity_adjusted",
    "required_information_size",
    "spending",
    "tau2_information_size",
    "trial_sequential_analysis",
]
