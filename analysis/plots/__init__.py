"""Figures: the only part of :mod:`analysis` that imports matplotlib.

Every function takes ``ax=None`` (creating a :class:`matplotlib.figure.Figure` directly, not
through pyplot, when it is None), draws from result objects or tidy frames without computing
statistics, returns the Axes, and never saves; the command line saves with
:func:`analysis.plots.style.savefig_kwargs` for repeatable files.

Functions: :func:`forest_plot` (with :func:`forest_figure_size`), :func:`funnel_plot`,
:func:`dose_response_plot`, :func:`cumulative_plot`, :func:`leave_one_out_plot`,
:func:`labbe_plot`, :func:`baujat_plot`, :func:`bubble_plot`, :func:`influence_plot` (also
as ``influence``; it takes ``fig=None`` and returns the Figure, having eight panels).
"""

from __future__ import annotations

from analysis.plots import style
from analysis.plots.diagnostics import baujat_plot, bubble_plot, labbe_plot
from analysis.plots.dose import dose_response_plot
from analysis.plots.forest import (
    forest_figure_size,
    forest_plot,
    heterogeneity_text,
    overall_effect_text,
)
from analysis.plots.funnel import funnel_plot
from analysis.plots.influence_panels import influence_plot
from analysis.plots.sensitivity import cumulative_plot, leave_one_out_plot
from analysis.plots.style import savefig_kwargs

#: ``plots.influence(result)``: the same function as :func:`influence_plot`.
influence = influence_plot

__all__ = [
    "baujat_plot",
    "bubble_plot",
    "cumulative_plot",
    "dose_response_plot",
    "forest_figure_size",
    "forest_plot",
    "funnel_plot",
    "heterogeneity_text",
    "influence",
    "influence_plot",
    "labbe_plot",
    "leave_one_out_plot",
    "overall_effect_text",
    "savefig_kwargs",
    "style",
]
