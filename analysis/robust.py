r"""Cluster-robust inference for multilevel models, as metafor ``robust()`` and clubSandwich.

For a fit of :func:`analysis.multilevel.rma_mv` with marginal covariance :math:`M`,
:math:`W = M^{-1}`, :math:`B = (X'WX)^{-1}` and residuals :math:`e = y - X\hat\beta`,
grouped into n clusters j:

* **CR1** (metafor ``robust(res, cluster)``, ``adjust = TRUE``):
  :math:`\widehat{V}_R = \frac{n}{n-p}\, B \bigl(\sum_j X_j'W_{j\cdot}\, e_j e_j'\,
  W_{\cdot j}X_j\bigr) B` with the rows of :math:`BX'W` of cluster j; t tests and intervals
  on n - p df, the moderators by :math:`F = b'\widehat V_R^{-1}b/m` on (m, n - p).
* **CR2** (metafor ``robust(..., clubSandwich = TRUE)``: clubSandwich ``vcovCR(type =
  "CR2")`` with the model's weights as working model, ``coef_test(test =
  "Satterthwaite")``): with :math:`\Theta_j = M_{jj} = R_j'R_j` and
  :math:`IH_j = I - X_j B X_j' W_j`, the adjustment
  :math:`A_j = R_j' (R_j\, IH_j\, \Theta_j R_j')^{-1/2} R_j` (symmetric power, eigenvalues
  below 1e-12 set to 0), :math:`\widehat V_R = B\{\sum_j X_j'W_jA_j e_j e_j' A_j W_j X_j\}B`.
  Satterthwaite df of coefficient i: :math:`\nu_i = (\operatorname{tr} P_i)^2 /
  \sum P_i^2`, :math:`P_i = \operatorname{diag}_j(\lVert g_{ji}\rVert^2) - H_i'H_i` with
  :math:`g_{ji}` row i of :math:`BX_j'W_jA_jR_j'` and column j of :math:`H_i` row i of
  :math:`BX_j'W_jA_jX_jL` (:math:`B = LL'`) (Pustejovsky & Tipton 2018; Bell & McCaffrey
  2002). The random effects must be nested within the clusters (the marginal covariance
  block diagonal by cluster), as clubSandwich requires. A test of one moderator is
  :math:`t^2` on (1, :math:`\nu`); the HTZ test of several is not implemented (NaN).

Checked against metafor 3.8-1 ``robust()`` and clubSandwich 0.5.8 on the
``dat.konstantopoulos2011`` fits (``tests/reference/rma_mv_reference.json``).

References
----------
Hedges LV, Tipton E, Johnson MC (2010). Robust variance estimation in meta-regression with
dependent effect size estimates. Res Synth Methods 1:39-65. Pustejovsky JE, Tipton E (2018).
Small-sample methods for cluster-robust variance estimation and hypothesis testing in fixed
effects models. J Bus Econ Stat 36:672-683. Bell RM, McCaffrey DF (2002). Bias reduction in
standard errors for linear regression with multi-stage samples. Surv Methodol 28:169-181.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis._checks import check_level
from analysis.results import MultilevelResult, RobustResult

__all__ = ["robust"]


def _cluster(cluster: Any, model: MultilevelResult) -> np.ndarray:
    if isinstance(cluster, str):
        if model.data is None or cluster not in model.data.columns:
            raise ValueError(f"argument 'cluster' = {cluster!r} names no column of the data "
                             "the model was fitted to")
        cluster = model.data[cluster]
    arr = np.asarray(cluster, dtype=object).reshape(-1)
    if arr.size != model.k:
        raise ValueError(f"argument 'cluster' has {arr.size} values; the model has {model.k} "
                         "estimates")
    if np.any(pd.isna(arr)):
        raise ValueError("argument 'cluster' has missing values")
    return arr


def _sym_power(a: np.ndarray, power: float) -> np.ndarray:
    """Symmetric matrix power (clubSandwich ``matrix_power``: eigenvalues <= 1e-12 to 0)."""
    vals, vecs = np.linalg.eigh(a)
    keep = vals > 1e-12
    scaled = np.where(keep, np.abs(vals) ** power, 0.0)
    return (vecs * scaled) @ vecs.T


def _cr2(X: np.ndarray, M: np.ndarray, B: np.ndarray, resid: np.ndarray,
         members: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """CR2 covariance and Satterthwaite df per coefficient (module docstring)."""
    p = X.shape[1]
    L = np.linalg.cholesky(B)
    comps, g_sq, H = [], [], []
    for rows in members:
        Xj, Th = X[rows], M[np.ix_(rows, rows)]
        Wj = np.linalg.inv(Th)
        R = np.linalg.cholesky(Th).T  # upper: Theta = R'R
        IH = np.eye(rows.size) - Xj @ B @ Xj.T @ Wj
        G = R @ IH @ Th @ R.T
        A = R.T @ _sym_power(G, -0.5) @ R
        E = Xj.T @ Wj @ A  # p x n_j
        comps.append(E @ resid[rows])
        ME = B @ E
        g_sq.append(np.sum((ME @ R.T) ** 2, axis=1))  # (p,)
        H.append(ME @ Xj @ L)  # p x p
    C = np.column_stack(comps)
    vcov = B @ (C @ C.T) @ B
    df = np.empty(p)
    for i in range(p):
        Hi = np.column_stack([h[i] for h in H])  # p x J
        P = np.diag([g[i] for g in g_sq]) - Hi.T @ Hi
        df[i] = np.trace(P) ** 2 / np.sum(P**2)
    return vcov, df


def robust(model: MultilevelResult, cluster: Any, *, clubsandwich: bool = False,
           level: float | None = None) -> RobustResult:
    r"""Cluster-robust tests and intervals of a multilevel model (metafor ``robust``).

    Parameters
    ----------
    model : MultilevelResult
        A fit of :func:`analysis.multilevel.rma_mv`.
    cluster : str or array_like
        The cluster of every estimate (or a column of the model's ``data``), e.g. the study.
    clubsandwich : bool
        False: CR1 with t tests on n - p df (metafor's default). True: CR2 with Satterthwaite
        df per coefficient (metafor ``clubSandwich = TRUE``).
    level : float, optional
        Confidence level; default the model's.

    Returns
    -------
    RobustResult

    Raises
    ------
    ValueError
        Not a multilevel fit, fewer than p + 1 clusters (CR1), or (CR2) random effects not
        nested within the clusters.

    Notes
    -----
    Formulas in the module docstring; metafor and clubSandwich agree with these to 1e-6
    (``tests/test_rma_mv.py``).
    """
    if not isinstance(model, MultilevelResult):
        raise ValueError(f"argument 'model' is a {type(model).__name__}; robust() takes a "
                         "fit of rma_mv()")
    level = model.level if level is None else check_level(level)
    labels = _cluster(cluster, model)
    order = {lab: i for i, lab in enumerate(pd.unique(labels))}
    codes = np.array([order[lab] for lab in labels])
    n = len(order)
    members = [np.flatnonzero(codes == j) for j in range(n)]
    X = model.X.to_numpy(dtype=float)
    p = X.shape[1]
    names = list(model.coef.index)
    b = model.coef.to_numpy(dtype=float)
    B = model.vcov.to_numpy(dtype=float)
    M = model.marginal
    resid = model.yi - X @ b
    if clubsandwich:
        if np.any((M != 0) & (codes[:, None] != codes[None, :])):
            raise ValueError("the random effects (or V) are not nested within 'cluster': rows "
                             "of different clusters are correlated; CR2 needs clusters that "
                             "contain every correlated row (e.g. the outermost random factor)")
        if n < 2:
            raise ValueError("argument 'cluster' has a single cluster; CR2 needs at least 2")
        vcov, df = _cr2(X, M, B, resid, members)
        vcov_type = "CR2"
    else:
        if n <= p:
            raise ValueError(f"argument 'cluster' has {n} clusters; CR1 needs more than the "
                             f"{p} coefficients (df = n - p)")
        bread = B @ X.T @ np.linalg.inv(M)
        comps = np.column_stack([bread[:, rows] @ resid[rows] for rows in members])
        vcov = (n / (n - p)) * (comps @ comps.T)
        df = np.full(p, float(n - p))
        vcov_type = "CR1"
    se = np.sqrt(np.diag(vcov))
    tval = b / se
    pval = 2 * stats.t.sf(np.abs(tval), df)
    crit = stats.t.ppf(0.5 + level / 2, df)
    has_int = names[0] == "intrcpt"
    idx = list(range(1 if has_int and p > 1 else 0, p))
    if len(idx) == 1:
        qm, qm_df, qm_p = float(tval[idx[0]] ** 2), (1.0, float(df[idx[0]])), float(pval[idx[0]])
    elif vcov_type == "CR1":
        sub = b[idx]
        qm = float(sub @ np.linalg.solve(vcov[np.ix_(idx, idx)], sub)) / len(idx)
        qm_df = (float(len(idx)), float(n - p))
        qm_p = float(stats.f.sf(qm, len(idx), n - p))
    else:
        qm, qm_df, qm_p = float("nan"), (float(len(idx)), float("nan")), float("nan")

    def series(values: np.ndarray) -> pd.Series:
        return pd.Series(values, index=names)

    return RobustResult(coef=series(b), se=series(se), tval=series(tval), df=series(df),
                        pvalue=series(pval), ci_low=series(b - crit * se),
                        ci_high=series(b + crit * se),
                        vcov=pd.DataFrame(vcov, index=names, columns=names), qm=qm, qm_df=qm_df,
                        qm_pvalue=qm_p, n_clusters=n, vcov_type=vcov_type, level=level,
                        model=model)
