"""Input traps of issue 10 ("Silent or misleading failures"): each gives a clear error or warning.

Every test here failed on the code before the fix (a silent wrong result, an empty frame, an
internal error or a malformed message).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis as ma
from analysis.errors import DataValidationError

FIXTURE = Path(__file__).parent / "fixtures" / "valid_trials"

# BCG vaccine trials (metafor's dat.bcg): log risk ratios, variances, absolute latitude.
BCG_YI = np.array([-0.8893, -1.5854, -1.3481, -1.4416, -0.2175, -0.7861, -1.6209, 0.0120,
                   -0.4694, -1.3713, -0.3394, 0.4459, -0.0173])
BCG_VI = np.array([0.3256, 0.1946, 0.4154, 0.0200, 0.0512, 0.0069, 0.2230, 0.0040, 0.0564,
                   0.0730, 0.0124, 0.5325, 0.0714])
BCG_ABLAT = np.array([44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33], dtype=float)


# 1. moderators ---------------------------------------------------------------------------


def test_formula_moderators_need_data_and_then_equal_the_dataframe_form():
    with pytest.raises(ValueError, match=r"'moderators' = '~ ablat' is a formula but 'data' "
                                         r"is not given; pass data=<DataFrame>"):
        ma.meta_regression(BCG_YI, BCG_VI, moderators="~ ablat")
    data = pd.DataFrame({"yi": BCG_YI, "vi": BCG_VI, "ablat": BCG_ABLAT})
    fit = ma.meta_regression("yi", "vi", moderators="~ ablat", data=data)
    ref = ma.meta_regression(BCG_YI, BCG_VI, moderators=pd.DataFrame({"ablat": BCG_ABLAT}))
    assert list(fit.coef.index) == ["intrcpt", "ablat"]
    np.testing.assert_allclose(fit.coef.to_numpy(), ref.coef.to_numpy(), rtol=1e-12)


def test_numpy_1d_moderators_equals_dataframe():
    ref = ma.meta_regression(BCG_YI, BCG_VI, moderators=pd.DataFrame({"x1": BCG_ABLAT}))
    fit = ma.meta_regression(BCG_YI, BCG_VI, moderators=BCG_ABLAT)
    assert list(fit.coef.index) == ["intrcpt", "x1"]
    np.testing.assert_allclose(fit.coef.to_numpy(), ref.coef.to_numpy(), rtol=1e-12)


def test_numpy_2d_moderators_columns_x1_x2():
    year = np.arange(13, dtype=float)
    frame = pd.DataFrame({"x1": BCG_ABLAT, "x2": year})
    ref = ma.meta_regression(BCG_YI, BCG_VI, moderators=frame)
    fit = ma.meta_regression(BCG_YI, BCG_VI, moderators=np.column_stack([BCG_ABLAT, year]))
    assert list(fit.coef.index) == ["intrcpt", "x1", "x2"]
    np.testing.assert_allclose(fit.coef.to_numpy(), ref.coef.to_numpy(), rtol=1e-12)


def test_numpy_moderators_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="moderators"):
        ma.meta_regression(BCG_YI, BCG_VI, moderators=np.zeros((13, 2, 2)))
    with pytest.raises(ValueError, match=r"moderators.*12 rows.*13"):
        ma.meta_regression(BCG_YI, BCG_VI, moderators=BCG_ABLAT[:12])


def test_dataframe_moderators_wrong_rows_still_errors():
    with pytest.raises(ValueError, match=r"moderators.*12 rows"):
        ma.meta_regression(BCG_YI, BCG_VI, moderators=pd.DataFrame({"ablat": BCG_ABLAT[:12]}))


# 2. contrasts ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trials() -> pd.DataFrame:
    return ma.load_trials()


def test_misspelled_outcome_lists_outcomes_present(trials):
    with pytest.raises(ValueError, match=r"outcome.*'abstinance'.*'abstinence'.*'dropout'"):
        ma.contrasts(trials, outcome="abstinance", measure="OR")


def test_vocabulary_outcome_without_data_is_an_empty_result(trials):
    # 'lapse' is in the shipped descriptor's outcome vocabulary but has no rows: a gap the
    # report lists, not a typo. (It was 'relapse' until Beraha 2016 entered relapse rows.)
    assert "lapse" in trials.attrs["outcome_vocabulary"]
    assert not (trials["outcome"] == "lapse").any()
    assert ma.contrasts(trials, outcome="lapse", measure="OR").empty


def test_binary_measure_on_continuous_outcome(trials):
    with pytest.raises(ValueError,
                       match=r"measure.*'OR'.*'percent_days_abstinent' is continuous; use MD, SMD"):
        ma.contrasts(trials, outcome="percent_days_abstinent", measure="OR")


def test_continuous_measure_on_binary_outcome(trials):
    with pytest.raises(ValueError, match=r"measure.*'SMD'.*'dropout' is binary; use OR, RR, RD"):
        ma.contrasts(trials, outcome="dropout", measure="SMD")


# 3. effect_from_estimate ----------------------------------------------------------------


def test_reversed_ci_limits_are_refused():
    with pytest.raises(ValueError, match=r"row\(s\) \[1\].*ci_low.*2.*ci_high.*1"):
        ma.effect_from_estimate([1.0, 1.5], [0.5, 2.0], [2.0, 1.0], measure="MD")


def test_estimate_outside_its_ci_is_refused():
    with pytest.raises(ValueError, match=r"row\(s\) \[0\].*estimate.*3.*outside"):
        ma.effect_from_estimate([3.0, 1.0], [0.5, 0.5], [2.0, 2.0], measure="OR")


@pytest.mark.parametrize("measure", ["IRR", "ROM", "HR"])
def test_every_ratio_measure_is_log_transformed(measure):
    out = ma.effect_from_estimate([2.0], [1.0], [4.0], measure=measure)
    assert out["yi"].iloc[0] == pytest.approx(np.log(2.0), rel=1e-12)
    se = (np.log(4.0) - np.log(1.0)) / (2 * 1.959963984540054)
    assert out["vi"].iloc[0] == pytest.approx(se**2, rel=1e-9)


def test_non_positive_ratio_is_refused():
    with pytest.raises(ValueError, match=r"estimate.*IRR"):
        ma.effect_from_estimate([0.0], [0.5], [2.0], measure="IRR")
    with pytest.raises(ValueError, match=r"ci_low.*IRR"):
        ma.effect_from_estimate([1.0], [-0.5], [2.0], measure="IRR")


# 4. SMD with SD = 0 ----------------------------------------------------------------------


def test_smd_with_zero_sd_warns_naming_rows():
    # metafor 3.8.1: escalc("SMD", m1i=c(1,2,3), sd1i=c(0,1,1), n1i=10, m2i=c(0,1,2),
    # sd2i=c(0,1,0), n2i=10) gives yi NA, 0.9576, 1.3543 (a warning about +-Inf recoded to NA).
    with pytest.warns(UserWarning, match=r"SD.*0.*rows? \[0\]"):
        out = ma.effect_sizes("SMD", mean_t=[1, 2, 3], sd_t=[0, 1, 1], n_t=[10, 10, 10],
                              mean_c=[0, 1, 2], sd_c=[0, 1, 0], n_c=[10, 10, 10])
    assert np.isnan(out["yi"].iloc[0])
    np.testing.assert_allclose(out["yi"].iloc[1:], [0.9576, 1.3543], atol=5e-5)


def test_smd_without_zero_sd_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ma.effect_sizes("SMD", mean_t=[1, 2], sd_t=[1, 1], n_t=[10, 10],
                        mean_c=[0, 1], sd_c=[1, 1], n_c=[10, 10])


# 5. MH and Peto name the omitted studies ---------------------------------------------------

TABLES = dict(events_t=[4, np.nan, 6, 3], n_t=[50, 40, 60, 30],
              events_c=[8, 5, 9, np.nan], n_c=[50, 40, 60, 30])


def test_mantel_haenszel_warns_about_omitted_rows():
    with pytest.warns(ma.AnalysisWarning, match=r"2 studies.*omitted.*: 2, 4$"):
        res = ma.mantel_haenszel(**TABLES)
    assert res.k == 2


def test_peto_warns_about_omitted_rows():
    with pytest.warns(ma.AnalysisWarning, match=r"2 studies.*omitted.*: 2, 4$"):
        res = ma.peto(**TABLES)
    assert res.k == 2


# 6. load_trials on a missing directory -----------------------------------------------------


def test_missing_directory_message_has_no_double_colon():
    with pytest.raises(DataValidationError) as info:
        ma.load_trials("/nonexistent")
    message = str(info.value)
    assert "::" not in message
    assert "/nonexistent: trials directory does not exist" in message


# 7. target dose <= maximum dose -------------------------------------------------------------


def test_target_dose_above_maximum_is_a_located_problem(tmp_path):
    copy = tmp_path / "trials"
    shutil.copytree(FIXTURE, copy)
    arms = (copy / "arms.csv").read_text().splitlines()
    line = next(i for i, row in enumerate(arms) if row.startswith("Alpha2001,drug30,"))
    arms[line] = arms[line].replace(",fixed,30,30,", ",fixed,30,20,")
    (copy / "arms.csv").write_text("\n".join(arms) + "\n")
    with pytest.raises(DataValidationError) as info:
        ma.load_trials(copy)
    problems = [p for p in info.value.problems if p.column == "dose_target_mg_day"]
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.file, problem.line, problem.value) == ("arms.csv", line + 1, "30")
    assert "dose_max_mg_day" in problem.rule and "20" in problem.rule
