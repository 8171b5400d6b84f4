"""Figure captions of the report: what each figure shows, with the run's own numbers.

Pure functions from an :class:`~analysis.report.plan.AnalysisRun`, its
:class:`~analysis.report.plan.Plan` and a figure stem (one of
:func:`analysis.report.figures.figure_stems`) to a plain-text caption. Every caption names
the model, k (comparisons and studies) and the estimate or slope with its interval (at the
plan's level) and p-value on the measure's scale, then what the figure adds. Numbers are
formatted by the tables' formatters (:mod:`analysis.report.tables`), so a caption and a
table never show the same number two ways.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis.bias import egger_test
from analysis.errors import ConvergenceError
from analysis.gosh import DISTINCT
from analysis.report.plan import AnalysisRun, Plan
from analysis.report.tables import (
    ci_label,
    format_effect,
    format_p_relation,
    format_subgroup_test,
    format_value,
)
from analysis.results import RATIO_MEASURES

__all__ = ["MIN_STUDIES_FUNNEL", "bayes_sentence", "dose_unit", "figure_caption", "gosh_finding",
           "model_text", "prior_label", "probability_text", "slope_unit", "tsa_sentence"]

#: Fewer studies than this and funnel asymmetry cannot be told from chance (Cochrane
#: Handbook, section 13.3.5.4: tests for funnel plot asymmetry need at least 10 studies).
MIN_STUDIES_FUNNEL = 10

#: Readable names of the tau² estimators (analysis.control.METHODS).
_ESTIMATORS = {"DL": "DerSimonian-Laird", "REML": "REML", "ML": "ML", "PM": "Paule-Mandel",
               "SJ": "Sidik-Jonkman", "HE": "Hedges", "HS": "Hunter-Schmidt",
               "EB": "empirical Bayes"}
_TESTS = {"z": "Wald z", "hksj": "Hartung-Knapp t", "hksj_adhoc": "Hartung-Knapp t (ad hoc)"}
_MULTIARM = {"split": "multi-arm trials' shared control arm split among their comparisons",
             "combine": "multi-arm trials' treatment arms combined into one comparison",
             "correlated": "multi-arm trials' comparisons correlated through the shared "
                           "control arm"}
_FIGURE_NAMES = {"forest": "Forest plot", "leave_one_out": "Leave-one-out analysis",
                 "funnel": "Contour-enhanced funnel plot", "subgroups": "Subgroup analysis",
                 "dose_response": "Dose-response curve",
                 "cumulative": "Cumulative meta-analysis by year",
                 "baujat": "Baujat plot", "bubble": "Meta-regression on dose (bubble plot)",
                 "labbe": "L'Abbé plot",
                 "gosh": "GOSH plot (every subset of the comparisons)",
                 "posterior": "Bayesian random-effects meta-analysis: posterior of the overall "
                              "effect",
                 "tsa": "Trial sequential analysis",

                 "multiverse": "Specification curve (multiverse analysis)"}


def model_text(method: str, ci_method: str, level: float) -> str:
    """Name a model and its intervals: ``"random-effects model, REML, Wald z 95% CI"``."""
    model = ("fixed-effect (inverse-variance) model" if method == "FE"
             else f"random-effects model, {_ESTIMATORS.get(method, method)}")
    return f"{model}, {_TESTS.get(ci_method, ci_method)} {ci_label(level)}"


def dose_unit(plan: Plan) -> str:
    """``"mg/day"``: the unit in parentheses at the end of the plan's dose label, if any."""
    unit = re.search(r"\(([^()]*)\)\s*$", plan.dose_label)
    return unit.group(1) if unit else "dose units"


def slope_unit(plan: Plan) -> str:
    """``"100 mg/day"``: the plan's dose step with the unit of its dose label, if it has one."""
    return f"{plan.dose_per:g} {dose_unit(plan)}"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _k_text(data: pd.DataFrame) -> str:
    studies = int(data["study_id"].nunique()) if not data.empty else 0
    return (f"k = {_plural(len(data), 'comparison', 'comparisons')} from "
            f"{_plural(studies, 'study', 'studies')}")


def _effect(measure: str, estimate: float, low: float, high: float, level: float) -> str:
    """``"RR 0.85 (95% CI 0.67 to 1.08)"``, through the tables' :func:`format_effect`."""
    text = format_effect(estimate, low, high, measure)
    return f"{measure} " + text.replace("(", f"({ci_label(level)} ", 1)


def _scale(measure: str) -> str:
    return " (ratio scale, log axis)" if measure in RATIO_MEASURES else ""


def _pooled(run: AnalysisRun, plan: Plan) -> str:
    """Model, k, pooled estimate with CI and p (the primary model of the run)."""
    result = run.result
    assert result is not None
    measure = run.spec.measure
    model = model_text(result.method, result.ci_method, plan.level)
    return (f"{model[:1].upper()}{model[1:]}; "
            f"{_k_text(run.data)}. Pooled "
            f"{_effect(measure, result.estimate, result.ci_low, result.ci_high, plan.level)}"
            f", p {format_p_relation(result.pvalue)}")


def _heterogeneity(run: AnalysisRun, plan: Plan) -> str:
    result = run.result
    assert result is not None
    text = f"tau² = {result.tau2:.3f}, I² = {result.i2:.1f}%"
    if result.method != "FE" and result.k >= 2 and np.isfinite(result.pi_low):
        low, high = (format_value(v, run.spec.measure) for v in (result.pi_low, result.pi_high))
        text += f"; {100 * plan.level:g}% prediction interval {low} to {high}"
    return text


def _forest(run: AnalysisRun, plan: Plan) -> str:
    return f"{_pooled(run, plan)}; {_heterogeneity(run, plan)}."


def _not_estimable_forest(run: AnalysisRun) -> str:
    """Caption a forest plot of studies none of which is estimable (no model, no pooled row)."""
    rows = run.not_estimable
    return (f"No pooled result: no comparison is estimable ({_k_text(rows)}; "
            f"the {run.spec.measure} needs events in at least one arm, and not every "
            "participant of both arms with the event), so the studies are shown with their "
            "counts only.")


def _funnel(run: AnalysisRun, plan: Plan) -> str:
    assert run.result is not None
    studies = int(run.data["study_id"].nunique())
    try:
        egger = egger_test(run.result)
        test = (f"Egger's regression test (weighted regression of the effect on its standard "
                f"error) p {format_p_relation(egger.pvalue)}")
    except (ValueError, ConvergenceError) as exc:
        test = f"Egger's regression test not computed ({exc})"
    text = (f"Effects against their standard errors, with shaded regions of two-sided "
            f"p < 0.01, 0.01-0.05 and 0.05-0.10 around the null; vertical line: the pooled "
            f"estimate. {_pooled(run, plan)}. {test}.")
    if studies < MIN_STUDIES_FUNNEL:
        text += (f" Fewer than {MIN_STUDIES_FUNNEL} studies ({studies}): funnel asymmetry and "
                 "Egger's test are not interpretable (Cochrane Handbook 13.3.5.4).")
    return text


def _leave_one_out(run: AnalysisRun, plan: Plan) -> str:
    loo = run.leave_one_out
    assert loo is not None
    measure = run.spec.measure
    estimates = np.asarray(loo.estimate, dtype=float)
    text = (f"Each study omitted in turn (a multi-arm trial with all its comparisons), refitted "
            f"with the same model. {_pooled(run, plan)} with all studies")
    if np.isfinite(estimates).any():
        low, high = int(np.nanargmin(estimates)), int(np.nanargmax(estimates))
        text += (f"; omitting one study, the pooled {measure} ranged from "
                 f"{format_value(estimates[low], measure)} (without {loo.study[low]}) to "
                 f"{format_value(estimates[high], measure)} (without {loo.study[high]})")
    return text + "."


def _cumulative(run: AnalysisRun, plan: Plan) -> str:
    cumulative = run.cumulative
    assert cumulative is not None
    measure = run.spec.measure
    first = (f"{measure} {format_value(cumulative.estimate[0], measure)}"
             if np.isfinite(cumulative.estimate[0]) else "not estimable")
    return (f"Studies added one at a time in order of publication year (a multi-arm trial "
            f"with all its comparisons), each step refitted with the same model; first step "
            f"({cumulative.study[0]}): {first}. Final step: {_pooled(run, plan)}.")


def _baujat(run: AnalysisRun, plan: Plan) -> str:
    frame = run.baujat
    assert frame is not None and run.result is not None
    x, y = frame["x"].to_numpy(float), frame["y"].to_numpy(float)
    most_q, most_influence = int(np.nanargmax(x)), int(np.nanargmax(y))
    return (f"Each comparison's contribution to heterogeneity (x: squared residual over "
            f"vi + tau²) against its influence on the pooled estimate (y: squared change of "
            f"the estimate when it is left out, over that estimate's variance). "
            f"{_pooled(run, plan)}; Q = {run.result.q:.2f} on {run.result.k - 1} df. "
            f"Largest contribution to heterogeneity: "
            f"{frame['study'].iloc[most_q]} ({x[most_q]:.2f}); largest influence: "
            f"{frame['study'].iloc[most_influence]} ({y[most_influence]:.2f}).")


def _labbe(run: AnalysisRun, plan: Plan) -> str:
    arm_level = run.data[~run.data["from_reported_estimate"].astype(bool)]
    left_out = len(run.data) - len(arm_level)
    text = (f"Event proportion in the treatment arm against the control arm, one point per "
            f"comparison with arm-level counts ({_k_text(arm_level)}"
            + (f"; {_plural(left_out, 'comparison', 'comparisons')} entered by a published "
               "estimate not shown" if left_out else "")
            + f"); diagonal: no difference; curve: the pooled {run.spec.measure} applied to "
              f"each control proportion. {_pooled(run, plan)}.")
    return text


def _subgroups(run: AnalysisRun, plan: Plan, column: str) -> str:
    result = run.subgroups[column]
    measure = run.spec.measure
    groups = "; ".join(
        f"{record['group']}: k = {int(record['k'])}, "
        f"{_effect(measure, record['estimate'], record['ci_low'], record['ci_high'], plan.level)}"
        for record in result.subgroups.to_dict("records"))
    tau2 = ("a separate tau² per subgroup" if result.tau2_model == "separate"
            else "a common tau²")
    return (f"Subgroups by {run.subgroup_titles.get(column, column.replace('_', ' '))}: "
            f"{model_text(result.method, result.ci_method, plan.level)} in each subgroup "
            f"({tau2}); {_k_text(run.subgroup_data[column])}. {groups}. Test for subgroup "
            f"differences (between subgroups): {format_subgroup_test(result)}.")


def _dose_row(run: AnalysisRun, plan: Plan) -> dict[str, float]:
    assert run.dose_table is not None
    table = run.dose_table
    row = table[(table["metric"] == plan.dose_primary_metric)
                & (table["model"] == plan.dose_primary_model)]
    record = row.iloc[0]
    return {key: float(record[key]) for key in ("slope_per_unit", "ci_low", "ci_high")}


def _dose_response(run: AnalysisRun, plan: Plan) -> str:
    fit = run.dose_result
    assert fit is not None
    measure = run.spec.measure
    null = "1" if measure in RATIO_MEASURES else "0"
    row = _dose_row(run, plan)
    method = "fixed effect" if fit.method == "FE" else (
        f"{_ESTIMATORS.get(fit.method, fit.method)}, a random effect per study")
    method += f", {_TESTS['z']} {ci_label(plan.level)}"
    text = (f"Dose-response meta-analysis, primary model: {fit.model} in dose metric "
            f"{plan.dose_primary_metric}, one-stage ({method}), no intercept. Each dose arm "
            f"is compared with its own trial's {plan.comparator or 'control'} arm at dose 0, the "
            f"reference ({measure} = {null}); the curve is constrained through the "
            f"reference, and the comparisons of a multi-arm trial are correlated through "
            f"the shared control arm. k = {_plural(fit.k, 'comparison', 'comparisons')} from "
            f"{_plural(fit.n_studies, 'study', 'studies')}. ")
    if fit.model == "linear":
        slope = _effect(measure, row["slope_per_unit"], row["ci_low"], row["ci_high"],
                        plan.level)
        text += f"Slope: {slope} per {slope_unit(plan)}, p {format_p_relation(fit.qm_pvalue)}. "
    else:
        text += f"Wald test of the dose terms: p {format_p_relation(fit.qm_pvalue)}. "
    text += (f"Band: {ci_label(plan.level)} of the curve; points: each comparison at its dose, "
             f"labelled by study, area proportional to 1/vi. Unlike the bubble plot (a "
             f"meta-regression with an intercept across comparisons), the curve has no "
             f"intercept: a trial's whole effect against {plan.comparator or 'control'} is "
             f"attributed to its dose, "
             f"so the two slopes can differ, even in sign.")
    return text


def _bubble(run: AnalysisRun, plan: Plan) -> str:
    result = run.dose_regression
    assert result is not None
    measure = run.spec.measure
    column = plan.dose_column
    per = plan.dose_per
    slope = _effect(measure, per * float(result.coef[column]),
                    per * float(result.ci_low[column]), per * float(result.ci_high[column]),
                    plan.level)
    intercept = _effect(measure, float(result.coef["intrcpt"]),
                        float(result.ci_low["intrcpt"]), float(result.ci_high["intrcpt"]),
                        plan.level)
    return (f"Meta-regression of the comparisons' effects on dose metric {column} "
            f"(mixed-effects meta-regression with an intercept, "
            f"{model_text(result.method, result.ci_method, plan.level)}; "
            f"{_MULTIARM.get(plan.multiarm, plan.multiarm)}); {_k_text(run.data)}. "
            f"Intercept ({measure} at dose 0, extrapolated): {intercept}; slope: "
            f"{slope} per "
            f"{slope_unit(plan)}, p {format_p_relation(float(result.pvalue[column]))}; "
            f"residual tau² = {result.tau2:.3f}. Line: fitted {measure}; dark band: its "
            f"{ci_label(plan.level)}; light band: {100 * plan.level:g}% prediction interval. "
            f"Points: comparisons, labelled by study, area proportional to the weight "
            f"1/(vi + tau²). The line is not constrained through {measure} = "
            f"{'1' if measure in RATIO_MEASURES else '0'} at dose 0: it compares comparisons "
            f"at higher and lower doses across trials, which is why it can slope differently "
            f"from the dose-response curve (no intercept, each trial against its own "
            f"{plan.comparator or 'control'} arm).")


def gosh_finding(run: AnalysisRun) -> str:
    """Describe what the GOSH diagnostics found.

    Two distinct clusters and the study that separates them, or no distinct clusters and
    the study whose inclusion moves the mean subset estimate most (the highlighted one).
    """
    from analysis.report.robustness import gosh_highlight

    frame = run.gosh_diagnostics
    assert frame is not None
    measure = run.spec.measure
    row = frame.iloc[gosh_highlight(frame)]
    r2 = float(row["cluster_r2"])
    shift = (f"the mean subset {measure} is {format_value(float(row['estimate_with']), measure)} "
             f"with {row['study']} and {format_value(float(row['estimate_without']), measure)} "
             f"without it")
    if bool(row["separates"]):
        return (f"the subsets form two distinct clusters (2-means between-cluster share "
                f"R² = {r2:.2f} > {DISTINCT:g}), separated by the inclusion of {row['study']}: "
                f"{shift}")
    return (f"no two distinct clusters (2-means between-cluster share R² = {r2:.2f}, "
            f"at most {DISTINCT:g} for distinct clusters); highlighted, the study whose "
            f"inclusion shifts the estimate most: {shift}")


def _gosh(run: AnalysisRun, plan: Plan) -> str:
    fit = run.gosh
    assert fit is not None and run.result is not None
    k = int(run.result.k)
    subsets = (f"all {len(fit.estimate):,} subsets (2^{k} - 1)" if fit.exact
               else f"{len(fit.estimate):,} random subsets (seed {fit.seed})")
    method = ", ".join(model_text(fit.method, "z", plan.level).split(", ")[:2])
    text = (f"The pooled estimate of each subset of the comparisons against its I², "
            f"{subsets}, each fitted with the {method}; vermillion: subsets "
            f"with the highlighted study, blue: without. {_pooled(run, plan)} with all. "
            f"GOSH diagnostics: {gosh_finding(run)}.")
    if k < MIN_STUDIES_FUNNEL:
        text += (f" With k = {k} comparisons (fewer than {MIN_STUDIES_FUNNEL}) the plot has "
                 f"only {2**k - 1} subsets, {k} of them single comparisons: clusters and "
                 f"shifts are suggestive only.")
    return text


def prior_label(text: str) -> str:
    """Name a plan's prior for tau: ``"half-normal(0.5)"``, ``"Turner et al. 2015 ..."``."""
    if text.startswith("turner"):
        inside = text.removeprefix("turner").strip("() ")
        return "Turner et al. 2015 log-normal" + (f" ({inside})" if inside else "")
    return text


def probability_text(p: float) -> str:
    """Format a posterior probability: two decimals, ``"> 0.99"``/``"< 0.01"`` at the ends."""
    return "> 0.99" if p > 0.995 else "< 0.01" if p < 0.005 else f"{p:.2f}"


def _bayes_numbers(run: AnalysisRun, text: str, plan: Plan) -> dict[str, str]:
    fit = run.bayes[text]
    measure = run.spec.measure
    crl = f"{100 * plan.level:g}% CrI"
    return {
        "mu": f"{format_value(fit.mu.median, measure)} ({crl} "
              f"{format_value(fit.mu.ci_low, measure)} to {format_value(fit.mu.ci_high, measure)})",
        "tau": f"{fit.tau.median:.2f} ({crl} {fit.tau.ci_low:.2f} to {fit.tau.ci_high:.2f})",
        "new": f"{format_value(fit.theta_new.ci_low, measure)} to "
               f"{format_value(fit.theta_new.ci_high, measure)}",
        "p": probability_text(1.0 - float(fit.cdf("mu", 0.0)[0])),
    }


def bayes_sentence(run: AnalysisRun, plan: Plan) -> str:
    """Describe the Bayesian result: the primary prior first, then each sensitivity prior."""
    measure = run.spec.measure
    null = "1" if measure in RATIO_MEASURES else "0"
    texts = list(run.bayes)
    first = _bayes_numbers(run, texts[0], plan)
    out = (f"Under a {prior_label(texts[0])} prior on tau (flat prior on mu), the posterior "
           f"median {measure} is {first['mu']}; P({measure} > {null}) = {first['p']} (the side "
           f"\"{run.spec.favours[1]}\"); tau {first['tau']}; "
           f"{100 * plan.level:g}% prediction interval for a new trial {first['new']}")
    for text in texts[1:]:
        other = _bayes_numbers(run, text, plan)
        out += (f"; with {prior_label(text)}: {measure} {other['mu']}, "
                f"P({measure} > {null}) = {other['p']}")
    return out + "."


def _posterior(run: AnalysisRun, plan: Plan) -> str:
    studies = int(run.data["study_id"].nunique())
    text = (f"Posterior density of the overall effect mu (Bayesian random-effects model, "
            f"bayesmeta's exact numerical integration; {_k_text(run.data)}) under each prior "
            f"for the heterogeneity tau: the primary prior solid, its {100 * plan.level:g}% "
            f"shortest credible interval shaded; vertical line: no effect. "
            f"{bayes_sentence(run, plan)} For comparison, the primary frequentist analysis: "
            f"{_pooled(run, plan)}.")
    if studies < 3:
        text += (f" With {_plural(studies, 'study', 'studies')}, tau is informed almost only "
                 "by its prior.")
    if len(run.data) > studies:
        text += (" The Bayesian model takes one row per trial: a multi-arm trial enters "
                 "once, its treatment arms combined (Cochrane Handbook 23.3.4).")
    return text


def tsa_sentence(run: AnalysisRun) -> str:
    """Describe the TSA: RIS, information accrued, which boundaries the Z-curve crossed."""
    tsa = run.tsa
    assert tsa is not None
    ris = tsa.sequential_information_size
    accrued = float(tsa.cumulative_n[-1])
    z = np.asarray(tsa.zval, dtype=float)
    conventional = bool(np.any(np.abs(z) >= 1.959963984540054))
    crossed = {"benefit": "crosses the monitoring boundary in the anticipated direction",
               "harm": "crosses the monitoring boundary opposite to the anticipated effect",
               "futility": "enters the futility region",
               "reached": "reaches the required information size without crossing a boundary",
               "insufficient": "crosses neither the monitoring nor the futility boundary"}
    text = (f"the required information size is {ris:,.0f} participants; the trials accrued "
            f"{accrued:,.0f} ({100 * accrued / ris:.0f}%); the Z-curve "
            f"{crossed[tsa.conclusion]}")
    if tsa.conclusion == "insufficient":
        text += (f" (final Z = {z[-1]:.2f}; "
                 + ("it passes the conventional |Z| = 1.96, which ignores repeated testing"
                    if conventional else "it never passes the conventional |Z| = 1.96") + ")")
    if tsa.conclusion in ("benefit", "harm", "futility"):
        text += f" at {tsa.study[tsa.conclusion_trial]}"
    return text + f", so {tsa.conclusion_text}"


def _tsa(run: AnalysisRun, plan: Plan) -> str:
    tsa = run.tsa
    assert tsa is not None and run.tsa_control_rate is not None
    measure = run.spec.measure
    model = ("fixed-effect" if tsa.method == "FE"
             else f"{_ESTIMATORS.get(tsa.method, tsa.method)} random-effects")
    spending = {"obf": "O'Brien-Fleming", "pocock": "Pocock"}[tsa.spending]
    adjust = {"D2": f"D²-adjusted, D² = {100 * tsa.d2:.0f}%",
              "I2": f"I²-adjusted, I² = {100 * tsa.i2:.0f}%",
              "none": "not adjusted for heterogeneity"}[tsa.heterogeneity]
    futility = ("; beta-spending futility boundaries (diamonds, non-binding; none is drawn "
                "where it lies below zero)" if tsa.futility_spending else "")
    trials = len(tsa.study)
    return (f"Cumulative Z-curve ({model} model, trials in order of publication; "
            f"{_plural(trials, 'trial', 'trials')}, a multi-arm trial's treatment arms "
            f"combined) against Lan-DeMets {spending} alpha-spending monitoring "
            f"boundaries ({'two' if tsa.sides == 2 else 'one'}-sided alpha {tsa.alpha:g}, "
            f"power {100 * (1 - tsa.beta):g}%){futility}; the boundaries exist only at the "
            f"looks (points), where the alpha spent is too small for a finite boundary none "
            f"is drawn. The required information size "
            f"assumes an anticipated {measure} of {tsa.effect:g} (an assumption of the analysis "
            f"plan, not an estimate) and a control event rate of "
            f"{100 * run.tsa_control_rate:.1f}% (the pooled control arms), {adjust}. "
            f"In these data {tsa_sentence(run)}. The conventional (non-sequential) primary "
            f"analysis: {_pooled(run, plan)}.")


def _multiverse(run: AnalysisRun, plan: Plan) -> str:
    universe = run.multiverse
    assert universe is not None
    shares = universe.shares()
    choices = ", ".join(f"{name.replace('_', ' ')} ({len(universe.levels[name])})"
                        for name in universe.choices)
    return (f"Every combination of {choices} levels: {universe.n_total} specifications, "
            f"{len(universe)} with at least two studies (the others are infeasible). Top: "
            f"each specification's estimate with its {100 * plan.level:g}% CI, ordered by "
            f"estimate; the CI excludes the null above in {100 * shares['ci_above']:.0f}% "
            f"and below in {100 * shares['ci_below']:.0f}% of them, and includes it in "
            f"{100 * shares['ci_includes']:.0f}%. The axis spans the 5th to the 95th "
            "percentile of the interval limits (longer bars are cut). Below: the levels "
            "each specification uses. Random-effects models with the tau² estimators "
            + ", ".join(universe.levels["method"]) + " and the CI methods "
            + ", ".join(_TESTS.get(c, c) for c in universe.levels["ci"])
            + f"; the primary analysis has {_k_text(run.data)}.")


def figure_caption(run: AnalysisRun, plan: Plan, stem: str) -> str:
    """Return the plain-text caption of figure ``stem`` of ``run``.

    Parameters
    ----------
    run : AnalysisRun
        The analysis the figure belongs to (its results give every number).
    plan : Plan
        Supplies the level of every interval label, the dose step and its unit.
    stem : str
        One of :func:`analysis.report.figures.figure_stems` for ``run``.

    Returns
    -------
    str
        ``"<figure name>: <analysis label> (<measure>). <what it shows, model, k, numbers>"``.

    Raises
    ------
    ValueError
        If ``stem`` is not a figure of ``run``.
    """
    analysis_id = run.spec.id
    kind = stem.removesuffix(f"_{analysis_id}").split(f"_{analysis_id}_")[0]
    head = (f"{_FIGURE_NAMES.get(kind, kind)}: {run.spec.label}, "
            f"{run.spec.measure}{_scale(run.spec.measure)}.")
    builders = {"forest": _forest, "funnel": _funnel, "leave_one_out": _leave_one_out,
                "cumulative": _cumulative, "baujat": _baujat, "labbe": _labbe,
                "dose_response": _dose_response, "bubble": _bubble, "gosh": _gosh,
                "posterior": _posterior, "tsa": _tsa, "multiverse": _multiverse}
    if kind == "subgroups":
        column = stem.split(f"_{analysis_id}_", 1)[-1]
        if column not in run.subgroups:
            raise ValueError(f"figure {stem!r}: {analysis_id!r} has no subgrouping {column!r}")
        return f"{head} {_subgroups(run, plan, column)}"
    if kind == "forest" and run.result is None and not run.not_estimable.empty:
        return f"{head} {_not_estimable_forest(run)}"
    if kind in ("gosh", "posterior", "tsa"):
        from analysis.report.figures import figure_stems

        if stem not in figure_stems(run):
            raise ValueError(f"figure {stem!r} is not a figure of analysis {analysis_id!r}")
    if kind not in builders or run.result is None:
        raise ValueError(f"figure {stem!r} is not a figure of analysis {analysis_id!r}")
    return f"{head} {builders[kind](run, plan)}"
