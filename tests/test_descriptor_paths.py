"""A trials directory's descriptor names only files inside it; a malformed one gets located
messages, all at once (issue 13, item 3).

Before: a resource ``path`` of ``/etc/passwd`` or ``../../..`` was read and its first line
echoed in the error; ``fields`` as strings or ``constraints: null`` crashed with
AttributeError.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from analysis.data import validate_trials
from analysis.errors import DataValidationError

FIXTURE = Path(__file__).parent / "fixtures" / "valid_trials"
SECRET = "secret_header_never_shown,second"


@pytest.fixture
def trials(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "trials")
    (tmp_path / "secret.csv").write_text(SECRET + "\n1,2\n")
    return tmp_path / "trials"


@pytest.fixture
def reads(monkeypatch) -> list[Path]:
    """Every file read as bytes or text during the test."""
    seen: list[Path] = []
    for method in ("read_bytes", "read_text"):
        original = getattr(Path, method)

        def spy(self: Path, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            seen.append(self.resolve())
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Path, method, spy)
    return seen


def _edit(trials: Path, change: Any) -> None:
    path = trials / "datapackage.json"
    descriptor = json.loads(path.read_text())
    change(descriptor)
    path.write_text(json.dumps(descriptor))


def _problems(trials: Path) -> str:
    with pytest.raises(DataValidationError) as caught:
        validate_trials(trials)
    return str(caught.value)


def _set_path(value: Any) -> Any:
    def change(descriptor: dict[str, Any]) -> None:
        descriptor["resources"][0]["path"] = value
    return change


@pytest.mark.parametrize(("path", "rule"), [
    ("/etc/passwd", "not an absolute path"),
    ("SECRET_ABSOLUTE", "not an absolute path"),
    ("../secret.csv", "must not contain '..'"),
    ("../../../../../../etc/passwd", "must not contain '..'"),
    ("sub/../../secret.csv", "must not contain '..'"),
    ("https://example.org/studies.csv", "not a URL"),
    ("file:///etc/passwd", "not a URL"),
    ("C:\\secret.csv", "not a URL or a drive"),
    ("..\\secret.csv", "use '/' between folder names"),
    (["studies.csv", "more.csv"], "a list of paths is not supported"),
    (7, "must be a non-empty string"),
    ("", "must be a non-empty string"),
    ("stu\x00dies.csv", "NUL"),
])
def test_a_path_outside_the_directory_is_rejected_unread(trials: Path, reads: list[Path],
                                                         path: Any, rule: str) -> None:
    secret = (trials.parent / "secret.csv").resolve()
    _edit(trials, _set_path(str(secret) if path == "SECRET_ABSOLUTE" else path))
    message = _problems(trials)
    assert "datapackage.json" in message and "resources[0] ('studies') key 'path'" in message
    assert rule in message and "the file was not read" in message
    assert SECRET.split(",")[0] not in message and "root:" not in message
    assert secret not in reads and Path("/etc/passwd") not in reads
    assert not any(p.name == "studies.csv" for p in reads)  # no table is read at all


def test_a_symlink_leading_out_is_rejected_unread(trials: Path, reads: list[Path]) -> None:
    (trials / "studies.csv").unlink()
    (trials / "studies.csv").symlink_to(trials.parent / "secret.csv")
    (trials / "datapackage.json").unlink()  # the core descriptor's paths are checked too
    message = _problems(trials)
    assert "studies.csv: is a symbolic link that leads out of the trials directory" in message
    assert SECRET.split(",")[0] not in message
    assert (trials.parent / "secret.csv").resolve() not in reads


def test_a_symlinked_folder_leading_out_is_rejected(trials: Path) -> None:
    outside = trials.parent / "elsewhere"
    outside.mkdir()
    shutil.copy(trials / "studies.csv", outside / "studies.csv")
    (trials / "linked").symlink_to(outside)
    _edit(trials, _set_path("linked/studies.csv"))
    assert "leads out of the trials directory" in _problems(trials)


def test_a_symlink_inside_the_directory_and_a_subfolder_are_allowed(trials: Path) -> None:
    (trials / "tables").mkdir()
    shutil.move(trials / "studies.csv", trials / "tables" / "studies.csv")
    (trials / "studies.csv").symlink_to(trials / "tables" / "studies.csv")
    assert len(validate_trials(trials)["studies"]) == 2
    _edit(trials, _set_path("tables/studies.csv"))
    assert len(validate_trials(trials)["studies"]) == 2


def _field(descriptor: dict[str, Any], name: str) -> dict[str, Any]:
    fields = descriptor["resources"][0]["schema"]["fields"]
    return next(f for f in fields if f["name"] == name)


MALFORMED = {
    "fields as strings": (
        lambda d: d["resources"][0]["schema"].update(fields=["study_id", "year"]),
        ["resources[0] ('studies') field 0: must be an object with 'name' and 'type'",
         "resources[0] ('studies') field 1: must be an object"]),
    "constraints null": (
        lambda d: _field(d, "year").update(constraints=None),
        ["value 'null': resources[0] ('studies') field 3 ('year') key 'constraints': must be "
         "an object (leave it out for none)"]),
    "constraints a list": (
        lambda d: _field(d, "year").update(constraints=["required"]),
        ["field 3 ('year') key 'constraints'", "must be an object"]),
    "missing schema": (
        lambda d: d["resources"][1].pop("schema"),
        ["resources[1] ('arms') key 'schema': must be an object with a list of 'fields'"]),
    "schema a string": (
        lambda d: d["resources"][1].update(schema="arms.json"),
        ["value 'arms.json': resources[1] ('arms') key 'schema'"]),
    "fields missing": (
        lambda d: d["resources"][2]["schema"].pop("fields"),
        ["resources[2] ('outcomes') schema key 'fields': must be a non-empty list"]),
    "type wrong": (
        lambda d: _field(d, "country").update(type=12),
        ["value '12': resources[0] ('studies') field 4 ('country') key 'type': must be one of"]),
    "type unknown": (
        lambda d: _field(d, "country").update(type="nubmer"),
        ["value 'nubmer'", "key 'type': must be one of ['string', 'number', 'integer', "
         "'boolean']"]),
    "type missing": (
        lambda d: _field(d, "country").pop("type"),
        ["field 4 ('country') key 'type': must be one of"]),
    "name missing": (
        lambda d: _field(d, "country").pop("name"),
        ["resources[0] ('studies') field 4 key 'name': must be a non-empty string"]),
    "name duplicated": (
        lambda d: _field(d, "country").update(name="year"),
        ["field 4 key 'name': names a column already defined"]),
    "minimum a string": (
        lambda d: _field(d, "year")["constraints"].update(minimum="1900"),
        ["value '1900'", "constraints key 'minimum': must be a number"]),
    "required a string": (
        lambda d: _field(d, "year")["constraints"].update(required="yes"),
        ["constraints key 'required': must be true or false"]),
    "enum a string": (
        lambda d: _field(d, "design")["constraints"].update(enum="open-label"),
        ["constraints key 'enum': must be a non-empty list"]),
    "pattern a number": (
        lambda d: _field(d, "study_id")["constraints"].update(pattern=5),
        ["constraints key 'pattern': must be a string"]),
    "trueValues a string": (
        lambda d: next(f for f in d["resources"][2]["schema"]["fields"]
                       if "trueValues" in f).update(trueValues="yes"),
        ["key 'trueValues': must be a list of strings"]),
    "primaryKey a number": (
        lambda d: d["resources"][0]["schema"].update(primaryKey=5),
        ["value '5': resources[0] ('studies') schema key 'primaryKey'"]),
    "foreignKeys a string": (
        lambda d: d["resources"][1]["schema"].update(foreignKeys="studies"),
        ["resources[1] ('arms') schema key 'foreignKeys': must be a list"]),
    "foreignKey without reference": (
        lambda d: d["resources"][1]["schema"].update(foreignKeys=[{"fields": "study_id"}]),
        ["resources[1] ('arms') foreignKeys[0]: must be"]),
    "rule field a list": (
        lambda d: d["resources"][1]["schema"].update(
            rules=[{"rule": "at_most", "field": ["dose_target_mg_day"], "than": "x"}]),
        ["resources[1] ('arms') rules[0]: must be an object whose"]),
    "resource a string": (
        lambda d: d["resources"].append("risk_of_bias.csv"),
        ["value 'risk_of_bias.csv': resources[4]: must be an object"]),
    "resource name duplicated": (
        lambda d: d["resources"][3].update(name="arms"),
        ["value 'arms': resources[3] key 'name': names a resource already defined"]),
    "resources an object": (
        lambda d: d.update(resources={"studies": "studies.csv"}),
        ["datapackage.json: value '{\"studies\": \"studies.csv\"}': key 'resources': must be "
         "a list"]),
    "resources missing": (
        lambda d: d.pop("resources"),
        ["datapackage.json: key 'resources': must be a list of resource objects"]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_descriptor_gets_a_located_message(trials: Path, case: str) -> None:
    change, expected = MALFORMED[case]
    _edit(trials, change)
    message = _problems(trials)  # a DataValidationError, never another exception
    for text in expected:
        assert text in message, message


def test_a_descriptor_that_is_not_an_object(trials: Path) -> None:
    (trials / "datapackage.json").write_text("[1, 2]")
    assert "datapackage.json: value '[1, 2]': key 'resources'" in _problems(trials)


def test_every_descriptor_problem_is_listed_at_once(trials: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        d["resources"][0]["path"] = "/etc/passwd"
        _field(d, "year").update(constraints=None)
        d["resources"][1]["schema"].update(fields=["arm_id"])
        d["resources"][2].pop("schema")
        d["resources"][3]["path"] = "../secret.csv"

    _edit(trials, change)
    with pytest.raises(DataValidationError) as caught:
        validate_trials(trials)
    rules = [p.rule for p in caught.value.problems]
    assert len(rules) == 5, rules
    assert [r.split(":")[0] for r in rules] == [
        "resources[0] ('studies') key 'path'",
        "resources[0] ('studies') field 3 ('year') key 'constraints'",
        "resources[1] ('arms') field 0",
        "resources[2] ('outcomes') key 'schema'",
        "resources[3] ('risk_of_bias') key 'path'",
    ]


def test_a_core_enum_holding_a_list_is_a_located_problem(tmp_path: Path) -> None:
    # fuzz finding (FUZZ_RANDOM=1): an 'enum' whose first value is a list raised
    # TypeError: unhashable type: 'list' instead of naming the column
    import json
    import shutil

    from analysis.data import validate_trials
    from analysis.errors import DataValidationError

    trials = tmp_path / "trials"
    shutil.copytree(Path(__file__).parents[1] / "trials", trials)
    descriptor = json.loads((trials / "datapackage.json").read_text(encoding="utf-8"))
    edited = 0
    for resource in descriptor["resources"]:
        for field in resource["schema"]["fields"]:
            if isinstance(field.get("constraints", {}).get("enum"), list):
                field["constraints"]["enum"][0] = []  # the fuzz case: a list as a value
                edited += 1
    assert edited
    (trials / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    with pytest.raises(DataValidationError) as caught:
        validate_trials(trials)
    assert "must allow only values" in str(caught.value) or "enum" in str(caught.value)


def test_a_within_if_rule_with_list_values_is_a_located_problem(tmp_path: Path) -> None:
    # fuzz finding: "in": [[]] reached pandas' isin and raised "truth value of an empty array"
    trials = tmp_path / "trials"
    shutil.copytree(Path(__file__).parents[1] / "trials", trials)
    descriptor = json.loads((trials / "datapackage.json").read_text(encoding="utf-8"))
    edited = 0
    for resource in descriptor["resources"]:
        for rule in resource["schema"].get("rules", []):
            if rule.get("rule") == "within_if":
                rule["if"]["in"] = [[]]
                edited += 1
    assert edited
    (trials / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    with pytest.raises(DataValidationError) as caught:
        validate_trials(trials)
    assert "within_if" in str(caught.value) and "strings or numbers" in str(caught.value)
