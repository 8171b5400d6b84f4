r"""The iteration drivers of the rma.uni core, vectorised over rows and for one analysis.

Three problems need iteration: the root of :math:`Q(\tau^2) = y^\top P y = c` (PM, EB and the
Q-profile limits; Q is decreasing, so the root is unique), the global maximum of the ML/REML
(restricted) likelihood, and metafor's Fisher scoring. Each driver acts on any back-end of
:mod:`analysis.algebra`; the vectorised ones fit every row of a batch at once, the scalar twins
(``*_one``) one analysis with Python floats, and a property test (``tests/test_heterogeneity.py``)
holds each pair together. The formulas they iterate live in :mod:`analysis.algebra`
(likelihood, score) and :mod:`analysis.heterogeneity` (the estimators).

The global search: the score is evaluated on a grid in :math:`\log \tau^2` over
:math:`[0, T]`, :math:`T` an upper bound above which the score is provably negative
(:func:`analysis.algebra.score_bound`); every bracket of a sign change from + to - is refined
by safeguarded Newton iteration, :math:`\tau^2 = 0` is a candidate when the score there is not
positive, and the candidate with the largest likelihood wins.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from analysis.algebra import Basis, Rows, ScalarIntercept, loglik, score_bound, score_deriv
from analysis.control import Control
from analysis.errors import AnalysisWarning, ConvergenceError

__all__ = ["global_one", "pm_upper", "q_upper", "qroot_one", "root_q_one", "solve_q",
           "tau2_fisher", "tau2_global", "tau2_qroot"]

_EPS = float(np.finfo(float).eps)
#: Grid points per decade of tau^2 in the global search (ratio 10**(1/4) = 1.78 between
#: neighbours); checked against a brute-force maximisation on a million generated data sets.
GRID_PER_DECADE = 4
#: Lower end of the grid: this fraction of the smallest sampling variance (below it the score
#: is linear in tau^2 to within 1%), but at most 14 decades below T.
GRID_LOW = 1e-2
GRID_DECADES_MAX = 14
#: The grid of a batch is scored in blocks of this many rows (n x G x k work arrays that fit
#: in the cache; measured fastest at 10,000 x 16).
_CHUNK = 256


def q_upper(d: Rows, target: Any) -> Any:
    r"""Return an upper end :math:`T` with :math:`Q(T) < \text{target}`, from the data.

    :math:`Q(\tau^2) = \min_\beta \sum_i (y_i - x_i\beta)^2/(v_i + \tau^2) \le
    RSS/\tau^2` with :math:`RSS` the OLS residual sum of squares, so
    :math:`T = 1.01\,RSS/\text{target}` brackets every root of :math:`Q(\tau^2) =
    \text{target}`. It scales with the data (multiplying ``y`` by c and ``v`` by c² multiplies
    it by c²), where metafor's ``max(100, 10 mad(y)^2)`` depends on the units.
    """
    rss = np.maximum(d.proj(d.unit_weights()).q, 0.0)
    vmin, _ = d.vrange()
    return np.maximum(1.01 * rss / target, vmin)


def pm_upper(d: Rows, con: Control, target: Any) -> Any:
    """Upper end of the PM/EB search: ``control tau2_max`` if given, else :func:`q_upper`."""
    if con.tau2_max is not None:
        return d.per_row(np.full(d.masked_y().shape[0], float(con.tau2_max)))
    return q_upper(d, target)


def _floor(d: Rows) -> Any:
    """Return the smallest tau^2 step that matters: 1e-10 of the smallest variance."""
    return 1e-10 * d.vrange()[0]


# --------------------------------------------------------------------------------------------
# iteration drivers, vectorised over rows
# --------------------------------------------------------------------------------------------


def solve_q(d: Rows, target: np.ndarray, hi: np.ndarray, tol: float) -> np.ndarray:
    r"""Solve :math:`Q(\tau^2) = y^\top P y = \text{target}` on :math:`[0, hi]` for every row.

    Requires :math:`Q(0) \ge \text{target} \ge Q(hi)` (Q is decreasing). Newton iteration on
    :math:`1/Q(\tau^2) - 1/\text{target}` (nearly linear in :math:`\tau^2`; the derivative of Q
    is :math:`-y^\top P^2 y`), safeguarded by bisection whenever a step leaves the current
    bracket; exact to far below metafor's ``uniroot`` tolerance.
    """
    n = target.size
    x = np.zeros(n)
    lo = np.zeros(n)
    up = hi.astype(float).copy()
    act = np.arange(n)
    # Newton converges quadratically: once a step is below 1e-8 (relative), the error left
    # after taking it is of order 1e-16, so stop there (checked against 300-step bisection).
    xtol = max(min(tol, 1e-13), 1e-8)
    sub, ta = d, target
    floor = np.asarray(_floor(d))
    for _ in range(300):
        xa = x[act]
        pr = sub.proj(sub.weights(xa))
        f = pr.q - ta
        la = np.where(f > 0, xa, lo[act])
        ua = np.where(f < 0, xa, up[act])
        with np.errstate(divide="ignore", invalid="ignore"):
            new = xa + pr.q * f / (ta * pr.ypp)
        bad = ~(new > la) | ~(new < ua)
        new = np.where(bad, 0.5 * (la + ua), new)
        # relative to tau^2 (down to 1e-10 of the smallest v): the same digits at any scale
        scale = np.maximum(new, floor)
        done = (f == 0) | (np.abs(new - xa) <= xtol * scale) & ~bad | (
            ua - la <= 4 * _EPS * scale)
        lo[act], up[act], x[act] = la, ua, new
        if done.all():
            return x
        keep = ~done
        act, ta, floor = act[keep], ta[keep], floor[keep]
        sub = sub.take(np.flatnonzero(keep))
    raise ConvergenceError(_ROOT_FAIL)


_ROOT_FAIL = ("root finding for tau^2 (PM/EB estimator or Q-profile limit) did not converge in "
              "300 iterations; check the data for extreme variances or try another method")


def tau2_qroot(b: Basis, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    r"""PM and EB: the root of :math:`y^\top P y = k - p` (0 when Q(0) is below k - p).

    PM searches :math:`[0, \tau^2_{max}]` and fails when the root lies above it (metafor);
    EB (its fixed point is the same equation) widens the interval tenfold until it holds the
    root.
    """
    d, target = b.d, b.keff.astype(float)
    tau2 = np.zeros(target.size)
    conv = np.ones(target.size, dtype=bool)
    need = b.p0.q > target if method == "EB" else b.p0.q >= target
    if not np.any(need):
        return tau2, conv
    idx = np.flatnonzero(need)
    sub, tg = d.take(idx), target[idx]
    hi = pm_upper(sub, con, tg)
    q_hi = sub.proj(sub.weights(hi)).q
    for _ in range(60 if method == "EB" else 0):
        low = q_hi > tg
        if not np.any(low):
            break
        hi = np.where(low, hi * 10, hi)
        q_hi = sub.proj(sub.weights(hi)).q
    ok = q_hi <= tg
    conv[idx[~ok]] = False
    if np.any(ok):
        good = np.flatnonzero(ok)
        tau2[idx[good]] = solve_q(sub.take(good), tg[good], hi[good],
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
    pr = d.proj(d.weights(tau2))
    if method == "ML":
        return (pr.ypp - pr.sw) / pr.sw2
    if method == "REML":
        return (pr.ypp - pr.trp) / pr.psq()
    return (pr.q * d.k / (d.k - d.p) - d.k) / pr.sw  # EB


def tau2_fisher(b: Basis, method: str, con: Control,
                start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Metafor's Fisher scoring for ML, REML and EB from ``start`` (metafor: the truncated HE)."""
    d = b.d
    tau2 = np.asarray(start, dtype=float).copy()
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
            AnalysisWarning,
            stacklevel=5,
        )
    tau2 = tau2.copy()
    tau2[idx[worse]] = 0.0
    return tau2


_FRACTIONS: dict[int, np.ndarray] = {}


def _grid(vmin: Any, bound: Any) -> np.ndarray:
    """Grid in log tau^2 from GRID_LOW * min(v) (at most 14 decades below T) up to T, and 0.

    ``vmin`` and ``bound`` are floats (one analysis: a 1-D grid) or arrays (rows: n x G, as
    many points as the widest row needs).
    """
    lo = np.minimum(np.maximum(GRID_LOW * vmin, bound * 10.0**-GRID_DECADES_MAX), bound * 0.5)
    ratio = bound / lo
    g = max(int(np.ceil(GRID_PER_DECADE * float(np.log10(np.max(ratio))))) + 1, 2)
    frac = _FRACTIONS.get(g)
    if frac is None:
        frac = _FRACTIONS.setdefault(g, np.linspace(0.0, 1.0, g))
    grid = np.asarray(lo)[..., None] * np.asarray(ratio)[..., None] ** frac
    return np.concatenate([np.zeros((*grid.shape[:-1], 1)), grid], axis=-1)


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
    floor = np.minimum(_floor(d), 0.5 * b)
    fine_tol = max(con.threshold, 1e-8)
    sub = d
    done = np.zeros(n, dtype=bool)
    for _ in range(con.maxiter):
        xa = x[act] if act.size < n else x
        sc, ds = score_deriv(sub, xa, reml)
        la = np.where(sc > 0, xa, lo[act])
        ha = np.where(sc < 0, xa, hi[act])
        with np.errstate(divide="ignore", invalid="ignore"):
            new = xa - sc / ds
            fine = (ds < 0) & (new > la) & (new < ha)
        # a zero score is the root itself (e.g. at the bound T, which equals the maximum
        # when all v are equal): keep it, never the bisection midpoint
        new = np.where(sc == 0, xa, np.where(fine, new, 0.5 * (la + ha)))
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


def tau2_global(b: Basis, method: str, con: Control) -> tuple[np.ndarray, np.ndarray]:
    """ML/REML: the global maximum over [0, inf) for every row (see the module docstring).

    The grid is scored in blocks of ``_CHUNK`` rows (the n x G x k work arrays then stay in
    the cache, which halves the time), each block with as many points as its widest row
    needs; the brackets of all blocks are refined together.
    """
    d = b.d
    reml = method == "REML"
    n = b.keff.size
    tau2 = np.zeros(n)
    conv = np.ones(n, dtype=bool)
    bound = score_bound(d, reml)
    live = np.flatnonzero(bound > 0)
    vmin, _ = d.vrange()
    rows_l, lo_l, hi_l, slo_l, shi_l, zero_l = [], [], [], [], [], []
    for start in range(0, live.size, _CHUNK):
        idx = live[start:start + _CHUNK]
        grid = _grid(vmin[idx], bound[idx])
        sc = d.take(idx).score_grid(grid, reml)
        sc[:, -1] = np.minimum(sc[:, -1], 0.0)  # score <= 0 at T exactly (see score_bound)
        r, c = np.nonzero((sc[:, :-1] > 0) & (sc[:, 1:] <= 0))
        rows_l.append(idx[r])
        lo_l.append(grid[r, c])
        hi_l.append(grid[r, c + 1])
        slo_l.append(sc[r, c])
        shi_l.append(sc[r, c + 1])
        zero_l.append(idx[sc[:, 0] <= 0])
    if not live.size:
        return tau2, conv
    rows = np.concatenate(rows_l)
    zero = np.concatenate(zero_l)
    cand = np.zeros(0)
    if rows.size:
        cand, ok = _refine(d.take(rows), np.concatenate(lo_l), np.concatenate(hi_l),
                           np.concatenate(slo_l), np.concatenate(shi_l), reml, con)
        conv[rows[~ok]] = False
    crow = np.concatenate([rows, zero])
    ct = np.concatenate([cand, np.zeros(zero.size)])
    counts = np.bincount(crow, minlength=n)
    single = counts[crow] == 1
    tau2[crow[single]] = ct[single]
    if not np.all(single):  # several candidates: the largest likelihood wins
        crow, ct = crow[~single], ct[~single]
        ll = loglik(d.take(crow), ct, reml)
        order = np.lexsort((-ll, crow))
        first = np.ones(order.size, dtype=bool)
        first[1:] = crow[order][1:] != crow[order][:-1]
        tau2[crow[order][first]] = ct[order][first]
    return tau2, conv


# --------------------------------------------------------------------------------------------
# iteration drivers for one analysis (Python floats)
# --------------------------------------------------------------------------------------------


def root_q_one(d: ScalarIntercept, target: float, hi: float, tol: float) -> float:
    """Scalar twin of :func:`_solve_q` (same iteration, same stopping rule)."""
    x, lo, up = 0.0, 0.0, hi
    xtol = max(min(tol, 1e-13), 1e-8)
    floor = float(_floor(d))
    for _ in range(300):
        pr = d.proj(d.weights(x))
        f = pr.q - target
        if f > 0:
            lo = x
        elif f < 0:
            up = x
        new = x + pr.q * f / (target * pr.ypp) if pr.ypp > 0 else math.nan
        bad = not (lo < new < up)
        if bad:
            new = 0.5 * (lo + up)
        scale = max(new, floor)
        if f == 0 or (abs(new - x) <= xtol * scale and not bad) or up - lo <= 4 * _EPS * scale:
            return new
        x = new
    raise ConvergenceError(_ROOT_FAIL)


def qroot_one(b: Basis, method: str, con: Control) -> tuple[float, bool]:
    """Scalar twin of :func:`_tau2_qroot`."""
    d = b.d
    assert isinstance(d, ScalarIntercept)
    target = float(b.keff)
    if (b.p0.q <= target) if method == "EB" else (b.p0.q < target):
        return 0.0, True
    hi = pm_upper(d, con, target)
    q_hi = d.proj(d.weights(hi)).q
    for _ in range(60 if method == "EB" else 0):
        if q_hi <= target:
            break
        hi *= 10
        q_hi = d.proj(d.weights(hi)).q
    if q_hi > target:
        return math.nan, False
    return root_q_one(d, target, hi, con.tol if method == "PM" else 1e-13), True


def _refine_one(d: ScalarIntercept, a: float, b: float, sa: float, sb: float, reml: bool,
                con: Control) -> tuple[float, bool]:
    """Scalar twin of :func:`_refine`."""
    x = b if sb == 0 else a + (b - a) * sa / (sa - sb)
    if not (a < x <= b) or not math.isfinite(x):
        x = 0.5 * (a + b)
    lo, hi = a, b
    floor = min(float(_floor(d)), 0.5 * b)
    fine_tol = max(con.threshold, 1e-8)
    for _ in range(con.maxiter):
        sc, ds = score_deriv(d, x, reml)
        if sc > 0:
            lo = x
        elif sc < 0:
            hi = x
        new = x - sc / ds if ds != 0 else math.nan
        fine = ds < 0 and lo < new < hi
        if sc == 0:
            return x, True  # the root itself (see _refine)
        if not fine:
            new = 0.5 * (lo + hi)
        tol_step = fine_tol if fine else con.threshold
        if sc == 0 or abs(new - x) <= tol_step * max(new, floor) or hi - lo <= 4 * _EPS * hi:
            return new, True
        x = new
    return x, False


def global_one(b: Basis, method: str, con: Control) -> tuple[float, bool]:
    """Scalar twin of :func:`_tau2_global`."""
    d = b.d
    assert isinstance(d, ScalarIntercept)
    reml = method == "REML"
    bound = float(score_bound(d, reml))
    if bound <= 0:
        return 0.0, True
    grid = _grid(float(d.v.min()), bound)
    s = d.score_grid(grid, reml)
    s[-1] = min(s[-1], 0.0)  # score <= 0 at T in exact arithmetic (see score_bound)
    ups = np.flatnonzero((s[:-1] > 0) & (s[1:] <= 0))
    cands = [0.0] if s[0] <= 0 else []
    conv = True
    for j in ups:
        t, c = _refine_one(d, float(grid[j]), float(grid[j + 1]), float(s[j]), float(s[j + 1]),
                           reml, con)
        cands.append(t)
        conv &= c
    if len(cands) == 1:
        return cands[0], conv
    ll = [loglik(d, t, reml) for t in cands]
    return cands[int(np.argmax(ll))], conv


