"""Tests of analysis.data: the loader, the schema rules and the semantic rules.

Each rule is broken in a copy of the small synthetic dataset in tests/fixtures/valid_trials
and the error must name the file, the CSV line (header = 1), the column and the rule.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import analysis
from analysis.data import load_trials, summarise_trials, validate_trials
from analysis.errors import DataValidationError

FIXTURE = Path(__file__).parent / "fixtures" / "valid_trials"
REPO = Path(__file__).resolve().parent.parent
#: The shipped subject (baclofen) descriptor; the fixture carries a copy of it.
SUBJECT = REPO / "trials" / "datapackage.json"


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write_rows(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def trials_copy(tmp_path: Path) -> Path:
    target = tmp_path / "trials"
    shutil.copytree(FIXTURE, target)
    return target


def edit(directory: Path, file: str, change: Callable[[list[dict[str, str]]], None]) -> None:
    header, rows = read_rows(directory / file)
    change(rows)
    write_rows(directory / file, header, rows)


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        validate_trials(directory)
    return [str(p) for p in info.value.problems]


def assert_problem(directory: Path, file: str, line: int | None, column: str | None,
                   rule_part: str) -> None:
    with pytest.raises(DataValidationError) as info:
        validate_trials(directory)
    for problem in info.value.problems:
        if (problem.file == file and problem.line == line and problem.column == column
                and rule_part in problem.rule):
            assert f"{file}:{line}" in str(info.value) if line else file in str(info.value)
            return
    listed = "\n".join(str(p) for p in info.value.problems)
    raise AssertionError(f"no problem {file}:{line} {column} ~ {rule_part!r} in:\n{listed}")


# --- the valid fixture and the shipped data -------------------------------------------------

def test_fixture_loads_into_one_tidy_frame() -> None:
    frame = load_trials(FIXTURE)
    assert len(frame) == 8
    assert {"events", "mean", "estimate", "dose_target_mg_day", "liver_disease",
            "arm_source", "study_notes"} <= set(frame.columns)
    assert frame["events"].dtype == "Int64"
    assert frame["derived"].dtype == bool
    assert frame.loc[frame["arm_id"] == "drug_high", "dose_mean_mg_day"].iloc[0] == 93.6


def test_shipped_trials_validate() -> None:
    tables = validate_trials()
    summary = summarise_trials(tables)
    assert summary.studies >= 15
    arms = tables["arms"]
    treatment = arms[arms["role"] == "treatment"]
    assert treatment["dose_target_mg_day"].notna().all()
    assert tables["outcomes"]["source"].notna().all()
    assert tables["outcomes"]["source_location"].notna().all()


def test_load_trials_default_path_is_shipped_trials() -> None:
    frame = analysis.load_trials()
    outcomes = validate_trials()["outcomes"]
    assert len(frame) == len(outcomes)
    assert set(frame["study_id"]) == set(outcomes["study_id"])


def test_fixture_descriptor_equals_shipped_subject_descriptor() -> None:
    """The synthetic fixture is laid out as the shipped baclofen trials, with their descriptor."""
    shipped = (REPO / "trials" / "datapackage.json").read_bytes()
    assert (FIXTURE / "datapackage.json").read_bytes() == shipped


@pytest.mark.parametrize("directory", [FIXTURE, REPO / "trials"], ids=["fixture", "shipped"])
def test_frictionless_agrees_data_package_is_valid(directory: Path, tmp_path: Path) -> None:
    frictionless = pytest.importorskip("frictionless")
    target = tmp_path / "pkg"
    shutil.copytree(directory, target)
    shutil.copy(SUBJECT, target / "datapackage.json")
    report = frictionless.validate(str(target / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])


# --- one test per rule ------------------------------------------------------------------------

def test_events_above_total(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[1].update(events="31", total="30"))
    assert_problem(trials_copy, "outcomes.csv", 3, "events", "events must be <= total")


def test_total_above_randomised_needs_a_note(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[0].update(total="40"))
    assert_problem(trials_copy, "outcomes.csv", 2, "total", "exceeds the arm's n_randomised")
    edit(trials_copy, "outcomes.csv", lambda rows: rows[0].update(notes="includes re-entrants"))
    validate_trials(trials_copy)


def test_sd_must_be_positive(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[2].update(sd="0"))
    assert_problem(trials_copy, "outcomes.csv", 4, "sd", "sd must be > 0")


def test_n_must_be_positive(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[2].update(n="0"))
    assert_problem(trials_copy, "outcomes.csv", 4, "n", "must be >= 1")


def test_binary_row_needs_events(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[0].update(events=""))
    assert_problem(trials_copy, "outcomes.csv", 2, "events", "a binary row needs events")


def test_row_must_not_mix_field_sets(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[0].update(mean="3.0"))
    assert_problem(trials_copy, "outcomes.csv", 2, "mean", "must leave the continuous field")


def test_contrast_row_needs_ci(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[7].update(ci_high=""))
    assert_problem(trials_copy, "outcomes.csv", 9, "ci_high", "a contrast row needs ci_high")


def test_estimate_outside_ci(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[7].update(estimate="9"))
    assert_problem(trials_copy, "outcomes.csv", 9, "estimate", "within [ci_low, ci_high]")


def test_contrast_comparator_must_exist(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[7].update(comparator_arm_id="nothere"))
    assert_problem(trials_copy, "outcomes.csv", 9, "comparator_arm_id", "not found in arms.csv")


def test_unknown_outcome_code(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[0].update(outcome="happiness"))
    assert_problem(trials_copy, "outcomes.csv", 2, "outcome", "must be one of")


def test_study_needs_control_arm(trials_copy: Path) -> None:
    edit(trials_copy, "arms.csv", lambda rows: rows[0].update(role="treatment"))
    assert_problem(trials_copy, "studies.csv", 2, "study_id", "no control arm")


def test_treatment_arm_needs_dose(trials_copy: Path) -> None:
    edit(trials_copy, "arms.csv", lambda rows: rows[1].update(dose_target_mg_day=""))
    assert_problem(trials_copy, "arms.csv", 3, "dose_target_mg_day", "needs a dose")


def test_arm_sizes_add_up_to_total(trials_copy: Path) -> None:
    edit(trials_copy, "studies.csv", lambda rows: rows[0].update(n_randomised_total="61"))
    assert_problem(trials_copy, "studies.csv", 2, "n_randomised_total", "add up to 60")


def test_outcome_source_required(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[3].update(source=""))
    assert_problem(trials_copy, "outcomes.csv", 5, "source", "a value is required")


def test_derived_row_needs_derivation(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[3].update(derivation=""))
    assert_problem(trials_copy, "outcomes.csv", 5, "derivation", "say how it was derived")


def test_boolean_values(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[0].update(derived="yes"))
    assert_problem(trials_copy, "outcomes.csv", 2, "derived", "must be one of ['true', 'false']")


def test_foreign_key_arm_to_study(trials_copy: Path) -> None:
    edit(trials_copy, "arms.csv", lambda rows: rows[4].update(study_id="Gamma2010"))
    assert_problem(trials_copy, "arms.csv", 6, "study_id", "not found in studies.csv")


def test_foreign_key_outcome_to_arm(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[4].update(arm_id="drug_mid"))
    assert_problem(trials_copy, "outcomes.csv", 6, "arm_id", "not found in arms.csv")


def test_duplicated_key(trials_copy: Path) -> None:
    edit(trials_copy, "arms.csv", lambda rows: rows.append(dict(rows[0])))
    assert_problem(trials_copy, "arms.csv", 7, "study_id", "duplicated key")


def test_wrong_type(trials_copy: Path) -> None:
    edit(trials_copy, "studies.csv", lambda rows: rows[1].update(year="2005a"))
    assert_problem(trials_copy, "studies.csv", 3, "year", "must be a whole number")


def test_all_problems_reported_at_once(trials_copy: Path) -> None:
    def break_many(rows: list[dict[str, str]]) -> None:
        rows[0].update(events="99")
        rows[2].update(sd="-1")
        rows[5].update(outcome="mood")

    edit(trials_copy, "outcomes.csv", break_many)
    edit(trials_copy, "studies.csv", lambda rows: rows[0].update(design="quasi"))
    problems = problems_of(trials_copy)
    assert len(problems) >= 4
    joined = "\n".join(problems)
    for where in ("outcomes.csv:2", "outcomes.csv:4", "outcomes.csv:7", "studies.csv:2"):
        assert where in joined


def test_line_numbers_count_multiline_cells(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv",
         lambda rows: (rows[0].update(notes="line one\nline two"), rows[2].update(sd="-2")))
    assert_problem(trials_copy, "outcomes.csv", 5, "sd", "sd must be > 0")


# --- malformed files ------------------------------------------------------------------------

def test_non_utf8_bytes(trials_copy: Path) -> None:
    path = trials_copy / "studies.csv"
    path.write_bytes(path.read_bytes().replace(b"Nowhere", b"Nowh\xe9re"))
    assert_problem(trials_copy, "studies.csv", 2, None, "UTF-8")


def test_bad_quoting(trials_copy: Path) -> None:
    path = trials_copy / "arms.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("drugx", 'dr"ugx,"oops', 1)
    path.write_text("\n".join(lines) + "\n")
    message = "\n".join(problems_of(trials_copy))
    assert "arms.csv:3" in message


def test_unclosed_quote(trials_copy: Path) -> None:
    path = trials_copy / "arms.csv"
    path.write_text(path.read_text() + 'Beta2005,"drug_mid,treatment\n')
    message = "\n".join(problems_of(trials_copy))
    assert "arms.csv" in message
    assert "Traceback" not in message


def test_empty_file(trials_copy: Path) -> None:
    (trials_copy / "arms.csv").write_text("")
    assert_problem(trials_copy, "arms.csv", None, None, "file is empty")


def test_missing_file(trials_copy: Path) -> None:
    (trials_copy / "outcomes.csv").unlink()
    assert_problem(trials_copy, "outcomes.csv", None, None, "file is missing")


def test_missing_column(trials_copy: Path) -> None:
    header, rows = read_rows(trials_copy / "arms.csv")
    header.remove("role")
    for row in rows:
        del row["role"]
    write_rows(trials_copy / "arms.csv", header, rows)
    assert_problem(trials_copy, "arms.csv", 1, "role", "required column is missing")


def test_unknown_column(trials_copy: Path) -> None:
    header, rows = read_rows(trials_copy / "arms.csv")
    rows = [{**r, "colour": "red"} for r in rows]
    write_rows(trials_copy / "arms.csv", [*header, "colour"], rows)
    assert_problem(trials_copy, "arms.csv", 1, "colour", "unknown column")


def test_duplicated_column(trials_copy: Path) -> None:
    path = trials_copy / "studies.csv"
    lines = path.read_text().splitlines()
    lines = [line + ",x" for line in lines]
    lines[0] = lines[0][:-2] + ",year"
    path.write_text("\n".join(lines) + "\n")
    assert_problem(trials_copy, "studies.csv", 1, "year", "column name appears twice")


def test_wrong_field_count(trials_copy: Path) -> None:
    path = trials_copy / "studies.csv"
    lines = path.read_text().splitlines()
    lines[1] += ",extra"
    path.write_text("\n".join(lines) + "\n")
    assert_problem(trials_copy, "studies.csv", 2, None, "fields but the header has")


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="does not exist"):
        validate_trials(tmp_path / "nope")


def test_loader_never_writes_to_input(trials_copy: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in trials_copy.rglob("*")}
    load_trials(trials_copy)
    edit(trials_copy, "outcomes.csv", lambda rows: rows[0].update(events="99"))
    snapshot = {p: p.read_bytes() for p in trials_copy.rglob("*")}
    with pytest.raises(DataValidationError):
        load_trials(trials_copy)
    assert {p: p.read_bytes() for p in trials_copy.rglob("*")} == snapshot
    assert set(before) == set(snapshot)


# --- command line -----------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True,
                          text=True, cwd=REPO, check=False)


def test_cli_validate_ok() -> None:
    result = run_cli("validate", str(FIXTURE))
    assert result.returncode == 0, result.stderr
    assert "2 studies, 5 arms, 8 outcome rows (1 derived)" in result.stdout


def test_cli_validate_reports_and_exits_1(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[0].update(events="99"))
    result = run_cli("validate", str(trials_copy))
    assert result.returncode == 1
    assert "outcomes.csv:2: column 'events' value '99': events must be <= total" in result.stderr
    assert "Traceback" not in result.stderr


# --- scale ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_ten_thousand_generated_studies_validate(tmp_path: Path) -> None:
    """Correctness at scale; the time is reported by `make bench`, not asserted here."""
    from benchmarks.generate_trials import write_generated_trials

    directory = write_generated_trials(tmp_path / "big", n_studies=10_000, seed=1)
    tables = validate_trials(directory)
    assert len(tables["studies"]) == 10_000
    assert isinstance(tables["outcomes"], pd.DataFrame)


def test_directory_descriptor_can_extend_the_outcome_vocabulary(trials_copy: Path) -> None:
    import json

    descriptor = json.loads(SUBJECT.read_text())
    edit(trials_copy, "outcomes.csv", lambda rows: rows[0].update(outcome="tuberculosis"))
    assert_problem(trials_copy, "outcomes.csv", 2, "outcome", "must be one of")
    for resource in descriptor["resources"]:
        for field in resource["schema"]["fields"]:
            if resource["name"] == "outcomes" and field["name"] == "outcome":
                field["constraints"]["enum"].append("tuberculosis")
    (trials_copy / "datapackage.json").write_text(json.dumps(descriptor))
    frame = load_trials(trials_copy)
    assert "tuberculosis" in set(frame["outcome"])


def test_directory_descriptor_must_keep_the_toolkit_columns(trials_copy: Path) -> None:
    import json

    descriptor = json.loads(SUBJECT.read_text())
    arms = next(r for r in descriptor["resources"] if r["name"] == "arms")
    arms["schema"]["fields"] = [f for f in arms["schema"]["fields"] if f["name"] != "role"]
    (trials_copy / "datapackage.json").write_text(json.dumps(descriptor))
    assert_problem(trials_copy, "datapackage.json", None, "role",
                   "resource 'arms' must define column 'role' of type 'string'")


def test_non_ascii_digits_are_not_whole_numbers(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[0].update(events="\u0668"))
    assert_problem(trials_copy, "outcomes.csv", 2, "events", "must be a whole number")


def test_a_bad_integer_cell_does_not_feed_later_rules(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[0].update(events="31.0"))
    problems = problems_of(trials_copy)
    assert any("outcomes.csv:2: column 'events'" in p and "whole number" in p
               for p in problems)
    assert not any("events must be <= total" in p for p in problems)


@pytest.mark.parametrize("breakage", ["primary_key", "foreign_key", "pattern"])
def test_broken_directory_descriptor_is_reported_not_raised(trials_copy: Path,
                                                            breakage: str) -> None:
    import json

    descriptor = json.loads(SUBJECT.read_text())
    arms = next(r for r in descriptor["resources"] if r["name"] == "arms")
    if breakage == "primary_key":
        arms["schema"]["primaryKey"] = ["study_id", "nope"]
    elif breakage == "foreign_key":
        arms["schema"]["foreignKeys"][0]["reference"]["fields"] = "nope"
    else:
        arms["schema"]["fields"][0]["constraints"]["pattern"] = "([unclosed"
    (trials_copy / "datapackage.json").write_text(json.dumps(descriptor))
    result = run_cli("validate", str(trials_copy))
    assert result.returncode == 1
    assert "datapackage.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_keys_differing_only_in_case_are_duplicates(trials_copy: Path) -> None:
    edit(trials_copy, "arms.csv", lambda rows: rows.append({**rows[0], "arm_id": "PLACEBO"}))
    assert_problem(trials_copy, "arms.csv", 7, "study_id", "duplicated key")


def test_risk_difference_in_percentage_points_is_rejected(trials_copy: Path) -> None:
    edit(trials_copy, "outcomes.csv", lambda rows: rows[7].update(
        contrast_measure="RD", estimate="21", ci_low="8", ci_high="34"))
    assert_problem(trials_copy, "outcomes.csv", 9, "estimate", "lie in [-1, 1]")
