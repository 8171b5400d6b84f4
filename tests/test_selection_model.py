"""Step-function and beta selection models against metafor 3.8-1 ``selmodel``.

References:

- ``tests/reference/small_study.json`` (copied from ``../shared/reference/r_fixtures/``, made
  by ``small_study_public.R``/``small_study_lib.R``): ``selmodel(res, type = "stepfun",
  steps = c(0.025, 0.05, 0.5, 1), alternative = a)`` and ``selmodel(res, type = "beta",
  alternative = a)`` for ``res`` = ``rma(yi, vi, method = "REML"|"ML"|"EE")``, metafor's
  default control.
- ``tests/reference/selmodel_reference.json`` (``make_selmodel_reference.R``): the same fits
  with ``optim`` BFGS at ``reltol = 1e-14``, finite-difference step ``ndeps = 1e-6`` and, for
  the beta model, ``integrate(rel.tol = 1e-10)``.

Tolerances: against the tight fixture, ``ITERATIVE`` (1e-6). Against the default fixture
the written reason is metafor's optimiser: BFGS with a finite-difference gradient of step
1e-3 and ``reltol`` 1.5e-8 stops short of the maximum (our log-likelihood is the larger one,
tested), and the beta model's normalising integrals use ``integrate(rel.tol = eps^0.25)``,
so its log-likelihood itself is off by up to ~1e-4 (``DEFAULT_*`` below).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from tolerances import ITERATIVE

import analysis as ma
from analysis.errors import FewStudiesWarning
from analysis.selection import MIN_PER_INTERVAL, selection_loglik, selection_model

REF = Path(__file__).parent / "reference"
CASES = json.loads((REF / "small_study.json").read_text())["cases"]
TIGHT = json.loads((REF / "selmodel_reference.json").read_text())["cases"]
DEFAULT = [(c, key, rec) for c in CASES for key, rec in c["metafor"]["selmodel"].items()]
#: metafor's default optim stops ~1e-6..1e-5 (step function) short of the maximum.
DEFAULT_STEPFUN = 1e-4
#: ... and its beta-model integrals are only eps^0.25-accurate: estimates differ by ~1e-3.
DEFAULT_BETA = 2e-3
#: Standard errors of the step function at metafor's default stopping point.
SE_DEFAULT = 5e-3
#: Beta-model SEs against the tight fixture: estimates agree at 1e-6, but metafor's Hessian
#: takes second differences of integrate(rel.tol = 1e-10) values (lehmann, k = 81: 1.2e-4;
#: the other data sets ~2e-6).
SE_BETA_TIGHT = 2e-4
#: Log-likelihood at given parameters, step function: closed form on both sides.
LOGLIK = 1e-8
#: Beta model: our integrals are exact to ~1e-14 (checked against quad at 1e-13), R's
#: integrate(rel.tol = 1e-10) of the tight fixture is off by ~1e-9 per study, which sums to
#: ~2e-7 over lehmann's 81 studies.
LOGLIK_BETA = 1e-6


def _num(x: object) -> float:
    return math.nan if x is None else float(x)  # type: ignore[arg-type]


def _arr(x: object) -> np.ndarray:
    return np.array([_num(v) for v in np.atleast_1d(np.asarray(x, dtype=object))])


def _fit(y: object, v: object, **kw: object) -> ma.SelectionModelResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return selection_model(y, v, **kw)  # type: ignore[arg-type]


def _tight_id(rec: dict) -> str:
    return rec["id"]


@pytest.mark.parametrize("rec", TIGHT, ids=_tight_id)
def test_against_tight_metafor(rec: dict) -> None:
    y, v = rec["input"]["yi"], rec["input"]["vi"]
    res = _fit(y, v, type=rec["type"], alternative=rec["alternative"], method=rec["method"])
    boundary = rec["method"] == "ML" and rec["tau2"] < 1e-4
    if boundary:
        # tau2 -> 0 on metafor's log scale: optim stops at a small positive tau2; the
        # maximum is at tau2 = 0 (our fit), which is at least as likely
        assert res.tau2 == 0.0
        assert res.ll >= rec["ll"] - LOGLIK
        np.testing.assert_allclose(res.ll, rec["ll"], atol=1e-5)
        return
    np.testing.assert_allclose(res.estimate, rec["beta"], rtol=ITERATIVE, atol=ITERATIVE)
    np.testing.assert_allclose(res.tau2, rec["tau2"], rtol=ITERATIVE, atol=ITERATIVE)
    np.testing.assert_allclose(res.delta, _arr(rec["delta"]), rtol=ITERATIVE, atol=ITERATIVE)
    lltol = LOGLIK if rec["type"] == "stepfun" else LOGLIK_BETA
    np.testing.assert_allclose(res.ll, rec["ll"], rtol=0, atol=lltol)
    np.testing.assert_allclose(res.ll0, rec["ll0"], rtol=0, atol=LOGLIK)
    np.testing.assert_allclose(res.lrt, rec["LRT"], rtol=0, atol=2 * lltol)
    assert res.lrt_df == rec["LRTdf"]
    # normand's beta fit at tau2 = 0 has a weight at its bound (delta.min = 1e-5): where
    # the optimiser stops there is arbitrary, so its LRT for tau2 is only ~1e-4 accurate
    at_bound = rec["id"].startswith("dat.normand") and rec["type"] == "beta"
    if not math.isnan(_num(rec["LRT.tau2"])):
        np.testing.assert_allclose(res.lrt_tau2, rec["LRT.tau2"], rtol=0,
                                   atol=1e-4 if at_bound else 2 * lltol)
    # beta SEs: metafor's Hessian differentiates integrate(rel.tol = 1e-10) values
    setol = ITERATIVE if rec["type"] == "stepfun" else SE_BETA_TIGHT
    if not math.isnan(_num(rec["se"])):
        np.testing.assert_allclose(res.se, rec["se"], rtol=setol)
        np.testing.assert_allclose(res.se_delta, _arr(rec["se.delta"]), rtol=setol)
        np.testing.assert_allclose(res.se_tau2, _num(rec["se.tau2"]), rtol=setol)


@pytest.mark.parametrize("rec", TIGHT, ids=_tight_id)
def test_loglik_at_metafor_estimates(rec: dict) -> None:
    """Our log-likelihood at metafor's estimates is metafor's ll; our maximum is not lower."""
    y, v = rec["input"]["yi"], rec["input"]["vi"]
    ll = selection_loglik(y, v, mu=rec["beta"], tau2=rec["tau2"], delta=_arr(rec["delta"]),
                          type=rec["type"], alternative=rec["alternative"])
    lltol = LOGLIK if rec["type"] == "stepfun" else LOGLIK_BETA
    np.testing.assert_allclose(ll, rec["ll"], rtol=0, atol=lltol)
    res = _fit(y, v, type=rec["type"], alternative=rec["alternative"], method=rec["method"])
    assert res.ll >= ll - 1e-10  # our maximum, against our likelihood at metafor's point


def _default_id(item: tuple) -> str:
    return f"{item[0]['id']}/{item[1]}"


@pytest.mark.parametrize("item", DEFAULT, ids=[_default_id(i) for i in DEFAULT])
def test_against_default_metafor(item: tuple) -> None:
    case, key, rec = item
    ty, method = key.split("__")
    y, v, alt = case["data"]["yi"], case["data"]["vi"], case["selmodel_alternative"]
    if "error" in rec:
        assert rec["error"].startswith("One or more intervals do not contain any observed")
        with pytest.raises(ValueError, match="One or more intervals do not contain any "
                                             "observed p-values"):
            selection_model(y, v, type=ty, alternative=alt, method=method)
        return
    res = _fit(y, v, type=ty, alternative=alt, method=method)
    assert res.method == rec["method"] and res.k == rec["k"]
    np.testing.assert_allclose(res.pvals, _arr(rec["pvals"]), rtol=1e-10)
    np.testing.assert_allclose(res.ll0, rec["ll0"], rtol=0, atol=1e-8)
    if ty == "stepfun":
        assert list(res.ptable_counts) == rec["ptable"]["k"]
        np.testing.assert_allclose(res.steps, rec["steps"])
        # metafor's ll at its own (stopped-early) estimates is the closed form there ...
        ll = selection_loglik(y, v, mu=rec["beta"], tau2=rec["tau2"],
                              delta=_arr(rec["delta"]), type=ty, alternative=alt)
        np.testing.assert_allclose(ll, rec["ll"], rtol=0, atol=LOGLIK)
        # ... and our maximum is at least as high
        assert res.ll >= rec["ll"] - 1e-10
    tol = DEFAULT_STEPFUN if ty == "stepfun" else DEFAULT_BETA
    if method != "EE" and rec["tau2"] < 1e-4:  # metafor stopped short of tau2 = 0
        assert res.tau2 == 0.0 and res.ll > rec["ll"]
        return
    np.testing.assert_allclose(res.estimate, rec["beta"], rtol=tol, atol=tol)
    np.testing.assert_allclose(res.tau2, rec["tau2"], rtol=tol, atol=tol)
    np.testing.assert_allclose(res.delta, _arr(rec["delta"]), rtol=tol, atol=tol)
    np.testing.assert_allclose(res.ll, rec["ll"], rtol=0, atol=tol)
    np.testing.assert_allclose(res.lrt, rec["LRT"], rtol=0, atol=2 * tol)
    assert res.lrt_df == rec["LRTdf"]
    np.testing.assert_allclose(res.lrt_pvalue, rec["LRTp"], rtol=0, atol=tol)
    if ty == "stepfun" and rec["se"] is not None:
        # SEs: the Hessian at metafor's stopped-early point; poorly determined weights
        # (collins: delta 2.9, SE 3.3, one p-value in its interval) move by ~0.2%. The beta
        # model's SEs are not compared here: metafor differentiates integrals accurate to
        # eps^0.25 with steps of ~1e-6, so its Hessian is noise (see the tight fixture).
        np.testing.assert_allclose(res.se, rec["se"], rtol=SE_DEFAULT)
        np.testing.assert_allclose(res.se_delta, _arr(rec["se.delta"]), rtol=SE_DEFAULT)


def test_boundary_random_effects_equals_equal_effects() -> None:
    """collins: the ML maximum is at tau2 = 0, where the RE fit is the EE fit."""
    case = next(c for c in CASES if c["id"].startswith("dat.collins"))
    y, v = case["data"]["yi"], case["data"]["vi"]
    for ty in ("stepfun", "beta"):
        re = _fit(y, v, type=ty, alternative="less", method="ML")
        ee = _fit(y, v, type=ty, alternative="less", method="EE")
        assert re.tau2 == 0.0
        np.testing.assert_allclose(re.ll, ee.ll, rtol=0, atol=1e-9)
        np.testing.assert_allclose(re.delta, ee.delta, rtol=1e-5, atol=1e-6)


def test_reml_result_refits_by_ml() -> None:
    case = CASES[4]
    y, v = case["data"]["yi"], case["data"]["vi"]
    res = ma.pool(y, v, method="REML")
    a = _fit(res, None, type="stepfun")
    b = _fit(y, v, type="stepfun", method="ML")
    assert a.method == "ML"
    assert a.estimate == b.estimate and a.ll == b.ll


def test_alternative_mirrors() -> None:
    """Negating the data and the direction mirrors the fit; two-sided p-values ignore sign."""
    case = CASES[4]
    y, v = np.asarray(case["data"]["yi"]), np.asarray(case["data"]["vi"])
    for ty in ("stepfun", "beta"):
        g = _fit(y, v, type=ty, alternative="greater", method="EE")
        le = _fit(-y, v, type=ty, alternative="less", method="EE")
        np.testing.assert_allclose(le.estimate, -g.estimate, rtol=1e-6)
        np.testing.assert_allclose(le.ll, g.ll, rtol=0, atol=1e-9)
        t1 = _fit(y, v, type=ty, alternative="two.sided", method="EE", steps=None)
        t2 = _fit(-y, v, type=ty, alternative="two.sided", method="EE")
        np.testing.assert_allclose(t2.estimate, -t1.estimate, rtol=1e-6)
        np.testing.assert_allclose(t1.ll, t2.ll, rtol=0, atol=1e-9)
        assert t1.ll != g.ll


def test_two_sided_stepfun_without_selection_is_the_normal_likelihood() -> None:
    """All weights 1: A_i = 1 for every alternative, the likelihood is the plain normal one."""
    case = CASES[4]
    y, v = np.asarray(case["data"]["yi"]), np.asarray(case["data"]["vi"])
    from scipy import stats
    plain = float(np.sum(stats.norm.logpdf(y, 0.1, np.sqrt(v + 0.05))))
    for alt in ("greater", "less", "two.sided"):
        ll = selection_loglik(y, v, mu=0.1, tau2=0.05, delta=[1, 1, 1, 1], alternative=alt)
        np.testing.assert_allclose(ll, plain, rtol=1e-13)
        llb = selection_loglik(y, v, mu=0.1, tau2=0.05, delta=[1, 1], type="beta",
                               alternative=alt)
        np.testing.assert_allclose(llb, plain, rtol=1e-12)


def test_sparse_interval_warns() -> None:
    case = next(c for c in CASES if c["id"].startswith("dat.collins"))  # 1 p-value <= .025
    with pytest.warns(FewStudiesWarning, match=f"fewer than {MIN_PER_INTERVAL}"):
        selection_model(case["data"]["yi"], case["data"]["vi"], alternative="less",
                        method="EE")


def test_refusals() -> None:
    case = CASES[4]
    y, v = case["data"]["yi"], case["data"]["vi"]
    with pytest.raises(ValueError, match="too small"):
        selection_model(y[:4], v[:4], type="stepfun", method="ML")  # 5 parameters
    with pytest.raises(ValueError, match="too small"):
        selection_model(y[:2], v[:2], type="beta", method="ML")
    with pytest.raises(ValueError, match="type"):
        selection_model(y, v, type="halfnorm")
    with pytest.raises(ValueError, match="alternative"):
        selection_model(y, v, alternative="both")
    with pytest.raises(ValueError, match="steps"):
        selection_model(y, v, steps=(0.05, 1.5))
    with pytest.raises(ValueError, match="unknown control"):
        selection_model(y, v, control={"reltol": 1e-8})
    with pytest.warns(UserWarning, match="'steps' ignored"):
        selection_model(y, v, type="beta", steps=(0.05, 1), method="EE")


def test_delta_at_bound_warns() -> None:
    case = next(c for c in CASES if c["id"].startswith("dat.normand"))
    with pytest.warns(UserWarning, match="equal to their lower or upper bound"):
        selection_model(case["data"]["yi"], case["data"]["vi"], type="beta",
                        alternative="less", method="EE")


def test_summary_and_frames() -> None:
    case = CASES[4]
    res = _fit(case["data"]["yi"], case["data"]["vi"], type="stepfun", method="ML")
    text = res.summary()
    assert "Test for Selection Model Parameters:" in text
    assert f"LRT(df = 3) = {res.lrt:.4f}" in text
    assert "0.025 < p <= 0.05" in text and str(res) == text
    frame = res.to_frame()
    assert frame.shape[0] == 1 and frame["ll"].iloc[0] == res.ll
    deltas = res.delta_frame()
    assert list(deltas["k"]) == list(res.ptable_counts)
    assert math.isnan(deltas["se"].iloc[0]) and deltas["estimate"].iloc[0] == 1.0
    beta = _fit(case["data"]["yi"], case["data"]["vi"], type="beta", method="EE")
    assert "delta.2" in beta.summary() and "Heterogeneity" not in beta.summary()
    assert ma.selection_model is selection_model
