"""Dose-response curve with its confidence band and the study arms sized by weight."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.plots import _common as c
from analysis.plots import style


def _first_rgba(colours: object) -> tuple[float, float, float, float]:
    """Return the first RGBA colour of a collection's face colours (an N x 4 array)."""
    red, green, blue, alpha = np.asarray(colours, dtype=float).reshape(-1, 4)[0].tolist()
    return float(red), float(green), float(blue), float(alpha)

__all__ = ["dose_response_plot"]


@style.plain_text
def dose_response_plot(
    prediction: pd.DataFrame,
    points: pd.DataFrame | None = None,
    *,
    ax: Axes | None = None,
    measure: str | None = None,
    null: float | None = None,
    xlabel: str = "Dose",
    ylabel: str | None = None,
    level: float = 0.95,
    legend: bool = True,
) -> Axes:
    """Draw a pooled dose-response curve with its confidence band.

    Parameters
    ----------
    prediction : pandas.DataFrame
        Tidy prediction frame (e.g. ``DoseResponseResult.predict(...)``) with columns
        ``dose, estimate, ci_low, ci_high`` (log scale for ratio measures).
    points : pandas.DataFrame, optional
        Study arms with ``dose, yi, vi`` and optionally ``weight``; drawn as circles whose
        area is proportional to ``weight`` (default ``1/vi``, i.e. inverse-variance display
        scaling). Rows with ``vi == 0`` (reference arms) are drawn at the smallest size.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; when None a single-column (8.5 cm) Figure is created.
    measure : str, optional
        Measure code; ratio measures are back-transformed on a log y axis.
    null : float, optional
        No-effect reference line (default 1 for ratio measures, else 0).
    xlabel, ylabel : str
        Axis labels (``ylabel`` defaults to the measure name).
    level : float
        Confidence level of the band, for the legend text only.
    legend : bool
        Draw a legend.

    Returns
    -------
    matplotlib.axes.Axes
    """
    c.require_columns(prediction, ["dose", "estimate", "ci_low", "ci_high"], "prediction")
    measure = c.resolve_measure(measure, prediction, points)
    ratio = c.is_ratio(measure)
    if ax is None:
        width = style.cm_to_inch(style.SINGLE_COLUMN_CM)
        ax = style.new_axes(width, 2.6)
    style.style_axes(ax)
    frame = prediction.sort_values("dose", kind="stable")
    dose = frame["dose"].to_numpy(float)
    est, low, high = (c.display(frame[col], measure) for col in ("estimate", "ci_low",
                                                                  "ci_high"))
    band = ax.fill_between(dose, low, high, color=style.COLOURS["band"], linewidth=0,
                           alpha=0.8, zorder=1, gid="dose-band")
    ax.plot(dose, est, color=style.COLOURS["curve"], lw=style.LINE_WIDTH * 1.4, zorder=3,
            gid="dose-curve")
    ax.axhline(c.null_value(measure, null), color=style.COLOURS["null"],
               lw=style.THIN_LINE_WIDTH, linestyle=(0, (3, 2)), zorder=0)
    handles: list[Line2D | Patch] = [
        Line2D([], [], color=style.COLOURS["curve"], lw=style.LINE_WIDTH * 1.4,
               label="Pooled estimate"),
        Patch(facecolor=_first_rgba(band.get_facecolor()), label=f"{level * 100:g}% CI"),
    ]
    if points is not None and len(points):
        handles.append(_draw_points(ax, points, measure))
    if ratio:
        c.set_log_yaxis(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel if ylabel is not None else c.axis_label(measure, ratio))
    ax.set_xlim(left=min(0.0, float(np.nanmin(dose))))
    if legend:
        ax.legend(handles=handles, loc="best", frameon=False,
                  prop={"family": style.FONT_FAMILY, "size": style.TICK_LABEL_SIZE})
    return ax


def _draw_points(ax: Axes, points: pd.DataFrame, measure: str | None) -> Line2D:
    c.require_columns(points, ["dose", "yi", "vi"], "points")
    yi = points["yi"].to_numpy(float)
    vi = points["vi"].to_numpy(float)
    if "weight" in points.columns:
        weight = points["weight"].to_numpy(float)
    else:
        with np.errstate(divide="ignore"):
            weight = np.where(vi > 0, 1.0 / vi, np.nan)
    relative = weight / np.nanmax(weight) if np.isfinite(weight).any() else weight
    sizes = 6 + 60 * np.nan_to_num(relative, nan=0.0)
    ax.scatter(points["dose"].to_numpy(float), c.display(yi, measure), s=sizes,
               facecolors="none", edgecolors=style.COLOURS["study"], linewidths=0.7,
               zorder=2, gid="dose-points")
    return Line2D([], [], linestyle="none", marker="o", markersize=5, markerfacecolor="none",
                  color=style.COLOURS["study"], label="Study arms (size: weight)")
