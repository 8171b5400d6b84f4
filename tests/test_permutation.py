"""Tests of analysis.permutation.permutest (metafor permutest.rma.uni)."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tolerances import CLOSED_FORM_FIXTURE, ITERATIVE

import analysis as ma
from analysis.permutation import _multiset_permutations

REF = Path(__file__).parent / "reference"
#: Copied from ../shared/reference/r_fixtures/influence_gosh_permutest.json (metafor 3.8-1):
#: fit_call `res <- rma(yi, vi, [mods = ~ x,] data = dat, method = ...)`, then
#: `permutest(res, exact = TRUE, progbar = FALSE)`; metafor's default control.
SHARED = json.loads((REF / "gosh_permutest_reference.json").read_text(encoding="utf-8"))
#: tests/reference/make_gosh_reference.R: `permutest(rma(..., test = "knha",
#: control = list(threshold = 1e-12, ...)), exact = TRUE)`.
LOCAL = json.loads((REF / "gosh_reference.json").read_text(encoding="utf-8"))
#: metafor's own iteration at its default settings, for the shared fixture (fitted with
#: rma()'s default control): the refits then stop where metafor's stop.
METAFOR_CONTROL = {"threshold": 1e-5, "maxiter": 100, "tol": 2**-13, "algorithm": "fisher"}
METHOD = {"EE": "FE"}


def _model(case_name: str, case: dict, control: dict | None) -> object:
    data = pd.DataFrame(SHARED["datasets"][case["dataset"]]["data"])
    method = METHOD.get(case["method"], case["method"])
    if "__mods_" in case_name:
        mod = case_name.split("__mods_")[1]
        return ma.meta_regression(data["yi"].to_numpy(), data["vi"].to_numpy(), data[[mod]],
                                  method=method, control=control)
    return ma.pool(data["yi"].to_numpy(), data["vi"].to_numpy(), method=method,
                   control=control)


@pytest.mark.parametrize("name", sorted(SHARED["permutest"]))
def test_permutest_agrees_with_metafor(name: str) -> None:
    # Exact tests: the p-values exactly, the permutation distributions (sorted; the order of
    # enumeration differs) at CLOSED_FORM_FIXTURE for EE/DL and ITERATIVE for REML (refits
    # with metafor's Fisher scoring at its default threshold 1e-5, as the fixture's).
    case = SHARED["permutest"][name]
    control = METAFOR_CONTROL if case["method"] == "REML" else None
    res = ma.permutest(_model(name, case, control), control=control)
    assert res.exact and res.iterations == case["exact_iter"]
    # counts / N, stored by R with 15 digits: any other count is off by 1/N >> 1e-12
    np.testing.assert_allclose(res.pvalue, case["pval_perm"], rtol=1e-12)
    assert res.qm_pvalue == pytest.approx(case["QMp_perm"], rel=1e-12)
    # Meta-regression also at ITERATIVE: the uncentred year moderator (2003..2008, intercept
    # SE 592) is ill-conditioned; metafor's normal equations keep about 9 digits there.
    closed = case["method"] != "REML" and "__mods_" not in name
    tol = CLOSED_FORM_FIXTURE if closed else ITERATIVE
    for j, coef in enumerate(case["coef_names"]):
        np.testing.assert_allclose(np.sort(res.zval_perm[:, j]),
                                   np.sort(case["zval_perm"][coef]), rtol=tol, atol=1e-12)
        np.testing.assert_allclose(np.sort(res.beta_perm[:, j]),
                                   np.sort(case["beta_perm"][coef]), rtol=tol, atol=1e-12)
    np.testing.assert_allclose(np.sort(res.qm_perm), np.sort(case["QM_perm"]), rtol=tol,
                               atol=1e-12)


def test_permutest_default_engine_gives_metafors_p_values() -> None:
    # with the default (global) ML/REML maximiser the distributions differ from metafor's
    # Fisher scoring by its threshold (about 1e-3), which moves no p-value here
    for name, case in SHARED["permutest"].items():
        res = ma.permutest(_model(name, case, None))
        np.testing.assert_allclose(res.pvalue, case["pval_perm"], rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("case", LOCAL["permutest"], ids=[c["id"] for c in LOCAL["permutest"]])
def test_permutest_knapp_hartung_agrees_with_metafor(case: dict) -> None:
    # t statistics and F-type QM under test = "knha"; the moderator case has 8! = 40,320
    # arrangements, more than iter: metafor's exact = TRUE, here exact=True.
    y, v = np.array(case["yi"]), np.array(case["vi"])
    if case["mods"] is None:
        fit = ma.pool(y, v, method=case["method"], ci="hksj")
        res = ma.permutest(fit)
        z = res.zval_perm[:, 0]
    else:
        fit = ma.meta_regression(y, v, pd.DataFrame({"ablat": case["ablat"]}),
                                 method=case["method"], ci="hksj")
        res = ma.permutest(fit, exact=True)
        z = res.zval_perm[:, 1]
        assert res.iterations == case["iterations"]
    assert res.exact
    np.testing.assert_allclose(res.pvalue, case["pval"], rtol=1e-12)
    assert res.qm_pvalue == pytest.approx(case["QMp"], rel=1e-12)
    np.testing.assert_allclose(np.sort(z), case["zval_perm" if case["mods"] is None
                                                else "zval_perm_ablat"], rtol=ITERATIVE)
    np.testing.assert_allclose(np.sort(res.qm_perm), case["QM_perm"], rtol=ITERATIVE)
    assert "tval" in res.to_frame().columns


def test_multiset_permutations_are_distinct_and_complete() -> None:
    perms = _multiset_permutations(np.array([0, 1, 1, 2, 2, 2]))
    assert len(perms) == 60 == len({tuple(p) for p in perms})
    assert np.all(np.sort(perms, axis=1) == [0, 1, 1, 2, 2, 2])


def _bcg() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    bcg = ma.datasets.load("bcg")
    es = ma.effect_sizes("RR", events_t=bcg["tpos"], n_t=bcg["tpos"] + bcg["tneg"],
                         events_c=bcg["cpos"], n_c=bcg["cpos"] + bcg["cneg"])
    return es["yi"].to_numpy(), es["vi"].to_numpy(), bcg[["ablat"]]


def test_random_permutations_are_seeded_and_start_with_the_observed_model() -> None:
    y, v, mods = _bcg()
    fit = ma.pool(y, v, method="DL")
    a = ma.permutest(fit, iter=500, seed=1)
    b = ma.permutest(fit, iter=500, seed=1)
    c = ma.permutest(fit, iter=500, seed=2)
    assert not a.exact and a.iterations == 500 and a.kind == "sign-flip"
    np.testing.assert_array_equal(a.zval_perm, b.zval_perm)
    assert not np.array_equal(a.zval_perm, c.zval_perm)
    assert a.zval_perm[0, 0] == pytest.approx(fit.zval, rel=1e-10)
    # p-value by its definition, over the permutation distribution
    want = np.mean(np.abs(a.zval_perm[:, 0]) >= abs(fit.zval) - 1.5e-8)
    assert a.pvalue[0] == pytest.approx(want)
    reg = ma.meta_regression(y, v, mods, method="REML")
    r = ma.permutest(reg, iter=300, seed=5)
    assert r.kind == "permutation" and not r.exact and r.btt == (1,)
    assert r.qm_perm[0] == pytest.approx(reg.qm, rel=1e-6)
    # with 13 studies the distribution of the ablat slope is centred near 0
    assert abs(np.median(r.zval_perm[:, 1])) < 1
    assert 0 < r.qm_pvalue < 0.05  # latitude explains BCG's heterogeneity (metafor: 0.002)
    assert "p-val*" in r.summary()


def test_exact_auto_false_and_true() -> None:
    y, v, _ = _bcg()
    fit = ma.pool(y[:6], v[:6], method="DL")
    assert ma.permutest(fit).exact and ma.permutest(fit).iterations == 64
    assert not ma.permutest(fit, exact=False, iter=50, seed=1).exact
    assert ma.permutest(fit, exact=True, iter=10).iterations == 64
    big = ma.pool(y, v, method="DL")
    assert not ma.permutest(big, iter=1000, seed=1).exact  # 2^13 > 1000
    with pytest.raises(ValueError, match="'iter'"):
        ma.permutest(fit, iter=1)
    with pytest.raises(ValueError, match="'exact'"):
        ma.permutest(fit, exact="yes")
    with pytest.raises(ValueError, match="'result'"):
        ma.permutest(ma.pool(np.c_[y, y].T, np.c_[v, v].T, method="DL"))


def test_same_result_on_a_process_pool() -> None:
    y, v, mods = _bcg()
    reg = ma.meta_regression(y, v, mods, method="REML")
    base = ma.permutest(reg, iter=5000, seed=3)  # three chunks
    with ProcessPoolExecutor(max_workers=2) as ex:
        other = ma.permutest(reg, iter=5000, seed=3, executor=ex)
    np.testing.assert_array_equal(other.zval_perm, base.zval_perm)
    np.testing.assert_array_equal(other.qm_perm, base.qm_perm)
    assert other.pvalue.tolist() == base.pvalue.tolist()
