"""Robustness and decision analyses of one planned analysis (computation only).

GOSH (every subset of the comparisons, :func:`analysis.gosh`), the small-study and
publication-bias tests as one tidy frame, the Bayesian random-effects fits under the plan's
priors (:func:`analysis.bayesmeta`) and the trial sequential analysis
(:func:`analysis.sequential.trial_sequential_analysis`). :func:`analysis.report.plan.run_analysis`
calls these and keeps their results on the :class:`~analysis.report.plan.AnalysisRun`; the
captions, tables and narrative format them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.bayesian import BayesMetaResult, bayesmeta
from analysis.bayesian.spec import parse_tau_prior
from analysis.bias import egger_test, trim_and_fill
from analysis.contrasts import BINARY_MEASURES
from analysis.errors import ConvergenceError, FewStudiesWarning
from analysis.fail_safe import fail_safe_n
from analysis.gosh import gosh, gosh_diagnostics
from analysis.results import GoshResult, PoolResult, TrialSequentialResult
from analysis.sequential import trial_sequential_analysis
from analysis.small_study import harbord_test, pet_peese, peters_test, rank_test

if TYPE_CHECKING:
    from analysis.report.plan import AnalysisSpec, Plan

__all__ = [
    "GOSH_MAX_EXACT",
    "GOSH_SAMPLE",
    "GOSH_SEED",
    "SMALL_STUDY_COLUMNS",
    "SMALL_STUDY_TESTS",
    "PriorFits",
    "control_event_rate",
    "gosh_highlight",
    "run_bayes",
    "run_gosh",
    "run_tsa",
    "small_study_tests",
]

#: Up to this many comparisons GOSH fits every subset (2^15 - 1 = 32,767 REML fits take well
#: under a second on the batched engine); above, a seeded random sample of GOSH_SAMPLE.
GOSH_MAX_EXACT = 15
GOSH_SAMPLE = 2**15 - 1
GOSH_SEED = 1

#: The rows of the small-study table, in order ("binary" rows only for binary measures).
SMALL_STUDY_TESTS = (
    "Egger's regression test", "Begg's rank correlation test", "Harbord's test",
    "Peters' test", "Trim-and-fill (L0)", "PET-PEESE", "Fail-safe N (Rosenthal)")
_BINARY_ONLY = ("Harbord's test", "Peters' test")
SMALL_STUDY_COLUMNS = ("test", "k", "statistic", "statistic_name", "pvalue", "estimate",
                       "ci_low", "ci_high", "value", "detail", "not_run")


def run_gosh(result: PoolResult, plan: Plan) -> tuple[GoshResult, pd.DataFrame] | None:
    """GOSH of the primary model and its diagnostics, or None below ``plan.gosh_min_k``.

    Every subset up to :data:`GOSH_MAX_EXACT` comparisons, else :data:`GOSH_SAMPLE` random
    subsets (seed :data:`GOSH_SEED`); the estimator of the primary model (``plan.method``).
    """
    if not plan.gosh or result.k < plan.gosh_min_k:
        return None
    subsets = None if result.k <= GOSH_MAX_EXACT else GOSH_SAMPLE
    fit = gosh(result, method=result.method, subsets=subsets, seed=GOSH_SEED, progress=False)
    return fit, gosh_diagnostics(fit)


def gosh_highlight(diagnostics: pd.DataFrame) -> int:
    """Return the row of the study the GOSH plot highlights.

    The study separating the clusters (largest ``|cluster_share_diff|`` among those that
    do), else the one whose inclusion shifts the mean subset estimate most (largest
    ``|estimate_shift|``).
    """
    separates = diagnostics["separates"].to_numpy(bool)
    if separates.any():
        share = np.abs(diagnostics["cluster_share_diff"].to_numpy(float))
        return int(np.argmax(np.where(separates, share, -np.inf)))
    return int(np.nanargmax(np.abs(diagnostics["estimate_shift"].to_numpy(float))))


def _minimum(exc: Exception) -> str:
    """``"not run: needs at least 3 studies"`` from a test's refusal (its own message)."""
    found = re.search(r"at least (\d+)( informative)? stud", str(exc))
    if found:
        return f"not run: needs at least {found.group(1)}{found.group(2) or ''} studies"
    return f"not run: {exc}"


def _row(test: str, k: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SMALL_STUDY_COLUMNS, np.nan)
    row.update(test=test, k=k, statistic_name="", detail="", not_run="")
    row.update(values)
    return row


def _one_test(test: str, data: pd.DataFrame, result: PoolResult) -> dict[str, Any]:
    k = int(result.k)
    if test == "Egger's regression test":
        egger = egger_test(result)
        return _row(test, k, statistic=egger.zval, statistic_name=f"t ({egger.df:g} df)",
                    pvalue=egger.pvalue, estimate=egger.estimate, ci_low=egger.ci_low,
                    ci_high=egger.ci_high, detail="limit estimate (SE -> 0)")
    if test == "Begg's rank correlation test":
        rank = rank_test(result)
        return _row(test, k, statistic=rank.tau, statistic_name="Kendall's tau",
                    pvalue=rank.pvalue)
    if test in _BINARY_ONLY:
        arm = data[~data["from_reported_estimate"].astype(bool)]
        counts = [arm[c].to_numpy(float) for c in ("events_t", "n_t", "events_c", "n_c")]
        k_arm = len(arm)
        fn = harbord_test if test == "Harbord's test" else peters_test
        try:
            res = fn(*counts)
        except ValueError as exc:
            return _row(test, k_arm, not_run=_minimum(exc))
        detail = "arm-level counts only" if k_arm < k else ""
        return _row(test, int(res.k), statistic=res.statistic,
                    statistic_name=f"t ({res.df:g} df)", pvalue=res.pvalue,
                    detail=(detail + "; " if detail else "") + "log odds ratio scale")
    if test == "Trim-and-fill (L0)":
        filled = trim_and_fill(result)
        adjusted = filled.result
        return _row(test, k, value=float(filled.k0), statistic_name="k0",
                    estimate=adjusted.estimate, ci_low=adjusted.ci_low,
                    ci_high=adjusted.ci_high, detail=f"k0 studies filled on the {filled.side} side")
    if test == "PET-PEESE":
        pp = pet_peese(result, level=result.level)
        return _row(test, k, estimate=pp.estimate, ci_low=pp.ci_low, ci_high=pp.ci_high,
                    pvalue=pp.pet_pvalue, statistic_name="p of PET's intercept",
                    detail=f"{pp.selected} selected")
    if test == "Fail-safe N (Rosenthal)":
        fsn = fail_safe_n(result)
        return _row(test, k, value=float(fsn.fsnum), statistic_name="N",
                    pvalue=fsn.pvalue, detail="studies averaging null to make p >= 0.05")
    raise AssertionError(test)  # pragma: no cover - SMALL_STUDY_TESTS lists the tests


def small_study_tests(data: pd.DataFrame, result: PoolResult, measure: str) -> pd.DataFrame:
    """Run every small-study test of :data:`SMALL_STUDY_TESTS` that applies to the measure.

    A test that refuses (too few studies, a constant predictor) gives a row with ``not_run``
    saying why ("not run: needs at least 3 studies", from the test's own refusal); the few
    studies warning (:class:`~analysis.errors.FewStudiesWarning`) is not repeated here: the
    table adds that caveat.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SMALL_STUDY_COLUMNS`; ``value`` holds k0 (trim-and-fill) or N
        (fail-safe N); estimates on the analysis scale (log for ratios).
    """
    rows = []
    for test in SMALL_STUDY_TESTS:
        if test in _BINARY_ONLY and measure not in BINARY_MEASURES:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewStudiesWarning)
            try:
                rows.append(_one_test(test, data, result))
            except (ValueError, ConvergenceError) as exc:
                rows.append(_row(test, int(result.k), not_run=_minimum(exc)))
    return pd.DataFrame(rows, columns=list(SMALL_STUDY_COLUMNS))


class PriorFits(Mapping[str, BayesMetaResult]):
    """The Bayesian fits of one analysis by prior text (the primary first), picklable.

    A :class:`~analysis.bayesian.BayesMetaResult` holds its priors' densities as closures,
    which cannot be pickled; this mapping pickles its inputs instead and fits again when
    unpickled (milliseconds; the fit is deterministic), so the runs cache
    (``build/runs.pickle``) can hold it.
    """

    def __init__(self, yi: Any, vi: Any, study: Any, measure: str, level: float,
                 priors: tuple[str, ...]) -> None:
        self._args = (np.asarray(yi, dtype=float), np.asarray(vi, dtype=float),
                      tuple(str(s) for s in study), measure, float(level), tuple(priors))
        self._fits = {text: bayesmeta(self._args[0], self._args[1],
                                      tau_prior=parse_tau_prior(text), level=level,
                                      study=list(self._args[2]), measure=measure)
                      for text in priors}

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (PriorFits, self._args)

    def __getitem__(self, key: str) -> BayesMetaResult:
        return self._fits[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fits)

    def __len__(self) -> int:
        return len(self._fits)


def run_bayes(data: pd.DataFrame, spec: AnalysisSpec, plan: Plan) -> PriorFits:
    """Fit the Bayesian random-effects model under the plan's primary and sensitivity priors.

    Flat prior for mu (bayesmeta's default); keyed by the prior's text in the plan, the
    primary prior first.
    """
    return PriorFits(data["yi"].to_numpy(float), data["vi"].to_numpy(float),
                     data["label"].to_numpy(), spec.measure, plan.level,
                     (plan.bayes_tau_prior, *plan.bayes_sensitivity_priors))


def control_event_rate(data: pd.DataFrame) -> float:
    """Pooled control-arm event proportion of the comparisons with arm-level counts.

    A shared control arm split among a multi-arm trial's comparisons is counted once in
    total (its split events and participants add up to the arm's).
    """
    arm = data[~data["from_reported_estimate"].astype(bool)]
    events, n = arm["events_c"].astype(float).sum(), arm["n_c"].astype(float).sum()
    if not n > 0:
        raise ValueError("no comparison has control-arm counts for a control event rate")
    return float(events / n)


def run_tsa(data: pd.DataFrame, spec: AnalysisSpec, plan: Plan
            ) -> tuple[TrialSequentialResult, float]:
    """Trial sequential analysis in trial order with the plan's anticipated effect.

    The control event rate is :func:`control_event_rate` (pooled control arms); participants
    per comparison are ``n_t + n_c``.

    Returns
    -------
    result : TrialSequentialResult
    control_rate : float
    """
    rate = control_event_rate(data)
    n = data["n_t"].astype(float).to_numpy() + data["n_c"].astype(float).to_numpy()
    result = trial_sequential_analysis(
        data["yi"].to_numpy(float), data["vi"].to_numpy(float), n, measure=spec.measure,
        effect=plan.tsa_effect(spec.id), control_rate=rate, alpha=plan.tsa_alpha,
        beta=plan.tsa_beta, method=plan.tsa_method, spending=plan.tsa_spending,
        futility=plan.tsa_futility, heterogeneity=plan.tsa_heterogeneity,
        study=data["label"].to_numpy())
    return result, rate
