"""The GOSH plot: the pooled estimate of every subset against its I² (Olkin et al. 2012)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.plots import _common as c
from analysis.plots import style

__all__ = ["HEXBIN_ABOVE", "gosh_plot"]

#: Above this many subsets the cloud is drawn as a hexagonal-bin density, not as points.
HEXBIN_ABOVE = 20000


def _study_index(result: Any, study: Any) -> int:
    names = list(result.study)
    if isinstance(study, (int, np.integer)) and not isinstance(study, bool):
        if not 0 <= int(study) < len(names):
            raise ValueError(f"argument 'study' = {study} is out of range; use 0..{len(names) - 1}"
                             " or a label")
        return int(study)
    if str(study) in names:
        return names.index(str(study))
    raise ValueError(f"argument 'study' = {study!r} is not a study of the result; its studies "
                     "are " + ", ".join(repr(n) for n in names[:20]))


def gosh_plot(result: Any, *, study: Any = None, hexbin: bool | None = None,
              ax: Axes | None = None) -> Axes:
    """Draw the GOSH plot of a :class:`~analysis.results.GoshResult` (metafor ``plot.gosh``).

    Parameters
    ----------
    result : GoshResult
        From :func:`analysis.gosh`.
    study : int or str, optional
        Highlight the subsets that contain this study (position or label): those with it in
        vermillion, those without in blue (metafor ``plot(res, out = )``).
    hexbin : bool, optional
        Draw a hexagonal-bin density instead of points (default: above 20,000 subsets);
        with ``study`` one density per group, overlaid.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; when None a single-column Figure is created.

    Returns
    -------
    matplotlib.axes.Axes
        x: the pooled estimate (back-transformed for ratio measures, on a log axis), y: I²
        (percent); the title names the model and the number of subsets.
    """
    ok = np.asarray(result.converged) & np.isfinite(result.estimate) & np.isfinite(result.i2)
    est, i2 = np.asarray(result.estimate)[ok], np.asarray(result.i2)[ok]
    ratio = c.is_ratio(result.measure)
    x = c.display(est, result.measure)
    dense = len(est) > HEXBIN_ABOVE if hexbin is None else bool(hexbin)
    if ax is None:
        width = style.cm_to_inch(style.SINGLE_COLUMN_CM)
        height = width * 0.85
        left, bottom, top = 0.55 / width, 0.45 / height, 0.3 / height  # room for the title
        ax = style.new_axes(width, height, (left, bottom, 1 - left - 0.12 / width,
                                            1 - bottom - top))
    style.style_axes(ax)
    groups: list[tuple[np.ndarray, str, str]] = [(np.ones(est.size, bool), "subsets",
                                                  style.COLOURS["study"])]
    if study is not None:
        j = _study_index(result, study)
        has = np.asarray(result.incl)[ok][:, j]
        name = result.study[j]
        groups = [(~has, f"without {name}", style.OKABE_ITO["blue"]),
                  (has, f"with {name}", style.OKABE_ITO["vermillion"])]
    handles: list[Any] = []
    xs = np.log10(x) if ratio else x
    extent = (float(xs.min()), float(xs.max()), 0.0, 100.0)  # one hexagon grid for all groups
    for mask, label, colour in groups:
        if not mask.any():
            continue
        if dense:
            cmap = _single_hue(colour)
            ax.hexbin(x[mask], i2[mask], gridsize=45, bins="log", mincnt=1, cmap=cmap,
                      xscale="log" if ratio else "linear", alpha=0.85, linewidths=0.0,
                      extent=extent, gid=f"gosh-hexbin-{label}")
            handles.append(Patch(color=colour, label=label))
        else:
            size = 6.0 if est.size > 2000 else 10.0
            ax.scatter(x[mask], i2[mask], s=size, c=colour, alpha=0.35 if est.size > 500 else 0.7,
                       edgecolors="none", rasterized=est.size > 2000, gid=f"gosh-points-{label}")
            handles.append(Line2D([], [], marker="o", linestyle="", color=colour, label=label))
    if ratio:
        ax.set_xscale("log")
        # explicit 1-2-5 ticks: the log formatter's mathtext labels would be drawn verbatim
        # under the report's plain-text settings (text.parse_math off)
        ticks = c.ratio_ticks(float(x.min()), float(x.max()))
        ax.set_xticks(ticks)
        ax.set_xticklabels([c.fmt_number(t) for t in ticks])
        ax.minorticks_off()
    ax.set_xlabel(c.axis_label(result.measure, ratio) if result.measure else "Pooled estimate")
    ax.set_ylabel("I² (%)")
    ax.set_ylim(-2, 102)
    how = f"all {len(result):,}" if result.exact else f"{len(result):,} random"
    ax.set_title(f"GOSH: {how} subsets ({result.method})", loc="left",
                 fontsize=style.HEADER_SIZE)
    if study is not None:
        ax.legend(handles=handles, loc="best", frameon=False, fontsize=style.TICK_LABEL_SIZE)
    return ax


def _single_hue(colour: str) -> Any:
    """Return a colour map from a light tint of ``colour`` (one subset) to ``colour``."""
    from matplotlib.colors import LinearSegmentedColormap, to_rgb

    r, g, b = (0.75 + 0.25 * ch for ch in to_rgb(colour))
    return LinearSegmentedColormap.from_list(f"gosh-{colour}", [(r, g, b), to_rgb(colour)])
