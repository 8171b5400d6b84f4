"""Execute a researcher notebook once per test session (shared by the notebook tests).

A notebook is executed with nbclient (kernel ``python3``, the kernel spec installed in the
project's virtual environment) with ``notebooks/`` as the working directory, after an
injected first cell that turns warnings raised from the project's own code into errors. The
``figures/`` and ``tables/`` folders are hashed before and after: notebooks must not write
report outputs. The result is cached, so tests that read a notebook's outputs
(``test_notebook_consistency.py``) and the test that executes it (``test_notebooks.py``) run
it once.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
#: Per-cell timeout (s): generous, so that a slow CI machine does not fail a correct notebook.
CELL_TIMEOUT = 300
#: Report output folders that notebooks must leave untouched.
GUARDED = ("figures", "tables")
#: Injected before execution; not stored in the notebooks.
WARNINGS_AS_ERRORS = (
    "import warnings\n"
    'warnings.filterwarnings("error", module=r"analysis(\\..*)?$")'
)


def snapshot() -> dict[str, str]:
    """Relative path -> SHA-256 of every file under the guarded folders."""
    state: dict[str, str] = {}
    for name in GUARDED:
        folder = ROOT / name
        if not folder.exists():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                state[str(path.relative_to(ROOT))] = hashlib.sha256(
                    path.read_bytes()).hexdigest()
    return state


@dataclass(frozen=True)
class Execution:
    """One execution of a notebook: the executed cells, or the error that stopped it."""

    notebook: Any
    error: str
    seconds: float
    wrote: bool  # files under GUARDED changed


@cache
def execute(path: Path) -> Execution:
    """Execute the notebook at ``path`` once (cached for the session)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    guard = nbformat.v4.new_code_cell(WARNINGS_AS_ERRORS)
    guard["id"] = "injected-warnings-as-errors"
    notebook.cells.insert(0, guard)
    before = snapshot()
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    start = time.perf_counter()
    error = ""
    try:
        client.execute()
    except CellExecutionError as exc:  # the message holds the cell, the traceback and the error
        error = str(exc)
    return Execution(notebook, error, time.perf_counter() - start, snapshot() != before)


def output_text(notebook: Any) -> str:
    """Everything the executed cells printed or displayed as text (stream, Markdown, plain)."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "stream":
                parts.append(output["text"])
            data = output.get("data", {})
            for kind in ("text/markdown", "text/plain"):
                if kind in data:
                    parts.append(data[kind])
                    break
    return "\n".join(parts)
