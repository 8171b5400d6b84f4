"""Fit the Bayesian random-effects model: :func:`bayesmeta`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from analysis._checks import check_level
from analysis._inputs import (
    check_data,
    column,
    frame_measure,
    omit_missing,
    resolve_variances,
    study_labels,
    yi_vi,
)
from analysis.bayesian.posterior import (
    _LOG2PI,
    NormalMixtures,
    TauPosterior,
    conditional_moments,
    direct_grid,
    log_likelihood_tau,
)
from analysis.bayesian.priors import MuPrior, TauPrior, half_normal, mu_flat
from analysis.bayesian.result import BayesFactors, BayesMetaResult, PosteriorSummary

__all__ = ["bayesmeta", "tau_interval"]


def _moment_exists(alpha: float, beta: float, r: int) -> bool:
    """Whether ``∫ tau^r tau^-alpha (log tau)^-beta`` converges at infinity."""
    return alpha > r + 1 or (alpha == r + 1 and beta > 1)


def tau_interval(post: TauPosterior, level: float, method: str) -> tuple[float, float]:
    """Central or shortest posterior interval of ``tau``.

    The shortest interval is ``[0, q(level)]`` when the density at the lower bound is at least
    that at ``q(level)`` (a density decreasing from 0), otherwise the ``[a, b]`` with equal
    density and probability ``level``.
    """
    if method == "central":
        q = post.quantile(np.array([(1 - level) / 2, (1 + level) / 2]))
        return float(q[0]), float(q[1])
    lower = post.tau_prior.lower

    def right(a: float) -> float:
        return float(post.quantile(np.array([float(post.cdf(np.array([a]))[0]) + level]))[0])

    b0 = right(lower)
    if post.logpdf(np.array([lower]))[0] >= post.logpdf(np.array([b0]))[0]:
        return lower, b0
    hi = float(post.quantile(np.array([1.0 - level]))[0])

    def gap(a: float) -> float:  # log f(a) - log f(b(a)), increasing in a for a unimodal f
        b = right(a)
        if not math.isfinite(b):
            return 1e10
        g = float(post.logpdf(np.array([a]))[0] - post.logpdf(np.array([b]))[0])
        return g if math.isfinite(g) else -1e10

    a = optimize.brentq(gap, lower, hi, xtol=1e-14, rtol=1e-13)
    return a, right(a)


def _summary(
    mode: float,
    median: float,
    mean: float,
    sd: float,
    short: tuple[float, float],
    central: tuple[float, float],
) -> PosteriorSummary:
    return PosteriorSummary(
        float(mode),
        float(median),
        float(mean),
        float(sd),
        float(short[0]),
        float(short[1]),
        float(central[0]),
        float(central[1]),
    )


def _log_integral(logf: np.ndarray, w: np.ndarray) -> float:
    m = float(np.max(logf))
    return m + math.log(float(np.dot(np.exp(logf - m), w)))


def _bayes_factors(post: TauPosterior, mean_mu: float, sd_mu: float) -> tuple[float, BayesFactors]:
    y, s2, tp, mp = post.y, post.s2, post.tau_prior, post.mu_prior
    nan = float("nan")
    ml = bf_tau = bf_mu = min_tau = min_mu = nan
    log_prior_nodes = tp.logpdf(post.nodes, s2)
    ok = np.isfinite(log_prior_nodes)

    # log p(y | tau, mu) at every node is quadratic in mu: with a_j = sum_i 1/v_ij,
    # m_j = sum_i y_i/v_ij / a_j and q_j = sum_i (y_i - m_j)^2/v_ij (v_ij = tau_j^2 + s2_i),
    # sum_i (y_i - mu)^2/v_ij = q_j + a_j (mu - m_j)^2, so each evaluation costs O(nodes).
    t2 = post.nodes[ok][:, None] ** 2
    wv = 1.0 / (t2 + s2[None, :])
    a_j = wv.sum(axis=1)
    m_j = (wv @ y) / a_j
    c_j = (
        -0.5
        * (
            y.size * _LOG2PI
            + np.log(t2 + s2[None, :]).sum(axis=1)
            + (wv * (y[None, :] - m_j[:, None]) ** 2).sum(axis=1)
        )
        + log_prior_nodes[ok]
        + np.log(post.qweights[ok])
    )

    def log_lik_mu(mu: float) -> float:  # log ∫ p(y | tau, mu) p(tau) dtau
        lj = c_j - 0.5 * a_j * (mu - m_j) ** 2
        mx = float(np.max(lj))
        return mx + math.log(float(np.sum(np.exp(lj - mx))))

    if tp.proper:
        span = 10.0 * sd_mu + 1e-12
        res = optimize.minimize_scalar(
            lambda m: -log_lik_mu(m),
            bracket=(mean_mu - sd_mu, mean_mu + sd_mu),
            options={"xtol": 1e-10},
        )
        if not res.success or abs(res.x - mean_mu) > span:
            res = optimize.minimize_scalar(
                lambda m: -log_lik_mu(m),
                bounds=(mean_mu - span, mean_mu + span),
                method="bounded",
                options={"xatol": 1e-10 * (1 + abs(mean_mu))},
            )
        min_mu = math.exp(log_lik_mu(0.0) + res.fun)
    if mp.proper:
        ll0 = float(log_likelihood_tau(np.array([0.0]), y, s2, mp)[0])
        llt = log_likelihood_tau(post.nodes, y, s2, mp)
        j = int(np.argmax(llt))
        lo = 0.0 if j == 0 else post.nodes[j - 1]
        hi = post.nodes[min(j + 1, post.nodes.size - 1)]
        res = optimize.minimize_scalar(
            lambda t: -float(log_likelihood_tau(np.array([t]), y, s2, mp)[0]),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-12 * max(hi, 1e-300)},
        )
        llmax = max(ll0, -float(res.fun))
        min_tau = math.exp(ll0 - llmax)
        if tp.proper:
            ml = math.exp(post.log_evidence)
            bf_tau = math.exp(ll0 - post.log_evidence)
            bf_mu = math.exp(log_lik_mu(0.0) - post.log_evidence)
    return ml, BayesFactors(bf_tau, bf_mu, min_tau, min_mu)


def bayesmeta(
    yi: Any,
    vi: Any = None,
    *,
    sei: Any = None,
    tau_prior: TauPrior | None = None,
    mu_prior: MuPrior | None = None,
    level: float = 0.95,
    data: pd.DataFrame | None = None,
    study: Any = None,
    measure: str | None = None,
    delta: float = 0.01,
    epsilon: float = 1e-4,
) -> BayesMetaResult:
    r"""Bayesian random-effects meta-analysis by numerical integration (Röver's bayesmeta).

    Model :math:`y_i \sim N(\theta_i, \sigma_i^2)`, :math:`\theta_i \sim N(\mu, \tau^2)`,
    priors :math:`p(\tau)` and :math:`p(\mu)` (normal or flat). The marginal posterior of
    :math:`\tau`, :math:`p(\tau\mid y) \propto p(\tau) \int \prod_i N(y_i; \mu, \tau^2 +
    \sigma_i^2)\, p(\mu)\, d\mu`, is closed-form up to its normalising constant, which is
    integrated numerically; the posteriors of :math:`\mu`, of a new study's effect
    :math:`\theta_{new}` and of every :math:`\theta_i` are normal mixtures over :math:`\tau`,
    discretised by the DIRECT algorithm (divergence ``delta`` between neighbouring
    conditionals, up to the ``1 - epsilon`` quantile of :math:`\tau`). No MCMC.

    Parameters
    ----------
    yi, vi : array_like or str
        Estimates and sampling variances (or a yi/vi frame, or column names of ``data``).
    sei : array_like or str, optional
        Standard errors instead of ``vi``.
    tau_prior : TauPrior, optional
        From :mod:`analysis.bayesian.priors` (``half_normal(0.5)``, ``half_cauchy``,
        ``half_student_t``, ``uniform``, ``improper_uniform``, ``jeffreys``, ``log_normal``,
        ``turner_prior``, ``rhodes_prior``). Default half-normal(0.5), a common weakly
        informative choice for log odds ratios (Friede et al. 2017).
    mu_prior : MuPrior, optional
        ``mu_normal(mean, sd)`` or ``mu_flat()`` (default).
    level : float
        Probability of the intervals.
    data, study, measure
        As in :func:`analysis.pool`.
    delta, epsilon : float
        DIRECT settings (bayesmeta's defaults 0.01 and 1e-4).

    Returns
    -------
    BayesMetaResult

    Warns
    -----
    AnalysisWarning
        Studies with a missing ``yi`` or ``vi`` are left out (as :func:`analysis.pool`; R's
        bayesmeta stops instead); the warning names them.

    Raises
    ------
    ValueError
        Invalid data or arguments, or an improper posterior: an improper prior for tau whose
        posterior density does not decay fast enough (improper uniform with k < 3 under a flat
        prior for mu or k < 2 under a normal one; Jeffreys with k < 2 / k < 1).

    Notes
    -----
    Checked against bayesmeta 3.4 (``bayesmeta()``, ``$summary``, ``$theta``,
    ``$dposterior``, ``$pposterior``, ``$qposterior``, ``$post.interval``,
    ``$marginal.likelihood``, ``$bayesfactor``) on CrinsEtAl2014, HinksEtAl2010, Peto1980,
    dat.bcg and Rubin1981 with eight to nine tau priors and two mu priors
    (tests/test_bayes.py), and against brute-force quadrature. Posterior moments that do not
    exist (heavy tails of the tau posterior) are reported as ``inf``; bayesmeta reports
    ``NA`` for tau's and the moments of its truncated grid for mu's.

    References
    ----------
    Röver C (2020). Bayesian random-effects meta-analysis using the bayesmeta R package.
    J Stat Softw 93(6). Röver C, Friede T (2017). Discrete approximation of a mixture
    distribution via restricted divergence. J Comput Graph Stat 26(1):217-222.
    """
    data = check_data(data)
    lev = check_level(level)
    yv = column("yi", yi, data)
    y, v = yi_vi(yv, resolve_variances(vi, sei, data))
    if y.size < 1:
        raise ValueError("argument 'yi' is empty; give at least one study")
    all_labels = study_labels(yi, study, y.size, data)
    keep = omit_missing(np.isfinite(y) & np.isfinite(v), all_labels, values="yi or vi",
                        analysis="the Bayesian meta-analysis")
    if not keep.any():
        raise ValueError("no study has both 'yi' and 'vi' available (k = 0)")
    y, v = y[keep], v[keep]
    labels = tuple(label for label, kept in zip(all_labels, keep, strict=True) if kept)
    if np.any(v <= 0):
        raise ValueError(
            f"argument 'vi' has value(s) <= 0 ({v[v <= 0][:5].tolist()}); "
            "sampling variances must be > 0"
        )
    for name, val in (("delta", delta), ("epsilon", epsilon)):
        if not (isinstance(val, int | float) and 0 < float(val) < 1):
            raise ValueError(f"argument {name!r} = {val!r} is not allowed; use 0 < {name} < 1")
    tp = half_normal(0.5) if tau_prior is None else tau_prior
    mp = mu_flat() if mu_prior is None else mu_prior
    if not isinstance(tp, TauPrior):
        raise ValueError(
            f"argument 'tau_prior' = {tp!r} is not a TauPrior; use a function of "
            "analysis.bayesian.priors, e.g. half_normal(0.5)"
        )
    if not isinstance(mp, MuPrior):
        raise ValueError(
            f"argument 'mu_prior' = {mp!r} is not a MuPrior; use mu_normal(mean, sd) or mu_flat()"
        )
    k = y.size
    alpha = tp.tail_alpha + (k if mp.proper else k - 1)
    beta = tp.tail_beta
    if not tp.proper and not _moment_exists(alpha, beta, 0):
        need = 2 if mp.proper else 3
        need = need - int(tp.tail_alpha)
        raise ValueError(
            f"the posterior is improper: the {tp.name} prior for tau with k = {k} studies and a "
            f"{mp.name} prior for mu gives a tau posterior decaying like tau^-{alpha:g}, which "
            f"does not integrate; use a proper prior for tau, or at least {need} studies"
            + ("" if mp.proper else " (or a normal prior for mu)")
        )
    s2 = v
    post = TauPosterior(y, s2, tp, mp)
    nodes = post.nodes

    # tau
    t_mean = post.expect(nodes) if _moment_exists(alpha, beta, 1) else math.inf
    t_sd = (
        math.sqrt(max(post.expect((nodes - t_mean) ** 2), 0.0))
        if _moment_exists(alpha, beta, 2)
        else math.inf
    )
    tau_sum = _summary(
        post.mode(),
        post.quantile(np.array([0.5]))[0],
        t_mean,
        t_sd,
        tau_interval(post, lev, "shortest"),
        tau_interval(post, lev, "central"),
    )

    # DIRECT mixtures: rows mu, theta_new, theta_1..k
    grid, weights = direct_grid(post, delta, epsilon)
    m, s, sp, mi, si = conditional_moments(grid, y, s2, mp)
    means = np.vstack([m, m, mi.T])
    sds = np.vstack([s, sp, si.T])
    mix = NormalMixtures(weights, means, sds)
    medians, cen_lo, cen_hi, q10, q90 = mix.quantiles(
        np.array([0.5, (1 - lev) / 2, (1 + lev) / 2, 0.1, 0.9])
    )
    short_lo, short_hi = mix.shortest(lev, (cen_lo, cen_hi))
    modes = mix.mode((q10, q90))
    mmean = mix.mean()
    msd = mix.sd()
    var_ok = _moment_exists(alpha, beta, 2)
    if not var_ok:
        msd[:2] = math.inf
    mu_sum = _summary(
        modes[0], medians[0], mmean[0], msd[0], (short_lo[0], short_hi[0]), (cen_lo[0], cen_hi[0])
    )
    new_sum = _summary(
        modes[1], medians[1], mmean[1], msd[1], (short_lo[1], short_hi[1]), (cen_lo[1], cen_hi[1])
    )
    shrink = pd.DataFrame(
        {
            "study": list(labels),
            "yi": y,
            "sei": np.sqrt(v),
            "mode": modes[2:],
            "median": medians[2:],
            "mean": mmean[2:],
            "sd": msd[2:],
            "ci_low": short_lo[2:],
            "ci_high": short_hi[2:],
            "central_low": cen_lo[2:],
            "central_high": cen_hi[2:],
        }
    )
    ml, bf = _bayes_factors(post, float(mmean[0]), float(mix.sd()[0]))
    return BayesMetaResult(
        yi=y,
        sei=np.sqrt(v),
        study=labels,
        measure=frame_measure(measure, yi, data),
        level=lev,
        tau_prior=tp,
        mu_prior=mp,
        tau=tau_sum,
        mu=mu_sum,
        theta_new=new_sum,
        shrinkage=shrink,
        marginal_likelihood=ml,
        bayes_factor=bf,
        direct_tau=grid,
        direct_weights=weights,
        _tau_post=post,
        _mixtures=mix,
    )
