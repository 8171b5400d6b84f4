"""Influence diagnostics plot: metafor's ``plot(influence(rma(...)))`` as eight panels.

Draws an :class:`analysis.results.InfluenceResult` (computed by
:func:`analysis.sensitivity.influence`); nothing is computed here: the guide lines are the
cut-offs of :meth:`analysis.results.InfluenceResult.cutoffs`, the full model's tau2 and QE,
and the average hat value p/k and weight 100/k.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, MaxNLocator

from analysis.plots import _common as c
from analysis.plots import style
from analysis.results import InfluenceResult

__all__ = ["influence_plot"]

#: (field, panel title) in metafor's order (left to right, top to bottom).
PANELS = (
    ("rstudent", "Studentized residual (rstudent)"),
    ("dffits", "DFFITS"),
    ("cook_d", "Cook's distance"),
    ("cov_r", "Covariance ratio (cov.r)"),
    ("tau2_del", "τ² with the study left out"),
    ("qe_del", "QE (residual heterogeneity) with the study left out"),
    ("hat", "Hat value"),
    ("weight", "Weight (%)"),
)

_PANEL_HEIGHT_IN = 1.25
_TOP_IN = 0.42
_BOTTOM_IN = 0.42


def _reference_lines(result: InfluenceResult) -> dict[str, list[tuple[float, str]]]:
    """Horizontal guide lines per panel (value, line style), as metafor's plot draws them."""
    k, p = result.k, result.p
    cut = result.cutoffs()
    lines: dict[str, list[tuple[float, str]]] = {
        "rstudent": [(0.0, "-"), (-1.96, ":"), (1.96, ":")],
        "cov_r": [(1.0, "-")],
        "tau2_del": [(result.tau2, "-")],
        "qe_del": [(result.qe, "-")],
        "hat": [(p / k, "-"), (cut["hat"], ":")],
        "weight": [(100 / k, "-")],
        "cook_d": [(cut["cook_d"], ":")],
        "dffits": [(0.0, "-"), (-cut["dffits"], ":"), (cut["dffits"], ":")],
    }
    return lines


@style.plain_text
def influence_plot(result: InfluenceResult, *, fig: Figure | None = None) -> Figure:
    r"""Draw the eight influence diagnostics against study position, metafor style.

    Panels (two columns, four rows): studentized deleted residuals, DFFITS, Cook's
    distances, covariance ratios, leave-one-out :math:`\tau^2` and :math:`Q_E`, hat values
    and weights (percent). Each panel plots the values against the study's position (1..k,
    the result's order; with up to 15 studies the bottom panels name them by
    ``result.study``, at 45 degrees, when these are not just the positions) joined by a thin
    grey line;
    studies flagged as influential by metafor's rule are drawn as filled vermillion squares,
    the others as blue circles (shape and colour both differ, Okabe-Ito palette). Guide
    lines as in metafor's ``plot.infl.rma.uni``: 0 and ±1.96 (rstudent), 0 and
    :math:`\pm 3\sqrt{p/(k-p)}` (DFFITS), the median of :math:`\chi^2_p` (Cook's
    distance), 1 (cov.r), the full model's :math:`\tau^2` and :math:`Q_E`, :math:`p/k` and
    :math:`3p/k` (hat) and :math:`100/k` (weight).

    Parameters
    ----------
    result : InfluenceResult
        Output of :func:`analysis.influence`.
    fig : matplotlib.figure.Figure, optional
        Empty Figure to draw on; when None a double-column Figure is created (no pyplot).

    Returns
    -------
    matplotlib.figure.Figure
        The Figure; its eight Axes are ``fig.axes`` in the panel order above. Never saved.
    """
    if not isinstance(result, InfluenceResult):
        raise ValueError(f"argument 'result' = {type(result).__name__} is not allowed; use the "
                         "InfluenceResult of analysis.influence()")
    n = len(result.study)
    labels = [str(s) for s in result.study]
    named = n <= 15 and labels != [str(i) for i in range(1, n + 1)]
    bottom = _BOTTOM_IN
    if named:  # study labels under the bottom panels, at 45 degrees
        bottom += 0.71 * c.max_width_in(labels, style.TICK_LABEL_SIZE) + 0.05
    width = style.cm_to_inch(style.DOUBLE_COLUMN_CM)
    height = _TOP_IN + bottom + 4 * _PANEL_HEIGHT_IN
    if fig is None:
        fig = Figure(figsize=(width, height), dpi=style.RC_PARAMS["figure.dpi"])
    else:
        width, height = (float(s) for s in fig.get_size_inches())
    position = np.arange(1, n + 1)
    flagged = np.asarray(result.influential, dtype=bool)
    guides = _reference_lines(result)
    with style.rc_context():
        grid = fig.add_gridspec(4, 2, left=0.62 / width, right=1 - 0.12 / width,
                                bottom=bottom / height, top=1 - _TOP_IN / height,
                                hspace=0.42, wspace=0.22)
        axes: list[Axes] = []
        for index, (field, title) in enumerate(PANELS):
            ax = fig.add_subplot(grid[index // 2, index % 2],
                                 sharex=axes[0] if axes else None)
            axes.append(ax)
            _panel(ax, position, np.asarray(getattr(result, field), dtype=float), flagged,
                   guides[field], title, field)
            ax.set_xlim(0.4, n + 0.6)
            if n <= 15:
                ax.xaxis.set_major_locator(FixedLocator(position.tolist()))
            else:
                ax.xaxis.set_major_locator(MaxNLocator(nbins=12, integer=True))
            if index >= 6 and named:
                ax.set_xticklabels(labels, rotation=45, ha="right", rotation_mode="anchor")
                ax.set_xlabel("Study")
            elif index >= 6:
                ax.set_xlabel("Study (position in the data)")
            else:
                ax.tick_params(labelbottom=False)
        handles = [
            Line2D([], [], ls="none", marker="o", ms=3.5, mfc="white",
                   mec=style.COLOURS["study"], label="Study"),
            Line2D([], [], ls="none", marker="s", ms=4, mfc=style.OKABE_ITO["vermillion"],
                   mec=style.OKABE_ITO["vermillion"], label="Influential (metafor's rule)"),
        ]
        method = result.method + (" Knapp-Hartung" if result.ci_method.startswith("hksj")
                                  else "")
        fig.legend(handles=handles, loc="upper right", ncols=2, frameon=False,
                   fontsize=style.MIN_FONT_SIZE + 0.5, bbox_to_anchor=(1 - 0.1 / width, 1.0),
                   borderaxespad=0.3)
        fig.text(0.62 / width, 1 - 0.08 / height,
                 f"Influence diagnostics, {method}, k = {result.k}, p = {result.p}",
                 ha="left", va="top", **style.text_kwargs())
    return fig


def _panel(ax: Axes, x: np.ndarray, y: np.ndarray, flagged: np.ndarray,
           guides: list[tuple[float, str]], title: str, field: str) -> None:
    style.style_axes(ax)
    for value, ls in guides:
        if np.isfinite(value):
            ax.axhline(value, color=style.COLOURS["null"], lw=style.THIN_LINE_WIDTH, ls=ls,
                       zorder=1)
    ax.plot(x, y, color="#999999", lw=style.THIN_LINE_WIDTH, zorder=2)
    normal = ~flagged
    ax.plot(x[normal], y[normal], ls="none", marker="o", ms=3.5, mfc="white",
            mec=style.COLOURS["study"], mew=0.8, zorder=3, gid=f"influence-{field}")
    ax.plot(x[flagged], y[flagged], ls="none", marker="s", ms=4,
            mfc=style.OKABE_ITO["vermillion"], mec=style.OKABE_ITO["vermillion"], zorder=4,
            gid=f"influence-{field}-flagged")
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.margins(y=0.12)
    ax.set_title(title, loc="left", pad=3, **style.text_kwargs())
