"""The measures beyond OR/RR/RD/MD/SMD: escalc agreement, zero cells, back-transformations.

Reference: tests/reference/measures_reference.json, written by
tests/reference/make_measures_reference.R (R 4.2.2, metafor 3.8-1 ``escalc``, ``rma``,
``predict(transf=)``, ``transf.ipft``, ``transf.ipft.hm`` on metafor's bundled data sets and
hand-made zero-cell vectors).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import analysis as ma
from analysis.measures import harmonic_mean, ipft, pft, to_display
from tests.tolerances import CLOSED_FORM, CLOSED_FORM_FIXTURE, ITERATIVE, ZERO

FIXTURE = json.loads(
    (Path(__file__).parent / "reference" / "measures_reference.json").read_text())
CASES = FIXTURE["cases"]
ESCALC = [c for c in CASES if c["kind"] == "escalc"]
TRANSFORMS = FIXTURE["transforms"]
IPFT = FIXTURE["ipft"]

#: escalc's argument names -> effect_sizes' (binary and continuous keep this package's names).
ARGUMENTS = {"ai": "events_t", "n1i": "n_t", "ci": "events_c", "n2i": "n_c",
             "m1i": "mean_t", "sd1i": "sd_t", "m2i": "mean_c", "sd2i": "sd_c"}


def _values(value: Any) -> np.ndarray:
    if isinstance(value, list):
        return np.array([np.nan if v is None else float(v) for v in value], dtype=float)
    return np.array([np.nan if value is None else float(value)], dtype=float)


def _agree(ours: Any, expected: Any, rtol: float) -> float:
    """Largest relative error (inf when the NaN patterns differ; ZERO floor at 0)."""
    a = np.atleast_1d(np.asarray(ours, dtype=float)).copy()
    a[np.isinf(a)] = np.nan  # R's NA/Inf are null in the fixture
    b = _values(expected) if not isinstance(expected, np.ndarray) else expected
    assert a.shape == b.shape
    if np.any(np.isnan(a) != np.isnan(b)):
        return float("inf")
    ok = ~np.isnan(b)
    diff = np.abs(a[ok] - b[ok])
    err = np.where(diff <= ZERO * rtol / CLOSED_FORM_FIXTURE, 0.0,
                   diff / np.maximum(np.abs(b[ok]), 1e-300))
    return float(err.max(initial=0.0))


def _escalc(case: dict[str, Any]) -> pd.DataFrame:
    args = {ARGUMENTS.get(k, k): v for k, v in case["input"].items()}
    options = case["options"] if isinstance(case["options"], dict) else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return ma.effect_sizes(case["measure"], **args, **options)


@pytest.mark.parametrize("case", ESCALC, ids=[c["id"] for c in ESCALC])
def test_escalc_agrees_with_metafor(case: dict[str, Any]) -> None:
    # Reference: metafor 3.8-1 escalc() as in case["call"]; NA where metafor gives NA.
    es = _escalc(case)
    for field in ("yi", "vi"):
        err = _agree(es[field].to_numpy(), case["expected"][field], CLOSED_FORM_FIXTURE)
        assert err <= CLOSED_FORM_FIXTURE, f"{case['id']} {field}: relative error {err:.3g}"


def test_fixture_covers_every_new_measure_and_option() -> None:
    measures = {c["measure"] for c in CASES}
    assert measures >= {"PR", "PLN", "PLO", "PAS", "PFT", "COR", "ZCOR", "IRR", "IRD", "IRSD",
                        "AS", "ROM", "HR"}
    rom = {c["options"]["vtype"] for c in ESCALC if c["measure"] == "ROM"}
    assert rom == {"LS", "HO", "AV", "AVHO"}
    assert any(c["options"].get("drop00") for c in ESCALC if c["measure"] == "IRR")


def test_hazard_ratio_from_estimate_and_ci_agrees_with_r() -> None:
    # Reference: log(HR) and ((log(U) - log(L)) / (2 qnorm(0.975)))^2 computed in R.
    (case,) = [c for c in CASES if c["kind"] == "from_estimate"]
    inp = case["input"]
    out = ma.effect_from_estimate(inp["estimate"], inp["ci_low"], inp["ci_high"], measure="HR")
    for field in ("yi", "vi"):
        assert _agree(out[field].to_numpy(), case["expected"][field],
                      CLOSED_FORM_FIXTURE) <= CLOSED_FORM_FIXTURE
    assert (out["measure"] == "HR").all()


# -- back-transformations ---------------------------------------------------------------------

@pytest.mark.parametrize("case", TRANSFORMS, ids=[c["id"] for c in TRANSFORMS])
def test_back_transformation_agrees_with_metafor_predict(case: dict[str, Any]) -> None:
    # Reference: predict(rma(yi, vi), transf=<case["transf"]>, targs=list(ni=...)).
    fit, expected = case["fit"], case["expected"]
    ni = case["input"].get("ni")
    keys = ("pred", "ci.lb", "ci.ub", "pi.lb", "pi.ub")
    shown = to_display([fit[k] for k in keys], case["measure"], ni)
    assert _agree(shown, np.array([expected[k] for k in keys], dtype=float),
                  CLOSED_FORM_FIXTURE) <= CLOSED_FORM_FIXTURE
    # and through pool() and back_transform(): the pooled fit is iterative (REML)
    kwargs = {} if ni is None else {"ni": ni}
    res = ma.pool(case["input"]["yi"], case["input"]["vi"], measure=case["measure"], **kwargs)
    row = ma.back_transform(res.to_frame(), ni=res.ni).iloc[0]
    ours = [row[c] for c in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")]
    assert _agree(ours, np.array([expected[k] for k in keys], dtype=float),
                  ITERATIVE) <= ITERATIVE


@pytest.mark.parametrize("case", IPFT, ids=[c["id"] for c in IPFT])
def test_miller_inverse_agrees_with_transf_ipft(case: dict[str, Any]) -> None:
    # Reference: metafor transf.ipft(values, ni) and transf.ipft.hm(values, targs=list(ni=)).
    values = np.asarray(case["values"], dtype=float)
    if case["kind"] == "ipft_hm":
        ours = to_display(values, "PFT", case["ni"])
    else:
        ours = ipft(values, np.asarray(case["ni"], dtype=float))
    assert _agree(ours, case["expected"], CLOSED_FORM_FIXTURE) <= CLOSED_FORM_FIXTURE


def test_pft_inverse_round_trips_and_uses_the_harmonic_mean() -> None:
    p = np.array([0.0, 0.05, 0.3, 0.5, 0.9, 1.0])
    np.testing.assert_allclose(ipft(pft(p, 37.0), 37.0), p, rtol=CLOSED_FORM, atol=ZERO)
    ni = [10, 40, 40]
    assert harmonic_mean(ni) == pytest.approx(3 / (1 / 10 + 2 / 40), rel=CLOSED_FORM)
    # the harmonic mean, not the arithmetic mean (30), not the first n
    t = pft(0.2, harmonic_mean(ni))
    assert to_display([t], "PFT", ni)[0] == pytest.approx(0.2, rel=CLOSED_FORM)
    assert to_display([t], "PFT", 30.0)[0] != pytest.approx(0.2, rel=1e-4)


def test_back_transform_follows_the_frame_measure() -> None:
    frame = pd.DataFrame({"estimate": [0.4], "ci_low": [0.1], "ci_high": [0.7],
                          "measure": ["ZCOR"]})
    out = ma.back_transform(frame)
    np.testing.assert_allclose(out[["estimate", "ci_low", "ci_high"]].iloc[0],
                               np.tanh([0.4, 0.1, 0.7]), rtol=CLOSED_FORM)
    logit = ma.back_transform(frame.assign(measure="PLO"))
    assert logit["estimate"].iloc[0] == pytest.approx(1 / (1 + np.exp(-0.4)), rel=CLOSED_FORM)
    assert ma.back_transform(frame.assign(measure="MD"))["estimate"].iloc[0] == 0.4
    assert ma.back_transform(frame.drop(columns="measure"))["estimate"].iloc[0] == (
        pytest.approx(np.exp(0.4), rel=CLOSED_FORM))


def test_pft_back_transform_without_sample_sizes_is_refused() -> None:
    frame = pd.DataFrame({"estimate": [0.9], "measure": ["PFT"]})
    with pytest.raises(ValueError, match=r"argument 'ni' is missing.*PFT"):
        ma.back_transform(frame)


def test_pool_records_ni_from_the_effect_frame() -> None:
    es = ma.effect_sizes("PFT", xi=[2, 8, 15], ni=[20, 40, 60])
    assert es["ni"].tolist() == [20, 40, 60]
    res = ma.pool(es)
    assert res.ni is not None and res.ni.tolist() == [20.0, 40.0, 60.0]
    assert "ni" not in res.to_frame().columns
    with pytest.raises(ValueError, match=r"argument 'ni' has 2 values but there are 3"):
        ma.pool(es[["yi", "vi"]], ni=[1, 2])


# -- zero-cell rules --------------------------------------------------------------------------

def test_arcsine_and_freeman_tukey_add_nothing_by_default_as_metafor() -> None:
    pas = ma.effect_sizes("PAS", xi=[0, 5], ni=[10, 10])
    assert pas["yi"].iloc[0] == 0.0 and pas["vi"].iloc[0] == pytest.approx(1 / 40)
    pft_es = ma.effect_sizes("PFT", xi=[0], ni=[10])
    expected = 0.5 * (np.arcsin(0.0) + np.arcsin(np.sqrt(1 / 11)))
    assert pft_es["yi"].iloc[0] == pytest.approx(expected, rel=CLOSED_FORM)
    assert pft_es["vi"].iloc[0] == pytest.approx(1 / 42, rel=CLOSED_FORM)
    # an explicit add is honoured (n grows by 2 * add)
    assert ma.effect_sizes("PAS", xi=[0], ni=[10], add=0.5)["vi"].iloc[0] == (
        pytest.approx(1 / 44, rel=CLOSED_FORM))
    irsd = ma.effect_sizes("IRSD", x1i=[0], t1i=[100], x2i=[4], t2i=[100])
    assert irsd["yi"].iloc[0] == pytest.approx(-0.2, rel=CLOSED_FORM)


def test_logit_proportion_adds_half_only_to_zero_groups() -> None:
    es = ma.effect_sizes("PLO", xi=[0, 3, 10], ni=[10, 10, 10])
    np.testing.assert_allclose(es["yi"], [np.log(0.5 / 10.5), np.log(3 / 7), np.log(10.5 / 0.5)],
                               rtol=CLOSED_FORM)
    none = ma.effect_sizes("PLO", xi=[0, 3], ni=[10, 10], to="none")
    assert np.isnan(none["yi"].iloc[0]) and np.isnan(none["vi"].iloc[0])
    assert none["yi"].iloc[1] == pytest.approx(np.log(3 / 7), rel=CLOSED_FORM)


def test_incidence_rate_ratio_zero_rules() -> None:
    x1, t1, x2, t2 = [0, 0, 5], [100, 100, 100], [0, 3, 5], [100, 100, 100]
    es = ma.effect_sizes("IRR", x1i=x1, t1i=t1, x2i=x2, t2i=t2)
    assert es["yi"].iloc[0] == pytest.approx(0.0, abs=ZERO)  # 0.5/100 vs 0.5/100
    assert es["vi"].iloc[1] == pytest.approx(1 / 0.5 + 1 / 3.5, rel=CLOSED_FORM)
    assert es["vi"].iloc[2] == pytest.approx(2 / 5, rel=CLOSED_FORM)  # no zero: unchanged
    dropped = ma.effect_sizes("IRR", x1i=x1, t1i=t1, x2i=x2, t2i=t2, drop00=True)
    assert np.isnan(dropped["yi"].iloc[0]) and np.isfinite(dropped["yi"].iloc[1])
    every = ma.effect_sizes("IRR", x1i=x1, t1i=t1, x2i=x2, t2i=t2, to="if0all")
    assert every["vi"].iloc[2] == pytest.approx(2 / 5.5, rel=CLOSED_FORM)


def test_correlations_keep_yi_where_the_variance_is_not_estimable() -> None:
    with pytest.warns(UserWarning, match=r"ni <= 3 \(rows \[0\]\)"):
        es = ma.effect_sizes("ZCOR", ri=[0.5, 0.5], ni=[3, 13])
    assert es["yi"].iloc[0] == pytest.approx(np.arctanh(0.5), rel=CLOSED_FORM)
    assert np.isnan(es["vi"].iloc[0]) and es["vi"].iloc[1] == pytest.approx(0.1)
    assert es["ni"].tolist() == [3, 13]


# -- argument errors --------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"measure": "COR", "ri": [0.2], "ni": [10], "vtype": "UB"},
     r"argument 'vtype' = 'UB' is not allowed for measure 'COR'; use one of 'LS', 'AV'"),
    ({"measure": "ROM", "mean_t": [1], "sd_t": [1], "n_t": [5], "mean_c": [1], "sd_c": [1],
      "n_c": [5], "vtype": "UB"},
     r"argument 'vtype' = 'UB' is not allowed for measure 'ROM'; use one of 'LS', 'HO', "
     r"'AV', 'AVHO'"),
    ({"measure": "PLO", "xi": [1], "ni": [5], "vtype": "UB"},
     r"'vtype' = 'UB' is not allowed for measure 'PLO'; use one of 'LS', 'AV'"),
    ({"measure": "PFX", "xi": [1], "ni": [5]}, r"measure.*'PFX'.*PFT"),
    ({"measure": "PFT", "xi": [1], "ni": [5], "add": -1}, r"argument 'add' = -1"),
    ({"measure": "PFT", "xi": [1], "ni": [5], "to": "some"}, r"to.*'some'.*only0"),
    ({"measure": "PFT", "xi": [6], "ni": [5]}, r"argument 'xi' has value\(s\) \[6.0\] larger"),
    ({"measure": "PLO", "xi": [1]}, r"missing argument\(s\) 'ni'"),
    ({"measure": "COR", "ri": [1.2], "ni": [10]}, r"argument 'ri' has value\(s\) \[1.2\]"),
    ({"measure": "IRR", "x1i": [1], "t1i": [0], "x2i": [1], "t2i": [5]},
     r"argument 't1i' has value\(s\) \[0.0\] <= 0; person-times"),
    ({"measure": "IRD", "x1i": [-1], "t1i": [1], "x2i": [1], "t2i": [5]},
     r"argument 'x1i' has negative value\(s\) \[-1.0\]"),
])
def test_argument_errors_name_argument_value_and_allowed(kwargs: dict[str, Any],
                                                         pattern: str) -> None:
    measure = kwargs.pop("measure")
    with pytest.raises(ValueError, match=pattern):
        ma.effect_sizes(measure, **kwargs)


def test_column_names_with_data() -> None:
    frame = pd.DataFrame({"r": [0.3, 0.1], "n": [30, 50], "study": ["a", "b"]})
    es = ma.effect_sizes("ZCOR", ri="r", ni="n", data=frame)
    assert list(es.columns) == ["r", "n", "study", "yi", "vi", "measure", "ni"]
    with pytest.raises(ValueError, match="argument 'ri' = 'rho' is not a column"):
        ma.effect_sizes("ZCOR", ri="rho", ni="n", data=frame)


# -- tables and plots -------------------------------------------------------------------------

def test_table_format_shows_the_measure_scale() -> None:
    from analysis.report.tables import format_effect
    assert format_effect(0.0, -0.5, 0.5, "PLO") == "0.50 (0.38 to 0.62)"
    assert format_effect(0.5, 0.25, 0.75, "ZCOR") == "0.46 (0.24 to 0.64)"
    assert format_effect(0.0, -0.1, 0.1, "ROM") == "1.00 (0.90 to 1.11)"
    assert format_effect(pft(0.3, 25.0), pft(0.2, 25.0), pft(0.4, 25.0), "PFT",
                         ni=[25, 25]) == "0.30 (0.20 to 0.40)"


@pytest.mark.parametrize(("measure", "data", "label", "scale"), [
    ("PLO", {"xi": [4, 10, 7], "ni": [20, 30, 25]}, "Proportion", "linear"),
    ("PFT", {"xi": [4, 10, 7], "ni": [20, 30, 25]}, "Proportion", "linear"),
    ("ZCOR", {"ri": [0.3, 0.5, 0.2], "ni": [40, 60, 35]}, "Correlation", "linear"),
    ("IRR", {"x1i": [4, 9, 6], "t1i": [100, 200, 150], "x2i": [8, 12, 9],
             "t2i": [100, 210, 140]}, "Incidence rate ratio", "log"),
    ("ROM", {"mean_t": [10, 12, 9], "sd_t": [2, 3, 2], "n_t": [20, 25, 30],
             "mean_c": [9, 10, 9.5], "sd_c": [2, 2.5, 2], "n_c": [20, 25, 30]},
     "Ratio of means", "log"),
])
def test_forest_names_the_measure_on_its_scale(measure: str, data: dict[str, list[float]],
                                               label: str, scale: str) -> None:
    es = ma.effect_sizes(measure, **data)
    res = ma.pool(es, study=["A", "B", "C"])
    ax = ma.plots.forest(res)
    try:
        texts = {t.get_text() for t in ax.get_figure(root=True).findobj(matplotlib.text.Text)}
        assert label in texts
        assert ax.get_xscale() == scale
        shown = ma.back_transform(res.to_frame(), ni=res.ni).iloc[0]
        total = [t for t in texts if t.startswith(f"{shown['estimate']:.2f} [")]
        assert total, f"pooled {measure} not shown as {shown['estimate']:.2f}"
        if measure in ("PLO", "PFT"):
            assert 0 < shown["estimate"] < 1
    finally:
        plt.close(ax.get_figure(root=True))


def test_forest_of_a_proportion_has_no_null_line_and_spans_zero_to_one() -> None:
    res = ma.pool(ma.effect_sizes("PLO", xi=[4, 10, 7], ni=[20, 30, 25]))
    ax = ma.plots.forest(res)
    try:
        texts = {t.get_text() for t in ax.get_figure(root=True).findobj(matplotlib.text.Text)}
        assert ax.get_xlim() == (0.0, 1.0)
        assert "Favours treatment" not in texts
        assert not [line for line in ax.get_lines() if line.get_gid() == "null-line"]
    finally:
        plt.close(ax.get_figure(root=True))
    ratio = ma.plots.forest(ma.pool(ma.effect_sizes(
        "IRR", x1i=[4, 9], t1i=[100, 200], x2i=[8, 12], t2i=[100, 210])))
    try:
        texts = {t.get_text() for t in ratio.get_figure(root=True).findobj(matplotlib.text.Text)}
        assert "Favours treatment" in texts
    finally:
        plt.close(ratio.get_figure(root=True))
