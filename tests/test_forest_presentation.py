"""Forest plots and subgroup tables as a reader needs them (issue 12, items 1 and 2).

- Not estimable is not evidence: a comparison without an estimable effect (a double zero of
  a ratio measure) is a row with "Not estimable" and a footnote, left out of pooling, as
  RevMan prints it; an analysis without an estimable study has no pooled estimate.
- Lines beyond the axis end in arrows (study CIs, diamonds, prediction intervals), as
  metafor's ``forest()`` draws them.
- A Mantel-Haenszel forest plot has a weight column (metafor ``weights.rma.mh``) and no
  prediction interval.
- Subgroup headings name the variable and the level; event totals come from rows with
  counts only; the test for subgroup differences is printed only where valid, with its
  caveat.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Polygon
from matplotlib.text import Text

import analysis as ma
from analysis import plots
from analysis.report.figures import draw_figure, figure_stems
from analysis.report.plan import read_plan, run_analysis
from analysis.report.tables import study_table, subgroup_table
from analysis.results import PoolResult, SubgroupResult

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plan():
    return read_plan(ROOT / "analysis_plan.toml")


@pytest.fixture(scope="module")
def runs(plan):
    trials = ma.load_trials(ROOT / "trials")
    return {spec.id: run_analysis(trials, spec, plan) for spec in plan.analyses}


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.figure.findobj(Text) if t.get_text()]


def _by_gid(ax, gid: str) -> list:
    return [a for a in ax.figure.findobj() if getattr(a, "get_gid", None)
            and a.get_gid() == gid]


def _close(ax) -> None:
    ax.figure.clf()


def _counts() -> pd.DataFrame:
    """Four trials, one a double zero (0/30 vs 0/31), with their escalc RR values."""
    frame = pd.DataFrame({"label": ["A 2001", "B 2004", "C 2008", "D 2012"],
                          "events_t": [5.0, 0, 12, 7], "n_t": [40.0, 30, 80, 50],
                          "events_c": [9.0, 0, 15, 11], "n_c": [41.0, 31, 79, 52]})
    es = ma.effect_sizes("RR", events_t=frame["events_t"], n_t=frame["n_t"],
                         events_c=frame["events_c"], n_c=frame["n_c"], drop00=True)
    return frame.assign(yi=es["yi"].to_numpy(), vi=es["vi"].to_numpy(), measure="RR")


def _pool_estimable(frame: pd.DataFrame) -> PoolResult:
    ok = frame.dropna(subset=["yi", "vi"])
    result = ma.pool(ok["yi"].to_numpy(), ok["vi"].to_numpy(), measure="RR")
    assert isinstance(result, PoolResult)
    return result


# ----------------------------------------------------------------------------- 1. not estimable


def test_plain_forest_draws_a_double_zero_row_as_not_estimable() -> None:
    # the result was fitted to the three estimable rows only (its weights are theirs): the
    # old code raised "has 3 weights but 'data' has 4 rows"
    frame = _counts()
    result = _pool_estimable(frame)
    ax = plots.forest_plot(frame, result)
    texts = _texts(ax)
    assert "B 2004" in texts and "Not estimable" in texts
    assert any("no events (or only events) in both arms" in t and "risk ratio" in t
               for t in texts)
    (squares,) = _by_gid(ax, "study-squares")
    assert len(squares.get_offsets()) == 3
    assert f"{result.weights[0]:.1f}%" in texts  # weights stay with their rows
    _close(ax)


def test_forest_without_an_estimable_row_has_no_pooled_estimate() -> None:
    frame = _counts().iloc[[1]]
    with pytest.raises(ValueError, match="result"):  # rows that could be pooled need one
        plots.forest_plot(_counts(), None)
    ax = plots.forest_plot(frame, None, level=0.9)
    texts = _texts(ax)
    assert texts.count("Not estimable") == 2  # the study and the total, as RevMan prints
    assert "Total (90% CI)" in texts and "Test for overall effect: not applicable" in texts
    assert not _by_gid(ax, "diamond-overall") and not _by_gid(ax, "study-squares")
    _close(ax)


def test_report_forest_and_study_table_show_the_double_zero_trial(runs, plan) -> None:
    run = runs["any_adverse_event"]
    assert run.result is None and run.data.empty
    assert run.not_estimable["label"].tolist() == ["Ponizovsky 2015"]
    assert figure_stems(run) == ["forest_any_adverse_event"]  # old: no figure at all
    ax = draw_figure(run, plan, "forest_any_adverse_event").axes[0]
    texts = _texts(ax)
    assert "Ponizovsky 2015" in texts and "Not estimable" in texts
    assert not _by_gid(ax, "diamond-overall")
    assert "excluded from pooling (RevMan; metafor drop00)" in " ".join(texts)
    table = study_table(list(runs.values()))
    row = table[table["outcome"] == run.spec.label]
    assert row["study"].tolist() == ["Ponizovsky 2015"]
    assert row["effect (95% CI)"].tolist() == ["Not estimable"]
    assert row["weight (%)"].tolist() == [""]


def test_report_forest_keeps_the_double_zero_row_beside_estimable_ones(runs, plan) -> None:
    run = runs["dropout_adverse_event"]
    rows = run.comparisons()
    assert "Addolorato 2002" in rows["label"].tolist()
    assert len(rows) == len(run.data) + len(run.not_estimable)


# ----------------------------------------------------------------------------- 2. arrows


def _fixed_pool(**overrides: object) -> PoolResult:
    values: dict[str, object] = dict(
        estimate=0.405, se=0.12, zval=3.37, pvalue=0.00075, ci_low=0.17, ci_high=0.64,
        tau2=0.031, se_tau2=0.04, tau2_ci_low=0.0, tau2_ci_high=0.4, i2=21.0, i2_ci_low=0.0,
        i2_ci_high=70.0, h2=1.27, h2_ci_low=1.0, h2_ci_high=3.3, q=8.9, q_df=3,
        q_pvalue=0.26, pi_low=-1.2, pi_high=1.9, k=4, method="REML", ci_method="z",
        level=0.95, weights=np.array([20.0, 30.0, 25.0, 25.0]), measure="OR")
    values.update(overrides)
    return PoolResult(**values)  # type: ignore[arg-type]


def _four() -> pd.DataFrame:
    return pd.DataFrame({"label": ["A", "B", "C", "D"], "yi": [0.2, 0.5, 0.3, 0.6],
                         "vi": [0.05, 0.04, 0.06, 0.05], "measure": "OR",
                         "subgroup": ["x", "x", "y", "y"]})


def test_diamond_and_prediction_interval_past_the_axis_end_in_arrows() -> None:
    # xlim 0.8-1.6 cuts the diamond (1.19 to 1.90) on the right and the prediction interval
    # (0.30 to 6.7) on both sides
    ax = plots.forest_plot(_four(), _fixed_pool(), xlim=(0.8, 1.6))
    (diamond,) = _by_gid(ax, "diamond-overall")
    assert isinstance(diamond, Polygon)
    assert diamond.get_xy()[:, 0].max() == pytest.approx(1.6)
    (arrow,) = _by_gid(ax, "diamond-arrows")
    assert arrow.get_marker() == ">"
    markers = sorted(a.get_marker() for a in _by_gid(ax, "prediction-arrows"))
    assert markers == ["<", ">"]
    (line,) = _by_gid(ax, "prediction-interval")
    assert tuple(line.get_xdata()) == pytest.approx((0.8, 1.6))
    _close(ax)


def test_subtotal_diamonds_past_the_axis_end_in_arrows_too() -> None:
    frame = _four()
    groups = {"x": _fixed_pool(ci_low=-0.9, weights=np.array([40.0, 60.0]), k=2),
              "y": _fixed_pool(weights=np.array([50.0, 50.0]), k=2)}
    ax = plots.forest_plot(frame, _fixed_pool(), subgroups=groups, xlim=(0.5, 2.0),
                           show_prediction=False)
    assert [a.get_marker() for a in _by_gid(ax, "diamond-arrows")] == ["<"]
    _close(ax)


def test_leave_one_out_rows_past_the_axis_end_in_arrows() -> None:
    frame = pd.DataFrame({"label": ["A", "B"], "estimate": [0.1, 0.2],
                          "ci_low": [-2.0, -0.1], "ci_high": [0.3, 2.5], "measure": "OR"})
    ax = plots.leave_one_out_plot(frame, xlim=(0.5, 2.0))
    assert sorted(a.get_marker() for a in _by_gid(ax, "ci-arrows")) == ["<", ">"]
    _close(ax)


# ----------------------------------------------------------------------------- 3. Mantel-Haenszel

# Reference: tests/reference/mh_weights_reference.json, written by
# tests/reference/make_mh_weights_reference.R (metafor 3.8-1 weights(rma.mh(...)) and
# weights(rma.peto(...)) on four 2x2 tables, the last double-zero).
MH_FIXTURE = json.loads((Path(__file__).parent / "reference" / "mh_weights_reference.json")
                        .read_text(encoding="utf-8"))["cases"]
MH_TABLES = {k: np.asarray(v) for k, v in MH_FIXTURE[0]["input"].items()}
WEIGHT_TOL = 1e-10


@pytest.mark.parametrize("case", MH_FIXTURE, ids=lambda c: c["id"])
def test_mantel_haenszel_and_peto_weights_are_metafors(case: dict) -> None:
    tables = {k: np.asarray(v) for k, v in case["input"].items()}
    res = (ma.peto(**tables) if case["measure"] == "PETO"
           else ma.mantel_haenszel(**tables, measure=case["measure"]))
    np.testing.assert_allclose(res.weights, case["expected"]["weights"], rtol=WEIGHT_TOL,
                               atol=WEIGHT_TOL)


def test_mantel_haenszel_forest_has_weights_and_no_prediction_interval() -> None:
    res = ma.mantel_haenszel(**MH_TABLES, measure="OR", study=["A", "B", "C", "D"])
    assert np.isfinite(res.pi_low)  # stored (= the CI, as metafor stores it) ...
    ax = plots.forest(res)
    texts = _texts(ax)
    assert "Weight" in texts and f"{res.weights[1]:.1f}%" in texts and "100.0%" in texts
    assert "Prediction interval" not in texts  # ... but never drawn for a fixed effect
    assert not _by_gid(ax, "prediction-interval")
    assert not any("Tau²" in t for t in texts)
    _close(ax)


# ----------------------------------------------------------------------------- 4. subgroups


def _subgroups(k_y: int = 2) -> SubgroupResult:
    table = pd.DataFrame({"group": ["x", "y"], "k": [2, k_y]})
    return SubgroupResult(subgroups=table, qb=3.1, qb_df=(1,), qb_pvalue=0.078,
                          method="REML", ci_method="z", tau2_model="separate", level=0.95,
                          results={"x": _fixed_pool(weights=np.array([40.0, 60.0]), k=2),
                                   "y": _fixed_pool(weights=np.array([50.0, 50.0]), k=2)})


def test_subgroup_headings_name_the_variable_and_the_level() -> None:
    ax = plots.forest_plot(_four(), _fixed_pool(), subgroups=_subgroups(),
                           subgroup_title="Liver disease")
    texts = _texts(ax)
    assert "Liver disease: x" in texts and "Liver disease: y" in texts
    assert "x" not in texts
    _close(ax)


def test_event_totals_only_from_rows_with_counts() -> None:
    frame = _four().assign(events_t=[3.0, 4, np.nan, np.nan], n_t=[20.0, 30, 40, 50],
                           events_c=[5.0, 6, np.nan, np.nan], n_c=[21.0, 29, 41, 52])
    ax = plots.forest_plot(frame, _fixed_pool(), subgroups=_subgroups())
    texts = _texts(ax)
    # group "y" holds only published estimates: no "Total events 0 / 0" for it
    assert texts.count("Total events") == 1
    assert "0" not in texts
    assert "Total events (2 of 4 with counts)" in texts
    _close(ax)


def test_subgroup_test_only_where_valid_and_with_its_caveat() -> None:
    ax = plots.forest_plot(_four(), _fixed_pool(), subgroups=_subgroups())
    texts = _texts(ax)
    assert any(t.startswith("Test for subgroup differences: Chi² = 3.10") for t in texts)
    assert any(t.startswith("Observational comparison across studies") for t in texts)
    _close(ax)
    ax = plots.forest_plot(_four(), _fixed_pool(), subgroups=_subgroups(), min_per_subgroup=3)
    texts = _texts(ax)
    assert not any("Chi² = 3.10" in t for t in texts)
    assert any(t.startswith("Test for subgroup differences: not applicable") for t in texts)
    _close(ax)


def test_report_subgroups_are_named_from_the_descriptor(runs, plan) -> None:
    run = runs["abstinence"]
    assert run.subgroup_titles["liver_disease"] == "Liver disease"  # trials/datapackage.json
    assert run.subgroup_titles["dose_class"] == "Target dose"  # the dose column's title
    ax = draw_figure(run, plan, "subgroups_abstinence_dose_class").axes[0]
    texts = _texts(ax)
    assert "Target dose: <= 30 mg/day" in texts and "<= 30 mg/day" not in texts
    assert any(t.startswith("Observational comparison across studies") for t in texts)
    table = subgroup_table(list(runs.values()))
    rows = table[(table["outcome"] == run.spec.label) & (table["k"] != "")]
    assert set(rows["subgrouping"]) == {"Target dose"}
    assert "Target dose: > 80 mg/day" in rows["subgroup"].tolist()
    assert all("observational comparison across studies" in t
               for t in rows["test for subgroup differences"])


def test_subgroup_title_falls_back_to_the_column_name(plan) -> None:
    from analysis.report.plan import subgroup_title

    assert subgroup_title("prior_treatment_failure", pd.DataFrame(), plan) == (
        "Prior treatment failure")


def test_forest_draws_on_a_figure_it_is_given() -> None:
    fig = Figure(figsize=(7, 3))
    ax = fig.add_axes((0.55, 0.2, 0.3, 0.7))
    assert plots.forest_plot(_counts(), _pool_estimable(_counts()), ax=ax) is ax
