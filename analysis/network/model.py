r"""Frequentist network meta-analysis by the graph-theoretical method (netmeta ``netmeta``).

References: Rücker G (2012) Network meta-analysis, electrical networks and graph theory.
Res Synth Methods 3:312-324. Rücker G, Schwarzer G (2014) Reduce dimension or reduce weights?
Comparing two approaches to multi-arm studies in network meta-analysis. Stat Med
33:4353-4369. Jackson D, White IR, Riley RD (2012) Quantifying the impact of between-study
heterogeneity in multivariate meta-analyses. Stat Med 31:3805-3820 (the generalised DL
estimator netmeta uses).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis._checks import check_choice, check_level
from analysis.network.data import NetworkData, network_data
from analysis.network.graph import GraphFit, dl_tau2, fit_graph, reduced_weights
from analysis.network.likelihood import COVARIANCES, ml_tau2
from analysis.network.results import NetworkFit, NetworkResult

__all__ = ["edge_weights", "network_meta_analysis"]


def edge_weights(data: NetworkData, tau2: float = 0.0,
                 rows: np.ndarray | None = None) -> np.ndarray:
    r"""Reduced weights of the comparison rows (Rücker & Schwarzer 2014).

    Study by study, the contrast variances :math:`\mathrm{seTE}^2 + \tau^2` are turned into
    weights by :func:`analysis.network.graph.reduced_weights`; two-arm studies get
    :math:`1/(\mathrm{seTE}^2 + \tau^2)`. ``rows`` (a boolean mask) restricts to some studies.
    """
    w = np.full(data.te.size, np.nan)
    lab = np.asarray(data.studlab)
    keep = np.ones(data.te.size, bool) if rows is None else rows
    for study in data.studies:
        idx = np.flatnonzero((lab == study) & keep)
        if idx.size == 0:
            continue
        arms = sorted(set(data.a[idx]) | set(data.b[idx]))
        pos = {int(x): i for i, x in enumerate(arms)}
        v = np.zeros((len(arms), len(arms)))
        for k in idx:
            i, j = pos[int(data.a[k])], pos[int(data.b[k])]
            v[i, j] = v[j, i] = data.sete[k] ** 2 + tau2
        red = reduced_weights(v)
        for k in idx:
            w[k] = red[pos[int(data.a[k])], pos[int(data.b[k])]]
    return w


def _direct(data: NetworkData, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Inverse-variance pooled direct estimates as league matrices.

    As netmeta's ``TE.direct.*``: weights ``w`` are :math:`1/(\mathrm{seTE}^2 + \tau^2)`
    of every comparison row, multi-arm rows unreduced.
    """
    n = len(data.treatments)
    sw = np.zeros((n, n))
    swy = np.zeros((n, n))
    for a, b, y, wk in zip(data.a, data.b, data.te, w, strict=True):
        sw[a, b] += wk
        sw[b, a] += wk
        swy[a, b] += wk * y
        swy[b, a] -= wk * y
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.where(sw > 0, swy / sw, np.nan)
        se = np.where(sw > 0, 1.0 / np.sqrt(sw), np.nan)
    return est, se


def _model(data: NetworkData, model: str, tau2: float, level: float) -> tuple[NetworkFit, GraphFit]:
    w = edge_weights(data, tau2)
    g = fit_graph(len(data.treatments), data.a, data.b, data.te, w, data.n_contrasts)
    theta = g.potentials
    est = theta[:, None] - theta[None, :]
    dg = np.diag(g.lplus)
    se = np.sqrt(np.maximum(dg[:, None] + dg[None, :] - 2.0 * g.lplus, 0.0))
    crit = stats.norm.isf((1.0 - level) / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, est / se, np.nan)
    np.fill_diagonal(z, np.nan)
    direct, direct_se = _direct(data, 1.0 / (data.sete**2 + tau2))
    np.fill_diagonal(est, 0.0)
    np.fill_diagonal(se, 0.0)
    fit = NetworkFit(model=model, treatments=data.treatments, estimate=est, se=se,
                     ci_low=est - crit * se, ci_high=est + crit * se, zval=z,
                     pvalue=2.0 * stats.norm.sf(np.abs(z)), direct=direct, direct_se=direct_se,
                     weights=w, fitted=g.fitted, tau2=tau2, level=level)
    return fit, g


def i2_interval(q: float, df: int, level: float) -> tuple[float, float, float]:
    """Return I² (percent) and its interval from the H interval of meta's ``calcH``.

    Higgins & Thompson (2002): test-based for Q > k, else the small-sample form.
    """
    if df <= 0:
        return float("nan"), float("nan"), float("nan")
    k = df + 1
    h = np.sqrt(q / df)
    if q > k:
        se_log = 0.5 * (np.log(q) - np.log(k - 1)) / (np.sqrt(2 * q) - np.sqrt(2 * k - 3))
    else:
        se_log = np.sqrt(1.0 / (2 * (k - 2)) * (1 - 1.0 / (3 * (k - 2) ** 2))) \
            if k > 2 else float("nan")
    crit = stats.norm.isf((1.0 - level) / 2.0)
    lo = max(float(np.exp(np.log(h) - crit * se_log)), 1.0)
    hi = max(float(np.exp(np.log(h) + crit * se_log)), 1.0)

    def i2(x: float) -> float:
        return 100.0 * max(0.0, (x**2 - 1) / x**2)

    return i2(max(h, 1.0)), i2(lo), i2(hi)


def network_meta_analysis(te: Any = "TE", sete: Any = "seTE", treat1: Any = "treat1",
                          treat2: Any = "treat2", studlab: Any = "studlab",
                          data: pd.DataFrame | None = None, *, measure: str | None = None,
                          method_tau: str = "DL", level: float = 0.95,
                          reference: str | None = None,
                          ml_covariance: str = "implied") -> NetworkResult:
    r"""Fit common- and random-effects network meta-analysis (netmeta's ``netmeta``).

    Parameters
    ----------
    te, sete, treat1, treat2, studlab
        Contrast-level data (netmeta's ``TE``, ``seTE``, ``treat1``, ``treat2``,
        ``studlab``): arrays, or column names of ``data`` (the defaults are netmeta's names,
        as :func:`analysis.network.network_pairwise` returns them). ``TE`` is ``treat1``
        versus ``treat2`` on the analysis scale; a multi-arm study gives every comparison of
        its arms.
    data : pandas.DataFrame, optional
        Frame the column names refer to; its ``measure`` column (if any) sets ``measure``.
    measure : str, optional
        Effect measure code, for display (``"OR"``, ``"MD"``, ...).
    method_tau : {"DL", "REML", "ML"}
        Heterogeneity estimator: generalised DerSimonian-Laird (netmeta default), or
        (restricted) maximum likelihood of the contrast-based model with within-study
        random-effects covariance :math:`\tau^2/2` (netmeta via ``rma.mv``).
    level : float
        Confidence level.
    reference : str, optional
        Treatment the summary compares against (netmeta's ``reference.group``; default the
        first treatment). The estimates do not depend on it, except the REML/ML
        :math:`\tau^2` with ``ml_covariance="diagonal"``, whose basic contrasts are taken
        against it.
    ml_covariance : {"implied", "diagonal"}
        Within-study covariance of a multi-arm study's contrasts in the REML/ML likelihood
        (ignored by DL; two-arm studies are unaffected). ``"implied"``: the covariance the
        contrast variances imply (netmeta's, from arm-level data, when it is given
        ``pairwise()`` output). ``"diagonal"``: the contrasts against the reference arm
        taken as independent (netmeta's when it is given only ``TE`` and ``seTE``, as in
        ``netmeta(TE, seTE, treat1, treat2, studlab)``); it ignores a real correlation and
        is there to reproduce netmeta. See :mod:`analysis.network.likelihood`.

    Returns
    -------
    NetworkResult

    Notes
    -----
    Common effects: weights :math:`1/\mathrm{seTE}^2`, reduced for multi-arm studies;
    random effects: the same with :math:`\mathrm{seTE}^2 + \hat\tau^2`. DL:
    :math:`\hat\tau^2 = \max\{0, (Q - df)/\operatorname{tr}[(I - H)(BB^\top\circ E/2)W]\}`.
    Checked against netmeta 2.9-0 on Senn2013 and smokingcessation
    (``tests/reference/netmeta.json``): estimates, standard errors, Q and DL
    :math:`\tau^2` to 1e-10, REML :math:`\tau^2` to 1e-6 (smokingcessation from
    ``pairwise()`` with ``"implied"``; Senn2013 from ``TE``/``seTE`` with ``"diagonal"`` and
    reference ``plac``).
    """
    check_choice("method_tau", method_tau, ("DL", "REML", "ML"))
    check_choice("ml_covariance", ml_covariance, COVARIANCES)
    level = check_level(level)
    if measure is None and data is not None and "measure" in data.columns:
        values = pd.unique(data["measure"])
        if len(values) == 1:
            measure = str(values[0])
    d = network_data(te, sete, treat1, treat2, studlab, data)
    if reference is not None and reference not in d.treatments:
        raise ValueError(f"argument 'reference' = {reference!r} is not a treatment; "
                         f"treatments: {', '.join(d.treatments)}")
    common, g = _model(d, "common", 0.0, level)
    if method_tau == "DL":
        tau2 = dl_tau2(g, common.weights, np.asarray(d.studlab))
    else:
        base = d.treatments.index(reference) if reference is not None else 0
        tau2 = ml_tau2(d, reml=method_tau == "REML", reference=base, covariance=ml_covariance)
    random, _ = _model(d, "random", 0.0 if not np.isfinite(tau2) else tau2, level)
    i2, lo, hi = i2_interval(g.q, g.df, level)
    return NetworkResult(data=d, common=common, random=random, tau2=tau2, q=g.q, df=g.df,
                         pvalue=float(stats.chi2.sf(g.q, g.df)) if g.df > 0 else float("nan"),
                         i2=i2, i2_ci_low=lo, i2_ci_high=hi, method_tau=method_tau,
                         measure=measure, level=level, reference=reference,
                         ml_covariance=ml_covariance)
