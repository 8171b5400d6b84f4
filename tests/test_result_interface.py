"""One result interface (issue 10, item 1): refits from a result, summaries, frames, plots.

Reference numbers are metafor 3.8-1's as printed (4 decimals) or stored in
tests/reference/metafor_reference.json: ``leave1out(rma(yi, vi, data=dat.bcg-RR))``,
``regtest(res)`` (``model="lm"`` and ``"rma"``), ``trimfill(rma(..., method="FE"))``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from test_pooling import BCG, bcg_rr

import analysis as ma
from analysis import plots
from analysis.bias import egger_test, trim_and_fill
from analysis.results import (
    CumulativeResult,
    LeaveOneOutResult,
    PoolResult,
)
from analysis.sensitivity import baujat, cumulative, influence, leave_one_out

CASES = {c["id"]: c for c in json.loads(
    (Path(__file__).parent / "reference" / "metafor_reference.json").read_text())["cases"]}
LABELS = [f"Trial {chr(65 + i)}" for i in range(13)]
YEAR = [1948, 1949, 1960, 1977, 1973, 1953, 1973, 1980, 1968, 1961, 1974, 1969, 1976]
#: metafor prints 4 decimals.
PRINTED = 5e-5


def _bcg(**kwargs: Any) -> PoolResult:
    res = ma.pool(bcg_rr(), study=LABELS, **kwargs)
    assert isinstance(res, PoolResult)
    return res


def _texts(ax: plt.Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


# ------------------------------------------------------------------ refits from a result


@pytest.mark.parametrize("ci", ("z", "hksj"))
def test_leave_one_out_of_a_result_refits_its_data_and_settings(ci: str) -> None:
    res = _bcg(method="DL", ci=ci, level=0.9)
    loo = leave_one_out(res)
    assert isinstance(loo, LeaveOneOutResult)
    assert (loo.method, loo.ci_method, loo.level, loo.measure) == ("DL", ci, 0.9, "RR")
    assert loo.full is res and list(loo.study) == LABELS
    plain = leave_one_out(bcg_rr(), method="DL", ci=ci, level=0.9, study=LABELS)
    pd.testing.assert_frame_equal(loo.to_frame(), plain.to_frame())


def test_leave_one_out_of_a_result_matches_metafor() -> None:
    # Reference: fixture bcg/RR/leave1out/REML/knha (metafor leave1out(res), test="knha").
    case = CASES["bcg/RR/leave1out/REML/hksj"]
    loo = leave_one_out(ma.pool(case["input"]["yi"], case["input"]["vi"], ci="hksj"))
    np.testing.assert_allclose(loo.estimate, case["expected"]["estimate"], rtol=1e-5)
    np.testing.assert_allclose(loo.to_frame()["tval"], case["expected"]["zval"], rtol=1e-5)


def test_leave_one_out_summary_prints_metafor_numbers() -> None:
    # Reference: metafor tests/testthat/test_misc_influence.r: study 1 omitted, REML:
    # estimate -0.7071, se 0.1900, Q 151.5826, tau2 0.3362, I2 93.23.
    text = str(leave_one_out(_bcg()))
    assert "dataclass" not in text
    line = next(row for row in text.splitlines() if row.startswith("Trial A"))
    for piece in ("-0.7071", "0.1900", "151.5826", "0.3362", "93.23", "0.4931 [0.3398, 0.7155]"):
        assert piece in line, (piece, line)
    assert "RR [95% CI]" in text and "log scale" in text
    assert "All 13 studies: RR 0.4894 (95% CI 0.3441 to 0.6962)" in text


def test_cumulative_of_a_result_keeps_labels_in_order() -> None:
    res = _bcg()
    out = cumulative(res, order=YEAR)
    assert isinstance(out, CumulativeResult)
    idx = np.argsort(YEAR, kind="stable")
    assert list(out.study) == [LABELS[i] for i in idx]
    assert out.order.tolist() == idx.tolist()  # type: ignore[union-attr]
    # Reference: metafor test_misc_cumul.r, REML by year, last step = full model.
    assert out.estimate[-1] == pytest.approx(-0.714532, abs=1e-5)
    assert out.full is res
    assert "Cumulative meta-analysis" in out.summary() and "added" in out.summary()


def test_influence_and_baujat_of_a_result() -> None:
    res = _bcg()
    a = influence(res).to_frame()
    b = influence(bcg_rr(), study=LABELS).to_frame()
    pd.testing.assert_frame_equal(a, b)
    assert a["study"].tolist() == LABELS
    frame = baujat(res)
    assert frame["study"].tolist() == LABELS
    np.testing.assert_allclose(frame[["x", "y"]], baujat(bcg_rr())[["x", "y"]], rtol=1e-12)
    assert "Influence diagnostics" in influence(res).summary()


def test_egger_of_a_result_prints_regtest() -> None:
    # Reference: fixture bcg/RR/egger/lm and bcg/RR/egger/rma/REML (metafor regtest(res)).
    res = _bcg()
    lm = egger_test(res)
    assert lm.k == 13 and lm.measure == "RR" and lm.study == tuple(LABELS)
    text = str(lm)
    assert "t = -1.4013, df = 11, p = 0.1887" in text
    assert "b = -0.1909 (95% CI -0.6753 to 0.2935)" in text
    assert "tval" in lm.to_frame().columns and "zval" not in lm.to_frame().columns
    rma = egger_test(res, model="rma")  # method REML from the result
    expected = CASES["bcg/RR/egger/rma/REML"]["expected"]
    assert rma.zval == pytest.approx(expected["zval"], rel=1e-6)
    assert "z = -0.8033, p = 0.4218" in str(rma)
    assert "zval" in rma.to_frame().columns


def test_trim_and_fill_of_a_result() -> None:
    # Reference: metafor docs trimfill.html: FE, 4 missing on the right, -0.2910.
    res = _bcg(method="FE")
    tf = trim_and_fill(res)
    plain = trim_and_fill(bcg_rr(), method="FE")
    assert (tf.k0, tf.side, tf.estimate) == (plain.k0, plain.side, plain.estimate)
    assert tf.measure == "RR" and tf.level == 0.95 and tf.original is not None
    assert tf.result.study[-4:] == tuple(f"Filled {i}" for i in range(1, 5))
    text = str(tf)
    assert "missing studies on the right side: 4 (SE = 2.3853)" in text
    assert "-0.2910" in text


def test_refits_refuse_results_they_cannot_refit() -> None:
    mh = ma.mantel_haenszel(BCG["tpos"], np.add(BCG["tpos"], BCG["tneg"]), BCG["cpos"],
                            np.add(BCG["cpos"], BCG["cneg"]), measure="RR")
    with pytest.raises(ValueError, match="MantelHaenszelResult"):
        leave_one_out(mh)
    with pytest.raises(ValueError, match="'vi'"):
        leave_one_out(_bcg(), [0.1] * 13)


def test_dose_response_summary() -> None:
    # Reference: peer_survey.md R-30 (dosresmeta, covariance ignored): slope 0.03343 (SE
    # 0.01869); the same data as tests/test_dose_response.py::_cc_ex.
    from test_dose_response import _cc_ex

    dose, _, _, y, v = _cc_ex()
    res = ma.dose_response(y, v, dose, np.ones(4), method="FE")
    text = str(res)
    assert "dataclass" not in text and "linear model" in text
    assert "0.0334" in text and "0.0187" in text and "Residual heterogeneity" in text


# ------------------------------------------------------------------ frames


def test_statistic_column_is_named_for_its_test() -> None:
    z, t = _bcg(), _bcg(ci="hksj")
    assert "zval" in z.to_frame() and "tval" not in z.to_frame()
    frame = t.to_frame()
    assert "tval" in frame and "zval" not in frame and frame["df"].iloc[0] == 12
    loo = leave_one_out(t).to_frame()
    assert list(loo.columns[4:6]) == ["tval", "df"]
    assert list(leave_one_out(z).to_frame().columns) == [
        "study", "k", "estimate", "se", "zval", "pvalue", "ci_low", "ci_high", "q",
        "q_pvalue", "tau2", "i2", "h2"]
    batch = ma.pool(np.array([bcg_rr()["yi"]] * 2), np.array([bcg_rr()["vi"]] * 2), ci="hksj")
    assert "tval" in batch.to_frame()
    case = CASES["bcg/RR/metareg/ablat/REML/z"]
    reg = ma.meta_regression(case["input"]["yi"], case["input"]["vi"],
                             pd.DataFrame(case["input"]["moderators"]), ci="hksj")
    assert {"tval", "df"} <= set(reg.to_frame()) and "zval" not in reg.to_frame()


def test_exponentiate_labels_the_log_scale_se() -> None:
    res = _bcg()
    frame = res.to_frame(exponentiate=True)
    assert frame["estimate"].iloc[0] == pytest.approx(np.exp(res.estimate))
    assert frame["se_log"].iloc[0] == res.se and "se" not in frame
    loo = leave_one_out(res).to_frame(exponentiate=True)
    assert "se_log" in loo and loo["estimate"].iloc[0] == pytest.approx(0.4931, abs=PRINTED)
    for measure in ("MD", "SMD", "RD"):
        with pytest.raises(ValueError, match=measure):
            ma.pool([0.1, 0.3, 0.2], [0.01, 0.02, 0.03], measure=measure).to_frame(
                exponentiate=True)


# ------------------------------------------------------------------ plots in one call


def test_forest_of_a_result_shows_labels_weights_and_a_log_ratio_axis() -> None:
    res = _bcg()
    ax = plots.forest(res)
    try:
        texts = _texts(ax)
        assert all(label in texts for label in LABELS)
        assert "Risk ratio" in texts and ax.get_xscale() == "log"
        assert f"{res.weights[0]:.1f}%" in texts
        assert "Prediction interval" in texts
    finally:
        plt.close(ax.figure)


def test_forest_of_a_mantel_haenszel_result() -> None:
    mh = ma.mantel_haenszel(BCG["tpos"], np.add(BCG["tpos"], BCG["tneg"]), BCG["cpos"],
                            np.add(BCG["cpos"], BCG["cneg"]), measure="OR", study=LABELS)
    ax = plots.forest(mh)
    try:
        texts = _texts(ax)
        assert all(label in texts for label in LABELS)
        assert any("Mantel-Haenszel" in t for t in texts) and "Odds ratio" in texts
        assert "Prediction interval" not in texts  # a fixed-effect model's equals its CI
        assert ax.get_xscale() == "log"
    finally:
        plt.close(ax.figure)


def test_funnel_of_a_result_and_of_trim_and_fill() -> None:
    ax = plots.funnel(_bcg())
    try:
        assert "Risk ratio" in ax.get_xlabel() and ax.get_xscale() == "log"
    finally:
        plt.close(ax.figure)
    ax = plots.funnel(trim_and_fill(_bcg(method="FE")))
    try:
        gids = {child.get_gid() for child in ax.get_children()}
        assert {"funnel-studies", "funnel-filled", "pooled-line", "trimfill-line"} <= gids
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize("function", ("leave_one_out", "cumulative"))
def test_sensitivity_plots_of_their_results(function: str) -> None:
    res = _bcg()
    out = leave_one_out(res) if function == "leave_one_out" else cumulative(res, order=YEAR)
    ax = getattr(plots, function)(out)
    try:
        texts = _texts(ax)
        assert [t for t in texts if t.startswith("Trial ")] == list(out.study)
        assert "RR [95% CI]" in texts and ax.get_xscale() == "log"
        gids = {child.get_gid() for child in ax.get_children()}
        assert "reference-line" in gids  # the full-data model, from the result
    finally:
        plt.close(ax.figure)
    with pytest.raises(ValueError, match="never refit"):
        getattr(plots, function)(res)


def test_baujat_plot_is_labelled_with_the_study_labels() -> None:
    ax = plots.baujat(baujat(_bcg()))
    try:
        shown = {t.get_text() for t in ax.texts}
        assert shown and shown <= set(LABELS)
    finally:
        plt.close(ax.figure)


def test_bubble_of_a_model_that_keeps_its_data() -> None:
    case = CASES["bcg/RR/metareg/ablat/REML/z"]
    yi, vi = np.asarray(case["input"]["yi"]), np.asarray(case["input"]["vi"])
    mods = pd.DataFrame(case["input"]["moderators"])
    full = ma.meta_regression(yi, vi, mods, measure="RR")
    assert full.measure == "RR" and full.X is not None
    ax = plots.bubble(full, "ablat")
    try:
        (points,) = [c for c in ax.collections if c.get_gid() == "bubble-points"]
        assert len(points.get_offsets()) == yi.size
        assert ax.get_yscale() == "log" and "Risk ratio" in ax.get_ylabel()
    finally:
        plt.close(ax.figure)
    with pytest.raises(ValueError, match="without its data"):
        plots.bubble(dataclasses.replace(full, yi=None), "ablat")
