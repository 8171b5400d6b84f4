r"""Greenland-Longnecker covariance of log relative risks sharing a reference group (private).

For one study with exposure levels :math:`0, 1, \dots, J` (level 0 = the reference, the row
with ``vi == 0``), reported (adjusted) log relative risks :math:`y_j` with variances
:math:`v_j`, cases :math:`a_j` and totals :math:`n_j` (subjects, or person-time for ``ir``),
Greenland & Longnecker (1992) find pseudo-counts :math:`A_j` that keep the crude margins
(:math:`\sum_j A_j = \sum_j a_j`, :math:`n_j` fixed) and reproduce the reported estimates:

- ``cc`` (case-control, odds ratios): :math:`\log\frac{A_j (n_0 - A_0)}{A_0 (n_j - A_j)} = y_j`,
  :math:`B_j = n_j - A_j` non-cases;
- ``ir`` (incidence rates, person-time :math:`n_j`) and ``ci`` (cumulative incidence, risk
  ratios): :math:`\log\frac{A_j n_0}{A_0 n_j} = y_j`.

The :math:`J` equations are solved by Newton's method with the exact Jacobian (for ``cc`` it
is dosresmeta's matrix :math:`H`). Then, with :math:`s_0` the reference cell's contribution
and :math:`s_j = s_0 + c_j`,

.. math::

   s_0 = \tfrac1{A_0} + \tfrac1{B_0} \;(cc), \quad \tfrac1{A_0} \;(ir), \quad
   \tfrac1{A_0} - \tfrac1{n_0} \;(ci), \qquad
   \operatorname{cov}(y_i, y_j) = \frac{s_0}{\sqrt{s_i s_j}} \sqrt{v_i v_j} \; (i \ne j),

and the diagonal keeps the reported :math:`v_j`.

Differences from dosresmeta 2.x (``grl``/``covar.logrr``): Newton is iterated to machine
precision (dosresmeta stops when the squared change of the counts is < 1e-5, which moves
the covariances in the 6th-7th digit); for ``ci`` dosresmeta solves the odds-ratio equation,
here the risk-ratio equation of the paper is used (the two agree for rare outcomes).

Checked against the published dosresmeta example ``covar.logrr`` on ``alcohol_cvd`` study 1
and the ``cc_ex`` slope 0.0454 (SE 0.0207) of Greenland & Longnecker (1992), and against a
port of dosresmeta's ``grl`` run in R (``tests/reference/make_dose_reference.R``).

References
----------
Greenland S, Longnecker MP (1992). Methods for trend estimation from summarized dose-response
data, with applications to meta-analysis. Am J Epidemiol 135:1301-1309.
Orsini N, Bellocco R, Greenland S (2006). Generalized least squares for trend estimation of
summarized dose-response data. Stata J 6:40-57.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analysis._checks import as_float_array, check_choice
from analysis._inputs import name_rows
from analysis.errors import ConvergenceError

__all__ = ["GL_TYPES", "gl_counts", "gl_covariance", "md_covariance"]

GL_TYPES = ("cc", "ir", "ci")


def _fitted(A: np.ndarray, A0: float, n: np.ndarray, n0: float, kind: str) -> np.ndarray:
    if kind == "cc":
        return np.log(A) - np.log(n - A) - np.log(A0) + np.log(n0 - A0)
    return np.log(A) - np.log(n) - np.log(A0) + np.log(n0)


def _cell(A: np.ndarray, n: np.ndarray, kind: str) -> np.ndarray:
    """Return the derivative of the fitted log ratio with respect to A (cc: 1/A + 1/(n - A))."""
    return 1 / A + 1 / (n - A) if kind == "cc" else 1 / A


def gl_counts(cases: np.ndarray, n: np.ndarray, yi: np.ndarray, ref: int, kind: str, *,
              tol: float = 1e-13, maxiter: int = 200) -> np.ndarray:
    """Greenland-Longnecker pseudo-cases :math:`A_j` of one study (all rows, reference included).

    Parameters
    ----------
    cases, n, yi : numpy.ndarray
        Cases, totals (or person-time) and log relative risks of every exposure level.
    ref : int
        Position of the reference level.
    kind : {"cc", "ir", "ci"}
        Study design (module docstring).
    tol, maxiter : float, int
        Newton stops when the largest relative change of a count is below ``tol``.

    Returns
    -------
    numpy.ndarray
        Fitted pseudo-cases, same order as ``cases``.
    """
    others = np.flatnonzero(np.arange(cases.size) != ref)
    total = float(np.sum(cases))
    A = cases[others].astype(float).copy()
    target = yi[others]
    n_o, n0 = n[others], float(n[ref])
    for _ in range(maxiter):
        A0 = total - A.sum()
        resid = target - _fitted(A, A0, n_o, n0, kind)
        c0 = float(_cell(np.array([A0]), np.array([n0]), kind)[0])
        jac = np.diag(_cell(A, n_o, kind)) + c0
        step = np.linalg.solve(jac, resid)
        factor = 1.0
        while True:  # keep every pseudo-count inside (0, n)
            new = A + factor * step
            new0 = total - new.sum()
            upper_ok = kind == "ir" or (np.all(new < n_o) and new0 < n0)
            if np.all(new > 0) and new0 > 0 and upper_ok:
                break
            factor /= 2
        change = np.max(np.abs(new - A) / np.abs(new))
        A = new
        if change < tol:
            out = np.empty(cases.size)
            out[others] = A
            out[ref] = total - A.sum()
            return out
    raise ConvergenceError(
        "Greenland-Longnecker pseudo-counts did not converge; check that cases, n and the log "
        "relative risks are consistent (cases < n, the reference row has vi == 0)"
    )


def check_gl_variances(vi: np.ndarray, labels: Sequence[str] | None = None) -> None:
    """Refuse negative or infinite variances of the log relative risks (reference: 0 or NaN).

    Parameters
    ----------
    vi : numpy.ndarray
        Variances of one study (or of all studies stacked).
    labels : sequence of str, optional
        One name per row for the message (default 0-based positions).

    Raises
    ------
    ValueError
        Naming the argument, the offending values and their rows, and the rule.
    """
    with np.errstate(invalid="ignore"):
        bad = (vi < 0) | np.isinf(vi)
    if np.any(bad):
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"argument 'vi' has value(s) {vi[rows][:5].tolist()} at "
            f"{name_rows(rows, labels, vi.size)}; the variances of the log relative risks "
            "must be finite and > 0 (0 or NaN marks the reference row); the covariances are "
            "products of their square roots"
        )


def gl_covariance(cases: object, n: object, yi: object, vi: object,
                  type: str = "cc") -> np.ndarray:
    r"""Greenland-Longnecker covariance of the non-reference log relative risks of one study.

    Parameters
    ----------
    cases : array_like
        Number of cases at each exposure level (reference level included).
    n : array_like
        Number of subjects (``cc``, ``ci``; for ``cc`` cases + controls) or person-time
        (``ir``) at each level.
    yi : array_like
        Log relative risks (log OR for ``cc``, log rate ratio for ``ir``, log risk ratio for
        ``ci``); 0 at the reference.
    vi : array_like
        Their variances; exactly one row has ``vi == 0`` (or NaN): the reference level.
    type : {"cc", "ir", "ci"}
        Study design, as dosresmeta's ``type``.

    Returns
    -------
    numpy.ndarray
        ``J x J`` covariance matrix of the non-reference rows, in input order; the diagonal
        is ``vi``. Formulas in the module docstring.

    Raises
    ------
    ValueError
        When the reference row is missing or ambiguous, a variance is negative or infinite
        (dosresmeta's ``covar.logrr`` would take its square root and give NaN), counts are
        not positive, or lengths differ.

    Notes
    -----
    Checked against dosresmeta's published ``covar.logrr`` output for ``alcohol_cvd`` study 1
    (relative error < 1e-6) and the ``cc_ex`` trend of Greenland & Longnecker (1992).
    """
    kind = check_choice("type", type, GL_TYPES)
    arrays = [as_float_array(name, value) for name, value in
              (("cases", cases), ("n", n), ("yi", yi), ("vi", vi))]
    c, total, y, v = arrays
    if len({a.size for a in arrays}) != 1:
        raise ValueError("arguments 'cases', 'n', 'yi' and 'vi' must have the same length; got "
                         + ", ".join(str(a.size) for a in arrays))
    check_gl_variances(v)
    v = np.where(np.isnan(v), 0.0, v)
    refs = np.flatnonzero(v == 0)
    if refs.size != 1:
        raise ValueError(f"argument 'vi' must have exactly one reference row (vi == 0); found "
                         f"{refs.size}")
    if c.size < 2:
        raise ValueError("a study needs at least 2 exposure levels (reference + one other)")
    if np.any(~np.isfinite(c)) or np.any(c <= 0) or np.any(total <= 0) or (
            kind != "ir" and np.any(c >= total)):
        raise ValueError(f"arguments 'cases' = {c.tolist()!r} and 'n' = {total.tolist()!r} "
                         "must be positive with cases < n (for type 'cc'/'ci')")
    ref = int(refs[0])
    A = gl_counts(c, total, y, ref, kind)
    others = np.flatnonzero(np.arange(c.size) != ref)
    s0 = _reference_term(A[ref], total[ref], kind)
    s = s0 + np.array([_reference_term(A[j], total[j], kind) for j in others])
    corr = s0 / np.sqrt(np.outer(s, s))
    np.fill_diagonal(corr, 1.0)
    sd = np.sqrt(v[others])
    return corr * np.outer(sd, sd)


def _reference_term(A: float, n: float, kind: str) -> float:
    if kind == "cc":
        return 1 / A + 1 / (n - A)
    if kind == "ir":
        return 1 / A
    return 1 / A - 1 / n


def md_covariance(mean: object, sd: object, n: object, ref: int = 0) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    r"""Mean differences against a reference arm and their covariance (one study).

    :math:`y_j = \bar x_j - \bar x_0`, :math:`\operatorname{var}(y_j) = s_j^2/n_j + s_0^2/n_0`,
    :math:`\operatorname{cov}(y_i, y_j) = s_0^2/n_0` (the shared reference mean).

    Parameters
    ----------
    mean, sd, n : array_like
        Arm means, standard deviations and sizes.
    ref : int
        Position of the reference arm.

    Returns
    -------
    tuple of numpy.ndarray
        ``(yi, V)`` for the non-reference arms in input order.

    Notes
    -----
    Unpooled variances (as metafor's ``escalc("MD")``); dosresmeta's ``covar.smd(measure="md")``
    uses the pooled SD on the diagonal instead. Checked by simulation-free algebra in the tests
    (the covariance of two differences with a common term).
    """
    m, s, size = (as_float_array(name, value) for name, value in
                  (("mean", mean), ("sd", sd), ("n", n)))
    others = np.flatnonzero(np.arange(m.size) != ref)
    shared = s[ref] ** 2 / size[ref]
    V = np.full((others.size, others.size), shared)
    np.fill_diagonal(V, s[others] ** 2 / size[others] + shared)
    return m[others] - m[ref], V
