"""Published estimates are shown as published (issue 11, item 4).

A study that enters by its published estimate and CI keeps the published limits in the
comparisons frame (``ci_low_published``, ``ci_high_published`` on the yi scale), in the forest
plot (drawn whiskers and printed text, with a dagger and a footnote) and in the per-study
report table, while pooling still uses the ``vi`` derived from the interval's width.

ALPADIR (Reynaud 2017, PMID:28525555, abstract): abstinence OR 1.20, 95% CI 0.58 to 2.50
(trials/outcomes.csv). On the log scale the interval is not symmetric around log 1.20, so
``yi +/- 1.96 sqrt(vi)`` gives 0.58 to 2.49.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.text import Text

import analysis as ma
from analysis import plots
from analysis.contrasts import study_intervals
from analysis.plots.forest import PUBLISHED_MARK, PUBLISHED_NOTE
from analysis.report.plan import read_plan, run_analysis
from analysis.report.tables import study_table
from analysis.results import PoolResult

REPO = Path(__file__).resolve().parent.parent
Z95 = 1.959963984540054
#: Limits stored from log() of the published values compare exactly after exp(); the
#: tolerance only absorbs the round trip log/exp in binary floating point.
ROUND_TRIP = 1e-12


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.figure.findobj(Text) if t.get_text()]


def _whiskers(ax) -> list[tuple[float, float]]:
    """(low, high) of each drawn study CI, top to bottom (the 'study-ci' LineCollection)."""
    (collection,) = [a for a in ax.figure.findobj(LineCollection) if a.get_gid() == "study-ci"]
    segments = sorted(collection.get_segments(), key=lambda s: s[0][1])
    return [(float(s[0][0]), float(s[1][0])) for s in segments]


@pytest.fixture(scope="module")
def alpadir_run():
    plan = read_plan(REPO / "analysis_plan.toml")
    trials = ma.load_trials(plan.trials)
    return run_analysis(trials, plan.analysis("abstinence"), plan)


# ----------------------------------------------------------------------------- effects


def test_effect_from_estimate_returns_the_published_limits_on_the_analysis_scale() -> None:
    out = ma.effect_from_estimate([1.20, 2.0], [0.58, np.nan], [2.50, np.nan],
                                  se=[np.nan, 0.3], measure="OR")
    assert out["ci_low_published"].iloc[0] == pytest.approx(np.log(0.58), rel=ROUND_TRIP)
    assert out["ci_high_published"].iloc[0] == pytest.approx(np.log(2.50), rel=ROUND_TRIP)
    assert out["ci_level_published"].iloc[0] == 0.95
    # A row given by its SE has no published limits.
    assert out[["ci_low_published", "ci_high_published", "ci_level_published"]].iloc[1].isna(
    ).all()
    # The SE (and so vi) is still the one from the width (Cochrane Handbook 6.5.2.3).
    se = (np.log(2.50) - np.log(0.58)) / (2 * Z95)
    assert out["vi"].iloc[0] == pytest.approx(se**2, rel=1e-12)


def test_effect_from_estimate_keeps_difference_limits_as_given() -> None:
    out = ma.effect_from_estimate([-10.9], [-23.7], [1.9], measure="MD", level=0.9)
    assert out["ci_low_published"].iloc[0] == -23.7
    assert out["ci_high_published"].iloc[0] == 1.9
    assert out["ci_level_published"].iloc[0] == 0.9


# ----------------------------------------------------------------------------- contrasts


def test_contrasts_keep_alpadir_published_limits(alpadir_run) -> None:
    frame = ma.contrasts(ma.load_trials(), outcome="abstinence", measure="OR")
    row = frame.set_index("study_id").loc["Reynaud2017"]
    assert bool(row["from_reported_estimate"])
    assert np.exp(row["ci_low_published"]) == pytest.approx(0.58, rel=ROUND_TRIP)
    assert np.exp(row["ci_high_published"]) == pytest.approx(2.50, rel=ROUND_TRIP)
    assert row["ci_level_published"] == 0.95
    # The recomputed upper limit is what the issue complained about.
    assert np.exp(row["yi"] + Z95 * np.sqrt(row["vi"])) == pytest.approx(2.49, abs=0.005)
    arm_level = frame[~frame["from_reported_estimate"].astype(bool)]
    assert not arm_level.empty
    assert arm_level[["ci_low_published", "ci_high_published",
                      "ci_level_published"]].isna().all().all()


def test_contrasts_without_reported_estimates_have_nan_published_columns() -> None:
    frame = ma.contrasts(ma.load_trials(), outcome="dropout", measure="RR")
    assert not frame["from_reported_estimate"].astype(bool).any()
    assert frame[["ci_low_published", "ci_high_published"]].isna().all().all()


def test_study_intervals_use_published_limits_only_at_their_level() -> None:
    frame = pd.DataFrame({"yi": [0.0, np.log(1.2), np.log(1.2), np.nan],
                          "vi": [0.04, 0.14, 0.14, np.nan],
                          "ci_low_published": [np.nan, np.log(0.58), np.log(0.58), np.nan],
                          "ci_high_published": [np.nan, np.log(2.5), np.log(2.5), np.nan],
                          "ci_level_published": [np.nan, 0.95, 0.90, np.nan]})
    out = study_intervals(frame, 0.95)
    assert out["published"].tolist() == [False, True, False, False]
    assert out["ci_low"].iloc[0] == pytest.approx(-Z95 * 0.2, rel=1e-12)
    assert out["ci_high"].iloc[1] == np.log(2.5)
    assert out["ci_high"].iloc[2] == pytest.approx(np.log(1.2) + Z95 * np.sqrt(0.14))
    assert out[["ci_low", "ci_high"]].iloc[3].isna().all()
    # Without the published columns: the Wald interval everywhere.
    plain = study_intervals(frame[["yi", "vi"]], 0.95)
    assert not plain["published"].any()


# ----------------------------------------------------------------------------- forest plot


def test_forest_prints_alpadir_as_published(alpadir_run) -> None:
    ax = plots.forest_plot(alpadir_run.data, alpadir_run.result)
    texts = _texts(ax)
    assert "1.20 [0.58, 2.50]" in texts
    assert "1.20 [0.58, 2.49]" not in texts
    assert f"Reynaud 2017 {PUBLISHED_MARK}" in texts
    assert PUBLISHED_NOTE in texts
    assert "pooling uses the variance" in PUBLISHED_NOTE
    # Arm-level studies keep their labels and Wald intervals.
    assert "Addolorato 2007" in texts and "6.25 [2.42, 16.11]" in texts
    assert texts.count(PUBLISHED_MARK) == 0  # the mark is on the label, not a loose glyph


def _fixed_pool(k: int) -> PoolResult:
    return PoolResult(
        estimate=0.2, se=0.15, zval=1.33, pvalue=0.18, ci_low=-0.09, ci_high=0.49, tau2=0.0,
        se_tau2=0.02, tau2_ci_low=0.0, tau2_ci_high=0.3, i2=0.0, i2_ci_low=0.0,
        i2_ci_high=50.0, h2=1.0, h2_ci_low=1.0, h2_ci_high=2.0, q=1.2, q_df=k - 1,
        q_pvalue=0.55, pi_low=-0.1, pi_high=0.5, k=k, method="REML", ci_method="z",
        level=0.95, weights=np.full(k, 100.0 / k), measure="OR")


def _synthetic() -> pd.DataFrame:
    """Three comparisons; the middle one published as OR 1.50 (0.90 to 4.00), an interval far
    from symmetric on the log scale (0.51 below the estimate, 0.98 above)."""
    return pd.DataFrame({
        "label": ["Arm study 2001", "Published 2005", "Arm study 2010"],
        "yi": [0.3, np.log(1.5), -0.1],
        "vi": [0.09, ((np.log(4.0) - np.log(0.9)) / (2 * Z95)) ** 2, 0.05],
        "ci_low_published": [np.nan, np.log(0.9), np.nan],
        "ci_high_published": [np.nan, np.log(4.0), np.nan],
        "measure": "OR",
    })


def test_forest_draws_whiskers_at_the_published_limits() -> None:
    frame = _synthetic()
    ax = plots.forest_plot(frame, _fixed_pool(3))
    whiskers = _whiskers(ax)
    assert whiskers[1] == pytest.approx((0.9, 4.0), rel=ROUND_TRIP)
    # Not symmetric around the estimate on the log scale (a Wald interval would be).
    low, high = np.log(whiskers[1])
    assert (high - np.log(1.5)) - (np.log(1.5) - low) == pytest.approx(0.47, abs=0.01)
    # Rows without published limits: yi +/- z sqrt(vi), as without the columns.
    for i in (0, 2):
        yi, vi = frame.loc[i, "yi"], frame.loc[i, "vi"]
        assert whiskers[i] == pytest.approx(
            tuple(np.exp([yi - Z95 * np.sqrt(vi), yi + Z95 * np.sqrt(vi)])), rel=1e-12)
    texts = _texts(ax)
    assert "1.50 [0.90, 4.00]" in texts and f"Published 2005 {PUBLISHED_MARK}" in texts
    assert PUBLISHED_NOTE in texts


def test_forest_without_published_limits_is_unchanged() -> None:
    frame = _synthetic()
    plain = frame.drop(columns=["ci_low_published", "ci_high_published"])
    nan = frame.assign(ci_low_published=np.nan, ci_high_published=np.nan)
    drawn = [plots.forest_plot(f, _fixed_pool(3)) for f in (plain, nan)]
    assert _whiskers(drawn[0]) == _whiskers(drawn[1])
    assert _texts(drawn[0]) == _texts(drawn[1])
    assert PUBLISHED_NOTE not in _texts(drawn[0])
    assert not any(PUBLISHED_MARK in t for t in _texts(drawn[0]))
    assert "1.50 [0.71, 3.16]" in _texts(drawn[0])  # exp(log 1.5 +/- 1.96 x 0.3805)


def test_forest_ignores_published_limits_at_another_level() -> None:
    frame = _synthetic().assign(ci_level_published=[np.nan, 0.95, np.nan])
    ax = plots.forest_plot(frame, dataclasses.replace(_fixed_pool(3), level=0.90))
    assert PUBLISHED_NOTE not in _texts(ax)
    yi, vi = frame.loc[1, "yi"], frame.loc[1, "vi"]
    z90 = 1.6448536269514722
    assert _whiskers(ax)[1] == pytest.approx(
        tuple(np.exp([yi - z90 * np.sqrt(vi), yi + z90 * np.sqrt(vi)])), rel=1e-12)


def test_forest_of_a_result_alone_has_no_published_limits() -> None:
    frame = _synthetic()
    result = ma.pool(frame["yi"].to_numpy(), frame["vi"].to_numpy(), measure="OR")
    texts = _texts(plots.forest(result))
    assert PUBLISHED_NOTE not in texts
    assert "1.50 [0.71, 3.16]" in texts


def test_forest_subgroups_keep_the_published_limits(alpadir_run) -> None:
    column = "dose_class"
    ax = plots.forest_plot(alpadir_run.subgroup_data[column], alpadir_run.result,
                           subgroups=alpadir_run.subgroups[column])
    texts = _texts(ax)
    assert "1.20 [0.58, 2.50]" in texts and PUBLISHED_NOTE in texts


# ----------------------------------------------------------------------------- report table


def test_study_table_shows_alpadir_as_published(alpadir_run) -> None:
    table = study_table([alpadir_run])
    row = table.set_index("study").loc["Reynaud 2017"]
    assert row["effect (95% CI)"] == "1.20 (0.58 to 2.50)"
    assert row["interval"] == "published"
    assert row["data"] == "published estimate"
    others = table[table["study"] != "Reynaud 2017"]
    assert (others["interval"] == "computed").all()
    assert "6.25 (2.42 to 16.11)" in set(others["effect (95% CI)"])
    weights = table["weight (%)"].astype(float)
    assert weights.sum() == pytest.approx(100.0, abs=0.2)  # one-decimal rounding


def test_report_subgroup_table_keeps_published_limits_of_a_one_study_subgroup() -> None:
    # ALPADIR is alone in its psychosocial ('minimal') subgroup: the subgroup table shows
    # its published CI, as its forest row does, not the 2.49 recomputed from vi.
    from pathlib import Path

    import analysis as ma
    from analysis.report.plan import read_plan, run_analysis
    from analysis.report.tables import subgroup_table

    root = Path(__file__).resolve().parents[1]
    import dataclasses

    # a plan that allows one-study subgroups (the shipped plan asks for two)
    plan = dataclasses.replace(read_plan(root / "analysis_plan.toml"), min_studies_per_subgroup=1)
    trials = ma.load_trials(root / "trials")
    spec = next(s for s in plan.analyses if s.id == "abstinence")
    table = subgroup_table([run_analysis(trials, spec, plan)])
    alone = table[(table["k"] == 1) & table["effect (95% CI)"].str.startswith("1.20")]
    assert not alone.empty
    assert set(alone["effect (95% CI)"]) == {"1.20 (0.58 to 2.50)"}
    assert "p = <" not in " ".join(table["test for subgroup differences"])
