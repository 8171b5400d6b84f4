"""GRADE certainty of evidence from its five domains (GRADE Handbook, section 5).

Evidence from randomised trials starts at *high* certainty and is rated down by one or two
levels per domain: risk of bias, inconsistency, indirectness, imprecision and publication
bias (Guyatt et al. 2011, J Clin Epidemiol 64:383-394). The risk-of-bias domain is read from
the RoB 2 judgements (:func:`analysis.risk_of_bias.grade_risk_of_bias`); the other four are
the review team's judgements, each with its reason. This module only combines them; it
neither reads nor writes files.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["CERTAINTY", "DOMAINS", "TYPED_DOMAINS", "certainty", "check_downgrade"]

#: GRADE's four levels, lowest first (index = levels above "very low").
CERTAINTY = ("very low", "low", "moderate", "high")

#: The five domains in GRADE's order.
DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")

#: The domains a review team judges by hand (risk of bias comes from the RoB 2 table).
TYPED_DOMAINS = DOMAINS[1:]


def check_downgrade(domain: str, value: object) -> int:
    """Return a domain's rating (0, -1 or -2) or raise ``ValueError`` naming it.

    Parameters
    ----------
    domain : str
        One of :data:`DOMAINS`.
    value : object
        The rating as given (an int, or a string such as ``"-1"``).

    Returns
    -------
    int
        0 (not serious), -1 (serious) or -2 (very serious).
    """
    if domain not in DOMAINS:
        raise ValueError(f"GRADE domain {domain!r} is not one of {', '.join(DOMAINS)}")
    try:
        rating = int(str(value).strip())
    except ValueError:
        rating = 1
    if rating not in (0, -1, -2) or str(value).strip() in ("", "+0"):
        raise ValueError(f"GRADE domain {domain!r} = {value!r} is not allowed; use 0 (not "
                         "serious), -1 (serious) or -2 (very serious)")
    return rating


def certainty(ratings: Mapping[str, int], start: str = "high") -> str:
    """Combine the domains' ratings into a certainty level.

    Parameters
    ----------
    ratings : mapping of str to int
        Rating per domain (0, -1, -2); every domain of :data:`DOMAINS` must be present.
    start : str
        The starting level: ``"high"`` for randomised trials.

    Returns
    -------
    str
        One of :data:`CERTAINTY`; rating down stops at "very low".

    Examples
    --------
    >>> certainty({"risk_of_bias": -1, "inconsistency": -1, "indirectness": 0,
    ...            "imprecision": -1, "publication_bias": 0})
    'very low'
    """
    missing = [d for d in DOMAINS if d not in ratings]
    if missing:
        raise ValueError(f"GRADE ratings lack the domain(s) {', '.join(missing)}")
    if start not in CERTAINTY:
        raise ValueError(f"argument 'start' = {start!r} is not one of {', '.join(CERTAINTY)}")
    level = CERTAINTY.index(start) + sum(check_downgrade(d, ratings[d]) for d in DOMAINS)
    return CERTAINTY[max(level, 0)]
