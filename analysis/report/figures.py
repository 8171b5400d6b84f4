"""Which figures an analysis of the plan gets, and drawing them (no saving).

:func:`figure_stems` (per analysis) and :func:`rob_figure_stems` (the risk-of-bias figures,
one set per report) are the single source of truth for the file names: the generated
Makefile lists exactly these, and the command line draws exactly these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from analysis.report.plan import MIN_STUDIES_DIAGNOSTICS, AnalysisRun, Plan

if TYPE_CHECKING:  # matplotlib is imported by analysis.plots only, when drawing
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FIGURE_FORMATS", "ROB_FIGURES", "draw_figure", "draw_rob_figure", "figure_stems",
           "rob_figure_stems"]

FIGURE_FORMATS = ("pdf", "svg", "png")
#: The risk-of-bias figures (study level, one set per report) and their captions.
ROB_FIGURES = {
    "rob_traffic_light": "Risk of bias (RoB 2) per study and domain, study-level judgements "
                         "(traffic-light plot as robvis draws it)",
    "rob_summary": "Risk of bias (RoB 2) summary: share of participants randomised "
                   "(n_randomised_total of studies.csv) per judgement and domain",
}


def figure_stems(run: AnalysisRun) -> list[str]:
    """Return the figure file stems (without extension) for one analysis run."""
    if run.result is None:  # nothing pooled: the forest plot shows the "Not estimable" rows
        return [] if run.not_estimable.empty else [f"forest_{run.spec.id}"]
    stems = [f"forest_{run.spec.id}"]
    if run.leave_one_out is not None:
        stems.append(f"leave_one_out_{run.spec.id}")
    if len(run.data) >= MIN_STUDIES_DIAGNOSTICS:
        stems.append(f"funnel_{run.spec.id}")
    stems += [f"subgroups_{run.spec.id}_{column}" for column in run.subgroups]
    if run.dose_result is not None:
        stems.append(f"dose_response_{run.spec.id}")
    if run.cumulative is not None:
        stems.append(f"cumulative_{run.spec.id}")
    if run.baujat is not None:
        stems.append(f"baujat_{run.spec.id}")
    if run.dose_regression is not None:
        stems.append(f"bubble_{run.spec.id}")
    arm_level = ~run.data["from_reported_estimate"].astype(bool)
    if run.spec.measure in ("OR", "RR", "RD") and arm_level.sum() >= 2:
        stems.append(f"labbe_{run.spec.id}")
    if run.gosh is not None:
        stems.append(f"gosh_{run.spec.id}")
    if run.bayes:
        stems.append(f"posterior_{run.spec.id}")
    if run.tsa is not None:
        stems.append(f"tsa_{run.spec.id}")
    if run.multiverse is not None and len(run.multiverse):
        stems.append(f"multiverse_{run.spec.id}")
    return stems


def _gosh(run: AnalysisRun, plan: Plan) -> Axes:
    from analysis.plots import gosh_plot
    from analysis.report.robustness import gosh_highlight

    assert run.gosh is not None and run.gosh_diagnostics is not None
    return gosh_plot(run.gosh, study=gosh_highlight(run.gosh_diagnostics))


def _posterior(run: AnalysisRun, plan: Plan) -> Axes:
    from analysis.plots.posterior import posterior_plot

    return posterior_plot({f"tau ~ {text}" if not text.startswith("turner") else
                           "tau ~ Turner et al. 2015": fit for text, fit in run.bayes.items()})


def _tsa(run: AnalysisRun, plan: Plan) -> Axes:
    from analysis.plots import tsa_plot

    assert run.tsa is not None
    return tsa_plot(run.tsa)


def _forest(run: AnalysisRun, plan: Plan) -> Axes:
    from analysis.plots import forest_plot

    # every comparison: the pooled ones and those "Not estimable" (result of the former)
    return forest_plot(run.comparisons(), run.result, favours=run.spec.favours,
                       arm_labels=("Treatment", "Control"), level=plan.level)


def _leave_one_out(run: AnalysisRun, plan: Plan) -> Axes:
    from analysis.plots import leave_one_out

    assert run.leave_one_out is not None
    return leave_one_out(run.leave_one_out, measure=run.spec.measure,
                         favours=run.spec.favours)


def _funnel(run: AnalysisRun, plan: Plan) -> Axes:
    from analysis.plots import funnel_plot

    return funnel_plot(run.data, run.result, measure=run.spec.measure)


def _dose_response(run: AnalysisRun, plan: Plan) -> Axes:
    import numpy as np

    from analysis.plots import dose_response_plot

    assert run.dose_result is not None and run.dose_points is not None
    highest = float(run.dose_points["dose"].max())
    prediction = run.dose_result.predict(np.linspace(0.0, highest, 121), reference=0.0)
    return dose_response_plot(prediction, run.dose_points, measure=run.spec.measure,
                              xlabel=plan.dose_label, level=plan.level,
                              reference_label=plan.comparator or "control")


def _cumulative(run: AnalysisRun, plan: Plan) -> Axes:
    from analysis.plots import cumulative

    assert run.cumulative is not None
    return cumulative(run.cumulative, measure=run.spec.measure, favours=run.spec.favours)


def _baujat(run: AnalysisRun, plan: Plan) -> Axes:
    from analysis.plots import baujat

    assert run.baujat is not None
    return baujat(run.baujat)  # labelled by its study column


def _bubble(run: AnalysisRun, plan: Plan) -> Axes:
    from analysis.plots import bubble_plot

    assert run.dose_regression is not None
    return bubble_plot(run.data, run.dose_regression, plan.dose_column,
                       measure=run.spec.measure, xlabel=plan.dose_label)


def _labbe(run: AnalysisRun, plan: Plan) -> Axes:
    from analysis.plots import labbe_plot

    arm_level = run.data[~run.data["from_reported_estimate"].astype(bool)]
    return labbe_plot(arm_level, run.result, measure=run.spec.measure)


def _multiverse(run: AnalysisRun, plan: Plan) -> Axes:
    from analysis.plots import multiverse_plot

    assert run.multiverse is not None
    return multiverse_plot(run.multiverse, labels=run.spec.favours)


def _subgroups(column: str) -> Callable[[AnalysisRun, Plan], Axes]:
    def draw(run: AnalysisRun, plan: Plan) -> Axes:
        from analysis.plots import forest_plot

        assert run.result is not None
        return forest_plot(run.subgroup_data[column], run.result,
                           subgroups=run.subgroups[column], favours=run.spec.favours,
                           subgroup_title=run.subgroup_titles.get(column),
                           min_per_subgroup=plan.min_studies_per_subgroup)

    return draw


def draw_figure(run: AnalysisRun, plan: Plan, stem: str) -> Figure:
    """Draw the figure called ``stem`` (one of :func:`figure_stems`) and return it.

    Raises
    ------
    ValueError
        If ``stem`` is not a figure of this run.
    """
    analysis_id = run.spec.id
    drawers: dict[str, Callable[[AnalysisRun, Plan], Axes]] = {
        f"forest_{analysis_id}": _forest,
        f"leave_one_out_{analysis_id}": _leave_one_out,
        f"funnel_{analysis_id}": _funnel,
        f"dose_response_{analysis_id}": _dose_response,
        f"cumulative_{analysis_id}": _cumulative,
        f"baujat_{analysis_id}": _baujat,
        f"bubble_{analysis_id}": _bubble,
        f"labbe_{analysis_id}": _labbe,
        f"gosh_{analysis_id}": _gosh,
        f"posterior_{analysis_id}": _posterior,
        f"tsa_{analysis_id}": _tsa,
        f"multiverse_{analysis_id}": _multiverse,
    }
    for column in run.subgroups:
        drawers[f"subgroups_{analysis_id}_{column}"] = _subgroups(column)
    if stem not in figure_stems(run) or stem not in drawers:
        raise ValueError(f"figure {stem!r} is not produced by analysis {analysis_id!r}; "
                         f"it produces {figure_stems(run)}")
    figure = drawers[stem](run, plan).get_figure(root=True)
    assert figure is not None
    return figure


def rob_figure_stems(rob: pd.DataFrame | None) -> list[str]:
    """Return the risk-of-bias figure stems: both when there is a table, else none."""
    return [] if rob is None else list(ROB_FIGURES)


def draw_rob_figure(stem: str, rob: pd.DataFrame, studies: pd.DataFrame) -> Figure:
    """Draw risk-of-bias figure ``stem`` (one of :data:`ROB_FIGURES`) and return it.

    The summary bars are weighted by each study's ``n_randomised_total`` (studies without
    it are left out of the weighted bars, and the caption says what the weights are).
    """
    from analysis.plots import summary_bar, traffic_light

    if stem == "rob_traffic_light":
        ax = traffic_light(rob)
    elif stem == "rob_summary":
        randomised = studies["n_randomised_total"].astype("Float64").astype(float)
        weights = pd.Series(randomised.to_numpy(),
                            index=studies["study_id"].astype(str).to_numpy())
        ax = summary_bar(rob, weights=weights, weight_label="participants randomised")
    else:
        raise ValueError(f"figure {stem!r} is not a risk-of-bias figure; known: "
                         f"{list(ROB_FIGURES)}")
    figure = ax.get_figure(root=True)
    assert figure is not None
    return figure
