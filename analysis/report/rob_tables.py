"""Report tables of the risk-of-bias layer: formatting only, no statistics computed here.

:func:`judgement_table` lays the RoB 2 table out as the traffic-light plot does (one row per
study); :func:`sensitivity_table` gives, per planned analysis, the primary result next to the
analysis restricted to studies at low risk or with some concerns and GRADE's risk-of-bias
domain (computed by :mod:`analysis.risk_of_bias` in :func:`analysis.report.plan.run_analysis`);
:func:`with_grade_column` adds that domain to the summary-of-findings table.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis.data.risk_of_bias import ALL_OUTCOMES, DOMAINS, OVERALL
from analysis.report.plan import AnalysisRun
from analysis.report.tables import ci_label, format_effect, runs_level
from analysis.results import PoolResult
from analysis.risk_of_bias import GRADE_RULE, SENSITIVITY_KEEP

__all__ = ["GRADE_COLUMN", "judgement_table", "rule_text", "sensitivity_table",
           "with_grade_column"]

#: The column :func:`with_grade_column` adds to the summary-of-findings table.
GRADE_COLUMN = "risk of bias (RoB 2, read from trials/risk_of_bias.csv)"
NO_TABLE = "no trials/risk_of_bias.csv: not assessed"


def judgement_table(rob: pd.DataFrame | None) -> pd.DataFrame:
    """One row per study: its study-level (``all``) judgements D1-D5 and overall.

    Outcome-specific judgements are listed in ``outcome-specific`` (``outcome: domain
    judgement``).
    """
    columns = ["study", *DOMAINS, OVERALL, "outcome-specific"]
    if rob is None:
        return pd.DataFrame([{"study": NO_TABLE}], columns=columns).fillna("")
    general = rob[rob["outcome"] == ALL_OUTCOMES]
    grid = general.pivot_table(index="study_id", columns="domain", values="judgement",
                               aggfunc="first").reindex(columns=[*DOMAINS, OVERALL])
    specific = rob[rob["outcome"] != ALL_OUTCOMES]
    extra = specific.groupby("study_id")[["outcome", "domain", "judgement"]].apply(
        lambda g: "; ".join(f"{o}: {d} {j}" for o, d, j in g.itertuples(index=False)))
    frame = grid.reset_index().rename(columns={"study_id": "study"})
    frame["outcome-specific"] = frame["study"].map(extra).fillna("")
    frame.columns.name = None
    return frame.reindex(columns=columns).fillna("")


def _effect(result: PoolResult | None, measure: str) -> str:
    if result is None:
        return ""
    return format_effect(result.estimate, result.ci_low, result.ci_high, measure)


def sensitivity_table(runs: Sequence[AnalysisRun], level: float | None = None) -> pd.DataFrame:
    """Per analysis: primary result, result restricted to low risk / some concerns, GRADE.

    Columns ``outcome, measure, studies (k), primary estimate (95% CI), studies kept (k),
    restricted estimate (95% CI), excluded, note, GRADE risk of bias``. When no study or
    one study qualifies, the estimate is empty and the note says so. The intervals are
    named after the confidence level (:func:`analysis.report.tables.ci_label`).
    """
    ci = ci_label(runs_level(runs, level))
    rows = []
    for run in runs:
        spec = run.spec
        studies = run.data["study_id"].nunique() if not run.data.empty else 0
        row = {
            "outcome": spec.label, "measure": spec.measure,
            "studies (k)": f"{studies} ({len(run.data)})",
            f"primary estimate ({ci})": _effect(run.result, spec.measure),
            "studies kept (k)": "", f"restricted estimate ({ci})": "", "excluded": "",
            "note": run.note if run.result is None else "", "GRADE risk of bias": "",
        }
        restricted = run.rob_sensitivity
        if restricted is not None:
            row.update({
                "studies kept (k)": f"{len(restricted.kept)} ({restricted.k})",
                f"restricted estimate ({ci})": _effect(restricted.result, spec.measure),
                "excluded": ", ".join(restricted.excluded),
                "note": restricted.note,
            })
        elif run.result is not None:
            row["note"] = NO_TABLE
        if run.rob_grade is not None:
            row["GRADE risk of bias"] = run.rob_grade.reason
        rows.append(row)
    return pd.DataFrame(rows)


def with_grade_column(sof: pd.DataFrame, runs: Sequence[AnalysisRun]) -> pd.DataFrame:
    """Return the summary-of-findings table with GRADE's risk-of-bias domain added.

    ``sof`` has one row per run, in the runs' order (:func:`analysis.report.tables.
    summary_of_findings`); the new column :data:`GRADE_COLUMN` is placed before
    ``certainty`` when there is one.
    """
    if len(sof) != len(runs):
        raise ValueError(f"argument 'sof' has {len(sof)} rows for {len(runs)} analyses")
    values = [("" if run.rob_grade is None else run.rob_grade.reason) for run in runs]
    frame = sof.copy()
    position = (list(frame.columns).index("certainty") if "certainty" in frame.columns
                else len(frame.columns))
    frame.insert(position, GRADE_COLUMN, values)
    return frame


def rule_text() -> str:
    """Return the judgement, sensitivity and GRADE rules in words, for the report."""
    keep = " or ".join(repr(j) for j in SENSITIVITY_KEEP)
    return (f"Risk of bias was judged with RoB 2 per study (and per outcome where a source "
            f"supported an outcome-specific judgement) in trials/risk_of_bias.csv; the overall "
            f"judgement is high if any domain is high, some concerns if any domain has some "
            f"concerns or no information, low only if all domains are low. Sensitivity "
            f"analysis: each planned analysis restricted to studies whose overall judgement "
            f"is {keep}, pooled with the primary model when at least two studies qualify. "
            f"GRADE: {GRADE_RULE}")
