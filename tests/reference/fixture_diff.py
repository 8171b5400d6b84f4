"""Summarise how the regenerated JSON fixtures differ from the last commit (for make reference).

For every ``tests/reference/*.json`` that differs from ``HEAD``: how many numbers changed,
the largest relative change and where, and entries added or removed. Prints nothing but a
line per file; exits 0 (a changed fixture is for a person to review, not an error).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    """Flatten a JSON value to ``{path: scalar}`` (cases keyed by their ``id`` when present)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{path}/{key}"))
        return out
    if isinstance(value, list):
        out = {}
        for index, item in enumerate(value):
            key = item.get("id", index) if isinstance(item, dict) else index
            out.update(_leaves(item, f"{path}[{key}]"))
        return out
    return {path: value}


def _relative(old: float, new: float) -> float:
    if old == new:
        return 0.0
    return abs(new - old) / max(abs(old), 1e-300)


def summarise(path: Path) -> str | None:
    """One line describing the changes of ``path`` against HEAD, or None when unchanged."""
    relative = path.relative_to(REPO).as_posix()
    committed = subprocess.run(["git", "show", f"HEAD:{relative}"], cwd=REPO,
                               capture_output=True, text=True, check=False)
    if committed.returncode != 0:
        return f"{relative}: new file"
    if committed.stdout == path.read_text(encoding="utf-8"):
        return None
    old, new = _leaves(json.loads(committed.stdout)), _leaves(json.loads(path.read_text()))
    added, removed = new.keys() - old.keys(), old.keys() - new.keys()
    changed, worst, where = 0, 0.0, ""
    for key in old.keys() & new.keys():
        a, b = old[key], new[key]
        if a == b:
            continue
        changed += 1
        numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
        err = _relative(float(a), float(b)) if numeric else math.inf
        if err > worst or not where:
            worst, where = err, key
    return (f"{relative}: {changed} values changed (largest relative change {worst:.3g} at "
            f"{where or '-'}), {len(added)} added, {len(removed)} removed")


def main() -> int:
    """Print one summary line per changed fixture."""
    lines = [line for path in sorted(HERE.glob("*.json")) if (line := summarise(path))]
    print("\n".join(lines) if lines else "tests/reference: no fixture changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
