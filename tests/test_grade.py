"""GRADE certainty from its domains; the risk-of-bias domain comes from the RoB 2 table.

Reference: the GRADE Handbook (section 5): randomised evidence starts at high and is rated
down one level per serious and two per very serious concern, never below very low.
"""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.errors import DataValidationError
from analysis.grade import DOMAINS, certainty, check_downgrade
from analysis.report.tables import check_grade_judgements


def _ratings(**given: int) -> dict[str, int]:
    return {d: given.get(d, 0) for d in DOMAINS}


@pytest.mark.parametrize(("ratings", "expected"), [
    (_ratings(), "high"),
    (_ratings(risk_of_bias=-1), "moderate"),
    (_ratings(risk_of_bias=-1, imprecision=-1), "low"),
    (_ratings(risk_of_bias=-1, inconsistency=-1, imprecision=-1), "very low"),
    (_ratings(risk_of_bias=-2, inconsistency=-2, imprecision=-2), "very low"),
    (_ratings(indirectness=-2), "low"),
])
def test_certainty_rates_down_from_high(ratings, expected) -> None:
    assert certainty(ratings) == expected


def test_certainty_needs_every_domain() -> None:
    with pytest.raises(ValueError, match=r"lack the domain.*publication_bias"):
        certainty({d: 0 for d in DOMAINS[:-1]})


@pytest.mark.parametrize("value", ["1", "-3", "x", "", "0.5"])
def test_bad_rating_is_refused(value) -> None:
    with pytest.raises(ValueError, match=r"use 0 .*-1 .*-2"):
        check_downgrade("imprecision", value)


def test_grade_file_problems_are_listed_together() -> None:
    frame = pd.DataFrame({
        "analysis_id": ["a", "a"], "inconsistency": ["0", "-1"], "indirectness": ["0", "2"],
        "imprecision": ["x", "0"], "publication_bias": ["0", "0"], "reasons": ["", ""],
        "comments": ["", ""]})
    with pytest.raises(DataValidationError) as info:
        check_grade_judgements(frame)
    text = str(info.value)
    assert "grade.csv" in text and "indirectness" in text and "imprecision" in text
    assert "one row per analysis" in text
    assert len(info.value.problems) == 3


def test_old_layout_with_typed_certainty_is_refused() -> None:
    # the risk-of-bias downgrade and the certainty are no longer typed by hand
    frame = pd.DataFrame({"analysis_id": ["a"], "certainty": ["low"], "reasons": [""],
                          "comments": [""]})
    with pytest.raises(DataValidationError, match="required column missing"):
        check_grade_judgements(frame)


def test_shipped_judgements_are_valid_and_certainty_is_computed() -> None:
    from pathlib import Path

    import analysis as ma
    from analysis.report.plan import read_plan, run_analysis
    from analysis.report.tables import summary_of_findings

    root = Path(__file__).resolve().parents[1]
    grade = pd.read_csv(root / "trials" / "grade.csv", dtype=str, keep_default_na=False)
    checked = check_grade_judgements(grade)
    plan = read_plan(root / "analysis_plan.toml")
    trials = ma.load_trials(root / "trials")
    rob = ma.load_risk_of_bias(root / "trials")
    runs = [run_analysis(trials, spec, plan, rob) for spec in plan.analyses
            if spec.id in set(checked["analysis_id"])]
    sof = summary_of_findings(runs, grade).set_index("outcome")
    for run in runs:
        typed = checked.set_index("analysis_id").loc[run.spec.id]
        expected = certainty({"risk_of_bias": run.rob_grade.downgrade,
                              **{d: int(typed[d]) for d in DOMAINS[1:]}})
        assert sof.loc[run.spec.label, "certainty"] == expected
    assert len(runs) == 2 and set(sof["certainty"]) <= {"very low", "low", "moderate", "high"}
