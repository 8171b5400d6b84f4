r"""GOSH: the model fitted to every subset of the studies (metafor ``gosh``).

The graphical display of study heterogeneity (Olkin, Dahabreh & Trikalinos 2012) fits the
meta-analytic model to each of the :math:`2^k - 1` non-empty subsets of the k studies, or to
a random sample of subsets when there are too many, and plots the pooled estimate against
I². Clusters in that cloud point to studies whose inclusion changes the result;
:func:`gosh_diagnostics` names them.

All subsets of a chunk are fitted at once by the batched rma.uni core
(:func:`analysis.heterogeneity.fit_points`, the same estimators as :func:`analysis.pool`):
the closed-form estimators (FE, DL, HS, HE, SJ) on the subset sums of
:class:`analysis.algebra.SubsetRows` (the fixed-effect sums and Q of every subset from
products of the inclusion matrix, then one weighted pass for the random-effects estimate),
the iterative ones on padded rows;
the chunks run in this process or on any ``concurrent.futures.Executor`` (a process pool, a
Dask client) with the same result (:mod:`analysis._executor`).

References
----------
Olkin I, Dahabreh IJ, Trikalinos TA (2012). GOSH - a graphical display of study
heterogeneity. Res Synth Methods 3:214-223. Harrer M, Cuijpers P, Furukawa TA, Ebert DD
(2021). Doing Meta-Analysis with R: A Hands-On Guide, ch. 5.4.2 (GOSH plot analysis).
Viechtbauer W (2010). J Stat Softw 36(3) (metafor ``gosh``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis._checks import check_choice
from analysis._executor import chunk_bounds, chunk_seeds, run_chunks
from analysis._inputs import omit_missing
from analysis.algebra import InterceptRows, SubsetRows
from analysis.control import METHODS, Control
from analysis.heterogeneity import fit_points
from analysis.results import GoshResult
from analysis.sensitivity import fitted_data

__all__ = ["gosh", "gosh_diagnostics", "subset_codes"]

#: metafor's default ``subsets``: all subsets when there are at most this many, else a random
#: sample of this size.
DEFAULT_SUBSETS = 10**6
#: Subsets fitted per chunk: the n x k work arrays of a chunk stay in the cache (k = 16:
#: 0.5 MB each; measured fastest between 2,048 and 16,384), and a chunk is the unit of
#: work sent to an executor.
CHUNK = 4096
#: The estimators of closed form, fitted from subset sums (:class:`analysis.algebra.SubsetRows`).
CLOSED_FORMS = frozenset({"FE", "DL", "HS", "HE", "SJ"})
#: The rule of :func:`gosh_diagnostics`: a study separates the two clusters when the share
#: of subsets containing it differs between them by more than this.
SEPARATION = 0.5
#: ... provided the two clusters are distinct: they hold more than this share of the total
#: sum of squares between them (a unimodal normal cloud split in two holds 2/pi = 0.64 along
#: its axis, less in two dimensions).
DISTINCT = 0.8


def subset_codes(k: int) -> np.ndarray:
    """Return the non-empty subsets of k studies as integers, in metafor's order.

    Bit j of a code is study j. metafor (``gosh.rma``) enumerates ``expand.grid`` (study 1
    fastest, i.e. the codes 1, 2, ..., :math:`2^k - 1`) and orders the subsets by size with
    a stable sort; so do we.
    """
    sizes = np.zeros(2**k, dtype=np.uint8)  # the size of subset c; k < 256
    for j in range(k):  # the codes with top bit j are those below 2^j plus study j
        sizes[2**j:2 ** (j + 1)] = sizes[:2**j] + 1
    return np.argsort(sizes[1:], kind="stable").astype(np.int64) + 1


def _masks(codes: np.ndarray, k: int) -> np.ndarray:
    """Return the subsets x k inclusion matrix of ``codes`` (bit j: study j)."""
    octets = codes.astype("<i8").view(np.uint8).reshape(-1, 8)[:, :(k + 7) // 8]
    return np.unpackbits(octets, axis=1, count=k, bitorder="little").view(bool)


def _random_masks(seed: np.random.SeedSequence | None, n: int, k: int) -> np.ndarray:
    """Random non-empty subsets, each study included with probability 1/2.

    metafor draws a size m from Binomial(k, 1/2) restricted to m >= 1, then m studies at
    random: the same distribution as independent inclusion with probability 1/2 given a
    non-empty subset, which is what this draws (rejecting empty subsets).
    """
    rng = np.random.default_rng(seed)
    incl = rng.random((n, k)) < 0.5
    empty = ~incl.any(axis=1)
    while np.any(empty):
        incl[empty] = rng.random((int(empty.sum()), k)) < 0.5
        empty = ~incl.any(axis=1)
    return incl


def _fit_chunk(y: np.ndarray, v: np.ndarray, method: str, con: Control, k: int,
               codes: np.ndarray | None, seed: np.random.SeedSequence | None,
               n: int) -> dict[str, np.ndarray]:
    """Fit one chunk of subsets: all of ``codes``, or ``n`` random ones from ``seed``."""
    incl = _masks(codes, k) if codes is not None else _random_masks(seed, n, k)
    d: SubsetRows | InterceptRows
    if method in CLOSED_FORMS:  # subset sums: one matrix product per projection
        d = SubsetRows.build(y, v, incl)
    else:
        d = InterceptRows.build(np.broadcast_to(y, incl.shape), np.broadcast_to(v, incl.shape),
                                incl)
    # metafor's gosh() computes FE and DL subsets in closed form with the Q-based
    # I² = (Q - df)/Q and H² = Q/df (for DL: H² < 1 where tau² is truncated at 0, where rma()
    # would give 1); every other estimator through rma(): I² and H² from tau².
    fit = fit_points(d, method, control=con,
                     convention="revman5" if method in ("FE", "DL") else "metafor")
    return {"incl": incl, "k": d.k.astype(np.int64), "estimate": fit.beta[:, 0],
            "tau2": fit.tau2, "q": fit.q, "i2": fit.i2, "h2": fit.h2,
            "converged": fit.converged}


def gosh(
    yi: Any,
    vi: Any = None,
    method: str | None = None,
    *,
    subsets: int | None = None,
    seed: int | None = None,
    study: Any = None,
    control: Control | Mapping[str, Any] | None = None,
    executor: Any = None,
    progress: bool | None = None,
) -> GoshResult:
    r"""Fit the model to every subset of the studies, or to a random sample of subsets.

    Parameters
    ----------
    yi, vi : array_like or PoolResult
        A fitted :class:`~analysis.results.PoolResult` (``gosh(pool(...))``, as metafor's
        ``gosh(res)``: its ``yi``, ``vi``, ``study``, ``method`` and ``measure`` are used),
        or effect sizes and sampling variances (or a frame with ``yi`` and ``vi``).
    method : str, optional
        Any estimator of :func:`analysis.pool` (``"FE"``, ``"DL"``, ``"REML"``, ``"PM"``,
        ...); default the result's, else ``"REML"``.
    subsets : int, optional
        metafor's ``subsets``: when :math:`2^k - 1` is at most this, every subset is fitted
        (in metafor's order), otherwise this many random subsets. Default :math:`10^6`, as
        metafor (every subset up to k = 19).
    seed : int, optional
        Seed of the random subsets (``numpy.random.SeedSequence``; one child per chunk of
        4,096 subsets, so the sample does not depend on ``executor``). Ignored when every
        subset is fitted.
    study : array_like, optional
        Study labels (default the result's or the frame's, else ``"1"``..``"k"``).
    control : Control or dict, optional
        Iteration settings of the iterative estimators, as in :func:`analysis.pool`.
    executor : concurrent.futures.Executor, optional
        Runs the chunks (e.g. ``ProcessPoolExecutor()``, a ``dask.distributed.Client``);
        the result is identical to ``executor=None`` (this process).
    progress : bool, optional
        Show a progress bar over the chunks (default: when standard error is a terminal).

    Returns
    -------
    GoshResult
        Per subset ``estimate``, ``tau2``, ``i2`` (percent), ``h2``, ``q``, ``k`` and the
        inclusion matrix ``incl`` (subsets x studies); ``summary()``, ``to_frame()``.

    Raises
    ------
    ValueError
        Fewer than two studies with ``yi`` and ``vi``, or invalid arguments. Studies with a
        missing value are left out (as metafor's model does) with an
        :class:`~analysis.errors.AnalysisWarning` naming them.

    Notes
    -----
    A subset of one study has :math:`\hat\tau^2 = 0`, Q = 0, I² = 0, H² = 1 (metafor). A
    subset whose iterative estimator fails is NaN with ``converged`` False (metafor: NA).
    Checked against metafor 3.8-1 ``gosh(rma(yi, vi, method=...))`` (EE and DL on the eight
    schools and the first eight BCG trials, every subset) at 1e-10, and REML/PM/ML against
    :func:`analysis.pool` refitted on each subset (property tests).
    """
    d = fitted_data(yi, vi, method, None, None, study)
    check_choice("method", d.method, METHODS)
    con = Control.from_any(control)
    keep = omit_missing(np.isfinite(d.yi) & np.isfinite(d.vi), d.study, values="yi or vi",
                        analysis="GOSH")
    y, v = d.yi[keep], d.vi[keep]
    labels = tuple(str(s) for s in np.asarray(d.study, dtype=object)[keep]) if len(
        d.study) == keep.size else tuple(str(i + 1) for i in np.flatnonzero(keep))
    if np.any(v <= 0):
        raise ValueError("argument 'vi' has non-positive values; sampling variances must be > 0")
    k = int(y.size)
    if k < 2:
        raise ValueError(f"GOSH needs at least 2 studies (k = {k})")
    limit = DEFAULT_SUBSETS if subsets is None else int(subsets)
    if limit < 2:
        raise ValueError(f"argument 'subsets' = {subsets!r} must be >= 2 (as metafor)")
    total = 2**k - 1
    exact = total <= limit
    n = total if exact else limit
    bounds = chunk_bounds(n, CHUNK)
    tasks: list[tuple[Any, ...]]
    if exact:
        codes = subset_codes(k)
        tasks = [(y, v, d.method, con, k, codes[a:b], None, b - a) for a, b in bounds]
    else:
        seeds = chunk_seeds(seed, len(bounds))
        tasks = [(y, v, d.method, con, k, None, s, b - a) for (a, b), s in zip(bounds, seeds,
                                                                               strict=True)]
    parts = run_chunks(_fit_chunk, tasks, executor=executor, progress=progress, desc="GOSH")
    out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return GoshResult(
        estimate=out["estimate"], tau2=out["tau2"], i2=out["i2"], h2=out["h2"], q=out["q"],
        k=out["k"], incl=out["incl"], converged=out["converged"],
        method=d.method, exact=exact, study=labels, yi=y, vi=v,
        measure=d.measure, seed=None if exact else seed,
    )


# --------------------------------------------------------------------------------------------
# which study's inclusion separates the clusters
# --------------------------------------------------------------------------------------------


def _two_means(x: np.ndarray, maxiter: int = 100) -> tuple[np.ndarray, float]:
    """Deterministic 2-means (Lloyd) on standardised rows of ``x``: 0/1 labels and R².

    R² is the share of the total sum of squares (of the standardised points) between the
    two clusters.

    Started from the halves of the first principal axis (below/above the median
    projection), so no random start is needed.
    """
    sd = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    _, vec = np.linalg.eigh(np.cov(z, rowvar=False))
    proj = z @ vec[:, -1]
    labels = (proj > np.median(proj)).astype(int)
    for _ in range(maxiter):
        if labels.min() == labels.max():
            break
        cent = np.stack([z[labels == g].mean(axis=0) for g in (0, 1)])
        new = np.argmin(((z[:, None, :] - cent[None]) ** 2).sum(axis=2), axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    total = float((z * z).sum())
    within = sum(float(((z[labels == g] - z[labels == g].mean(axis=0)) ** 2).sum())
                 for g in (0, 1) if np.any(labels == g))
    return labels, (1 - within / total) if total > 0 else 0.0


def gosh_diagnostics(result: GoshResult) -> pd.DataFrame:
    r"""Per study: how the GOSH distribution shifts with the study, and whether it splits it.

    Parameters
    ----------
    result : GoshResult
        From :func:`gosh`.

    Returns
    -------
    pandas.DataFrame
        One row per study: ``study``, ``n_with``/``n_without`` (subsets with and without
        it), ``estimate_with``/``estimate_without`` (mean estimate), ``estimate_shift``
        (mean with minus mean without), ``estimate_median_shift``, ``i2_with``,
        ``i2_without``, ``i2_shift``, ``i2_median_shift``, ``cluster_share_diff``,
        ``cluster_r2`` (the same for every study) and ``separates``.

    Notes
    -----
    The shifts compare the subsets that contain the study with those that do not (Olkin et
    al. 2012 highlight these subsets in the plot). The clustering follows the idea of Harrer
    et al. (2021, ch. 5.4.2; their ``dmetar::gosh.diagnostics`` uses k-means, DBSCAN and
    Gaussian mixtures) in one documented rule of ours, not a port of dmetar: the points
    (estimate, I²), each standardised, are split into two clusters by 2-means (Lloyd's
    algorithm, started deterministically from the first principal axis);
    ``cluster_share_diff`` is the share of the subsets of the smaller cluster that contain
    the study minus that share in the larger cluster, and a study ``separates`` the clusters
    when :math:`|\cdot|` > 0.5 (``SEPARATION``): its presence, more than anything else,
    decides in which cluster a subset lies, provided the clusters are distinct,
    ``cluster_r2`` (between-cluster share of the sum of squares) > 0.8 (``DISTINCT``;
    2-means splits any cloud, and a unimodal normal one gives at most 2/π ≈ 0.64). Subsets
    whose fit failed are left out.
    """
    ok = result.converged & np.isfinite(result.estimate) & np.isfinite(result.i2)
    est, i2, incl = result.estimate[ok], result.i2[ok], result.incl[ok]
    labels, r2 = _two_means(np.column_stack([est, i2]))
    small = 1 if (labels == 1).sum() <= (labels == 0).sum() else 0
    in_small = labels == small
    rows = []
    for j, name in enumerate(result.study):
        has = incl[:, j]
        row: dict[str, Any] = {"study": name, "n_with": int(has.sum()),
                               "n_without": int((~has).sum())}
        for field, values in (("estimate", est), ("i2", i2)):
            with_, without = values[has], values[~has]
            mean_w = float(with_.mean()) if with_.size else np.nan
            mean_wo = float(without.mean()) if without.size else np.nan
            med = (float(np.median(with_)) - float(np.median(without))
                   if with_.size and without.size else np.nan)
            row.update({f"{field}_with": mean_w, f"{field}_without": mean_wo,
                        f"{field}_shift": mean_w - mean_wo, f"{field}_median_shift": med})
        share = [float(has[g].mean()) if g.any() else np.nan for g in (in_small, ~in_small)]
        row["cluster_share_diff"] = share[0] - share[1]
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["cluster_r2"] = r2
    frame["separates"] = (r2 > DISTINCT) & (frame["cluster_share_diff"].abs() > SEPARATION)
    return frame
