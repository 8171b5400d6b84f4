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

The analyses of the plan are run once as well: ``python -m analysis makefile`` runs them
all (it needs their results to know which figures exist) and with ``--runs-out
build/runs.pickle`` keeps them; ``tables``, ``figures`` and ``report`` take ``--runs
build/runs.pickle``. That cache's digest adds the plan file and every file of the package but
the plotting code (which computes nothing) to the trials digest, and the SciPy version.

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

__all__ = ["StaleSnapshotError", "inputs_digest", "load_validated", "read_runs",
           "read_snapshot", "runs_bytes", "runs_digest", "snapshot_bytes"]

#: Bumped whenever the layout of the pickled payload changes.
SNAPSHOT_FORMAT = 1
_PACKAGE = Path(__file__).resolve().parents[1]


class StaleSnapshotError(ValueError):
    """A snapshot that does not match the current trials or code (or is not a snapshot)."""


def _package_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.suffix in (".py", ".json") and "__pycache__" not in p.parts)


def _code_files() -> list[Path]:
    return [*_package_files(_PACKAGE / "data"), _PACKAGE / "errors.py",
            Path(__file__).resolve()]


def _analysis_code_files() -> list[Path]:
    return [p for p in _package_files(_PACKAGE)
            if p.relative_to(_PACKAGE).parts[0] != "plots"]


def _hash_files(digest: Any, label: str, files: list[Path], base: Path | None) -> None:
    for path in files:
        name = path.name if base is None else path.relative_to(base).as_posix()
        if path.is_file():
            content = path.read_bytes()
            digest.update(f"{label} {name} {len(content)}\n".encode())
            digest.update(content)
        else:
            digest.update(f"{label} {name} absent\n".encode())


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
    _hash_files(digest, "code", _code_files(), _PACKAGE)
    _hash_files(digest, "trials", _trial_files(Path(trials)), None)
    return digest.hexdigest()


def runs_digest(plan: str | Path, trials: str | Path) -> str:
    """Return the SHA-256 digest of everything the plan's analysis runs depend on.

    Parameters
    ----------
    plan : str or pathlib.Path
        The analysis plan file.
    trials : str or pathlib.Path
        Its trials directory.

    Returns
    -------
    str
        Hexadecimal digest of :func:`inputs_digest` of ``trials``, the SciPy version, the
        plan file and every file of the package except :mod:`analysis.plots`.
    """
    import scipy

    digest = hashlib.sha256()
    digest.update(f"runs; {inputs_digest(trials)}; scipy {scipy.__version__}\n".encode())
    _hash_files(digest, "plan", [Path(plan)], None)
    _hash_files(digest, "code", _analysis_code_files(), _PACKAGE)
    return digest.hexdigest()


def runs_bytes(runs: list[Any], plan: str | Path, trials: str | Path) -> bytes:
    """Serialise the plan's analysis runs (:func:`analysis.report.plan.run_analysis`).

    Parameters
    ----------
    runs : list of AnalysisRun
        Every analysis of the plan, in the plan's order.
    plan, trials : str or pathlib.Path
        The plan file and the trials directory they were computed from.

    Returns
    -------
    bytes
    """
    payload = {"format": SNAPSHOT_FORMAT, "digest": runs_digest(plan, trials), "runs": runs}
    return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)


def _unpickle(source: Path, what: str) -> dict[str, Any]:
    try:
        payload: Any = pickle.loads(source.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise StaleSnapshotError(f"{source}: not a readable {what} ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != SNAPSHOT_FORMAT:
        raise StaleSnapshotError(f"{source}: not a {what} of format {SNAPSHOT_FORMAT}")
    return payload


def read_runs(path: str | Path, plan: str | Path, trials: str | Path) -> list[Any]:
    """Return the cached analysis runs of ``plan`` on ``trials`` as they are now.

    Parameters
    ----------
    path : str or pathlib.Path
        The cache written from :func:`runs_bytes`.
    plan, trials : str or pathlib.Path
        The plan file and its trials directory.

    Returns
    -------
    list of AnalysisRun

    Raises
    ------
    StaleSnapshotError
        When the file is not such a cache or its digest differs from :func:`runs_digest`.
    """
    source = Path(path)
    payload = _unpickle(source, "cache of analysis runs")
    if payload.get("digest") != runs_digest(plan, trials):
        raise StaleSnapshotError(
            f"{source}: stale cache of analysis runs (the plan {plan}, the trials in {trials} "
            "or the code changed since it was written); rebuild it with `python -m analysis "
            f"makefile --plan {plan} --runs-out {source} --out ...`")
    runs: list[Any] = payload["runs"]
    return runs


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
    payload = _unpickle(source, "trials snapshot")
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
