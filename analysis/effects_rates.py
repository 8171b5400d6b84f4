"""Incidence-rate comparisons (IRR, IRD, IRSD), metafor ``escalc`` semantics.

Events ``x1i`` over person-time ``t1i`` versus ``x2i`` over ``t2i``. Called through
:func:`analysis.effects.effect_sizes`.

References
----------
Viechtbauer W (2010). J Stat Softw 36(3); metafor 3.8-1 ``escalc`` (measures IRR, IRD,
IRSD). Rothman KJ, Greenland S, Lash TL (2008). Modern Epidemiology, 3rd ed., ch. 14.
"""

from __future__ import annotations

import numpy as np

from analysis._continuity import add_continuity, check_nonnegative, check_positive

__all__ = ["RATE_MEASURES", "incidence_rate_effects"]

RATE_MEASURES = ("IRR", "IRD", "IRSD")


def incidence_rate_effects(
    measure: str,
    x1: np.ndarray,
    t1: np.ndarray,
    x2: np.ndarray,
    t2: np.ndarray,
    add: float,
    to: str,
    drop00: bool,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Return ``yi`` and ``vi`` of an incidence-rate measure.

    With the (corrected) counts :math:`x_j` and rates :math:`r_j = x_j / t_j`:

    - IRR: :math:`y = \log(r_1/r_2)`, :math:`v = 1/x_1 + 1/x_2`;
    - IRD: :math:`y = r_1 - r_2`, :math:`v = r_1/t_1 + r_2/t_2`;
    - IRSD: :math:`y = \sqrt{r_1} - \sqrt{r_2}`, :math:`v = 1/(4t_1) + 1/(4t_2)`.

    ``add`` goes to both counts of a study by the rule ``to`` (:func:`add_continuity`:
    ``"only0"`` when either count is 0); ``drop00`` sets studies with no events in both
    groups to NaN; the person-times are never changed. As metafor 3.8-1 ``escalc``
    (fixture, 1e-10).
    """
    for name, value in (("x1i", x1), ("x2i", x2)):
        check_nonnegative(name, value)
    for name, value in (("t1i", t1), ("t2i", t2)):
        check_positive(name, value, "person-times")
    if drop00:
        id00 = (x1 == 0) & (x2 == 0)
        x1, x2 = (np.where(id00, np.nan, x) for x in (x1, x2))
    x1, x2 = add_continuity([x1, x2], add, to)
    with np.errstate(divide="ignore", invalid="ignore"):
        r1, r2 = x1 / t1, x2 / t2
        if measure == "IRR":
            return np.log(r1) - np.log(r2), 1 / x1 + 1 / x2
        if measure == "IRD":
            return r1 - r2, r1 / t1 + r2 / t2
        return np.sqrt(r1) - np.sqrt(r2), 1 / (4 * t1) + 1 / (4 * t2)
