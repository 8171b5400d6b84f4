"""Brute-force global maximiser of the (restricted) log-likelihood of tau^2, and its checks.

Independent of the solver in ``analysis``: only the public ``analysis.pool`` and
``analysis.meta_regression`` results are used (``tau2``). Log-likelihoods are metafor's, with
its constants (so values compare with ``logLik(rma(...))``): with :math:`w_i = 1/(v_i+\\tau^2)`,
:math:`\\hat\\beta = (X'WX)^{-1}X'Wy`, :math:`r = y - X\\hat\\beta`,

    ML:   -1/2 [k log 2pi + sum log(v_i + tau2) + sum w_i r_i^2]
    REML: -1/2 [(k-p) log 2pi - log det X'X + sum log(v_i + tau2) + log det X'WX + sum w r^2]

The maximiser lies in [0, T] with T from a bound on the score (see :func:`upper_bound`). The
grid is uniform in u = log(1 + tau2 / v_min), tau2 = 0 exactly at u = 0; every grid local
maximum (and tau2 = 0) is refined by a vectorised golden-section search on the exact
two-pass log-likelihood. Usage::

    python -m benchmarks.global_max check --n 1000000 --nreg 20000   # the scale check
    python -m benchmarks.global_max export --out build/global_max_cases.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

LOG2PI = float(np.log(2 * np.pi))
GRID = 2000            # grid points in u = log1p(tau2 / v_min) (tau2 = 0 is the first)
GOLDEN_ITER = 64       # golden-section iterations per bracket (2 grid steps * 0.618^64)
BLOCK_ELEMS = 3_000_000  # rows * grid * k per vectorised block (memory: ~24 MB per array)
TOL = 1e-8             # allowed shortfall of the solver's log-likelihood
KMAX = 50
SEED = 20240917


# ------------------------------------------------------------------------------------------
# log-likelihood, exact (two-pass), vectorised over rows and over several tau2 per row
# ------------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """Padded data: y centred by its OLS fit (leaves every weighted RSS unchanged)."""

    y: np.ndarray        # (n, k), 0 at padding
    v: np.ndarray        # (n, k), 1 at padding
    mask: np.ndarray     # (n, k) bool
    X: np.ndarray | None  # (n, k, p), 0 at padding; None = intercept only
    k: np.ndarray        # (n,) studies per row
    p: int
    logdet_xtx: np.ndarray  # (n,)
    ss: np.ndarray       # (n,) unweighted OLS residual sum of squares
    vmin: np.ndarray
    vmax: np.ndarray
    npad: np.ndarray = field(default_factory=lambda: np.zeros(0))


def prepare(y, v, X=None) -> Prepared:
    """Pad/mask rows (NaN = padding), centre y on its OLS fit, compute per-row constants."""
    y = np.atleast_2d(np.asarray(y, dtype=float))
    v = np.atleast_2d(np.asarray(v, dtype=float))
    mask = np.isfinite(y) & np.isfinite(v)
    y0 = np.where(mask, y, 0.0)
    v0 = np.where(mask, v, 1.0)
    k = mask.sum(axis=1)
    if X is None:
        p = 1
        yc = np.where(mask, y0 - y0.sum(1, keepdims=True) / k[:, None], 0.0)
        logdet_xtx = np.log(k.astype(float))
        Xp = None
    else:
        Xp = np.where(mask[..., None], np.asarray(X, dtype=float), 0.0)
        if Xp.ndim == 2:
            Xp = Xp[None]
        p = Xp.shape[-1]
        xtx = np.einsum("nka,nkb->nab", Xp, Xp)
        b = np.linalg.solve(xtx, np.einsum("nka,nk->na", Xp, y0)[..., None])[..., 0]
        yc = np.where(mask, y0 - np.einsum("nka,na->nk", Xp, b), 0.0)
        logdet_xtx = np.linalg.slogdet(xtx)[1]
    vmin = np.where(mask, v0, np.inf).min(1)
    vmax = np.where(mask, v0, -np.inf).max(1)
    return Prepared(yc, v0, mask, Xp, k, p, logdet_xtx, (yc * yc).sum(1), vmin, vmax,
                    (~mask).sum(1))


def _take(d: Prepared, idx: np.ndarray) -> Prepared:
    return Prepared(d.y[idx], d.v[idx], d.mask[idx], None if d.X is None else d.X[idx],
                    d.k[idx], d.p, d.logdet_xtx[idx], d.ss[idx], d.vmin[idx], d.vmax[idx],
                    d.npad[idx])


def loglik_exact(d: Prepared, tau2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ML, REML) log-likelihoods at tau2 of shape (n,) or (n, m), exact two-pass formula.

    Evaluated in extended precision (np.longdouble, 64-bit mantissa on x86): with sampling
    variances from 1e-6 to 1e3 X'WX has a condition number near 1e9 and the double-precision
    value carries rounding noise of ~1e-8, the size of the tolerance.
    """
    ld = np.longdouble
    t = np.asarray(tau2, dtype=float)
    squeeze = t.ndim == 1
    t = t.reshape(len(d.y), -1).astype(ld)
    a = d.v.astype(ld)[:, None, :] + t[:, :, None]
    m = d.mask[:, None, :]
    w = np.where(m, 1 / a, ld(0))
    logs = np.where(m, np.log(a), ld(0)).sum(-1)
    yy = d.y.astype(ld)[:, None, :]
    if d.X is None:
        sw = w.sum(-1)
        beta = (w * yy).sum(-1) / sw
        r = yy - beta[..., None]
        logdet = np.log(sw)
    else:
        X = d.X.astype(ld)
        p = X.shape[-1]
        A = (w[..., :, None, None] * (X[:, None, :, :, None] * X[:, None, :, None, :])).sum(2)
        rhs = (w[..., None] * X[:, None, :, :] * yy[..., None]).sum(2)
        L = _chol_factor(A)
        z = np.empty_like(rhs)
        for i in range(p):
            z[..., i] = (rhs[..., i] - (L[..., i, :i] * z[..., :i]).sum(-1)) / L[..., i, i]
        beta = np.empty_like(rhs)
        for i in reversed(range(p)):
            beta[..., i] = ((z[..., i] - (L[..., i + 1:, i] * beta[..., i + 1:]).sum(-1))
                            / L[..., i, i])
        r = yy - (X[:, None, :, :] * beta[..., None, :]).sum(-1)
        logdet = 2 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
    rss = (w * r * r).sum(-1)
    kk = d.k[:, None].astype(ld)
    ml = (-0.5 * (kk * ld(LOG2PI) + logs + rss)).astype(float)
    reml = (-0.5 * ((kk - d.p) * ld(LOG2PI) - d.logdet_xtx[:, None] + logs + logdet + rss)
            ).astype(float)
    if squeeze:
        return ml[:, 0], reml[:, 0]
    return ml, reml


def _chol_factor(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a batch of small SPD matrices (any float dtype)."""
    p = A.shape[-1]
    L = np.zeros_like(A)
    for j in range(p):
        s = A[..., j, j] - (L[..., j, :j] ** 2).sum(-1)
        L[..., j, j] = np.sqrt(np.maximum(s, np.finfo(A.dtype).tiny))
        for i in range(j + 1, p):
            L[..., i, j] = (A[..., i, j] - (L[..., i, :j] * L[..., j, :j]).sum(-1)) / L[..., j, j]
    return L


def _chol(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log det A and ||L^{-1} b||^2 for a batch of small SPD matrices (Cholesky by hand)."""
    p = A.shape[-1]
    L = np.zeros_like(A)
    for j in range(p):
        s = A[..., j, j] - (L[..., j, :j] ** 2).sum(-1)
        L[..., j, j] = np.sqrt(np.maximum(s, 1e-300))
        for i in range(j + 1, p):
            L[..., i, j] = (A[..., i, j] - (L[..., i, :j] * L[..., j, :j]).sum(-1)) / L[..., j, j]
    z = np.empty_like(b)
    for i in range(p):
        z[..., i] = (b[..., i] - (L[..., i, :i] * z[..., :i]).sum(-1)) / L[..., i, i]
    diag = np.diagonal(L, axis1=-2, axis2=-1)
    return 2 * np.log(diag).sum(-1), (z * z).sum(-1)


def loglik_grid(d: Prepared, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ML, REML) on a (n, G) grid: one pass, sums as matrix products (locates maxima only)."""
    a = d.v[:, None, :] + t[:, :, None]                     # (n, G, k); padding has v = 1
    logs = np.log(a).sum(-1) - d.npad[:, None] * np.log1p(t)
    np.reciprocal(a, out=a)                                 # a is now w (padding: 1/(1+t))
    w = a
    y = d.y                                                 # 0 at padding
    if d.X is None:
        sw = w.sum(-1) - d.npad[:, None] / (1.0 + t)
        s = np.matmul(w, np.stack([y, y * y], axis=-1))     # (n, G, 2)
        rss = s[..., 1] - s[..., 0] ** 2 / sw
        logdet = np.log(sw)
    else:
        n, k, p = d.X.shape
        XX = (d.X[:, :, :, None] * d.X[:, :, None, :]).reshape(n, k, p * p)
        cols = np.concatenate([XX, d.X * y[..., None], (y * y)[..., None]], axis=-1)
        s = np.matmul(w, cols)                              # (n, G, p*p + p + 1)
        A = s[..., : p * p].reshape(*s.shape[:2], p, p)
        logdet, fitted = _chol(A, s[..., p * p: p * p + p])
        rss = s[..., -1] - fitted
    kk = d.k[:, None].astype(float)
    ml = -0.5 * (kk * LOG2PI + logs + rss)
    reml = -0.5 * ((kk - d.p) * LOG2PI - d.logdet_xtx[:, None] + logs + logdet + rss)
    return ml, reml


# ------------------------------------------------------------------------------------------
# the brute-force maximiser
# ------------------------------------------------------------------------------------------
def upper_bound(d: Prepared) -> np.ndarray:
    """T such that the ML and REML scores are < 0 for every tau2 > T.

    Score (REML) = 1/2 [||W r||^2 - tr P], P = W - WX(X'WX)^{-1}X'W. ||W r||^2 <= w_max
    sum w r^2 <= w_max^2 SS (SS: unweighted OLS residual SS; r minimises the weighted SS), and
    tr P = tr((I - H_w) W) >= (k - p) w_min. With a = tau2 + v_min, D = v_max - v_min the
    score is negative when SS (a + D) < (k - p) a^2. ML: the trace is sum w >= k w_min, so
    the same T (with k - p) is a bound for ML too.
    """
    df = np.maximum(d.k - d.p, 1).astype(float)
    ss, dd = d.ss, d.vmax - d.vmin
    a = (ss + np.sqrt(ss * ss + 4 * df * ss * dd)) / (2 * df)
    return np.maximum(a - d.vmin, 0.0)


@dataclass
class BruteForce:
    """Per row: global maximum and maximiser for ML and REML, and grid local-maximum counts."""

    ll_ml: np.ndarray
    tau2_ml: np.ndarray
    nmax_ml: np.ndarray
    ll_reml: np.ndarray
    tau2_reml: np.ndarray
    nmax_reml: np.ndarray
    top_hit: np.ndarray  # grid maximum at the upper end (would mean T is wrong): never


def _count_modes(g: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                             np.ndarray]:
    """Modes of each row of g, grid local-maximum indices, top-end hits.

    Differences below 1e-14 * scale (about 50 ulps of the largest term of the one-pass grid
    values, ``scale`` bounds them) count as flat, so rounding noise makes no extra modes.
    """
    dg = np.diff(g, axis=1)
    tol = 1e-14 * scale[:, None]
    sgn = np.where(dg > tol, 1, np.where(dg < -tol, -1, 0))
    # forward-fill the zeros with the previous non-zero sign
    idx = np.where(sgn != 0, np.arange(sgn.shape[1]), 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(sgn, idx, axis=1)
    filled[(idx == 0) & (sgn[:, :1] == 0)] = 0
    modes = ((filled[:, :-1] == 1) & (filled[:, 1:] == -1)).sum(1)
    nz = sgn != 0
    first = np.where(nz.any(1), sgn[np.arange(len(g)), nz.argmax(1)], -1)
    modes = np.maximum(modes + (first == -1), 1)
    last = filled[:, -1]
    # candidate brackets: every grid point >= both neighbours (plateaus included)
    loc = (g[:, 1:-1] >= g[:, :-2]) & (g[:, 1:-1] >= g[:, 2:])
    return modes, loc, last == 1


def _golden(d: Prepared, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, c: np.ndarray,
            which: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised golden-section maximisation in u of the exact log-likelihood."""
    sub = _take(d, rows)
    gr = (np.sqrt(5) - 1) / 2

    def f(u):
        return loglik_exact(sub, c * np.expm1(u))[which]

    x1 = hi - gr * (hi - lo)
    x2 = lo + gr * (hi - lo)
    f1, f2 = f(x1), f(x2)
    for _ in range(GOLDEN_ITER):
        left = f1 >= f2
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        x2n = np.where(left, x1, lo + gr * (hi - lo))
        x1n = np.where(left, hi - gr * (hi - lo), x2)
        fnew = f(np.where(left, x1n, x2n))
        f1, f2 = np.where(left, fnew, f2), np.where(left, f1, fnew)
        x1, x2 = x1n, x2n
    u = np.where(f1 >= f2, x1, x2)
    return np.maximum(f1, f2), c * np.expm1(u)


def brute_force(y, v, X=None, grid: int = GRID) -> BruteForce:
    """Global maxima of the ML and REML log-likelihoods over tau2 in [0, inf) for every row.

    ``y``, ``v``: (n, k) with NaN padding (or 1-D for one data set); ``X``: (n, k, p) design
    with the intercept column, or None for intercept-only models.
    """
    d = prepare(y, v, X)
    n, k = d.y.shape
    out = {key: np.empty(n) for key in ("ll_ml", "tau2_ml", "ll_reml", "tau2_reml")}
    nmax = {"ml": np.zeros(n, int), "reml": np.zeros(n, int)}
    top = np.zeros(n, bool)
    T = upper_bound(d)
    c = d.vmin
    umax = np.log1p(np.maximum(1.05 * T, 1e-3 * c) / c)
    # exact values at tau2 = 0
    ll0 = loglik_exact(d, np.zeros(n))
    scale = 1.0 + np.abs(ll0[0]) + (d.y * d.y / d.v).sum(1) + np.abs(np.log(d.v)).sum(1)
    step = max(1, BLOCK_ELEMS // (grid * k))
    frac = np.linspace(0.0, 1.0, grid)
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        rows = np.arange(sl.start, sl.stop)
        sub = _take(d, rows)
        u = umax[sl, None] * frac[None, :]
        t = c[sl, None] * np.expm1(u)
        g = loglik_grid(sub, t)
        for which, name in ((0, "ml"), (1, "reml")):
            gm = g[which]
            modes, loc, _ = _count_modes(gm, scale[sl])
            nmax[name][sl] = modes
            # the top end, exactly: the log-likelihood must decrease into it (T is a bound)
            ends = loglik_exact(sub, t[:, -2:])[which]
            top[sl] |= ends[:, 1] >= ends[:, 0]
            r_i, j_i = np.nonzero(loc)
            j_i = j_i + 1
            # also the best grid point (if it is the last one, bracket to the left)
            # ... and for every row [u_0, u_2] (a maximum just above tau2 = 0, below u_1)
            jb = gm.argmax(1)
            r_i = np.concatenate([r_i, np.arange(len(rows)), np.arange(len(rows))])
            j_i = np.concatenate([j_i, np.clip(jb, 1, grid - 2), np.ones(len(rows), int)])
            lo = u[r_i, j_i - 1]
            hi = u[r_i, j_i + 1]
            best, tb = _golden(sub, r_i, lo, hi, c[sl][r_i], which)
            bl = np.full(len(rows), -np.inf)
            np.maximum.at(bl, r_i, best)
            # maximiser: the candidate with the best value
            order = np.lexsort((-best, r_i))
            firsts = order[np.r_[True, r_i[order][1:] != r_i[order][:-1]]]
            tau = np.empty(len(rows))
            tau[r_i[firsts]] = tb[firsts]
            at0 = ll0[which][sl] >= bl
            out[f"ll_{name}"][sl] = np.where(at0, ll0[which][sl], bl)
            out[f"tau2_{name}"][sl] = np.where(at0, 0.0, tau)
    return BruteForce(out["ll_ml"], out["tau2_ml"], nmax["ml"], out["ll_reml"],
                      out["tau2_reml"], nmax["reml"], top)


# ------------------------------------------------------------------------------------------
# data-set generators (deterministic: numpy SeedSequence([SEED, kind, chunk]))
# ------------------------------------------------------------------------------------------
SCENARIOS = ("issue_var", "issue_sd", "general", "extreme_v", "outliers", "small_k")
_WEIGHTS = np.array([0.15, 0.15, 0.25, 0.15, 0.15, 0.15])


def _tau2_for(rng, vtyp, n):
    """None to large heterogeneity: 0, < v, or up to several times the typical v."""
    kind = rng.integers(0, 4, n)
    mult = np.select([kind == 0, kind == 1, kind == 2],
                     [0.0, rng.uniform(0, 0.5, n), rng.uniform(0.5, 2, n)],
                     rng.uniform(2, 8, n))
    return mult * vtyp


def generate_intercept(chunk: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``size`` intercept-only data sets, (y, v) of shape (size, KMAX) NaN-padded, scenarios."""
    rng = np.random.default_rng([SEED, 1, chunk])
    scen = rng.choice(len(SCENARIOS), size=size, p=_WEIGHTS)
    y = np.full((size, KMAX), np.nan)
    v = np.full((size, KMAX), np.nan)
    kk = np.where(scen < 2, 16, np.where(scen == 5, rng.integers(2, 6, size),
                                         rng.integers(2, KMAX + 1, size)))
    col = np.arange(KMAX)[None, :]
    live = col < kk[:, None]
    vu = rng.uniform(0.02, 0.3, (size, KMAX))
    v_gen = np.exp(rng.uniform(np.log(0.005), np.log(0.5), (size, KMAX)))
    # extreme: per row one of mixed 1e-6..1e3, all tiny, all huge, tiny + huge only
    ext = rng.integers(0, 4, size)[:, None]
    v_mix = 10.0 ** rng.uniform(-6, 3, (size, KMAX))
    v_tiny = 1e-6 * rng.uniform(1, 10, (size, KMAX))
    v_huge = 1e3 * rng.uniform(0.5, 2, (size, KMAX))
    v_two = np.where(rng.random((size, KMAX)) < 0.5, v_tiny, v_huge)
    v_ext = np.choose(ext, [v_mix, v_tiny, v_huge, v_two])
    vv = np.where((scen < 2)[:, None], vu, np.where((scen == 3)[:, None], v_ext, v_gen))
    vtyp = np.nanmedian(np.where(live, vv, np.nan), axis=1)
    tau2 = _tau2_for(rng, vtyp, size)
    mu = rng.uniform(-1, 1, size)
    z1 = rng.standard_normal((size, KMAX))
    z2 = rng.standard_normal((size, KMAX))
    yy = mu[:, None] + np.sqrt(tau2)[:, None] * z1 + np.sqrt(vv) * z2
    yy = np.where((scen == 0)[:, None], -0.3 + np.sqrt(0.4) * z1, yy)
    yy = np.where((scen == 1)[:, None], -0.3 + 0.4 * z1, yy)
    # outliers: 1-3 studies shifted by 3-10 total SDs
    nout = rng.integers(1, 4, size)
    shift = rng.choice([-1, 1], (size, KMAX)) * rng.uniform(3, 10, (size, KMAX))
    outl = (scen == 4)[:, None] & (col < np.minimum(nout, kk - 1)[:, None])
    yy = np.where(outl, yy + shift * np.sqrt(vv + tau2[:, None]), yy)
    y[live] = yy[live]
    v[live] = vv[live]
    return y, v, scen


def generate_regression(chunk: int, size: int):
    """``size`` meta-regression data sets: list of (y, v, mods (k, p - 1), scenario)."""
    rng = np.random.default_rng([SEED, 2, chunk])
    out = []
    for _ in range(size):
        p = int(rng.integers(2, 4))
        scen = int(rng.integers(0, 4))  # 0 BCG-like, 1 general, 2 extreme v, 3 outliers
        k = int(rng.integers(p + 2, 31)) if rng.random() < 0.8 else int(rng.integers(p + 2, 8))
        mods = np.column_stack([rng.normal(0, rng.choice([1.0, 10.0, 30.0]), k)] +
                               ([rng.integers(0, 2, k).astype(float) if rng.random() < 0.5
                                 else rng.normal(size=k)] if p == 3 else []))
        if scen == 0:
            v = rng.uniform(0.005, 0.3, k)
        elif scen == 2:
            v = 10.0 ** rng.uniform(-6, 3, k) if rng.random() < 0.5 else (
                np.where(rng.random(k) < 0.5, 1e-6, 1e3) * rng.uniform(1, 5, k))
        else:
            v = np.exp(rng.uniform(np.log(0.005), np.log(0.5), k))
        tau2 = float(_tau2_for(rng, np.median(v), 1)[0])
        beta = rng.normal(0, 0.3, p) / np.r_[1.0, np.std(mods, axis=0) + 1e-9]
        y = (beta[0] + mods @ beta[1:] + rng.normal(0, np.sqrt(tau2), k)
             + rng.normal(0, np.sqrt(v)))
        if scen == 3:
            j = rng.integers(0, k, int(rng.integers(1, 3)))
            y[j] += rng.choice([-1, 1], len(j)) * rng.uniform(3, 10, len(j)) * np.sqrt(v[j] + tau2)
        if p == 3 and np.ptp(mods[:, 1]) == 0:
            mods[0, 1] = 1.0 - mods[0, 1]   # a binary moderator must take both values
        out.append((y, v, mods, scen))
    return out


# ------------------------------------------------------------------------------------------
# checks of the project's solver (public API only)
# ------------------------------------------------------------------------------------------
def _sort_blocks(y, v, block=2000):
    """Row order by k, so each block can drop the padding columns it does not need."""
    k = np.isfinite(y).sum(1)
    order = np.argsort(k, kind="stable")
    for s in range(0, len(order), block):
        rows = order[s:s + block]
        kmax = int(k[rows].max())
        yield rows, y[rows, :kmax], v[rows, :kmax]


def _pool_tau2(ma, y: np.ndarray, v: np.ndarray, method: str) -> np.ndarray:
    """Batched tau2 (NaN where a row fails); row by row if the batched call raises."""
    try:
        return np.asarray(ma.pool(y, v, method=method, tau2_ci=False, errors="nan").tau2,
                          dtype=float)
    except Exception:
        out = np.full(len(y), np.nan)
        for i in range(len(y)):
            ok = np.isfinite(y[i])
            with contextlib.suppress(Exception):
                out[i] = ma.pool(y[i][ok], v[i][ok], method=method, tau2_ci=False).tau2
        return out


def check_pool_chunk(chunk: int, size: int, keep: int = 50) -> dict:
    """Batched ``ma.pool`` ML and REML on one generated chunk versus the brute force."""
    import analysis as ma

    y, v, scen = generate_intercept(chunk, size)
    res = {"n": size, "ml": {}, "reml": {}, "top_hit": 0, "seconds_solver": 0.0,
           "seconds_bf": 0.0}
    stats = {m: {"fail": 0, "nonconv": 0, "multi": 0, "worst": -np.inf, "cases": []}
             for m in ("ml", "reml")}
    for rows, yb, vb in _sort_blocks(y, v):
        t0 = time.perf_counter()
        ours = {m: _pool_tau2(ma, yb, vb, m.upper()) for m in ("ml", "reml")}
        t1 = time.perf_counter()
        bf = brute_force(yb, vb)
        res["seconds_bf"] += time.perf_counter() - t1
        res["seconds_solver"] += t1 - t0
        res["top_hit"] += int(bf.top_hit.sum())
        _tally(stats, prepare(yb, vb), ours, bf, keep, lambda i, rows=rows, yb=yb, vb=vb: {
            "chunk": chunk, "size": size, "row": int(rows[i]),
            "scenario": SCENARIOS[scen[rows[i]]],
            "yi": yb[i][np.isfinite(yb[i])].tolist(),
            "vi": vb[i][np.isfinite(vb[i])].tolist()})
    res.update(stats)
    return res


def _tally(stats: dict, d: Any, ours: dict, bf: Any, keep: int, case: Any) -> None:
    """Add one block's ML and REML comparison (solver vs brute force) to ``stats``.

    ``case(i)`` gives the inputs of row ``i`` for the saved failing cases.
    """
    for which, m in ((0, "ml"), (1, "reml")):
        tau = ours[m]
        ok = np.isfinite(tau)
        ll = loglik_exact(d, np.where(ok, np.maximum(tau, 0.0), 0.0))[which]
        best = bf.ll_ml if m == "ml" else bf.ll_reml
        btau = bf.tau2_ml if m == "ml" else bf.tau2_reml
        nm = bf.nmax_ml if m == "ml" else bf.nmax_reml
        short = np.where(ok, best - ll, np.inf)
        st = stats[m]
        bad = short > TOL
        st["fail"] += int(bad.sum())
        st["nonconv"] += int((~ok).sum())
        st["multi"] += int((nm > 1).sum())
        if ok.any():
            st["worst"] = max(st["worst"], float(short[ok].max()))
        for i in np.nonzero(bad)[0][: max(0, keep - len(st["cases"]))]:
            st["cases"].append({
                **case(int(i)),
                "tau2_ours": float(tau[i]), "loglik_ours": float(ll[i]),
                "tau2_bf": float(btau[i]), "loglik_bf": float(best[i]),
                "n_local_max": int(nm[i])})


def check_regression_chunk(chunk: int, size: int, keep: int = 50) -> dict:
    """Single ``ma.meta_regression`` fits (ML and REML) on one chunk versus the brute force."""
    import pandas as pd

    import analysis as ma

    data = generate_regression(chunk, size)
    res = {"n": size, "top_hit": 0, "seconds_solver": 0.0, "seconds_bf": 0.0}
    stats = {m: {"fail": 0, "nonconv": 0, "multi": 0, "worst": -np.inf, "cases": []}
             for m in ("ml", "reml")}
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, (yy, _, mods, _) in enumerate(data):
        by_shape.setdefault((len(yy), mods.shape[1] + 1), []).append(i)
    for (_k, _p), idx in by_shape.items():
        Y = np.array([data[i][0] for i in idx])
        V = np.array([data[i][1] for i in idx])
        X = np.array([np.column_stack([np.ones(len(data[i][0])), data[i][2]]) for i in idx])
        t0 = time.perf_counter()
        ours = {m: np.full(len(idx), np.nan) for m in ("ml", "reml")}
        for j, i in enumerate(idx):
            yy, vv, mods, _ = data[i]
            df = pd.DataFrame(mods, columns=[f"x{c + 1}" for c in range(mods.shape[1])])
            for m in ("ml", "reml"):
                # any exception of the solver is a failure (counted as not converged)
                with contextlib.suppress(Exception):
                    ours[m][j] = ma.meta_regression(yy, vv, moderators=df, method=m.upper()).tau2
        t1 = time.perf_counter()
        bf = brute_force(Y, V, X)
        res["seconds_bf"] += time.perf_counter() - t1
        res["seconds_solver"] += t1 - t0
        res["top_hit"] += int(bf.top_hit.sum())
        _tally(stats, prepare(Y, V, X), ours, bf, keep, lambda j, idx=idx: {
            "chunk": chunk, "size": size, "row": idx[j], "scenario": int(data[idx[j]][3]),
            "yi": data[idx[j]][0].tolist(), "vi": data[idx[j]][1].tolist(),
            "mods": data[idx[j]][2].tolist()})
    res.update(stats)
    return res


def _merge(results: list[dict]) -> dict:
    tot = {"n": 0, "top_hit": 0, "seconds_solver": 0.0, "seconds_bf": 0.0}
    for m in ("ml", "reml"):
        tot[m] = {"fail": 0, "nonconv": 0, "multi": 0, "worst": -np.inf, "cases": []}
    for r in results:
        for key in ("n", "top_hit", "seconds_solver", "seconds_bf"):
            tot[key] += r[key]
        for m in ("ml", "reml"):
            for key in ("fail", "nonconv", "multi"):
                tot[m][key] += r[m][key]
            tot[m]["worst"] = max(tot[m]["worst"], r[m]["worst"])
            tot[m]["cases"] += r[m]["cases"]
    return tot


def run_checks(n_pool: int, n_reg: int, workers: int | None = None, chunk: int = 20_000,
               reg_chunk: int = 2_000) -> dict[str, dict]:
    """Scale check: ``n_pool`` intercept-only data sets and ``n_reg`` meta-regressions."""
    workers = workers or int(os.environ.get("GLOBAL_MAX_WORKERS", min(2, os.cpu_count() or 1)))
    pool_jobs = [(i, min(chunk, n_pool - i * chunk)) for i in range(-(-n_pool // chunk))]
    reg_jobs = [(i, min(reg_chunk, n_reg - i * reg_chunk)) for i in range(-(-n_reg // reg_chunk))]
    if workers <= 1:
        pr = [check_pool_chunk(*j) for j in pool_jobs]
        rr = [check_regression_chunk(*j) for j in reg_jobs]
    else:
        with ProcessPoolExecutor(workers) as ex:
            fp = [ex.submit(check_pool_chunk, *j) for j in pool_jobs]
            fr = [ex.submit(check_regression_chunk, *j) for j in reg_jobs]
            pr = [f.result() for f in fp]
            rr = [f.result() for f in fr]
    return {"pool": _merge(pr), "regression": _merge(rr)}


def summary_rows(res: dict[str, dict]) -> list[str]:
    """One printable line per model/method: checked, failures (per million), multi-modal."""
    lines = []
    for kind, r in res.items():
        for m in ("ml", "reml"):
            s = r[m]
            per_m = 1e6 * s["fail"] / max(r["n"], 1)
            lines.append(
                f"{kind:10s} {m.upper():4s} checked {r['n']:>9,}  failures {s['fail']:>6,} "
                f"({per_m:8.1f} per million)  non-converged {s['nonconv']:>4}  "
                f">1 local max {s['multi']:>6,}  worst shortfall {s['worst']:.3g}  "
                f"top-end hits {r['top_hit']}")
    return lines


def export_cases(cases: dict[str, list[dict]], per_group: int = 10) -> list[dict]:
    """Up to ``per_group`` failing cases per model/method, round-robin over the scenarios."""
    chosen = []
    for group, items in sorted(cases.items()):
        kind, method = group.split("_")
        by_scen: dict[str, list[dict]] = {}
        for c in sorted(items, key=lambda c: (len(c["yi"]), c["chunk"], c["row"])):
            by_scen.setdefault(str(c["scenario"]), []).append(c)
        picked: list[dict] = []
        while len(picked) < per_group and any(by_scen.values()):
            for key in sorted(by_scen):
                if by_scen[key] and len(picked) < per_group:
                    picked.append(by_scen[key].pop(0))
        for c in picked:
            scen = c["scenario"]
            if kind == "regression":
                scen = ("bcg_like", "general", "extreme_v", "outliers")[int(scen)]
            mods = None
            if kind == "regression":
                cols = np.asarray(c["mods"]).T
                mods = {f"x{j + 1}": col.tolist() for j, col in enumerate(cols)}
            chosen.append({
                "id": f"{'pool' if kind == 'pool' else 'metareg'}/{method.upper()}/{scen}/"
                      f"c{c['chunk']}r{c['row']}",
                "kind": "pool" if kind == "pool" else "metareg", "method": method.upper(),
                "origin": {"source": "benchmarks.global_max", "generator": kind,
                           "scenario": scen, "chunk": c["chunk"], "chunk_size": c.get("size"),
                           "row": c["row"],
                           "tau2_project_at_generation":
                               c["tau2_ours"] if np.isfinite(c["tau2_ours"]) else None},
                "yi": c["yi"], "vi": c["vi"], "mods": mods})
    return chosen


def _cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="scale check of analysis.pool / meta_regression")
    c.add_argument("--n", type=int, default=1_000_000)
    c.add_argument("--nreg", type=int, default=20_000)
    c.add_argument("--workers", type=int, default=None)
    c.add_argument("--save", type=Path, default=None, help="write the failing cases (JSON)")
    e = sub.add_parser("export", help="choose fixture cases (input of the R script)")
    e.add_argument("--cases", type=Path, required=True, help="output of check --save")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--per-group", type=int, default=10)
    args = ap.parse_args(argv)
    if args.cmd == "export":
        chosen = export_cases(json.loads(args.cases.read_text()), args.per_group)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(chosen))
        print(f"{len(chosen)} cases -> {args.out}")
        return 0
    t0 = time.perf_counter()
    res = run_checks(args.n, args.nreg, args.workers)
    for line in summary_rows(res):
        print(line)
    print(f"wall {time.perf_counter() - t0:.1f} s")
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        cases = {f"{kind}_{m}": r[m]["cases"] for kind, r in res.items() for m in ("ml", "reml")}
        args.save.write_text(json.dumps(cases))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(_cli())
