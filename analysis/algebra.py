r"""The algebra of the rma.uni core: what every heterogeneity estimator needs at one :math:`\tau^2`.

For the model :math:`y = X\beta + u + e` with :math:`W = (V + \tau^2 I)^{-1}` and
:math:`P = W - W X (X^\top W X)^{-1} X^\top W`, a *projection* (the quantities of :math:`P` at
one set of weights) offers

=================  ======================================================================
``sw``             :math:`\mathrm{tr}\,W = \sum w_i`
``sw2``            :math:`\mathrm{tr}\,W^2 = \sum w_i^2`
``trp``            :math:`\mathrm{tr}\,P`
``q``              :math:`y^\top P y` (the generalised Q; at :math:`\tau^2 = 0` Cochran's Q)
``ypp``            :math:`y^\top P^2 y`
``yppp()``         :math:`y^\top P^3 y`
``psq(a, b)``      :math:`\sum_{ij} P_{ij}^2 a_i b_j` (``psq()`` is :math:`\mathrm{tr}\,P^2`)
``trdiag(a)``      :math:`\sum_i P_{ii} a_i`
``trp2()``         :math:`\mathrm{tr}\,P^2`, computed without cancellation
``logdet``         :math:`\log\det X^\top W X`
``coef(scale)``    :math:`\hat\beta` and ``scale`` :math:`\times (X^\top W X)^{-1}`
=================  ======================================================================

and a *back-end* (the data of one or many analyses) offers the weights at a given
:math:`\tau^2`, :math:`\sum \log(v_i + \tau^2)`, the range of the sampling variances, and a
projection for any weights. Four back-ends supply the same interface:

* :class:`InterceptRows`: intercept-only analyses, one per row of an n x k array (padding cells
  have weight 0), closed forms :math:`P = W - ww^\top/\sum w`, :math:`Py = w r`;
* :class:`ScalarIntercept`: one intercept-only analysis, the same closed forms on 1-D arrays
  with Python floats (the fast path of a single fit);
* :class:`DesignRows`: any design matrix, through the QR decomposition of
  :math:`W^{1/2}X` (accurate where the normal equations are not);
* :class:`SubsetRows`: intercept-only analyses of subsets of one set of studies (GOSH), where
  the projection at per-study weights is a handful of subset sums, products of the inclusion
  matrix for all rows at once.

The formulas of the estimators are written once against this interface in
:mod:`analysis.heterogeneity`; the tests check every back-end against metafor and against each
other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = [
    "Basis",
    "DesignRows",
    "InterceptRows",
    "Projection",
    "Rows",
    "ScalarIntercept",
    "SubsetRows",
    "blocked_matmul",
    "loglik",
    "quadratic_rows",
    "rsum",
    "score",
    "score_bound",
    "score_deriv",
]

_ONES: dict[int, np.ndarray] = {}


def rsum(x: np.ndarray) -> np.ndarray:
    """Return sums over the last axis as a matrix-vector product (fast on short rows)."""
    k = x.shape[-1]
    ones = _ONES.get(k)
    if ones is None:
        ones = _ONES.setdefault(k, np.ones(k))
    return x @ ones


#: Largest m x n x k of one matrix product in :func:`blocked_matmul`: OpenBLAS runs products
#: up to this size on one thread (its default threshold, 4 x 65,536); larger ones it spreads
#: over threads, which on a machine shared with other work costs far more than it gains.
_BLOCK_MNK = 2**18
#: :class:`_SubsetProjection` takes the one-pass Q where it is at least this share of
#: :math:`\sum w (y - c)^2`: its error is then below about :math:`3k\epsilon/0.01` relative
#: (1e-13 for k = 16); elsewhere the pair terms.
_Q_CANCEL = 1e-2


def blocked_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return ``a @ b`` (n x k times k x c) computed in blocks of rows of ``a``.

    Each block is one single-threaded product on a cache-sized piece (``_BLOCK_MNK``).
    """
    n, k = a.shape
    rows = max(1, _BLOCK_MNK // max(1, k * b.shape[1]))
    if n <= rows:
        return a @ b
    out = np.empty((n, b.shape[1]))
    for start in range(0, n, rows):
        np.matmul(a[start:start + rows], b, out=out[start:start + rows])
    return out


def quadratic_rows(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    r"""Return :math:`a_s^\top C a_s` for every row :math:`a_s` of ``a`` (n x k; C k x k).

    In blocks of rows, as :func:`blocked_matmul`, so that the n x k product :math:`aC` never
    exists whole: each block's stays in the cache.
    """
    n, k = a.shape
    rows = max(1, _BLOCK_MNK // max(1, k * k))
    out = np.empty(n)
    for start in range(0, n, rows):
        block = a[start:start + rows]
        out[start:start + rows] = np.einsum("ij,ij->i", block @ c, block)
    return out


def others(a: np.ndarray) -> np.ndarray:
    """Return, for every entry, the sum of the other entries of its row (no cancellation).

    Exclusive prefix plus exclusive suffix sums: ``sum(a) - a_i`` loses every digit when one
    entry dominates the row (a sampling variance of 1e-6 next to 1e3).
    """
    zero = np.zeros((*a.shape[:-1], 1))
    pre = np.concatenate([zero, np.cumsum(a[..., :-1], axis=-1)], axis=-1)
    suf = np.concatenate([np.cumsum(a[..., :0:-1], axis=-1)[..., ::-1], zero], axis=-1)
    return pre + suf


def _trp2_closed(w: np.ndarray, sw: Any) -> Any:
    r"""Return :math:`\mathrm{tr}\,P^2` of the intercept-only model without cancellation.

    :math:`\sum_i w_i^2[(1 - u_i)^2 + \sum_{j \ne i} u_j^2]` with :math:`u = w/\sum w`: the
    value of ``psq()`` (:math:`\sum w^2 - 2\sum w^3/\sum w + (\sum w^2)^2/(\sum w)^2`, which
    loses every digit when one weight dominates), for the standard error of REML.
    """
    total = np.asarray(sw)[..., None]
    u = w / total
    return (w * w * ((others(w) / total) ** 2 + others(u * u))).sum(axis=-1)


class Projection(Protocol):
    """Quantities of :math:`P` at one set of weights (arrays per row, or floats)."""

    @property
    def w(self) -> Any: ...  # noqa: D102

    @property
    def sw(self) -> Any: ...  # noqa: D102

    @property
    def sw2(self) -> Any: ...  # noqa: D102

    @property
    def trp(self) -> Any: ...  # noqa: D102

    @property
    def q(self) -> Any: ...  # noqa: D102

    @property
    def ypp(self) -> Any: ...  # noqa: D102

    @property
    def logdet(self) -> Any: ...  # noqa: D102

    def yppp(self) -> Any: ...  # noqa: D102

    def psq(self, a: Any = 1.0, b: Any = 1.0) -> Any: ...  # noqa: D102

    def trdiag(self, a: Any) -> Any: ...  # noqa: D102

    def trp2(self) -> Any: ...  # noqa: D102

    def coef(self, scale: Any = 1.0) -> tuple[Any, Any]: ...  # noqa: D102


class Rows(Protocol):
    """Data of one or many analyses: ``k`` studies, ``p`` coefficients, ``y`` and ``v``."""

    y: np.ndarray
    v: np.ndarray
    k: Any
    p: int

    def weights(self, tau2: Any) -> np.ndarray: ...  # noqa: D102

    def fe_weights(self) -> np.ndarray: ...  # noqa: D102

    def unit_weights(self) -> np.ndarray: ...  # noqa: D102

    def sum_log(self, tau2: Any) -> Any: ...  # noqa: D102

    def vrange(self) -> tuple[Any, Any]: ...  # noqa: D102

    def masked_y(self) -> np.ndarray: ...  # noqa: D102

    def per_row(self, values: np.ndarray) -> Any: ...  # noqa: D102

    def proj(self, w: np.ndarray) -> Projection: ...  # noqa: D102

    def take(self, idx: np.ndarray) -> Rows: ...  # noqa: D102

    def score_grid(self, t: np.ndarray, reml: bool) -> np.ndarray: ...  # noqa: D102


# --------------------------------------------------------------------------------------------
# projections
# --------------------------------------------------------------------------------------------


class _InterceptProjection:
    r"""Closed forms for :math:`X = 1` on rows: :math:`P = W - ww^\top/\sum w`, :math:`Py = wr`.

    The weighted mean and residuals are computed at once; every other quantity when first
    asked for (an estimator needs a few of them), then kept.
    """

    __slots__ = ("_q", "_r", "_sw2", "_trp", "_w2", "_wr", "_ypp", "mu", "sw", "w", "y")
    _q: np.ndarray | None
    _ypp: np.ndarray | None
    _sw2: np.ndarray | None
    _trp: np.ndarray | None
    _w2: np.ndarray | None
    _r: np.ndarray | None
    _wr: np.ndarray | None

    def __init__(self, y: np.ndarray, w: np.ndarray) -> None:
        if y.ndim == 1:  # the same studies in every row (subsets): both sums in one product
            sums = w @ np.column_stack([np.ones(y.size), y])
            sw, mu = sums[:, 0], sums[:, 1] / sums[:, 0]
        else:
            sw = rsum(w)
            mu = rsum(w * y) / sw
        self.y, self.w, self.sw, self.mu = y, w, sw, mu
        self._q = self._ypp = self._sw2 = self._trp = self._w2 = self._r = self._wr = None

    @property
    def r(self) -> np.ndarray:
        """Return the residuals from the weighted mean (n x k)."""
        if self._r is None:
            self._r = self.y - self.mu[:, None]
        return self._r

    @property
    def wr(self) -> np.ndarray:
        """Return the weighted residuals (n x k)."""
        if self._wr is None:
            self._wr = self.w * self.r
        return self._wr

    @property
    def q(self) -> np.ndarray:
        if self._q is None:
            self._q = rsum(self.wr * self.r)
        return self._q

    @property
    def ypp(self) -> np.ndarray:
        if self._ypp is None:
            self._ypp = rsum(self.wr * self.wr)
        return self._ypp

    @property
    def w2(self) -> np.ndarray:
        if self._w2 is None:
            self._w2 = self.w * self.w
        return self._w2

    @property
    def sw2(self) -> np.ndarray:
        if self._sw2 is None:
            self._sw2 = rsum(self.w2)
        return self._sw2

    @property
    def trp(self) -> np.ndarray:
        if self._trp is None:
            trp = self.sw - self.sw2 / self.sw
            bad = ~np.isfinite(trp)  # sum w^2 overflows (v ~ 1e-300): metafor's sum of P_ii
            if np.any(bad):
                trp = np.where(bad, rsum(self.w * (1 - self.w / self.sw[:, None])), trp)
            self._trp = trp
        return self._trp

    @property
    def logdet(self) -> np.ndarray:
        return np.log(self.sw)

    def yppp(self) -> np.ndarray:
        wwr = rsum(self.w * self.wr)
        return rsum(self.wr * self.wr * self.w) - wwr * (wwr / self.sw)

    def psq(self, a: Any = 1.0, b: Any = 1.0) -> np.ndarray:
        w, sw, w2 = self.w, self.sw, self.w2
        u = w / sw[:, None]  # w / sum(w): no intermediate overflow or underflow of sum(w)^2
        if isinstance(a, float) and isinstance(b, float):
            return a * b * (self.sw2 - 2 * rsum(w2 * u) + (self.sw2 / sw) ** 2)
        aw, bw = a * w, b * w  # a ~ v = 1/w stays O(1) when v ~ 1e300 (no inf * 0)
        return rsum(aw * bw) - 2 * rsum(aw * bw * u) + rsum(aw * u) * rsum(bw * u)

    def trdiag(self, a: Any) -> np.ndarray:
        return rsum((self.w - self.w2 / self.sw[:, None]) * a)

    def trp2(self) -> np.ndarray:
        fast = self.psq()
        bad = ~(fast > 1e-6 * self.sw2)  # the closed form cancels where one weight dominates
        if np.any(bad):
            fast = np.where(bad, _trp2_closed(self.w, self.sw), fast)
        return fast

    def coef(self, scale: Any = 1.0) -> tuple[np.ndarray, np.ndarray]:
        return self.mu[:, None], (scale / self.sw)[:, None, None]


class _ScalarProjection:
    """The closed forms of :class:`_InterceptProjection` for one analysis (Python floats)."""

    __slots__ = ("_sw2", "mu", "q", "sw", "w", "wr", "ypp")
    _sw2: float | None

    def __init__(self, y: np.ndarray, w: np.ndarray) -> None:
        # NumPy scalars (a subclass of float), so that an overflow at the limits of floating
        # point gives inf or NaN exactly as the row back-end does, never ZeroDivisionError.
        sw = np.float64(w.sum())
        mu = np.float64(w @ y) / sw
        wr = w * (y - mu)
        self.w, self.sw, self.mu, self.wr = w, sw, mu, wr
        self.q = np.float64(wr @ (y - mu))
        self.ypp = np.float64(wr @ wr)
        self._sw2 = None

    @property
    def sw2(self) -> float:
        if self._sw2 is None:
            self._sw2 = np.float64(self.w @ self.w)
        return self._sw2

    @property
    def trp(self) -> float:
        trp = self.sw - self.sw2 / self.sw
        if not math.isfinite(trp):  # sum w^2 overflows (v ~ 1e-300): metafor's sum of P_ii
            trp = np.float64((self.w * (1 - self.w / self.sw)).sum())
        return trp

    @property
    def logdet(self) -> float:
        return np.log(self.sw)

    def yppp(self) -> float:
        return (np.float64((self.wr * self.wr) @ self.w)
                - np.float64(self.w @ self.wr) * (np.float64(self.w @ self.wr) / self.sw))

    def psq(self, a: Any = 1.0, b: Any = 1.0) -> float:
        w, sw = self.w, self.sw
        w2 = w * w
        u = w / sw  # w / sum(w): no intermediate overflow or underflow of sum(w)^2
        if isinstance(a, float) and isinstance(b, float):
            return a * b * (self.sw2 - 2 * np.float64(w2 @ u) + (self.sw2 / sw) ** 2)
        aw, bw = a * w, b * w  # a ~ v = 1/w stays O(1) when v ~ 1e300 (no inf * 0)
        return np.float64((aw * bw).sum() - 2 * (aw * bw * u).sum()
                          + (aw * u).sum() * (bw * u).sum())

    def trdiag(self, a: Any) -> float:
        return np.float64(((self.w - self.w * self.w / self.sw) * a).sum())

    def trp2(self) -> float:
        fast = self.psq()
        # the closed form cancels only where one weight dominates: then the stable sums
        return fast if fast > 1e-6 * self.sw2 else np.float64(_trp2_closed(self.w, self.sw))

    def coef(self, scale: Any = 1.0) -> tuple[float, float]:
        return self.mu, np.float64(scale) / self.sw


class _DesignProjection:
    r"""A general design through the QR decomposition of :math:`W^{1/2} X` (n x k x p).

    With the complete QR :math:`W^{1/2}X = [Q_1\, Q_2] [R; 0]`,
    :math:`P = W^{1/2} Q_2 Q_2^\top W^{1/2} = B B^\top` (:math:`B = W^{1/2}Q_2`, k x (k - p)),
    :math:`\hat\beta = R^{-1} Q_1^\top W^{1/2} y` and :math:`\log\det X^\top W X =
    2\sum \log|R_{jj}|`. Nothing is formed as a difference of large numbers, so the
    quantities stay accurate where sampling variances differ by a factor of 1e9 (the normal
    equations lose every digit there). Padding rows have weight 0 and drop out.
    """

    __slots__ = ("B", "R", "beta", "py", "q", "sw", "sw2", "trp", "w", "ypp")

    def __init__(self, y: np.ndarray, x: np.ndarray, w: np.ndarray) -> None:
        p = x.shape[2]
        sq = np.sqrt(w)
        Q, R = np.linalg.qr(x * sq[:, :, None], mode="complete")
        B = Q[:, :, p:] * sq[:, :, None]
        By = np.einsum("nkj,nk->nj", B, y)
        qty = np.einsum("nkj,nk->nj", Q[:, :, :p], sq * y)
        self.R = R[:, :p, :p]
        self.beta = np.linalg.solve(self.R, qty[:, :, None])[:, :, 0]
        self.py = np.einsum("nkj,nj->nk", B, By)
        self.w, self.B = w, B
        self.sw = rsum(w)
        self.sw2 = rsum(w * w)
        self.q = rsum(By * By)
        self.ypp = rsum(self.py * self.py)
        self.trp = np.einsum("nkj,nkj->n", B, B)

    @property
    def logdet(self) -> np.ndarray:
        return 2 * np.log(np.abs(np.diagonal(self.R, axis1=1, axis2=2))).sum(axis=1)

    def yppp(self) -> np.ndarray:
        bpy = np.einsum("nkj,nk->nj", self.B, self.py)
        return rsum(bpy * bpy)

    def _p(self) -> np.ndarray:
        return self.B @ np.swapaxes(self.B, 1, 2)

    def psq(self, a: Any = 1.0, b: Any = 1.0) -> np.ndarray:
        a = np.broadcast_to(np.asarray(a, dtype=float), self.w.shape)
        b = np.broadcast_to(np.asarray(b, dtype=float), self.w.shape)
        P = self._p()
        return np.einsum("ni,nij,nj->n", a, P * P, b)

    def trdiag(self, a: Any) -> np.ndarray:
        return rsum(np.einsum("nkj,nkj->nk", self.B, self.B) * a)

    def trp2(self) -> np.ndarray:
        btb = np.swapaxes(self.B, 1, 2) @ self.B
        return np.einsum("nij,nij->n", btb, btb)

    def coef(self, scale: Any = 1.0) -> tuple[np.ndarray, np.ndarray]:
        rinv = np.linalg.inv(self.R)
        vb = rinv @ np.swapaxes(rinv, 1, 2)
        return self.beta, vb * np.asarray(scale, dtype=float).reshape(-1, 1, 1)


class _SubsetProjection:
    r"""Closed forms for :math:`X = 1` on subsets of one set of studies, at per-study weights.

    Row :math:`s` holds the studies of its mask :math:`m_s`; at weights given per study (the
    fixed-effect :math:`1/v_i`, or 1 for OLS) every quantity the closed-form estimators need is
    a sum over the subset, so all rows come from one product of the n x k mask with
    per-study vectors: :math:`\sum w`, :math:`\sum w\tilde y`, :math:`\sum w\tilde y^2`,
    :math:`\sum w^2` with :math:`\tilde y = y - c` centred at the weighted mean of all k
    studies, and Cochran's :math:`Q = \sum w\tilde y^2 - (\sum w\tilde y)^2/\sum w`.
    That one-pass Q loses digits where it is small next to :math:`\sum w\tilde y^2` (a
    homogeneous subset far from c): its absolute error is below about :math:`3k\epsilon
    \sum w\tilde y^2`, so where Q is less than ``_Q_CANCEL`` of that sum (a few rows in a
    thousand in a GOSH) it is replaced by the pair form

    .. math:: Q = y^\top P y = \frac{1}{\sum w} \sum_{i<j} w_i w_j (y_i - y_j)^2,

    a sum of non-negative terms (:math:`\tfrac12 m^\top C m` with :math:`C_{ij} = w_i w_j
    (y_i - y_j)^2`, :func:`quadratic_rows`) that cancels nothing. Whatever else is asked for
    is computed from the n x k weights (:class:`_InterceptProjection`).
    """

    __slots__ = ("_full", "mf", "mu", "q", "sw", "sw2", "wv", "y")
    _full: _InterceptProjection | None

    def __init__(self, y: np.ndarray, mf: np.ndarray, w: np.ndarray) -> None:
        c = float(w @ y / w.sum())  # y centred at the mean of all studies
        yc = y - c
        sums = blocked_matmul(mf, np.column_stack([w, w * yc, w * yc * yc, w * w]))
        self.sw = sums[:, 0].copy()
        self.mu = c + sums[:, 1] / self.sw
        self.sw2 = sums[:, 3].copy()
        ss = sums[:, 2]
        q = ss - sums[:, 1] ** 2 / self.sw
        bad = ~(q >= _Q_CANCEL * ss)  # where the one-pass sum may have lost digits
        if np.any(bad):
            pairs = 0.5 * np.outer(w, w) * np.subtract.outer(y, y) ** 2
            q[bad] = quadratic_rows(mf[bad], pairs) / self.sw[bad]
        self.q = q
        self.y, self.mf, self.wv, self._full = y, mf, w, None

    def _dense(self) -> _InterceptProjection:
        if self._full is None:
            self._full = _InterceptProjection(self.y, self.mf * self.wv)
        return self._full

    @property
    def w(self) -> np.ndarray:
        return self.mf * self.wv

    @property
    def trp(self) -> np.ndarray:
        return self.sw - self.sw2 / self.sw

    @property
    def ypp(self) -> np.ndarray:
        return self._dense().ypp

    @property
    def logdet(self) -> np.ndarray:
        return np.log(self.sw)

    def yppp(self) -> np.ndarray:
        return self._dense().yppp()

    def psq(self, a: Any = 1.0, b: Any = 1.0) -> np.ndarray:
        return self._dense().psq(a, b)

    def trdiag(self, a: Any) -> np.ndarray:
        a = np.asarray(a, dtype=float)
        if a.ndim != 1:
            return self._dense().trdiag(a)
        w = self.wv
        return self.mf @ (w * a) - (self.mf @ (w * w * a)) / self.sw

    def trp2(self) -> np.ndarray:
        return self._dense().trp2()

    def coef(self, scale: Any = 1.0) -> tuple[np.ndarray, np.ndarray]:
        return self.mu[:, None], (scale / self.sw)[:, None, None]


# --------------------------------------------------------------------------------------------
# back-ends
# --------------------------------------------------------------------------------------------


class _MaskedRows:
    """What both row back-ends share: padded n x k ``y``, ``v`` and the mask ``m``."""

    __slots__ = ()
    y: np.ndarray
    v: np.ndarray
    m: np.ndarray
    full: bool  # no padding: the mask can be skipped

    def weights(self, tau2: np.ndarray) -> np.ndarray:
        r"""Return :math:`1/(v_i + \tau^2)` per row (0 on padding)."""
        w = self.v + tau2[:, None]  # one n x k array, divided in place
        return np.divide(1.0 if self.full else self.m, w, out=w)

    def fe_weights(self) -> np.ndarray:
        """Return :math:`1/v_i` (0 on padding)."""
        return 1.0 / self.v if self.full else self.m / self.v

    def unit_weights(self) -> np.ndarray:
        """Return 1 for every study (0 on padding): the OLS projection."""
        return self.m.astype(float)

    def sum_log(self, tau2: np.ndarray) -> np.ndarray:
        r"""Return :math:`\sum_i \log(v_i + \tau^2)` per row."""
        logs = np.log(self.v + tau2[:, None])
        return rsum(logs if self.full else self.m * logs)

    def vrange(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the smallest and largest sampling variance of each row."""
        return (np.min(np.where(self.m, self.v, np.inf), axis=1),
                np.max(np.where(self.m, self.v, -np.inf), axis=1))

    def masked_y(self) -> np.ndarray:
        """Return ``y`` with NaN on padding."""
        return np.where(self.m, self.y, np.nan)

    def per_row(self, values: np.ndarray) -> np.ndarray:
        """Return one value per row (from :meth:`masked_y`-shaped reductions) as they are."""
        return values


@dataclass(slots=True)
class InterceptRows(_MaskedRows):
    """Intercept-only analyses, one per row (``m`` marks the studies present)."""

    y: np.ndarray
    v: np.ndarray
    m: np.ndarray
    k: np.ndarray
    p: int = 1
    full: bool = False

    @classmethod
    def build(cls, y: np.ndarray, v: np.ndarray, m: np.ndarray) -> InterceptRows:
        """Zero the padding cells (y = 0, v = 1, weight 0) and count the studies."""
        if m.all():
            return cls(y, v, m, np.full(y.shape[0], float(y.shape[1])), full=True)
        return cls(np.where(m, y, 0.0), np.where(m, v, 1.0), m,
                   np.count_nonzero(m, axis=1).astype(float))

    def proj(self, w: np.ndarray) -> _InterceptProjection:
        """Return the projection at weights ``w`` (n x k; 0 on padding)."""
        return _InterceptProjection(self.y, w)

    def score_grid(self, t: np.ndarray, reml: bool) -> np.ndarray:
        r"""Return twice the score at every point of ``t`` (n x G).

        From five weighted sums per point (two batched matrix products):
        :math:`y^\top P^2 y = \sum w^2 y^2 - 2\mu \sum w^2 y + \mu^2 \sum w^2` with
        :math:`\mu = \sum wy / \sum w`, on ``y`` centred per row (the score does not depend
        on a shift of ``y``; centring keeps the cancellation small). Only the signs are used
        (brackets for :func:`score_deriv`'s exact refinement).
        """
        yc = np.where(self.m, self.y - rsum(self.y * self.m)[:, None] / self.k[:, None], 0.0)
        w = self.m[:, None, :] / (self.v[:, None, :] + t[:, :, None])
        a = w @ np.stack([self.m.astype(float), yc], axis=2)
        w *= w
        b = w @ np.stack([self.m.astype(float), yc, yc * yc], axis=2)
        sw, swy = a[..., 0], a[..., 1]
        sw2, sw2y, sw2y2 = b[..., 0], b[..., 1], b[..., 2]
        mu = swy / sw
        ypp = sw2y2 - 2 * mu * sw2y + mu * mu * sw2
        return ypp - (sw - sw2 / sw) if reml else ypp - sw

    def take(self, idx: np.ndarray) -> InterceptRows:
        """Return the rows ``idx``."""
        if idx.size == self.k.size and np.array_equal(idx, np.arange(idx.size)):
            return self
        return InterceptRows(self.y[idx], self.v[idx], self.m[idx], self.k[idx],
                             full=self.full)


@dataclass(slots=True)
class SubsetRows:
    r"""Subsets of one set of k studies, one per row: the analyses of ``y[m_s]``, ``v[m_s]``.

    ``y`` and ``v`` are the k studies (1-D), ``m`` the n x k inclusion matrix (GOSH). At
    per-study weights (:meth:`fe_weights`, :meth:`unit_weights`) the projection is the sums
    of :class:`_SubsetProjection`, matrix products for all rows at once, which is all that
    FE, DL, HS and HE need for :math:`\hat\tau^2`; at per-row weights (:meth:`weights` of a
    :math:`\tau^2` per row: the random-effects estimate, SJ's second step, the iterative
    estimators) it is :class:`_InterceptProjection` on the n x k weights.
    """

    y: np.ndarray
    v: np.ndarray
    m: np.ndarray
    mf: np.ndarray
    k: np.ndarray
    p: int = 1

    @classmethod
    def build(cls, y: np.ndarray, v: np.ndarray, m: np.ndarray) -> SubsetRows:
        """From the k studies and the n x k inclusion matrix."""
        mf = m.astype(float)
        return cls(y, v, m, mf, rsum(mf))

    def weights(self, tau2: np.ndarray) -> np.ndarray:
        r"""Return :math:`1/(v_i + \tau^2)` per row (0 for the studies left out)."""
        w = self.v + tau2[:, None]  # one n x k array, divided in place
        return np.divide(self.mf, w, out=w)

    def fe_weights(self) -> np.ndarray:
        """Return :math:`1/v_i` per study (1-D: the projection is the subset sums)."""
        return 1.0 / self.v

    def unit_weights(self) -> np.ndarray:
        """Return 1 per study (1-D): the OLS projection."""
        return np.ones(self.y.size)

    def rows(self) -> InterceptRows:
        """Return the same analyses as padded n x k rows."""
        shape = self.m.shape
        return InterceptRows.build(np.broadcast_to(self.y, shape),
                                   np.broadcast_to(self.v, shape), self.m)

    def sum_log(self, tau2: np.ndarray) -> np.ndarray:
        r"""Return :math:`\sum_i \log(v_i + \tau^2)` per row."""
        return rsum(self.mf * np.log(self.v + tau2[:, None]))

    def vrange(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the smallest and largest sampling variance of each row."""
        return self.rows().vrange()

    def masked_y(self) -> np.ndarray:
        """Return ``y`` per row with NaN for the studies left out."""
        return np.where(self.m, self.y, np.nan)

    def per_row(self, values: np.ndarray) -> np.ndarray:
        """Return one value per row as they are."""
        return values

    def proj(self, w: np.ndarray) -> _SubsetProjection | _InterceptProjection:
        """Return the projection at per-study (1-D) or per-row (n x k) weights ``w``."""
        if w.ndim == 1:
            return _SubsetProjection(self.y, self.mf, w)
        return _InterceptProjection(self.y, w)

    def score_grid(self, t: np.ndarray, reml: bool) -> np.ndarray:
        """Return twice the score at every point of ``t`` (n x G)."""
        return self.rows().score_grid(t, reml)

    def take(self, idx: np.ndarray) -> SubsetRows:
        """Return the rows ``idx``."""
        if idx.size == self.k.size and np.array_equal(idx, np.arange(idx.size)):
            return self
        return SubsetRows(self.y, self.v, self.m[idx], self.mf[idx], self.k[idx])


@dataclass(slots=True)
class ScalarIntercept:
    """One intercept-only analysis (1-D ``y``, ``v``; every study present)."""

    y: np.ndarray
    v: np.ndarray
    k: float
    p: int = 1

    @classmethod
    def build(cls, y: np.ndarray, v: np.ndarray) -> ScalarIntercept:
        """From the 1-D effect sizes and sampling variances of one analysis."""
        return cls(y, v, float(y.size))

    def weights(self, tau2: Any) -> np.ndarray:
        r"""Return :math:`1/(v_i + \tau^2)`."""
        return 1.0 / (self.v + tau2)

    def fe_weights(self) -> np.ndarray:
        """Return :math:`1/v_i`."""
        return 1.0 / self.v

    def unit_weights(self) -> np.ndarray:
        """Return ones: the OLS projection."""
        return np.ones(self.y.size)

    def sum_log(self, tau2: Any) -> float:
        r"""Return :math:`\sum_i \log(v_i + \tau^2)`."""
        return float(np.log(self.v + tau2).sum())

    def vrange(self) -> tuple[float, float]:
        """Return the smallest and largest sampling variance."""
        return float(self.v.min()), float(self.v.max())

    def masked_y(self) -> np.ndarray:
        """Return ``y`` as a one-row array."""
        return self.y[None, :]

    def per_row(self, values: np.ndarray) -> float:
        """Return the one row's value (of a reduction over :meth:`masked_y`) as a float."""
        return float(values[0])

    def proj(self, w: np.ndarray) -> _ScalarProjection:
        """Return the projection at weights ``w``."""
        return _ScalarProjection(self.y, w)

    def score_grid(self, t: np.ndarray, reml: bool) -> np.ndarray:
        """Return twice the score at every point of ``t`` (1-D grid)."""
        w = 1.0 / (self.v[None, :] + t[:, None])
        sw = rsum(w)
        mu = rsum(w * self.y) / sw
        wr = w * (self.y - mu[:, None])
        ypp = rsum(wr * wr)
        return ypp - (sw - rsum(w * w) / sw) if reml else ypp - sw

    def take(self, idx: np.ndarray) -> ScalarIntercept:
        """Return itself (the only row)."""
        return self


@dataclass(slots=True)
class DesignRows(_MaskedRows):
    """Analyses with a general design ``x`` (n x k x p), one per row."""

    y: np.ndarray
    v: np.ndarray
    m: np.ndarray
    k: np.ndarray
    x: np.ndarray
    p: int = 1
    full: bool = False

    @classmethod
    def build(cls, y: np.ndarray, v: np.ndarray, x: np.ndarray,
              m: np.ndarray | None = None) -> DesignRows:
        """From 1-D (one analysis) or batched arrays; padding rows of ``x`` are zeroed."""
        if y.ndim == 1:
            y, v, x = y[None, :], v[None, :], x[None, :, :]
        m = np.ones(y.shape, dtype=bool) if m is None else m
        x = np.where(m[:, :, None], x, 0.0)
        return cls(np.where(m, y, 0.0), np.where(m, v, 1.0), m, m.sum(axis=1).astype(float),
                   x, int(x.shape[2]), full=bool(m.all()))

    def proj(self, w: np.ndarray) -> _DesignProjection:
        """Return the projection at weights ``w`` (n x k; 0 on padding)."""
        return _DesignProjection(self.y, self.x, w)

    def score_grid(self, t: np.ndarray, reml: bool) -> np.ndarray:
        """Return twice the score at every point of ``t`` (n x G)."""
        n, g = t.shape
        return score(self.take(np.repeat(np.arange(n), g)), t.ravel(), reml).reshape(n, g)

    def take(self, idx: np.ndarray) -> DesignRows:
        """Return the rows ``idx``."""
        if idx.size == self.k.size and np.array_equal(idx, np.arange(idx.size)):
            return self
        return DesignRows(self.y[idx], self.v[idx], self.m[idx], self.k[idx], self.x[idx],
                          self.p, self.full)


@dataclass(slots=True)
class Basis:
    r"""The data and the fixed-effect (:math:`\tau^2 = 0`) projection every estimator uses."""

    d: Rows
    p0: Projection
    keff: Any

    @classmethod
    def of(cls, d: Rows) -> Basis:
        """Return the basis of ``d``: :math:`P` at :math:`w = 1/v` and :math:`k - p`."""
        return cls(d, d.proj(d.fe_weights()), d.k - d.p)


# --------------------------------------------------------------------------------------------
# the likelihood and its score (any back-end)
# --------------------------------------------------------------------------------------------


def loglik(d: Rows, tau2: Any, reml: bool) -> Any:
    r"""Return the (restricted) log-likelihood at ``tau2``, without constants.

    ML: :math:`-\frac12[\sum \log(v_i + \tau^2) + y^\top P y]`; REML adds
    :math:`-\frac12 \log\det X^\top W X`. metafor's ``logLik`` adds
    :math:`-\frac{k}{2}\log 2\pi` (ML) or :math:`-\frac{k-p}{2}\log 2\pi +
    \frac12\log\det X^\top X` (REML), which do not depend on :math:`\tau^2`.
    """
    pr = d.proj(d.weights(tau2))
    ll = -0.5 * (d.sum_log(tau2) + pr.q)
    return ll - 0.5 * pr.logdet if reml else ll


def score(d: Rows, tau2: Any, reml: bool) -> Any:
    r"""Return twice the score of the (restricted) log-likelihood.

    REML :math:`y^\top P^2 y - \mathrm{tr} P`, ML :math:`y^\top P^2y - \mathrm{tr} W`.
    """
    pr = d.proj(d.weights(tau2))
    return pr.ypp - (pr.trp if reml else pr.sw)


def score_deriv(d: Rows, tau2: Any, reml: bool) -> tuple[Any, Any]:
    r"""Return twice the score and its derivative in :math:`\tau^2`.

    The derivative is :math:`-2y^\top P^3 y + \mathrm{tr}P^2` (ML: :math:`+\mathrm{tr}W^2`).
    """
    pr = d.proj(d.weights(tau2))
    if reml:
        return pr.ypp - pr.trp, -2 * pr.yppp() + pr.psq()
    return pr.ypp - pr.sw, -2 * pr.yppp() + pr.sw2


def score_bound(d: Rows, reml: bool) -> Any:
    r"""Return a bound :math:`T` with score < 0 for every :math:`\tau^2 > T` (0: never positive).

    With :math:`w_{max} = 1/(v_{min} + \tau^2)`, :math:`w_{min} = 1/(v_{max} + \tau^2)` and
    :math:`RSS` the OLS residual sum of squares: :math:`y^\top P^2 y \le w_{max}\, y^\top P y
    \le w_{max}^2 RSS`, and :math:`\mathrm{tr} P \ge (k - p) w_{min}` (ML:
    :math:`\mathrm{tr} W \ge k w_{min}`), so the score is negative where
    :math:`RSS (v_{max} + \tau^2) < k' (v_{min} + \tau^2)^2`, i.e. beyond the larger root of
    that quadratic.
    """
    rss = np.maximum(d.proj(d.unit_weights()).q, 0.0)
    keff = d.k - (d.p if reml else 0)
    vmin, vmax = d.vrange()
    disc = rss**2 + 4 * keff * rss * (vmax - vmin)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (rss - 2 * keff * vmin + np.sqrt(disc)) / (2 * keff)
    return np.where(np.isfinite(t), np.maximum(t, 0.0), 0.0)
