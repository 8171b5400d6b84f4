"""Figures of a Bayesian random-effects meta-analysis (:class:`~analysis.BayesMetaResult`).

:func:`bayes_forest_plot` is bayesmeta's ``forestplot.bayesmeta``: per study the observed
estimate with its confidence interval (Wald, :func:`analysis.contrasts.study_intervals`) and,
beneath it, the shrinkage estimate (posterior median and shortest credible interval of the
study's true effect ``theta_i``); the posterior of ``mu`` as a diamond (median, shortest
interval) and the posterior predictive interval of a new study's effect as a bar.
:func:`bayes_density_plot` draws one marginal posterior density (``mu``, ``tau`` or
``theta_new``, as bayesmeta's ``plot.bayesmeta``) with its shortest interval shaded, the
median marked and the prior density overlaid (tau always; mu when its prior is proper);
:func:`bayes_posterior_plot` puts the three side by side. Ratio measures are shown on a log
axis labelled in ratios; every drawn value is read from the result (no statistics here).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from analysis.bayesian.result import BayesMetaResult
from analysis.contrasts import study_intervals
from analysis.plots import _common as c
from analysis.plots import style

__all__ = [
    "bayes_density_plot",
    "bayes_forest",
    "bayes_forest_plot",
    "bayes_posterior",
    "bayes_posterior_plot",
]

#: Vertical offset of the observed (up) and shrinkage (down) interval within a study row.
_OFFSET = 0.18
#: Probability range of the x grid of a density of mu or theta_new (and the upper tail of tau).
_TAIL = 5e-4
#: Points of a density curve.
_N_GRID = 401
_PARAMETER_NAMES = {"mu": "Overall effect μ", "theta_new": "New study's effect θ_new",
                    "tau": "Heterogeneity τ"}


def _check(result: object) -> BayesMetaResult:
    if not isinstance(result, BayesMetaResult):
        raise ValueError(f"argument 'result' = {type(result).__name__} is not allowed; use the "
                         "BayesMetaResult of analysis.bayesmeta()")
    return result


def _pct(level: float) -> str:
    return f"{100 * level:g}%"


@style.plain_text
def bayes_forest_plot(result: BayesMetaResult, *, ax: Axes | None = None,
                      limits: tuple[float, float] | None = None) -> Axes:
    """Draw the forest plot with shrinkage intervals of a Bayesian meta-analysis.

    Parameters
    ----------
    result : BayesMetaResult
        Output of :func:`analysis.bayesmeta`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw the panel on (the text columns are drawn beside it, in axes
        coordinates); when None a double-column figure sized to the number of studies.
    limits : tuple of float, optional
        Effect-axis limits on the display scale (ratios for ratio measures); by default
        symmetric around the null value and covering every interval.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    Per study (top to bottom in the data's order): the observed estimate (blue square) with
    its Wald confidence interval at ``result.level``, and beneath it the shrinkage estimate
    (grey circle: posterior median of ``theta_i``, line: shortest credible interval). Below
    the studies the posterior of ``mu`` (diamond: shortest interval, centre at the
    median) and the posterior predictive interval of a new study (vermillion bar, tick at the
    median). Gids: ``observed-ci``, ``observed-points``, ``shrinkage-ci``,
    ``shrinkage-points``, ``mu-diamond``, ``prediction-bar``, ``prediction-median``.
    """
    res = _check(result)
    measure = res.measure
    ratio = c.is_ratio(measure)
    null = c.null_value(measure)
    k = res.k
    labels = [str(s) for s in res.study]
    obs = study_intervals(pd.DataFrame({"yi": res.yi, "vi": res.sei**2}), res.level)
    sh = res.shrinkage

    def disp(values: object) -> np.ndarray:
        return np.asarray(c.display(np.asarray(values, dtype=float), measure), dtype=float)

    o_est, o_lo, o_hi = disp(res.yi), disp(obs["ci_low"]), disp(obs["ci_high"])
    s_est, s_lo, s_hi = disp(sh["median"]), disp(sh["ci_low"]), disp(sh["ci_high"])
    mu = disp([res.mu.median, res.mu.ci_low, res.mu.ci_high])
    new = disp([res.theta_new.median, res.theta_new.ci_low, res.theta_new.ci_high])
    pct = _pct(res.level)
    obs_text = [c.fmt_interval(*v) for v in zip(o_est, o_lo, o_hi, strict=True)]
    sh_text = [c.fmt_interval(*v) for v in zip(s_est, s_lo, s_hi, strict=True)]
    mu_text, new_text = c.fmt_interval(*mu), c.fmt_interval(*new)
    summary_labels = ["Overall effect μ", "Prediction (new study)"]
    headers = ("Study", f"Observed [{pct} CI]", f"Shrinkage [{pct} CrI]")

    label_in = c.max_width_in(labels + summary_labels + [headers[0]]) + 0.15
    col_in = c.max_width_in(obs_text + sh_text + [mu_text, new_text, *headers[1:]]) + 0.15
    rows = k + 3  # studies, a gap, mu, prediction
    row_in = 2.0 * style.ROW_HEIGHT_IN
    top_in, bottom_in = 0.30, 0.72
    if ax is None:
        width = style.cm_to_inch(style.DOUBLE_COLUMN_CM)
        height = top_in + bottom_in + rows * row_in
        left = (label_in + 0.08) / width
        right = (2 * col_in + 0.08) / width
        ax = style.new_axes(width, height, (left, bottom_in / height, 1 - left - right,
                                            rows * row_in / height))
    y = np.arange(k, 0, -1, dtype=float) + 2.0  # study rows; mu at 1, prediction at 0
    y_mu, y_new = 1.0, 0.0

    lim = limits if limits is not None else _limits(
        np.array([*o_lo, *o_hi, *s_lo, *s_hi, *mu, *new]), ratio, null)
    lo_lim, hi_lim = min(lim), max(lim)
    colours = style.OKABE_ITO

    def clip(values: np.ndarray) -> np.ndarray:
        return np.clip(values, lo_lim, hi_lim)

    ax.axvline(null, color=style.COLOURS["null"], lw=style.THIN_LINE_WIDTH, zorder=1)
    ax.axvline(mu[0], color="0.6", lw=style.THIN_LINE_WIDTH, ls=":", zorder=1)
    yo, ys = y + _OFFSET, y - _OFFSET
    ax.hlines(yo, clip(o_lo), clip(o_hi), color=style.COLOURS["ci"], lw=style.LINE_WIDTH,
              gid="observed-ci", zorder=2)
    ax.plot(o_est, yo, ls="none", marker="s", ms=3.2, color=style.COLOURS["study"],
            gid="observed-points", zorder=3)
    ax.hlines(ys, clip(s_lo), clip(s_hi), color="0.45", lw=style.LINE_WIDTH,
              gid="shrinkage-ci", zorder=2)
    ax.plot(s_est, ys, ls="none", marker="o", ms=3.0, mfc="white", mec="0.3", mew=0.7,
            gid="shrinkage-points", zorder=3)
    c.edge_arrows(ax, [*yo, *ys], [*o_lo, *s_lo], [*o_hi, *s_hi], (lo_lim, hi_lim),
                  colour="0.3", gid="ci-arrows")
    m_lo, m_hi = clip(np.array(mu[1:]))
    ax.add_patch(Polygon([(m_lo, y_mu), (mu[0], y_mu + 0.3), (m_hi, y_mu), (mu[0], y_mu - 0.3)],
                         closed=True, facecolor=style.COLOURS["pooled"], edgecolor="none",
                         gid="mu-diamond", zorder=3))
    n_lo, n_hi = clip(np.array(new[1:]))
    ax.add_patch(Polygon([(n_lo, y_new - 0.12), (n_hi, y_new - 0.12), (n_hi, y_new + 0.12),
                          (n_lo, y_new + 0.12)], closed=True, facecolor=colours["vermillion"],
                         edgecolor="none", alpha=0.85, gid="prediction-bar", zorder=3))
    ax.plot([new[0], new[0]], [y_new - 0.22, y_new + 0.22], color="black",
            lw=style.LINE_WIDTH, gid="prediction-median", zorder=4)

    ax.set_ylim(-0.7, k + 2.7)
    ax.set_yticks([])
    c.set_effect_axis(ax, (lo_lim, hi_lim), ratio, null)
    ax.set_xlabel(c.axis_label(measure, ratio))
    style.style_axes(ax, spines=("bottom",))

    panel_in = ax.get_position().width * c.figure_width_in(ax)
    trans = ax.get_yaxis_transform()  # x in axes fraction, y in data
    x_label = -(label_in + 0.02) / panel_in
    x_obs = 1.0 + (col_in + 0.04) / panel_in
    x_sh = 1.0 + (2 * col_in + 0.04) / panel_in
    size = style.FONT_SIZE
    header_y = k + 2.55
    for x, text, ha in ((x_label, headers[0], "left"), (x_obs, headers[1], "right"),
                        (x_sh, headers[2], "right")):
        ax.text(x, header_y, text, transform=trans, ha=ha, va="bottom", fontweight="bold",
                **style.text_kwargs(size))
    for yy, lab, ot, st in zip(y, labels, obs_text, sh_text, strict=True):
        ax.text(x_label, yy, lab, transform=trans, ha="left", va="center",
                **style.text_kwargs(size))
        ax.text(x_obs, yy + _OFFSET, ot, transform=trans, ha="right", va="center",
                **style.text_kwargs(size))
        ax.text(x_sh, yy - _OFFSET, st, transform=trans, ha="right", va="center",
                color="0.3", **style.text_kwargs(size))
    for yy, lab, txt in ((y_mu, summary_labels[0], mu_text), (y_new, summary_labels[1],
                                                               new_text)):
        ax.text(x_label, yy, lab, transform=trans, ha="left", va="center", fontweight="bold",
                **style.text_kwargs(size))
        ax.text(x_sh, yy, txt, transform=trans, ha="right", va="center", fontweight="bold",
                **style.text_kwargs(size))
    tau = res.tau
    foot = (f"Heterogeneity τ: median {c.fmt_number(tau.median)} [{pct} CrI "
            f"{c.fmt_number(tau.ci_low)}, {c.fmt_number(tau.ci_high)}]"
            f"{' (analysis scale)' if ratio else ''}; priors: τ ~ {res.tau_prior.name}, "
            f"μ ~ {res.mu_prior.name}.\nShrinkage, μ and prediction: posterior median and "
            f"shortest {pct} interval (CrI); observed: Wald {pct} CI.")
    figure = ax.get_figure(root=True)
    assert figure is not None
    panel_h_in = ax.get_position().height * float(figure.get_figheight())
    ax.text(x_label, -0.40 / panel_h_in, foot, transform=ax.transAxes, ha="left", va="top",
            **style.text_kwargs(style.MIN_FONT_SIZE))
    handles = [
        Line2D([], [], ls="-", marker="s", ms=3.2, color=style.COLOURS["ci"],
               mfc=style.COLOURS["study"], mec=style.COLOURS["study"],
               label=f"Observed ({pct} CI)"),
        Line2D([], [], ls="-", marker="o", ms=3.0, color="0.45", mfc="white", mec="0.3",
               label=f"Shrinkage ({pct} CrI)"),
    ]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2,
              frameon=False, fontsize=style.MIN_FONT_SIZE, borderaxespad=0.1,
              handlelength=1.6, columnspacing=1.0)
    return ax


def _limits(values: np.ndarray, ratio: bool, null: float) -> tuple[float, float]:
    """Ratio axis: the nice 1-2-5 ticks just outside the values and the null; else symmetric."""
    finite = values[np.isfinite(values)]
    if not ratio:
        return c.symmetric_limits(list(finite), ratio, null)
    ticks = np.array(c._NICE_RATIO_TICKS)
    low, high = min(float(finite[finite > 0].min()), null), max(float(finite.max()), null)
    below, above = ticks[ticks <= low * (1 + 1e-9)], ticks[ticks >= high * (1 - 1e-9)]
    return (float(below[-1]) if below.size else low, float(above[0]) if above.size else high)


def _grid(res: BayesMetaResult, parameter: str) -> np.ndarray:
    if parameter == "tau":
        hi = float(res.quantile("tau", 1.0 - 2 * _TAIL)[0])
        lo = res.tau_prior.lower
        return lo + (hi - lo) * np.linspace(0.0, 1.0, _N_GRID)
    lo, hi = res.quantile(parameter, [_TAIL, 1.0 - _TAIL])
    return np.linspace(float(lo), float(hi), _N_GRID)


@style.plain_text
def bayes_density_plot(result: BayesMetaResult, parameter: str = "mu", *,
                       ax: Axes | None = None, prior: bool = True) -> Axes:
    """Draw the marginal posterior density of ``"mu"``, ``"tau"`` or ``"theta_new"``.

    Parameters
    ----------
    result : BayesMetaResult
        Output of :func:`analysis.bayesmeta`.
    parameter : {"mu", "tau", "theta_new"}
        The overall effect, the heterogeneity (between-study SD, on the analysis scale) or
        a new study's effect (posterior predictive).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new single-column figure when None.
    prior : bool
        Overlay the prior density (dashed): always available for tau, for mu only when its
        prior is proper (normal); none for theta_new.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    The curve is ``result.pdf(parameter, x)`` on 401 points from the 0.05% to the 99.95%
    posterior quantile (for tau from the lower end of its support to the 99.9% quantile);
    the shaded region is the shortest credible interval (for theta_new the prediction
    interval, PI) at ``result.level``
    and the vertical line the posterior median. For ratio measures mu and theta_new are
    drawn against a log axis labelled in ratios; the density stays that of the
    analysis-scale (log) parameter. Gids: ``posterior-density``, ``prior-density``,
    ``interval-shading``, ``posterior-median``.
    """
    res = _check(result)
    if parameter not in _PARAMETER_NAMES:
        raise ValueError(f"argument 'parameter' = {parameter!r} is not allowed; use one of "
                         + ", ".join(map(repr, _PARAMETER_NAMES)))
    if ax is None:
        width, height = style.cm_to_inch(style.SINGLE_COLUMN_CM), 2.4
        left, bottom, top = 0.55 / width, 0.45 / height, 0.42 / height
        ax = style.new_axes(width, height, (left, bottom, 1 - left - 0.12 / width,
                                            1 - bottom - top))
    summary = getattr(res, parameter)
    x = _grid(res, parameter)
    dens = res.pdf(parameter, x)
    ratio = parameter != "tau" and c.is_ratio(res.measure)

    def disp(values: np.ndarray) -> np.ndarray:
        return np.asarray(c.display(values, res.measure), dtype=float) if ratio else values

    xd = disp(x)
    colour = style.COLOURS["curve"] if parameter != "theta_new" else style.OKABE_ITO[
        "vermillion"]
    inside = (x >= summary.ci_low) & (x <= summary.ci_high)
    xs = np.concatenate([[summary.ci_low], x[inside], [summary.ci_high]])
    ds = res.pdf(parameter, xs)
    ax.fill_between(disp(xs), 0.0, ds, color=colour, alpha=0.22, lw=0, gid="interval-shading")
    ax.plot(xd, dens, color=colour, lw=style.LINE_WIDTH * 1.3, gid="posterior-density",
            label="Posterior")
    med = summary.median
    ax.plot(disp(np.array([med, med])), [0.0, float(res.pdf(parameter, med)[0])],
            color=colour, lw=style.THIN_LINE_WIDTH, gid="posterior-median")
    show_prior = prior and (parameter == "tau" or (parameter == "mu" and res.mu_prior.proper))
    if show_prior:
        pd_ = res.prior_pdf(parameter, x)
        ax.plot(xd, pd_, color="0.35", lw=style.LINE_WIDTH, ls="--", gid="prior-density",
                label="Prior")
    ymax = float(np.max(dens))
    ax.set_ylim(0.0, ymax * 1.12)
    ax.set_xlim(float(xd[0]), float(xd[-1]))
    if ratio:
        ax.set_xscale("log")
        ticks = c.log_ticks(float(xd[0]), float(xd[-1]))
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
    if parameter == "tau":
        ax.set_xlabel("Between-study SD τ" + (" (on the log scale)" if c.is_ratio(res.measure)
                                              else ""))
    else:
        ax.set_xlabel(c.axis_label(res.measure, ratio) if res.measure else "Effect")
    ax.set_ylabel("Posterior density")
    pct = _pct(res.level)
    shown = disp(np.array([med, summary.ci_low, summary.ci_high]))
    word = "PI" if parameter == "theta_new" else "CrI"
    ax.set_title(f"{_PARAMETER_NAMES[parameter]}\nmedian {c.fmt_number(shown[0])} "
                 f"[{pct} {word} {c.fmt_number(shown[1])}, {c.fmt_number(shown[2])}]",
                 fontsize=style.MIN_FONT_SIZE + 0.5, fontfamily=style.FONT_FAMILY, loc="left")
    if show_prior:
        ax.legend(loc="upper right", frameon=False, fontsize=style.MIN_FONT_SIZE)
    style.style_axes(ax)
    return ax


@style.plain_text
def bayes_posterior_plot(result: BayesMetaResult, *,
                         which: tuple[str, ...] = ("mu", "theta_new", "tau"),
                         fig: Figure | None = None) -> Figure:
    """Draw the posterior densities of ``which`` side by side (:func:`bayes_density_plot`).

    Parameters
    ----------
    result : BayesMetaResult
        Output of :func:`analysis.bayesmeta`.
    which : tuple of str
        Parameters, in panel order, from ``"mu"``, ``"theta_new"``, ``"tau"``.
    fig : matplotlib.figure.Figure, optional
        Empty Figure to draw on; when None a double-column Figure (no pyplot).

    Returns
    -------
    matplotlib.figure.Figure
        Its Axes are ``fig.axes`` in the order of ``which``. Never saved.
    """
    res = _check(result)
    names = tuple(which)
    if not names or any(p not in _PARAMETER_NAMES for p in names):
        raise ValueError(f"argument 'which' = {which!r} is not allowed; use a non-empty tuple "
                         "of 'mu', 'theta_new', 'tau'")
    width = style.cm_to_inch(style.DOUBLE_COLUMN_CM)
    height = 2.45
    if fig is None:
        fig = Figure(figsize=(width, height), dpi=style.RC_PARAMS["figure.dpi"])
    else:
        width, height = (float(s) for s in fig.get_size_inches())
    with style.rc_context():
        grid = fig.add_gridspec(1, len(names), left=0.5 / width, right=1 - 0.12 / width,
                                bottom=0.45 / height, top=1 - 0.42 / height, wspace=0.32)
        for index, name in enumerate(names):
            bayes_density_plot(res, name, ax=fig.add_subplot(grid[0, index]))
    return fig


#: ``plots.bayes_forest(result)``: the same function as :func:`bayes_forest_plot`.
bayes_forest = bayes_forest_plot
#: ``plots.bayes_posterior(result)``: the same function as :func:`bayes_posterior_plot`.
bayes_posterior = bayes_posterior_plot
