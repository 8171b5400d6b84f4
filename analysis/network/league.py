"""League table of a network meta-analysis (netmeta ``netleague``), as a frame of text.

Cell ``(row i, column j)`` is the estimate of treatment ``i`` versus treatment ``j`` with its
confidence interval; the diagonal names the treatment. ``upper="direct"`` puts the pooled
direct estimates above the diagonal (``"."`` where two treatments were never compared),
``upper="network"`` the network estimates there too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis._checks import check_choice
from analysis.network.results import NetworkResult
from analysis.results import RATIO_MEASURES

__all__ = ["league_table"]


def league_table(result: NetworkResult, model: str = "random", *, upper: str = "direct",
                 digits: int = 2, exponentiate: bool | None = None) -> pd.DataFrame:
    """League table as text: ``"est (low; high)"`` per cell.

    Parameters
    ----------
    result : NetworkResult
    model : {"random", "common"}
    upper : {"direct", "network"}
        What the cells above the diagonal show.
    digits : int
        Decimal places.
    exponentiate : bool, optional
        Show ratios (default: when the measure is a ratio measure, e.g. OR).

    Returns
    -------
    pandas.DataFrame
        Square, indexed and labelled by the treatments.
    """
    check_choice("model", model, ("random", "common"))
    check_choice("upper", upper, ("direct", "network"))
    if not isinstance(result, NetworkResult):
        raise ValueError("argument 'result' must be a NetworkResult from "
                         f"network_meta_analysis, not {type(result).__name__}")
    fit = result.fit(model)
    if exponentiate is None:
        exponentiate = result.measure in RATIO_MEASURES
    crit = stats.norm.isf((1.0 - result.level) / 2.0)
    back = np.exp if exponentiate else (lambda x: x)

    def cell(est: float, se: float) -> str:
        if not np.isfinite(est):
            return "."
        lo, hi = back(est - crit * se), back(est + crit * se)
        return f"{back(est):.{digits}f} ({lo:.{digits}f}; {hi:.{digits}f})"

    names = result.treatments
    n = len(names)
    table = [[names[i] if i == j else
              cell(fit.direct[i, j], fit.direct_se[i, j]) if (i < j and upper == "direct") else
              cell(fit.estimate[i, j], fit.se[i, j]) for j in range(n)] for i in range(n)]
    return pd.DataFrame(table, index=list(names), columns=list(names))
