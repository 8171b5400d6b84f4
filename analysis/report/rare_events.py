"""The plan's rare-events model of one analysis: metafor's ``rma.glmm`` OR for zero cells.

An analysis whose ``[[analysis]]`` table sets ``rare_events = "CM.EL"`` (or ``"UM.FS"``) and
whose 2x2 counts have a zero cell somewhere is also fitted with :func:`analysis.glmm.glmm_or`
(random effects, tau² by maximum likelihood, no continuity correction), so that the summary
of findings can show an estimate that needs no 0.5 added to empty cells. Computation only:
:func:`analysis.report.plan.run_analysis` keeps the fit (or the reason there is none) on the
:class:`~analysis.report.plan.AnalysisRun`; the tables and the narrative format it.

The selection is the run's (:func:`analysis.report.plan.plan_contrasts`), with a multi-arm
trial's treatment arms combined into one comparison, as for the Bayesian model and the TSA:
the model treats every table as an independent trial, and split comparisons share their
control arm (and split counts need not be whole). Comparisons entered by a published
estimate have no counts and are left out (said in the note).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.contrasts import BINARY_MEASURES
from analysis.errors import ConvergenceError
from analysis.glmm import MIN_INFORMATIVE, glmm_or, informative_tables
from analysis.results import GlmmResult

if TYPE_CHECKING:
    from analysis.report.plan import AnalysisSpec, Plan

__all__ = ["RARE_EVENTS_MODELS", "RareEventsFit", "fit_rare_events", "rare_events_tables"]

#: The models a plan may name in ``[[analysis]].rare_events`` (metafor's codes).
RARE_EVENTS_MODELS = ("CM.EL", "UM.FS")


@dataclass(frozen=True, slots=True)
class RareEventsFit:
    """The rare-events fit of one analysis, or why there is none.

    ``result`` is None when the model was not fitted; ``note`` then says why. ``model`` is
    the plan's code; ``tables`` the 2x2 tables considered (``study, ai, bi, ci, di``, double
    zeros included, :func:`rare_events_tables`); ``without_counts`` counts the comparisons
    left out because they entered by a published estimate.
    """

    model: str
    result: GlmmResult | None
    tables: pd.DataFrame
    note: str = ""
    without_counts: int = 0


def rare_events_tables(data: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Return the comparisons with 2x2 counts (``ai, bi, ci, di, study``) and how many had none.

    Parameters
    ----------
    data : pandas.DataFrame
        Comparisons of :func:`analysis.contrasts` (binary measure), estimable or not.

    Returns
    -------
    tables : pandas.DataFrame
        One row per comparison with counts: ``study`` (its label), ``ai, bi, ci, di``
        (derived counts need not be whole; :func:`fit_rare_events` says so).
    without_counts : int
        Comparisons without arm-level counts (entered by a published estimate).
    """
    reported = (data["from_reported_estimate"].astype(bool) if "from_reported_estimate"
                in data else pd.Series(False, index=data.index))
    counts = data.loc[~reported, ["events_t", "n_t", "events_c", "n_c"]].astype(float)
    usable = np.isfinite(counts.to_numpy()).all(axis=1) if len(counts) else np.array([], bool)
    counts = counts[usable]
    rows = data.loc[counts.index]
    tables = pd.DataFrame({
        "study": rows["label"].astype(str) if "label" in rows else rows["study_id"].astype(str),
        "ai": counts["events_t"], "bi": counts["n_t"] - counts["events_t"],
        "ci": counts["events_c"], "di": counts["n_c"] - counts["events_c"],
    }).reset_index(drop=True)
    return tables, int(len(data) - len(tables))


def _edge_of_support(tables: pd.DataFrame) -> str:
    """Say why the OR's likelihood has no finite maximum ("" when it has one).

    Given its margins, ``a_i`` is at the lowest value of its support when ``a_i = 0`` or
    ``d_i = 0``, at the highest when ``b_i = 0`` or ``c_i = 0``; if every table is at the
    same end, the conditional (and the binomial) likelihood increases without bound as the
    log OR goes to minus (plus) infinity.
    """
    a, b, c, d = (tables[x].to_numpy(float) for x in ("ai", "bi", "ci", "di"))
    if np.all((a == 0) | (d == 0)):
        return ("the OR has no finite estimate (it is 0): in every informative study the "
                "treatment arm has no events or the control arm only events")
    if np.all((b == 0) | (c == 0)):
        return ("the OR has no finite estimate (it is infinite): in every informative study "
                "the control arm has no events or the treatment arm only events")
    return ""


def fit_rare_events(data: pd.DataFrame, spec: AnalysisSpec, plan: Plan) -> RareEventsFit | None:
    """Fit the plan's rare-events model to one analysis' comparisons, where it applies.

    Parameters
    ----------
    data : pandas.DataFrame
        The analysis' comparisons, estimable or not, one per study (a multi-arm trial's
        treatment arms combined).
    spec : AnalysisSpec
        The analysis; ``spec.rare_events`` names the model (None: not planned).
    plan : Plan
        The confidence level.

    Returns
    -------
    RareEventsFit or None
        None when the plan asks for no rare-events model, the measure is not binary or no
        comparison has a zero cell (nothing for the model to add). Otherwise the fit, or a
        note saying why it was not fitted: no counts, counts that are not whole numbers,
        every study double-zero, fewer informative studies than the random-effects model
        needs (:data:`analysis.glmm.MIN_INFORMATIVE`), no finite maximum of the likelihood,
        or an optimiser that did not converge.
    """
    model = spec.rare_events
    if model is None or spec.measure not in BINARY_MEASURES or data.empty:
        return None
    tables, without = rare_events_tables(data)
    cells = tables[["ai", "bi", "ci", "di"]].to_numpy(float)
    if not (cells == 0).any():
        return None
    informative = informative_tables(tables["ai"], tables["bi"], tables["ci"], tables["di"])
    k = int(informative.sum())
    minimum = MIN_INFORMATIVE["ML"]

    def not_fitted(why: str) -> RareEventsFit:
        return RareEventsFit(model, None, tables, f"not fitted: {why}", without)

    fractional = tables.loc[(cells != np.round(cells)).any(axis=1), "study"].tolist()
    if fractional:
        return not_fitted("the model needs whole counts; not whole in "
                          + ", ".join(map(str, fractional)))
    if k == 0:
        who = (f"the only study ({tables['study'].iloc[0]}) has" if len(tables) == 1
               else f"all {len(tables)} studies have")
        none = ((tables["ai"] == 0) & (tables["ci"] == 0)).all()
        every = ((tables["bi"] == 0) & (tables["di"] == 0)).all()
        what = ("no events in either arm" if none else "only events in both arms" if every
                else "no events, or only events, in both arms")
        return not_fitted(f"{who} {what} (double zero), which carries no information about "
                          "the OR")
    if k < minimum:
        return not_fitted(f"{k} informative study after excluding double-zero studies "
                          f"(no events, or only events, in both arms); the random-effects "
                          f"model needs at least {minimum}")
    edge = _edge_of_support(tables[informative])
    if edge:
        return not_fitted(edge)
    try:
        result = glmm_or(tables["ai"], tables["bi"], tables["ci"], tables["di"], model=model,
                         method="ML", level=plan.level, study=tables["study"].tolist())
    except ValueError as exc:  # the data checks of glmm_or
        return not_fitted(f"the {model} model cannot use these counts ({exc})")
    except (ConvergenceError, np.linalg.LinAlgError, FloatingPointError) as exc:
        return not_fitted(f"the {model} model did not converge ({exc})")
    if not (np.isfinite(result.estimate) and np.isfinite(result.se) and result.se > 0):
        return not_fitted(f"the {model} model did not converge (no finite estimate and "
                          "standard error at the optimum)")
    return RareEventsFit(model, result, tables, "", without)
