"""The risk-of-bias layer: the RoB 2 table's validation, the plots, the low-risk sensitivity
analysis, GRADE's risk-of-bias rule and the report's new files.

The broken copies are made from the synthetic fixture (tests/fixtures/valid_trials, whose
risk_of_bias.csv has Alpha2001 at low risk, Beta2005 with some concerns and an
outcome-specific high judgement for Alpha2001's percent days abstinent).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle
from test_data import read_rows, write_rows

import analysis as ma
from analysis.data import validate_trials
from analysis.data.risk_of_bias import effective_judgements, overall_judgement
from analysis.errors import DataValidationError
from analysis.report import rob_tables
from analysis.risk_of_bias import (
    grade_risk_of_bias,
    low_risk_sensitivity,
    overall_by_study,
    weight_by_study,
)

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "valid_trials"
ROB = "risk_of_bias.csv"


@pytest.fixture
def trials_copy(tmp_path: Path) -> Path:
    target = tmp_path / "trials"
    shutil.copytree(FIXTURE, target)
    return target


def problems_of(directory: Path) -> list[tuple[str, int | None, str | None, str]]:
    with pytest.raises(DataValidationError) as info:
        validate_trials(directory)
    return [(p.file, p.line, p.column, p.rule) for p in info.value.problems]


# --- validation --------------------------------------------------------------------------


def test_shipped_table_validates_and_covers_every_study() -> None:
    tables = validate_trials()
    rob = tables["risk_of_bias"]
    general = rob[rob["outcome"] == "all"]
    assert set(general["study_id"]) == set(tables["studies"]["study_id"])
    assert (general.groupby("study_id")["domain"].nunique() == 6).all()
    assert rob["reason"].notna().all() and rob["source"].notna().all()
    assert ma.load_risk_of_bias().equals(rob)


def test_shipped_overall_judgements_follow_the_rob2_algorithm() -> None:
    rob = validate_trials()["risk_of_bias"]
    pairs = rob[["study_id", "outcome"]].drop_duplicates().itertuples(index=False)
    for study, outcome in pairs:
        group = effective_judgements(rob[rob["study_id"] == study], outcome)
        domains = group.loc[group["domain"] != "overall", "judgement"]
        overall = group.loc[group["domain"] == "overall", "judgement"].item()
        assert overall == overall_judgement(domains), (study, outcome)


def test_broken_copy_lists_every_problem(trials_copy: Path) -> None:
    header, rows = read_rows(trials_copy / ROB)
    rows.append(dict(rows[0]))                                     # line 16: duplicate
    rows[1]["judgement"] = "moderate"                              # line 3: bad judgement
    rows[7]["judgement"] = "high"                                  # line 9: Beta2005 D2 high
    rows.append({**rows[0], "study_id": "Gamma2010"})              # line 17: unknown study
    rows.append({**rows[0], "outcome": "sleep_quality"})           # line 18: unknown outcome
    write_rows(trials_copy / ROB, header, rows)
    found = problems_of(trials_copy)
    rules = {(line, column): rule for _, line, column, rule in found}
    assert all(file == ROB for file, *_ in found)
    assert "duplicated key" in rules[(16, "study_id")]
    assert "must be one of" in rules[(3, "judgement")]
    # Beta2005's overall (line 13, 'some concerns') is now less severe than its D2 (high).
    assert "less severe than D2 'high' (line 9)" in rules[(13, "judgement")]
    assert "not found in studies.csv" in rules[(17, "study_id")]
    assert "outcome code of the vocabulary" in rules[(18, "outcome")]
    assert len(found) >= 5


def test_missing_domain_and_missing_specific_overall_are_reported(trials_copy: Path) -> None:
    header, rows = read_rows(trials_copy / ROB)
    kept = [r for r in rows if not (r["study_id"] == "Beta2005" and r["domain"] == "D5")
            and not (r["outcome"] == "percent_days_abstinent" and r["domain"] == "overall")]
    write_rows(trials_copy / ROB, header, kept)
    found = problems_of(trials_copy)
    rules = " | ".join(rule for *_, rule in found)
    assert "missing: ['D5']" in rules
    assert "need their own 'overall' row" in rules


def test_outcome_specific_row_is_checked_against_its_overall(trials_copy: Path) -> None:
    header, rows = read_rows(trials_copy / ROB)
    for row in rows:
        if row["outcome"] == "percent_days_abstinent" and row["domain"] == "overall":
            row["judgement"] = "low"  # its D4 is high
    write_rows(trials_copy / ROB, header, rows)
    ((file, line, column, rule),) = problems_of(trials_copy)
    assert (file, line, column) == (ROB, 15, "judgement")
    assert "percent_days_abstinent" in rule and "D4 'high'" in rule


def test_directory_without_the_table_still_loads(trials_copy: Path) -> None:
    (trials_copy / ROB).unlink()
    # Declared by the descriptor (as Frictionless requires the file then): missing is a problem.
    assert problems_of(trials_copy) == [(ROB, None, None,
                                         f"file is missing from {trials_copy}")]
    descriptor = trials_copy / "datapackage.json"
    package = json.loads(descriptor.read_text(encoding="utf-8"))
    package["resources"] = [r for r in package["resources"] if r["name"] != "risk_of_bias"]
    descriptor.write_text(json.dumps(package), encoding="utf-8")
    tables = validate_trials(trials_copy)  # the core's optional resource, file absent
    assert "risk_of_bias" not in tables
    assert ma.load_risk_of_bias(trials_copy) is None


def test_undeclared_table_is_read_with_the_core_schema(trials_copy: Path) -> None:
    descriptor = trials_copy / "datapackage.json"
    package = json.loads(descriptor.read_text(encoding="utf-8"))
    package["resources"] = [r for r in package["resources"] if r["name"] != "risk_of_bias"]
    descriptor.write_text(json.dumps(package), encoding="utf-8")
    assert len(validate_trials(trials_copy)["risk_of_bias"]) == 14
    header, rows = read_rows(trials_copy / ROB)
    rows[0]["domain"] = "D6"
    write_rows(trials_copy / ROB, header, rows)
    assert (ROB, 2, "domain") in [found[:3] for found in problems_of(trials_copy)]


def test_no_information_ranks_with_some_concerns() -> None:
    assert overall_judgement(["low"] * 4 + ["no information"]) == "some concerns"
    assert overall_judgement(["low"] * 5) == "low"
    assert overall_judgement(["some concerns", "high", "low"]) == "high"
    with pytest.raises(ValueError, match="judgements"):
        overall_judgement(["moderate"])


# --- computation ---------------------------------------------------------------------------


def _rob(judgements: dict[str, str], outcome: str = "all") -> pd.DataFrame:
    rows = []
    for study, overall in judgements.items():
        for domain in ("D1", "D2", "D3", "D4", "D5"):
            rows.append((study, outcome, domain, overall))
        rows.append((study, outcome, "overall", overall))
    return pd.DataFrame(rows, columns=["study_id", "outcome", "domain", "judgement"])


def _data(studies: list[str]) -> pd.DataFrame:
    yi = np.array([0.2, 0.5, -0.1, 0.3, 0.8])[: len(studies)]
    vi = np.array([0.04, 0.09, 0.05, 0.02, 0.1])[: len(studies)]
    return pd.DataFrame({"study_id": studies, "yi": yi, "vi": vi, "measure": "OR"})


def test_restriction_drops_high_and_no_information_overall_and_pools_the_rest() -> None:
    rob = _rob({"A": "low", "B": "some concerns", "C": "high", "D": "no information"})
    data = _data(["A", "B", "C", "D"])
    restricted = low_risk_sensitivity(data, rob, "abstinence")
    assert restricted.kept == ("A", "B")
    assert restricted.excluded == ("C (high)", "D (no information)")
    expected = ma.pool(data["yi"][:2].to_numpy(), data["vi"][:2].to_numpy())
    assert restricted.result is not None
    assert restricted.result.estimate == pytest.approx(expected.estimate, rel=1e-12)


def test_restriction_with_one_or_no_qualifying_study_is_not_pooled() -> None:
    data = _data(["A", "B"])
    one = low_risk_sensitivity(data, _rob({"A": "low", "B": "high"}), "abstinence")
    assert one.result is None and "only one study (A)" in one.note
    none = low_risk_sensitivity(data, _rob({"A": "high", "B": "high"}), "abstinence")
    assert none.result is None and none.note.startswith("no study")
    unassessed = low_risk_sensitivity(data, _rob({"A": "low"}), "abstinence")
    assert unassessed.excluded == ("B (not assessed)",)


def test_outcome_specific_judgement_replaces_the_study_level_one() -> None:
    rob = pd.concat([_rob({"A": "low", "B": "low"}), _rob({"A": "high"}, "dropout")])
    assert overall_by_study(rob, "dropout").to_dict() == {"A": "high", "B": "low"}
    assert overall_by_study(rob, "abstinence").to_dict() == {"A": "low", "B": "low"}


def test_grade_rule_downgrades_when_most_weight_is_not_at_low_risk() -> None:
    judgements = pd.Series({"A": "low", "B": "some concerns", "C": "high"})
    mostly_low = grade_risk_of_bias(pd.Series({"A": 60.0, "B": 30.0, "C": 10.0}), judgements)
    assert mostly_low.downgrade == 0 and mostly_low.weight_low == pytest.approx(60.0)
    half = grade_risk_of_bias(pd.Series({"A": 50.0, "B": 25.0, "C": 25.0}), judgements)
    assert half.downgrade == 0  # "most" is more than half
    mostly_not = grade_risk_of_bias(pd.Series({"A": 2.0, "B": 1.0, "C": 2.0}), judgements)
    assert mostly_not.downgrade == -1
    assert mostly_not.weight_high == pytest.approx(40.0)
    assert "serious (-1)" in mostly_not.reason
    with pytest.raises(ValueError, match="weights"):
        grade_risk_of_bias(pd.Series({"A": 0.0}), judgements)


def test_weight_by_study_sums_the_arms_of_a_multi_arm_study() -> None:
    data = _data(["A", "A", "B"])
    result = ma.pool(data["yi"].to_numpy(), data["vi"].to_numpy())
    weights = weight_by_study(data, result)
    assert list(weights.index) == ["A", "B"]
    assert weights["A"] == pytest.approx(result.weights[0] + result.weights[1])
    assert weights.sum() == pytest.approx(100.0)


# --- plots ---------------------------------------------------------------------------------


def test_traffic_light_draws_one_marker_per_study_and_domain() -> None:
    rob = ma.load_risk_of_bias()
    ax = ma.plots.traffic_light(rob)
    (markers,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    studies = rob["study_id"].nunique()
    assert len(markers.get_offsets()) == studies * 6
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["+  Low", "\u2212  Some concerns", "\u00d7  High", "?  No information"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["D1", "D2", "D3", "D4", "D5",
                                                            "Overall"]
    assert any("Bias due to missing outcome data" in t.get_text() for t in ax.texts)


def test_summary_bar_shares_follow_the_weights() -> None:
    rob = _rob({"A": "low", "B": "high"})
    unweighted = ma.plots.summary_bar(rob)
    weighted = ma.plots.summary_bar(rob, weights={"A": 3.0, "B": 1.0})
    for ax, low_share in ((unweighted, 50.0), (weighted, 75.0)):
        bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(bars) == 12  # 6 domains x 2 judgements present
        assert bars[0].get_width() == pytest.approx(low_share)
        assert ax.get_legend() is not None


# --- report --------------------------------------------------------------------------------


def test_report_tables_show_the_restriction_and_the_grade_column() -> None:
    from analysis.report.plan import read_plan, run_analysis

    plan = read_plan(REPO / "analysis_plan.toml")
    tables = validate_trials(plan.trials)
    trials = ma.load_trials(plan.trials)
    runs = [run_analysis(trials, spec, plan, tables["risk_of_bias"]) for spec in plan.analyses]
    frame = rob_tables.sensitivity_table(runs).set_index("outcome")
    abstinence = frame.loc["Abstinence (end of treatment)"]
    assert "Muller2015 (high)" in abstinence["excluded"]
    assert abstinence["restricted estimate (95% CI)"] != ""
    judgements = rob_tables.judgement_table(tables["risk_of_bias"])
    assert len(judgements) == len(tables["studies"])


def test_cli_writes_the_risk_of_bias_tables_and_figures(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(FIXTURE, project / "trials")
    (project / "plan.toml").write_text(
        '[report]\ntrials = "trials"\n\n[[analysis]]\nid = "abstinence"\n'
        'outcome = "abstinence"\nmeasure = "OR"\n\n[[analysis]]\nid = "pda"\n'
        'outcome = "percent_days_abstinent"\nmeasure = "MD"\n')
    plan = str(project / "plan.toml")
    out = tmp_path / "out"
    for command in (["tables", "--plan", plan, "--outdir", str(out / "tables")],
                    ["rob-figures", "--plan", plan, "--outdir", str(out / "figures")],
                    ["figures", "--plan", plan, "--analysis", "abstinence",
                     "--outdir", str(out / "figures")],
                    ["figures", "--plan", plan, "--analysis", "pda",
                     "--outdir", str(out / "figures")],
                    ["report", "--plan", plan, "--figures", str(out / "figures"),
                     "--out", str(out / "report.html")],
                    ["makefile", "--plan", plan, "--out", str(out / "plan.mk")]):
        result = subprocess.run([sys.executable, "-m", "analysis", *command], cwd=REPO,
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
    for stem in ("rob_traffic_light", "rob_summary"):
        for fmt in ("pdf", "svg", "png"):
            assert (out / "figures" / f"{stem}.{fmt}").stat().st_size > 1000
        assert f"$(FIGURES)/{stem}.png" in (out / "plan.mk").read_text()
    sensitivity = pd.read_csv(out / "tables" / "risk_of_bias_sensitivity.csv")
    notes = dict(zip(sensitivity["outcome"], sensitivity["note"].fillna(""), strict=True))
    assert "same as the primary analysis" in notes["abstinence"]
    assert "no study at low risk or with some concerns" in notes["percent_days_abstinent"]
    html = (out / "report.html").read_text()
    assert '<h2 id="risk-of-bias">Risk of bias (RoB 2)</h2>' in html
    assert 'id="rob_traffic_light"' in html and 'id="rob_summary"' in html
    assert "Downgrade by one level for risk of bias" in html
    # once as a table (not repeated under "Tables"); the contents link to it
    assert html.count("<caption>Sensitivity analysis: studies at low risk") == 1
