"""Study data from the arguments of a fitting function, metafor style (private).

metafor's fitting functions take vectors or column names with ``data=``, ``sei=`` as an
alternative to ``vi=``, and study labels (``slab``). The helpers here resolve those forms
once for :func:`analysis.pooling.pool`, :func:`analysis.regression.meta_regression`, the
sensitivity analyses and the Mantel-Haenszel/Peto functions. Every error names the argument,
the value and what is allowed.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis._checks import as_float_array
from analysis.errors import AnalysisWarning

__all__ = ["check_data", "check_limits", "column", "frame_measure", "frame_ni",
           "name_rows", "omit_missing", "resolve_variances", "study_labels", "yi_vi"]

#: How many omitted studies a warning names (the rest are counted).
NAMED_MAX = 10

#: Columns read as study labels when no labels are given (first present wins).
LABEL_COLUMNS = ("study", "label", "slab")


def column(name: str, value: Any, data: pd.DataFrame | None) -> Any:
    """Return ``value``, or the column of ``data`` it names.

    Parameters
    ----------
    name : str
        Argument name, for messages.
    value : object
        Values, or (with ``data``) a column name.
    data : pandas.DataFrame or None
        The frame whose columns string arguments name (metafor ``data=``).

    Returns
    -------
    object
        The column as a NumPy array, or ``value`` unchanged when it is not a string.

    Raises
    ------
    ValueError
        A string without ``data``, or a name that is not a column of ``data`` (the message
        lists the columns).
    """
    if not isinstance(value, str):
        return value
    if data is None:
        raise ValueError(
            f"argument {name!r} = {value!r} is a column name but 'data' is not given; pass "
            "data=<DataFrame>, or the values themselves"
        )
    if value not in data.columns:
        raise ValueError(
            f"argument {name!r} = {value!r} is not a column of 'data'; its columns are "
            + ", ".join(repr(str(c)) for c in data.columns)
        )
    return data[value].to_numpy()


def yi_vi(yi: Any, vi: Any, *, ndim: tuple[int, ...] = (1,)) -> tuple[np.ndarray, np.ndarray]:
    """Return effect sizes and sampling variances as float arrays of one shape.

    Parameters
    ----------
    yi : array_like or pandas.DataFrame
        Effect sizes, or a frame with columns ``yi`` and ``vi`` (then ``vi`` must be None).
    vi : array_like or None
        Sampling variances.
    ndim : tuple of int
        Allowed numbers of dimensions (2 for batches of analyses).

    Returns
    -------
    tuple of numpy.ndarray
        ``y`` and ``v``.

    Raises
    ------
    ValueError
        ``vi`` given with a frame, a frame without ``yi``/``vi``, ``vi`` missing, or shapes
        that differ.
    """
    if isinstance(yi, pd.DataFrame):
        if vi is not None:
            raise ValueError("argument 'vi' must be None when 'yi' is a DataFrame with yi, vi")
        missing = [c for c in ("yi", "vi") if c not in yi.columns]
        if missing:
            raise ValueError(
                f"argument 'yi' is a DataFrame without column(s) {missing}; it needs yi and vi"
            )
        yi, vi = yi["yi"].to_numpy(dtype=float), yi["vi"].to_numpy(dtype=float)
    elif vi is None:
        raise ValueError("argument 'vi' is missing; give sampling variances (or a yi/vi frame)")
    y, v = as_float_array("yi", yi, ndim=ndim), as_float_array("vi", vi, ndim=ndim)
    if y.shape != v.shape:
        raise ValueError(f"arguments 'yi' and 'vi' differ in shape: {y.shape} vs {v.shape}")
    return y, v


def check_data(data: Any) -> pd.DataFrame | None:
    """Check the ``data`` argument (None or a DataFrame)."""
    if data is not None and not isinstance(data, pd.DataFrame):
        raise ValueError(
            f"argument 'data' is a {type(data).__name__}; use a pandas DataFrame (or None)"
        )
    return data


def resolve_variances(vi: Any, sei: Any, data: pd.DataFrame | None) -> Any:
    """Return sampling variances from ``vi`` or standard errors ``sei`` (metafor ``sei=``).

    Parameters
    ----------
    vi, sei : array_like, str or None
        Sampling variances, or standard errors (squared here); at most one of them.
    data : pandas.DataFrame or None
        Frame for column names.

    Returns
    -------
    object
        ``vi`` as given, or ``sei**2`` as a float array, or None when neither is given.

    Raises
    ------
    ValueError
        Both given, or a negative standard error.
    """
    if sei is None:
        return column("vi", vi, data)
    if vi is not None:
        raise ValueError("arguments 'vi' and 'sei' are both given; give one of them")
    se = as_float_array("sei", column("sei", sei, data), ndim=(1, 2))
    if np.any(se < 0):
        raise ValueError(
            f"argument 'sei' has negative value(s) {se[se < 0][:5].tolist()}; standard "
            "errors must be >= 0"
        )
    return se**2


def frame_measure(measure: str | None, *frames: Any) -> str | None:
    """Return ``measure``, or the single value of a ``measure`` column of the frames.

    Parameters
    ----------
    measure : str or None
        The measure the caller gave (wins when not None).
    *frames : object
        Candidates (the ``yi`` argument, ``data``); non-frames are skipped.

    Returns
    -------
    str or None
        The measure code, or None when it is not given and no frame has a single one.
    """
    if measure is not None:
        return measure
    for frame in frames:
        if isinstance(frame, pd.DataFrame) and "measure" in frame.columns:
            measures = frame["measure"].dropna().unique()
            return str(measures[0]) if len(measures) == 1 else None
    return None


def frame_ni(ni: Any, k: int, *frames: Any) -> np.ndarray | None:
    """Return the sample sizes ``ni`` (metafor ``rma(ni=)``), or an ``ni`` column of a frame.

    Parameters
    ----------
    ni : array_like or None
        Sample sizes the caller gave (win when not None).
    k : int
        Number of studies.
    *frames : object
        Candidates (the ``yi`` argument, ``data``); non-frames are skipped.

    Returns
    -------
    numpy.ndarray or None
        One size per study, or None when none are given or found.

    Raises
    ------
    ValueError
        Sizes of the wrong length.
    """
    if ni is None:
        for frame in frames:
            if isinstance(frame, pd.DataFrame) and "ni" in frame.columns:
                ni = frame["ni"].to_numpy(dtype=float)
                break
    if ni is None:
        return None
    sizes = as_float_array("ni", ni)
    if sizes.size != k:
        raise ValueError(f"argument 'ni' has {sizes.size} values but there are {k} studies")
    return sizes


def study_labels(source: Any, study: Any, k: int,
                 data: pd.DataFrame | None = None) -> tuple[str, ...]:
    """Return one label per study (metafor ``slab``).

    Parameters
    ----------
    source : object
        The ``yi`` argument: when it is a DataFrame its ``study``/``label``/``slab`` column
        gives the default labels.
    study : array_like, str or None
        Labels, or (with ``data``) a column name; None for the default.
    k : int
        Number of studies.
    data : pandas.DataFrame, optional
        Frame for a column name; also searched for a label column.

    Returns
    -------
    tuple of str
        The labels; ``"1"``..``"k"`` when none are given or found, as metafor's ``slab``.

    Raises
    ------
    ValueError
        Wrong number of labels.
    """
    study = column("study", study, data)
    if study is None:
        for frame in (source, data):
            if isinstance(frame, pd.DataFrame):
                found = [name for name in LABEL_COLUMNS if name in frame.columns]
                if found:
                    study = frame[found[0]]
                    break
    if study is None:
        return tuple(str(i + 1) for i in range(k))
    labels = tuple(str(s) for s in np.asarray(study, dtype=object).ravel())
    if len(labels) != k:
        raise ValueError(f"argument 'study' has {len(labels)} labels but there are {k} studies")
    return labels


#: The smallest sampling variance whose inverse (the fixed-effect weight) is a finite double.
VI_MIN = float(np.finfo(float).tiny)


def check_limits(y: np.ndarray, v: np.ndarray, m: np.ndarray) -> None:
    r"""Refuse data whose model cannot be represented in double precision.

    Two rules, for every analysis (row of a 2-D input; ``m`` marks the studies present):
    each ``vi`` is at least :data:`VI_MIN` (2.2e-308, else :math:`1/v_i` overflows), and
    :math:`\sum_i (y_i - \bar y)^2 / v_i` and :math:`\sum_i (y_i - \bar y)^2` are finite
    (below 1.8e308; else Cochran's Q overflows, where metafor stops with "singular matrix").
    Everything within these limits gets metafor's answer, the same in the single and the
    batched path.

    Raises
    ------
    ValueError
        Naming the argument, the first offending values and the rule.
    """
    tiny = m & (v < VI_MIN)
    if np.any(tiny):
        raise ValueError(
            f"argument 'vi' has value(s) {v[tiny][:5].tolist()} below {VI_MIN:.3g}; sampling "
            "variances must be at least the smallest normal double (1/vi must be finite)"
        )
    y2, v2, m2 = np.atleast_2d(y), np.atleast_2d(v), np.atleast_2d(m)
    with np.errstate(all="ignore"):
        k = m2.sum(axis=1)
        mean = np.where(m2, y2 / np.maximum(k, 1)[:, None], 0.0).sum(axis=1)
        dev = np.where(m2, y2 - mean[:, None], 0.0)
        q = np.where(m2, dev * dev / np.where(m2, v2, 1.0), 0.0).sum(axis=1)
        rss = (dev * dev).sum(axis=1)
    bad = ~(np.isfinite(q) & np.isfinite(rss))
    if np.any(bad):
        row = int(np.flatnonzero(bad)[0])
        shown = y2[row][m2[row]][:5].tolist()
        where = f" (row {row})" if y.ndim == 2 else ""
        raise ValueError(
            f"argument 'yi' has value(s) {shown}{where} too far apart for double precision: "
            "sum((yi - mean(yi))^2 / vi) and sum((yi - mean(yi))^2) must be below 1.8e308 "
            "(Cochran's Q overflows); rescale yi (and vi by the square of the factor)"
        )


def name_rows(rows: Sequence[int] | np.ndarray, labels: Sequence[Any] | np.ndarray | None,
              k: int) -> str:
    """Name rows of the input for a message: their study labels, else their 0-based positions.

    Parameters
    ----------
    rows : sequence of int
        0-based positions in the input.
    labels : sequence or None
        One label per input row; ignored (positions are named) when None or not of length
        ``k``.
    k : int
        Number of input rows.

    Returns
    -------
    str
        e.g. ``"B, D"`` or ``"rows 1, 3 (0-based)"``; at most :data:`NAMED_MAX` are named,
        the rest counted (``"... and 5 more"``).

    Examples
    --------
    >>> name_rows([1, 3], ["A", "B", "C", "D"], 4)
    'B, D'
    >>> name_rows([1, 3], None, 4)
    'rows 1, 3 (0-based)'
    """
    rows = [int(i) for i in rows]
    shown, rest = rows[:NAMED_MAX], len(rows) - NAMED_MAX
    more = f" and {rest} more" if rest > 0 else ""
    if labels is not None and len(labels) == k:
        return ", ".join(str(labels[i]) for i in shown) + more
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(map(str, shown)) + more + (
        " (0-based)")


def _caller_stacklevel() -> int:
    """Stack level of the first frame outside the package (the user's call), for a warning."""
    level, frame = 1, sys._getframe(1)
    while frame.f_globals.get("__name__", "").split(".")[0] == "analysis":
        if frame.f_back is None:  # called from the package itself (python -m analysis)
            break
        frame, level = frame.f_back, level + 1
    return level


def omit_missing(keep: Any, labels: Sequence[Any] | np.ndarray | None, *, values: str,
                 analysis: str) -> np.ndarray:
    """Return ``keep`` as a boolean mask, warning about the rows it drops (the one place).

    Every public function that leaves out studies with a missing value calls this, so that
    each names them the same way: an :class:`~analysis.errors.AnalysisWarning` (metafor's
    ``na.action = "na.omit"`` warning, "Studies with NAs omitted from model fitting") that
    gives their number, which values were missing, the analysis and the studies (labels, else
    0-based row positions). The warning points at the user's line (the first frame outside
    the package).

    Parameters
    ----------
    keep : array_like of bool
        True for the rows that are used.
    labels : sequence or None
        Study labels, one per row (None: rows are named by position).
    values : str
        What was missing, e.g. ``"yi or vi"``.
    analysis : str
        The analysis they are omitted from, e.g. ``"pooling"``, ``"Egger's test"``.

    Returns
    -------
    numpy.ndarray
        ``keep`` as a boolean array.
    """
    mask = np.asarray(keep, dtype=bool)
    if not mask.all():
        dropped = np.flatnonzero(~mask)
        warnings.warn(
            f"{dropped.size} {'study' if dropped.size == 1 else 'studies'} with missing "
            f"{values} omitted from {analysis}: "
            + name_rows(dropped, labels, mask.size),
            AnalysisWarning, stacklevel=_caller_stacklevel(),
        )
    return mask
