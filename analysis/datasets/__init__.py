"""Classic meta-analysis data sets, as R's metafor ships them (``dat.bcg`` and others).

Fourteen small example data sets that metafor 3.8-1 distributes (through its ``metadat``
dependency) and that its help pages analyse: :func:`names` lists them, :func:`load` returns
one as a :class:`pandas.DataFrame` with metafor's column names, and :func:`describe` gives its
title, column descriptions and original publication (with DOI).

The CSV files were exported from R by ``tests/reference/make_classic_reference.R`` (the six
classic ones) and ``tests/reference/export_datasets_16.R`` (``pritz1997``, ``molloy2014``,
``hart1999``, ``curtis1998``, ``nielweise2007``, ``senn2013``, ``konstantopoulos2011``,
``berkey1998``) at full precision (every double reads back as the same double), so an
analysis of the loaded frame agrees with metafor's analysis of ``dat.<name>`` to rounding;
``tests/test_classic_datasets.py`` checks the files against the R data and the analyses
against metafor.

Examples
--------
>>> from analysis import datasets
>>> datasets.names()[:4]
['bcg', 'berkey1998', 'collins1985b', 'curtis1998']
>>> len(datasets.names())
14
>>> bcg = datasets.load("bcg")
>>> bcg.shape
(13, 9)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd

__all__ = ["DatasetInfo", "DatasetSource", "describe", "load", "names"]

_PREFIX = "dat."


@dataclass(frozen=True, slots=True)
class DatasetSource:
    """One original publication of a data set.

    Attributes
    ----------
    citation : str
        The reference in APA style.
    doi : str
        Its DOI (without ``https://doi.org/``).
    """

    citation: str
    doi: str


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """What :func:`describe` knows about one data set.

    Attributes
    ----------
    name : str
        The name :func:`load` takes (``"bcg"``).
    r_name : str
        metafor's name (``"dat.bcg"``).
    title, description : str
        From metafor's (metadat's) help page.
    sources : tuple of DatasetSource
        The original publication(s).
    columns : dict of str to str
        Column name to description, in the order of the frame.
    types : dict of str to str
        Column name to ``"integer"``, ``"number"`` or ``"string"`` (the R type).
    distributed : str
        Where the data come from (metafor / metadat versions).
    """

    name: str
    r_name: str
    title: str
    description: str
    sources: tuple[DatasetSource, ...]
    columns: dict[str, str]
    types: dict[str, str]
    distributed: str

    def __str__(self) -> str:
        refs = "\n".join(f"  {s.citation} https://doi.org/{s.doi}" for s in self.sources)
        cols = "\n".join(f"  {c}: {d}" for c, d in self.columns.items())
        return (f"{self.name} (metafor {self.r_name}): {self.title}\n{self.description}\n"
                f"Columns:\n{cols}\nSource:\n{refs}\n{self.distributed}")


@cache
def _catalogue() -> dict[str, Any]:
    text = resources.files(__name__).joinpath("catalogue.json").read_text("utf-8")
    catalogue: dict[str, Any] = json.loads(text)
    return catalogue


def names() -> list[str]:
    """List the names of the shipped data sets.

    Returns
    -------
    list of str
        Sorted names, as :func:`load` takes them (metafor's ``dat.<name>`` without ``dat.``).
    """
    return sorted(_catalogue()["datasets"])


def _entry(name: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(name, str):
        raise TypeError(f"argument 'name' must be a string, not {type(name).__name__}")
    key = name[len(_PREFIX):] if name.startswith(_PREFIX) else name
    entries: dict[str, Any] = _catalogue()["datasets"]
    if key not in entries:
        raise ValueError(f"argument 'name' = {name!r} is not a shipped data set; "
                         f"available: {', '.join(names())} (metafor's dat.<name> is "
                         f"accepted too)")
    return key, entries[key]


def load(name: str) -> pd.DataFrame:
    """Load one data set as metafor has it.

    Parameters
    ----------
    name : str
        One of :func:`names` (``"bcg"``, ``"normand1999"``, ``"pritz1997"`` ...); metafor's
        ``"dat.bcg"`` spelling works too.

    Returns
    -------
    pandas.DataFrame
        A new frame (changing it changes no later :func:`load`), one row per study, with
        metafor's column names in metafor's order. R integer columns are ``int64``, or
        ``float64`` with NaN where R has ``NA`` (``yusuf1985``, ``collins1985b``); R
        character columns are read as strings, never parsed as numbers, so ``yusuf1985``'s
        ``table`` and ``id`` keep values like ``"6"`` and ``"1.10"``.

    Raises
    ------
    ValueError
        ``name`` is not a shipped data set (the message lists the names available).

    Notes
    -----
    Distributed with R's metafor 3.8-1 as ``dat.<name>`` (metadat 1.2-0). The original
    publications are in :func:`describe`. Checked against the R data (every value) by
    ``tests/test_classic_datasets.py``.

    Examples
    --------
    >>> from analysis import datasets
    >>> dat = datasets.load("bcg")
    >>> list(dat.columns)
    ['trial', 'author', 'year', 'tpos', 'tneg', 'cpos', 'cneg', 'ablat', 'alloc']
    """
    key, entry = _entry(name)
    types = {col: spec["type"] for col, spec in entry["columns"].items()}
    path = resources.files(__name__).joinpath(f"{key}.csv")
    with path.open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(
            handle,
            dtype={col: str for col, kind in types.items() if kind == "string"},
            keep_default_na=False,
            na_values=[""],
        )
    if list(frame.columns) != list(types):
        raise RuntimeError(f"{key}.csv has columns {list(frame.columns)}, the catalogue "
                           f"{list(types)}; the package data are inconsistent")
    return frame


def describe(name: str) -> DatasetInfo:
    """Describe one data set: title, columns, original publication.

    Parameters
    ----------
    name : str
        As for :func:`load`.

    Returns
    -------
    DatasetInfo
        Printing it gives a short text with the DOIs.

    Raises
    ------
    ValueError
        ``name`` is not a shipped data set.
    """
    key, entry = _entry(name)
    return DatasetInfo(
        name=key,
        r_name=entry["r_name"],
        title=entry["title"],
        description=entry["description"],
        sources=tuple(DatasetSource(s["citation"], s["doi"]) for s in entry["source"]),
        columns={c: spec["description"] for c, spec in entry["columns"].items()},
        types={c: spec["type"] for c, spec in entry["columns"].items()},
        distributed=f"distributed with metafor 3.8-1 as {entry['r_name']} (metadat 1.2-0)",
    )
