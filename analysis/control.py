"""Settings of the iterative estimators of the rma.uni core (metafor's ``control`` list)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis._checks import check_choice

__all__ = ["METHODS", "Control"]

#: The tau^2 estimators (metafor's method codes; "FE" is metafor's "EE"/"FE").
METHODS = ("FE", "DL", "REML", "PM", "SJ", "HE", "HS", "ML", "EB")


@dataclass(frozen=True, slots=True)
class Control:
    r"""Settings of the iterative estimators (names follow metafor's ``control`` list).

    One meaning for :func:`analysis.pooling.pool`, :func:`analysis.regression.meta_regression`
    and :func:`analysis.regression.subgroup_analysis`.

    Attributes
    ----------
    threshold : float
        Convergence of the ML/REML iterations: Fisher scoring stops when
        :math:`|\tau^2_{new} - \tau^2_{old}|` is at most this (metafor default 1e-5; ours
        1e-12 so that results are exact to ~1e-10); the Newton refinement stops at a step
        below ``threshold`` relative to :math:`\tau^2` (1e-8 for full Newton steps, after
        which the error left is ~1e-16).
    maxiter : int
        Maximum number of iterations (metafor default 100).
    tol : float
        Tolerance of the root finders (PM and EB estimators, Q-profile limits), relative to
        :math:`\tau^2` (down to 1e-10 of the smallest sampling variance) so that the same
        digits come out at any scale of the data, and of the log-likelihood check at
        :math:`\tau^2 = 0` (metafor default ``eps**0.25``, absolute).
    tau2_max : float or None
        Upper end of the PM/EB search and of the Q-profile search (metafor's ``tau2.max``).
        Default: a bound from the data that holds every root (:func:`analysis.solvers.
        q_upper`; it scales with the data, where metafor's ``max(100, 10 mad(y)^2)`` and
        ``max(100, 10 tau^2)`` depend on the units). A Q-profile limit cut at ``tau2_max``
        is flagged (``tau2_ci_truncated``) and shown as ">x".
    ll0check : bool
        With ``algorithm="fisher"``: after convergence, set :math:`\tau^2 = 0` when the
        (restricted) likelihood at 0 is larger, as metafor does (the global search compares
        :math:`\tau^2 = 0` with every local maximum anyway).
    stepadj : float
        Step length factor of Fisher scoring.
    algorithm : {"global", "newton", "fisher"}
        ML/REML solver. ``"global"`` (default; ``"newton"`` is an alias): the global maximum
        of the (restricted) likelihood, see the module docstring. ``"fisher"``: metafor's
        Fisher scoring step for step (same iterates, same stopping rule, same failures, same
        local maximum); with ``threshold=1e-5, maxiter=100`` it reproduces metafor's defaults
        digit for digit. EB with ``"fisher"`` uses metafor's EB scoring step.
    """

    threshold: float = 1e-12
    maxiter: int = 1000
    tol: float = 1e-12
    tau2_max: float | None = None
    ll0check: bool = True
    stepadj: float = 1.0
    algorithm: str = "global"

    @classmethod
    def from_any(cls, control: Control | Mapping[str, Any] | None) -> Control:
        """Build from ``None``, a ``Control`` or a mapping of field names."""
        if control is None:
            return cls()
        if isinstance(control, Control):
            return control
        if not isinstance(control, Mapping):
            raise ValueError(
                f"argument 'control' = {control!r} is not allowed; use a dict with keys "
                "threshold, maxiter, tol, tau2_max, ll0check, stepadj, algorithm"
            )
        allowed = ("threshold", "maxiter", "tol", "tau2_max", "ll0check", "stepadj", "algorithm")
        unknown = [key for key in control if key not in allowed]
        if unknown:
            raise ValueError(
                f"argument 'control' has unknown key(s) {unknown}; allowed: {', '.join(allowed)}"
            )
        out = cls(**dict(control))
        check_choice("control['algorithm']", out.algorithm, ("global", "newton", "fisher"))
        for name in ("threshold", "tol"):
            value = getattr(out, name)
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise ValueError(f"control[{name!r}] = {value!r} is not allowed; use a number > 0")
        if not (isinstance(out.maxiter, int) and out.maxiter >= 1):
            raise ValueError(
                f"control['maxiter'] = {out.maxiter!r} is not allowed; use an integer >= 1"
            )
        return out
