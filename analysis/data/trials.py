"""Load and validate a trials directory (``studies.csv``, ``arms.csv``, ``outcomes.csv``).

An optional fourth table, ``risk_of_bias.csv`` (RoB 2 judgements, rules in
:mod:`analysis.data.risk_of_bias`), is read and validated with the others when the file is
there; :func:`validate_trials` returns it under ``"risk_of_bias"`` and
:func:`load_risk_of_bias` returns it alone. A directory without it still loads.

:func:`load_trials` reads the three tables, checks them against the data-package schema and
the semantic rules below, and returns one tidy frame. Every problem in every file is
collected first and raised together as one :class:`~analysis.errors.DataValidationError`;
nothing is ever written, in the input directory or elsewhere.

The schema is the directory's own ``datapackage.json`` when it has one (a subject
descriptor, checked against the core: :func:`analysis.data.schema.directory_descriptor`),
else the core schema, which knows no subject. The rules below read core fields only; a
subject's own rules (e.g. the shipped descriptor's: every treatment arm has a dose and
``dose_target_mg_day <= dose_max_mg_day``) are declared as row rules in its descriptor and
run only for directories that declare them.

Semantic rules (on top of the schema's types, allowed values and keys):

- keys are unique and foreign keys resolve (arms to studies, outcomes to arms, contrast
  rows' ``comparator_arm_id`` to an arm of the same study);
- every study has at least one control arm and one treatment arm;
- the descriptor's row rules (``required_if``, ``at_most``) hold;
- the arms' ``n_randomised`` add up to the study's ``n_randomised_total`` when both are known;
- each outcome row fills exactly the field set of its ``data_type`` (binary: events and total;
  continuous: mean, optionally sd and n; contrast: estimate, CI, measure and comparator arm);
- ``events <= total``; ``total`` and ``n`` do not exceed the arm's ``n_randomised`` unless
  the row's ``notes`` say why; ``sd > 0``; ``ci_low <= estimate <= ci_high``, ratio
  measures are positive and risk differences lie in [-1, 1];
- keys are compared ignoring letter case;
- a row with ``derived = true`` says how in ``derivation``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from analysis.data.csv_reader import RawTable, is_absent, read_csv_cells
from analysis.data.risk_of_bias import check_risk_of_bias
from analysis.data.schema import (
    ResourceSchema,
    check_fields,
    check_rules,
    convert_fields,
    directory_descriptor,
    resource_path_problem,
    resource_schema,
)
from analysis.errors import DataValidationError, Problem

__all__ = [
    "TrialsSummary",
    "default_trials_path",
    "join_trials",
    "load_risk_of_bias",
    "load_trials",
    "summarise_trials",
    "validate_trials",
]

RESOURCES = ("studies", "arms", "outcomes")
#: The core's optional resources: read when the file is there (required when a subject
#: descriptor lists them under ``resources``).
OPTIONAL_RESOURCES = ("risk_of_bias",)
BINARY_FIELDS = ("events", "total")
CONTINUOUS_FIELDS = ("mean", "sd", "n")
CONTRAST_FIELDS = ("comparator_arm_id", "contrast_measure", "estimate", "ci_low", "ci_high")
REQUIRED_BY_TYPE = {
    "binary": ("events", "total"),
    "continuous": ("mean",),
    "contrast": CONTRAST_FIELDS,
}
RATIO_MEASURES = ("OR", "RR", "HR")


def default_trials_path() -> Path:
    """Return the shipped ``trials/`` directory (next to the ``analysis`` package)."""
    return Path(__file__).resolve().parents[2] / "trials"


@dataclass(frozen=True, slots=True)
class _Checked:
    raw: RawTable
    schema: ResourceSchema
    typed: pd.DataFrame


def _mask_report(
    problems: list[Problem], checked: _Checked, mask: pd.Series | np.ndarray, column: str,
    rule: str,
) -> None:
    values = checked.raw.frame.get(column, None)
    for index in np.flatnonzero(np.asarray(mask, dtype=bool)):
        value = None if values is None else values.iloc[index]
        problems.append(
            Problem(checked.raw.name, int(checked.raw.lines.iloc[index]), column, value, rule)
        )


def _check_primary_key(checked: _Checked, problems: list[Problem]) -> None:
    key = list(checked.schema.primary_key)
    # Identifiers that differ only in letter case are the same key (Muller2015 = muller2015).
    frame = checked.raw.frame[key].apply(lambda column: column.str.casefold())
    duplicated = frame.duplicated(subset=key, keep=False)
    if not duplicated.any():
        return
    first_line = (
        pd.Series(checked.raw.lines.to_numpy(), index=frame.index)[duplicated]
        .groupby([frame.loc[duplicated, c] for c in key], sort=False)
        .transform("min")
    )
    for index in np.flatnonzero(duplicated.to_numpy()):
        line = int(checked.raw.lines.iloc[index])
        if line == first_line.loc[frame.index[index]]:
            continue
        value = "/".join(checked.raw.frame.iloc[index][c] for c in key)
        problems.append(
            Problem(
                checked.raw.name, line, key[0], value,
                f"duplicated key ({', '.join(key)}; letter case ignored) first used on line "
                f"{int(first_line.loc[frame.index[index]])}",
            )
        )


def _check_foreign_keys(
    checked: _Checked, parents: dict[str, _Checked], problems: list[Problem]
) -> None:
    frame = checked.raw.frame
    for fk in checked.schema.foreign_keys:
        fields = [fk["fields"]] if isinstance(fk["fields"], str) else list(fk["fields"])
        ref = fk["reference"]
        ref_fields = [ref["fields"]] if isinstance(ref["fields"], str) else list(ref["fields"])
        parent = parents.get(ref["resource"])
        if parent is None:
            continue
        known = pd.MultiIndex.from_frame(parent.raw.frame[ref_fields])
        mine = pd.MultiIndex.from_frame(frame[fields])
        present = (frame[fields] != "").all(axis=1).to_numpy()
        missing = present & ~mine.isin(known)
        _mask_report(
            problems, checked, missing, fields[-1],
            f"({', '.join(fields)}) not found in {parent.raw.name}",
        )


def _numeric(checked: _Checked, column: str) -> pd.Series:
    return checked.typed[column].astype("Float64").astype("float64")


def _check_studies_and_arms(
    studies: _Checked, arms: _Checked, problems: list[Problem]
) -> None:
    typed = arms.typed
    for role in ("control", "treatment"):
        has_role = (typed["role"] == role).fillna(False).groupby(typed["study_id"]).any()
        present = studies.typed["study_id"].map(has_role).fillna(False).astype(bool)
        _mask_report(
            problems, studies, ~present.to_numpy(), "study_id",
            f"study has no {role} arm in arms.csv",
        )
    n_arms = _numeric(arms, "n_randomised")
    sums = n_arms.groupby(typed["study_id"]).sum(min_count=1)
    complete = n_arms.notna().groupby(typed["study_id"]).all()
    totals = pd.Series(
        _numeric(studies, "n_randomised_total").to_numpy(), index=studies.typed["study_id"]
    )
    for index, (study_id, total) in enumerate(totals.items()):
        if pd.isna(total) or not complete.get(study_id, False):
            continue
        if sums[study_id] != total:
            problems.append(
                Problem(
                    studies.raw.name, int(studies.raw.lines.iloc[index]),
                    "n_randomised_total", f"{total:g}",
                    f"arms' n_randomised add up to {sums[study_id]:g}, not to the total",
                )
            )


def _check_outcomes(outcomes: _Checked, arms: _Checked, problems: list[Problem]) -> None:
    typed = outcomes.typed
    frame = outcomes.raw.frame
    data_type = typed["data_type"].fillna("")
    groups = {
        "binary": BINARY_FIELDS,
        "continuous": CONTINUOUS_FIELDS,
        "contrast": CONTRAST_FIELDS,
    }
    for kind, required in REQUIRED_BY_TYPE.items():
        is_kind = (data_type == kind).to_numpy()
        for column in required:
            _mask_report(
                problems, outcomes, is_kind & (frame[column] == "").to_numpy(), column,
                f"a {kind} row needs {column}",
            )
        for other_kind, fields in groups.items():
            if other_kind == kind:
                continue
            for column in fields:
                _mask_report(
                    problems, outcomes, is_kind & (frame[column] != "").to_numpy(), column,
                    f"a {kind} row must leave the {other_kind} field {column} empty",
                )

    events, total = _numeric(outcomes, "events"), _numeric(outcomes, "total")
    _mask_report(problems, outcomes, events > total, "events", "events must be <= total")
    sd = _numeric(outcomes, "sd")
    _mask_report(problems, outcomes, sd <= 0, "sd", "sd must be > 0")

    estimate = _numeric(outcomes, "estimate")
    low, high = _numeric(outcomes, "ci_low"), _numeric(outcomes, "ci_high")
    _mask_report(
        problems, outcomes, (low > estimate) | (estimate > high), "estimate",
        "estimate must lie within [ci_low, ci_high]",
    )
    risk_difference = (typed["contrast_measure"] == "RD").fillna(False).to_numpy()
    _mask_report(
        problems, outcomes,
        risk_difference & ((low < -1) | (high > 1) | (estimate.abs() > 1)).to_numpy(),
        "estimate", "a risk difference and its CI lie in [-1, 1] (a proportion, not percent)",
    )
    ratio = typed["contrast_measure"].isin(RATIO_MEASURES).fillna(False).to_numpy()
    _mask_report(
        problems, outcomes, ratio & ((low <= 0) | (estimate <= 0)).to_numpy(), "ci_low",
        "a ratio measure (OR, RR, HR) and its CI must be > 0",
    )

    derived = typed["derived"].to_numpy()
    _mask_report(
        problems, outcomes, derived & (frame["derivation"] == "").to_numpy(), "derivation",
        "a derived row must say how it was derived",
    )

    arm_n = arms.typed.set_index(["study_id", "arm_id"])["n_randomised"].astype("Float64")
    arm_n = arm_n[~arm_n.index.duplicated()]
    keys = pd.MultiIndex.from_frame(typed[["study_id", "arm_id"]].astype(object))
    randomised = arm_n.reindex(keys).astype("float64").to_numpy()
    no_note = (frame["notes"] == "").to_numpy()
    for column in ("total", "n"):
        count = _numeric(outcomes, column).to_numpy()
        with np.errstate(invalid="ignore"):
            over = (count > randomised) & no_note
        _mask_report(
            problems, outcomes, over, column,
            f"{column} exceeds the arm's n_randomised in arms.csv; say why in notes",
        )

    comparator = typed["comparator_arm_id"]
    has_comparator = comparator.notna().to_numpy()
    same = has_comparator & (comparator == typed["arm_id"]).fillna(False).to_numpy()
    _mask_report(
        problems, outcomes, same, "comparator_arm_id",
        "the comparator must be another arm than arm_id",
    )
    comparator_keys = pd.MultiIndex.from_arrays(
        [typed["study_id"].astype(object), comparator.astype(object)]
    )
    unknown = has_comparator & ~comparator_keys.isin(arm_n.index)
    _mask_report(
        problems, outcomes, unknown, "comparator_arm_id",
        "(study_id, comparator_arm_id) not found in arms.csv",
    )


def _directory_problem(directory: Path) -> str | None:
    """Say why ``directory`` cannot be a trials directory, or return None."""
    try:
        is_directory = directory.is_dir()
    except OSError as exc:
        return f"trials directory cannot be read: {exc.strerror or exc}"
    if is_directory:
        return None
    if os.path.lexists(directory):
        return "is not a directory (a trials directory is expected)"
    return "trials directory does not exist"


def _read(directory: Path, problems: list[Problem]) -> dict[str, _Checked]:
    checked: dict[str, _Checked] = {}
    descriptor = directory_descriptor(directory, problems)
    if descriptor is None:
        return checked  # the descriptor's problems are reported; the tables cannot be read
    for name in (*RESOURCES, *OPTIONAL_RESOURCES):
        schema = resource_schema(name, descriptor)
        outside = resource_path_problem(directory, schema.path)
        if outside is not None:  # e.g. studies.csv a link to a file elsewhere: not read
            problems.append(Problem(schema.path, None, None, None,
                                    f"{outside}; the file was not read"))
            continue
        if schema.optional and is_absent(directory / schema.path):
            continue  # a directory or FIFO in its place is reported by the reader
        raw = read_csv_cells(directory / schema.path, schema.columns, problems)
        if raw is None:
            continue
        check_fields(raw, schema, problems)
        # Bad cells convert to missing values, so the semantic rules still run on the rest.
        checked[name] = _Checked(raw, schema, convert_fields(raw.frame, schema))
    return checked


def validate_trials(path: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Read and validate a trials directory, returning its three typed tables.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        Directory holding ``studies.csv``, ``arms.csv`` and ``outcomes.csv``; defaults to
        the shipped ``trials/``.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``{"studies": ..., "arms": ..., "outcomes": ...}`` with typed columns, plus
        ``"risk_of_bias"`` when the directory has ``risk_of_bias.csv``.

    Raises
    ------
    DataValidationError
        Listing every problem found (file, line, column, value, rule).
    """
    directory = Path(path) if path is not None else default_trials_path()
    problems: list[Problem] = []
    unusable = _directory_problem(directory)
    if unusable is not None:
        raise DataValidationError(
            [Problem(str(directory), None, None, None, unusable)], str(directory)
        )
    checked = _read(directory, problems)
    for item in checked.values():
        _check_primary_key(item, problems)
        _check_foreign_keys(item, checked, problems)
    if "studies" in checked and "arms" in checked:
        _check_studies_and_arms(checked["studies"], checked["arms"], problems)
    for item in checked.values():
        check_rules(item.raw, item.typed, item.schema, problems)
    if "outcomes" in checked and "arms" in checked:
        _check_outcomes(checked["outcomes"], checked["arms"], problems)
    if "risk_of_bias" in checked:
        rob = checked["risk_of_bias"]
        outcomes = checked.get("outcomes")
        check_risk_of_bias(
            rob.raw.frame, rob.raw.lines, rob.typed,
            checked["studies"].typed if "studies" in checked else None,
            None if outcomes is None else _outcome_vocabulary(outcomes.schema, outcomes.typed),
            problems, rob.raw.name,
        )
    if problems:
        raise DataValidationError(problems, str(directory))
    tables = {name: item.typed for name, item in checked.items()}
    tables["outcomes"].attrs["outcome_vocabulary"] = FrozenTuple(_outcome_vocabulary(
        checked["outcomes"].schema, tables["outcomes"]
    ))
    tables["outcomes"].attrs["field_titles"] = FrozenMapping({
        str(f["name"]): str(f["title"]) for item in checked.values()
        for f in item.schema.fields if f.get("title")})
    return tables


class FrozenTuple(tuple[str, ...]):
    """An immutable tuple that :func:`copy.deepcopy` returns as itself.

    pandas deep-copies a frame's ``attrs`` after every operation; the outcome vocabulary
    kept there is immutable, so copying it element by element is wasted time.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenTuple:
        return self


class FrozenMapping(dict[str, str]):
    """A read-only ``str -> str`` dict that :func:`copy.deepcopy` returns as itself.

    For the field titles a frame keeps in its ``attrs`` (see :class:`FrozenTuple`). It is a
    ``dict`` (so ``json.dumps`` and pandas' writers that serialise ``attrs`` accept it, and
    it compares equal to a dict with the same items); every method that would change it
    raises ``TypeError``. It pickles and copies as a ``FrozenMapping``.
    """

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("the field titles in a trials frame's attrs are read-only; copy "
                        "them with dict(...) to change them")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenMapping:
        return self

    def __copy__(self) -> FrozenMapping:
        return self

    def __reduce__(self) -> tuple[type[FrozenMapping], tuple[dict[str, str]]]:
        return (FrozenMapping, (dict(self),))


def _outcome_vocabulary(schema: ResourceSchema, outcomes: pd.DataFrame) -> tuple[str, ...]:
    """Return the outcome codes a dataset knows.

    The descriptor's vocabulary (the ``outcome`` field's ``enum``) when it declares one, in
    its order; otherwise the codes present in ``outcomes.csv``, sorted.
    """
    for field in schema.fields:
        if field.get("name") == "outcome":
            enum = field.get("constraints", {}).get("enum")
            if enum:
                return tuple(str(code) for code in enum)
    return tuple(sorted(str(code) for code in outcomes["outcome"].dropna().unique()))


def join_trials(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Join validated tables (:func:`validate_trials`) into the tidy frame of :func:`load_trials`.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        ``{"studies": ..., "arms": ..., "outcomes": ...}`` as returned by
        :func:`validate_trials`.

    Returns
    -------
    pandas.DataFrame
        One row per outcome observation with the arm's and the study's attributes;
        ``attrs["outcome_vocabulary"]`` holds the descriptor's outcome codes, or the codes
        present when the descriptor declares no vocabulary (used by
        :func:`analysis.contrasts` to tell a known outcome without data from a misspelling);
        ``attrs["field_titles"]`` maps each field with a ``title`` in the descriptor to it
        (display names, e.g. subgroup headings).
    """
    studies = tables["studies"].rename(
        columns={"source_location": "study_source_location", "notes": "study_notes"}
    )
    arms = tables["arms"].rename(
        columns={
            "source": "arm_source",
            "source_location": "arm_source_location",
            "notes": "arm_notes",
        }
    )
    joined = tables["outcomes"].merge(arms, on=["study_id", "arm_id"], how="left",
                                      validate="many_to_one")
    comparators = tables["arms"][["study_id", "arm_id", "intervention", "n_randomised"]].rename(
        columns={"arm_id": "comparator_arm_id", "intervention": "comparator_intervention",
                 "n_randomised": "comparator_n_randomised"}
    )
    joined = joined.merge(comparators, on=["study_id", "comparator_arm_id"], how="left",
                          validate="many_to_one")
    joined = joined.merge(studies, on="study_id", how="left", validate="many_to_one")
    for key in ("outcome_vocabulary", "field_titles"):
        if key in tables["outcomes"].attrs:
            joined.attrs[key] = tables["outcomes"].attrs[key]
    return joined


def load_trials(path: str | Path | None = None) -> pd.DataFrame:
    """Load, validate and join a trials directory into one tidy frame.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        Directory with ``studies.csv``, ``arms.csv`` and ``outcomes.csv``. Defaults to the
        shipped ``trials/`` directory. The tables are read with the directory's own
        ``datapackage.json`` when it has one (a subject descriptor: the core fields with
        their types and keys, plus the subject's fields, outcome vocabulary and row rules;
        the shipped ``trials/datapackage.json`` is the baclofen one), else with the core
        schema ``analysis/data/datapackage.json``, which knows no subject (no doses, any
        outcome code of lower-case letters, digits and underscores).

    Returns
    -------
    pandas.DataFrame
        One row per outcome observation (study x arm x outcome x time point x analysis
        set) with the arm's and the study's attributes joined on. Colliding arm columns
        are prefixed ``arm_`` (``arm_source``, ``arm_source_location``, ``arm_notes``) and
        study ones ``study_`` (``study_source_location``, ``study_notes``). Contrast rows
        also get ``comparator_intervention`` and ``comparator_n_randomised`` of their
        comparator arm.

    Raises
    ------
    DataValidationError
        When any file breaks the schema or a semantic rule; the message lists every
        problem with file, CSV line (header = 1), column, value and rule.

    Examples
    --------
    >>> import analysis as ma
    >>> trials = ma.load_trials()
    >>> sorted(trials["data_type"].unique())
    ['binary', 'continuous', 'contrast']
    """
    return join_trials(validate_trials(path))


@dataclass(frozen=True, slots=True)
class TrialsSummary:
    """Counts describing a validated trials directory."""

    studies: int
    arms: int
    outcome_rows: int
    derived_rows: int

    def __str__(self) -> str:
        return (
            f"{self.studies} studies, {self.arms} arms, {self.outcome_rows} outcome rows "
            f"({self.derived_rows} derived)"
        )


def summarise_trials(tables: dict[str, pd.DataFrame]) -> TrialsSummary:
    """Count studies, arms, outcome rows and derived rows of validated tables.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        The result of :func:`validate_trials`.

    Returns
    -------
    TrialsSummary
    """
    outcomes = tables["outcomes"]
    return TrialsSummary(
        studies=len(tables["studies"]),
        arms=len(tables["arms"]),
        outcome_rows=len(outcomes),
        derived_rows=int(outcomes["derived"].sum()),
    )


def load_risk_of_bias(path: str | Path | None = None) -> pd.DataFrame | None:
    """Return the validated risk-of-bias table (RoB 2) of a trials directory.

    The whole directory is validated (:func:`validate_trials`), so the table's study
    identifiers and outcome codes are known to resolve.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        The trials directory; defaults to the shipped ``trials/``.

    Returns
    -------
    pandas.DataFrame or None
        One row per study x outcome x domain: ``study_id, outcome, domain, judgement,
        reason, source, source_location, notes`` (rules in :mod:`analysis.data.risk_of_bias`);
        ``None`` when the directory has no ``risk_of_bias.csv``.

    Raises
    ------
    DataValidationError
        When any file of the directory breaks the schema or a semantic rule.

    Examples
    --------
    >>> import analysis as ma
    >>> rob = ma.load_risk_of_bias()
    >>> sorted(rob["domain"].unique())
    ['D1', 'D2', 'D3', 'D4', 'D5', 'overall']
    """
    return validate_trials(path).get("risk_of_bias")
