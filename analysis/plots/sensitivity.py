"""Cumulative (by year) and leave-one-out forest plots from sensitivity results.

Input: the results of :func:`analysis.cumulative` / :func:`analysis.leave_one_out` (drawn in
one call: labels, measure, level and the full-data model come from the result), or their
``to_frame()`` DataFrames, one row per step with ``estimate, ci_low, ci_high`` (log scale
for ratio measures) and a label column. Each row is drawn as a point with its interval and
the interval as text; an optional full-data result adds a dashed reference line and a shaded
band at its interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from analysis.plots import _common as c
from analysis.plots import style
from analysis.plots.forest import fit_favours
from analysis.results import CumulativeResult, LeaveOneOutResult, PoolResult

__all__ = ["cumulative", "cumulative_plot", "leave_one_out", "leave_one_out_plot"]

_LABEL_CANDIDATES = ("label", "omitted", "added", "study", "study_id")
_PAD_IN = 0.10
_GAP_IN = 0.10
_SIDE_IN = 0.06
_TOP_IN = 0.06
_BOTTOM_IN = 0.42
_MIN_PANEL_IN = 1.2
_HEADER_ROWS = 1.2


@style.plain_text
def cumulative_plot(
    frame: CumulativeResult | pd.DataFrame,
    result: PoolResult | None = None,
    *,
    ax: Axes | None = None,
    measure: str | None = None,
    label_column: str | None = None,
    favours: tuple[str, str] | None = None,
    xlim: tuple[float, float] | None = None,
    null: float | None = None,
    width_cm: float = style.SINGLE_COLUMN_CM,
) -> Axes:
    """Draw a cumulative meta-analysis (one row per study added, in the frame's order).

    Parameters
    ----------
    frame : CumulativeResult or pandas.DataFrame
        Output of :func:`analysis.cumulative` (``plots.cumulative(ma.cumulative(res,
        order=year))``: labels, measure and the full-data model from it), or its
        ``to_frame()``: ``estimate, ci_low, ci_high`` per step and a label column (the study
        added at that step).
    result : PoolResult, optional
        Full-data result (default the CumulativeResult's ``full``): dashed line at its
        estimate, grey band for its interval.
    ax : matplotlib.axes.Axes, optional
        The plot panel (label and interval columns are drawn to its left, so leave a
        margin); when None a Figure sized to the rows is created.
    measure : str, optional
        Measure code; default from ``frame["measure"]`` or ``result.measure``.
    label_column : str, optional
        Column with the row labels; default the first of ``label, omitted, added, study,
        study_id`` present.
    favours : tuple of str, optional
        Texts under the axis, left and right of the null.
    xlim : tuple of float, optional
        Axis limits on the display scale.
    null : float, optional
        No-effect value on the display scale.
    width_cm : float
        Figure width when ``ax`` is None (widened if the panel would be under 3 cm).

    Returns
    -------
    matplotlib.axes.Axes
    """
    return _sensitivity_forest(frame, result, "Study added", ax=ax, measure=measure,
                               label_column=label_column, favours=favours, xlim=xlim,
                               null=null, width_cm=width_cm)


@style.plain_text
def leave_one_out_plot(
    frame: LeaveOneOutResult | pd.DataFrame,
    result: PoolResult | None = None,
    *,
    ax: Axes | None = None,
    measure: str | None = None,
    label_column: str | None = None,
    favours: tuple[str, str] | None = None,
    xlim: tuple[float, float] | None = None,
    null: float | None = None,
    width_cm: float = style.SINGLE_COLUMN_CM,
) -> Axes:
    """Draw a leave-one-out analysis (one row per omitted study).

    Parameters
    ----------
    frame : LeaveOneOutResult or pandas.DataFrame
        Output of :func:`analysis.leave_one_out` (``plots.leave_one_out(ma.leave_one_out(
        res))``: labels, measure and the full-data model from it), or its ``to_frame()``:
        ``estimate, ci_low, ci_high`` per omitted study and a label column.
    result : PoolResult, optional
        Full-data result (default the LeaveOneOutResult's ``full``): dashed line at its
        estimate, grey band for its interval.
    ax, measure, label_column, favours, xlim, null, width_cm
        As in :func:`cumulative_plot`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    return _sensitivity_forest(frame, result, "Study omitted", ax=ax, measure=measure,
                               label_column=label_column, favours=favours, xlim=xlim,
                               null=null, width_cm=width_cm)


def _label_column(frame: pd.DataFrame, label_column: str | None) -> str:
    if label_column is not None:
        c.require_columns(frame, [label_column], "frame")
        return label_column
    for name in _LABEL_CANDIDATES:
        if name in frame.columns:
            return name
    raise ValueError(f"argument 'frame' has no label column (looked for "
                     f"{list(_LABEL_CANDIDATES)}); pass label_column=")


#: ``plots.cumulative(result)``: the same function as :func:`cumulative_plot`.
cumulative = cumulative_plot
#: ``plots.leave_one_out(result)``: the same function as :func:`leave_one_out_plot`.
leave_one_out = leave_one_out_plot


def _sensitivity_forest(source: CumulativeResult | LeaveOneOutResult | pd.DataFrame,
                        result: PoolResult | None, header: str, *,
                        ax: Axes | None, measure: str | None, label_column: str | None,
                        favours: tuple[str, str] | None, xlim: tuple[float, float] | None,
                        null: float | None, width_cm: float) -> Axes:
    if isinstance(source, (CumulativeResult, LeaveOneOutResult)):
        frame = source.to_frame()
        result = source.full if result is None else result
        measure = measure if measure is not None else source.measure
    elif isinstance(source, pd.DataFrame):
        frame = source
    else:
        what = "cumulative" if header == "Study added" else "leave_one_out"
        raise ValueError(f"argument 'frame' = {type(source).__name__} is not allowed; pass the "
                         f"result of analysis.{what}(...) (e.g. analysis.{what}(pool(...))) "
                         "or its to_frame(); plots never refit models")
    c.require_columns(frame, ["estimate", "ci_low", "ci_high"], "frame")
    label_column = _label_column(frame, label_column)
    measure = c.resolve_measure(measure, frame, result)
    ratio = c.is_ratio(measure)
    null_x = c.null_value(measure, null)
    labels = frame[label_column].astype(str).tolist()
    est, low, high = (c.display(frame[col], measure) for col in ("estimate", "ci_low",
                                                                  "ci_high"))
    texts = [c.fmt_interval(*v) if np.isfinite(v[0]) else "Not estimable"
             for v in zip(est, low, high, strict=True)]
    level = float(result.level if result is not None
                  else getattr(source, "level", 0.95)) * 100
    effect_header = f"{measure or 'Estimate'} [{level:g}% CI]"
    label_w = max(c.max_width_in(labels), c.text_width_in(header, bold=True)) + _PAD_IN
    effect_w = max(c.max_width_in(texts), c.text_width_in(effect_header, bold=True)) + _PAD_IN
    n = len(frame)
    if ax is None:
        ax = _new_axes(n, label_w + effect_w, width_cm, favours)
    style.style_axes(ax, spines=("bottom",))
    limits = xlim if xlim is not None else c.symmetric_limits(
        [*est, *low, *high, *(_result_values(result, measure))], ratio, null_x)
    c.set_effect_axis(ax, limits, ratio, null_x)
    ax.set_yticks([])
    ax.set_ylim(n - 0.5, -_HEADER_ROWS - 0.5)

    panel_w = ax.get_position().width * c.figure_width_in(ax)
    trans = ax.get_yaxis_transform()
    label_x = -(_GAP_IN + effect_w + label_w) / panel_w
    effect_x = -(_GAP_IN + effect_w / 2 + _PAD_IN / 2) / panel_w
    bold = style.text_kwargs(weight="bold")
    ax.text(label_x, -1, header, transform=trans, ha="left", va="center", **bold)
    ax.text(effect_x, -1, effect_header, transform=trans, ha="center", va="center", **bold)
    for y, (label, text) in enumerate(zip(labels, texts, strict=True)):
        ax.text(label_x, y, label, transform=trans, ha="left", va="center",
                **style.text_kwargs())
        ax.text(effect_x, y, text, transform=trans, ha="center", va="center",
                **style.text_kwargs())
    ax.plot([label_x, 1.0], [-0.55, -0.55], transform=trans, color="black",
            lw=style.THIN_LINE_WIDTH, clip_on=False)
    _draw_rows(ax, est, low, high, limits)
    _draw_reference(ax, result, measure, n, null_x)
    if favours is not None:
        _draw_favours(ax, favours, null_x)
    return ax


def _result_values(result: PoolResult | None, measure: str | None) -> Sequence[float]:
    if result is None:
        return []
    return list(c.display([result.estimate, result.ci_low, result.ci_high], measure))


def _new_axes(n: int, table_w: float, width_cm: float,
              favours: tuple[str, str] | None) -> Axes:
    width = style.cm_to_inch(width_cm)
    left = _SIDE_IN + table_w + _GAP_IN
    right = _SIDE_IN + 0.1
    panel, width = fit_favours(left, width - left - right, right, favours, _MIN_PANEL_IN)
    body = (n + _HEADER_ROWS) * style.ROW_HEIGHT_IN
    height = _TOP_IN + body + _BOTTOM_IN
    return style.new_axes(width, height, (left / width, _BOTTOM_IN / height, panel / width,
                                          body / height))


def _draw_rows(ax: Axes, est: np.ndarray, low: np.ndarray, high: np.ndarray,
               limits: tuple[float, float]) -> None:
    y = np.arange(est.size, dtype=float)
    keep = np.isfinite(est)
    lo_lim, hi_lim = min(limits), max(limits)
    ax.hlines(y[keep], np.maximum(low[keep], lo_lim), np.minimum(high[keep], hi_lim),
              colors=style.COLOURS["ci"], lw=style.LINE_WIDTH, zorder=2, gid="sensitivity-ci")
    ax.scatter(est[keep], y[keep], s=16, marker="D", c=style.COLOURS["study"], linewidths=0,
               zorder=3, gid="sensitivity-points")
    c.edge_arrows(ax, list(y[keep]), list(low[keep]), list(high[keep]), limits,
                  colour=style.COLOURS["ci"], gid="ci-arrows")


def _draw_reference(ax: Axes, result: PoolResult | None, measure: str | None, n: int,
                    null_x: float) -> None:
    ax.plot([null_x, null_x], [-0.5, n - 0.5], color=style.COLOURS["null"],
            lw=style.THIN_LINE_WIDTH, zorder=1)
    if result is None:
        return
    est, low, high = c.display([result.estimate, result.ci_low, result.ci_high], measure)
    ax.fill_betweenx([-0.5, n - 0.5], low, high, color=style.COLOURS["grid"], linewidth=0,
                     zorder=0, gid="reference-band")
    ax.plot([est, est], [-0.5, n - 0.5], color=style.COLOURS["pooled"],
            lw=style.THIN_LINE_WIDTH, linestyle=(0, (3, 2)), zorder=1, gid="reference-line")


def _draw_favours(ax: Axes, favours: tuple[str, str], null_x: float) -> None:
    kwargs = {"xycoords": ("data", "axes fraction"), "textcoords": "offset points",
              "va": "top", **style.text_kwargs(style.TICK_LABEL_SIZE)}
    ax.annotate(favours[0], xy=(null_x, 0), xytext=(-4, -14), ha="right", **kwargs)
    ax.annotate(favours[1], xy=(null_x, 0), xytext=(4, -14), ha="left", **kwargs)
