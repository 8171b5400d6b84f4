"""Figures do not depend on the user's matplotlib state (issue 13, item 1).

matplotlib keeps a font cache (``fontlist-*.json``) and a ``matplotlibrc`` in the user's home
(or ``MPLCONFIGDIR``). A cache rebuilt while the bundled fonts were missing (a ``.venv``
removed mid-build) sent "DejaVu Sans" to another copy of the font, and every later build in
every clone gave other bytes for 40 of 101 PDF/SVG files. Each build below runs in its own
process with a different home and configuration folder; the bytes of every file must agree.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib as mpl
import pytest
from matplotlib import font_manager

from analysis.plots import style

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "valid_trials"
PLAN = """
[report]
title = "Environment test"
trials = "trials"
comparator = "placebo"
method = "REML"

[[analysis]]
id = "pda"
outcome = "percent_days_abstinent"
measure = "MD"
label = "PDA"
"""
DRIVER = """
import sys
from analysis.report.cli import main
plan, out = sys.argv[1:]
assert main(["figures", "--plan", plan, "--analysis", "pda", "--outdir", out]) == 0
assert main(["rob-figures", "--plan", plan, "--outdir", out]) == 0
"""
#: A user's matplotlibrc that would change every figure if the build read it.
HOSTILE_RC = """
font.family: serif
font.serif: DejaVu Serif
font.size: 14
figure.facecolor: yellow
savefig.facecolor: yellow
axes.facecolor: pink
lines.linewidth: 3
patch.linewidth: 3
hatch.linewidth: 3
text.hinting: none
text.antialiased: False
pdf.compression: 0
svg.fonttype: none
path.simplify: False
"""


def _bundled(entry: font_manager.FontEntry) -> bool:
    return Path(entry.fname).resolve().is_relative_to(Path(mpl.get_data_path()).resolve())


def _write_cache(folder: Path, entries: list[font_manager.FontEntry]) -> None:
    """Write a font cache matplotlib reads in place of its own (same version, other fonts)."""
    manager = copy.copy(font_manager.fontManager)
    manager.ttflist = entries
    folder.mkdir(parents=True)
    font_manager.json_dump(manager, folder / f"fontlist-v{manager._version}.json")


def _serif_for_sans(entry: font_manager.FontEntry) -> font_manager.FontEntry:
    """The same entry pointing at the DejaVu Serif file of the same weight and style."""
    if entry.name != style.FONT_FAMILY:
        return entry
    bold = "Bold" in Path(entry.fname).name
    italic = entry.style != "normal"
    name = "DejaVuSerif" + ("-Bold" if bold else "") + (
        ("Italic" if bold else "-Italic") if italic else "")
    return dataclasses.replace(entry, fname=str(Path(mpl.get_data_path(), "fonts", "ttf",
                                                     f"{name}.ttf")))


def _environments(tmp_path: Path) -> dict[str, dict[str, str]]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")}
    entries = list(font_manager.fontManager.ttflist)
    _write_cache(tmp_path / "no_bundled_fonts", [e for e in entries if not _bundled(e)])
    _write_cache(tmp_path / "sans_is_serif", [_serif_for_sans(e) for e in entries])
    (tmp_path / "hostile_rc").mkdir()
    (tmp_path / "hostile_rc" / "matplotlibrc").write_text(HOSTILE_RC)
    (tmp_path / "fresh").mkdir()
    (tmp_path / "home").mkdir()
    envs = {"normal": dict(os.environ)}
    for name in ("fresh", "no_bundled_fonts", "sans_is_serif", "hostile_rc"):
        envs[name] = {**base, "HOME": str(tmp_path / "home"),
                      "MPLCONFIGDIR": str(tmp_path / name)}
    return envs


def _build(project: Path, out: Path, env: dict[str, str]) -> dict[str, bytes]:
    result = subprocess.run([sys.executable, "-c", DRIVER, str(project / "plan.toml"),
                             str(out)], cwd=REPO, env=env, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_figure_bytes_do_not_depend_on_the_users_cache_or_config(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(FIXTURE, project / "trials")
    (project / "plan.toml").write_text(PLAN)
    builds = {name: _build(project, tmp_path / "out" / name, env)
              for name, env in _environments(tmp_path / "config").items()}
    normal = builds.pop("normal")
    assert {Path(n).suffix for n in normal} == {".pdf", ".svg", ".png"}
    assert {n.split(".")[0] for n in normal} == {"forest_pda", "rob_summary",
                                                 "rob_traffic_light"}
    differing = {name: [file for file in normal if files.get(file) != normal[file]]
                 for name, files in builds.items()}
    assert all(files.keys() == normal.keys() for files in builds.values())
    assert differing == {name: [] for name in builds}, "other bytes than the normal build"


def test_the_font_resolves_to_matplotlibs_own_files(monkeypatch) -> None:
    """Whatever the cache says, the house font is the file shipped inside matplotlib."""
    manager = font_manager.fontManager
    polluted = [_serif_for_sans(e) for e in manager.ttflist if not _bundled(e)]
    monkeypatch.setattr(manager, "ttflist", polluted)  # restored (and re-pinned) below
    manager._findfont_cached.cache_clear()
    style.pin_font()
    for weight, slant, file in (("normal", "normal", "DejaVuSans.ttf"),
                                ("bold", "normal", "DejaVuSans-Bold.ttf"),
                                ("normal", "italic", "DejaVuSans-Oblique.ttf")):
        prop = font_manager.FontProperties(family=style.FONT_FAMILY, weight=weight,
                                           style=slant)
        found = Path(font_manager.findfont(prop, fallback_to_default=False))
        assert found.resolve() == Path(mpl.get_data_path(), "fonts", "ttf", file).resolve()
    monkeypatch.undo()
    manager._findfont_cached.cache_clear()


@pytest.mark.parametrize("family", ["sans-serif", "DejaVu Sans"])
def test_rc_context_ignores_the_users_rcparams(family: str) -> None:
    with mpl.rc_context({"figure.facecolor": "yellow", "font.sans-serif": ["Liberation Sans"],
                         "pdf.compression": 0}):
        with style.rc_context():
            assert mpl.rcParams["figure.facecolor"] == "white"
            assert mpl.rcParams["pdf.compression"] == mpl.rcParamsDefault["pdf.compression"]
            prop = font_manager.FontProperties(family=[family])
            assert Path(font_manager.findfont(prop)).name == "DejaVuSans.ttf"
        assert mpl.rcParams["figure.facecolor"] == "yellow"
