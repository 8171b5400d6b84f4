r"""The one rma.uni-style core: every heterogeneity estimator, written once.

The model is :math:`y = X\beta + u + e`, :math:`u \sim N(0, \tau^2 I)`,
:math:`e \sim N(0, \mathrm{diag}(v))`; the intercept-only model (:func:`analysis.pooling.pool`)
is the case :math:`p = 1`, meta-regression (:func:`analysis.regression.meta_regression`) any
full-rank :math:`X`. With :math:`W = (V + \tau^2 I)^{-1}` and
:math:`P = W - W X (X^\top W X)^{-1} X^\top W`, every estimator, the standard error of
:math:`\hat\tau^2`, Knapp-Hartung scaling, :math:`I^2`/:math:`H^2`, the Q-profile limits and the
score and (restricted) log-likelihood are written once here, against the small interface of
:class:`Projection` (the quantities at one set of weights):

=============  ==========================================================================
``sw``         :math:`\mathrm{tr}\,W = \sum w_i`
``trp``        :math:`\mathrm{tr}\,P`
``q``          :math:`y^\top P y` (the generalised Q; at :math:`\tau^2 = 0` Cochran's Q / QE)
``ypp``        :math:`y^\top P^2 y`
``yppp()``     :math:`y^\top P^3 y`
``psq(a, b)``  :math:`\sum_{ij} P_{ij}^2 a_i b_j` (``psq()`` is :math:`\mathrm{tr}\,P^2`)
``diag()``     :math:`\mathrm{diag}\,P`
``logdet``     :math:`\log\det X^\top W X`
=============  ==========================================================================

Two back-ends supply the algebra, both vectorised over rows (one row = one analysis; padding
cells have weight 0): :class:`InterceptRows` in closed form (:math:`P = W - ww^\top/\sum w`) and
:class:`DesignRows` with explicit matrices for any :math:`X`. The iteration drivers (root of
Q for PM/EB and the Q-profile; the global maximiser for ML/REML; metafor's Fisher scoring) act on
all rows at once.

ML and REML return the **global** maximum of the (restricted) log-likelihood over
:math:`[0, \infty)`: the score is evaluated on a grid in :math:`\log \tau^2` over
:math:`[0, T]`, where :math:`T` is an upper bound above which the score is provably negative
(:func:`score_bound`); every bracket of a sign change from + to - is refined by safeguarded
Newton iteration, :math:`\tau^2 = 0` is a candidate when the score there is not positive, and
the candidate with the largest likelihood wins. metafor's Fisher scoring (one local root, then
its likelihood check at 0) is ``control={"algorithm": "fisher"}``.

References
----------
Viechtbauer W (2005). J Educ Behav Stat 30:261-293 (ML, REML, HE, HS, DL, SJ; Fisher scoring).
Viechtbauer W (2007). Stat Med 26:37-52 (Q-profile). Paule RC, Mandel J (1982). J Res Natl Bur
Stand 87:377-385 (PM). Morris CN (1983). JASA 78:47-55 (EB). Knapp G, Hartung J (2003). Stat
Med 22:2693-2710. Higgins JPT, Thompson SG (2002). Stat Med 21:1539-1558 (I², H²).
Viechtbauer W (2010). J Stat Softw 36(3) (metafor; the mixed-effects formulas).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy import special

from analysis._checks import check_choice
from analysis.errors import ConvergenceError

__all__ = [
    "METHODS",
    "Control",
    "DesignRows",
    "HeterogeneityFit",
    "InterceptRows",
    "Projection",
    "Rows",
    "fit_heterogeneity",
    "loglik",
    "score_bound",
    "wald",
]

METHODS = ("FE", "DL", "REML", "PM", "SJ", "HE", "HS", "ML", "EB")
_EPS = float(np.finfo(float).eps)
#: Grid points per decade of tau^2 in the global search (ratio 10**(1/4) = 1.78 between
#: neighbours); checked against a brute-force maximisation on a million generated data sets.
GRID_PER_DECADE = 4
#: Decades of tau^2 below the bound T covered by the grid (below them the score is linear).
GRID_DECADES_MAX = 14


# --------------------------------------------------------------------------------------------
# control settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Control:
    r"""Settings of the iterative estimators (names follow metafor's ``control`` list).

    One meaning for :func:`analysis.pooling.pool`, :func:`analysis.regression.meta_regression`
    and :func:`analysis.regression.subgroup_analysis`.

    Attributes
    ----------
    threshold : float
        Convergence of the ML/REML iterations: Fisher scoring stops when
        :math:`|\tau^2_{new} - \tau^2_{old}|` is at most this (metafor default 1e-5; ours
        1e-12 so that results are exact to ~1e-10); the Newton refinement stops at a step
        below ``threshold`` relative to :math:`\tau^2` (1e-8 for full Newton steps, after
        which the error left is ~1e-16).
    maxiter : int
        Maximum number of iterations (metafor default 100).
    tol : float
        Absolute tolerance of the root finders (PM estimator, Q-profile limits) and of the
        log-likelihood check at :math:`\tau^2 = 0` (metafor default ``eps**0.25``).
    tau2_max : float or None
        Upper end of the PM search interval (default ``max(100, 10 mad(y)^2)`` as metafor).
    ll0check : bool
        With ``algorithm="fisher"``: after convergence, set :math:`\tau^2 = 0` when the
        (restricted) likelihood at 0 is larger, as metafor does (the global search compares
        :math:`\tau^2 = 0` with every local maximum anyway).
    stepadj : float
        Step length factor of Fisher scoring.
    algorithm : {"global", "newton", "fisher"}
        ML/REML solver. ``"global"`` (default; ``"newton"`` is an alias): the global maximum
        of the (restricted) likelihood, see the module docstring. ``"fisher"``: metafor's
        Fisher scoring step for step (same iterates, same stopping rule, same failures, same
        local maximum); with ``threshold=1e-5, maxiter=100`` it reproduces metafor's defaults
        digit for digit. EB with ``"fisher"`` uses metafor's EB scoring step.
    """

    threshold: float = 1e-12
    maxiter: int = 1000
    tol: float = 1e-12
    tau2_max: float | None = None
    ll0check: bool = True
    stepadj: float = 1.0
    algorithm: str = "global"

    @classmethod
    def from_any(cls, control: Control | Mapping[str, Any] | None) -> Control:
        """Build from ``None``, a ``Control`` or a mapping of field names."""
        if control is None:
            return cls()
        if isinstance(control, Control):
            return control
        if not isinstance(control, Mapping):
            raise ValueError(
                f"argument 'control' = {control!r} is not allowed; use a dict with keys "
                "threshold, maxiter, tol, tau2_max, ll0check, stepadj, algorithm"
            )
        allowed = ("threshold", "maxiter", "tol", "tau2_max", "ll0check", "stepadj", "algorithm")
        unknown = [key for key in control if key not in allowed]
        if unknown:
            raise ValueError(
                f"argument 'control' has unknown key(s) {unknown}; allowed: {', '.join(allowed)}"
            )
        out = cls(**dict(control))
        check_choice("control['algorithm']", out.algorithm, ("global", "newton", "fisher"))
        for name in ("threshold", "tol"):
            value = getattr(out, name)
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise ValueError(f"control[{name!r}] = {value!r} is not allowed; use a number > 0")
        if not (isinstance(out.maxiter, int) and out.maxiter >= 1):
            raise ValueError(
                f"control['maxiter'] = {out.maxiter!r} is not allowed; use an integer >= 1"
            )
        return out


# --------------------------------------------------------------------------------------------
# the algebra interface and its two back-ends
# --------------------------------------------------------------------------------------------

_ONES: dict[int, np.ndarray] = {}


def _rsum(x: np.ndarray) -> np.ndarray:
    """Return row sums as a matrix-vector product (faster than ``sum(axis=1)`` on short rows)."""
    k = x.shape[-1]
    ones = _ONES.get(k)
    if ones is None:
        ones = _ONES.setdefault(k, np.ones(k))
    return x @ ones


class Projection(Protocol):
    """Quantities of :math:`P` at one set of weights, one value per row."""

    sw: np.ndarray
    trp: np.ndarray
    q: np.ndarray
    ypp: np.ndarray
    w: np.ndarray

    @property
    def logdet(self) -> np.ndarray: ...  # noqa: D102

    def yppp(self) -> np.ndarray: ...  # noqa: D102

    def psq(self, a: Any = 1.0, b: Any = 1.0) -> np.ndarray: ...  # noqa: D102

    def diag(self) -> np.ndarray: ...  # noqa: D102

    def coef(self) -> tuple[np.ndarray, np.ndarray]: ...  # noqa: D102


class Rows(Protocol):
    """Data of a batch of analyses: ``y``, ``v``, ``m`` (n x k), ``k`` studies and ``p``."""

    y: np.ndarray
    v: np.ndarray
    m: np.ndarray
    k: np.ndarray
    p: int

    def proj(self, w: np.ndarray) -> Projection: ...  # noqa: D102

    def take(self, idx: np.ndarray) -> Rows: ...  # noqa: D102

    def score_grid(self, t: np.ndarray, reml: bool) -> np.ndarray: ...  # noqa: D102


class _InterceptProjection:
    r"""Closed forms for :math:`X = 1`: :math:`P = W - ww^\top/\sum w`, :math:`Py = w r`."""

    __slots__ = ("mu", "q", "r", "sw", "trp", "w", "wr", "ypp")

    def __init__(self, y: np.ndarray, w: np.ndarray) -> None:
        sw = _rsum(w)
        mu = _rsum(w * y) / sw
        r = y - mu[:, None]
        wr = w * r
        self.w, self.sw, self.mu, self.r, self.wr = w, sw, mu, r, wr
        self.q = _rsum(wr * r)
        self.ypp = _rsum(wr * wr)
        self.trp = sw - _rsum(w * w) / sw

    @property
    def logdet(self) -> np.ndarray:
        return np.log(self.sw)

    def yppp(self) -> np.ndarray:
        return _rsum(self.wr * self.wr * self.w) - _rsum(self.w * self.wr) ** 2 / self.sw

    def psq(self, a: Any = 1.0, b: Any = 1.0) -> np.ndarray:
        w, sw = self.w, self.sw
        w2 = w * w
        return (_rsum(a * b * w2) - 2 * _rsum(a * b * w2 * w) / sw
                + _rsum(a * w2) * _rsum(b * w2) / sw**2)

    def diag(self) -> np.ndarray:
        return self.w - self.w * self.w / self.sw[:, None]

    def coef(self) -> tuple[np.ndarray, np.ndarray]:
        return self.mu[:, None], (1.0 / self.sw)[:, None, None]


class _DesignProjection:
    r"""Explicit :math:`P` (n x k x k) for a general design (padding rows have weight 0)."""

    __slots__ = ("A", "Ainv", "P", "beta", "q", "r", "sw", "trp", "w", "wr", "ypp")

    def __init__(self, y: np.ndarray, x: np.ndarray, w: np.ndarray) -> None:
        wx = x * w[:, :, None]
        A = np.swapaxes(x, 1, 2) @ wx
        Ainv = np.linalg.inv(A)
        beta = (Ainv @ (np.swapaxes(wx, 1, 2) @ y[:, :, None]))[:, :, 0]
        r = y - (x @ beta[:, :, None])[:, :, 0]
        wr = w * r
        P = -(wx @ Ainv @ np.swapaxes(wx, 1, 2))
        idx = np.arange(w.shape[1])
        P[:, idx, idx] += w
        self.w, self.A, self.Ainv, self.P, self.beta, self.r, self.wr = w, A, Ainv, P, beta, r, wr
        self.sw = _rsum(w)
        self.q = _rsum(wr * r)
        self.ypp = _rsum(wr * wr)
        self.trp = np.trace(P, axis1=1, axis2=2)

    @property
    def logdet(self) -> np.ndarray:
        return np.linalg.slogdet(self.A)[1]

    def yppp(self) -> np.ndarray:
        return np.einsum("ni,nij,nj->n", self.wr, self.P, self.wr)

    def psq(self, a: Any = 1.0, b: Any = 1.0) -> np.ndarray:
        p2 = self.P * self.P
        a = np.broadcast_to(np.asarray(a, dtype=float), self.w.shape)
        b = np.broadcast_to(np.asarray(b, dtype=float), self.w.shape)
        return np.einsum("ni,nij,nj->n", a, p2, b)

    def diag(self) -> np.ndarray:
        return np.diagonal(self.P, axis1=1, axis2=2).copy()

    def coef(self) -> tuple[np.ndarray, np.ndarray]:
        return self.beta, self.Ainv


@dataclass(slots=True)
class InterceptRows:
    """Intercept-only analyses, one per row (``m`` marks the studies present)."""

    y: np.ndarray
    v: np.ndarray
    m: np.ndarray
    k: np.ndarray
    p: int = 1

    @classmethod
    def build(cls, y: np.ndarray, v: np.ndarray, m: np.ndarray) -> InterceptRows:
        """Zero the padding cells (y = 0, v = 1, weight 0) and count the studies."""
        return cls(np.where(m, y, 0.0), np.where(m, v, 1.0), m,
                   m.sum(axis=1).astype(float))

    def proj(self, w: np.ndarray) -> _InterceptProjection:
        """Projection at weights ``w`` (n x k; 0 on padding)."""
        return _InterceptProjection(self.y, w)

    def score_grid(self, t: np.ndarray, reml: bool) -> np.ndarray:
        """Twice the score at every point of ``t`` (n x G), broadcast without copying rows."""
        w = self.m[:, None, :] / (self.v[:, None, :] + t[:, :, None])
        sw = _rsum(w)
        mu = _rsum(w * self.y[:, None, :]) / sw
        wr = w * (self.y[:, None, :] - mu[:, :, None])
        ypp = _rsum(wr * wr)
        return ypp - (sw - _rsum(w * w) / sw) if reml else ypp - sw

    def take(self, idx: np.ndarray) -> InterceptRows:
        """Return the rows ``idx``."""
        if idx.size == self.k.size and np.array_equal(idx, np.arange(idx.size)):
            return self
        return InterceptRows(self.y[idx], self.v[idx], self.m[idx], self.k[idx])


@dataclass(slots=True)
class DesignRows:
    """Analyses with a general design ``x`` (n x k x p), one per row."""

    y: np.ndarray
    v: np.ndarray
    m: np.ndarray
    k: np.ndarray
    x: np.ndarray
    p: int = 1

    @classmethod
    def build(cls, y: np.ndarray, v: np.ndarray, x: np.ndarray,
              m: np.ndarray | None = None) -> DesignRows:
        """From 1-D (one analysis) or batched arrays; padding rows of ``x`` are zeroed."""
        if y.ndim == 1:
            y, v, x = y[None, :], v[None, :], x[None, :, :]
        m = np.ones(y.shape, dtype=bool) if m is None else m
        x = np.where(m[:, :, None], x, 0.0)
        return cls(np.where(m, y, 0.0), np.where(m, v, 1.0), m, m.sum(axis=1).astype(float),
                   x, int(x.shape[2]))

    def proj(self, w: np.ndarray) -> _DesignProjection:
        """Projection at weights ``w`` (n x k; 0 on padding)."""
        return _DesignProjection(self.y, self.x, w)

    def score_grid(self, t: np.ndarray, reml: bool) -> np.ndarray:
        """Twice the score at every point of ``t`` (n x G)."""
        n, g = t.shape
        return _score(self.take(np.repeat(np.arange(n), g)), t.ravel(), reml).reshape(n, g)

    def take(self, idx: np.ndarray) -> DesignRows:
        """Return the rows ``idx``."""
        if idx.size == self.k.size and np.array_equal(idx, np.arange(idx.size)):
            return self
        return DesignRows(self.y[idx], self.v[idx], self.m[idx], self.k[idx], self.x[idx],
                          self.p)


# --------------------------------------------------------------------------------------------
# quantities at a given tau^2 (every row)
# --------------------------------------------------------------------------------------------


def _weights(d: Rows, tau2: np.ndarray) -> np.ndarray:
    return d.m / (d.v + tau2[:, None])


def loglik(d: Rows, tau2: np.ndarray, reml: bool) -> np.ndarray:
    r"""(Restricted) log-likelihood of every row at ``tau2``, without constants.

    ML: :math:`-\frac12[\sum \log(v_i + \tau^2) + y^\top P y]`; REML adds
    :math:`-\frac12 \log\det X^\top W X`. metafor's ``logLik`` adds
    :math:`-\frac{k}{2}\log 2\pi` (ML) or :math:`-\frac{k-p}{2}\log 2\pi +
    \frac12\log\det X^\top X` (REML), which do not depend on :math:`\tau^2`.
    """
    pr = d.proj(_weights(d, tau2))
    ll = -0.5 * (_rsum(d.m * np.log(d.v + tau2[:, None])) + pr.q)
    if reml:
        ll = ll - 0.5 * pr.logdet
    return ll


def _score(d: Rows, tau2: np.ndarray, reml: bool) -> np.ndarray:
    r"""Return twice the score.

    REML :math:`y^\top P^2 y - \mathrm{tr} P`, ML :math:`y^\top P^2y - \mathrm{tr} W`.
    """
    pr = d.proj(_weights(d, tau2))
    return pr.ypp - (pr.trp if reml else pr.sw)


def _score_deriv(d: Rows, tau2: np.ndarray, reml: bool) -> tuple[np.ndarray, np.ndarray]:
    r"""Return twice the score and its derivative.

    The derivative is :math:`-2y^\top P^3 y + \mathrm{tr}P^2` (ML: :math:`+\mathrm{tr}W^2`).
    """
    pr = d.proj(_weights(d, tau2))
    if reml:
        return pr.ypp - pr.trp, -2 * pr.yppp() + pr.psq()
    return pr.ypp - pr.sw, -2 * pr.yppp() + _rsum(pr.w * pr.w)


def _vrange(d: Rows) -> tuple[np.ndarray, np.ndarray]:
    vmin = np.min(np.where(d.m, d.v, np.inf), axis=1)
    vmax = np.max(np.where(d.m, d.v, -np.inf), axis=1)
    return vmin, vmax


def score_bound(d: Rows, reml: bool) -> np.ndarray:
    r"""Return a bound :math:`T` with score < 0 for every :math:`\tau^2 > T` (0: never positive).

    With :math:`w_{max} = 1/(v_{min} + \tau^2)`, :math:`w_{min} = 1/(v_{max} + \tau^2)` and
    :math:`RSS` the OLS residual sum of squares: :math:`y^\top P^2 y \le w_{max}\, y^\top P y
    \le w_{max}^2 RSS`, and :math:`\mathrm{tr} P \ge (k - p) w_{min}` (ML:
    :math:`\mathrm{tr} W \ge k w_{min}`), so the score is negative where
    :math:`RSS (v_{max} + \tau^2) < k' (v_{min} + \tau^2)^2`, i.e. beyond the larger root of
    that quadratic.
    """
    rss = np.maximum(d.proj(d.m.astype(float)).q, 0.0)
    keff = d.k - (d.p if reml else 0)
    vmin, vmax = _vrange(d)
    disc = rss**2 + 4 * keff * rss * (vmax - vmin)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (rss - 2 * keff * vmin + np.sqrt(disc)) / (2 * keff)
    return np.where(np.isfinite(t), np.maximum(t, 0.0), 0.0)


def _solve_q(d: Rows, target: np.ndarray, hi: np.ndarray, tol: float) -> np.ndarray:
    r"""Solve :math:`Q(\tau^2) = y^\top P y = \text{target}` on :math:`[0, hi]` for every row.

    Requires :math:`Q(0) \ge \text{target} \ge Q(hi)` (Q is decreasing). Newton iteration on
    :math:`1/Q(\tau^2) - 1/\text{target}` (nearly linear in :math:`\tau^2`; the derivative of Q
    is :math:`-y^\top P^2 y`), safeguarded by bisection whenever a step leaves the current
    bracket; exact to far below metafor's ``uniroot`` tolerance.
    """
    n = d.k.size
    x = np.zeros(n)
    lo = np.zeros(n)
    up = hi.astype(float).copy()
    act = np.arange(n)
    # Newton converges quadratically: once a step is below 1e-8 (relative), the error left
    # after taking it is of order 1e-16, so stop there (checked against 300-step bisection).
    xtol = max(min(tol, 1e-13), 1e-8)
    sub, ta = d, target
    for _ in range(300):
        xa = x[act]
        pr = sub.proj(_weights(sub, xa))
        f = pr.q - ta
        la = np.where(f > 0, xa, lo[act])
        ua = np.where(f < 0, xa, up[act])
        with np.errstate(divide="ignore", invalid="ignore"):
            new = xa + pr.q * f / (ta * pr.ypp)
        bad = ~(new > la) | ~(new < ua)
        new = np.where(bad, 0.5 * (la + ua), new)
        scale = np.maximum(1.0, new)
        done = (f == 0) | (np.abs(new - xa) <= xtol * scale) & ~bad | (
            ua - la <= 4 * _EPS * scale)
        lo[act], up[act], x[act] = la, ua, new
        if done.all():
            return x
        keep = ~done
        act, ta = act[keep], ta[keep]
        sub = sub.take(np.flatnonzero(keep)) if keep.size == sub.k.size else sub
    raise ConvergenceError(
        "root finding for tau^2 (PM/EB estimator or Q-profile limit) did not converge in 300 "
        "iterations; check the data for extreme variances or try another method"
    )


# --------------------------------------------------------------------------------------------
# the estimators (rows with k > p)
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Basis:
    r"""The fixed-effect (:math:`\tau^2 = 0`) projection every estimator starts from."""

    d: Rows
    p0: Projection
    keff: np.ndarray

    @classmethod
    def of(cls, d: Rows) -> _Basis:
        return cls(d, d.proj(d.m / d.v), d.k - d.p)


def _tau2_he(b: _Basis) -> tuple[np.ndarray, Projection]:
    ph = b.d.proj(b.d.m.astype(float))
    trpv = _rsum(ph.diag() * b.d.v)
    return (ph.q - trpv) / b.keff, ph


def _tau2_sj0(d: Rows) -> np.ndarray:
    ybar = _rsum(d.y * d.m) / d.k
    return _rsum(d.m * (d.y - ybar[:, None]) ** 2) / d.k


def _pm_upper(d: Rows, con: Control) -> np.ndarray:
    if con.tau2_max is not None:
        return np.full(d.k.shape, float(con.tau2_max))
    ynan = np.where(d.m, d.y, np.nan)
    med = np.nanmedian(ynan, axis=1)
    mad = 1.4826 * np.nanmedian(np.abs(ynan - med[:, None]), axis=1)
    return np.maximum(100.0, 10 * mad**2)


def _tau2_qroot(b: _Basis, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    r"""PM and EB: the root of :math:`y^\top P y = k - p` (0 when Q(0) is below k - p).

    PM searches :math:`[0, \tau^2_{max}]` and fails when the root lies above it (metafor);
    EB (its fixed point is the same equation) widens the interval tenfold until it holds the
    root.
    """
    d, target = b.d, b.keff.astype(float)
    tau2 = np.zeros(d.k.shape)
    conv = np.ones(d.k.shape, dtype=bool)
    need = b.p0.q > target if method == "EB" else b.p0.q >= target
    if not np.any(need):
        return tau2, conv
    idx = np.flatnonzero(need)
    sub, tg = d.take(idx), target[idx]
    hi = _pm_upper(sub, con)
    q_hi = sub.proj(_weights(sub, hi)).q
    if method == "PM":
        ok = q_hi <= tg
        conv[idx[~ok]] = False
    else:
        for _ in range(60):
            low = q_hi > tg
            if not np.any(low):
                break
            hi = np.where(low, hi * 10, hi)
            q_hi = sub.proj(_weights(sub, hi)).q
        ok = q_hi <= tg
        conv[idx[~ok]] = False
    if np.any(ok):
        good = np.flatnonzero(ok)
        tau2[idx[good]] = _solve_q(sub.take(good), tg[good], hi[good],
                                   con.tol if method == "PM" else 1e-13)
    return tau2, conv


def _halve(tau2: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """Metafor's ``while (tau2 + adj < 0) adj <- adj/2`` (which ends at -0 when tau2 == 0)."""
    adj = np.where(np.isnan(adj), 0.0, adj)
    adj = np.where((tau2 == 0) & (adj < 0), 0.0, adj)
    neg = tau2 + adj < 0
    while np.any(neg):
        adj = np.where(neg, adj / 2, adj)
        neg = tau2 + adj < 0
    return adj


def _fisher_step(d: Rows, tau2: np.ndarray, method: str) -> np.ndarray:
    pr = d.proj(_weights(d, tau2))
    if method == "ML":
        return (pr.ypp - pr.sw) / _rsum(pr.w * pr.w)
    if method == "REML":
        return (pr.ypp - pr.trp) / pr.psq()
    keff = d.k - d.p
    return (pr.q * d.k / keff - d.k) / pr.sw  # EB


def _tau2_fisher(b: _Basis, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    """Metafor's Fisher scoring for ML, REML and EB from the (truncated) HE estimate."""
    d = b.d
    tau2 = np.maximum(0.0, _tau2_he(b)[0])
    conv = np.ones(tau2.shape, dtype=bool)
    active = np.arange(tau2.size)
    it = 0
    while active.size:
        it += 1
        sub = d.take(active)
        adj = _halve(tau2[active], _fisher_step(sub, tau2[active], method) * con.stepadj)
        new = tau2[active] + adj
        change = np.abs(new - tau2[active])
        tau2[active] = new
        if it > con.maxiter:
            conv[active] = False
            break
        active = active[change > con.threshold]
    if method in ("ML", "REML") and con.ll0check:
        tau2 = _ll0check(d, tau2, conv, method, con)
    return tau2, conv


def _ll0check(d: Rows, tau2: np.ndarray, conv: np.ndarray, method: str,
              con: Control) -> np.ndarray:
    """Metafor's check: set tau^2 = 0 where the likelihood at 0 is larger (by > tol)."""
    check = conv & (tau2 > con.threshold)
    if not np.any(check):
        return tau2
    idx = np.flatnonzero(check)
    sub = d.take(idx)
    reml = method == "REML"
    worse = loglik(sub, np.zeros(idx.size), reml) - loglik(sub, tau2[idx], reml) > con.tol
    if np.any(worse):
        warnings.warn(
            f"{method}: Fisher scoring stopped at a local maximum of the likelihood; tau^2 set "
            "to 0 as metafor does (the default control={'algorithm': 'global'} finds the "
            "global maximum)",
            RuntimeWarning,
            stacklevel=5,
        )
    tau2 = tau2.copy()
    tau2[idx[worse]] = 0.0
    return tau2


def _grid(d: Rows, bound: np.ndarray) -> np.ndarray:
    """Grid (n x G) in log tau^2 from 1e-2 min(v) (at most 14 decades below T) up to T, and 0."""
    vmin, _ = _vrange(d)
    lo = np.minimum(np.maximum(1e-2 * vmin, bound * 10.0**-GRID_DECADES_MAX), bound * 0.5)
    decades = np.log10(bound / lo)
    g = int(np.ceil(GRID_PER_DECADE * float(decades.max()))) + 1
    frac = np.linspace(0.0, 1.0, max(g, 2))
    grid = lo[:, None] * (bound / lo)[:, None] ** frac[None, :]
    return np.concatenate([np.zeros((bound.size, 1)), grid], axis=1)


def _refine(d: Rows, a: np.ndarray, b: np.ndarray, sa: np.ndarray, sb: np.ndarray,
            reml: bool, con: Control) -> tuple[np.ndarray, np.ndarray]:
    """Safeguarded Newton on the score inside brackets with score(a) > 0 >= score(b).

    Rows that have converged leave the active set only in large batches (in small ones the
    bookkeeping costs more than the arithmetic it saves).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(sb == 0, b, a + (b - a) * sa / (sa - sb))
    x = np.where(np.isfinite(x) & (x > a) & (x <= b), x, 0.5 * (a + b))
    lo, hi = a.copy(), b.copy()
    n = x.size
    act = np.arange(n)
    floor = np.minimum(1e-10, 0.5 * b)
    fine_tol = max(con.threshold, 1e-8)
    sub = d
    done = np.zeros(n, dtype=bool)
    for _ in range(con.maxiter):
        xa = x[act] if act.size < n else x
        sc, ds = _score_deriv(sub, xa, reml)
        la = np.where(sc > 0, xa, lo[act])
        ha = np.where(sc < 0, xa, hi[act])
        with np.errstate(divide="ignore", invalid="ignore"):
            new = xa - sc / ds
            fine = (ds < 0) & (new > la) & (new < ha)
        new = np.where(fine, new, 0.5 * (la + ha))
        # Quadratic convergence: after a Newton step below 1e-8 (relative) the remaining error
        # is ~1e-16; bisection steps must shrink to `threshold` itself.
        tol_step = np.where(fine, fine_tol, con.threshold)
        fl = floor[act] if act.size < n else floor
        stop = ((sc == 0) | (np.abs(new - xa) <= tol_step * np.maximum(new, fl))
                | (ha - la <= 4 * _EPS * ha))
        if act.size < n:
            lo[act], hi[act] = la, ha
            x[act] = np.where(done[act], xa, new)
            done[act] |= stop
        else:
            lo, hi = la, ha
            x = np.where(done, xa, new)
            done |= stop
        if done.all():
            return x, np.ones(n, dtype=bool)
        if n > 64 and act.size > 2 * int((~done[act]).sum()):
            keep = ~done[act]
            act = act[keep]
            sub = sub.take(np.flatnonzero(keep)) if sub is not d else d.take(act)
    return x, done


_CHUNK = 2048


def _tau2_global(b: _Basis, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    """ML/REML: the global maximum over [0, inf) (see the module docstring)."""
    d = b.d
    reml = method == "REML"
    n = d.k.size
    tau2 = np.zeros(n)
    conv = np.ones(n, dtype=bool)
    bound = score_bound(d, reml)
    live = np.flatnonzero(bound > 0)
    for start in range(0, live.size, _CHUNK):
        idx = live[start:start + _CHUNK]
        t, c = _global_rows(d.take(idx), bound[idx], reml, con)
        tau2[idx], conv[idx] = t, c
    return tau2, conv


def _global_rows(d: Rows, bound: np.ndarray, reml: bool,
                 con: Control) -> tuple[np.ndarray, np.ndarray]:
    n = d.k.size
    grid = _grid(d, bound)
    s = d.score_grid(grid, reml)
    up = (s[:, :-1] > 0) & (s[:, 1:] <= 0)
    rows, cols = np.nonzero(up)
    cand_row = [rows]
    cand_t = []
    conv = np.ones(n, dtype=bool)
    if rows.size:
        t, c = _refine(d.take(rows), grid[rows, cols], grid[rows, cols + 1], s[rows, cols],
                       s[rows, cols + 1], reml, con)
        cand_t.append(t)
        bad = np.zeros(n, dtype=bool)
        np.logical_or.at(bad, rows, ~c)
        conv &= ~bad
    zero = np.flatnonzero(s[:, 0] <= 0)
    cand_row.append(zero)
    cand_t.append(np.zeros(zero.size))
    crow = np.concatenate(cand_row)
    ct = np.concatenate(cand_t)
    if crow.size == rows.size + zero.size and np.unique(crow).size == crow.size:
        out = np.zeros(n)
        out[crow] = ct
        return out, conv
    ll = loglik(d.take(crow), ct, reml)
    order = np.lexsort((-ll, crow))
    first = np.ones(order.size, dtype=bool)
    first[1:] = crow[order][1:] != crow[order][:-1]
    out = np.zeros(n)
    out[crow[order][first]] = ct[order][first]
    return out, conv


def _estimate(b: _Basis, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    """Return (tau2, converged) for every row (all rows have k > p)."""
    d = b.d
    ok = np.ones(d.k.shape, dtype=bool)
    if method == "FE":
        return np.zeros(d.k.shape), ok
    if method == "DL":
        return np.maximum(0.0, (b.p0.q - b.keff) / b.p0.trp), ok
    if method == "HS":
        return np.maximum(0.0, (b.p0.q - d.k) / b.p0.sw), ok
    if method == "HE":
        return np.maximum(0.0, _tau2_he(b)[0]), ok
    if method == "SJ":
        t0 = _tau2_sj0(d)
        return np.maximum(0.0, t0 * d.proj(_weights(d, t0)).q / b.keff), ok
    if con.algorithm == "fisher" and method in ("ML", "REML", "EB"):
        return _tau2_fisher(b, method, con)
    if method in ("PM", "EB"):
        return _tau2_qroot(b, method, con)
    return _tau2_global(b, method, con)


def _se_tau2(b: _Basis, method: str, tau2: np.ndarray) -> np.ndarray:
    """Return the standard error of the tau^2 estimate (metafor's formula per estimator)."""
    d, k, kp, t = b.d, b.d.k, b.keff, tau2
    if method == "FE":
        return np.full(k.shape, np.nan)
    if method in ("DL", "HS"):
        inner = 2 * kp + 4 * t * b.p0.trp + 2 * t**2 * b.p0.psq()
        return np.sqrt(inner) / (b.p0.trp if method == "DL" else b.p0.sw)
    if method == "HE":
        _, ph = _tau2_he(b)
        trpv = _rsum(ph.diag() * d.v)
        inner = 2 * ph.psq(d.v, d.v) + 4 * t * trpv + 2 * t**2 * kp
        return np.sqrt(inner) / kp
    if method == "SJ":
        t0 = _tau2_sj0(d)
        ps = d.proj(_weights(d, t0))
        inner = 2 * ps.psq(d.v, d.v) + 4 * t * ps.psq(1.0, d.v) + 2 * t**2 * ps.psq()
        return np.sqrt(t0**2 / kp**2 * inner)
    pr = d.proj(_weights(d, t))
    if method == "ML":
        return np.sqrt(2 / _rsum(pr.w * pr.w))
    if method == "REML":
        return np.sqrt(2 / pr.psq())
    return np.sqrt(2 * k**2 / kp / pr.sw**2)  # EB, PM


def _qprofile(b: _Basis, tau2: np.ndarray, level: float, tol: float) -> tuple[
    np.ndarray, np.ndarray
]:
    """Q-profile limits for tau^2 exactly as metafor ``confint.rma.uni`` (type="QP")."""
    d = b.d
    alpha = 1 - level
    df = b.keff
    crit_u = special.chdtri(df, alpha / 2)
    crit_l = special.chdtri(df, 1 - alpha / 2)
    tmax = np.maximum(100.0, 10 * tau2)
    q0 = b.p0.q
    qmax = d.proj(_weights(d, tmax)).q
    lb = np.full(tau2.shape, np.nan)
    ub = np.full(tau2.shape, np.nan)
    null = q0 < crit_l
    lb[null] = 0.0
    ub[null] = 0.0
    ub_max = ~null & (qmax > crit_l)
    ub[ub_max] = tmax[ub_max]
    ub_root = ~null & ~ub_max
    both_max = qmax > crit_u
    lb[both_max] = tmax[both_max]
    ub[both_max] = tmax[both_max]
    ub_root &= ~both_max
    lb_zero = ~both_max & ~null & (q0 < crit_u)
    lb[lb_zero] = 0.0
    lb_root = ~both_max & ~null & ~lb_zero
    rows = np.concatenate([np.flatnonzero(lb_root), np.flatnonzero(ub_root)])
    if rows.size:
        targets = np.concatenate([crit_u[lb_root], crit_l[ub_root]])
        roots = _solve_q(d.take(rows), targets, tmax[rows], tol)
        n_lb = int(lb_root.sum())
        lb[np.flatnonzero(lb_root)] = roots[:n_lb]
        ub[np.flatnonzero(ub_root)] = roots[n_lb:]
    return lb, ub


# --------------------------------------------------------------------------------------------
# the fit
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeterogeneityFit:
    r"""Everything the rma.uni core computes, one entry per row (analysis).

    ``beta`` (n x p) and ``vb`` (n x p x p; Knapp-Hartung scaled when ``ci`` asks for it) at
    :math:`\hat\tau^2`; ``w`` the weights :math:`1/(v_i + \hat\tau^2)` (0 on padding); ``df``
    the t degrees of freedom (NaN for z); ``q`` (QE at :math:`\tau^2 = 0`) on ``q_df = k - p``
    df; ``i2`` in percent; Q-profile limits (NaN unless asked for).
    """

    tau2: np.ndarray
    se_tau2: np.ndarray
    converged: np.ndarray
    beta: np.ndarray
    vb: np.ndarray
    w: np.ndarray
    df: np.ndarray
    s2w: np.ndarray
    q: np.ndarray
    q_df: np.ndarray
    q_pvalue: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    tau2_ci_low: np.ndarray
    tau2_ci_high: np.ndarray
    i2_ci_low: np.ndarray
    i2_ci_high: np.ndarray
    h2_ci_low: np.ndarray
    h2_ci_high: np.ndarray
    loglik: np.ndarray


def _fail_message(method: str, con: Control) -> str:
    if method == "PM":
        return (
            "PM estimator: Q(tau2_max) is still above k - p (the search interval's upper end, "
            "control tau2_max, is too low); pass control={'tau2_max': ...} with a larger value "
            "or use method='REML' or 'DL'"
        )
    if method == "EB":
        return ("EB estimator: no root of Q(tau^2) = k - p was bracketed; use method='PM' or "
                "'REML'")
    algo = "Fisher scoring" if con.algorithm == "fisher" else "Newton refinement"
    hint = ("control={'algorithm': 'global'} (if Fisher scoring oscillates), "
            if con.algorithm == "fisher" else "")
    return (
        f"{method} estimator: {algo} did not converge in {con.maxiter} iterations "
        f"(threshold {con.threshold:g}); try control={{'maxiter': {10 * con.maxiter}}}, "
        f"{hint}or another method ('PM', 'DL')"
    )


def fit_heterogeneity(
    d: Rows,
    method: str,
    ci: str = "z",
    level: float = 0.95,
    *,
    tau2_ci: bool = False,
    control: Control | None = None,
    convention: str = "metafor",
    errors: str = "raise",
) -> HeterogeneityFit:
    r"""Fit the random-effects (meta-regression) model of every row of ``d``.

    Parameters
    ----------
    d : InterceptRows or DesignRows
        The analyses (rows); a row with :math:`k \le p` gets :math:`\tau^2 = 0` and Q = 0.
    method : str
        One of :data:`METHODS` (metafor codes).
    ci : {"z", "hksj", "hksj_adhoc"}
        Knapp-Hartung scaling of ``vb`` by :math:`y^\top P y/(k - p)` (``"hksj_adhoc"``: at
        least 1) and t on k - p df.
    level : float
        Confidence level of the Q-profile limits.
    tau2_ci : bool
        Compute Q-profile limits for :math:`\tau^2`, :math:`I^2`, :math:`H^2`.
    control : Control, optional
        Iteration settings.
    convention : {"metafor", "revman5"}
        ``"revman5"``: :math:`I^2 = (Q - df)/Q` and :math:`H^2 = Q/df`.
    errors : {"raise", "nan"}
        Raise :class:`ConvergenceError` naming the failing rows, or set them to NaN (flagged
        in ``converged``).

    Returns
    -------
    HeterogeneityFit

    Notes
    -----
    Checked against metafor 3.8-1 ``rma``/``confint`` (intercept-only and with moderators;
    every method x z/knha) through :func:`analysis.pooling.pool` and
    :func:`analysis.regression.meta_regression`, and against a brute-force maximisation of
    the (restricted) likelihood on a million generated data sets (``benchmarks``).
    """
    con = Control() if control is None else control
    n = d.k.size
    multi = d.k > d.p
    tau2 = np.zeros(n)
    conv = np.ones(n, dtype=bool)
    se_tau2 = np.full(n, np.nan)
    lb = np.full(n, np.nan)
    ub = np.full(n, np.nan)
    q = np.zeros(n)
    trp0 = np.full(n, np.nan)
    if np.any(multi):
        idx = np.flatnonzero(multi)
        b = _Basis.of(d.take(idx))
        t, c = _estimate(b, method, con)
        if not np.all(c) and errors == "raise":
            rows = idx[~c].tolist()
            where = "" if n == 1 else f" (rows {rows[:10]}{'...' if len(rows) > 10 else ''})"
            raise ConvergenceError(_fail_message(method, con) + where)
        tau2[idx], conv[idx] = t, c
        se_tau2[idx] = _se_tau2(b, method, t)
        q[idx] = np.maximum(0.0, b.p0.q)
        trp0[idx] = b.p0.trp
        if tau2_ci and method != "FE":
            lb[idx], ub[idx] = _qprofile(b, t, level, con.tol)
    pr = d.proj(_weights(d, tau2))
    beta, vb = pr.coef()
    keff = d.k - d.p
    s2w = np.ones(n)
    df = np.full(n, np.nan)
    if ci in ("hksj", "hksj_adhoc"):
        with np.errstate(divide="ignore", invalid="ignore"):
            s2w = np.where(pr.q <= _EPS, 0.0, pr.q / keff)
        if ci == "hksj_adhoc":
            s2w = np.maximum(s2w, 1.0)
        s2w = np.where(multi, s2w, 1.0)
        df = np.where(multi, keff, np.nan)
        vb = vb * s2w[:, None, None]
    reml = method == "REML"
    ll = loglik(d, tau2, reml) if method in ("ML", "REML") else np.full(n, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        vt = keff / trp0
        if method == "FE" or convention == "revman5":
            i2 = np.maximum(0.0, 100 * (q - keff) / q)
            h2 = q / keff
        else:
            i2 = 100 * tau2 / (vt + tau2)
            h2 = tau2 / vt + 1
        q_p = special.chdtrc(np.maximum(keff, 1), q)
        i2 = np.where(multi, np.where(np.isnan(i2) & (q == 0), 0.0, i2), 0.0)
        fit = HeterogeneityFit(
            tau2=tau2, se_tau2=se_tau2, converged=conv, beta=beta, vb=vb, w=pr.w, df=df,
            s2w=s2w, q=q, q_df=keff.astype(int), q_pvalue=np.where(multi, q_p, 1.0),
            i2=i2, h2=np.where(multi, h2, 1.0), tau2_ci_low=lb, tau2_ci_high=ub,
            i2_ci_low=100 * lb / (vt + lb), i2_ci_high=100 * ub / (vt + ub),
            h2_ci_low=lb / vt + 1, h2_ci_high=ub / vt + 1, loglik=ll,
        )
    if not np.all(conv):
        for name in fit.__slots__:  # type: ignore[attr-defined]
            val = getattr(fit, name)
            if name not in ("converged", "q_df", "w") and val.dtype.kind == "f":
                val[~conv] = np.nan
    return fit


def wald(estimate: np.ndarray, se: np.ndarray, df: np.ndarray, level: float) -> tuple[
    np.ndarray, np.ndarray, np.ndarray
]:
    """Test statistic, two-sided p-value and critical value: t on ``df`` where finite, else z."""
    qq = 1 - (1 - level) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = estimate / se
        use_t = np.isfinite(df)
        dfx = np.where(use_t, df, 1.0)
        crit = np.where(use_t, special.stdtrit(dfx, qq), special.ndtri(qq))
        p = np.where(use_t, 2 * special.stdtr(dfx, -np.abs(stat)), 2 * special.ndtr(-np.abs(stat)))
    return stat, p, crit
