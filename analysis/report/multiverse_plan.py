"""The ``[multiverse]`` table of an analysis plan: validation, parsing and running.

::

    [multiverse]                       # shared by every listed analysis
    methods = ["REML", "DL", "PM"]     # tau² estimators
    ci = ["z", "hksj"]
    min_studies = 2

    [multiverse.abstinence]            # one table per analysis id of [[analysis]]
    outcomes = [["abstinence"], ["abstinence", "abstinence_or_low_risk"]]
    measures = ["OR", "RR"]
    timepoints = ["end_of_treatment", "last"]
    analysis_sets = ["any", "ITT"]
    derived = [true, false]
    reported_estimates = [true, false]
    exclude = { liver_disease = ["all"] }
    dose = ["any", "<= 30 mg/day", "> 80 mg/day"]   # labels of [subgroups] dose_labels

An analysis' table may also set ``methods``, ``ci`` and ``min_studies`` (they override the
shared ones). Every key but ``outcomes`` and ``measures`` is optional (one level: the
primary analysis' choice). :func:`run_multiverse` calls :func:`analysis.multiverse` with the
plan's comparator, multi-arm rule, time-point tolerance, dose classes and level.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from analysis.contrasts import (
    ANALYSIS_SET_PREFERENCE,
    BINARY_MEASURES,
    CONTINUOUS_MEASURES,
    ESTIMATE_MEASURES,
)
from analysis.control import METHODS
from analysis.measures import RATIO_MEASURES
from analysis.multiverse import multiverse
from analysis.pooling import CI_METHODS
from analysis.results import MULTIVERSE_CHOICES, MultiverseResult

if TYPE_CHECKING:
    import pandas as pd

    from analysis.report.plan import Plan

__all__ = ["MultiverseSpec", "parse_multiverse", "run_multiverse", "validate_multiverse"]

SHARED_KEYS = ("methods", "ci", "min_studies")
ANALYSIS_KEYS = ("outcomes", "measures", "timepoints", "analysis_sets", "derived",
                 "reported_estimates", "exclude", "dose", *SHARED_KEYS)


@dataclass(frozen=True, slots=True)
class MultiverseSpec:
    """The choices of one analysis' multiverse (levels of each, as in the plan)."""

    analysis: str
    outcomes: tuple[tuple[str, ...], ...]
    measures: tuple[str, ...]
    timepoints: tuple[str | float, ...] = ("end_of_treatment",)
    analysis_sets: tuple[str, ...] = ("any",)
    derived: tuple[bool, ...] = (True,)
    reported_estimates: tuple[bool, ...] = (True,)
    exclude: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dose: tuple[str, ...] = ("any",)
    methods: tuple[str, ...] = ("REML",)
    ci: tuple[str, ...] = ("z",)
    min_studies: int = 2


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_multiverse(content: Any, ids: Mapping[str, str], dose_labels: Sequence[str],
                        add: Callable[..., None]) -> None:
    """Report every problem of the ``[multiverse]`` table through ``add(key, rule, value)``.

    ``ids`` are the plan's analysis ids, ``dose_labels`` the dose classes of
    ``[subgroups]``; keys are named ``[multiverse.abstinence].measures`` and the like.
    """
    if not isinstance(content, dict):
        add("multiverse", "must be a [multiverse] table", content)
        return
    shared = {k: v for k, v in content.items() if not isinstance(v, dict)}
    _check_keys("[multiverse]", shared, SHARED_KEYS, dose_labels, add)
    tables = {k: v for k, v in content.items() if isinstance(v, dict)}
    if not tables:
        add("[multiverse]", "needs at least one [multiverse.<analysis id>] table", show=False)
    for name, table in tables.items():
        prefix = f"[multiverse.{name}]"
        if name not in ids:
            add(prefix, "names an analysis that is not in the plan; ids: "
                + ", ".join(f'"{i}"' for i in ids), show=False)
        for key in ("outcomes", "measures"):
            if key not in table:
                add(f"{prefix}.{key}", "is required", show=False)
        _check_keys(prefix, table, ANALYSIS_KEYS, dose_labels, add)


def _check_keys(prefix: str, table: Mapping[str, Any], allowed: Sequence[str],
                dose_labels: Sequence[str], add: Callable[..., None]) -> None:
    def bad_list(key: str, value: Any, what: str, ok: Callable[[Any], bool]) -> bool:
        if not isinstance(value, list) or not value or not all(ok(x) for x in value):
            add(f"{prefix}.{key}", f"must be a non-empty list of {what}", value)
            return True
        return False

    def one_of(key: str, value: list[Any], levels: Sequence[Any]) -> None:
        for item in value:
            if item not in levels:
                add(f"{prefix}.{key}", "must be one of " + ", ".join(
                    f'"{a}"' for a in levels) + " (each)", item)

    for key, value in table.items():
        where = f"{prefix}.{key}"
        if key not in allowed:
            add(where, "unknown key; allowed: " + ", ".join(allowed), value)
        elif key == "outcomes":
            bad_list(key, value, "outcome codes or lists of codes",
                     lambda x: isinstance(x, str) or (isinstance(x, list) and bool(x) and all(
                         isinstance(c, str) for c in x)))
        elif key == "measures":
            if not bad_list(key, value, "strings", lambda x: isinstance(x, str)):
                one_of(key, value, BINARY_MEASURES + CONTINUOUS_MEASURES + ESTIMATE_MEASURES)
                ratio = {m in RATIO_MEASURES for m in value}
                if len(ratio) > 1 or (ratio == {False} and len(set(value)) > 1):
                    add(where, "must share one scale: ratio measures (OR, RR, HR) together, "
                        "or a single difference measure", value)
        elif key == "timepoints":
            if not bad_list(key, value, '"end_of_treatment", "last" or weeks',
                            lambda x: x in ("end_of_treatment", "last")
                            or (_is_number(x) and x >= 0)):
                pass
        elif key == "analysis_sets":
            if not bad_list(key, value, "strings", lambda x: isinstance(x, str)):
                one_of(key, value, ("any", *ANALYSIS_SET_PREFERENCE))
        elif key in ("derived", "reported_estimates"):
            bad_list(key, value, "true/false", lambda x: isinstance(x, bool))
        elif key == "exclude":
            if not isinstance(value, dict) or not value or not all(
                    isinstance(v, list) and v and all(isinstance(x, str) for x in v)
                    for v in value.values()):
                add(where, "must be a table of study-level column = [values to exclude]",
                    value)
            else:
                for column in value:
                    if column in MULTIVERSE_CHOICES:
                        add(where, "a column may not be named like a choice "
                            + ", ".join(MULTIVERSE_CHOICES), column)
        elif key == "dose":
            if not bad_list(key, value, "strings", lambda x: isinstance(x, str)):
                one_of(key, value, ("any", *dose_labels))
        elif key == "methods":
            if not bad_list(key, value, "strings", lambda x: isinstance(x, str)):
                one_of(key, value, METHODS)
        elif key == "ci":
            if not bad_list(key, value, "strings", lambda x: isinstance(x, str)):
                one_of(key, value, CI_METHODS)
        elif key == "min_studies" and not (
                _is_number(value) and value >= 1 and value == int(value)):
            add(where, "must be a whole number >= 1", value)


def parse_multiverse(content: Mapping[str, Any]) -> tuple[MultiverseSpec, ...]:
    """Return one :class:`MultiverseSpec` per ``[multiverse.<id>]`` table (validated plan)."""
    shared = {k: v for k, v in content.items() if not isinstance(v, dict)}
    out = []
    for name, table in content.items():
        if not isinstance(table, dict):
            continue
        merged = {**shared, **table}
        out.append(MultiverseSpec(
            analysis=str(name),
            outcomes=tuple((o,) if isinstance(o, str) else tuple(o) for o in merged["outcomes"]),
            measures=tuple(merged["measures"]),
            timepoints=tuple(merged.get("timepoints", ("end_of_treatment",))),
            analysis_sets=tuple(merged.get("analysis_sets", ("any",))),
            derived=tuple(merged.get("derived", (True,))),
            reported_estimates=tuple(merged.get("reported_estimates", (True,))),
            exclude=tuple((str(c), tuple(v)) for c, v in merged.get("exclude", {}).items()),
            dose=tuple(merged.get("dose", ("any",))),
            methods=tuple(merged.get("methods", ("REML",))),
            ci=tuple(merged.get("ci", ("z",))),
            min_studies=int(merged.get("min_studies", 2)),
        ))
    return tuple(out)


def run_multiverse(trials: pd.DataFrame, spec: MultiverseSpec, plan: Plan,
                   executor: Any = None) -> MultiverseResult:
    """Run one analysis' multiverse with the plan's selection rules and dose classes."""
    return multiverse(
        trials, outcomes=spec.outcomes, measures=spec.measures, timepoints=spec.timepoints,
        analysis_sets=spec.analysis_sets, derived=spec.derived,
        reported_estimates=spec.reported_estimates, exclude=dict(spec.exclude),
        dose=spec.dose, dose_column=plan.dose_column, dose_cuts=plan.dose_cuts,
        dose_labels=plan.dose_labels or None, methods=spec.methods, ci=spec.ci,
        comparator=plan.comparator, multiarm=plan.multiarm,
        timepoint_tolerance=plan.timepoint_tolerance, level=plan.level,
        min_studies=spec.min_studies, executor=executor, progress=False,
    )
