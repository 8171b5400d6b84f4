r"""Readable text summaries of results, in the spirit of metafor's ``print.rma``.

Each function takes a result object of :mod:`analysis.results` and returns plain text: the
model (estimator, test, convention), k, the estimate with its interval and p-value on the
analysis scale and, for ratio measures, on the natural scale; heterogeneity (:math:`\tau^2`
with its Q-profile interval, :math:`I^2`, :math:`H^2`, the Q test); the prediction interval.
The numbers are the result's own fields, rounded for display only (4 decimals, as metafor).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["format_p", "summarise_meta_regression", "summarise_pool", "summarise_subgroups"]

_RATIO = frozenset({"OR", "RR", "HR", "PETO", "IRR", "ROM"})
_METHOD_NAMES = {
    "FE": "fixed-effect (inverse-variance) model",
    "MH": "fixed-effect Mantel-Haenszel model",
    "MH-DL": "random-effects model (Mantel-Haenszel Q, DerSimonian-Laird tau²)",
    "PETO": "fixed-effect Peto model",
}


def format_p(p: float) -> str:
    """Return a p-value as metafor prints it: ``< 0.0001`` or four decimals."""
    if not np.isfinite(p):
        return "NA"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _num(x: Any, digits: int = 4) -> str:
    x = float(x)
    return "NA" if not math.isfinite(x) else f"{x:.{digits}f}"


def _model(method: str, k: int) -> str:
    name = _METHOD_NAMES.get(method, f"random-effects model (tau² estimator: {method})")
    return f"{name[0].upper()}{name[1:]}, k = {k}"


def _test_name(ci_method: str, df: float) -> tuple[str, str]:
    if ci_method in ("hksj", "hksj_adhoc") and math.isfinite(df):
        adhoc = ", ad hoc floor at 1" if ci_method == "hksj_adhoc" else ""
        return f"Knapp-Hartung t test (df = {int(df)}{adhoc})", "t"
    return "z test", "z"


def _scale_line(measure: str | None, est: float, lo: float, hi: float, level: float) -> str:
    pct = f"{100 * level:g}%"
    if measure in _RATIO:
        return (f"{measure} {_num(math.exp(est))} ({pct} CI {_num(math.exp(lo))} to "
                f"{_num(math.exp(hi))})  [natural scale]")
    return ""


def _heterogeneity(res: Any, with_tau2: bool) -> list[str]:
    pct = f"{100 * res.level:g}%"
    out = []
    if with_tau2:
        ci = ""
        lo, hi = getattr(res, "tau2_ci_low", math.nan), getattr(res, "tau2_ci_high", math.nan)
        if math.isfinite(lo) and math.isfinite(hi):
            ci = f"; {pct} CI {_num(lo)} to {_num(hi)}"
        se = getattr(res, "se_tau2", math.nan)
        se_txt = f"SE {_num(se)}" if math.isfinite(se) else "SE NA"
        out.append(f"tau² = {_num(res.tau2)} ({se_txt}{ci}), tau = {_num(math.sqrt(res.tau2))}")
    out.append(f"I² = {float(res.i2):.2f}%, H² = {_num(res.h2, 2)}")
    out.append(f"Test for heterogeneity: Q(df = {res.q_df}) = {_num(res.q)}, "
               f"p {_p_text(res.q_pvalue)}")
    return out


def _p_text(p: float) -> str:
    text = format_p(p)
    return text if text.startswith("<") else f"= {text}"


def summarise_pool(res: Any) -> str:
    """Summary of a :class:`~analysis.results.PoolResult` or ``MantelHaenszelResult``."""
    measure = getattr(res, "measure", None)
    scale = "log scale" if measure in _RATIO else "analysis scale"
    head = _model(res.method, res.k)
    ci_method = getattr(res, "ci_method", "z")
    df = float(getattr(res, "df", math.nan))
    test, stat = _test_name(ci_method, df)
    conv = getattr(res, "convention", "metafor")
    parts = [head, test] + (["RevMan 5 conventions"] if conv == "revman5" else [])
    lines = ["; ".join(parts) + (f"; measure {measure} ({scale})" if measure else ""), ""]
    random = res.method not in ("FE", "MH", "PETO")
    lines += _heterogeneity(res, random)
    pct = f"{100 * res.level:g}%"
    lines += ["", f"Estimate ({scale}): {_num(res.estimate)} (SE {_num(res.se)}), {pct} CI "
              f"{_num(res.ci_low)} to {_num(res.ci_high)}; {stat} = {_num(res.zval, 2)}, "
              f"p {_p_text(res.pvalue)}"]
    natural = _scale_line(measure, res.estimate, res.ci_low, res.ci_high, res.level)
    if natural:
        lines.append(natural)
    lo, hi = float(getattr(res, "pi_low", math.nan)), float(getattr(res, "pi_high", math.nan))
    if random and math.isfinite(lo) and math.isfinite(hi):
        if measure in _RATIO:
            lines.append(f"{pct} prediction interval: {measure} {_num(math.exp(lo))} to "
                         f"{_num(math.exp(hi))}")
        else:
            lines.append(f"{pct} prediction interval: {_num(lo)} to {_num(hi)}")
    if res.k < 5 and random:
        lines.append(f"Note: k = {res.k}; tau² and its interval are imprecise with few studies.")
    return "\n".join(lines)


def summarise_meta_regression(res: Any) -> str:
    """Summary of a :class:`~analysis.results.MetaRegressionResult` (metafor's layout)."""
    df = float(res.qe_df) if res.ci_method in ("hksj", "hksj_adhoc") else math.nan
    test, stat = _test_name(res.ci_method, df)
    lines = [f"Mixed-effects meta-regression, k = {res.k}; tau² estimator: {res.method}; "
             f"{test}", ""]
    if res.method != "FE":
        lines.append(f"Residual tau² = {_num(res.tau2)} (SE {_num(res.se_tau2)}), "
                     f"I² = {float(res.i2):.2f}%, H² = {_num(res.h2, 2)}, "
                     f"R² = {'NA' if not math.isfinite(res.r2) else f'{res.r2:.2f}%'}")
    lines.append(f"Test for residual heterogeneity: QE(df = {res.qe_df}) = {_num(res.qe)}, "
                 f"p {_p_text(res.qe_pvalue)}")
    dfs = ", ".join(str(d) for d in res.qm_df)
    name = "F" if len(res.qm_df) > 1 else "QM"
    lines.append(f"Test of moderators: {name}(df = {dfs}) = {_num(res.qm)}, "
                 f"p {_p_text(res.qm_pvalue)}")
    pct = f"{100 * res.level:g}%"
    lines += ["", f"{'term':>16} {'estimate':>10} {'se':>9} {stat + 'val':>9} {'pval':>9} "
              f"{'ci.lb':>10} {'ci.ub':>10}   ({pct} CI)"]
    for term in res.coef.index:
        lines.append(f"{str(term)[:16]:>16} {_num(res.coef[term]):>10} {_num(res.se[term]):>9} "
                     f"{_num(res.zval[term]):>9} {format_p(res.pvalue[term]):>9} "
                     f"{_num(res.ci_low[term]):>10} {_num(res.ci_high[term]):>10}")
    return "\n".join(lines)


def summarise_subgroups(res: Any) -> str:
    """Summary of a :class:`~analysis.results.SubgroupResult`: one line per subgroup, the test."""
    model = ("separate tau² per subgroup" if res.tau2_model == "separate"
             else "common tau² (meta-regression on the subgroup factor)")
    pct = f"{100 * res.level:g}%"
    lines = [f"Subgroup analysis; {model}; tau² estimator: {res.method}", "",
             f"{'group':>16} {'k':>4} {'estimate':>10} {'ci.lb':>10} {'ci.ub':>10} "
             f"{'tau2':>8} {'I2':>7}   ({pct} CI)"]
    for row in res.subgroups.itertuples(index=False):
        lines.append(f"{str(row.group)[:16]:>16} {int(row.k):>4} {_num(row.estimate):>10} "
                     f"{_num(row.ci_low):>10} {_num(row.ci_high):>10} {_num(row.tau2):>8} "
                     f"{float(row.i2):>6.1f}%")
    dfs = ", ".join(str(d) for d in res.qb_df)
    lines += ["", f"Test for subgroup differences: Q(df = {dfs}) = {_num(res.qb)}, "
              f"p {_p_text(res.qb_pvalue)}"]
    single = [str(g) for g, k in zip(res.subgroups["group"], res.subgroups["k"], strict=True)
              if int(k) < 2]
    if single:
        lines.append(f"Note: subgroup(s) {', '.join(single)} hold a single study.")
    return "\n".join(lines)
