"""A process killed inside an atomic write leaves a temporary file that git ignores and
``make clean`` removes (issue 13: the old ``.NAME.XXXX.tmp`` was neither ignored nor cleaned).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.report.output import TEMPORARY_SUFFIX

REPO = Path(__file__).resolve().parent.parent

KILLED_WRITE = """
import os, signal, sys
from pathlib import Path
from analysis.report import output

def killed(src, dst):  # SIGKILL after the bytes are written, before the rename
    os.kill(os.getpid(), signal.SIGKILL)

os.replace = killed
output.write_bytes_atomic(Path(sys.argv[1]), b"half a build")
"""


def _killed_write(target: Path) -> Path:
    """Run an atomic write that is SIGKILLed before its rename; return the leftover file."""
    result = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(target)], cwd=REPO,
                            capture_output=True, text=True, check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert not target.exists()
    (leftover,) = list(target.parent.iterdir())
    return leftover


def test_a_killed_write_leaves_a_recognisable_file(tmp_path: Path) -> None:
    leftover = _killed_write(tmp_path / "forest_x.pdf")
    assert leftover.name.startswith(".forest_x.pdf.")
    assert leftover.name.endswith(TEMPORARY_SUFFIX)
    assert leftover.read_bytes() == b"half a build"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_ignores_the_leftover_anywhere_in_the_project(tmp_path: Path) -> None:
    name = _killed_write(tmp_path / "pooled_results.csv").name
    for folder in ("figures", "tables", "trials", "."):
        relative = f"{folder}/{name}"
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", relative],
                                 cwd=REPO, check=False)
        assert ignored.returncode == 0, f"{relative} is not ignored by .gitignore"
    # the pattern is specific: an ordinary hidden file or a data file is not ignored
    for relative in ("trials/.notes.csv", "trials/studies.csv"):
        assert subprocess.run(["git", "check-ignore", "-q", "--no-index", relative],
                              cwd=REPO, check=False).returncode == 1


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_clean_removes_leftovers_and_nothing_else(tmp_path: Path) -> None:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    (tmp_path / "analysis").mkdir()
    leftovers = []
    for folder in ("figures", "trials", "notebooks"):
        (tmp_path / folder).mkdir()
        leftovers.append(_killed_write(tmp_path / folder / "target.csv"))
    kept = [tmp_path / "trials" / "studies.csv", tmp_path / "trials" / ".keep",
            tmp_path / ".venv" / f".x{TEMPORARY_SUFFIX}"]
    for path in kept:
        path.parent.mkdir(exist_ok=True)
        path.write_text("keep")
    result = subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [p for p in leftovers if p.exists()] == []
    assert all(p.exists() for p in kept)
