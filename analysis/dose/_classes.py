"""Subgroup analysis by dose class (private; public as ``dose_class_subgroups``)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pandas as pd

from analysis._checks import as_float_array, check_level
from analysis.regression import subgroup_analysis
from analysis.results import SubgroupResult

__all__ = ["DEFAULT_CUTS", "DEFAULT_LABELS", "DoseClassResult", "dose_class_subgroups",
           "dose_classes"]

#: Default upper limits of the classes (inclusive): <= 30, 31-80, > 80 (the classes of the
#: baclofen protocol, in mg/day; the code itself assumes no unit).
DEFAULT_CUTS: tuple[float, ...] = (30.0, 80.0)
DEFAULT_LABELS: tuple[str, ...] = ("<=30", "31-80", ">80")


def dose_classes(dose: object, cuts: Sequence[float] = DEFAULT_CUTS,
                 labels: Sequence[str] | None = DEFAULT_LABELS) -> np.ndarray:
    """Class label of each dose: class ``j`` holds ``cuts[j-1] < dose <= cuts[j]``.

    Parameters
    ----------
    dose : array_like
        Doses (NaN gives a missing label).
    cuts : sequence of float
        Increasing inner cut-points; right-closed classes (``<= cuts[0]``, ..., ``> cuts[-1]``).
    labels : sequence of str, optional
        ``len(cuts) + 1`` labels; default ``"<=c0"``, ``"c0-c1"`` ... built from ``cuts``
        when ``None`` (the defaults match ``DEFAULT_CUTS``).

    Returns
    -------
    numpy.ndarray
        Object array of labels (``None`` for missing doses).
    """
    d = as_float_array("dose", dose)
    c = np.asarray(cuts, dtype=float)
    if c.size == 0 or np.any(np.diff(c) <= 0):
        raise ValueError(f"argument 'cuts' = {list(cuts)!r} is not allowed; use increasing "
                         "cut-points")
    if labels is None:
        edges = [f"{v:g}" for v in c]
        labels = ([f"<={edges[0]}"] + [f"{a}-{b}" for a, b in pairwise(edges)]
                  + [f">{edges[-1]}"])
    if len(labels) != c.size + 1:
        raise ValueError(f"argument 'labels' has {len(labels)} labels for {c.size + 1} classes")
    index = np.searchsorted(c, d, side="left")
    out = np.array([labels[i] for i in index], dtype=object)
    out[np.isnan(d)] = None
    return out


#: Dose-class subgroups are ordinary subgroup analyses with separate tau^2.
DoseClassResult = SubgroupResult


def dose_class_subgroups(yi: object, vi: object, dose: object, *,
                         cuts: Sequence[float] = DEFAULT_CUTS,
                         labels: Sequence[str] | None = DEFAULT_LABELS,
                         method: str = "REML", level: float = 0.95) -> SubgroupResult:
    r"""Subgroup analysis by dose class with the test for subgroup differences.

    The dose classes are the groups of :func:`analysis.regression.subgroup_analysis` with
    ``tau2="separate"`` (one implementation): each class is pooled with its own
    :math:`\tau^2`, then :math:`Q_B = \sum_g w_g(\hat\mu_g - \bar\mu)^2`,
    :math:`w_g = 1/SE_g^2`, :math:`\bar\mu = \sum w_g \hat\mu_g / \sum w_g`, on ``G - 1`` df:
    metafor's ``rma(est, sei=se, method="FE")`` on the per-class estimates (Borenstein et al.
    2009, ch. 19; Cochrane Handbook 10.11.3.1).

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances, one comparison per row. The classes must be
        independent: use ``contrasts(..., multiarm="split")`` for multi-arm trials whose arms
        fall in different classes.
    dose : array_like
        Dose of each comparison (rows with a missing dose are dropped).
    cuts, labels : sequence
        Class limits and names (see :func:`dose_classes`); defaults ``<=30, 31-80, >80``.
    method : str
        ``tau2`` estimator passed to :func:`analysis.pooling.pool` within each class.
    level : float
        Confidence level.

    Returns
    -------
    DoseClassResult

    Notes
    -----
    Checked against metafor: per-class ``rma(yi, vi, method=, subset=)`` and the FE model on
    their estimates (``tests/reference/dose_reference.json``, dropout on the shipped data).
    """
    lev = check_level(level)
    y, v = as_float_array("yi", yi), as_float_array("vi", vi)
    cls = dose_classes(dose, cuts, labels)
    order = list(labels) if labels is not None else list(pd.unique(cls[cls != None]))  # noqa: E711
    keep = np.array([c is not None for c in cls]) & np.isfinite(y) & np.isfinite(v)
    if len({c for c in cls[keep]}) < 2:
        raise ValueError(
            f"the doses fall in {len({c for c in cls[keep]})} class(es) with data; the test for "
            "subgroup differences needs at least 2"
        )
    return subgroup_analysis(y[keep], v[keep], groups=cls[keep], method=method, ci="z",
                             tau2="separate", level=lev, order=order)
