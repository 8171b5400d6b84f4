"""Read an analysis plan (TOML) and run it on a trials directory.

A plan says which outcomes to pool, with which measure, estimator and multi-arm rule, which
subgroup analyses and sensitivity analyses to run (see ``analysis_plan.toml`` at the top of
the repository for the shipped one). This module only computes: it returns result objects
and tidy frames; the command line draws and writes them.
"""

from __future__ import annotations

import itertools
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis._checks import check_choice
from analysis.bayesian import BayesMetaResult
from analysis.bayesian.spec import parse_tau_prior
from analysis.contrasts import (
    BINARY_MEASURES,
    CONTINUOUS_MEASURES,
    ESTIMATE_MEASURES,
    MULTIARM,
    contrasts,
    shared_control_covariance,
)
from analysis.control import METHODS
from analysis.data.csv_reader import file_problem, is_absent, read_csv_cells
from analysis.dose import (
    DEFAULT_CUTS,
    DEFAULT_LABELS,
    DoseResponseResult,
    SparseDataError,
    dose_classes,
    dose_response,
)
from analysis.dose import (
    METHODS as DOSE_METHODS,
)
from analysis.dose import (
    MODELS as DOSE_MODELS,
)
from analysis.errors import ConvergenceError, Problem
from analysis.pooling import CI_METHODS, mantel_haenszel, pool
from analysis.regression import meta_regression, subgroup_analysis
from analysis.report.multiverse_plan import (
    MultiverseSpec,
    parse_multiverse,
    run_multiverse,
    validate_multiverse,
)
from analysis.report.rare_events import RARE_EVENTS_MODELS, RareEventsFit, fit_rare_events
from analysis.results import (
    CumulativeResult,
    GoshResult,
    LeaveOneOutResult,
    MetaRegressionResult,
    MultiverseResult,
    PoolResult,
    SubgroupResult,
    TrialSequentialResult,
)
from analysis.risk_of_bias import (
    GradeRiskOfBias,
    LowRiskSensitivity,
    grade_risk_of_bias,
    low_risk_sensitivity,
    overall_by_study,
    weight_by_study,
)
from analysis.sensitivity import baujat, cumulative, leave_one_out

__all__ = [
    "AnalysisRun",
    "AnalysisSpec",
    "Plan",
    "PlanError",
    "estimator_sensitivity",
    "plan_contrasts",
    "read_plan",
    "run_analysis",
    "validate_plan",
]

MIN_STUDIES_LEAVE_ONE_OUT = 3
#: Default of ``[sensitivity].gosh_min_k``: with k = 5 comparisons a GOSH plot has 31 subsets
#: (5 of them single studies), already few for clusters to show; below, it shows too little.
DEFAULT_GOSH_MIN_K = 5
#: The smallest ``gosh_min_k`` a plan may set (k = 3: 7 subsets, three of them one study).
MIN_GOSH_K_ALLOWED = 3
#: Measures a trial sequential analysis of the plan may use (a control event rate is pooled).
TSA_MEASURES = ("OR", "RR", "RD")
RATIO_TSA = ("OR", "RR")
#: Pooling models of the TSA's cumulative Z-curve.
TSA_METHODS = ("DL", "FE")
MIN_STUDIES_DIAGNOSTICS = 3  # funnel, Baujat and meta-regression on dose
NOT_REPORTED = "not reported"


@dataclass(frozen=True, slots=True)
class AnalysisSpec:
    """One pooled analysis of the plan.

    ``rare_events`` names the rare-events model (``"CM.EL"``, ``"UM.FS"``) also fitted to
    the 2x2 counts when a cell is zero (:mod:`analysis.report.rare_events`); None: none.
    """

    id: str
    outcome: str
    measure: str
    label: str
    favours: tuple[str, str]
    rare_events: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """A parsed analysis plan (see ``analysis_plan.toml``)."""

    title: str
    trials: Path
    comparator: str | None
    method: str
    ci: str
    multiarm: str
    level: float
    analyses: tuple[AnalysisSpec, ...]
    timepoint_tolerance: float | None = None
    subgroup_columns: tuple[str, ...] = ()
    dose_column: str = "dose_target_mg_day"
    dose_cuts: tuple[float, ...] = ()
    dose_labels: tuple[str, ...] = ()
    min_studies_per_subgroup: int = 2
    exclude_derived: bool = True
    leave_one_out: bool = True
    risk_of_bias: bool = True
    dose_analyses: tuple[str, ...] = ()
    dose_metrics: tuple[str, ...] = ("dose_target_mg_day",)
    dose_models: tuple[str, ...] = ("linear",)
    dose_primary_metric: str = "dose_target_mg_day"
    dose_primary_model: str = "linear"
    dose_per: float = 100.0
    dose_method: str = "REML"
    dose_label: str = "Dose"
    intervention: str = "treatment"
    narrative_studies: tuple[str, ...] = ()
    gosh: bool = True
    gosh_min_k: int = DEFAULT_GOSH_MIN_K
    bayes_analyses: tuple[str, ...] = ()
    bayes_tau_prior: str = "half-normal(0.5)"
    bayes_sensitivity_priors: tuple[str, ...] = ()
    tsa_analyses: tuple[str, ...] = ()
    tsa_effects: tuple[tuple[str, float], ...] = ()
    tsa_alpha: float = 0.05
    tsa_beta: float = 0.2
    tsa_method: str = "DL"
    tsa_heterogeneity: str = "D2"
    tsa_spending: str = "obf"
    tsa_futility: str = "none"
    source: Path | None = None
    multiverse: tuple[MultiverseSpec, ...] = ()

    def multiverse_spec(self, analysis_id: str) -> MultiverseSpec | None:
        """Return the multiverse of analysis ``analysis_id``, or None if the plan has none."""
        return next((m for m in self.multiverse if m.analysis == analysis_id), None)

    def tsa_effect(self, analysis_id: str) -> float:
        """Return the anticipated effect of the plan's ``[sequential].effects`` for an analysis."""
        return dict(self.tsa_effects)[analysis_id]

    def analysis(self, analysis_id: str) -> AnalysisSpec:
        """Return the analysis called ``analysis_id``."""
        for spec in self.analyses:
            if spec.id == analysis_id:
                return spec
        known = [spec.id for spec in self.analyses]
        raise ValueError(f"analysis {analysis_id!r} is not in the plan; known: {known}")


class PlanError(ValueError):
    """Every problem found in an analysis plan, raised together.

    Parameters
    ----------
    problems : sequence of analysis.errors.Problem
        ``file`` is the plan file, ``line`` None, ``column`` the key (``[report].method``,
        ``[[analysis]] number 2 (id "dropout").measure``), ``value`` the value as TOML
        would write it, ``rule`` what is allowed.
    path : pathlib.Path
        The plan file.
    """

    def __init__(self, problems: Sequence[Problem], path: Path) -> None:
        self.problems = list(problems)
        self.path = path
        lines = [f"{path}: {len(self.problems)} problem(s) in the analysis plan:"]
        for problem in self.problems:
            if problem.column is None:
                lines.append(f"  {path}: {problem.rule}")
                continue
            value = "" if problem.value is None else f" = {problem.value}"
            lines.append(f"  {path}: {problem.column}{value}: {problem.rule}")
        super().__init__("\n".join(lines))


def _toml_value(value: Any) -> str:
    """Show a value as it is written in TOML (strings in double quotes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: Key -> (type name, predicate) of every key the plan may hold, per section.
_TYPES: dict[str, tuple[str, Any]] = {
    "str": ("a string", lambda v: isinstance(v, str)),
    "number": ("a number", _is_number),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "str_list": ("a list of strings",
                 lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "number_list": ("a list of numbers",
                    lambda v: isinstance(v, list) and all(_is_number(x) for x in v)),
    "number_table": ("a table of numbers by analysis id, e.g. {abstinence = 1.5}",
                     lambda v: isinstance(v, dict) and all(_is_number(x) for x in v.values())),
}
_SECTIONS: dict[str, dict[str, str]] = {
    "report": {"title": "str", "trials": "str", "comparator": "str", "method": "str",
               "ci": "str", "multiarm": "str", "level": "number",
               "timepoint_tolerance_weeks": "number"},
    "analysis": {"id": "str", "outcome": "str", "measure": "str", "label": "str",
                 "favours": "str_list", "rare_events": "str"},
    "subgroups": {"columns": "str_list", "dose_column": "str", "dose_cuts": "number_list",
                  "dose_labels": "str_list", "min_studies_per_subgroup": "number"},
    "sensitivity": {"exclude_derived": "bool", "leave_one_out": "bool", "risk_of_bias": "bool",
                    "gosh": "bool", "gosh_min_k": "number"},
    "dose_response": {"analyses": "str_list", "metrics": "str_list", "models": "str_list",
                      "primary_metric": "str", "primary_model": "str", "per": "number",
                      "method": "str", "dose_label": "str"},
    "narrative": {"intervention": "str", "studies": "str_list"},
    "bayesian": {"analyses": "str_list", "tau_prior": "str", "sensitivity_priors": "str_list"},
    "sequential": {"analyses": "str_list", "effects": "number_table", "alpha": "number",
                   "beta": "number", "method": "str", "heterogeneity": "str",
                   "spending": "str", "futility": "str"},
    "multiverse": {},  # subtables per analysis: analysis.report.multiverse_plan
}
_REQUIRED_ANALYSIS_KEYS = ("id", "outcome", "measure")
MEASURES = BINARY_MEASURES + CONTINUOUS_MEASURES + ESTIMATE_MEASURES


def _one_of(allowed: Sequence[str]) -> str:
    return "must be one of " + ", ".join(f'"{a}"' for a in allowed)


def validate_plan(raw: Mapping[str, Any], path: Path) -> list[Problem]:
    """Check every section, key, type and allowed value of a parsed plan.

    Returns every problem found (empty when the plan is valid); :func:`read_plan` raises
    them together as one :class:`PlanError`.
    """
    problems: list[Problem] = []

    def add(key: str, rule: str, value: Any = None, *, show: bool = True) -> None:
        problems.append(Problem(str(path), None, key, _toml_value(value) if show else None,
                                rule))

    tables: list[tuple[str, str, Mapping[str, Any]]] = []  # (section, key prefix, table)
    for section, content in raw.items():
        if section not in _SECTIONS:
            add(f"[{section}]", "unknown section; allowed: "
                + ", ".join("[[analysis]]" if s == "analysis" else f"[{s}]" for s in _SECTIONS),
                show=False)
        elif section == "analysis":
            if not isinstance(content, list) or not all(isinstance(e, dict) for e in content):
                add("analysis", "must be a list of [[analysis]] tables", content)
                continue
            for number, entry in enumerate(content, start=1):
                ident = entry.get("id")
                name = f"[[analysis]] number {number}" + (
                    f" (id {_toml_value(ident)})" if isinstance(ident, str) else "")
                tables.append((section, name, entry))
        elif section == "multiverse":
            continue  # validated below, once the analysis ids are known
        elif not isinstance(content, dict):
            add(section, f"must be a [{section}] table", content)
        else:
            tables.append((section, f"[{section}]", content))
    if "analysis" not in raw:
        add("[[analysis]]", "the plan needs at least one [[analysis]] table", show=False)

    valid: dict[str, dict[str, Any]] = {}  # the values of the right type, by "prefix.key"
    for section, prefix, table in tables:
        keys = _SECTIONS[section]
        for key, value in table.items():
            where = f"{prefix}.{key}"
            if key not in keys:
                add(where, "unknown key; allowed: " + ", ".join(keys), value)
                continue
            description, check = _TYPES[keys[key]]
            if not check(value):
                add(where, f"must be {description}", value)
                continue
            valid.setdefault(prefix, {})[key] = value
        if section == "analysis":
            for key in _REQUIRED_ANALYSIS_KEYS:
                if key not in table:
                    add(f"{prefix}.{key}", "is required", show=False)

    def value_of(prefix: str, key: str) -> Any:
        return valid.get(prefix, {}).get(key)

    def choice(prefix: str, key: str, allowed: Sequence[str]) -> None:
        value = value_of(prefix, key)
        if value is not None and value not in allowed:
            add(f"{prefix}.{key}", _one_of(allowed), value)

    report = "[report]"
    choice(report, "method", METHODS)
    choice(report, "ci", CI_METHODS)
    choice(report, "multiarm", MULTIARM)
    level = value_of(report, "level")
    if level is not None and not 0 < level < 1:
        hint = (f" (a percentage? write {level / 100:g} for {level:g}%)"
                if 1 < level < 100 else "")
        add(f"{report}.level", "must be strictly between 0 and 1, e.g. 0.95" + hint, level)
    tolerance = value_of(report, "timepoint_tolerance_weeks")
    if tolerance is not None and tolerance < 0:
        add(f"{report}.timepoint_tolerance_weeks", "must be >= 0", tolerance)
    trials = value_of(report, "trials")
    trials_dir = path.parent / (trials if trials is not None else "trials")
    if not trials_dir.is_dir():
        add(f"{report}.trials", f"no such directory: {trials_dir}",
            trials if trials is not None else None, show=trials is not None)

    ids: dict[str, str] = {}
    measures: dict[str, str] = {}
    for section, prefix, _ in tables:
        if section != "analysis":
            continue
        choice(prefix, "measure", MEASURES)
        choice(prefix, "rare_events", RARE_EVENTS_MODELS)
        measure = value_of(prefix, "measure")
        if (value_of(prefix, "rare_events") is not None and measure is not None
                and measure not in BINARY_MEASURES):
            add(f"{prefix}.rare_events", "needs a binary measure ("
                + ", ".join(BINARY_MEASURES) + f") for 2x2 counts; this analysis has "
                f"measure = {_toml_value(measure)}", value_of(prefix, "rare_events"))
        favours = value_of(prefix, "favours")
        if favours is not None and len(favours) != 2:
            add(f"{prefix}.favours", "needs two labels (left, right)", favours)
        ident = value_of(prefix, "id")
        if ident is not None and value_of(prefix, "measure") is not None:
            measures.setdefault(ident, value_of(prefix, "measure"))
        if ident is not None:
            if ident in ids:
                add(f"{prefix}.id", f"duplicate analysis id (also {ids[ident]})", ident)
            else:
                ids[ident] = prefix

    subgroups = "[subgroups]"
    minimum = value_of(subgroups, "min_studies_per_subgroup")
    if isinstance(minimum, int | float) and not isinstance(minimum, bool) and (
            minimum < 1 or minimum != int(minimum)):
        add(f"{subgroups}.min_studies_per_subgroup", "must be a whole number >= 1", minimum)
    cuts = value_of(subgroups, "dose_cuts")
    if cuts is not None and any(b <= a for a, b in itertools.pairwise(cuts)):
        add(f"{subgroups}.dose_cuts", "must be strictly increasing", cuts)
    labels = value_of(subgroups, "dose_labels")
    n_classes = len(cuts if cuts is not None else DEFAULT_CUTS) + 1
    if labels and len(labels) != n_classes:
        add(f"{subgroups}.dose_labels",
            f"needs {n_classes} labels, one per dose class of dose_cuts", labels)

    dose = "[dose_response]"
    for analysis_id in value_of(dose, "analyses") or ():
        if analysis_id not in ids:
            add(f"{dose}.analyses", "names an analysis that is not in the plan; ids: "
                + ", ".join(f'"{i}"' for i in ids), analysis_id)
    models = value_of(dose, "models")
    for model in models or ():
        if model not in DOSE_MODELS:
            add(f"{dose}.models", _one_of(DOSE_MODELS) + " (each)", model)
    choice(dose, "method", DOSE_METHODS)
    metrics = value_of(dose, "metrics")
    for key, listed, default in (("primary_metric", metrics, ("dose_target_mg_day",)),
                                 ("primary_model", models, ("linear",))):
        value = value_of(dose, key)
        listed = listed if listed is not None else default
        if value is not None and value not in listed:
            add(f"{dose}.{key}", f"must be one of the listed {key.split('_')[1]}s: "
                + ", ".join(f'"{v}"' for v in listed), value)
    per = value_of(dose, "per")
    if per is not None and not per > 0:
        add(f"{dose}.per", "must be > 0", per)

    def planned(prefix: str) -> list[str]:
        """Check that ``prefix.analyses`` names analyses of the plan; return those it names."""
        listed = value_of(prefix, "analyses") or []
        for analysis_id in listed:
            if analysis_id not in ids:
                add(f"{prefix}.analyses", "names an analysis that is not in the plan; ids: "
                    + ", ".join(f'"{i}"' for i in ids), analysis_id)
        return [a for a in listed if a in ids]

    sensitivity = "[sensitivity]"
    gosh_min = value_of(sensitivity, "gosh_min_k")
    if gosh_min is not None and (gosh_min != int(gosh_min) or gosh_min < MIN_GOSH_K_ALLOWED):
        add(f"{sensitivity}.gosh_min_k", f"must be a whole number >= {MIN_GOSH_K_ALLOWED} "
            f"(the number of comparisons below which no GOSH plot is drawn; default "
            f"{DEFAULT_GOSH_MIN_K})", gosh_min)

    bayesian = "[bayesian]"
    planned(bayesian)
    priors = [("tau_prior", value_of(bayesian, "tau_prior"))]
    priors += [("sensitivity_priors", p) for p in value_of(bayesian, "sensitivity_priors") or ()]
    for key, prior in priors:
        if prior is None:
            continue
        try:
            parse_tau_prior(prior)
        except ValueError as exc:
            add(f"{bayesian}.{key}", str(exc).replace(f"prior {prior!r}", "prior", 1), prior)

    sequential = "[sequential]"
    tsa_ids = planned(sequential)
    effects = value_of(sequential, "effects") or {}
    for analysis_id in tsa_ids:
        measure = measures.get(analysis_id)
        if measure not in TSA_MEASURES:
            add(f"{sequential}.analyses", f"needs a binary measure ({', '.join(TSA_MEASURES)}) "
                f"for a control event rate; analysis {analysis_id!r} has {measure!r}",
                analysis_id)
        elif analysis_id not in effects:
            add(f"{sequential}.effects", f"needs the anticipated effect of analysis "
                f"{analysis_id!r} (a {measure}, the assumption of the required information "
                "size)", effects)
    for analysis_id, effect in effects.items():
        where = f"{sequential}.effects.{analysis_id}"
        measure = measures.get(analysis_id)
        if analysis_id not in tsa_ids:
            add(where, "is not one of [sequential].analyses", effect)
        elif measure in RATIO_TSA and not (effect > 0 and effect != 1):
            add(where, f"must be a {measure} > 0 and not 1 (the anticipated effect)", effect)
        elif measure == "RD" and not (-1 < effect < 1 and effect != 0):
            add(where, "must be a risk difference in (-1, 1), not 0", effect)
    for key in ("alpha", "beta"):
        value = value_of(sequential, key)
        if value is not None and not 0 < value < 0.5:
            add(f"{sequential}.{key}", "must be strictly between 0 and 0.5 (e.g. "
                + ("0.05)" if key == "alpha" else "0.2 for 80% power)"), value)
    choice(sequential, "method", TSA_METHODS)
    choice(sequential, "heterogeneity", ("D2", "I2", "none"))
    choice(sequential, "spending", ("obf", "pocock"))
    choice(sequential, "futility", ("none", "non-binding", "binding"))

    subgroups_key = "[subgroups]"
    study_columns = _csv_header(trials_dir / "studies.csv")
    arm_columns = _csv_header(trials_dir / "arms.csv")
    dose_column = value_of(subgroups_key, "dose_column")
    if isinstance(dose_column, str) and arm_columns is not None and (
            dose_column not in arm_columns):
        add(f"{subgroups_key}.dose_column", f"must be a column of {trials_dir / 'arms.csv'}",
            dose_column)
    for column in value_of(subgroups_key, "columns") or ():
        if (isinstance(column, str) and column != "dose_class" and study_columns is not None
                and column not in study_columns):
            add(f"{subgroups_key}.columns",
                f"must be 'dose_class' or a column of {trials_dir / 'studies.csv'}", column)

    narrative = "[narrative]"
    studies_file = trials_dir / "studies.csv"
    named = value_of(narrative, "studies")
    known = _study_ids(studies_file) if named else None
    if named and known is not None:
        for study in named:
            if study not in known:
                add(f"{narrative}.studies", f"no such study_id in {studies_file}", study)
    if "multiverse" in raw:
        validate_multiverse(raw["multiverse"], ids, _dose_class_labels(cuts, labels), add)
    return problems


def _dose_class_labels(cuts: Sequence[float] | None, labels: Sequence[str] | None
                       ) -> tuple[str, ...]:
    """Return the dose-class labels of the plan's ``[subgroups]`` (none if invalid)."""
    if cuts is None:
        return tuple(labels) if labels and len(labels) == len(DEFAULT_CUTS) + 1 else (
            DEFAULT_LABELS)
    try:
        edges = np.array([*cuts, cuts[-1] + 1.0]) if cuts else np.array([])
        return tuple(str(x) for x in dose_classes(edges, cuts, labels or None))
    except ValueError:
        return ()


def _csv_header(path: Path) -> set[str] | None:
    """Return the column names of a CSV file, or None when it cannot be read.

    Validating the trials then says why it cannot be read.
    """
    import csv

    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return set(next(csv.reader(handle), []))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def _study_ids(studies_file: Path) -> set[str] | None:
    """Return the ``study_id`` column of a ``studies.csv`` (to check the plan's study names).

    ``None`` when the file cannot be read as CSV: validating the trials reports why.
    """
    problems: list[Problem] = []
    table = read_csv_cells(studies_file, ["study_id"], problems)
    if table is None:
        return None
    return set(table.frame["study_id"])


def read_plan(path: str | Path) -> Plan:
    """Parse a TOML analysis plan.

    Parameters
    ----------
    path : str or pathlib.Path
        The plan file; relative paths inside it are relative to its folder.

    Returns
    -------
    Plan

    Raises
    ------
    PlanError
        (a ``ValueError``) listing every problem of the plan at once (:func:`validate_plan`:
        unknown sections and keys, wrong types, values not allowed, duplicate analysis ids,
        a missing trials directory), each with the plan file, the key and the value; nothing
        is run or written before the plan is valid.
    """
    path = Path(path)
    unreadable = ("no such file" if is_absent(path) else file_problem(path))
    if unreadable is not None:  # never opened: a FIFO would block
        raise PlanError([Problem(str(path), None, None, None,
                                 f"cannot read the analysis plan: {unreadable}")], path)
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        problem = Problem(str(path), None, None, None,
                          f"cannot read the analysis plan: {exc.strerror or exc}")
        raise PlanError([problem], path) from exc
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        problem = Problem(str(path), None, None, None,
                          f"line {line}: the analysis plan must be UTF-8 encoded text")
        raise PlanError([problem], path) from exc
    except tomllib.TOMLDecodeError as exc:
        problem = Problem(str(path), None, None, None, f"not valid TOML: {exc}")
        raise PlanError([problem], path) from exc
    problems = validate_plan(raw, path)
    if problems:
        raise PlanError(problems, path)
    report = raw.get("report", {})
    analyses = []
    for index, entry in enumerate(raw.get("analysis", []), start=1):
        try:
            measure = check_choice("measure", entry["measure"],
                                   BINARY_MEASURES + CONTINUOUS_MEASURES + ESTIMATE_MEASURES)
            favours = tuple(entry.get("favours", ("Favours treatment", "Favours control")))
            if len(favours) != 2:
                raise ValueError("favours needs two labels (left, right)")
            analyses.append(AnalysisSpec(
                id=str(entry["id"]), outcome=str(entry["outcome"]), measure=measure,
                label=str(entry.get("label", entry["outcome"])),
                favours=(str(favours[0]), str(favours[1])),
                rare_events=(str(entry["rare_events"]) if "rare_events" in entry else None),
            ))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: [[analysis]] number {index}: {exc}") from exc
    subgroups = raw.get("subgroups", {})
    sensitivity = raw.get("sensitivity", {})
    dose = raw.get("dose_response", {})
    narrative = raw.get("narrative", {})
    bayesian = raw.get("bayesian", {})
    sequential = raw.get("sequential", {})
    comparator = report.get("comparator", "placebo")
    return Plan(
        title=str(report.get("title", "Meta-analysis")),
        trials=(path.parent / report.get("trials", "trials")),
        comparator=None if comparator in ("", "any") else str(comparator),
        method=str(report.get("method", "REML")),
        ci=str(report.get("ci", "z")),
        multiarm=str(report.get("multiarm", "split")),
        level=float(report.get("level", 0.95)),
        analyses=tuple(analyses),
        timepoint_tolerance=(float(report["timepoint_tolerance_weeks"])
                             if "timepoint_tolerance_weeks" in report else None),
        subgroup_columns=tuple(subgroups.get("columns", ())),
        dose_column=str(subgroups.get("dose_column", "dose_target_mg_day")),
        dose_cuts=tuple(float(c) for c in subgroups.get("dose_cuts", DEFAULT_CUTS)),
        dose_labels=tuple(str(label) for label in subgroups.get("dose_labels", ())),
        min_studies_per_subgroup=int(subgroups.get("min_studies_per_subgroup",
                                                   MIN_STUDIES_PER_SUBGROUP)),
        exclude_derived=bool(sensitivity.get("exclude_derived", True)),
        leave_one_out=bool(sensitivity.get("leave_one_out", True)),
        risk_of_bias=bool(sensitivity.get("risk_of_bias", True)),
        dose_analyses=tuple(str(a) for a in dose.get("analyses", ())),
        dose_metrics=tuple(str(m) for m in dose.get("metrics", ("dose_target_mg_day",))),
        dose_models=tuple(str(m) for m in dose.get("models", ("linear",))),
        dose_primary_metric=str(dose.get("primary_metric", "dose_target_mg_day")),
        dose_primary_model=str(dose.get("primary_model", "linear")),
        dose_per=float(dose.get("per", 100)),
        dose_method=str(dose.get("method", "REML")),
        dose_label=str(dose.get("dose_label", "Dose")),
        intervention=str(narrative.get("intervention", "treatment")),
        narrative_studies=tuple(str(s) for s in narrative.get("studies", ())),
        gosh=bool(sensitivity.get("gosh", True)),
        gosh_min_k=int(sensitivity.get("gosh_min_k", DEFAULT_GOSH_MIN_K)),
        bayes_analyses=tuple(str(a) for a in bayesian.get("analyses", ())),
        bayes_tau_prior=str(bayesian.get("tau_prior", "half-normal(0.5)")),
        bayes_sensitivity_priors=tuple(str(p) for p in bayesian.get("sensitivity_priors", ())),
        tsa_analyses=tuple(str(a) for a in sequential.get("analyses", ())),
        tsa_effects=tuple((str(k), float(v)) for k, v in sequential.get("effects", {}).items()),
        tsa_alpha=float(sequential.get("alpha", 0.05)),
        tsa_beta=float(sequential.get("beta", 0.2)),
        tsa_method=str(sequential.get("method", "DL")),
        tsa_heterogeneity=str(sequential.get("heterogeneity", "D2")),
        tsa_spending=str(sequential.get("spending", "obf")),
        tsa_futility=str(sequential.get("futility", "none")),
        source=path,
        multiverse=parse_multiverse(raw.get("multiverse", {})),
    )


@dataclass(frozen=True, slots=True)
class AnalysisRun:
    """Everything computed for one analysis of the plan.

    ``result`` is None when no comparison was estimable; ``note`` then says why (and
    otherwise records what was left out, e.g. rows without SD). ``data`` holds the
    estimable comparisons (those pooled); ``not_estimable`` the comparisons of
    :func:`analysis.contrasts` without a finite ``yi``/``vi`` (e.g. double zeros of a ratio
    measure), shown as "Not estimable" in the forest plot and the study table;
    :meth:`comparisons` gives both in the order of :func:`analysis.contrasts`.
    ``gosh``/``gosh_diagnostics`` (:func:`analysis.report.robustness.run_gosh`), the
    ``small_study`` tests, the Bayesian fits ``bayes`` (by prior, the primary first) and the
    trial sequential analysis ``tsa`` with its pooled ``tsa_control_rate`` are set where
    the plan asks for them and they apply; ``robustness_notes`` says why one planned was
    not computed (keys ``"bayes"``, ``"tsa"``).
    ``subgroup_titles`` names each subgrouping (the field's ``title`` in the trials'
    descriptor, else the column name humanised). ``rob_sensitivity`` (the
    analysis restricted to studies at low risk or with some concerns) and ``rob_grade``
    (GRADE's risk-of-bias domain) are set when the trials have a risk-of-bias table.
    ``rare_events`` is the plan's rare-events model (:mod:`analysis.report.rare_events`),
    fitted or with the reason it was not, when the analysis asks for one and a 2x2 cell is
    zero; None otherwise.
    """

    spec: AnalysisSpec
    data: pd.DataFrame
    result: PoolResult | None
    note: str
    sensitivity: pd.DataFrame
    subgroups: dict[str, SubgroupResult] = field(default_factory=dict)
    subgroup_data: dict[str, pd.DataFrame] = field(default_factory=dict)
    leave_one_out: LeaveOneOutResult | None = None
    without_derived: PoolResult | None = None
    dose_table: pd.DataFrame | None = None
    dose_result: DoseResponseResult | None = None
    dose_points: pd.DataFrame | None = None
    cumulative: CumulativeResult | None = None
    baujat: pd.DataFrame | None = None
    dose_regression: MetaRegressionResult | None = None
    rob_sensitivity: LowRiskSensitivity | None = None
    rob_grade: GradeRiskOfBias | None = None
    subgroup_notes: dict[str, str] = field(default_factory=dict)
    not_estimable: pd.DataFrame = field(default_factory=pd.DataFrame)
    subgroup_titles: dict[str, str] = field(default_factory=dict)
    gosh: GoshResult | None = None
    gosh_diagnostics: pd.DataFrame | None = None
    small_study: pd.DataFrame | None = None
    bayes: Mapping[str, BayesMetaResult] = field(default_factory=dict)
    tsa: TrialSequentialResult | None = None
    tsa_control_rate: float | None = None
    robustness_notes: dict[str, str] = field(default_factory=dict)
    multiverse: MultiverseResult | None = None
    rare_events: RareEventsFit | None = None

    def comparisons(self) -> pd.DataFrame:
        """Every comparison, estimable or not, in the order of :func:`analysis.contrasts`."""
        if self.not_estimable.empty:
            return self.data
        if self.data.empty:
            return self.not_estimable.reset_index(drop=True)
        frame = pd.concat([self.data, self.not_estimable], ignore_index=True)
        return frame.sort_values(list(CONTRAST_ORDER), kind="stable").reset_index(drop=True)


#: The row order of :func:`analysis.contrasts`.
CONTRAST_ORDER = ("year", "study_id", "treatment_arm_id")


def subgroup_title(column: str, trials: pd.DataFrame, plan: Plan) -> str:
    """Display name of a subgrouping: the descriptor's field ``title``, else the column humanised.

    ``dose_class`` is named after the plan's dose column (its title, e.g. "Target dose").
    """
    titles = trials.attrs.get("field_titles", {})
    name = plan.dose_column if column == "dose_class" and plan.dose_column in titles else column
    return str(titles.get(name) or name.replace("_", " ").strip().capitalize())


#: Ratio measures for which double-zero comparisons are not estimable.
RATIO_DROP00 = ("OR", "RR")


def _not_estimable_note(rows: pd.DataFrame, measure: str) -> str:
    """Name the comparisons without an estimable effect and say why."""
    double_zero = []
    other = []
    for record in rows.to_dict("records"):
        label = str(record.get("label", record.get("study_id")))
        counts = np.array([pd.to_numeric(str(record.get(c)), errors="coerce")
                           for c in ("events_t", "n_t", "events_c", "n_c")], dtype=float)
        if np.isfinite(counts).all():
            a, n1, c, n2 = (float(x) for x in counts)
            if (a == 0 and c == 0) or (a == n1 and c == n2):
                double_zero.append(f"{label} ({a:.0f}/{n1:.0f} vs {c:.0f}/{n2:.0f})")
                continue
        other.append(label)
    parts = []
    if double_zero:
        parts.append(f"not estimable ({measure}: no events, or only events, in both arms; "
                     "excluded from pooling as RevMan does): " + ", ".join(double_zero))
    if other:
        parts.append("no estimable effect: " + ", ".join(other))
    return "; ".join(parts)


#: Default minimum number of studies in every subgroup before a subgrouping is analysed
#: (the plan's ``[subgroups].min_studies_per_subgroup``): a test for subgroup differences
#: driven by one-study subgroups compares single trials, not subgroups.
MIN_STUDIES_PER_SUBGROUP = 2


def _small_subgroups(data: pd.DataFrame, labels: pd.Series, minimum: int) -> str:
    """Describe the subgroups with fewer than ``minimum`` studies ("" when there are none)."""
    studies = data["study_id"].groupby(labels.to_numpy()).nunique()
    small = studies[studies < minimum]
    return ", ".join(f"'{group}' has {n} stud{'y' if n == 1 else 'ies'}"
                     for group, n in small.items())


def _gaps_note(trials: pd.DataFrame, spec: AnalysisSpec, used: pd.DataFrame) -> str:
    rows = trials[trials["outcome"] == spec.outcome]
    studies = set(rows["study_id"])
    unused = sorted(studies - set(used["study_id"])) if not used.empty else sorted(studies)
    if not studies:
        return "no study reports this outcome"
    if unused:
        what = ("counts" if spec.measure in BINARY_MEASURES else "SD and n"
                if spec.measure in CONTINUOUS_MEASURES else "estimate with a CI")
        return (f"{len(unused)} of {len(studies)} studies reporting it could not be used (no "
                f"{what} against the comparator, or no time point near the end of "
                "treatment): " + ", ".join(unused))
    return ""


def study_labels(data: pd.DataFrame) -> pd.Series:
    """Return one label per comparison naming its study (the same for a trial's arms).

    ``first_author year`` when both columns are present, else the first comparison's
    ``label`` without a trailing `` (arm)``, else ``study_id``; a label shared by two
    ``study_id`` values gets the id appended, so each study keeps its own label.
    """
    ids = data["study_id"].astype(str)
    first = data.assign(_study=ids).drop_duplicates("_study").set_index("_study")
    if {"first_author", "year"} <= set(first.columns) and first[["first_author", "year"]] \
            .notna().all().all():
        year = pd.to_numeric(first["year"], errors="coerce")
        names = first["first_author"].astype(str) + " " + year.map(
            lambda y: f"{y:.0f}" if pd.notna(y) else "")
    elif "label" in first.columns:
        names = first["label"].astype(str).str.replace(r"\s*\([^()]*\)$", "", regex=True)
    else:
        names = pd.Series(first.index, index=first.index)
    names = names.str.strip()
    clash = names.duplicated(keep=False)
    names[clash] = names[clash] + " [" + names.index[clash] + "]"
    return pd.Series(ids.map(names).to_numpy(), index=data.index, name="study")


def _pool(data: pd.DataFrame, plan: Plan, method: str, ci: str) -> PoolResult:
    result = pool(data["yi"].to_numpy(float), data["vi"].to_numpy(float), method=method,
                  ci=ci, level=plan.level, measure=str(data["measure"].iloc[0]),
                  study=data["label"].to_numpy() if "label" in data.columns else None)
    assert isinstance(result, PoolResult)
    return result


def estimator_sensitivity(data: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Pool the same comparisons with FE, DL, REML, REML + HKSJ and (binary) Mantel-Haenszel.

    Parameters
    ----------
    data : pandas.DataFrame
        Output of :func:`analysis.contrasts` with estimable ``yi``, ``vi``.
    plan : Plan
        Supplies the confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``model, k, estimate, se, ci_low, ci_high, pvalue, tau2, i2,
        pi_low, pi_high`` (log scale for ratio measures).
    """
    rows = []
    for label, method, ci in (("Fixed effect (inverse variance)", "FE", "z"),
                              ("Random effects, DerSimonian-Laird", "DL", "z"),
                              ("Random effects, REML", "REML", "z"),
                              ("Random effects, REML + Hartung-Knapp", "REML", "hksj")):
        try:
            result = _pool(data, plan, method, ci)
        except (ConvergenceError, ValueError) as exc:
            rows.append({"model": label, "k": len(data), "note": str(exc)})
            continue
        row = _row(label, result)
        if ci == "hksj" and result.ci_method != "hksj":  # k = 1: metafor sets test = "z"
            row["note"] = (f"k = {result.k}: Hartung-Knapp needs k >= 2; z interval, "
                           "as metafor")
        rows.append(row)
    measure = str(data["measure"].iloc[0])
    arm_level = ~data.get("from_reported_estimate", pd.Series(False, index=data.index))
    arm_level = arm_level.astype(bool)
    if measure in BINARY_MEASURES and arm_level.all() and len(data) >= 1:
        try:
            mh = mantel_haenszel(data["events_t"], data["n_t"], data["events_c"],
                                 data["n_c"], measure=measure, level=plan.level)
            rows.append(_row("Fixed effect, Mantel-Haenszel", mh))
        except (ValueError, ConvergenceError) as exc:
            rows.append({"model": "Fixed effect, Mantel-Haenszel", "k": len(data),
                         "note": str(exc)})
    return pd.DataFrame(rows)


def _row(label: str, result: Any) -> dict[str, object]:
    return {
        "model": label, "k": int(result.k), "estimate": result.estimate, "se": result.se,
        "ci_low": result.ci_low, "ci_high": result.ci_high, "pvalue": result.pvalue,
        "tau2": getattr(result, "tau2", 0.0), "i2": getattr(result, "i2", float("nan")),
        "pi_low": getattr(result, "pi_low", float("nan")),
        "pi_high": getattr(result, "pi_high", float("nan")), "note": "",
    }


def _subgroup_labels(data: pd.DataFrame, column: str, plan: Plan) -> pd.Series:
    if column == "dose_class":
        labels = plan.dose_labels or None
        return pd.Series(dose_classes(data[plan.dose_column], plan.dose_cuts, labels),
                         index=data.index)
    values = data[column].astype(object)
    return values.where(values.notna(), NOT_REPORTED).astype(str)


def _in_label_order(result: SubgroupResult, order: tuple[str, ...]) -> SubgroupResult:
    """Put subgroups in the given order (e.g. dose classes by dose, not alphabetically)."""
    rank = {label: i for i, label in enumerate(order)}
    groups = sorted(result.results, key=lambda g: rank.get(g, len(rank)))
    table = result.subgroups.assign(_rank=result.subgroups["group"].map(rank))
    table = table.sort_values("_rank", kind="stable").drop(columns="_rank")
    return replace(result, subgroups=table.reset_index(drop=True),
                   results={g: result.results[g] for g in groups})


def plan_contrasts(
    trials: pd.DataFrame, spec: AnalysisSpec, plan: Plan, *, multiarm: str | None = None
) -> pd.DataFrame:
    """Return the comparisons of one planned analysis, selected as the plan says.

    The one definition of an analysis' data, used by :func:`run_analysis` (and so by every
    table and figure of the report), :func:`run_dose_response` and the notebooks:
    :func:`analysis.contrasts` with the plan's comparator, multi-arm rule and end-of-treatment
    time-point tolerance, the default analysis-set preference, and, for ratio measures,
    ``drop00=True`` (a comparison with no events, or only events, in both arms is not
    estimable: RevMan's rule, metafor's ``drop00``; it keeps NaN ``yi``/``vi``).

    Parameters
    ----------
    trials : pandas.DataFrame
        The tidy frame of :func:`analysis.load_trials`.
    spec : AnalysisSpec
        The analysis (outcome and measure).
    plan : Plan
        Comparator, multi-arm rule and time-point tolerance.
    multiarm : str, optional
        Overrides the plan's multi-arm rule (the dose-response models use
        ``"correlated"``).

    Returns
    -------
    pandas.DataFrame
        One row per comparison (:func:`analysis.contrasts`), estimable or not.
    """
    options: dict[str, object] = {"drop00": True} if spec.measure in RATIO_DROP00 else {}
    return contrasts(trials, outcome=spec.outcome, measure=spec.measure,
                     multiarm=plan.multiarm if multiarm is None else multiarm,
                     comparator=plan.comparator,
                     timepoint_tolerance=plan.timepoint_tolerance,
                     **options)  # type: ignore[arg-type]


def run_analysis(
    trials: pd.DataFrame, spec: AnalysisSpec, plan: Plan, rob: pd.DataFrame | None = None
) -> AnalysisRun:
    """Run one analysis of the plan: contrasts, pooling, sensitivity and subgroups.

    Parameters
    ----------
    trials : pandas.DataFrame
        The tidy frame of :func:`analysis.load_trials`.
    spec : AnalysisSpec
        The analysis.
    plan : Plan
        Estimator, CI method, multi-arm rule, subgroups and sensitivity settings.
    rob : pandas.DataFrame, optional
        The validated risk-of-bias table (:func:`analysis.load_risk_of_bias`); with it (and
        ``plan.risk_of_bias``) the run gets the low-risk sensitivity analysis and GRADE's
        risk-of-bias domain (:mod:`analysis.risk_of_bias`).

    Returns
    -------
    AnalysisRun
    """
    # Ratio measures: a comparison with no events (or only events) in both arms carries no
    # information on the ratio and is not estimable (RevMan's rule; metafor's drop00), so
    # it is excluded from pooling and named in the note, never shown as a pooled result.
    data = plan_contrasts(trials, spec, plan)
    selected = data  # estimable or not: the rare-events model counts double zeros itself
    not_estimable = ""
    excluded = data.iloc[0:0]
    gaps = _gaps_note(trials, spec, data)  # studies without usable numbers at all
    if not data.empty:
        ok = (np.isfinite(data["yi"].astype(float)) & np.isfinite(data["vi"].astype(float)))
        if not ok.all():
            not_estimable = _not_estimable_note(data[~ok], spec.measure)
        excluded = data[~ok].reset_index(drop=True)
        data = data[ok].reset_index(drop=True)
    note = "; ".join(n for n in (gaps, not_estimable) if n)
    titles = {column: subgroup_title(column, trials, plan) for column in plan.subgroup_columns}
    rare = (fit_rare_events(_one_per_study(trials, spec, plan, selected,
                                           estimable_only=False),
                            spec, plan) if spec.rare_events is not None else None)
    if data.empty:
        empty = pd.DataFrame()
        return AnalysisRun(spec, data, None, note or "no estimable comparison", empty,
                           not_estimable=excluded, subgroup_titles=titles, rare_events=rare)
    result = _pool(data, plan, plan.method, plan.ci)
    sensitivity = estimator_sensitivity(data, plan)

    subgroups: dict[str, SubgroupResult] = {}
    subgroup_data: dict[str, pd.DataFrame] = {}
    subgroup_notes: dict[str, str] = {}
    for column in plan.subgroup_columns:
        labels = _subgroup_labels(data, column, plan)
        if labels.isna().any() or labels.nunique() < 2 or len(data) < 3:
            continue
        small = _small_subgroups(data, labels, plan.min_studies_per_subgroup)
        if small:
            subgroup_notes[column] = (
                f"not analysed: the plan asks for at least {plan.min_studies_per_subgroup} "
                f"studies per subgroup; {small}")
            continue
        try:
            subgroups[column] = subgroup_analysis(
                data["yi"].to_numpy(float), data["vi"].to_numpy(float),
                labels.to_numpy(), method=plan.method, ci=plan.ci, level=plan.level,
            )
        except (ConvergenceError, ValueError):
            continue
        if column == "dose_class" and plan.dose_labels:
            subgroups[column] = _in_label_order(subgroups[column], plan.dose_labels)
        subgroup_data[column] = data.assign(subgroup=labels.to_numpy())

    # whole studies: a multi-arm trial's comparisons leave (and enter) together
    study = study_labels(data)
    loo = None
    if plan.leave_one_out and study.nunique() >= MIN_STUDIES_LEAVE_ONE_OUT:
        loo = leave_one_out(result, cluster=study.to_numpy())  # method, ci, level of result

    without = None
    if plan.exclude_derived:
        kept = data[~data["derived"].astype(bool)]
        if 0 < len(kept) < len(data):
            without = _pool(kept, plan, plan.method, plan.ci)
    dose_table, dose_result, dose_points = (None, None, None)
    if spec.id in plan.dose_analyses:
        dose_table, dose_result, dose_points = run_dose_response(trials, spec, plan)
    yi, vi = data["yi"].to_numpy(float), data["vi"].to_numpy(float)
    cumulative_frame = None
    if study.nunique() >= 2:
        cumulative_frame = cumulative(result, order=data["year"].to_numpy(float),
                                      cluster=study.to_numpy())
    enough = len(data) >= MIN_STUDIES_DIAGNOSTICS
    baujat_frame = baujat(result) if enough else None
    regression = None
    doses = data[plan.dose_column].astype(float)
    if enough and doses.notna().all() and doses.nunique() >= 2:
        regression = meta_regression(yi, vi, pd.DataFrame({plan.dose_column: doses}),
                                     method=plan.method, ci=plan.ci, level=plan.level)
    rob_sensitivity, rob_grade = None, None
    if rob is not None and plan.risk_of_bias:
        rob_sensitivity = low_risk_sensitivity(data, rob, spec.outcome, method=plan.method,
                                               ci=plan.ci, level=plan.level)
        rob_grade = grade_risk_of_bias(weight_by_study(data, result),
                                       overall_by_study(rob, spec.outcome))
    planned = plan.multiverse_spec(spec.id)
    universe = run_multiverse(trials, planned, plan) if planned is not None else None
    run = AnalysisRun(spec, data, result, note, sensitivity, subgroups, subgroup_data, loo,
                      without, dose_table, dose_result, dose_points, cumulative_frame,
                      baujat_frame, regression, rob_sensitivity, rob_grade, subgroup_notes,
                      excluded, titles, multiverse=universe, rare_events=rare)
    return _with_robustness(run, plan, _one_per_study(trials, spec, plan, data))


def _one_per_study(trials: pd.DataFrame, spec: AnalysisSpec, plan: Plan,
                   data: pd.DataFrame, *, estimable_only: bool = True) -> pd.DataFrame:
    """Return the comparisons with each multi-arm trial's treatment arms combined into one.

    The Bayesian model, the trial sequential analysis and the rare-events model treat every
    row as an independent trial; split comparisons of one trial share its control arm, so
    for them a multi-arm trial enters once, its treatment arms combined (Cochrane Handbook
    23.3.4). ``data`` are the comparisons as the run selected them (all of them, estimable
    or not, with ``estimable_only=False``, which keeps the non-estimable rows too).
    """
    if data.empty or data["study_id"].is_unique:
        return data
    combined = plan_contrasts(trials, spec, plan, multiarm="combine")
    if not estimable_only:
        return combined
    ok = (np.isfinite(combined["yi"].astype(float))
          & np.isfinite(combined["vi"].astype(float)))
    return combined[ok].reset_index(drop=True)


def _with_robustness(run: AnalysisRun, plan: Plan,
                     independent: pd.DataFrame | None = None) -> AnalysisRun:
    """Add GOSH, the small-study tests, the Bayesian fits and the TSA the plan asks for.

    ``independent`` (one row per study, :func:`_one_per_study`) feeds the Bayesian fits and
    the TSA; GOSH and the small-study tests use the run's comparisons, as the pooled model.
    """
    from analysis.report import robustness

    data, result, spec = run.data, run.result, run.spec
    one_per_study = data if independent is None else independent
    assert result is not None
    notes: dict[str, str] = {}
    fitted = robustness.run_gosh(result, plan)
    small = (robustness.small_study_tests(data, result, spec.measure) if result.k >= 2
             else None)
    bayes: Mapping[str, BayesMetaResult] = {}
    if spec.id in plan.bayes_analyses:
        try:
            bayes = robustness.run_bayes(one_per_study, spec, plan)
        except ValueError as exc:
            notes["bayes"] = str(exc)
    tsa, rate = None, None
    if spec.id in plan.tsa_analyses:
        try:
            tsa, rate = robustness.run_tsa(one_per_study, spec, plan)
        except (ValueError, ConvergenceError) as exc:
            notes["tsa"] = str(exc)
    return replace(run, gosh=None if fitted is None else fitted[0],
                   gosh_diagnostics=None if fitted is None else fitted[1], small_study=small,
                   bayes=bayes, tsa=tsa, tsa_control_rate=rate, robustness_notes=notes)


def run_dose_response(
    trials: pd.DataFrame, spec: AnalysisSpec, plan: Plan
) -> tuple[pd.DataFrame, DoseResponseResult | None, pd.DataFrame | None]:
    """Fit every planned dose-response model x dose metric for one analysis.

    Comparisons are built with ``multiarm="correlated"`` (every dose arm against the whole
    shared control, with :func:`analysis.shared_control_covariance` as the within-study
    covariance) and fitted with :func:`analysis.dose.dose_response` (one stage, a
    random intercept per study).

    Returns
    -------
    table : pandas.DataFrame
        One row per metric x model: ``metric, model, k, studies, slope_per_unit`` (the
        linear coefficient times ``plan.dose_per``, linear model only), ``ci_low, ci_high,
        pvalue`` (Wald test of all dose terms), ``nonlinearity_pvalue``, ``tau2`` and
        ``note`` (the reason when a model cannot be fitted).
    primary : DoseResponseResult or None
        The primary model and metric, when it could be fitted.
    points : pandas.DataFrame or None
        The comparisons of the primary metric (``dose, yi, vi, measure, label``), for
        plotting.
    """
    data = plan_contrasts(trials, spec, plan, multiarm="correlated")
    rows: list[dict[str, object]] = []
    primary: DoseResponseResult | None = None
    points: pd.DataFrame | None = None
    for metric in plan.dose_metrics:
        usable = data[np.isfinite(data["yi"].astype(float)) & data[metric].notna()] if (
            not data.empty) else data
        usable = usable.reset_index(drop=True)
        for model in plan.dose_models:
            row: dict[str, object] = {"metric": metric, "model": model, "k": len(usable),
                                      "studies": usable["study_id"].nunique()
                                      if not usable.empty else 0}
            try:
                if usable.empty:
                    raise SparseDataError(f"no comparison has {metric}")
                fit = dose_response(
                    usable["yi"].to_numpy(float), shared_control_covariance(usable),
                    usable[metric].to_numpy(float), usable["study_id"].to_numpy(),
                    model=model, method=plan.dose_method, level=plan.level,
                )
            except (SparseDataError, ConvergenceError, ValueError) as exc:
                rows.append({**row, "note": str(exc)})
                continue
            if model == "linear":
                row.update(slope_per_unit=float(fit.coef.iloc[0]) * plan.dose_per,
                           ci_low=float(fit.ci_low.iloc[0]) * plan.dose_per,
                           ci_high=float(fit.ci_high.iloc[0]) * plan.dose_per)
            row.update(pvalue=fit.qm_pvalue, nonlinearity_pvalue=fit.nonlinearity_pvalue,
                       tau2=fit.tau2, note="")
            rows.append(row)
            if metric == plan.dose_primary_metric and model == plan.dose_primary_model:
                primary = fit
                points = pd.DataFrame({"dose": usable[metric], "yi": usable["yi"],
                                       "vi": usable["vi"], "measure": spec.measure,
                                       "label": usable["label"]})
    columns = ["metric", "model", "k", "studies", "slope_per_unit", "ci_low", "ci_high",
               "pvalue", "nonlinearity_pvalue", "tau2", "note"]
    return pd.DataFrame(rows).reindex(columns=columns), primary, points
