"""Read a CSV file as text cells, keeping the line number of every record.

The reader never raises a parser traceback at the user: every structural problem (bad
bytes, bad quoting, a record with the wrong number of fields, an empty file, missing,
unknown or duplicated columns) becomes a :class:`~analysis.errors.Problem`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.errors import Problem

__all__ = ["RawTable", "read_csv_cells"]


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


def _decode(path: Path, problems: list[Problem]) -> str | None:
    data = path.read_bytes()
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
    if not path.is_file():
        problems.append(Problem(name, None, None, None, f"file is missing from {path.parent}"))
        return None
    text = _decode(path, problems)
    if text is None:
        return None
    if not text.strip():
        problems.append(Problem(name, None, None, None, "file is empty (a header row is needed)"))
        return None

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
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
        problems.append(
            Problem(name, line, None, None, f"malformed CSV (bad quoting or delimiter): {exc}")
        )
        return None
    if header is None:
        problems.append(Problem(name, None, None, None, "file is empty (a header row is needed)"))
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
