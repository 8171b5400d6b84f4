"""Multiverse (specification curve): enumeration, agreement with ma.pool, determinism, plan."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis as ma
from analysis.dose import dose_classes
from analysis.report.multiverse_plan import validate_multiverse
from analysis.report.plan import PlanError, read_plan

#: Batched and scalar rma.uni back-ends agree to rounding (the pooling property tests).
RTOL = 1e-7
CUTS, LABELS = (30.0, 80.0), ("<= 30 mg/day", "31-80 mg/day", "> 80 mg/day")


@pytest.fixture(scope="module")
def trials() -> pd.DataFrame:
    return ma.load_trials()


def _small(trials: pd.DataFrame, **extra: object) -> ma.MultiverseResult:
    options: dict[str, object] = dict(
        outcomes=["abstinence", ["abstinence", "abstinence_or_low_risk"]],
        measures=["OR", "RR"], timepoints=["end_of_treatment", "last"],
        analysis_sets=["any", "ITT"], derived=[True, False],
        exclude={"liver_disease": ["all"]}, dose=["any", "<= 30 mg/day"],
        dose_cuts=CUTS, dose_labels=LABELS, methods=["REML", "DL"], ci=["z", "hksj"],
        timepoint_tolerance=4)
    options.update(extra)
    return ma.multiverse(trials, **options)  # type: ignore[arg-type]


def test_count_is_product_of_levels(trials: pd.DataFrame) -> None:
    result = _small(trials)
    product = 2 * 2 * 2 * 2 * 2 * 1 * 2 * 2 * 2 * 2  # reported_estimates has one level
    assert result.n_total == product
    assert len(result.table) + len(result.infeasible) == product
    assert len(result.infeasible) > 0  # e.g. ITT-only abstinence has too few studies
    assert (result.infeasible["reason"].str.contains("fewer than 2")).all()
    assert (result.table["n_studies"] >= 2).all()
    # every combination appears exactly once
    names = list(result.levels)
    both = pd.concat([result.table[names], result.infeasible[names]])
    assert not both.duplicated().any()


def _direct(trials: pd.DataFrame, row: pd.Series) -> ma.PoolResult:
    """Rebuild one specification's selection from ma.contrasts and pool it directly."""
    codes = (["abstinence"] if row["outcome"] == "abstinence"
             else ["abstinence", "abstinence_or_low_risk"])
    parts, covered = [], set()
    for code in codes:
        frame = ma.contrasts(
            trials, outcome=code, measure=row["measure"],
            timepoint="end_of_treatment" if row["timepoint"] == "end of treatment" else "last",
            timepoint_tolerance=4,
            analysis_sets=("ITT",) if row["analysis_set"] == "ITT only"
            else ("ITT", "mITT", "other", "completers"),
            include_derived=row["derived"] == "included", drop00=True)
        if frame.empty:
            continue
        frame = frame[np.isfinite(frame["yi"].astype(float))
                      & ~frame["study_id"].isin(covered)]
        covered |= set(frame["study_id"])
        parts.append(frame)
    data = pd.concat(parts, ignore_index=True)
    if row["liver_disease"] != "all studies":
        data = data[~data["liver_disease"].isin(["all"])]  # not reported: kept
    if row["dose_class"] != "any dose":
        classes = dose_classes(data["dose_target_mg_day"].astype(float), CUTS, LABELS)
        data = data[np.asarray(classes == row["dose_class"])]
    result = ma.pool(data["yi"].to_numpy(float), data["vi"].to_numpy(float),
                     method=row["method"], ci=row["ci"], tau2_ci=False)
    assert isinstance(result, ma.PoolResult)
    return result


def test_each_specification_equals_direct_pool(trials: pd.DataFrame) -> None:
    result = _small(trials)
    sample = result.table.sample(n=25, random_state=1)
    for _, row in sample.iterrows():
        direct = _direct(trials, row)
        assert direct.k == row["k"]
        for name in ("estimate", "ci_low", "ci_high", "pvalue", "tau2", "i2"):
            assert getattr(direct, name) == pytest.approx(row[name], rel=RTOL, abs=1e-10), name
        ratio = row["measure"] in ("OR", "RR")
        shown = np.exp(row["estimate"]) if ratio else row["estimate"]
        assert row["display_estimate"] == pytest.approx(shown)


def test_deterministic_and_executor_equal(trials: pd.DataFrame) -> None:
    first = _small(trials)
    again = _small(trials)
    with ThreadPoolExecutor(max_workers=2) as pool:
        spread = _small(trials, executor=pool)
    pd.testing.assert_frame_equal(first.table, again.table)
    pd.testing.assert_frame_equal(first.table, spread.table)
    pd.testing.assert_frame_equal(first.infeasible, spread.infeasible)


def test_summary_shares_and_influence(trials: pd.DataFrame) -> None:
    result = _small(trials)
    t = result.table
    shares = result.shares()
    assert shares["ci_above"] == pytest.approx(float((t["ci_low"] > 0).mean()))
    assert shares["ci_above"] + shares["ci_below"] + shares["ci_includes"] == pytest.approx(1)
    effects = result.influence()
    for _, row in effects.iterrows():
        medians = t.groupby(row["choice"])["estimate"].median()
        assert row["range"] == pytest.approx(medians.max() - medians.min())
    assert list(effects["range"]) == sorted(effects["range"], reverse=True)
    assert "feasible specifications" in result.summary()


def test_mixed_scales_refused(trials: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="one scale"):
        ma.multiverse(trials, outcomes=["abstinence"], measures=["OR", "RD"])


def test_plot_draws_every_specification(trials: pd.DataFrame) -> None:
    result = _small(trials)
    ax = ma.plots.multiverse(result)
    figure = ax.get_figure()
    assert figure is not None and len(figure.axes) == 2
    panel = figure.axes[1]
    assert len(panel.get_yticklabels()) == sum(len(result.levels[c]) for c in result.choices)


def test_shipped_plan_multiverse() -> None:
    plan = read_plan(Path(__file__).parents[1] / "analysis_plan.toml")
    ids = [m.analysis for m in plan.multiverse]
    assert ids == ["abstinence", "relapse", "dropout"]


def test_plan_validation_locates_problems(tmp_path: Path) -> None:
    problems: list[tuple[str, str]] = []

    def add(key: str, rule: str, value: object = None, *, show: bool = True) -> None:
        problems.append((key, rule))

    validate_multiverse({"methods": ["XX"], "nope": {"outcomes": ["a"], "measures": ["OR"]},
                         "abstinence": {"measures": ["OR", "MD"], "dose": ["huge"],
                                        "derived": ["yes"], "colour": 1}},
                        {"abstinence": "x"}, LABELS, add)
    keys = {key for key, _ in problems}
    assert "[multiverse].methods" in keys
    assert "[multiverse.nope]" in keys
    assert "[multiverse.abstinence].outcomes" in keys  # required
    assert "[multiverse.abstinence].measures" in keys  # one scale
    assert "[multiverse.abstinence].dose" in keys
    assert "[multiverse.abstinence].derived" in keys
    assert "[multiverse.abstinence].colour" in keys
    shipped = (Path(__file__).parents[1] / "analysis_plan.toml").read_text(encoding="utf-8")
    plan = tmp_path / "analysis_plan.toml"
    plan.write_text(shipped.replace('dose = ["any", "<= 30 mg/day", "> 80 mg/day"]',
                                    'dose = ["any", "tiny"]')
                    .replace('trials = "trials"',
                             f'trials = "{Path(__file__).parents[1] / "trials"}"'),
                    encoding="utf-8")
    with pytest.raises(PlanError, match=r"\[multiverse.abstinence\].dose = \"tiny\""):
        read_plan(plan)


def test_each_outcome_selection_computed_once(trials: pd.DataFrame,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An outcome used by several outcome definitions (tried first, then a fallback) is
    selected once per (measure, time point, set, derived, reported), not once per use."""
    import importlib

    mv = importlib.import_module("analysis.multiverse")  # ``analysis.multiverse`` is the function
    calls: list[tuple[object, ...]] = []
    real = mv.contrasts

    def counting(frame: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
        calls.append((kwargs["outcome"], kwargs["measure"], kwargs["timepoint"],
                      kwargs["analysis_sets"], kwargs["include_derived"],
                      kwargs["use_reported_estimates"]))
        return real(frame, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mv, "contrasts", counting)
    cached = _small(trials)
    assert len(calls) == len(set(calls)) == 2 * 2 * 2 * 2 * 2  # 2 codes x the other levels
    monkeypatch.undo()
    # the same table as selecting every time afresh (a new cache for each selection)
    selection = mv._selection
    monkeypatch.setattr(mv, "_selection", lambda *args: selection(*args[:-1], {}))
    pd.testing.assert_frame_equal(cached.table, _small(trials).table)
