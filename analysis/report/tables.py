"""Report tables assembled from analysis runs: formatting only, no statistics computed here.

Every function returns a tidy DataFrame with fixed column names (the interval columns are
named after the confidence level, :func:`ci_label`: ``"effect (90% CI)"`` at 0.90), ready for
:mod:`analysis.report.render` renderers. Ratio measures are shown back-transformed (exp) with
their measure named; heterogeneity stays as estimated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.contrasts import study_intervals
from analysis.errors import DataValidationError, Problem
from analysis.grade import TYPED_DOMAINS, check_downgrade
from analysis.grade import certainty as grade_certainty
from analysis.measures import to_display
from analysis.report.plan import AnalysisRun
from analysis.summaries import subgroup_test_caveat

__all__ = [
    "ci_label",
    "dose_response_table",
    "estimator_table",
    "format_effect",
    "format_p",
    "format_p_relation",
    "format_subgroup_test",
    "format_value",
    "pooled_table",
    "rare_events_effect",
    "rare_events_footnote",
    "runs_level",
    "study_table",
    "subgroup_table",
    "summary_of_findings",
]


def ci_label(level: float) -> str:
    """Name the interval at ``level``: ``"95% CI"`` at 0.95, ``"90% CI"`` at 0.90."""
    return f"{100 * level:g}% CI"


def runs_level(runs: Sequence[AnalysisRun], level: float | None = None) -> float:
    """Return the tables' confidence level: ``level``, else that of the runs' results.

    Every result of a plan is fitted at the plan's level, so the first result's level is
    the plan's; without any result (nothing estimable) the labels use 0.95.
    """
    if level is not None:
        return float(level)
    for run in runs:
        if run.result is not None:
            return float(run.result.level)
    return 0.95


def _display(value: float, measure: str, ni: Any = None) -> float:
    return float(to_display(value, measure, ni))


def format_value(value: float, measure: str, ni: Any = None) -> str:
    """Format one effect (analysis scale) on the measure's scale: ``"1.23"``.

    The back-transformation is the registry's (:func:`analysis.measures.to_display`: exp
    for ratios, a proportion for PLO/PLN/PAS/PFT, a correlation for ZCOR); ``ni`` are the
    sample sizes PFT needs.
    """
    return f"{_display(value, measure, ni):.2f}"


def format_effect(estimate: float, low: float, high: float, measure: str,
                  ni: Any = None) -> str:
    """Format an estimate and interval (analysis scale) as ``"1.23 (0.45 to 3.21)"``."""
    if not np.isfinite(estimate):
        return ""
    values = [format_value(v, measure, ni) for v in (estimate, low, high)]
    return f"{values[0]} ({values[1]} to {values[2]})"


def _p(value: float) -> str:
    if not np.isfinite(value):
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def format_p(value: float) -> str:
    """Format a p-value as the tables show it: ``"0.013"``, ``"<0.001"`` ("" when NaN)."""
    return _p(value)


def format_p_relation(value: float) -> str:
    """Format a p-value with its relation, ``"= 0.013"`` or ``"< 0.001"`` (running text)."""
    text = _p(value)
    return f"< {text[1:]}" if text.startswith("<") else f"= {text}"




def format_subgroup_test(result: Any) -> str:
    """Format a test for subgroup differences: ``"Q = 0.05, df = 1, p = 0.831"``."""
    return (f"Q = {result.qb:.2f}, df = {','.join(str(d) for d in result.qb_df)}, "
            f"p {format_p_relation(result.qb_pvalue)}")


def _participants(data: pd.DataFrame) -> float:
    if data.empty or "n_t" not in data:
        return float("nan")
    return float(data["n_t"].sum() + data["n_c"].sum())


def pooled_table(runs: Sequence[AnalysisRun], level: float | None = None) -> pd.DataFrame:
    """One row per planned analysis: the primary model's result, or why there is none."""
    ci = ci_label(runs_level(runs, level))
    rows = []
    for run in runs:
        spec, result = run.spec, run.result
        row = {
            "outcome": spec.label,
            "measure": spec.measure,
            "studies": run.data["study_id"].nunique() if not run.data.empty else 0,
            "comparisons": len(run.data),
            "participants": _participants(run.data),
            f"effect ({ci})": "",
            "prediction interval": "",
            "p": "",
            "tau2": "",
            "I2 (%)": "",
            "without derived rows": "",
            "note": run.note,
        }
        if result is not None:
            row[f"effect ({ci})"] = format_effect(result.estimate, result.ci_low,
                                                   result.ci_high, spec.measure)
            if result.k >= 2:
                row["prediction interval"] = format_effect(
                    result.estimate, result.pi_low, result.pi_high, spec.measure
                ).split("(")[-1].rstrip(")")
            row["p"] = _p(result.pvalue)
            if result.k >= 2:  # heterogeneity is not defined for one comparison
                row["tau2"] = f"{result.tau2:.3f}"
                row["I2 (%)"] = f"{result.i2:.1f}"
            if run.without_derived is not None:
                w = run.without_derived
                row["without derived rows"] = (
                    f"{format_effect(w.estimate, w.ci_low, w.ci_high, spec.measure)}, k={w.k}"
                )
        rows.append(row)
    return pd.DataFrame(rows)


#: Columns of :func:`study_table` (at level 0.95; the interval column is named after the level).
STUDY_TABLE_COLUMNS = ("outcome", "measure", "study", "comparison", "data",
                       "effect (95% CI)", "interval", "weight (%)")


def study_table(runs: Sequence[AnalysisRun], level: float | None = None) -> pd.DataFrame:
    """One row per comparison of each analysis: its effect and interval, as in the forest plot.

    The interval is :func:`analysis.contrasts.study_intervals` at the result's level: a
    study that entered by its published estimate and CI shows the published limits
    (``interval`` = ``"published"``; e.g. ALPADIR, OR 1.20 (0.58 to 2.50), where
    ``yi +/- 1.96 sqrt(vi)`` would give 2.49), every other comparison the Wald interval
    from ``yi`` and ``vi`` (``"computed"``). Pooling used ``vi`` for both. A comparison
    without an estimable effect (``run.not_estimable``, e.g. 0/32 vs 0/32 for a risk
    ratio) is listed in its place with ``"Not estimable"`` and no weight, as in the forest
    plot.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`STUDY_TABLE_COLUMNS`; ``data`` is ``"arm-level"`` or
        ``"published estimate"``, ``weight (%)`` the primary model's weight (empty without
        a result).
    """
    ci = ci_label(runs_level(runs, level))
    rows = []
    for run in runs:
        data = run.comparisons()
        if data.empty:
            continue
        result = run.result
        intervals = study_intervals(data, float(result.level) if result is not None
                                    else runs_level(runs, level))
        estimable = (np.isfinite(data["yi"].to_numpy(dtype=float))
                     & np.isfinite(data["vi"].to_numpy(dtype=float)))
        weights = np.full(len(data), np.nan)
        if result is not None and result.weights is not None and len(result.weights) == int(
                estimable.sum()):
            weights[estimable] = np.asarray(result.weights, dtype=float)
        reported = (data["from_reported_estimate"].astype(bool) if "from_reported_estimate"
                    in data else pd.Series(False, index=data.index))
        for (_, record), (_, interval), weight, from_estimate in zip(
                data.iterrows(), intervals.iterrows(), weights, reported, strict=True):
            rows.append({
                "outcome": run.spec.label,
                "measure": run.spec.measure,
                "study": record["label"],
                "comparison": f"{record['treatment_arm_id']} vs {record['control_arm_id']}",
                "data": "published estimate" if from_estimate else "arm-level",
                f"effect ({ci})": format_effect(float(record["yi"]), interval["ci_low"],
                                                 interval["ci_high"], run.spec.measure)
                or "Not estimable",
                "interval": "published" if interval["published"] else "computed"
                if np.isfinite(float(record["yi"])) else "",
                "weight (%)": f"{weight:.1f}" if np.isfinite(weight) else "",
            })
    return pd.DataFrame(rows, columns=[f"effect ({ci})" if c == "effect (95% CI)" else c
                                       for c in STUDY_TABLE_COLUMNS])


def estimator_table(runs: Sequence[AnalysisRun], level: float | None = None) -> pd.DataFrame:
    """Estimator sensitivity side by side: FE, DL, REML, REML + HKSJ, MH per analysis."""
    ci = ci_label(runs_level(runs, level))
    rows = []
    for run in runs:
        for record in run.sensitivity.to_dict("records"):
            estimate = record.get("estimate", float("nan"))
            rows.append({
                "outcome": run.spec.label,
                "measure": run.spec.measure,
                "model": record["model"],
                "k": record["k"],
                f"effect ({ci})": format_effect(
                    estimate, record.get("ci_low", np.nan), record.get("ci_high", np.nan),
                    run.spec.measure,
                ),
                "p": _p(record.get("pvalue", float("nan"))),
                "tau2": "" if not np.isfinite(record.get("tau2", np.nan))
                else f"{record['tau2']:.3f}",
                "note": record.get("note", "") or "",
            })
    return pd.DataFrame(rows, columns=["outcome", "measure", "model", "k",
                                       f"effect ({ci})", "p", "tau2", "note"])


def subgroup_table(runs: Sequence[AnalysisRun], level: float | None = None) -> pd.DataFrame:
    """Per analysis and subgrouping: each subgroup's estimate and the test for differences.

    ``subgrouping`` is the variable's display name (``run.subgroup_titles``) and
    ``subgroup`` reads ``"name: level"`` (e.g. "Liver disease: all"). The test for subgroup
    differences is given only for subgroupings the plan's minimum allows (every subgroup
    with ``[subgroups].min_studies_per_subgroup`` studies; the others say why they were
    not analysed), with its caveat (:func:`analysis.summaries.subgroup_test_caveat`).
    """
    ci = ci_label(runs_level(runs, level))
    rows = []
    for run in runs:
        for column, result in run.subgroups.items():
            studies = run.subgroup_data[column]["study_id"].nunique() if (
                column in run.subgroup_data) else int(result.subgroups["k"].sum())
            test = f"{format_subgroup_test(result)}; {subgroup_test_caveat(studies)}"
            title = run.subgroup_titles.get(column, column)
            for record in result.subgroups.to_dict("records"):
                low, high = _single_study_interval(run, record)
                rows.append({
                    "outcome": run.spec.label,
                    "subgrouping": title,
                    "subgroup": f"{title}: {record['group']}",
                    "k": int(record["k"]),
                    f"effect ({ci})": format_effect(record["estimate"], low, high,
                                                     run.spec.measure),
                    "test for subgroup differences": test,
                })
        for column, why in run.subgroup_notes.items():
            rows.append({"outcome": run.spec.label,
                         "subgrouping": run.subgroup_titles.get(column, column), "subgroup": "",
                         "k": "", f"effect ({ci})": "",
                         "test for subgroup differences": why})
    return pd.DataFrame(rows, columns=["outcome", "subgrouping", "subgroup", "k",
                                       f"effect ({ci})", "test for subgroup differences"])


def _single_study_interval(run: AnalysisRun, record: Mapping[Any, Any]) -> tuple[float, float]:
    """Return a subgroup's interval (for one comparison, the interval its forest row shows).

    A one-comparison subgroup's estimate is that comparison's ``yi``, so the comparison is
    found by its ``yi``; when it entered by a published estimate, its published limits are
    shown (:func:`analysis.contrasts.study_intervals`), as in the forest plot.
    """
    low, high = float(record["ci_low"]), float(record["ci_high"])
    if int(record["k"]) != 1 or run.data.empty:
        return low, high
    match = np.flatnonzero(np.isclose(run.data["yi"].to_numpy(dtype=float),
                                      float(record["estimate"]), rtol=1e-12, atol=0.0))
    if match.size != 1:
        return low, high
    level = float(run.result.level) if run.result is not None else 0.95
    interval = study_intervals(run.data.iloc[match], level).iloc[0]
    return float(interval["ci_low"]), float(interval["ci_high"])


#: What each rare-events model is, for the footnote (:func:`rare_events_footnote`).
RARE_EVENTS_DESCRIPTIONS = {
    "CM.EL": "conditional logistic regression (non-central hypergeometric, exact likelihood)",
    "UM.FS": ("binomial-normal model (logistic regression with fixed study intercepts, "
              "binomial likelihood)"),
}
#: The marker linking the rare-events OR in the relative-effect cell to its footnote.
RARE_EVENTS_MARK = "[a]"


def rare_events_effect(run: AnalysisRun) -> str:
    """Format the rare-events model's OR as ``"OR 1.23 (0.45 to 3.21)"`` ("" without a fit)."""
    fit = run.rare_events
    if fit is None or fit.result is None:
        return ""
    r = fit.result
    return "OR " + format_effect(r.estimate, r.ci_low, r.ci_high, "OR")


def rare_events_footnote(run: AnalysisRun) -> str:
    """Describe the rare-events model of a run, or why it was not fitted ("" without one).

    Names the model (``rma.glmm``'s code), says that no continuity correction is added,
    gives the number of studies fitted and why double-zero studies are left out, and, when
    the main analysis is not an OR, that the OR is a sensitivity check on another scale.
    """
    fit = run.rare_events
    if fit is None:
        return ""
    name = f"Rare-events model {fit.model}"
    if fit.result is None:
        return f"{name} {fit.note}."
    r = fit.result
    text = (f"{name}: {RARE_EVENTS_DESCRIPTIONS[fit.model]}, random effects (tau² by maximum "
            f"likelihood, {r.tau2:.3f}), no continuity correction; "
            f"{r.k} stud{'y' if r.k == 1 else 'ies'}")
    if r.dropped:
        one = len(r.dropped) == 1
        text += (f", {len(r.dropped)} double-zero stud{'y' if one else 'ies'} "
                 f"({', '.join(r.dropped)}) excluded because "
                 f"{'it carries' if one else 'they carry'} no information about the OR")
    else:
        text += " (double-zero studies would be excluded: they carry no information about the OR)"
    if fit.without_counts:
        text += (f"; {fit.without_counts} comparison(s) entered by a published estimate "
                 "have no counts and are not in this model")
    text += "."
    if run.spec.measure != "OR":
        text += (f" The main analysis estimates the {run.spec.measure}: this OR is a "
                 "sensitivity check on a different scale, not the same effect.")
    return text


def _corresponding_risk(control_risk: float, effect: float, measure: str) -> float:
    if measure == "RR":
        return control_risk * float(np.exp(effect))
    if measure == "OR":
        odds = control_risk / (1 - control_risk) * float(np.exp(effect))
        return odds / (1 + odds)
    if measure == "RD":
        return control_risk + effect
    return float("nan")


GRADE_FILE_COLUMNS = ("analysis_id", *TYPED_DOMAINS, "reasons", "comments")


def check_grade_judgements(frame: pd.DataFrame, file: str = "grade.csv") -> pd.DataFrame:
    """Check the review team's GRADE judgements; raise one error listing every problem.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``grade.csv`` read as strings: :data:`GRADE_FILE_COLUMNS`, one row per analysis.
    file : str
        File name for the messages.

    Returns
    -------
    pandas.DataFrame
        ``frame`` with the domain columns as integers.

    Raises
    ------
    DataValidationError
        Missing columns, a duplicate ``analysis_id``, or a rating other than 0, -1, -2
        (file, CSV line, column, value and rule of each).
    """
    missing = [c for c in GRADE_FILE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError([Problem(file, 1, c, None, "required column missing (GRADE "
                                           "judgements: " + ", ".join(GRADE_FILE_COLUMNS) + ")")
                                   for c in missing])
    problems = []
    out = frame.copy()
    for i, row in enumerate(frame.to_dict("records"), start=2):
        for domain in TYPED_DOMAINS:
            try:
                check_downgrade(domain, row[domain])
            except ValueError as exc:
                problems.append(Problem(file, i, domain, str(row[domain]), str(exc)))
    duplicated = frame["analysis_id"][frame["analysis_id"].duplicated()]
    problems += [Problem(file, int(position) + 2, "analysis_id", str(v), "one row per analysis")
                 for position, v in zip(np.flatnonzero(frame["analysis_id"].duplicated()),
                                        duplicated, strict=True)]
    if problems:
        raise DataValidationError(problems)
    for domain in TYPED_DOMAINS:
        out[domain] = out[domain].astype(int)
    return out


def summary_of_findings(runs: Sequence[AnalysisRun], certainty: pd.DataFrame,
                        level: float | None = None) -> pd.DataFrame:
    """GRADE summary-of-findings table (Cochrane Handbook chapter 14).

    Parameters
    ----------
    runs : sequence of AnalysisRun
        The analyses (binary ones get absolute effects).
    certainty : pandas.DataFrame
        The review team's judgements (``grade.csv``) with columns ``analysis_id``, the four
        typed domains of :data:`analysis.grade.TYPED_DOMAINS` (0, -1 or -2 each),
        ``reasons`` and ``comments`` (:func:`check_grade_judgements`).

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome, relative effect (95% CI), assumed risk with control (per 1000),
        corresponding risk with treatment (per 1000, 95% CI), participants (studies),
        certainty, reasons, comments``. The assumed control risk is the pooled proportion
        of events in the control arms of the contributing studies. ``certainty`` is
        computed (:func:`analysis.grade.certainty`, starting at high for randomised
        trials) from the typed domains and the risk-of-bias domain of the run
        (``run.rob_grade``, read from the RoB 2 table); it is empty when either is missing.
        An analysis with a rare-events model (``run.rare_events``, the plan's
        ``rare_events``) shows its OR after the main effect (``"RR 1.20 (0.50 to 2.90); OR
        1.30 (0.40 to 4.10) [a]"``, or ``"not estimable [a]"`` when neither exists), and the
        comments end with the footnote ``[a]`` of :func:`rare_events_footnote` (the model,
        or why it was not fitted).
    """
    ci = ci_label(runs_level(runs, level))
    judgements = (check_grade_judgements(certainty).set_index("analysis_id")
                  if not certainty.empty else certainty)
    rows = []
    for run in runs:
        spec, result = run.spec, run.result
        judged = (judgements.loc[spec.id] if spec.id in getattr(judgements, "index", [])
                  else None)
        rating = ""
        if judged is not None and result is not None and run.rob_grade is not None:
            ratings = {domain: check_downgrade(domain, judged[domain]) for domain in TYPED_DOMAINS}
            rating = grade_certainty({"risk_of_bias": run.rob_grade.downgrade, **ratings})
        row = {
            "outcome": spec.label,
            f"relative effect ({ci})": "",
            "assumed risk with control (per 1000)": "",
            f"corresponding risk with treatment (per 1000, {ci})": "",
            "participants (studies)": "",
            "certainty": rating,
            "reasons": "" if judged is None else str(judged["reasons"]),
            "comments": run.note if judged is None else str(judged["comments"]),
        }
        relative = (f"{spec.measure} " + format_effect(
            result.estimate, result.ci_low, result.ci_high, spec.measure)
            if result is not None else "")
        footnote = rare_events_footnote(run)
        if footnote:  # the rare-events OR (when fitted) beside the main effect, marked
            shown = "; ".join(x for x in (relative, rare_events_effect(run)) if x)
            relative = f"{shown or 'not estimable'} {RARE_EVENTS_MARK}"
            comments = str(row["comments"]).strip()
            if comments and not comments.endswith("."):
                comments += "."
            row["comments"] = " ".join(x for x in (
                comments, f"{RARE_EVENTS_MARK} {footnote}") if x)
        row[f"relative effect ({ci})"] = relative
        if result is not None:
            participants = _participants(run.data)
            row["participants (studies)"] = (
                f"{participants:.0f} ({run.data['study_id'].nunique()})"
                if np.isfinite(participants) else f"({run.data['study_id'].nunique()})"
            )
            if "events_c" in run.data and spec.measure in ("RR", "OR", "RD"):
                arm = run.data[~run.data["from_reported_estimate"].astype(bool)]
                if not arm.empty:
                    risk = float(arm["events_c"].sum() / arm["n_c"].sum())
                    corresponding = [
                        _corresponding_risk(risk, value, spec.measure)
                        for value in (result.estimate, result.ci_low, result.ci_high)
                    ]
                    row["assumed risk with control (per 1000)"] = f"{1000 * risk:.0f}"
                    row[f"corresponding risk with treatment (per 1000, {ci})"] = (
                        f"{1000 * corresponding[0]:.0f} ({1000 * corresponding[1]:.0f} to "
                        f"{1000 * corresponding[2]:.0f})"
                    )
        rows.append(row)
    return pd.DataFrame(rows)


def dose_response_table(runs: Sequence[AnalysisRun], per: float,
                        level: float | None = None) -> pd.DataFrame:
    """Dose-response fits per analysis, dose metric and model, with the reason for any gap.

    The linear slope is the effect of ``per`` units of dose (the ``dose unit`` column),
    back-transformed for ratio measures (e.g. the OR per 100 mg/day).
    """
    ci = ci_label(runs_level(runs, level))
    rows = []
    for run in runs:
        if run.dose_table is None:
            continue
        for record in run.dose_table.to_dict("records"):
            slope = record.get("slope_per_unit", float("nan"))
            rows.append({
                "outcome": run.spec.label,
                "measure": run.spec.measure,
                "dose metric": record["metric"],
                "model": record["model"],
                "comparisons (studies)": f"{record['k']} ({record['studies']})",
                f"linear slope per dose unit ({ci})": format_effect(
                    slope, record.get("ci_low", np.nan), record.get("ci_high", np.nan),
                    run.spec.measure),
                "dose unit": f"{per:g}",
                "p (dose terms)": _p(record.get("pvalue", float("nan"))),
                "p (non-linearity)": _p(record.get("nonlinearity_pvalue", float("nan"))),
                "tau2": "" if not np.isfinite(record.get("tau2", np.nan))
                else f"{record['tau2']:.3f}",
                "note": record.get("note", "") or "",
            })
    return pd.DataFrame(rows)


def _choice_effect(name: str, row: Mapping[Any, Any], measure: str) -> str:
    low = format_value(float(row["lowest_median"]), measure)
    high = format_value(float(row["highest_median"]), measure)
    return f"{name.replace('_', ' ')}: {row['lowest']} {low} to {row['highest']} {high}"


def multiverse_table(runs: Sequence[AnalysisRun]) -> pd.DataFrame:
    """One row per analysis with a multiverse: specifications, shares, influential choices.

    ``median (range)`` is the median and range of the feasible specifications' estimates;
    ``above null`` the share with the estimate above the null, ``CI above`` / ``CI below``
    the shares whose CI excludes it on that side; ``moves most`` the three choices with
    the widest range of level medians (:meth:`analysis.results.MultiverseResult.influence`),
    each with its lowest and highest level median.
    """
    rows = []
    for run in runs:
        universe = run.multiverse
        if universe is None or not len(universe):
            continue
        t, shares = universe.table, universe.shares()
        measure = universe.measure
        effects = universe.influence()
        effects = effects[effects["range"] > 0].head(3)
        rows.append({
            "outcome": run.spec.label,
            "measures": ", ".join(universe.levels["measure"]),
            "specifications": f"{len(universe)} of {universe.n_total}",
            "median (range)": (f"{format_value(float(t['estimate'].median()), measure)} "
                               f"({format_value(float(t['estimate'].min()), measure)} to "
                               f"{format_value(float(t['estimate'].max()), measure)})"),
            "above null": f"{100 * shares['above']:.0f}%",
            "CI above": f"{100 * shares['ci_above']:.0f}%",
            "CI below": f"{100 * shares['ci_below']:.0f}%",
            "moves most": "; ".join(_choice_effect(str(r["choice"]), r, measure)
                                    for r in effects.to_dict("records")),
        })
    return pd.DataFrame(rows, columns=["outcome", "measures", "specifications",
                                       "median (range)", "above null", "CI above",
                                       "CI below", "moves most"])
