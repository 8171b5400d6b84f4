"""Tests of analysis.contrasts (ma.contrasts) on the synthetic fixture and the shipped data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tolerances import CLOSED_FORM, CLOSED_FORM_FIXTURE

import analysis as ma
from analysis.contrasts import _combine_continuous

FIXTURE = Path(__file__).parent / "fixtures" / "valid_trials"


@pytest.fixture(scope="module")
def trials() -> pd.DataFrame:
    return ma.load_trials(FIXTURE)


def test_one_comparison_per_treatment_arm_split(trials: pd.DataFrame) -> None:
    frame = ma.contrasts(trials, outcome="abstinence", measure="OR", multiarm="split")
    assert list(frame["treatment_arm_id"]) == ["drug30", "drug_high", "drug_low"]
    beta = frame[frame["study_id"] == "Beta2005"]
    # The shared placebo arm (5/30) is halved between the two comparisons.
    assert np.allclose(beta["events_c"], 2.5)
    assert np.allclose(beta["n_c"], 15.0)
    expected = ma.effect_sizes("OR", events_t=[9, 6], n_t=[30, 30], events_c=[2.5, 2.5],
                               n_c=[15, 15])
    assert np.allclose(beta["yi"], expected["yi"])
    assert np.allclose(beta["vi"], expected["vi"])


def test_combine_merges_treatment_arms(trials: pd.DataFrame) -> None:
    frame = ma.contrasts(trials, outcome="abstinence", measure="RR", multiarm="combine")
    beta = frame[frame["study_id"] == "Beta2005"].iloc[0]
    assert (beta["events_t"], beta["n_t"], beta["events_c"], beta["n_c"]) == (15, 60, 5, 30)
    assert beta["treatment_arm_id"] == "drug_low+drug_high"
    assert beta["dose_target_mg_day"] == pytest.approx((30 * 30 + 150 * 30) / 60)


def test_correlated_keeps_whole_control_and_covariance(trials: pd.DataFrame) -> None:
    frame = ma.contrasts(trials, outcome="abstinence", measure="OR", multiarm="correlated")
    beta = frame[frame["study_id"] == "Beta2005"]
    assert np.allclose(beta["n_c"], 30.0)
    matrix = ma.shared_control_covariance(frame)
    i, j = beta.index
    # Control-arm contribution to the log-OR variance: 1/a_c + 1/b_c.
    assert matrix[i, j] == pytest.approx(1 / 5 + 1 / 25)
    assert matrix[i, j] == matrix[j, i]
    assert np.allclose(np.diag(matrix), frame["vi"])
    alpha = frame.index[frame["study_id"] == "Alpha2001"][0]
    assert matrix[alpha, i] == 0


def test_combined_sd_matches_pooled_raw_data() -> None:
    rng = np.random.default_rng(3)
    groups = [rng.normal(5, 2, 12), rng.normal(9, 3, 20), rng.normal(7, 1, 7)]
    summary = pd.DataFrame({
        "n": [g.size for g in groups],
        "mean": [g.mean() for g in groups],
        "sd": [g.std(ddof=1) for g in groups],
    })
    n, mean, sd = _combine_continuous(summary)
    everything = np.concatenate(groups)
    assert n == everything.size
    assert mean == pytest.approx(everything.mean(), rel=CLOSED_FORM)
    assert sd == pytest.approx(everything.std(ddof=1), rel=CLOSED_FORM)


def test_continuous_rows_without_sd_are_skipped(trials: pd.DataFrame) -> None:
    frame = ma.contrasts(trials, outcome="percent_days_abstinent", measure="MD")
    assert len(frame) == 1
    assert frame["yi"].iloc[0] == pytest.approx(60.1 - 50.5)
    assert frame["vi"].iloc[0] == pytest.approx(4.9**2 / 27 + 20**2 / 28)


def test_exclude_derived(trials: pd.DataFrame) -> None:
    frame = ma.contrasts(trials, outcome="percent_days_abstinent", measure="MD",
                         include_derived=False)
    assert frame.empty


def test_reported_estimate_used_when_no_arm_data(trials: pd.DataFrame) -> None:
    without_arms = trials[~((trials["study_id"] == "Beta2005")
                            & (trials["data_type"] == "binary"))]
    frame = ma.contrasts(without_arms, outcome="abstinence", measure="OR")
    beta = frame[frame["study_id"] == "Beta2005"].iloc[0]
    assert bool(beta["from_reported_estimate"])
    assert beta["yi"] == pytest.approx(np.log(2.1))
    se = (np.log(7.3) - np.log(0.6)) / (2 * 1.959963984540054)
    assert beta["vi"] == pytest.approx(se**2)


def test_bad_arguments_name_the_argument(trials: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="multiarm"):
        ma.contrasts(trials, outcome="abstinence", measure="OR", multiarm="merge")
    with pytest.raises(ValueError, match="measure"):
        ma.contrasts(trials, outcome="abstinence", measure="HR")


def test_shipped_data_prefers_published_estimate_over_derived_counts() -> None:
    frame = ma.contrasts(ma.load_trials(), outcome="abstinence", measure="OR")
    alpadir = frame[frame["study_id"] == "Reynaud2017"].iloc[0]
    assert bool(alpadir["from_reported_estimate"])
    assert alpadir["yi"] == pytest.approx(np.log(1.2))
    assert {"Addolorato2007", "Muller2015"} <= set(frame["study_id"])


def test_shipped_contrasts_match_metafor_escalc_of_the_same_counts() -> None:
    """The fixture's baclofen escalc cases were computed by R from the exported counts."""
    import json

    reference = json.loads(
        (Path(__file__).parent / "reference" / "metafor_reference.json").read_text()
    )
    trials = ma.load_trials()
    checked = 0
    for case in reference["cases"]:
        if not (case["kind"] == "escalc" and case["id"].startswith("baclofen/")
                and case["id"].endswith("/default")):
            continue
        outcome, measure = case["dataset"].split("/")[1].rsplit("_", 1)
        frame = ma.contrasts(trials, outcome=outcome, measure=measure, multiarm="split")
        counted = frame[~frame["from_reported_estimate"].astype(bool)]
        assert np.allclose(counted["events_t"], case["input"]["ai"])
        assert np.allclose(counted["n_c"], case["input"]["n2i"])
        np.testing.assert_allclose(counted["yi"], case["expected"]["yi"], rtol=CLOSED_FORM_FIXTURE,
                                   err_msg=case["id"])
        np.testing.assert_allclose(counted["vi"], case["expected"]["vi"], rtol=CLOSED_FORM_FIXTURE,
                                   err_msg=case["id"])
        checked += 1
    assert checked == 4


def test_an_arm_reported_under_two_definitions_enters_once(trials: pd.DataFrame) -> None:
    alpha = trials[(trials["study_id"] == "Alpha2001") & (trials["outcome"] == "abstinence")]
    second = alpha.assign(outcome_detail="self-reported abstinence", events=alpha["events"] - 1)
    doubled = pd.concat([trials, second], ignore_index=True)
    for multiarm in ("split", "combine", "correlated"):
        frame = ma.contrasts(doubled, outcome="abstinence", measure="OR", multiarm=multiarm)
        rows = frame[frame["study_id"] == "Alpha2001"]
        assert len(rows) == 1, multiarm
        assert rows["n_c"].iloc[0] == 30
        assert (rows["events_t"].iloc[0], rows["events_c"].iloc[0]) == (15, 7)


def test_timepoint_tolerance_leaves_out_distant_follow_up(trials: pd.DataFrame) -> None:
    late = trials.assign(timepoint_weeks=trials["timepoint_weeks"].where(
        trials["study_id"] != "Alpha2001", 52.0))
    kept = ma.contrasts(late, outcome="abstinence", measure="OR")
    assert "Alpha2001" in set(kept["study_id"])
    strict = ma.contrasts(late, outcome="abstinence", measure="OR", timepoint_tolerance=4)
    assert "Alpha2001" not in set(strict["study_id"])
    assert "Beta2005" in set(strict["study_id"])


def test_several_published_estimates_against_one_control_cannot_be_split(
    trials: pd.DataFrame,
) -> None:
    beta = trials[(trials["study_id"] == "Beta2005") & (trials["data_type"] == "contrast")]
    low = beta.assign(arm_id="drug_low", dose_target_mg_day=30.0)
    only_estimates = pd.concat(
        [trials[~((trials["study_id"] == "Beta2005") & (trials["data_type"] == "binary"))],
         low], ignore_index=True)
    with pytest.raises(ValueError, match="Beta2005 report several OR estimates"):
        ma.contrasts(only_estimates, outcome="abstinence", measure="OR", multiarm="split")
    frame = ma.contrasts(only_estimates, outcome="abstinence", measure="OR",
                         multiarm="correlated")
    assert (frame["study_id"] == "Beta2005").sum() == 2


@pytest.mark.parametrize("measure", ["OR", "RR", "RD"])
def test_shared_control_covariance_uses_escalc_corrected_control(measure: str) -> None:
    # A control arm with zero events: escalc adds 1/2 to every cell of such a study, and the
    # control arm's contribution to vi (the shared covariance) must use the same cells.
    frame = pd.DataFrame({
        "study_id": ["S", "S"], "control_arm_id": ["c", "c"], "measure": measure,
        "events_t": [3.0, 5.0], "n_t": [20.0, 20.0], "events_c": [0.0, 0.0],
        "n_c": [20.0, 20.0],
    })
    effects = ma.effect_sizes(measure, events_t=frame["events_t"], n_t=frame["n_t"],
                              events_c=frame["events_c"], n_c=frame["n_c"])
    frame = frame.assign(yi=effects["yi"], vi=effects["vi"])
    matrix = ma.shared_control_covariance(frame)
    treatment_part = ma.effect_sizes(measure, events_t=[3.0], n_t=[20.0], events_c=[0.0],
                                     n_c=[20.0])["vi"].iloc[0]
    a, n = 3.5, 21.0
    own = {"OR": 1 / a + 1 / (n - a), "RR": 1 / a - 1 / n,
           "RD": (a / n) * (1 - a / n) / n}[measure]
    assert matrix[0, 1] == pytest.approx(treatment_part - own, rel=CLOSED_FORM)


def test_hazard_ratio_enters_through_a_reported_estimate(tmp_path) -> None:
    # issue 11: a trial reporting only a time-to-event result (HR with CI) enters through
    # the estimate row type; the HR is log-transformed like the other ratio measures.
    import shutil
    from pathlib import Path

    import numpy as np

    import analysis as ma

    source = Path(__file__).parent / "fixtures" / "valid_trials"
    target = tmp_path / "trials"
    shutil.copytree(source, target)
    outcomes = (target / "outcomes.csv").read_text(encoding="utf-8").splitlines()
    row = next(line for line in outcomes if ",contrast," in line)
    hr = row.replace(",abstinence,", ",time_to_relapse,").replace(",OR,2.1,0.6,7.3,",
                                                                  ",HR,0.7,0.5,0.98,")
    (target / "outcomes.csv").write_text("\n".join([*outcomes, hr]) + "\n", encoding="utf-8")
    trials = ma.load_trials(target)
    data = ma.contrasts(trials, outcome="time_to_relapse", measure="HR")
    assert len(data) == 1 and bool(data["from_reported_estimate"].iloc[0])
    np.testing.assert_allclose(data["yi"], np.log(0.7))
    se = (np.log(0.98) - np.log(0.5)) / (2 * 1.959963984540054)
    np.testing.assert_allclose(data["vi"], se**2, rtol=1e-9)
    assert set(data["measure"]) == {"HR"}
    with pytest.raises(ValueError, match="measure"):
        ma.contrasts(trials, outcome="abstinence", measure="HR")
