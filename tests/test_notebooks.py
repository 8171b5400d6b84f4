"""The researcher notebooks in notebooks/: stored clean, executable, and writing nothing.

Every notebook is executed with nbclient (kernel ``python3``: the kernel spec installed in
the project's virtual environment) with ``notebooks/`` as the working directory. A first cell
is injected before execution that turns warnings raised from the project's own code
(``analysis`` and its submodules) into errors, so a notebook fails on any such warning as
well as on any exception. The ``figures/`` and ``tables/`` folders are compared before and
after: notebooks display figures inline and must not write report outputs.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from notebook_runner import GUARDED, NOTEBOOKS_DIR, execute

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def _ids(paths: list[Path]) -> list[str]:
    return [path.name for path in paths]


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
    run = execute(path)  # shared with test_notebook_consistency.py: executed once per session
    if run.error:
        pytest.fail(f"{path.name} failed:\n{run.error}")
    errors = [output for cell in run.notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not errors, f"{path.name}: error outputs {errors}"
    assert not run.wrote, f"{path.name} changed files under {GUARDED}"
    print(f"{path.name}: executed in {run.seconds:.1f} s")
