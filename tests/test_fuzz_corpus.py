"""The corpus of hostile inputs of issue 13: every concrete case of its "Why" list and more.

Each case prepares a project (the synthetic fixture plus ``plan.toml``) in a temporary
folder, breaks one thing, runs one ``python -m analysis`` command in-process and checks the
bar of :mod:`fuzz_bar`: success where the input is valid, else a located, one-screen message
without a traceback, exit code 1 or 2, the output folder unchanged and the inputs unchanged.
The parametrised ids report each case; ``-rA`` lists them. A few cases also run as real
subprocesses (``test_subprocess_...``) to see what a user at a terminal sees.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fuzz_bar import check_command, make_project

REPO = Path(__file__).resolve().parent.parent
LONG = 131_073  # one more than Python's default csv.field_size_limit


def _set_cell(path: Path, row: int, column: str, value: str) -> None:
    """Set one cell (row 0 = first data row) and write the file back as proper CSV."""
    with path.open(encoding="utf-8", newline="") as handle:
        records = list(csv.reader(handle))
    records[row + 1][records[0].index(column)] = value
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(records)


def _descriptor(root: Path) -> dict:
    return json.loads((root / "trials" / "datapackage.json").read_text(encoding="utf-8"))


def _write_descriptor(root: Path, descriptor: dict) -> None:
    (root / "trials" / "datapackage.json").write_text(json.dumps(descriptor, indent=2),
                                                     encoding="utf-8")


def _plan_replace(root: Path, old: str, new: str) -> None:
    plan = root / "plan.toml"
    text = plan.read_text(encoding="utf-8")
    assert old in text
    plan.write_text(text.replace(old, new), encoding="utf-8")


@dataclass(frozen=True)
class Case:
    """One hostile input: how to make it, what to run, what the message must name."""

    id: str
    prepare: Callable[[Path, pytest.MonkeyPatch], None]
    command: str = "validate"  # validate | tables | figures | table | report | makefile
    expect: str = "error"  # "error" or "ok"
    names: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()  # phrases the message (or the output) must hold
    absent: tuple[str, ...] = ()  # phrases it must not hold (leaked file contents)
    marks: tuple = ()


def _argv(case: Case, root: Path) -> list[str]:
    plan, out = str(root / "plan.toml"), root / "out"
    return {
        "validate": ["validate", str(root / "trials")],
        "tables": ["tables", "--plan", plan, "--outdir", str(out / "tables")],
        "figures": ["figures", "--plan", plan, "--analysis", "abstinence",
                    "--outdir", str(out / "figures")],
        "table": ["table", "characteristics", "--trials", str(root / "trials"),
                  "--out", str(out / "tables" / "characteristics")],
        "report": ["report", "--plan", plan, "--figures", str(out / "figures"),
                   "--out", str(out / "figures" / "report.html")],
        "makefile": ["makefile", "--plan", plan, "--out", str(out / "plan.mk")],
        "bad-analysis": ["figures", "--plan", plan, "--analysis", "no_such_analysis",
                         "--outdir", str(out / "figures")],
        "bad-format": ["table", "characteristics", "--trials", str(root / "trials"),
                       "--out", str(out / "x"), "--formats", "pdf"],
        "report-over-plan": ["report", "--plan", plan, "--figures", str(out / "none"),
                             "--out", plan],
    }[case.command]


# --- the preparations ------------------------------------------------------------------

def _nothing(root: Path, mp: pytest.MonkeyPatch) -> None:
    """The valid fixture."""


def _cell(file: str, column: str, value: str, row: int = 0):
    def prepare(root: Path, mp: pytest.MonkeyPatch) -> None:
        _set_cell(root / "trials" / file, row, column, value)
    return prepare


def _long_cell_and_another_error(root: Path, mp: pytest.MonkeyPatch) -> None:
    _set_cell(root / "trials" / "studies.csv", 1, "year", "not a year")
    _set_cell(root / "trials" / "studies.csv", 0, "notes", "x" * LONG)


def _long_number_cell(root: Path, mp: pytest.MonkeyPatch) -> None:
    _set_cell(root / "trials" / "arms.csv", 0, "n_randomised", "9" * LONG)


def _delimited(file: str, delimiter: str):
    def prepare(root: Path, mp: pytest.MonkeyPatch) -> None:
        path = root / "trials" / file
        with path.open(encoding="utf-8", newline="") as handle:
            records = list(csv.reader(handle))
        with path.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, delimiter=delimiter, lineterminator="\n").writerows(records)
    return prepare


def _directory_as(file: str):
    def prepare(root: Path, mp: pytest.MonkeyPatch) -> None:
        path = root / "trials" / file
        path.unlink()
        path.mkdir()
    return prepare


def _fifo_as(file: str):
    def prepare(root: Path, mp: pytest.MonkeyPatch) -> None:
        path = root / "trials" / file
        path.unlink()
        os.mkfifo(path)
    return prepare


def _unreadable(file: str):
    """Reading ``file`` raises PermissionError (root ignores file modes, so simulated)."""
    def prepare(root: Path, mp: pytest.MonkeyPatch) -> None:
        real = pathlib.Path.read_bytes

        def read_bytes(self: Path) -> bytes:
            if self.name == file:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)
        mp.setattr(pathlib.Path, "read_bytes", read_bytes)
    return prepare


def _resource_path(value: str):
    def prepare(root: Path, mp: pytest.MonkeyPatch) -> None:
        descriptor = _descriptor(root)
        descriptor["resources"][0]["path"] = value
        _write_descriptor(root, descriptor)
    return prepare


def _fields_as_strings(root: Path, mp: pytest.MonkeyPatch) -> None:
    descriptor = _descriptor(root)
    schema = descriptor["resources"][1]["schema"]
    schema["fields"] = [field["name"] for field in schema["fields"]]
    _write_descriptor(root, descriptor)


def _constraints_null(root: Path, mp: pytest.MonkeyPatch) -> None:
    descriptor = _descriptor(root)
    descriptor["resources"][0]["schema"]["fields"][0]["constraints"] = None
    _write_descriptor(root, descriptor)


def _descriptor_directory(root: Path, mp: pytest.MonkeyPatch) -> None:
    (root / "trials" / "datapackage.json").unlink()
    (root / "trials" / "datapackage.json").mkdir()


def _plan_text(text: str | bytes):
    def prepare(root: Path, mp: pytest.MonkeyPatch) -> None:
        path = root / "plan.toml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    return prepare


def _plan_edit(old: str, new: str):
    def prepare(root: Path, mp: pytest.MonkeyPatch) -> None:
        _plan_replace(root, old, new)
    return prepare


def _plan_missing(root: Path, mp: pytest.MonkeyPatch) -> None:
    (root / "plan.toml").unlink()


def _plan_directory(root: Path, mp: pytest.MonkeyPatch) -> None:
    (root / "plan.toml").unlink()
    (root / "plan.toml").mkdir()


def _read_only_output(folder: str, fail_at: int = 1):
    """The ``fail_at``-th temporary file in ``out/folder`` fails with EACCES (a read-only
    folder as root must be simulated). Stale outputs are there before, to see they stay."""
    def prepare(root: Path, mp: pytest.MonkeyPatch) -> None:
        target = root / "out" / folder
        target.mkdir(parents=True)
        (target / "stale.csv").write_text("old\n")
        real = tempfile.mkstemp
        calls = {"n": 0}

        def mkstemp(*args, **kwargs):
            if Path(kwargs.get("dir", "")) == target:
                calls["n"] += 1
                if calls["n"] >= fail_at:
                    raise PermissionError(13, "Permission denied", str(target))
            return real(*args, **kwargs)
        mp.setattr(tempfile, "mkstemp", mkstemp)
    return prepare


def _output_is_a_file(folder: str):
    def prepare(root: Path, mp: pytest.MonkeyPatch) -> None:
        (root / "out").mkdir()
        (root / "out" / folder).write_text("a file where a folder should be\n")
    return prepare


def _grade_not_utf8(root: Path, mp: pytest.MonkeyPatch) -> None:
    (root / "trials" / "grade.csv").write_bytes(b"analysis_id,reasons\nabstinence,caf\xe9\n")


def _percentage(value: str):
    return _cell("outcomes.csv", "mean", value, row=2)


CASES = [
    Case("valid fixture", _nothing, expect="ok"),
    Case("valid fixture: tables", _nothing, command="tables", expect="ok"),
    # Text from the CSVs reaching matplotlib's maths parser
    Case("author Addo$\\frac$lorato: figures", _cell("studies.csv", "first_author",
         "Addo$\\frac$lorato"), command="figures", expect="ok"),
    Case("author Addo$x_1$lorato: figures", _cell("studies.csv", "first_author",
         "Addo$x_1$lorato"), command="figures", expect="ok"),
    # Security of inputs and outputs
    Case("resource path /etc/passwd", _resource_path("/etc/passwd"),
         names=("datapackage.json",), absent=("root:x:0",)),
    Case("resource path ../../../etc/passwd", _resource_path("../../../etc/passwd"),
         names=("datapackage.json",), absent=("root:x:0",)),
    Case("country =cmd|' /C calc'!A0 in the CSV table", _cell(
         "studies.csv", "country", "=cmd|' /C calc'!A0"), command="table", expect="ok",
         contains=("'=cmd|",)),
    Case("descriptor fields as strings", _fields_as_strings, names=("datapackage.json",)),
    Case("descriptor constraints null", _constraints_null, names=("datapackage.json",),
         contains=("constraints",)),
    Case("datapackage.json is a directory", _descriptor_directory,
         names=("datapackage.json",), contains=("is a directory",)),
    # Tracebacks where a message belongs
    Case("cell of 131,073 characters (and a bad year)", _long_cell_and_another_error,
         names=("studies.csv:2",), contains=("cell longer than 131,072 characters",
                                             "studies.csv:3: column 'year'")),
    Case("number cell of 131,073 digits", _long_number_cell, names=("arms.csv:2",),
         contains=("cell longer than 131,072 characters",)),
    Case("semicolon-separated arms.csv", _delimited("arms.csv", ";"), names=("arms.csv",),
         contains=("semicolon-separated", "comma-separated")),
    Case("tab-separated outcomes.csv", _delimited("outcomes.csv", "\t"),
         names=("outcomes.csv",), contains=("tab-separated",)),
    Case("directory where arms.csv should be", _directory_as("arms.csv"),
         names=("arms.csv",), contains=("is a directory",)),
    Case("directory where risk_of_bias.csv (optional) should be",
         _directory_as("risk_of_bias.csv"), names=("risk_of_bias.csv",),
         contains=("is a directory",)),
    Case("FIFO where studies.csv should be", _fifo_as("studies.csv"),
         names=("studies.csv",), contains=("FIFO",)),
    Case("unreadable outcomes.csv (PermissionError)", _unreadable("outcomes.csv"),
         names=("outcomes.csv",), contains=("Permission denied",)),
    Case("unreadable studies.csv through the plan", _unreadable("studies.csv"),
         command="tables", names=("studies.csv",), contains=("Permission denied",)),
    Case("bad TOML syntax", _plan_text('[report\ntitle = "x"\n'), command="tables",
         names=("plan.toml",), contains=("line 1, column",)),
    Case("plan not UTF-8", _plan_text(b'[report]\ntitle = "caf\xe9"\n'), command="tables",
         names=("plan.toml",), contains=("UTF-8",)),
    Case("unknown measure", _plan_edit('measure = "OR"', 'measure = "XX"'),
         command="tables", names=("measure",)),
    Case("unknown method", _plan_edit('method = "REML"', 'method = "REMLX"'),
         command="figures", names=("[report].method",)),
    Case("missing plan", _plan_missing, command="makefile", names=("plan.toml",)),
    Case("plan is a directory", _plan_directory, command="tables", names=("plan.toml",)),
    Case("plan names a missing trials directory", _plan_edit('trials = "trials"',
         'trials = "no_such_trials"'), command="tables", names=("[report].trials",)),
    Case("read-only figures/", _read_only_output("figures"), command="figures",
         names=("figures",), contains=("Permission denied",)),
    Case("tables/ read-only from its 10th file on", _read_only_output("tables", 10),
         command="tables", names=("tables",), contains=("Permission denied",)),
    Case("figures/ is a file", _output_is_a_file("figures"), command="figures",
         names=("figures",), contains=("not a folder",)),
    Case("table --out inside a file", _output_is_a_file("tables"), command="table",
         names=("tables",)),
    Case("report with its figures not drawn", _nothing, command="report",
         names=("forest_abstinence.png",)),
    Case("failed report --out plan.toml keeps the plan", _nothing,
         command="report-over-plan", names=(".png",)),
    Case("grade.csv not UTF-8", _grade_not_utf8, command="tables", names=("grade.csv",)),
    # Bad arguments
    Case("--analysis with an unknown id", _nothing, command="bad-analysis",
         names=("no_such_analysis",), contains=("abstinence",)),
    Case("--formats pdf", _nothing, command="bad-format", names=("--formats",)),
    # Numbers that silently lose meaning
    Case("percentage outcome 150", _percentage("150"), names=("outcomes.csv:4",)),
    Case("percentage outcome -20", _percentage("-20"), names=("outcomes.csv:4",)),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_corpus_case_meets_the_bar(case: Case, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path)
    case.prepare(root, monkeypatch)
    plan_before = (root / "plan.toml").read_bytes() if (root / "plan.toml").is_file() else None
    outcome, failures = check_command(_argv(case, root), inputs=root / "trials",
                                      outputs=root / "out", names=case.names)
    monkeypatch.undo()
    plan_after = (root / "plan.toml").read_bytes() if (root / "plan.toml").is_file() else None
    if plan_after != plan_before:
        failures.append("the plan was changed or deleted")
    if case.expect == "ok" and outcome.code != 0:
        failures.append(f"expected success, got exit {outcome.code}: {outcome.stderr[:300]}")
    if case.expect == "error" and outcome.code == 0:
        failures.append("expected a located error, the command succeeded")
    text = outcome.stderr
    if case.command == "table" and outcome.code == 0:
        text += (root / "out" / "tables" / "characteristics.csv").read_text(encoding="utf-8")
    failures += [f"message lacks {phrase!r}" for phrase in case.contains if phrase not in text]
    failures += [f"message holds {phrase!r}" for phrase in case.absent if phrase in text]
    assert not failures, f"{case.id}: {failures}\n{outcome.stderr}"


def test_corpus_counts() -> None:
    """The corpus holds every concrete case of the issue (the count goes in its close)."""
    ids = {case.id for case in CASES}
    assert len(ids) == len(CASES)
    for needle in ("Addo$\\frac$lorato", "/etc/passwd", "=cmd|", "fields as strings",
                   "constraints null", "131,073", "semicolon", "directory where",
                   "percentage outcome 150", "bad TOML", "unknown measure", "missing plan",
                   "read-only figures/"):
        assert any(needle in i for i in ids), needle


def _subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True,
                          text=True, cwd=REPO, check=False, timeout=120)


def test_subprocess_errors_have_no_traceback_and_debug_shows_one(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    _delimited("arms.csv", ";")(root, pytest.MonkeyPatch())
    (root / "bad.toml").write_text("[report\n")
    runs = {
        "semicolon": _subprocess("validate", str(root / "trials")),
        "bad toml": _subprocess("tables", "--plan", str(root / "bad.toml"),
                                "--outdir", str(root / "out")),
        "outdir is a file": _subprocess("tables", "--plan", str(root / "plan.toml"),
                                        "--outdir", str(root / "plan.toml")),
    }
    for name, result in runs.items():
        assert result.returncode in (1, 2), (name, result.stderr)
        assert "Traceback" not in result.stderr, (name, result.stderr)
        assert len(result.stderr.splitlines()) <= 5, (name, result.stderr)
    debug = _subprocess("--debug", "tables", "--plan", str(root / "bad.toml"),
                        "--outdir", str(root / "out"))
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "PlanError" in debug.stderr
    assert not (root / "out").exists()


def test_subprocess_really_unwritable_folder(tmp_path: Path) -> None:
    """/sys refuses new entries even to root: a real EPERM, not a simulated one."""
    target = Path("/sys/analysis-fuzz-figures")
    try:
        target.mkdir()
    except OSError:
        pass
    else:  # pragma: no cover - a writable /sys: nothing to test here
        target.rmdir()
        pytest.skip("/sys is writable here")
    root = make_project(tmp_path)
    result = _subprocess("figures", "--plan", str(root / "plan.toml"), "--analysis",
                         "abstinence", "--outdir", str(target))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert str(target) in result.stderr and "cannot write" in result.stderr
