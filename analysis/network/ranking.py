r"""P-scores: a frequentist analogue of SUCRA (netmeta ``netrank``).

Rücker & Schwarzer 2015, BMC Med Res Methodol 15:58.

:math:`P_i = \frac{1}{n-1}\sum_{j \ne i} \Phi\big(\pm\hat\theta_{ij} / \mathrm{se}_{ij}\big)`,
the mean certainty that treatment :math:`i` is better than another, with the minus sign when
small values are desirable (``small_values="desirable"``) and the plus sign otherwise.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from analysis._checks import check_choice
from analysis.network.results import NetworkFit, NetworkResult, PScoreResult

__all__ = ["p_scores"]


def _scores(fit: NetworkFit, desirable: bool) -> np.ndarray:
    n = len(fit.treatments)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = fit.estimate / fit.se
    prob = stats.norm.cdf(-z if desirable else z)
    np.fill_diagonal(prob, 0.0)
    return prob.sum(axis=1) / (n - 1)


def p_scores(result: NetworkResult, small_values: str = "desirable") -> PScoreResult:
    """P-scores of every treatment, common and random effects.

    Parameters
    ----------
    result : NetworkResult
    small_values : {"desirable", "undesirable"}
        Whether smaller effects (of a treatment versus another) are better.

    Returns
    -------
    PScoreResult

    Notes
    -----
    Checked against netmeta 2.9-0 ``netrank`` on Senn2013 ("desirable") and smokingcessation
    ("undesirable") to 1e-10.
    """
    check_choice("small_values", small_values, ("desirable", "undesirable"))
    if not isinstance(result, NetworkResult):
        raise ValueError("argument 'result' must be a NetworkResult from "
                         f"network_meta_analysis, not {type(result).__name__}")
    desirable = small_values == "desirable"
    return PScoreResult(treatments=result.treatments, common=_scores(result.common, desirable),
                        random=_scores(result.random, desirable), small_values=small_values)
