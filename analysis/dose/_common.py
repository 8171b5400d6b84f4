"""Errors and small helpers shared by the dose-response modules (private)."""

from __future__ import annotations

import numpy as np

__all__ = ["SparseDataError", "block_indicator"]


class SparseDataError(ValueError):
    """The data cannot support the requested dose-response model.

    Raised before any fitting, with a message that says what was asked for, what the data
    offer (comparisons, studies, distinct doses) and what the model needs, e.g.
    ``"4 comparisons from 4 studies: a restricted cubic spline with 3 knots (2 coefficients)
    under a random-effects model needs at least 4 comparisons with 3 distinct non-reference
    doses"``.
    """


def block_indicator(groups: np.ndarray) -> np.ndarray:
    """Return the ``k x k`` matrix with 1 where rows ``i`` and ``j`` share a group label."""
    groups = np.asarray(groups)
    return (groups[:, None] == groups[None, :]).astype(float)
