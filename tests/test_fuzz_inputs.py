"""Property-based fuzzing of every input a user controls (issue 13, item 6).

Hypothesis draws CSV cells (unicode, control characters, huge cells, numeric edge values,
spreadsheet formula prefixes, ``$...$``), raw bytes spliced into a CSV, descriptor values
of any JSON shape, analysis-plan values of the wrong type and unknown keys, and command-line
argument lists. Every example must meet the bar of :mod:`fuzz_bar`: success or a located
error (DataValidationError / PlanError naming file and row or key), never another
exception, never a traceback, nothing written on failure, inputs unchanged.

Each property runs twice: ``quick`` (a few examples, the default run, the whole file well
under a minute) and ``many`` (marked slow, many more examples).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from fuzz_bar import FIXTURE, LINE_CHARS, PLAN, bar_failures, check_command, make_project, run_main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.data import validate_trials
from analysis.errors import DataValidationError
from analysis.report.plan import PlanError, read_plan

PROFILES = [pytest.param(15, id="quick"),
            pytest.param(300, id="many", marks=pytest.mark.slow)]
FILES = ("studies.csv", "arms.csv", "outcomes.csv", "risk_of_bias.csv")


def _run(examples: int, strategy: Any, body: Any) -> None:
    """Run ``body(example)`` on ``examples`` draws of ``strategy``."""
    # Derandomised, so CI is reproducible; FUZZ_RANDOM=1 explores new examples each run.
    settings(max_examples=examples, deadline=None, database=None,
             derandomize=not os.environ.get("FUZZ_RANDOM"),
             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                    HealthCheck.function_scoped_fixture],
             )(given(strategy)(body))()


# --- strategies --------------------------------------------------------------------------

NUMERIC_EDGES = ["0", "-0", "1e308", "1e309", "-1e309", "1e-320", "5e-324", "nan", "NaN",
                 "inf", "-inf", "Infinity", "0x10", "1_000", " 7 ", "+3", "٣", "1,5",
                 "9" * 400, "-1", "2.", ".5", "1e", "--1", "true", "TRUE"]
FORMULAS = ["=1+1", "+1", "-1+cmd|' /C calc'!A0", "@SUM(A1:A2)", "=cmd|' /C calc'!A0",
            "\t=1", "\r=1", "=HYPERLINK(\"http://x\")"]
MATHTEXT = ["Addo$\\frac$lorato", "Addo$x_1$lorato", "$", "$$", "\\$x$", "$\\alpha$"]
cells = st.one_of(
    st.text(max_size=30),  # any unicode, control characters and NUL included
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Zl", "Zp"]),
            max_size=10),
    st.sampled_from(NUMERIC_EDGES + FORMULAS + MATHTEXT),
    st.sampled_from([131_072, 131_073, 200_000]).map(lambda n: "x" * n),
    st.sampled_from(['"', '""', ",", "\n", "a,b", 'say "hi"', ";", "\ufeff"]),
)


@st.composite
def cell_edits(draw: Any) -> list[tuple[str, int, int, str]]:
    """One to three (file, row, column, value) edits; row 0 is the header."""
    return draw(st.lists(st.tuples(st.sampled_from(FILES), st.integers(0, 12),
                                   st.integers(0, 30), cells), min_size=1, max_size=3))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)

toml_scalars = (st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
                | st.text(max_size=20) | st.sampled_from(["REML", "OR", "z", "XX", ""]))
toml_values = toml_scalars | st.lists(toml_scalars, max_size=3)
PLAN_KEYS = {
    "report": ["title", "trials", "comparator", "method", "ci", "multiarm", "level",
               "timepoint_tolerance_weeks", "unknown_key"],
    "analysis": ["id", "outcome", "measure", "label", "favours", "extra"],
    "subgroups": ["columns", "dose_column", "dose_cuts", "dose_labels",
                  "min_studies_per_subgroup"],
    "sensitivity": ["exclude_derived", "leave_one_out", "risk_of_bias"],
    "dose_response": ["analyses", "metrics", "models", "per", "method"],
    "narrative": ["intervention", "studies"],
    "no_such_section": ["x"],
}


def _toml(value: Any) -> str:
    """A value as TOML (the test's own minimal writer; the toolkit only reads TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value).replace("inf", "inf")
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    return "[" + ", ".join(_toml(v) for v in value) + "]"


plan_edits = st.lists(st.tuples(st.sampled_from(sorted(PLAN_KEYS)), st.data()), min_size=1,
                      max_size=3)


# --- helpers -------------------------------------------------------------------------------

def _fresh(root: Path) -> Path:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    return make_project(root)


def _edit_csv(path: Path, row: int, column: int, value: str) -> None:
    old = csv.field_size_limit(10**7)  # an earlier edit may have written a huge cell
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            records = list(csv.reader(handle))
    finally:
        csv.field_size_limit(old)
    record = records[row % len(records)]
    record[column % len(record)] = value
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(records)


def _check_validation(directory: Path) -> None:
    """The library side of the bar: a result or a DataValidationError, every problem filed."""
    try:
        validate_trials(directory)
    except DataValidationError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file and problem.rule, problem
        for line in str(exc).splitlines():
            assert len(line) <= LINE_CHARS, line[:200]


# --- properties ----------------------------------------------------------------------------

@pytest.mark.parametrize("examples", PROFILES)
def test_any_cell_gives_a_located_error_or_success(examples: int, tmp_path: Path) -> None:
    def body(edits: list[tuple[str, int, int, str]]) -> None:
        root = _fresh(tmp_path / "p")
        for file, row, column, value in edits:
            _edit_csv(root / "trials" / file, row, column, value)
        _check_validation(root / "trials")
        outcome, failures = check_command(["validate", str(root / "trials")],
                                          inputs=root / "trials", outputs=root / "out",
                                          names=[file for file, *_ in edits])
        assert not failures, (failures, outcome.stderr[:2000])

    _run(examples, cell_edits(), body)


@pytest.mark.parametrize("examples", PROFILES)
def test_any_bytes_spliced_into_a_csv(examples: int, tmp_path: Path) -> None:
    def body(case: tuple[str, float, bytes]) -> None:
        file, where, junk = case
        root = _fresh(tmp_path / "p")
        path = root / "trials" / file
        data = path.read_bytes()
        cut = int(where * len(data))
        path.write_bytes(data[:cut] + junk + data[cut:])
        _check_validation(root / "trials")
        outcome, failures = check_command(["validate", str(root / "trials")],
                                          inputs=root / "trials", outputs=root / "out",
                                          names=[file])
        assert not failures, (failures, outcome.stderr[:2000])

    _run(examples, st.tuples(st.sampled_from(FILES), st.floats(0, 1),
                             st.binary(min_size=1, max_size=40)), body)


def _json_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            paths += _json_paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            paths += _json_paths(child, (*prefix, index))
    return paths


DESCRIPTOR = json.loads((FIXTURE / "datapackage.json").read_text(encoding="utf-8"))
DESCRIPTOR_PATHS = [p for p in _json_paths(DESCRIPTOR) if p]


@pytest.mark.parametrize("examples", PROFILES)
def test_any_descriptor_value_gives_a_located_error_or_success(examples: int,
                                                               tmp_path: Path) -> None:
    def body(case: tuple[list[tuple], Any]) -> None:
        targets, value = case
        root = _fresh(tmp_path / "p")
        descriptor = json.loads(json.dumps(DESCRIPTOR))
        for target in targets:
            node = descriptor
            try:
                for key in target[:-1]:
                    node = node[key]
                node[target[-1]] = value
            except (KeyError, IndexError, TypeError):
                continue  # an earlier edit replaced a parent
        (root / "trials" / "datapackage.json").write_text(json.dumps(descriptor),
                                                          encoding="utf-8")
        _check_validation(root / "trials")
        outcome, failures = check_command(["validate", str(root / "trials")],
                                          inputs=root / "trials", outputs=root / "out",
                                          names=["datapackage.json", ".csv"])
        assert not failures, (failures, outcome.stderr[:2000])

    _run(examples, st.tuples(st.lists(st.sampled_from(DESCRIPTOR_PATHS), min_size=1,
                                      max_size=2), json_values), body)


@pytest.mark.parametrize("examples", PROFILES)
def test_any_plan_value_gives_a_located_error_or_success(examples: int,
                                                         tmp_path: Path) -> None:
    def body(edits: list[tuple[str, Any]]) -> None:
        root = _fresh(tmp_path / "p")
        lines = [PLAN]
        keys = []
        for section, data in edits:
            key = data.draw(st.sampled_from(PLAN_KEYS[section]))
            value = data.draw(toml_values)
            header = "[[analysis]]" if section == "analysis" else f"[{section}]"
            if section == "report":  # [report] exists: a second one is a TOML error
                header = "[report.sub]" if data.draw(st.booleans()) else "[report]"
            lines.append(f"\n{header}\n{key} = {_toml(value)}\n")
            keys.append(key)
        (root / "plan.toml").write_text("".join(lines), encoding="utf-8")
        try:
            read_plan(root / "plan.toml")
        except PlanError as exc:
            assert exc.problems and all(p.file for p in exc.problems)
        outcome, failures = check_command(
            ["tables", "--plan", str(root / "plan.toml"), "--outdir", str(root / "out")],
            inputs=root / "trials", outputs=root / "out",
            names=["plan.toml", *keys, ".csv"])
        assert not failures, (failures, outcome.stderr[:2000])

    _run(examples, plan_edits, body)


ARGUMENT_WORDS = ["validate", "table", "characteristics", "datapackage", "makefile",
                  "figures", "rob-figures", "tables", "report", "--plan", "--out", "--outdir",
                  "--analysis", "--figures", "--formats", "--trials", "csv", "pdf",
                  "abstinence", "no_such", "PLAN", "TRIALS", "OUT", "FILE", "/sys/x", "",
                  "-", "--", "\x00", "é", "--help-me"]


@pytest.mark.parametrize("examples", PROFILES)
def test_any_argument_list_is_a_message_not_a_traceback(examples: int, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path / "p")
    (root / "FILE").write_text("a file\n")
    monkeypatch.chdir(root)  # relative outputs land in the project, which is compared
    words = st.sampled_from(ARGUMENT_WORDS) | st.text(max_size=8)

    def body(argv: list[str]) -> None:
        argv = [{"PLAN": str(root / "plan.toml"), "TRIALS": str(root / "trials"),
                 "OUT": str(root / "out")}.get(word, word) for word in argv]
        if "datapackage" in argv:  # it writes into a folder by design: never the inputs
            argv = [word for word in argv if word not in ("TRIALS", str(root / "trials"))]
        before = {p: p.read_bytes() for p in (root / "trials").iterdir() if p.is_file()}
        outcome = run_main(argv)
        failures = bar_failures(outcome)
        assert not failures, (argv, failures, outcome.stderr[:2000])
        after = {p: p.read_bytes() for p in (root / "trials").iterdir() if p.is_file()}
        if "datapackage" not in argv:
            assert after == before, argv

    _run(examples, st.lists(words, max_size=7), body)
