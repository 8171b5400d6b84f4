"""Figure recipes: analyses packed into few ``figures`` processes (issue 12, build time)."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.data import load_trials
from analysis.data.trials import FrozenMapping, FrozenTuple
from analysis.report.cli import figure_groups

REPO = Path(__file__).resolve().parents[1]


def test_largest_alone_and_no_group_longer() -> None:
    sizes = [("a", 13), ("b", 4), ("c", 2), ("d", 12), ("e", 1), ("f", 1), ("g", 1), ("h", 1)]
    groups = figure_groups(sizes)
    assert groups[0] == ["a"]
    count = dict(sizes)
    assert all(sum(count[name] for name in group) <= 13 for group in groups)
    assert sorted(name for group in groups for name in group) == sorted(count)
    assert len(groups) == 3
    # first fit in decreasing size: d takes one single figure, the rest fill the third
    assert groups[1] == ["d", "e"]
    assert groups[2] == ["b", "c", "f", "g", "h"]


def test_groups_keep_plan_order_and_edge_cases() -> None:
    assert figure_groups([]) == []
    assert figure_groups([("x", 3)]) == [["x"]]
    assert figure_groups([("y", 1), ("x", 1)]) == [["y"], ["x"]]
    assert figure_groups([("p", 2), ("q", 1), ("r", 1)]) == [["p"], ["q", "r"]]


def test_figures_command_draws_several_analyses(tmp_path: Path) -> None:
    """One ``figures`` process writes the figures of every ``--analysis`` it is given; an
    unknown id is an argument error naming all unknown ids and writes nothing."""
    def run(*ids: str) -> subprocess.CompletedProcess[str]:
        args = [a for name in ids for a in ("--analysis", name)]
        return subprocess.run(
            [sys.executable, "-m", "analysis", "figures", "--plan", "analysis_plan.toml",
             *args, "--outdir", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
            check=False)

    bad = run("relapse", "nope", "nada")
    assert bad.returncode == 2
    assert "'nope', 'nada' are not analyses of analysis_plan.toml" in bad.stderr
    assert not list(tmp_path.iterdir())
    ok = run("relapse", "alcohol_consumption")
    assert ok.returncode == 0, ok.stderr
    names = {p.name for p in tmp_path.iterdir()}
    assert {"forest_relapse.pdf", "forest_alcohol_consumption.png"} <= names
    assert not any("abstinence." in name for name in names)


def test_frozen_attrs_copy_cheaply_and_behave_like_builtins() -> None:
    """pandas deep-copies ``attrs`` after every operation: the trials' vocabulary and field
    titles are returned as themselves, compare equal to a tuple / dict and pickle."""
    trials = load_trials()
    vocabulary, titles = trials.attrs["outcome_vocabulary"], trials.attrs["field_titles"]
    assert isinstance(vocabulary, FrozenTuple) and isinstance(titles, FrozenMapping)
    assert copy.deepcopy(vocabulary) is vocabulary and copy.deepcopy(titles) is titles
    subset = trials[trials["outcome"] == "abstinence"]
    assert subset.attrs["field_titles"] is titles
    assert titles == dict(titles) and vocabulary == tuple(vocabulary)
    assert titles.get("no such field") is None
    with pytest.raises(TypeError):
        titles["x"] = "y"
    with pytest.raises(TypeError, match="read-only"):
        titles.update({"x": "y"})
    again = pickle.loads(pickle.dumps(trials))
    assert again.attrs["field_titles"] == titles
    assert isinstance(again.attrs["field_titles"], FrozenMapping)
    assert again.attrs["outcome_vocabulary"] == vocabulary
    # pandas' parquet writer and users' own code serialise attrs as JSON
    assert json.loads(json.dumps(trials.attrs)) == {
        "outcome_vocabulary": list(vocabulary), "field_titles": dict(titles)}
