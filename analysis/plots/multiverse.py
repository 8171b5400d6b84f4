"""The specification curve of a multiverse meta-analysis, with its choice panel.

Top: every feasible specification's estimate with its confidence interval, ordered by the
estimate, coloured by conclusion (CI above the null, below it, or including it). Below: one
row per level of every choice the multiverse varies, a mark under each specification that
uses the level (Simonsohn, Simmons & Nelson 2020; Voracek, Kossmeier & Tran 2019).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.plots import _common as c
from analysis.plots import style

__all__ = ["CHOICE_NAMES", "multiverse_plot"]

#: Row-group names of the choice panel (other choices, e.g. an exclusion column, are shown
#: with underscores as spaces).
CHOICE_NAMES = {"outcome": "outcome", "timepoint": "time point", "analysis_set": "analysis set",
                "derived": "derived numbers", "reported_estimates": "published estimates",
                "dose_class": "dose class", "measure": "measure", "method": "tau² estimator",
                "ci": "CI method"}
_CONCLUSION_COLOURS = {"above": style.OKABE_ITO["blue"],
                       "below": style.OKABE_ITO["vermillion"], "includes": "#9A9A9A"}
_ROW_IN = 0.13


def _row_labels(result: Any) -> list[tuple[str, str]]:
    return [(name, value) for name in result.choices for value in result.levels[name]]


def _axis_label(measures: list[str]) -> str:
    ratio = c.is_ratio(measures[0])
    if len(measures) == 1:
        return c.axis_label(measures[0], ratio)
    return "Estimate (" + ", ".join(measures) + (", log scale)" if ratio else ")")


@style.plain_text
def multiverse_plot(result: Any, *, labels: tuple[str, str] | None = None,
                    fig: Figure | None = None) -> Axes:
    """Draw the specification curve and the choice panel of a ``MultiverseResult``.

    Parameters
    ----------
    result : MultiverseResult
        From :func:`analysis.multiverse`.
    labels : tuple of str, optional
        Names of the two directions (below, above the null), e.g. ``("Favours placebo",
        "Favours baclofen")``, used in the legend for the coloured conclusions.
    fig : matplotlib.figure.Figure, optional
        Figure to draw on (its size is kept); default a double-column Figure whose height
        grows with the number of choice levels.

    Returns
    -------
    matplotlib.axes.Axes
        The curve's Axes (the choice panel is the figure's second Axes). x: specifications
        ordered by estimate; y: the estimate on the measure's scale (log axis for ratios).
    """
    table = result.table
    if table.empty:
        raise ValueError("the multiverse has no feasible specification to draw")
    order = np.lexsort((np.arange(len(table)), table["estimate"].to_numpy(float)))
    t = table.iloc[order].reset_index(drop=True)
    x = np.arange(len(t), dtype=float)
    est = t["display_estimate"].to_numpy(float)
    low = t["display_ci_low"].to_numpy(float)
    high = t["display_ci_high"].to_numpy(float)
    measures = list(result.levels["measure"])
    ratio = c.is_ratio(measures[0])
    null = 1.0 if ratio else 0.0
    conclusion = np.where(t["ci_low"] > 0, "above", np.where(t["ci_high"] < 0, "below",
                                                               "includes"))
    rows = _row_labels(result)
    label_width = c.max_width_in(
        [f"{CHOICE_NAMES.get(n, n.replace('_', ' '))}: {v}" for n, v in rows],
        style.TICK_LABEL_SIZE)
    width = style.cm_to_inch(style.DOUBLE_COLUMN_CM)
    curve_h, panel_h = 2.3, max(len(rows), 1) * _ROW_IN
    height = curve_h + panel_h + 0.95
    if fig is None:
        with style.rc_context():
            fig = Figure(figsize=(width, height), dpi=style.RC_PARAMS["figure.dpi"])
    width, height = fig.get_size_inches()
    left = (label_width + 0.2) / width
    right = 1 - 0.15 / width
    bottom = 0.35 / height
    panel_frac = panel_h / height
    top_ax = fig.add_axes((left, bottom + panel_frac + 0.18 / height, right - left,
                           curve_h / height))
    panel = fig.add_axes((left, bottom, right - left, panel_frac), sharex=top_ax)
    style.style_axes(top_ax)
    style.style_axes(panel, spines=())

    many = len(t) > 300
    for key, colour in _CONCLUSION_COLOURS.items():
        m = conclusion == key
        if not m.any():
            continue
        segments = np.stack([np.column_stack([x[m], low[m]]), np.column_stack([x[m], high[m]])],
                            axis=1)
        top_ax.add_collection(LineCollection(
            list(segments), colors=colour, linewidths=0.35 if many else 0.7,
            alpha=0.45 if many else 0.8, rasterized=many, gid=f"multiverse-ci-{key}"))
        top_ax.scatter(x[m], est[m], s=2.5 if many else 8, c=colour, edgecolors="none",
                       zorder=3, rasterized=many, gid=f"multiverse-estimate-{key}")
    top_ax.axhline(null, color=style.COLOURS["null"], linewidth=style.THIN_LINE_WIDTH,
                   linestyle="--", zorder=1)
    # very wide intervals (HKSJ with two or three studies) would flatten the curve: the axis
    # spans the central 90% of the interval limits and the estimates, longer bars are cut
    finite_low, finite_high = low[np.isfinite(low)], high[np.isfinite(high)]
    lo = min(float(np.quantile(finite_low, 0.05)), float(est.min()), null)
    hi = max(float(np.quantile(finite_high, 0.95)), float(est.max()), null)
    if ratio:
        top_ax.set_yscale("log")
        top_ax.set_ylim(lo / 1.15, hi * 1.15)
        ticks = c.ratio_ticks(lo, hi)
        top_ax.set_yticks(ticks)
        top_ax.set_yticklabels([f"{tk:g}" for tk in ticks])
        top_ax.minorticks_off()
    else:
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        top_ax.set_ylim(lo - pad, hi + pad)
    top_ax.set_ylabel(_axis_label(measures))
    top_ax.set_xlim(-0.5, len(t) - 0.5)
    top_ax.tick_params(axis="x", labelbottom=False, length=0)
    shares = result.shares()
    top_ax.set_title(
        f"{len(t):,} specifications ({result.n_total:,} combinations); CI above the null: "
        f"{100 * shares['ci_above']:.0f}%, below: {100 * shares['ci_below']:.0f}%",
        loc="left", fontsize=style.HEADER_SIZE)
    names = {"above": "CI above the null", "below": "CI below the null",
             "includes": "CI includes the null"}
    if labels is not None:
        names["above"] += f" ({labels[1].lower()})"
        names["below"] += f" ({labels[0].lower()})"
    handles = [Line2D([], [], marker="o", linestyle="-", color=col, markersize=3,
                      linewidth=0.7, label=names[key])
               for key, col in _CONCLUSION_COLOURS.items() if (conclusion == key).any()]
    top_ax.legend(handles=handles, loc="upper left", frameon=False, ncols=len(handles),
                  fontsize=style.TICK_LABEL_SIZE, bbox_to_anchor=(0.0, 1.0))

    # the choice panel: row 0 at the top
    for r, (name, value) in enumerate(rows):
        m = (t[name] == value).to_numpy()
        panel.scatter(x[m], np.full(int(m.sum()), float(r)), s=1.5 if many else 6,
                      marker="s" if many else "o", c=style.OKABE_ITO["black"],
                      edgecolors="none", rasterized=many, gid=f"multiverse-choice-{r}")
    previous = None
    for r, (name, _) in enumerate(rows):
        if previous is not None and name != previous:
            panel.axhline(r - 0.5, color=style.COLOURS["grid"], linewidth=0.5)
        previous = name
    panel.set_ylim(len(rows) - 0.5, -0.5)
    panel.set_yticks(range(len(rows)))
    panel.set_yticklabels([f"{CHOICE_NAMES.get(n, n.replace('_', ' '))}: {v}"
                           for n, v in rows])
    panel.tick_params(axis="y", length=0)
    panel.tick_params(axis="x", length=0, labelbottom=True)
    panel.set_xlabel("Specifications, ordered by estimate")
    panel.set_xticks([])
    return top_ax
