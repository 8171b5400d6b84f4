"""Contrast-level input of a network meta-analysis: checked, indexed, connected.

The layout is netmeta's: one row per pairwise comparison with ``TE`` (estimate of ``treat1``
versus ``treat2``), ``seTE``, ``treat1``, ``treat2`` and ``studlab``; a study with ``p`` arms
contributes all ``p(p-1)/2`` comparisons of its arms. :func:`network_data` checks the input
(every problem named by argument and row) and that the network is connected (the error names
the sub-networks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis._checks import as_float_array
from analysis.network.graph import components

__all__ = ["NetworkData", "network_data"]


@dataclass(frozen=True, slots=True)
class NetworkData:
    """Checked contrast-level network data (one row per comparison).

    ``treatments`` are the sorted labels (netmeta's ``trts``); ``a`` and ``b`` index
    ``treat1``/``treat2`` into them; ``design`` is the study's sorted treatments joined by
    ``":"``; ``n_contrasts`` the number of independent contrasts, the sum over studies of
    arms - 1.
    """

    te: np.ndarray
    sete: np.ndarray
    treat1: tuple[str, ...]
    treat2: tuple[str, ...]
    studlab: tuple[str, ...]
    treatments: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    design: tuple[str, ...]
    studies: tuple[str, ...]
    n_arms: dict[str, int]
    n_contrasts: int

    def to_frame(self) -> pd.DataFrame:
        """Return the comparisons as a tidy frame (``studlab``, ``treat1``, ``treat2``, ...)."""
        return pd.DataFrame({"studlab": self.studlab, "treat1": self.treat1,
                             "treat2": self.treat2, "TE": self.te, "seTE": self.sete,
                             "design": self.design})


def _column(name: str, value: Any, data: pd.DataFrame | None) -> Any:
    if isinstance(value, str) and data is not None:
        if value not in data.columns:
            raise ValueError(f"argument {name!r} = {value!r} is not a column of 'data'; "
                             f"columns: {', '.join(map(str, data.columns))}")
        return data[value].to_numpy()
    return value


def _labels(name: str, value: Any) -> tuple[str, ...]:
    if value is None or isinstance(value, str):
        raise ValueError(f"argument {name!r} = {value!r} is not allowed; use a sequence of labels")
    out = []
    for i, v in enumerate(list(value)):
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
            raise ValueError(f"argument {name!r} has a missing label in row {i + 1}")
        out.append(str(v))
    return tuple(out)


def network_data(te: Any, sete: Any, treat1: Any, treat2: Any, studlab: Any,
                 data: pd.DataFrame | None = None) -> NetworkData:
    """Check contrast-level input and index it for the graph-theoretical fit.

    Parameters
    ----------
    te, sete : array_like or str
        Estimates (``treat1`` versus ``treat2``, analysis scale) and their standard errors;
        column names of ``data`` when it is given.
    treat1, treat2, studlab : sequence of str or str
        Treatments compared and the study of each row (or column names of ``data``).
    data : pandas.DataFrame, optional
        A frame whose columns the other arguments name.

    Returns
    -------
    NetworkData

    Raises
    ------
    ValueError
        Naming the argument and rows: unequal lengths, non-finite ``te``, ``sete`` not
        positive, ``treat1 == treat2``, a comparison given twice in a study, a multi-arm study
        without all comparisons of its arms, or a disconnected network (every sub-network is
        listed with its treatments).
    """
    if data is not None and not isinstance(data, pd.DataFrame):
        raise ValueError(f"argument 'data' must be a pandas DataFrame, not {type(data).__name__}")
    y = as_float_array("te", _column("te", te, data))
    s = as_float_array("sete", _column("sete", sete, data))
    t1 = _labels("treat1", _column("treat1", treat1, data))
    t2 = _labels("treat2", _column("treat2", treat2, data))
    lab = _labels("studlab", _column("studlab", studlab, data))
    lengths = {"te": y.size, "sete": s.size, "treat1": len(t1), "treat2": len(t2),
               "studlab": len(lab)}
    if len(set(lengths.values())) != 1:
        raise ValueError("arguments te, sete, treat1, treat2 and studlab must have equal "
                         "lengths; got " + ", ".join(f"{k}={v}" for k, v in lengths.items()))
    if y.size == 0:
        raise ValueError("argument 'te' is empty; a network needs at least one comparison")
    problems: list[str] = []

    def rows(mask: np.ndarray | Sequence[bool]) -> str:
        return ", ".join(str(i + 1) for i in np.flatnonzero(np.asarray(mask)))

    if not np.all(np.isfinite(y)):
        problems.append(f"argument 'te' is not finite in rows {rows(~np.isfinite(y))}")
    if not np.all(np.isfinite(s) & (s > 0)):
        problems.append("argument 'sete' is not a positive finite number in rows "
                        + rows(~(np.isfinite(s) & (s > 0))))
    same = [x == z for x, z in zip(t1, t2, strict=True)]
    if any(same):
        problems.append(f"treat1 equals treat2 in rows {rows(same)}")
    studies = tuple(dict.fromkeys(lab))
    n_arms: dict[str, int] = {}
    design_of: dict[str, str] = {}
    for study in studies:
        idx = [i for i, x in enumerate(lab) if x == study]
        pairs = [frozenset((t1[i], t2[i])) for i in idx]
        arms = sorted(set(t1[i] for i in idx) | set(t2[i] for i in idx))
        n_arms[study] = len(arms)
        design_of[study] = ":".join(arms)
        if len(set(pairs)) < len(pairs):
            problems.append(f"study {study!r} gives a comparison more than once "
                            f"(rows {', '.join(str(i + 1) for i in idx)})")
        elif len(pairs) != len(arms) * (len(arms) - 1) // 2:
            problems.append(f"multi-arm study {study!r} has arms {', '.join(arms)} but "
                            f"{len(pairs)} of the {len(arms) * (len(arms) - 1) // 2} "
                            "comparisons of its arms")
    if problems:
        raise ValueError("network input: " + "; ".join(problems))
    treatments = tuple(sorted(set(t1) | set(t2)))
    pos = {t: i for i, t in enumerate(treatments)}
    a = np.array([pos[t] for t in t1], dtype=int)
    b = np.array([pos[t] for t in t2], dtype=int)
    parts = components(len(treatments), a, b)
    if len(parts) > 1:
        listing = "; ".join(f"sub-network {k + 1}: " + ", ".join(treatments[i] for i in part)
                            for k, part in enumerate(parts))
        raise ValueError(f"the network is not connected; it has {len(parts)} sub-networks "
                         f"({listing}); analyse them separately or add a bridging comparison")
    return NetworkData(te=y, sete=s, treat1=t1, treat2=t2, studlab=lab, treatments=treatments,
                       a=a, b=b, design=tuple(design_of[x] for x in lab), studies=studies,
                       n_arms=n_arms, n_contrasts=sum(v - 1 for v in n_arms.values()))
