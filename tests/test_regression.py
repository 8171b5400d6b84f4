"""Tests of analysis.regression against metafor (fixture) and published values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import assert_agrees, case_ids, reference_cases
from test_pooling import bcg_rr

from analysis.pooling import pool
from analysis.regression import design_matrix, meta_regression, subgroup_analysis

METAREG = reference_cases("metareg")
SUBGROUP = reference_cases("subgroup")
CI = {"z": "z", "knha": "hksj"}


def fit_metareg(case: dict):
    inp, opt = case["input"], case["options"]
    mods = pd.DataFrame(inp["moderators"])
    terms = [t.strip() for t in opt["formula"].replace("~", "").split("+")]
    return meta_regression(inp["yi"], inp["vi"], mods[terms], method=opt["method"],
                           ci=CI[opt["test"]])


@pytest.mark.skipif(not METAREG, reason="metafor fixture not available")
@pytest.mark.parametrize("case", METAREG, ids=case_ids(METAREG))
def test_meta_regression_agrees_with_metafor(case: dict) -> None:
    # Reference: R metafor 3.8-1 rma(mods=...) as in case["call"] (every stored field).
    res = fit_metareg(case)
    exp = case["expected"]
    assert list(res.coef.index) == exp["coef_names"]
    ours = {
        "coef": res.coef.to_numpy(), "se": res.se.to_numpy(), "zval": res.zval.to_numpy(),
        "pvalue": res.pvalue.to_numpy(), "ci_low": res.ci_low.to_numpy(),
        "ci_high": res.ci_high.to_numpy(), "tau2": res.tau2, "qm": res.qm,
        "qm_df": list(res.qm_df) if len(res.qm_df) > 1 else res.qm_df[0],
        "qm_pvalue": res.qm_pvalue, "qe": res.qe, "qe_df": res.qe_df,
        "qe_pvalue": res.qe_pvalue, "r2": res.r2, "i2": res.i2, "h2": res.h2,
    }
    fields = [f for f in exp if f != "coef_names"]
    # i2 gets an absolute floor of 1e-8 percent (see test_pooling: metafor's Fisher scoring
    # stops ~threshold short of a boundary maximum at tau2 = 0; our root is exact).
    assert_agrees(case, ours, [f for f in fields if f != "i2"])
    assert_agrees(case, ours, ["i2"], atol=1e-8)


def _subgroup(case: dict):
    inp, opt = case["input"], case["options"]
    return subgroup_analysis(inp["yi"], inp["vi"], inp["group"], method=opt["method"],
                             ci=CI[opt["test"]], tau2=opt["tau2"])


@pytest.mark.skipif(not SUBGROUP, reason="metafor fixture not available")
@pytest.mark.parametrize("case", SUBGROUP, ids=case_ids(SUBGROUP))
def test_subgroup_agrees_with_metafor(case: dict) -> None:
    # Reference: R metafor 3.8-1, per-subgroup rma() + FE meta-regression of the estimates
    # (separate) or rma(mods=~factor(group)) (common), as in case["call"].
    res = _subgroup(case)
    exp = case["expected"]
    tab = res.subgroups
    assert [str(g) for g in tab["group"]] == [str(g) for g in exp["groups"]]
    ours = {c: tab[c].to_numpy() for c in ("estimate", "se", "ci_low", "ci_high", "tau2", "k")}
    ours.update(qb=res.qb, qb_df=list(res.qb_df) if len(res.qb_df) > 1 else res.qb_df[0],
                qb_pvalue=res.qb_pvalue)
    assert_agrees(case, ours, [f for f in exp if f != "groups"])


def test_bcg_ablat_knha_matches_metafor_readme() -> None:
    # Reference: metafor README (peer survey R-8). The README used metafor's default threshold
    # 1e-5, which stops Fisher scoring short of the root (tau2 0.076348 exact vs 0.0764 printed),
    # so these printed values are checked at rel 1e-3; the fixture checks the same model at 1e-6.
    ablat = [44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33]
    res = meta_regression(bcg_rr(), moderators=pd.DataFrame({"ablat": ablat}), ci="hksj")
    assert res.tau2 == pytest.approx(0.0764, rel=1e-3)
    assert res.r2 == pytest.approx(75.62, rel=1e-3)
    assert res.qe == pytest.approx(30.7331, rel=1e-6)  # does not depend on tau2
    assert res.qm == pytest.approx(12.5905, rel=1e-3)
    assert res.qm_df == (1, 11)
    assert res.coef["ablat"] == pytest.approx(-0.0291, rel=1e-3)
    assert res.se["intrcpt"] == pytest.approx(0.2839, rel=1e-3)


def test_design_matrix_codes_factors_like_r() -> None:
    mods = pd.DataFrame({"x": [1.0, 2.0, 3.0], "alloc": ["random", "alternate", "systematic"]})
    dm = design_matrix(mods)
    assert list(dm.columns) == ["intrcpt", "x", "allocrandom", "allocsystematic"]
    assert dm["allocrandom"].tolist() == [1.0, 0.0, 0.0]


def test_no_moderator_signal_matches_pool_when_regressing_on_intercept_only_column() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=10)
    v = rng.uniform(0.05, 0.3, size=10)
    x = rng.normal(size=10)
    res = meta_regression(y, v, pd.DataFrame({"x": x}), method="REML")
    assert res.k == 10 and res.qe_df == 8
    assert pool(y, v).k == 10


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="'moderators'"):
        meta_regression([0.1, 0.2, 0.3], [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="'method' = 'X'"):
        meta_regression([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], pd.DataFrame({"a": [1, 2, 3]}),
                        method="X")
    with pytest.raises(ValueError, match="'tau2' = 'both'"):
        subgroup_analysis([0.1, 0.2], [0.1, 0.1], ["a", "b"], tau2="both")
