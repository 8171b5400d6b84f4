"""Treatment-vs-control comparisons (``ma.contrasts``) from the tidy trials frame.

One comparison per treatment arm against a control arm of the same study, with the
study's and the arm's attributes carried along, and the effect size (``yi``, ``vi``) from
:func:`analysis.effects.effect_sizes`. Multi-arm trials (several treatment arms sharing one
control) are handled by an explicit choice (Cochrane Handbook v6, section 23.3.4):

``"split"``
    the shared control group's events and total (or n) are divided equally among the
    comparisons, so that no participant is counted twice (numbers may become fractional);
``"combine"``
    the treatment arms are merged into one: events and totals add up; means and SDs are
    combined with the Handbook's formula (Table 6.5.a);
``"correlated"``
    every comparison keeps the whole control group; :func:`shared_control_covariance`
    returns the block-diagonal within-study covariance matrix implied by the shared
    control, for multivariate models (as metafor's ``vcalc`` + ``rma.mv``).

Studies that report an outcome only as an estimate with its confidence interval
(``data_type == "contrast"``) contribute through :func:`analysis.effects.effect_from_estimate`
when no arm-level numbers exist for that outcome and the measures match. Their published
limits are kept, on the analysis scale, in ``ci_low_published`` / ``ci_high_published``, so
that tables and forest plots show the interval as published (which need not be symmetric
around the estimate) while pooling uses the ``vi`` derived from its width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from analysis._checks import check_choice, check_level
from analysis.effects import effect_from_estimate, effect_sizes

__all__ = ["BINARY_MEASURES", "CONTINUOUS_MEASURES", "ESTIMATE_MEASURES", "contrasts",
           "shared_control_covariance", "study_intervals"]

#: Columns of :func:`contrasts` holding a reported estimate's published interval.
PUBLISHED_LIMITS = ("ci_low_published", "ci_high_published", "ci_level_published")

BINARY_MEASURES = ("OR", "RR", "RD")
#: Measures that enter only through reported estimates with a CI (time-to-event results).
ESTIMATE_MEASURES = ("HR",)
CONTINUOUS_MEASURES = ("MD", "SMD")
MULTIARM = ("split", "combine", "correlated")
ANALYSIS_SET_PREFERENCE = ("ITT", "mITT", "other", "completers")
STUDY_COLUMNS = (
    "first_author", "year", "acronym", "design", "liver_disease", "detoxified",
    "psychosocial", "treatment_weeks", "country",
)
ARM_COLUMNS = ("intervention", "regimen", "dose_target_mg_day", "dose_max_mg_day",
               "dose_mean_mg_day", "n_randomised")


def _one_definition(study: pd.DataFrame) -> pd.DataFrame:
    """Keep one outcome definition when an arm reports the outcome under several.

    The definition (``outcome_detail``) that covers the most arms wins; ties go to the one
    listed first. Without this an arm reported under two definitions would enter twice.
    """
    if "outcome_detail" not in study or not study["arm_id"].duplicated().any():
        return study
    coverage = study.groupby("outcome_detail", sort=False)["arm_id"].nunique()
    return study[study["outcome_detail"] == coverage.idxmax()]


def _select_observations(
    rows: pd.DataFrame, timepoint: str | float, analysis_sets: Sequence[str],
    tolerance: float | None = None,
) -> pd.DataFrame:
    """Keep, per study, one time point, one analysis set and one outcome definition."""
    kept = []
    rank = {name: i for i, name in enumerate(analysis_sets)}
    for _, study in rows.groupby("study_id", sort=True):
        study = study[study["analysis_set"].isin(rank)]
        if study.empty:
            continue
        if timepoint == "end_of_treatment":
            distance = (study["timepoint_weeks"] - study["treatment_weeks"]).abs()
            best = distance.min()
            if tolerance is not None and best > tolerance:
                continue
            candidates = study[distance == best]
            chosen_time = candidates["timepoint_weeks"].max()
        elif timepoint == "last":
            chosen_time = study["timepoint_weeks"].max()
        else:
            chosen_time = float(timepoint)
        study = study[study["timepoint_weeks"] == chosen_time]
        if study.empty:
            continue
        best_set = min(study["analysis_set"], key=rank.__getitem__)
        kept.append(_one_definition(study[study["analysis_set"] == best_set]))
    if not kept:
        return rows.iloc[0:0]
    return pd.concat(kept, ignore_index=True)


def _combine_continuous(group: pd.DataFrame) -> tuple[float, float, float]:
    """Cochrane Handbook Table 6.5.a, applied pairwise over the arms."""
    ns, means, sds = (group[c].to_numpy(float).tolist() for c in ("n", "mean", "sd"))
    n, mean, sd = float(ns[0]), float(means[0]), float(sds[0])
    for n2, m2, s2 in zip(ns[1:], means[1:], sds[1:], strict=True):
        total = n + n2
        combined_mean = (n * mean + n2 * m2) / total
        variance = ((n - 1) * sd**2 + (n2 - 1) * s2**2
                    + n * n2 / total * (mean**2 + m2**2 - 2 * mean * m2)) / (total - 1)
        n, mean, sd = total, combined_mean, float(np.sqrt(variance))
    return n, mean, sd


def _arm_data(rows: pd.DataFrame, kind: str) -> pd.DataFrame:
    if kind == "binary":
        usable = rows["events"].notna() & rows["total"].notna()
    else:
        usable = rows["mean"].notna() & rows["sd"].notna() & rows["n"].notna()
    return rows[usable]


def _pairs_for_study(
    study: pd.DataFrame, kind: str, multiarm: str, comparator: str | None
) -> list[dict[str, object]]:
    controls = study[study["role"] == "control"]
    if comparator is not None:
        controls = controls[controls["intervention"] == comparator]
    treatments = study[study["role"] == "treatment"]
    if controls.empty or treatments.empty:
        return []
    pairs: list[dict[str, object]] = []
    for _, control in controls.iterrows():
        if multiarm == "combine" and len(treatments) > 1:
            pairs.append(_combined_pair(treatments, control, kind))
            continue
        share = len(treatments) if multiarm == "split" else 1
        for _, treatment in treatments.iterrows():
            pairs.append(_pair(treatment, control, kind, share))
    return pairs


def _pair(treatment: pd.Series, control: pd.Series, kind: str, share: int) -> dict[str, object]:
    pair: dict[str, object] = {
        "treatment_arm_id": treatment["arm_id"],
        "control_arm_id": control["arm_id"],
        "derived": bool(treatment["derived"] or control["derived"]),
        "arms_combined": 1,
        "control_split": share,
    }
    for column in ARM_COLUMNS:
        if column in treatment.index:  # a subject's arm fields (doses) may be absent
            pair[column] = treatment[column]
    pair["control_intervention"] = control["intervention"]
    if kind == "binary":
        pair.update(events_t=float(treatment["events"]), n_t=float(treatment["total"]),
                    events_c=float(control["events"]) / share,
                    n_c=float(control["total"]) / share)
    else:
        pair.update(mean_t=float(treatment["mean"]), sd_t=float(treatment["sd"]),
                    n_t=float(treatment["n"]), mean_c=float(control["mean"]),
                    sd_c=float(control["sd"]), n_c=float(control["n"]) / share)
    return pair


def _weighted_dose(treatments: pd.DataFrame, column: str) -> float:
    """Dose of merged arms: mean of the arms' doses weighted by their size."""
    dose = treatments[column].astype("float64")
    weight = treatments["n_randomised"].astype("Float64").astype("float64")
    if dose.isna().any():
        return float("nan")
    if weight.isna().any():
        return float(dose.mean())
    return float(np.average(dose, weights=weight))


def _combined_pair(treatments: pd.DataFrame, control: pd.Series, kind: str) -> dict[str, object]:
    first = treatments.iloc[0]
    pair = _pair(first, control, kind, 1)
    pair["treatment_arm_id"] = "+".join(treatments["arm_id"])
    pair["arms_combined"] = len(treatments)
    pair["derived"] = bool(treatments["derived"].any() or control["derived"])
    for column in ("dose_target_mg_day", "dose_max_mg_day", "dose_mean_mg_day"):
        if column in treatments:
            pair[column] = _weighted_dose(treatments, column)
    if "regimen" in treatments:
        regimens = treatments["regimen"].dropna().unique()
        pair["regimen"] = regimens[0] if len(regimens) == 1 else pd.NA
    n_rand = treatments["n_randomised"]
    pair["n_randomised"] = pd.NA if n_rand.isna().any() else int(n_rand.sum())
    if kind == "binary":
        pair.update(events_t=float(treatments["events"].sum()),
                    n_t=float(treatments["total"].sum()))
    else:
        n, mean, sd = _combine_continuous(treatments)
        pair.update(mean_t=mean, sd_t=sd, n_t=n)
    return pair


def _contrast_rows(rows: pd.DataFrame, measure: str, comparator: str | None) -> pd.DataFrame:
    """Comparisons available only as estimate + CI rows of the requested measure."""
    reported = rows[(rows["data_type"] == "contrast") & (rows["contrast_measure"] == measure)]
    out = []
    for _, row in reported.iterrows():
        pair: dict[str, object] = {
            "study_id": row["study_id"],
            "treatment_arm_id": row["arm_id"],
            "control_arm_id": row["comparator_arm_id"],
            "derived": bool(row["derived"]),
            "arms_combined": 1,
            "control_split": 1,
            "from_reported_estimate": True,
            "timepoint_weeks": row["timepoint_weeks"],
            "analysis_set": row["analysis_set"],
            "source": row["source"],
            "estimate": row["estimate"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
            "control_intervention": row["comparator_intervention"],
            # Randomised arm sizes, so that participant counts include this study.
            "n_t": float(row["n_randomised"]) if pd.notna(row["n_randomised"]) else np.nan,
            "n_c": (float(row["comparator_n_randomised"])
                    if pd.notna(row["comparator_n_randomised"]) else np.nan),
        }
        for column in ARM_COLUMNS:
            pair[column] = row[column]
        out.append(pair)
    frame = pd.DataFrame(out)
    if comparator is not None and not frame.empty:
        frame = frame[frame["control_intervention"] == comparator]
    return frame


def contrasts(
    trials: pd.DataFrame,
    *,
    outcome: str,
    measure: str,
    multiarm: str = "split",
    comparator: str | None = "placebo",
    timepoint: str | float = "end_of_treatment",
    timepoint_tolerance: float | None = None,
    analysis_sets: Sequence[str] = ANALYSIS_SET_PREFERENCE,
    include_derived: bool = True,
    use_reported_estimates: bool = True,
    **effect_options: object,
) -> pd.DataFrame:
    """Build one treatment-vs-control comparison per treatment arm, with its effect size.

    Parameters
    ----------
    trials : pandas.DataFrame
        The tidy frame of :func:`analysis.load_trials`.
    outcome : str
        Outcome code, e.g. ``"abstinence"``.
    measure : {"OR", "RR", "RD", "MD", "SMD", "HR"}
        Effect measure; OR/RR/RD use binary rows, MD/SMD continuous rows with mean, SD
        and n; HR (a time-to-event result) only rows reported as an estimate with its CI
        (``data_type = contrast``, ``contrast_measure = HR``), log-transformed.
    multiarm : {"split", "combine", "correlated"}
        How several treatment arms sharing one control are handled (module docstring).
    comparator : str or None
        Keep only control arms whose ``intervention`` is this (default ``"placebo"``);
        ``None`` keeps every control arm (one comparison per treatment x control pair; a
        trial with both a placebo and an active control then contributes a treatment arm
        twice, so pool such comparisons separately by ``control_intervention``).
    timepoint : {"end_of_treatment", "last"} or float
        Which time point per study: the one closest to the study's ``treatment_weeks``
        (ties: the later), the last one, or exactly this many weeks.
    timepoint_tolerance : float, optional
        With ``"end_of_treatment"``: a study whose closest time point is further than this
        many weeks from the end of its treatment is left out (e.g. a 52-week follow-up of a
        12-week trial). None keeps the closest whatever its distance.
    analysis_sets : sequence of str
        Admissible analysis sets in order of preference; per study the first available
        is used. An arm reported under several outcome definitions (``outcome_detail``)
        enters once: the definition covering most of the study's arms is used.
    include_derived : bool
        If False, rows with ``derived == True`` are dropped before anything else.
    use_reported_estimates : bool
        Use ``contrast`` rows (estimate + CI) for studies without arm-level numbers, and in
        place of arm-level numbers that are all derived when the study's published
        estimate is not.
    **effect_options
        Passed to :func:`analysis.effects.effect_sizes` (``add``, ``to``, ``drop00``,
        ``vtype``, ``convention``).

    Returns
    -------
    pandas.DataFrame
        One row per comparison, sorted by year and study, with ``study_id``, ``label``,
        ``treatment_arm_id``, ``control_arm_id``, ``yi``, ``vi``, ``measure``, the arm
        numbers (``events_t, n_t, events_c, n_c`` or ``mean_t, sd_t, n_t, mean_c,
        sd_c, n_c``), the treatment arm's dose columns, the study attributes
        (``liver_disease``, ``detoxified``, ``psychosocial``, ``design``, ``year`` ...),
        ``derived``, ``from_reported_estimate``, ``timepoint_weeks``, ``analysis_set``
        and ``source``. Comparisons whose effect is not estimable (e.g. double-zero
        studies for OR with ``drop00=True``) keep NaN ``yi``/``vi``.

        Comparisons from a reported estimate also keep the published numbers: ``estimate``,
        ``ci_low``, ``ci_high`` on the natural scale as printed, and ``ci_low_published``,
        ``ci_high_published`` (the same limits on the analysis scale of ``yi``: log for
        OR/RR) with ``ci_level_published`` (0.95, the level ``trials/`` records). They are
        NaN for comparisons computed from arm-level counts or means. ``vi`` of a reported
        estimate comes from the interval's width (:func:`analysis.effects.
        effect_from_estimate`), so ``yi +/- 1.96 sqrt(vi)`` need not reproduce the published
        limits (ALPADIR: OR 1.20, 0.58 to 2.50 gives 2.49); forest plots and per-study
        tables show the published ones, pooling uses ``vi``.

    Raises
    ------
    ValueError
        For an unknown measure, multi-arm choice or time point; for an outcome absent from
        ``trials`` and from its outcome vocabulary (``trials.attrs["outcome_vocabulary"]``,
        set by :func:`analysis.load_trials`; the message lists the outcomes present; a
        vocabulary code without data gives an empty frame); for a measure that does not fit
        the outcome (a binary measure on a continuous outcome or the reverse, unless the
        outcome has reported estimates of that measure).
    """
    check_choice("measure", measure, BINARY_MEASURES + CONTINUOUS_MEASURES + ESTIMATE_MEASURES)
    check_choice("multiarm", multiarm, MULTIARM)
    if isinstance(timepoint, str):
        check_choice("timepoint", timepoint, ("end_of_treatment", "last"))
    kind = ("binary" if measure in BINARY_MEASURES else
            "continuous" if measure in CONTINUOUS_MEASURES else "contrast")
    rows = trials[trials["outcome"] == outcome]
    _check_outcome(trials, rows, outcome, measure, kind)
    if not include_derived:
        rows = rows[~rows["derived"]]
    pairs = []
    if kind == "contrast":  # a time-to-event measure (HR) exists only as published estimates
        arm_rows = rows.iloc[0:0]
    else:
        arm_rows = _arm_data(rows[rows["data_type"] == kind], kind)
        arm_rows = _select_observations(arm_rows, timepoint, analysis_sets,
                                        timepoint_tolerance)

    for study_id, study in arm_rows.groupby("study_id", sort=True):
        for pair in _pairs_for_study(study, kind, multiarm, comparator):
            pair.update(study_id=study_id, from_reported_estimate=False,
                        timepoint_weeks=study["timepoint_weeks"].iloc[0],
                        analysis_set=study["analysis_set"].iloc[0],
                        source="; ".join(sorted(set(study["source"].dropna()))))
            pairs.append(pair)
    frame = pd.DataFrame(pairs)
    if not frame.empty:
        frame = _with_effects(frame, kind, measure, effect_options)

    if use_reported_estimates:
        reported = _contrast_rows(rows, measure, comparator)
        if not reported.empty:
            covered = set(frame["study_id"]) if not frame.empty else set()
            reported = _select_observations(
                reported.merge(trials[["study_id", "treatment_weeks"]].drop_duplicates(),
                               on="study_id"),
                timepoint, analysis_sets, timepoint_tolerance,
            ).drop(columns="treatment_weeks")
            # Arm-level numbers win, unless they are all derived and the study published
            # the estimate itself (e.g. counts reconstructed from rounded percentages).
            derived_only = set()
            if not frame.empty:
                derived_only = set(
                    frame.groupby("study_id")["derived"].all().loc[lambda d: d].index
                )
            published = set(reported.loc[~reported["derived"], "study_id"])
            replace = derived_only & published
            if replace:
                frame = frame[~frame["study_id"].isin(replace)]
            reported = reported[~reported["study_id"].isin(covered - replace)]
            shared = reported.duplicated(["study_id", "control_arm_id"], keep=False)
            if multiarm != "correlated" and shared.any():
                studies = sorted(set(reported.loc[shared, "study_id"]))
                raise ValueError(
                    f"contrasts: {', '.join(studies)} report several {measure} estimates "
                    f"against one shared control arm for {outcome!r}; multiarm={multiarm!r} "
                    "cannot split or combine published estimates (the control would count "
                    "twice). Enter arm-level counts, keep one comparison, or use "
                    "multiarm='correlated' with a covariance."
                )
            if not reported.empty:
                effects = effect_from_estimate(
                    reported["estimate"].to_numpy(float), reported["ci_low"].to_numpy(float),
                    reported["ci_high"].to_numpy(float), measure=measure,
                )
                reported = reported.assign(
                    yi=effects["yi"].to_numpy(), vi=effects["vi"].to_numpy(),
                    **{name: effects[name].to_numpy() for name in PUBLISHED_LIMITS},
                )
                frame = pd.concat([frame, reported], ignore_index=True)
    return _finish(frame, trials, measure, outcome)


def _check_outcome(trials: pd.DataFrame, rows: pd.DataFrame, outcome: str, measure: str,
                   kind: str) -> None:
    """Refuse an outcome that is not in the data, or a measure the outcome's rows cannot give."""
    if rows.empty:
        vocabulary = trials.attrs.get("outcome_vocabulary") or ()
        if outcome in vocabulary:
            return  # a known outcome code without data: an empty result (a gap), not a typo
        present = sorted(str(o) for o in trials["outcome"].dropna().unique())
        known = " (nor in the descriptor's outcome vocabulary)" if vocabulary else ""
        raise ValueError(
            f"argument 'outcome' = {outcome!r} is not in the data{known}; outcomes present: "
            + ", ".join(repr(o) for o in present)
        )
    types = set(rows["data_type"].dropna())
    reported = set(rows.loc[rows["data_type"] == "contrast", "contrast_measure"].dropna())
    if (kind in types and kind != "contrast") or measure in reported:
        return
    allowed: list[str] = []
    kinds = [k for k in ("binary", "continuous") if k in types]
    for k in kinds:
        allowed += list(BINARY_MEASURES if k == "binary" else CONTINUOUS_MEASURES)
    allowed += sorted(str(m) for m in reported if m not in allowed)
    what = (f"is {' and '.join(kinds)}" if kinds
            else "is reported only as estimates with a CI")
    raise ValueError(
        f"argument 'measure' = {measure!r} is not allowed: outcome {outcome!r} {what}; use "
        + (", ".join(allowed) if allowed else "another outcome (no usable rows)")
    )


def _with_effects(frame: pd.DataFrame, kind: str, measure: str,
                  options: Mapping[str, Any]) -> pd.DataFrame:
    if kind == "binary":
        effects = effect_sizes(measure, events_t=frame["events_t"], n_t=frame["n_t"],
                               events_c=frame["events_c"], n_c=frame["n_c"], **options)
    else:
        effects = effect_sizes(measure, mean_t=frame["mean_t"], sd_t=frame["sd_t"],
                               n_t=frame["n_t"], mean_c=frame["mean_c"], sd_c=frame["sd_c"],
                               n_c=frame["n_c"], **options)
    return frame.assign(yi=effects["yi"].to_numpy(), vi=effects["vi"].to_numpy())


def _finish(frame: pd.DataFrame, trials: pd.DataFrame, measure: str, outcome: str) -> pd.DataFrame:
    if frame.empty:
        columns = ["study_id", "label", "treatment_arm_id", "control_arm_id", "yi", "vi",
                   "measure", "outcome"]
        return pd.DataFrame(columns=columns)
    present = [c for c in STUDY_COLUMNS if c in trials.columns]  # subject fields may be absent
    studies = trials[["study_id", *present]].drop_duplicates("study_id")
    frame = frame.merge(studies, on="study_id", how="left")
    for name in PUBLISHED_LIMITS:  # NaN for comparisons computed from arm-level numbers
        frame[name] = frame[name].astype(float) if name in frame else np.nan
    frame["label"] = frame["first_author"].astype(str) + " " + frame["year"].astype(str)
    several = frame.duplicated("study_id", keep=False)
    frame.loc[several, "label"] = (
        frame.loc[several, "label"] + " (" + frame.loc[several, "treatment_arm_id"].astype(str)
        + ")"
    )
    frame["measure"] = measure
    frame["outcome"] = outcome
    frame = frame.sort_values(["year", "study_id", "treatment_arm_id"], kind="stable")
    first = ["study_id", "label", "treatment_arm_id", "control_arm_id", "yi", "vi", "measure",
             "outcome"]
    return frame[first + [c for c in frame.columns if c not in first]].reset_index(drop=True)


def study_intervals(frame: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    r"""Each comparison's confidence interval as shown in tables and forest plots.

    A row with finite ``ci_low_published`` and ``ci_high_published`` (a reported estimate,
    see :func:`contrasts`) keeps its published limits when ``ci_level_published`` equals
    ``level`` (a missing column or NaN counts as equal); every other row gets the Wald
    interval :math:`y_i \pm z_{1-\alpha/2} \sqrt{v_i}` (metafor's ``forest()``). Pooling is
    not affected: it uses ``vi``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Comparisons with ``yi`` and ``vi`` (analysis scale), optionally the published
        columns.
    level : float
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        Same index as ``frame``; columns ``ci_low``, ``ci_high`` (analysis scale; NaN where
        ``yi`` or ``vi`` is not finite) and ``published`` (True where the published limits
        are used).
    """
    level = check_level(level)
    yi = frame["yi"].to_numpy(dtype=float)
    vi = frame["vi"].to_numpy(dtype=float)
    nan = np.full(yi.shape, np.nan)
    low = frame["ci_low_published"].to_numpy(dtype=float) if (
        "ci_low_published" in frame) else nan
    high = frame["ci_high_published"].to_numpy(dtype=float) if (
        "ci_high_published" in frame) else nan
    published_level = frame["ci_level_published"].to_numpy(dtype=float) if (
        "ci_level_published" in frame) else nan
    estimable = np.isfinite(yi) & np.isfinite(vi)
    published = (estimable & np.isfinite(low) & np.isfinite(high)
                 & (np.isnan(published_level) | np.isclose(published_level, level, rtol=0,
                                                           atol=1e-9)))
    with np.errstate(invalid="ignore"):
        half = NormalDist().inv_cdf(0.5 + level / 2) * np.sqrt(vi)
    wald_low = np.where(estimable, yi - half, np.nan)
    wald_high = np.where(estimable, yi + half, np.nan)
    return pd.DataFrame({"ci_low": np.where(published, low, wald_low),
                         "ci_high": np.where(published, high, wald_high),
                         "published": published}, index=frame.index)


def shared_control_covariance(frame: pd.DataFrame) -> np.ndarray:
    """Within-study covariance matrix of comparisons that share a control arm.

    For comparisons i and j of the same study against the same control arm (as built by
    ``contrasts(..., multiarm="correlated")``), the covariance is the control arm's
    contribution to the sampling variance (Gleser & Olkin 2009):

    - OR: ``1/a_c + 1/(n_c - a_c)``; RR: ``1/a_c - 1/n_c``; RD: ``p_c (1 - p_c) / n_c``,
      with 1/2 added to the control cells when either comparison has a zero cell (as
      escalc does);
    - MD: ``sd_c^2 / n_c``;
    - SMD: ``1/n_c + g_i g_j / (2 (n_ti + n_tj + n_c))``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`contrasts` (one measure).

    Returns
    -------
    numpy.ndarray
        ``k x k`` symmetric matrix with ``vi`` on the diagonal.
    """
    k = len(frame)
    matrix = np.diag(frame["vi"].to_numpy(float))
    if k == 0:
        return matrix
    measure = str(frame["measure"].iloc[0])
    for (_, _), group in frame.groupby(["study_id", "control_arm_id"], sort=False):
        index = group.index.to_numpy()
        if len(index) < 2:
            continue
        positions = frame.index.get_indexer(group.index)
        for a_pos, a in zip(positions, index, strict=True):
            for b_pos, b in zip(positions, index, strict=True):
                if a_pos != b_pos:
                    matrix[a_pos, b_pos] = _shared_term(frame.loc[a], frame.loc[b], measure)
    return matrix


def _shared_term(a: pd.Series, b: pd.Series, measure: str) -> float:
    if measure in BINARY_MEASURES:
        cells = [a["events_t"], a["n_t"] - a["events_t"], b["events_t"], b["n_t"] - b["events_t"],
                 a["events_c"], a["n_c"] - a["events_c"]]
        add = 0.5 if min(cells) == 0 else 0.0
        events = a["events_c"] + add
        n = a["n_c"] + 2 * add
        if measure == "OR":
            return float(1 / events + 1 / (n - events))
        if measure == "RR":
            return float(1 / events - 1 / n)
        p = events / n
        return float(p * (1 - p) / n)
    if measure == "MD":
        return float(a["sd_c"] ** 2 / a["n_c"])
    total = a["n_t"] + b["n_t"] + a["n_c"]
    return float(1 / a["n_c"] + a["yi"] * b["yi"] / (2 * total))
