"""Helpers shared by the plot modules: measures, number formatting, text widths (private).

Nothing here computes a statistic: values are back-transformed for display (the measure
registry's transformation, :mod:`analysis.measures`) and formatted as text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from analysis.measures import MEASURES, RATIO_MEASURES, to_display
from analysis.plots import style

#: Readable names of the measures (the axis labels), from the measure registry.
MEASURE_NAMES = {code: m.name for code, m in MEASURES.items()}

_NICE_RATIO_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
                     2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
_TEXT_TO_PATH = TextToPath()


def resolve_measure(measure: str | None, *sources: Any) -> str | None:
    """Return ``measure`` or the first one found on a frame column or a result attribute."""
    if measure is not None:
        return str(measure).upper()
    for source in sources:
        if source is None:
            continue
        if isinstance(source, pd.DataFrame):
            if "measure" in source.columns and source["measure"].notna().any():
                return str(source["measure"].dropna().iloc[0]).upper()
            continue
        value = getattr(source, "measure", None)
        if isinstance(value, str):
            return value.upper()
    return None


def is_ratio(measure: str | None) -> bool:
    """Return True for measures estimated on the log scale (shown on a log axis)."""
    return measure is not None and measure.upper() in RATIO_MEASURES


def display(values: Any, measure: str | None, ni: Any = None) -> np.ndarray:
    """Back-transform analysis-scale values for display.

    :func:`analysis.measures.to_display`: ``exp`` for ratio measures, a proportion for
    PLO/PLN/PAS/PFT, ``tanh`` for ZCOR; ``ni`` are the sample sizes PFT needs.
    """
    return to_display(values, measure, ni)


def measure_name(measure: str | None) -> str:
    """Readable name of a measure code ("Effect size" when unknown)."""
    if measure is None:
        return "Effect size"
    return MEASURE_NAMES.get(measure.upper(), measure)


def has_null(measure: str | None) -> bool:
    """Return False for the one-group measures (proportions), which have no null value."""
    info = MEASURES.get(measure.upper()) if measure is not None else None
    return info is None or info.null is not None


def null_value(measure: str | None, null: float | None = None) -> float:
    """Return the no-effect value on the display scale: 1 for ratio measures, else 0."""
    if null is not None:
        return float(null)
    return 1.0 if is_ratio(measure) else 0.0


def fmt_number(value: float, digits: int = 2) -> str:
    """Format with fixed decimals; fewer for large magnitudes; empty for NaN."""
    if value is None or not np.isfinite(value):
        return ""
    if abs(value) >= 1000:
        return f"{value:.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def fmt_count(value: float) -> str:
    """Integer counts as integers; fractional counts (split controls) with one decimal."""
    if value is None or not np.isfinite(value):
        return ""
    if abs(value - round(value)) < 1e-9:
        return str(round(value))
    return f"{value:.1f}"


def fmt_sig(value: float) -> str:
    """Three significant digits (means and SDs)."""
    if value is None or not np.isfinite(value):
        return ""
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.3g}"


def fmt_p(p: float) -> str:
    """P value as ``P = 0.04`` / ``P = 0.004`` / ``P < 0.001``."""
    if p is None or not np.isfinite(p):
        return "P = NA"
    if p < 0.001:
        return "P < 0.001"
    if p < 0.01:
        return f"P = {p:.3f}"
    return f"P = {p:.2f}"


def fmt_interval(est: float, low: float, high: float) -> str:
    """``1.23 [0.45, 3.38]`` (display scale)."""
    return f"{fmt_number(est)} [{fmt_number(low)}, {fmt_number(high)}]"


def text_width_in(text: str, size: float = style.FONT_SIZE, bold: bool = False) -> float:
    """Width of one line of text in inches (font metrics, no renderer needed)."""
    if not text:
        return 0.0
    prop = FontProperties(family=style.FONT_FAMILY, size=size,
                          weight="bold" if bold else "normal")
    widest = 0.0
    for line in text.split("\n"):
        width, _, _ = _TEXT_TO_PATH.get_text_width_height_descent(line, prop, ismath=False)
        widest = max(widest, width)
    return widest / 72.0


def max_width_in(texts: Iterable[str], size: float = style.FONT_SIZE,
                 bold: bool = False) -> float:
    """Widest of several texts, in inches."""
    return max((text_width_in(t, size, bold) for t in texts), default=0.0)


def ratio_ticks(low: float, high: float, max_ticks: int = 7) -> list[float]:
    """1-2-5 ticks between ``low`` and ``high``, thinned symmetrically to ``max_ticks``."""
    inside = [t for t in _NICE_RATIO_TICKS if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
    decades = [t for t in inside if math.isclose(math.log10(t) % 1, 0, abs_tol=1e-9)
               or math.isclose(math.log10(t) % 1, 1, abs_tol=1e-9)]
    centre = min(range(len(inside)), key=lambda i: abs(math.log10(inside[i]))) if inside else 0
    alternate = [t for i, t in enumerate(inside) if (i - centre) % 2 == 0]
    choices = [inside, alternate, sorted(set(decades) | {t for t in inside if t in (0.5, 2.0)}),
               decades, decades[::2] if 1.0 in decades[::2] else decades[1::2]]
    for ticks in choices:
        if 2 <= len(ticks) <= max_ticks:
            return ticks
    return choices[-1] if len(choices[-1]) >= 2 else inside


def log_ticks(low: float, high: float, max_ticks: int = 6) -> list[float]:
    """Readable ticks for a log axis spanning less or more than a decade."""
    for mantissas in ((1.0,), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0),
                      (1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)):
        ticks = [m * 10.0**e for e in range(math.floor(math.log10(low)) - 1,
                                            math.ceil(math.log10(high)) + 1)
                 for m in mantissas]
        ticks = [t for t in ticks if low <= t <= high]
        if 3 <= len(ticks) <= max_ticks:
            return ticks
        if len(ticks) > max_ticks:
            return ticks[:: math.ceil(len(ticks) / max_ticks)]
    return ticks


def set_log_yaxis(ax: Axes) -> None:
    """Log y axis with ticks from :func:`log_ticks` at the current data limits."""
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.yaxis.set_major_locator(FixedLocator(log_ticks(low, high)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:g}"))
    ax.yaxis.set_minor_locator(NullLocator())


def nice_ceiling(value: float) -> float:
    """Smallest of 1, 2, 2.5, 5 x 10^k that is >= ``value``."""
    if not np.isfinite(value) or value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10.0**exponent
        if candidate >= value * (1 - 1e-12):
            return candidate
    return 10.0 ** (exponent + 1)


def symmetric_limits(values: Sequence[float], ratio: bool, null: float) -> tuple[float, float]:
    """Axis limits symmetric around ``null`` (on the log scale for ratios) covering values."""
    array = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if ratio:
        array = array[array > 0]
        span = np.max(np.abs(np.log10(array / null))) if array.size else 0.0
        span = max(span, math.log10(2))
        for candidate in _NICE_RATIO_TICKS[_NICE_RATIO_TICKS.index(2.0):]:
            if math.log10(candidate) >= span * 0.999:
                return null / candidate, null * candidate
        return null / 1000.0, null * 1000.0
    span = np.max(np.abs(array - null)) if array.size else 0.0
    half = nice_ceiling(span if span > 0 else 1.0)
    return null - half, null + half


def figure_width_in(ax: Axes) -> float:
    """Width in inches of the (root) figure that holds ``ax``."""
    figure = ax.get_figure(root=True)
    if figure is None:
        raise ValueError("the Axes is not part of a figure")
    return float(figure.get_figwidth())


def set_effect_axis(ax: Axes, limits: tuple[float, float], ratio: bool,
                    null: float) -> None:
    """Log or linear effect axis with readable ticks at the given limits."""
    panel_in = ax.get_position().width * figure_width_in(ax)
    if ratio:
        ax.set_xscale("log")
        ticks = ratio_ticks(*limits, max_ticks=max(3, int(panel_in / 0.3)))
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
    else:
        half = (limits[1] - limits[0]) / 2
        ticks = [null - half, null - half / 2, null, null + half / 2, null + half]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    ax.set_xlim(*limits)


def axis_label(measure: str | None, ratio: bool) -> str:
    """Label of an effect axis, e.g. ``Odds ratio (log scale)``."""
    name = measure_name(measure)
    return f"{name} (log scale)" if ratio else name


def as_float_array(values: Any, name: str) -> np.ndarray:
    """1-D float array; raise ``ValueError`` naming the argument otherwise."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"argument {name!r} must be one-dimensional, got shape {array.shape}")
    return array


#: Size (points) of the arrowhead that ends an interval cut at the axis.
ARROW_SIZE = 3.5


def edge_arrows(ax: Axes, ys: Sequence[float], lows: Sequence[float],
                highs: Sequence[float], limits: tuple[float, float], *, colour: Any,
                gid: str, size: float = ARROW_SIZE) -> None:
    """Arrowheads where an interval runs past the axis (metafor ``forest()``'s arrows).

    Each row ``y`` whose ``low`` lies left of the axis gets a left-pointing arrowhead at
    the left limit, and one whose ``high`` lies right of it a right-pointing one at the
    right limit; the caller draws the interval cut at the limits.
    """
    lo_lim, hi_lim = min(limits), max(limits)
    for marker, edge, outside in (("<", lo_lim, [lo < lo_lim for lo in lows]),
                                  (">", hi_lim, [hi > hi_lim for hi in highs])):
        rows = [y for y, out in zip(ys, outside, strict=True) if out]
        if rows:
            ax.plot([edge] * len(rows), rows, linestyle="none", marker=marker,
                    markersize=size, color=colour, clip_on=False,
                    gid=gid, zorder=3)


def require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    """Raise ``ValueError`` naming the frame argument and the missing columns."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"argument {name!r} must be a pandas DataFrame, got "
                         f"{type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"argument {name!r} lacks column(s) {missing}; it has "
                         f"{list(frame.columns)}")
