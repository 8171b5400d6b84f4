r"""The measure registry: each effect measure's name, analysis scale and back-transformation.

Estimates live on the analysis scale (log for ratios, logit for PLO, Fisher's z for ZCOR,
the double arcsine for PFT ...). Results, tables and plots show them on the measure's own
scale through :func:`to_display`, which applies metafor's back-transformation for the code:

========  ======================  =========================================================
code      shown as                back-transformation (metafor)
========  ======================  =========================================================
OR, RR,   ratio (log axis)        ``exp``
PETO,
HR, IRR,
ROM
PLN       proportion              ``exp`` (``transf.exp.int`` without tau2)
PLO       proportion              inverse logit (``transf.ilogit``)
PAS       proportion              :math:`\sin^2 x` cut to [0, 1] (``transf.iarcsin``)
PFT       proportion              Miller's (1978) inverse with the harmonic mean of the
                                  ``ni`` (``transf.ipft.hm``), or with one given n
                                  (``transf.ipft``)
ZCOR      correlation             ``tanh`` (``transf.ztor``)
others    as estimated            identity (RD, MD, SMD, AS, IRD, IRSD, PR, COR)
========  ======================  =========================================================

References
----------
Miller JJ (1978). The inverse of the Freeman-Tukey double arcsine transformation. Am Stat
32(4):138. Viechtbauer W (2010). J Stat Softw 36(3) (``transf`` functions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

__all__ = [
    "MEASURES",
    "RATIO_MEASURES",
    "Measure",
    "display_scale",
    "harmonic_mean",
    "ipft",
    "is_log_scale",
    "measure_info",
    "needs_ni",
    "pft",
    "to_display",
]


@dataclass(frozen=True, slots=True)
class Measure:
    """One effect measure: its code, readable name and back-transformation.

    Attributes
    ----------
    code : str
        metafor's code (``"OR"``, ``"PFT"`` ...).
    name : str
        Readable name of the quantity shown (the axis label): ``"Odds ratio"``,
        ``"Proportion"``.
    transform : str
        Key of the back-transformation: ``"exp"``, ``"ilogit"``, ``"iarcsin"``, ``"ipft"``,
        ``"tanh"`` or ``"identity"``.
    log_axis : bool
        Shown on a log axis with the null at 1 (the ratio measures).
    null : float or None
        The no-effect value on the display scale; None for single-group measures
        (proportions), which have no null.
    """

    code: str
    name: str
    transform: str
    log_axis: bool = False
    null: float | None = 0.0


MEASURES: dict[str, Measure] = {m.code: m for m in (
    Measure("OR", "Odds ratio", "exp", log_axis=True, null=1.0),
    Measure("RR", "Risk ratio", "exp", log_axis=True, null=1.0),
    Measure("HR", "Hazard ratio", "exp", log_axis=True, null=1.0),
    Measure("PETO", "Peto odds ratio", "exp", log_axis=True, null=1.0),
    Measure("IRR", "Incidence rate ratio", "exp", log_axis=True, null=1.0),
    Measure("ROM", "Ratio of means", "exp", log_axis=True, null=1.0),
    Measure("RD", "Risk difference", "identity"),
    Measure("AS", "Arcsine risk difference", "identity"),
    Measure("IRD", "Incidence rate difference", "identity"),
    Measure("IRSD", "Square-root incidence rate difference", "identity"),
    Measure("MD", "Mean difference", "identity"),
    Measure("SMD", "Std. mean difference", "identity"),
    Measure("PR", "Proportion", "identity", null=None),
    Measure("PLN", "Proportion", "exp", null=None),
    Measure("PLO", "Proportion", "ilogit", null=None),
    Measure("PAS", "Proportion", "iarcsin", null=None),
    Measure("PFT", "Proportion", "ipft", null=None),
    Measure("COR", "Correlation", "identity"),
    Measure("ZCOR", "Correlation", "tanh"),
)}

#: Measures estimated on the log scale and shown as ratios on a log axis.
RATIO_MEASURES = frozenset(code for code, m in MEASURES.items() if m.log_axis)


def measure_info(measure: str | None) -> Measure | None:
    """Return the registry entry of a code (case-insensitive), or None when unknown."""
    if measure is None:
        return None
    return MEASURES.get(str(measure).upper())


def is_log_scale(measure: str | None) -> bool:
    """Return True for the ratio measures (estimated on the log scale, log axis)."""
    info = measure_info(measure)
    return info is not None and info.log_axis


def needs_ni(measure: str | None) -> bool:
    """Return True when the back-transformation needs the sample sizes (PFT)."""
    info = measure_info(measure)
    return info is not None and info.transform == "ipft"


def display_scale(measure: str | None) -> str:
    """Return ``"ratio"``, ``"proportion"``, ``"correlation"`` or ``"analysis"``.

    The scale :func:`to_display` puts the measure on; ``"analysis"`` when the values are
    shown as estimated (differences, unknown codes).
    """
    info = measure_info(measure)
    if info is None:
        return "analysis"
    if info.log_axis:
        return "ratio"
    if info.name == "Proportion":
        return "proportion"
    if info.name == "Correlation":
        return "correlation"
    return "analysis"


def harmonic_mean(ni: Any) -> float:
    """Harmonic mean of the sample sizes, ignoring NaN (metafor ``transf.ipft.hm``)."""
    n = np.asarray(ni, dtype=float).ravel()
    n = n[~np.isnan(n)]
    if n.size == 0 or np.any(n <= 0):
        raise ValueError(
            f"argument 'ni' = {n.tolist()!r} is not allowed; the sample sizes must be > 0 "
            "(at least one)"
        )
    return float(1 / np.mean(1 / n))


def pft(p: Any, n: Any) -> np.ndarray:
    r"""Freeman-Tukey double arcsine of a proportion ``p`` at sample size ``n``.

    :math:`\tfrac12\{\arcsin\sqrt{x/(n+1)} + \arcsin\sqrt{(x+1)/(n+1)}\}` with
    :math:`x = pn` (metafor ``transf.pft``; the PFT formula of ``escalc``).
    """
    p, n = np.asarray(p, dtype=float), np.asarray(n, dtype=float)
    x = p * n
    return 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))


def ipft(values: Any, n: Any) -> np.ndarray:
    r"""Miller's (1978) inverse of the Freeman-Tukey double arcsine at sample size ``n``.

    .. math:: p = \tfrac12\Bigl(1 - \operatorname{sgn}(\cos 2t)
              \sqrt{1 - \bigl(\sin 2t + (\sin 2t - 1/\sin 2t)/n\bigr)^2}\Bigr),

    set to 1 above :math:`\operatorname{pft}(1, n)` and to 0 below
    :math:`\operatorname{pft}(0, n)`, NaN where the root is not real (metafor
    ``transf.ipft``; checked against it on the fixture).
    """
    t = np.asarray(values, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.sin(2 * t)
        p = 0.5 * (1 - np.sign(np.cos(2 * t)) * np.sqrt(1 - (s + (s - 1 / s) / n) ** 2))
        p = np.where(t > pft(1.0, n), 1.0, p)
        p = np.where(t < pft(0.0, n), 0.0, p)
    return np.asarray(p, dtype=float)


def _iarcsin(t: np.ndarray) -> np.ndarray:
    return np.where(t < 0, 0.0, np.where(t > np.pi / 2, 1.0, np.sin(t) ** 2))


def to_display(values: Any, measure: str | None, ni: Any = None) -> np.ndarray:
    """Back-transform analysis-scale values to the measure's display scale.

    Parameters
    ----------
    values : array_like
        Estimates or limits on the analysis scale.
    measure : str or None
        The measure code; unknown codes and None are shown as estimated.
    ni : array_like or float, optional
        For PFT: the studies' sample sizes (their harmonic mean is used, metafor
        ``transf.ipft.hm``), or one sample size (a scalar: ``transf.ipft`` at that n).

    Returns
    -------
    numpy.ndarray
        The values on the display scale (see the module table).

    Raises
    ------
    ValueError
        PFT without ``ni``.
    """
    array = np.asarray(values, dtype=float)
    info = measure_info(measure)
    kind = info.transform if info is not None else "identity"
    if kind == "exp":
        return np.exp(array)
    if kind == "ilogit":
        return np.asarray(special.expit(array), dtype=float)
    if kind == "tanh":
        return np.tanh(array)
    if kind == "iarcsin":
        return _iarcsin(array)
    if kind == "ipft":
        if ni is None:
            raise ValueError(
                "argument 'ni' is missing: the back-transformation of measure 'PFT' needs the "
                "studies' sample sizes (harmonic mean, metafor transf.ipft.hm) or one n"
            )
        n = harmonic_mean(ni) if np.ndim(ni) > 0 else float(ni)
        return ipft(array, n)
    return array
