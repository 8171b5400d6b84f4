r"""Linear mixed model with known within-study covariance, fitted by ML or REML (private).

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
from scipy import optimize

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


def _cholesky_optimise(y: np.ndarray, X: np.ndarray, V: np.ndarray, mats: list[np.ndarray],
                       blocks: list[tuple[int, ...]], theta: np.ndarray,
                       reml: bool) -> np.ndarray:
    r"""Maximise over the Cholesky factors :math:`\Psi^* = LL'` (BFGS, analytic gradient).

    Used for unstructured :math:`\Psi` (q > 1), whose optimum may lie where Fisher scoring
    with projection stalls (a singular :math:`\Psi` on the way); Fisher scoring then
    polishes the result.
    """
    par = np.zeros(theta.size)
    for idx in blocks:
        q = _dim(len(idx))
        psi = psi_from_theta(theta[list(idx)], q) + 1e-8 * np.eye(q)
        par[list(idx)] = np.linalg.cholesky(psi)[np.tril_indices(q)]

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        th, lowers = _chol_to_theta(p, blocks)
        try:
            ev = _Eval(y, X, V, mats, th, reml)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(p)
        score, _ = ev.score_info(mats)
        grad = np.zeros_like(p)
        for idx, L in zip(blocks, lowers, strict=True):
            q = L.shape[0]
            S = psi_from_theta(score[list(idx)], q)  # dl/dPsi_ab (a<=b) placed symmetrically
            dpsi = S + np.diag(np.diag(S))  # d l / d Psi for a symmetric perturbation
            grad[list(idx)] = (dpsi @ L)[np.tril_indices(q)]
        return -float(ev.loglik), -grad

    res = optimize.minimize(objective, par, jac=True, method="BFGS",
                            options={"gtol": 1e-10, "maxiter": 5000})
    return _chol_to_theta(res.x, blocks)[0]


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
    theta = _project(_start(y, X, V, mats, blocks), blocks)
    if any(len(idx) > 1 for idx in blocks):
        theta = _cholesky_optimise(y, X, V, mats, blocks, theta, reml)
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
