"""The trials data schema: Frictionless Data Package descriptors and their field rules.

Two descriptors are involved. The *core* descriptor (``analysis/data/datapackage.json``,
shipped with the package) knows no subject: studies, arms and outcomes with their binary,
continuous and estimate fields, time points, analysis sets and sources. A trials directory
may carry its own *subject* descriptor (``DIR/datapackage.json``; the shipped
``trials/datapackage.json`` is the baclofen one): it keeps every core field with the same
type (required where the core requires it, allowed values within the core's, the same
keys) and adds the subject's own fields, allowed values, outcome vocabulary and row rules.
The core's ``optionalResources`` (a toolkit property Frictionless ignores; today
``risk_of_bias``) are tables a trials directory may have: read when the file is there, with
the core's schema or the subject descriptor's own definition of the resource (which then
lists it under ``resources``, like Frictionless, and keeps the core's fields, types and keys).
:func:`directory_descriptor` picks and checks the descriptor of a directory.

:func:`check_fields` applies a descriptor's field constraints to string cells, vectorised
over whole columns; :func:`convert_fields` turns checked cells into typed columns;
:func:`check_rules` applies the descriptor's row rules (the ``rules`` list of a resource
schema, see :data:`RULES`) to the typed columns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from analysis.data.csv_reader import RawTable, file_problem, is_absent
from analysis.errors import Problem

__all__ = [
    "RULES",
    "ResourceSchema",
    "check_fields",
    "check_rules",
    "convert_fields",
    "datapackage_descriptor",
    "descriptor_bytes",
    "directory_descriptor",
    "resource_path_problem",
    "resource_schema",
]

_INTEGER = re.compile(r"^[+-]?[0-9]+$")  # ASCII digits only (\d admits other scripts)
_NUMERIC = ("integer", "number")
#: Field types the toolkit checks and converts (Frictionless Table Schema names).
FIELD_TYPES = ("string", "number", "integer", "boolean")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_MISSING = object()  # a key that is not there (shown without a value)

#: Row rules a descriptor may declare in a resource schema's ``rules`` list (a property of
#: this toolkit; Frictionless ignores it). Each rule is an object with ``rule``, ``field``,
#: an optional ``description`` (used as the message) and:
#:
#: - ``required_if``: ``"if": {"field": F, "equals": V}``; ``field`` needs a value on every
#:   row where ``F`` equals ``V`` (e.g. a dose on every treatment arm);
#: - ``at_most``: ``"than": G``; where both are known, ``field <= G`` (both numeric, e.g. a
#:   target dose at most the maximum dose);
#: - ``within_if``: ``"minimum"``, ``"maximum"`` (numbers) and ``"if": {"field": F, "in":
#:   [V, ...]}``; where ``F`` is one of the values and ``field`` (numeric) is known,
#:   ``minimum <= field <= maximum`` (e.g. the mean of an outcome measured in percent).
RULES = ("required_if", "at_most", "within_if")


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
    rules : tuple of dict
        Row rules declared by the descriptor (:data:`RULES`); empty in the core schema.
    optional : bool
        True when the resource's file may be absent from a trials directory: one of the
        core's ``optionalResources`` that the descriptor does not list under ``resources``.
    """

    name: str
    path: str
    fields: tuple[dict[str, Any], ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[dict[str, Any], ...]
    rules: tuple[dict[str, Any], ...] = ()
    optional: bool = False

    @property
    def columns(self) -> list[str]:
        """Column names in schema order."""
        return [field["name"] for field in self.fields]


@cache
def _descriptor_text() -> str:
    return resources.files("analysis.data").joinpath("datapackage.json").read_text("utf-8")


def descriptor_bytes() -> bytes:
    """Return the core ``datapackage.json`` exactly as stored (UTF-8 bytes)."""
    return _descriptor_text().encode("utf-8")


def datapackage_descriptor() -> dict[str, Any]:
    """Return the core Frictionless Data Package descriptor of the trials tables.

    The core knows no subject (no doses, no outcome vocabulary); a trials directory without
    its own ``datapackage.json`` is read with it.

    Returns
    -------
    dict
        A fresh copy of the parsed core ``analysis/data/datapackage.json``.
    """
    return json.loads(_descriptor_text())


def resource_schema(name: str, descriptor: dict[str, Any] | None = None) -> ResourceSchema:
    """Return the schema of resource ``name`` (``studies``, ``arms``, ``outcomes``, ...).

    A resource listed under the descriptor's ``resources`` is required; one of the core's
    ``optionalResources`` (``risk_of_bias``) that the descriptor does not list is returned
    with ``optional=True`` (its file may be absent).

    Parameters
    ----------
    name : str
        Resource name.
    descriptor : dict, optional
        A data-package descriptor; default the core one.

    Returns
    -------
    ResourceSchema
    """
    descriptor = descriptor if descriptor is not None else datapackage_descriptor()
    listed = [(r, False) for r in descriptor["resources"]]
    extra = [(r, True) for r in datapackage_descriptor().get("optionalResources", [])]
    for resource, optional in [*listed, *extra]:
        if resource["name"] == name:
            schema = resource["schema"]
            key = schema.get("primaryKey", [])
            return ResourceSchema(
                name=name,
                path=resource["path"],
                fields=tuple(schema["fields"]),
                primary_key=tuple([key] if isinstance(key, str) else key),
                foreign_keys=tuple(schema.get("foreignKeys", [])),
                rules=tuple(schema.get("rules", [])),
                optional=optional,
            )
    known = [r["name"] for r, _ in [*listed, *extra]]
    raise ValueError(f"resource_schema: name={name!r} is not a resource; allowed: {known}")


def resource_path_problem(directory: Path, path: object) -> str | None:
    """Return why ``path`` may not be read as a file of ``directory`` (None when it may).

    A resource may only name a file inside its trials directory: a relative POSIX path
    without ``..``, not absolute, not a URL, and not a symbolic link (of the file or of a
    folder on the way) that leads out of the directory. Nothing is read; only the names
    are resolved.

    Parameters
    ----------
    directory : pathlib.Path
        The trials directory.
    path : object
        The resource's ``path`` as written in the descriptor.

    Returns
    -------
    str or None
        The rule that is broken, or None.
    """
    inside = "a file inside the trials directory"
    if isinstance(path, list):
        return f"must be one file name ({inside}); a list of paths is not supported"
    if not isinstance(path, str) or not path.strip():
        return f"must be a non-empty string naming {inside}"
    if "\0" in path:
        return "must not contain a NUL character"
    if _URL.match(path) or path.startswith("//"):
        return f"must name {inside}, not a URL or a drive"
    if PurePosixPath(path).is_absolute():
        return f"must be a relative path naming {inside}, not an absolute path"
    if "\\" in path:
        return "must use '/' between folder names (a POSIX path, as Frictionless requires)"
    if ".." in PurePosixPath(path).parts:
        return f"must not contain '..' (it must name {inside})"
    try:
        resolved = (directory / path).resolve()
        base = directory.resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic-link loop
        return f"cannot be resolved ({exc})"
    if not resolved.is_relative_to(base):
        return f"is a symbolic link that leads out of the trials directory (to {resolved})"
    return None


def _is_names(value: Any) -> bool:
    """Tell whether ``value`` is a column name or a list of them (keys, foreign keys)."""
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_field_shape(field: Any, where: str, seen: set[str]) -> list[tuple[str, Any, str]]:
    """Problems ``(location, value, rule)`` with one field descriptor."""
    if not isinstance(field, dict):
        return [(where, field, "must be an object with 'name' and 'type'")]
    found = []
    name = field.get("name", _MISSING)
    if not isinstance(name, str) or not name:
        found.append((f"{where} key 'name'", name, "must be a non-empty string"))
    elif name in seen:
        found.append((f"{where} key 'name'", name, "names a column already defined"))
    else:
        seen.add(name)
        where = f"{where} ({name!r})"
    if field.get("type") not in FIELD_TYPES:
        found.append((f"{where} key 'type'", field.get("type", _MISSING),
                      f"must be one of {list(FIELD_TYPES)}"))
    for key in ("trueValues", "falseValues"):
        if key in field and not (isinstance(field[key], list)
                                 and all(isinstance(v, str) for v in field[key])):
            found.append((f"{where} key {key!r}", field[key], "must be a list of strings"))
    constraints = field.get("constraints", {})
    if not isinstance(constraints, dict):
        return [*found, (f"{where} key 'constraints'", constraints,
                         "must be an object (leave it out for none)")]
    checks = {
        "required": (lambda v: isinstance(v, bool), "must be true or false"),
        "enum": (lambda v: isinstance(v, list) and bool(v), "must be a non-empty list"),
        "pattern": (lambda v: isinstance(v, str), "must be a string (a regular expression)"),
        "minimum": (_is_number, "must be a number"),
        "maximum": (_is_number, "must be a number"),
    }
    for key, (valid, rule) in checks.items():
        if key in constraints and not valid(constraints[key]):
            found.append((f"{where} constraints key {key!r}", constraints[key], rule))
    return found


def _check_schema_shape(schema: dict[str, Any], where: str) -> list[tuple[str, Any, str]]:
    """Problems ``(location, value, rule)`` with one resource's ``schema`` object."""
    found: list[tuple[str, Any, str]] = []
    fields = schema.get("fields", _MISSING)
    if not isinstance(fields, list) or not fields:
        found.append((f"{where} schema key 'fields'", fields,
                      "must be a non-empty list of field objects"))
    else:
        seen: set[str] = set()
        for j, field in enumerate(fields):
            found += _check_field_shape(field, f"{where} field {j}", seen)
    if "primaryKey" in schema and not _is_names(schema["primaryKey"]):
        found.append((f"{where} schema key 'primaryKey'", schema["primaryKey"],
                      "must be a column name or a list of column names"))
    foreign = schema.get("foreignKeys", [])
    if not isinstance(foreign, list):
        found.append((f"{where} schema key 'foreignKeys'", foreign, "must be a list"))
        foreign = []
    for j, fk in enumerate(foreign):
        reference = fk.get("reference") if isinstance(fk, dict) else None
        if not (isinstance(fk, dict) and _is_names(fk.get("fields"))
                and isinstance(reference, dict) and isinstance(reference.get("resource"), str)
                and _is_names(reference.get("fields"))):
            found.append((f"{where} foreignKeys[{j}]", fk,
                          "must be {\"fields\": columns, \"reference\": {\"resource\": a "
                          "name, \"fields\": columns}}"))
    rules = schema.get("rules", [])
    for j, rule in enumerate(rules if isinstance(rules, list) else []):
        condition = rule.get("if", {}) if isinstance(rule, dict) else None
        if not (isinstance(rule, dict)
                and all(isinstance(rule.get(k, ""), str) for k in ("rule", "field", "than"))
                and isinstance(condition, dict)
                and isinstance(condition.get("field", ""), str)):
            found.append((f"{where} rules[{j}]", rule,
                          "must be an object whose 'rule', 'field' and 'than' are strings "
                          "and whose 'if' is an object"))
    return found


def _check_descriptor_shape(
    own: Any, directory: Path, name: str, problems: list[Problem]
) -> bool:
    """Check the JSON types of a subject descriptor and its resource paths; all at once.

    Every problem names the resource (index and name), the key, the value and the rule;
    the later checks (keys, core, rules) assume the shapes checked here.
    """
    if not isinstance(own, dict) or not isinstance(own.get("resources"), list):
        value = own.get("resources", _MISSING) if isinstance(own, dict) else own
        problems.append(Problem(name, None, None, _shown(value),
                                "key 'resources': must be a list of resource objects"))
        return False
    found: list[tuple[str, Any, str]] = []
    names: set[str] = set()
    for i, resource in enumerate(own["resources"]):
        where = f"resources[{i}]"
        if not isinstance(resource, dict):
            found.append((where, resource, "must be an object with 'name', 'path', 'schema'"))
            continue
        label = resource.get("name", _MISSING)
        if not isinstance(label, str) or not label:
            found.append((f"{where} key 'name'", label, "must be a non-empty string"))
        elif label in names:
            found.append((f"{where} key 'name'", label, "names a resource already defined"))
        else:
            names.add(label)
            where = f"{where} ({label!r})"
        path = resource.get("path", _MISSING)
        rule = resource_path_problem(directory, path)
        if rule is not None:
            found.append((f"{where} key 'path'", path,
                          f"{rule}; the file was not read"))
        schema = resource.get("schema", _MISSING)
        if not isinstance(schema, dict):
            found.append((f"{where} key 'schema'", schema,
                          "must be an object with a list of 'fields'"))
            continue
        found += _check_schema_shape(schema, where)
    for where, value, rule in found:
        problems.append(Problem(name, None, None, _shown(value), f"{where}: {rule}"))
    return not found


def _shown(value: Any) -> str | None:
    """Show the offending value as JSON, shortened (None when the key is missing)."""
    if value is _MISSING:
        return None
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 120 else text[:117] + "..."


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


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value or [])


def _normal_foreign_keys(schema: dict[str, Any]) -> list[tuple[Any, ...]]:
    keys = []
    for fk in schema.get("foreignKeys", []):
        reference = fk.get("reference", {}) if isinstance(fk, dict) else {}
        keys.append((tuple(_as_list(fk.get("fields"))) if isinstance(fk, dict) else (),
                     reference.get("resource"), tuple(_as_list(reference.get("fields")))))
    return sorted(keys, key=repr)


def _check_rules_declared(
    descriptor: dict[str, Any], name: str, problems: list[Problem]
) -> bool:
    """Check that every row rule is known and names existing columns of fitting types."""
    usable = True
    for resource in descriptor.get("resources", []):
        schema = resource.get("schema", {})
        kinds = {f.get("name"): f.get("type") for f in schema.get("fields", [])}
        where = f"rule of resource {resource.get('name')!r}"
        rules = schema.get("rules", [])
        if not isinstance(rules, list):
            problems.append(Problem(name, None, None, str(rules),
                                    f"'rules' of resource {resource.get('name')!r} must be a "
                                    "list of rule objects"))
            usable = False
            continue
        for rule in rules:
            kind = rule.get("rule") if isinstance(rule, dict) else None
            if kind not in RULES or not isinstance(rule, dict):
                problems.append(Problem(name, None, None, str(rule),
                                        f"{where}: 'rule' must be one of {list(RULES)}"))
                usable = False
                continue
            field = rule.get("field")
            if field not in kinds:
                problems.append(Problem(name, None, str(field), str(field),
                                        f"{kind} {where} names a column the resource does "
                                        "not define"))
                usable = False
                continue
            if kind == "required_if":
                condition = rule.get("if")
                if (not isinstance(condition, dict) or condition.get("field") not in kinds
                        or "equals" not in condition):
                    problems.append(Problem(name, None, field, str(condition),
                                            f"required_if {where} needs \"if\": {{\"field\": "
                                            "a column of the resource, \"equals\": a value}"))
                    usable = False
            elif kind == "within_if":
                condition = rule.get("if")
                bounds = (rule.get("minimum"), rule.get("maximum"))
                if (kinds[field] not in _NUMERIC or not isinstance(condition, dict)
                        or condition.get("field") not in kinds
                        or not isinstance(condition.get("in"), list)
                        or not all(isinstance(v, str | int | float) and not isinstance(v, bool)
                                   for v in condition["in"])
                        or not all(isinstance(b, int | float) and not isinstance(b, bool)
                                   for b in bounds)):
                    problems.append(Problem(name, None, field, str(rule),
                                            f"within_if {where} needs a numeric \"field\", "
                                            "numbers \"minimum\" and \"maximum\" and \"if\": "
                                            "{\"field\": a column, \"in\": [strings or "
                                            "numbers]}"))
                    usable = False
            else:
                than = rule.get("than")
                if kinds[field] not in _NUMERIC or kinds.get(than) not in _NUMERIC:
                    problems.append(Problem(name, None, field, str(than),
                                            f"at_most {where} needs \"field\" and \"than\" "
                                            "naming numeric columns of the resource"))
                    usable = False
    return usable


def _check_against_core(
    own: dict[str, Any], core: dict[str, Any], name: str, problems: list[Problem]
) -> bool:
    """Check that a subject descriptor keeps every core resource, field, type and key."""
    usable = True
    resources = {r.get("name"): r for r in own.get("resources", []) if isinstance(r, dict)}
    optional = [{**r, "_optional": True} for r in core.get("optionalResources", [])]
    for resource in [*core["resources"], *optional]:
        resource_name = resource["name"]
        mine = resources.get(resource_name)
        if mine is None and resource.get("_optional"):
            continue  # an optional core resource (risk_of_bias) the subject does not declare
        if mine is None:
            problems.append(Problem(name, None, None, resource_name,
                                    f"resource {resource_name!r} of the core schema is missing"))
            usable = False
            continue
        schema = mine.get("schema", {})
        theirs = {f.get("name"): f for f in schema.get("fields", []) if isinstance(f, dict)}
        for field in resource["schema"]["fields"]:
            column = field["name"]
            other = theirs.get(column)
            if other is None or other.get("type") != field["type"]:
                problems.append(Problem(
                    name, None, column, None if other is None else str(other.get("type")),
                    f"resource {resource_name!r} must define column {column!r} of type "
                    f"{field['type']!r} (a core field)",
                ))
                usable = False
                continue
            core_rules = field.get("constraints", {})
            own_rules = other.get("constraints", {})
            if core_rules.get("required") and not own_rules.get("required"):
                problems.append(Problem(
                    name, None, column, None,
                    f"resource {resource_name!r} column {column!r} must be required (the "
                    "core schema requires it)",
                ))
                usable = False
            own_enum = own_rules.get("enum", [None])
            if "enum" in core_rules and not (
                isinstance(own_enum, list)
                and all(v is None or isinstance(v, str | int | float) for v in own_enum)
                and set(own_enum) <= set(core_rules["enum"])
            ):
                problems.append(Problem(
                    name, None, column, str(own_rules.get("enum")),
                    f"resource {resource_name!r} column {column!r} must allow only values "
                    f"among the core's {core_rules['enum']}",
                ))
                usable = False
        core_schema = resource["schema"]
        if _as_list(schema.get("primaryKey")) != _as_list(core_schema.get("primaryKey")):
            problems.append(Problem(
                name, None, None, str(schema.get("primaryKey")),
                f"resource {resource_name!r} must keep the core primaryKey "
                f"{core_schema.get('primaryKey')}",
            ))
            usable = False
        if _normal_foreign_keys(schema) != _normal_foreign_keys(core_schema):
            problems.append(Problem(
                name, None, None, str(schema.get("foreignKeys")),
                f"resource {resource_name!r} must keep the core foreignKeys "
                f"{core_schema.get('foreignKeys')}",
            ))
            usable = False
    return usable


def directory_descriptor(directory: Path, problems: list[Problem]) -> dict[str, Any] | None:
    """Return the descriptor a trials directory is read with.

    ``DIR/datapackage.json`` when the directory has one (a subject descriptor), else the core
    descriptor. A subject descriptor must define every resource and field of the core with
    the same type; a field the core requires stays required, a core field with allowed
    values allows only values among them, and the primary and foreign keys are the core's.
    It may add fields, allowed values (e.g. an outcome vocabulary as the ``outcome`` field's
    ``enum``) and row rules (:data:`RULES`), which then apply to that directory only.

    Parameters
    ----------
    directory : pathlib.Path
        The trials directory.
    problems : list of Problem
        Problems with the directory's descriptor are appended here (file
        ``datapackage.json``, the column concerned, the rule naming the resource).

    Returns
    -------
    dict or None
        The descriptor to use, or ``None`` when the directory's descriptor is unusable (its
        problems are in ``problems``; the tables cannot be checked against it).
    """
    path = directory / "datapackage.json"
    core = datapackage_descriptor()
    if is_absent(path):
        return core
    unreadable = file_problem(path)
    if unreadable is not None:  # e.g. a directory or a FIFO named datapackage.json
        problems.append(Problem(path.name, None, None, None, unreadable))
        return None
    outside = resource_path_problem(directory, path.name)
    if outside is not None:
        problems.append(Problem(path.name, None, None, None, f"{outside}; it was not read"))
        return None
    try:
        own = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(Problem(path.name, None, None, None,
                                f"not a readable data-package descriptor: {exc}"))
        return None
    if not _check_descriptor_shape(own, directory, path.name, problems):
        return None
    usable = _check_descriptor_structure(own, path.name, problems)
    usable = _check_against_core(own, core, path.name, problems) and usable
    usable = _check_rules_declared(own, path.name, problems) and usable
    return own if usable else None


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


def check_rules(
    table: RawTable, typed: pd.DataFrame, schema: ResourceSchema, problems: list[Problem]
) -> None:
    """Apply the descriptor's row rules (:data:`RULES`) to the typed columns.

    Parameters
    ----------
    table : RawTable
        String cells read from the file (for line numbers and values as written).
    typed : pandas.DataFrame
        The same rows converted by :func:`convert_fields`.
    schema : ResourceSchema
        The resource's schema; its ``rules`` were checked by :func:`directory_descriptor`.
    problems : list of Problem
        Problems are appended here.
    """
    for rule in schema.rules:
        column = rule["field"]
        if rule["rule"] == "required_if":
            condition = rule["if"]
            applies = (typed[condition["field"]] == condition["equals"]).fillna(False)
            missing = applies.astype(bool) & typed[column].isna()
            text = rule.get("description") or (
                f"a value is required when {condition['field']} is {condition['equals']!r}"
            )
            _report(problems, table, missing, column, text)
        elif rule["rule"] == "within_if":
            condition, low, high = rule["if"], rule["minimum"], rule["maximum"]
            applies = typed[condition["field"]].isin(condition["in"]).to_numpy(dtype=bool)
            value = typed[column].astype("Float64").astype("float64").to_numpy()
            outside = pd.Series(applies & ((value < low) | (value > high)))
            text = rule.get("description") or f"must lie between {low} and {high}"
            _report(problems, table, outside, column,
                    f"{text} ({condition['field']} is one of {condition['in']}; allowed "
                    f"{low} to {high})")
        else:
            than = rule["than"]
            value = typed[column].astype("Float64").astype("float64")
            limit = typed[than].astype("Float64").astype("float64")
            text = rule.get("description") or f"must be <= {than}"
            for row in np.flatnonzero((value > limit).to_numpy()):
                problems.append(Problem(
                    table.name, int(table.lines.iloc[row]), column,
                    table.frame[column].iloc[row],
                    f"{text} ({than} = {table.frame[than].iloc[row]})",
                ))
