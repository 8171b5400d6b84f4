"""Network meta-analysis figures: the network graph and the node-splitting plot.

:func:`network_graph` draws treatments on a circle (netmeta ``netgraph``'s default layout,
first treatment at the top, clockwise), edges with width proportional to the number of
studies making the comparison (labelled with it); :func:`netsplit_plot` shows, for each
comparison with direct evidence, the direct, indirect and network estimates with intervals.
No statistics are computed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes

from analysis.plots import _common as c
from analysis.plots import style

__all__ = ["netsplit_plot", "network_graph"]


@style.plain_text
def network_graph(result: Any, *, max_width: float = 6.0, ax: Axes | None = None) -> Axes:
    """Draw the network of a :class:`~analysis.network.NetworkResult`.

    Parameters
    ----------
    result : NetworkResult
    max_width : float
        Line width (points) of the edge with the most studies.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    data = result.data
    names = list(data.treatments)
    n = len(names)
    counts: dict[tuple[int, int], int] = {}
    for a, b in zip(data.a, data.b, strict=True):
        key = (min(int(a), int(b)), max(int(a), int(b)))
        counts.setdefault(key, 0)
        counts[key] += 1
    if ax is None:
        ax = style.new_axes(3.6, 3.6, rect=(0.08, 0.08, 0.84, 0.84))
    angle = np.pi / 2 - 2 * np.pi * np.arange(n) / n
    x, y = np.cos(angle), np.sin(angle)
    top = max(counts.values())
    for (i, j), k in sorted(counts.items()):
        ax.plot([x[i], x[j]], [y[i], y[j]], color=style.OKABE_ITO["blue"],
                linewidth=max(0.6, max_width * k / top), solid_capstyle="round", zorder=1)
        ax.text((x[i] + x[j]) / 2, (y[i] + y[j]) / 2, str(k), ha="center", va="center",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"},
                **style.text_kwargs(size=style.MIN_FONT_SIZE))
    ax.scatter(x, y, s=40, color=style.OKABE_ITO["vermillion"], zorder=2)
    for i, name in enumerate(names):
        ax.text(1.14 * x[i], 1.14 * y[i], name, ha="center", va="center",
                **style.text_kwargs())
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.35, 1.35)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(f"{n} treatments, {len(data.studies)} studies "
                 "(edge width and label: number of studies)", fontsize=style.FONT_SIZE)
    return ax


@style.plain_text
def netsplit_plot(split: Any, *, model: str = "random", ax: Axes | None = None) -> Axes:
    """Direct, indirect and network estimates per comparison (a :class:`NetSplitResult`).

    Parameters
    ----------
    split : NetSplitResult
    model : {"random", "common"}
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    frame = split.random if model == "random" else split.common
    frame = frame[np.isfinite(frame["direct"].to_numpy(float))].reset_index(drop=True)
    ratio = c.is_ratio(split.measure)
    from scipy import stats

    crit = float(stats.norm.isf((1 - split.level) / 2))
    rows = len(frame)
    if ax is None:
        ax = style.new_axes(5.0, 0.8 + 0.45 * rows, rect=(0.32, 0.5 / (0.8 + 0.45 * rows), 0.64,
                                                            1 - 0.8 / (0.8 + 0.45 * rows)))
    kinds = (("direct", "Direct", style.OKABE_ITO["blue"]),
             ("indirect", "Indirect", style.OKABE_ITO["orange"]),
             ("nma", "Network", style.OKABE_ITO["black"]))
    for r in range(rows):
        row = frame.iloc[r]
        for k, (col, label, colour) in enumerate(kinds):
            est, se = float(row[col]), float(row[f"{col}_se"])
            if not np.isfinite(est):
                continue
            yy = -(r * 4 + k)
            lo, mid, hi = c.display(np.array([est - crit * se, est, est + crit * se]),
                                    split.measure)
            ax.plot([lo, hi], [yy, yy], color=colour, linewidth=style.LINE_WIDTH)
            ax.plot([mid], [yy], "s", color=colour, markersize=3,
                    label=label if r == 0 else None)
    ax.set_yticks([-(i * 4 + 1) for i in range(rows)],
                  [f"{row.comparison} (difference {c.fmt_p(row.pvalue)})"
                   for row in frame.itertuples()])
    ax.axvline(c.null_value(split.measure), color="grey", linewidth=style.THIN_LINE_WIDTH)
    if ratio:
        ax.set_xscale("log")
    ax.set_xlabel(c.axis_label(split.measure, ratio))
    ax.legend(frameon=False, fontsize=style.MIN_FONT_SIZE, loc="lower left",
              bbox_to_anchor=(0.0, 1.0), ncols=3)
    style.style_axes(ax)
    return ax
