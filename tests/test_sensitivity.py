"""Tests of analysis.sensitivity against metafor (fixture) and published values."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_agrees, case_ids, reference_cases

from analysis.pooling import pool
from analysis.sensitivity import COLUMNS, cumulative, leave_one_out

LOO = reference_cases("leave1out")
CI = {"z": "z", "knha": "hksj"}


@pytest.mark.skipif(not LOO, reason="metafor fixture not available")
@pytest.mark.parametrize("case", LOO, ids=case_ids(LOO))
def test_leave_one_out_agrees_with_metafor(case: dict) -> None:
    # Reference: R metafor 3.8-1 leave1out(rma(...)) as in case["call"]; every stored array.
    opt = case["options"]
    out = leave_one_out(case["input"]["yi"], case["input"]["vi"], method=opt["method"],
                        ci=CI[opt["test"]])
    ours = {c: out[c].to_numpy() for c in COLUMNS}
    fields = list(case["expected"])
    if opt["method"] == "FE":  # metafor drops tau2 from leave1out() of an FE model (null);
        fields.remove("tau2")  # ours reports the FE model's tau2 = 0.
        assert (out["tau2"] == 0).all()
    # i2: absolute floor 1e-8 percent, for the boundary reason given in test_pooling.
    assert_agrees(case, ours, [f for f in fields if f != "i2"])
    assert_agrees(case, ours, ["i2"], atol=1e-8)


def test_leave_one_out_bcg_study_1_published() -> None:
    # Reference: metafor tests/testthat/test_misc_influence.r, full precision; metafor ran
    # with its default threshold 1e-5, so rtol 1e-6 on these values.
    from test_pooling import bcg_rr

    row = leave_one_out(bcg_rr(), method="REML").iloc[0]
    assert row["estimate"] == pytest.approx(-0.707083788031436, rel=1e-6)
    assert row["se"] == pytest.approx(0.189961024702717, rel=1e-6)
    assert row["q"] == pytest.approx(151.582572747109, rel=1e-9)
    assert row["tau2"] == pytest.approx(0.336156745300306, rel=1e-6)
    assert row["i2"] == pytest.approx(93.2259349111223, rel=1e-6)


def test_cumulative_bcg_by_year_published() -> None:
    # Reference: metafor tests/testthat/test_misc_cumul.r, 6 decimals (abs 5e-7),
    # REML at metafor's default threshold 1e-5 -> abs 1e-5 for the later steps.
    from test_pooling import bcg_rr

    year = [1948, 1949, 1960, 1977, 1973, 1953, 1973, 1980, 1968, 1961, 1974, 1969, 1976]
    out = cumulative(bcg_rr(), order=year, method="REML")
    expected = [-0.889311, -1.325003, -0.97208, -1.001094, -1.101424, -0.973464, -0.901251,
                -0.788566, -0.865607, -0.785211, -0.708206, -0.794768, -0.714532]
    np.testing.assert_allclose(out["estimate"], expected, atol=1e-5)
    assert out["k"].tolist() == list(range(1, 14))


def test_cumulative_last_row_equals_full_fit() -> None:
    rng = np.random.default_rng(2)
    y, v = rng.normal(size=9), rng.uniform(0.05, 0.4, 9)
    out = cumulative(y, v, method="DL", ci="hksj")
    full = pool(y, v, method="DL", ci="hksj")
    assert out["estimate"].iloc[-1] == pytest.approx(full.estimate, rel=1e-12)
