r"""Decomposition of the network Q into within- and between-design parts (netmeta).

netmeta ``decomp.design``; Krahn, Binder, König 2013, BMC Med Res Methodol 13:35.

:math:`Q_{total}` is the Q of the common-effects network; :math:`Q_{within}` the sum over
designs of the Q of each design's studies fitted on their own (the full design-by-treatment
interaction model, a disconnected graph with one copy of each treatment per design);
:math:`Q_{between} = Q_{total} - Q_{within}`. ``detached``: the between-designs Q when one
design gets its own parameters (the network without it, plus nothing from it).
``between_random``: both models refitted with :math:`\tau^2_{within}`, the generalised DL
estimate of the design-by-treatment model, and differenced.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.network.data import NetworkData
from analysis.network.graph import GraphFit, dl_tau2, fit_graph
from analysis.network.model import edge_weights
from analysis.network.results import DesignDecompositionResult, NetworkResult

__all__ = ["decomp_design"]


def _p(q: float, df: int) -> float:
    return float(stats.chi2.sf(q, df)) if df > 0 else float("nan")


def _fit(data: NetworkData, rows: np.ndarray, w: np.ndarray, by_design: bool) -> GraphFit:
    """Fit the rows ``rows``; with ``by_design`` each design's treatments are separate nodes."""
    design = np.asarray(data.design)[rows]
    a, b = data.a[rows], data.b[rows]
    n = len(data.treatments)
    if by_design:
        codes = {d: i for i, d in enumerate(dict.fromkeys(design))}
        offset = np.array([codes[d] * n for d in design])
        a, b, n = a + offset, b + offset, n * len(codes)
    studies = set(np.asarray(data.studlab)[rows])
    n_contrasts = sum(data.n_arms[s] - 1 for s in studies)
    return fit_graph(n, a, b, data.te[rows], w[rows], n_contrasts)


def decomp_design(result: NetworkResult) -> DesignDecompositionResult:
    """Q decomposition of a network meta-analysis into within and between designs.

    Parameters
    ----------
    result : NetworkResult

    Returns
    -------
    DesignDecompositionResult

    Notes
    -----
    Checked against netmeta 2.9-0 ``decomp.design`` on Senn2013 and smokingcessation: Q
    table, per-design Q, detached Q and the random-effects between-designs Q with
    ``tau.within`` to 1e-10.
    """
    if not isinstance(result, NetworkResult):
        raise ValueError("argument 'result' must be a NetworkResult from "
                         f"network_meta_analysis, not {type(result).__name__}")
    data = result.data
    everything = np.ones(data.te.size, bool)
    w = result.common.weights
    total = _fit(data, everything, w, False)
    within = _fit(data, everything, w, True)
    design = np.asarray(data.design)
    designs = list(dict.fromkeys(sorted(set(design), key=lambda x: (x.count(":"), x))))
    per = []
    detached = []
    for d in designs:
        mask = design == d
        f = _fit(data, mask, w, False)
        per.append({"design": d, "Q": f.q, "df": f.df, "pvalue": _p(f.q, f.df)})
        rest = _fit(data, ~mask, w, True) if (~mask).any() else None
        rest_net = _fit(data, ~mask, w, False) if (~mask).any() else None
        if rest is None or rest_net is None:
            continue
        q_inc = rest_net.q - rest.q
        df_inc = rest_net.df - rest.df
        if df_inc == total.df - within.df:  # a design no loop runs through: as netmeta, no row
            continue
        detached.append({"design": d, "Q": q_inc, "df": df_inc, "pvalue": _p(q_inc, df_inc)})
    q_between, df_between = total.q - within.q, total.df - within.df
    table = pd.DataFrame({"source": ["Total", "Within designs", "Between designs"],
                          "Q": [total.q, within.q, q_between],
                          "df": [total.df, within.df, df_between],
                          "pvalue": [_p(total.q, total.df), _p(within.q, within.df),
                                     _p(q_between, df_between)]})
    tau2_w = dl_tau2(within, w, np.asarray(data.studlab))
    tau2_w = 0.0 if not np.isfinite(tau2_w) else tau2_w
    wr = edge_weights(data, tau2_w)
    q_rand = _fit(data, everything, wr, False).q - _fit(data, everything, wr, True).q
    return DesignDecompositionResult(q_table=table, within=pd.DataFrame(per),
                                     detached=pd.DataFrame(detached), q_between_random=q_rand,
                                     df_between_random=df_between,
                                     pvalue_between_random=_p(q_rand, df_between),
                                     tau_within=float(np.sqrt(tau2_w)))
