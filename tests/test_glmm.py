"""rma.glmm(measure="OR") models: UM.FS and CM.EL, ML and EE (analysis.glmm).

Reference values: tests/reference/glmm_reference.json, written by
tests/reference/make_glmm_reference.R (metafor 3.8-1, lme4 1.1-31, BiasedUrn 2.0.9) on
metafor's dat.bcg, dat.nielweise2007 and dat.collins1985b (pre-eclampsia).

CM.EL's Wald heterogeneity test and EE standard error are compared with metafor refitted
with ``control = list(hessianCtrl = list(r = 4), dnchgcalc = "dnoncenhypergeom")`` (the
fixture's ``numderiv_r4``), not with its default ``r = 16``: those 16 Richardson steps of
numDeriv end at steps of 0.1|x| / 2^15, where the log-pmf's rounding swamps the second
differences, so the default QE.Wld is a numerical artefact (dat.bcg: 268.61 at r = 16,
184.03 at r = 12, 163.195 at r = 8, 163.0900 at r = 4, the fixture's ``QE_Wld_by_r``; the
exact-information value is 163.08948).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.stats.contingency import odds_ratio

from analysis.glmm import cm_el_loglik, glmm_or, um_fs_loglik

CASES = json.loads((Path(__file__).parent / "reference" / "glmm_reference.json")
                   .read_text())["cases"]
#: Agreement with metafor where both compute the same quantity to optimiser precision.
RTOL = 1e-6
#: metafor's CM.EL SEs come from a numDeriv Hessian (r = 16 Richardson steps) of
#: BiasedUrn's pmf, accurate to about 3e-4 relative on these data (for dat.bcg EE,
#: 1/sqrt(sum varFNCHypergeo) at metafor's own estimate is 0.0412290, our value; metafor
#: prints 0.0412232; with r = 4 it gives 0.04122901). We use the exact information, checked
#: below. For ML the integrand is integrate()'s (rel.tol 1.2e-4), so even the r = 4 Hessian
#: is off by up to 1.5e-4 relative (dat.collins1985b: 0.210870 at r = 4, ours 0.210839).
CM_SE_RTOL = 1e-3
#: lme4 stops short of the UM.FS ML maximum on dat.nielweise2007 ("Model failed to converge
#: with max|grad| = 0.0089"); our estimates agree to 1e-3 there and our marginal
#: log-likelihood is at least the one at lme4's optimum (tested). dat.bcg agrees to 1e-4.
ML_TAU2_RTOL = 1e-5
#: glm()'s vcov uses the IRLS weights of its last-but-one iterate (we use the exact
#: information at the MLE): 1.3e-6 relative on dat.bcg.
GLM_SE_RTOL = 5e-6
UM_ML_ATOL = {"bcg": 1e-4, "nielweise2007": 1e-3, "collins1985b": 1e-4}


def _fit(case: dict) -> object:
    i = case["input"]
    return glmm_or(i["ai"], i["bi"], i["ci"], i["di"], model=case["model"],
                   method=case["method"], study=i["study"])


def _params(case: dict) -> list:
    marks = [pytest.mark.slow] if case["id"] == "bcg_CM.EL_ML" else []  # ~45 s (large n)
    return pytest.param(case, id=case["id"], marks=marks)


@pytest.mark.parametrize("case", [_params(c) for c in CASES])
def test_matches_metafor(case: dict) -> None:
    res = _fit(case)
    e = case["expected"]
    assert res.k == e["k"]
    if case["model"] == "UM.FS" and case["method"] == "ML":
        tol = UM_ML_ATOL[case["data"]]
        for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("tau2", "tau2")):
            assert getattr(res, ours) == pytest.approx(e[theirs], abs=tol), ours
        # metafor's UM.FS logLik is the binomial log-likelihood at the conditional modes,
        # not the maximised function: the estimates' differences move it at first order.
        assert res.loglik == pytest.approx(e["logLik"], abs=10 * tol)
        g = case["glmer"]
        i = case["input"]
        keep = ~((np.array(i["ai"]) == 0) & (np.array(i["ci"]) == 0))
        at_lme4 = um_fs_loglik(*(np.array(i[x])[keep] for x in ("ai", "bi", "ci", "di")),
                               g["fixef"][1:], g["fixef"][0], g["theta"] ** 2)
        assert res.loglik_marginal >= at_lme4 - 1e-9
    else:
        se_tol = CM_SE_RTOL if case["model"] == "CM.EL" else GLM_SE_RTOL
        assert res.estimate == pytest.approx(e["estimate"], rel=RTOL, abs=1e-6)
        assert res.se == pytest.approx(e["se"], rel=se_tol)
        # nlminb stops on a relative objective change of 1e-10, so tau² (a flat direction)
        # agrees to ML_TAU2_RTOL only; our log-likelihood is at least metafor's.
        assert res.tau2 == pytest.approx(e["tau2"], rel=ML_TAU2_RTOL, abs=1e-6)
        assert res.loglik == pytest.approx(e["logLik"], rel=RTOL)
        assert res.loglik >= e["logLik"] - 1e-9
        for ours, theirs in (("aic", "AIC"), ("bic", "BIC"), ("aicc", "AICc")):
            assert getattr(res, ours) == pytest.approx(e[theirs], rel=RTOL), ours
        if e["se_tau2"] is not None:
            assert res.se_tau2 == pytest.approx(e["se_tau2"], rel=CM_SE_RTOL)
    assert res.q_lrt == pytest.approx(e["QE_LRT"], rel=RTOL)
    assert res.q_df == e["QE_df"]
    if case["model"] == "UM.FS":
        assert res.q_wald == pytest.approx(e["QE_Wld"], rel=RTOL)
    else:  # against metafor's Hessian with numDeriv's default r = 4 (see the module notes)
        r4 = case["numderiv_r4"]
        assert res.q_wald == pytest.approx(r4["QE_Wld"], rel=RTOL)
        if case["method"] == "EE":
            assert res.se == pytest.approx(r4["se"], rel=RTOL)


def test_cm_el_likelihood_brute_force() -> None:
    """Our CM.EL log-likelihood equals direct pmf summation integrated by adaptive quad."""
    ai, bi, ci, di = [3, 0, 12], [40, 25, 88], [1, 4, 20], [45, 30, 80]
    mu, tau2 = -0.4, 0.7

    def pmf(a: int, b: int, c: int, d: int, theta: float) -> float:
        n1, n2, m1 = a + b, c + d, a + c
        xs = range(max(0, m1 - n2), min(n1, m1) + 1)
        theta = min(max(theta, -12.0), 12.0)   # the normal weight is < 1e-40 beyond
        terms = [math.comb(n1, x) * math.comb(n2, m1 - x) * math.exp(x * theta) for x in xs]
        return math.comb(n1, a) * math.comb(n2, m1 - a) * math.exp(a * theta) / sum(terms)

    total = 0.0
    for a, b, c, d in zip(ai, bi, ci, di, strict=True):
        val, _ = integrate.quad(lambda th, a=a, b=b, c=c, d=d: pmf(a, b, c, d, th)
                                * stats.norm.pdf(th, mu, math.sqrt(tau2)), -12, 12,
                                epsabs=0, epsrel=1e-13, limit=200)
        total += math.log(val)
    assert cm_el_loglik(ai, bi, ci, di, mu, tau2) == pytest.approx(total, rel=1e-10)
    fixed = sum(math.log(pmf(a, b, c, d, mu)) for a, b, c, d in zip(ai, bi, ci, di,
                                                                       strict=True))
    assert cm_el_loglik(ai, bi, ci, di, mu, 0.0) == pytest.approx(fixed, rel=1e-12)


def test_ee_cm_el_is_the_conditional_mle_of_one_table() -> None:
    table = [[7, 93], [2, 98]]
    ref = odds_ratio(table, kind="conditional").statistic
    res = glmm_or([7], [93], [2], [98], model="CM.EL", method="EE")
    assert math.exp(res.estimate) == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize("case_id", ["bcg_CM.EL_EE", "nielweise2007_CM.EL_EE",
                                     "collins1985b_CM.EL_EE"])
def test_cm_el_wald_is_metafors_statistic_with_the_exact_information(case_id: str) -> None:
    """CM.EL's Wald test from scipy's conditional MLEs and non-central hypergeometric variances.

    metafor fits the saturated model as an intercept (the last table's log odds ratio) plus
    k - 1 contrasts and tests the contrasts with the Schur complement of its Hessian; with the
    exact information in place of its numerical Hessian that statistic is the inverse-variance
    Q of the per-table estimates. Tables with a zero cell (infinite estimate) add nothing.
    """
    case = next(c for c in CASES if c["id"] == case_id)
    i = case["input"]
    tables = [(a, b, c, d) for a, b, c, d in zip(i["ai"], i["bi"], i["ci"], i["di"],
                                                  strict=True) if min(a, b, c, d) > 0]
    est = np.array([math.log(odds_ratio([[a, b], [c, d]], kind="conditional").statistic)
                    for a, b, c, d in tables])
    info = []
    for (a, b, c, d), th in zip(tables, est, strict=True):
        n1, n2, m1 = a + b, c + d, a + c
        xs = np.arange(max(0, m1 - n2), min(n1, m1) + 1)
        p = stats.nchypergeom_fisher.pmf(xs, n1 + n2, n1, m1, math.exp(th))
        info.append(np.sum(p * xs**2) - np.sum(p * xs) ** 2)
    w = np.array(info)
    k = w.size
    x = np.hstack([np.ones((k, 1)), np.eye(k)[:, :-1]])   # metafor's X.QE after aliasing
    h = x.T @ (w[:, None] * x)
    b2 = est[:-1] - est[-1]
    schur = h[1:, 1:] - np.outer(h[1:, 0], h[0, 1:]) / h[0, 0]
    q_metafor = float(b2 @ schur @ b2)
    q_inverse_variance = float(np.sum(w * (est - np.sum(w * est) / np.sum(w)) ** 2))
    assert q_metafor == pytest.approx(q_inverse_variance, rel=1e-10)
    assert _fit(case).q_wald == pytest.approx(q_metafor, rel=1e-6)


def test_double_zero_studies_are_dropped() -> None:
    base = glmm_or([3, 1, 5], [20, 30, 25], [6, 4, 9], [18, 27, 22], model="CM.EL",
                   method="EE")
    more = glmm_or([3, 1, 0, 5], [20, 30, 40, 25], [6, 4, 0, 9], [18, 27, 35, 22],
                   model="CM.EL", method="EE", study=["a", "b", "zero", "d"])
    assert more.k == 3 and more.dropped == ("zero",)
    assert more.estimate == pytest.approx(base.estimate, rel=1e-12)


def test_summary_layout_and_argument_checks() -> None:
    res = glmm_or([3, 1, 5], [20, 30, 25], [6, 4, 9], [18, 27, 22], model="UM.FS",
                  method="EE")
    text = res.summary()
    assert "Equal-Effects Model (k = 3)" in text
    assert "Unconditional Model with Fixed Study Effects" in text
    assert "LRT(df = 2)" in text and "Wld(df = 2)" in text
    assert res.to_frame()["estimate"].iloc[0] == res.estimate
    with pytest.raises(ValueError, match="model"):
        glmm_or([1], [2], [3], [4], model="CM.AL")
    with pytest.raises(ValueError, match="ai"):
        glmm_or([1.5], [2], [3], [4])
