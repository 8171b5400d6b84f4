"""A regular (non-editable) install works: build a wheel, install it, run it from elsewhere.

The wheel is built from a copy of the package sources, installed with ``--no-deps`` into a
fresh virtual environment in ``tmp_path``; that environment sees this project's dependencies
(numpy, pandas, ...) through a ``.pth`` line naming the project environment's site-packages
(whose own ``.pth`` files, among them the editable install of this checkout, are therefore
not processed), and it never sees the repository: commands run from ``tmp_path``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                               check=False, timeout=600)
    assert completed.returncode == 0, (
        f"{' '.join(args)} failed ({completed.returncode})\n{completed.stdout}\n{completed.stderr}"
    )
    return completed.stdout


def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the sources (keeps build/ and *.egg-info out of the repo)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "analysis", source / "analysis",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    offline = all(importlib.util.find_spec(m) is not None for m in ("setuptools", "wheel"))
    isolation = ["--no-build-isolation"] if offline else []  # else pip fetches them from PyPI
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "--quiet",
          "--disable-pip-version-check", "-w", str(wheels), str(source)], cwd=tmp_path)
    (wheel,) = wheels.glob("baclofen_meta-*.whl")
    return wheel


def test_wheel_holds_every_subpackage_and_the_schema(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "analysis").rglob("*.py")}
    assert sources <= names, sorted(sources - names)
    assert {"analysis/py.typed", "analysis/data/datapackage.json"} <= names
    templates = {p.relative_to(REPO).as_posix()
                 for p in (REPO / "analysis" / "report" / "templates").iterdir()}
    assert templates and templates <= names, sorted(templates - names)


def test_installed_copy_validates_and_pools(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
          "--disable-pip-version-check", str(wheel)], cwd=tmp_path)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=tmp_path).strip())
    (site / "project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = _run([str(python), "-m", "analysis", "validate", str(REPO / "trials")], elsewhere, env)
    assert "valid" in out

    code = (
        "import sys, analysis as ma\n"
        "print(ma.__file__)\n"
        "frame = ma.contrasts(ma.load_trials(sys.argv[1]), outcome='dropout', measure='RR')\n"
        "result = ma.pool(frame['yi'], frame['vi'], method='REML')\n"
        "print(result.k, result.estimate)\n"
    )
    out = _run([str(python), "-c", code, str(REPO / "trials")], elsewhere, env)
    where, numbers = out.strip().splitlines()[-2:]
    assert Path(where).resolve().is_relative_to(venv.resolve()), where
    k, estimate = numbers.split()
    assert int(k) >= 2 and float(estimate) == float(estimate)  # a finite pooled estimate

    # The report templates ship as package data: an HTML and a Word table render.
    code = ("import pandas as pd\nfrom analysis.report import render\n"
            "frame = pd.DataFrame({'a': ['x'], 'p': ['0.1']})\n"
            "print(render.to_html(frame, caption='t').count('<td'))\n"
            "print(len(render.to_docx(frame, caption='t')) > 1000)\n")
    assert _run([str(python), "-c", code], elsewhere, env).split() == ["2", "True"]
