"""pool / meta_regression versus metafor on data sets with an interior global maximum.

Fixtures: tests/reference/global_max_reference.json (make_global_max_reference.R): failing
cases of the scale check (benchmarks/global_max.py) and BCG ``~ ablat + alloc``. The
project's log-likelihood at its tau2 must reach the brute-force maximum (1e-8); where metafor
is at that maximum, tau2, coefficients and SEs agree with metafor at rtol 1e-6.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis as ma
from benchmarks.global_max import loglik_exact, prepare

REF = Path(__file__).parent / "reference" / "global_max_reference.json"
CASES = json.loads(REF.read_text())["cases"]
AT_MAX = [c for c in CASES if c["metafor_at_global_max"]]
OFF_MAX = [c for c in CASES if not c["metafor_at_global_max"]]


def _ids(cases):
    return [c["id"] for c in cases]


def _design(case):
    yi = np.asarray(case["input"]["yi"], dtype=float)
    mods = case["input"]["mods"]
    X = np.ones((len(yi), 1))
    if mods:
        X = np.column_stack([X] + [np.asarray(col, dtype=float) for col in mods.values()])
    return X


def _fit(case):
    yi = np.asarray(case["input"]["yi"], dtype=float)
    vi = np.asarray(case["input"]["vi"], dtype=float)
    if case["kind"] == "pool":
        r = ma.pool(yi, vi, method=case["method"], tau2_ci=False)
        return float(r.tau2), np.array([r.estimate], dtype=float), np.array([r.se], dtype=float)
    mods = pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in case["input"]["mods"].items()})
    r = ma.meta_regression(yi, vi, moderators=mods, method=case["method"])
    return float(r.tau2), np.asarray(r.coef, dtype=float), np.asarray(r.se, dtype=float)


def _loglik(case, tau2):
    yi = np.asarray(case["input"]["yi"], dtype=float)[None]
    vi = np.asarray(case["input"]["vi"], dtype=float)[None]
    X = _design(case)
    d = prepare(yi, vi, None if X.shape[1] == 1 else X[None])
    ml, reml = loglik_exact(d, np.array([tau2]))
    return float((ml if case["method"] == "ML" else reml)[0])


def test_fixture_file_has_the_cases():
    assert len(CASES) >= 10
    assert {"bcg/RR/ablat+alloc/ML", "bcg/RR/ablat+alloc/REML"} <= set(_ids(CASES))
    assert {c["kind"] for c in CASES} == {"pool", "metareg"}


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_checker_reproduces_metafor_loglik(case):
    # the brute force and this test use metafor's log-likelihood, constants included
    mf = case["metafor"]
    if "error" in mf:
        pytest.skip(f"metafor failed: {mf['error']}")
    # metafor's logLik() is a double-precision value from X'WX: on the cases with variances
    # from 1e-6 to 1e3 (and moderators of scale 30) it carries rounding noise up to ~3e-6
    # (at tau2 = 0); the R script's QR formula (logLik_formula) is accurate to 1e-9
    f0 = case["metafor_tau2_0"]
    assert _loglik(case, mf["tau2"]) == pytest.approx(mf["logLik"], rel=1e-7, abs=1e-6)
    assert _loglik(case, 0.0) == pytest.approx(f0["logLik"], rel=1e-7, abs=1e-6)
    assert _loglik(case, mf["tau2"]) == pytest.approx(mf["logLik_formula"], abs=1e-9)
    assert _loglik(case, 0.0) == pytest.approx(f0["logLik_formula"], abs=1e-9)
    assert case["brute_force"]["logLik"] >= mf["logLik_formula"] - 1e-8


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_loglik_reaches_the_global_maximum(case):
    tau2, _, _ = _fit(case)
    ll = _loglik(case, tau2)
    # the maximum, re-evaluated here in extended precision at R's brute-force maximiser
    best = max(case["brute_force"]["logLik"], _loglik(case, case["brute_force"]["tau2"]))
    assert ll >= best - 1e-8, (
        f"logLik {ll:.10g} at tau2 {tau2:.6g} < brute-force max {best:.10g} "
        f"at tau2 {case['brute_force']['tau2']:.6g}")


@pytest.mark.parametrize("case", AT_MAX, ids=_ids(AT_MAX))
def test_agrees_with_metafor_where_metafor_is_at_the_global_maximum(case):
    tau2, coef, se = _fit(case)
    mf = case["metafor"]
    np.testing.assert_allclose(tau2, mf["tau2"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(coef, mf["beta"], rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(se, mf["se"], rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("case", OFF_MAX, ids=_ids(OFF_MAX))
def test_agrees_with_brute_force_where_metafor_is_not(case):
    # metafor stopped below the global maximum: expected is the brute-force answer
    tau2, coef, se = _fit(case)
    ex = case["expected"]
    np.testing.assert_allclose(tau2, ex["tau2"], rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(coef, ex["beta"], rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(se, ex["se"], rtol=1e-5, atol=1e-10)
