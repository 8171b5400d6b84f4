"""A throw-away copy of the project that borrows this checkout's ``.venv`` (for Make runs)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ProjectCopy:
    """Where the copy is, and how to run Make in it without touching the shared ``.venv``."""

    root: Path
    make: list[str]
    env: dict[str, str]


def copy_project(parent: Path) -> ProjectCopy:
    """Copy the Makefile, plan, package and trials into ``parent/repo``.

    The copy links to this checkout's ``.venv`` and points Make at a fresh environment stamp,
    so that Make never reinstalls the shared environment from the copy (which would repoint
    its editable install at the copy).
    """
    work = parent / "repo"
    work.mkdir(parents=True)
    for name in ("Makefile", "pyproject.toml", "analysis_plan.toml"):
        shutil.copy2(REPO / name, work / name)
    shutil.copytree(REPO / "analysis", work / "analysis",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "trials", work / "trials")
    (work / ".venv").symlink_to(REPO / ".venv")
    stamp = parent / "env.stamp"
    stamp.touch()
    env = {**os.environ, "PYTHONPATH": str(work)}
    return ProjectCopy(work, ["make", f"ENV_STAMP={stamp}"], env)
