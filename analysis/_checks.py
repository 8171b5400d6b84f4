"""Argument checks shared by the statistical modules (private).

Every check raises ``ValueError`` naming the argument, showing the value and saying what
is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``; otherwise raise ``ValueError``.

    Parameters
    ----------
    name : str
        Argument name used in the message.
    value : object
        The value passed by the caller.
    allowed : iterable of str
        The admissible values.

    Returns
    -------
    str
        ``value`` unchanged.
    """
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"argument {name!r} = {_show(value)} is not allowed; use one of "
            + ", ".join(repr(a) for a in allowed)
        )
    return value


def check_level(level: Any) -> float:
    """Check a confidence level given as a proportion strictly between 0 and 1.

    Parameters
    ----------
    level : float
        Confidence level, e.g. ``0.95``.

    Returns
    -------
    float
        The level as a float.
    """
    try:
        lev = float(level)
    except (TypeError, ValueError):
        lev = float("nan")
    if not (0.0 < lev < 1.0) or isinstance(level, bool):
        raise ValueError(
            f"argument 'level' = {_show(level)} is not allowed; use a proportion strictly "
            "between 0 and 1, e.g. 0.95 (metafor's level=95 is 0.95 here)"
        )
    return lev


def check_probability(name: str, value: Any) -> float:
    """Return ``value`` as a float strictly between 0 and 1, or raise a ValueError naming it."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"argument {name!r} = {value!r} must be a number in (0, 1)") from None
    if not 0.0 < x < 1.0:
        raise ValueError(f"argument {name!r} = {value!r} must lie strictly between 0 and 1")
    return x


def check_positive_int(name: str, value: Any) -> int:
    """Check that ``value`` is an integer >= 1 and return it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"argument {name!r} = {_show(value)} is not allowed; use an integer >= 1")
    return int(value)


def as_float_array(name: str, value: Any, *, ndim: tuple[int, ...] = (1,)) -> np.ndarray:
    """Convert ``value`` to a float array, naming the argument on failure.

    Parameters
    ----------
    name : str
        Argument name used in messages.
    value : array_like
        Numbers (``None`` entries become NaN).
    ndim : tuple of int
        Allowed numbers of dimensions.

    Returns
    -------
    numpy.ndarray
        Float64 array.
    """
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"argument {name!r} = {_show(value)} is not allowed; use numbers (array-like)"
        ) from exc
    if arr.ndim == 0 and 1 in ndim:
        arr = arr.reshape(1)
    if arr.ndim not in ndim:
        raise ValueError(
            f"argument {name!r} has {arr.ndim} dimension(s); allowed: "
            + " or ".join(str(d) for d in ndim)
        )
    return arr


def check_btt(btt: Any, names: list[str]) -> np.ndarray:
    """Sorted 0-based positions of the coefficients ``btt`` names (names or positions)."""
    items = [btt] if isinstance(btt, (str, int, np.integer)) else list(btt)
    idx = []
    for item in items:
        if isinstance(item, str):
            if item not in names:
                raise ValueError(
                    f"argument 'btt' names the coefficient {item!r}, which the model does not "
                    f"have; its coefficients are {names}"
                )
            idx.append(names.index(item))
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not 0 <= int(item) < len(names):
                raise ValueError(
                    f"argument 'btt' has the position {item}; allowed are 0..{len(names) - 1} "
                    f"(0-based, for {names})"
                )
            idx.append(int(item))
        else:
            raise ValueError(
                f"argument 'btt' has the entry {item!r}; use coefficient names or 0-based "
                "positions"
            )
    if not idx:
        raise ValueError("argument 'btt' is empty; name at least one coefficient")
    return np.array(sorted(set(idx)))
