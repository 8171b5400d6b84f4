"""The risk-of-bias table (``risk_of_bias.csv``, RoB 2): vocabulary and semantic rules.

The table has one row per study x outcome x domain (:data:`DOMAINS`: the five RoB 2 domains
D1-D5 and ``overall``) with a judgement (:data:`JUDGEMENTS`), the reason, the source and
where in it. ``outcome`` is ``all`` when a judgement applies to every outcome of the study;
an outcome-specific row replaces the study's ``all`` row of the same domain for that
outcome (:func:`effective_judgements`).

Semantic rules (on top of the schema's types, allowed values and keys), checked by
:func:`check_risk_of_bias`:

- ``outcome`` is ``all`` or a code of the outcome vocabulary;
- every study of ``studies.csv`` has the six domains with outcome ``all``;
- an outcome-specific set of rows includes its own ``overall`` row;
- the overall judgement is at least as severe as the worst domain of the same study and
  outcome (after the outcome-specific rows replace the ``all`` ones). RoB 2's algorithm
  (Sterne et al. 2019): overall ``high`` if any domain is high, ``some concerns`` if any
  domain has some concerns and none is high, ``low`` only if every domain is low.
  ``no information`` ranks with ``some concerns`` (:data:`SEVERITY`): a domain nobody could
  judge cannot support an overall ``low``, and is no evidence of ``high`` either.

This module reads and checks; it never writes.

References
----------
Sterne JAC, Savovic J, Page MJ, et al. RoB 2: a revised tool for assessing risk of bias in
randomised trials. BMJ 2019;366:l4898. doi:10.1136/bmj.l4898
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from analysis.errors import Problem, shorten

__all__ = [
    "ALL_OUTCOMES",
    "DOMAINS",
    "DOMAIN_NAMES",
    "JUDGEMENTS",
    "OVERALL",
    "SEVERITY",
    "check_risk_of_bias",
    "effective_judgements",
    "overall_judgement",
]

#: The five RoB 2 domains, in the tool's order.
DOMAINS = ("D1", "D2", "D3", "D4", "D5")
#: The overall judgement's ``domain`` code.
OVERALL = "overall"
#: What each code stands for (legends and tables).
DOMAIN_NAMES = {
    "D1": "Bias arising from the randomisation process",
    "D2": "Bias due to deviations from intended interventions",
    "D3": "Bias due to missing outcome data",
    "D4": "Bias in measurement of the outcome",
    "D5": "Bias in selection of the reported result",
    OVERALL: "Overall risk of bias",
}
#: Allowed judgements, least to most severe.
JUDGEMENTS = ("low", "some concerns", "no information", "high")
#: Rank used to compare judgements: ``no information`` ranks with ``some concerns``.
SEVERITY = {"low": 0, "some concerns": 1, "no information": 1, "high": 2}
#: The ``outcome`` value of a judgement that applies to every outcome of a study.
ALL_OUTCOMES = "all"


def overall_judgement(judgements: Iterable[str]) -> str:
    """Return RoB 2's algorithmic overall judgement of a set of domain judgements.

    ``high`` if any domain is high; ``low`` if every domain is low; otherwise ``some
    concerns`` (``no information`` counts as some concerns, :data:`SEVERITY`).

    Parameters
    ----------
    judgements : iterable of str
        Domain judgements, each one of :data:`JUDGEMENTS`.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        For an unknown judgement or an empty set.

    Examples
    --------
    >>> overall_judgement(["low", "no information", "low", "low", "low"])
    'some concerns'
    """
    values = list(judgements)
    unknown = [v for v in values if v not in SEVERITY]
    if unknown or not values:
        raise ValueError(f"argument 'judgements' = {values!r}: needs at least one of "
                         f"{list(JUDGEMENTS)}")
    worst = max(SEVERITY[v] for v in values)
    return {0: "low", 1: "some concerns", 2: "high"}[worst]


def effective_judgements(rob: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """Return one row per study and domain as it applies to ``outcome``.

    The study's outcome-specific rows for ``outcome`` where there are any, else its
    ``all`` rows.

    Parameters
    ----------
    rob : pandas.DataFrame
        The validated ``risk_of_bias`` table (:func:`analysis.data.validate_trials`).
    outcome : str
        An outcome code.

    Returns
    -------
    pandas.DataFrame
        The columns of ``rob``, one row per study x domain, sorted by study then domain
        (D1-D5, overall); ``outcome`` shows which row applies (the code or ``all``).
    """
    rows = rob[rob["outcome"].isin([outcome, ALL_OUTCOMES])].copy()
    rows["_specific"] = (rows["outcome"] == outcome).astype(int)
    rows["_order"] = rows["domain"].map({d: i for i, d in enumerate((*DOMAINS, OVERALL))})
    rows = rows.sort_values(["study_id", "_order", "_specific"], kind="stable")
    rows = rows.drop_duplicates(["study_id", "domain"], keep="last")
    return rows.drop(columns=["_specific", "_order"]).reset_index(drop=True)


def check_risk_of_bias(
    raw: pd.DataFrame,
    lines: pd.Series,
    typed: pd.DataFrame,
    studies: pd.DataFrame | None,
    vocabulary: tuple[str, ...] | None,
    problems: list[Problem],
    name: str = "risk_of_bias.csv",
) -> None:
    """Apply the semantic rules of the module docstring, appending every problem.

    Parameters
    ----------
    raw : pandas.DataFrame
        String cells as written (for the values in the messages).
    lines : pandas.Series
        CSV line of each row (header = 1).
    typed : pandas.DataFrame
        The same rows with typed columns (bad cells missing).
    studies : pandas.DataFrame or None
        The typed studies table, when it could be read.
    vocabulary : tuple of str or None
        The outcome codes the dataset knows, when the outcomes table could be read.
    problems : list of Problem
        Problems are appended here.
    name : str
        File name used in the problems.
    """
    line_of = np.asarray(lines, dtype=int)
    outcome = typed["outcome"].fillna("").astype(str)
    if vocabulary is not None:
        allowed = {ALL_OUTCOMES, *vocabulary}
        unknown = ~outcome.isin(allowed).to_numpy() & (outcome != "").to_numpy()
        for index in np.flatnonzero(unknown):
            problems.append(Problem(
                name, int(line_of[index]), "outcome", raw["outcome"].iloc[index],
                f"must be '{ALL_OUTCOMES}' or an outcome code of the vocabulary "
                f"{sorted(vocabulary)}",
            ))
    usable = typed.assign(_line=line_of, _raw=raw["judgement"].to_numpy()).dropna(
        subset=["study_id", "outcome", "domain", "judgement"])
    usable = usable[usable["judgement"].isin(list(SEVERITY))
                    & usable["domain"].isin([*DOMAINS, OVERALL])]
    # The case-insensitive primary-key check reports duplicates; check the first of each.
    usable = usable.drop_duplicates(["study_id", "outcome", "domain"], keep="first")

    if studies is not None:
        general = usable[usable["outcome"] == ALL_OUTCOMES]
        have = set(zip(general["study_id"], general["domain"], strict=True))
        for study in studies["study_id"].dropna():
            missing = [d for d in (*DOMAINS, OVERALL) if (study, d) not in have]
            if missing:
                problems.append(Problem(
                    name, None, "domain", f"{study}/{ALL_OUTCOMES}/{','.join(missing)}",
                    f"every study of studies.csv needs a row with outcome '{ALL_OUTCOMES}' "
                    f"for each of {[*DOMAINS, OVERALL]}; missing: {missing}",
                ))

    for (study, code), group in usable.groupby(["study_id", "outcome"], sort=False):
        domains = set(group["domain"])
        if code != ALL_OUTCOMES and OVERALL not in domains:
            first = group.iloc[0]
            problems.append(Problem(
                name, int(first["_line"]), "domain", f"{study}/{code}",
                f"outcome-specific judgements for {shorten(str(code))} need their own "
                f"'{OVERALL}' row",
            ))
            continue
        # effective_judgements keeps the extra columns (_line, _raw) of the rows it picks.
        applied = group if code == ALL_OUTCOMES else effective_judgements(
            usable[usable["study_id"] == study], str(code))
        overall = applied[applied["domain"] == OVERALL]
        if overall.empty:
            continue  # reported above as a missing 'all' row
        overall_row = overall.iloc[0]
        domain_rows = applied[applied["domain"] != OVERALL]
        if domain_rows.empty:
            continue
        ranks = domain_rows["judgement"].map(SEVERITY).to_numpy(dtype=int)
        worst = domain_rows.iloc[int(np.argmax(ranks))]
        if SEVERITY[overall_row["judgement"]] < SEVERITY[worst["judgement"]]:
            problems.append(Problem(
                name, int(overall_row["_line"]), "judgement", str(overall_row["_raw"]),
                f"overall judgement for {study} / {code} is less severe than "
                f"{worst['domain']} {worst['judgement']!r} (line {int(worst['_line'])}); RoB 2: "
                "overall is high if any domain is high, some concerns if any domain has some "
                "concerns or no information",
            ))
