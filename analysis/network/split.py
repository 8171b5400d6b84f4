r"""Node splitting by back-calculation (netmeta ``netsplit``, SIDE; Dias et al. 2010).

For each pair of treatments with direct evidence, the network estimate is split into the
direct estimate :math:`\hat d` (inverse-variance pooled, :math:`v_d`) and the indirect one
:math:`\hat i = (\hat\theta - p\hat d)/(1 - p)`, :math:`v_i = (1/v_\theta - 1/v_d)^{-1}`, with
the proportion of direct evidence :math:`p = v_\theta / v_d`. The difference
:math:`\hat d - \hat i` is tested with :math:`z = (\hat d - \hat i)/\sqrt{v_d + v_i}`.
References: König J, Krahn U, Binder H (2013) Stat Med 32:5414-5429; Dias S et al. (2010)
Stat Med 29:932-944. Checked against netmeta 2.9-0 ``netsplit`` (``tests/test_network.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.network.results import NetSplitResult, NetworkFit, NetworkResult

__all__ = ["netsplit"]

#: Proportions of direct evidence this close to 1 mean no indirect evidence (a bridge).
_PROP_TOL = 1e-8


def _split(fit: NetworkFit, level: float) -> pd.DataFrame:
    crit = stats.norm.isf((1.0 - level) / 2.0)
    rows = []
    n = len(fit.treatments)
    for i in range(n):
        for j in range(i + 1, n):
            nma, v_nma = fit.estimate[i, j], fit.se[i, j] ** 2
            d, v_d = fit.direct[i, j], fit.direct_se[i, j] ** 2
            prop = v_nma / v_d if np.isfinite(d) else 0.0
            if np.isfinite(d) and prop < 1.0 - _PROP_TOL:
                ind = (nma - prop * d) / (1.0 - prop)
                v_ind = 1.0 / (1.0 / v_nma - 1.0 / v_d)
            elif np.isfinite(d):
                ind, v_ind = np.nan, np.nan
            else:
                ind, v_ind = nma, v_nma
            diff, v_diff = d - ind, v_d + v_ind
            z = diff / np.sqrt(v_diff)
            rows.append({"comparison": f"{fit.treatments[i]}:{fit.treatments[j]}",
                         "treat1": fit.treatments[i], "treat2": fit.treatments[j],
                         "nma": nma, "nma_se": np.sqrt(v_nma), "direct": d,
                         "direct_se": np.sqrt(v_d), "indirect": ind,
                         "indirect_se": np.sqrt(v_ind), "prop_direct": prop,
                         "difference": diff, "diff_se": np.sqrt(v_diff),
                         "diff_ci_low": diff - crit * np.sqrt(v_diff),
                         "diff_ci_high": diff + crit * np.sqrt(v_diff), "zval": z,
                         "pvalue": 2.0 * stats.norm.sf(abs(z)), "level": level})
    return pd.DataFrame(rows)


def netsplit(result: NetworkResult) -> NetSplitResult:
    """Split every network estimate into direct and indirect evidence (both models).

    Parameters
    ----------
    result : NetworkResult
        From :func:`analysis.network.network_meta_analysis`.

    Returns
    -------
    NetSplitResult
        One row per pair ``treat1`` < ``treat2`` (treatment order); pairs never compared
        directly have NaN direct and difference (indirect = network), pairs with only direct
        evidence NaN indirect.
    """
    if not isinstance(result, NetworkResult):
        raise ValueError("argument 'result' must be a NetworkResult from "
                         f"network_meta_analysis, not {type(result).__name__}")
    return NetSplitResult(common=_split(result.common, result.level),
                          random=_split(result.random, result.level),
                          level=result.level, measure=result.measure)
