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
    # the plan's rare-events model cannot help a double zero either: the cell says so and
    # the comments' footnote [a] why (tests/test_rare_events.py)
    assert row["relative effect (95% CI)"] == "not estimable [a]"
    assert "not estimable" in row["comments"]
    pooled = pooled_table(list(runs.values()))
    assert "48.92" not in pooled.to_string()


def test_subgroups_below_the_plans_minimum_are_not_tested(runs) -> None:
    # issue 12, item 2: the psychosocial test (Q = 16.93, p < 0.001) was driven by two
    # one-study subgroups; with the plan's minimum of 2 studies per subgroup it is not run
    from analysis.report.tables import subgroup_table

    abstinence = runs["abstinence"]
    assert "psychosocial" not in abstinence.subgroups
    assert "'minimal' has 1 study" in abstinence.subgroup_notes["psychosocial"]
    for result in abstinence.subgroups.values():
        assert all(k >= 2 for k in result.subgroups["k"])
    table = subgroup_table(list(runs.values()))
    rows = table[(table["subgrouping"] == abstinence.subgroup_titles["psychosocial"])
                 & (table["outcome"] == abstinence.spec.label)]
    assert len(rows) == 1 and "not analysed" in rows["test for subgroup differences"].iloc[0]


def test_plan_minimum_is_validated(tmp_path) -> None:
    from analysis.report.plan import PlanError

    text = (ROOT / "analysis_plan.toml").read_text(encoding="utf-8").replace(
        "[subgroups]\n", "[subgroups]\nmin_studies_per_subgroup = 0\n", 1).replace(
        'trials = "trials"', f'trials = "{ROOT / "trials"}"', 1)
    bad = tmp_path / "plan.toml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(PlanError, match=r"min_studies_per_subgroup = 0.*whole number >= 1"):
        read_plan(bad)
