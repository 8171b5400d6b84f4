r"""Design matrices from R-style formulas or moderator frames, as R's ``model.matrix``.

A meta-regression's design is built once from the moderators and kept on the result, so that
:meth:`analysis.results.MetaRegressionResult.predict` can build the rows of new moderator
values with the same coding (the same factor levels, the same transforms' state). Two codings
share one small interface (``columns`` and ``build(frame)``):

* :class:`FormulaDesign`: a formula string such as ``"~ ablat + C(alloc)"`` evaluated on a
  DataFrame by the `formulaic <https://matthewwardrop.github.io/formulaic/>`_ library, with
  R's conventions: treatment contrasts with the first level (in sorted order) as reference,
  ``~ 0 + x`` or ``~ x - 1`` without intercept, ``I(x^2)`` (R's ``^`` inside ``I()`` is
  Python's ``**``), transforms such as ``np.log(x)``, interactions ``a:b`` and ``a*b``;
  ``factor(x)`` is accepted as R's spelling of ``C(x)``. Coefficient names follow R:
  ``intrcpt`` for the intercept (metafor's name), ``allocrandom`` for the level ``random`` of
  ``alloc`` (formulaic's ``alloc[T.random]``), ``I(ablat^2)``.
* :class:`FrameDesign`: one column per moderator (numeric columns as they are, categorical
  columns dummy-coded on their levels), the coding of
  :func:`analysis.regression.design_matrix`.

Checked against metafor 3.8-1 ``rma(yi, vi, mods = ~ ..., data = dat)`` coefficient names
and values (``tests/reference/model_reference.json``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FormulaDesign", "FrameDesign", "is_categorical", "levels_of"]


def is_categorical(series: pd.Series) -> bool:
    """Return whether a column is dummy-coded (strings, booleans, pandas categoricals)."""
    return bool(
        isinstance(series.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
        or pd.api.types.is_bool_dtype(series)
    )


def levels_of(series: pd.Series) -> tuple[Any, ...]:
    """Return the levels present, in R's order (category order, else sorted as strings)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        present = set(series.dropna())
        return tuple(c for c in series.cat.categories if c in present)
    return tuple(sorted(series.dropna().unique().tolist(), key=str))


@dataclass(frozen=True, slots=True)
class FrameDesign:
    """The dummy coding of a moderator frame (:func:`analysis.regression.design_matrix`).

    ``levels`` maps every moderator to its levels (None for a numeric column); the first
    level is the reference. ``columns`` are the coefficient names.
    """

    levels: tuple[tuple[str, tuple[Any, ...] | None], ...]
    intercept: bool
    columns: tuple[str, ...]

    @classmethod
    def of(cls, moderators: pd.DataFrame, intercept: bool = True) -> FrameDesign:
        """Record the coding of ``moderators`` (levels of its categorical columns)."""
        levels = tuple(
            (str(name), levels_of(moderators[name]) if is_categorical(moderators[name])
             else None)
            for name in moderators.columns
        )
        columns = ["intrcpt"] if intercept else []
        for name, lev in levels:
            if lev is None:
                columns.append(name)
            else:
                columns.extend(f"{name}{'TRUE' if v is True else v}" for v in lev[1:])
        return cls(levels, intercept, tuple(columns))

    def build(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return the float design of ``frame`` (one row per row; NaN where a value is missing).

        Raises
        ------
        ValueError
            A moderator missing from ``frame``, or a level the fit did not see.
        """
        missing = [name for name, _ in self.levels if name not in frame.columns]
        if missing:
            raise ValueError(
                f"argument 'newmods' lacks the moderator(s) {missing}; the model was fitted "
                f"with {[name for name, _ in self.levels]}"
            )
        out: dict[str, np.ndarray] = {}
        if self.intercept:
            out["intrcpt"] = np.ones(len(frame))
        for name, lev in self.levels:
            series = frame[name]
            if lev is None:
                out[name] = pd.to_numeric(series, errors="raise").to_numpy(dtype=float)
                continue
            unknown = sorted({str(s) for s in series.dropna() if s not in lev})
            if unknown:
                raise ValueError(
                    f"argument 'newmods' has level(s) {unknown} of moderator {name!r} that "
                    f"the model was not fitted with; allowed: {list(lev)}"
                )
            for value in lev[1:]:
                dummy = np.array((series == value).astype(float), dtype=float)
                dummy[series.isna().to_numpy()] = np.nan
                out[f"{name}{'TRUE' if value is True else value}"] = dummy
        return pd.DataFrame(out, index=frame.index)


_TERM = re.compile(r"\[(?:T\.)?([^\[\]]*)\]")


def _r_names(names: list[str], factor_alias: bool) -> list[str]:
    """Return formulaic's column names in R's spelling (``alloc[T.random]`` -> ``allocrandom``)."""
    out = []
    for name in names:
        if name == "Intercept":
            out.append("intrcpt")
            continue
        name = _TERM.sub(r"\1", name).replace(" ** ", "^")
        if factor_alias:
            name = name.replace("C(", "factor(")
        out.append(name)
    return out


def _translate(formula: str) -> tuple[str, bool]:
    """R spellings formulaic does not read: ``^`` inside ``I()``, ``factor(x)``."""
    out: list[str] = []
    depth_i: list[int] = []  # nesting depths at which an I( was opened
    depth = 0
    i = 0
    while i < len(formula):
        ch = formula[i]
        if formula.startswith("I(", i) and (i == 0 or not (formula[i - 1].isalnum()
                                                        or formula[i - 1] in "._")):
            depth += 1
            depth_i.append(depth)
            out.append("I(")
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth_i and depth_i[-1] == depth:
                depth_i.pop()
            depth -= 1
        elif ch == "^" and depth_i:
            out.append("**")
            i += 1
            continue
        out.append(ch)
        i += 1
    text = "".join(out)
    aliased = re.sub(r"(?<![\w.])factor\(", "C(", text)
    return aliased, aliased != text


@dataclass(frozen=True, slots=True)
class FormulaDesign:
    """A formula's design (formulaic ``ModelSpec``) with R's coefficient names.

    ``formula`` is the formula as given, ``spec`` formulaic's model spec (it keeps the factor
    levels and the state of stateful transforms), ``columns`` the coefficient names.
    """

    formula: str
    spec: Any
    columns: tuple[str, ...]
    factor_alias: bool

    @classmethod
    def of(cls, formula: str, data: pd.DataFrame) -> tuple[FormulaDesign, pd.DataFrame]:
        """Evaluate ``formula`` on ``data``; return the design and its matrix.

        The matrix has one row per row of ``data`` (index ``0..n-1``), NaN in the rows where
        a variable of the formula is missing (R's ``na.action``: those rows are then omitted).

        Raises
        ------
        ValueError
            The formula cannot be parsed or evaluated on ``data`` (the message gives
            formulaic's reason and the columns of ``data``), or it has a left-hand side.
        """
        from formulaic import model_matrix  # type: ignore[import-untyped]

        text = formula.strip()
        if not text.startswith("~"):
            raise ValueError(
                f"argument 'moderators' = {formula!r} is not a one-sided formula; write it "
                "as '~ x1 + x2' (the outcome is 'yi')"
            )
        translated, alias = _translate(text)
        frame = data.reset_index(drop=True)
        try:
            mm = model_matrix(translated, frame, na_action="drop")
        except Exception as exc:  # formulaic raises many types; re-raise with the argument
            raise ValueError(
                f"argument 'moderators' = {formula!r} could not be evaluated on 'data' "
                f"({type(exc).__name__}: {exc}); its columns are "
                + ", ".join(repr(str(c)) for c in data.columns)
            ) from exc
        names = _r_names([str(c) for c in mm.columns], alias)
        design = cls(formula, mm.model_spec, tuple(names), alias)
        matrix = pd.DataFrame(np.asarray(mm, dtype=float), columns=names, index=mm.index)
        return design, matrix.reindex(pd.RangeIndex(len(frame)))

    @property
    def intercept(self) -> bool:
        """Whether the design has an intercept column."""
        return "intrcpt" in self.columns

    def build(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return the design rows of new moderator values (the same levels and transforms).

        Raises
        ------
        ValueError
            A variable of the formula missing from ``frame``, a new level, or a missing value.
        """
        from formulaic.errors import DataMismatchWarning  # type: ignore[import-untyped]

        try:
            with warnings.catch_warnings():
                # a level the fit did not see would become NaN: an error here
                warnings.simplefilter("error", DataMismatchWarning)
                mm = self.spec.get_model_matrix(frame.reset_index(drop=True),
                                                na_action="raise")
        except Exception as exc:  # formulaic raises many types; re-raise with the argument
            raise ValueError(
                f"argument 'newmods' could not be run through the formula {self.formula!r} "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        names = _r_names([str(c) for c in mm.columns], self.factor_alias)
        return pd.DataFrame(np.asarray(mm, dtype=float), columns=names)
