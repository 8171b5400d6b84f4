"""Numerical building blocks of the Bayesian fit (vectorised modes, batched quantiles, Bayes
factors) against direct computation."""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize

import analysis as ma
from analysis.bayesian import half_normal, mu_normal
from analysis.bayesian.posterior import NormalMixtures


def _mixture() -> NormalMixtures:
    rng = np.random.default_rng(3)
    w = rng.uniform(0.2, 1.0, 6)
    means = rng.normal(0.0, 1.0, (4, 6))
    sds = rng.uniform(0.3, 1.0, (4, 6))
    return NormalMixtures(w / w.sum(), means, sds)


def test_batched_quantiles_equal_one_probability_at_a_time() -> None:
    mix = _mixture()
    p = np.array([0.5, 0.025, 0.975, 0.1, 0.9])
    q = mix.quantiles(p)
    assert q.shape == (5, 4)
    for i, pi in enumerate(p):
        np.testing.assert_allclose(q[i], mix.quantile(np.full(4, pi)), rtol=0, atol=1e-12)
        np.testing.assert_allclose(mix.cdf(q[i]), pi, atol=1e-12)


def test_vectorised_mode_is_the_density_maximum() -> None:
    mix = _mixture()
    modes = mix.mode()
    lo, hi = mix.quantiles(np.array([0.1, 0.9]))
    for r in range(4):
        row = NormalMixtures(mix.weights, mix.means[r : r + 1], mix.sds[r : r + 1])
        grid = np.linspace(lo[r], hi[r], 401)
        dens = np.array([row.pdf(np.array([g]))[0] for g in grid])
        best = grid[int(np.argmax(dens))]
        res = optimize.minimize_scalar(
            lambda v, row=row: -float(row.pdf(np.array([v]))[0]),
            bounds=(best - 0.05, best + 0.05),
            method="bounded",
            options={"xatol": 1e-12},
        )
        assert abs(modes[r] - res.x) < 1e-7
    # the derivative vanishes at the modes that lie inside the search interval
    inside = (modes > lo + 1e-6) & (modes < hi - 1e-6)
    assert np.all(np.abs(mix.dpdf(modes)[inside]) < 1e-9)


def test_minimum_bayes_factor_of_mu_by_quadrature() -> None:
    y = np.array([-0.6, -0.1, -0.9, 0.2, -0.4, -0.7])
    s = np.array([0.3, 0.25, 0.5, 0.4, 0.35, 0.3])
    fit = ma.bayesmeta(y, sei=s, tau_prior=half_normal(0.5), mu_prior=mu_normal(0.0, 4.0))
    prior = half_normal(0.5)

    def lik_mu(mu: float) -> float:  # ∫ p(y | tau, mu) p(tau) dtau
        def f(t: float) -> float:
            v = t * t + s * s
            return math.exp(
                prior.logpdf(np.array([t]), s**2)[0]
                - 0.5 * float(np.sum(np.log(2 * np.pi * v) + (y - mu) ** 2 / v))
            )

        return integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-12)[0]

    best = optimize.minimize_scalar(
        lambda m: -lik_mu(m), bounds=(-2, 1), method="bounded", options={"xatol": 1e-10}
    )
    assert math.isclose(fit.bayes_factor.mu0_minimum, lik_mu(0.0) / -best.fun, rel_tol=1e-7)
    assert math.isclose(fit.bayes_factor.mu0, lik_mu(0.0) / fit.marginal_likelihood, rel_tol=1e-7)
