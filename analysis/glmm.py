"""Generalized linear mixed models for the odds ratio, as metafor's ``rma.glmm(measure="OR")``.

Two models for sparse 2x2 tables that add nothing to zero cells:

``"UM.FS"``
    Unconditional binomial-normal model with fixed study effects:
    ``logit p_ij = alpha_i + g_ij mu + z_ij u_i``, ``u_i ~ N(0, tau²)``, with ``g`` the
    treatment-arm indicator and ``z = +1/2`` (treatment) or ``-1/2`` (control), metafor's
    default ``coding = 1/2``. The random effect is integrated out by adaptive Gauss-Hermite
    quadrature with ``nagq`` points (metafor's default 7) centred at each study's conditional
    mode and scaled by the curvature there, the rule ``lme4::glmer(nAGQ = 7)`` applies.
``"CM.EL"``
    Conditional model with the exact likelihood: given its margins, ``a_i`` follows
    Fisher's non-central hypergeometric distribution with log odds ratio ``theta_i = mu +
    u_i``, ``u_i ~ N(0, tau²)``. metafor integrates over ``theta_i`` with ``integrate()``;
    here a 24-point adaptive Gauss-Hermite rule does it (the integrand is smooth and
    unimodal, so the rule is exact to rounding; the tests check it against direct
    summation and adaptive quadrature).

``method = "ML"`` estimates ``tau²`` by maximum likelihood; ``"EE"`` (alias ``"FE"``) fixes it
at 0, so UM.FS is the logistic regression with study intercepts and CM.EL the conditional
(exact) maximum-likelihood estimate of the common odds ratio. Standard errors come from the
observed information (the inverse Hessian of the log-likelihood in all parameters, as
``vcov()`` of glmer and metafor's numDeriv Hessian give). Tables with no events or only events
in both arms are dropped (metafor's ``drop00 = TRUE``).

Heterogeneity tests, as metafor reports them: the likelihood-ratio test of the EE model
against the saturated model (one log odds ratio per study) and the Wald test of the saturated
model's study deviations; a study whose saturated estimate is infinite (a zero cell) adds
nothing to the Wald statistic (metafor's value differs from that limit only by where its
optimiser stopped; below 1e-6 on the fixtures). For CM.EL the Wald test uses the exact
information of each table's conditional MLE (the non-central hypergeometric variance), so it
is ``sum w_i (theta_i - theta_w)²``; metafor parametrises the saturated model as an intercept
plus k - 1 study contrasts and takes the Schur complement of its Hessian, the same statistic
(a Wald test of a linear hypothesis does not depend on the parametrisation; tested).

metafor's printed CM.EL ``QE.Wld`` is not copied: rma.glmm's default ``hessianCtrl =
list(r = 16)`` has numDeriv extrapolate over 16 central differences from a step of 0.1|x|,
halving each time, and the last steps (0.1|x| / 2^15) are where the log-pmf's rounding
swamps the second differences. On dat.bcg, whose Madras trial has 176,782 patients, the
Hessian's intercept entry is then 55,572 where the exact information is 559.9, and
``QE.Wld`` is 268.61 (184.03 at r = 12, 163.195 at r = 8, 163.0900 at r = 4); here it is
163.08948. With ``control = list(hessianCtrl = list(r = 4), dnchgcalc =
"dnoncenhypergeom")`` metafor's ``QE.Wld`` agrees with ours to 1e-6 on all three fixture data
sets (dat.collins1985b: 27.10303, metafor's default 26.947). The CM.EL EE standard error
moves the same way (dat.bcg: 0.0412232 at r = 16, 0.0412290 at r = 4 and here).

Checked against metafor 3.8-1 with lme4 1.1-31 and BiasedUrn 2.0.9 on dat.bcg,
dat.nielweise2007 and dat.collins1985b (``tests/reference/make_glmm_reference.R``).

References
----------
Stijnen T, Hamza TH, Özdemir P (2010). Random effects meta-analysis of event outcome in the
framework of the generalized linear mixed model with applications in sparse data.
Statistics in Medicine 29:3046-3067.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from analysis._checks import as_float_array, check_choice, check_level, check_positive_int
from analysis.results import GlmmResult

__all__ = ["MIN_INFORMATIVE", "cm_el_loglik", "glmm_or", "informative_tables", "um_fs_loglik"]

#: Fewest informative (not double-zero) tables each ``method`` of :func:`glmm_or` needs: the
#: random-effects fit (ML) estimates tau² as well (metafor's rma.glmm refuses fewer).
MIN_INFORMATIVE = {"ML": 2, "EE": 1, "FE": 1}

#: metafor's .dnchgi bounds the log odds ratio at +-log(1e12).
_LOGOR_BOUND = float(np.log(1e12))
#: Quadrature points of the CM.EL integral (adaptive Gauss-Hermite).
_CM_NODES = 24
_NEWTON_STEPS = 200
_NEWTON_TOL = 1e-13


@dataclass(frozen=True, slots=True)
class _Tables:
    ai: np.ndarray
    bi: np.ndarray
    ci: np.ndarray
    di: np.ndarray

    @property
    def n1(self) -> np.ndarray:
        return self.ai + self.bi

    @property
    def n2(self) -> np.ndarray:
        return self.ci + self.di


def _gh_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights for the standard normal density (lme4's GHrule)."""
    x, w = np.polynomial.hermite.hermgauss(n)
    return x * np.sqrt(2.0), w / np.sqrt(np.pi)


def _logbinom(y: np.ndarray, n: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Binomial log-probability with the logit link, including log C(n, y)."""
    lchoose = special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)
    return lchoose + y * eta - n * np.logaddexp(0.0, eta)


# -- the conditional (non-central hypergeometric) likelihood ---------------------------------

@dataclass(frozen=True, slots=True)
class _Support:
    """Each table's support of a_i given its margins, padded to a rectangle."""

    x: np.ndarray        # (k, m) support values (padded with the lower bound)
    logw: np.ndarray     # (k, m) log C(n1, x) + log C(n2, m1 - x); -inf on padding
    a: np.ndarray        # (k,) observed a_i
    logw_a: np.ndarray   # (k,) log weight at the observed a_i


def _support(t: _Tables) -> _Support:
    m1 = t.ai + t.ci
    lo = np.maximum(0.0, m1 - t.n2)
    hi = np.minimum(t.n1, m1)
    width = int(np.max(hi - lo)) + 1
    x = lo[:, None] + np.arange(width)[None, :]
    valid = x <= hi[:, None]
    x = np.where(valid, x, lo[:, None])

    def lw(v: np.ndarray, n1: np.ndarray, n2: np.ndarray, m: np.ndarray) -> np.ndarray:
        return (special.gammaln(n1 + 1) - special.gammaln(v + 1) - special.gammaln(n1 - v + 1)
                + special.gammaln(n2 + 1) - special.gammaln(m - v + 1)
                - special.gammaln(n2 - m + v + 1))

    logw = np.where(valid, lw(x, t.n1[:, None], t.n2[:, None], m1[:, None]), -np.inf)
    return _Support(x=x, logw=logw, a=t.ai, logw_a=lw(t.ai, t.n1, t.n2, m1))


def _nchg_moments(s: _Support, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-pmf of a_i, E[X] and Var[X] at log odds ratio ``theta`` (broadcast over studies).

    ``theta`` has shape (k,) or (k, q); the support axis is appended last.
    """
    th = np.clip(theta, -_LOGOR_BOUND, _LOGOR_BOUND)
    shape = (1,) * (th.ndim - 1)
    x = s.x.reshape(s.x.shape[:1] + shape + s.x.shape[1:])
    lw = s.logw.reshape(x.shape)
    z = lw + x * th[..., None]
    lse = special.logsumexp(z, axis=-1)
    p = np.exp(z - lse[..., None])
    mean = np.sum(p * x, axis=-1)
    var = np.sum(p * (x - mean[..., None]) ** 2, axis=-1)
    a = s.a.reshape(s.a.shape + shape)
    logw_a = s.logw_a.reshape(a.shape)
    return logw_a + a * th - lse, mean, var


def _cm_study_loglik(s: _Support, mu: float, tau2: float, nodes: int) -> np.ndarray:
    """Per-study log of the integral of the conditional pmf over theta ~ N(mu, tau2)."""
    if tau2 <= 0:
        return _nchg_moments(s, np.full(s.a.shape, mu))[0]
    # Mode of log pmf(theta) + log phi(theta; mu, tau2) by Newton (strictly concave).
    theta = np.full(s.a.shape, mu, dtype=float)
    for _ in range(_NEWTON_STEPS):
        _, mean, var = _nchg_moments(s, theta)
        grad = s.a - mean - (theta - mu) / tau2
        step = grad / (var + 1.0 / tau2)
        theta = theta + step
        if np.max(np.abs(step)) < _NEWTON_TOL:
            break
    _, _, var = _nchg_moments(s, theta)
    sd = 1.0 / np.sqrt(var + 1.0 / tau2)
    z, w = _gh_rule(nodes)
    pts = theta[:, None] + sd[:, None] * z[None, :]
    logpmf = _nchg_moments(s, pts)[0]
    logphi = stats.norm.logpdf(pts, loc=mu, scale=np.sqrt(tau2))
    h = logpmf + logphi + 0.5 * z[None, :] ** 2 + 0.5 * np.log(2 * np.pi)
    return np.log(sd) + special.logsumexp(h + np.log(w)[None, :], axis=1)


def cm_el_loglik(ai: Any, bi: Any, ci: Any, di: Any, mu: float, tau2: float, *,
                 nodes: int = _CM_NODES) -> float:
    """Log-likelihood of the conditional model with the exact likelihood (CM.EL).

    ``sum_i log integral f(a_i | margins, theta) phi(theta; mu, tau2) dtheta`` with ``f`` the
    non-central hypergeometric pmf; ``tau2 = 0`` gives the conditional log-likelihood of a
    common log odds ratio ``mu``. The tables are used as given (no double-zero dropping).

    Parameters
    ----------
    ai, bi, ci, di : array_like
        Events and non-events in the treatment (a, b) and control (c, d) arms.
    mu, tau2 : float
        Mean log odds ratio and between-study variance.
    nodes : int
        Adaptive Gauss-Hermite points.

    Returns
    -------
    float
        The log-likelihood (metafor's ``-.dnchg()``).
    """
    t = _tables(ai, bi, ci, di)
    return float(np.sum(_cm_study_loglik(_support(t), float(mu), float(tau2), nodes)))


# -- the unconditional binomial-normal likelihood --------------------------------------------

def _um_study_loglik(t: _Tables, alpha: np.ndarray, mu: float, tau: float,
                     nagq: int, conditional: bool = False) -> np.ndarray:
    """Per-study AGQ log marginal likelihood of the binomial-normal model (glmer's rule).

    ``conditional=True`` gives instead the binomial log-likelihood at the conditional modes
    (no penalty, no quadrature): the saturated log-likelihood less half of lme4's
    ``deviance()``, which metafor reports as the UM.FS ML log-likelihood.
    """
    y = np.stack([t.ai, t.ci], axis=-1)
    n = np.stack([t.n1, t.n2], axis=-1)
    base = alpha[:, None] + np.array([mu, 0.0])[None, :]
    zc = np.array([0.5, -0.5])
    if tau <= 0:
        return np.sum(_logbinom(y, n, base), axis=1)
    # Conditional mode of the spherical random effect u (b = tau u, u ~ N(0, 1)).
    u = np.zeros(alpha.shape)
    for _ in range(_NEWTON_STEPS):
        eta = base + tau * zc[None, :] * u[:, None]
        p = special.expit(eta)
        grad = tau * np.sum(zc * (y - n * p), axis=1) - u
        hess = tau**2 * np.sum(zc**2 * n * p * (1 - p), axis=1) + 1.0
        step = grad / hess
        u = u + step
        if np.max(np.abs(step)) < _NEWTON_TOL:
            break
    eta_mode = base + tau * zc[None, :] * u[:, None]
    if conditional:
        return np.sum(_logbinom(y, n, eta_mode), axis=1)
    p = special.expit(eta_mode)
    sd = 1.0 / np.sqrt(tau**2 * np.sum(zc**2 * n * p * (1 - p), axis=1) + 1.0)
    z, w = _gh_rule(nagq)
    uk = u[:, None] + sd[:, None] * z[None, :]                        # (k, q)
    eta = base[:, None, :] + tau * zc[None, None, :] * uk[:, :, None]  # (k, q, 2)
    h = np.sum(_logbinom(y[:, None, :], n[:, None, :], eta), axis=2) - 0.5 * uk**2
    return np.log(sd) + special.logsumexp(h + 0.5 * z**2 + np.log(w), axis=1)


def um_fs_loglik(ai: Any, bi: Any, ci: Any, di: Any, alpha: Any, mu: float, tau2: float, *,
                 nagq: int = 7) -> float:
    """Log-likelihood of the binomial-normal model with fixed study effects (UM.FS).

    The marginal likelihood of each study, the random effect integrated out by adaptive
    Gauss-Hermite quadrature with ``nagq`` points (lme4's rule: nodes at the conditional mode
    of the spherical random effect, scaled by the curvature there), binomial constants
    included, as ``logLik()`` of metafor's fit.

    Parameters
    ----------
    ai, bi, ci, di : array_like
        Events and non-events in the treatment (a, b) and control (c, d) arms.
    alpha : array_like
        Study intercepts (control-arm log odds when ``tau2 = 0``).
    mu, tau2 : float
        Mean log odds ratio and between-study variance.
    nagq : int
        Quadrature points (1 = Laplace approximation).

    Returns
    -------
    float
        The log-likelihood.
    """
    t = _tables(ai, bi, ci, di)
    a = as_float_array("alpha", alpha)
    return float(np.sum(_um_study_loglik(t, a, float(mu), float(np.sqrt(tau2)), nagq)))


# -- fitting ----------------------------------------------------------------------------------

def informative_tables(ai: Any, bi: Any, ci: Any, di: Any) -> np.ndarray:
    """Return True for each 2x2 table that carries information about the OR.

    A table with no events in both arms (``ai = ci = 0``) or only events in both arms
    (``bi = di = 0``) is double-zero: its conditional likelihood is flat in the OR, and
    :func:`glmm_or` drops it, as metafor's ``rma.glmm`` (``drop00``).
    """
    a, b, c, d = (np.asarray(x, dtype=float) for x in (ai, bi, ci, di))
    return ~(((a == 0) & (c == 0)) | ((b == 0) & (d == 0)))


def _tables(ai: Any, bi: Any, ci: Any, di: Any) -> _Tables:
    arrays = [as_float_array(nm, v) for nm, v in zip("abcd", (ai, bi, ci, di), strict=True)]
    lengths = {a.size for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"arguments 'ai', 'bi', 'ci', 'di' differ in length: {sorted(lengths)}")
    for nm, a in zip(("ai", "bi", "ci", "di"), arrays, strict=True):
        bad = ~np.isfinite(a) | (a < 0) | (a != np.round(a))
        if np.any(bad):
            raise ValueError(f"argument {nm!r} must hold non-negative whole counts; "
                             f"got {a[bad][:3].tolist()}")
    return _Tables(*arrays)


def _hessian(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian with one Richardson step (error O(h^4))."""
    def plain(step: float) -> np.ndarray:
        m = x.size
        out = np.empty((m, m))
        f0 = f(x)
        for i in range(m):
            ei = np.zeros(m)
            ei[i] = step
            out[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / step**2
            for j in range(i):
                ej = np.zeros(m)
                ej[j] = step
                out[i, j] = out[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                         + f(x - ei - ej)) / (4 * step**2)
        return out
    return (4 * plain(h / 2) - plain(h)) / 3


def _profile_alpha(t: _Tables, mu: float, tau: float, nagq: int,
                   start: np.ndarray) -> np.ndarray:
    """Study intercepts maximising each study's likelihood at (mu, tau) (Newton, vectorised)."""
    alpha = start.copy()
    h = 1e-4
    for _ in range(100):
        f0 = _um_study_loglik(t, alpha, mu, tau, nagq)
        fp = _um_study_loglik(t, alpha + h, mu, tau, nagq)
        fm = _um_study_loglik(t, alpha - h, mu, tau, nagq)
        g = (fp - fm) / (2 * h)
        c = (fp - 2 * f0 + fm) / h**2
        step = np.where(c < 0, -g / np.where(c < 0, c, -1.0), np.sign(g))
        step = np.clip(step, -2.0, 2.0)
        alpha = alpha + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return alpha


def _fit_um_fs(t: _Tables, random: bool, nagq: int) -> tuple[np.ndarray, float, np.ndarray]:
    """ML fit of UM.FS; returns (parameters alpha..., mu[, tau]), logLik, covariance."""
    k = t.ai.size
    pc = (t.ci + 0.5) / (t.n2 + 1.0)
    alpha0 = special.logit(pc)

    def full(theta: np.ndarray) -> float:
        tau = abs(float(theta[k + 1])) if random else 0.0
        return float(np.sum(_um_study_loglik(t, theta[:k], float(theta[k]), tau, nagq)))

    state = {"alpha": alpha0}

    def profile(par: np.ndarray) -> float:
        mu = float(par[0])
        tau = abs(float(par[1])) if random else 0.0
        state["alpha"] = _profile_alpha(t, mu, tau, nagq, state["alpha"])
        return -float(np.sum(_um_study_loglik(t, state["alpha"], mu, tau, nagq)))

    x0 = np.array([0.0, 0.5]) if random else np.array([0.0])
    res = optimize.minimize(profile, x0, method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000})
    res = optimize.minimize(profile, res.x, method="BFGS", options={"gtol": 1e-9})
    par = res.x
    alpha = _profile_alpha(t, float(par[0]), abs(float(par[1])) if random else 0.0, nagq,
                           state["alpha"])
    theta = np.concatenate([alpha, [par[0]], [abs(par[1])] if random else []])
    if random:
        cov = np.linalg.inv(-_hessian(full, theta))
    else:  # logistic regression: exact information, mu's variance 1 / sum(w1 w2 / (w1 + w2))
        p1 = special.expit(alpha + theta[k])
        p2 = special.expit(alpha)
        w1, w2 = t.n1 * p1 * (1 - p1), t.n2 * p2 * (1 - p2)
        cov = np.zeros((k + 1, k + 1))
        cov[k, k] = 1 / np.sum(w1 * w2 / (w1 + w2))
    return theta, full(theta), cov


def _um_conditional_loglik(t: _Tables, theta: np.ndarray, nagq: int) -> float:
    k = t.ai.size
    return float(np.sum(_um_study_loglik(t, theta[:k], float(theta[k]), float(theta[k + 1]),
                                         nagq, conditional=True)))


def _fit_cm_el(s: _Support, random: bool, nodes: int) -> tuple[np.ndarray, float, np.ndarray]:
    """ML fit of CM.EL in (mu[, log tau2]); returns parameters, logLik, covariance."""
    def loglik(par: np.ndarray) -> float:
        tau2 = float(np.exp(par[1])) if random else 0.0
        return float(np.sum(_cm_study_loglik(s, float(par[0]), tau2, nodes)))

    if random:
        x0 = np.array([0.0, np.log(0.01)])
        res = optimize.minimize(lambda p: -loglik(p), x0, method="Nelder-Mead",
                                options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000})
        res = optimize.minimize(lambda p: -loglik(p), res.x, method="BFGS",
                                options={"gtol": 1e-9})
        par = res.x
    else:
        mu = 0.0
        for _ in range(_NEWTON_STEPS):   # conditional MLE: score a - E[X], information Var[X]
            _, mean, var = _nchg_moments(s, np.full(s.a.shape, mu))
            step = float(np.sum(s.a - mean) / np.sum(var))
            mu += float(np.clip(step, -2.0, 2.0))
            if abs(step) < _NEWTON_TOL:
                break
        par = np.array([mu])
    hess = _hessian(loglik, par)
    return par, loglik(par), np.linalg.inv(-hess)


def _finite_saturated(t: _Tables) -> np.ndarray:
    return (t.ai > 0) & (t.bi > 0) & (t.ci > 0) & (t.di > 0)


def _wald_q(theta: np.ndarray, info: np.ndarray) -> float:
    """Wald test that the study log odds ratios are equal, from independent estimates."""
    if theta.size < 2:
        return 0.0
    pooled = np.sum(info * theta) / np.sum(info)
    return float(np.sum(info * (theta - pooled) ** 2))


def _saturated_um(t: _Tables) -> tuple[float, float]:
    """Saturated binomial log-likelihood and the Wald test of equal study log odds ratios."""
    y = np.concatenate([t.ai, t.ci])
    n = np.concatenate([t.n1, t.n2])
    ll = float(np.sum(stats.binom.logpmf(y, n, y / n)))
    ok = _finite_saturated(t)
    a, b, c, d = (x[ok] for x in (t.ai, t.bi, t.ci, t.di))
    yi = np.log(a * d / (b * c))
    vi = 1 / a + 1 / b + 1 / c + 1 / d
    return ll, _wald_q(yi, 1 / vi)


def _saturated_cm(s: _Support, t: _Tables) -> tuple[float, float]:
    """Saturated conditional log-likelihood (per-study conditional MLEs) and its Wald test."""
    ok = _finite_saturated(t)
    theta = np.where(ok, np.log(np.where(ok, t.ai * t.di / np.maximum(t.bi * t.ci, 1), 1)), 0.0)
    for _ in range(_NEWTON_STEPS):
        _, mean, var = _nchg_moments(s, theta)
        step = np.where(ok, np.clip((s.a - mean) / np.where(ok, var, 1.0), -2, 2), 0.0)
        theta = theta + step
        if np.max(np.abs(step)) < _NEWTON_TOL:
            break
    logpmf, _, var = _nchg_moments(s, theta)
    # A table with a zero cell has its supremum (probability 1) at an infinite log odds ratio.
    ll = float(np.sum(np.where(ok, logpmf, 0.0)))
    return ll, _wald_q(theta[ok], var[ok])


def _typical_variance(t: _Tables) -> float:
    """Return metafor's I² denominator from escalc's OR variances (1/2 added if a 0)."""
    zero = (t.ai == 0) | (t.bi == 0) | (t.ci == 0) | (t.di == 0)
    add = np.where(zero, 0.5, 0.0)
    vi = 1 / (t.ai + add) + 1 / (t.bi + add) + 1 / (t.ci + add) + 1 / (t.di + add)
    w = 1 / vi
    return float((w.size - 1) / (np.sum(w) - np.sum(w**2) / np.sum(w)))


def glmm_or(ai: Any, bi: Any, ci: Any, di: Any, *, model: str = "UM.FS", method: str = "ML",
            level: float = 0.95, nagq: int = 7, study: Any = None) -> GlmmResult:
    """Pool odds ratios with metafor's ``rma.glmm(measure="OR")`` models (UM.FS or CM.EL).

    Parameters
    ----------
    ai, bi, ci, di : array_like
        Events and non-events in the treatment (a, b) and control (c, d) arms, one entry per
        study. Studies with no events or only events in both arms are dropped
        (metafor's ``drop00 = TRUE``).
    model : {"UM.FS", "CM.EL"}
        Unconditional binomial-normal model with fixed study effects, or the conditional
        model with the exact (non-central hypergeometric) likelihood; see the module notes.
    method : {"ML", "EE", "FE"}
        Maximum likelihood for tau², or tau² = 0 (equal effects; "FE" is metafor's alias).
    level : float
        Confidence level of the Wald interval.
    nagq : int
        Gauss-Hermite points of UM.FS (metafor's ``nAGQ``, default 7).
    study : sequence of str, optional
        Study labels (defaults to "1", "2", ...).

    Returns
    -------
    GlmmResult
        Log odds ratio with its SE, z test and CI, tau², the heterogeneity tests and the
        fit statistics, metafor's ``rma.glmm`` fields.

    Notes
    -----
    Checked against metafor 3.8-1 (with lme4 1.1-31, BiasedUrn 2.0.9) on dat.bcg,
    dat.nielweise2007 and dat.collins1985b: to 1e-6 for CM.EL and both EE fits; for UM.FS ML,
    lme4's optimiser stops short of the maximum on sparse data, so the log-likelihood here is
    at least metafor's and the estimates agree to 1e-4 (``tests/test_glmm.py``). CM.EL's
    ``q_wald`` and EE ``se`` use the exact information and match metafor run with
    ``control = list(hessianCtrl = list(r = 4))``; metafor's default (``r = 16``) numerical
    Hessian is dominated by rounding (dat.bcg ``QE.Wld``: 268.61 there, 163.0895 here; see
    the module notes).
    """
    check_choice("model", model, ("UM.FS", "CM.EL"))
    check_choice("method", method, ("ML", "EE", "FE"))
    lvl = check_level(level)
    nagq = check_positive_int("nagq", nagq)
    full = _tables(ai, bi, ci, di)
    k_all = full.ai.size
    labels = (tuple(str(s) for s in study) if study is not None
              else tuple(str(i + 1) for i in range(k_all)))
    if len(labels) != k_all:
        raise ValueError(f"argument 'study' has {len(labels)} labels for {k_all} studies")
    keep = informative_tables(full.ai, full.bi, full.ci, full.di)
    t = _Tables(full.ai[keep], full.bi[keep], full.ci[keep], full.di[keep])
    k = int(keep.sum())
    if k < MIN_INFORMATIVE[method]:
        raise ValueError(f"{k} informative studies (after dropping double-zero tables) are "
                         f"too few for method {method!r}")
    random = method == "ML"
    se_tau2 = float("nan")
    s = _support(t)
    if model == "UM.FS":
        ll_sat, q_wald = _saturated_um(t)
        _, ll_ee, _ = _fit_um_fs(t, False, nagq) if random else (None, float("nan"), None)
        theta, ll, cov = _fit_um_fs(t, random, nagq)
        ll_marginal = ll
        if random:
            ll = _um_conditional_loglik(t, theta, nagq)
        estimate, var = float(theta[k]), float(cov[k, k])
        tau2 = float(theta[k + 1]) ** 2 if random else 0.0
        if not random:
            ll_ee = ll
        parms, k_eff = k + 1 + int(random), 2 * k
    else:
        ll_sat, q_wald = _saturated_cm(s, t)
        par, ll, cov = _fit_cm_el(s, random, _CM_NODES)
        ll_marginal = ll
        ll_ee = _fit_cm_el(s, False, _CM_NODES)[1] if random else ll
        estimate, var = float(par[0]), float(cov[0, 0])
        tau2 = float(np.exp(par[1])) if random else 0.0
        if random and cov[1, 1] >= 0:
            se_tau2 = float(np.sqrt(cov[1, 1]) * tau2)
        parms, k_eff = 1 + int(random), k
    se = float(np.sqrt(var))
    zval = estimate / se
    crit = float(stats.norm.ppf(1 - (1 - lvl) / 2))
    q_df = k - 1
    q_lrt = max(0.0, -2 * (ll_ee - ll_sat))
    q_wald = max(0.0, q_wald)
    vt = _typical_variance(t) if k > 1 else float("nan")
    aicc_n = max(k_eff, parms + 2)
    return GlmmResult(
        estimate=estimate, se=se, zval=zval, pvalue=float(2 * stats.norm.sf(abs(zval))),
        ci_low=estimate - crit * se, ci_high=estimate + crit * se, tau2=tau2, se_tau2=se_tau2,
        i2=100 * tau2 / (vt + tau2), h2=tau2 / vt + 1,
        q_wald=q_wald, q_wald_pvalue=float(stats.chi2.sf(q_wald, q_df)) if q_df > 0 else 1.0,
        q_lrt=q_lrt, q_lrt_pvalue=float(stats.chi2.sf(q_lrt, q_df)) if q_df > 0 else 1.0,
        q_df=q_df, loglik=ll, loglik_marginal=ll_marginal, deviance=-2 * (ll - ll_sat),
        aic=-2 * ll + 2 * parms,
        bic=-2 * ll + parms * np.log(k_eff),
        aicc=-2 * ll + 2 * parms * aicc_n / (aicc_n - parms - 1),
        k=k, k_all=k_all, model=model, method="EE" if method == "FE" else method, level=lvl,
        measure="OR", nagq=nagq, dropped=tuple(lb for lb, kp in zip(labels, keep, strict=True)
                                               if not kp),
        ai=full.ai, bi=full.bi, ci=full.ci, di=full.di, study=labels)
