"""Contour-enhanced funnel plot (Peters et al. 2008), with optional trim-and-fill studies.

Effects are on the x axis (back-transformed on a log axis for ratio measures) and standard
errors on the inverted y axis. Grey regions mark where a study's two-sided Wald test against
the null would give p < 0.01, 0.01-0.05 and 0.05-0.10; white is p > 0.10. Studies imputed by
trim-and-fill (:class:`analysis.results.TrimFillResult`) are drawn as open circles with the
adjusted pooled estimate as a dashed line.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from statistics import NormalDist

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon

from analysis.plots import _common as c
from analysis.plots import style
from analysis.plots.forest import result_data
from analysis.results import MantelHaenszelResult, PoolResult, TrimFillResult

__all__ = ["funnel", "funnel_plot"]


@style.plain_text
def funnel_plot(
    data: pd.DataFrame | PoolResult | MantelHaenszelResult | TrimFillResult,
    result: PoolResult | MantelHaenszelResult | None = None,
    *,
    ax: Axes | None = None,
    measure: str | None = None,
    null: float | None = None,
    contours: Sequence[float] = (0.10, 0.05, 0.01),
    trimfill: TrimFillResult | None = None,
    xlabel: str | None = None,
    legend: bool = True,
) -> Axes:
    """Draw a contour-enhanced funnel plot.

    Parameters
    ----------
    data : pandas.DataFrame, PoolResult, MantelHaenszelResult or TrimFillResult
        Columns ``yi`` and ``vi`` (log scale for ratio measures). Or a fitted result alone
        (``plots.funnel(pool(...))``: its ``yi``, ``vi`` and estimate), or the result of
        :func:`analysis.trim_and_fill` (the observed studies, the model fitted to them, the
        filled studies and the adjusted estimate, as metafor's ``funnel(trimfill(res))``).
    result : PoolResult, optional
        Pooled result: a solid vertical line at its estimate.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; when None a single-column (8.5 cm) Figure is created with room for
        the legend below the axes.
    measure : str, optional
        Measure code; default from ``data["measure"]``, ``result`` or ``trimfill``.
    null : float, optional
        Centre of the significance contours on the display scale (default 1 for ratio
        measures, else 0).
    contours : sequence of float
        Two-sided p-value thresholds of the shaded regions (at most three).
    trimfill : TrimFillResult, optional
        Adds the imputed studies (``trimfill.filled``) and the adjusted estimate.
    xlabel : str, optional
        Axis label; default the measure name.
    legend : bool
        Draw the legend (below the axes).

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    The contour for threshold p is ``null ± z(1 - p/2) · SE``; these are display guides,
    not tests of the data.
    """
    if isinstance(data, TrimFillResult):
        if trimfill is not None:
            raise ValueError("argument 'trimfill' must be None when 'data' is a TrimFillResult")
        trimfill = data
        observed = data.original
        if observed is None:
            raise ValueError("argument 'data' is a TrimFillResult without the model of the "
                             "observed studies; pass funnel_plot(data, result, trimfill=...)")
        data = observed
    if not isinstance(data, pd.DataFrame):
        if result is None:
            result = data
        data = result_data(data)
    c.require_columns(data, ["yi", "vi"], "data")
    levels = sorted(float(p) for p in contours)
    if not levels or len(levels) > 3 or not all(0 < p < 1 for p in levels):
        raise ValueError(f"argument 'contours' = {tuple(contours)!r} must hold one to three "
                         "p values between 0 and 1")
    measure = c.resolve_measure(measure, data, result, getattr(trimfill, "result", None))
    ratio = c.is_ratio(measure)
    centre = np.log(c.null_value(measure, null)) if ratio else c.null_value(measure, null)
    yi, se = _points(data)
    filled = _points(trimfill.filled) if trimfill is not None else (np.array([]),) * 2
    se_max = float(np.nanmax(np.concatenate([se, filled[1], [1e-9]]))) * 1.08

    if ax is None:
        width = style.cm_to_inch(style.SINGLE_COLUMN_CM)
        height = 3.3 if legend else 2.4
        bottom = 1.2 if legend else 0.42
        ax = style.new_axes(width, height, (0.55 / width, bottom / height,
                                            1 - 0.7 / width, 1 - (bottom + 0.1) / height))
    style.style_axes(ax)
    z_values = [NormalDist().inv_cdf(1 - p / 2) for p in levels]
    low, high = _limits(np.concatenate([yi, filled[0]]), centre, max(z_values) * se_max)
    handles: list[Patch | Line2D] = [
        *_draw_contours(ax, levels, z_values, centre, se_max, (low, high), ratio)]
    handles += _draw_points(ax, yi, se, filled, ratio)
    handles += _draw_estimates(ax, result, trimfill, se_max, ratio)

    if ratio:
        c.set_effect_axis(ax, (float(np.exp(low)), float(np.exp(high))), True,
                          c.null_value(measure, null))
    else:
        ax.set_xlim(low, high)
    ax.set_ylim(se_max, 0)
    ax.set_xlabel(xlabel if xlabel is not None else c.axis_label(measure, ratio))
    ax.set_ylabel("Standard error")
    if legend:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
                  frameon=False, handlelength=1.2,
                  columnspacing=1.0, borderaxespad=0.0,
                  prop={"family": style.FONT_FAMILY, "size": style.TICK_LABEL_SIZE})
    return ax


#: ``plots.funnel(result)``: the same function as :func:`funnel_plot`.
funnel = funnel_plot


def _points(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    yi = frame["yi"].to_numpy(dtype=float)
    vi = frame["vi"].to_numpy(dtype=float)
    keep = np.isfinite(yi) & np.isfinite(vi) & (vi >= 0)
    return yi[keep], np.sqrt(vi[keep])


def _limits(values: np.ndarray, centre: float, half_width: float) -> tuple[float, float]:
    span = max(half_width, float(np.nanmax(np.abs(values - centre))) if values.size else 0.0)
    span *= 1.05
    return centre - span, centre + span


def _draw_contours(ax: Axes, levels: list[float], z_values: list[float], centre: float,
                   se_max: float, limits: tuple[float, float], ratio: bool) -> list[Patch]:
    """Background = smallest p; nested triangles get lighter towards p > largest level."""
    greys = style.COLOURS["contours"]
    shades = list(reversed(greys[: len(levels) + 1]))  # darkest first
    tf = np.exp if ratio else (lambda v: v)
    low, high = limits
    ax.add_patch(Polygon([(tf(low), 0), (tf(high), 0), (tf(high), se_max),
                          (tf(low), se_max)], closed=True, facecolor=shades[0],
                         edgecolor="none", zorder=0, gid="contour-background"))
    for i, z in enumerate(sorted(z_values, reverse=True)):
        half = z * se_max
        ax.add_patch(Polygon([(tf(centre - half), se_max), (tf(centre), 0),
                              (tf(centre + half), se_max)], closed=True,
                             facecolor=shades[i + 1], edgecolor="none", zorder=0,
                             gid=f"contour-{i}"))
    labels = [f"p < {_p(levels[0])}"]
    labels += [f"{_p(a)} < p < {_p(b)}" for a, b in pairwise(levels)]
    labels.append(f"p > {_p(levels[-1])}")
    return [Patch(facecolor=shade, edgecolor="#999999", linewidth=0.4, label=label)
            for shade, label in zip(shades, labels, strict=True)]


def _p(p: float) -> str:
    return f"{p:.2f}" if p >= 0.01 else f"{p:g}"


def _draw_points(ax: Axes, yi: np.ndarray, se: np.ndarray,
                 filled: tuple[np.ndarray, np.ndarray], ratio: bool) -> list[Line2D]:
    colour = style.COLOURS["study"]
    ax.scatter(c.display(yi, "OR" if ratio else None), se, s=14, c=colour,
               edgecolors="white", linewidths=0.4, zorder=3, gid="funnel-studies")
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=4, color=colour,
                      label="Studies")]
    if filled[0].size:
        ax.scatter(c.display(filled[0], "OR" if ratio else None), filled[1], s=14,
                   facecolors="white", edgecolors=style.COLOURS["filled"], linewidths=0.8,
                   zorder=3, gid="funnel-filled")
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=4,
                              markerfacecolor="white", color=style.COLOURS["filled"],
                              label="Filled studies"))
    return handles


def _draw_estimates(ax: Axes, result: PoolResult | MantelHaenszelResult | None,
                    trimfill: TrimFillResult | None,
                    se_max: float, ratio: bool) -> list[Line2D]:
    handles = []
    tf = np.exp if ratio else float
    if result is not None:
        x = float(tf(result.estimate))
        ax.plot([x, x], [0, se_max], color=style.COLOURS["pooled"], lw=style.LINE_WIDTH,
                zorder=2, gid="pooled-line")
        handles.append(Line2D([], [], color=style.COLOURS["pooled"], lw=style.LINE_WIDTH,
                              label="Pooled estimate"))
    if trimfill is not None:
        x = float(tf(trimfill.result.estimate))
        ax.plot([x, x], [0, se_max], color=style.COLOURS["filled"], lw=style.LINE_WIDTH,
                linestyle=(0, (3, 2)), zorder=2, gid="trimfill-line")
        handles.append(Line2D([], [], color=style.COLOURS["filled"], lw=style.LINE_WIDTH,
                              linestyle=(0, (3, 2)), label="Trim-and-fill estimate"))
    return handles
