"""Leave-one-out and cumulative meta-analysis (metafor ``leave1out`` and ``cumul``).

Both are computed with one batched call of :func:`analysis.pooling.pool` (one row per subset),
so they cost about as much as a handful of single fits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis._checks import as_float_array
from analysis.pooling import Control, pool
from analysis.regression import _inputs
from analysis.results import PoolResult

__all__ = ["baujat", "cumulative", "leave_one_out"]

COLUMNS = ["study", "k", "estimate", "se", "zval", "pvalue", "ci_low", "ci_high", "q",
           "q_pvalue", "tau2", "i2", "h2"]


def _frame(res: Any, study: np.ndarray) -> pd.DataFrame:
    data = {"study": study}
    for column in COLUMNS[1:]:
        data[column] = getattr(res, column)
    return pd.DataFrame(data, columns=COLUMNS)


def leave_one_out(
    yi: Any,
    vi: Any = None,
    method: str = "REML",
    ci: str = "z",
    level: float = 0.95,
    *,
    control: Control | Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Refit the model omitting each study in turn.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (or a DataFrame with ``yi``, ``vi``).
    method, ci, level, control
        As in :func:`analysis.pooling.pool`.

    Returns
    -------
    pandas.DataFrame
        One row per omitted study (``study`` is its 0-based position): ``k, estimate, se,
        zval, pvalue, ci_low, ci_high, q, q_pvalue, tau2, i2, h2``. Rows whose fit fails are
        NaN, as metafor leaves them NA. Studies with missing ``yi``/``vi`` get NaN rows.

    Notes
    -----
    Checked against metafor 3.8-1 ``leave1out(rma(...))`` on the fixture cases (every
    method x z/knha) at rtol 1e-6 and the published BCG study-1 values (R-2).
    """
    y, v = _inputs(yi, vi)
    ok = np.isfinite(y) & np.isfinite(v)
    k = y.size
    if ok.sum() < 2:
        raise ValueError("leave-one-out needs at least 2 studies")
    ym = np.where(ok, y, np.nan)
    yy = np.tile(ym, (k, 1))
    vv = np.tile(np.where(ok, v, np.nan), (k, 1))
    yy[np.arange(k), np.arange(k)] = np.nan
    res = pool(yy, vv, method=method, ci=ci, level=level, tau2_ci=False, control=control,
               errors="nan")
    frame = _frame(res, np.arange(k))
    frame.loc[~ok, COLUMNS[1:]] = np.nan
    return frame


def cumulative(
    yi: Any,
    vi: Any = None,
    order: Any = None,
    method: str = "REML",
    ci: str = "z",
    level: float = 0.95,
    *,
    control: Control | Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Cumulative meta-analysis: add studies one at a time in the order of ``order``.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (or a DataFrame with ``yi``, ``vi``).
    order : array_like, optional
        Sort key per study (e.g. publication year); ties keep the input order (R's stable
        ``order()``). Default: input order.
    method, ci, level, control
        As in :func:`analysis.pooling.pool`.

    Returns
    -------
    pandas.DataFrame
        Row j is the model fitted to the first j + 1 studies in that order; ``study`` is the
        0-based position of the study added at that step. Columns as :func:`leave_one_out`.

    Notes
    -----
    Checked against metafor's published BCG cumulative REML estimates by year (R-11).
    """
    y, v = _inputs(yi, vi)
    k = y.size
    if order is None:
        idx = np.arange(k)
    else:
        key = as_float_array("order", order) if not isinstance(order, pd.Series) else order
        if len(key) != k:
            raise ValueError(f"argument 'order' has {len(key)} values but there are {k} studies")
        idx = np.asarray(pd.Series(np.asarray(key)).argsort(kind="stable"))
    ys, vs = y[idx], v[idx]
    ok = np.isfinite(ys) & np.isfinite(vs)
    yy = np.where(np.tril(np.ones((k, k), dtype=bool)) & ok, ys, np.nan)
    vv = np.where(np.tril(np.ones((k, k), dtype=bool)) & ok, vs, np.nan)
    first = int(np.argmax(ok))
    res = pool(yy[first:], vv[first:], method=method, ci=ci, level=level, tau2_ci=False,
               control=control, errors="nan")
    frame = _frame(res, idx[first:])
    return frame.reset_index(drop=True)


def baujat(
    yi: Any,
    vi: Any = None,
    method: str = "REML",
    *,
    control: Control | Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    r"""Coordinates of the Baujat plot: each study's contribution to heterogeneity and influence.

    .. math::

       x_i = \frac{(y_i - \hat\mu)^2}{v_i + \hat\tau^2}, \qquad
       y_i = \frac{(\hat\mu_{(-i)} - \hat\mu)^2}{\widehat{\mathrm{Var}}(\hat\mu_{(-i)})}

    with :math:`\hat\mu, \hat\tau^2` from the model fitted to all studies and
    :math:`\hat\mu_{(-i)}` from the same model without study i (Baujat et al. 2002, Stat
    Med 21:2641-52; as metafor's ``baujat()``).

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (or a DataFrame with ``yi``, ``vi``).
    method, control
        As in :func:`analysis.pooling.pool`.

    Returns
    -------
    pandas.DataFrame
        Columns ``x`` and ``y``, one row per study.

    Notes
    -----
    Checked against metafor 3.8-1 ``baujat(rma(yi, vi, data = dat.bcg log RR))`` for FE, DL
    and REML.
    """
    y, v = _inputs(yi, vi)
    full = pool(y, v, method=method, tau2_ci=False, control=control)
    assert isinstance(full, PoolResult)
    omitted = leave_one_out(y, v, method=method, control=control)
    x = (y - full.estimate) ** 2 / (v + full.tau2)
    influence = (omitted["estimate"].to_numpy() - full.estimate) ** 2 / (
        omitted["se"].to_numpy() ** 2)
    return pd.DataFrame({"x": x, "y": influence})
