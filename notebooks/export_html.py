"""Execute the notebooks and write HTML copies, or strip their outputs.

Usage (from the repository root)::

    .venv/bin/python notebooks/export_html.py --out build/notebooks notebooks/*.ipynb
    .venv/bin/python notebooks/export_html.py --strip notebooks/*.ipynb

Each notebook is executed with nbclient (kernel ``python3``, working directory
``notebooks/``) and converted with nbconvert's ``HTMLExporter`` when nbconvert is installed,
otherwise with a minimal built-in exporter. The stored notebooks are never modified, except
with ``--strip``, which removes outputs and execution counts in place.
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
CELL_TIMEOUT = 300


def execute(path: Path) -> nbformat.NotebookNode:
    """Return the executed notebook (the file itself is not changed)."""
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    return notebook


def _minimal_html(notebook: nbformat.NotebookNode, title: str) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             "</title><style>body{font-family:sans-serif;max-width:60em;margin:auto}"
             "pre{background:#f6f6f6;padding:.5em;overflow-x:auto}"
             ".md{white-space:pre-wrap;background:none}</style></head><body>"]
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            parts.append(f"<pre class='md'>{html.escape(cell.source)}</pre>")
            continue
        if cell.cell_type != "code":
            continue
        parts.append(f"<pre><code>{html.escape(cell.source)}</code></pre>")
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(f"<pre>{html.escape(output.text)}</pre>")
            elif output.output_type in ("execute_result", "display_data"):
                data = output.get("data", {})
                if "image/png" in data:
                    parts.append(f"<img src='data:image/png;base64,{data['image/png']}'>")
                elif "text/html" in data:
                    parts.append(data["text/html"])
                elif "text/plain" in data:
                    parts.append(f"<pre>{html.escape(data['text/plain'])}</pre>")
            elif output.output_type == "error":
                parts.append(f"<pre>{html.escape(output.ename)}: "
                             f"{html.escape(output.evalue)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def to_html(notebook: nbformat.NotebookNode, title: str) -> str:
    """Convert an executed notebook to HTML (nbconvert if installed, else minimal)."""
    try:
        from nbconvert import HTMLExporter
    except ImportError:
        return _minimal_html(notebook, title)
    body, _ = HTMLExporter().from_notebook_node(notebook, resources={"metadata":
                                                                     {"name": title}})
    return body


def strip(path: Path) -> bool:
    """Remove outputs and execution counts in place; return True if the file changed."""
    notebook = nbformat.read(path, as_version=4)
    changed = False
    for cell in notebook.cells:
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            cell.outputs, cell.execution_count = [], None
            changed = True
    if changed:
        nbformat.write(notebook, path)
    return changed


def main(argv: list[str] | None = None) -> int:
    """Command line: execute and export, or strip."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build/notebooks"),
                        help="folder for the HTML copies (default build/notebooks)")
    parser.add_argument("--strip", action="store_true",
                        help="remove outputs from the notebooks in place instead")
    args = parser.parse_args(argv)
    if args.strip:
        for path in args.notebooks:
            print(f"{path}: {'stripped' if strip(path) else 'already clean'}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.notebooks:
        target = args.out / f"{path.stem}.html"
        target.write_text(to_html(execute(path), path.stem), encoding="utf-8")
        print(f"{path} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
