"""Studies dropped for a missing value are named, the same way, by every public function.

Each function is called on 12 studies of which one (label "S3", position 2) has a missing
value: the warning is an ``AnalysisWarning`` naming that study (its label, or its 0-based
row when the function takes no labels). Without a missing value, no ``AnalysisWarning``.
Also: the domain checks of the Greenland-Longnecker covariance (negative ``vi``) and of the
log dose model (negative dose, or zero with ``log_shift=0``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import analysis as ma
from analysis.bayesian import bayesmeta
from analysis.dose import gl_block_covariance
from analysis.errors import AnalysisWarning
from analysis.sequential import trial_sequential_analysis

K, MISSING = 12, 2
LABELS = [f"S{i + 1}" for i in range(K)]
_RNG = np.random.default_rng(13)
YI = _RNG.normal(0.3, 0.3, K)
VI = _RNG.uniform(0.02, 0.2, K)
EVENTS_T = _RNG.integers(5, 20, K).astype(float)
EVENTS_C = _RNG.integers(5, 20, K).astype(float)
N = np.full(K, 60.0)


def _y(missing: bool) -> np.ndarray:
    y = YI.copy()
    if missing:
        y[MISSING] = np.nan
    return y


def _events(missing: bool) -> np.ndarray:
    a = EVENTS_T.copy()
    if missing:
        a[MISSING] = np.nan
    return a


def _dose(missing: bool) -> Any:
    # 6 studies x (reference + 1 dose); the missing effect is in row MISSING (study D2)
    y = np.array([0, 0.2, 0, 0.35, 0, 0.1, 0, 0.4, 0, 0.3, 0, 0.25])
    v = np.where(np.arange(K) % 2 == 0, 0.0, 0.01)
    if missing:
        y[MISSING + 1] = np.nan
    dose = np.tile([0.0, 1.0], 6) * np.repeat([10, 20, 15, 30, 25, 5], 2)
    study = np.repeat([f"D{i + 1}" for i in range(6)], 2)
    return ma.dose_response(y, v, dose, study=study, method="FE")


CASES: dict[str, tuple[Callable[[bool], Any], str]] = {
    "pool": (lambda m: ma.pool(_y(m), VI, study=LABELS), "S3"),
    "meta_regression": (lambda m: ma.meta_regression(
        _y(m), VI, pd.DataFrame({"x": np.arange(K, dtype=float)}), study=LABELS), "S3"),
    "subgroup_analysis": (lambda m: ma.subgroup_analysis(
        _y(m), VI, groups=["a", "b"] * 6, study=LABELS), "S3"),
    "mantel_haenszel": (lambda m: ma.mantel_haenszel(
        _events(m), N, EVENTS_C, N, study=LABELS), "S3"),
    "peto": (lambda m: ma.peto(_events(m), N, EVENTS_C, N, study=LABELS), "S3"),
    "egger_test": (lambda m: ma.egger_test(_y(m), VI, study=LABELS), "S3"),
    "trim_and_fill": (lambda m: ma.trim_and_fill(_y(m), VI, study=LABELS), "S3"),
    "influence": (lambda m: ma.influence(_y(m), VI, study=LABELS), "S3"),
    "leave_one_out": (lambda m: ma.leave_one_out(_y(m), VI, study=LABELS), "S3"),
    "cumulative": (lambda m: ma.cumulative(_y(m), VI, study=LABELS), "S3"),
    "baujat": (lambda m: ma.baujat(_y(m), VI, study=LABELS), "S3"),
    "regtest": (lambda m: ma.regtest(_y(m), VI, study=LABELS), "S3"),
    "rank_test": (lambda m: ma.rank_test(_y(m), VI, study=LABELS), "S3"),
    "pet_peese": (lambda m: ma.pet_peese(_y(m), VI, study=LABELS), "S3"),
    "thompson_sharp_test": (lambda m: ma.thompson_sharp_test(_y(m), VI), "3"),
    "harbord_test": (lambda m: ma.harbord_test(_events(m), N, EVENTS_C, N), "row 2 (0-based)"),
    "peters_test": (lambda m: ma.peters_test(_events(m), N, EVENTS_C, N), "row 2 (0-based)"),
    "fail_safe_n": (lambda m: ma.fail_safe_n(_y(m), VI), "3"),
    "henmi_copas": (lambda m: ma.henmi_copas(_y(m), VI), "3"),
    "gosh": (lambda m: ma.gosh(_y(m), VI, method="DL", study=LABELS), "S3"),
    "bayesmeta": (lambda m: bayesmeta(_y(m), VI, study=LABELS), "S3"),
    "trial_sequential_analysis": (lambda m: trial_sequential_analysis(
        _y(m), VI, N, measure="RR", effect=0.8, control_rate=0.3, study=LABELS), "S3"),
    "dose_response": (_dose, "D2 (row 3)"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_dropped_study_is_named_in_an_analysis_warning(name: str) -> None:
    call, named = CASES[name]
    with pytest.warns(AnalysisWarning) as record:
        call(True)
    omitted = [w for w in record if "omitted" in str(w.message)]
    assert len(omitted) == 1, [str(w.message) for w in record]
    message = str(omitted[0].message)
    assert message.startswith("1 study with missing ") and message.endswith(": " + named)
    assert omitted[0].filename == __file__  # points at the caller's line, not the package


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_warning_without_missing_values(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", AnalysisWarning)
        CASES[name][0](False)


def test_fitted_result_keeps_its_labels_and_gosh_drops_the_study() -> None:
    with pytest.warns(AnalysisWarning, match=r"omitted from pooling: S3$"):
        fit = ma.pool(_y(True), VI, study=LABELS)
    with pytest.warns(AnalysisWarning, match=r"omitted from GOSH: S3$"):
        res = ma.gosh(fit, method="DL")
    assert res.study == tuple(label for i, label in enumerate(LABELS) if i != MISSING)
    assert res.incl.shape == (2 ** (K - 1) - 1, K - 1)


def test_many_dropped_studies_are_counted_beyond_ten() -> None:
    y = np.r_[np.full(13, np.nan), YI]
    v = np.r_[np.full(13, 0.1), VI]
    with pytest.warns(AnalysisWarning, match=r"^13 stud.*: rows 0, 1, .*, 9 and 3 more "
                                             r"\(0-based\)$"):
        ma.harbord_test(np.r_[np.full(13, np.nan), EVENTS_T], np.r_[np.full(13, 60.0), N],
                        np.r_[np.full(13, 5.0), EVENTS_C], np.r_[np.full(13, 60.0), N])
    with pytest.warns(AnalysisWarning, match=r": 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 3 more$"):
        ma.pool(y, v)


def test_tsa_looks_follow_the_trials_kept() -> None:
    y = _y(True)
    with pytest.warns(AnalysisWarning):
        dropped = trial_sequential_analysis(y, VI, N, measure="RR", effect=0.8,
                                            control_rate=0.3, looks=[5, 11])
    keep = np.arange(K) != MISSING
    direct = trial_sequential_analysis(YI[keep], VI[keep], N[keep], measure="RR", effect=0.8,
                                       control_rate=0.3, looks=[4, 10])
    np.testing.assert_allclose(dropped.zval, direct.zval)
    np.testing.assert_allclose(dropped.upper, direct.upper, equal_nan=True)
    with pytest.raises(ValueError, match=r"'looks'.*Trial 3.*omitted"), \
            pytest.warns(AnalysisWarning):
        trial_sequential_analysis(y, VI, N, measure="RR", effect=0.8, control_rate=0.3,
                                  looks=[2, 11])


# Greenland-Longnecker covariance and the log dose model ---------------------------------


def test_gl_covariance_refuses_a_negative_variance() -> None:
    with pytest.raises(ValueError, match=r"'vi' has value\(s\) \[-0.2\] at row 2 \(0-based\)"
                                         r".*must be finite and > 0"):
        ma.gl_covariance([10, 20, 30], [100, 100, 100], [0, 0.2, 0.4], [0, 0.1, -0.2])
    with pytest.raises(ValueError, match=r"\[inf\] at row 1"):
        ma.gl_covariance([10, 20, 30], [100, 100, 100], [0, 0.2, 0.4], [np.nan, np.inf, 0.1])
    with pytest.raises(ValueError, match=r"\[-0.1\] at B \(row 4\)"):
        gl_block_covariance([10, 20, 30, 5, 6], [100, 100, 100, 50, 50],
                            [0, 0.2, 0.4, 0, 0.1], [0, 0.1, 0.2, 0, -0.1],
                            ["A", "A", "A", "B", "B"])


LOG_Y = [0.1, 0.2, 0.4, 0.1, 0.1, 0.3]
LOG_V = [0.0, 0.01, 0.02, 0.0, 0.01, 0.02]
LOG_STUDY = ["A", "A", "A", "B", "B", "B"]


def test_log_model_refuses_a_negative_dose() -> None:
    with pytest.raises(ValueError, match=r"'dose' has value\(s\) \[-20.0\] at A \(row 2\); "
                                         r"model 'log' needs every dose >= 0"):
        ma.dose_response(LOG_Y, LOG_V, [0, 10, -20, 0, 5, 15], study=LOG_STUDY, model="log",
                         method="FE")


def test_log_model_with_log_shift_0_refuses_a_zero_dose() -> None:
    with pytest.raises(ValueError, match=r"\[0.0, 0.0\] at A \(row 0\), B \(row 3\); .*> 0"):
        ma.dose_response(LOG_Y, LOG_V, [0, 10, 20, 0, 5, 15], study=LOG_STUDY, model="log",
                         method="FE", log_shift=0)
    # reference rows at positive doses: fine; the default reference dose 0 is then unused
    fit = ma.dose_response(LOG_Y, LOG_V, [1, 10, 20, 2, 5, 15], study=LOG_STUDY, model="log",
                           method="FE", log_shift=0)
    assert np.isfinite(fit.coef["log_dose"])
    with pytest.raises(ValueError, match=r"'reference_dose' has value\(s\) \[0.0\]; .*> 0"):
        ma.dose_response([0.1, 0.2], [0.01, 0.02], [1, 10], model="log", method="FE",
                         log_shift=0)


def test_log_model_prediction_refuses_a_negative_dose() -> None:
    fit = ma.dose_response(LOG_Y, LOG_V, [0, 10, 20, 0, 5, 15], study=LOG_STUDY, model="log",
                           method="FE")
    with pytest.raises(ValueError, match=r"'doses' has value\(s\) \[-3.0\] at row 1"):
        fit.predict([5, -3])
