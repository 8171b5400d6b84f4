"""Atomic file writing for the command line (the only writer in the toolkit)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pandas as pd

__all__ = ["TABLE_FORMATS", "TEMPORARY_SUFFIX", "OutputError", "render_table",
           "write_bytes_atomic", "write_directory_atomic", "write_files_atomic",
           "write_table"]


class OutputError(OSError):
    """An output file could not be written; nothing of the batch was replaced.

    Parameters
    ----------
    path : pathlib.Path
        The file (or the folder) that could not be written.
    reason : str
        Why, in words (the operating system's message).
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: cannot write: {reason}; no output file was changed "
                         "(check that the folder exists, is a folder and is writable)")

    def __str__(self) -> str:
        return str(self.args[0])

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

    Raises
    ------
    OutputError
        (an ``OSError``) naming the file or folder that could not be written.
    """
    write_files_atomic({path: data})


def _make_folders(folder: Path, created: list[Path]) -> None:
    """Create ``folder`` and its missing parents, recording each one created."""
    missing = []
    for parent in (folder, *folder.parents):
        if parent.is_dir():
            break
        if os.path.lexists(parent):
            raise NotADirectoryError(20, "is a file, not a folder", str(parent))
        missing.append(parent)
    for parent in reversed(missing):
        parent.mkdir()
        created.append(parent)


def write_files_atomic(files: Mapping[Path, bytes]) -> None:
    """Write several files all or nothing, as far as the file system allows.

    Every file is first written to a temporary file beside its target (creating missing
    folders); only when all of them are written is each renamed over its target. If any
    write fails (a read-only or missing folder, a file where a folder should be, a full
    disk) the temporary files and the folders created are removed and no target is
    touched. Only a failure between two renames, or a killed process, can leave part of
    the batch.

    Parameters
    ----------
    files : mapping of pathlib.Path to bytes
        Target file and its whole content.

    Raises
    ------
    OutputError
        Naming the file or folder that could not be written and why.
    """
    created: list[Path] = []
    temporaries: list[tuple[str, Path]] = []
    current = Path()
    try:
        for path, data in files.items():
            current = path.parent
            _make_folders(path.parent, created)
            current = path
            handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.",
                                                 suffix=TEMPORARY_SUFFIX, dir=path.parent)
            temporaries.append((temporary, path))
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.chmod(temporary, 0o644)
            if path.is_dir():
                raise IsADirectoryError(21, "Is a directory", str(path))
    except BaseException as exc:
        for temporary, _ in temporaries:
            Path(temporary).unlink(missing_ok=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(exc, OSError):
            where = Path(exc.filename) if exc.filename else current
            raise OutputError(where, exc.strerror or str(exc)) from exc
        raise
    for number, (temporary, path) in enumerate(temporaries):
        try:
            os.replace(temporary, path)
        except OSError as exc:  # the files renamed so far stay new; the rest are not written
            for left, _ in temporaries[number:]:
                Path(left).unlink(missing_ok=True)
            raise OutputError(path, exc.strerror or str(exc)) from exc


def render_table(
    frame: pd.DataFrame,
    prefix: Path,
    *,
    caption: str,
    formats: Iterable[str] = ("csv", "md", "tex"),
) -> dict[Path, bytes]:
    """Render ``frame`` in every format: ``{prefix.FORMAT: bytes}`` (see :func:`write_table`)."""
    from analysis.report import render

    renderers: dict[str, Callable[[pd.DataFrame], bytes]] = {
        "csv": lambda f: render.to_csv(f).encode("utf-8"),
        "md": lambda f: render.to_markdown(f, caption=caption).encode("utf-8"),
        "tex": lambda f: render.to_latex(f, caption=caption).encode("utf-8"),
        "html": lambda f: render.to_html(f, caption=caption).encode("utf-8"),
        "docx": lambda f: render.to_docx(f, caption=caption),
    }
    formats = list(formats)
    unknown = [fmt for fmt in formats if fmt not in renderers]
    if unknown:
        raise ValueError(f"formats: {unknown} not among {list(TABLE_FORMATS)}")
    return {prefix.with_name(f"{prefix.name}.{fmt}"): renderers[fmt](frame) for fmt in formats}


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
    rendered = render_table(frame, prefix, caption=caption, formats=formats)
    write_files_atomic(rendered)
    return list(rendered)
