"""The validated-trials snapshot (``validate --snapshot``, ``--validated``): read once, refused
when stale (issue 12, item 7: a cold build reads and validates the trials once)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from analysis.report import cli, snapshot

FIXTURE = Path(__file__).parent / "fixtures" / "valid_trials"
PLAN = """
[report]
title = "Snapshot test"
trials = "trials"
comparator = "placebo"

[[analysis]]
id = "abstinence"
outcome = "abstinence"
measure = "OR"
label = "Abstinence"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "trials")
    (tmp_path / "plan.toml").write_text(PLAN)
    return tmp_path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_commands_read_the_snapshot_instead_of_validating(project: Path, monkeypatch) -> None:
    trials, plan, pickle = project / "trials", project / "plan.toml", project / "trials.pickle"
    assert cli.main(["validate", str(trials), "--snapshot", str(pickle)]) == 0
    assert cli.main(["tables", "--plan", str(plan), "--outdir", str(project / "fresh")]) == 0
    assert cli.main(["table", "characteristics", "--trials", str(trials),
                     "--out", str(project / "fresh" / "characteristics")]) == 0

    def no_validation(path: object = None) -> None:
        raise AssertionError("validated again although a snapshot was given")

    monkeypatch.setattr(snapshot, "validate_trials", no_validation)
    assert cli.main(["tables", "--plan", str(plan), "--validated", str(pickle),
                     "--outdir", str(project / "cached")]) == 0
    assert cli.main(["table", "characteristics", "--trials", str(trials), "--validated",
                     str(pickle), "--out", str(project / "cached" / "characteristics")]) == 0
    assert _files(project / "cached") == _files(project / "fresh")
    assert "characteristics.csv" in _files(project / "cached")


def test_a_stale_snapshot_is_refused_and_nothing_is_written(project: Path, capsys) -> None:
    trials, pickle = project / "trials", project / "trials.pickle"
    assert cli.main(["validate", str(trials), "--snapshot", str(pickle)]) == 0
    outcomes = trials / "outcomes.csv"
    outcomes.write_text(outcomes.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    code = cli.main(["tables", "--plan", str(project / "plan.toml"), "--validated", str(pickle),
                     "--outdir", str(project / "out")])
    assert code == 2
    assert "stale trials snapshot" in capsys.readouterr().err
    assert not (project / "out").exists()
    # the digest is of the content: an unchanged copy of the data is accepted, a copy with
    # a risk-of-bias table removed is not
    other = project / "other"
    shutil.copytree(FIXTURE, other)
    assert set(snapshot.read_snapshot(pickle, other)) >= {"studies", "arms", "outcomes"}
    (other / "risk_of_bias.csv").unlink()
    with pytest.raises(snapshot.StaleSnapshotError, match="stale"):
        snapshot.read_snapshot(pickle, other)


def test_the_digest_covers_the_validating_code(project: Path, monkeypatch) -> None:
    before = snapshot.inputs_digest(project / "trials")
    code = project / "errors.py"
    code.write_text("# changed\n")
    monkeypatch.setattr(snapshot, "_PACKAGE", project)
    monkeypatch.setattr(snapshot, "_code_files", lambda: [code])
    changed = snapshot.inputs_digest(project / "trials")
    code.write_text("# changed again\n")
    assert len({before, changed, snapshot.inputs_digest(project / "trials")}) == 3


def test_no_snapshot_of_invalid_trials_and_the_old_one_removed(project: Path, capsys) -> None:
    arms = project / "trials" / "arms.csv"
    lines = arms.read_text(encoding="utf-8").splitlines()
    arms.write_text("\n".join(lines[:1] + lines[2:]) + "\n", encoding="utf-8")  # drop an arm
    pickle = project / "trials.pickle"
    pickle.write_bytes(b"a snapshot of the data before the change")
    assert cli.main(["validate", str(project / "trials"), "--snapshot", str(pickle)]) == 1
    assert "not found in arms.csv" in capsys.readouterr().err
    assert not pickle.exists()


def test_a_file_that_is_not_a_snapshot_is_refused(project: Path) -> None:
    junk = project / "junk.pickle"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(snapshot.StaleSnapshotError, match="not a readable trials snapshot"):
        snapshot.read_snapshot(junk, project / "trials")


def test_commands_read_the_cached_runs_instead_of_running_again(project: Path,
                                                                  monkeypatch) -> None:
    from analysis.report import plan as plan_module

    plan, runs = project / "plan.toml", project / "runs.pickle"
    assert cli.main(["makefile", "--plan", str(plan), "--runs-out", str(runs),
                     "--out", str(project / "plan.mk")]) == 0
    assert cli.main(["tables", "--plan", str(plan), "--outdir", str(project / "fresh")]) == 0

    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("ran an analysis again although a cache was given")

    monkeypatch.setattr(plan_module, "run_analysis", no_run)
    assert cli.main(["tables", "--plan", str(plan), "--runs", str(runs),
                     "--outdir", str(project / "cached")]) == 0
    assert _files(project / "cached") == _files(project / "fresh")
    assert cli.main(["figures", "--plan", str(plan), "--analysis", "abstinence", "--runs",
                     str(runs), "--outdir", str(project / "figures")]) == 0
    assert (project / "figures" / "forest_abstinence.pdf").is_file()
    # another plan (here: another estimator) makes the cache stale
    plan.write_text(PLAN.replace('comparator = "placebo"',
                                 'comparator = "placebo"\nmethod = "DL"'))
    with pytest.raises(snapshot.StaleSnapshotError, match="stale cache of analysis runs"):
        snapshot.read_runs(runs, plan, project / "trials")
