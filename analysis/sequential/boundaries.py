r"""Lan-DeMets alpha- and beta-spending boundaries for group-sequential monitoring.

The cumulative Z statistics :math:`Z_1, \dots, Z_K` at information :math:`I_1 < \dots < I_K`
are those of a Brownian motion with drift: on the score scale :math:`S_k = Z_k \sqrt{I_k}`
the increments are independent :math:`N(\theta \Delta I_k, \Delta I_k)`. The sub-density of
:math:`S_k` on the paths that have not stopped is propagated from look to look by the
recursive numerical integration of Armitage, McPherson and Rowe (1969) (Jennison & Turnbull
2000, ch. 19), here with Simpson's rule on a grid clipped to the drift +- 12 SD. Boundaries
solve "probability of stopping at look k = spending increment" look by look (Lan & DeMets
1983), as ``ldbounds::ldBounds`` and ``RTSA::boundaries`` do.

Spending functions (per side, :math:`a` = alpha per side, :math:`t` the information
fraction, capped at 1): O'Brien-Fleming type :math:`2 - 2\Phi(z_{1-a/2}/\sqrt t)` and Pocock
type :math:`a \log(1 + (e - 1) t)`.

Checked against ldbounds 2.0.2 ``ldBounds`` and RTSA 0.2.2 ``boundaries``
(``tests/reference/tsa_boundaries.json``) and against an independent integration of the
crossing probability (``tests/test_sequential.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from analysis._checks import check_choice, check_probability

__all__ = [
    "SPENDING_FUNCTIONS",
    "SequentialBoundaries",
    "alpha_boundaries",
    "crossing_probabilities",
    "design_inflation",
    "futility_boundaries",
    "spending",
]

#: Spending function names: Lan-DeMets O'Brien-Fleming and Pocock types.
SPENDING_FUNCTIONS = ("obf", "pocock")

#: Spending increments below this are treated as "nothing to spend": the boundary is infinite.
_NOTHING = 1e-15
#: Half-width of the integration grid in standard deviations about the drift.
_WIDTH = 12.0
#: Simpson intervals per unit standard deviation of the grid.
_PER_SD = 24
_SQRT_2PI = np.sqrt(2.0 * np.pi)


@dataclass(frozen=True, slots=True)
class SequentialBoundaries:
    r"""Two-sided (or one-sided) group-sequential boundaries on the Z scale.

    Attributes
    ----------
    timing : ndarray
        Information fraction of each look (of the maximum information of the design).
    upper, lower : ndarray
        Alpha-spending (efficacy) boundaries; ``lower`` is ``-upper`` when two-sided and
        ``-inf`` when one-sided; ``inf`` where nothing is spent.
    alpha_spent : ndarray
        Cumulative alpha spent at each look by the spending function (both sides summed).
    futility : ndarray
        Beta-spending (futility) boundary on the one-sided scale of the anticipated effect:
        NaN where there is none (``futility="none"`` or a negative value, where no inner wedge
        exists); two-sided monitoring stops for futility when ``|Z| < futility``.
    beta_spent : ndarray
        Cumulative beta spent (zeros without futility).
    alpha, beta : float
        Total type I and type II error.
    sides : int
        1 or 2.
    spending, beta_spending : str
        Spending function names.
    drift : float
        :math:`z_{1-\\alpha/sides} + z_{1-\\beta}`, the drift per unit of the fixed-design
        information.
    inflation : float
        Information at the last look relative to the fixed-design information (the factor
        by which the sequential design inflates the required information size).
    """

    timing: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    alpha_spent: np.ndarray
    futility: np.ndarray
    beta_spent: np.ndarray
    alpha: float
    beta: float
    sides: int
    spending: str
    beta_spending: str | None
    drift: float
    inflation: float


def _check_sides(sides: Any) -> int:
    if sides not in (1, 2) or isinstance(sides, bool):
        raise ValueError(f"argument 'sides' = {sides!r} must be 1 or 2")
    return int(sides)


def check_timing(timing: Any, name: str = "timing") -> np.ndarray:
    """Return ``timing`` as a float array: positive, finite, strictly increasing."""
    t = np.asarray(timing, dtype=float).ravel()
    if t.size == 0:
        raise ValueError(f"argument {name!r} is empty; give at least one information fraction")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"argument {name!r} = {t.tolist()!r} must be positive and finite")
    if np.any(np.diff(t) <= 0):
        raise ValueError(f"argument {name!r} = {t.tolist()!r} must be strictly increasing")
    return t


def spending(fraction: Any, alpha: float, function: str = "obf") -> np.ndarray:
    r"""Cumulative error spent at information ``fraction`` (capped at 1) for total ``alpha``.

    Parameters
    ----------
    fraction : array_like
        Information fractions (values above 1 count as 1; 0 spends nothing).
    alpha : float
        Error to spend over the whole design (per side for two-sided boundaries).
    function : {"obf", "pocock"}
        Lan-DeMets O'Brien-Fleming type :math:`2 - 2\\Phi(z_{1-\\alpha/2}/\\sqrt t)` or
        Pocock type :math:`\\alpha \\log(1 + (e - 1) t)`.
    """
    check_choice("function", function, SPENDING_FUNCTIONS)
    a = check_probability("alpha", alpha)
    t = np.clip(np.asarray(fraction, dtype=float), 0.0, 1.0)
    if function == "obf":
        with np.errstate(divide="ignore"):
            out = 2.0 * stats.norm.sf(stats.norm.isf(a / 2.0) / np.sqrt(t))
    else:
        out = a * np.log1p((np.e - 1.0) * t)
    return np.asarray(out, dtype=float)


class _Recursion:
    """Sub-density of the score statistic on the continuing paths, look by look."""

    def __init__(self, drift: float) -> None:
        self.drift = drift
        self.info = 0.0
        self.s = np.zeros(1)
        self.w = np.ones(1)  # quadrature weight times density (a point mass at 0 at the start)

    def exit(self, info: float, low: float, high: float) -> tuple[float, float]:
        """Probability of continuing so far and then Z <= low or Z >= high at ``info``."""
        d = info - self.info
        m = self.s + self.drift * d
        sd = np.sqrt(d)
        root = np.sqrt(info)
        # special.ndtr, not stats.norm.sf/cdf: the same values without the per-call overhead
        # of the distribution object (this runs thousands of times inside the root searches)
        up = float(np.sum(self.w * special.ndtr((m - high * root) / sd))) if high < np.inf else 0.0
        lo = float(np.sum(self.w * special.ndtr((low * root - m) / sd))) if low > -np.inf else 0.0
        return lo, up

    def advance(self, info: float, low: float, high: float, inner: float = -np.inf) -> None:
        """Move to the next look, keeping the paths with ``low < Z < high``, ``|Z| > inner``.

        (``inner`` > 0: a binding two-sided futility region ``-inner < Z < inner`` stops).
        """
        d = info - self.info
        root = np.sqrt(info)
        centre = self.drift * info
        lo_s = max(low * root, centre - _WIDTH * root)
        hi_s = min(high * root, centre + _WIDTH * root)
        pieces = ([(lo_s, hi_s)] if not inner > 0 else
                  [(lo_s, min(hi_s, -inner * root)), (max(lo_s, inner * root), hi_s)])
        grids, weights = [], []
        for a, b in pieces:
            if not b > a:
                continue
            n = max(2, int(np.ceil((b - a) / root * _PER_SD)))
            n += n % 2
            grid = np.linspace(a, b, n + 1)
            simpson = np.ones(n + 1)
            simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
            simpson *= (b - a) / (3.0 * n)
            grids.append(grid)
            weights.append(simpson)
        if not grids:
            self.s, self.w, self.info = np.zeros(1), np.zeros(1), info
            return
        grid = np.concatenate(grids)
        sd = np.sqrt(d)
        z = (grid[:, None] - self.s[None, :] - self.drift * d) / sd
        dens = np.exp(-(z**2) / 2.0) / _SQRT_2PI / sd  # stats.norm.pdf, without its overhead
        self.s, self.w, self.info = grid, np.concatenate(weights) * (dens @ self.w), info


def crossing_probabilities(timing: Any, upper: Any, lower: Any, drift: float = 0.0,
                           futility: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of first stopping above ``upper`` / below ``lower`` at each look.

    Parameters
    ----------
    timing : array_like
        Information at each look (any scale; the drift is per unit of it).
    upper, lower : array_like
        Boundaries on the Z scale (``inf``/``-inf`` for none).
    drift : float
        Mean of :math:`Z_k` is ``drift * sqrt(timing[k])``.
    futility : array_like, optional
        Inner (non-binding treated as binding here) futility boundary: paths with
        ``|Z| < futility`` stop; NaN for none. Only the one-sided region ``Z < futility``
        is removed when ``lower`` is ``-inf``.

    Returns
    -------
    upper_exit, lower_exit : ndarray
        Per-look probabilities (not cumulative).
    """
    t = check_timing(timing)
    hi = np.broadcast_to(np.asarray(upper, dtype=float), t.shape)
    lo = np.broadcast_to(np.asarray(lower, dtype=float), t.shape)
    rec = _Recursion(float(drift))
    up_exit = np.zeros(t.size)
    lo_exit = np.zeros(t.size)
    for k, info in enumerate(t):
        lo_exit[k], up_exit[k] = rec.exit(info, lo[k], hi[k])
        if k + 1 < t.size:
            f = np.nan if futility is None else float(np.asarray(futility, dtype=float)[k])
            if not np.isfinite(f):
                rec.advance(info, lo[k], hi[k])
            elif lo[k] > -np.inf:
                rec.advance(info, lo[k], hi[k], f)
            else:
                rec.advance(info, max(lo[k], f), hi[k])
    return up_exit, lo_exit


def _solve(f: Any, lo: float = -40.0, hi: float = 40.0) -> float:
    return float(optimize.brentq(f, lo, hi, xtol=1e-13, rtol=1e-14, maxiter=500))


def _alpha_step(rec: _Recursion, info: float, increment: float, sides: int) -> float:
    """Boundary at ``info`` spending ``increment`` per side on the paths of ``rec``."""
    if increment < _NOTHING:
        return float(np.inf)
    target = increment * sides

    def excess(b: float) -> float:
        lo, up = rec.exit(info, -b if sides == 2 else -np.inf, b)
        return lo + up - target

    if excess(0.0) <= 0:  # fewer continuing paths than alpha to spend (binding futility)
        return 0.0
    return _solve(excess, 0.0, 40.0)


def _alpha_bounds(t: np.ndarray, alpha: float, sides: int, function: str,
                  fraction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    per_side = alpha / sides
    cum = spending(fraction, per_side, function)
    incr = np.diff(np.concatenate([[0.0], cum]))
    upper = np.empty(t.size)
    rec = _Recursion(0.0)
    for k, info in enumerate(t):
        upper[k] = _alpha_step(rec, info, incr[k], sides)
        if k + 1 < t.size:
            rec.advance(info, -upper[k] if sides == 2 else -np.inf, upper[k])
    return upper, cum * sides


def alpha_boundaries(timing: Any, alpha: float = 0.05, sides: int = 2,
                     spending_function: str = "obf") -> SequentialBoundaries:
    r"""Lan-DeMets alpha-spending boundaries at the information fractions ``timing``.

    Parameters
    ----------
    timing : array_like
        Information fractions of the looks, strictly increasing; the spending function is
        evaluated at ``min(t, 1)``, and the correlation of the looks is
        :math:`\\sqrt{t_j / t_k}`.
    alpha : float
        Total type I error (two-sided: half per side, as ``ldBounds(alpha=, sides=2)``).
    sides : {1, 2}
        One- or two-sided (symmetric) boundaries.
    spending_function : {"obf", "pocock"}
        Lan-DeMets O'Brien-Fleming or Pocock type spending.

    Returns
    -------
    SequentialBoundaries
        Without futility boundaries (``futility`` NaN, ``inflation`` 1).
    """
    t = check_timing(timing)
    a = check_probability("alpha", alpha)
    s = _check_sides(sides)
    check_choice("spending_function", spending_function, SPENDING_FUNCTIONS)
    upper, spent = _alpha_bounds(t, a, s, spending_function, t)
    lower = -upper if s == 2 else np.full(t.size, -np.inf)
    drift = float(stats.norm.isf(a / s))
    return SequentialBoundaries(
        timing=t, upper=upper, lower=lower, alpha_spent=spent,
        futility=np.full(t.size, np.nan), beta_spent=np.zeros(t.size), alpha=a,
        beta=float("nan"), sides=s, spending=spending_function, beta_spending=None,
        drift=drift, inflation=1.0)


def design_inflation(timing: Any, upper: Any, lower: Any, alpha: float, beta: float,
                     sides: int = 2) -> float:
    r"""Factor R by which the maximum information exceeds the fixed-design information.

    R solves "power = 1 - beta": the probability, under the anticipated effect (drift
    :math:`z_{1-\\alpha/sides} + z_{1-\\beta}` per unit of fixed-design information), of
    crossing ``upper`` at some look, with information ``R * timing`` (as ``RTSA``'s
    ``right_power``; the lower, opposite-direction crossing is not counted as power).
    """
    t = check_timing(timing)
    drift = float(stats.norm.isf(alpha / sides) + stats.norm.isf(beta))

    def shortfall(r: float) -> float:
        up, _ = crossing_probabilities(t * r, upper, lower, drift)
        return float(np.sum(up)) - (1.0 - beta)

    return _solve(shortfall, 0.5, 3.0)


def _beta_bounds(info: np.ndarray, fraction: np.ndarray, upper: np.ndarray, drift: float,
                 beta: float, function: str, skip: int,
                 binding: tuple[float, int, str] | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beta-spending futility boundaries ``(fut, cum_beta, upper)`` at ``info``.

    Non-binding (``binding=None``): ``upper`` is kept. Binding (``binding = (alpha, sides,
    alpha function)``): the upper alpha boundary is recomputed look by look under the null,
    on the one-sided region ``fut < Z < upper`` of the anticipated effect, spending the
    per-side increment (the lower one is its mirror), as ``RTSA::boundaries(futility =
    "binding")``; so the alpha boundary at look k depends on the futility boundaries before.
    """
    frac = fraction.copy()
    frac[:skip] = 0.0
    cum = spending(frac, beta, function)
    incr = np.diff(np.concatenate([[0.0], cum]))
    fut = np.empty(info.size)
    upper = np.array(upper, dtype=float, copy=True)
    rec = _Recursion(drift)
    if binding is not None:
        alpha, sides, alpha_function = binding
        null = _Recursion(0.0)
        a_cum = spending(fraction, alpha / sides, alpha_function)
        a_incr = np.diff(np.concatenate([[0.0], a_cum]))
    for k, i_k in enumerate(info):
        if binding is not None:
            upper[k] = _alpha_step(null, i_k, a_incr[k], 1)
        if incr[k] <= 0:
            fut[k] = -np.inf
        else:
            def excess(b: float, i_k: float = i_k, target: float = incr[k], k: int = k) -> float:
                lo, _ = rec.exit(i_k, b, upper[k])
                return lo - target

            if excess(40.0) < 0:  # more beta to spend than paths left: no futility stop
                fut[k] = 40.0
            elif excess(-40.0) > 0:
                fut[k] = -40.0
            else:
                fut[k] = _solve(excess, -40.0, 40.0)
        if k + 1 < info.size:
            rec.advance(i_k, min(fut[k], upper[k]), upper[k])
            if binding is not None:
                null.advance(i_k, min(fut[k], upper[k]), upper[k])
    return fut, cum, upper


def futility_boundaries(timing: Any, alpha: float = 0.05, beta: float = 0.2, sides: int = 2,
                        spending_function: str = "obf", beta_spending: str = "obf",
                        binding: bool = False) -> SequentialBoundaries:
    """Alpha-spending boundaries with beta-spending futility boundaries.

    With ``binding=True`` (``RTSA::boundaries(futility = "binding")``) the futility region
    stops the paths under the null too (the continuation region at a look is between the
    futility and the efficacy boundaries), so less alpha is lost to paths that later cross
    and the alpha boundaries are recomputed look by look with it: lower than the
    non-binding ones after the first futility look.

    The alpha boundaries are those of :func:`alpha_boundaries` (non-binding: futility does
    not change them). Under the anticipated effect the futility boundary :math:`l_k` solves
    P(continue to look k, then :math:`Z_k < l_k`) = beta-spending increment, where
    continuing means :math:`l_j < Z_j < u_j` at earlier looks (the one-sided region in the
    direction of the effect); the information inflation R is found so that the last futility
    boundary meets the last alpha boundary. Looks where :math:`l_k < 0` have no futility
    boundary (there is no inner wedge) and spend no beta; R is then solved again with those
    looks spending nothing (``RTSA::boundaries(futility = "non-binding")``).

    Parameters
    ----------
    timing : array_like
        Information fractions of the looks (of the maximum, inflated, information).
    alpha, beta : float
        Type I error (two-sided total when ``sides=2``) and type II error.
    sides : {1, 2}
        One- or two-sided monitoring.
    spending_function, beta_spending : {"obf", "pocock"}
        Alpha- and beta-spending functions.

    Returns
    -------
    SequentialBoundaries
        ``futility`` holds :math:`l_k` (NaN where there is none); ``inflation`` is R.
    """
    t = check_timing(timing)
    a = check_probability("alpha", alpha)
    b = check_probability("beta", beta)
    s = _check_sides(sides)
    check_choice("spending_function", spending_function, SPENDING_FUNCTIONS)
    check_choice("beta_spending", beta_spending, SPENDING_FUNCTIONS)
    upper, spent = _alpha_bounds(t, a, s, spending_function, t)
    drift = float(stats.norm.isf(a / s) + stats.norm.isf(b))
    rule = (a, s, spending_function) if binding else None
    fut, cum, root, upper = _futility_fit(t, t, upper, drift, b, beta_spending, rule)
    return SequentialBoundaries(
        timing=t, upper=upper, lower=-upper if s == 2 else np.full(t.size, -np.inf),
        alpha_spent=spent, futility=fut, beta_spent=cum, alpha=a, beta=b, sides=s,
        spending=spending_function, beta_spending=beta_spending, drift=drift, inflation=root)


def _futility_fit(t: np.ndarray, fraction: np.ndarray, upper: np.ndarray, drift: float,
                  beta: float, function: str, binding: tuple[float, int, str] | None = None,
                  ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Fit the futility boundaries and the inflation R of the design.

    Returns the futility boundaries, the beta spent, the inflation R at which the last
    futility boundary meets the last alpha boundary, and the alpha boundaries (changed
    when ``binding``).
    """
    def gap(r: float, skip: int) -> float:
        fut, _, up = _beta_bounds(t * r, fraction, upper, drift, beta, function, skip, binding)
        return float(up[-1] - fut[-1])

    root = _solve(lambda r: gap(r, 0), 0.5, 3.0)
    fut, _, _ = _beta_bounds(t * root, fraction, upper, drift, beta, function, 0, binding)
    skip = int(np.sum(fut[:-1] < 0))
    if skip:
        root = _solve(lambda r: gap(r, skip), 0.5, 3.0)
    fut, cum, up = _beta_bounds(t * root, fraction, upper, drift, beta, function, skip, binding)
    fut[-1] = up[-1]
    fut = np.where(fut < 0, np.nan, fut)
    return fut, cum, root, up
