"""Text from the data is plain text wherever it is drawn or written (issue 13, item 2).

A ``$...$`` pair in an author name crashed ``make report`` in matplotlib's mathtext parser
(``Addo$\\frac$lorato``) or was drawn as a subscript (``Addo$x_1$lorato``); a cell starting
with ``=``, ``+``, ``-`` or ``@`` was written unchanged into the CSV tables, where a
spreadsheet runs it as a formula.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from fixture_plan import FIXTURE, fixture_plan
from matplotlib.text import Text

import analysis as ma
from analysis.data import join_trials, validate_trials
from analysis.plots import influence_plot
from analysis.report.cli import main
from analysis.report.figures import draw_figure, draw_rob_figure, figure_stems, rob_figure_stems
from analysis.report.plan import read_plan, run_analysis
from analysis.report.render import neutralise_formula, to_csv

CRASHES = r"Addo$\frac$lorato"  # mathtext: "\frac" is missing its arguments
SUBSCRIPT = "Addo$x_1$lorato"  # mathtext: drawn as Addo, italic x, subscript 1, lorato
FORMULAS = {"country": "=HYPERLINK(\"http://evil\",\"x\")"}  # a leading cell of a table
PLAN = fixture_plan("Plain text", """
[subgroups]
columns = ["detoxified"]
min_studies_per_subgroup = 1
""")


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A trials copy whose study names hold mathtext and whose cells hold formulas."""
    shutil.copytree(FIXTURE, tmp_path / "trials")
    studies = tmp_path / "trials" / "studies.csv"
    frame = pd.read_csv(studies, dtype=str, keep_default_na=False)
    frame.loc[0, "first_author"] = CRASHES
    frame.loc[1, "first_author"] = SUBSCRIPT
    for column, value in FORMULAS.items():
        frame.loc[1, column] = value
    frame.to_csv(studies, index=False, lineterminator="\n")
    (tmp_path / "plan.toml").write_text(PLAN)
    return tmp_path


def _texts(figure: mpl.figure.Figure) -> list[Text]:
    figure.canvas.draw()  # creates the tick labels drawn lazily
    return [t for t in figure.findobj(Text) if t.get_text()]


def test_report_builds_with_mathtext_and_formulas_in_the_data(hostile: Path) -> None:
    plan = str(hostile / "plan.toml")
    out = hostile / "out"
    for command in (["tables", "--plan", plan, "--outdir", str(out / "tables")],
                    ["table", "characteristics", "--trials", str(hostile / "trials"),
                     "--out", str(out / "tables" / "characteristics")],
                    ["figures", "--plan", plan, "--analysis", "abstinence",
                     "--outdir", str(out / "figures")],
                    ["figures", "--plan", plan, "--analysis", "pda",
                     "--outdir", str(out / "figures")],
                    ["rob-figures", "--plan", plan, "--outdir", str(out / "figures")]):
        assert main(command) == 0, command
    assert len(list((out / "figures").glob("*.pdf"))) >= 10
    rows = list(csv.reader(io.StringIO((out / "tables" / "characteristics.csv").read_text())))
    cells = {cell for row in rows for cell in row}
    for value in FORMULAS.values():
        assert value not in cells
        assert "'" + value in cells
    effects = (out / "tables" / "study_effects.csv").read_text()
    assert CRASHES in effects and SUBSCRIPT in effects


def test_every_figure_draws_the_names_as_written(hostile: Path) -> None:
    """Drawn outside the command line's rc context, as a notebook draws them."""
    plan = read_plan(hostile / "plan.toml")
    tables = validate_trials(plan.trials)
    trials = join_trials(tables)
    figures = []
    for spec in plan.analyses:
        run = run_analysis(trials, spec, plan, tables.get("risk_of_bias"))
        figures += [draw_figure(run, plan, stem) for stem in figure_stems(run)]
    figures += [draw_rob_figure(stem, tables["risk_of_bias"], tables["studies"])
                for stem in rob_figure_stems(tables["risk_of_bias"])]
    found = set()
    for figure in figures:
        for text in _texts(figure):
            if "$" in text.get_text():
                assert not text.get_parse_math(), text.get_text()
                found |= {name for name in (CRASHES, SUBSCRIPT) if name in text.get_text()}
        with mpl.rc_context({"svg.fonttype": "none"}):  # SVG keeps the text as text
            svg = io.StringIO()
            figure.savefig(svg, format="svg")
        if SUBSCRIPT in " ".join(t.get_text() for t in _texts(figure)):
            assert SUBSCRIPT in svg.getvalue()
    assert found == {CRASHES, SUBSCRIPT}


def test_influence_plot_labels_are_plain_text() -> None:
    yi, vi = np.array([0.1, 0.4, -0.2, 0.3]), np.array([0.05, 0.04, 0.06, 0.05])
    result = ma.influence(ma.pool(yi, vi, study=[CRASHES, SUBSCRIPT, "C", "D"]))
    figure = influence_plot(result)
    labels = {t.get_text(): t for t in _texts(figure)}
    assert CRASHES in labels and not labels[CRASHES].get_parse_math()
    # the toolkit's own labels need no mathtext either
    assert not [name for name in labels if "$" in name and name not in (CRASHES, SUBSCRIPT)]
    figure.savefig(io.BytesIO(), format="pdf")


@pytest.mark.parametrize(("cell", "written"), [
    ("=1+1", "'=1+1"), ("+1+cmd|x", "'+1+cmd|x"), ("-1+cmd|x", "'-1+cmd|x"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("-", "'-"),
    ("-7.99 to 50.78", "-7.99 to 50.78"), ("-abc", "'-abc"),
    ("-10.90 (-23.70 to 1.90)", "-10.90 (-23.70 to 1.90)"),
    ("-0.5 [-1.2, 0.3]", "-0.5 [-1.2, 0.3]"),
    ("-1 to cmd|x", "'-1 to cmd|x"), ("-1+1", "'-1+1"), ("-1 (2 to 3)+x", "'-1 (2 to 3)+x"),
    ("-2.5%", "-2.5%"), ("-1e5 (E1)", "'-1e5 (E1)"),
    ("-0.52", "-0.52"), ("+3", "+3"), ("-1e-05", "-1e-05"), ("Addo", "Addo"), ("", ""),
    ("a=b", "a=b"), ("'=x", "'=x"),
])
def test_neutralise_formula(cell: str, written: str) -> None:
    assert neutralise_formula(cell) == written


def test_csv_keeps_numbers_and_neutralises_text() -> None:
    frame = pd.DataFrame({
        "estimate": [-0.52, 1.5],
        "count": pd.array([-3, None], dtype="Int64"),
        "label": ["=cmd", "-0.25"],
        "note": pd.array(["@x", None], dtype="string"),
        "=header": [True, False],
    })
    rows = list(csv.reader(io.StringIO(to_csv(frame))))
    assert rows == [["estimate", "count", "label", "note", "'=header"],
                    ["-0.52", "-3", "'=cmd", "'@x", "True"],
                    ["1.5", "", "-0.25", "", "False"]]
