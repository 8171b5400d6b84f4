"""Shared helpers: the metafor reference fixture and a field-by-field comparison."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE = Path(__file__).parent / "reference" / "metafor_reference.json"

#: Relative tolerance against metafor (the project's requirement).
RTOL = 1e-6
#: Absolute floor: values that are mathematically 0 (e.g. an estimate of exactly 0 or tau2 = 0)
#: come out as +-1e-17-sized rounding noise in either program, where a relative test is
#: meaningless.
ATOL = 1e-12


@lru_cache(maxsize=1)
def _load() -> dict[str, Any]:
    with REFERENCE.open(encoding="utf-8") as handle:
        return json.load(handle)


def reference_cases(kind: str) -> list[dict[str, Any]]:
    """All fixture cases of one kind (empty if the fixture is missing)."""
    if not REFERENCE.exists():
        return []
    return [case for case in _load()["cases"] if case["kind"] == kind]


def case_ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case["id"] for case in cases]


def as_array(value: Any) -> np.ndarray:
    """JSON value (null = NA) to a float array."""
    if isinstance(value, list):
        return np.array([np.nan if x is None else float(x) for x in value], dtype=float)
    return np.array([np.nan if value is None else float(value)], dtype=float)


def relative_error(ours: Any, expected: Any, atol: float = ATOL) -> float:
    """Largest relative error over the entries (0 where both are NA; inf on an NA mismatch)."""
    a = np.atleast_1d(np.asarray(ours, dtype=float)).copy()
    a[np.isinf(a)] = np.nan  # the fixture writes R's NA, NaN and +-Inf as null
    b = as_array(expected) if not isinstance(expected, np.ndarray) else np.atleast_1d(expected)
    if a.shape != b.shape:
        return float("inf")
    na = np.isnan(a) | np.isnan(b)
    if np.any(np.isnan(a) != np.isnan(b)):
        return float("inf")
    if np.all(na):
        return 0.0
    a, b = a[~na], b[~na]
    diff = np.abs(a - b)
    err = np.where(diff <= atol, 0.0, diff / np.maximum(np.abs(b), 1e-300))
    return float(err.max())


def compare_fields(
    case: dict[str, Any],
    ours: dict[str, Any],
    fields: list[str] | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> list[str]:
    """Return readable mismatch lines (case id, field, ours, metafor's) for every field."""
    expected = case["expected"]
    fields = list(expected) if fields is None else fields
    problems = []
    for field in fields:
        if field not in ours:
            problems.append(f"{case['id']}: field {field!r} not produced by our code")
            continue
        err = relative_error(ours[field], expected[field], atol=atol)
        if not err <= rtol:
            problems.append(
                f"{case['id']}: {field}: ours={np.asarray(ours[field]).tolist()!r} "
                f"metafor={expected[field]!r} (rel. error {err:.3g}; call: {case['call']})"
            )
    return problems


def assert_agrees(case: dict[str, Any], ours: dict[str, Any], fields: list[str] | None = None,
                  rtol: float = RTOL, atol: float = ATOL) -> None:
    problems = compare_fields(case, ours, fields, rtol, atol)
    assert not problems, "\n".join(problems)
