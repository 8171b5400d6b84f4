r"""Permutation tests of a pooled model or a meta-regression (metafor ``permutest``).

Follmann & Proschan (1999) test the pooled effect of a random-effects model by flipping the
signs of the effect sizes (under :math:`H_0: \mu = 0` with a symmetric distribution each
sign is equally likely) and refitting; Higgins & Thompson (2004) test the moderators of a
meta-regression by permuting the rows of the design matrix over the studies. The p-value is
the share of the permutation distribution of the test statistic at least as extreme as the
observed one. All :math:`2^k` sign flips, or all distinct permutations of the design's rows,
are used when there are at most ``iter`` of them (exact test), else ``iter`` random ones
(the first being the observed arrangement), as metafor does.

Every refit of a chunk is fitted at once by the batched rma.uni core
(:func:`analysis.heterogeneity.fit_points`: the estimators of :func:`analysis.pool` and
:func:`analysis.meta_regression`); the chunks run here or on any
``concurrent.futures.Executor`` with the same result (:mod:`analysis._executor`).

References
----------
Follmann DA, Proschan MA (1999). Valid inference in random effects meta-analysis.
Biometrics 55:732-737. Higgins JPT, Thompson SG (2004). Controlling the risk of spurious
findings from meta-regression. Stat Med 23:1663-1682. Viechtbauer W, López-López JA,
Sánchez-Meca J, Marín-Martínez F (2015). A comparison of procedures to test for moderators
in mixed-effects meta-regression models. Psychol Methods 20:360-374 (metafor ``permutest``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from analysis._executor import chunk_bounds, chunk_seeds, run_chunks
from analysis.algebra import DesignRows, InterceptRows
from analysis.control import Control
from analysis.heterogeneity import fit_points
from analysis.results import MetaRegressionResult, PermutationResult, PoolResult

__all__ = ["permutest"]

#: Refits per chunk (the unit of work sent to an executor).
CHUNK = 2048
#: Largest exact test enumerated (metafor stops only where the count overflows).
MAX_EXACT = 10**7
#: metafor's ``comptol``: a permuted statistic counts as extreme when it is at least the
#: observed one minus this (so that ties with the observed arrangement count).
COMPTOL = math.sqrt(float(np.finfo(float).eps))


def _multiset_permutations(groups: np.ndarray) -> np.ndarray:
    """Return every distinct arrangement of ``groups`` (integer labels), one per row.

    Lexicographic next-permutation from the sorted labels (Knuth, TAOCP 7.2.1.2, Algorithm
    L), which visits each distinct arrangement once.
    """
    a = sorted(int(g) for g in groups)
    out = [list(a)]
    n = len(a)
    while True:
        j = n - 2
        while j >= 0 and a[j] >= a[j + 1]:
            j -= 1
        if j < 0:
            return np.array(out, dtype=np.int64)
        m = n - 1
        while a[j] >= a[m]:
            m -= 1
        a[j], a[m] = a[m], a[j]
        a[j + 1:] = a[j + 1:][::-1]
        out.append(list(a))


def _n_arrangements(counts: np.ndarray) -> int:
    """Return the number of distinct arrangements of a multiset with these multiplicities."""
    total = math.factorial(int(counts.sum()))
    for c in counts:
        total //= math.factorial(int(c))
    return total


def _stats(fit_beta: np.ndarray, fit_vb: np.ndarray, btt: np.ndarray,
           kh: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return beta, z (t) per coefficient and QM (F under Knapp-Hartung) of every refit."""
    se = np.sqrt(np.diagonal(fit_vb, axis1=1, axis2=2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = fit_beta / se
    b = fit_beta[:, btt]
    vb = fit_vb[:, btt][:, :, btt]
    ok = np.all(np.isfinite(b), axis=1)
    qm = np.full(b.shape[0], np.nan)
    if np.any(ok):
        sol = np.linalg.solve(vb[ok], b[ok][:, :, None])[:, :, 0]
        qm[ok] = np.einsum("ij,ij->i", b[ok], sol)
    return fit_beta, z, qm / btt.size if kh else qm


def _refit_chunk(y: np.ndarray, v: np.ndarray, x: np.ndarray | None, method: str, ci: str,
                 con: Control, btt: np.ndarray, rows: np.ndarray | None,
                 seed: np.random.SeedSequence | None, n: int,
                 first: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refit one chunk: sign flips (``x`` None) or row permutations of ``x``.

    ``rows`` are the exact arrangements of this chunk (signs, or row indices of ``x``);
    otherwise ``n`` random ones are drawn from ``seed``, the first being the observed
    arrangement when ``first``.
    """
    k = y.size
    rng = np.random.default_rng(seed) if rows is None else None
    kh = ci in ("hksj", "hksj_adhoc")
    if x is None:
        signs = np.asarray(rows if rng is None else rng.choice(np.array([-1.0, 1.0]),
                                                                size=(n, k)), dtype=float)
        if first:  # metafor: the first random iteration is the observed arrangement
            signs[0] = 1.0
        yy = signs * y
        d_int = InterceptRows.build(yy, np.broadcast_to(v, yy.shape), np.ones(yy.shape, bool))
        fit = fit_points(d_int, method, ci, control=con)
    else:
        perm = np.asarray(rows if rng is None else np.argsort(rng.random((n, k)), axis=1))
        if first:
            perm[0] = np.arange(k)
        xx = x[perm]
        shape = (perm.shape[0], k)
        d_x = DesignRows.build(np.broadcast_to(y, shape), np.broadcast_to(v, shape), xx)
        fit = fit_points(d_x, method, ci, control=con)
    return _stats(fit.beta, fit.vb, btt, kh)


def _sign_rows(start: int, stop: int, k: int) -> np.ndarray:
    """Sign flips ``start..stop-1`` in metafor's ``expand.grid(c(1, -1))`` order."""
    codes = np.arange(start, stop, dtype=np.int64)
    bits = (codes[:, None] >> np.arange(k, dtype=np.int64)) & 1
    return 1.0 - 2.0 * bits


def _p_two_sided(perm: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Return metafor's ``mean(|z_perm| >= |z_obs| - comptol, na.rm = TRUE)`` per column."""
    ok = np.isfinite(perm)
    hit = (np.abs(perm) >= np.abs(observed) - COMPTOL) & ok
    with np.errstate(invalid="ignore"):
        return np.minimum(hit.sum(axis=0) / ok.sum(axis=0), 1.0)


def permutest(
    result: PoolResult | MetaRegressionResult,
    iter: int = 1000,
    *,
    seed: int | None = None,
    exact: bool | str = "auto",
    control: Control | Mapping[str, Any] | None = None,
    executor: Any = None,
    progress: bool | None = None,
) -> PermutationResult:
    r"""Permutation test of a fitted pooled model or meta-regression (metafor ``permutest``).

    Parameters
    ----------
    result : PoolResult or MetaRegressionResult
        A model of :func:`analysis.pool` (one analysis; the test flips the signs of ``yi``)
        or of :func:`analysis.meta_regression` (the rows of the design are permuted); it
        keeps its data, method, ``ci`` and level, which every refit uses.
    iter : int
        Number of random permutations (metafor ``iter``, at least 2).
    seed : int, optional
        Seed of the random permutations (``numpy.random.SeedSequence``, one child per chunk
        of 2,048, so the draws do not depend on ``executor``).
    exact : {"auto", True, False}
        ``"auto"`` (metafor's ``exact=FALSE``): every arrangement when there are at most
        ``iter`` of them, else ``iter`` random ones; True: every arrangement (at most
        :math:`10^7`); False: random ones even when the exact test is feasible.
    control : Control or dict, optional
        Iteration settings of the refits (as in :func:`analysis.pool`).
    executor : concurrent.futures.Executor, optional
        Runs the chunks (a process pool, a ``dask.distributed.Client``); the same result as
        ``executor=None``.
    progress : bool, optional
        Progress bar over the chunks (default: when standard error is a terminal).

    Returns
    -------
    PermutationResult
        The observed model's coefficients and Wald tests, the permutation p-values
        (``pvalue`` per coefficient, ``qm_pvalue`` of the omnibus test) and the permutation
        distributions.

    Notes
    -----
    p-values as metafor (``alternative="two.sided"``, ``p2defn="abs"``, ``stat="test"``):
    :math:`p = \#\{|z^*| \ge |z| - \epsilon\}/N` per coefficient and
    :math:`\#\{Q_M^* \ge Q_M - \epsilon\}/N` with :math:`\epsilon = \sqrt{\text{eps}}`, over
    the refits that succeeded (``z`` is the t statistic and :math:`Q_M` the F statistic
    under Knapp-Hartung). Exact when :math:`2^k \le` ``iter`` (sign flips) or when the
    distinct arrangements of the design's rows, :math:`k!/\prod m_j!` for rows repeated
    :math:`m_j` times, are at most ``iter``. A random test counts the observed arrangement
    as the first of its ``iter``. The observed statistics that the permuted ones are compared
    with are refitted with ``control`` (give the settings the model was fitted with, as
    metafor's refits use ``res$control``). metafor redraws a random permutation whose refit fails;
    here it stays NaN and is skipped (with the estimators of this engine, which return the
    global ML/REML maximum, refits do not fail in practice).

    Checked against metafor 3.8-1 ``permutest(res, exact = TRUE)`` (Peto 1980 and Crins et
    al. 2014; EE, DL, REML; intercept-only and one moderator): the exact permutation
    distributions and p-values.
    """
    if not isinstance(result, (PoolResult, MetaRegressionResult)):
        raise ValueError(
            f"argument 'result' = {type(result).__name__} is not allowed; use a PoolResult "
            "of pool() (one analysis) or a MetaRegressionResult of meta_regression()")
    if exact not in ("auto", True, False):
        raise ValueError(f"argument 'exact' = {exact!r} is not allowed; use 'auto', True or "
                         "False")
    if isinstance(iter, bool) or not isinstance(iter, (int, np.integer)) or iter < 2:
        raise ValueError(f"argument 'iter' = {iter!r} must be an integer >= 2 (as metafor)")
    con = Control.from_any(control)
    if result.yi is None or result.vi is None:
        raise ValueError("argument 'result' keeps no yi/vi; refit it with pool() or "
                         "meta_regression()")
    y = np.asarray(result.yi, dtype=float)
    v = np.asarray(result.vi, dtype=float)
    if isinstance(result, PoolResult):
        if result.convention != "metafor":
            raise ValueError("argument 'result' was fitted with convention="
                             f"{result.convention!r}; permutest needs convention='metafor'")
        keep = np.isfinite(y) & np.isfinite(v)
        y, v = y[keep], v[keep]
        x = None
        names: tuple[str, ...] = ("intrcpt",)
        btt = np.array([0])
        est = np.array([result.estimate])
        se, zval = np.array([result.se]), np.array([result.zval])
        ci_lo, ci_hi = np.array([result.ci_low]), np.array([result.ci_high])
        pmodel = np.array([result.pvalue])
        kh = result.ci_method in ("hksj", "hksj_adhoc")
        qm = float(result.zval) ** 2
        qm_df: tuple[int, ...] = (1, int(result.q_df)) if kh else (1,)
        qm_p_model = float(result.pvalue)
        n_exact = 2 ** y.size
        kind = "sign-flip"
    else:
        if result.X is None:
            raise ValueError("argument 'result' keeps no design matrix X; refit it with "
                             "meta_regression()")
        x = result.X.to_numpy(dtype=float)
        names = tuple(str(c) for c in result.X.columns)
        p = x.shape[1]
        btt = np.arange(1 if names[0] == "intrcpt" and p > 1 else 0, p)
        est, se = result.coef.to_numpy(dtype=float), result.se.to_numpy(dtype=float)
        zval = result.zval.to_numpy(dtype=float)
        ci_lo, ci_hi = result.ci_low.to_numpy(dtype=float), result.ci_high.to_numpy(dtype=float)
        pmodel = result.pvalue.to_numpy(dtype=float)
        qm, qm_df, qm_p_model = float(result.qm), tuple(result.qm_df), float(result.qm_pvalue)
        _, groups, counts = np.unique(x, axis=0, return_inverse=True, return_counts=True)
        n_exact = _n_arrangements(counts)
        kind = "permutation"
    k = int(y.size)
    use_exact = exact is True or (exact == "auto" and n_exact <= iter)
    if use_exact and n_exact > MAX_EXACT:
        raise ValueError(f"the exact test needs {n_exact} refits (more than {MAX_EXACT}); "
                         "use exact='auto' or False with iter=")
    n = n_exact if use_exact else int(iter)
    bounds = chunk_bounds(n, CHUNK)
    seeds = chunk_seeds(seed, len(bounds))
    tasks: list[tuple[Any, ...]] = []
    arrangements = None
    if use_exact and x is not None:
        arrangements = _row_permutations(groups.ravel())
    for i, (a, b) in enumerate(bounds):
        rows = None
        if use_exact:
            rows = _sign_rows(a, b, k) if x is None else arrangements[a:b]  # type: ignore[index]
        tasks.append((y, v, x, result.method, result.ci_method, con, btt, rows,
                      None if use_exact else seeds[i], b - a, i == 0 and not use_exact))
    parts = run_chunks(_refit_chunk, tasks, executor=executor, progress=progress,
                       desc="permutest")
    beta_perm = np.concatenate([part[0] for part in parts])
    zval_perm = np.concatenate([part[1] for part in parts])
    qm_perm = np.concatenate([part[2] for part in parts])
    # The observed statistics as the refits compute them (the observed arrangement, with the
    # same control): metafor compares with the fit's own zval/QM, which its refits reproduce
    # exactly; a result fitted with other iteration settings would differ in the last digits.
    identity = np.ones((1, k)) if x is None else np.arange(k)[None, :]
    _, z_obs, qm_obs = _refit_chunk(y, v, x, result.method, result.ci_method, con, btt,
                                    identity, None, 1, False)
    pval = _p_two_sided(zval_perm, z_obs[0])
    qm_ok = np.isfinite(qm_perm)
    qm_pval = float(np.sum((qm_perm >= qm_obs[0] - COMPTOL) & qm_ok) / qm_ok.sum())
    return PermutationResult(
        coef_names=names, estimate=est, se=se, zval=zval, ci_low=ci_lo, ci_high=ci_hi,
        pvalue_model=pmodel, pvalue=pval, qm=qm, qm_df=qm_df, qm_pvalue_model=qm_p_model,
        qm_pvalue=qm_pval, iterations=n, exact=use_exact, kind=kind, beta_perm=beta_perm,
        zval_perm=zval_perm, qm_perm=qm_perm, method=result.method,
        ci_method=result.ci_method, level=result.level, k=k, btt=tuple(int(b) for b in btt),
        seed=None if use_exact else seed, measure=result.measure,
    )


def _row_permutations(groups: np.ndarray) -> np.ndarray:
    """Row indices of every distinct arrangement of the design's rows (one per row).

    Study i receives a row of group ``arrangement[i]``; rows of one group are identical, so
    any row of it will do (the first).
    """
    first = np.array([np.flatnonzero(groups == g)[0] for g in range(int(groups.max()) + 1)])
    return first[_multiset_permutations(groups)]
