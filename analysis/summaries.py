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
import pandas as pd

__all__ = [
    "format_p",
    "regtest_model",
    "summarise_dose_response",
    "summarise_egger",
    "summarise_gosh",
    "summarise_influence",
    "summarise_meta_regression",
    "summarise_permutest",
    "summarise_pool",
    "summarise_sequential",
    "summarise_subgroups",
    "summarise_trimfill",
]

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
            # a limit cut at control tau2_max is only a bound: ">x", never a plain number
            high = f">{_num(hi)}" if getattr(res, "tau2_ci_truncated", False) else _num(hi)
            ci = f"; {pct} CI {_num(lo)} to {high}"
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
              f"{_num(res.ci_low)} to {_num(res.ci_high)}; {stat} = {_num(res.zval)}, "
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
    measure = getattr(res, "measure", None)
    scale = "log scale" if measure in _RATIO else "analysis scale"
    model = ("Fixed-effect meta-regression" if res.method == "FE" else
             f"Mixed-effects meta-regression (tau² estimator: {res.method})")
    lines = [f"{model}, k = {res.k}; {test}"
             + (f"; measure {measure} (coefficients on the {scale})" if measure else ""), ""]
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
    lines += ["", *_coefficient_table(res, stat)]
    return "\n".join(lines)


def _coefficient_table(res: Any, stat: str) -> list[str]:
    """Return metafor's coefficient table: one line per term of ``res.coef``."""
    pct = f"{100 * res.level:g}%"
    lines = [f"{'term':>16} {'estimate':>10} {'se':>9} {stat + 'val':>9} {'pval':>9} "
             f"{'ci.lb':>10} {'ci.ub':>10}   ({pct} CI)"]
    for term in res.coef.index:
        lines.append(f"{str(term)[:16]:>16} {_num(res.coef[term]):>10} {_num(res.se[term]):>9} "
                     f"{_num(res.zval[term]):>9} {format_p(res.pvalue[term]):>9} "
                     f"{_num(res.ci_low[term]):>10} {_num(res.ci_high[term]):>10}")
    return lines


#: Fewer studies than this make a subgroup analysis "few studies" (Cochrane Handbook 10.11.5.1:
#: meta-regression "should generally not be considered when there are fewer than ten studies").
FEW_STUDIES_SUBGROUPS = 10


def subgroup_test_caveat(studies: int) -> str:
    """Return the caveat printed with a test for subgroup differences.

    Subgroup comparisons are across studies, not randomised, so they are observational
    (Cochrane Handbook, chapter 10.11.2); with fewer than :data:`FEW_STUDIES_SUBGROUPS`
    studies in all the test has little power and the caveat says so (10.11.5.1).

    Parameters
    ----------
    studies : int
        The number of studies in the subgroup analysis.
    """
    text = "observational comparison across studies, not randomised"
    if studies < FEW_STUDIES_SUBGROUPS:
        text += (f"; few studies ({studies}; the Cochrane Handbook asks for at least "
                 f"{FEW_STUDIES_SUBGROUPS})")
    return text


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


def regtest_model(res: Any) -> str:
    """Name the model of a regression test for funnel-plot asymmetry (metafor ``regtest``)."""
    if res.model == "lm":
        return "weighted regression with multiplicative dispersion"
    if res.method == "FE":
        return "fixed-effects meta-regression model"
    return f"mixed-effects meta-regression model (tau² estimator: {res.method})"


def summarise_egger(res: Any) -> str:
    """Summary of an :class:`~analysis.results.EggerResult` (metafor ``print.regtest``)."""
    model = regtest_model(res)
    measure = getattr(res, "measure", None)
    scale = "log scale" if measure in _RATIO else "analysis scale"
    stat = (f"t = {_num(res.zval)}, df = {int(res.df)}" if res.t_test and math.isfinite(res.df)
            else f"z = {_num(res.zval)}")
    pct = f"{100 * res.level:g}%"
    k = f", k = {res.k}" if res.k else ""
    lines = ["Regression test for funnel plot asymmetry (Egger; metafor regtest)", "",
             f"Model: {model}{k}", "Predictor: standard error", "",
             f"Test for funnel plot asymmetry: {stat}, p {_p_text(res.pvalue)}",
             f"Limit estimate (as sei -> 0, {scale}): b = {_num(res.estimate)} "
             f"({pct} CI {_num(res.ci_low)} to {_num(res.ci_high)})"]
    natural = _scale_line(measure, res.estimate, res.ci_low, res.ci_high, res.level)
    if natural:
        lines.append(natural)
    return "\n".join(lines)


def summarise_trimfill(res: Any) -> str:
    """Summary of a :class:`~analysis.results.TrimFillResult` (metafor ``print(trimfill())``)."""
    se = f" (SE = {_num(res.se_k0)})" if math.isfinite(res.se_k0) else ""
    head = (f"Trim-and-fill ({res.estimator} estimator): estimated number of missing studies "
            f"on the {res.side} side: {res.k0}{se}")
    what = ("Model fitted to the observed and the filled studies:" if res.k0
            else "No study filled; the model as given:")
    return "\n".join([head, "", what, summarise_pool(res.result)])


def summarise_sequential(res: Any) -> str:
    """Summary of a ``LeaveOneOutResult`` or ``CumulativeResult`` (metafor's table layout)."""
    cumulative = type(res).__name__ == "CumulativeResult"
    measure = getattr(res, "measure", None)
    scale = "log scale" if measure in _RATIO else "analysis scale"
    df = float(np.nanmax(res.df)) if np.isfinite(np.asarray(res.df, float)).any() else math.nan
    test, stat = _test_name(res.ci_method, df)
    title = ("Cumulative meta-analysis (metafor cumul), studies added in order" if cumulative
             else "Leave-one-out analysis (metafor leave1out)")
    method = _METHOD_NAMES.get(res.method, f"tau² estimator: {res.method}")
    lines = [f"{title}; {method}; {'Knapp-Hartung t test' if stat == 't' else test}; "
             f"k = {len(res)}" + (f"; measure {measure} ({scale})" if measure else ""), ""]
    pct = f"{100 * res.level:g}%"
    labels = [str(s) for s in res.study]
    width = max([len(x) for x in labels] + [len("added" if cumulative else "omitted")])
    width = min(width, 24)
    ratio = measure in _RATIO
    header = (f"{'added' if cumulative else 'omitted':<{width}} {'k':>3} {'estimate':>9} "
              f"{'se':>7} {stat + 'val':>8} {'pval':>8} {'ci.lb':>8} {'ci.ub':>8} {'Q':>9} "
              f"{'Qp':>8} {'tau2':>7} {'I2':>6} {'H2':>7}")
    if ratio:
        header += f"   {measure} [{pct} CI]"
    lines.append(header)
    for i, label in enumerate(labels):
        k = res.k[i]
        line = (f"{label[:width]:<{width}} {('NA' if not np.isfinite(k) else int(k)):>3} "
                f"{_num(res.estimate[i]):>9} {_num(res.se[i]):>7} {_num(res.zval[i]):>8} "
                f"{format_p(res.pvalue[i]):>8} {_num(res.ci_low[i]):>8} "
                f"{_num(res.ci_high[i]):>8} {_num(res.q[i]):>9} {format_p(res.q_pvalue[i]):>8} "
                f"{_num(res.tau2[i]):>7} {_num(res.i2[i], 2):>6} {_num(res.h2[i]):>7}")
        if ratio and math.isfinite(float(res.estimate[i])):
            line += (f"   {_num(math.exp(res.estimate[i]))} [{_num(math.exp(res.ci_low[i]))}, "
                     f"{_num(math.exp(res.ci_high[i]))}]")
        lines.append(line)
    lines += ["", f"Estimates on the {scale}; {pct} CIs; I² in percent."]
    full = getattr(res, "full", None)
    if full is not None:
        cluster = getattr(res, "cluster", None)
        n_studies = len(set(cluster)) if cluster is not None else full.k
        everything = (f"All {n_studies} studies ({full.k} comparisons)" if n_studies != full.k
                      else f"All {full.k} studies")
        lines.append(f"{everything}: {_num(full.estimate)} ({pct} CI {_num(full.ci_low)} "
                     f"to {_num(full.ci_high)}), tau² = {_num(full.tau2)}, "
                     f"I² = {float(full.i2):.2f}%")
        natural = _scale_line(measure, full.estimate, full.ci_low, full.ci_high, full.level)
        if natural:
            lines.append(f"{everything}: {natural}")
    return "\n".join(lines)


def summarise_influence(res: Any) -> str:
    """Summary of an :class:`~analysis.results.InfluenceResult` (metafor ``print.infl``)."""
    frame = res.to_frame()
    table = frame.drop(columns=["influential"]).rename(columns={
        "cook_d": "cook.d", "cov_r": "cov.r", "tau2_del": "tau2.del", "qe_del": "QE.del"})
    table["inf"] = np.where(frame["influential"], "*", "")
    table = table.set_index("study")
    table.index.name = None
    text = table.to_string(float_format=lambda x: f"{x:.4f}", na_rep="NA")
    head = (f"Influence diagnostics (metafor influence.rma.uni), {res.method} "
            f"{'Knapp-Hartung' if res.ci_method.startswith('hksj') else 'z'}, "
            f"k = {res.k}, p = {res.p}; tau2 = {res.tau2:.4f}, QE = {res.qe:.4f}")
    return f"{head}\n\n{text}\n\n* influential (metafor's rule)"


def summarise_dose_response(res: Any) -> str:
    """Summary of a :class:`~analysis.results.DoseResponseResult` (dosresmeta's layout)."""
    stage = "one-stage" if res.stage == "one" else "two-stage"
    lines = [f"Dose-response meta-analysis: {res.model} model, {stage}, {res.method} "
             f"(random: {res.random}); k = {res.k} comparisons from {res.n_studies} studies"
             + (f" ({res.k_omitted} omitted)" if res.k_omitted else ""), ""]
    if res.method != "FE":
        sigma = ", ".join(_num(s) for s in res.sigma2)
        lines.append(f"tau² = {_num(res.tau2)}" + (f" (all components: {sigma})"
                                                    if len(res.sigma2) > 1 else ""))
    lines.append(f"Residual heterogeneity: Q(df = {res.q_df}) = {_num(res.q)}, "
                 f"p {_p_text(res.q_pvalue)}, I² = {float(res.i2):.2f}%")
    lines.append(f"Test of the dose terms: QM(df = {res.qm_df}) = {_num(res.qm)}, "
                 f"p {_p_text(res.qm_pvalue)}")
    if math.isfinite(float(res.nonlinearity)):
        lines.append(f"Test for non-linearity: QM(df = {res.nonlinearity_df}) = "
                     f"{_num(res.nonlinearity)}, p {_p_text(res.nonlinearity_pvalue)}")
    lines.append(f"logLik = {_num(res.loglik)}")
    lines += ["", *_coefficient_table(res, "z"),
              "", "Coefficients on the analysis scale (log scale for ratio measures)."]
    return "\n".join(lines)


def summarise_gosh(res: Any) -> str:
    """Summary of a :class:`~analysis.results.GoshResult` (metafor ``print.gosh.rma``)."""
    n = len(res)
    ok = int(np.sum(res.converged))
    how = "all possible subsets" if res.exact else f"random subsets (seed {res.seed})"
    frame = res.to_frame().drop(columns=["k"])
    if res.method == "FE":
        frame = frame.drop(columns=["tau2"])
    frame = frame[np.asarray(res.converged)]
    stats = pd.DataFrame({
        "mean": frame.mean(), "min": frame.min(), "q1": frame.quantile(0.25),
        "median": frame.median(), "q3": frame.quantile(0.75), "max": frame.max()}).T
    stats = stats.rename(columns={"q": "QE", "i2": "I2", "h2": "H2"})
    body = stats.to_string(float_format=lambda x: f"{x:.4f}")
    return (f"GOSH ({_model(res.method, len(res.study))}), k = {len(res.study)}: {how}\n\n"
            f"Model fits attempted: {n}\nModel fits succeeded: {ok}\n\n{body}")


def summarise_permutest(res: Any) -> str:
    """Summary of a :class:`~analysis.results.PermutationResult` (metafor ``print``)."""
    how = "exact" if res.exact else "approximate"
    kind = ("sign flips of yi" if res.kind == "sign-flip"
            else "permutations of the moderators")
    coefs = ", ".join(str(b + 1) if len(res.coef_names) > 1 else "1" for b in res.btt)
    dist = (f"F(df1 = {res.qm_df[0]}, df2 = {res.qm_df[1]})" if len(res.qm_df) > 1
            else f"QM(df = {res.qm_df[0]})")
    stat = "tval" if res.ci_method in ("hksj", "hksj_adhoc") else "zval"
    table = pd.DataFrame({"estimate": res.estimate, "se": res.se, stat: res.zval,
                          "pval*": res.pvalue, "ci.lb": res.ci_low, "ci.ub": res.ci_high},
                         index=list(res.coef_names))
    body = table.to_string(float_format=lambda x: f"{x:.4f}")
    return (f"Permutation test ({how}, {res.iterations} {kind}), {res.method}, "
            f"k = {res.k}\n\nTest of Moderators (coefficient(s) {coefs}):\n"
            f"{dist} = {res.qm:.4f}, p-val* {format_p(res.qm_pvalue)}\n\n"
            f"Model Results:\n\n{body}\n\n* permutation p-values")


_GLMM_MODELS = {"UM.FS": "Unconditional Model with Fixed Study Effects",
                "CM.EL": "Conditional Model with Exact Likelihood"}


def summarise_glmm(res: Any) -> str:
    """Summary of a :class:`~analysis.results.GlmmResult` in ``print(rma.glmm)``'s layout."""
    random = res.method == "ML"
    head = (f"Random-Effects Model (k = {res.k}; tau^2 estimator: ML)" if random
            else f"Equal-Effects Model (k = {res.k})")
    lines = [head, f"Model Type: {_GLMM_MODELS[res.model]}", ""]
    if random:
        se = f" (SE = {res.se_tau2:.4f})" if math.isfinite(res.se_tau2) else ""
        lines += [f"tau^2 (estimated amount of total heterogeneity): {res.tau2:.4f}{se}",
                  f"tau (square root of estimated tau^2 value):      {res.tau:.4f}",
                  f"I^2 (total heterogeneity / total variability):   {res.i2:.4f}%",
                  f"H^2 (total variability / sampling variability):  {res.h2:.4f}", ""]
    lines += ["Tests for Heterogeneity:",
              f"Wld(df = {res.q_df}) = {res.q_wald:.4f}, p-val {_p_text(res.q_wald_pvalue)}",
              f"LRT(df = {res.q_df}) = {res.q_lrt:.4f}, p-val {_p_text(res.q_lrt_pvalue)}", "",
              "Model Results (log odds ratio):", "",
              "estimate      se     zval    pval    ci.lb    ci.ub",
              f"{res.estimate:8.4f} {res.se:7.4f} {res.zval:8.4f} {format_p(res.pvalue):>7s} "
              f"{res.ci_low:8.4f} {res.ci_high:8.4f}", "",
              f"Odds ratio {math.exp(res.estimate):.4f}, {100 * res.level:g}% CI "
              f"{math.exp(res.ci_low):.4f} to {math.exp(res.ci_high):.4f}; "
              f"logLik {res.loglik:.4f}"]
    if res.dropped:
        lines.append(f"Double-zero studies omitted: {', '.join(res.dropped)}")
    return "\n".join(lines)


def _fit_line(res: Any) -> list[str]:
    names = ("logLik", "Deviance", "AIC", "BIC", "AICc")
    values = (res.loglik, res.deviance, res.aic, res.bic, res.aicc)
    return ["  ".join(f"{n:>9}" for n in names), "  ".join(f"{_num(v):>9}" for v in values)]


def summarise_multilevel(res: Any) -> str:
    """Summary of a :class:`~analysis.results.MultilevelResult` (metafor's ``rma.mv`` layout)."""
    test = (f"t tests (df = {res.qe_df})" if res.test == "t" else "z tests")
    lines = [f"Multivariate Meta-Analysis Model (k = {res.k}; method: {res.method}; {test})",
             "", *_fit_line(res), "", f"Variance Components ({res.random}):", ""]
    if res.psi is None:
        lines.append(f"{'':>10} {'estim':>9} {'sqrt':>9} {'nlvls':>6}  factor")
        for i, (name, s2, groups) in enumerate(zip(res.sigma2_names, res.sigma2,
                                                   res.term_groups, strict=True)):
            nlvls = len(set(np.asarray(groups).tolist()))
            lines.append(f"{f'sigma^2.{i + 1}':>10} {_num(s2):>9} {_num(math.sqrt(s2)):>9} "
                         f"{nlvls:>6}  {name}")
    else:
        levels = list(res.psi.index)
        lines.append(f"{'':>10} {'estim':>9} {'sqrt':>9}  level")
        for i, (lv, t2) in enumerate(zip(levels, res.tau2, strict=True)):
            lines.append(f"{f'tau^2.{i + 1}':>10} {_num(t2):>9} {_num(math.sqrt(t2)):>9}  {lv}")
        rows, cols = np.triu_indices(len(levels), 1)
        for r, c, rho in zip(rows, cols, res.rho, strict=True):
            lines.append(f"rho({levels[r]}, {levels[c]}) = {_num(rho)}")
    lines += ["", "Test for Residual Heterogeneity:" if res.X.shape[1] > 1 or
              res.X.columns[0] != "intrcpt" else "Test for Heterogeneity:",
              f"QE(df = {res.qe_df}) = {_num(res.qe)}, p-val {_p_text(res.qe_pvalue)}", ""]
    if res.X.shape[1] > 1 or res.X.columns[0] != "intrcpt":
        name = "F" if len(res.qm_df) > 1 else "QM"
        dfs = ", ".join(f"{d:g}" for d in res.qm_df)
        lines += [f"Test of Moderators: {name}(df = {dfs}) = {_num(res.qm)}, "
                  f"p-val {_p_text(res.qm_pvalue)}", ""]
    lines += ["Model Results:", "", *_coefficient_table(res, "t" if res.test == "t" else "z")]
    return "\n".join(lines)


def summarise_robust(res: Any) -> str:
    """Summary of a :class:`~analysis.results.RobustResult` (metafor ``robust()`` layout)."""
    model = res.model
    how = ("CR2, Satterthwaite df (clubSandwich)" if res.vcov_type == "CR2"
           else "CR1, small-sample factor n/(n - p)")
    kind = ("Multivariate Meta-Analysis Model" if hasattr(model, "marginal")
            else "Mixed-Effects Meta-Regression Model")
    lines = [f"{kind} (k = {model.k}; method: {model.method})",
             "", f"Cluster-robust inference: {res.n_clusters} clusters; {how}", ""]
    if model.X.shape[1] > 1 or model.X.columns[0] != "intrcpt":
        dfs = ", ".join(_num(d, 2) for d in res.qm_df)
        test = "HTZ F" if res.vcov_type == "CR2" and len(res.qm_coefficients) > 1 else "F"
        which = ", ".join(res.qm_coefficients)
        lines += [f"Test of Moderators ({which}): {test}(df = {dfs}) = {_num(res.qm)}, "
                  f"p-val {_p_text(res.qm_pvalue)}", ""]
    pct = f"{100 * res.level:g}%"
    lines += ["Model Results:", "",
              f"{'term':>16} {'estimate':>10} {'se':>9} {'tval':>9} {'df':>7} {'pval':>9} "
              f"{'ci.lb':>10} {'ci.ub':>10}   ({pct} CI)"]
    for term in res.coef.index:
        lines.append(f"{str(term)[:16]:>16} {_num(res.coef[term]):>10} {_num(res.se[term]):>9} "
                     f"{_num(res.tval[term]):>9} {_num(res.df[term], 2):>7} "
                     f"{format_p(res.pvalue[term]):>9} {_num(res.ci_low[term]):>10} "
                     f"{_num(res.ci_high[term]):>10}")
    return "\n".join(lines)
