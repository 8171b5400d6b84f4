"""Single-group proportions (PR, PLN, PLO, PAS, PFT), metafor ``escalc`` semantics.

``xi`` events among ``ni`` individuals. Called through :func:`analysis.effects.effect_sizes`;
:mod:`analysis.measures` back-transforms the pooled values to a proportion.

References
----------
Freeman MF, Tukey JW (1950). Transformations related to the angular and the square root.
Ann Math Stat 21:607-611. Miller JJ (1978). Am Stat 32(4):138. Viechtbauer W (2010).
J Stat Softw 36(3); metafor 3.8-1 ``escalc`` (measures PR, PLN, PLO, PAS, PFT).
"""

from __future__ import annotations

import numpy as np

from analysis._continuity import add_continuity, check_nonnegative, check_positive

__all__ = ["PROPORTION_MEASURES", "proportion_effects"]

PROPORTION_MEASURES = ("PR", "PLN", "PLO", "PAS", "PFT")


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    """Weighted mean over the studies where both are known (metafor's ``.wmean``)."""
    ok = ~(np.isnan(x) | np.isnan(w))
    return float(np.sum(x[ok] * w[ok]) / np.sum(w[ok]))


def proportion_effects(
    measure: str,
    xi: np.ndarray,
    ni: np.ndarray,
    add: float,
    to: str,
    vtype: str,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Return ``yi`` and ``vi`` of a proportion measure.

    With the (corrected) events :math:`x`, non-events :math:`m` and :math:`n = x + m`,
    :math:`p = x/n`:

    - PR: :math:`y = p`, :math:`v = p(1-p)/n` (LS), :math:`/(n-1)` (UB), or with the
      ``n``-weighted mean proportion :math:`\bar p` (AV);
    - PLN: :math:`y = \log p`, :math:`v = 1/x - 1/n` (LS) or :math:`1/(\bar p n) - 1/n` (AV);
    - PLO: :math:`y = \operatorname{logit} p`, :math:`v = 1/x + 1/m` (LS) or
      :math:`1/(\bar p n) + 1/((1-\bar p) n)` (AV);
    - PAS: :math:`y = \arcsin\sqrt p`, :math:`v = 1/(4n)`;
    - PFT: :math:`y = \tfrac12\{\arcsin\sqrt{x/(n+1)} + \arcsin\sqrt{(x+1)/(n+1)}\}`,
      :math:`v = 1/(4n + 2)`.

    ``add`` goes to the events and non-events of a group by the rule ``to`` (``"only0"``:
    when either is 0). As metafor 3.8-1 ``escalc`` (fixture, 1e-10).
    """
    check_nonnegative("xi", xi)
    check_positive("ni", ni, "group sizes")
    bad = xi > ni
    if np.any(bad):
        raise ValueError(
            f"argument 'xi' has value(s) {xi[bad].tolist()} larger than the group size 'ni'"
        )
    x, m = add_continuity([xi, ni - xi], add, to)
    n = x + m
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        if measure == "PR":
            if vtype == "AV":
                pbar = _wmean(p, n)
                return p, pbar * (1 - pbar) / n
            return p, p * (1 - p) / (n - 1 if vtype == "UB" else n)
        if measure == "PLN":
            if vtype == "AV":
                return np.log(p), 1 / (_wmean(p, n) * n) - 1 / n
            return np.log(p), 1 / x - 1 / n
        if measure == "PLO":
            yi = np.log(p / (1 - p))
            if vtype == "AV":
                pbar = _wmean(p, n)
                return yi, 1 / (pbar * n) + 1 / ((1 - pbar) * n)
            return yi, 1 / x + 1 / m
        if measure == "PAS":
            return np.arcsin(np.sqrt(p)), 1 / (4 * n)
        yi = 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
        return yi, 1 / (4 * n + 2)
