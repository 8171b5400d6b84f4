"""The researcher notebooks in notebooks/: stored clean, executable, and writing nothing.

Every notebook is executed with nbclient (kernel ``python3``: the kernel spec installed in
the project's virtual environment) with ``notebooks/`` as the working directory. A first cell
is injected before execution that turns warnings raised from the project's own code
(``analysis`` and its submodules) into errors, so a notebook fails on any such warning as
well as on any exception. The ``figures/`` and ``tables/`` folders are compared before and
after: notebooks display figures inline and must not write report outputs.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
#: Per-cell timeout (s): generous, so that a slow CI machine does not fail a correct notebook.
CELL_TIMEOUT = 300
#: Report output folders that notebooks must leave untouched.
GUARDED = ("figures", "tables")
#: Injected before execution; not stored in the notebooks.
WARNINGS_AS_ERRORS = (
    "import warnings\n"
    'warnings.filterwarnings("error", module=r"analysis(\\..*)?$")'
)


def _ids(paths: list[Path]) -> list[str]:
    return [path.name for path in paths]


def _snapshot() -> dict[str, str]:
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


def test_notebooks_exist_and_are_numbered() -> None:
    assert len(NOTEBOOKS) >= 6, f"expected the six numbered notebooks, found {_ids(NOTEBOOKS)}"
    numbers = [path.name[:2] for path in NOTEBOOKS]
    assert len(set(numbers)) == len(numbers), f"duplicate notebook numbers: {numbers}"
    unnumbered = [p.name for p in NOTEBOOKS_DIR.glob("*.ipynb") if p not in NOTEBOOKS]
    assert not unnumbered, f"notebooks without a two-digit number prefix: {unnumbered}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: code cells {dirty} have outputs or an execution count; "
                       "store notebooks without outputs (see notebooks/README.md)")
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_imports_the_package(path: Path) -> None:
    source = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells
                       if cell.cell_type == "code")
    assert "import analysis" in source or "from analysis" in source
    for forbidden in ("savefig(", "../figures", "../tables"):
        assert forbidden not in source, f"{path.name} contains {forbidden!r}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_executes_without_errors_or_warnings_and_writes_nothing(path: Path) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    guard = nbformat.v4.new_code_cell(WARNINGS_AS_ERRORS)
    guard["id"] = "injected-warnings-as-errors"
    notebook.cells.insert(0, guard)
    before = _snapshot()
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:  # the message holds the cell, the traceback and the error
        pytest.fail(f"{path.name} failed:\n{exc}")
    elapsed = time.perf_counter() - start
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not errors, f"{path.name}: error outputs {errors}"
    assert _snapshot() == before, f"{path.name} changed files under {GUARDED}"
    print(f"{path.name}: executed in {elapsed:.1f} s")
