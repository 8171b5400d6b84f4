"""GOSH, small-study tests, Bayesian and trial sequential analyses in the report.

Issue 14 item 6 and issue 15 item 4: per analysis the GOSH plot (with a caveat when k is
small), the small-study table, the Bayesian posterior under three priors and the TSA, each
with its figure, caption, table and narrative sentence. The expected numbers are recomputed
here from the data with the library's own functions called directly (not read back from the
run), then formatted as the report formats them.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.bayesian import bayesmeta, half_cauchy, half_normal, turner_prior
from analysis.bayesian.spec import parse_tau_prior
from analysis.bias import egger_test, trim_and_fill
from analysis.data import load_trials
from analysis.fail_safe import fail_safe_n
from analysis.report import captions, robustness_tables
from analysis.report.captions import MIN_STUDIES_FUNNEL, figure_caption
from analysis.report.figures import draw_figure, figure_stems
from analysis.report.narrative import analysis_paragraphs
from analysis.report.plan import AnalysisRun, Plan, PlanError, read_plan, run_analysis
from analysis.report.robustness_tables import (
    FEW_STUDIES_CAVEAT,
    bayes_table,
    small_study_table,
    tsa_table,
)
from analysis.sequential import trial_sequential_analysis
from analysis.small_study import harbord_test

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "valid_trials"
TURNER = "turner(signs / symptoms reflecting continuation / end of condition)"


def _shipped(tmp_path: Path, extra: dict[str, str] | None = None) -> Plan:
    text = (REPO / "analysis_plan.toml").read_text(encoding="utf-8")
    text = re.sub(r'(?m)^trials = .*$', f'trials = "{REPO / "trials"}"', text)
    for pattern, replacement in (extra or {}).items():
        text = re.sub(pattern, replacement, text)
    path = tmp_path / "plan.toml"
    path.write_text(text, encoding="utf-8")
    return read_plan(path)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Plan, dict[str, AnalysisRun]]:
    plan = _shipped(tmp_path_factory.mktemp("plan"))
    trials = load_trials(plan.trials)
    runs = {spec.id: run_analysis(trials, spec, plan) for spec in plan.analyses
            if spec.id in ("abstinence", "relapse", "dropout", "cumulative_abstinence_days")}
    return plan, runs


# --- the plan's new keys -------------------------------------------------------------------


def _plan_text(extra: str) -> str:
    return (f'[report]\ntitle = "Test"\ntrials = "{FIXTURE}"\n\n'
            '[[analysis]]\nid = "abstinence"\noutcome = "abstinence"\nmeasure = "OR"\n\n'
            '[[analysis]]\nid = "pda"\noutcome = "percent_days_abstinent"\nmeasure = "MD"\n\n'
            f"{extra}")


def _problems(tmp_path: Path, extra: str) -> list[tuple[str | None, str | None, str]]:
    path = tmp_path / "plan.toml"
    path.write_text(_plan_text(extra), encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        read_plan(path)
    assert str(path) in str(caught.value)
    return [(p.column, p.value, p.rule) for p in caught.value.problems]


def test_shipped_plan_names_the_priors_and_the_tsa_assumptions(
        planned: tuple[Plan, dict[str, AnalysisRun]]) -> None:
    plan, _ = planned
    assert plan.bayes_analyses == ("abstinence", "relapse")
    assert plan.bayes_tau_prior == "half-normal(0.5)"
    assert plan.bayes_sensitivity_priors == ("half-cauchy(0.5)", TURNER)
    assert plan.tsa_analyses == ("abstinence", "relapse")
    assert dict(plan.tsa_effects) == {"abstinence": 1.5, "relapse": 0.8}
    assert (plan.tsa_alpha, plan.tsa_beta, plan.tsa_heterogeneity) == (0.05, 0.2, "D2")
    assert (plan.gosh, plan.gosh_min_k) == (True, 5)


def test_defaults_without_the_new_sections(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(_plan_text(""), encoding="utf-8")
    plan = read_plan(path)
    assert (plan.gosh_min_k, plan.bayes_analyses, plan.tsa_analyses) == (5, (), ())


@pytest.mark.parametrize("value", ["2", "4.5", "0"])
def test_gosh_minimum_must_be_a_whole_number_of_at_least_three(tmp_path: Path,
                                                               value: str) -> None:
    (problem,) = _problems(tmp_path, f"[sensitivity]\ngosh_min_k = {value}\n")
    assert problem[:2] == ("[sensitivity].gosh_min_k", value)
    assert "whole number >= 3" in problem[2]


def test_bad_priors_are_located(tmp_path: Path) -> None:
    found = _problems(tmp_path, '[bayesian]\nanalyses = ["abstinence", "nope"]\n'
                                'tau_prior = "half-normal(-1)"\n'
                                'sensitivity_priors = ["half-cauchy(0.5)", "gamma(1, 2)", '
                                '"turner(nonsense)"]\n')
    columns = {(column, value) for column, value, _ in found}
    assert columns == {("[bayesian].analyses", '"nope"'),
                       ("[bayesian].tau_prior", '"half-normal(-1)"'),
                       ("[bayesian].sensitivity_priors", '"gamma(1, 2)"'),
                       ("[bayesian].sensitivity_priors", '"turner(nonsense)"')}
    rules = " ".join(rule for *_, rule in found)
    assert "unknown Turner et al. outcome type" in rules and "half-normal(scale)" in rules


def test_bad_sequential_settings_are_located(tmp_path: Path) -> None:
    found = _problems(tmp_path, '[sequential]\nanalyses = ["abstinence", "pda"]\n'
                                'effects = { abstinence = 1.0, other = 2 }\nalpha = 0.7\n'
                                'method = "REML"\nfutility = "sometimes"\n')
    columns = {column for column, _, _ in found}
    assert columns == {"[sequential].analyses", "[sequential].effects.abstinence",
                       "[sequential].effects.other", "[sequential].alpha",
                       "[sequential].method", "[sequential].futility"}
    rules = {column: rule for column, _, rule in found}
    assert "binary measure" in rules["[sequential].analyses"]
    assert "not 1" in rules["[sequential].effects.abstinence"]
    missing = _problems(tmp_path, '[sequential]\nanalyses = ["abstinence"]\n')
    assert [c for c, _, _ in missing] == ["[sequential].effects"]


def test_prior_texts_parse_to_the_library_priors() -> None:
    assert parse_tau_prior("half-normal(0.5)").name == half_normal(0.5).name
    assert parse_tau_prior(" half-cauchy(1) ").name == half_cauchy(1.0).name
    assert parse_tau_prior(TURNER).name == turner_prior(
        "signs / symptoms reflecting continuation / end of condition").name
    tau = np.array([0.1, 0.5, 1.0])
    assert np.allclose(parse_tau_prior("half-normal(0.5)").pdf(tau, tau),
                       half_normal(0.5).pdf(tau, tau))
    for bad in ("half-normal", "half-normal(a)", "half-t(1)", "beta(1, 2)"):
        with pytest.raises(ValueError, match="prior"):
            parse_tau_prior(bad)


# --- GOSH ----------------------------------------------------------------------------------


def test_gosh_figure_from_the_plan_minimum(tmp_path: Path,
                                           planned: tuple[Plan, dict[str, AnalysisRun]]) -> None:
    _, runs = planned
    assert runs["abstinence"].result is not None and runs["abstinence"].result.k == 5
    assert "gosh_abstinence" in figure_stems(runs["abstinence"])
    assert "gosh_dropout" in figure_stems(runs["dropout"])
    assert not any(s.startswith("gosh_") for s in figure_stems(runs["relapse"]))  # k = 2
    stricter = _shipped(tmp_path, {r"(?m)^gosh_min_k = .*$": "gosh_min_k = 6"})
    trials = load_trials(stricter.trials)
    assert "gosh_abstinence" not in figure_stems(
        run_analysis(trials, stricter.analysis("abstinence"), stricter))
    assert "gosh_dropout" in figure_stems(
        run_analysis(trials, stricter.analysis("dropout"), stricter))


def test_gosh_caption_numbers_and_finding(planned: tuple[Plan, dict[str, AnalysisRun]]) -> None:
    plan, runs = planned
    run = runs["abstinence"]
    text = figure_caption(run, plan, "gosh_abstinence")
    assert "all 31 subsets (2^5 - 1)" in text and "random-effects model, REML" in text
    # the highlighted study: the largest shift of the mean subset estimate, recomputed
    assert run.gosh is not None
    incl, est = run.gosh.incl, run.gosh.estimate
    shifts = [est[incl[:, j]].mean() - est[~incl[:, j]].mean() for j in range(incl.shape[1])]
    j = int(np.argmax(np.abs(shifts)))
    with_, without = np.exp(est[incl[:, j]].mean()), np.exp(est[~incl[:, j]].mean())
    assert (f"the mean subset OR is {with_:.2f} with {run.gosh.study[j]} and "
            f"{without:.2f} without it") in text
    assert "no two distinct clusters" in text


def test_gosh_caveat_exactly_below_the_funnel_minimum(
        planned: tuple[Plan, dict[str, AnalysisRun]], monkeypatch: pytest.MonkeyPatch) -> None:
    plan, runs = planned
    caveat = "clusters and shifts are suggestive only"
    assert caveat in figure_caption(runs["abstinence"], plan, "gosh_abstinence")  # k = 5
    assert caveat in figure_caption(runs["dropout"], plan, "gosh_dropout")  # k = 6
    monkeypatch.setattr(captions, "MIN_STUDIES_FUNNEL", 5)
    assert caveat not in figure_caption(runs["abstinence"], plan, "gosh_abstinence")
    assert caveat not in figure_caption(runs["dropout"], plan, "gosh_dropout")  # k = 6
    monkeypatch.setattr(captions, "MIN_STUDIES_FUNNEL", 6)
    assert caveat in figure_caption(runs["abstinence"], plan, "gosh_abstinence")
    with pytest.raises(ValueError, match="not a figure"):
        figure_caption(runs["relapse"], plan, "gosh_relapse")


# --- small-study table ---------------------------------------------------------------------


def _rows(frame: pd.DataFrame, outcome: str) -> dict[str, dict[str, object]]:
    return {r["test"]: r for r in frame[frame["outcome"] == outcome].to_dict("records")}


@pytest.mark.filterwarnings("ignore::analysis.errors.FewStudiesWarning")
def test_small_study_table_numbers(planned: tuple[Plan, dict[str, AnalysisRun]]) -> None:
    plan, runs = planned
    frame = small_study_table(list(runs.values()), plan.level)
    run = runs["abstinence"]
    assert run.result is not None
    rows = _rows(frame, run.spec.label)
    egger = egger_test(run.data["yi"], run.data["vi"])
    assert rows["Egger's regression test"]["p"] == f"{egger.pvalue:.3f}"
    assert rows["Egger's regression test"]["statistic"] == f"t (3 df) = {egger.zval:.2f}"
    assert rows["Egger's regression test"]["k"] == 5
    counts = run.data[~run.data["from_reported_estimate"].astype(bool)]
    harbord = harbord_test(counts["events_t"], counts["n_t"], counts["events_c"], counts["n_c"])
    assert rows["Harbord's test"]["k"] == len(counts) == 4  # one study by its estimate only
    assert rows["Harbord's test"]["p"] == f"{harbord.pvalue:.3f}"
    filled = trim_and_fill(run.result)
    assert rows["Trim-and-fill (L0)"]["value"] == f"k0 = {filled.k0}"
    assert rows["Trim-and-fill (L0)"]["estimate (95% CI)"] == (
        f"{np.exp(filled.result.estimate):.2f} ({np.exp(filled.result.ci_low):.2f} to "
        f"{np.exp(filled.result.ci_high):.2f})")
    fsn = fail_safe_n(run.data["yi"], run.data["vi"])
    assert rows["Fail-safe N (Rosenthal)"]["value"] == f"N = {fsn.fsnum:.0f}"
    # continuous outcome: no binary-outcome tests
    tests = set(_rows(frame, runs["cumulative_abstinence_days"].spec.label))
    assert "Harbord's test" not in tests and "Egger's regression test" in tests


def test_small_study_caveats(planned: tuple[Plan, dict[str, AnalysisRun]],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    plan, runs = planned
    frame = small_study_table(list(runs.values()), plan.level)
    abstinence = _rows(frame, runs["abstinence"].spec.label)
    assert MIN_STUDIES_FUNNEL == 10
    assert {r["caveat"] for r in abstinence.values()} == {FEW_STUDIES_CAVEAT}
    relapse = _rows(frame, runs["relapse"].spec.label)  # 2 comparisons of one study
    assert relapse["Egger's regression test"]["caveat"] == "not run: needs at least 3 studies"
    assert relapse["Peters' test"]["caveat"] == (
        "not run: needs at least 3 informative studies")
    assert relapse["Egger's regression test"]["p"] == ""
    monkeypatch.setattr(robustness_tables, "MIN_STUDIES_FUNNEL", 5)  # 5 studies: enough
    frame = small_study_table(list(runs.values()), plan.level)
    assert {r["caveat"] for r in _rows(frame, runs["abstinence"].spec.label).values()} == {""}


# --- Bayesian ------------------------------------------------------------------------------


def test_bayes_table_and_narrative_numbers(planned: tuple[Plan, dict[str, AnalysisRun]]) -> None:
    plan, runs = planned
    run = runs["abstinence"]
    fits = {text: bayesmeta(run.data["yi"], run.data["vi"], tau_prior=prior)
            for text, prior in (("half-normal(0.5)", half_normal(0.5)),
                                ("half-cauchy(0.5)", half_cauchy(0.5)),
                                (TURNER, parse_tau_prior(TURNER)))}
    frame = bayes_table(list(runs.values()), plan)
    rows = frame[frame["outcome"] == run.spec.label].to_dict("records")
    assert [r["prior (tau)"] for r in rows] == [
        "half-normal(0.5) [primary]", "half-cauchy(0.5)",
        "Turner et al. 2015 log-normal (signs / symptoms reflecting continuation / end of "
        "condition)"]
    for row, fit in zip(rows, fits.values(), strict=True):
        mu = fit.mu
        assert row["mu median (95% CrI)"] == (
            f"{np.exp(mu.median):.2f} ({np.exp(mu.ci_low):.2f} to {np.exp(mu.ci_high):.2f})")
        assert row["tau median (95% CrI)"] == (
            f"{fit.tau.median:.2f} ({fit.tau.ci_low:.2f} to {fit.tau.ci_high:.2f})")
        p = 1 - float(fit.cdf("mu", 0.0)[0])
        assert row["P(effect > null)"] == f"P(OR > 1) = {p:.2f}"
        assert row["side"] == "Favours baclofen"
    primary = fits["half-normal(0.5)"].mu
    text = " ".join(analysis_paragraphs(run, plan))
    assert (f"Under a half-normal(0.5) prior on tau (flat prior on mu), the posterior median OR "
            f"is {np.exp(primary.median):.2f} (95% CrI {np.exp(primary.ci_low):.2f} to "
            f"{np.exp(primary.ci_high):.2f}); P(OR > 1) = ") in text
    assert "with half-cauchy(0.5): OR " in text
    # not planned: no Bayesian rows or sentence
    assert not runs["dropout"].bayes
    assert "Bayesian" not in " ".join(analysis_paragraphs(runs["dropout"], plan))


def test_bayes_fits_survive_the_runs_cache(planned: tuple[Plan, dict[str, AnalysisRun]]) -> None:
    _, runs = planned
    run = runs["relapse"]
    again = pickle.loads(pickle.dumps(run))
    assert list(again.bayes) == list(run.bayes)
    for text in run.bayes:
        assert again.bayes[text].mu.median == run.bayes[text].mu.median


def test_posterior_caption_and_figure(planned: tuple[Plan, dict[str, AnalysisRun]]) -> None:
    plan, runs = planned
    for analysis_id in ("abstinence", "relapse"):
        assert f"posterior_{analysis_id}" in figure_stems(runs[analysis_id])
    text = figure_caption(runs["relapse"], plan, "posterior_relapse")
    assert "With 1 study, tau is informed almost only by its prior." in text
    assert "a multi-arm trial enters once, its treatment arms combined" in text
    # the Bayesian fit and the TSA take one row per trial (Beraha 2016's two dose arms were
    # fitted as two independent trials before)
    assert all(fit.k == 1 for fit in runs["relapse"].bayes.values())
    assert len(runs["relapse"].tsa.study) == 1
    assert "informed almost only" not in figure_caption(runs["abstinence"], plan,
                                                        "posterior_abstinence")
    figure = draw_figure(runs["abstinence"], plan, "posterior_abstinence")
    (ax,) = figure.axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "tau ~ half-normal(0.5)", "tau ~ half-cauchy(0.5)", "tau ~ Turner et al. 2015"]


# --- trial sequential analysis -------------------------------------------------------------


def test_tsa_numbers_in_table_caption_and_narrative(
        planned: tuple[Plan, dict[str, AnalysisRun]]) -> None:
    plan, runs = planned
    run = runs["abstinence"]
    data = run.data
    arm = data[~data["from_reported_estimate"].astype(bool)]
    rate = arm["events_c"].sum() / arm["n_c"].sum()
    tsa = trial_sequential_analysis(data["yi"], data["vi"], data["n_t"] + data["n_c"],
                                    measure="OR", effect=1.5, control_rate=rate,
                                    futility="non-binding")
    ris, accrued = tsa.sequential_information_size, float(data["n_t"].sum() + data["n_c"].sum())
    sentence = (f"the required information size is {ris:,.0f} participants; the trials accrued "
                f"{accrued:,.0f} ({100 * accrued / ris:.0f}%)")
    caption = figure_caption(run, plan, "tsa_abstinence")
    narrative = " ".join(analysis_paragraphs(run, plan))
    assert sentence in caption and sentence in narrative
    assert f"control event rate of {100 * rate:.1f}% (the pooled control arms)" in caption
    assert "anticipated OR of 1.5 (an assumption of the analysis plan, not an estimate)" in (
        caption)
    assert tsa.conclusion == "insufficient"
    assert "crosses neither the monitoring nor the futility boundary" in narrative
    assert f"final Z = {tsa.zval[-1]:.2f}" in narrative
    (row,) = tsa_table([run]).to_dict("records")
    assert row["RIS (participants)"] == f"{ris:,.0f}"
    assert row["control event rate (pooled)"] == f"{100 * rate:.1f}%"
    assert row["heterogeneity correction"] == f"D² = {100 * tsa.d2:.0f}%"
    assert "tsa_abstinence" in figure_stems(run) and "tsa_dropout" not in figure_stems(
        runs["dropout"])
