"""Inputs at the limits of floating point: metafor's answer or a clear ValueError (issue 13).

The cases and metafor's values come from tests/reference/make_extreme_reference.R
(tests/reference/extreme_reference.json): sampling variances of 1e-300 and 1e300 (metafor
answers; so must pool and meta_regression, the single and the batched path alike) and effect
sizes of 1e200 (Cochran's Q overflows and metafor stops with "singular matrix"; here a
ValueError names 'yi' and the rule). No NumPy RuntimeWarning may escape (pyproject's
filterwarnings makes them errors; the tests below also check it directly).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import analysis as ma
from tests.tolerances import ITERATIVE, ZERO

FIXTURE = Path(__file__).parent / "reference" / "extreme_reference.json"
CASES = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]
TIGHT = {"threshold": 1e-12, "tol": 1e-12}

#: The single and the batched path run the same formulas on the same numbers; only the
#: iteration drivers differ (scalar vs vectorised), which stop at the same rule.
SAME_PATH = 1e-10


def _close(ours: Any, theirs: Any, what: str, rtol: float = ITERATIVE) -> None:
    ours = np.atleast_1d(np.asarray(ours, dtype=float))
    theirs = np.atleast_1d(np.asarray([np.nan if t is None else t for t in
                                       np.atleast_1d(np.asarray(theirs, dtype=object))],
                                      dtype=float))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=ZERO, err_msg=what)


@pytest.mark.parametrize("case", [c for c in CASES if c["x"] is None], ids=lambda c: c["name"])
def test_pool_at_the_limits(case: dict[str, Any]) -> None:
    y, v = np.array(case["yi"]), np.array(case["vi"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        if "error" in case:
            for yy, vv in ((y, v), (y[None, :], v[None, :])):
                with pytest.raises(ValueError, match=r"argument 'yi' has value.*Q overflows"):
                    ma.pool(yy, vv, method=case["method"], control=TIGHT)
            return
        single = ma.pool(y, v, method=case["method"], control=TIGHT)
        batch = ma.pool(y[None, :], v[None, :], method=case["method"], control=TIGHT)
    for name, ref in (("tau2", "tau2"), ("estimate", "beta"), ("se", "se"), ("q", "qe"),
                      ("i2", "i2"), ("h2", "h2")):
        _close(getattr(single, name), case[ref], f"{case['name']} {name}")
    if case["se_tau2"] is not None:
        _close(single.se_tau2, case["se_tau2"], f"{case['name']} se_tau2")
    _close([single.tau2_ci_low, single.tau2_ci_high], case["tau2_ci"], "tau2 CI")
    _close([single.i2_ci_low, single.i2_ci_high], case["i2_ci"], "I2 CI")
    for name in ("tau2", "se_tau2", "estimate", "se", "q", "i2", "h2", "tau2_ci_low",
                 "tau2_ci_high", "i2_ci_low", "i2_ci_high", "pi_low", "pi_high"):
        np.testing.assert_allclose(getattr(batch, name)[0], getattr(single, name),
                                   rtol=SAME_PATH, atol=0, err_msg=f"batched vs single {name}")


@pytest.mark.parametrize("case", [c for c in CASES if c["x"] is not None],
                         ids=lambda c: c["name"])
def test_meta_regression_at_the_limits(case: dict[str, Any]) -> None:
    y, v, x = np.array(case["yi"]), np.array(case["vi"]), np.array(case["x"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        if "error" in case:
            with pytest.raises(ValueError, match=r"argument 'yi' has value.*Q overflows"):
                ma.meta_regression(y, v, x, method=case["method"], control=TIGHT)
            return
        res = ma.meta_regression(y, v, x, method=case["method"], control=TIGHT)
    _close(res.tau2, case["tau2"], "tau2")
    _close(res.coef.to_numpy(), case["beta"], "beta")
    _close(res.se.to_numpy(), case["se"], "se")
    _close(res.qe, case["qe"], "QE")
    _close(res.i2, case["i2"], "I2")


def test_every_method_answers_for_huge_variances() -> None:
    """ML and REML with vi ~ 1e300 (metafor's Fisher scoring never stops there): tau^2 = 0."""
    y = np.array([0.1, 0.3, 0.5, 0.2])
    v = np.array([1e300, 2e300, 1.5e300, 3e300])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for method in ("ML", "REML"):
            single = ma.pool(y, v, method=method)
            batch = ma.pool(y[None, :], v[None, :], method=method)
            assert single.tau2 == 0.0 == batch.tau2[0]
            assert single.estimate == pytest.approx(0.26, rel=ITERATIVE)


@pytest.mark.parametrize("v", [1e-310, 0.0])
def test_subnormal_or_zero_variance_is_refused(v: float) -> None:
    y = np.array([0.1, 0.3, 0.5])
    vv = np.array([v, 0.1, 0.2])
    with pytest.raises(ValueError, match="argument 'vi'"):
        ma.pool(y, vv)
    with pytest.raises(ValueError, match="argument 'vi'"):
        ma.pool(y[None, :], vv[None, :])


def test_egger_with_equal_variances_is_a_clear_error() -> None:
    y = np.array([0.1, 0.3, 0.5, 0.2, 0.4])
    v = np.full(5, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for model in ("lm", "rma"):
            with pytest.raises(ValueError, match=r"argument 'vi' = 0.1 .*sqrt\(vi\)"):
                ma.egger_test(y, v, model=model)
        with pytest.raises(ValueError, match="give 'side'"):
            ma.trim_and_fill(y, v)
        assert ma.trim_and_fill(y, v, side="left").k0 >= 0  # with a side it is defined


def test_trim_and_fill_with_two_studies_warns_nothing() -> None:
    # k = 2: Egger's regression is an exact fit (its adjusted R² 0/0 gave a RuntimeWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = ma.trim_and_fill(np.array([0.1, 0.3]), np.array([0.1, 0.2]))
    assert res.k0 >= 0
    fit = ma.meta_regression(np.array([0.1, 0.3]), np.array([0.1, 0.2]),
                             np.array([1.0, 2.0]), method="FE")
    assert np.isnan(fit.r2)
