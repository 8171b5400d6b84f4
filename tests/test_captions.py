"""Figure captions (analysis.report.captions): model, k, estimate, CI and p of the run.

The expected numbers are recomputed here from the run's result objects (exp of the log-scale
estimate, rounded to the tables' 2 decimals), not copied from the captions.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from analysis.data import load_trials
from analysis.report.captions import MIN_STUDIES_FUNNEL, figure_caption
from analysis.report.figures import figure_stems
from analysis.report.plan import AnalysisRun, Plan, read_plan, run_analysis

REPO = Path(__file__).resolve().parent.parent


def _plan(tmp_path: Path, level: str) -> Plan:
    text = (REPO / "analysis_plan.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^level = .*$", f"level = {level}", text)
    text = re.sub(r'(?m)^trials = .*$', f'trials = "{REPO / "trials"}"', text)
    path = tmp_path / "plan.toml"
    path.write_text(text, encoding="utf-8")
    return read_plan(path)


@pytest.fixture(scope="module", params=["0.95", "0.90"])
def planned(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[Plan, dict[str, AnalysisRun]]:
    plan = _plan(tmp_path_factory.mktemp("plan"), request.param)
    trials = load_trials(plan.trials)
    runs = {spec.id: run_analysis(trials, spec, plan)
            for spec in plan.analyses if spec.id in ("dropout", "abstinence")}
    return plan, runs


def _ratio(value: float) -> str:
    return f"{np.exp(value):.2f}"


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"= {value:.3f}"


def test_every_caption_names_model_k_estimate_ci_p_at_the_plan_level(
        planned: tuple[Plan, dict[str, AnalysisRun]]) -> None:
    plan, runs = planned
    ci = f"{100 * plan.level:g}% CI"
    other = "95%" if plan.level != 0.95 else "90%"
    for run in runs.values():
        result = run.result
        assert result is not None
        k = (f"k = {len(run.data)} comparisons from {run.data['study_id'].nunique()} "
             "studies")
        pooled = (f"{run.spec.measure} {_ratio(result.estimate)} ({ci} "
                  f"{_ratio(result.ci_low)} to {_ratio(result.ci_high)}), "
                  f"p {_p(result.pvalue)}")
        stems = figure_stems(run)
        assert {"forest", "funnel", "bubble", "dose_response", "baujat",
                "leave_one_out", "cumulative", "labbe"} <= {s.split(f"_{run.spec.id}")[0]
                                                             for s in stems}
        for stem in stems:
            caption = figure_caption(run, plan, stem)
            assert other not in caption, stem
            assert ci in caption, stem
            assert "REML" in caption and "Wald z" in caption, stem
            if stem.startswith(("forest", "funnel", "leave_one_out", "cumulative",
                                "baujat", "labbe", "gosh", "posterior", "tsa")):
                assert f"andom-effects model, REML, Wald z {ci}" in caption, stem
                assert pooled in caption, stem
            if not stem.startswith(("labbe", "subgroups", "dose_response")):
                assert k in caption, stem


def test_kind_specific_numbers(planned: tuple[Plan, dict[str, AnalysisRun]]) -> None:
    plan, runs = planned
    run = runs["dropout"]
    assert run.result is not None and run.leave_one_out is not None
    studies = run.data["study_id"].nunique()
    assert studies < MIN_STUDIES_FUNNEL
    funnel = figure_caption(run, plan, "funnel_dropout")
    assert "Egger" in funnel and f"Fewer than 10 studies ({studies})" in funnel
    assert "not interpretable" in funnel

    loo = figure_caption(run, plan, "leave_one_out_dropout")
    estimates = np.asarray(run.leave_one_out.estimate)
    assert (f"ranged from {_ratio(estimates.min())} (without "
            f"{run.leave_one_out.study[int(estimates.argmin())]}) to "
            f"{_ratio(estimates.max())}") in loo

    for column, result in run.subgroups.items():
        text = figure_caption(run, plan, f"subgroups_dropout_{column}")
        assert (f"(between subgroups): Q = {result.qb:.2f}, df = {result.qb_df[0]}, "
                f"p {_p(result.qb_pvalue)}") in text
        assert run.subgroup_titles[column] in text  # the field's title, not its code

    regression = run.dose_regression
    assert regression is not None
    bubble = figure_caption(run, plan, "bubble_dropout")
    column = plan.dose_column
    slope = [plan.dose_per * float(s[column]) for s in
             (regression.coef, regression.ci_low, regression.ci_high)]
    assert (f"slope: RR {_ratio(slope[0])} ({100 * plan.level:g}% CI {_ratio(slope[1])} to "
            f"{_ratio(slope[2])}) per 100 mg/day, "
            f"p {_p(float(regression.pvalue[column]))}") in bubble
    assert "with an intercept" in bubble and f"k = {regression.k} comparisons" in bubble
    assert "prediction interval" in bubble and "1/(vi + tau²)" in bubble

    fit = run.dose_result
    assert fit is not None and fit.model == "linear"
    dose = figure_caption(run, plan, "dose_response_dropout")
    coef = [plan.dose_per * float(s.iloc[0]) for s in (fit.coef, fit.ci_low, fit.ci_high)]
    assert (f"Slope: RR {_ratio(coef[0])} ({100 * plan.level:g}% CI {_ratio(coef[1])} to "
            f"{_ratio(coef[2])}) per 100 mg/day, p {_p(fit.qm_pvalue)}") in dose
    assert f"k = {fit.k} comparisons from {fit.n_studies} studies" in dose
    assert "dose 0" in dose and "RR = 1" in dose and "no intercept" in dose
    assert plan.dose_primary_metric in dose


def test_unknown_stem_is_refused(planned: tuple[Plan, dict[str, AnalysisRun]]) -> None:
    plan, runs = planned
    with pytest.raises(ValueError, match="not a figure"):
        figure_caption(runs["dropout"], plan, "violin_dropout")


def test_dose_figures_label_reference_and_trials(
        planned: tuple[Plan, dict[str, AnalysisRun]]) -> None:
    from matplotlib.text import Text

    from analysis.report.figures import draw_figure

    plan, runs = planned
    for run in runs.values():
        labels = set(run.data["label"].astype(str))
        figure = draw_figure(run, plan, f"dose_response_{run.spec.id}")
        (ax,) = figure.axes
        points = [t.get_text() for t in figure.findobj(Text) if t.get_gid() == "dose-label"]
        assert "Placebo" in points
        assert set(points) - {"Placebo"} <= labels and len(points) >= 4
        (reference,) = [a for a in figure.findobj() if getattr(a, "get_gid", None)
                        and a.get_gid() == "dose-reference"]
        np.testing.assert_allclose(reference.get_offsets(), [[0.0, 1.0]])
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert f"Reference: placebo, dose 0, {run.spec.measure} = 1" in legend
        assert "Pooled curve, through the reference" in legend
        assert f"{100 * plan.level:g}% CI" in legend

        figure = draw_figure(run, plan, f"bubble_{run.spec.id}")
        (ax,) = figure.axes
        bubble = {t.get_text() for t in figure.findobj(Text) if t.get_gid() == "bubble-label"}
        assert bubble <= labels and len(bubble) >= len(labels) - 1
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert f"{100 * plan.level:g}% CI" in legend and f"{100 * plan.level:g}% PI" in legend
        assert ax.get_xlabel() == plan.dose_label and ax.get_yscale() == "log"
