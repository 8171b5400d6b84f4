r"""REML / ML heterogeneity variance of the contrast-based network model (netmeta via rma.mv).

As netmeta's ``netmeta(..., method.tau = "REML")``, each study contributes its basic
contrasts: every arm against the study's base arm, which is the reference treatment if the
study has it and otherwise the study's last treatment in sorted order. Their known covariance
is either

- ``"implied"``: :math:`\operatorname{Cov}(y_{kb}, y_{lb}) = (V_{bk} + V_{bl} - V_{kl})/2`,
  the variance of the base arm implied by the contrast variances (what netmeta's ``calcV``
  computes from arm-level data, netmeta's call on ``pairwise()`` output), or
- ``"diagonal"``: the basic contrasts taken as independent, ``V = seTE^2`` (netmeta's call on
  contrast-level ``TE``/``seTE`` only, where it has no arm-level data).

Both agree on two-arm studies. ``"implied"`` does not depend on the base arm (changing it is a
linear map of the contrasts that carries the implied covariance along, whether or not the
contrast variances are consistent); ``"diagonal"`` does, which is why the base arm follows
netmeta's rule. Random effects have variance :math:`\tau^2` and
within-study covariance :math:`\tau^2/2` (consistency of a homogeneous network, netmeta's
``rma.mv(random = ~ factor(comparison) | studlab, rho = 0.5)``). The (restricted) likelihood
in :math:`\tau^2` is maximised by the multivariate fitter of :mod:`analysis.dose._engine`
(global grid search, Brent, then Fisher scoring).
"""

from __future__ import annotations

import numpy as np

from analysis._checks import check_choice
from analysis.dose._engine import _Eval, _OneVariance, _scalar_search
from analysis.network.data import NetworkData

__all__ = ["COVARIANCES", "basic_contrasts", "ml_tau2"]

COVARIANCES = ("implied", "diagonal")


def basic_contrasts(data: NetworkData, *, reference: int = 0, covariance: str = "implied",
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the basic contrasts ``y``, design ``X``, known ``V`` and structure ``G``.

    ``reference`` indexes ``data.treatments``: the base arm of every study that has it (else
    the study's last treatment). ``covariance`` is ``"implied"`` or ``"diagonal"`` (see the
    module notes). ``X`` has columns for treatments 2..n; ``G`` is 1 on the diagonal, 1/2
    within a study.
    """
    check_choice("covariance", covariance, COVARIANCES)
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
        base = reference if reference in arms else arms[-1]
        others = [o for o in arms if o != base]
        for o in others:
            ys.append(eff[(o, base)])
            x = np.zeros(n)
            x[o], x[base] = 1.0, -1.0
            xs.append(x)
        v = np.array([[var[(base, k)] if k == m else
                       0.0 if covariance == "diagonal" else
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


def ml_tau2(data: NetworkData, *, reml: bool = True, reference: int = 0,
            covariance: str = "implied") -> float:
    r"""(Restricted) maximum-likelihood :math:`\tau^2` of the network (>= 0).

    ``reference`` and ``covariance`` as :func:`basic_contrasts`. Checked against netmeta
    2.9-0 ``method.tau = "REML"`` to 1e-6: smokingcessation (``pairwise()`` input,
    ``"implied"``) and Senn2013 (``TE``/``seTE`` input, ``"diagonal"``, reference ``plac``).
    """
    y, X, V, G = basic_contrasts(data, reference=reference, covariance=covariance)
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
