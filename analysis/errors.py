"""Exceptions of the package.

``Problem`` and ``DataValidationError`` are raised by the data layer (one exception that
collects every problem); ``ConvergenceError`` by the iterative estimators of the statistical
engine. ``AnalysisWarning`` is the class of every warning the package itself gives (studies
omitted for missing values, a result that is defined but degenerate); NumPy's
``RuntimeWarning`` never escapes a public function. ``FewStudiesWarning`` (a subclass of
``AnalysisWarning``) is given by the small-study and publication-bias tests when k is below
what their authors require for interpretation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["AnalysisWarning", "ConvergenceError", "DataValidationError", "FewStudiesWarning",
           "Problem", "shorten"]

#: Longest value shown whole in a message; longer ones are cut (with their length) so that
#: an error stays on one screen.
SHOWN_CHARS = 80


def shorten(value: str, limit: int = SHOWN_CHARS) -> str:
    """Return ``repr(value)``, cut to about ``limit`` characters with the full length named.

    Examples
    --------
    >>> shorten("abc")
    "'abc'"
    >>> shorten("x" * 1000, limit=10)
    "'xxxxxxxxxx…' (1,000 characters)"
    """
    if len(value) <= limit:
        return repr(value)
    shown = repr(value[:limit])
    return f"{shown[:-1]}…{shown[-1]} ({len(value):,} characters)"


@dataclass(frozen=True, slots=True)
class Problem:
    """One rule broken by one cell (or row, or file) of a data file.

    Attributes
    ----------
    file : str
        File name (e.g. ``outcomes.csv``).
    line : int or None
        CSV line number, header = 1; ``None`` when the problem concerns the whole file.
    column : str or None
        Column name; ``None`` when the problem concerns a whole row or file.
    value : str or None
        The offending value as written in the file.
    rule : str
        The rule that is broken, in words.
    """

    file: str
    line: int | None
    column: str | None
    value: str | None
    rule: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        column = "" if self.column is None else (
            f" column '{self.column}'" if len(self.column) <= SHOWN_CHARS
            else f" column {shorten(self.column)}")
        value = "" if self.value is None else f" value {shorten(self.value)}"
        # A whole-file problem has neither column nor value: "file: rule", not "file:: rule".
        detail = f"{column}{value}"
        return f"{where}:{detail}: {self.rule}" if detail else f"{where}: {self.rule}"


class DataValidationError(ValueError):
    """Every problem found in a data directory, raised together.

    Parameters
    ----------
    problems : sequence of Problem
        All the problems found; the message lists each on its own line.
    directory : str
        The directory that was validated.
    """

    def __init__(self, problems: Sequence[Problem], directory: str = "") -> None:
        self.problems = list(problems)
        self.directory = directory
        where = f" in {directory}" if directory else ""
        header = f"{len(self.problems)} problem(s) found{where}:"
        super().__init__("\n".join([header, *(f"  {p}" for p in self.problems)]))


class ConvergenceError(RuntimeError):
    """An iterative estimator did not converge.

    The message names the estimator and suggests what to try (more iterations through
    ``control``, another ``method``).
    """


class AnalysisWarning(UserWarning):
    """A warning of the package: studies omitted, or an answer that is defined but degenerate.

    A subclass of ``UserWarning``; filter it with
    ``warnings.simplefilter("ignore", analysis.errors.AnalysisWarning)``.
    """


class FewStudiesWarning(AnalysisWarning):
    """A test was run on fewer studies than its authors require for interpretation.

    The message names the test, k, the minimum and its source (e.g. the Cochrane Handbook's
    rule of at least 10 studies for funnel-plot asymmetry tests). The result is still
    returned; filter this class with :mod:`warnings` to silence it deliberately.
    """
