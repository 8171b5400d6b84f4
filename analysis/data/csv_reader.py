"""Read a CSV file as text cells, keeping the line number of every record.

The reader never raises a parser traceback at the user: every structural problem (a path
that is missing, a directory or not a regular file, a file that cannot be read, bad bytes,
bad quoting, a record with the wrong number of fields, a cell longer than
:data:`MAX_CELL_CHARS`, a file separated by semicolons or tabs, an empty file, missing,
unknown or duplicated columns) becomes a :class:`~analysis.errors.Problem`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import Problem

__all__ = ["MAX_CELL_CHARS", "RawTable", "file_problem", "is_absent", "read_csv_cells"]

#: Longest cell accepted (Python's default ``csv.field_size_limit``). Longer cells are one
#: located problem each; the rest of the file is still read and checked.
MAX_CELL_CHARS = 131_072
#: Delimiters a spreadsheet may have exported instead of commas, with their names.
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True, slots=True)
class RawTable:
    """The cells of one CSV file as strings.

    Attributes
    ----------
    name : str
        File name, used in problem reports.
    frame : pandas.DataFrame
        One column per expected column (all ``str``; empty string = missing), one row per
        record that had the right number of fields.
    lines : numpy.ndarray
        CSV line number (header = 1) where each row of ``frame`` starts.
    """

    name: str
    frame: pd.DataFrame
    lines: pd.Series


def is_absent(path: Path) -> bool:
    """Return True when nothing at all is at ``path`` (an unreadable entry is not absent)."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def file_problem(path: Path) -> str | None:
    """Say why ``path`` cannot be read as a data file, or return None when it can.

    Never opens the path (a FIFO would block) and never raises: a missing path, a
    directory, a FIFO, socket or device, and a path whose folder cannot be searched each
    give their own reason.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"file is missing from {path.parent}"
    except NotADirectoryError:
        return f"file is missing: {path.parent} is not a directory"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if stat.S_ISDIR(mode):
        return f"is a directory, not a file (in {path.parent})"
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket"
                if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or
                stat.S_ISBLK(mode) else "not a regular file")
        return f"is {kind}, not a regular file; it was not read"
    return None


@contextlib.contextmanager
def _no_field_limit() -> Iterator[None]:
    """Lift ``csv.field_size_limit`` while reading (long cells are checked afterwards)."""
    old = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _decode(path: Path, problems: list[Problem]) -> str | None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.append(Problem(path.name, None, None, None,
                                f"cannot be read: {exc.strerror or exc} ({path})"))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.end]
        problems.append(
            Problem(path.name, line, None, repr(bad)[2:-1], "file must be UTF-8 encoded text")
        )
        return None


def read_csv_cells(
    path: Path, expected_columns: list[str], problems: list[Problem]
) -> RawTable | None:
    """Read ``path`` into string cells, appending every structural problem to ``problems``.

    Parameters
    ----------
    path : pathlib.Path
        The CSV file.
    expected_columns : list of str
        The columns the schema defines, in order. Columns may come in any order in the
        file; missing, unknown and duplicated columns are problems.
    problems : list of Problem
        Problems are appended here; nothing is raised.

    Returns
    -------
    RawTable or None
        ``None`` when the file cannot be read as a table at all (missing, empty, not UTF-8,
        unusable header); otherwise the rows that could be read.
    """
    name = path.name
    unreadable = file_problem(path)
    if unreadable is not None:
        problems.append(Problem(name, None, None, None, unreadable))
        return None
    text = _decode(path, problems)
    if text is None:
        return None
    if not text.strip():
        problems.append(Problem(name, None, None, None, "file is empty (a header row is needed)"))
        return None

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    with _no_field_limit():
        records, starts, header, line, malformed = _records(reader)
    if malformed is not None:
        problems.append(Problem(name, line, None, None,
                                f"malformed CSV (bad quoting or delimiter): {malformed}"))
        return None
    if header is None:
        problems.append(Problem(name, None, None, None, "file is empty (a header row is needed)"))
        return None
    return _table(name, header, records, starts, expected_columns, problems)


def _records(
    reader: Any,
) -> tuple[list[list[str]], list[int], list[str] | None, int, csv.Error | None]:
    """Read every record; return them, their first lines, the header and any csv.Error."""
    records: list[list[str]] = []
    starts: list[int] = []
    header: list[str] | None = None
    line = 1
    try:
        for record in reader:
            if header is None:
                header = [cell.strip() for cell in record]
            elif record and any(cell.strip() for cell in record):
                records.append(record)
                starts.append(line)
            line = reader.line_num + 1
    except csv.Error as exc:
        return records, starts, header, line, exc
    return records, starts, header, line, None


def _table(
    name: str, header: list[str], records: list[list[str]], starts: list[int],
    expected_columns: list[str], problems: list[Problem],
) -> RawTable | None:
    """Check the header and the width of every record; build the table of string cells."""
    if _wrong_delimiter(name, header, expected_columns, problems):
        return None
    usable = _check_header(name, header, expected_columns, problems)
    width = len(header)
    rows: list[list[str]] = []
    row_lines: list[int] = []
    for record, start in zip(records, starts, strict=True):
        if len(record) != width:
            problems.append(
                Problem(
                    name,
                    start,
                    None,
                    None,
                    f"row has {len(record)} fields but the header has {width} "
                    "(check quoting of cells that contain commas)",
                )
            )
            continue
        rows.append([cell.strip() for cell in record])
        row_lines.append(start)
        for column, cell in zip(header, record, strict=True):
            if len(cell) > MAX_CELL_CHARS:
                problems.append(Problem(name, start, column, cell,
                                        f"cell longer than {MAX_CELL_CHARS:,} characters"))
    if not usable:
        return None
    frame = pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(
        columns=header, dtype=object
    )
    frame = frame.loc[:, ~frame.columns.duplicated()]
    for column in expected_columns:
        if column not in frame.columns:
            frame[column] = ""
    frame = frame[expected_columns].reset_index(drop=True)
    return RawTable(name, frame, pd.Series(row_lines, dtype="int64"))


def _wrong_delimiter(
    name: str, header: list[str], expected: list[str], problems: list[Problem]
) -> bool:
    """Record a header that was split on another delimiter than the comma; True if so."""
    if len(header) != 1 or len(expected) < 2:
        return False
    for delimiter, word in _OTHER_DELIMITERS.items():
        if delimiter in header[0]:
            problems.append(Problem(
                name, 1, None, None,
                f"looks {word}-separated (the header is one column holding "
                f"{delimiter!r}); the trials CSVs must be comma-separated: export or save "
                "it as CSV with commas"))
            return True
    return False


def _check_header(
    name: str, header: list[str], expected: list[str], problems: list[Problem]
) -> bool:
    """Record header problems; return False when the table cannot be checked further."""
    usable = True
    seen: set[str] = set()
    for column in header:
        if column in seen:
            problems.append(Problem(name, 1, column, column, "column name appears twice"))
            usable = False
        seen.add(column)
    for column in header:
        if column not in expected:
            problems.append(
                Problem(name, 1, column, column,
                        "unknown column (not in the schema; a study declares its own "
                        "columns in its datapackage.json)")
            )
    for column in expected:
        if column not in seen:
            problems.append(Problem(name, 1, column, None, "required column is missing"))
            usable = False
    return usable
