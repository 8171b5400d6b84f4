"""Correlation coefficients (COR, ZCOR), metafor ``escalc`` semantics.

Pearson correlations ``ri`` from samples of size ``ni``. Called through
:func:`analysis.effects.effect_sizes`; :mod:`analysis.measures` shows ZCOR as a correlation
(``tanh``).

References
----------
Fisher RA (1921). On the "probable error" of a coefficient of correlation deduced from a
small sample. Metron 1:3-32. Viechtbauer W (2010). J Stat Softw 36(3); metafor 3.8-1
``escalc`` (measures COR, ZCOR).
"""

from __future__ import annotations

import warnings

import numpy as np

from analysis._continuity import check_positive

__all__ = ["CORRELATION_MEASURES", "correlation_effects"]

CORRELATION_MEASURES = ("COR", "ZCOR")


def correlation_effects(
    measure: str, ri: np.ndarray, ni: np.ndarray, vtype: str
) -> tuple[np.ndarray, np.ndarray]:
    r"""Return ``yi`` and ``vi`` of a correlation measure.

    - COR: :math:`y = r`, :math:`v = (1 - r^2)^2/(n - 1)` (LS) or with the ``n``-weighted
      mean correlation :math:`\bar r` in place of :math:`r` (AV);
    - ZCOR: :math:`y = \tfrac12\log\frac{1+r}{1-r}`, :math:`v = 1/(n - 3)`.

    ``vi`` is NaN for :math:`n \le 3` (both measures, as metafor, which warns for ZCOR).
    metafor 3.8-1 refuses ``vtype="UB"`` for COR (it is for its bias-corrected ``UCOR``), and
    so does :func:`analysis.effects.effect_sizes`. As metafor 3.8-1 ``escalc`` (fixture,
    1e-10).

    Warns
    -----
    UserWarning
        ZCOR with some :math:`n \le 3` (the rows are named).
    """
    bad = np.abs(ri) > 1
    if np.any(bad):
        raise ValueError(
            f"argument 'ri' has value(s) {ri[bad].tolist()} outside [-1, 1]; correlations "
            "must lie in [-1, 1]"
        )
    check_positive("ni", ni, "sample sizes")
    small = ni <= 3
    if measure == "ZCOR" and np.any(small):
        warnings.warn(
            f"ZCOR: no sampling variance for ni <= 3 (rows {np.flatnonzero(small).tolist()}); "
            "vi set to NaN, as metafor's escalc", UserWarning, stacklevel=4)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "ZCOR":
            yi = np.arctanh(ri)
            vi = 1 / (ni - 3)
        else:
            yi = ri.copy()
            ok = ~(np.isnan(ri) | np.isnan(ni))
            r_used = (np.full(ri.shape, np.sum(ri[ok] * ni[ok]) / np.sum(ni[ok]))
                      if vtype == "AV" else ri)
            vi = (1 - r_used**2) ** 2 / (ni - 1)
    return yi, np.where(small, np.nan, vi)
