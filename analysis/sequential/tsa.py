r"""Trial sequential analysis (TSA) of a cumulative meta-analysis.

Trials enter in the given order; after each, the cumulative Z statistic of the pooled model
of the engine (:func:`analysis.cumulative`; DerSimonian-Laird random effects by default, as
the Copenhagen TSA software; ``ci="hksj"`` gives RTSA's default ``DL_HKSJ``) is compared with
Lan-DeMets monitoring boundaries placed at the accrued information (participants) as a
fraction of the required information size (RIS; :mod:`analysis.sequential.information`),
heterogeneity-corrected by the diversity :math:`D^2 = 1 - V_F/V_R` of the final
meta-analysis (or :math:`I^2`).

The procedure follows ``RTSA::RTSA(type = "analysis")`` (RTSA 0.2.2): the RIS is inflated by
the factor R of a group-sequential design with looks at the trials' information fractions
(:func:`~analysis.sequential.boundaries.design_inflation`, or the futility design of
:func:`~analysis.sequential.boundaries.futility_boundaries`); boundaries are computed at
:math:`N_k / (R \cdot RIS)` with a last planned look at the inflated RIS; a trial adding
less than ``min_increment`` (1%) of the RIS is not a look; the TSA-adjusted interval at a
look is :math:`\hat\mu \pm u_k \, SE`. Checked against the RTSA fixture
(``tests/reference/tsa_rtsa.json``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis._checks import check_choice
from analysis._inputs import name_rows, omit_missing
from analysis.results import TrialSequentialResult
from analysis.sequential.boundaries import (
    SPENDING_FUNCTIONS,
    _alpha_bounds,
    _beta_bounds,
    alpha_boundaries,
    check_timing,
    design_inflation,
    futility_boundaries,
)
from analysis.sequential.information import (
    RIS_MEASURES,
    diversity,
    fixed_information_size,
    heterogeneity_adjusted,
    tau2_information_size,
)

__all__ = ["trial_sequential_analysis"]

_RATIO = ("RR", "OR")


def _design_root(timing: np.ndarray, alpha: float, beta: float, sides: int, spending: str,
                 futility: str, beta_spending: str) -> float:
    if futility == "none":
        b = alpha_boundaries(timing, alpha, sides, spending)
        return design_inflation(timing, b.upper, b.lower, alpha, beta, sides)
    return futility_boundaries(timing, alpha, beta, sides, spending, beta_spending,
                               futility == "binding").inflation


def _keep(tau: np.ndarray, min_increment: float) -> np.ndarray:
    return np.diff(np.concatenate([[0.0], tau])) > min_increment


def _kept_looks(looks: Any, keep: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """Map look positions in the input to positions among the trials kept (with data)."""
    positions = np.asarray(looks, dtype=int).ravel()
    inside = (positions >= 0) & (positions < keep.size)
    at_dropped = positions[inside][~keep[positions[inside]]]
    if at_dropped.size:
        raise ValueError(
            "argument 'looks' has look(s) after trial(s) "
            f"{name_rows(at_dropped, labels, keep.size)}, which are omitted for missing "
            "values; give looks at trials with data")
    new = np.cumsum(keep) - 1
    return np.where(inside, new[np.clip(positions, 0, keep.size - 1)], positions)


def trial_sequential_analysis(
    yi: Any,
    vi: Any,
    n: Any,
    *,
    measure: str,
    effect: float,
    control_rate: float | None = None,
    sd: float | None = None,
    alpha: float = 0.05,
    beta: float = 0.2,
    sides: int = 2,
    method: str = "DL",
    ci: str = "z",
    spending: str = "obf",
    futility: str = "none",
    beta_spending: str = "obf",
    heterogeneity: str = "D2",
    d2: float | None = None,
    i2: float | None = None,
    information_size: float | None = None,
    looks: Any = None,
    min_increment: float = 0.01,
    study: Any = None,
) -> TrialSequentialResult:
    """Trial sequential analysis: cumulative Z-curve against alpha- and beta-spending boundaries.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes (log scale for RR/OR) and sampling variances, in trial order.
    n : array_like
        Participants per trial (both groups).
    measure : {"RR", "OR", "RD", "MD"}
        Effect measure of ``yi`` and of the anticipated ``effect``.
    effect : float
        Anticipated effect on the natural scale (ratio for RR/OR) defining the RIS and the
        direction called benefit.
    control_rate, sd : float, optional
        Control event proportion (binary) or SD (MD) for the RIS.
    alpha, beta, sides : float, float, int
        Type I error (total over the sides), type II error, one- or two-sided monitoring.
    method : str
        Pooling model of :func:`analysis.pool` (``"DL"`` default, ``"FE"`` fixed effect).
    ci : {"z", "hksj"}
        Standard error of the pooled estimate (``"hksj"`` as RTSA's ``DL_HKSJ``).
    spending, beta_spending : {"obf", "pocock"}
        Alpha- and beta-spending functions.
    futility : {"none", "non-binding", "binding"}
        Beta-spending futility boundaries (inner wedge); ``"binding"`` lowers the alpha
        boundaries for the paths the futility region stops (``futility_boundaries``).
    heterogeneity : {"D2", "I2", "tau2", "none"}
        Correction of the RIS (ignored for ``method="FE"``). ``"tau2"`` (RTSA's default
        ``random_adj``): the participants so far plus those of the fewest new trials that,
        with the final meta-analysis' tau² and information :math:`1/SE^2`, reach the power
        (:func:`~analysis.sequential.information.tau2_information_size`); needs the RIS
        inputs, not ``information_size``.
    d2, i2 : float, optional
        Proportions to use instead of those of the final meta-analysis.
    information_size : float, optional
        A RIS (participants) given directly instead of computed (before the sequential
        inflation).
    looks : array_like of int, optional
        0-based positions of the trials after which the data are analysed (default: all).
    min_increment : float
        A look adding less than this fraction of the RIS is skipped (1%, as RTSA).
    study : array_like of str, optional
        Trial labels.

    Returns
    -------
    TrialSequentialResult
    """
    check_choice("measure", measure, RIS_MEASURES)
    check_choice("spending", spending, SPENDING_FUNCTIONS)
    check_choice("beta_spending", beta_spending, SPENDING_FUNCTIONS)
    check_choice("futility", futility, ("none", "non-binding", "binding"))
    check_choice("heterogeneity", heterogeneity, ("D2", "I2", "tau2", "none"))
    check_choice("ci", ci, ("z", "hksj"))
    if heterogeneity == "tau2" and information_size is not None:
        raise ValueError("heterogeneity='tau2' computes the RIS from 'effect' and "
                         "'control_rate'/'sd'; do not give 'information_size'")
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    size = np.asarray(n, dtype=float).ravel()
    if not (y.size == v.size == size.size) or y.size == 0:
        raise ValueError(f"'yi', 'vi' and 'n' must have the same non-zero length, got "
                         f"{y.size}, {v.size} and {size.size}")
    if not 0 <= float(min_increment) < 1:
        raise ValueError(f"argument 'min_increment' = {min_increment!r} must be in [0, 1)")
    labels = (tuple(str(s) for s in study) if study is not None
              else tuple(f"Trial {i + 1}" for i in range(y.size)))
    if len(labels) != y.size:
        raise ValueError(f"argument 'study' has {len(labels)} labels for {y.size} trials")
    keep = omit_missing(~(np.isnan(y) | np.isnan(v) | np.isnan(size)), labels,
                        values="yi, vi or n", analysis="the trial sequential analysis")
    if looks is not None:
        looks = _kept_looks(looks, keep, labels)
    y, v, size = y[keep], v[keep], size[keep]
    labels = tuple(label for label, kept in zip(labels, keep, strict=True) if kept)
    if y.size == 0:
        raise ValueError("no trial has 'yi', 'vi' and 'n' available (k = 0)")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError("'yi' must be finite and 'vi' finite and positive for every trial")
    if not (np.all(np.isfinite(size)) and np.all(size > 0)):
        raise ValueError(f"argument 'n' = {size.tolist()!r} must be positive participant counts")

    from analysis.sensitivity import cumulative

    fits = cumulative(y, v, method=method, ci=ci)
    fixed = cumulative(y, v, method="FE", ci=ci)
    random = method != "FE"
    d2_obs = (diversity(float(fixed.se[-1]) ** 2, float(fits.se[-1]) ** 2)
              if random and y.size > 1 else 0.0)
    i2_obs = float(fits.i2[-1]) / 100.0 if random and np.isfinite(fits.i2[-1]) else 0.0
    d2_used = d2_obs if d2 is None else float(d2)
    i2_used = i2_obs if i2 is None else float(i2)

    if information_size is None:
        nf = float(np.ceil(fixed_information_size(
            measure, effect, control_rate=control_rate, sd=sd, alpha=alpha, beta=beta,
            sides=sides) - 1e-9))
    else:
        nf = float(information_size)
        if not (np.isfinite(nf) and nf > 0):
            raise ValueError(f"argument 'information_size' = {information_size!r} must be > 0")
    if not random or heterogeneity == "none" or float(fits.tau2[-1]) == 0.0:
        ris = nf
    elif heterogeneity == "tau2":
        extra = tau2_information_size(
            measure, effect, float(fits.tau2[-1]), control_rate=control_rate, sd=sd,
            alpha=alpha, beta=beta, sides=sides, information=1.0 / float(fits.se[-1]) ** 2)[2]
        ris = float(np.sum(size) + extra)
    elif heterogeneity == "D2":
        ris = float(np.ceil(heterogeneity_adjusted(nf, d2=d2_used) - 1e-9))
    else:
        ris = float(np.ceil(heterogeneity_adjusted(nf, i2=i2_used) - 1e-9))

    cum_n = np.cumsum(size)
    tau = cum_n / ris
    positions = np.arange(y.size) if looks is None else np.asarray(looks, dtype=int).ravel()
    if positions.size == 0 or np.any(positions < 0) or np.any(positions >= y.size):
        raise ValueError(f"argument 'looks' = {positions.tolist()!r} must be 0-based trial "
                         f"positions below {y.size}")
    check_timing(positions + 1, "looks")
    design_tau = tau[positions][_keep(tau[positions], min_increment)]
    if design_tau.max() > 1:
        design_tau = design_tau / design_tau.max()
    elif design_tau.max() < 1:
        design_tau = np.concatenate([design_tau, [1.0]])
    root = _design_root(design_tau, alpha, beta, sides, spending, futility, beta_spending)

    # looks of the analysis: trials below the inflated RIS, then the inflated RIS itself
    cand = positions[tau[positions] < root]
    times = np.concatenate([tau[cand], [root]])
    keep = _keep(times, min_increment)
    look_pos = np.concatenate([cand, [-1]])[keep]
    times = times[keep]
    upper, spent = _alpha_bounds(times, alpha, sides, spending, times / root)
    fut = np.full(times.size, np.nan)
    beta_spent = np.zeros(times.size)
    if futility != "none":
        from scipy import stats

        drift = float(stats.norm.isf(alpha / sides) + stats.norm.isf(beta))
        rule = (alpha, sides, spending) if futility == "binding" else None
        raw, beta_spent, upper = _beta_bounds(times, times / root, upper, drift, beta,
                                              beta_spending, 0, rule)
        raw[-1] = min(raw[-1], upper[-1])
        fut = np.where(raw < 0, np.nan, raw)

    k = y.size
    row_upper = np.full(k, np.nan)
    row_fut = np.full(k, np.nan)
    for j, pos in enumerate(look_pos):
        if pos >= 0:
            row_upper[pos] = upper[j]
            row_fut[pos] = fut[j]
    row_lower = -row_upper if sides == 2 else np.where(np.isnan(row_upper), np.nan, -np.inf)
    est, se, z = np.asarray(fits.estimate), np.asarray(fits.se), np.asarray(fits.zval)
    with np.errstate(invalid="ignore"):
        adj_low = est - row_upper * se
        adj_high = est + row_upper * se

    sign = np.sign(np.log(effect)) if measure in _RATIO else np.sign(effect)
    verdict, at = "insufficient", -1
    for pos in range(k):
        if np.isnan(row_upper[pos]):
            continue
        directed = z[pos] * sign
        if directed >= row_upper[pos]:
            verdict, at = "benefit", pos
            break
        if sides == 2 and directed <= -row_upper[pos]:
            verdict, at = "harm", pos
            break
        f = row_fut[pos]
        if np.isfinite(f) and ((sides == 2 and abs(z[pos]) < f) or (sides == 1 and directed < f)):
            verdict, at = "futility", pos
            break
    if verdict == "insufficient" and cum_n[-1] >= root * ris:
        verdict = "reached"
    last = int(np.max(np.where(~np.isnan(row_upper))[0])) if np.any(~np.isnan(row_upper)) else -1
    final_bound = row_upper[last] if last >= 0 else np.nan

    return TrialSequentialResult(
        study=labels, n=size, cumulative_n=cum_n, estimate=est, se=se, zval=z,
        upper=row_upper, lower=row_lower, futility=row_fut, adjusted_ci_low=adj_low,
        adjusted_ci_high=adj_high, look_fraction=times / root, look_upper=upper,
        look_futility=fut, look_trial=look_pos, alpha_spent=spent, beta_spent=beta_spent,
        fixed_information_size=nf, information_size=ris, sequential_information_size=root * ris,
        inflation=root, d2=d2_used, i2=i2_used, tau2=float(fits.tau2[-1]),
        final_ci_low=float(est[-1] - final_bound * se[-1]),
        final_ci_high=float(est[-1] + final_bound * se[-1]),
        conclusion=verdict, conclusion_trial=at, measure=measure, effect=float(effect),
        alpha=float(alpha), beta=float(beta), sides=int(sides), method=method, ci_method=ci,
        spending=spending, futility_spending=beta_spending if futility != "none" else None,
        heterogeneity=heterogeneity if random else "none")
