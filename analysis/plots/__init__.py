"""Figures: the only part of :mod:`analysis` that imports matplotlib.

Every function takes ``ax=None`` (creating a :class:`matplotlib.figure.Figure` directly, not
through pyplot, when it is None), draws from result objects or tidy frames without computing
statistics, returns the Axes, and never saves; the command line saves with
:func:`analysis.plots.style.savefig_kwargs` for repeatable files.

One call draws a result: :func:`forest` (``forest(pool(...))``, also a Mantel-Haenszel or
Peto result), :func:`funnel` (a pooled or a trim-and-fill result), :func:`leave_one_out`
and :func:`cumulative` (the results of :func:`analysis.leave_one_out` /
:func:`analysis.cumulative`), :func:`baujat` (the frame of
:func:`analysis.sensitivity.baujat`), :func:`influence` (an InfluenceResult; it takes
``fig=None`` and returns the Figure, having eight panels), :func:`bubble` (a
meta-regression that keeps its data, and a moderator), :func:`gosh` (a GoshResult: estimate
against I² of every subset). These are the same functions as
:func:`forest_plot` (with :func:`forest_figure_size`), :func:`funnel_plot`,
:func:`leave_one_out_plot`, :func:`cumulative_plot`, :func:`baujat_plot`,
:func:`influence_plot`, :func:`bubble_plot` and :func:`gosh_plot`, which also take the
data and the result separately; :func:`dose_response_plot` and :func:`labbe_plot` complete the set;
:func:`traffic_light` and :func:`summary_bar` draw the risk-of-bias table as robvis does;
:func:`tsa` (:func:`tsa_plot`) draws a trial sequential analysis;
:func:`network_graph` and :func:`netsplit_plot` draw a network meta-analysis;
:func:`bayes_forest` (:func:`bayes_forest_plot`, shrinkage intervals) and
:func:`bayes_posterior` (:func:`bayes_posterior_plot`, one panel per parameter by
:func:`bayes_density_plot`) draw a Bayesian meta-analysis (:func:`analysis.bayesmeta`).
:func:`multiverse` (:func:`multiverse_plot`) draws a specification curve with its choice panel.
"""

from __future__ import annotations

from analysis.plots import style
from analysis.plots.bayes import (
    bayes_density_plot,
    bayes_forest,
    bayes_forest_plot,
    bayes_posterior,
    bayes_posterior_plot,
)
from analysis.plots.diagnostics import baujat, baujat_plot, bubble, bubble_plot, labbe_plot
from analysis.plots.dose import dose_response_plot
from analysis.plots.forest import (
    forest,
    forest_figure_size,
    forest_plot,
    heterogeneity_text,
    overall_effect_text,
)
from analysis.plots.funnel import funnel, funnel_plot
from analysis.plots.gosh import gosh_plot
from analysis.plots.influence_panels import influence_plot
from analysis.plots.multiverse import multiverse_plot
from analysis.plots.network import netsplit_plot, network_graph
from analysis.plots.risk_of_bias import summary_bar, traffic_light
from analysis.plots.sensitivity import (
    cumulative,
    cumulative_plot,
    leave_one_out,
    leave_one_out_plot,
)
from analysis.plots.sequential import tsa, tsa_plot
from analysis.plots.style import savefig_kwargs

#: ``plots.influence(result)``: the same function as :func:`influence_plot`.
influence = influence_plot
#: ``plots.gosh(result)``: the same function as :func:`gosh_plot`.
gosh = gosh_plot
#: ``plots.multiverse(result)``: the same function as :func:`multiverse_plot`.
multiverse = multiverse_plot

__all__ = [
    "baujat",
    "baujat_plot",
    "bayes_density_plot",
    "bayes_forest",
    "bayes_forest_plot",
    "bayes_posterior",
    "bayes_posterior_plot",
    "bubble",
    "bubble_plot",
    "cumulative",
    "cumulative_plot",
    "dose_response_plot",
    "forest",
    "forest_figure_size",
    "forest_plot",
    "funnel",
    "funnel_plot",
    "gosh",
    "gosh_plot",
    "heterogeneity_text",
    "influence",
    "influence_plot",
    "labbe_plot",
    "leave_one_out",
    "leave_one_out_plot",
    "multiverse",
    "multiverse_plot",
    "netsplit_plot",
    "network_graph",
    "overall_effect_text",
    "savefig_kwargs",
    "style",
    "summary_bar",
    "traffic_light",
    "tsa",
    "tsa_plot",
]
