r"""The graph-theoretical algebra of network meta-analysis (Rücker 2012), private to the package.

A network is a list of *edges* (pairwise comparisons ``treat1`` vs ``treat2`` with estimate
:math:`y_e` and weight :math:`w_e`) over :math:`n` treatments. With the edge-vertex incidence
matrix :math:`B` (:math:`B_{e,a} = 1`, :math:`B_{e,b} = -1` for edge :math:`a` vs :math:`b`) and
:math:`W = \operatorname{diag}(w)`, the Laplacian is :math:`L = B^\top W B`; its Moore-Penrose
pseudoinverse :math:`L^+` gives the treatment potentials :math:`\hat\theta = L^+ B^\top W y`,
every network estimate :math:`\hat\theta_a - \hat\theta_b` with variance (the resistance
distance) :math:`L^+_{aa} + L^+_{bb} - 2L^+_{ab}`, the hat matrix :math:`H = B L^+ B^\top W`
and :math:`Q = (y - Hy)^\top W (y - Hy)`.

Multi-arm studies enter with *reduced* weights (Rücker & Schwarzer 2014): for a study with
:math:`p` arms and contrast variances :math:`V_{ab}`, :math:`L_s = (-\tfrac12 P V P)^+` with
:math:`P = I - J/p`, and the weight of edge :math:`ab` is :math:`-(L_s)_{ab}`. For two arms this
is :math:`1/V_{ab}`.

Every function here works on disconnected graphs too (the pseudoinverse is taken per connected
component), which the design decomposition needs. Checked against netmeta 2.9-0
(``tests/test_network.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GraphFit", "components", "dl_tau2", "fit_graph", "laplacian_pinv", "reduced_weights"]


def components(n: int, a: np.ndarray, b: np.ndarray) -> list[list[int]]:
    """Return the connected components of the graph with nodes ``0..n-1`` and edges ``a[e]-b[e]``.

    Returns the node lists, each sorted, ordered by their smallest node.
    """
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def laplacian_pinv(lap: np.ndarray, parts: list[list[int]]) -> np.ndarray:
    r"""Moore-Penrose pseudoinverse of a graph Laplacian, component by component.

    For a connected block of size :math:`s`, :math:`L^+ = (L + J/s)^{-1} - J/s` (exact, no
    singular-value cut-off); isolated nodes get zero rows.
    """
    out = np.zeros_like(lap)
    for part in parts:
        if len(part) < 2:
            continue
        idx = np.ix_(part, part)
        j = np.full((len(part), len(part)), 1.0 / len(part))
        out[idx] = np.linalg.inv(lap[idx] + j) - j
    return out


def reduced_weights(variances: np.ndarray) -> np.ndarray:
    r"""Reduced edge weights of one study from its matrix of contrast variances.

    Parameters
    ----------
    variances : numpy.ndarray
        ``p x p`` symmetric, :math:`V_{ab}` = variance of the contrast of arms ``a`` and ``b``
        (zero diagonal).

    Returns
    -------
    numpy.ndarray
        ``p x p`` weights :math:`W_{ab} = -(L_s)_{ab}`, :math:`L_s = (-\tfrac12 P V P)^+`.
    """
    p = variances.shape[0]
    if p == 2:
        w = 1.0 / variances[0, 1]
        return np.array([[0.0, w], [w, 0.0]])
    centre = np.eye(p) - 1.0 / p
    lplus = -0.5 * centre @ variances @ centre
    j = np.full((p, p), 1.0 / p)
    lap = np.linalg.inv(lplus + j) - j
    out = -lap
    np.fill_diagonal(out, 0.0)
    return out


@dataclass(frozen=True, slots=True)
class GraphFit:
    r"""Weighted least-squares fit of a (possibly disconnected) network.

    ``potentials`` are the node values :math:`\hat\theta`, ``lplus`` :math:`L^+`, ``hat`` the
    edge hat matrix, ``fitted`` :math:`Hy`, ``q`` the residual quadratic form and ``df`` its
    degrees of freedom (number of independent contrasts minus rank of :math:`L`).
    """

    potentials: np.ndarray
    lplus: np.ndarray
    hat: np.ndarray
    fitted: np.ndarray
    q: float
    df: int
    incidence: np.ndarray


def fit_graph(n: int, a: np.ndarray, b: np.ndarray, y: np.ndarray, w: np.ndarray,
              n_contrasts: int) -> GraphFit:
    """Fit the network of edges ``a[e]`` vs ``b[e]`` (estimate ``y``, weight ``w``).

    ``n_contrasts`` is the number of independent contrasts (sum over studies of arms - 1).
    """
    m = y.size
    inc = np.zeros((m, n))
    inc[np.arange(m), a] = 1.0
    inc[np.arange(m), b] = -1.0
    parts = components(n, a, b)
    lap = inc.T @ (w[:, None] * inc)
    lplus = laplacian_pinv(lap, parts)
    potentials = lplus @ (inc.T @ (w * y))
    hat = inc @ lplus @ inc.T * w[None, :]
    fitted = inc @ potentials
    resid = y - fitted
    rank = n - len(parts)
    return GraphFit(potentials=potentials, lplus=lplus, hat=hat, fitted=fitted,
                    q=float(np.sum(w * resid**2)), df=n_contrasts - rank, incidence=inc)


def dl_tau2(fit: GraphFit, w: np.ndarray, study: np.ndarray) -> float:
    r"""Generalised DerSimonian-Laird :math:`\tau^2` of netmeta (Jackson et al. 2012 form).

    :math:`\hat\tau^2 = \max\{0, (Q - df) / \operatorname{tr}[(I - H)(BB^\top \circ E/2)W]\}`,
    with :math:`E_{ef} = 1` when edges ``e`` and ``f`` come from the same study (the
    random-effects covariance of contrasts within a multi-arm study is :math:`\tau^2/2`).
    NaN when ``df`` is 0.
    """
    if fit.df <= 0:
        return float("nan")
    same = (study[:, None] == study[None, :]).astype(float)
    inc = fit.incidence
    struct = inc @ inc.T * same / 2.0
    denom = float(np.trace((np.eye(w.size) - fit.hat) @ struct * w[None, :]))
    return max(0.0, (fit.q - fit.df) / denom)
