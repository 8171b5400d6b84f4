r"""Required information size (RIS) of a meta-analysis and its heterogeneity corrections.

Fixed-effect RIS (total participants, two equal groups; Wetterslev et al. 2008):

.. math:: N_F = 4 (z_{1-\alpha/s} + z_{1-\beta})^2 \, \sigma^2 / \delta^2

with :math:`\sigma^2 = \bar p (1 - \bar p)`, :math:`\bar p = (p_C + p_E)/2` and
:math:`\delta = p_C - p_E` for binary outcomes (:math:`p_E = p_C \cdot RR`, or the odds
:math:`p_C/(1-p_C)` times OR), and :math:`\sigma` = the SD, :math:`\delta` = the mean
difference for continuous outcomes; for RD :math:`\sigma^2 = (p_C q_C + p_E q_E)/2`.
Heterogeneity-corrected: :math:`N_F / (1 - D^2)` (diversity; Wetterslev et al. 2009) or
:math:`N_F / (1 - I^2)`. :math:`N_F` is rounded up, then the corrected size (as
``RTSA::ris``). RTSA 0.2.2 uses :math:`\sigma^2 = p_C q_C + p_E q_E` for RD, twice the
usual total; here RD is consistent with the RR/OR formula.

Heterogeneity by :math:`\tau^2` (``RTSA::ris(tau2 = )``, RTSA's default ``random_adj =
"tau2"``): the pooled estimate of :math:`m` new trials of :math:`n` participants each has
variance :math:`(c/n + \tau^2)/m`, where :math:`c/n` is the sampling variance of one trial's
effect on the analysis scale (log RR: :math:`c = 2[(1-p_C)/p_C + (1-p_E)/p_E]`; log OR:
:math:`2[1/(p_C q_C) + 1/(p_E q_E)]`; RD: :math:`2(p_C q_C + p_E q_E)`; MD: :math:`4\sigma^2`).
The information needed is :math:`I = (z_{1-\alpha/s} + z_{1-\beta})^2 / \theta^2` (θ = the
anticipated effect on the analysis scale), less the information :math:`I_0 = 1/SE^2` of the
meta-analysis so far. Each new trial gives at most :math:`1/\tau^2`, so at least
:math:`m_0 = \lfloor (I - I_0)\tau^2 \rfloor + 1` trials are needed, of
:math:`n = \lceil c / (m/(I - I_0) - \tau^2) \rceil` participants each for :math:`m \ge m_0`
trials; the RIS is :math:`m n` (plus the participants so far).

Checked against RTSA 0.2.2 ``ris()`` (``tests/reference/tsa_rtsa.json``).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from analysis._checks import check_choice, check_probability

__all__ = [
    "RIS_MEASURES",
    "diversity",
    "heterogeneity_adjusted",
    "required_information_size",
    "tau2_information_size",
]

#: Measures with a required-information-size formula.
RIS_MEASURES = ("RR", "OR", "RD", "MD")


def _anticipated(measure: str, effect: float, control_rate: float | None, sd: float | None,
                 alpha: float, beta: float, sides: int) -> tuple[float, float, float, float, float]:
    """``(var, delta, z, theta, c)``: the pieces of both RIS formulas (module docstring)."""
    check_choice("measure", measure, RIS_MEASURES)
    a = check_probability("alpha", alpha)
    b = check_probability("beta", beta)
    if sides not in (1, 2) or isinstance(sides, bool):
        raise ValueError(f"argument 'sides' = {sides!r} must be 1 or 2")
    try:
        eff = float(effect)
    except (TypeError, ValueError):
        raise ValueError(f"argument 'effect' = {effect!r} must be a number") from None
    if measure in ("RR", "OR"):
        if not (np.isfinite(eff) and eff > 0 and eff != 1):
            raise ValueError(f"argument 'effect' = {effect!r} must be a positive ratio other "
                             f"than 1 for measure {measure!r}")
        if control_rate is None:
            raise ValueError(f"argument 'control_rate' is required for measure {measure!r}")
        pc = check_probability("control_rate", control_rate)
        if measure == "RR":
            pe = pc * eff
        else:
            odds = pc / (1 - pc) * eff
            pe = odds / (1 + odds)
        if not 0 < pe < 1:
            raise ValueError(f"argument 'effect' = {effect!r} with control_rate {pc} implies an "
                             f"experimental event rate {pe:g} outside (0, 1)")
        pbar = (pc + pe) / 2
        var = pbar * (1 - pbar)
        delta = pc - pe
        theta = float(np.log(eff))
        if measure == "RR":
            c = 2.0 * ((1 - pc) / pc + (1 - pe) / pe)
        else:
            c = 2.0 * (1 / (pc * (1 - pc)) + 1 / (pe * (1 - pe)))
    elif measure == "RD":
        if control_rate is None:
            raise ValueError("argument 'control_rate' is required for measure 'RD'")
        pc = check_probability("control_rate", control_rate)
        pe = pc + eff
        if not (np.isfinite(eff) and eff != 0 and 0 < pe < 1):
            raise ValueError(f"argument 'effect' = {effect!r} must be a non-zero risk "
                             f"difference with control_rate + effect in (0, 1)")
        var = (pc * (1 - pc) + pe * (1 - pe)) / 2
        delta = theta = eff
        c = 4.0 * var
    else:
        if not (np.isfinite(eff) and eff != 0):
            raise ValueError(f"argument 'effect' = {effect!r} must be a non-zero mean difference")
        if sd is None or not np.isfinite(float(sd)) or float(sd) <= 0:
            raise ValueError(f"argument 'sd' = {sd!r} must be a positive number for measure 'MD'")
        var = float(sd) ** 2
        delta = theta = eff
        c = 4.0 * var
    z = float(stats.norm.isf(a / sides) + stats.norm.isf(b))
    return var, delta, z, theta, c


def fixed_information_size(measure: str, effect: float, *, control_rate: float | None = None,
                           sd: float | None = None, alpha: float = 0.05, beta: float = 0.2,
                           sides: int = 2) -> float:
    """Return the unrounded fixed-effect required information size (module docstring)."""
    var, delta, z, _, _ = _anticipated(measure, effect, control_rate, sd, alpha, beta, sides)
    return float(4.0 * z**2 * var / delta**2)


def tau2_information_size(measure: str, effect: float, tau2: float, *,
                          control_rate: float | None = None, sd: float | None = None,
                          alpha: float = 0.05, beta: float = 0.2, sides: int = 2,
                          trials: int | None = None,
                          information: float = 0.0) -> tuple[int, int, int]:
    r"""Trials and participants needed when the trials' true effects vary with variance tau².

    Parameters
    ----------
    measure, effect, control_rate, sd, alpha, beta, sides
        As :func:`required_information_size`.
    tau2 : float
        Between-trial variance on the analysis scale (log scale for RR/OR); > 0.
    trials : int, optional
        Number of new trials (at least the minimum; default: the minimum).
    information : float
        Statistical information :math:`1/SE^2` of the meta-analysis so far (0 prospectively).

    Returns
    -------
    (int, int, int)
        The minimum number of new trials :math:`m_0`, the participants per trial for
        ``trials`` trials and their total (``RTSA::ris``: ``NR_tau$minTrial`` and the
        ``nPax`` column; zeros when ``information`` already suffices).
    """
    t2 = float(tau2)
    if not (np.isfinite(t2) and t2 > 0):
        raise ValueError(f"argument 'tau2' = {tau2!r} must be a positive number")
    _, _, z, theta, c = _anticipated(measure, effect, control_rate, sd, alpha, beta, sides)
    need = z**2 / theta**2 - float(information)
    if need <= 0:
        return 0, 0, 0
    least = int(np.floor(need * t2)) + 1
    m = least if trials is None else int(trials)
    if m < least:
        raise ValueError(f"argument 'trials' = {trials!r} is below the minimum number of "
                         f"trials {least} for tau2 = {t2:g}")
    per_trial = int(np.ceil(c / (m / need - t2) - 1e-9))
    return least, per_trial, m * per_trial


def required_information_size(measure: str, effect: float, *, control_rate: float | None = None,
                              sd: float | None = None, alpha: float = 0.05, beta: float = 0.2,
                              sides: int = 2, d2: float | None = None,
                              i2: float | None = None, tau2: float | None = None,
                              trials: int | None = None) -> int:
    """Return the required information size (participants), optionally heterogeneity-corrected.

    Parameters
    ----------
    measure : {"RR", "OR", "RD", "MD"}
        Effect measure of the anticipated effect.
    effect : float
        Anticipated effect: a ratio for RR/OR (0.8 = 20% relative risk reduction), a risk
        difference for RD, a mean difference for MD.
    control_rate : float, optional
        Control-group event proportion (binary measures).
    sd : float, optional
        Standard deviation of the outcome (MD).
    alpha, beta : float
        Type I error (total over ``sides``) and type II error (1 - power).
    sides : {1, 2}
        One- or two-sided test.
    d2, i2 : float, optional
        Diversity :math:`D^2` or inconsistency :math:`I^2` as a proportion in [0, 1); the
        RIS is divided by ``1 - d2`` (or ``1 - i2``). Give at most one of ``d2``, ``i2``
        and ``tau2``.
    tau2 : float, optional
        Between-trial variance: the RIS is the total of :func:`tau2_information_size`
        (``trials`` new trials, default the minimum number).
    trials : int, optional
        Number of trials for ``tau2``.

    Returns
    -------
    int
        The RIS rounded up. Matches ``RTSA::ris`` (``NF``, ``NR_D2``, ``NR_I2``, and the
        ``NR_tau`` total).
    """
    if tau2 is not None:
        if d2 is not None or i2 is not None:
            raise ValueError("give at most one of 'd2', 'i2' and 'tau2'")
        return tau2_information_size(measure, effect, tau2, control_rate=control_rate, sd=sd,
                                     alpha=alpha, beta=beta, sides=sides, trials=trials)[2]
    if trials is not None:
        raise ValueError("argument 'trials' needs 'tau2'")
    n = fixed_information_size(measure, effect, control_rate=control_rate, sd=sd, alpha=alpha,
                               beta=beta, sides=sides)
    fixed = float(np.ceil(n - 1e-9))
    return int(np.ceil(heterogeneity_adjusted(fixed, d2=d2, i2=i2) - 1e-9))


def heterogeneity_adjusted(size: float, *, d2: float | None = None,
                           i2: float | None = None) -> float:
    """``size / (1 - d2)`` or ``size / (1 - i2)`` (``size`` unchanged when both are None)."""
    if d2 is not None and i2 is not None:
        raise ValueError("give at most one of 'd2' and 'i2'")
    for name, value in (("d2", d2), ("i2", i2)):
        if value is not None:
            x = float(value)
            if not 0.0 <= x < 1.0:
                raise ValueError(f"argument {name!r} = {value!r} must be a proportion in [0, 1)")
            return float(size) / (1.0 - x)
    return float(size)


def diversity(var_fixed: float, var_random: float) -> float:
    """Diversity :math:`D^2 = 1 - V_F / V_R` from the variances of the pooled estimates.

    Wetterslev, Thorlund, Brok & Gluud (2009), BMC Med Res Methodol 9:86; 0 when the
    random-effects variance does not exceed the fixed-effect one.
    """
    if not (var_fixed > 0 and var_random > 0):
        raise ValueError(f"variances must be positive, got {var_fixed!r} and {var_random!r}")
    return float(max(0.0, 1.0 - var_fixed / var_random))
