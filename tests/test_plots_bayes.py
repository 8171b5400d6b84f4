"""Figures of a Bayesian meta-analysis (analysis.plots.bayes): the drawn values are the
result's quantiles and densities, the labels name what is shown, text is readable and files
are byte-for-byte repeatable."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.patches import Polygon
from scipy import stats

import analysis as ma
from analysis import plots
from analysis.bayesian import half_normal, mu_normal
from analysis.plots import style
from tests.test_plots import _by_gid, _check_readable

_DATA = json.loads(
    (Path(__file__).parent / "reference" / "bayesmeta" / "bayesmeta.json").read_text()
)["datasets"]["CrinsEtAl2014"]


def _fit(measure: str | None = "OR", mu_prior: object = None) -> ma.BayesMetaResult:
    return ma.bayesmeta(np.array(_DATA["y"]), sei=np.array(_DATA["sigma"]),
                        study=_DATA["labels"], measure=measure, tau_prior=half_normal(0.5),
                        mu_prior=mu_prior)


@pytest.fixture(scope="module")
def crins() -> ma.BayesMetaResult:
    return _fit("OR", mu_normal(0.0, 4.0))


def _segments_x(collection) -> np.ndarray:  # (n, 2) x ends of an hlines collection
    return np.array([seg[:, 0] for seg in collection.get_segments()])


def test_forest_draws_observed_and_shrinkage_intervals(crins: ma.BayesMetaResult) -> None:
    ax = plots.bayes_forest(crins)
    z = stats.norm.ppf(0.975)
    (obs,) = _by_gid(ax, "observed-ci")
    np.testing.assert_allclose(
        _segments_x(obs), np.exp(np.column_stack([crins.yi - z * crins.sei,
                                                  crins.yi + z * crins.sei])), rtol=1e-12)
    (obs_pts,) = _by_gid(ax, "observed-points")
    np.testing.assert_allclose(obs_pts.get_xdata(), np.exp(crins.yi), rtol=1e-12)
    (sh,) = _by_gid(ax, "shrinkage-ci")
    for i, seg in enumerate(_segments_x(sh)):
        lo, hi = crins.interval("theta", study=i)
        np.testing.assert_allclose(seg, np.exp([lo, hi]), rtol=1e-12)
    (sh_pts,) = _by_gid(ax, "shrinkage-points")
    np.testing.assert_allclose(
        sh_pts.get_xdata(),
        np.exp([crins.quantile("theta", 0.5, study=i)[0] for i in range(crins.k)]),
        rtol=1e-9)
    # studies top to bottom in the data's order, shrinkage under its observed estimate
    assert np.all(np.diff(obs_pts.get_ydata()) < 0)
    assert np.all(sh_pts.get_ydata() < obs_pts.get_ydata())
    (diamond,) = _by_gid(ax, "mu-diamond")
    assert isinstance(diamond, Polygon)
    xs = diamond.get_xy()[:4, 0]
    np.testing.assert_allclose(sorted(xs), np.exp(sorted(
        [crins.mu.ci_low, crins.mu.median, crins.mu.median, crins.mu.ci_high])), rtol=1e-12)
    (bar,) = _by_gid(ax, "prediction-bar")
    bx = bar.get_xy()[:, 0]
    np.testing.assert_allclose([bx.min(), bx.max()],
                               np.exp(crins.interval("theta_new")), rtol=1e-12)
    (tick,) = _by_gid(ax, "prediction-median")
    np.testing.assert_allclose(tick.get_xdata(), np.exp(crins.theta_new.median), rtol=1e-12)
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "Odds ratio (log scale)"
    texts = {t.get_text() for t in ax.texts}
    assert set(crins.study) <= texts
    assert {"Overall effect μ", "Prediction (new study)", "Observed [95% CI]",
            "Shrinkage [95% CrI]"} <= texts
    assert any("half-normal(scale=0.5)" in t for t in texts)
    _check_readable(ax)


def test_forest_linear_axis_without_ratio_measure() -> None:
    res = _fit(measure=None)
    ax = plots.bayes_forest_plot(res)
    assert ax.get_xscale() == "linear"
    (pts,) = _by_gid(ax, "observed-points")
    np.testing.assert_allclose(pts.get_xdata(), res.yi)
    _check_readable(ax)


@pytest.mark.parametrize("parameter", ["mu", "theta_new", "tau"])
def test_density_draws_the_posterior(crins: ma.BayesMetaResult, parameter: str) -> None:
    ax = plots.bayes_density_plot(crins, parameter)
    (line,) = _by_gid(ax, "posterior-density")
    x = np.asarray(line.get_xdata(), dtype=float)
    xa = x if parameter == "tau" else np.log(x)
    np.testing.assert_allclose(line.get_ydata(), crins.pdf(parameter, xa), rtol=1e-12)
    lo, hi = crins.interval(parameter)
    (shade,) = _by_gid(ax, "interval-shading")
    sx = shade.get_paths()[0].vertices[:, 0]
    sxa = sx if parameter == "tau" else np.log(sx)
    np.testing.assert_allclose([sxa.min(), sxa.max()], [lo, hi], rtol=1e-12, atol=1e-14)
    (med,) = _by_gid(ax, "posterior-median")
    m = getattr(crins, parameter).median
    np.testing.assert_allclose(med.get_xdata(), m if parameter == "tau" else np.exp(m),
                               rtol=1e-12)
    prior = _by_gid(ax, "prior-density")
    if parameter == "theta_new":
        assert not prior
    else:
        (p,) = prior
        np.testing.assert_allclose(p.get_ydata(), crins.prior_pdf(parameter, xa), rtol=1e-12)
    assert ax.get_xscale() == ("linear" if parameter == "tau" else "log")
    assert ax.get_ylabel() == "Posterior density"
    title = ax.get_title(loc="left")
    assert ("PI" if parameter == "theta_new" else "CrI") in title
    _check_readable(ax)


def test_density_of_mu_has_no_prior_line_under_flat_prior() -> None:
    ax = plots.bayes_density_plot(_fit(mu_prior=None), "mu")
    assert not _by_gid(ax, "prior-density")
    with pytest.raises(ValueError, match="parameter"):
        plots.bayes_density_plot(_fit(), "theta")


def test_posterior_figure_has_one_panel_per_parameter(crins: ma.BayesMetaResult) -> None:
    fig = plots.bayes_posterior(crins, which=("tau", "mu"))
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title(loc="left").startswith("Heterogeneity τ")
    assert fig.axes[1].get_title(loc="left").startswith("Overall effect μ")
    with pytest.raises(ValueError, match="which"):
        plots.bayes_posterior(crins, which=("sigma",))
    with pytest.raises(ValueError, match="BayesMetaResult"):
        plots.bayes_forest(object())  # type: ignore[arg-type]
    for ax in fig.axes:
        _check_readable(ax)


@pytest.mark.parametrize("draw", ["forest", "posterior"])
def test_saving_is_byte_for_byte_repeatable(crins: ma.BayesMetaResult, draw: str) -> None:
    def png() -> bytes:
        fig = (plots.bayes_forest(crins).figure if draw == "forest"
               else plots.bayes_posterior(crins))
        buffer = io.BytesIO()
        fig.savefig(buffer, **style.savefig_kwargs("png"))
        return buffer.getvalue()

    assert png() == png()


def test_prior_comparison_axis_is_not_stretched_by_a_heavy_tail() -> None:
    # One study under a half-Cauchy prior: its 0.1% quantiles of mu lie decades away; the
    # axis used to span them and drew every curve as a spike with overlapping tick labels.
    from analysis.bayesian import half_cauchy
    from analysis.plots.posterior import posterior_plot

    y, v = np.array([0.05]), np.array([0.04])
    fits = {"half-normal(0.5)": ma.bayesmeta(y, v, tau_prior=half_normal(0.5), measure="RR"),
            "half-cauchy(0.5)": ma.bayesmeta(y, v, tau_prior=half_cauchy(0.5), measure="RR")}
    ax = posterior_plot(fits)
    low, high = ax.get_xlim()
    cauchy = fits["half-cauchy(0.5)"]
    assert low <= np.exp(cauchy.quantile("mu", 0.025)[0]) and high >= np.exp(
        cauchy.quantile("mu", 0.975)[0])  # every prior's 95% interval is on the axis
    assert np.log10(high / low) < np.log10(np.exp(
        cauchy.quantile("mu", 0.999)[0] - cauchy.quantile("mu", 0.001)[0]))
    _check_readable(ax)
