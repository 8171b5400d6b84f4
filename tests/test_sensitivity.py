"""Tests of analysis.sensitivity against metafor (fixture) and published values."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_agrees, case_ids, reference_cases

from analysis.pooling import pool
from analysis.sensitivity import COLUMNS, cumulative, leave_one_out

LOO = reference_cases("leave1out")
CI = {"z": "z", "knha": "hksj"}


@pytest.mark.parametrize("case", LOO, ids=case_ids(LOO))
def test_leave_one_out_agrees_with_metafor(case: dict) -> None:
    # Reference: R metafor 3.8-1 leave1out(rma(...)) as in case["call"]; every stored array.
    # ML/REML: with control algorithm="fisher" our iteration is metafor's Fisher scoring step
    # for step, so it stops where metafor stops (metafor can stop at a local maximum, see
    # test_leave_one_out_default_solver_is_never_below_metafor).
    opt = case["options"]
    con = {"algorithm": "fisher", "maxiter": 10000} if opt["method"] in ("ML", "REML") else None
    out = leave_one_out(case["input"]["yi"], case["input"]["vi"], method=opt["method"],
                        ci=CI[opt["test"]], control=con).to_frame()
    # under knha to_frame() names the statistic tval (metafor's name); the fixture says zval
    ours = {c: out["tval" if c == "zval" and "tval" in out else c].to_numpy() for c in COLUMNS}
    fields = list(case["expected"])
    if opt["method"] == "FE":  # metafor drops tau2 from leave1out() of an FE model (null);
        fields.remove("tau2")  # ours reports the FE model's tau2 = 0.
        assert (out["tau2"] == 0).all()
    # i2: absolute floor 1e-8 percent, for the boundary reason given in test_pooling.
    assert_agrees(case, ours, [f for f in fields if f != "i2"])
    assert_agrees(case, ours, ["i2"], atol=1e-8)


ML_REML_LOO = [c for c in LOO if c["options"]["method"] in ("ML", "REML")]


@pytest.mark.parametrize("case", ML_REML_LOO, ids=case_ids(ML_REML_LOO))
def test_leave_one_out_default_solver_is_never_below_metafor(case: dict) -> None:
    # Reference: metafor 3.8-1 leave1out() tau2 per omitted study (fixture). The default solver
    # returns the global maximum of the (restricted) likelihood, so at every fit its likelihood
    # is at least metafor's; where tau2 differs, metafor stopped at a local maximum (egger2001
    # OR, ML, study 14 omitted: metafor tau2 = 0, logLik -14.93; global tau2 = 0.2952, -5.18).
    from analysis.algebra import InterceptRows, loglik

    opt = case["options"]
    yi = np.asarray(case["input"]["yi"], dtype=float)
    vi = np.asarray(case["input"]["vi"], dtype=float)
    out = leave_one_out(yi, vi, method=opt["method"], ci=CI[opt["test"]]).to_frame()
    theirs = np.asarray(case["expected"]["tau2"], dtype=float)
    reml = opt["method"] == "REML"
    for i in range(yi.size):
        keep = np.arange(yi.size) != i
        d = InterceptRows.build(yi[keep][None], vi[keep][None], np.ones((1, keep.sum()), bool))
        ll_ours = loglik(d, np.array([out["tau2"].iloc[i]]), reml)[0]
        ll_theirs = loglik(d, np.array([theirs[i]]), reml)[0]
        assert ll_ours >= ll_theirs - 1e-10
        if abs(out["tau2"].iloc[i] - theirs[i]) > 1e-6 * theirs[i] + 1e-10:
            assert ll_ours > ll_theirs + 1e-6, (case["id"], i)


def test_leave_one_out_bcg_study_1_published() -> None:
    # Reference: metafor tests/testthat/test_misc_influence.r, full precision; metafor ran
    # with its default threshold 1e-5, so rtol 1e-6 on these values.
    from test_pooling import bcg_rr

    row = leave_one_out(bcg_rr(), method="REML").to_frame().iloc[0]
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
    out = cumulative(bcg_rr(), order=year, method="REML").to_frame()
    expected = [-0.889311, -1.325003, -0.97208, -1.001094, -1.101424, -0.973464, -0.901251,
                -0.788566, -0.865607, -0.785211, -0.708206, -0.794768, -0.714532]
    np.testing.assert_allclose(out["estimate"], expected, atol=1e-5)
    assert out["k"].tolist() == list(range(1, 14))


def test_cumulative_last_row_equals_full_fit() -> None:
    rng = np.random.default_rng(2)
    y, v = rng.normal(size=9), rng.uniform(0.05, 0.4, 9)
    out = cumulative(y, v, method="DL", ci="hksj").to_frame()
    full = pool(y, v, method="DL", ci="hksj")
    assert out["estimate"].iloc[-1] == pytest.approx(full.estimate, rel=1e-12)


# Reference: metafor 3.8-1, dat <- escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg,
# data=dat.bcg); b <- baujat(rma(yi, vi, data=dat, method=m, control=list(threshold=1e-12,
# maxiter=10000))); sprintf("%.15g", b$x), sprintf("%.15g", b$y).
BAUJAT_BCG = {
    "FE": (
        [
            0.647158736025662, 6.85710962717268, 2.02792428639419, 51.1073136255054,
            0.883757801708366, 18.3351122200536, 6.35627725631524, 49.3676862704565,
            0.0271351610358987, 12.1272954277502, 0.666085717897455, 1.44171924284176,
            2.38843270921625,
        ],
        [
            0.00327659923899697, 0.0582907849917506, 0.00803933802645762,
            4.56309948547637, 0.0292413495440621, 5.7112311794132, 0.0470926809928191,
            34.8795103128319, 0.000812235906209592, 0.278639337821407,
            0.101417856528796, 0.0044542983893561, 0.05615154772269,
        ],
    ),
    "REML": (
        [
            0.0478183405467927, 1.49341140759286, 0.550875336665792, 1.5860500734647,
            0.677711031129838, 0.0160055560011056, 1.53190306258551, 1.66384594973291,
            0.162523329208977, 1.11684776254277, 0.432221097224977, 1.5922385451032,
            1.26378817180265,
        ],
        [
            0.00153750091846318, 0.112107073414489, 0.0243490468950467,
            0.237773641745261, 0.0669858349978278, 0.000333272180158999,
            0.107909485433818, 0.198964671902796, 0.018381621780552, 0.111389615903809,
            0.0489706406734857, 0.061834563955092, 0.11531287624249,
        ],
    ),
    "DL": (
        [
            0.0483853037030802, 1.50814921524008, 0.555012359316304, 1.60951334762019,
            0.685005326692909, 0.0164216809254159, 1.5462327168647, 1.68576967928858,
            0.163961630210595, 1.1313907823947, 0.437284835422968, 1.59957834099886,
            1.27716886451488,
        ],
        [
            0.00238176862744184, 0.106611486185101, 0.0256582432997427,
            0.338226321534576, 0.0680115680865552, 4.57994997754332e-05,
            0.102647300962022, 0.216995650425983, 0.0172643083336581, 0.112741415551629,
            0.0509856781029222, 0.0633225211617044, 0.117675881316688,
        ],
    ),
}


@pytest.mark.parametrize("method", sorted(BAUJAT_BCG))
def test_baujat_agrees_with_metafor(method: str) -> None:
    from test_pooling import bcg_rr

    from analysis.sensitivity import baujat

    x, y = BAUJAT_BCG[method]
    frame = baujat(bcg_rr(), method=method)
    np.testing.assert_allclose(frame["x"], x, rtol=1e-6)
    np.testing.assert_allclose(frame["y"], y, rtol=1e-6)
