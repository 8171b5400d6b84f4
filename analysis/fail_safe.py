r"""Fail-safe N: how many unpublished null studies would overturn a result (metafor ``fsn``).

References
----------
Rosenthal R (1979). The file drawer problem and tolerance for null results. Psychol Bull
86:638-641. Orwin RG (1983). A fail-safe N for effect size in meta-analysis. J Educ Stat
8:157-159. Rosenberg MS (2005). The file-drawer problem revisited: a general weighted method
for calculating fail-safe numbers in meta-analysis. Evolution 59:464-468.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from analysis._checks import check_choice
from analysis.results import FailSafeResult
from analysis.small_study import _data

__all__ = ["fail_safe_n"]


def _round_up(x: float) -> float:
    """Round as metafor does: ceiling unless within sqrt(machine eps) of an integer."""
    if math.isinf(x) or abs(x - round(x)) < np.finfo(float).eps ** 0.5:
        return float(round(x)) if math.isfinite(x) else x
    return float(math.ceil(x))


def fail_safe_n(yi: Any, vi: Any = None, *, type: str = "Rosenthal", alpha: float = 0.05,
                target: float | None = None, weighted: bool = False) -> FailSafeResult:
    r"""Fail-safe N of Rosenthal, Orwin or Rosenberg (metafor ``fsn``).

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        Effect sizes and sampling variances (or a fitted result, whose data are used).
    type : {"Rosenthal", "Orwin", "Rosenberg"}
        ``"Rosenthal"``: Stouffer's combined :math:`Z = |\sum z_i| / \sqrt{k}` with
        :math:`z_i = y_i/\sqrt{v_i}`; :math:`N = k (Z / z_{1-\alpha})^2 - k` null studies
        bring the one-sided combined p to ``alpha``. ``"Orwin"``: :math:`N = k (\bar y -
        y_T)/y_T` studies of effect 0 bring the mean effect :math:`\bar y` (unweighted, or
        inverse-variance weighted with ``weighted=True``) down to ``target`` :math:`y_T`
        (default :math:`\bar y / 2`). ``"Rosenberg"``: the number of studies of effect 0 and
        average weight that make the fixed-effect estimate non-significant (two-sided
        ``alpha``): :math:`N = k ((\sum w_i y_i / z_{1-\alpha/2})^2 - \sum w_i)/\sum w_i`.
    alpha : float
        Significance level (one-sided for Rosenthal, two-sided for Rosenberg).
    target : float, optional
        Orwin's target effect (its sign is matched to the mean's, as metafor does).
    weighted : bool
        Orwin with the inverse-variance weighted mean.

    Returns
    -------
    FailSafeResult
        ``fsnum`` (rounded up, as metafor does), ``pvalue`` of the observed combined test
        (Rosenthal, Rosenberg), ``meanes`` and ``target`` (Orwin, Rosenberg's mean).

    Raises
    ------
    ValueError
        Fewer than 2 studies. Neither Rosenthal, Orwin nor Rosenberg states a minimum number
        of studies; the statistic is descriptive (Becker 2005 advises against reading it as
        a test).

    Notes
    -----
    Checked against metafor 3.8-1 ``fsn(yi, vi, type=...)`` (Rosenthal with Stouffer's
    test, Orwin with the default and an explicit target, Rosenberg) on the five fixture data
    sets exactly (integers) and at 1e-10 (p-values, means), and against the closed form on
    random data.
    """
    check_choice("type", type, ("Rosenthal", "Orwin", "Rosenberg"))
    if not 0 < alpha < 1:
        raise ValueError(f"argument 'alpha' must be in (0, 1); got {alpha!r}")
    y, v, d, _ = _data(yi, vi, None, "the fail-safe N")
    k = y.size
    if k < 2:
        raise ValueError(f"fail-safe N needs at least 2 studies; got k = {k}")
    pval = meanes = tgt = math.nan
    if type == "Rosenthal":
        zbar = abs(np.sum(y / np.sqrt(v)) / math.sqrt(k))
        pval = float(special.ndtr(-zbar))
        fsnum = max(0.0, k * (zbar / special.ndtri(1 - alpha)) ** 2 - k)
    elif type == "Orwin":
        meanes = float(np.sum(y / v) / np.sum(1 / v)) if weighted else float(np.mean(y))
        tgt = meanes / 2 if target is None else float(target)
        if tgt == 0:
            fsnum = math.inf
        else:
            if np.sign(tgt) != np.sign(meanes):
                tgt = -tgt
            fsnum = max(0.0, k * (meanes - tgt) / tgt)
    else:
        w = 1 / v
        meanes = float(np.sum(w * y) / np.sum(w))
        zval = meanes / math.sqrt(1 / np.sum(w))
        wp = (np.sum(w * y) / special.ndtri(1 - alpha / 2)) ** 2 - np.sum(w)
        pval = float(2 * special.ndtr(-abs(zval)))
        fsnum = max(0.0, k * float(wp) / float(np.sum(w)))
    return FailSafeResult(type, _round_up(float(fsnum)), alpha, pval, meanes, tgt, k,
                          d.measure)
