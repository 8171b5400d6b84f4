"""Risk-of-bias figures as robvis draws them: the traffic-light plot and the summary bar plot.

:func:`traffic_light` follows robvis' ``rob_traffic_light`` (McGuinness & Higgins 2021):
one row per study, one column per RoB 2 domain (D1-D5) and the overall judgement, a
coloured circle with a symbol per cell (``+`` low, ``-`` some concerns, ``×`` high, ``?`` no
information), and the domain names under the grid. :func:`summary_bar` follows
``rob_summary``: one horizontal 100% stacked bar per domain, the share of studies (or of
the weight, when weights are given) with each judgement.

Colours are the house palette's risk-of-bias colours (:data:`analysis.plots.style.COLOURS`:
Okabe-Ito bluish green, orange and vermillion, and grey for no information), which stay
distinguishable with the common colour-vision deficiencies; the symbols carry the same
information without colour. Nothing is computed here beyond counting and normalising the
judgements drawn.

References
----------
McGuinness LA, Higgins JPT. Risk-of-bias VISualization (robvis): an R package and Shiny web
app for visualizing risk-of-bias assessments. Res Synth Methods 2021;12:55-61.
doi:10.1002/jrsm.1411
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.data.risk_of_bias import (
    ALL_OUTCOMES,
    DOMAIN_NAMES,
    DOMAINS,
    OVERALL,
    effective_judgements,
)
from analysis.plots import style

__all__ = ["JUDGEMENT_STYLE", "summary_bar", "traffic_light"]

#: Colour, symbol and legend label of each judgement (robvis' order: low first).
JUDGEMENT_STYLE: dict[str, tuple[str, str, str]] = {
    "low": (style.COLOURS["rob_low"], "+", "Low"),
    "some concerns": (style.COLOURS["rob_some"], "\u2212", "Some concerns"),
    "high": (style.COLOURS["rob_high"], "\u00d7", "High"),
    "no information": (style.COLOURS["rob_unknown"], "?", "No information"),
}
_COLUMNS = (*DOMAINS, OVERALL)
_HEADERS = (*DOMAINS, "Overall")


def _grid(rob_frame: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """Study x domain table of judgements (the rows that apply to ``outcome``)."""
    missing = {"study_id", "domain", "judgement"} - set(rob_frame.columns)
    if missing:
        raise ValueError(f"argument 'rob_frame' needs columns study_id, domain, judgement; "
                         f"missing {sorted(missing)}")
    rows = (effective_judgements(rob_frame, outcome) if "outcome" in rob_frame.columns
            else rob_frame)
    if rows.duplicated(["study_id", "domain"]).any():
        raise ValueError("argument 'rob_frame' has several judgements for a study and domain")
    unknown = set(rows["judgement"].dropna().astype(str)) - set(JUDGEMENT_STYLE)
    if unknown:
        raise ValueError(f"argument 'rob_frame' has judgements {sorted(unknown)}; allowed: "
                         f"{list(JUDGEMENT_STYLE)}")
    grid = rows.pivot_table(index="study_id", columns="domain", values="judgement",
                            aggfunc="first")
    grid = grid.reindex(columns=list(_COLUMNS))
    if grid.empty:
        raise ValueError(f"argument 'rob_frame' has no judgements for outcome {outcome!r}")
    return grid


@style.plain_text
def traffic_light(
    rob_frame: pd.DataFrame,
    ax: Axes | None = None,
    *,
    outcome: str = ALL_OUTCOMES,
    study_labels: Mapping[str, str] | None = None,
) -> Axes:
    """Draw robvis' traffic-light plot of RoB 2 judgements.

    Parameters
    ----------
    rob_frame : pandas.DataFrame
        The risk-of-bias table (:func:`analysis.load_risk_of_bias`), or any frame with
        ``study_id``, ``domain`` (D1-D5, overall) and ``judgement``. With an ``outcome``
        column, the rows that apply to ``outcome`` are drawn (outcome-specific rows replace
        the study's ``all`` rows).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; by default a new Figure sized for the number of studies.
    outcome : str
        Outcome whose judgements are drawn; default ``all`` (study-level judgements).
    study_labels : mapping, optional
        Row labels by ``study_id`` (e.g. "Addolorato 2002"); default the identifiers.

    Returns
    -------
    matplotlib.axes.Axes
        One marker per cell (``studies x 6``) in a single collection, the symbols as text,
        and a legend of the judgements; the domain names are written under the grid.
    """
    grid = _grid(rob_frame, outcome)
    n = len(grid)
    row_in = 0.19
    legend_in = 0.9
    header_in = 0.42
    if ax is None:
        width = style.cm_to_inch(style.DOUBLE_COLUMN_CM * 0.72)
        height = header_in + n * row_in + legend_in
        left = 1.25 / width
        ax = style.new_axes(width, height, rect=(left, legend_in / height, 0.66 - left,
                                                 n * row_in / height))
    style.style_axes(ax, spines=())
    studies = list(grid.index.astype(str))
    xs, ys, colours = [], [], []
    for row, study in enumerate(studies):
        for col, domain in enumerate(_COLUMNS):
            judgement = grid.loc[study, domain]
            if pd.isna(judgement):
                continue
            colour, symbol, _ = JUDGEMENT_STYLE[str(judgement)]
            xs.append(col)
            ys.append(row)
            colours.append(colour)
            ink = "#222222" if judgement == "no information" else "white"
            ax.text(col, row, symbol, ha="center", va="center", color=ink,
                    fontweight="bold", **style.text_kwargs(style.FONT_SIZE + 1))
    ax.scatter(xs, ys, s=95, c=colours, edgecolors="#333333", linewidths=0.4, zorder=2)
    for col in range(len(_COLUMNS)):
        ax.axvline(col, color=style.COLOURS["grid"], linewidth=style.THIN_LINE_WIDTH,
                   zorder=0)
    ax.axvline(len(DOMAINS) - 0.5, color="#888888", linewidth=style.THIN_LINE_WIDTH)
    ax.set_xlim(-0.6, len(_COLUMNS) - 0.4)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xticks(range(len(_COLUMNS)), list(_HEADERS))
    ax.xaxis.tick_top()
    labels = [study_labels.get(s, s) if study_labels else s for s in studies]
    ax.set_yticks(range(n), labels)
    ax.tick_params(length=0)
    for tick in ax.get_xticklabels():
        tick.set_fontweight("bold")
    ax.set_title("Risk-of-bias domains (RoB 2)", fontsize=style.HEADER_SIZE,
                 fontfamily=style.FONT_FAMILY, pad=14)
    names = "\n".join(f"{code}: {DOMAIN_NAMES[code]}" for code in DOMAINS)
    ax.text(0.0, -0.04, "Domains\n" + names, transform=ax.transAxes, ha="left", va="top",
            linespacing=1.3, **style.text_kwargs(style.MIN_FONT_SIZE))
    handles = [Line2D([], [], marker="o", linestyle="", markersize=6.5,
                      markerfacecolor=colour, markeredgecolor="#333333",
                      markeredgewidth=0.4, label=f"{symbol}  {label}")
               for colour, symbol, label in JUDGEMENT_STYLE.values()]
    legend = ax.legend(handles=handles, title="Judgement", loc="upper left",
                       bbox_to_anchor=(1.03, 1.0), frameon=False,
                       prop={"family": style.FONT_FAMILY, "size": style.MIN_FONT_SIZE + 0.5},
                       title_fontproperties={"family": style.FONT_FAMILY,
                                             "size": style.FONT_SIZE, "weight": "bold"})
    legend.set_alignment("left")
    return ax


@style.plain_text
def summary_bar(
    rob_frame: pd.DataFrame,
    weights: Mapping[str, float] | pd.Series | None = None,
    ax: Axes | None = None,
    *,
    outcome: str = ALL_OUTCOMES,
    weight_label: str = "weight",
) -> Axes:
    """Draw robvis' summary plot: one 100% stacked horizontal bar per domain.

    Parameters
    ----------
    rob_frame : pandas.DataFrame
        As for :func:`traffic_light`.
    weights : mapping or pandas.Series, optional
        Weight per ``study_id`` (e.g. participants randomised, or a meta-analysis'
        weights); each bar then shows the share of the total weight with each judgement.
        Default: every study counts once. Studies without a weight are left out.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; by default a new single-column Figure.
    outcome : str
        Outcome whose judgements are drawn; default ``all``.
    weight_label : str
        What the weights are, for the x-axis label (e.g. "participants randomised").

    Returns
    -------
    matplotlib.axes.Axes
        Bars from top (D1) to bottom (Overall), one rectangle per domain x judgement with a
        non-zero share, and a legend of the judgements.
    """
    grid = _grid(rob_frame, outcome)
    if weights is None:
        w = pd.Series(1.0, index=grid.index)
        xlabel = "Studies (%)"
    else:
        w = pd.Series(weights, dtype=float).reindex(grid.index.astype(str))
        w.index = grid.index
        if w.isna().all() or (w < 0).any() or float(w.sum()) <= 0:
            raise ValueError("argument 'weights' must give non-negative weights, not all zero, "
                             "for the studies of 'rob_frame'")
        grid = grid[w.notna().to_numpy()]
        w = w.dropna()
        xlabel = f"Share of {weight_label} (%)"
    if ax is None:
        width = style.cm_to_inch(style.DOUBLE_COLUMN_CM * 0.72)
        height = 1.95
        left = 2.45 / width
        ax = style.new_axes(width, height, rect=(left, 0.72 / height, 0.97 - left,
                                                 1.15 / height))
    style.style_axes(ax, spines=("bottom",))
    total = float(w.sum())
    for row, domain in enumerate(_COLUMNS):
        start = 0.0
        column = grid[domain]
        for judgement, (colour, _, _) in JUDGEMENT_STYLE.items():
            share = 100.0 * float(w[(column == judgement).fillna(False).to_numpy()].sum()) / total
            if share <= 0:
                continue
            ax.barh(row, share, left=start, height=0.7, color=colour, edgecolor="#333333",
                    linewidth=0.4)
            start += share
        if start < 100.0 - 1e-9:  # studies without a judgement for this domain
            ax.barh(row, 100.0 - start, left=start, height=0.7, color="white",
                    edgecolor="#333333", linewidth=0.4, hatch="////")
    ax.set_xlim(0, 100)
    ax.set_ylim(len(_COLUMNS) - 0.5, -0.5)
    ax.set_xticks(np.arange(0, 101, 25))
    ax.set_xlabel(xlabel)
    ax.set_yticks(range(len(_COLUMNS)),
                  [f"{DOMAIN_NAMES[code]}" for code in _COLUMNS])
    ax.tick_params(axis="y", length=0)
    handles = [Patch(facecolor=colour, edgecolor="#333333", linewidth=0.4, label=label)
               for colour, _, label in JUDGEMENT_STYLE.values()]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=4,
              bbox_transform=ax.get_figure(root=True).transFigure,  # type: ignore[union-attr]
              frameon=False, handlelength=1.2, columnspacing=1.2,
              prop={"family": style.FONT_FAMILY, "size": style.MIN_FONT_SIZE + 0.5})
    return ax
