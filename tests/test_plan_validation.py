"""The analysis plan is validated on load (issue 12, item 7).

``read_plan`` checks every section, key, type and allowed value and raises one
:class:`analysis.report.plan.PlanError` listing every problem with the plan file, the key and
the value; the command line prints it without a traceback, exits with 2 and writes nothing;
a failed ``report`` removes the previous report; every interval label uses the plan's level.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from analysis import load_trials
from analysis.report import render, rob_tables, tables
from analysis.report.html import methods_text
from analysis.report.plan import PlanError, read_plan, run_analysis, validate_plan

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "valid_trials"


def plan_text(report: str = "", analyses: str | None = None, extra: str = "") -> str:
    """A small valid plan on the fixture trials, with ``report`` lines added to [report]."""
    if analyses is None:
        analyses = ('[[analysis]]\nid = "abstinence"\noutcome = "abstinence"\nmeasure = "OR"\n'
                    'label = "Abstinence"\n\n'
                    '[[analysis]]\nid = "pda"\noutcome = "percent_days_abstinent"\n'
                    'measure = "MD"\nlabel = "PDA"\n')
    return (f'[report]\ntitle = "Test"\ntrials = "{FIXTURE}"\n{report}\n\n{analyses}\n'
            f"{extra}")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> PlanError:
    with pytest.raises(PlanError) as caught:
        read_plan(path)
    assert isinstance(caught.value, ValueError)
    return caught.value


def test_valid_plans_load(tmp_path: Path) -> None:
    plan = read_plan(write(tmp_path, plan_text('level = 0.9\nmethod = "DL"\nci = "hksj"')))
    assert (plan.level, plan.method, plan.ci) == (0.9, "DL", "hksj")
    path = REPO / "analysis_plan.toml"
    assert validate_plan(tomllib.loads(path.read_text(encoding="utf-8")), path) == []
    shipped = read_plan(path)
    assert shipped.method == "REML"
    assert len(shipped.analyses) == 11
    assert shipped.narrative_studies and shipped.intervention == "baclofen"


def test_narrative_studies_must_be_study_ids_of_the_trials(tmp_path: Path) -> None:
    ok = read_plan(write(tmp_path, plan_text(
        extra='[narrative]\nintervention = "drug"\nstudies = ["Alpha2001"]\n')))
    assert (ok.intervention, ok.narrative_studies) == ("drug", ("Alpha2001",))
    assert read_plan(write(tmp_path, plan_text())).narrative_studies == ()
    error = problems_of(write(tmp_path, plan_text(
        extra='[narrative]\nstudies = ["Alpha2001", "Nobody1999"]\nintervention = 3\n')))
    keys = [(p.column, p.value) for p in error.problems]
    assert ("[narrative].studies", '"Nobody1999"') in keys
    assert ("[narrative].intervention", "3") in keys
    assert len(keys) == 2


def test_misspelt_method_names_file_key_value_and_choices(tmp_path: Path) -> None:
    path = write(tmp_path, plan_text('method = "REMl"'))
    error = problems_of(path)
    message = str(error)
    assert message.startswith(f"{path}: 1 problem(s) in the analysis plan:")
    assert f'{path}: [report].method = "REMl": must be one of ' in message
    assert '"REML"' in message and '"DL"' in message
    (problem,) = error.problems
    assert (problem.file, problem.line, problem.column, problem.value) == (
        str(path), None, "[report].method", '"REMl"')


@pytest.mark.parametrize(("value", "hint"), [("95", "write 0.95 for 95%"),
                                             ("90", "write 0.9 for 90%"),
                                             ("0", None), ("1", None), ("1.5", None)])
def test_level_must_be_a_proportion(tmp_path: Path, value: str, hint: str | None) -> None:
    message = str(problems_of(write(tmp_path, plan_text(f"level = {value}"))))
    assert f"[report].level = {value}: must be strictly between 0 and 1" in message
    if hint is not None:
        assert hint in message


def test_unknown_sections_and_keys(tmp_path: Path) -> None:
    text = plan_text('methd = "REML"', extra="[sensitivty]\nleave_one_out = true\n")
    message = str(problems_of(write(tmp_path, text)))
    assert '[report].methd = "REML": unknown key; allowed: title, trials, comparator, method' in (
        message)
    assert "[sensitivty]: unknown section; allowed: [report], [[analysis]]" in message


def test_wrong_types(tmp_path: Path) -> None:
    text = plan_text('level = "0.95"', extra="[sensitivity]\nleave_one_out = \"yes\"\n"
                     "[subgroups]\ncolumns = \"detoxified\"\n")
    message = str(problems_of(write(tmp_path, text)))
    assert '[report].level = "0.95": must be a number' in message
    assert '[sensitivity].leave_one_out = "yes": must be true or false' in message
    assert '[subgroups].columns = "detoxified": must be a list of strings' in message


def test_analysis_entries_are_checked(tmp_path: Path) -> None:
    analyses = ('[[analysis]]\nid = "abstinence"\noutcome = "abstinence"\nmeasure = "OR"\n\n'
                '[[analysis]]\nid = "dropout"\noutcome = "dropout"\nmeasure = "rr"\n'
                'favours = ["only one"]\n\n'
                '[[analysis]]\nid = "abstinence"\noutcome = "relapse"\nmeasure = "RR"\n\n'
                '[[analysis]]\nid = "craving"\nmeasure = "SMD"\n')
    message = str(problems_of(write(tmp_path, plan_text(analyses=analyses))))
    assert '[[analysis]] number 2 (id "dropout").measure = "rr": must be one of "OR"' in message
    assert '[[analysis]] number 2 (id "dropout").favours = ["only one"]: needs two labels' in (
        message)
    assert ('[[analysis]] number 3 (id "abstinence").id = "abstinence": duplicate analysis id '
            '(also [[analysis]] number 1 (id "abstinence"))') in message
    assert '[[analysis]] number 4 (id "craving").outcome: is required' in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = plan_text('method = "REMl"\nci = "t"\nmultiarm = "splt"\nlevel = 95',
                     extra='[dose_response]\nanalyses = ["abstinence", "nope"]\n'
                           'models = ["linear", "cubic"]\nmethod = "DL"\nper = 0\n'
                           "[subgroups]\ndose_cuts = [80, 30]\n")
    error = problems_of(write(tmp_path, text))
    keys = [p.column for p in error.problems]
    assert sorted(keys) == sorted([
        "[report].method", "[report].ci", "[report].multiarm", "[report].level",
        "[dose_response].analyses", "[dose_response].models", "[dose_response].method",
        "[dose_response].per", "[subgroups].dose_cuts"])
    assert str(error).splitlines()[0].endswith("9 problem(s) in the analysis plan:")
    assert len(str(error).splitlines()) == 10


def test_missing_trials_directory(tmp_path: Path) -> None:
    text = plan_text().replace(str(FIXTURE), "no_such_trials")
    message = str(problems_of(write(tmp_path, text)))
    assert f'[report].trials = "no_such_trials": no such directory: {tmp_path}' in message


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True,
                          text=True, cwd=REPO, check=False)


def test_cli_prints_one_message_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    plan = write(tmp_path, plan_text('method = "REMl"\nlevel = 95'))
    out = tmp_path / "out"
    for command in (["tables", "--plan", str(plan), "--outdir", str(out)],
                    ["figures", "--plan", str(plan), "--analysis", "abstinence",
                     "--outdir", str(out)],
                    ["rob-figures", "--plan", str(plan), "--outdir", str(out)],
                    ["makefile", "--plan", str(plan), "--out", str(out / "plan.mk")],
                    ["report", "--plan", str(plan), "--figures", str(out),
                     "--out", str(out / "report.html")]):
        result = run_cli(*command)
        assert result.returncode == 2, (command, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith(f"{plan}: 2 problem(s) in the analysis plan:")
        assert '[report].method = "REMl"' in result.stderr
        assert "[report].level = 95" in result.stderr
        assert not out.exists()


def test_failed_report_removes_the_stale_one(tmp_path: Path) -> None:
    plan = write(tmp_path, plan_text('method = "REMl"'))
    stale = tmp_path / "figures" / "report.html"
    stale.parent.mkdir()
    stale.write_text("<html>the previous, now stale, report</html>")
    result = run_cli("report", "--plan", str(plan), "--figures", str(stale.parent),
                     "--out", str(stale))
    assert result.returncode == 2
    assert not stale.exists()
    assert "removed the previous report" in result.stderr


def test_failed_report_on_a_valid_plan_removes_the_stale_one(tmp_path: Path) -> None:
    # The plan is valid but the figures were never drawn: the build fails late.
    plan = write(tmp_path, plan_text())
    stale = tmp_path / "figures" / "report.html"
    stale.parent.mkdir()
    stale.write_text("<html>stale</html>")
    result = run_cli("report", "--plan", str(plan), "--figures", str(stale.parent),
                     "--out", str(stale))
    assert result.returncode != 0
    assert not stale.exists()


def test_labels_use_the_plans_level(tmp_path: Path) -> None:
    plan = read_plan(write(tmp_path, plan_text("level = 0.90")))
    trials = load_trials(plan.trials)
    runs = [run_analysis(trials, spec, plan) for spec in plan.analyses]
    frames = {
        "pooled": tables.pooled_table(runs, plan.level),
        "study": tables.study_table(runs, plan.level),
        "estimators": tables.estimator_table(runs, plan.level),
        "subgroups": tables.subgroup_table(runs, plan.level),
        "sof": tables.summary_of_findings(runs, pd.DataFrame(), plan.level),
        "dose": tables.dose_response_table(runs, 100, plan.level),
        "rob": rob_tables.sensitivity_table(runs, plan.level),
    }
    for name, frame in frames.items():
        text = render.to_markdown(frame, caption=f"{name} table")
        assert "95%" not in text, name
        assert "95%" not in " ".join(map(str, frame.columns)), name
    for name in ("pooled", "study", "estimators", "rob"):
        assert any("90% CI" in str(c) for c in frames[name].columns), name
    # The level is read from the runs when not given.
    assert "effect (90% CI)" in tables.pooled_table(runs).columns
    assert "intervals at 90%" in methods_text(plan)
    assert "95%" not in methods_text(plan).replace("published estimate and its 95% CI", "")


def test_subgroup_columns_must_be_columns_of_the_trials(tmp_path: Path) -> None:
    # fuzz finding: dose_column = "" passed validation and `tables` died with KeyError: ''
    error = problems_of(write(tmp_path, plan_text(
        extra='[subgroups]\ncolumns = ["dose_class", "no_such_column"]\ndose_column = ""\n')))
    keys = [(p.column, p.value) for p in error.problems]
    assert ("[subgroups].dose_column", '""') in keys
    assert ("[subgroups].columns", '"no_such_column"') in keys
    plan = read_plan(write(tmp_path, plan_text(
        extra='[subgroups]\ncolumns = ["dose_class"]\ndose_column = "dose_target_mg_day"\n')))
    assert plan.dose_column == "dose_target_mg_day"
