"""Risk of bias in the analyses: the low-risk sensitivity analysis and GRADE's RoB domain.

Computation only (no drawing, no writing). The judgements come from the validated
``risk_of_bias`` table (:func:`analysis.load_risk_of_bias`; vocabulary and rules in
:mod:`analysis.data.risk_of_bias`), read per outcome with
:func:`analysis.data.risk_of_bias.effective_judgements` (outcome-specific rows replace the
study's ``all`` rows).

- :func:`overall_by_study`: each study's overall judgement for one outcome.
- :func:`low_risk_sensitivity`: the comparisons of studies whose overall judgement is
  ``low`` or ``some concerns`` (:data:`SENSITIVITY_KEEP`), pooled with the primary model
  when at least :data:`MIN_STUDIES_RESTRICTED` studies qualify, otherwise not pooled and
  the reason said.
- :func:`grade_risk_of_bias`: GRADE's risk-of-bias domain read from the table. Rule
  (:data:`GRADE_RULE`): downgrade by one level when more than half of the analysis' weight
  comes from studies whose overall judgement is ``high``, ``some concerns`` or ``no
  information``; otherwise do not downgrade (GRADE handbook 5.2.1 and Cochrane Handbook
  14.2.2: judge by the studies that contribute most of the weight).

References
----------
Sterne JAC et al. RoB 2: a revised tool for assessing risk of bias in randomised trials. BMJ
2019;366:l4898. Schünemann H et al. (eds.) GRADE handbook, 2013, section 5.2.1. Higgins JPT
et al. (eds.) Cochrane Handbook for Systematic Reviews of Interventions, version 6.4, 2023,
chapters 8 and 14.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis._checks import check_choice
from analysis.data.risk_of_bias import OVERALL, effective_judgements
from analysis.pooling import pool
from analysis.results import PoolResult

__all__ = [
    "GRADE_RULE",
    "MIN_STUDIES_RESTRICTED",
    "SENSITIVITY_KEEP",
    "GradeRiskOfBias",
    "LowRiskSensitivity",
    "grade_risk_of_bias",
    "low_risk_sensitivity",
    "overall_by_study",
    "weight_by_study",
]

#: Overall judgements a study needs to stay in the low-risk sensitivity analysis.
SENSITIVITY_KEEP = ("low", "some concerns")
#: Fewer qualifying studies than this are reported, not pooled.
MIN_STUDIES_RESTRICTED = 2
#: The GRADE risk-of-bias rule, in words (the report and trials/risk_of_bias.md state it).
GRADE_RULE = (
    "Downgrade by one level for risk of bias when more than half of the analysis' weight "
    "(random-effects weights of the primary model) comes from studies whose overall RoB 2 "
    "judgement is high, some concerns or no information; otherwise no downgrade."
)


def overall_by_study(rob: pd.DataFrame, outcome: str) -> pd.Series:
    """Return each study's overall judgement for ``outcome``.

    Parameters
    ----------
    rob : pandas.DataFrame
        The validated risk-of-bias table.
    outcome : str
        Outcome code; a study's outcome-specific overall row wins over its ``all`` row.

    Returns
    -------
    pandas.Series
        Judgement indexed by ``study_id`` (sorted).
    """
    rows = effective_judgements(rob, outcome)
    overall = rows[rows["domain"] == OVERALL]
    return pd.Series(overall["judgement"].astype(str).to_numpy(),
                     index=pd.Index(overall["study_id"].astype(str), name="study_id"),
                     name="judgement")


def weight_by_study(data: pd.DataFrame, result: PoolResult) -> pd.Series:
    """Return each study's share of the pooled result's weight (percent; arms summed).

    Parameters
    ----------
    data : pandas.DataFrame
        The comparisons pooled, in the order given to :func:`analysis.pool`, with
        ``study_id`` (a multi-arm study may contribute several comparisons).
    result : PoolResult
        The pooled result; ``weights`` are percent weights per comparison.

    Returns
    -------
    pandas.Series
        Percent weight indexed by ``study_id``, in order of first appearance.
    """
    if len(data) != len(result.weights):
        raise ValueError(f"argument 'data' has {len(data)} rows but 'result' was fitted to "
                         f"{len(result.weights)} comparisons")
    weights = pd.Series(np.nan_to_num(np.asarray(result.weights, dtype=float)),
                        index=data["study_id"].astype(str).to_numpy())
    return weights.groupby(level=0, sort=False).sum().rename("weight")


@dataclass(frozen=True, slots=True)
class LowRiskSensitivity:
    """The analysis restricted to studies at low risk of bias or with some concerns.

    Attributes
    ----------
    outcome : str
        Outcome code the judgements were read for.
    studies : int
        Studies in the full analysis.
    kept : tuple of str
        Studies whose overall judgement is in :data:`SENSITIVITY_KEEP`.
    excluded : tuple of str
        The other studies, each as ``"study_id (judgement)"``; a study without a judgement
        for this outcome is excluded as ``"study_id (not assessed)"``.
    k : int
        Comparisons of the kept studies.
    result : PoolResult or None
        The pooled restricted analysis, or None when fewer than
        :data:`MIN_STUDIES_RESTRICTED` studies qualify or pooling failed.
    note : str
        Why there is no result, or empty.
    """

    outcome: str
    studies: int
    kept: tuple[str, ...]
    excluded: tuple[str, ...]
    k: int
    result: PoolResult | None
    note: str


def low_risk_sensitivity(
    data: pd.DataFrame,
    rob: pd.DataFrame,
    outcome: str,
    *,
    method: str = "REML",
    ci: str = "z",
    level: float = 0.95,
) -> LowRiskSensitivity:
    """Pool only the comparisons of studies at low risk of bias or with some concerns.

    Parameters
    ----------
    data : pandas.DataFrame
        Comparisons of one analysis (:func:`analysis.contrasts`) with ``study_id``, ``yi``,
        ``vi``, ``measure`` and optionally ``label``.
    rob : pandas.DataFrame
        The validated risk-of-bias table.
    outcome : str
        The analysis' outcome code.
    method, ci, level
        The primary model (:func:`analysis.pool`).

    Returns
    -------
    LowRiskSensitivity
        With ``result`` None and a ``note`` when no study or one study qualifies.
    """
    check_choice("ci", ci, ("z", "hksj", "hksj_adhoc"))
    judgement = overall_by_study(rob, outcome)
    studies = list(dict.fromkeys(data["study_id"].astype(str)))
    known = judgement.reindex(studies)
    keep = known.isin(SENSITIVITY_KEEP).to_numpy()
    kept = tuple(s for s, k in zip(studies, keep, strict=True) if k)
    excluded = tuple(f"{s} ({'not assessed' if pd.isna(j) else j})"
                     for s, j, k in zip(studies, known, keep, strict=True) if not k)
    rows = data[data["study_id"].astype(str).isin(kept)].reset_index(drop=True)

    def make(result: PoolResult | None, note: str) -> LowRiskSensitivity:
        return LowRiskSensitivity(outcome, len(studies), kept, excluded, len(rows), result,
                                  note)

    if len(kept) < MIN_STUDIES_RESTRICTED:
        what = "no study" if not kept else f"only one study ({kept[0]})"
        return make(None, f"{what} at low risk or with some concerns: not pooled")
    if len(kept) == len(studies):
        note = "every study is at low risk or has some concerns: same as the primary analysis"
    else:
        note = ""
    try:
        result = pool(rows["yi"].to_numpy(float), rows["vi"].to_numpy(float), method=method,
                      ci=ci, level=level, measure=str(rows["measure"].iloc[0]),
                      study=rows["label"].to_numpy() if "label" in rows.columns else None)
    except ValueError as exc:  # e.g. a degenerate model; ConvergenceError is a RuntimeError
        return make(None, f"not pooled: {exc}")
    assert isinstance(result, PoolResult)
    return make(result, note)


@dataclass(frozen=True, slots=True)
class GradeRiskOfBias:
    """GRADE's risk-of-bias domain of one analysis, read from the RoB 2 table.

    Attributes
    ----------
    weight_low, weight_some_concerns, weight_high, weight_not_assessed : float
        Percent of the analysis' weight from studies whose overall judgement is low; some
        concerns or no information; high; missing for this outcome.
    downgrade : int
        0 or -1 (:data:`GRADE_RULE`).
    reason : str
        The judgement in words, with the shares.
    """

    weight_low: float
    weight_some_concerns: float
    weight_high: float
    weight_not_assessed: float
    downgrade: int
    reason: str


def grade_risk_of_bias(weights: pd.Series, judgements: pd.Series) -> GradeRiskOfBias:
    """Apply :data:`GRADE_RULE` to study weights and overall judgements.

    Parameters
    ----------
    weights : pandas.Series
        Weight per study (any positive scale; :func:`weight_by_study` gives percent),
        indexed by ``study_id``.
    judgements : pandas.Series
        Overall judgement per study (:func:`overall_by_study`). A study without one counts
        as not low (it cannot support "most weight at low risk").

    Returns
    -------
    GradeRiskOfBias

    Raises
    ------
    ValueError
        If ``weights`` is empty, negative or sums to zero.

    Examples
    --------
    >>> import pandas as pd
    >>> w = pd.Series({"A": 60.0, "B": 40.0})
    >>> grade_risk_of_bias(w, pd.Series({"A": "high", "B": "low"})).downgrade
    -1
    """
    values = weights.astype(float)
    if values.empty or (values < 0).any() or not np.isfinite(values).all() or values.sum() <= 0:
        raise ValueError("argument 'weights' must be finite, non-negative and not all zero; "
                         f"got {values.to_dict()}")
    share = 100.0 * values / values.sum()
    judged = judgements.reindex(share.index)
    low = float(share[judged == "low"].sum())
    high = float(share[judged == "high"].sum())
    some = float(share[judged.isin(("some concerns", "no information"))].sum())
    missing = float(share[judged.isna()].sum())
    not_low = 100.0 - low
    downgrade = -1 if not_low > 50.0 else 0
    shares = (f"{low:.0f}% of the weight from studies at low risk, {some:.0f}% with some "
              f"concerns or no information, {high:.0f}% at high risk"
              + (f", {missing:.0f}% not assessed" if missing > 0 else ""))
    verdict = ("serious (-1): most of the weight comes from studies not at low risk"
               if downgrade else "not serious (0): most of the weight comes from studies at "
               "low risk")
    return GradeRiskOfBias(low, some, high, missing, downgrade, f"{verdict}; {shares}")
