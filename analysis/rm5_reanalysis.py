"""Reanalyse every outcome of a RevMan 5 review with the outcome's own settings.

:func:`reanalyse_rm5` pools each outcome (and each subgroup) of a review read by
:func:`analysis.data.revman.read_rm5` as RevMan 5 does, with the engine: dichotomous data with
Mantel-Haenszel (:func:`analysis.pooling.mantel_haenszel`, ``convention="revman5"``: 1/2
added to zero-cell tables, double zeros dropped, random effects by DerSimonian-Laird from
the MH-centred Q), Peto (:func:`analysis.pooling.peto`) or inverse variance; continuous and
generic inverse-variance data with :func:`analysis.pooling.pool` (``"FE"`` or ``"DL"``,
``convention="revman5"``), and sets the result beside the totals RevMan stored in the file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.data.revman import RATIO_MEASURES, Rm5Review, read_rm5
from analysis.effects import effect_sizes
from analysis.pooling import mantel_haenszel, peto, pool

__all__ = ["reanalyse_rm5"]


def _fit(rows: pd.DataFrame, outcome: dict[Any, Any]) -> dict[str, float]:
    rows = rows[rows["estimable"].astype(bool)]  # RevMan gives ESTIMABLE="NO" rows no weight
    sm, method, random = outcome["sm"], outcome["method"], bool(outcome["random"])
    counts: dict[str, Any] = {
        "events_t": rows["event.e"].to_numpy(float), "n_t": rows["n.e"].to_numpy(float),
        "events_c": rows["event.c"].to_numpy(float), "n_c": rows["n.c"].to_numpy(float)}
    labels = rows["id"].to_list()
    res: Any
    if outcome["type"] == "D" and method == "MH":
        res = mantel_haenszel(**counts, measure=sm, convention="revman5",
                              model="random" if random else "fixed", study=labels)
    elif outcome["type"] == "D" and method == "Peto":
        res = peto(**counts, study=labels)
    else:
        if outcome["type"] == "I":
            yi, vi = rows["TE"].to_numpy(float), rows["seTE"].to_numpy(float) ** 2
        else:
            if outcome["type"] == "D":
                es = effect_sizes(sm, events_t=counts["events_t"], n_t=counts["n_t"],
                                  events_c=counts["events_c"], n_c=counts["n_c"],
                                  convention="revman5")
            else:
                es = effect_sizes(sm, mean_t=rows["mean.e"].to_numpy(float),
                                  sd_t=rows["sd.e"].to_numpy(float), n_t=counts["n_t"],
                                  mean_c=rows["mean.c"].to_numpy(float),
                                  sd_c=rows["sd.c"].to_numpy(float), n_c=counts["n_c"],
                                  convention="revman5")
            keep = np.isfinite(es["yi"].to_numpy(float))
            yi, vi = es["yi"].to_numpy(float)[keep], es["vi"].to_numpy(float)[keep]
        res = pool(yi, vi, method="DL" if random else "FE", convention="revman5",
                   tau2_ci=False)
    return {"estimate": float(res.estimate), "ci_low": float(res.ci_low),
            "ci_high": float(res.ci_high), "z": float(res.zval), "p_z": float(res.pvalue),
            "q": float(res.q), "i2": float(res.i2), "tau2": float(getattr(res, "tau2", 0.0)),
            "k": int(res.k)}


def _stored(totals: dict[Any, Any], sm: str) -> dict[str, float]:
    log = math.log if sm in RATIO_MEASURES else (lambda x: x)

    def scaled(key: str) -> float:
        value = float(totals[key])
        return log(value) if (math.isfinite(value) and value > 0) or sm not in RATIO_MEASURES \
            else math.nan

    return {"revman_estimate": scaled("TE.pooled"), "revman_ci_low": scaled("lower.pooled"),
            "revman_ci_high": scaled("upper.pooled"), "revman_z": abs(float(totals["Z.pooled"])),
            "revman_p_z": float(totals["pval.TE.pooled"]), "revman_q": float(totals["Q"]),
            "revman_i2": float(totals["I2"]), "revman_tau2": float(totals["tau2"])}


def reanalyse_rm5(review: Rm5Review | str | Path) -> pd.DataFrame:
    """Pool every outcome and subgroup of a RevMan 5 review with its own settings.

    Parameters
    ----------
    review : Rm5Review, str or pathlib.Path
        A review from :func:`analysis.data.revman.read_rm5`, or the path of a ``.rm5`` file.

    Returns
    -------
    pandas.DataFrame
        One row per outcome total (``scope`` ``"total"``) and per subgroup (``"subgroup"``):
        ``comp.no``, ``outcome.no``, ``group.no``, ``outclab``, ``grplab``, ``sm``,
        ``method``, ``model``, ``k``, our ``estimate``, ``ci_low``, ``ci_high`` (analysis
        scale: log for OR, RR, HR), ``z``, ``p_z``, ``q``, ``i2`` (percent), ``tau2``, and
        RevMan's stored values on the same scale (``revman_estimate``, ``revman_ci_low``,
        ``revman_ci_high``, ``revman_z`` (``|z|``: RevMan stores the absolute value),
        ``revman_p_z``, ``revman_q`` (the heterogeneity Chi², attribute ``CHI2``),
        ``revman_i2``, ``revman_tau2``; NaN where the file has none).

    Notes
    -----
    Data rows RevMan marked ``ESTIMABLE="NO"`` are left out (RevMan gives them weight 0), so
    ``k`` is RevMan's ``DF + 1``; an outcome or subgroup without an estimable row gets no row.
    Checked against the totals RevMan 5.0.23 stored in a real file (the excerpt
    ``tests/fixtures/revman/fleiss1993_excerpt.rm5`` of R meta's ``Fleiss1993.rm5``) and
    against metafor 3.8.1 computing as RevMan 5 does, on that file and on the synthetic
    ``tests/fixtures/revman/example.rm5`` (``tests/reference/make_revman_reference.R``).
    """
    if not isinstance(review, Rm5Review):
        review = read_rm5(review)
    rows = []
    for outcome in review.outcomes.to_dict("records"):
        data = review.data[(review.data["comp.no"] == outcome["comp.no"])
                           & (review.data["outcome.no"] == outcome["outcome.no"])]
        parts: list[tuple[str, dict[Any, Any], pd.DataFrame]] = [("total", outcome, data)]
        subgroups = review.subgroups
        if not subgroups.empty:
            mine = subgroups[(subgroups["comp.no"] == outcome["comp.no"])
                             & (subgroups["outcome.no"] == outcome["outcome.no"])]
            parts += [("subgroup", group, data[data["group.no"] == group["group.no"]])
                      for group in mine.to_dict("records")]
        for scope, totals, subset in parts:
            if not subset["estimable"].astype(bool).any():
                continue  # nothing RevMan could pool (its totals are 0, NaN or -Infinity)
            rows.append({"scope": scope, "comp.no": outcome["comp.no"],
                         "outcome.no": outcome["outcome.no"],
                         "group.no": totals.get("group.no", math.nan),
                         "outclab": outcome["outclab"], "grplab": totals.get("grplab", ""),
                         "sm": outcome["sm"], "method": outcome["method"],
                         "model": outcome["model"], **_fit(subset, outcome),
                         **_stored(totals, outcome["sm"])})
    return pd.DataFrame(rows)
