r"""Cluster-robust inference for meta-analytic models, as metafor ``robust()`` and clubSandwich.

For a fit of :func:`analysis.multilevel.rma_mv` with marginal covariance :math:`M`, or of
:func:`analysis.regression.meta_regression` (:math:`M = \operatorname{diag}(v_i +
\hat\tau^2)`, metafor ``robust.rma.uni``), :math:`W = M^{-1}`, :math:`B = (X'WX)^{-1}`
and residuals :math:`e = y - X\hat\beta`, grouped into n clusters j:

* **CR1** (metafor ``robust(res, cluster)``, ``adjust = TRUE``):
  :math:`\widehat{V}_R = \frac{n}{n-p}\, B \bigl(\sum_j X_j'W_{j\cdot}\, e_j e_j'\,
  W_{\cdot j}X_j\bigr) B` with the rows of :math:`BX'W` of cluster j; t tests and intervals
  on n - p df, the moderators by :math:`F = b'\widehat V_R^{-1}b/m` on (m, n - p). For a
  Knapp-Hartung meta_regression fit B is the fit's ``vcov`` (times :math:`s^2`), as metafor.
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
  block diagonal by cluster), as clubSandwich requires.
* **HTZ test** of q coefficients :math:`C\beta = 0` under CR2 (metafor's QM: clubSandwich
  ``Wald_test(test = "HTZ")``, Hotelling's :math:`T^2` with the degrees of freedom of Tipton
  & Pustejovsky 2015): :math:`Q = (Cb)'(C\widehat V_RC')^{-1}Cb` and
  :math:`F = \frac{\nu - q + 1}{\nu}\frac{Q}{q}` on :math:`(q, \nu - q + 1)` df (F = 0 and
  p NaN when :math:`\nu < q - 1`), :math:`\nu = q(q+1)/\sum_{s,t} \operatorname{Var}_{st}`
  from the covariances of the CR2 estimator's entries under the working model
  (:func:`_htz_nu`). For q = 1, :math:`\nu` is the Satterthwaite df and F = :math:`t^2`;
  the per-coefficient df are computed as exactly that.

Checked against metafor 3.8-1 ``robust()`` and clubSandwich 0.5.8
(``tests/reference/rma_mv_reference.json``, 1e-6; berkey 1e-5 where metafor's fit stops
short): ``dat.konstantopoulos2011`` (districts; intercept only, year, year + year², and the
subset tests ``btt = 2`` and ``btt = c(1, 3)``), ``dat.berkey1998`` (trials; 2 and 4
coefficients, the latter with a negative HTZ df) and ``rma(mods = ~ ablat + year)`` on
``dat.bcg`` (research groups; z and Knapp-Hartung, ``btt = 3``).

References
----------
Hedges LV, Tipton E, Johnson MC (2010). Robust variance estimation in meta-regression with
dependent effect size estimates. Res Synth Methods 1:39-65. Pustejovsky JE, Tipton E (2018).
Small-sample methods for cluster-robust variance estimation and hypothesis testing in fixed
effects models. J Bus Econ Stat 36:672-683. Tipton E, Pustejovsky JE (2015). Small-sample
adjustments for tests of moderators and model fit using robust variance estimation in
meta-regression. J Educ Behav Stat 40:604-634. Bell RM, McCaffrey DF (2002). Bias reduction in
standard errors for linear regression with multi-stage samples. Surv Methodol 28:169-181.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis._checks import check_btt, check_level
from analysis.regression import wald_test
from analysis.results import MetaRegressionResult, MultilevelResult, RobustResult

__all__ = ["robust"]


def _cluster(cluster: Any, model: MultilevelResult | MetaRegressionResult) -> np.ndarray:
    if isinstance(cluster, str):
        data = getattr(model, "data", None)
        if data is None or cluster not in data.columns:
            raise ValueError(f"argument 'cluster' = {cluster!r} names no column of the data "
                             "the model was fitted to (a meta_regression() fit keeps none: "
                             "give the clusters as an array)")
        cluster = data[cluster]
    arr = np.asarray(cluster, dtype=object).reshape(-1)
    if arr.size != model.k:
        raise ValueError(f"argument 'cluster' has {arr.size} values; the model has {model.k} "
                         "estimates")
    if np.any(pd.isna(arr)):
        raise ValueError("argument 'cluster' has missing values")
    return arr


def _arrays(model: MultilevelResult | MetaRegressionResult
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""X, y, marginal covariance M, CR1 bread covariance and CR2 bread :math:`(X'WX)^{-1}`.

    rma_mv: M is the fitted marginal covariance and both breads its ``vcov``. meta_regression:
    :math:`M = \operatorname{diag}(v_i + \hat\tau^2)`; the CR1 bread is the fit's ``vcov``
    (as metafor ``robust.rma.uni``, which under Knapp-Hartung carries its :math:`s^2`
    factor), the CR2 bread the unscaled :math:`(X'M^{-1}X)^{-1}` (as clubSandwich).
    """
    X = np.asarray(model.X, dtype=float)
    y = np.asarray(model.yi, dtype=float)
    vcov = model.vcov.to_numpy(dtype=float)
    if isinstance(model, MultilevelResult):
        return X, y, model.marginal, vcov, vcov
    M = np.diag(np.asarray(model.vi, dtype=float) + model.tau2)
    return X, y, M, vcov, np.linalg.inv(X.T @ np.linalg.solve(M, X))


def _sym_power(a: np.ndarray, power: float) -> np.ndarray:
    """Symmetric matrix power (clubSandwich ``matrix_power``: eigenvalues <= 1e-12 to 0)."""
    vals, vecs = np.linalg.eigh(a)
    keep = vals > 1e-12
    scaled = np.where(keep, np.abs(vals) ** power, 0.0)
    return (vecs * scaled) @ vecs.T


def _cr2(X: np.ndarray, M: np.ndarray, B: np.ndarray, resid: np.ndarray,
         members: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CR2 covariance and, per cluster j, :math:`G_jG_j'` and :math:`H_j` (module docstring).

    Returns ``vcov`` (p x p), ``gram`` (J x p x p, :math:`G_jG_j'` with
    :math:`G_j = BX_j'W_jA_jR_j'`) and ``H`` (J x p x p, :math:`BX_j'W_jA_jX_jL`), the
    ingredients of clubSandwich's ``get_GH`` (working model = the model's weights).
    """
    L = np.linalg.cholesky(B)
    comps, gram, H = [], [], []
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
        MER = ME @ R.T
        gram.append(MER @ MER.T)  # p x p
        H.append(ME @ Xj @ L)  # p x p
    C = np.column_stack(comps)
    vcov = B @ (C @ C.T) @ B
    return vcov, np.stack(gram), np.stack(H)


def _htz_nu(C: np.ndarray, gram: np.ndarray, H: np.ndarray) -> float:
    r"""Degrees of freedom :math:`\nu` of the HTZ test of :math:`C\beta = 0` (q x p ``C``).

    clubSandwich ``Wald_testing(test = "HTZ")``: :math:`P_{st,jk} = \delta_{jk}
    (g_jg_j')_{st} - h_{j,s}\cdot h_{k,t}` with :math:`g_j = CG_j`, :math:`h_j = CH_j`;
    :math:`\Omega = \sum_j P_{\cdot\cdot,jj}`; :math:`\tilde P = \Omega^{-1/2} P
    \Omega^{-1/2}`; :math:`\nu = q(q+1) / \sum_{s,t}\sum_{j,k}(\tilde P_{st,jk}
    \tilde P_{ts,jk} + \tilde P_{ss,jk}\tilde P_{tt,jk})`. The sums over the J x J cluster
    pairs are done in closed form (J x q x q and q x q x p x p arrays, never J x J). For
    q = 1 this is the Satterthwaite df :math:`(\operatorname{tr} P)^2 / \sum P^2`.
    """
    g = C @ gram @ C.T  # J x q x q
    h = C @ H  # J x q x p
    omega = g.sum(axis=0) - np.einsum("jsu,jtu->st", h, h)
    T = _sym_power(omega, -0.5)
    D = T @ g @ T  # J x q x q, the diagonal blocks' G part
    ht = T @ h
    Kd = np.einsum("jsu,jtu->jst", ht, ht)  # the H part of the diagonal blocks
    N = np.einsum("jsu,jtv->stuv", ht, ht)
    d = np.einsum("jss->js", D)
    kd = np.einsum("jss->js", Kd)
    cross = (np.sum(D**2, axis=0) - 2 * np.sum(D * Kd, axis=0)
             + np.einsum("stuv,tsuv->st", N, N))
    same = (d.T @ d - d.T @ kd - kd.T @ d + np.einsum("stuv,stuv->st", N, N))
    q = C.shape[0]
    return float(q * (q + 1) / np.sum(cross + same))


def _htz(b: np.ndarray, vcov: np.ndarray, C: np.ndarray, gram: np.ndarray,
         H: np.ndarray) -> tuple[float, tuple[float, float], float]:
    r"""HTZ Wald test of :math:`C\beta = 0`: F, (q, df), p (clubSandwich ``Hotelling_Tsq``).

    :math:`Q = (Cb)'(CV_RC')^{-1}Cb`, :math:`F = \max(0, (\nu - q + 1)/\nu)\, Q/q` on
    (q, :math:`\nu - q + 1`) df; the p-value is NaN when that df is not positive.
    """
    q = C.shape[0]
    cb = C @ b
    Q = float(cb @ np.linalg.solve(C @ vcov @ C.T, cb))
    nu = _htz_nu(C, gram, H)
    df = nu - q + 1
    F = max(0.0, df / nu) * Q / q
    pval = float(stats.f.sf(F, q, df)) if df > 0 else float("nan")
    return F, (float(q), float(df)), pval


def robust(model: MultilevelResult | MetaRegressionResult, cluster: Any, *,
           clubsandwich: bool = False, btt: int | str | Sequence[int | str] | None = None,
           level: float | None = None) -> RobustResult:
    r"""Cluster-robust tests and intervals of a meta-analytic model (metafor ``robust``).

    Parameters
    ----------
    model : MultilevelResult or MetaRegressionResult
        A fit of :func:`analysis.multilevel.rma_mv` or
        :func:`analysis.regression.meta_regression`.
    cluster : str or array_like
        The cluster of every estimate (or a column of the rma_mv model's ``data``), e.g.
        the study.
    clubsandwich : bool
        False: CR1 with t tests on n - p df (metafor's default). True: CR2 with Satterthwaite
        df per coefficient and the HTZ test of the moderators (metafor ``clubSandwich =
        TRUE``).
    btt : int, str or sequence, optional
        The coefficients the test of moderators (``qm``) tests: names or 0-based positions
        (metafor's ``btt`` of the fit, 1-based). Default: all but the intercept.
    level : float, optional
        Confidence level; default the model's.

    Returns
    -------
    RobustResult

    Raises
    ------
    ValueError
        Not an rma_mv or meta_regression fit, fewer than p + 1 clusters (CR1), (CR2) random
        effects not nested within the clusters, or an unknown ``btt``.

    Notes
    -----
    Formulas and what they were checked against in the module docstring
    (``tests/test_rma_mv.py``).
    """
    if not isinstance(model, (MultilevelResult, MetaRegressionResult)):
        raise ValueError(f"argument 'model' is a {type(model).__name__}; robust() takes a "
                         "fit of rma_mv() or meta_regression()")
    if isinstance(model, MetaRegressionResult) and (model.X is None or model.vi is None):
        raise ValueError("argument 'model' is a meta_regression() fit without its data (X, "
                         "vi); refit it with meta_regression()")
    level = model.level if level is None else check_level(level)
    labels = _cluster(cluster, model)
    order = {lab: i for i, lab in enumerate(pd.unique(labels))}
    codes = np.array([order[lab] for lab in labels])
    n = len(order)
    members = [np.flatnonzero(codes == j) for j in range(n)]
    X, y, M, B_cr1, B_cr2 = _arrays(model)
    p = X.shape[1]
    names = list(model.coef.index)
    b = model.coef.to_numpy(dtype=float)
    resid = y - X @ b
    if btt is None:
        idx = np.arange(1 if names[0] == "intrcpt" and p > 1 else 0, p)
    else:
        idx = check_btt(btt, names)
    C_test = np.eye(p)[idx]
    if clubsandwich:
        if np.any((M != 0) & (codes[:, None] != codes[None, :])):
            raise ValueError("the random effects (or V) are not nested within 'cluster': rows "
                             "of different clusters are correlated; CR2 needs clusters that "
                             "contain every correlated row (e.g. the outermost random factor)")
        if n < 2:
            raise ValueError("argument 'cluster' has a single cluster; CR2 needs at least 2")
        vcov, gram, H = _cr2(X, M, B_cr2, resid, members)
        df = np.array([_htz_nu(np.eye(p)[[i]], gram, H) for i in range(p)])
        qm, qm_df, qm_p = _htz(b, vcov, C_test, gram, H)
        vcov_type = "CR2"
    else:
        if n <= p:
            raise ValueError(f"argument 'cluster' has {n} clusters; CR1 needs more than the "
                             f"{p} coefficients (df = n - p)")
        bread = B_cr1 @ X.T @ np.linalg.inv(M)
        comps = np.column_stack([bread[:, rows] @ resid[rows] for rows in members])
        vcov = (n / (n - p)) * (comps @ comps.T)
        df = np.full(p, float(n - p))
        qm, (df1, df2), qm_p = wald_test(b[idx], vcov[np.ix_(idx, idx)], float(n - p))
        qm_df = (float(df1), float(df2))
        vcov_type = "CR1"
    se = np.sqrt(np.diag(vcov))
    tval = b / se
    pval = 2 * stats.t.sf(np.abs(tval), df)
    crit = stats.t.ppf(0.5 + level / 2, df)

    def series(values: np.ndarray) -> pd.Series:
        return pd.Series(values, index=names)

    return RobustResult(coef=series(b), se=series(se), tval=series(tval), df=series(df),
                        pvalue=series(pval), ci_low=series(b - crit * se),
                        ci_high=series(b + crit * se),
                        vcov=pd.DataFrame(vcov, index=names, columns=names), qm=qm, qm_df=qm_df,
                        qm_pvalue=qm_p, n_clusters=n, vcov_type=vcov_type, level=level,
                        model=model, qm_coefficients=tuple(names[i] for i in idx))
