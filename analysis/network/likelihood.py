r"""REML / ML heterogeneity variance of the contrast-based network model (netmeta via rma.mv).

Each study contributes its basic contrasts (every arm against its first arm, in treatment
order), with known covariance from the contrast variances (:math:`\operatorname{Cov}
(y_{bk}, y_{bl}) = (V_{bk} + V_{bl} - V_{kl})/2`, the variance of the baseline arm) and
random effects of variance :math:`\tau^2` and within-study covariance :math:`\tau^2/2`
(consistency of a homogeneous network, netmeta's ``rma.mv(..., rho = 0.5)``). The
(restricted) likelihood in :math:`\tau^2` is maximised by the multivariate fitter of
:mod:`analysis.dose._engine` (global grid search, Brent, then Fisher scoring).
"""

from __future__ import annotations

import numpy as np

from analysis.dose._engine import _Eval, _OneVariance, _scalar_search
from analysis.network.data import NetworkData

__all__ = ["basic_contrasts", "ml_tau2"]


def basic_contrasts(data: NetworkData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the basic contrasts ``y``, design ``X``, known ``V`` and structure ``G``.

    ``X`` has columns for treatments 2..n; ``G`` is 1 on the diagonal, 1/2 within a study.
    """
    n = len(data.treatments)
    lab = np.asarray(data.studlab)
    ys: list[float] = []
    xs: list[np.ndarray] = []
    blocks_v: list[np.ndarray] = []
    for study in data.studies:
        idx = np.flatnonzero(lab == study)
        arms = sorted(set(data.a[idx].tolist()) | set(data.b[idx].tolist()))
        var: dict[tuple[int, int], float] = {}
        eff: dict[tuple[int, int], float] = {}
        for k in idx:
            a, b = int(data.a[k]), int(data.b[k])
            var[(a, b)] = var[(b, a)] = float(data.sete[k] ** 2)
            eff[(a, b)], eff[(b, a)] = float(data.te[k]), -float(data.te[k])
        base, others = arms[0], arms[1:]
        for o in others:
            ys.append(eff[(o, base)])
            x = np.zeros(n)
            x[o], x[base] = 1.0, -1.0
            xs.append(x)
        v = np.array([[var[(base, k)] if k == m else
                       (var[(base, k)] + var[(base, m)] - var[(k, m)]) / 2.0
                       for m in others] for k in others])
        blocks_v.append(v)
    size = len(ys)
    V = np.zeros((size, size))
    G = np.zeros((size, size))
    start = 0
    for v in blocks_v:
        p = v.shape[0]
        V[start:start + p, start:start + p] = v
        G[start:start + p, start:start + p] = (np.eye(p) + 1.0) / 2.0
        start += p
    return np.array(ys), np.array(xs)[:, 1:], V, G


def ml_tau2(data: NetworkData, *, reml: bool = True) -> float:
    r"""(Restricted) maximum-likelihood :math:`\tau^2` of the network (>= 0).

    Checked against netmeta 2.9-0 ``method.tau = "REML"`` (Senn2013, smokingcessation) to 1e-6.
    """
    y, X, V, G = basic_contrasts(data)
    if y.size <= X.shape[1]:
        return float("nan")
    t = float(_scalar_search(_OneVariance(y, X, V, G, reml))[0])
    for _ in range(50):  # Fisher scoring polish (interior optimum only)
        if t <= 0.0:
            break
        ev = _Eval(y, X, V, [G], np.array([t]), reml)
        score, info = ev.score_info([G])
        step = float(score[0] / info[0, 0])
        new = max(t + step, 0.0)
        if abs(new - t) <= 1e-14 * max(t, 1e-300):
            t = new
            break
        t = new
    return t
