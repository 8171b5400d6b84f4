"""The trials data schema: a Frictionless Data Package descriptor and its field rules.

The descriptor (``analysis/data/datapackage.json``, shipped with the package and copied
to ``trials/datapackage.json``) is the single source of truth for column names, types,
allowed values, units and keys. :func:`check_fields` applies its field constraints to
string cells, vectorised over whole columns, and :func:`convert_fields` turns checked cells
into typed columns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.data.csv_reader import RawTable
from analysis.errors import Problem

__all__ = [
    "ResourceSchema",
    "check_fields",
    "convert_fields",
    "datapackage_descriptor",
    "descriptor_bytes",
    "directory_descriptor",
    "resource_schema",
]

_INTEGER = re.compile(r"^[+-]?[0-9]+$")  # ASCII digits only (\d admits other scripts)


@dataclass(frozen=True, slots=True)
class ResourceSchema:
    """The Table Schema of one resource of the data package.

    Attributes
    ----------
    name : str
        Resource name (``studies``, ``arms``, ``outcomes``).
    path : str
        File name of the resource.
    fields : tuple of dict
        Field descriptors as in the Frictionless Table Schema.
    primary_key : tuple of str
        Columns whose combination must be unique.
    foreign_keys : tuple of dict
        Foreign-key descriptors.
    """

    name: str
    path: str
    fields: tuple[dict[str, Any], ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[dict[str, Any], ...]

    @property
    def columns(self) -> list[str]:
        """Column names in schema order."""
        return [field["name"] for field in self.fields]


@cache
def _descriptor_text() -> str:
    return resources.files("analysis.data").joinpath("datapackage.json").read_text("utf-8")


def descriptor_bytes() -> bytes:
    """Return the shipped ``datapackage.json`` exactly as stored (UTF-8 bytes)."""
    return _descriptor_text().encode("utf-8")


def datapackage_descriptor() -> dict[str, Any]:
    """Return the Frictionless Data Package descriptor that defines the trials tables.

    Returns
    -------
    dict
        A fresh copy of the parsed ``datapackage.json``.
    """
    return json.loads(_descriptor_text())


def resource_schema(name: str, descriptor: dict[str, Any] | None = None) -> ResourceSchema:
    """Return the schema of resource ``name`` (``studies``, ``arms`` or ``outcomes``).

    Parameters
    ----------
    name : str
        Resource name.
    descriptor : dict, optional
        A data-package descriptor; default the shipped one.

    Returns
    -------
    ResourceSchema
    """
    descriptor = descriptor if descriptor is not None else datapackage_descriptor()
    for resource in descriptor["resources"]:
        if resource["name"] == name:
            schema = resource["schema"]
            key = schema.get("primaryKey", [])
            return ResourceSchema(
                name=name,
                path=resource["path"],
                fields=tuple(schema["fields"]),
                primary_key=tuple([key] if isinstance(key, str) else key),
                foreign_keys=tuple(schema.get("foreignKeys", [])),
            )
    known = [r["name"] for r in descriptor["resources"]]
    raise ValueError(f"resource_schema: name={name!r} is not a resource; allowed: {known}")


def _check_descriptor_structure(
    descriptor: dict[str, Any], name: str, problems: list[Problem]
) -> bool:
    """Check that keys name existing columns and that patterns compile."""
    usable = True
    columns = {
        r.get("name"): {f.get("name") for f in r.get("schema", {}).get("fields", [])}
        for r in descriptor.get("resources", [])
    }
    for resource in descriptor.get("resources", []):
        schema = resource.get("schema", {})
        mine = columns.get(resource.get("name"), set())
        key = schema.get("primaryKey", [])
        for column in [key] if isinstance(key, str) else key:
            if column not in mine:
                problems.append(Problem(name, None, column, column,
                                        f"primaryKey of {resource.get('name')!r} names a "
                                        "column the resource does not define"))
                usable = False
        for fk in schema.get("foreignKeys", []):
            reference = fk.get("reference", {})
            own = [fk.get("fields")] if isinstance(fk.get("fields"), str) else fk.get("fields")
            ref = reference.get("fields")
            ref = [ref] if isinstance(ref, str) else ref
            target = columns.get(reference.get("resource"))
            if (not own or not ref or target is None or len(own) != len(ref)
                    or not set(own) <= mine or not set(ref) <= target):
                problems.append(Problem(name, None, None, str(fk),
                                        f"foreignKey of {resource.get('name')!r} does not "
                                        "name existing columns of existing resources"))
                usable = False
        for field in schema.get("fields", []):
            pattern = field.get("constraints", {}).get("pattern")
            if pattern is None:
                continue
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(Problem(name, None, field.get("name"), pattern,
                                        f"pattern is not a valid regular expression: {exc}"))
                usable = False
    return usable


def directory_descriptor(directory: Path, problems: list[Problem]) -> dict[str, Any]:
    """Return the descriptor a trials directory is read with.

    A directory may carry its own ``datapackage.json`` (its own outcome vocabulary, allowed
    values or descriptions); it must keep every column of the toolkit's schema, with the
    same types, because the semantic rules and the analyses read them. Without one, the
    shipped schema applies.

    Parameters
    ----------
    directory : pathlib.Path
        The trials directory.
    problems : list of Problem
        Problems with the directory's descriptor are appended here; the shipped schema is
        returned in that case so that the data are still checked.

    Returns
    -------
    dict
        The descriptor to use.
    """
    path = directory / "datapackage.json"
    shipped = datapackage_descriptor()
    if not path.is_file():
        return shipped
    try:
        own = json.loads(path.read_text(encoding="utf-8"))
        resources = {r["name"]: r for r in own["resources"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(Problem(path.name, None, None, None,
                                f"not a readable data-package descriptor: {exc}"))
        return shipped
    usable = _check_descriptor_structure(own, path.name, problems)
    for resource in shipped["resources"]:
        name = resource["name"]
        mine = resources.get(name)
        if mine is None:
            problems.append(Problem(path.name, None, None, name,
                                    f"resource {name!r} of the toolkit's schema is missing"))
            usable = False
            continue
        theirs = {f["name"]: f.get("type") for f in mine.get("schema", {}).get("fields", [])}
        for field in resource["schema"]["fields"]:
            if theirs.get(field["name"]) != field["type"]:
                problems.append(Problem(
                    path.name, None, field["name"], str(theirs.get(field["name"])),
                    f"resource {name!r} must define column {field['name']!r} of type "
                    f"{field['type']!r}",
                ))
                usable = False
    return own if usable else shipped


def _report(
    problems: list[Problem], table: RawTable, mask: pd.Series, column: str, rule: str
) -> None:
    values = table.frame[column]
    for index in np.flatnonzero(mask.to_numpy()):
        problems.append(
            Problem(table.name, int(table.lines.iloc[index]), column, values.iloc[index], rule)
        )


def check_fields(table: RawTable, schema: ResourceSchema, problems: list[Problem]) -> None:
    """Check every cell against its field's type and constraints.

    Parameters
    ----------
    table : RawTable
        String cells read from the file.
    schema : ResourceSchema
        The resource's schema.
    problems : list of Problem
        Problems are appended here.
    """
    for field in schema.fields:
        column = field["name"]
        cells = table.frame[column]
        present = cells != ""
        constraints = field.get("constraints", {})
        if constraints.get("required"):
            _report(problems, table, ~present, column, "a value is required")
        kind = field["type"]
        if kind == "integer":
            valid = cells.str.match(_INTEGER)
            _report(problems, table, present & ~valid, column, "must be a whole number")
            numbers = pd.to_numeric(cells.where(present & valid), errors="coerce")
        elif kind == "number":
            numbers = pd.to_numeric(cells.where(present), errors="coerce")
            bad = present & (numbers.isna() | ~np.isfinite(numbers.fillna(0.0)))
            _report(problems, table, bad, column, "must be a finite number")
        elif kind == "boolean":
            allowed = field.get("trueValues", ["true"]) + field.get("falseValues", ["false"])
            _report(
                problems, table, present & ~cells.isin(allowed), column,
                f"must be one of {allowed}",
            )
            numbers = None
        else:
            numbers = None
        if "enum" in constraints:
            allowed = constraints["enum"]
            _report(
                problems, table, present & ~cells.isin(allowed), column,
                f"must be one of {allowed}",
            )
        if "pattern" in constraints:
            pattern = constraints["pattern"]
            matches = cells.str.fullmatch(pattern)
            _report(
                problems, table, present & ~matches, column,
                f"must match the pattern {pattern}",
            )
        if numbers is not None:
            if "minimum" in constraints:
                low = constraints["minimum"]
                _report(problems, table, numbers < low, column, f"must be >= {low}")
            if "maximum" in constraints:
                high = constraints["maximum"]
                _report(problems, table, numbers > high, column, f"must be <= {high}")


def convert_fields(frame: pd.DataFrame, schema: ResourceSchema) -> pd.DataFrame:
    """Convert checked string cells into typed columns.

    Integers become nullable ``Int64``, numbers ``float64`` (NaN when missing), booleans
    ``bool`` and strings stay strings with missing values as ``pandas.NA``.

    Parameters
    ----------
    frame : pandas.DataFrame
        String cells that passed :func:`check_fields`.
    schema : ResourceSchema
        The resource's schema.

    Returns
    -------
    pandas.DataFrame
        A new frame with typed columns.
    """
    typed = {}
    for field in schema.fields:
        column = field["name"]
        cells = frame[column]
        kind = field["type"]
        if kind == "integer":
            whole = cells.str.fullmatch(_INTEGER.pattern)
            typed[column] = pd.to_numeric(cells.where(whole), errors="coerce").astype("Int64")
        elif kind == "number":
            typed[column] = pd.to_numeric(cells.where(cells != ""), errors="coerce").astype(
                "float64"
            )
        elif kind == "boolean":
            typed[column] = cells.isin(field.get("trueValues", ["true"]))
        else:
            typed[column] = cells.where(cells != "", pd.NA).astype("string")
    return pd.DataFrame(typed, index=frame.index)
