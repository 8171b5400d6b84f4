"""Effect sizes and their sampling variances, with metafor ``escalc`` semantics.

Binary outcomes (2x2 tables: ``events_t`` of ``n_t`` versus ``events_c`` of ``n_c``) give the log
odds ratio (OR), log risk ratio (RR), risk difference (RD), Peto's log odds ratio (PETO) or the
arcsine difference (AS); continuous outcomes give the mean difference (MD), Hedges' g (SMD) or
the log ratio of means (ROM). :func:`effect_sizes` dispatches the incidence-rate, proportion
and correlation measures to :mod:`analysis.effects_rates`, :mod:`analysis.effects_proportions`
and :mod:`analysis.effects_correlations`. ``convention="revman5"`` switches to the RevMan 5
formulas (approximate small-sample correction for SMD; double-zero studies excluded for OR/RR).

References
----------
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw
36(3). Hedges LV (1981). J Educ Stat 6:107-128. Deeks JJ, Higgins JPT (2010). Statistical
algorithms in Review Manager 5. Higgins JPT et al. (eds). Cochrane Handbook v6.4, 6.5.2.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from analysis._checks import as_float_array, check_choice, check_level
from analysis._continuity import TO_CHOICES, add_continuity, named_arrays
from analysis._inputs import check_data, column
from analysis.effects_correlations import CORRELATION_MEASURES, correlation_effects
from analysis.effects_proportions import PROPORTION_MEASURES, proportion_effects
from analysis.effects_rates import RATE_MEASURES, incidence_rate_effects
from analysis.measures import RATIO_MEASURES

__all__ = [
    "counts_from_percent",
    "effect_from_estimate",
    "effect_sizes",
    "sd_from_ci",
    "sd_from_se",
]

BINARY_MEASURES = ("OR", "RR", "RD", "PETO", "AS")
CONTINUOUS_MEASURES = ("MD", "SMD", "ROM")
#: Every code :func:`effect_sizes` computes, by family.
MEASURE_CODES = (BINARY_MEASURES + CONTINUOUS_MEASURES + RATE_MEASURES + PROPORTION_MEASURES
                 + CORRELATION_MEASURES)

#: metafor's ``vtype`` choices per measure; measures not listed have one variance ("LS").
VTYPES = {
    "RD": ("LS", "UB"),
    "SMD": ("LS", "UB"),
    "ROM": ("LS", "HO", "AV", "AVHO"),
    "PR": ("LS", "UB", "AV"),
    "PLN": ("LS", "AV"),
    "PLO": ("LS", "AV"),
    "COR": ("LS", "AV"),
}

#: Measures whose default ``add`` is 0 in metafor (their transformation handles zero cells).
NO_ADD_MEASURES = ("AS", "IRSD", "PAS", "PFT")


def _check_counts(a: np.ndarray, n1: np.ndarray, c: np.ndarray, n2: np.ndarray) -> None:
    for name, value in (("events_t", a), ("n_t", n1), ("events_c", c), ("n_c", n2)):
        bad = value < 0
        if np.any(bad):
            raise ValueError(
                f"argument {name!r} has negative value(s) {value[bad].tolist()}; "
                "counts must be >= 0"
            )
    for ev, tot, ename in ((a, n1, "events_t"), (c, n2, "events_c")):
        bad = ev > tot
        if np.any(bad):
            raise ValueError(
                f"argument {ename!r} has value(s) {ev[bad].tolist()} larger than the group size"
            )


def _binary(
    measure: str,
    a: np.ndarray,
    n1: np.ndarray,
    c: np.ndarray,
    n2: np.ndarray,
    add: float,
    to: str,
    drop00: bool,
    vtype: str,
) -> tuple[np.ndarray, np.ndarray]:
    _check_counts(a, n1, c, n2)
    b, d = n1 - a, n2 - c
    if drop00:
        id00 = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
        a, b, c, d = (np.where(id00, np.nan, x) for x in (a, b, c, d))
    a, b, c, d = add_continuity([a, b, c, d], add, to)
    n1, n2 = a + b, c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = a / n1, c / n2
        if measure == "OR":
            yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
            vi = 1 / a + 1 / b + 1 / c + 1 / d
        elif measure == "RR":
            yi = np.log(p1) - np.log(p2)
            vi = 1 / a - 1 / n1 + 1 / c - 1 / n2
        elif measure == "AS":
            yi = np.arcsin(np.sqrt(p1)) - np.arcsin(np.sqrt(p2))
            vi = 1 / (4 * n1) + 1 / (4 * n2)
        elif measure == "PETO":
            big_n = n1 + n2
            var = (a + c) * (b + d) * (n1 / big_n) * (n2 / big_n) / (big_n - 1)
            yi = (a - (a + c) * n1 / big_n) / var
            vi = 1 / var
        else:  # RD
            yi = p1 - p2
            if vtype == "UB":
                vi = p1 * (1 - p1) / (n1 - 1) + p2 * (1 - p2) / (n2 - 1)
            else:
                vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    return yi, vi


def hedges_j(m: np.ndarray) -> np.ndarray:
    r"""Exact small-sample correction factor of Hedges' g.

    .. math:: J(m) = \frac{\Gamma(m/2)}{\sqrt{m/2}\,\Gamma((m-1)/2)}

    NaN for ``m <= 1`` (metafor's ``.cmicalc``). Checked against metafor's SMD values
    (fixture) and J(10) = 0.9227 (Hedges & Olkin 1985, Table 2).
    """
    m = np.asarray(m, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.exp(special.gammaln(m / 2) - np.log(np.sqrt(m / 2)) - special.gammaln((m - 1) / 2))
    return np.where(m <= 1, np.nan, out)


def _continuous(
    measure: str,
    m1: np.ndarray,
    s1: np.ndarray,
    n1: np.ndarray,
    m2: np.ndarray,
    s2: np.ndarray,
    n2: np.ndarray,
    vtype: str,
    convention: str,
) -> tuple[np.ndarray, np.ndarray]:
    for name, value in (("sd_t", s1), ("sd_c", s2)):
        if np.any(value < 0):
            raise ValueError(f"argument {name!r} has negative value(s) {value[value < 0].tolist()}")
    for name, value in (("n_t", n1), ("n_c", n2)):
        if np.any(value <= 0):
            raise ValueError(
                f"argument {name!r} has value(s) {value[value <= 0].tolist()}; use > 0"
            )
    if measure == "MD":
        return m1 - m2, s1**2 / n1 + s2**2 / n2
    if measure == "ROM":
        return _ratio_of_means(m1, s1, n1, m2, s2, n2, vtype)
    big_n = n1 + n2
    mi = big_n - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        sp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / mi)
    zero_sd = sp == 0
    if np.any(zero_sd):
        rows = np.flatnonzero(zero_sd).tolist()
        warnings.warn(
            f"{len(rows)} {'study' if len(rows) == 1 else 'studies'} with pooled SD = 0 "
            "(sd_t and sd_c both 0) have no "
            f"estimable SMD; yi and vi set to NaN (rows {rows[:10]}), as metafor's escalc",
            UserWarning, stacklevel=3,
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (m1 - m2) / sp
        if convention == "revman5":
            g = (1 - 3 / (4 * big_n - 9)) * d
            return g, big_n / (n1 * n2) + g**2 / (2 * (big_n - 3.94))
        j = hedges_j(mi)
        g = j * d
        if vtype == "UB":
            vi = 1 / n1 + 1 / n2 + (1 - (mi - 2) / (mi * j**2)) * g**2
        else:
            vi = 1 / n1 + 1 / n2 + g**2 / (2 * big_n)
    return g, vi


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(w))
    return float(np.sum(x[ok] * w[ok]) / np.sum(w[ok]))


def _ratio_of_means(
    m1: np.ndarray, s1: np.ndarray, n1: np.ndarray,
    m2: np.ndarray, s2: np.ndarray, n2: np.ndarray, vtype: str,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Log ratio of means (metafor's ROM) and its variance under ``vtype``.

    :math:`y = \log(\bar x_1/\bar x_2)`; LS :math:`v = s_1^2/(n_1\bar x_1^2) +
    s_2^2/(n_2\bar x_2^2)`; HO the same with the pooled SD for both SDs; AV with the
    ``n``-weighted mean coefficients of variation of each group; AVHO with the one weighted
    mean over both groups (metafor 3.8-1 ``escalc``; NaN when a ratio of means is <= 0).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.log(m1 / m2)
        cv1, cv2 = s1 / m1, s2 / m2
        if vtype == "HO":
            sp2 = ((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2)
            vi = sp2 / (n1 * m1**2) + sp2 / (n2 * m2**2)
        elif vtype == "AV":
            vi = _wmean(cv1, n1) ** 2 / n1 + _wmean(cv2, n2) ** 2 / n2
        elif vtype == "AVHO":
            ok = ~(np.isnan(n1) | np.isnan(n2) | np.isnan(cv1) | np.isnan(cv2))
            cv = (np.sum((n1 * cv1)[ok]) + np.sum((n2 * cv2)[ok])) / np.sum((n1 + n2)[ok])
            vi = cv**2 * (1 / n1 + 1 / n2)
        else:
            vi = cv1**2 / n1 + cv2**2 / n2
    return yi, vi


def _check_options(measure: str, add: float | None, to: str, vtype: str,
                   convention: str) -> float:
    """Check the options of :func:`effect_sizes`; return ``add`` with metafor's default."""
    check_choice("measure", measure, MEASURE_CODES)
    check_choice("to", to, TO_CHOICES)
    allowed = VTYPES.get(measure, ("LS",))
    if vtype not in allowed:
        hint = " (metafor 3.8-1 allows 'UB' only for its UCOR)" if measure == "COR" else ""
        raise ValueError(
            f"argument 'vtype' = {vtype!r} is not allowed for measure {measure!r}; use one of "
            + ", ".join(repr(v) for v in allowed) + hint
        )
    check_choice("convention", convention, ("metafor", "revman5"))
    if add is None:
        return 0.0 if measure in NO_ADD_MEASURES else 0.5
    if not isinstance(add, (int, float, np.number)) or not np.isfinite(add) or add < 0:
        raise ValueError(f"argument 'add' = {add!r} is not allowed; use a number >= 0")
    return float(add)


def effect_sizes(
    measure: str,
    *,
    events_t: Any = None,
    n_t: Any = None,
    events_c: Any = None,
    n_c: Any = None,
    mean_t: Any = None,
    sd_t: Any = None,
    mean_c: Any = None,
    sd_c: Any = None,
    x1i: Any = None,
    t1i: Any = None,
    x2i: Any = None,
    t2i: Any = None,
    xi: Any = None,
    ni: Any = None,
    ri: Any = None,
    add: float | None = None,
    to: str = "only0",
    drop00: bool = False,
    vtype: str = "LS",
    convention: str = "metafor",
    data: pd.DataFrame | None = None,
) -> pd.DataFrame:
    r"""Compute effect sizes ``yi`` and sampling variances ``vi``, one row per study.

    Parameters
    ----------
    measure : str
        metafor's code. Two groups, binary: ``"OR"`` (log odds ratio), ``"RR"`` (log risk
        ratio), ``"RD"`` (risk difference), ``"PETO"`` (Peto's log odds ratio), ``"AS"``
        (arcsine square-root risk difference). Two groups, continuous: ``"MD"`` (mean
        difference), ``"SMD"`` (Hedges' g), ``"ROM"`` (log ratio of means). Incidence
        rates: ``"IRR"`` (log rate ratio), ``"IRD"`` (rate difference), ``"IRSD"``
        (square-root rate difference), :mod:`analysis.effects_rates`. One group:
        ``"PR"``, ``"PLN"``, ``"PLO"``, ``"PAS"``, ``"PFT"`` (raw, log, logit, arcsine and
        Freeman-Tukey double-arcsine proportion), :mod:`analysis.effects_proportions`;
        ``"COR"``, ``"ZCOR"`` (raw and Fisher's z correlation),
        :mod:`analysis.effects_correlations`. A hazard ratio (or any estimate with its
        CI) goes through :func:`effect_from_estimate` instead.
    events_t, n_t, events_c, n_c : array_like
        Events and group sizes (binary measures; ``n_t``/``n_c`` also for MD/SMD/ROM).
    mean_t, sd_t, mean_c, sd_c : array_like
        Means and standard deviations (MD, SMD, ROM).
    x1i, t1i, x2i, t2i : array_like
        Events and person-time of the two groups (IRR, IRD, IRSD; metafor's names).
    xi, ni : array_like
        Events and size of one group (PR ... PFT); ``ni`` is also the sample size of a
        correlation.
    ri : array_like
        Correlation coefficients (COR, ZCOR).
    add : float, optional
        Continuity correction added by the rule ``to``: to the four cells (binary), to both
        event counts (rates), to the events and non-events (proportions). metafor's
        default: 1/2, but 0 for AS, IRSD, PAS and PFT (whose transformations are finite at
        zero). Not used by the continuous and correlation measures.
    to : {"only0", "all", "if0all", "none"}
        Which studies get ``add``: only those with a zero cell, all, all if any has a zero
        cell, none.
    drop00 : bool
        Set studies with no events (or only events) in both groups to NaN (binary; rates:
        no events in both groups).
    vtype : str
        Variance type, metafor's codes: ``"LS"`` (large-sample, default) for every measure;
        also ``"UB"`` (unbiased) for RD, SMD and PR; ``"AV"`` (from the weighted mean
        proportion, correlation or coefficient of variation) for PR, PLN, PLO, COR, ROM;
        ``"HO"`` and ``"AVHO"`` (pooled SD; one mean CV) for ROM.
    convention : {"metafor", "revman5"}
        ``"revman5"``: SMD with :math:`J = 1 - 3/(4N-9)` and
        :math:`v = N/(n_1 n_2) + g^2/(2(N-3.94))`; double-zero studies dropped for OR/RR.
    data : pandas.DataFrame, optional
        A frame whose columns the data arguments may name (metafor ``escalc(..., data=)``);
        the result is then ``data`` with ``yi``, ``vi`` and ``measure`` appended, as escalc
        returns it (an existing ``yi``/``vi``/``measure`` column is replaced).

    Returns
    -------
    pandas.DataFrame
        Columns ``yi``, ``vi`` and ``measure`` (which :func:`analysis.pooling.pool` records),
        after the columns of ``data`` when it is given; NaN where not estimable (e.g. a zero
        cell with ``to="none"``). The one-group measures (proportions, correlations) add
        ``ni``, the sample sizes as given (metafor's ``ni`` attribute), which
        :func:`analysis.pooling.pool` records for the PFT back-transformation.

    Raises
    ------
    ValueError
        An unknown measure, ``to`` or ``vtype`` (per measure), a negative ``add``, missing
        or unequal-length data, or impossible data (negative counts, events above the group
        size, person-times or sample sizes <= 0, correlations outside [-1, 1]); the message
        names the argument, the value and what is allowed.

    Warns
    -----
    UserWarning
        SMD for studies whose pooled SD is 0 (both SDs 0): NaN, as metafor 3.8-1 ``escalc``
        (which recodes the infinite value to NA), and the warning names the rows; ZCOR for
        ``ni <= 3`` (``vi`` NaN, ``yi`` kept, as metafor).

    Notes
    -----
    With :math:`a, b, c, d` the (corrected) cells, :math:`p_1 = a/n_1`, :math:`p_2 = c/n_2`:

    - OR: :math:`y = \log\frac{ad}{bc}`, :math:`v = 1/a + 1/b + 1/c + 1/d`;
    - RR: :math:`y = \log(p_1/p_2)`, :math:`v = 1/a - 1/n_1 + 1/c - 1/n_2`;
    - RD: :math:`y = p_1 - p_2`, :math:`v = p_1(1-p_1)/n_1 + p_2(1-p_2)/n_2` (UB: ``n - 1``);
    - AS: :math:`y = \arcsin\sqrt{p_1} - \arcsin\sqrt{p_2}`,
      :math:`v = 1/(4n_1) + 1/(4n_2)`;
    - PETO: :math:`y = (a - E)/V`, :math:`v = 1/V` with :math:`E = (a+c)n_1/N` and
      :math:`V = (a+c)(b+d)n_1n_2/(N^2(N-1))` (metafor's ``"PETO"``; its continuity rule as
      for the other binary measures);
    - MD: :math:`y = \bar x_1 - \bar x_2`, :math:`v = s_1^2/n_1 + s_2^2/n_2`;
    - SMD: :math:`g = J(m) d` with :math:`m = n_1 + n_2 - 2`, pooled-SD :math:`d` and the
      exact :math:`J` (:func:`hedges_j`); LS :math:`v = 1/n_1 + 1/n_2 + g^2/(2N)`, UB
      :math:`v = 1/n_1 + 1/n_2 + (1 - (m-2)/(m J^2)) g^2`;
    - ROM: :math:`y = \log(\bar x_1/\bar x_2)`, LS
      :math:`v = s_1^2/(n_1\bar x_1^2) + s_2^2/(n_2\bar x_2^2)`;
    - the rate, proportion and correlation measures: see their modules.

    Checked against metafor 3.8-1 ``escalc`` on the fixture cases: OR/RR/RD/MD/SMD (every
    ``add``/``to``/``drop00`` combination, SMD LS and UB) at relative tolerance 1e-6, and
    the other measures (tests/reference/measures_reference.json: metafor's bundled data,
    zero cells, every ``vtype``) at 1e-10.
    """
    add = _check_options(measure, add, to, vtype, convention)
    data = check_data(data)
    events_t, n_t, events_c, n_c, mean_t, sd_t, mean_c, sd_c = (
        column(name, value, data) for name, value in (
            ("events_t", events_t), ("n_t", n_t), ("events_c", events_c), ("n_c", n_c),
            ("mean_t", mean_t), ("sd_t", sd_t), ("mean_c", mean_c), ("sd_c", sd_c)))
    x1i, t1i, x2i, t2i, xi, ni, ri = (
        column(name, value, data) for name, value in (
            ("x1i", x1i), ("t1i", t1i), ("x2i", x2i), ("t2i", t2i), ("xi", xi), ("ni", ni),
            ("ri", ri)))
    sizes: np.ndarray | None = None
    # metafor's NA (set on purpose) spares the other value, its NaN (computed) does not
    keep_yi = keep_vi = np.zeros(0, dtype=bool)
    if measure in BINARY_MEASURES:
        arr = named_arrays(events_t=events_t, n_t=n_t, events_c=events_c, n_c=n_c)
        if convention == "revman5" and measure in ("OR", "RR"):
            drop00 = True
        yi, vi = _binary(
            measure, arr["events_t"], arr["n_t"], arr["events_c"], arr["n_c"],
            add, to, bool(drop00), vtype,
        )
    elif measure in CONTINUOUS_MEASURES:
        arr = named_arrays(mean_t=mean_t, sd_t=sd_t, n_t=n_t, mean_c=mean_c, sd_c=sd_c, n_c=n_c)
        yi, vi = _continuous(
            measure, arr["mean_t"], arr["sd_t"], arr["n_t"], arr["mean_c"], arr["sd_c"],
            arr["n_c"], vtype, convention,
        )
    elif measure in RATE_MEASURES:
        arr = named_arrays(x1i=x1i, t1i=t1i, x2i=x2i, t2i=t2i)
        yi, vi = incidence_rate_effects(measure, arr["x1i"], arr["t1i"], arr["x2i"],
                                        arr["t2i"], add, to, bool(drop00))
        keep_vi = np.isnan(yi) & np.isfinite(vi) if measure == "IRSD" and drop00 else keep_vi
    elif measure in PROPORTION_MEASURES:
        arr = named_arrays(xi=xi, ni=ni)
        sizes = arr["ni"]
        yi, vi = proportion_effects(measure, arr["xi"], sizes, add, to, vtype)
    else:
        arr = named_arrays(ri=ri, ni=ni)
        sizes = arr["ni"]
        yi, vi = correlation_effects(measure, arr["ri"], sizes, vtype)
        keep_yi = (sizes <= 3) & np.isfinite(yi)  # metafor: vi NA, yi kept
    bad = ~np.isfinite(yi) | ~np.isfinite(vi) | (vi < 0)
    yi = np.where(bad & ~keep_yi if keep_yi.size else bad, np.nan, yi)
    vi = np.where(bad & ~keep_vi if keep_vi.size else bad, np.nan, vi)
    # the measure travels with the data: pool() records it, tables and plots back-transform
    columns: dict[str, Any] = {"yi": yi, "vi": vi, "measure": measure}
    if sizes is not None:
        columns["ni"] = sizes
    out = pd.DataFrame(columns)
    if data is None:
        return out
    if len(data) != len(out):
        raise ValueError(f"argument 'data' has {len(data)} rows but there are {len(out)} studies")
    return data.drop(columns=[c for c in out.columns if c in data.columns]).assign(**columns)


def _z(level: float) -> float:
    return float(special.ndtri(1 - (1 - level) / 2))


def _check_positive(name: str, values: np.ndarray, measure: str) -> None:
    bad = values <= 0
    if np.any(bad):
        rows = np.flatnonzero(bad).tolist()
        raise ValueError(
            f"argument {name!r} has non-positive value(s) {values[bad].tolist()} (row(s) {rows}); "
            f"ratio measure {measure!r} is given on its natural scale and must be > 0"
        )


def _check_interval(est: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """Refuse reversed limits (ci_low > ci_high) and an estimate outside its own interval."""
    reversed_ = lo > hi
    if np.any(reversed_):
        rows = np.flatnonzero(reversed_).tolist()
        pairs = ", ".join(f"ci_low {lo[i]:g} > ci_high {hi[i]:g}" for i in rows)
        raise ValueError(
            f"arguments 'ci_low'/'ci_high' are reversed in row(s) {rows} ({pairs}); "
            "the lower limit must be <= the upper limit"
        )
    outside = (est < lo) | (est > hi)
    if np.any(outside):
        rows = np.flatnonzero(outside).tolist()
        values = ", ".join(f"estimate {est[i]:g} outside [{lo[i]:g}, {hi[i]:g}]" for i in rows)
        raise ValueError(
            f"argument 'estimate' lies outside its own confidence interval in row(s) {rows} "
            f"({values}); the estimate must satisfy ci_low <= estimate <= ci_high"
        )


def effect_from_estimate(
    estimate: Any,
    ci_low: Any = None,
    ci_high: Any = None,
    se: Any = None,
    measure: str = "MD",
    level: float = 0.95,
) -> pd.DataFrame:
    r"""Turn reported estimates with a CI (or SE) into ``yi``/``vi``.

    Parameters
    ----------
    estimate : array_like
        Reported estimates (ratios on their natural scale, > 0, for the ratio measures).
    ci_low, ci_high : array_like, optional
        Reported confidence limits at ``level``; each row must satisfy
        ``ci_low <= estimate <= ci_high``.
    se : array_like, optional
        Standard errors on the analysis scale (log scale for ratios); used where given.
    measure : str
        The ratio measures (``analysis.results.RATIO_MEASURES``: ``"OR"``, ``"RR"``,
        ``"HR"``, ``"IRR"``, ``"ROM"``, ``"PETO"``) are log-transformed, estimate and limits
        alike; anything else is used as is.
    level : float
        Confidence level of the reported interval.

    Returns
    -------
    pandas.DataFrame
        Columns ``yi``, ``vi`` and ``measure`` (which :func:`analysis.pooling.pool` records),
        and the reported interval kept as published: ``ci_low_published``,
        ``ci_high_published`` (on the analysis scale, i.e. log-transformed for the ratio
        measures, like ``yi``; NaN where no limits were given) and ``ci_level_published``
        (``level`` where limits were given, else NaN). Plots and tables show these limits
        instead of the symmetric ``yi +/- z sqrt(vi)``, which differs when the published
        interval is not symmetric on the analysis scale (rounding, or a profile-likelihood
        or exact interval); pooling uses ``vi``.

    Raises
    ------
    ValueError
        For reversed limits, an estimate outside its interval (the message names the rows
        and values), or a non-positive estimate or limit of a ratio measure.

    Notes
    -----
    :math:`SE = (U - L) / (2 z_{1-\alpha/2})` on the analysis scale (Cochrane Handbook
    6.5.2.3); checked by hand against the Handbook's worked example. The Wald interval
    :math:`y_i \pm z \, SE` this implies has the published width but is centred on the
    estimate, so its limits can differ from the published ones (OR 1.20, 0.58 to 2.50 gives
    0.58 to 2.49): the published limits are returned as they are.
    """
    level = check_level(level)
    if not isinstance(measure, str):
        raise ValueError(f"argument 'measure' = {measure!r} is not allowed; use a measure code")
    ratio = measure in RATIO_MEASURES
    est = as_float_array("estimate", estimate)
    if ratio:
        _check_positive("estimate", est, measure)
    yi = np.log(est) if ratio else est
    sei = np.full(est.shape, np.nan)
    low_published = np.full(est.shape, np.nan)
    high_published = np.full(est.shape, np.nan)
    if ci_low is not None and ci_high is not None:
        lo = as_float_array("ci_low", ci_low)
        hi = as_float_array("ci_high", ci_high)
        if not lo.shape == hi.shape == est.shape:
            raise ValueError(
                f"arguments 'estimate', 'ci_low', 'ci_high' differ in shape: {est.shape}, "
                f"{lo.shape}, {hi.shape}"
            )
        if ratio:
            _check_positive("ci_low", lo, measure)
            _check_positive("ci_high", hi, measure)
        _check_interval(est, lo, hi)
        if ratio:
            lo, hi = np.log(lo), np.log(hi)
        sei = (hi - lo) / (2 * _z(level))
        low_published, high_published = lo, hi
    if se is not None:
        given = as_float_array("se", se)
        sei = np.where(np.isnan(given), sei, given)
    given_limits = np.isfinite(low_published) & np.isfinite(high_published)
    return pd.DataFrame({
        "yi": yi, "vi": sei**2, "measure": measure,
        "ci_low_published": np.where(given_limits, low_published, np.nan),
        "ci_high_published": np.where(given_limits, high_published, np.nan),
        "ci_level_published": np.where(given_limits, level, np.nan),
    })


def sd_from_se(se: Any, n: Any) -> np.ndarray:
    r"""Compute a standard deviation from the standard error of a mean: :math:`SE\sqrt{n}`.

    Cochrane Handbook v6.4, 6.5.2.2; checked by hand.
    """
    return as_float_array("se", se) * np.sqrt(as_float_array("n", n))


def sd_from_ci(
    ci_low: Any, ci_high: Any, n: Any, level: float = 0.95, distribution: str = "t"
) -> np.ndarray:
    r"""Compute a standard deviation from a confidence interval for a group mean.

    :math:`SD = \sqrt{n}\,(U - L) / (2 c)` with :math:`c = t_{1-\alpha/2,\,n-1}` (small
    samples, ``distribution="t"``) or :math:`z_{1-\alpha/2}` (``"z"``; 3.92/2 at 95%).

    Cochrane Handbook v6.4, 6.5.2.2; checked against its worked example (n = 25,
    CI 3.2 to 8.4 gives SD 6.30 with t).
    """
    level = check_level(level)
    check_choice("distribution", distribution, ("t", "z"))
    lo, hi, nn = as_float_array("ci_low", ci_low), as_float_array("ci_high", ci_high), \
        as_float_array("n", n)
    crit = special.stdtrit(nn - 1, 1 - (1 - level) / 2) if distribution == "t" else _z(level)
    return np.sqrt(nn) * (hi - lo) / (2 * crit)


def counts_from_percent(percent: Any, total: Any) -> pd.DataFrame:
    """Recover event counts from reported percentages.

    Returns
    -------
    pandas.DataFrame
        ``count`` (rounded half up to an integer) and ``rounding_error`` = ``count`` minus
        ``percent/100 * total``, so the approximation is recorded next to the value.
    """
    pct = as_float_array("percent", percent)
    tot = as_float_array("total", total)
    if np.any((pct < 0) | (pct > 100)):
        raise ValueError("argument 'percent' must lie in [0, 100]")
    exact = pct / 100 * tot
    count = np.floor(exact + 0.5)
    return pd.DataFrame({"count": count.astype("int64"), "rounding_error": count - exact})
