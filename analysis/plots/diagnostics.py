"""Diagnostic plots: L'Abbé, Baujat, and the meta-regression bubble plot.

All three draw precomputed quantities: event proportions from the arm counts (a display
transform), Baujat coordinates computed by the statistics side, and a regression line from a
:class:`analysis.results.MetaRegressionResult`'s coefficients.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

from analysis.plots import _common as c
from analysis.plots import style
from analysis.results import MetaRegressionResult, PoolResult

__all__ = ["baujat", "baujat_plot", "bubble", "bubble_plot", "labbe_plot", "regplot_bands"]

_SQUARE_IN = 2.6


def _square_axes() -> Axes:
    width = style.cm_to_inch(style.SINGLE_COLUMN_CM)
    left = 0.62
    side = min(_SQUARE_IN, width - left - 0.15)
    return style.new_axes(width, side + 0.55, (left / width, 0.45 / (side + 0.55),
                                                side / width, side / (side + 0.55)))


def _sizes(values: np.ndarray, smallest: float = 8.0, largest: float = 110.0) -> np.ndarray:
    """Marker areas (points²) proportional to ``values``, scaled to the largest."""
    values = np.asarray(values, dtype=float)
    top = np.nanmax(values) if np.isfinite(values).any() and np.nanmax(values) > 0 else 1.0
    return smallest + (largest - smallest) * np.nan_to_num(values / top, nan=0.0)


@style.plain_text
def labbe_plot(
    data: pd.DataFrame,
    result: PoolResult | None = None,
    *,
    ax: Axes | None = None,
    measure: str | None = None,
    arm_labels: tuple[str, str] = ("Treatment", "Control"),
) -> Axes:
    """Draw a L'Abbé plot: treatment against control event proportion per study.

    Parameters
    ----------
    data : pandas.DataFrame
        Columns ``events_t, n_t, events_c, n_c``; point area is proportional to
        ``n_t + n_c``.
    result : PoolResult, optional
        Pooled result of ``measure`` (``"OR"``, ``"RR"`` or ``"RD"``): draws the curve of
        treatment proportions implied by the pooled effect at each control proportion.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; when None a square single-column Figure is created.
    measure : str, optional
        Measure of ``result``; default ``result.measure`` or ``data["measure"]``.
    arm_labels : tuple of str
        Names of the arms in the axis labels.

    Returns
    -------
    matplotlib.axes.Axes
    """
    c.require_columns(data, ["events_t", "n_t", "events_c", "n_c"], "data")
    n_t, n_c = data["n_t"].to_numpy(float), data["n_c"].to_numpy(float)
    p_t = data["events_t"].to_numpy(float) / n_t
    p_c = data["events_c"].to_numpy(float) / n_c
    if ax is None:
        ax = _square_axes()
    style.style_axes(ax)
    ax.plot([0, 1], [0, 1], color=style.COLOURS["null"], lw=style.THIN_LINE_WIDTH,
            linestyle=(0, (3, 2)), zorder=1, gid="labbe-diagonal")
    ax.scatter(p_c, p_t, s=_sizes(n_t + n_c), c=style.COLOURS["study"], alpha=0.75,
               edgecolors="white", linewidths=0.4, zorder=3, gid="labbe-points")
    measure = c.resolve_measure(measure, result, data)
    if result is not None:
        _pooled_curve(ax, float(result.estimate), measure)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal", adjustable="box")
    handles = [Line2D([], [], color=style.COLOURS["null"], lw=style.THIN_LINE_WIDTH,
                      linestyle=(0, (3, 2)), label="No effect")]
    if result is not None:
        handles.insert(0, Line2D([], [], color=style.COLOURS["pooled"], lw=style.LINE_WIDTH,
                                 label=f"Pooled {c.measure_name(measure).lower()}"))
    ax.legend(handles=handles, loc="lower right", frameon=False,
              prop={"family": style.FONT_FAMILY, "size": style.TICK_LABEL_SIZE})
    ax.set_xlabel(f"Event proportion, {arm_labels[1].lower()}")
    ax.set_ylabel(f"Event proportion, {arm_labels[0].lower()}")
    return ax


def _pooled_curve(ax: Axes, estimate: float, measure: str | None) -> None:
    """Treatment proportion implied by the pooled effect (display transform of the estimate)."""
    p_c = np.linspace(0.001, 0.999, 200)
    if measure == "OR":
        odds = np.exp(estimate) * p_c / (1 - p_c)
        p_t = odds / (1 + odds)
    elif measure == "RR":
        p_t = np.exp(estimate) * p_c
    elif measure == "RD":
        p_t = p_c + estimate
    else:
        raise ValueError(f"argument 'measure' = {measure!r} is not allowed with a result; "
                         "use one of OR, RR, RD")
    keep = (p_t >= 0) & (p_t <= 1)
    ax.plot(p_c[keep], p_t[keep], color=style.COLOURS["pooled"], lw=style.LINE_WIDTH,
            zorder=2, gid="labbe-pooled")


@style.plain_text
def baujat_plot(
    x: ArrayLike | pd.DataFrame,
    y: ArrayLike | None = None,
    labels: Iterable[object] | None = None,
    *,
    ax: Axes | None = None,
    n_labels: int | None = None,
) -> Axes:
    """Draw a Baujat plot from precomputed coordinates.

    ``plots.baujat(ma.baujat(res))`` draws it in one call: the frame of
    :func:`analysis.sensitivity.baujat` carries ``study`` (the labels), ``x`` and ``y``.

    Parameters
    ----------
    x : array_like of float, or pandas.DataFrame
        Each study's contribution to the overall heterogeneity statistic Q; or the frame of
        :func:`analysis.sensitivity.baujat` (columns ``x``, ``y`` and ``study``), with
        ``y`` and ``labels`` then left out.
    y : array_like of float
        Each study's influence on the pooled result (metafor ``baujat()``'s y axis).
    labels : iterable
        Study labels (shown with ``str``); default the frame's ``study`` column, else
        ``"1"``..``"k"``.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; when None a square single-column Figure is created.
    n_labels : int, optional
        Label only the studies among the ``n_labels`` largest on either axis (default: all
        studies up to 10, else 5). Labels that cannot be placed
        without overlapping another label or point are left out.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if isinstance(x, pd.DataFrame):
        if y is not None:
            raise ValueError("argument 'y' must be None when 'x' is the frame of baujat()")
        c.require_columns(x, ["x", "y"], "x")
        if labels is None and "study" in x.columns:
            labels = x["study"].tolist()
        frame = x
        x, y = frame["x"].to_numpy(float), frame["y"].to_numpy(float)
    if y is None:
        raise ValueError("argument 'y' is missing; give the influence coordinates, or pass "
                         "the frame of analysis.sensitivity.baujat() as 'x'")
    xs, ys = c.as_float_array(x, "x"), c.as_float_array(y, "y")
    if labels is None:
        labels = [str(i + 1) for i in range(xs.size)]
    names = [str(label) for label in labels]
    if not xs.size == ys.size == len(names):
        raise ValueError(f"arguments 'x', 'y' and 'labels' must have the same length, got "
                         f"{xs.size}, {ys.size} and {len(names)}")
    if ax is None:
        ax = _square_axes()
    style.style_axes(ax)
    ax.scatter(xs, ys, s=16, c=style.COLOURS["study"], edgecolors="white", linewidths=0.4,
               zorder=3, gid="baujat-points")
    ax.margins(0.12)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.set_xlim(*ax.get_xlim())
    ax.set_ylim(*ax.get_ylim())
    place_labels(ax, xs, ys, names, _labelled(xs, ys, n_labels))
    ax.set_xlabel("Contribution to overall heterogeneity")
    ax.set_ylabel("Influence on overall result")
    return ax


_OFFSETS = ((4, 3, "left", "bottom"), (-4, 3, "right", "bottom"), (4, -3, "left", "top"),
            (-4, -3, "right", "top"), (5, 0, "left", "center"), (-5, 0, "right", "center"),
            (0, 6, "center", "bottom"), (0, -6, "center", "top"))


def place_labels(ax: Axes, xs: np.ndarray, ys: np.ndarray, names: list[str],
                  shown: list[int], gid: str = "baujat-label",
                  radii: np.ndarray | None = None) -> None:
    """Greedy placement: the first of eight offsets whose box hits no label, point or edge.

    ``radii`` (points, one per point) moves each label off its own marker and keeps the
    other labels off the markers (bubbles); default 0 (small markers).
    """
    radius = np.zeros(len(xs)) if radii is None else np.nan_to_num(np.asarray(radii, float))
    to_points = ax.transData + ax.figure.dpi_scale_trans.inverted()
    points = to_points.transform(np.column_stack([xs, ys])) * 72.0
    frame = np.asarray(ax.get_window_extent().transformed(ax.figure.dpi_scale_trans.inverted())
                       .extents) * 72.0
    height = style.TICK_LABEL_SIZE * 1.15
    taken: list[tuple[float, float, float, float]] = []
    for i in sorted(shown, key=lambda j: (-ys[j], xs[j])):
        width = c.text_width_in(names[i], style.TICK_LABEL_SIZE) * 72.0
        box, chosen = None, _OFFSETS[0]
        for dx, dy, ha, va in _OFFSETS:
            step = radius[i] * (0.75 if dx and dy else 1.0)
            offset = (dx + np.sign(dx) * step, dy + np.sign(dy) * step, ha, va)
            box = _box(points[i], offset, width, height)
            if _free(box, taken, points, i, frame, radius):
                chosen = offset
                break
        else:
            continue  # no free spot: leave the point unlabelled rather than overlap
        taken.append(_box(points[i], chosen, width, height))
        dx, dy, ha, va = chosen
        ax.annotate(names[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points",
                    ha=ha, va=va, gid=gid,
                    **style.text_kwargs(style.TICK_LABEL_SIZE))


def _box(point: np.ndarray, offset: tuple[float, float, str, str], width: float,
         height: float) -> tuple[float, float, float, float]:
    dx, dy, ha, va = offset
    x0 = point[0] + dx - {"left": 0.0, "right": width, "center": width / 2}[ha]
    y0 = point[1] + dy - {"bottom": 0.0, "top": height, "center": height / 2}[va]
    return x0, y0, x0 + width, y0 + height


def _free(box: tuple[float, float, float, float], taken: list[tuple[float, float, float, float]],
          points: np.ndarray, own: int, frame: np.ndarray, radius: np.ndarray) -> bool:
    x0, y0, x1, y1 = box
    if x0 < frame[0] or x1 > frame[2] or y0 < frame[1] or y1 > frame[3]:
        return False
    if any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in taken):
        return False
    near = np.delete(points, own, axis=0)
    pad = 2 + np.delete(radius, own)
    return not np.any((near[:, 0] > x0 - pad) & (near[:, 0] < x1 + pad)
                      & (near[:, 1] > y0 - pad) & (near[:, 1] < y1 + pad))


def _labelled(xs: np.ndarray, ys: np.ndarray, n_labels: int | None) -> list[int]:
    n = xs.size
    if n_labels is None:
        n_labels = n if n <= 10 else 5
    by_x = np.argsort(-np.nan_to_num(xs, nan=-np.inf), kind="stable")[:n_labels]
    by_y = np.argsort(-np.nan_to_num(ys, nan=-np.inf), kind="stable")[:n_labels]
    return sorted(set(by_x.tolist()) | set(by_y.tolist()))


@style.plain_text
def bubble_plot(
    data: pd.DataFrame | MetaRegressionResult,
    result: MetaRegressionResult | str | None = None,
    moderator: str | None = None,
    *,
    ax: Axes | None = None,
    measure: str | None = None,
    weights: Sequence[float] | None = None,
    xlabel: str | None = None,
    null: float | None = None,
    labels: Sequence[str] | bool | None = None,
    ci: bool = True,
    pi: bool = True,
    legend: bool = True,
    grid: ArrayLike | None = None,
) -> Axes:
    """Draw a meta-regression bubble plot in the style of metafor's ``regplot()``.

    The fitted line with its confidence band and (``pi=True``) its prediction band, the
    no-effect line, and one circle per study whose area is proportional to its weight,
    labelled by study.

    Parameters
    ----------
    data : pandas.DataFrame or MetaRegressionResult
        Columns ``yi``, ``vi`` (log scale for ratio measures) and ``moderator``; or the
        fitted model itself when it keeps its data (``yi``, ``vi`` and the model matrix
        ``X``): ``plots.bubble(res, "ablat")``.
    result : MetaRegressionResult
        Fitted model with an ``"intrcpt"`` coefficient and one slope (named ``moderator``,
        or the only other coefficient). In the one-call form this is the moderator name.
    moderator : str
        Column of ``data`` (or of the model matrix) on the x axis.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; when None a single-column Figure is created.
    measure : str, optional
        Measure code; ratio measures are back-transformed on a log y axis (ticks in ratio
        values).
    weights : sequence of float, optional
        Bubble weights; default ``1 / (vi + result.tau2)``, the model's own weights (metafor
        ``weights(res)``, up to a constant); bubble area is proportional to them.
    xlabel : str, optional
        Default: the moderator name.
    null : float, optional
        No-effect reference line (default 1 for ratio measures, else 0).
    labels : sequence of str or bool, optional
        Point labels; default the frame's ``label`` (else ``study``) column, or the result's
        study labels in the one-call form. ``False`` draws none. Labels are placed greedily
        where they overlap no other label or point; one that fits nowhere is left out.
    ci, pi : bool
        Draw the confidence band (default) and the prediction band (default, metafor
        ``pi=TRUE``) of the fitted values, each shaded with its bounds as lines.
    legend : bool
        Draw a legend naming the line, the bands (with the model's level) and the weights.
    grid : array_like, optional
        Moderator values of the line and bands (default 100 values from the smallest to
        the largest moderator value, as ``regplot``'s ``xvals``).

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    The line and bands are :meth:`MetaRegressionResult.predict` at ``grid``
    (``ci_low, ci_high, pi_low, pi_high``), checked against metafor 3.8-1
    ``predict(rma(yi, vi, mods = ~ ablat, data = dat.bcg), newmods = grid)`` in
    ``tests/test_regplot.py`` (fixture ``tests/reference/regplot_reference.json``). A result
    that keeps no model matrix (built by hand) gets the line from its coefficients only,
    without bands.
    """
    if not isinstance(data, pd.DataFrame):
        if moderator is None and isinstance(result, str):
            moderator, result = result, None
        if result is not None:
            raise ValueError("argument 'result' must not be given with a fitted model as "
                             "'data'; call bubble(model, moderator)")
        result = data
        if moderator is None:
            raise ValueError("argument 'moderator' is missing; name the coefficient on the "
                             "x axis")
        data = _model_data(result, moderator)
    if not isinstance(result, MetaRegressionResult) or moderator is None:
        raise ValueError("bubble_plot() needs data, a MetaRegressionResult and a moderator "
                         "name (or a MetaRegressionResult that keeps its data and a moderator)")
    c.require_columns(data, ["yi", "vi", moderator], "data")
    intercept, slope = _line(result, moderator)
    measure = c.resolve_measure(measure, data, result)
    ratio = c.is_ratio(measure)
    xs = data[moderator].to_numpy(float)
    yi, vi = data["yi"].to_numpy(float), data["vi"].to_numpy(float)
    w = (np.asarray(weights, dtype=float) if weights is not None
         else 1.0 / (vi + float(result.tau2)))
    names = _point_labels(labels, data, result)
    if ax is None:
        width, height = style.cm_to_inch(style.SINGLE_COLUMN_CM), 3.7
        ax = style.new_axes(width, height, (0.62 / width, 1.1 / height, 1 - 0.8 / width,
                                            1 - 1.25 / height))
    style.style_axes(ax)
    level = f"{100 * result.level:g}%"
    line_x = (np.linspace(np.nanmin(xs), np.nanmax(xs), 100) if grid is None
              else c.as_float_array(grid, "grid"))
    handles: list[Line2D | Patch] = [Line2D([], [], color=style.COLOURS["pooled"],
                                            lw=style.LINE_WIDTH * 1.3, label="Fitted line")]
    bands = regplot_bands(result, line_x) if (ci or pi) and result.X is not None else None
    if bands is not None:
        for kind, show, fill, edge, dash in (
                ("pi", pi, "#E6E6E6", "#777777", (0, (1, 1.5))),
                ("ci", ci, style.COLOURS["band"], style.COLOURS["study"], (0, (4, 2)))):
            if not show:
                continue
            low, high = (c.display(bands[f"{kind}_{side}"], measure) for side in ("low", "high"))
            ax.fill_between(line_x, low, high, color=fill, linewidth=0, zorder=1,
                            gid=f"bubble-{kind}-band")
            for bound in (low, high):
                ax.plot(line_x, bound, color=edge, lw=style.THIN_LINE_WIDTH, linestyle=dash,
                        zorder=2, gid=f"bubble-{kind}-bound")
            handles.append(Patch(facecolor=fill, edgecolor=edge, linestyle=dash,
                                 linewidth=style.THIN_LINE_WIDTH,
                                 label=f"{level} {kind.upper()}"))
    ax.scatter(xs, c.display(yi, measure), s=_proportional_sizes(w),
               facecolors=to_rgba(style.COLOURS["study"], 0.45), edgecolors=style.COLOURS["study"],
               linewidths=0.7, zorder=3, gid="bubble-points")
    ax.plot(line_x, c.display(intercept + slope * line_x, measure),
            color=style.COLOURS["pooled"], lw=style.LINE_WIDTH * 1.3, zorder=4,
            gid="bubble-line")
    ax.axhline(c.null_value(measure, null), color=style.COLOURS["null"],
               lw=style.THIN_LINE_WIDTH, linestyle=(0, (3, 2)), zorder=1)
    handles.append(Line2D([], [], linestyle="none", marker="o", markersize=6,
                          markerfacecolor=to_rgba(style.COLOURS["study"], 0.45),
                          markeredgecolor=style.COLOURS["study"],
                          label="Study, area ∝ 1/(vi + τ²)" if weights is None
                          else "Study, area ∝ weight"))
    ax.margins(x=0.08, y=0.06)
    if ratio:
        c.set_log_yaxis(ax)
    ax.set_xlabel(xlabel if xlabel is not None else moderator)
    ax.set_ylabel(c.axis_label(measure, ratio))
    ax.set_xlim(*ax.get_xlim())
    ax.set_ylim(*ax.get_ylim())
    if names is not None:
        place_labels(ax, xs, c.display(yi, measure), names, list(range(xs.size)),
                     gid="bubble-label", radii=np.sqrt(_proportional_sizes(w) / np.pi))
    if legend:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2),
                  ncol=2, frameon=False,
                  prop={"family": style.FONT_FAMILY, "size": style.TICK_LABEL_SIZE})
    return ax


def regplot_bands(result: MetaRegressionResult, grid: ArrayLike) -> pd.DataFrame:
    """Return the fitted line and its bands at ``grid`` (``result.predict(grid)`` and ``x``).

    Columns ``x, pred, ci_low, ci_high, pi_low, pi_high`` (log scale for ratio measures),
    the values :func:`bubble_plot` draws (metafor ``regplot``'s polygons).
    """
    x = c.as_float_array(grid, "grid")
    frame = result.predict(x).reset_index(drop=True)
    frame.insert(0, "x", x)
    return frame


def _proportional_sizes(weights: np.ndarray, largest: float = 160.0) -> np.ndarray:
    """Marker areas (points²) exactly proportional to ``weights``, the largest ``largest``."""
    weights = np.asarray(weights, dtype=float)
    top = np.nanmax(weights) if np.isfinite(weights).any() and np.nanmax(weights) > 0 else 1.0
    return largest * np.nan_to_num(weights / top, nan=0.0)


def _point_labels(labels: Sequence[str] | bool | None, data: pd.DataFrame,
                  result: MetaRegressionResult) -> list[str] | None:
    if labels is False:
        return None
    if labels is None or labels is True:
        for column in ("label", "study"):
            if column in data.columns:
                return data[column].astype(str).tolist()
        if result.study is not None and len(result.study) == len(data):
            return [str(s) for s in result.study]
        return None
    names = [str(label) for label in labels]
    if len(names) != len(data):
        raise ValueError(f"argument 'labels' has {len(names)} labels for {len(data)} studies")
    return names


#: ``plots.baujat(frame)``: the same function as :func:`baujat_plot`.
baujat = baujat_plot
#: ``plots.bubble(model, moderator)``: the same function as :func:`bubble_plot`.
bubble = bubble_plot


def _model_data(result: Any, moderator: str) -> pd.DataFrame:
    """``yi``, ``vi`` and the moderator's column of the model matrix a result keeps."""
    yi, vi, x = (getattr(result, name, None) for name in ("yi", "vi", "X"))
    if yi is None or vi is None or x is None:
        raise ValueError(f"argument 'data' is a {type(result).__name__} without its data (yi, "
                         "vi, X); pass bubble_plot(data, result, moderator)")
    if isinstance(x, pd.DataFrame):
        frame = x.reset_index(drop=True)
    else:
        frame = pd.DataFrame(np.asarray(x, dtype=float), columns=list(result.coef.index))
    if moderator not in frame.columns:
        raise ValueError(f"argument 'moderator' = {moderator!r} is not a column of the model "
                         f"matrix; its columns are {list(frame.columns)}")
    out = pd.DataFrame({"yi": np.asarray(yi, dtype=float), "vi": np.asarray(vi, dtype=float),
                        moderator: frame[moderator].to_numpy(dtype=float)})
    measure = getattr(result, "measure", None)
    if measure is not None:
        out["measure"] = measure
    return out


def _line(result: Any, moderator: str) -> tuple[float, float]:
    coef = result.coef
    if "intrcpt" not in coef.index:
        raise ValueError("argument 'result' has no 'intrcpt' coefficient; fit the model "
                         "with an intercept")
    if moderator in coef.index:
        slope = float(coef[moderator])
    else:
        others = [name for name in coef.index if name != "intrcpt"]
        if len(others) != 1:
            raise ValueError(f"argument 'moderator' = {moderator!r} is not a coefficient of "
                             f"'result' ({list(coef.index)}); a bubble plot needs one slope")
        slope = float(coef[others[0]])
    return float(coef["intrcpt"]), slope
