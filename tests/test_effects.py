"""Tests of analysis.effects against metafor escalc (fixture) and published values."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_agrees, case_ids, reference_cases
from tolerances import CLOSED_FORM

from analysis.effects import (
    counts_from_percent,
    effect_from_estimate,
    effect_sizes,
    hedges_j,
    sd_from_ci,
    sd_from_se,
)

ESCALC = reference_cases("escalc")


def compute(case: dict):
    inp, opt = case["input"], case["options"]
    kw = {k: opt[k] for k in ("add", "to", "drop00", "vtype") if k in opt}
    if opt["measure"] in ("OR", "RR", "RD"):
        return effect_sizes(opt["measure"], events_t=inp["ai"], n_t=inp["n1i"],
                            events_c=inp["ci"], n_c=inp["n2i"], **kw)
    return effect_sizes(opt["measure"], mean_t=inp["m1i"], sd_t=inp["sd1i"], n_t=inp["n1i"],
                        mean_c=inp["m2i"], sd_c=inp["sd2i"], n_c=inp["n2i"], **kw)


@pytest.mark.parametrize("case", ESCALC, ids=case_ids(ESCALC))
def test_escalc_agrees_with_metafor(case: dict) -> None:
    # Reference: R metafor 3.8-1 escalc() as in case["call"] (yi and vi, NA where not estimable).
    es = compute(case)
    assert_agrees(case, {"yi": es["yi"].to_numpy(), "vi": es["vi"].to_numpy()})


CHEN_PEACE = {  # "Applied Meta-Analysis with R" SMD example (peer survey R-28)
    "mean_t": [94, 98, 98, 94, 98, 96], "sd_t": [22, 21, 28, 19, 21, 21],
    "n_t": [60, 65, 40, 200, 50, 85], "mean_c": [92, 92, 88, 82, 88, 92],
    "sd_c": [20, 22, 26, 17, 22, 22], "n_c": [60, 65, 40, 200, 45, 85],
}


def test_smd_matches_metafor_and_revman_to_full_precision() -> None:
    # Reference: statsmodels test_meta.py, metafor and R meta values at ~1e-13.
    es = effect_sizes("SMD", **CHEN_PEACE)
    np.testing.assert_allclose(es["yi"], [0.09452415852032972, 0.27735586626551018,
                                          0.36654442951591998, 0.66438496832691396,
                                          0.46180628128769841, 0.18516443739910043],
                               rtol=CLOSED_FORM)
    np.testing.assert_allclose(es["vi"], [0.03337056173559990, 0.03106510106366112,
                                          0.05083971761755720, 0.01055175923267344,
                                          0.04334466980873156, 0.02363025255552155],
                               rtol=CLOSED_FORM)
    ub = effect_sizes("SMD", vtype="UB", **CHEN_PEACE)
    np.testing.assert_allclose(ub["vi"], [0.03337176211751222, 0.03107388569950075,
                                          0.05088098670518214, 0.01055698026322296,
                                          0.04339077140867459, 0.02363252645927709],
                               rtol=CLOSED_FORM)
    rm = effect_sizes("SMD", convention="revman5", **CHEN_PEACE)
    np.testing.assert_allclose(rm["yi"], [0.09452437336063831, 0.27735640148036095,
                                          0.36654634845797818, 0.66438509989113559,
                                          0.46180797677414176, 0.18516464424648887],
                               rtol=CLOSED_FORM)
    np.testing.assert_allclose(rm["vi"], [0.03337182573880991, 0.03107434965484927,
                                          0.05088322525353587, 0.01055724834741877,
                                          0.04339324466573324, 0.02363264537147130],
                               rtol=CLOSED_FORM)


def test_hedges_j_small_m_is_nan() -> None:
    assert np.isnan(hedges_j(np.array([1.0]))[0])
    assert hedges_j(np.array([10.0]))[0] == pytest.approx(0.9227, abs=1e-4)


def test_zero_cells_and_double_zeros() -> None:
    es = effect_sizes("OR", events_t=[0, 0, 3], n_t=[10, 10, 10], events_c=[2, 0, 4],
                      n_c=[10, 10, 10])
    assert np.isfinite(es["yi"]).all()  # 0.5 added to zero-cell tables
    es = effect_sizes("OR", events_t=[0, 0], n_t=[10, 10], events_c=[2, 0], n_c=[10, 10],
                      drop00=True)
    assert np.isfinite(es["yi"][0]) and np.isnan(es["yi"][1])
    es = effect_sizes("OR", events_t=[0], n_t=[10], events_c=[2], n_c=[10], to="none")
    assert np.isnan(es["yi"][0]) and np.isnan(es["vi"][0])


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"measure": "HR"}, r"'measure' = 'HR'"),
        ({"measure": "OR", "to": "some"}, r"'to' = 'some'"),
        ({"measure": "OR", "events_t": [11]}, r"'events_t'.*larger than the group size"),
        ({"measure": "OR", "n_c": None}, r"missing argument.*'n_c'"),
    ],
)
def test_invalid_arguments(kwargs: dict, pattern: str) -> None:
    base = {"events_t": [1], "n_t": [10], "events_c": [2], "n_c": [10]}
    base.update({k: v for k, v in kwargs.items() if k != "measure"})
    with pytest.raises(ValueError, match=pattern):
        effect_sizes(kwargs["measure"], **base)


def test_effect_from_estimate_log_scale_and_ci_width() -> None:
    es = effect_from_estimate([0.5], ci_low=[0.25], ci_high=[1.0], measure="OR")
    assert es["yi"][0] == pytest.approx(np.log(0.5))
    assert np.sqrt(es["vi"][0]) == pytest.approx(np.log(4) / (2 * 1.959963984540054))
    es = effect_from_estimate([1.0, 2.0], se=[0.1, 0.2], measure="MD")
    assert list(es["vi"]) == pytest.approx([0.01, 0.04])


def test_sd_helpers_follow_the_handbook() -> None:
    # Cochrane Handbook 6.5.2.2: SD = sqrt(N) x (upper - lower) / (2 t) for small samples
    # (3.92 replaces 2t for large samples).
    assert sd_from_se([2.0], [25])[0] == pytest.approx(10.0)
    assert sd_from_ci([3.2], [8.4], [25], distribution="t")[0] == pytest.approx(
        5 * 5.2 / (2 * 2.0638985616280205), rel=1e-9)
    assert sd_from_ci([3.2], [8.4], [100], distribution="z")[0] == pytest.approx(
        10 * 5.2 / 3.919927969080108, rel=1e-12)


def test_counts_from_percent_records_rounding() -> None:
    out = counts_from_percent([33.3, 50.0], [30, 41])
    assert out["count"].tolist() == [10, 21]
    assert out["rounding_error"].tolist() == pytest.approx([10 - 9.99, 21 - 20.5])
