"""Report tables of the robustness and decision analyses (formatting only).

The small-study and publication-bias tests per outcome, the Bayesian random-effects results
per prior and the trial sequential analyses, from the fields
:func:`analysis.report.plan.run_analysis` filled (:mod:`analysis.report.robustness`).
Numbers are formatted by the tables' and captions' formatters, so a table, a caption and the
narrative never show one number two ways.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.report.captions import MIN_STUDIES_FUNNEL, prior_label, probability_text
from analysis.report.plan import AnalysisRun, Plan
from analysis.report.tables import ci_label, format_effect, format_p, format_value, runs_level
from analysis.results import RATIO_MEASURES

__all__ = ["FEW_STUDIES_CAVEAT", "bayes_table", "small_study_table", "tsa_table"]

#: The caveat of every small-study row with fewer than MIN_STUDIES_FUNNEL studies.
FEW_STUDIES_CAVEAT = "not interpretable (Cochrane Handbook 13.3.5.4)"


def _studies(run: AnalysisRun) -> int:
    return int(run.data["study_id"].nunique())


def small_study_table(runs: Sequence[AnalysisRun], level: float | None = None) -> pd.DataFrame:
    """One row per outcome and small-study test (``robustness.SMALL_STUDY_TESTS``).

    Columns ``outcome, measure, test, k, studies, statistic, p, estimate (CI), value,
    detail, caveat``: ``estimate`` is Egger's limit estimate, the trim-and-fill adjusted or
    the PET-PEESE estimate on the measure's scale; ``value`` is k0 (studies filled) or the
    fail-safe N; ``caveat`` is "not run: needs at least N studies" where a test refused, and
    :data:`FEW_STUDIES_CAVEAT` where the outcome has fewer than
    :data:`~analysis.report.captions.MIN_STUDIES_FUNNEL` studies. Outcomes pooled from at
    least two comparisons only.
    """
    lev = runs_level(runs, level)
    effect_column = f"estimate ({ci_label(lev)})"
    rows = []
    for run in runs:
        if run.small_study is None:
            continue
        studies = _studies(run)
        measure = run.spec.measure
        for record in run.small_study.to_dict("records"):
            caveat = record["not_run"] or (
                FEW_STUDIES_CAVEAT if studies < MIN_STUDIES_FUNNEL else "")
            statistic = ("" if not np.isfinite(record["statistic"])
                         else f"{record['statistic_name']} = {record['statistic']:.2f}")
            value = ("" if not np.isfinite(record["value"])
                     else f"{record['statistic_name']} = {record['value']:.0f}")
            rows.append({
                "outcome": run.spec.label, "measure": measure, "test": record["test"],
                "k": int(record["k"]), "studies": studies, "statistic": statistic,
                "p": format_p(record["pvalue"]) if np.isfinite(record["pvalue"]) else "",
                effect_column: format_effect(record["estimate"], record["ci_low"],
                                             record["ci_high"], measure),
                "value": value, "detail": record["detail"], "caveat": caveat,
            })
    columns = ["outcome", "measure", "test", "k", "studies", "statistic", "p", effect_column,
               "value", "detail", "caveat"]
    return pd.DataFrame(rows, columns=columns)


def bayes_table(runs: Sequence[AnalysisRun], plan: Plan) -> pd.DataFrame:
    """One row per planned Bayesian analysis and prior for tau (the primary prior first).

    Columns ``outcome, measure, prior (tau), k, mu median (CrI), tau median (CrI),
    prediction interval, P(effect > null), side``: mu on the measure's scale (exp for
    ratios), shortest credible intervals at the plan's level, the posterior predictive
    interval of a new trial's effect, and the posterior probability that mu lies on the
    side of the second favours label (named in ``side``).
    """
    crl = f"{100 * plan.level:g}% CrI"
    rows = []
    for run in runs:
        measure = run.spec.measure
        null = "1" if measure in RATIO_MEASURES else "0"
        for number, (text, fit) in enumerate(run.bayes.items()):
            rows.append({
                "outcome": run.spec.label, "measure": measure,
                "prior (tau)": prior_label(text) + (" [primary]" if number == 0 else ""),
                "k": fit.k,
                f"mu median ({crl})": format_effect(fit.mu.median, fit.mu.ci_low,
                                                    fit.mu.ci_high, measure),
                f"tau median ({crl})": f"{fit.tau.median:.2f} ({fit.tau.ci_low:.2f} to "
                                       f"{fit.tau.ci_high:.2f})",
                f"{100 * plan.level:g}% prediction interval":
                    f"{format_value(fit.theta_new.ci_low, measure)} to "
                    f"{format_value(fit.theta_new.ci_high, measure)}",
                "P(effect > null)": f"P({measure} > {null}) = "
                                    + probability_text(1.0 - float(fit.cdf("mu", 0.0)[0])),
                "side": run.spec.favours[1],
            })
    columns = ["outcome", "measure", "prior (tau)", "k", f"mu median ({crl})",
               f"tau median ({crl})", f"{100 * plan.level:g}% prediction interval",
               "P(effect > null)", "side"]
    return pd.DataFrame(rows, columns=columns)


def tsa_table(runs: Sequence[AnalysisRun]) -> pd.DataFrame:
    """One row per planned trial sequential analysis.

    Columns ``outcome, measure, anticipated effect (assumption), control event rate
    (pooled), heterogeneity correction, RIS, accrued, information (%), final Z, conclusion``.
    """
    rows = []
    for run in runs:
        tsa = run.tsa
        if tsa is None or run.tsa_control_rate is None:
            continue
        ris = tsa.sequential_information_size
        accrued = float(tsa.cumulative_n[-1])
        rows.append({
            "outcome": run.spec.label, "measure": run.spec.measure,
            "anticipated effect (assumption)": f"{run.spec.measure} {tsa.effect:g}",
            "control event rate (pooled)": f"{100 * run.tsa_control_rate:.1f}%",
            "heterogeneity correction": {"D2": f"D² = {100 * tsa.d2:.0f}%",
                                         "I2": f"I² = {100 * tsa.i2:.0f}%",
                                         "none": "none"}[tsa.heterogeneity],
            "RIS (participants)": f"{ris:,.0f}", "accrued": f"{accrued:,.0f}",
            "information (%)": f"{100 * accrued / ris:.0f}",
            "final Z": f"{float(tsa.zval[-1]):.2f}", "conclusion": tsa.conclusion_text,
        })
    columns = ["outcome", "measure", "anticipated effect (assumption)",
               "control event rate (pooled)", "heterogeneity correction", "RIS (participants)",
               "accrued", "information (%)", "final Z", "conclusion"]
    return pd.DataFrame(rows, columns=columns)
