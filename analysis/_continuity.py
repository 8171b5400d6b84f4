"""Shared pieces of the effect-size modules: argument arrays and the zero-cell rule (private).

metafor's ``escalc`` adds ``add`` to the cells of a study's table (the 2x2 table, the two
event counts of an incidence-rate comparison, the events and non-events of one group) by the
rule ``to``; :func:`add_continuity` is that rule, written once for every family.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis._checks import as_float_array

__all__ = ["TO_CHOICES", "add_continuity", "check_nonnegative", "check_positive", "named_arrays"]

#: metafor's ``to`` choices.
TO_CHOICES = ("all", "only0", "if0all", "none")


def named_arrays(**named: Any) -> dict[str, np.ndarray]:
    """Return the named arguments as float arrays of one length.

    Raises
    ------
    ValueError
        An argument is missing (None) for the measure, or the lengths differ.
    """
    missing = [name for name, value in named.items() if value is None]
    if missing:
        raise ValueError(
            "missing argument(s) " + ", ".join(repr(m) for m in missing) + " for this measure"
        )
    arrays = {name: as_float_array(name, value) for name, value in named.items()}
    lengths = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arguments must have the same length; got {lengths}")
    return arrays


def add_continuity(cells: list[np.ndarray], add: float, to: str) -> list[np.ndarray]:
    """Apply metafor's ``add``/``to`` rule to a study's cells.

    ``"only0"`` adds ``add`` to every cell of the studies with a zero cell, ``"all"`` to
    every study, ``"if0all"`` to every study when any study has a zero cell, ``"none"``
    to none (NaN cells never count as zero).
    """
    if to == "none" or add == 0:
        return cells
    if to == "all":
        return [x + add for x in cells]
    has0 = np.zeros(cells[0].shape, dtype=bool)
    for x in cells:
        has0 |= x == 0
    if to == "only0":
        return [np.where(has0, x + add, x) for x in cells]
    # if0all
    return [x + add for x in cells] if np.any(has0) else cells


def check_nonnegative(name: str, value: np.ndarray, what: str = "counts") -> None:
    """Raise ValueError naming the argument and its negative values."""
    bad = value < 0
    if np.any(bad):
        raise ValueError(
            f"argument {name!r} has negative value(s) {value[bad].tolist()}; {what} must be >= 0"
        )


def check_positive(name: str, value: np.ndarray, what: str) -> None:
    """Raise ValueError naming the argument and its values <= 0."""
    bad = value <= 0
    if np.any(bad):
        raise ValueError(
            f"argument {name!r} has value(s) {value[bad].tolist()} <= 0; {what} must be > 0"
        )
