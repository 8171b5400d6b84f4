"""Tests of the report pipeline: plan, tables, escaping, determinism, atomic writes, Make.

The small synthetic dataset in tests/fixtures/valid_trials keeps these fast; the shipped
data are exercised by test_shipped_plan_runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fixture_plan import FIXTURE, fixture_plan

from analysis.data import load_trials
from analysis.dose import dose_classes
from analysis.report import output
from analysis.report import render as renderers
from analysis.report.plan import read_plan, run_analysis

REPO = Path(__file__).resolve().parent.parent
NASTY = "Evil <script>alert(1)</script> | A&B 100% $x_1$ {y} ~z^ #h \\end"

PLAN = fixture_plan("Test report <b>", """
[[analysis]]
id = "craving"
outcome = "craving"
measure = "SMD"
label = "Craving"

[subgroups]
columns = ["detoxified", "dose_class"]
dose_cuts = [30, 80]
dose_labels = ["low", "mid", "high"]
min_studies_per_subgroup = 1  # the fixture's classes hold one study each
""")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "trials")
    (tmp_path / "plan.toml").write_text(PLAN)
    return tmp_path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True,
                          text=True, cwd=REPO, check=False)


def build_all(project: Path, out: Path) -> None:
    plan = str(project / "plan.toml")
    for command in (["tables", "--plan", plan, "--outdir", str(out / "tables")],
                    ["figures", "--plan", plan, "--analysis", "abstinence",
                     "--outdir", str(out / "figures")],
                    ["figures", "--plan", plan, "--analysis", "pda",
                     "--outdir", str(out / "figures")],
                    ["rob-figures", "--plan", plan, "--outdir", str(out / "figures")],
                    ["report", "--plan", plan, "--figures", str(out / "figures"),
                     "--out", str(out / "figures" / "report.html")]):
        result = run_cli(*command)
        assert result.returncode == 0, result.stderr


def test_plan_runs_and_reports_gaps(project: Path) -> None:
    plan = read_plan(project / "plan.toml")
    trials = load_trials(plan.trials)
    runs = {spec.id: run_analysis(trials, spec, plan) for spec in plan.analyses}
    assert runs["abstinence"].result is not None
    assert runs["abstinence"].result.k == 3
    assert runs["craving"].result is None
    assert "no study reports" in runs["craving"].note
    # Dose classes keep the plan's order (low, high), not the alphabetical one (high, low).
    assert list(runs["abstinence"].subgroups["dose_class"].results) == ["low", "high"]
    models = list(runs["abstinence"].sensitivity["model"])
    assert models[-1] == "Fixed effect, Mantel-Haenszel"
    assert len(models) == 5


def test_bad_plan_names_file_and_entry(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text('[[analysis]]\nid = "x"\noutcome = "abstinence"\nmeasure = "XX"\n')
    with pytest.raises(ValueError, match=r'plan.toml: \[\[analysis\]\] number 1 \(id "x"\)'
                       r'\.measure = "XX": must be one of'):
        read_plan(path)


def test_dose_classes_are_right_closed() -> None:
    classes = dose_classes([0, 30, 30.5, 80, 81, float("nan")], (30, 80), ("a", "b", "c"))
    assert list(classes[:5]) == ["a", "a", "b", "b", "c"]
    assert classes[5] is None
    with pytest.raises(ValueError, match="2 labels for 3 classes"):
        dose_classes([1], (30, 80), ("a", "b"))


def test_outputs_are_byte_identical_across_runs(project: Path, tmp_path: Path) -> None:
    build_all(project, tmp_path / "one")
    build_all(project, tmp_path / "two")
    first = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    second = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.*"))
    assert first == second
    assert any(p.suffix == ".svg" for p in first) and any(p.suffix == ".pdf" for p in first)
    for relative in first:
        assert (tmp_path / "one" / relative).read_bytes() == (
            tmp_path / "two" / relative).read_bytes(), relative


def test_text_from_the_data_is_escaped_everywhere(project: Path, tmp_path: Path) -> None:
    studies = project / "trials" / "studies.csv"
    frame = pd.read_csv(studies, dtype=str, keep_default_na=False)
    frame.loc[0, "first_author"] = NASTY
    frame.to_csv(studies, index=False, lineterminator="\n")
    build_all(project, tmp_path / "out")
    html = (tmp_path / "out" / "figures" / "report.html").read_text()
    assert "<script>" not in html
    # (words holding punctuation are kept whole in <span class="w"> in table cells)
    text = html.replace('<span class="w">', "").replace("</span>", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; | A&amp;B 100%" in text
    markdown = (tmp_path / "out" / "tables" / "pooled_results.md").read_text()
    assert "<b>" not in markdown


@pytest.mark.parametrize("render", [renderers.to_markdown, renderers.to_latex, renderers.to_html])
def test_renderers_escape_cells(render) -> None:
    text = render(pd.DataFrame({"study": [NASTY]}), caption="cap & <i>")
    assert "<script>" not in text
    if render is renderers.to_markdown:
        assert r"\|" in text and "&lt;script&gt;" in text
    if render is renderers.to_latex:
        assert r"A\&B 100\% \$x\_1\$ \{y\}" in text
        assert r"\textbackslash{}end" in text


def test_table_written_atomically_or_not_at_all(tmp_path: Path, monkeypatch) -> None:
    frame = pd.DataFrame({"a": [1]})
    output.write_table(frame, tmp_path / "t", caption="x", formats=("csv", "md"))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(renderers, "to_latex", broken)
    with pytest.raises(RuntimeError):
        output.write_table(pd.DataFrame({"a": [2]}), tmp_path / "t", caption="x",
                           formats=("csv", "md", "tex"))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "f.txt"
    output.write_bytes_atomic(target, b"old")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        output.write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_shipped_plan_runs() -> None:
    plan = read_plan(REPO / "analysis_plan.toml")
    trials = load_trials(plan.trials)
    runs = [run_analysis(trials, spec, plan) for spec in plan.analyses]
    pooled = {run.spec.id: run for run in runs}
    assert pooled["abstinence"].result is not None
    assert pooled["dropout"].result is not None
    assert all(run.result is not None or run.note for run in runs)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_rebuilds_only_what_depends_on_a_changed_file(tmp_path: Path) -> None:
    from benchmarks.project_copy import copy_project

    copy = copy_project(tmp_path)
    work = copy.root

    def make(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*copy.make, *args], cwd=work, capture_output=True, text=True,
                              env=copy.env, check=False)

    first = make("report")
    assert first.returncode == 0, first.stdout + first.stderr
    assert (work / "figures" / "report.html").is_file()
    assert make("-q", "report").returncode == 0, "a second make report would do work"
    os.utime(work / "trials" / "outcomes.csv")
    plan = make("-n", "report").stdout
    assert "analysis tables" in plan and "analysis figures" in plan
    assert "table characteristics" not in plan
    # issue 12: a failed step (here the plan check) removes the old report, which would
    # otherwise stay in place looking current
    plan_file = work / "analysis_plan.toml"
    plan_file.write_text(plan_file.read_text(encoding="utf-8").replace(
        'method = "REML"', 'method = "REMl"', 1), encoding="utf-8")
    failed = make("report")
    assert failed.returncode != 0 and '"REMl"' in failed.stderr
    assert "Traceback" not in failed.stderr
    assert not (work / "figures" / "report.html").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install "
                    "chromium; .ci/run installs it)")
def test_html_report_opens_in_headless_chromium_without_console_errors(
    project: Path, tmp_path: Path
) -> None:
    build_all(project, tmp_path / "out")
    report = tmp_path / "out" / "figures" / "report.html"
    screenshot = tmp_path / "report.png"
    profile = tmp_path / "profile"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--window-size=1200,2400", f"--screenshot={screenshot}", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000


COUNT_HOOK = '''
import os
import sys

if os.environ.get("VALIDATION_LOG"):
    import analysis.data as _data
    import analysis.data.trials as _trials

    _validate = _trials.validate_trials

    def _logged(path=None):
        with open(os.environ["VALIDATION_LOG"], "a", encoding="utf-8") as log:
            log.write(" ".join(sys.argv[1:3]) + "\\n")
        return _validate(path)

    _trials.validate_trials = _data.validate_trials = _logged
'''


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_validates_once_and_builds_any_figure_alone(tmp_path: Path) -> None:
    """Issue 12, item 7: a cold ``make report`` reads and validates the trials once (the
    other commands read build/trials.pickle); ``make figures/forest_abstinence.pdf`` works
    from clean and runs only that analysis; goals that need no figure build no plan.mk."""
    from benchmarks.project_copy import copy_project

    copy = copy_project(tmp_path)
    work = copy.root
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(COUNT_HOOK, encoding="utf-8")
    log = tmp_path / "validations.log"
    env = {**copy.env, "PYTHONPATH": f"{work}{os.pathsep}{hook}", "VALIDATION_LOG": str(log)}

    def make(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*copy.make, *args], cwd=work, capture_output=True, text=True,
                              env=env, check=False)

    for goal in ("help", "clean", "tables"):
        assert make("-n", goal).returncode == 0
        assert not (work / "build").exists(), f"make -n {goal} built build/plan.mk"
    alone = make("figures/forest_abstinence.pdf")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert (work / "figures" / "forest_abstinence.pdf").is_file()
    built = {p.name for p in (work / "figures").glob("*.pdf")}
    assert built and all(name.endswith("_abstinence.pdf") or "_abstinence_" in name
                         for name in built), built
    assert "--analysis relapse" not in alone.stdout
    assert make("clean").returncode == 0
    log.unlink()
    cold = make("report")
    assert cold.returncode == 0, cold.stdout + cold.stderr
    commands = log.read_text(encoding="utf-8").splitlines()
    assert commands == ["validate trials"], commands
    assert cold.stdout.count("--validated build/trials.pickle") >= 8
    # invalid trials: one clear error (from the one validation), the old report removed
    arms = work / "trials" / "arms.csv"
    arms.write_text(arms.read_text(encoding="utf-8").replace(",placebo,", ",placebo?,", 1),
                    encoding="utf-8")
    log.unlink()
    failed = make("report")
    assert failed.returncode != 0
    assert log.read_text(encoding="utf-8").splitlines() == ["validate trials"]
    assert failed.stderr.count("problem(s) found") == 1 and "Traceback" not in failed.stderr
    assert not (work / "figures" / "report.html").exists()
    assert not (work / "build" / "trials.pickle").exists()
