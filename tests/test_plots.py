"""Tests of analysis.plots: every figure renders, has the expected structure, reads well
(fonts >= 6 pt, no overlapping text), matches a baseline image and saves repeatably."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.testing.compare import compare_images
from matplotlib.text import Text

import analysis as ma
from analysis import plots
from analysis.plots import style
from analysis.results import MetaRegressionResult, PoolResult, SubgroupResult, TrimFillResult

BASELINE_DIR = Path(__file__).parent / "baseline_images"
#: RMS tolerance (0-255 grey levels) of the image comparison. Text is rasterised by the
#: FreeType build bundled with matplotlib; other builds or versions shift anti-aliasing of
#: glyph edges by a pixel, which gives an RMS of a few units over a text-heavy figure. A
#: moved column, a missing row or a changed marker size gives well over 10.
IMAGE_TOL = 10.0
#: Set to 1 to (re)write the baseline image instead of comparing.
REGENERATE = os.environ.get("PLOTS_REGENERATE_BASELINE") == "1"

SIZES = (1, 2, 60)
MEASURES = ("OR", "MD")


# ----------------------------------------------------------------------------- data


def _frame(k: int, measure: str, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_t = rng.integers(20, 300, k).astype(float)
    n_c = rng.integers(20, 300, k).astype(float)
    frame = pd.DataFrame({"label": [f"Trial {i + 1:02d} {2000 + i % 20}" for i in range(k)],
                          "year": 2000 + np.arange(k) % 20, "n_t": n_t, "n_c": n_c})
    if measure == "OR":
        frame["events_t"] = rng.binomial(n_t.astype(int), 0.35).astype(float)
        frame["events_c"] = rng.binomial(n_c.astype(int), 0.25).astype(float)
        effects = ma.effect_sizes("OR", events_t=frame["events_t"], n_t=n_t,
                                  events_c=frame["events_c"], n_c=n_c)
    else:
        frame["mean_t"] = rng.normal(12, 2, k)
        frame["sd_t"] = rng.uniform(3, 6, k)
        frame["mean_c"] = rng.normal(10, 2, k)
        frame["sd_c"] = rng.uniform(3, 6, k)
        effects = ma.effect_sizes("MD", mean_t=frame["mean_t"], sd_t=frame["sd_t"], n_t=n_t,
                                  mean_c=frame["mean_c"], sd_c=frame["sd_c"], n_c=n_c)
    frame["yi"] = effects["yi"].to_numpy()
    frame["vi"] = effects["vi"].to_numpy()
    frame["measure"] = measure
    return frame


def _pool(frame: pd.DataFrame) -> PoolResult:
    return ma.pool(frame["yi"].to_numpy(), frame["vi"].to_numpy(),
                   measure=str(frame["measure"].iloc[0]))


def _sensitivity_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Tidy frame shaped like analysis.sensitivity output (values need not be exact)."""
    steps = np.arange(1, len(frame) + 1)
    estimate = frame["yi"].expanding().mean().to_numpy()
    half = 1.96 * np.sqrt(frame["vi"].expanding().mean().to_numpy() / steps)
    return pd.DataFrame({"label": frame["label"], "estimate": estimate,
                         "ci_low": estimate - half, "ci_high": estimate + half,
                         "measure": frame["measure"]})


def _fixed_pool(**overrides: object) -> PoolResult:
    """A PoolResult with fixed numbers: the image test does not depend on pooling code."""
    values: dict[str, object] = dict(
        estimate=0.405, se=0.12, zval=3.37, pvalue=0.00075, ci_low=0.17, ci_high=0.64,
        tau2=0.031, se_tau2=0.04, tau2_ci_low=0.0, tau2_ci_high=0.4, i2=21.0, i2_ci_low=0.0,
        i2_ci_high=70.0, h2=1.27, h2_ci_low=1.0, h2_ci_high=3.3, q=8.9, q_df=7,
        q_pvalue=0.26, pi_low=-0.05, pi_high=0.86, k=8, method="REML", ci_method="z",
        level=0.95, weights=np.array([8.0, 15.5, 11.0, 20.0, 6.5, 14.0, 9.0, 16.0]),
        measure="OR")
    values.update(overrides)
    return PoolResult(**values)  # type: ignore[arg-type]


def _baseline_data() -> pd.DataFrame:
    return pd.DataFrame({
        "label": ["Adams 2001", "Baker 2003", "Chen 2005", "Dubois 2008", "Evans 2010",
                  "Fischer 2012", "Garcia 2015", "Hansen 2019"],
        "events_t": [12.0, 30, 18, 45, 4, 28, 15, 40],
        "n_t": [40.0, 100, 62, 150, 25, 90, 55, 130],
        "events_c": [8.0, 22, 15, 30, 5, 18, 9, 31],
        "n_c": [41.0, 98, 60, 148, 24, 92, 56, 129],
        "yi": [0.55, 0.40, 0.22, 0.45, -0.25, 0.60, 0.70, 0.35],
        "vi": [0.26, 0.10, 0.15, 0.06, 0.55, 0.09, 0.20, 0.07],
        "measure": "OR",
    })


# ----------------------------------------------------------------------------- helpers


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.figure.findobj(Text) if t.get_text()]


def _by_gid(ax, gid: str) -> list:
    return [artist for artist in ax.figure.findobj() if getattr(artist, "get_gid", None)
            and artist.get_gid() == gid]


def _hidden_tick_labels(fig) -> set[int]:
    """Tick labels matplotlib keeps but does not draw (ticks outside the view interval)."""
    hidden = set()
    for axes in fig.axes:
        for axis in (axes.xaxis, axes.yaxis):
            low, high = sorted(axis.get_view_interval())
            span = high - low
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                loc = tick.get_loc()
                if loc is None or not (low - 1e-9 * span <= loc <= high + 1e-9 * span):
                    hidden.update({id(tick.label1), id(tick.label2)})
    return hidden


def _check_readable(ax) -> None:
    """Every drawn text >= 6 pt, inside the figure, and no two drawn texts overlap."""
    fig = ax.figure
    fig.draw_without_rendering()
    hidden = _hidden_tick_labels(fig)
    texts = [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()
             and id(t) not in hidden]
    assert texts
    sizes = [t.get_fontsize() for t in texts]
    assert min(sizes) >= style.MIN_FONT_SIZE, min(sizes)
    boxes = np.array([t.get_window_extent().extents for t in texts])
    x0, y0, x1, y1 = (boxes[:, i][:, None] for i in range(4))
    # boxes i and j overlap by more than half a pixel in both directions
    apart_x = (x0 >= x1.T - 0.5) | (x1 - 0.5 <= x0.T)
    apart_y = (y0 >= y1.T - 0.5) | (y1 - 0.5 <= y0.T)
    overlap = ~apart_x & ~apart_y
    np.fill_diagonal(overlap, False)
    pairs = [(texts[i].get_text(), texts[j].get_text()) for i, j in np.argwhere(overlap)
             if i < j]
    assert not pairs, pairs[:5]
    fig_box = fig.bbox.extents
    inside = ((boxes[:, 0] >= fig_box[0] - 1) & (boxes[:, 2] <= fig_box[2] + 1)
              & (boxes[:, 1] >= fig_box[1] - 1) & (boxes[:, 3] <= fig_box[3] + 1))
    clipped = [texts[i].get_text() for i in np.flatnonzero(~inside)]
    assert not clipped, clipped


# ----------------------------------------------------------------------------- forest


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("k", SIZES)
def test_forest_renders_with_expected_structure(k: int, measure: str) -> None:
    frame = _frame(k, measure)
    result = _pool(frame)
    ax = plots.forest_plot(frame, result)
    assert isinstance(ax.figure, Figure)
    texts = _texts(ax)
    assert sum(label in texts for label in frame["label"]) == k
    assert "Total (95% CI)" in texts
    assert any(t.startswith("Heterogeneity:") for t in texts)
    assert any(t.startswith("Test for overall effect: Z = ") for t in texts)
    assert "Favours treatment" in texts and "Favours control" in texts
    assert "Weight" in texts and "100.0%" in texts
    assert ax.get_xscale() == ("log" if measure == "OR" else "linear")
    (squares,) = _by_gid(ax, "study-squares")
    assert len(squares.get_offsets()) == k
    assert len(_by_gid(ax, "diamond-overall")) == 1
    if measure == "OR":
        assert "Events" in texts and "Odds ratio" in texts
    else:
        assert "Mean" in texts and "SD" in texts and "Mean difference" in texts
    _check_readable(ax)


def test_forest_heterogeneity_and_effect_text_come_from_the_result() -> None:
    result = _fixed_pool()
    assert plots.heterogeneity_text(result) == (
        "Heterogeneity: Tau² = 0.031; Chi² = 8.90 (df = 7, P = 0.26); I² = 21%")
    assert plots.overall_effect_text(result) == "Test for overall effect: Z = 3.37 (P < 0.001)"
    hksj = _fixed_pool(ci_method="hksj", df=7.0, zval=2.5, pvalue=0.041)
    assert plots.overall_effect_text(hksj) == ("Test for overall effect: t = 2.50, df = 7 "
                                               "(P = 0.04)")
    assert plots.heterogeneity_text(_fixed_pool(q_df=0, k=1)) == (
        "Heterogeneity: not applicable")


def test_forest_back_transforms_ratio_measures() -> None:
    frame = _baseline_data()
    ax = plots.forest_plot(frame, _fixed_pool())
    texts = _texts(ax)
    pooled = f"{np.exp(0.405):.2f} [{np.exp(0.17):.2f}, {np.exp(0.64):.2f}]"
    assert pooled in texts
    assert f"[{np.exp(-0.05):.2f}, {np.exp(0.86):.2f}]" in texts  # prediction interval
    assert len(_by_gid(ax, "prediction-interval")) == 1


def test_forest_prediction_interval_can_be_hidden() -> None:
    ax = plots.forest_plot(_baseline_data(), _fixed_pool(), show_prediction=False)
    assert not _by_gid(ax, "prediction-interval")
    assert "Prediction interval" not in _texts(ax)


def test_forest_arrows_when_interval_leaves_axis() -> None:
    ax = plots.forest_plot(_baseline_data(), _fixed_pool(), xlim=(0.5, 2.0))
    arrows = _by_gid(ax, "ci-arrows")
    assert arrows
    assert ax.get_xlim() == pytest.approx((0.5, 2.0))


def test_forest_subgroups_and_risk_of_bias() -> None:
    frame = _frame(9, "OR", seed=3)
    frame["subgroup"] = ["Low dose"] * 4 + ["High dose"] * 5
    groups = {name: _pool(frame[frame["subgroup"] == name])
              for name in ("Low dose", "High dose")}
    test = SubgroupResult(subgroups=pd.DataFrame(), qb=0.05, qb_df=(1,), qb_pvalue=0.82,
                          method="REML", ci_method="z", tau2_model="separate", level=0.95,
                          results=groups)
    rob = {"Randomisation": ["low"] * 5 + ["some concerns"] * 2 + ["high"] * 2,
           "Missing outcome data": ["low"] * 8 + [None]}
    ax = plots.forest_plot(frame, _pool(frame), subgroups=test, rob=rob,
                           favours=("Favours A", "Favours B"))
    texts = _texts(ax)
    assert "Low dose" in texts and "High dose" in texts
    assert texts.count("Subtotal (95% CI)") == 2
    assert len(_by_gid(ax, "diamond-subtotal")) == 2
    assert len(_by_gid(ax, "diamond-overall")) == 1
    assert any(t.startswith("Test for subgroup differences: Chi² = 0.05") for t in texts)
    assert "Risk of bias" in texts and "A" in texts and "B" in texts
    assert any("(A) Randomisation" in t for t in texts)
    (circles,) = _by_gid(ax, "rob-circles")
    assert len(circles.get_offsets()) == 18
    assert "Favours A" in texts and "Favours treatment" not in texts
    _check_readable(ax)


def test_forest_accepts_plain_mapping_of_subgroups() -> None:
    frame = _frame(6, "MD")
    frame["subgroup"] = ["a", "b"] * 3
    groups = {g: _pool(frame[frame["subgroup"] == g]) for g in ("a", "b")}
    ax = plots.forest_plot(frame, _pool(frame), subgroups=groups)
    assert len(_by_gid(ax, "diamond-subtotal")) == 2
    assert not any(t.startswith("Test for subgroup differences") for t in _texts(ax))


def test_forest_not_estimable_study_has_no_square() -> None:
    frame = _baseline_data()
    frame.loc[2, ["yi", "vi"]] = np.nan
    weights = np.array([8.0, 15.5, np.nan, 20.0, 6.5, 14.0, 9.0, 16.0])
    ax = plots.forest_plot(frame, _fixed_pool(weights=weights, k=7))
    (squares,) = _by_gid(ax, "study-squares")
    assert len(squares.get_offsets()) == 7
    assert "Not estimable" in _texts(ax)


def test_forest_draws_on_given_axes() -> None:
    fig = Figure(figsize=(7, 3))
    ax = fig.add_axes((0.55, 0.2, 0.3, 0.7))
    assert plots.forest_plot(_baseline_data(), _fixed_pool(), ax=ax) is ax


def test_forest_rejects_misaligned_weights() -> None:
    with pytest.raises(ValueError, match="weights"):
        plots.forest_plot(_baseline_data().iloc[:5], _fixed_pool())


def test_forest_rejects_missing_columns() -> None:
    with pytest.raises(ValueError, match="'data' lacks column"):
        plots.forest_plot(_baseline_data().drop(columns="vi"), _fixed_pool())


def test_forest_rejects_unknown_subgroup() -> None:
    frame = _baseline_data().assign(subgroup=["x"] * 4 + ["y"] * 4)
    with pytest.raises(ValueError, match="no result for group"):
        plots.forest_plot(frame, _fixed_pool(), subgroups={"x": _fixed_pool()})


def test_forest_figure_size_grows_linearly_with_rows() -> None:
    sizes = [plots.forest_figure_size(n) for n in (1, 10, 100)]
    for width, _ in sizes:
        assert width == pytest.approx(style.DOUBLE_COLUMN_CM / 2.54)
    heights = [h for _, h in sizes]
    assert heights[1] - heights[0] == pytest.approx(9 * style.ROW_HEIGHT_IN)
    assert heights[2] - heights[1] == pytest.approx(90 * style.ROW_HEIGHT_IN)
    single = plots.forest_figure_size(5, width_cm=style.SINGLE_COLUMN_CM)
    assert single[0] == pytest.approx(8.5 / 2.54)
    with pytest.raises(ValueError, match="n_rows"):
        plots.forest_figure_size(0)


def test_forest_fits_double_column_width() -> None:
    ax = plots.forest_plot(_baseline_data(), _fixed_pool())
    assert ax.figure.get_figwidth() == pytest.approx(style.DOUBLE_COLUMN_CM / 2.54)


def test_forest_image_matches_baseline(tmp_path: Path) -> None:
    """Image regression of the main forest plot (fixed numbers, no pooling code involved)."""
    ax = plots.forest_plot(_baseline_data(), _fixed_pool())
    baseline = BASELINE_DIR / "forest_plot.png"
    actual = tmp_path / "forest_plot.png"
    ax.figure.savefig(actual, **{**style.savefig_kwargs("png"), "dpi": 100})
    if REGENERATE:
        BASELINE_DIR.mkdir(exist_ok=True)
        baseline.write_bytes(actual.read_bytes())
    assert baseline.exists(), "run with PLOTS_REGENERATE_BASELINE=1 to create the baseline"
    assert compare_images(str(baseline), str(actual), tol=IMAGE_TOL) is None


# ----------------------------------------------------------------------------- funnel


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("k", SIZES)
def test_funnel_renders(k: int, measure: str) -> None:
    frame = _frame(k, measure)
    result = _pool(frame)
    ax = plots.funnel_plot(frame, result)
    assert ax.get_xscale() == ("log" if measure == "OR" else "linear")
    (points,) = _by_gid(ax, "funnel-studies")
    assert len(points.get_offsets()) == k
    assert len(_by_gid(ax, "pooled-line")) == 1
    assert len(_by_gid(ax, "contour-background")) == 1
    assert len([a for a in ax.patches if str(a.get_gid()).startswith("contour-")]) == 4
    lo, hi = ax.get_ylim()
    assert lo > hi == 0  # standard error axis inverted, 0 at the top
    texts = _texts(ax)
    assert "p < 0.01" in texts and "p > 0.10" in texts and "0.01 < p < 0.05" in texts
    _check_readable(ax)


def test_funnel_trim_and_fill_points_and_line() -> None:
    frame = _frame(12, "OR")
    result = _pool(frame)
    filled = pd.DataFrame({"yi": [-0.3, -0.6], "vi": [0.05, 0.12]})
    trimfill = TrimFillResult(k0=2, se_k0=1.2, side="left", estimator="L0",
                              result=_fixed_pool(estimate=0.2, weights=np.ones(14), k=14),
                              filled=filled)
    ax = plots.funnel_plot(frame, result, trimfill=trimfill)
    (points,) = _by_gid(ax, "funnel-filled")
    assert len(points.get_offsets()) == 2
    (line,) = _by_gid(ax, "trimfill-line")
    assert line.get_xdata()[0] == pytest.approx(np.exp(0.2))
    assert "Filled studies" in _texts(ax)
    _check_readable(ax)


def test_funnel_contours_checked() -> None:
    with pytest.raises(ValueError, match="contours"):
        plots.funnel_plot(_frame(5, "OR"), contours=(0.1, 0.05, 0.01, 0.001))


# ----------------------------------------------------------------------------- dose


@pytest.mark.parametrize("measure", ("RR", "MD"))
@pytest.mark.parametrize("k", SIZES)
def test_dose_response_renders(k: int, measure: str) -> None:
    doses = np.linspace(0, 300, 31)
    prediction = pd.DataFrame({"dose": doses, "estimate": 0.003 * doses,
                               "ci_low": 0.002 * doses, "ci_high": 0.004 * doses})
    rng = np.random.default_rng(k)
    points = pd.DataFrame({"dose": rng.uniform(10, 300, k), "yi": rng.normal(0.4, 0.2, k),
                           "vi": rng.uniform(0.01, 0.2, k)})
    ax = plots.dose_response_plot(prediction, points, measure=measure, xlabel="Dose (mg/day)")
    assert ax.get_yscale() == ("log" if measure == "RR" else "linear")
    (curve,) = _by_gid(ax, "dose-curve")
    expected = np.exp(prediction["estimate"]) if measure == "RR" else prediction["estimate"]
    np.testing.assert_allclose(curve.get_ydata(), expected)
    (arms,) = _by_gid(ax, "dose-points")
    assert len(arms.get_offsets()) == k
    sizes = arms.get_sizes()
    assert sizes[np.argmin(points["vi"])] == sizes.max()  # largest weight, largest circle
    assert len(_by_gid(ax, "dose-band")) == 1
    _check_readable(ax)


# ----------------------------------------------------------------------------- sensitivity


@pytest.mark.parametrize("function", ("cumulative_plot", "leave_one_out_plot"))
@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("k", SIZES)
def test_sensitivity_forests_render(function: str, measure: str, k: int) -> None:
    frame = _frame(k, measure)
    tidy = _sensitivity_frame(frame)
    ax = getattr(plots, function)(tidy, _pool(frame), favours=("Favours A", "Favours B"))
    (points,) = _by_gid(ax, "sensitivity-points")
    assert len(points.get_offsets()) == k
    assert ax.get_xscale() == ("log" if measure == "OR" else "linear")
    header = "Study added" if function == "cumulative_plot" else "Study omitted"
    texts = _texts(ax)
    assert header in texts
    assert sum(label in texts for label in frame["label"]) == k
    assert len(_by_gid(ax, "reference-line")) == 1
    _check_readable(ax)


def test_sensitivity_forest_needs_a_label_column() -> None:
    tidy = _sensitivity_frame(_frame(3, "OR")).drop(columns="label")
    with pytest.raises(ValueError, match="label_column"):
        plots.cumulative_plot(tidy)


# ----------------------------------------------------------------------------- diagnostics


@pytest.mark.parametrize("k", SIZES)
def test_labbe_renders(k: int) -> None:
    frame = _frame(k, "OR")
    ax = plots.labbe_plot(frame, _pool(frame))
    (points,) = _by_gid(ax, "labbe-points")
    offsets = points.get_offsets()
    assert len(offsets) == k
    np.testing.assert_allclose(offsets[:, 0], frame["events_c"] / frame["n_c"])
    assert len(_by_gid(ax, "labbe-pooled")) == 1
    assert ax.get_xlim() == (0, 1)
    _check_readable(ax)


@pytest.mark.parametrize("k", SIZES)
def test_baujat_renders(k: int) -> None:
    rng = np.random.default_rng(k)
    labels = [f"Trial {i}" for i in range(k)]
    ax = plots.baujat_plot(rng.gamma(1, 1, k), rng.gamma(1, 0.3, k), labels)
    (points,) = _by_gid(ax, "baujat-points")
    assert len(points.get_offsets()) == k
    assert 1 <= len(_by_gid(ax, "baujat-label")) <= min(k, 10)
    _check_readable(ax)


def test_baujat_checks_lengths() -> None:
    with pytest.raises(ValueError, match="same length"):
        plots.baujat_plot([1, 2], [1, 2, 3], ["a", "b"])


def _regression(slope: float) -> MetaRegressionResult:
    index = ["intrcpt", "dose"]
    series = lambda values: pd.Series(values, index=index)  # noqa: E731
    return MetaRegressionResult(
        coef=series([0.1, slope]), se=series([0.1, 0.001]), zval=series([1.0, 2.0]),
        pvalue=series([0.3, 0.04]), ci_low=series([-0.1, 0.0]), ci_high=series([0.3, 0.004]),
        vcov=pd.DataFrame(np.eye(2), index=index, columns=index), tau2=0.02, se_tau2=0.01,
        qm=4.0, qm_df=(1,), qm_pvalue=0.04, qe=10.0, qe_df=13, qe_pvalue=0.6, r2=30.0,
        i2=10.0, h2=1.1, k=15, method="REML", ci_method="z", level=0.95)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("k", SIZES)
def test_bubble_renders(k: int, measure: str) -> None:
    frame = _frame(k, measure)
    frame["dose"] = np.linspace(30, 300, k)
    ax = plots.bubble_plot(frame, _regression(0.002), "dose", xlabel="Dose (mg/day)")
    (bubbles,) = _by_gid(ax, "bubble-points")
    assert len(bubbles.get_offsets()) == k
    (line,) = _by_gid(ax, "bubble-line")
    y = 0.1 + 0.002 * line.get_xdata()
    np.testing.assert_allclose(line.get_ydata(), np.exp(y) if measure == "OR" else y)
    assert ax.get_yscale() == ("log" if measure == "OR" else "linear")
    _check_readable(ax)


# ----------------------------------------------------------------------------- output


def _save(ax, fmt: str) -> bytes:
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, **style.savefig_kwargs(fmt))
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ("svg", "pdf", "png"))
def test_saving_is_byte_for_byte_repeatable(fmt: str) -> None:
    first = _save(plots.forest_plot(_baseline_data(), _fixed_pool()), fmt)
    second = _save(plots.forest_plot(_baseline_data(), _fixed_pool()), fmt)
    assert first == second
    if fmt == "svg":
        assert b"<dc:date>" not in first
    if fmt == "pdf":
        assert b"/CreationDate" not in first


def test_savefig_kwargs_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="fmt"):
        style.savefig_kwargs("jpg")


def test_plots_do_not_touch_global_rcparams() -> None:
    import matplotlib as mpl

    before = dict(mpl.rcParams)
    plots.forest_plot(_baseline_data(), _fixed_pool())
    assert dict(mpl.rcParams) == before


def test_only_plots_import_matplotlib_and_never_pyplot() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import analysis\n"
        "for m in pkgutil.iter_modules(analysis.__path__):\n"
        "    if m.name in ('plots', '__main__'):\n"
        "        continue\n"
        "    try:\n"
        "        importlib.import_module('analysis.' + m.name)\n"
        "    except ImportError:\n"
        "        pass\n"
        "assert 'matplotlib' not in sys.modules, 'a non-plot module imported matplotlib'\n"
        "import analysis.plots\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'analysis.plots imported pyplot'\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               cwd=Path(__file__).parents[1], check=False)
    assert completed.returncode == 0, completed.stderr


@pytest.mark.parametrize("function", ("forest", "cumulative_plot"))
def test_long_favours_labels_stay_inside_the_figure(function: str) -> None:
    frame = _frame(5, "MD")
    favours = ("Favours control", "Favours the experimental intervention")
    if function == "forest":
        ax = plots.forest_plot(frame, _pool(frame), favours=favours)
    else:
        ax = plots.cumulative_plot(_sensitivity_frame(frame), favours=favours)
    assert favours[1] in _texts(ax)
    _check_readable(ax)
