"""Bayesian random-effects meta-analysis (:func:`analysis.bayesmeta`) against bayesmeta 3.4.

Reference: ``tests/reference/bayesmeta/bayesmeta.json``, copied from
``/work/shared/reference/r_fixtures/`` with the scripts that wrote it
(``Rscript bayesmeta_public.R bayesmeta.json``, sourcing ``bayesmeta_lib.R`` and ``common.R``;
bayesmeta 3.4, metafor 3.8-1, R 4.2.2). Each case is the R call in its ``call`` field,
``bayesmeta(y = y, sigma = sigma, labels = labels, tau.prior = <prior>[, mu.prior.mean = 0,
mu.prior.sd = 4 (50 for Rubin1981)])``, on CrinsEtAl2014, HinksEtAl2010, Peto1980, dat.bcg
and Rubin1981 (82 cases), with ``$summary``, ``$theta``, ``$dposterior``, ``$pposterior``,
``$qposterior``, ``$post.interval``, ``$I2``, ``$marginal.likelihood`` and ``$bayesfactor``.

Tolerances (relative, floor 1e-3 on the scale of the value):

- ``TIGHT = 1e-5``: tau density, cdf, quantiles, mean, sd, central intervals (both exact to
  ~1e-9 here); mu / theta_new / theta_i density, cdf, quantiles, mean, sd, median, central
  intervals: we build bayesmeta's DIRECT grid (same delta, epsilon, divergences), agreement
  ~1e-7; I², marginal likelihood, Bayes factors.
- Modes and shortest intervals: bayesmeta finds them with ``optimize()`` at its default
  tolerance ``.Machine$double.eps^0.25`` (1.2e-4 in the argument; a shortest interval's width
  is flat in its left end, so endpoints move more). We solve the optimality conditions to
  ~1e-12, so we check instead that bayesmeta's value is no better than ours (its interval is
  no shorter, and has the same probability under our posterior) and agree to ``OPTIM = 5e-3``.
- Where bayesmeta's shrinkage mode sits at the bound of its search interval
  ``[q_mu(0.1), q_mu(0.9)]`` (the quantiles of *mu*, not of theta_i; R/bayesmeta.R), it is not
  the mode; we check our mode is a local maximum of the density there.
- Moments that do not exist (tau posterior tails ~ tau^-alpha with alpha <= r + 1): we give
  ``inf``; bayesmeta gives NA for tau, and for mu/theta_new the sd of its grid truncated at the
  99.99% quantile of tau; those entries are compared for being infinite only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats

import analysis as ma
from analysis.bayesian import (
    half_cauchy,
    half_normal,
    half_student_t,
    improper_uniform,
    jeffreys,
    log_normal,
    mu_flat,
    mu_normal,
    rhodes_prior,
    turner_prior,
    uniform,
)

FIXTURE = json.loads(
    (Path(__file__).parent / "reference" / "bayesmeta" / "bayesmeta.json").read_text()
)
TIGHT = 1e-5
OPTIM = 5e-3

PRIORS = {
    "halfnormal_0.5": half_normal(0.5),
    "halfnormal_1": half_normal(1.0),
    "halfcauchy_0.5": half_cauchy(0.5),
    "halfcauchy_1": half_cauchy(1.0),
    "uniform_0_2": uniform(0.0, 2.0),
    "jeffreys": jeffreys(),
    "improper_uniform": improper_uniform(),
    "turner_allcause_pharma_vs_placebo": turner_prior(
        "all-cause mortality", "pharmacological", "placebo / control"
    ),
    "halfnormal_10": half_normal(10.0),
    "halfcauchy_10": half_cauchy(10.0),
}
CASES = FIXTURE["cases"]


def _fit(case: dict) -> ma.BayesMetaResult:
    ds = FIXTURE["datasets"][case["dataset"]]
    mp = case["mu_prior"]
    mu_prior = mu_flat() if isinstance(mp, str) else mu_normal(mp["mean"], mp["sd"])
    return ma.bayesmeta(
        np.array(ds["y"]),
        sei=np.array(ds["sigma"]),
        study=ds["labels"],
        tau_prior=PRIORS[case["prior"]],
        mu_prior=mu_prior,
    )


def _num(x: object) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in np.atleast_1d(x)])


def _close(ours: object, ref: object, tol: float, what: str, floor: float = 1e-3) -> None:
    a, b = np.atleast_1d(np.asarray(ours, dtype=float)), _num(ref)
    ok = np.isfinite(b)
    err = np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), floor)
    assert np.all(err <= tol), (
        f"{what}: ours {a[ok]}, bayesmeta {b[ok]}, rel. error {err.max():.2e}"
    )


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_agrees_with_bayesmeta(case: dict) -> None:
    res = _fit(case)
    for par, key in (("tau", "tau"), ("mu", "mu"), ("theta_new", "predictive_theta")):
        s, ref = getattr(res, par), case[key]
        for field in ("median", "mean", "sd"):
            if ref[field] is None or not math.isfinite(getattr(s, field)):
                # a moment that does not exist: bayesmeta NA (tau) or its truncated grid's sd
                assert not math.isfinite(getattr(s, field)) or par != "tau", (par, field)
                continue
            _close(getattr(s, field), ref[field], TIGHT, f"{par} {field}")
        _close([s.central_low, s.central_high], ref["ci95_central"], TIGHT, f"{par} central")
        _close(
            res.quantile(par, ref["quantiles"]["p"]),
            ref["quantiles"]["q"],
            TIGHT,
            f"{par} quantiles",
        )
        if "density" in ref:
            _close(res.pdf(par, ref["density"]["at"]), ref["density"]["value"], TIGHT, f"{par} pdf")
            _close(res.cdf(par, ref["cdf"]["at"]), ref["cdf"]["value"], TIGHT, f"{par} cdf")
        # optimiser-based quantities: ours at least as good, and close
        scale = s.sd if math.isfinite(s.sd) else s.ci_high - s.ci_low  # optimiser scale
        _close(s.mode, ref["mode"], OPTIM, f"{par} mode", scale)
        lo, hi = ref["ci95_shortest"]
        _close([s.ci_low, s.ci_high], [lo, hi], OPTIM, f"{par} shortest", scale)
        assert s.ci_high - s.ci_low <= hi - lo + 1e-9
        p_ref = res.cdf(par, [hi])[0] - (res.cdf(par, [lo])[0] if lo > 0 or par != "tau" else 0)
        assert p_ref == pytest.approx(0.95, abs=1e-6)
    sh, ref = res.shrinkage, case["shrinkage"]
    for ours, theirs in (
        ("median", "median"),
        ("mean", "mean"),
        ("sd", "sd"),
        ("central_low", "ci95_central_lower"),
        ("central_high", "ci95_central_upper"),
    ):
        _close(sh[ours], ref[theirs], TIGHT, f"theta_i {ours}")
    for i in range(res.k):
        _close(
            sh["ci_low"][i], ref["ci95_shortest_lower"][i], OPTIM, "theta_i shortest", sh["sd"][i]
        )
        _close(
            sh["ci_high"][i], ref["ci95_shortest_upper"][i], OPTIM, "theta_i shortest", sh["sd"][i]
        )
    assert np.all(
        sh["ci_high"] - sh["ci_low"]
        <= np.array(ref["ci95_shortest_upper"]) - np.array(ref["ci95_shortest_lower"]) + 1e-9
    )
    bounds = res.quantile("mu", [0.1, 0.9])
    for i, mode in enumerate(ref["mode"]):
        if min(abs(mode - bounds[0]), abs(mode - bounds[1])) < 1e-3:  # bayesmeta at its bound
            ours = sh["mode"][i]
            d = res.pdf("theta", [ours - 1e-4, ours, ours + 1e-4], study=i)
            assert d[1] >= d[0] and d[1] >= d[2]
        else:
            _close(sh["mode"][i], mode, OPTIM, f"theta_{i} mode", sh["sd"][i])
    at = case["tau"]["I2_at_points"]
    _close(res.i2(np.array(at["at"])) / 100, at["value"], TIGHT, "I2")
    if case["marginal_likelihood"] is None:
        assert math.isnan(res.marginal_likelihood)
    else:
        _close(res.marginal_likelihood, case["marginal_likelihood"], TIGHT, "marginal likelihood")
    bf = case["bayesfactor"]["values"]
    b = res.bayes_factor
    for ours, theirs, name in (
        (b.tau0, bf[0][0], "tau0"),
        (b.mu0, bf[0][1], "mu0"),
        (b.tau0_minimum, bf[1][0], "tau0 min"),
        (b.mu0_minimum, bf[1][1], "mu0 min"),
    ):
        assert math.isnan(ours) == (theirs is None), name
        if theirs is not None:
            _close(ours, theirs, TIGHT, f"Bayes factor {name}")


# --- brute-force quadrature ----------------------------------------------------------------


def _brute(y: np.ndarray, s: np.ndarray, prior: object, mu_prior: object) -> dict:
    """Marginal posteriors of tau and mu by 2-D scipy quadrature of the joint posterior."""

    def joint(mu: float, t: float) -> float:
        v = t * t + s * s
        lp = prior.logpdf(np.array([t]), s**2)[0] + float(mu_prior.logpdf(np.array([mu]))[0])
        return math.exp(lp - 0.5 * np.sum(np.log(2 * np.pi * v) + (y - mu) ** 2 / v))

    span = 30 * (s.max() + np.ptp(y) + 1)
    c = float(np.mean(y))
    tau_hi = prior.upper if math.isfinite(prior.upper) else np.inf

    def tau_marg(t: float) -> float:
        return integrate.quad(
            lambda m: joint(m, t), c - span, c + span, epsabs=0, epsrel=1e-11, limit=200
        )[0]

    z = integrate.quad(tau_marg, prior.lower, tau_hi, epsabs=0, epsrel=1e-10, limit=200)[0]

    def mu_marg(m: float) -> float:
        return (
            integrate.quad(
                lambda t: joint(m, t), prior.lower, tau_hi, epsabs=0, epsrel=1e-10, limit=200
            )[0]
            / z
        )

    return {"tau_pdf": lambda t: tau_marg(t) / z, "mu_pdf": mu_marg, "z": z}


RANDOM_SETS = [
    ("k1", [0.4], [0.3], half_normal(0.5), mu_flat()),
    ("k2", [0.1, 0.9], [0.2, 0.35], half_cauchy(0.5), mu_normal(0.0, 2.0)),
    ("tau_near_0", [0.10, 0.12, 0.09, 0.11], [0.3, 0.4, 0.35, 0.5], half_normal(1.0), mu_flat()),
    (
        "large_heterogeneity",
        [-1.5, 0.2, 1.8, 3.0, -0.4],
        [0.1, 0.15, 0.2, 0.1, 0.12],
        half_student_t(3, 1.0),
        mu_flat(),
    ),
    ("lognormal_k3", [0.3, -0.2, 0.5], [0.25, 0.3, 0.2], log_normal(-1.0, 0.8), mu_normal(0, 1)),
]


@pytest.mark.parametrize(
    ("name", "y", "s", "prior", "mu_prior"), RANDOM_SETS, ids=[r[0] for r in RANDOM_SETS]
)
def test_matches_brute_force_quadrature(
    name: str, y: list, s: list, prior: object, mu_prior: object
) -> None:
    y_, s_ = np.array(y), np.array(s)
    bf = _brute(y_, s_, prior, mu_prior)
    res = ma.bayesmeta(y_, sei=s_, tau_prior=prior, mu_prior=mu_prior, delta=1e-4, epsilon=1e-9)
    taus = res.quantile("tau", [0.1, 0.5, 0.9])
    for t in taus:
        assert res.pdf("tau", t)[0] == pytest.approx(bf["tau_pdf"](t), rel=1e-7)
    if mu_prior.proper and prior.proper:
        assert res.marginal_likelihood == pytest.approx(bf["z"], rel=1e-7)
    for m in res.quantile("mu", [0.05, 0.5, 0.95]):
        # DIRECT with delta = 1e-4 (190 points for k = 1): the mixture density is accurate to
        # a few 1e-5 (2e-5 for k = 1 against the 1-D exact integral; 7e-4 at delta = 0.01)
        assert res.pdf("mu", m)[0] == pytest.approx(bf["mu_pdf"](m), rel=1e-4)


def test_tau_posterior_piles_up_at_zero() -> None:
    res = ma.bayesmeta(
        [0.10, 0.12, 0.09, 0.11], sei=[0.3, 0.4, 0.35, 0.5], tau_prior=half_normal(1.0)
    )
    assert res.tau.mode == 0.0 and res.tau.ci_low == 0.0
    assert res.tau.ci_high == pytest.approx(res.quantile("tau", 0.95)[0], rel=1e-12)


def test_shortest_interval_is_shortest() -> None:
    res = ma.bayesmeta([0.3, -0.2, 0.5, 1.2], sei=[0.25, 0.3, 0.2, 0.4], tau_prior=half_cauchy(0.5))
    for par in ("tau", "mu", "theta_new"):
        lo, hi = res.interval(par, 0.9)
        assert res.cdf(par, [hi])[0] - res.cdf(par, [lo])[0] == pytest.approx(0.9, abs=1e-9)
        for p0 in (0.01, 0.03, 0.07):
            a, b = res.quantile(par, [p0, p0 + 0.9])
            assert hi - lo <= b - a + 1e-12
        assert res.interval(par, 0.9, "central") == pytest.approx(
            tuple(res.quantile(par, [0.05, 0.95])), rel=1e-12
        )


def test_moments_that_do_not_exist_are_infinite() -> None:
    # improper uniform prior, flat mu, k = 3: p(tau | y) ~ tau^-2, no mean
    res = ma.bayesmeta([0.1, 0.3, -0.2], sei=[0.2, 0.3, 0.25], tau_prior=improper_uniform())
    assert res.tau.mean == math.inf and res.tau.sd == math.inf and res.mu.sd == math.inf
    assert math.isfinite(res.tau.median) and math.isfinite(res.mu.mean)


@pytest.mark.parametrize(
    ("k", "prior", "mu_prior"),
    [
        (1, improper_uniform(), mu_flat()),
        (2, improper_uniform(), mu_flat()),
        (1, improper_uniform(), mu_normal(0, 1)),
        (1, jeffreys(), mu_flat()),
    ],
)
def test_improper_posterior_is_refused(k: int, prior: object, mu_prior: object) -> None:
    # bayesmeta integrates regardless and warns "failed integrating marginal posterior (tau)"
    with pytest.raises(ValueError, match="posterior is improper"):
        ma.bayesmeta(np.linspace(0, 1, k), sei=np.full(k, 0.3), tau_prior=prior, mu_prior=mu_prior)


def test_proper_priors_normalised_and_empirical_tables() -> None:
    s2 = np.array([0.1])
    for prior in (
        half_normal(0.7),
        half_cauchy(0.3),
        half_student_t(4, 0.5),
        uniform(0.1, 2),
        log_normal(-1, 0.5),
        turner_prior(None),
        rhodes_prior(None),
    ):
        total = integrate.quad(
            lambda t, p=prior: p.pdf(np.array([t]), s2)[0], prior.lower, prior.upper, limit=400
        )[0]
        assert total == pytest.approx(1.0, rel=1e-7), prior.name
    # Turner et al. 2015 Table IV, all-cause mortality, pharmacological vs placebo:
    # tau^2 ~ LN(-3.95, 1.34^2), i.e. median tau = exp(-3.95 / 2)
    t = turner_prior("all-cause mortality", "placebo / control", "pharmacological")
    assert t.pdf(np.array([1.0]), s2)[0] == pytest.approx(
        stats.lognorm(s=0.67, scale=math.exp(-1.975)).pdf(1.0), rel=1e-12
    )
    r = rhodes_prior("mental health outcome", "pharmacological", "placebo / control")
    # Rhodes et al. 2015 Table 3: log tau^2 ~ t5(-2.99, 2.16)
    x = 0.3
    assert r.pdf(np.array([x]), s2)[0] == pytest.approx(
        stats.t(5).pdf((math.log(x) + 2.99 / 2) / 1.08) / (1.08 * x), rel=1e-12
    )
    with pytest.raises(ValueError, match="comparator"):
        turner_prior("all-cause mortality", "placebo / control", "placebo / control")


def test_result_interface() -> None:
    res = ma.bayesmeta([0.3, -0.2, 0.5], sei=[0.25, 0.3, 0.2], study=["a", "b", "c"], measure="OR")
    text = str(res)
    assert "half-normal(scale=0.5)" in text and "theta_new" in text and "OR" in text
    assert list(res.to_frame()["parameter"]) == ["tau", "mu", "theta_new"]
    assert res.pdf("theta", 0.3, study="b")[0] == res.pdf("theta", 0.3, study=1)[0]
    with pytest.raises(ValueError, match="parameter"):
        res.pdf("sigma", 0.1)
    with pytest.raises(ValueError, match="study"):
        res.pdf("theta", 0.1, study="z")
