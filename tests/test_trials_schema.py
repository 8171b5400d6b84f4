"""The domain-neutral trials layout: the core schema, subject descriptors and their checks.

A trials directory is read with its own ``datapackage.json`` (a subject descriptor) when it
has one, else with the core schema ``analysis/data/datapackage.json``, which knows no
subject. ``tests/fixtures/bcg_trials`` (the BCG vaccine trials, metafor's ``dat.bcg``) has
the core layout only; ``tests/fixtures/valid_trials`` carries the shipped baclofen
descriptor.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_data import read_rows, write_rows
from tolerances import CLOSED_FORM_FIXTURE

import analysis as ma
from analysis.data.schema import datapackage_descriptor
from analysis.errors import DataValidationError, Problem

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
BCG = TESTS / "fixtures" / "bcg_trials"
FIXTURE = TESTS / "fixtures" / "valid_trials"
SUBJECT = REPO / "trials" / "datapackage.json"
#: The baclofen fields of the shipped descriptor, which the core must not know.
SUBJECT_FIELDS = {
    "studies": {"liver_disease", "detoxified", "psychosocial"},
    "arms": {"regimen", "dose_target_mg_day", "dose_max_mg_day", "dose_mean_mg_day"},
}
#: metafor's dat.bcg order of the trials (the order of the reference values).
BCG_ORDER = ["Aronson1948", "Ferguson1949", "Rosenthal1960", "Hart1977", "FrimodtMoller1973",
             "Stein1953", "Vandiviere1973", "TPTMadras1980", "Coetzee1968", "Rosenthal1961",
             "Comstock1974", "ComstockWebster1969", "Comstock1976"]


def fields(descriptor: dict[str, Any], resource: str) -> dict[str, dict[str, Any]]:
    schema = next(r for r in descriptor["resources"] if r["name"] == resource)["schema"]
    return {f["name"]: f for f in schema["fields"]}


def schema_of(descriptor: dict[str, Any], resource: str) -> dict[str, Any]:
    return next(r for r in descriptor["resources"] if r["name"] == resource)["schema"]


def problems_of(directory: Path) -> list[Problem]:
    with pytest.raises(DataValidationError) as info:
        ma.validate_trials(directory)
    return info.value.problems


def has_problem(problems: list[Problem], file: str, column: str | None, rule_part: str) -> bool:
    return any(p.file == file and p.column == column and rule_part in p.rule for p in problems)


def add_column(path: Path, column: str, values: dict[str, str]) -> None:
    """Add ``column`` to a CSV, its value per ``study_id`` (empty when not given)."""
    header, rows = read_rows(path)
    write_rows(path, [*header, column],
               [{**row, column: values.get(row["study_id"], "")} for row in rows])


@pytest.fixture
def bcg_copy(tmp_path: Path) -> Path:
    target = tmp_path / "bcg"
    shutil.copytree(BCG, target)
    return target


@pytest.fixture
def subject_copy(tmp_path: Path) -> Path:
    target = tmp_path / "trials"
    shutil.copytree(FIXTURE, target)
    return target


# --- the core and the shipped subject descriptor ---------------------------------------------

def test_core_descriptor_knows_no_subject() -> None:
    core = datapackage_descriptor()
    for resource, subject in SUBJECT_FIELDS.items():
        assert not subject & set(fields(core, resource)), resource
    outcome = fields(core, "outcomes")["outcome"]
    assert "enum" not in outcome.get("constraints", {})
    assert all("rules" not in r["schema"] for r in core["resources"])
    text = json.dumps(core).lower()
    for word in ("baclofen", "alcohol", "mg/day", "detox", "abstinence"):
        assert word not in text, word


def test_shipped_descriptor_is_the_core_plus_the_subject() -> None:
    core, subject = datapackage_descriptor(), json.loads(SUBJECT.read_text(encoding="utf-8"))
    for resource in ("studies", "arms", "outcomes"):
        theirs = fields(subject, resource)
        for name, field in fields(core, resource).items():
            assert theirs[name]["type"] == field["type"], (resource, name)
        extra = set(theirs) - set(fields(core, resource))
        assert extra == SUBJECT_FIELDS.get(resource, set()), resource
    assert "enum" in fields(subject, "outcomes")["outcome"]["constraints"]


def test_cli_datapackage_writes_the_core(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "analysis", "datapackage", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "datapackage.json").read_text(encoding="utf-8"))
    assert written == datapackage_descriptor()


# --- a core-only dataset: the BCG trials ------------------------------------------------------

def test_bcg_trials_load_with_the_core_schema() -> None:
    trials = ma.load_trials(BCG)
    assert len(trials) == 26
    assert set(trials["study_id"]) == set(BCG_ORDER)
    for subject in SUBJECT_FIELDS.values():
        assert not subject & set(trials.columns)
    assert trials.attrs["outcome_vocabulary"] == ("tuberculosis",)


def test_bcg_contrasts_equal_metafor_escalc_rr() -> None:
    reference = json.loads((TESTS / "reference" / "metafor_reference.json").read_text())
    case = next(c for c in reference["cases"] if c["id"] == "bcg/escalc/RR/default")
    frame = ma.contrasts(ma.load_trials(BCG), outcome="tuberculosis", measure="RR",
                         comparator=None).set_index("study_id").loc[BCG_ORDER]
    np.testing.assert_array_equal(frame["events_t"], case["input"]["ai"])
    np.testing.assert_array_equal(frame["n_t"], case["input"]["n1i"])
    np.testing.assert_array_equal(frame["events_c"], case["input"]["ci"])
    np.testing.assert_array_equal(frame["n_c"], case["input"]["n2i"])
    np.testing.assert_allclose(frame["yi"], case["expected"]["yi"], rtol=CLOSED_FORM_FIXTURE)
    np.testing.assert_allclose(frame["vi"], case["expected"]["vi"], rtol=CLOSED_FORM_FIXTURE)
    assert not {"dose_target_mg_day", "detoxified", "regimen"} & set(frame.columns)


def test_bcg_unknown_outcome_is_refused_with_the_codes_present() -> None:
    with pytest.raises(ValueError, match="'tuberculosis'"):
        ma.contrasts(ma.load_trials(BCG), outcome="abstinence", measure="RR")


def test_subject_rules_do_not_apply_to_a_core_only_dataset() -> None:
    """Treatment arms without a dose: the shipped subject's rule must not fire."""
    tables = ma.validate_trials(BCG)
    treatment = tables["arms"][tables["arms"]["role"] == "treatment"]
    assert len(treatment) == 13
    assert "dose_target_mg_day" not in tables["arms"].columns


def test_cli_validates_a_core_only_dataset() -> None:
    result = subprocess.run([sys.executable, "-m", "analysis", "validate", str(BCG)],
                            capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr
    assert "13 studies, 26 arms, 26 outcome rows (26 derived)" in result.stdout


def test_core_rules_still_apply_to_a_core_only_dataset(bcg_copy: Path) -> None:
    path = bcg_copy / "outcomes.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace(",binary,4,123,", ",binary,124,123,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = problems_of(bcg_copy)
    assert has_problem(problems, "outcomes.csv", "events", "events must be <= total")


def test_undeclared_column_in_a_core_only_dataset_is_reported(bcg_copy: Path) -> None:
    add_column(bcg_copy / "studies.csv", "ablat", {"Aronson1948": "44"})
    problems = problems_of(bcg_copy)
    assert has_problem(problems, "studies.csv", "ablat", "datapackage.json")


def test_own_descriptor_adds_a_field_and_a_vocabulary(bcg_copy: Path) -> None:
    descriptor = datapackage_descriptor()
    schema_of(descriptor, "studies")["fields"].append(
        {"name": "ablat", "type": "number", "description": "Absolute latitude of the site.",
         "unit": "degrees", "constraints": {"minimum": 0, "maximum": 90}})
    fields(descriptor, "outcomes")["outcome"]["constraints"]["enum"] = [
        "tuberculosis", "tuberculosis_death"]
    (bcg_copy / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    add_column(bcg_copy / "studies.csv", "ablat", {"Aronson1948": "44", "Ferguson1949": "95"})
    problems = problems_of(bcg_copy)
    assert has_problem(problems, "studies.csv", "ablat", "must be <= 90")
    shutil.copy(BCG / "studies.csv", bcg_copy / "studies.csv")
    add_column(bcg_copy / "studies.csv", "ablat", {"Aronson1948": "44", "Ferguson1949": "55"})
    trials = ma.load_trials(bcg_copy)
    assert trials.loc[trials["study_id"] == "Ferguson1949", "ablat"].iloc[0] == 55.0
    assert trials["ablat"].dtype == "float64"
    assert trials.attrs["outcome_vocabulary"] == ("tuberculosis", "tuberculosis_death")
    empty = ma.contrasts(trials, outcome="tuberculosis_death", measure="RR")
    assert empty.empty


# --- a subject descriptor must keep the core --------------------------------------------------

def _drop_field(descriptor: dict[str, Any]) -> None:
    schema = schema_of(descriptor, "outcomes")
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "source_location"]


def _change_type(descriptor: dict[str, Any]) -> None:
    fields(descriptor, "arms")["n_randomised"]["type"] = "string"


def _not_required(descriptor: dict[str, Any]) -> None:
    del fields(descriptor, "outcomes")["source"]["constraints"]["required"]


def _wider_enum(descriptor: dict[str, Any]) -> None:
    fields(descriptor, "arms")["role"]["constraints"]["enum"].append("observer")


def _other_key(descriptor: dict[str, Any]) -> None:
    schema_of(descriptor, "arms")["primaryKey"] = ["arm_id", "study_id", "intervention"]


def _no_resource(descriptor: dict[str, Any]) -> None:
    descriptor["resources"] = [r for r in descriptor["resources"] if r["name"] != "outcomes"]


@pytest.mark.parametrize(("breakage", "column", "rule_part"), [
    (_drop_field, "source_location",
     "resource 'outcomes' must define column 'source_location' of type 'string'"),
    (_change_type, "n_randomised", "resource 'arms' must define column 'n_randomised' of type"),
    (_not_required, "source", "resource 'outcomes' column 'source' must be required"),
    (_wider_enum, "role", "resource 'arms' column 'role' must allow only values among"),
    (_other_key, None, "resource 'arms' must keep the core primaryKey"),
    (_no_resource, None, "resource 'outcomes' of the core schema is missing"),
], ids=["missing-field", "type", "required", "enum", "primary-key", "resource"])
def test_subject_descriptor_must_keep_the_core(subject_copy: Path, breakage: Any,
                                               column: str | None, rule_part: str) -> None:
    descriptor = json.loads(SUBJECT.read_text(encoding="utf-8"))
    breakage(descriptor)
    (subject_copy / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    with pytest.raises(DataValidationError) as info:
        ma.load_trials(subject_copy)
    problems = info.value.problems
    assert has_problem(problems, "datapackage.json", column, rule_part), problems
    assert str(subject_copy) in str(info.value)
    # the descriptor is unusable, so only its own problems are listed, not every row
    assert all(p.file == "datapackage.json" for p in problems)


def test_subject_descriptor_may_narrow_core_values(subject_copy: Path) -> None:
    descriptor = json.loads(SUBJECT.read_text(encoding="utf-8"))
    fields(descriptor, "outcomes")["analysis_set"]["constraints"]["enum"] = ["ITT", "other"]
    (subject_copy / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    assert len(ma.load_trials(subject_copy)) == 8


# --- row rules declared by a descriptor -------------------------------------------------------

def test_shipped_dose_rules_come_from_the_descriptor(subject_copy: Path) -> None:
    path = subject_copy / "arms.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    line = next(i for i, row in enumerate(lines) if row.startswith("Alpha2001,drug30,"))
    lines[line] = lines[line].replace(",fixed,30,30,", ",fixed,,30,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = problems_of(subject_copy)
    assert has_problem(problems, "arms.csv", "dose_target_mg_day",
                       "every treatment arm needs a dose")
    descriptor = json.loads(SUBJECT.read_text(encoding="utf-8"))
    del schema_of(descriptor, "arms")["rules"]
    (subject_copy / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    ma.validate_trials(subject_copy)


def test_a_declared_rule_applies_to_another_subject(bcg_copy: Path) -> None:
    descriptor = datapackage_descriptor()
    schema_of(descriptor, "studies")["rules"] = [
        {"rule": "at_most", "field": "treatment_weeks", "than": "followup_weeks"}]
    schema_of(descriptor, "arms")["rules"] = [
        {"rule": "required_if", "field": "n_randomised",
         "if": {"field": "role", "equals": "control"}}]
    (bcg_copy / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    path = bcg_copy / "studies.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace(",,,,0,,,,", ",,,,3,2,,,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = problems_of(bcg_copy)
    assert any(p.file == "studies.csv" and p.line == 2 and p.column == "treatment_weeks"
               and p.rule == "must be <= followup_weeks (followup_weeks = 2)" for p in problems)
    missing = [p for p in problems if p.file == "arms.csv"]
    assert len(missing) == 13
    assert missing[0].rule == "a value is required when role is 'control'"
    assert missing[0].line == 3


@pytest.mark.parametrize(("rule", "column"), [
    ({"rule": "unique_if", "field": "arm_id"}, None),
    ({"rule": "required_if", "field": "dose", "if": {"field": "role", "equals": "x"}}, "dose"),
    ({"rule": "required_if", "field": "arm_id", "if": {"field": "nope", "equals": "x"}},
     "arm_id"),
    ({"rule": "at_most", "field": "intervention", "than": "n_randomised"}, "intervention"),
], ids=["unknown-rule", "unknown-field", "unknown-condition", "not-numeric"])
def test_a_bad_rule_declaration_is_reported(bcg_copy: Path, rule: dict[str, Any],
                                            column: str | None) -> None:
    descriptor = datapackage_descriptor()
    schema_of(descriptor, "arms")["rules"] = [rule]
    (bcg_copy / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    problems = problems_of(bcg_copy)
    assert any(p.file == "datapackage.json" and p.column == column and "rule" in p.rule
               and "'arms'" in p.rule for p in problems), problems


def test_frictionless_agrees_the_bcg_package_is_valid(tmp_path: Path) -> None:
    frictionless = pytest.importorskip("frictionless")
    target = tmp_path / "pkg"
    shutil.copytree(BCG, target)
    shutil.copy(REPO / "analysis" / "data" / "datapackage.json", target / "datapackage.json")
    report = frictionless.validate(str(target / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])


# --- percentage outcomes (issue 13): the descriptor's within_if rule -------------------------


@pytest.mark.parametrize("value", ["150", "-20"])
def test_percentage_outcome_outside_0_100_is_located(subject_copy: Path, value: str) -> None:
    path = subject_copy / "outcomes.csv"
    header, rows = read_rows(path)
    line = next(i for i, row in enumerate(rows) if row["outcome"] == "percent_days_abstinent")
    rows[line]["mean"] = value
    write_rows(path, header, rows)
    problems = problems_of(subject_copy)
    hits = [p for p in problems if p.column == "mean" and "between 0 and 100" in p.rule]
    assert len(hits) == 1, problems
    assert hits[0].file == "outcomes.csv" and hits[0].line == line + 2
    assert hits[0].value == value and "percent_days_abstinent" in hits[0].rule


def test_percentage_rule_is_declared_by_the_subject_not_the_core() -> None:
    core = json.loads((REPO / "analysis" / "data" / "datapackage.json").read_text("utf-8"))
    assert "within_if" not in json.dumps(core)
    shipped = json.loads(SUBJECT.read_text("utf-8"))
    assert any(r["rule"] == "within_if" for r in schema_of(shipped, "outcomes")["rules"])


def test_malformed_within_if_rule_is_reported(subject_copy: Path) -> None:
    path = subject_copy / "datapackage.json"
    descriptor = json.loads(path.read_text("utf-8"))
    schema_of(descriptor, "outcomes")["rules"][0]["minimum"] = "zero"
    path.write_text(json.dumps(descriptor), encoding="utf-8")
    problems = problems_of(subject_copy)
    assert any("within_if" in p.rule and "minimum" in p.rule for p in problems), problems
