"""Not estimable is not evidence (issue 12, item 1).

A comparison with no events in both arms carries no information on a ratio: RevMan prints
"Not estimable" and leaves it out of the pooled estimate, as metafor's ``drop00=TRUE`` does.
The shipped "any adverse event" analysis rests only on Ponizovsky 2015, 0/32 vs 0/32, which
the report used to show as "RR 1.00 (0.02 to 48.92)" with a summary-of-findings row.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import analysis as ma
from analysis.report.plan import read_plan, run_analysis
from analysis.report.tables import pooled_table, summary_of_findings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs():
    plan = read_plan(ROOT / "analysis_plan.toml")
    trials = ma.load_trials(ROOT / "trials")
    return {spec.id: run_analysis(trials, spec, plan) for spec in plan.analyses}


def test_double_zero_analysis_has_no_pooled_result(runs) -> None:
    run = runs["any_adverse_event"]
    assert run.result is None
    assert "not estimable" in run.note and "Ponizovsky 2015 (0/32 vs 0/32)" in run.note


def test_double_zero_study_is_named_not_counted_as_missing(runs) -> None:
    run = runs["dropout_adverse_event"]
    assert run.result is None
    assert "Addolorato 2002 (0/20 vs 0/19)" in run.note
    assert "could not be used" not in run.note.split("not estimable")[1]


def test_summary_of_findings_says_why_there_is_no_estimate(runs) -> None:
    import pandas as pd

    sof = summary_of_findings(list(runs.values()), pd.DataFrame()).set_index("outcome")
    row = sof.loc[runs["any_adverse_event"].spec.label]
    assert row["relative effect (95% CI)"] == ""
    assert "not estimable" in row["comments"]
    pooled = pooled_table(list(runs.values()))
    assert "48.92" not in pooled.to_string()
