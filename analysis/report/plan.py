"""Read an analysis plan (TOML) and run it on a trials directory.

A plan says which outcomes to pool, with which measure, estimator and multi-arm rule, which
subgroup analyses and sensitivity analyses to run (see ``analysis_plan.toml`` at the top of
the repository for the shipped one). This module only computes: it returns result objects
and tidy frames; the command line draws and writes them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis._checks import check_choice
from analysis.contrasts import (
    BINARY_MEASURES,
    CONTINUOUS_MEASURES,
    ESTIMATE_MEASURES,
    contrasts,
    shared_control_covariance,
)
from analysis.dose import (
    DEFAULT_CUTS,
    DoseResponseResult,
    SparseDataError,
    dose_classes,
    dose_response,
)
from analysis.errors import ConvergenceError
from analysis.pooling import mantel_haenszel, pool
from analysis.regression import meta_regression, subgroup_analysis
from analysis.results import (
    CumulativeResult,
    LeaveOneOutResult,
    MetaRegressionResult,
    PoolResult,
    SubgroupResult,
)
from analysis.risk_of_bias import (
    GradeRiskOfBias,
    LowRiskSensitivity,
    grade_risk_of_bias,
    low_risk_sensitivity,
    overall_by_study,
    weight_by_study,
)
from analysis.sensitivity import baujat, cumulative, leave_one_out

__all__ = [
    "AnalysisRun",
    "AnalysisSpec",
    "Plan",
    "estimator_sensitivity",
    "read_plan",
    "run_analysis",
]

MIN_STUDIES_LEAVE_ONE_OUT = 3
MIN_STUDIES_DIAGNOSTICS = 3  # funnel, Baujat and meta-regression on dose
NOT_REPORTED = "not reported"


@dataclass(frozen=True, slots=True)
class AnalysisSpec:
    """One pooled analysis of the plan."""

    id: str
    outcome: str
    measure: str
    label: str
    favours: tuple[str, str]


@dataclass(frozen=True, slots=True)
class Plan:
    """A parsed analysis plan (see ``analysis_plan.toml``)."""

    title: str
    trials: Path
    comparator: str | None
    method: str
    ci: str
    multiarm: str
    level: float
    analyses: tuple[AnalysisSpec, ...]
    timepoint_tolerance: float | None = None
    subgroup_columns: tuple[str, ...] = ()
    dose_column: str = "dose_target_mg_day"
    dose_cuts: tuple[float, ...] = ()
    dose_labels: tuple[str, ...] = ()
    exclude_derived: bool = True
    leave_one_out: bool = True
    risk_of_bias: bool = True
    dose_analyses: tuple[str, ...] = ()
    dose_metrics: tuple[str, ...] = ("dose_target_mg_day",)
    dose_models: tuple[str, ...] = ("linear",)
    dose_primary_metric: str = "dose_target_mg_day"
    dose_primary_model: str = "linear"
    dose_per: float = 100.0
    dose_method: str = "REML"
    dose_label: str = "Dose"
    source: Path | None = None

    def analysis(self, analysis_id: str) -> AnalysisSpec:
        """Return the analysis called ``analysis_id``."""
        for spec in self.analyses:
            if spec.id == analysis_id:
                return spec
        known = [spec.id for spec in self.analyses]
        raise ValueError(f"analysis {analysis_id!r} is not in the plan; known: {known}")


def read_plan(path: str | Path) -> Plan:
    """Parse a TOML analysis plan.

    Parameters
    ----------
    path : str or pathlib.Path
        The plan file; relative paths inside it are relative to its folder.

    Returns
    -------
    Plan

    Raises
    ------
    ValueError
        Naming the file, the entry and what is wrong.
    """
    path = Path(path)
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the analysis plan: {exc}") from exc
    report = raw.get("report", {})
    analyses = []
    for index, entry in enumerate(raw.get("analysis", []), start=1):
        try:
            measure = check_choice("measure", entry["measure"],
                                   BINARY_MEASURES + CONTINUOUS_MEASURES + ESTIMATE_MEASURES)
            favours = tuple(entry.get("favours", ("Favours treatment", "Favours control")))
            if len(favours) != 2:
                raise ValueError("favours needs two labels (left, right)")
            analyses.append(AnalysisSpec(
                id=str(entry["id"]), outcome=str(entry["outcome"]), measure=measure,
                label=str(entry.get("label", entry["outcome"])),
                favours=(str(favours[0]), str(favours[1])),
            ))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: [[analysis]] number {index}: {exc}") from exc
    subgroups = raw.get("subgroups", {})
    sensitivity = raw.get("sensitivity", {})
    dose = raw.get("dose_response", {})
    comparator = report.get("comparator", "placebo")
    return Plan(
        title=str(report.get("title", "Meta-analysis")),
        trials=(path.parent / report.get("trials", "trials")),
        comparator=None if comparator in ("", "any") else str(comparator),
        method=str(report.get("method", "REML")),
        ci=str(report.get("ci", "z")),
        multiarm=str(report.get("multiarm", "split")),
        level=float(report.get("level", 0.95)),
        analyses=tuple(analyses),
        timepoint_tolerance=(float(report["timepoint_tolerance_weeks"])
                             if "timepoint_tolerance_weeks" in report else None),
        subgroup_columns=tuple(subgroups.get("columns", ())),
        dose_column=str(subgroups.get("dose_column", "dose_target_mg_day")),
        dose_cuts=tuple(float(c) for c in subgroups.get("dose_cuts", DEFAULT_CUTS)),
        dose_labels=tuple(str(label) for label in subgroups.get("dose_labels", ())),
        exclude_derived=bool(sensitivity.get("exclude_derived", True)),
        leave_one_out=bool(sensitivity.get("leave_one_out", True)),
        risk_of_bias=bool(sensitivity.get("risk_of_bias", True)),
        dose_analyses=tuple(str(a) for a in dose.get("analyses", ())),
        dose_metrics=tuple(str(m) for m in dose.get("metrics", ("dose_target_mg_day",))),
        dose_models=tuple(str(m) for m in dose.get("models", ("linear",))),
        dose_primary_metric=str(dose.get("primary_metric", "dose_target_mg_day")),
        dose_primary_model=str(dose.get("primary_model", "linear")),
        dose_per=float(dose.get("per", 100)),
        dose_method=str(dose.get("method", "REML")),
        dose_label=str(dose.get("dose_label", "Dose")),
        source=path,
    )


@dataclass(frozen=True, slots=True)
class AnalysisRun:
    """Everything computed for one analysis of the plan.

    ``result`` is None when no comparison was estimable; ``note`` then says why (and
    otherwise records what was left out, e.g. rows without SD). ``rob_sensitivity`` (the
    analysis restricted to studies at low risk or with some concerns) and ``rob_grade``
    (GRADE's risk-of-bias domain) are set when the trials have a risk-of-bias table.
    """

    spec: AnalysisSpec
    data: pd.DataFrame
    result: PoolResult | None
    note: str
    sensitivity: pd.DataFrame
    subgroups: dict[str, SubgroupResult] = field(default_factory=dict)
    subgroup_data: dict[str, pd.DataFrame] = field(default_factory=dict)
    leave_one_out: LeaveOneOutResult | None = None
    without_derived: PoolResult | None = None
    dose_table: pd.DataFrame | None = None
    dose_result: DoseResponseResult | None = None
    dose_points: pd.DataFrame | None = None
    cumulative: CumulativeResult | None = None
    baujat: pd.DataFrame | None = None
    dose_regression: MetaRegressionResult | None = None
    rob_sensitivity: LowRiskSensitivity | None = None
    rob_grade: GradeRiskOfBias | None = None


#: Ratio measures for which double-zero comparisons are not estimable.
RATIO_DROP00 = ("OR", "RR")


def _not_estimable_note(rows: pd.DataFrame, measure: str) -> str:
    """Name the comparisons without an estimable effect and say why."""
    double_zero = []
    other = []
    for record in rows.to_dict("records"):
        label = str(record.get("label", record.get("study_id")))
        counts = np.array([pd.to_numeric(str(record.get(c)), errors="coerce")
                           for c in ("events_t", "n_t", "events_c", "n_c")], dtype=float)
        if np.isfinite(counts).all():
            a, n1, c, n2 = (float(x) for x in counts)
            if (a == 0 and c == 0) or (a == n1 and c == n2):
                double_zero.append(f"{label} ({a:.0f}/{n1:.0f} vs {c:.0f}/{n2:.0f})")
                continue
        other.append(label)
    parts = []
    if double_zero:
        parts.append(f"not estimable ({measure}: no events, or only events, in both arms; "
                     "excluded from pooling as RevMan does): " + ", ".join(double_zero))
    if other:
        parts.append("no estimable effect: " + ", ".join(other))
    return "; ".join(parts)


def _gaps_note(trials: pd.DataFrame, spec: AnalysisSpec, used: pd.DataFrame) -> str:
    rows = trials[trials["outcome"] == spec.outcome]
    studies = set(rows["study_id"])
    unused = sorted(studies - set(used["study_id"])) if not used.empty else sorted(studies)
    if not studies:
        return "no study reports this outcome"
    if unused:
        what = ("counts" if spec.measure in BINARY_MEASURES else "SD and n"
                if spec.measure in CONTINUOUS_MEASURES else "estimate with a CI")
        return (f"{len(unused)} of {len(studies)} studies reporting it could not be used (no "
                f"{what} against the comparator, or no time point near the end of "
                "treatment): " + ", ".join(unused))
    return ""


def study_labels(data: pd.DataFrame) -> pd.Series:
    """Return one label per comparison naming its study (the same for a trial's arms).

    ``first_author year`` when both columns are present, else the first comparison's
    ``label`` without a trailing `` (arm)``, else ``study_id``; a label shared by two
    ``study_id`` values gets the id appended, so each study keeps its own label.
    """
    ids = data["study_id"].astype(str)
    first = data.assign(_study=ids).drop_duplicates("_study").set_index("_study")
    if {"first_author", "year"} <= set(first.columns) and first[["first_author", "year"]] \
            .notna().all().all():
        year = pd.to_numeric(first["year"], errors="coerce")
        names = first["first_author"].astype(str) + " " + year.map(
            lambda y: f"{y:.0f}" if pd.notna(y) else "")
    elif "label" in first.columns:
        names = first["label"].astype(str).str.replace(r"\s*\([^()]*\)$", "", regex=True)
    else:
        names = pd.Series(first.index, index=first.index)
    names = names.str.strip()
    clash = names.duplicated(keep=False)
    names[clash] = names[clash] + " [" + names.index[clash] + "]"
    return pd.Series(ids.map(names).to_numpy(), index=data.index, name="study")


def _pool(data: pd.DataFrame, plan: Plan, method: str, ci: str) -> PoolResult:
    result = pool(data["yi"].to_numpy(float), data["vi"].to_numpy(float), method=method,
                  ci=ci, level=plan.level, measure=str(data["measure"].iloc[0]),
                  study=data["label"].to_numpy() if "label" in data.columns else None)
    assert isinstance(result, PoolResult)
    return result


def estimator_sensitivity(data: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Pool the same comparisons with FE, DL, REML, REML + HKSJ and (binary) Mantel-Haenszel.

    Parameters
    ----------
    data : pandas.DataFrame
        Output of :func:`analysis.contrasts` with estimable ``yi``, ``vi``.
    plan : Plan
        Supplies the confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``model, k, estimate, se, ci_low, ci_high, pvalue, tau2, i2,
        pi_low, pi_high`` (log scale for ratio measures).
    """
    rows = []
    for label, method, ci in (("Fixed effect (inverse variance)", "FE", "z"),
                              ("Random effects, DerSimonian-Laird", "DL", "z"),
                              ("Random effects, REML", "REML", "z"),
                              ("Random effects, REML + Hartung-Knapp", "REML", "hksj")):
        try:
            result = _pool(data, plan, method, ci)
        except (ConvergenceError, ValueError) as exc:
            rows.append({"model": label, "k": len(data), "note": str(exc)})
            continue
        rows.append(_row(label, result))
    measure = str(data["measure"].iloc[0])
    arm_level = ~data.get("from_reported_estimate", pd.Series(False, index=data.index))
    arm_level = arm_level.astype(bool)
    if measure in BINARY_MEASURES and arm_level.all() and len(data) >= 1:
        try:
            mh = mantel_haenszel(data["events_t"], data["n_t"], data["events_c"],
                                 data["n_c"], measure=measure, level=plan.level)
            rows.append(_row("Fixed effect, Mantel-Haenszel", mh))
        except (ValueError, ConvergenceError) as exc:
            rows.append({"model": "Fixed effect, Mantel-Haenszel", "k": len(data),
                         "note": str(exc)})
    return pd.DataFrame(rows)


def _row(label: str, result: Any) -> dict[str, object]:
    return {
        "model": label, "k": int(result.k), "estimate": result.estimate, "se": result.se,
        "ci_low": result.ci_low, "ci_high": result.ci_high, "pvalue": result.pvalue,
        "tau2": getattr(result, "tau2", 0.0), "i2": getattr(result, "i2", float("nan")),
        "pi_low": getattr(result, "pi_low", float("nan")),
        "pi_high": getattr(result, "pi_high", float("nan")), "note": "",
    }


def _subgroup_labels(data: pd.DataFrame, column: str, plan: Plan) -> pd.Series:
    if column == "dose_class":
        labels = plan.dose_labels or None
        return pd.Series(dose_classes(data[plan.dose_column], plan.dose_cuts, labels),
                         index=data.index)
    values = data[column].astype(object)
    return values.where(values.notna(), NOT_REPORTED).astype(str)


def _in_label_order(result: SubgroupResult, order: tuple[str, ...]) -> SubgroupResult:
    """Put subgroups in the given order (e.g. dose classes by dose, not alphabetically)."""
    rank = {label: i for i, label in enumerate(order)}
    groups = sorted(result.results, key=lambda g: rank.get(g, len(rank)))
    table = result.subgroups.assign(_rank=result.subgroups["group"].map(rank))
    table = table.sort_values("_rank", kind="stable").drop(columns="_rank")
    return replace(result, subgroups=table.reset_index(drop=True),
                   results={g: result.results[g] for g in groups})


def run_analysis(
    trials: pd.DataFrame, spec: AnalysisSpec, plan: Plan, rob: pd.DataFrame | None = None
) -> AnalysisRun:
    """Run one analysis of the plan: contrasts, pooling, sensitivity and subgroups.

    Parameters
    ----------
    trials : pandas.DataFrame
        The tidy frame of :func:`analysis.load_trials`.
    spec : AnalysisSpec
        The analysis.
    plan : Plan
        Estimator, CI method, multi-arm rule, subgroups and sensitivity settings.
    rob : pandas.DataFrame, optional
        The validated risk-of-bias table (:func:`analysis.load_risk_of_bias`); with it (and
        ``plan.risk_of_bias``) the run gets the low-risk sensitivity analysis and GRADE's
        risk-of-bias domain (:mod:`analysis.risk_of_bias`).

    Returns
    -------
    AnalysisRun
    """
    # Ratio measures: a comparison with no events (or only events) in both arms carries no
    # information on the ratio and is not estimable (RevMan's rule; metafor's drop00), so
    # it is excluded from pooling and named in the note, never shown as a pooled result.
    options: dict[str, object] = {"drop00": True} if spec.measure in RATIO_DROP00 else {}
    data = contrasts(trials, outcome=spec.outcome, measure=spec.measure,
                     multiarm=plan.multiarm, comparator=plan.comparator,
                     timepoint_tolerance=plan.timepoint_tolerance,
                     **options)  # type: ignore[arg-type]
    not_estimable = ""
    gaps = _gaps_note(trials, spec, data)  # studies without usable numbers at all
    if not data.empty:
        ok = (np.isfinite(data["yi"].astype(float)) & np.isfinite(data["vi"].astype(float)))
        if not ok.all():
            not_estimable = _not_estimable_note(data[~ok], spec.measure)
        data = data[ok].reset_index(drop=True)
    note = "; ".join(n for n in (gaps, not_estimable) if n)
    if data.empty:
        empty = pd.DataFrame()
        return AnalysisRun(spec, data, None, note or "no estimable comparison", empty)
    result = _pool(data, plan, plan.method, plan.ci)
    sensitivity = estimator_sensitivity(data, plan)

    subgroups: dict[str, SubgroupResult] = {}
    subgroup_data: dict[str, pd.DataFrame] = {}
    for column in plan.subgroup_columns:
        labels = _subgroup_labels(data, column, plan)
        if labels.isna().any() or labels.nunique() < 2 or len(data) < 3:
            continue
        try:
            subgroups[column] = subgroup_analysis(
                data["yi"].to_numpy(float), data["vi"].to_numpy(float),
                labels.to_numpy(), method=plan.method, ci=plan.ci, level=plan.level,
            )
        except (ConvergenceError, ValueError):
            continue
        if column == "dose_class" and plan.dose_labels:
            subgroups[column] = _in_label_order(subgroups[column], plan.dose_labels)
        subgroup_data[column] = data.assign(subgroup=labels.to_numpy())

    # whole studies: a multi-arm trial's comparisons leave (and enter) together
    study = study_labels(data)
    loo = None
    if plan.leave_one_out and study.nunique() >= MIN_STUDIES_LEAVE_ONE_OUT:
        loo = leave_one_out(result, cluster=study.to_numpy())  # method, ci, level of result

    without = None
    if plan.exclude_derived:
        kept = data[~data["derived"].astype(bool)]
        if 0 < len(kept) < len(data):
            without = _pool(kept, plan, plan.method, plan.ci)
    dose_table, dose_result, dose_points = (None, None, None)
    if spec.id in plan.dose_analyses:
        dose_table, dose_result, dose_points = run_dose_response(trials, spec, plan)
    yi, vi = data["yi"].to_numpy(float), data["vi"].to_numpy(float)
    cumulative_frame = None
    if study.nunique() >= 2:
        cumulative_frame = cumulative(result, order=data["year"].to_numpy(float),
                                      cluster=study.to_numpy())
    enough = len(data) >= MIN_STUDIES_DIAGNOSTICS
    baujat_frame = baujat(result) if enough else None
    regression = None
    doses = data[plan.dose_column].astype(float)
    if enough and doses.notna().all() and doses.nunique() >= 2:
        regression = meta_regression(yi, vi, pd.DataFrame({plan.dose_column: doses}),
                                     method=plan.method, ci=plan.ci, level=plan.level)
    rob_sensitivity, rob_grade = None, None
    if rob is not None and plan.risk_of_bias:
        rob_sensitivity = low_risk_sensitivity(data, rob, spec.outcome, method=plan.method,
                                               ci=plan.ci, level=plan.level)
        rob_grade = grade_risk_of_bias(weight_by_study(data, result),
                                       overall_by_study(rob, spec.outcome))
    return AnalysisRun(spec, data, result, note, sensitivity, subgroups, subgroup_data, loo,
                       without, dose_table, dose_result, dose_points, cumulative_frame,
                       baujat_frame, regression, rob_sensitivity, rob_grade)


def run_dose_response(
    trials: pd.DataFrame, spec: AnalysisSpec, plan: Plan
) -> tuple[pd.DataFrame, DoseResponseResult | None, pd.DataFrame | None]:
    """Fit every planned dose-response model x dose metric for one analysis.

    Comparisons are built with ``multiarm="correlated"`` (every dose arm against the whole
    shared control, with :func:`analysis.shared_control_covariance` as the within-study
    covariance) and fitted with :func:`analysis.dose.dose_response` (one stage, a
    random intercept per study).

    Returns
    -------
    table : pandas.DataFrame
        One row per metric x model: ``metric, model, k, studies, slope_per_unit`` (the
        linear coefficient times ``plan.dose_per``, linear model only), ``ci_low, ci_high,
        pvalue`` (Wald test of all dose terms), ``nonlinearity_pvalue``, ``tau2`` and
        ``note`` (the reason when a model cannot be fitted).
    primary : DoseResponseResult or None
        The primary model and metric, when it could be fitted.
    points : pandas.DataFrame or None
        The comparisons of the primary metric (``dose, yi, vi``), for plotting.
    """
    data = contrasts(trials, outcome=spec.outcome, measure=spec.measure,
                     multiarm="correlated", comparator=plan.comparator,
                     timepoint_tolerance=plan.timepoint_tolerance)
    rows: list[dict[str, object]] = []
    primary: DoseResponseResult | None = None
    points: pd.DataFrame | None = None
    for metric in plan.dose_metrics:
        usable = data[np.isfinite(data["yi"].astype(float)) & data[metric].notna()] if (
            not data.empty) else data
        usable = usable.reset_index(drop=True)
        for model in plan.dose_models:
            row: dict[str, object] = {"metric": metric, "model": model, "k": len(usable),
                                      "studies": usable["study_id"].nunique()
                                      if not usable.empty else 0}
            try:
                if usable.empty:
                    raise SparseDataError(f"no comparison has {metric}")
                fit = dose_response(
                    usable["yi"].to_numpy(float), shared_control_covariance(usable),
                    usable[metric].to_numpy(float), usable["study_id"].to_numpy(),
                    model=model, method=plan.dose_method, level=plan.level,
                )
            except (SparseDataError, ConvergenceError, ValueError) as exc:
                rows.append({**row, "note": str(exc)})
                continue
            if model == "linear":
                row.update(slope_per_unit=float(fit.coef.iloc[0]) * plan.dose_per,
                           ci_low=float(fit.ci_low.iloc[0]) * plan.dose_per,
                           ci_high=float(fit.ci_high.iloc[0]) * plan.dose_per)
            row.update(pvalue=fit.qm_pvalue, nonlinearity_pvalue=fit.nonlinearity_pvalue,
                       tau2=fit.tau2, note="")
            rows.append(row)
            if metric == plan.dose_primary_metric and model == plan.dose_primary_model:
                primary = fit
                points = pd.DataFrame({"dose": usable[metric], "yi": usable["yi"],
                                       "vi": usable["vi"], "measure": spec.measure})
    columns = ["metric", "model", "k", "studies", "slope_per_unit", "ci_low", "ci_high",
               "pvalue", "nonlinearity_pvalue", "tau2", "note"]
    return pd.DataFrame(rows).reindex(columns=columns), primary, points
