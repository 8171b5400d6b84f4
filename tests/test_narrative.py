"""The results narrative says what the runs say (issue 12, item 5).

Numbers in the text are parsed back and compared with the report's tables of the same runs;
each caveat appears exactly when its condition holds, checked on small synthetic trials
(``tests/fixtures/valid_trials``, edited in a temporary copy).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.data import join_trials, validate_trials
from analysis.report.narrative import narrative
from analysis.report.plan import read_plan, run_analysis
from analysis.report.tables import pooled_table, subgroup_table

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "valid_trials"


def run_plan(plan_path: Path) -> tuple[dict[str, list[str]], list, object]:
    plan = read_plan(plan_path)
    tables = validate_trials(plan.trials)
    trials = join_trials(tables)
    rob = tables.get("risk_of_bias")
    runs = [run_analysis(trials, spec, plan, rob) for spec in plan.analyses]
    grade_file = Path(plan.trials) / "grade.csv"
    grade = (pd.read_csv(grade_file, dtype=str, keep_default_na=False) if grade_file.is_file()
             else pd.DataFrame())
    text = narrative(runs, plan, studies=tables["studies"], trials=trials, grade=grade, rob=rob)
    return text, runs, plan


@pytest.fixture(scope="module")
def shipped() -> tuple[dict[str, list[str]], list, object]:
    return run_plan(REPO / "analysis_plan.toml")


def test_every_analysis_has_paragraphs_and_key_findings_come_first(shipped) -> None:
    text, runs, _ = shipped
    assert list(text) == ["key_findings", *(run.spec.id for run in runs)]
    assert all(isinstance(p, str) and p and "<" not in p.replace("<=", "")
               for paragraphs in text.values() for p in paragraphs)


def test_numbers_in_the_text_are_the_report_tables(shipped) -> None:
    text, runs, _ = shipped
    table = pooled_table(runs).set_index("outcome")
    for run in runs:
        row = table.loc[run.spec.label]
        first = text[run.spec.id][0]
        if run.result is None:
            assert "not pooled" in first and run.note in first
            continue
        effect = re.search(r"(?:OR|RR|RD|MD|SMD) (-?\d+\.\d+ \(-?\d+\.\d+ to -?\d+\.\d+\))",
                           first)
        assert effect and effect.group(1) == row["effect (95% CI)"], first
        p = re.search(r"p ([=<]) (\d\.\d+)", first)
        assert p and (p.group(2) == row["p"] or f"<{p.group(2)}" == row["p"]), first
        assert re.search(rf"\b{row['studies']} stud(y|ies)\b", first)
        if row["studies"] > 1:
            assert f"I² = {row['I2 (%)']}%" in first and f"tau² = {row['tau2']}" in first
            assert f"prediction interval {row['prediction interval']}" in first
            assert f"{row['participants']:.0f} participants" in first
        else:
            assert "not a meta-analysis" in first and "prediction interval" not in first


def test_key_findings_quote_the_runs(shipped) -> None:
    text, runs, _ = shipped
    works, dose, why, *universes, rest = text["key_findings"]
    planned = [run for run in runs if run.multiverse is not None]
    assert len(universes) == len(planned) == 3
    for paragraph, run in zip(universes, planned, strict=True):
        if not len(run.multiverse):  # said in its own test
            continue
        shares = run.multiverse.shares()
        assert paragraph.startswith(f"Multiverse ({run.spec.label}): of "
                                    f"{run.multiverse.n_total} combinations")
        assert f"above it in {100 * shares['ci_above']:.0f}%" in paragraph
    table = pooled_table(runs).set_index("outcome")
    abstinence = table.loc["Abstinence (end of treatment)"]
    assert f"OR {abstinence['effect (95% CI)']} from {abstinence['studies']} studies" in works
    assert "GRADE certainty very low" in works  # as the summary-of-findings table rates it
    subgroups = subgroup_table(runs)
    abstinence_run = next(r for r in runs if r.spec.id == "abstinence")
    dose_class = subgroups[(subgroups["subgrouping"] == abstinence_run.subgroup_titles[
        "dose_class"]) & (subgroups["outcome"] == "Abstinence (end of treatment)")]
    assert dose_class["test for subgroup differences"].iloc[0].split(";")[0] in dose
    assert "observational" in dose
    for study in ("Müller 2015", "Beraha 2016", "Addolorato 2002", "Addolorato 2007"):
        assert study in why
    loo = next(r for r in runs if r.spec.id == "abstinence").leave_one_out.to_frame(
        exponentiate=True).set_index("study")
    assert (f"without it the pooled OR is {loo.loc['Müller 2015', 'estimate']:.2f} "
            f"({loo.loc['Müller 2015', 'ci_low']:.2f} to "
            f"{loo.loc['Müller 2015', 'ci_high']:.2f})") in why
    assert "death (Rigal2020)" in rest


def _copy(tmp_path: Path, edit=None) -> Path:
    trials = tmp_path / "trials"
    shutil.copytree(FIXTURE, trials)
    if edit is not None:
        outcomes = pd.read_csv(trials / "outcomes.csv", dtype=str, keep_default_na=False)
        edit(outcomes)
        outcomes.to_csv(trials / "outcomes.csv", index=False)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[report]\ntitle = "T"\ntrials = "{trials}"\n\n'
        '[[analysis]]\nid = "abstinence"\noutcome = "abstinence"\nmeasure = "OR"\n'
        'label = "Abstinence"\n\n'
        '[narrative]\nintervention = "drug"\nstudies = ["Beta2005"]\n', encoding="utf-8")
    return plan


CAVEATS = {
    "few": "fewer than 10",
    "multiarm": "a multi-arm trial's arms share",
    "derived": "Derived numbers in",
    "not_itt": "Not an intention-to-treat analysis set",
    "published": "Entered by the published estimate",
}


def _caveats(text: dict[str, list[str]]) -> set[str]:
    body = " ".join(text["abstinence"][1:])
    return {name for name, phrase in CAVEATS.items() if phrase in body}


def test_caveats_appear_only_when_their_condition_holds(tmp_path: Path) -> None:
    text, runs, _ = run_plan(_copy(tmp_path / "plain"))
    assert runs[0].result.k == 3  # Alpha2001, Beta2005 low and high dose
    assert _caveats(text) == {"few", "multiarm"}

    def alpha_derived_completers(frame: pd.DataFrame) -> None:
        alpha = (frame["study_id"] == "Alpha2001") & (frame["outcome"] == "abstinence")
        frame.loc[alpha, "derived"] = "true"
        frame.loc[alpha, "derivation"] = "events from a percentage"
        frame.loc[alpha, "analysis_set"] = "completers"

    text, runs, _ = run_plan(_copy(tmp_path / "edited", alpha_derived_completers))
    assert _caveats(text) == {"few", "multiarm", "derived", "not_itt"}
    assert "Alpha 2001" in " ".join(text["abstinence"][1:])

    def beta_counts_derived(frame: pd.DataFrame) -> None:  # its published OR is used instead
        beta = (frame["study_id"] == "Beta2005") & (frame["data_type"] == "binary")
        frame.loc[beta, "derived"] = "true"
        frame.loc[beta, "derivation"] = "events from a percentage"

    text, runs, _ = run_plan(_copy(tmp_path / "published", beta_counts_derived))
    assert _caveats(text) == {"few", "published", "not_itt"}  # the estimate's set is "other"


def test_no_certainty_without_grade_and_no_dose_paragraph_without_dose_analyses(
        tmp_path: Path) -> None:
    text, _, _ = run_plan(_copy(tmp_path))
    assert "certainty not rated" in text["abstinence"][0]
    assert not any(p.startswith("Does dose matter?") for p in text["key_findings"])
    assert any(p.startswith("Why do these studies disagree? Beta 2005")
               for p in text["key_findings"])


def test_one_comparison_has_no_heterogeneity_in_the_pooled_table(shipped) -> None:
    # a single comparison has no tau2 or I2 (the table printed 0.000 and 0.0 for them)
    _, runs, _ = shipped
    table = pooled_table(runs)
    single = table[table["comparisons"] == 1]
    assert len(single) >= 1
    assert (single["tau2"] == "").all() and (single["I2 (%)"] == "").all()
    several = table[table["comparisons"] >= 2]
    assert (several["tau2"] != "").all()


def test_hartung_knapp_with_one_comparison_says_it_fell_back_to_z(shipped) -> None:
    # metafor: 'Setting argument test="z" since k=1'; the table must not label that interval
    # Hartung-Knapp without saying so
    _, runs, _ = shipped
    single = [r for r in runs if r.result is not None and r.result.k == 1]
    assert single
    for run in single:
        row = run.sensitivity[run.sensitivity["model"].str.contains("Hartung-Knapp")].iloc[0]
        assert "z interval, as metafor" in row["note"]
    several = [r for r in runs if r.result is not None and r.result.k >= 2]
    for run in several:
        row = run.sensitivity[run.sensitivity["model"].str.contains("Hartung-Knapp")].iloc[0]
        assert row["note"] == ""


def test_an_analysis_without_a_feasible_multiverse_says_so(shipped) -> None:
    # relapse: one trial, so no combination of the plan's choices can be pooled; the report
    # says why there is no specification curve instead of leaving it out silently
    from analysis.report.figures import figure_stems

    text, runs, _ = shipped
    relapse = next(r for r in runs if r.spec.id == "relapse")
    assert relapse.multiverse is not None and len(relapse.multiverse) == 0
    assert not any(s.startswith("multiverse_") for s in figure_stems(relapse))
    said = [p for p in text["key_findings"] if p.startswith("Multiverse (Relapse")]
    assert len(said) == 1 and "no specification curve is drawn" in said[0]
