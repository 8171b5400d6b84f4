"""The trial sequential analysis plot from a :class:`~analysis.results.TrialSequentialResult`.

The cumulative Z-curve (one point per trial) against the accrued information (participants),
the alpha-spending monitoring boundaries (solid, two-sided: above and below), the
beta-spending futility wedge (dashed, when present), the conventional +-1.96 lines (dotted)
and a vertical marker at the required information size; the conclusion is the title. No
statistics are computed here.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from analysis.plots import style
from analysis.results import TrialSequentialResult

__all__ = ["tsa", "tsa_plot"]

#: Boundaries above this are drawn clipped (an unreachable boundary at very early looks).
_CLIP = 8.0


def tsa_plot(result: TrialSequentialResult, *, ax: Axes | None = None) -> Axes:
    """Draw the TSA plot of ``result`` and return the Axes.

    Parameters
    ----------
    result : TrialSequentialResult
        Result of :func:`analysis.sequential.trial_sequential_analysis`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure (single column, 8.5 x 6.5 cm) when None.
    """
    if ax is None:
        ax = style.new_axes(style.SINGLE_COLUMN_CM / 2.54 * 1.3, 2.9)
    colours = style.OKABE_ITO
    ris = result.sequential_information_size
    x_look = result.look_fraction * ris
    upper = np.minimum(result.look_upper, _CLIP)
    finite = np.isfinite(result.look_upper)
    # The boundaries exist only at the looks (and at the RIS): they are drawn as points, never
    # joined by straight lines, which would invent a boundary between looks.
    ax.plot(x_look[finite], upper[finite], color=colours["vermillion"], ls="none",
            marker="o", ms=3, label="Monitoring boundary (at each look)")
    if result.sides == 2:
        ax.plot(x_look[finite], -upper[finite], color=colours["vermillion"], ls="none",
                marker="o", ms=3)
    fut = np.isfinite(result.look_futility) & (result.look_futility > 0)
    if np.any(fut):
        ax.plot(x_look[fut], result.look_futility[fut], color=colours["bluish_green"],
                ls="none", marker="D", ms=2.5, label="Futility boundary (at each look)")
        if result.sides == 2:
            ax.plot(x_look[fut], -result.look_futility[fut], color=colours["bluish_green"],
                    ls="none", marker="D", ms=2.5)
    z_conv = 1.959963984540054
    ax.axhline(z_conv, color="0.45", lw=style.THIN_LINE_WIDTH, ls=":", label="Z = \u00b11.96")
    ax.axhline(-z_conv, color="0.45", lw=style.THIN_LINE_WIDTH, ls=":")
    ax.axhline(0.0, color="0.7", lw=style.THIN_LINE_WIDTH)
    x = np.concatenate([[0.0], result.cumulative_n])
    z = np.concatenate([[0.0], result.zval])
    ax.plot(x, z, color=colours["blue"], lw=style.LINE_WIDTH * 1.4, marker="s", ms=2.5,
            label="Cumulative Z")
    ax.axvline(ris, color="0.3", lw=style.THIN_LINE_WIDTH, ls="-.")
    ax.text(ris, 0.98, f"RIS {ris:.0f} ", ha="right", va="top", transform=ax.get_xaxis_transform(),
            fontsize=style.MIN_FONT_SIZE, color="0.3")
    ax.set_xlim(0, max(ris, float(result.cumulative_n[-1])) * 1.08)
    ax.set_xlabel("Information size (participants)")
    ax.set_ylabel("Cumulative Z")
    # The conclusion is the legend's heading (as a free text it collided with the boundary).
    ax.legend(loc="lower right", fontsize=style.MIN_FONT_SIZE, frameon=False, ncol=2,
              title=result.conclusion_text.split(":")[0].capitalize(),
              title_fontsize=style.FONT_SIZE)
    style.style_axes(ax)
    return ax


#: ``plots.tsa(result)``: the same function as :func:`tsa_plot`.
tsa = tsa_plot
