r"""Linear mixed model with known within-study covariance, fitted by ML or REML (private).

The package's one multivariate fitter: :func:`analysis.multilevel.rma_mv` (general
multilevel/multivariate models) and the dose-response models of :mod:`analysis.dose` both
call :func:`fit_mixed`.

Model: :math:`y = X\beta + u + e`, :math:`e \sim N(0, V)` (known, block diagonal by study),
:math:`u \sim N(0, \sum_m \theta_m G_m)`, i.e. the marginal covariance
:math:`\Sigma(\theta) = V + \sum_m \theta_m G_m` is *linear* in the covariance parameters.
This covers metafor's ``rma.mv(yi, V, mods, random = ~ 1 | study)`` (one :math:`G`: the
same-study indicator), ``random = ~ 1 | study/comparison`` (plus the identity) and
random coefficients with an unstructured covariance :math:`\Psi` (``struct = "UN"``,
mixmeta, dosresmeta): :math:`u_s = Z_s b_s`, :math:`b_s \sim N(0, \Psi)`, one parameter per
distinct element of :math:`\Psi`.

Estimation: Fisher scoring on :math:`\theta` (Harville 1977), with
:math:`W = \Sigma^{-1}`, :math:`P = W - WX(X'WX)^{-1}X'W`, :math:`r = Py`,

.. math::

   s_m = -\tfrac12 \operatorname{tr}(A G_m) + \tfrac12 r' G_m r, \qquad
   \mathcal I_{mn} = \tfrac12 \operatorname{tr}(A G_m A G_n),

with :math:`A = P` (REML) or :math:`A = W` (ML); step-halving when the log-likelihood falls,
and each :math:`\Psi` projected on the positive semi-definite cone (variances >= 0).

Global maximum: Fisher scoring only polishes. It starts from the best point of a
deterministic global search (the (restricted) likelihood can have several local maxima, e.g.
dosresmeta's ``alcohol_cvd`` quadratic, where a singular :math:`\Psi` is a local maximum 0.12
below the global one): one variance parameter, a grid of 81 values on a log scale (extended
while still rising) evaluated at once through one eigen-decomposition, then Brent in the best
two cells; two variances (nested intercepts), the same at each point of a grid of the second;
otherwise BFGS over the Cholesky factors of each :math:`\Psi` from 10-12 starts (moment
start, scaled identities, near-singular starts along each axis, correlations +-0.5/0.9), the
best re-optimised tightly.
Log-likelihoods are metafor's (REML including :math:`+\tfrac12\log|X'X|`).

Checked against metafor 3.8 ``rma.mv`` (REML and ML; random intercepts, nested intercepts and
``struct="UN"``) in ``tests/reference/dose_reference.json``: relative error < 1e-7 for the
random-intercept structures; < 1e-5 for ``struct="UN"``, where metafor's own optimum is the
less converged one (its REML log-likelihood is lower by ~5e-12).

References
----------
Harville DA (1977). Maximum likelihood approaches to variance component estimation and to
related problems. JASA 72:320-338. Viechtbauer W (2010). Conducting meta-analyses in R with the
metafor package. J Stat Softw 36(3). Gasparrini A, Armstrong B, Kenward MG (2012). Multivariate
meta-analysis for non-linear and other multi-parameter associations. Stat Med 31:3821-3839.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse
from scipy.sparse import csgraph

from analysis.dose._common import block_indicator
from analysis.errors import ConvergenceError

__all__ = ["CovarianceTerm", "MixedFit", "fit_mixed", "term_matrices"]

_LOG2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True, slots=True)
class CovarianceTerm:
    """One random-effects term: rows grouped by ``groups``, loadings ``z`` (k x q), Psi q x q."""

    name: str
    z: np.ndarray
    groups: np.ndarray

    @property
    def q(self) -> int:
        """Dimension of the random effect."""
        return int(self.z.shape[1])


def term_matrices(terms: list[CovarianceTerm]) -> tuple[list[np.ndarray], list[tuple[int, ...]],
                                                       list[str]]:
    r"""Return the :math:`G_m` matrices, the parameter index of each :math:`\Psi` and the names.

    For a term with loadings :math:`z_a` (columns of ``z``) and same-group indicator
    :math:`M`: :math:`G_{aa} = M \circ z_a z_a'` and
    :math:`G_{ab} = M \circ (z_a z_b' + z_b z_a')` for the covariance :math:`\Psi_{ab}`.
    """
    mats: list[np.ndarray] = []
    blocks: list[tuple[int, ...]] = []
    names: list[str] = []
    for term in terms:
        same = block_indicator(term.groups)
        start = len(mats)
        for a in range(term.q):
            for b in range(a, term.q):
                za, zb = term.z[:, a], term.z[:, b]
                outer = np.outer(za, zb)
                mats.append(same * (outer if a == b else outer + outer.T))
                names.append(f"{term.name}[{a},{b}]" if term.q > 1 else term.name)
        blocks.append(tuple(range(start, len(mats))))
    return mats, blocks, names


def _dim(n_params: int) -> int:
    """Dimension q of a symmetric matrix with ``n_params`` distinct elements."""
    return (math.isqrt(8 * n_params + 1) - 1) // 2


def psi_from_theta(values: np.ndarray, q: int) -> np.ndarray:
    """Symmetric q x q matrix from its upper-triangle elements (row-major)."""
    psi = np.zeros((q, q))
    psi[np.triu_indices(q)] = values
    return psi + np.triu(psi, 1).T


def _project(theta: np.ndarray, blocks: list[tuple[int, ...]]) -> np.ndarray:
    """Project each block's Psi on the positive semi-definite cone."""
    out = theta.copy()
    for idx in blocks:
        q = _dim(len(idx))
        psi = psi_from_theta(theta[list(idx)], q)
        vals, vecs = np.linalg.eigh(psi)
        if vals.min() < 0:
            psi = (vecs * np.maximum(vals, 0.0)) @ vecs.T
            out[list(idx)] = psi[np.triu_indices(q)]
    return out


@dataclass(frozen=True, slots=True)
class MixedFit:
    """Estimates of one fit of :func:`fit_mixed`."""

    beta: np.ndarray
    vcov: np.ndarray
    theta: np.ndarray
    loglik: float
    iterations: int
    sigma: np.ndarray
    weights: np.ndarray


class _Eval:
    """Quantities at one value of theta."""

    def __init__(self, y: np.ndarray, X: np.ndarray, V: np.ndarray, mats: list[np.ndarray],
                 theta: np.ndarray, reml: bool) -> None:
        sigma = V + sum((t * g for t, g in zip(theta, mats, strict=True)), np.zeros_like(V))
        self.sigma = sigma
        chol = np.linalg.cholesky(sigma)
        inv_chol = np.linalg.inv(chol)
        W = inv_chol.T @ inv_chol
        XtWX = X.T @ W @ X
        vb = np.linalg.inv(XtWX)
        beta = vb @ (X.T @ W @ y)
        P = W - W @ X @ vb @ X.T @ W
        resid = y - X @ beta
        self.W, self.P, self.vb, self.beta = W, P, vb, beta
        self.r = W @ resid
        k, p = X.shape
        logdet = 2.0 * np.sum(np.log(np.diag(chol)))
        rss = float(resid @ self.r)
        if reml:
            self.loglik = (-0.5 * (k - p) * _LOG2PI + 0.5 * np.linalg.slogdet(X.T @ X)[1]
                           - 0.5 * logdet - 0.5 * np.linalg.slogdet(XtWX)[1] - 0.5 * rss)
        else:
            self.loglik = -0.5 * k * _LOG2PI - 0.5 * logdet - 0.5 * rss
        self.A = P if reml else W

    def score_info(self, mats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        AG = [self.A @ g for g in mats]
        score = np.array([-0.5 * np.trace(ag) + 0.5 * self.r @ g @ self.r
                          for ag, g in zip(AG, mats, strict=True)])
        info = np.array([[0.5 * np.sum(a.T * b) for b in AG] for a in AG])
        return score, info


def _start(y: np.ndarray, X: np.ndarray, V: np.ndarray, mats: list[np.ndarray],
           blocks: list[tuple[int, ...]]) -> np.ndarray:
    """Start: each variance at max(0.01 mean v, var(OLS residuals) - mean v) / #terms."""
    resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    mean_v = float(np.mean(np.diag(V)))
    guess = max(0.01 * mean_v, (float(np.var(resid)) - mean_v) / max(len(blocks), 1))
    theta = np.zeros(len(mats))
    for idx in blocks:
        q = _dim(len(idx))
        diag_pos = [pos for pos, (a, b) in zip(idx, zip(*np.triu_indices(q), strict=True),
                                                strict=True) if a == b]
        for pos in diag_pos:
            scale = float(np.mean(np.diag(mats[pos])[np.diag(mats[pos]) > 0]) or 1.0)
            theta[pos] = guess / scale
    return theta


def _scaled_terms(terms: list[CovarianceTerm], V: np.ndarray) -> tuple[list[CovarianceTerm],
                                                                       list[np.ndarray]]:
    r"""Rescale each loading column so that the parameters are of comparable size.

    :math:`c_a^2` = mean of :math:`z_{ia}^2 / V_{ii}` over the rows with :math:`z_{ia} \ne 0`;
    the scaled :math:`\Psi^* = C\Psi C` is a heterogeneity relative to the sampling
    variances (a dose^2 coefficient's variance can be 1e-11 next to 1e-4 for the slope).
    """
    v = np.diag(V)
    out, scales = [], []
    for term in terms:
        c = np.ones(term.q)
        for a in range(term.q):
            nz = term.z[:, a] != 0
            if np.any(nz):
                c[a] = float(np.sqrt(np.mean(term.z[nz, a] ** 2 / v[nz])))
        out.append(CovarianceTerm(term.name, term.z / c, term.groups))
        scales.append(c)
    return out, scales


def _unscale(theta: np.ndarray, blocks: list[tuple[int, ...]],
             scales: list[np.ndarray]) -> np.ndarray:
    r"""Back to the original scale: :math:`\Psi = C^{-1}\Psi^* C^{-1}`."""
    out = theta.copy()
    for idx, c in zip(blocks, scales, strict=True):
        rows, cols = np.triu_indices(c.size)
        out[list(idx)] = theta[list(idx)] / (c[rows] * c[cols])
    return out


def _chol_to_theta(par: np.ndarray, blocks: list[tuple[int, ...]]) -> tuple[np.ndarray,
                                                                              list[np.ndarray]]:
    theta = np.zeros(par.size)
    lowers = []
    for idx in blocks:
        q = _dim(len(idx))
        L = np.zeros((q, q))
        L[np.tril_indices(q)] = par[list(idx)]
        theta[list(idx)] = (L @ L.T)[np.triu_indices(q)]
        lowers.append(L)
    return theta, lowers


class _Batched:
    r"""Fast (restricted) log-likelihood and score, using the independent blocks of the model.

    :math:`\Sigma(\theta)` is block diagonal over the connected components of the non-zero
    pattern of :math:`V + \sum_m G_m` (the studies); blocks of equal size are stacked and
    factorised together, so an evaluation costs :math:`O(\sum_s k_s^3)` instead of
    :math:`O(k^3)`. Used by the global search; the final estimate is polished by the dense
    Fisher scoring of :func:`fit_mixed`.
    """

    def __init__(self, y: np.ndarray, X: np.ndarray, V: np.ndarray, mats: list[np.ndarray],
                 reml: bool) -> None:
        pattern = V != 0
        for g in mats:
            pattern = pattern | (g != 0)
        n_comp, labels = csgraph.connected_components(sparse.csr_matrix(pattern),
                                                      directed=False)
        members = [np.flatnonzero(labels == c) for c in range(n_comp)]
        sizes = np.array([m.size for m in members])
        self.groups: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        G_all = np.stack(mats) if mats else np.zeros((0, *V.shape))
        for size in np.unique(sizes):
            rows = np.stack([members[c] for c in np.flatnonzero(sizes == size)])  # (nb, s)
            ii, jj = rows[:, :, None], rows[:, None, :]
            self.groups.append((y[rows], X[rows], V[ii, jj],
                                G_all[:, ii, jj].reshape(len(mats), -1)))
        k, p = X.shape
        self.reml = reml
        self.const = (-0.5 * (k - p) * _LOG2PI + 0.5 * np.linalg.slogdet(X.T @ X)[1]
                      if reml else -0.5 * k * _LOG2PI)

    def __call__(self, theta: np.ndarray, grad: bool = False) -> tuple[float, np.ndarray]:
        """Log-likelihood at ``theta`` (``-inf`` if not positive definite) and its score."""
        p = self.groups[0][1].shape[2]
        XtWX = np.zeros((p, p))
        XtWy = np.zeros(p)
        yWy, logdet = 0.0, 0.0
        parts = []
        try:
            for y_g, X_g, V_g, G_g in self.groups:
                S = V_g + (theta @ G_g).reshape(V_g.shape)
                L = np.linalg.cholesky(S)
                logdet += 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
                W = np.linalg.inv(S)
                WX = W @ X_g
                Wy = (W @ y_g[:, :, None])[:, :, 0]
                XtWX += np.einsum("bia,bic->ac", X_g, WX)
                XtWy += np.einsum("bia,bi->a", X_g, Wy)
                yWy += float(np.sum(y_g * Wy))
                parts.append((W, WX, Wy))
            vb = np.linalg.inv(XtWX)
        except np.linalg.LinAlgError:
            return -np.inf, np.zeros_like(theta)
        beta = vb @ XtWy
        rss = yWy - float(XtWy @ beta)
        ll = self.const - 0.5 * logdet - 0.5 * rss
        if self.reml:
            ll -= 0.5 * np.linalg.slogdet(XtWX)[1]
        if not grad:
            return float(ll), np.zeros_like(theta)
        # s_m = 1/2 sum(G_m o (r r' - A)) with A = P (REML) or W (ML), block by block
        score = np.zeros_like(theta)
        for (_, _, _, G_g), (W, WX, Wy) in zip(self.groups, parts, strict=True):
            r = Wy - WX @ beta
            D = r[:, :, None] * r[:, None, :] - W
            if self.reml:
                D += WX @ vb @ WX.transpose(0, 2, 1)
            score += 0.5 * (G_g @ D.ravel())
        return float(ll), score


def _cholesky_fit(f: _Batched, blocks: list[tuple[int, ...]], theta: np.ndarray,
                  gtol: float, maxiter: int) -> tuple[float, np.ndarray]:
    r"""Maximise over the Cholesky factors :math:`\Psi^* = LL'` (BFGS, analytic gradient).

    Each block's :math:`\Psi^*` stays positive semi-definite without projection, so the
    search crosses the regions where Fisher scoring with projection stalls (a singular
    :math:`\Psi` on the way). Returns the log-likelihood and theta.
    """
    par = np.zeros(theta.size)
    for idx in blocks:
        q = _dim(len(idx))
        psi = psi_from_theta(theta[list(idx)], q)
        psi = psi + 1e-10 * max(float(np.trace(psi)), 1.0) * np.eye(q)
        par[list(idx)] = np.linalg.cholesky(psi)[np.tril_indices(q)]

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        th, lowers = _chol_to_theta(p, blocks)
        ll, score = f(th, grad=True)
        if not np.isfinite(ll):
            return np.inf, np.zeros_like(p)
        g = np.zeros_like(p)
        for idx, L in zip(blocks, lowers, strict=True):
            q = L.shape[0]
            S = psi_from_theta(score[list(idx)], q)  # dl/dPsi_ab (a<=b) placed symmetrically
            dpsi = S + np.diag(np.diag(S))  # d l / d Psi for a symmetric perturbation
            g[list(idx)] = (dpsi @ L)[np.tril_indices(q)]
        return -ll, -g

    res = optimize.minimize(objective, par, jac=True, method="BFGS",
                            options={"gtol": gtol, "maxiter": maxiter})
    th = _chol_to_theta(res.x, blocks)[0]
    return f(th)[0], th


def _starts(theta0: np.ndarray, blocks: list[tuple[int, ...]]) -> list[np.ndarray]:
    r"""Deterministic starts of the multi-start search (scaled parameters).

    The moment start; :math:`c I` for every block with :math:`c` = 0.01, 0.1, 1 (scaled
    variances are relative to the sampling variances; only 0.1 when all blocks are
    scalars); near-singular starts along each axis (one variance at 1, the others 1e-4);
    and, for ``q >= 2``, :math:`c = 1` with all correlations 0.9, 0.5, -0.5 or -0.9
    (projected on the positive semi-definite cone).
    """
    starts = [theta0]

    def filled(diag: np.ndarray, rho: float = 0.0) -> np.ndarray:
        th = np.zeros(theta0.size)
        pos = 0
        for idx in blocks:
            q = _dim(len(idx))
            d = diag[pos:pos + q]
            psi = rho * np.sqrt(np.outer(d, d)) * (1 - np.eye(q)) + np.diag(d)
            th[list(idx)] = psi[np.triu_indices(q)]
            pos += q
        return th

    n_var = sum(_dim(len(idx)) for idx in blocks)
    scalars = all(len(idx) == 1 for idx in blocks)
    for c in (0.1,) if scalars else (0.01, 0.1, 1.0):
        starts.append(filled(np.full(n_var, c)))
    if n_var > 1:
        for a in range(n_var):
            d = np.full(n_var, 1e-4)
            d[a] = 1.0
            starts.append(filled(d))
    if any(len(idx) > 1 for idx in blocks):
        for rho in (0.9, 0.5, -0.5, -0.9):
            starts.append(filled(np.ones(n_var), rho))
    return [_project(s, blocks) for s in starts]


#: Grid of the scaled variance (relative to the sampling variances) for one parameter.
_GRID = np.concatenate([[0.0], 10.0 ** np.arange(-6.0, 4.01, 0.125)])


class _OneVariance:
    r"""(Restricted) log-likelihood of :math:`\Sigma = V + tG` for many t at once.

    With :math:`V = LL'` and :math:`L^{-1}GL^{-T} = Q\Lambda Q'`,
    :math:`\Sigma = LQ(I + t\Lambda)Q'L'`: after one eigen-decomposition every evaluation is
    :math:`O(kp^2)` (weights :math:`1/(1 + t\lambda_i)` on the rotated data).
    """

    def __init__(self, y: np.ndarray, X: np.ndarray, V: np.ndarray, G: np.ndarray,
                 reml: bool) -> None:
        L = np.linalg.cholesky(V)  # LinAlgError if V is not positive definite
        Li = np.linalg.inv(L)
        lam, Q = np.linalg.eigh(Li @ G @ Li.T)
        self.lam = np.maximum(lam, 0.0)
        R = Q.T @ Li
        self.y, self.X = R @ y, R @ X
        k, p = X.shape
        self.reml = reml
        logdet_v = 2.0 * float(np.sum(np.log(np.diag(L))))
        self.const = (-0.5 * (k - p) * _LOG2PI + 0.5 * np.linalg.slogdet(X.T @ X)[1]
                      if reml else -0.5 * k * _LOG2PI) - 0.5 * logdet_v

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """Log-likelihood at each value of ``t`` (1-D array)."""
        w = 1.0 / (1.0 + np.outer(t, self.lam))  # (n_t, k)
        XtWX = np.einsum("ti,ia,ic->tac", w, self.X, self.X)
        XtWy = np.einsum("ti,ia,i->ta", w, self.X, self.y)
        yWy = w @ (self.y * self.y)
        beta = np.linalg.solve(XtWX, XtWy[:, :, None])[:, :, 0]
        rss = yWy - np.einsum("ta,ta->t", XtWy, beta)
        ll = self.const + 0.5 * np.sum(np.log(w), axis=1) - 0.5 * rss
        if self.reml:
            ll -= 0.5 * np.linalg.slogdet(XtWX)[1]
        return np.asarray(ll, dtype=float)


def _scalar_search(f: _OneVariance, refine: bool = True) -> np.ndarray:
    """Global maximum over one variance: grid on a log scale, then Brent in the best cells.

    ``refine=False``: the best grid point only.
    """
    t = _GRID.copy()
    vals = f(t)
    while vals[-1] >= vals[:-1].max() and t[-1] < 1e12:  # still rising: extend
        more = t[-1] * 10.0 ** np.arange(0.125, 2.01, 0.125)
        t, vals = np.concatenate([t, more]), np.concatenate([vals, f(more)])
    peaks = [i for i in range(t.size) if (i == 0 or vals[i] >= vals[i - 1])
             and (i == t.size - 1 or vals[i] >= vals[i + 1])]
    best_t, best_ll = 0.0, float(vals[0])
    for i in sorted(peaks, key=lambda j: -vals[j])[:2 if refine else 1]:
        lo, hi = t[max(i - 1, 0)], t[min(i + 1, t.size - 1)]
        cand, ll = float(t[i]), float(vals[i])
        if hi > lo and refine:
            res = optimize.minimize_scalar(lambda x: -float(f(np.array([x]))[0]),
                                           bounds=(lo, hi), method="bounded",
                                           options={"xatol": 1e-10 * hi})
            if -float(res.fun) > ll:
                cand, ll = float(res.x), -float(res.fun)
        if ll > best_ll:
            best_t, best_ll = cand, ll
    return np.array([best_t])


def _two_variance_search(y: np.ndarray, X: np.ndarray, V: np.ndarray, mats: list[np.ndarray],
                         reml: bool) -> np.ndarray:
    """Two variances: the one-variance search at each point of a grid of the second."""
    best_ll, best = -np.inf, np.zeros(2)
    for t2 in np.concatenate([[0.0], 10.0 ** np.arange(-4.0, 3.01, 1.0)]):
        f = _OneVariance(y, X, V + t2 * mats[1], mats[0], reml)
        t1 = _scalar_search(f, refine=False)
        ll = float(f(t1)[0])
        if ll > best_ll:
            best_ll, best = ll, np.array([t1[0], t2])
    f = _OneVariance(y, X, V + best[1] * mats[1], mats[0], reml)
    return np.array([_scalar_search(f)[0], best[1]])


def _global_start(y: np.ndarray, X: np.ndarray, V: np.ndarray, mats: list[np.ndarray],
                  blocks: list[tuple[int, ...]], theta0: np.ndarray, reml: bool) -> np.ndarray:
    """Start for the final Fisher scoring: the best of a global search (scaled parameters).

    One variance parameter: :func:`_scalar_search`; two variances (nested intercepts): the
    same search at each point of a grid of the second. Otherwise BFGS over Cholesky factors
    from each of :func:`_starts` (loose tolerance), the best then re-optimised tightly.
    """
    if len(mats) == 1:
        try:
            return _scalar_search(_OneVariance(y, X, V, mats[0], reml))
        except np.linalg.LinAlgError:  # V not positive definite: search on the batched form
            pass
    if len(mats) == 2 and all(len(idx) == 1 for idx in blocks):
        try:
            return _two_variance_search(y, X, V, mats, reml)
        except np.linalg.LinAlgError:
            pass
    f = _Batched(y, X, V, mats, reml)
    found = [_cholesky_fit(f, blocks, s, 1e-4, 500) for s in _starts(theta0, blocks)]
    theta = max(found, key=lambda item: item[0])[1]
    return _cholesky_fit(f, blocks, theta, 1e-10, 5000)[1]


def _line_search(y: np.ndarray, X: np.ndarray, V: np.ndarray, mats: list[np.ndarray],
                 blocks: list[tuple[int, ...]], theta: np.ndarray, step: np.ndarray,
                 ev: _Eval, reml: bool, min_factor: float = 1e-10) -> tuple[np.ndarray,
                                                                            _Eval | None]:
    """Step-halving with projection on the PSD cone; ``None`` when no step improves."""
    factor = 1.0
    while factor > min_factor:
        new = _project(theta + factor * step, blocks)
        if np.any(new != theta):
            try:
                new_ev = _Eval(y, X, V, mats, new, reml)
            except np.linalg.LinAlgError:
                new_ev = None
            if new_ev is not None and new_ev.loglik > ev.loglik:
                return new, new_ev
        factor /= 2
    return theta, None


def fit_mixed(y: np.ndarray, X: np.ndarray, V: np.ndarray, terms: list[CovarianceTerm],
              method: str = "REML", *, tol: float = 1e-18, maxiter: int = 2000,
              theta_fixed: np.ndarray | None = None) -> MixedFit:
    r"""Fit the model of the module docstring.

    Parameters
    ----------
    y, X, V : numpy.ndarray
        Outcomes (k), design (k x p), known within-study covariance (k x k).
    terms : list of CovarianceTerm
        Random-effects terms; empty (or ``method="FE"``) gives the fixed-effect GLS fit.
    method : {"REML", "ML", "FE"}
        Estimator of the covariance parameters.
    tol : float
        Convergence: Newton decrement :math:`s'\mathcal I^{-1}s` below ``tol`` (scale
        free; about twice the log-likelihood still to gain), or no step that increases the
        log-likelihood (an optimum on the boundary).
    maxiter : int
        Fisher-scoring iterations before :class:`~analysis.errors.ConvergenceError`.
    theta_fixed : numpy.ndarray, optional
        Use these covariance parameters instead of estimating them.

    Returns
    -------
    MixedFit
    """
    terms, scales = _scaled_terms(terms, V)
    mats, blocks, _ = term_matrices(terms)
    reml = method == "REML"
    if method == "FE" or not mats:
        ev = _Eval(y, X, V, mats, np.zeros(len(mats)), reml)
        return MixedFit(ev.beta, ev.vb, np.zeros(len(mats)), float(ev.loglik), 0, ev.sigma, ev.W)
    if theta_fixed is not None:
        ev = _Eval(y, X, V, mats, _unscale(theta_fixed, blocks, [1 / c for c in scales]), reml)
        return MixedFit(ev.beta, ev.vb, theta_fixed, float(ev.loglik), 0, ev.sigma, ev.W)
    theta = _global_start(y, X, V, mats, blocks, _project(_start(y, X, V, mats, blocks), blocks),
                          reml)
    ev = _Eval(y, X, V, mats, theta, reml)
    decrement = np.inf
    for iteration in range(1, maxiter + 1):
        score, info = ev.score_info(mats)
        step = np.linalg.lstsq(info, score, rcond=None)[0]
        decrement = float(score @ step)
        # near the optimum (decrement < 1e-12) a full step either improves or the
        # log-likelihood is flat to rounding: no step-halving then
        new, new_ev = (theta, None) if decrement < tol else _line_search(
            y, X, V, mats, blocks, theta, step, ev, reml,
            min_factor=0.5 if decrement < 1e-12 else 1e-10)
        if new_ev is None:
            return MixedFit(ev.beta, ev.vb, _unscale(theta, blocks, scales), float(ev.loglik),
                            iteration, ev.sigma, ev.W)
        theta, ev = new, new_ev
    raise ConvergenceError(
        f"{method} Fisher scoring did not converge in {maxiter} iterations (Newton decrement "
        f"{decrement:.3g}); try method='ML', a simpler random-effects structure or 'FE'"
    )
