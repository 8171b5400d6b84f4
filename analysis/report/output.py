"""Atomic file writing for the command line (the only writer in the toolkit)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

__all__ = ["TABLE_FORMATS", "TEMPORARY_SUFFIX", "write_bytes_atomic", "write_directory_atomic",
           "write_table"]

#: Suffix of the temporary file of an atomic write (``.NAME.XXXXXXXX.analysis-tmp`` next to
#: the target). A process killed between writing and renaming (SIGKILL, power loss) leaves
#: it behind; ``.gitignore`` ignores the pattern and ``make clean`` removes it.
TEMPORARY_SUFFIX = ".analysis-tmp"

#: The formats :func:`write_table` renders (``docx``: a Word table, as review authors submit).
TABLE_FORMATS = ("csv", "md", "tex", "html", "docx")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    The bytes go to a temporary file in the same directory, which then replaces ``path``
    in one ``os.replace``: readers see the old file or the new one, never half a file, and
    a failure leaves the previous file untouched. The temporary file is named
    ``.NAME.XXXXXXXX`` + :data:`TEMPORARY_SUFFIX`; only a killed process leaves one behind.

    Parameters
    ----------
    path : pathlib.Path
        Target file; its directory is created if needed.
    data : bytes
        The whole content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX,
                                         dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_directory_atomic(
    path: Path, files: dict[str, bytes], check: Callable[[Path], object] | None = None
) -> None:
    """Write a new directory of ``files`` all-or-nothing.

    The files go to a temporary directory next to ``path`` (``.NAME.XXXXXXXX`` +
    :data:`TEMPORARY_SUFFIX`), ``check`` is called on it (e.g.
    :func:`analysis.data.validate_trials`), and only then is it renamed to ``path``: a failed
    check or write leaves nothing behind and ``path`` untouched.

    Parameters
    ----------
    path : pathlib.Path
        Target directory; it must not exist or be empty.
    files : dict of str to bytes
        File names (no folders) and their contents.
    check : callable, optional
        Called with the temporary directory; whatever it raises is raised again.

    Raises
    ------
    FileExistsError
        ``path`` exists and is not an empty directory.
    """
    import shutil

    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path}: exists and is not an empty directory; refusing to "
                              "overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX,
                                      dir=path.parent))
    try:
        for name, data in files.items():
            (temporary / name).write_bytes(data)
            os.chmod(temporary / name, 0o644)
        if check is not None:
            check(temporary)
        os.chmod(temporary, 0o755)
        if path.is_dir():
            path.rmdir()
        os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def write_table(
    frame: pd.DataFrame,
    prefix: Path,
    *,
    caption: str,
    formats: Iterable[str] = ("csv", "md", "tex"),
) -> list[Path]:
    """Render ``frame`` in every format and write each file atomically.

    All formats are rendered in memory before the first file is written, so a rendering
    error writes nothing.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table.
    prefix : pathlib.Path
        Output path without extension; ``.csv``, ``.md``, ``.tex``, ``.html``, ``.docx``
        are added.
    caption : str
        Table caption (Markdown heading, LaTeX caption, HTML caption, Word caption).
    formats : iterable of str
        Any of :data:`TABLE_FORMATS`.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from analysis.report import render

    renderers: dict[str, Callable[[pd.DataFrame], bytes]] = {
        "csv": lambda f: render.to_csv(f).encode("utf-8"),
        "md": lambda f: render.to_markdown(f, caption=caption).encode("utf-8"),
        "tex": lambda f: render.to_latex(f, caption=caption).encode("utf-8"),
        "html": lambda f: render.to_html(f, caption=caption).encode("utf-8"),
        "docx": lambda f: render.to_docx(f, caption=caption),
    }
    unknown = [fmt for fmt in formats if fmt not in renderers]
    if unknown:
        raise ValueError(f"formats: {unknown} not among {list(TABLE_FORMATS)}")
    rendered = {fmt: renderers[fmt](frame) for fmt in formats}
    written = []
    for fmt, data in rendered.items():
        target = prefix.with_name(f"{prefix.name}.{fmt}")
        write_bytes_atomic(target, data)
        written.append(target)
    return written
