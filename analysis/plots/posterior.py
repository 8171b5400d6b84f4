"""Posterior densities of the overall effect mu under several priors for tau.

One curve per :class:`~analysis.bayesian.BayesMetaResult` (the same data fitted under
different priors for the heterogeneity), on the measure's scale: for ratio measures the x-axis
is logarithmic and the density is per unit of the log ratio, so the curves keep their shape.
Computes nothing but the densities the results provide.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes

from analysis.bayesian import BayesMetaResult
from analysis.plots import _common as c
from analysis.plots import style

__all__ = ["posterior_plot"]

_COLOURS = ("blue", "vermillion", "bluish_green", "reddish_purple", "orange")
_STYLES = ("-", "--", ":", "-.", "-")


@style.plain_text
def posterior_plot(fits: Mapping[str, BayesMetaResult], *, ax: Axes | None = None,
                   points: int = 401) -> Axes:
    """Draw the posterior density of mu of each fit, the first (primary) one emphasised.

    Parameters
    ----------
    fits : mapping of str to BayesMetaResult
        Legend label -> fit of the same data (e.g. the plan's priors for tau).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a single-column figure when None.
    points : int
        Grid points of each curve.

    Returns
    -------
    matplotlib.axes.Axes
        The primary fit's shortest credible interval is shaded; a vertical line marks no
        effect.
    """
    if not fits:
        raise ValueError("argument 'fits' is empty; give at least one BayesMetaResult")
    results = list(fits.values())
    measure = results[0].measure
    ratio = c.is_ratio(measure)
    # The axis spans the primary fit's 0.1%-99.9% quantiles and every other fit's 95%
    # central interval: with one or two studies a heavy-tailed prior (half-Cauchy) gives
    # 0.1% quantiles decades away, which would squeeze every curve into a spike.
    low = min([float(results[0].quantile("mu", 0.001)[0])]
              + [float(r.quantile("mu", 0.025)[0]) for r in results[1:]])
    high = max([float(results[0].quantile("mu", 0.999)[0])]
               + [float(r.quantile("mu", 0.975)[0]) for r in results[1:]])
    grid = np.linspace(low, high, points)
    if ax is None:
        width = style.cm_to_inch(style.SINGLE_COLUMN_CM * 1.3)
        height = width * 0.62
        left, bottom = 0.5 / width, 0.42 / height
        ax = style.new_axes(width, height, (left, bottom, 1 - left - 0.12 / width,
                                            1 - bottom - 0.12 / height))
    style.style_axes(ax)
    x = c.display(grid, measure)
    for i, (label, fit) in enumerate(fits.items()):
        colour = style.OKABE_ITO[_COLOURS[i % len(_COLOURS)]]
        density = fit.pdf("mu", grid)
        ax.plot(x, density, color=colour, ls=_STYLES[i % len(_STYLES)],
                lw=style.LINE_WIDTH * (1.6 if i == 0 else 1.0), label=label)
        if i == 0:
            a, b = fit.mu.ci_low, fit.mu.ci_high
            inside = (grid >= a) & (grid <= b)
            ax.fill_between(x[inside], density[inside], color=colour, alpha=0.15, lw=0)
    ax.axvline(c.null_value(measure), color=style.COLOURS["null"], lw=style.THIN_LINE_WIDTH)
    if ratio:
        ax.set_xscale("log")
        ticks = c.ratio_ticks(float(x[0]), float(x[-1]))
        ax.set_xticks(ticks)
        ax.set_xticklabels([c.fmt_number(t) for t in ticks])
        ax.minorticks_off()
    ax.set_xlim(float(x[0]), float(x[-1]))
    ax.set_ylim(bottom=0)
    name = c.measure_name(measure) if measure else "effect"
    ax.set_xlabel(f"Overall effect mu ({name}{', log scale' if ratio else ''})")
    ax.set_ylabel("Posterior density" + (f" per unit log {measure}" if ratio else ""))
    ax.legend(loc="upper left", frameon=False, fontsize=style.MIN_FONT_SIZE)
    return ax
