"""The validated trials of one build, read and validated once (``build/trials.pickle``).

``make report`` runs several commands (the plan's figure rules, the tables, the figures of
each analysis, the report). Each would otherwise read and validate ``trials/`` again; instead
``python -m analysis validate trials --snapshot build/trials.pickle`` validates once and
writes the typed tables (:func:`analysis.data.validate_trials`) with a digest of what they
were made from, and the other commands take ``--validated build/trials.pickle``.

The digest covers the snapshot format, the Python, NumPy and pandas versions, the files of
the code that reads and validates (``analysis/data/``, ``analysis/errors.py`` and this
module) and the trial files the validation reads (``datapackage.json`` and the tables of
:data:`analysis.data.RESOURCES` and :data:`analysis.data.OPTIONAL_RESOURCES`, with a file's
absence recorded). A snapshot whose digest differs from the one computed now, for the
trials directory the command was asked to read, is stale and refused
(:class:`StaleSnapshotError`), so a snapshot can never stand in for data or code that
changed since. The snapshot is a pickle: it is an intermediate file of this checkout's
build, read only by the code that wrote it, never an exchange format.

This module builds and checks the bytes; :mod:`analysis.report.cli` writes them.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.data import OPTIONAL_RESOURCES, RESOURCES, validate_trials

__all__ = ["StaleSnapshotError", "inputs_digest", "load_validated", "read_snapshot",
           "snapshot_bytes"]

#: Bumped whenever the layout of the pickled payload changes.
SNAPSHOT_FORMAT = 1
_PACKAGE = Path(__file__).resolve().parents[1]


class StaleSnapshotError(ValueError):
    """A snapshot that does not match the current trials or code (or is not a snapshot)."""


def _code_files() -> list[Path]:
    files = sorted(p for p in (_PACKAGE / "data").rglob("*")
                   if p.suffix in (".py", ".json") and "__pycache__" not in p.parts)
    return [*files, _PACKAGE / "errors.py", Path(__file__).resolve()]


def _trial_files(directory: Path) -> list[Path]:
    names = ["datapackage.json", *(f"{name}.csv" for name in (*RESOURCES, *OPTIONAL_RESOURCES))]
    return [directory / name for name in names]


def inputs_digest(trials: str | Path) -> str:
    """Return the SHA-256 digest of everything a snapshot of ``trials`` depends on.

    Parameters
    ----------
    trials : str or pathlib.Path
        The trials directory.

    Returns
    -------
    str
        Hexadecimal digest of the snapshot format, the Python, NumPy and pandas versions,
        the validating code and the trial files read by validation (a missing file counts
        as absent, so adding ``risk_of_bias.csv`` changes the digest).
    """
    digest = hashlib.sha256()
    digest.update(f"format {SNAPSHOT_FORMAT}; python {sys.version}; numpy {np.__version__}; "
                  f"pandas {pd.__version__}\n".encode())
    for label, files in (("code", _code_files()), ("trials", _trial_files(Path(trials)))):
        for path in files:
            name = path.relative_to(_PACKAGE).as_posix() if label == "code" else path.name
            if path.is_file():
                content = path.read_bytes()
                digest.update(f"{label} {name} {len(content)}\n".encode())
                digest.update(content)
            else:
                digest.update(f"{label} {name} absent\n".encode())
    return digest.hexdigest()


def snapshot_bytes(tables: dict[str, pd.DataFrame], trials: str | Path) -> bytes:
    """Serialise validated tables of ``trials`` with their digest.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        The result of :func:`analysis.data.validate_trials` for ``trials``.
    trials : str or pathlib.Path
        The directory they were read from.

    Returns
    -------
    bytes
        The snapshot (a pickle of the format, the digest and the tables).
    """
    payload = {"format": SNAPSHOT_FORMAT, "digest": inputs_digest(trials), "tables": tables}
    return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)


def read_snapshot(path: str | Path, trials: str | Path) -> dict[str, pd.DataFrame]:
    """Return the validated tables of a snapshot made from ``trials`` as they are now.

    Parameters
    ----------
    path : str or pathlib.Path
        The snapshot file written from :func:`snapshot_bytes`.
    trials : str or pathlib.Path
        The trials directory the caller would otherwise validate.

    Returns
    -------
    dict of str to pandas.DataFrame
        The tables, as :func:`analysis.data.validate_trials` returned them.

    Raises
    ------
    StaleSnapshotError
        When the file is missing or not a snapshot, or its digest differs from
        :func:`inputs_digest` of ``trials`` now (the data, the validating code or the
        library versions changed since it was written, or it was made from other data).
    """
    source = Path(path)
    try:
        payload: Any = pickle.loads(source.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise StaleSnapshotError(f"{source}: not a readable trials snapshot ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != SNAPSHOT_FORMAT:
        raise StaleSnapshotError(f"{source}: not a trials snapshot of format {SNAPSHOT_FORMAT}")
    if payload.get("digest") != inputs_digest(trials):
        raise StaleSnapshotError(
            f"{source}: stale trials snapshot (the files in {trials} or the validating code "
            "changed since it was written); rebuild it with `python -m analysis validate "
            f"{trials} --snapshot {source}`")
    tables: dict[str, pd.DataFrame] = payload["tables"]
    return tables


def load_validated(trials: str | Path | None,
                   snapshot: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Return the validated tables of ``trials``: from ``snapshot`` if given, else validated.

    Parameters
    ----------
    trials : str or pathlib.Path or None
        The trials directory (``None``: the shipped ``trials/``).
    snapshot : str or pathlib.Path, optional
        A snapshot of that directory (:func:`read_snapshot`); without one the directory is
        read and validated now (:func:`analysis.data.validate_trials`).

    Returns
    -------
    dict of str to pandas.DataFrame

    Raises
    ------
    DataValidationError
        When validating (no snapshot) finds problems.
    StaleSnapshotError
        When the snapshot does not match the directory as it is now.
    """
    if snapshot is None:
        return validate_trials(trials)
    if trials is None:
        from analysis.data import default_trials_path

        trials = default_trials_path()
    return read_snapshot(snapshot, trials)
