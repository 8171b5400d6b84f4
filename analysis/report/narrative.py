"""The results narrative: plain-text paragraphs generated from the analysis runs.

Nothing here is typed by hand: every number comes from the runs (:class:`AnalysisRun`) and
is formatted by the functions the report tables use (:func:`analysis.report.tables.
format_effect`, :func:`~analysis.report.tables.format_p`), and every caveat is stated
exactly when its condition holds in the data. The subject (the intervention's name, the
studies whose disagreement is discussed) comes from the plan's ``[narrative]`` table. The
functions return plain text (no HTML); the report renders it.

:func:`narrative` returns ``{"key_findings": [...], <analysis id>: [...], ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.contrasts import study_intervals
from analysis.report.captions import (
    MIN_STUDIES_FUNNEL,
    bayes_sentence,
    dose_unit,
    model_text,
    slope_unit,
    tsa_sentence,
)
from analysis.report.plan import (
    MIN_STUDIES_DIAGNOSTICS,
    AnalysisRun,
    Plan,
    study_labels,
)
from analysis.report.tables import (
    ci_label,
    format_effect,
    format_p_relation,
    format_subgroup_test,
    format_value,
    rare_events_effect,
    rare_events_footnote,
    runs_level,
    summary_of_findings,
)
from analysis.results import RATIO_MEASURES
from analysis.risk_of_bias import overall_by_study

__all__ = [
    "MIN_STUDIES_SMALL_STUDY_TESTS",
    "analysis_paragraphs",
    "decision_paragraphs",
    "key_findings",
    "narrative",
    "rare_events_sentence",
]

#: Fewer studies than this: funnel plots and tests for small-study effects cannot be
#: interpreted (the captions' rule, Cochrane Handbook v6.4 section 13.3.5.4).
MIN_STUDIES_SMALL_STUDY_TESTS = MIN_STUDIES_FUNNEL


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if not items:
        return "none"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _n_studies(run: AnalysisRun) -> int:
    return int(run.data["study_id"].nunique()) if not run.data.empty else 0


def _participants(run: AnalysisRun) -> str:
    if run.data.empty or "n_t" not in run.data:
        return ""
    total = float(run.data["n_t"].sum() + run.data["n_c"].sum())
    return f"{total:.0f}" if np.isfinite(total) else ""


def _names(frame: pd.DataFrame) -> list[str]:
    """One label per study, in order of appearance."""
    return list(dict.fromkeys(study_labels(frame))) if not frame.empty else []


def model_name(plan: Plan, k: int) -> str:
    """Name the primary model as the captions do (:func:`~analysis.report.captions.model_text`)."""
    if k == 1:
        return "the single study's own estimate"
    return model_text(plan.method, plan.ci, plan.level)


def _null(measure: str) -> str:
    return "1" if measure in RATIO_MEASURES else "0"


def _excludes_null(low: float, high: float) -> bool:
    return bool(low > 0 or high < 0)


def _certainties(runs: Sequence[AnalysisRun], grade: pd.DataFrame,
                 level: float) -> dict[str, str]:
    """GRADE certainty per analysis id, as the summary-of-findings table computes it."""
    table = summary_of_findings(runs, grade, level)
    return {run.spec.id: str(value) for run, value in zip(runs, table["certainty"],
                                                          strict=True)}


def _certainty_text(rating: str) -> str:
    return (f"GRADE certainty {rating}" if rating else
            "certainty not rated: no GRADE judgement for this outcome")


def _effect(run: AnalysisRun) -> str:
    result = run.result
    assert result is not None
    return f"{run.spec.measure} " + format_effect(result.estimate, result.ci_low,
                                                 result.ci_high, run.spec.measure)


def analysis_paragraphs(run: AnalysisRun, plan: Plan, certainty: str = "") -> list[str]:
    """Describe one analysis: its data, estimate and the caveats that apply.

    Parameters
    ----------
    run : AnalysisRun
        The analysis.
    plan : Plan
        For the model's name and the level.
    certainty : str
        The GRADE rating of the summary-of-findings table ("" when not rated).

    Returns
    -------
    list of str
        The result paragraph, then one paragraph of caveats (when any applies).
    """
    spec, result, data = run.spec, run.result, run.data
    ci = ci_label(plan.level)
    if result is None:
        why = run.note or "no estimable comparison"
        return ([f"{spec.label}: not pooled; {why}. The data cannot answer this outcome."]
                + ([rare] if (rare := rare_events_sentence(run)) else []))
    studies, k = _n_studies(run), int(result.k)
    participants = _participants(run)
    who = _plural(studies, "study", "studies") + (
        f" ({_plural(k, 'comparison')})" if k != studies else "")
    if participants:
        who += f", {participants} participants"
    if studies == 1:
        text = (f"{spec.label}: {who}. {_effect(run)} ({ci}), "
                f"p {format_p_relation(result.pvalue)}: "
                f"{_names(data)[0]}'s own result, not a meta-analysis; "
                f"{_certainty_text(certainty)}.")
    else:
        pi = format_effect(result.estimate, result.pi_low, result.pi_high, spec.measure)
        pi_text = pi.split("(")[-1].rstrip(")")
        text = (f"{spec.label}: {who}. Pooled {_effect(run)} "
                f"({model_name(plan, k)}), p {format_p_relation(result.pvalue)}; "
                "prediction interval "
                f"{pi_text}; I² = {result.i2:.1f}%, tau² = {result.tau2:.3f}; "
                f"{_certainty_text(certainty)}.")
    return ([text] + ([" ".join(caveats)] if (caveats := _caveats(run, plan)) else [])
            + ([rare] if (rare := rare_events_sentence(run)) else [])
            + decision_paragraphs(run, plan))


def rare_events_sentence(run: AnalysisRun) -> str:
    """Say what the run's rare-events model gives, as the summary of findings does.

    The OR with its interval (:func:`~analysis.report.tables.rare_events_effect`) and the
    footnote of :func:`~analysis.report.tables.rare_events_footnote` (the model, or why it
    was not fitted); "" when the run has no rare-events model.
    """
    footnote = rare_events_footnote(run)
    if not footnote:
        return ""
    effect = rare_events_effect(run)
    if not effect:
        return footnote
    fit = run.rare_events
    assert fit is not None and fit.result is not None
    return (f"Rare-events sensitivity analysis (no continuity correction): {effect} "
            f"({ci_label(fit.result.level)}), p {format_p_relation(fit.result.pvalue)}. "
            f"{footnote}")


def decision_paragraphs(run: AnalysisRun, plan: Plan) -> list[str]:
    """Describe the Bayesian and trial sequential analyses of a run (those it has).

    Parameters
    ----------
    run : AnalysisRun
        The analysis (its ``bayes`` fits and ``tsa``, or the notes saying why not).
    plan : Plan
        For the level.

    Returns
    -------
    list of str
        A paragraph "Bayesian random-effects analysis: ..." and one "Trial sequential
        analysis: ...", each when computed; a planned one that could not be computed says why.
    """
    out = []
    if run.bayes:
        out.append(f"Bayesian random-effects analysis: {bayes_sentence(run, plan)}")
    elif "bayes" in run.robustness_notes:
        out.append(f"Bayesian random-effects analysis not computed: "
                   f"{run.robustness_notes['bayes']}.")
    if run.tsa is not None and run.tsa_control_rate is not None:
        tsa = run.tsa
        out.append(f"Trial sequential analysis: assuming an anticipated {run.spec.measure} of "
                   f"{tsa.effect:g} (the analysis plan's assumption) and a control event rate "
                   f"of {100 * run.tsa_control_rate:.1f}% (pooled control arms), "
                   f"{tsa_sentence(run)}.")
    elif "tsa" in run.robustness_notes:
        out.append(f"Trial sequential analysis not computed: {run.robustness_notes['tsa']}.")
    return out


def _caveats(run: AnalysisRun, plan: Plan) -> list[str]:
    """Every caveat whose condition holds for the run, one sentence each."""
    spec, result, data = run.spec, run.result, run.data
    assert result is not None
    out = []
    studies = _n_studies(run)
    if studies < MIN_STUDIES_SMALL_STUDY_TESTS:
        shown = ("the funnel plot and Egger's test are shown but cannot be interpreted"
                 if studies >= MIN_STUDIES_DIAGNOSTICS else
                 "small-study effects and publication bias cannot be assessed")
        out.append(f"With {_plural(studies, 'study', 'studies')} (fewer than "
                   f"{MIN_STUDIES_SMALL_STUDY_TESTS}), {shown} (Cochrane Handbook 13.3.5.4).")
    if len(data) > studies:
        out.append(f"{_plural(len(data), 'comparison')} come from "
                   f"{_plural(studies, 'study', 'studies')}: a multi-arm trial's arms share "
                   f"its {plan.comparator or 'control'} group (multi-arm rule: "
                   f"{plan.multiarm}).")
    derived = data[data["derived"].astype(bool)]
    if len(derived) == len(data):
        out.append("Every comparison rests on derived numbers (computed from percentages "
                   "or other reported statistics, see trials/README.md).")
    elif len(derived):
        text = f"Derived numbers in {_join(_names(derived))}"
        if run.without_derived is not None:
            w = run.without_derived
            text += (f"; without them {spec.measure} "
                     f"{format_effect(w.estimate, w.ci_low, w.ci_high, spec.measure)}, "
                     f"k = {w.k}")
        out.append(text + ".")
    not_itt = data[data["analysis_set"].astype(str) != "ITT"]
    if len(not_itt):
        sets = _join([f"{name} ({aset})" for name, aset in dict.fromkeys(
            zip(study_labels(not_itt), not_itt["analysis_set"].astype(str), strict=True))])
        out.append(f"Not an intention-to-treat analysis set: {sets}.")
    published = data[data["from_reported_estimate"].astype(bool)]
    if len(published):
        out.append(f"Entered by the published estimate and its CI (no arm-level numbers "
                   f"used): {_join(_names(published))}.")
    if studies >= 2:
        fits = {r["model"]: r for r in run.sensitivity.to_dict("records")}
        row = fits.get("Random effects, REML + Hartung-Knapp", {})
        if np.isfinite(row.get("ci_low", np.nan)) and _excludes_null(
                result.ci_low, result.ci_high) != _excludes_null(float(row["ci_low"]),
                                                                 float(row["ci_high"])):
            out.append("The Hartung-Knapp interval, which allows for the uncertainty in "
                       "tau² with few studies, "
                       + ("includes" if _excludes_null(result.ci_low, result.ci_high)
                          else "excludes")
                       + f" {_null(spec.measure)}: {spec.measure} "
                       + format_effect(float(row["estimate"]), float(row["ci_low"]),
                                       float(row["ci_high"]), spec.measure) + ".")
    if run.note:
        out.append(f"Not used: {run.note}.")
    return out


def _pooled_sentence(run: AnalysisRun, certainty: str) -> str:
    result = run.result
    assert result is not None
    studies = _n_studies(run)
    verdict = ("excludes" if _excludes_null(result.ci_low, result.ci_high) else "includes")
    return (f"{run.spec.label}: {_effect(run)} from "
            f"{_plural(studies, 'study', 'studies')}, p {format_p_relation(result.pvalue)}, the "
            f"interval {verdict} {_null(run.spec.measure)}, {_certainty_text(certainty)}")


def _does_it_work(runs: Sequence[AnalysisRun], plan: Plan,
                  certainty: Mapping[str, str]) -> str:
    pooled = [r for r in runs if r.result is not None and _n_studies(r) >= 2]
    single = [r for r in runs if r.result is not None and _n_studies(r) == 1]
    none = [r for r in runs if r.result is None]
    text = f"Does {plan.intervention} work? Against {plan.comparator or 'control'}, "
    text += ("pooled: " + "; ".join(_pooled_sentence(r, certainty.get(r.spec.id, ""))
                                    for r in pooled) + "." if pooled
             else "no outcome could be pooled from two or more studies.")
    clear = [r.spec.label.lower() for r in pooled if r.result is not None
             and _excludes_null(r.result.ci_low, r.result.ci_high)]
    text += (f" The {ci_label(plan.level)} excludes no effect for {_join(clear)} only."
             if clear else
             f" On no pooled outcome does the {ci_label(plan.level)} exclude no effect.")
    if single:
        text += (" One study only (its own result, not a meta-analysis): "
                 + "; ".join(f"{r.spec.label}, {_names(r.data)[0]}, {_effect(r)}"
                             for r in single) + ".")
    if none:
        text += (" No result (no study with usable numbers, or none estimable; see each "
                 "outcome below): " + _join([r.spec.label.lower() for r in none]) + ".")
    return text


def _does_dose_matter(runs: Sequence[AnalysisRun], plan: Plan) -> str | None:
    parts = []
    for run in runs:
        pieces = []
        table = run.dose_table
        if table is not None and not table.empty:
            primary = table[(table["metric"] == plan.dose_primary_metric)
                            & (table["model"] == plan.dose_primary_model)]
            if len(primary):
                row = primary.iloc[0]
                fit = (f"{plan.dose_primary_model} dose-response meta-regression on "
                       f"{plan.dose_label.lower()} ({row['k']} comparisons, "
                       f"{_plural(int(row['studies']), 'study', 'studies')})")
                if row.get("note"):
                    pieces.append(f"{fit} not fitted: {row['note']}")
                else:
                    slope = ""
                    if np.isfinite(row.get("slope_per_unit", np.nan)):
                        slope = (f" {run.spec.measure} per {slope_unit(plan)} "
                                 + format_effect(row["slope_per_unit"], row["ci_low"],
                                                 row["ci_high"], run.spec.measure) + ",")
                    pieces.append(f"{fit}:{slope} p {format_p_relation(row['pvalue'])}")
        classes = run.subgroups.get("dose_class")
        if classes is not None:
            ks = ", ".join(f"{g} k = {int(k)}" for g, k in zip(
                classes.subgroups["group"], classes.subgroups["k"], strict=True))
            pieces.append(f"dose classes ({ks}): test for subgroup differences "
                          f"{format_subgroup_test(classes)}")
        elif "dose_class" in run.subgroup_notes:
            pieces.append(f"dose classes {run.subgroup_notes['dose_class']}")
        if pieces:
            parts.append(f"{run.spec.label}: " + "; ".join(pieces))
    if not parts:
        return None
    within = sorted({f"{name} ({run.spec.label.lower()})" for run in runs
                     if run.spec.id in plan.dose_analyses and not run.data.empty
                     for name, doses in run.data.groupby(study_labels(run.data))[
                         plan.dose_column].nunique().items() if doses > 1})
    return ("Does dose matter? " + ". ".join(parts) + ". These dose comparisons are between "
            "studies and so observational: dose goes together with every other difference "
            "between the trials (population, co-interventions, analysis set, duration), and a "
            "slope or class difference cannot be read as the effect of a higher dose. "
            + (f"Different doses randomised within one trial, free of that confounding: "
               f"only {_join(within)}." if within else
               "No study in these analyses randomised different doses."))


def _study_facts(study: str, runs: Sequence[AnalysisRun], studies: pd.DataFrame,
                 rob: pd.DataFrame | None, trials: pd.DataFrame, plan: Plan) -> str:
    """Describe one study of interest: its characteristics, results and influence."""
    row = {r["study_id"]: r for r in studies.to_dict("records")}[study]
    name = f"{row['first_author']} {float(row['year']):.0f}"
    if isinstance(row.get("acronym"), str) and row["acronym"]:
        name = f"{row['acronym']} ({name})"
    arms = trials[(trials["study_id"] == study) & (trials["role"] == "treatment")]
    doses = sorted({float(d) for d in arms[plan.dose_column].dropna()})
    facts = [str(row["country"]) if isinstance(row.get("country"), str) else "",
             f"dose {_join([f'{d:g}' for d in doses])} {dose_unit(plan)}" if doses else "",
             *(f"{column.replace('_', ' ')} {row[column]}" for column in
               plan.subgroup_columns
               if isinstance(row.get(column), str) and row[column]),
             f"{row['treatment_weeks']:g} weeks of treatment"
             if pd.notna(row.get("treatment_weeks")) else ""]
    text = f"{name}: " + ", ".join(f for f in facts if f)
    entered = []
    for run in runs:
        data = run.data
        if run.result is None or data.empty or study not in set(data["study_id"]):
            continue
        mine = data[data["study_id"] == study]
        interval = study_intervals(mine, plan.level)
        effects = ", ".join(
            format_effect(float(y), float(lo), float(hi), run.spec.measure)
            for y, lo, hi in zip(mine["yi"], interval["ci_low"], interval["ci_high"],
                                 strict=True))
        details = trials[(trials["study_id"] == study) & (trials["outcome"] == run.spec.outcome)
                         ]["outcome_detail"].dropna().astype(str).unique()
        piece = (f"{run.spec.label.lower()} {run.spec.measure} {effects} "
                 f"({_join(sorted(set(mine['analysis_set'].astype(str))))} analysis set"
                 + (f"; defined as '{details[0]}'" if len(details) else "") + ")")
        if rob is not None:
            judgement = overall_by_study(rob, run.spec.outcome).get(study)
            if judgement is not None:
                piece += f", risk of bias {judgement}"
        loo = run.leave_one_out
        if loo is not None:
            frame = loo.to_frame()
            label = study_labels(data)[data["study_id"] == study].iloc[0]
            without = frame[frame["study"] == label]
            if len(without):
                w = without.iloc[0]
                piece += (f"; without it the pooled {run.spec.measure} is "
                          + format_effect(w["estimate"], w["ci_low"], w["ci_high"],
                                          run.spec.measure)
                          + f" (I² {w['i2']:.1f}%, all studies {run.result.i2:.1f}%)")
        if run.baujat is not None:
            ranked = run.baujat.sort_values("x", ascending=False).reset_index(drop=True)
            label = study_labels(data)[data["study_id"] == study].iloc[0]
            hit = ranked.index[ranked["study"] == label]
            if len(hit):
                piece += (f"; Baujat: rank {int(hit[0]) + 1} of {len(ranked)} in contribution "
                          f"to heterogeneity ({ranked.loc[hit[0], 'x']:.2f})")
        entered.append(piece)
    if entered:
        text += ". In the analyses: " + "; ".join(entered) + "."
    else:
        reported = sorted(set(trials.loc[trials["study_id"] == study, "outcome"].astype(str)))
        text += (". It enters no pooled analysis (outcomes reported: "
                 f"{_join(reported) if reported else 'none'}).")
    return text


def _why_they_disagree(runs: Sequence[AnalysisRun], plan: Plan, studies: pd.DataFrame,
                       rob: pd.DataFrame | None, trials: pd.DataFrame) -> str | None:
    named = [s for s in plan.narrative_studies if s in set(studies["study_id"])]
    if not named:
        return None
    facts = [_study_facts(s, runs, studies, rob, trials, plan) for s in named]
    rows = studies.set_index("study_id").loc[named]
    differ = [column.replace("_", " ") for column in ("country", *plan.subgroup_columns, "design")
              if column in rows and len(set(rows[column].astype(str))) > 1]
    arms = trials[trials["study_id"].isin(named) & (trials["role"] == "treatment")]
    if len(set(arms[plan.dose_column].dropna())) > 1:
        differ.append("dose")
    sets = {str(a) for run in runs if not run.data.empty
            for a in run.data.loc[run.data["study_id"].isin(named), "analysis_set"]}
    if len(sets) > 1:
        differ.append("analysis set")
    return ("Why do these studies disagree? " + " ".join(facts)
            + (f" They differ in {_join(differ)}; with this few studies the data cannot "
               "separate these differences, so none of them can be named as the reason."
               if differ else ""))


def multiverse_sentences(run: AnalysisRun) -> str | None:
    """Say what the analysis' multiverse shows (None without one).

    The shares by conclusion and the two choices with the widest range of level medians;
    the closing sentence only when some specifications exclude the null and others do not.
    """
    universe = run.multiverse
    if universe is None:
        return None
    if not len(universe):
        studies = sorted(set(run.data["study_id"])) if not run.data.empty else []
        return (f"Multiverse ({run.spec.label}): none of the {universe.n_total} combinations "
                f"of the plan's choices has the studies to pool ([multiverse].min_studies) "
                f"({_plural(len(studies), 'study', 'studies')} in the primary analysis), so "
                "no specification curve is drawn and the data cannot show how the choices "
                "move the estimate.")
    shares = universe.shares()
    t = universe.table
    measure = universe.measure
    low, high = (format_value(float(t["estimate"].min()), measure),
                 format_value(float(t["estimate"].max()), measure))
    text = (f"Multiverse ({run.spec.label}): of {universe.n_total} combinations of the "
            f"plan's choices, {len(universe)} have at least two studies; their estimates "
            f"range from {low} to {high} ({', '.join(universe.levels['measure'])}). The "
            f"confidence interval excludes the null with the estimate above it in "
            f"{100 * shares['ci_above']:.0f}% of them, below it in "
            f"{100 * shares['ci_below']:.0f}%, and includes it in "
            f"{100 * shares['ci_includes']:.0f}%.")
    effects = universe.influence()
    effects = effects[effects["range"] > 0].head(2)
    if len(effects):
        parts = [f"{r['choice'].replace('_', ' ')} (median {r['lowest']} "
                 f"{format_value(float(r['lowest_median']), measure)} vs {r['highest']} "
                 f"{format_value(float(r['highest_median']), measure)})"
                 for r in effects.to_dict("records")]
        text += (" The choices whose levels differ most in their median estimate are "
                 + _join(parts) + ".")
    if shares["ci_above"] > 0 and shares["ci_includes"] > 0:
        text += (" On the same trials, whether the interval excludes the null depends on "
                 "these choices.")
    return text


def _not_analysed(runs: Sequence[AnalysisRun], trials: pd.DataFrame) -> str | None:
    planned = {run.spec.outcome for run in runs}
    rest = trials[~trials["outcome"].isin(planned)]
    if rest.empty:
        return None
    listed = [f"{outcome} ({_join(sorted(set(group['study_id'].astype(str))))})"
              for outcome, group in rest.groupby("outcome")]
    return ("Outcomes reported but not analysed (not in the analysis plan): "
            + "; ".join(listed) + ".")


def key_findings(runs: Sequence[AnalysisRun], plan: Plan, *, studies: pd.DataFrame,
                 trials: pd.DataFrame, grade: pd.DataFrame,
                 rob: pd.DataFrame | None = None) -> list[str]:
    """Answer the report's questions with the run's numbers.

    Parameters
    ----------
    runs : sequence of AnalysisRun
        The plan's analyses.
    plan : Plan
        ``intervention``, ``comparator`` and ``narrative_studies`` name the subject.
    studies : pandas.DataFrame
        ``studies.csv`` (study-level characteristics).
    trials : pandas.DataFrame
        The tidy frame of :func:`analysis.load_trials` (doses, outcome definitions).
    grade : pandas.DataFrame
        ``grade.csv`` (empty: no certainty rated).
    rob : pandas.DataFrame, optional
        The risk-of-bias table.

    Returns
    -------
    list of str
        Does it work (per pooled outcome, with certainty); does dose matter (when the plan
        has dose analyses); why the studies of interest disagree (when the plan names any);
        the outcomes in the data that no analysis uses.
    """
    level = runs_level(runs, plan.level)
    certainty = _certainties(runs, grade, level)
    paragraphs = [_does_it_work(runs, plan, certainty),
                  _does_dose_matter(runs, plan),
                  _why_they_disagree(runs, plan, studies, rob, trials),
                  *(multiverse_sentences(run) for run in runs),
                  _not_analysed(runs, trials)]
    return [p for p in paragraphs if p]


def narrative(runs: Sequence[AnalysisRun], plan: Plan, *, studies: pd.DataFrame,
              trials: pd.DataFrame, grade: pd.DataFrame,
              rob: pd.DataFrame | None = None) -> dict[str, list[str]]:
    """Return the whole narrative: ``"key_findings"`` and one entry per analysis id.

    The arguments are those of :func:`key_findings`.
    """
    level = runs_level(runs, plan.level)
    certainty = _certainties(runs, grade, level)
    out = {"key_findings": key_findings(runs, plan, studies=studies, trials=trials,
                                        grade=grade, rob=rob)}
    for run in runs:
        out[run.spec.id] = analysis_paragraphs(run, plan, certainty.get(run.spec.id, ""))
    return out
