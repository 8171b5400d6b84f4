"""Priors for tau written as text (an analysis plan's ``"half-normal(0.5)"``).

:func:`parse_tau_prior` turns one such text into a :class:`~analysis.bayesian.priors.TauPrior`
of :mod:`analysis.bayesian.priors`; :data:`PRIOR_FORMS` lists the forms it reads.
"""

from __future__ import annotations

import re

from analysis.bayesian.priors import (
    TURNER_OUTCOMES,
    TauPrior,
    half_cauchy,
    half_normal,
    half_student_t,
    jeffreys,
    log_normal,
    turner_prior,
    uniform,
)

__all__ = ["PRIOR_FORMS", "parse_tau_prior"]

#: The forms :func:`parse_tau_prior` reads (numbers are on the scale of tau).
PRIOR_FORMS = ("half-normal(scale)", "half-cauchy(scale)", "half-t(df, scale)",
               "log-normal(meanlog, sdlog)", "uniform(lower, upper)", "jeffreys",
               "turner", "turner(<outcome type of Turner et al. 2015>)")

_NUMERIC = {"half-normal": (1, half_normal), "half-cauchy": (1, half_cauchy),
            "half-t": (2, half_student_t), "log-normal": (2, log_normal),
            "uniform": (2, uniform)}


def parse_tau_prior(text: str) -> TauPrior:
    """Return the prior for tau that ``text`` names.

    Parameters
    ----------
    text : str
        One of :data:`PRIOR_FORMS`, e.g. ``"half-normal(0.5)"``, ``"half-t(3, 0.5)"``,
        ``"turner(mental health indicators)"`` (Turner et al. 2015's log-normal prior for that
        outcome type, pharmacological vs. placebo / control; ``"turner"`` alone: their prior
        over all outcome types).

    Returns
    -------
    TauPrior

    Raises
    ------
    ValueError
        If ``text`` is not one of the forms, a number does not parse, a parameter is not
        allowed (e.g. a scale <= 0) or the Turner outcome type is unknown.
    """
    spec = text.strip()
    if spec == "jeffreys":
        return jeffreys()
    if spec == "turner":
        return turner_prior(None)
    turner = re.fullmatch(r"turner\((.*)\)", spec)
    if turner is not None:
        outcome = turner.group(1).strip()
        if outcome not in TURNER_OUTCOMES:
            raise ValueError(f"prior {text!r}: unknown Turner et al. outcome type "
                             f"{outcome!r}; known: " + ", ".join(map(repr, TURNER_OUTCOMES)))
        return turner_prior(outcome)
    match = re.fullmatch(r"([a-z-]+)\(([^()]*)\)", spec)
    if match is None or match.group(1) not in _NUMERIC:
        raise ValueError(f"prior {text!r} is not one of: " + ", ".join(PRIOR_FORMS))
    arity, make = _NUMERIC[match.group(1)]
    parts = [p.strip() for p in match.group(2).split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"prior {text!r}: parameters must be numbers") from None
    if len(values) != arity:
        raise ValueError(f"prior {text!r}: {match.group(1)} takes {arity} parameter(s)")
    return make(*values)  # type: ignore[operator]
