"""Tests of analysis.bias against metafor (fixture) and published values."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_agrees, case_ids, reference_cases
from tolerances import PRINTED_4_DECIMALS

from analysis.bias import egger_test, trim_and_fill
from analysis.effects import effect_sizes

EGGER = reference_cases("egger")
TRIMFILL = reference_cases("trimfill")

#: metafor's trimfill() refits with rma()'s default control (threshold 1e-5, maxiter 100,
#: tol .Machine$double.eps^0.25), not the control of the model passed in; replicated exactly.
METAFOR_DEFAULT_CONTROL = {"algorithm": "fisher", "threshold": 1e-5, "maxiter": 100,
                           "tol": np.finfo(float).eps ** 0.25}


@pytest.mark.parametrize("case", EGGER, ids=case_ids(EGGER))
def test_egger_agrees_with_metafor(case: dict) -> None:
    # Reference: R metafor 3.8-1 regtest(rma(...), model=..., predictor="sei").
    opt = case["options"]
    ci = {"z": "z", "knha": "hksj"}[opt.get("test", "z")]
    res = egger_test(case["input"]["yi"], case["input"]["vi"], model=opt["model"],
                     method=opt["method"], ci=ci)
    ours = {"zval": res.zval, "pvalue": res.pvalue, "df": res.df, "est": res.estimate,
            "ci_low": res.ci_low, "ci_high": res.ci_high}
    assert_agrees(case, ours)


@pytest.mark.parametrize("case", TRIMFILL, ids=case_ids(TRIMFILL))
def test_trimfill_agrees_with_metafor(case: dict) -> None:
    # Reference: R metafor 3.8-1 trimfill(rma(...), estimator="L0"); every stored field.
    opt = case["options"]
    res = trim_and_fill(case["input"]["yi"], case["input"]["vi"], method=opt["method"],
                        estimator=opt["estimator"], refit_control=METAFOR_DEFAULT_CONTROL)
    exp = case["expected"]
    assert res.side == exp["side"]
    ours = {"k0": res.k0, "estimate": res.result.estimate, "se": res.result.se,
            "ci_low": res.result.ci_low, "ci_high": res.result.ci_high,
            "tau2": res.result.tau2, "k_total": res.result.k,
            "filled_yi": res.filled["yi"].to_numpy(), "filled_vi": res.filled["vi"].to_numpy()}
    assert_agrees(case, ours, [f for f in exp if f != "side"])


EGGER2001 = {  # dat.egger2001 (magnesium), without ISIS-4 (peer survey R-14)
    "events_t": [1, 9, 2, 1, 10, 1, 1, 0, 6, 1, 2, 5, 4, 90, 4],
    "n_t": [40, 135, 200, 48, 150, 59, 25, 22, 76, 27, 89, 23, 130, 1159, 107],
    "events_c": [2, 23, 7, 1, 8, 9, 3, 1, 11, 7, 12, 13, 8, 118, 17],
    "n_c": [36, 135, 200, 46, 148, 56, 23, 21, 75, 27, 80, 33, 122, 1157, 108],
}


def test_egger_published_values() -> None:
    # Reference: metafor docs/reference/regtest.html (4 decimals, abs 5e-5).
    es = effect_sizes("OR", **EGGER2001)
    lm = egger_test(es, model="lm")
    printed = PRINTED_4_DECIMALS
    assert (lm.zval, lm.df, lm.pvalue) == pytest.approx((-3.1783, 13, 0.0073), abs=printed)
    assert (lm.estimate, lm.ci_low, lm.ci_high) == pytest.approx((-0.1512, -0.5130, 0.2106),
                                                                   abs=printed)
    rma = egger_test(es, model="rma", method="REML")
    assert (rma.zval, rma.pvalue) == pytest.approx((-2.8062, 0.0050), abs=printed)
    assert np.isnan(rma.df)


def test_trimfill_bcg_published_example() -> None:
    # Reference: metafor docs/reference/trimfill.html: 4 missing on the right,
    # -0.2910 (0.0383), filled yi 0.7893 0.8595 1.0033 1.0388.
    from test_pooling import bcg_rr

    res = trim_and_fill(bcg_rr(), method="FE")
    assert res.k0 == 4 and res.side == "right"
    assert (res.estimate, res.result.se) == pytest.approx((-0.2910, 0.0383),
                                                          abs=PRINTED_4_DECIMALS)
    assert res.se_k0 == pytest.approx(2.3853, abs=PRINTED_4_DECIMALS)
    assert res.filled["yi"].tolist() == pytest.approx([0.78929282, 0.85949921, 1.00333667,
                                                       1.03884624], abs=5e-8)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="'model' = 'glm'"):
        egger_test([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], model="glm")
    with pytest.raises(ValueError, match="'side' = 'up'"):
        trim_and_fill([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], side="up")
    with pytest.raises(ValueError, match="at least 3"):
        egger_test([0.1, 0.2], [0.1, 0.1])
