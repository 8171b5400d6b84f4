r"""Dose transformations (design matrices) of the dose-response models (private).

Shapes, for a dose :math:`d` (any unit; the code assumes none):

``linear``     :math:`x(d) = d`
``log``        :math:`x(d) = \log(d + c) - \log(c)` with shift :math:`c > 0` (default 1, i.e.
               ``log1p(d)``, so that :math:`x(0) = 0`); with ``log_shift=0`` the plain
               :math:`\log d`, which needs every dose (and the reference dose) > 0.
``quadratic``  :math:`x(d) = (d, d^2)`
``spline``     Harrell's restricted cubic spline (``rms::rcs``, ``Hmisc::rcspline.eval`` with
               ``norm=2, inclx=TRUE``), knots :math:`t_1 < \dots < t_m`:

               .. math::

                  x_1 = d, \qquad x_{j+1} = \frac{(d-t_j)_+^3 - (d-t_{m-1})_+^3
                  \frac{t_m - t_j}{t_m - t_{m-1}} + (d-t_m)_+^3
                  \frac{t_{m-1} - t_j}{t_m - t_{m-1}}}{(t_m - t_1)^2},
                  \quad j = 1, \dots, m-2.

Harrell FE (2015). Regression Modeling Strategies, 2nd ed., section 2.4.5. Springer.
Checked against ``Hmisc::rcspline.eval(x, knots, inclx=TRUE)`` through the metafor
reference cases (the R script builds the spline columns with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis._inputs import name_rows
from analysis.dose._common import SparseDataError

__all__ = ["DEFAULT_PERCENTILES", "MODELS", "DoseBasis", "check_log_doses", "make_basis",
           "rcs_basis"]

MODELS = ("linear", "log", "quadratic", "spline", "emax")

#: Harrell's default knot percentiles (RMS, Table 2.3), by number of knots.
DEFAULT_PERCENTILES: dict[int, tuple[float, ...]] = {
    3: (0.10, 0.50, 0.90),
    4: (0.05, 0.35, 0.65, 0.95),
    5: (0.05, 0.275, 0.50, 0.725, 0.95),
    6: (0.05, 0.23, 0.41, 0.59, 0.77, 0.95),
    7: (0.025, 0.1833, 0.3417, 0.50, 0.6583, 0.8167, 0.975),
}


def rcs_basis(dose: np.ndarray, knots: Sequence[float]) -> np.ndarray:
    """Harrell's restricted cubic spline basis (``Hmisc::rcspline.eval``, ``norm=2``).

    Parameters
    ----------
    dose : numpy.ndarray
        Doses, shape ``(n,)``.
    knots : sequence of float
        At least 3 strictly increasing knots.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, len(knots) - 1)``: the dose itself, then the ``m - 2`` non-linear terms
        (formula in the module docstring). Linear beyond the outer knots.
    """
    t = np.asarray(knots, dtype=float)
    d = np.asarray(dose, dtype=float)
    m = t.size
    scale = (t[-1] - t[0]) ** 2
    cols = [d]
    for j in range(m - 2):
        term = (np.maximum(d - t[j], 0.0) ** 3
                - np.maximum(d - t[m - 2], 0.0) ** 3 * (t[m - 1] - t[j]) / (t[m - 1] - t[m - 2])
                + np.maximum(d - t[m - 1], 0.0) ** 3 * (t[m - 2] - t[j]) / (t[m - 1] - t[m - 2]))
        cols.append(term / scale)
    return np.column_stack(cols)


@dataclass(frozen=True, slots=True)
class DoseBasis:
    """The dose transformation of a fitted model, kept so that predictions can be made.

    Attributes
    ----------
    model : str
        ``"linear"``, ``"log"``, ``"quadratic"``, ``"spline"`` or ``"emax"``.
    knots : tuple of float
        Spline knots (empty for other models).
    log_shift : float
        Shift :math:`c` of the ``log`` model.
    """

    model: str
    knots: tuple[float, ...] = ()
    log_shift: float = 1.0

    @property
    def names(self) -> list[str]:
        """Coefficient names of the dose terms (as dosresmeta/R would print them)."""
        if self.model == "linear":
            return ["dose"]
        if self.model == "log":
            return ["log_dose"]
        if self.model == "quadratic":
            return ["dose", "dose^2"]
        if self.model == "spline":
            return ["dose"] + [f"rcs{j}" for j in range(1, len(self.knots) - 1)]
        return ["emax", "ed50"]

    @property
    def nonlinear_terms(self) -> list[int]:
        """Positions of the terms whose joint Wald test is the test for non-linearity."""
        if self.model in ("quadratic", "spline"):
            return list(range(1, len(self.names)))
        return []

    def matrix(self, dose: np.ndarray, name: str = "dose") -> np.ndarray:
        """Evaluate the dose terms (no intercept) at ``dose``; shape ``(n, p)``.

        ``name`` is the argument the doses came from, for the message of
        :func:`check_log_doses`.
        """
        d = np.asarray(dose, dtype=float).reshape(-1)
        if self.model == "linear":
            return d[:, None]
        if self.model == "log":
            check_log_doses(name, d, self.log_shift)
            if self.log_shift == 0:
                return np.log(d)[:, None]
            return (np.log(d + self.log_shift) - np.log(self.log_shift))[:, None]
        if self.model == "quadratic":
            return np.column_stack([d, d**2])
        if self.model == "spline":
            return rcs_basis(d, self.knots)
        raise ValueError("the emax model has no linear design matrix")


def check_log_doses(name: str, dose: np.ndarray, log_shift: float,
                    labels: Sequence[str] | None = None) -> None:
    r"""Refuse doses outside the domain of the ``log`` model.

    The model is :math:`\log(d + c) - \log c` (:math:`c` = ``log_shift``, default 1, so a
    dose of 0 is the reference, 0), or :math:`\log d` for :math:`c = 0`. A dose is an amount:
    every dose must be :math:`\ge 0`, and :math:`> 0` when :math:`c = 0` (the log of 0 is
    not finite). dosresmeta has no shift (its users write ``log(dose + 1)`` in the formula
    themselves and a dose of 0 gives ``-Inf``); this project's convention is the shift.

    Parameters
    ----------
    name : str
        The argument the doses came from (``"dose"``, ``"reference_dose"``, ``"doses"``).
    dose : numpy.ndarray
        Doses; missing values are skipped (they are dropped elsewhere).
    log_shift : float
        :math:`c`.
    labels : sequence of str, optional
        One name per dose for the message (default 0-based positions).

    Raises
    ------
    ValueError
        Naming the argument, the offending doses and their rows, and the rule.
    """
    d = np.asarray(dose, dtype=float).reshape(-1)
    with np.errstate(invalid="ignore"):
        bad = (d <= 0) if log_shift == 0 else (d < 0)
    if not np.any(bad):
        return
    rows = np.flatnonzero(bad)
    rule = ("> 0 (log_shift=0 takes log(dose)); use log_shift > 0, log(dose + c) - log(c), "
            "for doses of 0" if log_shift == 0 else
            f">= 0 (the log model takes log(dose + {log_shift:g}) - log({log_shift:g}))")
    where = name_rows(rows, labels, d.size) if d.size > 1 or labels else ""
    raise ValueError(
        f"argument {name!r} has value(s) {d[rows][:5].tolist()}"
        + (f" at {where}" if where else "")
        + f"; model 'log' needs every dose {rule}"
    )


def choose_knots(dose: np.ndarray, knots: Sequence[float] | int | None,
                 percentiles: Sequence[float] | None) -> tuple[float, ...]:
    """Knots given explicitly, or at percentiles of ``dose`` (R's default quantile, type 7).

    ``knots`` may be a number of knots (3 to 7; Harrell's default percentiles) or the knots
    themselves; ``percentiles`` (proportions) override the defaults.
    """
    if knots is not None and not isinstance(knots, int | np.integer):
        values = tuple(float(k) for k in knots)
    else:
        number = 3 if knots is None else int(knots)
        if percentiles is None:
            if number not in DEFAULT_PERCENTILES:
                raise ValueError(
                    f"argument 'knots' = {number!r} is not allowed; use 3 to 7 knots or give "
                    "the knots (or 'knot_percentiles') explicitly"
                )
            percentiles = DEFAULT_PERCENTILES[number]
        values = tuple(float(q) for q in np.quantile(dose, np.asarray(percentiles, float)))
    if len(values) < 3:
        raise ValueError(f"a restricted cubic spline needs at least 3 knots; got {values!r}")
    if np.any(np.diff(values) <= 0):
        raise SparseKnotsError(values)
    return values


class SparseKnotsError(SparseDataError):
    """Knots that are not strictly increasing (too few distinct doses)."""

    def __init__(self, knots: tuple[float, ...]) -> None:
        self.knots = knots
        super().__init__(
            f"spline knots {knots!r} are not strictly increasing: the doses have too few "
            "distinct values for this many knots; use fewer knots or give them explicitly"
        )


def make_basis(model: str, dose: np.ndarray, *, knots: Sequence[float] | int | None = None,
               knot_percentiles: Sequence[float] | None = None,
               log_shift: float = 1.0) -> DoseBasis:
    """Build the :class:`DoseBasis` of ``model`` for the observed doses."""
    if model == "spline":
        return DoseBasis("spline", choose_knots(dose, knots, knot_percentiles), log_shift)
    if model == "log" and (not np.isfinite(log_shift) or log_shift < 0):
        raise ValueError(f"argument 'log_shift' = {log_shift!r} is not allowed; use a number >= 0")
    return DoseBasis(model, (), float(log_shift))
