"""Arm-level data to the contrast layout of a network meta-analysis (meta's ``pairwise``).

Every pair of arms of a study becomes a row (arms in the order given, ``treat1`` the earlier
arm); effect sizes come from :func:`analysis.effects.effect_sizes`, the package's one
implementation of each measure.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from analysis._checks import check_choice
from analysis.effects import effect_sizes
from analysis.errors import AnalysisWarning

__all__ = ["network_pairwise"]

BINARY = ("OR", "RR", "RD")
CONTINUOUS = ("MD", "SMD")


def network_pairwise(data: pd.DataFrame, *, studlab: str, treat: str, n: str,
                     events: str | None = None, mean: str | None = None,
                     sd: str | None = None, measure: str = "OR",
                     incr: float = 0.5) -> pd.DataFrame:
    r"""All within-study comparisons of arm-level data (R meta ``pairwise``).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per arm.
    studlab, treat, n : str
        Columns: study label, treatment, arm size.
    events : str, optional
        Column of events (binary measures).
    mean, sd : str, optional
        Columns of means and standard deviations (continuous measures).
    measure : {"OR", "RR", "RD", "MD", "SMD"}
        ``SMD`` is Hedges' g as meta's ``metacont`` default (:math:`J = 1 - 3/(4N - 9)`,
        :math:`v = N/(n_1n_2) + g^2/(2(N - 3.94))`).
    incr : float
        Continuity correction for OR and RR (meta's ``incr``, default 1/2). As meta's
        ``pairwise``, it is added to every cell of every comparison of a study in which some
        arm has zero events or only events; comparisons with no events (or only events) in
        both arms are dropped with an :class:`~analysis.errors.AnalysisWarning` (meta's
        ``allstudies = FALSE``). RD is computed without correction.

    Returns
    -------
    pandas.DataFrame
        Columns ``studlab``, ``treat1``, ``treat2``, ``TE`` (treat1 versus treat2; log scale
        for OR and RR), ``seTE``, ``measure`` — the input of
        :func:`analysis.network.network_meta_analysis` with ``data=``.

    Notes
    -----
    Checked against ``pairwise(..., sm = "OR")`` of netmeta's smokingcessation data
    (``tests/reference/netmeta.json``, 1e-12).
    """
    check_choice("measure", measure, BINARY + CONTINUOUS)
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"argument 'data' must be a pandas DataFrame, not {type(data).__name__}")
    needed = {"studlab": studlab, "treat": treat, "n": n}
    if measure in BINARY:
        needed["events"] = events  # type: ignore[assignment]
    else:
        needed.update(mean=mean, sd=sd)  # type: ignore[arg-type]
    for arg, col in needed.items():
        if col is None:
            raise ValueError(f"argument {arg!r} is required for measure {measure!r}")
        if col not in data.columns:
            raise ValueError(f"argument {arg!r} = {col!r} is not a column of 'data'; "
                             f"columns: {', '.join(map(str, data.columns))}")
    rows: list[dict[str, Any]] = []
    for study, arms in data.groupby(studlab, sort=False):
        if len(arms) < 2:
            raise ValueError(f"study {study!r} has {len(arms)} arm in 'data'; a comparison "
                             "needs at least two")
        if arms[treat].duplicated().any():
            raise ValueError(f"study {study!r} has treatment "
                             f"{arms[treat][arms[treat].duplicated()].iloc[0]!r} in two arms")
        zero = False
        if measure in BINARY:
            e, size = arms[events].to_numpy(float), arms[n].to_numpy(float)
            zero = bool(np.any((e == 0) | (e == size)))
        recs = arms.to_dict("records")
        for i in range(len(recs)):
            for j in range(i + 1, len(recs)):
                rows.append({"studlab": str(study), "treat1": str(recs[i][treat]),
                             "treat2": str(recs[j][treat]), "_zero": zero,
                             **{f"{k}_t": recs[i][v] for k, v in needed.items()
                                if k not in ("studlab", "treat")},
                             **{f"{k}_c": recs[j][v] for k, v in needed.items()
                                if k not in ("studlab", "treat")}})
    pairs = pd.DataFrame(rows)
    if measure in BINARY:
        to = pairs["_zero"].map({True: "all", False: "none"}) if measure != "RD" else None
        yi = np.full(len(pairs), np.nan)
        vi = np.full(len(pairs), np.nan)
        for flag in (True, False):
            sel = (pairs["_zero"] == flag).to_numpy()
            if not sel.any():
                continue
            part = pairs[sel]
            es = effect_sizes(measure, events_t=part["events_t"], n_t=part["n_t"],
                              events_c=part["events_c"], n_c=part["n_c"], add=incr,
                              to="all" if (flag and to is not None) else "none",
                              drop00=measure != "RD")
            yi[sel], vi[sel] = es["yi"].to_numpy(), es["vi"].to_numpy()
    else:
        es = effect_sizes(measure, mean_t=pairs["mean_t"], sd_t=pairs["sd_t"],
                          n_t=pairs["n_t"], mean_c=pairs["mean_c"], sd_c=pairs["sd_c"],
                          n_c=pairs["n_c"], convention="revman5")
        yi, vi = es["yi"].to_numpy(), es["vi"].to_numpy()
    out = pd.DataFrame({"studlab": pairs["studlab"], "treat1": pairs["treat1"],
                        "treat2": pairs["treat2"], "TE": yi, "seTE": np.sqrt(vi),
                        "measure": measure})
    bad = ~np.isfinite(out["TE"].to_numpy()) | ~np.isfinite(out["seTE"].to_numpy())
    if bad.any():
        labels = ", ".join(f"{r.studlab} ({r.treat1} vs {r.treat2})"
                           for r in out[bad].itertuples())
        warnings.warn(f"comparisons not estimable (no events or only events in both arms) "
                      f"dropped: {labels}", AnalysisWarning, stacklevel=2)
        out = out[~bad].reset_index(drop=True)
    return out
