"""Study labels kept through leave_one_out() and cumulative() and their plots (issue 10).

metafor's ``leave1out`` and ``cumul`` label rows with ``slab`` (default "1".."k"); the
frames here carry those labels in ``study``, never 0-based positions.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import analysis as ma
from analysis import plots

YI = np.array([-0.89, -1.59, -1.35, -1.44, -0.22, -0.79, -1.62, 0.01, -0.47])
VI = np.array([0.33, 0.19, 0.42, 0.02, 0.05, 0.01, 0.22, 0.004, 0.06])
LABELS = [f"Trial {chr(65 + i)}" for i in range(YI.size)]
YEAR = np.array([1948, 1949, 1960, 1977, 1973, 1953, 1973, 1980, 1968])


@pytest.fixture(scope="module")
def dropout() -> pd.DataFrame:
    return ma.contrasts(ma.load_trials("trials"), outcome="dropout", measure="RR")


def _texts(ax: plt.Axes) -> list[str]:
    return [t.get_text() for t in ax.texts] + [t.get_text() for t in ax.get_yticklabels()]


def test_leave_one_out_labels_from_study_argument() -> None:
    out = ma.leave_one_out(YI, VI, study=LABELS).to_frame()
    assert out["study"].tolist() == LABELS


def test_cumulative_labels_from_study_argument_follow_the_order() -> None:
    out = ma.cumulative(YI, VI, order=YEAR, study=LABELS).to_frame()
    idx = np.argsort(YEAR, kind="stable")
    assert out["study"].tolist() == [LABELS[i] for i in idx]
    # the last step is the full fit whatever the labels
    plain = ma.cumulative(YI, VI, order=YEAR).to_frame()
    np.testing.assert_allclose(out["estimate"], plain["estimate"])


def test_default_labels_are_one_to_k_as_metafor() -> None:
    k = YI.size
    expected = [str(i) for i in range(1, k + 1)]
    assert ma.leave_one_out(YI, VI).to_frame()["study"].tolist() == expected
    assert ma.cumulative(YI, VI).to_frame()["study"].tolist() == expected
    idx = np.argsort(YEAR, kind="stable")
    steps = ma.cumulative(YI, VI, order=YEAR).to_frame()
    assert steps["study"].tolist() == [str(i + 1) for i in idx]


def test_labels_are_strings() -> None:
    for out in (ma.leave_one_out(YI, VI, study=np.arange(10, 19)).to_frame(),
                ma.cumulative(YI, VI, study=np.arange(10, 19)).to_frame()):
        assert all(isinstance(s, str) for s in out["study"])
    assert ma.leave_one_out(YI, VI, study=np.arange(10, 19)).to_frame()["study"].iloc[0] == "10"


def test_labels_from_a_contrasts_frame(dropout: pd.DataFrame) -> None:
    labels = dropout["label"].astype(str).tolist()
    assert ma.leave_one_out(dropout).to_frame()["study"].tolist() == labels
    order = dropout["year"].to_numpy(float)
    idx = np.argsort(order, kind="stable")
    steps = ma.cumulative(dropout, order=order).to_frame()
    assert steps["study"].tolist() == [labels[i] for i in idx]
    # an explicit study= wins over the frame's column
    ids = dropout["study_id"].astype(str).tolist()
    assert ma.leave_one_out(dropout, study=dropout["study_id"]).to_frame()["study"].tolist() == ids


def test_numbers_unchanged_by_labels(dropout: pd.DataFrame) -> None:
    labelled = ma.leave_one_out(dropout).to_frame()
    plain = ma.leave_one_out(dropout["yi"].to_numpy(float),
                             dropout["vi"].to_numpy(float)).to_frame()
    pd.testing.assert_frame_equal(labelled.drop(columns="study"), plain.drop(columns="study"))


@pytest.mark.parametrize("function", ("leave_one_out", "cumulative"))
@pytest.mark.parametrize("n", (YI.size - 1, YI.size + 2))
def test_wrong_number_of_labels_raises(function: str, n: int) -> None:
    k = YI.size
    with pytest.raises(ValueError, match=rf"study.*\b{n}\b.*\b{k}\b"):
        getattr(ma, function)(YI, VI, study=[f"s{i}" for i in range(n)])


def test_leave_one_out_plot_shows_the_labels(dropout: pd.DataFrame) -> None:
    frame = ma.leave_one_out(dropout).to_frame()
    ax = plots.leave_one_out_plot(frame, ma.pool(dropout), measure="RR")
    try:
        texts = _texts(ax)
        for label in dropout["label"].astype(str):
            assert label in texts
        assert not any(t == "0" for t in texts)
    finally:
        plt.close(ax.figure)


def test_cumulative_plot_shows_the_labels() -> None:
    frame = ma.cumulative(YI, VI, order=YEAR, study=LABELS).to_frame()
    ax = plots.cumulative_plot(frame, measure="RR")
    try:
        texts = _texts(ax)
        rows = [t for t in texts if t.startswith("Trial ")]
        idx = np.argsort(YEAR, kind="stable")
        assert rows == [LABELS[i] for i in idx]  # drawn top to bottom in the frame's order
    finally:
        plt.close(ax.figure)


def test_report_run_labels_its_sensitivity_frames() -> None:
    # the report used to map cumulative()'s 0-based ``study`` back to labels by position
    from pathlib import Path

    from analysis.report.plan import read_plan, run_analysis, study_labels

    root = Path(__file__).resolve().parents[1]
    plan = read_plan(root / "analysis_plan.toml")
    trials = ma.load_trials(plan.trials)
    spec = next(s for s in plan.analyses if s.id == "dropout")
    run = run_analysis(trials, spec, plan)
    # Since issue 12 (item 3) the report omits/adds whole studies (cluster = study), so the
    # rows are one per study, labelled without the arm suffix, in order of the first row.
    labels = run.data["label"].astype(str).tolist()
    study = study_labels(run.data).tolist()
    studies = list(dict.fromkeys(study))
    assert run.cumulative is not None and run.leave_one_out is not None
    order = np.argsort(run.data["year"].to_numpy(float), kind="stable")
    added = list(dict.fromkeys(study[i] for i in order))
    assert list(run.cumulative.study) == added
    assert run.cumulative.to_frame()["study"].tolist() == added
    assert list(run.leave_one_out.study) == studies
    assert run.leave_one_out.to_frame()["study"].tolist() == studies
    assert run.leave_one_out.labels == tuple(labels)  # the comparisons keep their labels
    # the multi-arm trial leaves with both arms (and the whole placebo group)
    assert "Garbutt 2021 (baclofen30)" in labels and "Garbutt 2021 (baclofen90)" in labels
    garbutt = studies.index("Garbutt 2021")
    assert run.leave_one_out.k[garbutt] == len(labels) - 2
