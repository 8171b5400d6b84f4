"""Text summaries of the small-study and publication-bias results.

The layout is that of the ``print`` methods of metafor (``print.ranktest``,
``print.regtest``, ``print.fsn``, ``print.hc.rma.uni``, ``print.tes``,
``print.rma.uni.selmodel``)
and R meta's ``print.metabias``.

Numbers are the result's own fields, rounded for display only (4 decimals, as metafor).
"""

from __future__ import annotations

import math
from typing import Any

from analysis.summaries import format_p, regtest_model

__all__ = ["summarise"]

_PREDICTORS = {"sei": "standard error", "vi": "sampling variance",
               "ninv": "inverse of the sample size", "sqrtninv": "inverse of the square root "
               "of the sample size"}


def _n(x: Any) -> str:
    x = float(x)
    return "NA" if not math.isfinite(x) else f"{x:.4f}"


def _p(p: float) -> str:
    text = format_p(p)
    return text if text.startswith("<") else f"= {text}"


def _rank(res: Any) -> list[str]:
    how = "exact" if res.exact else "normal approximation"
    return ["Rank correlation test for funnel plot asymmetry (Begg & Mazumdar; metafor "
            "ranktest)", "", f"k = {res.k}",
            f"Kendall's tau = {_n(res.tau)}, p {_p(res.pvalue)} ({how})"]


def _regtest(res: Any) -> list[str]:
    model = regtest_model(res)
    stat = (f"t = {_n(res.zval)}, df = {int(res.df)}" if math.isfinite(res.df)
            else f"z = {_n(res.zval)}")
    return ["Regression test for funnel plot asymmetry (metafor regtest)", "",
            f"Model: {model}, k = {res.k}", f"Predictor: {_PREDICTORS[res.predictor]}", "",
            f"Test for funnel plot asymmetry: {stat}, p {_p(res.pvalue)}",
            f"Limit estimate (as {res.predictor} -> 0): b = {_n(res.estimate)} "
            f"({100 * res.level:g}% CI {_n(res.ci_low)} to {_n(res.ci_high)})"]


def _pet_peese(res: Any) -> list[str]:
    return ["PET-PEESE (Stanley & Doucouliagos 2014)", "", f"k = {res.k}",
            f"PET  intercept = {_n(res.pet.estimate)}; test of intercept = 0 "
            f"({res.alternative}) p {_p(res.pet_pvalue)}",
            f"PEESE intercept = {_n(res.peese.estimate)}",
            f"Selected: {res.selected} (alpha = {res.alpha:g}); estimate = {_n(res.estimate)} "
            f"(CI {_n(res.ci_low)} to {_n(res.ci_high)})"]


def _binary(res: Any) -> list[str]:
    return [f"{res.test}'s test for small-study effects (R meta metabias)", "",
            f"k = {res.k}, variance model: {res.var_model}",
            f"t = {_n(res.statistic)}, df = {int(res.df)}, p {_p(res.pvalue)}",
            f"bias = {_n(res.bias)} (SE = {_n(res.se_bias)}), intercept = "
            f"{_n(res.intercept)} (SE = {_n(res.se_intercept)})"]


def _fsn(res: Any) -> list[str]:
    lines = [f"Fail-safe N calculation using the {res.type} approach (metafor fsn)", ""]
    if res.type == "Orwin":
        lines += [f"Average effect size: {_n(res.meanes)}", f"Target effect size: "
                  f"{_n(res.target)}"]
    else:
        if res.type == "Rosenberg":
            lines.append(f"Average effect size: {_n(res.meanes)}")
        lines += [f"Observed significance level: {format_p(res.pvalue)}",
                  f"Target significance level:   {res.alpha:g}"]
    return [*lines, "", f"Fail-safe N: {res.fsnum:g}"]


def _hc(res: Any) -> list[str]:
    pct = f"{100 * res.level:g}%"
    lines = ["Henmi-Copas interval (metafor hc)", "",
             f"{'method':<6} {'tau2':>8} {'estimate':>9} {'se':>8} {'ci.lb':>8} {'ci.ub':>8}",
             f"{'HC':<6} {_n(res.tau2):>8} {_n(res.estimate):>9} {_n(res.se):>8} "
             f"{_n(res.ci_low):>8} {_n(res.ci_high):>8}"]
    if res.method_rma:
        lines.append(f"{res.method_rma:<6} {_n(res.tau2_rma):>8} {_n(res.estimate_rma):>9} "
                     f"{_n(res.se_rma):>8} {_n(res.ci_low_rma):>8} {_n(res.ci_high_rma):>8}")
    return [*lines, f"(k = {res.k}; {pct} intervals; HC tau² is DerSimonian-Laird)"]


def _tes(res: Any) -> list[str]:
    stat = "" if not math.isfinite(res.x2) else f"X^2 = {_n(res.x2)}, "
    lines = ["Test of excess significance (metafor tes)", "",
             f"Observed number of significant findings: {res.observed} (out of {res.k})",
             f"Expected number of significant findings: {_n(res.expected)}",
             f"Observed number / expected number:       {_n(res.oe_ratio)}", "",
             f"Estimated power of tests (based on theta = {_n(res.theta)})", "",
             f"Test of excess significance: {stat}p {_p(res.pvalue)} ({res.test} test, "
             f"{res.tes_alternative})"]
    if math.isfinite(res.theta_lim):
        lines.append(f"Limit estimate (theta_lim): {_n(res.theta_lim)} (where p = "
                     f"{res.tes_alpha:g})")
    return lines


def _selmodel(res: Any) -> list[str]:
    pct = f"{100 * res.level:g}%"
    model = ("Equal-Effects Model" if res.method == "EE" else "Random-Effects Model")
    est = "" if res.method == "EE" else "; tau^2 estimator: ML"
    kind = ("step function (Vevea & Hedges 1995)" if res.type == "stepfun"
            else "beta (Citkowicz & Vevea 2017)")
    lines = [f"{model} (k = {res.k}{est}) with a {kind} selection model; p-values: "
             f"{res.alternative} (metafor selmodel)", ""]
    if res.method != "EE":
        lines += [f"tau^2 (estimated amount of total heterogeneity): {_n(res.tau2)} "
                  f"(SE = {_n(res.se_tau2)})",
                  f"tau (square root of estimated tau^2 value):      "
                  f"{_n(math.sqrt(res.tau2))}", "",
                  "Test for Heterogeneity:",
                  f"LRT(df = 1) = {_n(res.lrt_tau2)}, p-val {_p(res.lrt_tau2_pvalue)}", ""]
    head = f"{'estimate':>9} {'se':>8} {'zval':>8} {'pval':>8} {'ci.lb':>8} {'ci.ub':>8}"
    lines += ["Model Results:", "", head,
              f"{_n(res.estimate):>9} {_n(res.se):>8} {_n(res.zval):>8} "
              f"{format_p(res.pvalue):>8} {_n(res.ci_low):>8} {_n(res.ci_high):>8}", "",
              "Test for Selection Model Parameters:",
              f"LRT(df = {res.lrt_df}) = {_n(res.lrt)}, p-val {_p(res.lrt_pvalue)}", "",
              "Selection Model Results:", ""]
    frame = res.delta_frame()
    width = max(len(str(t)) for t in frame["term"])
    kcol = f"{'k':>4} " if res.type == "stepfun" else ""
    lines.append(f"{'':<{width}} {kcol}{head}")
    for row in frame.itertuples(index=False):
        kval = f"{int(row.k):>4} " if res.type == "stepfun" else ""
        pv = "---" if not math.isfinite(row.pvalue) else format_p(row.pvalue)
        se = "---" if not math.isfinite(row.se) else _n(row.se)
        lines.append(f"{row.term:<{width}} {kval}{_n(row.estimate):>9} {se:>8} "
                     f"{_n(row.zval) if math.isfinite(row.zval) else '---':>8} {pv:>8} "
                     f"{_n(row.ci_low) if math.isfinite(row.ci_low) else '---':>8} "
                     f"{_n(row.ci_high) if math.isfinite(row.ci_high) else '---':>8}")
    return [*lines, f"({pct} Wald intervals; delta tested against 1; log-likelihood "
                    f"{_n(res.ll)}, without selection {_n(res.ll0)})"]


_DISPATCH = {"RankTestResult": _rank, "RegTestResult": _regtest,
             "PetPeeseResult": _pet_peese, "BinaryBiasResult": _binary,
             "FailSafeResult": _fsn, "HenmiCopasResult": _hc,
             "ExcessSignificanceResult": _tes, "SelectionModelResult": _selmodel}


def summarise(res: Any) -> str:
    """Return the summary text of a small-study result (dispatch on its class)."""
    return "\n".join(_DISPATCH[type(res).__name__](res))
