"""Dose-response curve with its confidence band and the study arms sized by weight."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.plots import _common as c
from analysis.plots import style
from analysis.plots.diagnostics import place_labels


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
    reference: float | None = 0.0,
    reference_label: str = "placebo",
    labels: bool = True,
) -> Axes:
    """Draw a pooled dose-response curve with its confidence band.

    Parameters
    ----------
    prediction : pandas.DataFrame
        Tidy prediction frame (e.g. ``DoseResponseResult.predict(...)``) with columns
        ``dose, estimate, ci_low, ci_high`` (log scale for ratio measures).
    points : pandas.DataFrame, optional
        Comparisons with ``dose, yi, vi`` and optionally ``weight`` and ``label``; drawn as
        circles whose area is proportional to ``weight`` (default ``1/vi``), labelled by
        ``label`` when ``labels``. Rows with ``vi == 0`` (reference rows) get no circle.
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
        Draw a legend (below the axes).
    reference : float or None
        Dose of the reference (default 0): marked at the null value (RR/OR = 1, MD = 0) and
        labelled, with "curve constrained through the reference" in the legend (a model
        without intercept, as :func:`analysis.dose.dose_response`). None: not marked.
    reference_label : str
        What the reference is (default ``"placebo"``), for its label.
    labels : bool
        Label the points by the ``label`` column of ``points`` (placed where they overlap
        no other label or point; a label that fits nowhere is left out).

    Returns
    -------
    matplotlib.axes.Axes
    """
    c.require_columns(prediction, ["dose", "estimate", "ci_low", "ci_high"], "prediction")
    measure = c.resolve_measure(measure, prediction, points)
    ratio = c.is_ratio(measure)
    if ax is None:
        width, height = style.cm_to_inch(style.SINGLE_COLUMN_CM), 3.9
        ax = style.new_axes(width, height, (0.62 / width, 1.3 / height, 1 - 0.8 / width,
                                            1 - 1.45 / height))
    style.style_axes(ax)
    frame = prediction.sort_values("dose", kind="stable")
    dose = frame["dose"].to_numpy(float)
    est, low, high = (c.display(frame[col], measure) for col in ("estimate", "ci_low",
                                                                  "ci_high"))
    band = ax.fill_between(dose, low, high, color=style.COLOURS["band"], linewidth=0,
                           alpha=0.8, zorder=1, gid="dose-band")
    ax.plot(dose, est, color=style.COLOURS["curve"], lw=style.LINE_WIDTH * 1.4, zorder=3,
            gid="dose-curve")
    null_value = c.null_value(measure, null)
    ax.axhline(null_value, color=style.COLOURS["null"],
               lw=style.THIN_LINE_WIDTH, linestyle=(0, (3, 2)), zorder=0)
    handles: list[Line2D | Patch] = [
        Line2D([], [], color=style.COLOURS["curve"], lw=style.LINE_WIDTH * 1.4,
               label="Pooled curve" + (", through the reference" if reference is not None
                                       else "")),
        Patch(facecolor=_first_rgba(band.get_facecolor()), label=f"{level * 100:g}% CI"),
    ]
    if reference is not None:
        ax.scatter([reference], [null_value], s=22, marker="D", color=style.COLOURS["pooled"],
                   zorder=5, gid="dose-reference", clip_on=False)
        handles.append(Line2D([], [], linestyle="none", marker="D", markersize=4,
                              color=style.COLOURS["pooled"],
                              label=f"Reference: {reference_label}, dose {reference:g}, "
                                    f"{measure or 'effect'} = {null_value:g}"))
    shown, sizes = None, np.zeros(0)
    if points is not None and len(points):
        handle, sizes = _draw_points(ax, points, measure, reference_label)
        handles.append(handle)
        shown = points[points["vi"].to_numpy(float) > 0]
        sizes = sizes[points["vi"].to_numpy(float) > 0]
    if ratio:
        c.set_log_yaxis(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel if ylabel is not None else c.axis_label(measure, ratio))
    ax.set_xlim(left=min(0.0, float(np.nanmin(dose))))
    ax.set_xlim(*ax.get_xlim())
    ax.set_ylim(*ax.get_ylim())
    if labels and shown is not None and "label" in shown.columns:
        xs = np.append(shown["dose"].to_numpy(float), reference if reference is not None
                       else np.nan)
        ys = np.append(c.display(shown["yi"].to_numpy(float), measure), null_value)
        names = [*shown["label"].astype(str), reference_label.capitalize()]
        place_labels(ax, xs, ys, names, list(range(len(names) - (reference is None))),
                     gid="dose-label", radii=np.sqrt(np.append(sizes, 22.0) / np.pi))
    if legend:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(-0.15, -0.2), ncol=1,
                  frameon=False, prop={"family": style.FONT_FAMILY,
                                       "size": style.TICK_LABEL_SIZE})
    return ax


def _draw_points(ax: Axes, points: pd.DataFrame, measure: str | None,
                 against: str) -> tuple[Line2D, np.ndarray]:
    c.require_columns(points, ["dose", "yi", "vi"], "points")
    yi = points["yi"].to_numpy(float)
    vi = points["vi"].to_numpy(float)
    if "weight" in points.columns:
        weight = points["weight"].to_numpy(float)
    else:
        with np.errstate(divide="ignore"):
            weight = np.where(vi > 0, 1.0 / vi, np.nan)
    relative = weight / np.nanmax(weight) if np.isfinite(weight).any() else weight
    sizes = 90 * np.nan_to_num(relative, nan=0.0)  # area proportional to the weight
    ax.scatter(points["dose"].to_numpy(float), c.display(yi, measure), s=sizes,
               facecolors="none", edgecolors=style.COLOURS["study"], linewidths=0.7,
               zorder=2, gid="dose-points")
    handle = Line2D([], [], linestyle="none", marker="o", markersize=5, markerfacecolor="none",
                    color=style.COLOURS["study"],
                    label=f"Dose vs {against}, area ∝ " + (
                        "weight" if "weight" in points.columns else "1/vi"))
    return handle, sizes
