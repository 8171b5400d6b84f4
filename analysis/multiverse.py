r"""Multiverse (specification-curve) meta-analysis: every defensible combination of choices.

A meta-analysis makes many choices that the question does not settle: which outcome
definition answers it, at which time point, in which analysis set, with or without numbers
that were derived rather than printed, with or without studies that enter only by their
published estimate, in which population, at which dose, with which effect measure, which
:math:`\tau^2` estimator and which confidence interval. :func:`multiverse` enumerates the
Cartesian product of the levels given for each choice, selects the comparisons each
combination implies (:func:`analysis.contrasts` and study- or arm-level filters), fits every
feasible combination on the batched rma.uni core (:func:`analysis.pooling.pool` with 2-D
input) and returns one row per specification (:class:`analysis.results.MultiverseResult`).

Choices (the result's column names) and their levels:

``outcome``
    a level is an outcome code, or a list of codes that answer the same question: per study
    the first code of the list that gives a comparison is used
    (``["abstinence", "abstinence_or_low_risk"]``: abstinence, else abstinent or low-risk).
``timepoint``
    ``"end_of_treatment"`` (the time point closest to the end of treatment, within
    ``timepoint_tolerance`` weeks), ``"last"`` (the longest follow-up) or a number of weeks.
``analysis_set``
    ``"any"`` (every analysis set, ITT preferred, as :func:`analysis.contrasts` by default)
    or one set's name (``"ITT"``: only ITT numbers).
``derived``
    ``True`` (derived numbers included) or ``False`` (rows with ``derived`` dropped).
``reported_estimates``
    ``True`` (studies entering by a published estimate with its CI included) or ``False``.
``exclude``
    a mapping of a study-level column to values: each column is one choice with the levels
    "all studies" and "without" the studies whose value is one of those (missing values are
    kept).
``dose_class``
    ``"any"`` or a dose-class label of :func:`analysis.dose.dose_classes` (the treatment arm's
    dose in ``dose_column`` classed by ``dose_cuts`` / ``dose_labels``).
``measure``, ``method``, ``ci``
    the effect measure, the :math:`\tau^2` estimator and the CI method of
    :func:`analysis.pool`.

A specification is infeasible when its selection has fewer than ``min_studies`` distinct
studies (or :func:`analysis.contrasts` refuses the outcome/measure pair); infeasible ones are
listed in ``MultiverseResult.infeasible`` with the reason, so that the feasible plus the
infeasible specifications are the whole product of levels. Several specifications share one
selection of data (the estimator choices never change it, and filters often leave it
unchanged): each distinct selection is fitted once per estimator and CI method, in batches.

The work runs in chunks of a fixed number of data selections (never depending on the
executor), in this process or on any ``concurrent.futures.Executor`` (:mod:`analysis.
_executor`), with identical results.

References
----------
Simonsohn U, Simmons JP, Nelson LD (2020). Specification curve analysis. Nat Hum Behav
4:1208-1214. Steegen S, Tuerlinckx F, Gelman A, Vanpaemel W (2016). Increasing transparency
through a multiverse analysis. Perspect Psychol Sci 11:702-712. Voracek M, Kossmeier M,
Tran US (2019). Which data to meta-analyze, and how? A specification-curve and multiverse-
analysis approach to meta-analysis. Z Psychol 227:64-82.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis._checks import check_choice, check_level
from analysis._executor import run_chunks
from analysis.contrasts import (
    ANALYSIS_SET_PREFERENCE,
    BINARY_MEASURES,
    CONTINUOUS_MEASURES,
    ESTIMATE_MEASURES,
    MULTIARM,
    contrasts,
)
from analysis.dose import DEFAULT_CUTS, dose_classes
from analysis.heterogeneity import METHODS, Control
from analysis.measures import RATIO_MEASURES
from analysis.pooling import CI_METHODS, _check_data, _pool_batch
from analysis.results import MULTIVERSE_CHOICES, MultiverseResult

__all__ = ["multiverse"]

#: Data selections (outcome x time point x set x derived x reported x measure) per chunk.
CHUNK_SIZE = 8
#: Measures whose double-zero comparisons are not estimable (RevMan's rule, metafor drop00).
_DROP00 = ("OR", "RR")
_TIMEPOINT_LABELS = {"end_of_treatment": "end of treatment", "last": "longest follow-up"}


def _outcome_level(level: str | Sequence[str]) -> tuple[str, ...]:
    codes = (level,) if isinstance(level, str) else tuple(level)
    if not codes or not all(isinstance(c, str) and c for c in codes):
        raise ValueError(f"argument 'outcomes' has a level {level!r}; use an outcome code or "
                         "a non-empty list of codes")
    return codes


def _timepoint_label(value: str | float) -> str:
    if isinstance(value, str):
        return _TIMEPOINT_LABELS[value]
    return f"{value:g} weeks"


def _selection(trials: pd.DataFrame, codes: tuple[str, ...], measure: str,
               timepoint: str | float, analysis_set: str, derived: bool, reported: bool,
               options: Mapping[str, Any],
               cache: dict[tuple[Any, ...], pd.DataFrame | str]) -> pd.DataFrame | str:
    """Return the estimable comparisons of one data selection, or why there are none.

    ``cache`` keeps each outcome code's :func:`analysis.contrasts` result (or its error)
    for the other selections that use it (an outcome tried first, then a fallback).
    """
    sets = ANALYSIS_SET_PREFERENCE if analysis_set == "any" else (analysis_set,)
    effect = {"drop00": True} if measure in _DROP00 else {}
    parts: list[pd.DataFrame] = []
    covered: set[str] = set()
    reasons = []
    for code in codes:
        key = (code, measure, timepoint, sets, derived, reported)
        if key not in cache:
            try:
                cache[key] = contrasts(trials, outcome=code, measure=measure,
                                       timepoint=timepoint, analysis_sets=sets,
                                       include_derived=derived,
                                       use_reported_estimates=reported, **options,
                                       **effect)  # type: ignore[arg-type]
            except ValueError as exc:
                cache[key] = str(exc)
        frame = cache[key]
        if isinstance(frame, str):
            reasons.append(frame)
            continue
        if frame.empty:
            continue
        ok = np.isfinite(frame["yi"].astype(float)) & np.isfinite(frame["vi"].astype(float))
        frame = frame[ok & ~frame["study_id"].isin(covered)]
        covered |= set(frame["study_id"])
        parts.append(frame)
    parts = [p for p in parts if not p.empty]
    if not parts:
        return reasons[0] if reasons else "no estimable comparison"
    return pd.concat(parts, ignore_index=True)


def _filtered(frame: pd.DataFrame, exclude: Mapping[str, tuple[str, ...]],
              excluded: tuple[bool, ...], dose: str, dose_column: str,
              cuts: tuple[float, ...], labels: tuple[str, ...] | None) -> pd.DataFrame:
    keep = np.ones(len(frame), dtype=bool)
    for (column, values), drop in zip(exclude.items(), excluded, strict=True):
        if drop:
            keep &= ~frame[column].astype(object).isin(values).to_numpy()
    if dose != "any":
        classes = dose_classes(frame[dose_column].astype(float), cuts, labels)
        keep &= np.array([c == dose for c in classes], dtype=bool)
    return frame[keep]


def _fit_chunk(trials: pd.DataFrame, keys: list[tuple[Any, ...]],
               filters: list[tuple[tuple[bool, ...], str]], setup: dict[str, Any],
               cache: dict[tuple[Any, ...], pd.DataFrame | str]
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[pd.DataFrame]]:
    """Select the data of ``keys`` x ``filters``, fit the feasible ones with every estimator.

    Returns the feasible rows, the infeasible rows and the distinct data sets (in order of
    first use; each row's ``dataset`` indexes this chunk's list). ``cache`` is
    :func:`_selection`'s: shared by the chunks run in this process; each chunk sent to an
    executor gets its own (empty) copy, so nothing is reused there. A cached selection is
    exactly the one computed afresh, so the result never depends on where a chunk ran.
    """
    feasible: list[dict[str, Any]] = []
    infeasible: list[dict[str, Any]] = []
    datasets: list[pd.DataFrame] = []
    index: dict[bytes, int] = {}
    pending: list[tuple[dict[str, Any], int]] = []
    estimators = list(itertools.product(setup["methods"], setup["ci"]))
    for codes, measure, timepoint, analysis_set, derived, reported in keys:
        selected = _selection(trials, codes, measure, timepoint, analysis_set, derived,
                              reported, setup["options"], cache)
        base = {"outcome": setup["outcome_labels"][codes], "measure": measure,
                "timepoint": _timepoint_label(timepoint),
                "analysis_set": "any (ITT first)" if analysis_set == "any"
                else f"{analysis_set} only",
                "derived": "included" if derived else "excluded",
                "reported_estimates": "included" if reported else "excluded"}
        for excluded, dose in filters:
            choice = dict(base)
            for (column, _), drop in zip(setup["exclude"].items(), excluded, strict=True):
                choice[column] = setup["exclude_labels"][column][drop]
            choice["dose_class"] = "any dose" if dose == "any" else dose
            if isinstance(selected, str):
                reason = selected
                data = None
            else:
                data = _filtered(selected, setup["exclude"], excluded, dose,
                                 setup["dose_column"], setup["dose_cuts"],
                                 setup["dose_labels"])
                n_studies = data["study_id"].nunique()
                reason = (f"{n_studies} stud{'y' if n_studies == 1 else 'ies'} "
                          f"(fewer than {setup['min_studies']})"
                          if n_studies < setup["min_studies"] else "")
            if reason:
                for method, ci in estimators:
                    infeasible.append({**choice, "method": method, "ci": ci,
                                       "reason": reason})
                continue
            assert data is not None
            yi = data["yi"].to_numpy(float)
            vi = data["vi"].to_numpy(float)
            key = yi.tobytes() + b"|" + vi.tobytes()
            if key not in index:
                index[key] = len(datasets)
                datasets.append(pd.DataFrame({
                    "study_id": data["study_id"].astype(str).to_numpy(),
                    "label": data["label"].astype(str).to_numpy(), "yi": yi, "vi": vi}))
            choice["studies"] = "; ".join(dict.fromkeys(data["label"].astype(str)))
            pending.append((choice, index[key]))
    if not datasets:
        return feasible, infeasible, datasets
    width = max(len(d) for d in datasets)
    y = np.full((len(datasets), width), np.nan)
    v = np.full((len(datasets), width), np.nan)
    for row, data in enumerate(datasets):
        y[row, :len(data)] = data["yi"].to_numpy()
        v[row, :len(data)] = data["vi"].to_numpy()
    mask = _check_data(y, v)
    fits = {}
    for method, ci in estimators:
        fits[method, ci] = _pool_batch(y, v, mask, method, ci, setup["level"], False,
                                       setup["control"], "metafor", "nan")
    for choice, row in pending:
        for method, ci in estimators:
            fit = fits[method, ci]
            out = {**choice, "method": method, "ci": ci, "dataset": row,
                   "k": int(fit.k[row]), "n_studies": datasets[row]["study_id"].nunique()}
            for name in ("estimate", "se", "ci_low", "ci_high", "pvalue", "tau2", "i2"):
                out[name] = float(getattr(fit, name)[row])
            if not bool(fit.converged[row]):
                infeasible.append({**choice, "method": method, "ci": ci,
                                   "reason": "the estimator did not converge"})
                continue
            feasible.append(out)
    return feasible, infeasible, datasets


def _check_measures(measures: Sequence[str]) -> tuple[str, ...]:
    out = tuple(check_choice("measures", m, BINARY_MEASURES + CONTINUOUS_MEASURES
                             + ESTIMATE_MEASURES) for m in measures)
    if not out:
        raise ValueError("argument 'measures' is empty; give at least one measure")
    ratio = {m in RATIO_MEASURES for m in out}
    if len(ratio) > 1 or (ratio == {False} and len(set(out)) > 1):
        raise ValueError(
            f"argument 'measures' = {list(out)!r} is not allowed: a specification curve "
            "orders estimates on one scale; combine ratio measures (OR, RR, HR) only with "
            "each other, and run a difference measure (RD, MD, SMD) as its own multiverse")
    return out


def _levels(name: str, values: Sequence[Any]) -> tuple[Any, ...]:
    out = tuple(dict.fromkeys(values))
    if not out:
        raise ValueError(f"argument {name!r} is empty; give at least one level")
    return out


def multiverse(
    trials: pd.DataFrame,
    *,
    outcomes: Sequence[str | Sequence[str]],
    measures: Sequence[str],
    timepoints: Sequence[str | float] = ("end_of_treatment",),
    analysis_sets: Sequence[str] = ("any",),
    derived: Sequence[bool] = (True,),
    reported_estimates: Sequence[bool] = (True,),
    exclude: Mapping[str, Sequence[str]] | None = None,
    dose: Sequence[str] = ("any",),
    dose_column: str = "dose_target_mg_day",
    dose_cuts: Sequence[float] = DEFAULT_CUTS,
    dose_labels: Sequence[str] | None = None,
    methods: Sequence[str] = ("REML",),
    ci: Sequence[str] = ("z",),
    comparator: str | None = "placebo",
    multiarm: str = "split",
    timepoint_tolerance: float | None = None,
    level: float = 0.95,
    min_studies: int = 2,
    control: Control | Mapping[str, Any] | None = None,
    executor: Any = None,
    progress: bool | None = None,
) -> MultiverseResult:
    r"""Fit every combination of the given choices (a multiverse / specification curve).

    Parameters
    ----------
    trials : pandas.DataFrame
        The tidy frame of :func:`analysis.load_trials`.
    outcomes : sequence of str or of list of str
        Outcome definitions: a code, or codes tried in order per study (module docstring).
    measures : sequence of str
        Effect measures, all on one scale: ratio measures (OR, RR, HR) together, or one
        difference measure (RD, MD or SMD).
    timepoints : sequence
        ``"end_of_treatment"``, ``"last"`` or weeks.
    analysis_sets : sequence of str
        ``"any"`` (ITT preferred) or an analysis set's name (only that set).
    derived, reported_estimates : sequence of bool
        Include derived numbers / studies entering by a published estimate.
    exclude : mapping of str to sequence of str, optional
        Study-level column -> values; each column is a choice "all studies" vs "without"
        those studies.
    dose : sequence of str
        ``"any"`` or dose-class labels (of ``dose_column`` classed by ``dose_cuts`` and
        ``dose_labels``, :func:`analysis.dose.dose_classes`).
    dose_column, dose_cuts, dose_labels
        The dose classes.
    methods : sequence of str
        :math:`\tau^2` estimators (:func:`analysis.pool` codes).
    ci : sequence of str
        CI methods, ``"z"`` or ``"hksj"`` (or ``"hksj_adhoc"``).
    comparator, multiarm, timepoint_tolerance
        Passed to :func:`analysis.contrasts` for every selection (not choices).
    level : float
        Confidence level.
    min_studies : int
        A specification needs at least this many distinct studies (default 2: one study is
        not a meta-analysis).
    control : Control or dict, optional
        Iteration settings of the estimators.
    executor : concurrent.futures.Executor, optional
        Where the chunks run (:mod:`analysis._executor`); the result is identical to
        ``executor=None``.
    progress : bool, optional
        A progress bar over chunks (default: only on a terminal).

    Returns
    -------
    MultiverseResult
        ``table``: one row per feasible specification with every choice, ``k`` (comparisons),
        ``n_studies``, ``studies`` (labels), ``estimate, se, ci_low, ci_high, pvalue, tau2,
        i2`` on the analysis scale (log for ratio measures; ``tau2`` without its Q-profile CI)
        and ``display_estimate, display_ci_low, display_ci_high`` on the measure's scale;
        ``infeasible``: the other combinations with their reason; ``datasets``: the distinct
        selections (``study_id, label, yi, vi``) that ``table["dataset"]`` indexes.

    Notes
    -----
    Every specification's fit is :func:`analysis.pool` of its selection (the tests compare a
    sample with direct calls); the batched core and the scalar one agree to rounding.
    Specifications are ordered as the product of the levels in the order given (outcome,
    time point, analysis set, derived, reported estimates, exclusions, dose class, measure,
    estimator, CI), feasible and infeasible alike.
    """
    level = check_level(level)
    check_choice("multiarm", multiarm, MULTIARM)
    if not isinstance(min_studies, int) or isinstance(min_studies, bool) or min_studies < 1:
        raise ValueError(f"argument 'min_studies' = {min_studies!r} is not allowed; use a "
                         "whole number >= 1")
    outcome_levels = _levels("outcomes", [_outcome_level(o) for o in outcomes])
    measure_levels = _levels("measures", _check_measures(measures))
    for value in timepoints:
        if isinstance(value, str):
            check_choice("timepoints", value, ("end_of_treatment", "last"))
        elif not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ValueError(f"argument 'timepoints' has {value!r}; use 'end_of_treatment', "
                             "'last' or weeks >= 0")
    timepoint_levels = _levels("timepoints", timepoints)
    set_levels = _levels("analysis_sets", analysis_sets)
    for value in set_levels:
        check_choice("analysis_sets", value, ("any", *ANALYSIS_SET_PREFERENCE))
    derived_levels = _levels("derived", [bool(d) for d in derived])
    reported_levels = _levels("reported_estimates", [bool(r) for r in reported_estimates])
    exclusions = {str(c): tuple(str(v) for v in values)
                  for c, values in (exclude or {}).items()}
    for column, values in exclusions.items():
        if column in MULTIVERSE_CHOICES:
            raise ValueError(f"argument 'exclude' names {column!r}, which is a choice's name")
        if column not in trials.columns:
            raise ValueError(f"argument 'exclude' names column {column!r}, which the trials "
                             "frame does not have")
        if not values:
            raise ValueError(f"argument 'exclude' has no values for column {column!r}")
    cuts = tuple(float(c) for c in dose_cuts)
    labels = None if dose_labels is None else tuple(str(x) for x in dose_labels)
    known_classes = [str(x) for x in dose_classes(
        np.array([*cuts, cuts[-1] + 1.0]), cuts, labels)]
    dose_levels = _levels("dose", dose)
    for value in dose_levels:
        check_choice("dose", value, ("any", *known_classes))
    method_levels = _levels("methods", [check_choice("methods", m, METHODS) for m in methods])
    ci_levels = _levels("ci", [check_choice("ci", c, CI_METHODS) for c in ci])
    con = Control.from_any(control)

    outcome_labels = {codes: ", else ".join(codes) for codes in outcome_levels}
    exclude_labels = {column: {False: "all studies",
                               True: "without " + " / ".join(values)}
                      for column, values in exclusions.items()}
    keys = list(itertools.product(outcome_levels, measure_levels, timepoint_levels,
                                  set_levels, derived_levels, reported_levels))
    filters = list(itertools.product(
        list(itertools.product((False, True), repeat=len(exclusions)))
        if exclusions else [()], dose_levels))
    setup = {"methods": method_levels, "ci": ci_levels, "level": level, "control": con,
             "min_studies": min_studies, "exclude": exclusions,
             "exclude_labels": exclude_labels, "dose_column": dose_column,
             "dose_cuts": cuts, "dose_labels": labels, "outcome_labels": outcome_labels,
             "options": {"comparator": comparator, "multiarm": multiarm,
                         "timepoint_tolerance": timepoint_tolerance}}
    # contrasts() filters the frame many times: hand it only the rows of these outcomes
    codes_used = sorted({code for codes in outcome_levels for code in codes})
    subset = trials[trials["outcome"].isin(codes_used)].reset_index(drop=True)
    subset.attrs = dict(trials.attrs)
    cache: dict[tuple[Any, ...], pd.DataFrame | str] = {}
    tasks = [(subset, keys[start:start + CHUNK_SIZE], filters, setup, cache)
             for start in range(0, len(keys), CHUNK_SIZE)]
    parts = run_chunks(_fit_chunk, tasks, executor=executor, progress=progress,
                       desc="multiverse")
    rows: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    datasets: list[pd.DataFrame] = []
    for feasible, infeasible, chunk_data in parts:
        offset = len(datasets)
        rows += [{**r, "dataset": r["dataset"] + offset} for r in feasible]
        dropped += infeasible
        datasets += chunk_data
    levels = {
        "outcome": tuple(outcome_labels[c] for c in outcome_levels),
        "timepoint": tuple(_timepoint_label(t) for t in timepoint_levels),
        "analysis_set": tuple("any (ITT first)" if s == "any" else f"{s} only"
                              for s in set_levels),
        "derived": tuple("included" if d else "excluded" for d in derived_levels),
        "reported_estimates": tuple("included" if r else "excluded" for r in reported_levels),
        **{column: (exclude_labels[column][False], exclude_labels[column][True])
           for column in exclusions},
        "dose_class": tuple("any dose" if d == "any" else d for d in dose_levels),
        "measure": measure_levels, "method": method_levels, "ci": ci_levels,
    }
    return MultiverseResult.build(rows, dropped, tuple(datasets), levels,
                                  measure=measure_levels[0], level=level)
