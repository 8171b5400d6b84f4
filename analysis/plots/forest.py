"""Forest plot in the Cochrane / RevMan layout.

Layout, left to right: study label, per-arm columns (events / total, or mean, SD, total),
weight, effect with its interval (back-transformed for ratio measures), the plot panel
(squares scaled by weight, arrows where an interval leaves the axis, diamonds for pooled
results, a bar for the prediction interval), and optional risk-of-bias columns. Under the
pooled rows: heterogeneity, test for overall effect and, with subgroups, the test for subgroup
differences -- all taken from the result objects, none computed here. "Favours" labels sit
under the axis.

The figure height grows with the number of rows (:func:`forest_figure_size`), so every row
keeps 7 pt text with the same spacing from 1 to 100 studies.

A study without an estimable effect (NaN ``yi`` or ``vi``, e.g. a double-zero comparison of a
ratio measure, which :func:`analysis.contrasts` gives with ``drop00=True``) keeps its row with
its counts and "Not estimable" in the effect column, as RevMan prints it; it has no square, no
weight, counts in the arm totals (as RevMan's do), and a footnote says why it is not pooled.
An interval, diamond or prediction interval that runs past the axis is cut at the axis and
ends in an arrowhead, as metafor's ``forest()`` draws it.

A study that entered by its published estimate and CI (``ci_low_published``,
``ci_high_published`` of :func:`analysis.contrasts`) is drawn and printed with its published
limits, marked with a dagger and explained in a footnote under the plot.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.patches import Polygon

from analysis.contrasts import study_intervals
from analysis.measures import needs_ni
from analysis.plots import _common as c
from analysis.plots import style
from analysis.results import MantelHaenszelResult, PoolResult, SubgroupResult
from analysis.summaries import subgroup_test_caveat

__all__ = ["forest", "forest_figure_size", "forest_plot", "heterogeneity_text",
           "overall_effect_text", "result_data"]

_HEADER_ROWS = 2.1  # two header lines plus a little air above them (in rows)
_TOP_IN = 0.06
_BOTTOM_IN = 0.42  # tick labels and "favours" labels
_SIDE_IN = 0.06
_PAD_IN = 0.10  # between table columns
_GAP_IN = 0.12  # between the table and the plot panel
_MIN_PANEL_IN = 1.3
_ROB_COL_IN = 0.17
_NOTE_SIZE = style.MIN_FONT_SIZE + 0.5
#: Marker after the label of a study shown with its published CI, and its footnote.
PUBLISHED_MARK = "\u2020"
PUBLISHED_NOTE = (f"{PUBLISHED_MARK} Published CI (may be asymmetric); pooling uses the "
                  "variance derived from its width.")
#: Footnote of rows without an estimable effect: double zeros of a ratio measure, and others.
DOUBLE_ZERO_NOTE = ("Not estimable: no events (or only events) in both arms carry no "
                    "information on the {name}; excluded from pooling (RevMan; metafor drop00).")
NOT_ESTIMABLE_NOTE = "Not estimable: no effect estimate (yi or vi missing); excluded from pooling."
_FIXED_METHODS = ("FE", "EE", "MH", "PETO")

ROB_SYMBOLS = {
    "low": ("+", "rob_low", "white"),
    "some concerns": ("?", "rob_some", "black"),
    "unclear": ("?", "rob_some", "black"),
    "moderate": ("?", "rob_some", "black"),
    "high": ("\u2212", "rob_high", "white"),
    "serious": ("\u2212", "rob_high", "white"),
    "critical": ("\u2212", "rob_high", "white"),
}


@dataclass
class _Row:
    kind: str  # header | group | study | summary | events | prediction | note | blank
    cells: dict[str, str] = field(default_factory=dict)
    est: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    weight: float = float("nan")
    size: float = float("nan")  # square area scale: the weight, or 1/vi without weights
    rob: dict[str, str] = field(default_factory=dict)
    bold: bool = False
    overall: bool = False
    published: bool = False  # low/high are the published limits, not yi +/- z sqrt(vi)


@dataclass
class _Column:
    key: str
    header: str
    group: str = ""
    align: str = "right"
    width: float = 0.0
    left: float = 0.0  # inches, relative to the plot panel's left edge


def forest_figure_size(n_rows: int, *, width_cm: float = style.DOUBLE_COLUMN_CM
                       ) -> tuple[float, float]:
    """Figure size (inches) for a forest plot with ``n_rows`` table rows.

    Parameters
    ----------
    n_rows : int
        Rows below the column headers: studies, group headers, pooled rows and the
        heterogeneity lines (what :func:`forest_plot` draws).
    width_cm : float
        Figure width; the default is a double journal column (17.5 cm).

    Returns
    -------
    tuple of float
        ``(width, height)`` in inches: constant row height, so text size never shrinks.
    """
    if n_rows < 1:
        raise ValueError(f"argument 'n_rows' = {n_rows!r} must be at least 1")
    height = _TOP_IN + (n_rows + _HEADER_ROWS) * style.ROW_HEIGHT_IN + _BOTTOM_IN
    return style.cm_to_inch(width_cm), height


def heterogeneity_text(result: Any) -> str:
    """``Heterogeneity: Tau² = …; Chi² = … (df = …, P = …); I² = …%`` from a result."""
    q_df = int(getattr(result, "q_df", 0) or 0)
    if q_df < 1 or not np.isfinite(getattr(result, "q", np.nan)):
        return "Heterogeneity: not applicable"
    parts = []
    if str(getattr(result, "method", "")).upper() not in ("FE", "EE", "MH", "PETO"):
        tau2 = float(result.tau2)
        parts.append(f"Tau² = {tau2:.3f}" if tau2 < 0.1 else f"Tau² = {tau2:.2f}")
    parts.append(f"Chi² = {result.q:.2f} (df = {q_df}, {c.fmt_p(result.q_pvalue)})")
    parts.append(f"I² = {result.i2:.0f}%")
    return "Heterogeneity: " + "; ".join(parts)


def overall_effect_text(result: Any) -> str:
    """``Test for overall effect: Z = … (P = …)`` (``t = …, df = …`` under HKSJ)."""
    zval = float(getattr(result, "zval", np.nan))
    df = float(getattr(result, "df", np.nan))
    if str(getattr(result, "ci_method", "z")).startswith("hksj") and np.isfinite(df):
        stat = f"t = {zval:.2f}, df = {df:g}"
    else:
        stat = f"Z = {zval:.2f}"
    return f"Test for overall effect: {stat} ({c.fmt_p(result.pvalue)})"


def result_data(result: Any) -> pd.DataFrame:
    """Return the per-study data a fitted result keeps: ``label, yi, vi, measure``.

    Parameters
    ----------
    result : PoolResult or MantelHaenszelResult
        A result that keeps ``yi``, ``vi`` and ``study`` (as :func:`analysis.pool`,
        :func:`analysis.mantel_haenszel` and :func:`analysis.peto` do).

    Raises
    ------
    ValueError
        A result without its data.
    """
    yi, vi = getattr(result, "yi", None), getattr(result, "vi", None)
    if yi is None or vi is None:
        raise ValueError(f"argument 'result' ({type(result).__name__}) does not keep its data "
                         "(yi, vi); pass the data frame as well")
    yi, vi = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    study = getattr(result, "study", None)
    labels = list(study) if study is not None else [str(i + 1) for i in range(yi.size)]
    return pd.DataFrame({"label": [str(s) for s in labels], "yi": yi, "vi": vi,
                         "measure": getattr(result, "measure", None)})


@style.plain_text
def forest_plot(
    data: pd.DataFrame | PoolResult | MantelHaenszelResult,
    result: PoolResult | MantelHaenszelResult | None = None,
    *,
    ax: Axes | None = None,
    level: float | None = None,
    measure: str | None = None,
    label_column: str = "label",
    arm_labels: tuple[str, str] = ("Treatment", "Control"),
    favours: tuple[str, str] = ("Favours treatment", "Favours control"),
    subgroups: Mapping[str, PoolResult] | SubgroupResult | None = None,
    subgroup_column: str = "subgroup",
    subgroup_title: str | None = None,
    min_per_subgroup: int = 2,
    show_prediction: bool = True,
    show_arms: bool = True,
    show_weights: bool = True,
    rob: Mapping[str, Sequence[str] | Mapping[str, str]] | None = None,
    xlim: tuple[float, float] | None = None,
    null: float | None = None,
    width_cm: float = style.DOUBLE_COLUMN_CM,
) -> Axes:
    """Draw a Cochrane-style forest plot of per-study effects and the pooled result.

    Parameters
    ----------
    data : pandas.DataFrame, PoolResult or MantelHaenszelResult
        One row per comparison (e.g. from :func:`analysis.contrasts`): ``yi``, ``vi`` (log
        scale for ratio measures), the label column, and optionally the arm columns
        ``events_t, n_t, events_c, n_c`` or ``mean_t, sd_t, n_t, mean_c, sd_c, n_c``. Or the
        fitted result alone (``plots.forest(pool(...))``): the studies are its ``yi``,
        ``vi`` and ``study`` labels (no arm columns), the measure its ``measure``. Rows with
        NaN ``yi`` or ``vi`` are drawn as "Not estimable" (see the module notes).
    result : PoolResult or MantelHaenszelResult
        Pooled result of the same rows (in the same order), or of its estimable rows only
        (then its ``weights`` belong to those rows, in order): diamond, prediction
        interval, percent ``weights`` (when the result has them), heterogeneity and
        overall-effect lines. Left out in the one-call form. None when no row is
        estimable: the total row then says "Not estimable" (as RevMan prints it).
    ax : matplotlib.axes.Axes, optional
        The plot panel. Table columns are drawn to its left and right, so the caller leaves
        margins; when None a Figure of :func:`forest_figure_size` is created with the
        margins computed from the text.
    level : float, optional
        Confidence level of the study intervals when there is no ``result`` (default 0.95;
        with a result, its ``level``).
    measure : str, optional
        Measure code (``"OR"``, ``"RR"``, ``"MD"`` ...); default from ``data["measure"]``
        or ``result.measure``. Ratio measures are shown back-transformed on a log axis.
    label_column : str
        Column with the study labels.
    arm_labels : tuple of str
        Headers of the two arm column groups.
    favours : tuple of str
        Texts under the axis, left and right of the null line.
    subgroups : dict of str to PoolResult, or SubgroupResult, optional
        Subgroup results in display order; rows are grouped by ``data[subgroup_column]``
        with a subtotal diamond per group. A SubgroupResult also adds the test for
        subgroup differences.
    subgroup_column : str
        Column of ``data`` holding each row's subgroup.
    subgroup_title : str, optional
        Name of the subgrouping variable: group headings read ``"title: level"`` (e.g.
        "Liver disease: all") rather than the bare level.
    min_per_subgroup : int
        The test for subgroup differences is printed only with at least two subgroups of
        at least this many comparisons each (``SubgroupResult.subgroups["k"]``), with its
        caveat (:func:`analysis.summaries.subgroup_test_caveat`); otherwise a line says why
        it is not given.
    show_prediction : bool
        Draw the prediction interval (``result.pi_low``, ``result.pi_high``) when finite and
        the model is a random-effects model (a fixed-effect model's equals its CI).
    show_arms : bool
        Show the per-arm columns (when the arm columns are present).
    show_weights : bool
        Show the weight column (``result.weights``, percent).
    rob : dict, optional
        Risk-of-bias judgements: domain name -> one judgement per row of ``data`` (or a
        mapping label -> judgement). Judgements ``low``, ``some concerns``/``unclear``,
        ``high`` are drawn as +, ?, - in coloured circles; domains are keyed A, B, ...
    xlim : tuple of float, optional
        Axis limits on the display scale; default symmetric around the null, covering the
        pooled intervals and most study intervals (longer ones end in arrows); 0 to 1 for
        the proportion measures (PR, PLN, PLO, PAS, PFT), which have no null.
    null : float, optional
        No-effect value on the display scale (default 1 for ratio measures, else 0); the
        proportion measures have none (no null line, no "favours" labels) unless given.
    width_cm : float
        Figure width when ``ax`` is None (default 17.5 cm, a double journal column).

    Returns
    -------
    matplotlib.axes.Axes
        The plot panel (its Figure holds the whole forest plot).

    Notes
    -----
    Study intervals are those of :func:`analysis.contrasts.study_intervals` at
    ``result.level``: the Wald intervals ``yi ± z sqrt(vi)``, as metafor's ``forest()``
    draws them, except for rows with finite ``ci_low_published`` and ``ci_high_published``
    (analysis scale, as :func:`analysis.contrasts` and
    :func:`analysis.effects.effect_from_estimate` give them for reported estimates) whose
    ``ci_level_published`` equals ``result.level`` (a missing or NaN level counts as equal):
    those are drawn
    and printed with the published limits, their label gets a dagger (``†``) and a footnote
    says that the CI is as published and that pooling uses ``vi``. A fitted result drawn
    alone has no published limits. Squares are scaled by ``result.weights``; a result
    without weights (Mantel-Haenszel, Peto) gets no weight column and squares scaled by
    ``1/vi`` (a display scale, as metafor's ``forest()`` does without weights). Arm totals
    in the pooled rows are sums of the displayed counts; "Total events" sums the rows with
    counts only (its label says how many when some rows lack them, and it is left out when
    none has them); every statistic comes from ``result`` / ``subgroups``.
    """
    if not isinstance(data, pd.DataFrame):
        if result is not None:
            raise ValueError("argument 'result' must not be given when 'data' is a fitted "
                             "result; call forest(result)")
        result, data, label_column = data, result_data(data), "label"
    c.require_columns(data, [label_column, "yi", "vi"], "data")
    estimable = _estimable(data)
    if result is None and estimable.any():
        raise ValueError("argument 'result' is missing; pass the pooled result of 'data', or "
                         "the result alone (only data without an estimable row may be drawn "
                         "without a result)")
    fitted: Any = result if result is not None else _NotPooled(
        level=0.95 if level is None else float(level),
        measure=c.resolve_measure(measure, data))
    result = fitted
    weights = _weights(result, estimable)
    measure = c.resolve_measure(measure, data, result)
    ratio = c.is_ratio(measure)
    null_x = c.null_value(measure, null)
    # one-group measures (proportions) have no null: axis 0 to 1, no null line, no "favours"
    no_null = null is None and not c.has_null(measure)
    arms = _arm_kind(data) if show_arms else None
    groups, subgroup_test = _groups(data, subgroups, subgroup_column)
    headings = _Headings(subgroup_title, min_per_subgroup)

    sizes = weights
    if not np.isfinite(weights).any():  # e.g. Mantel-Haenszel: inverse-variance display sizes
        with np.errstate(divide="ignore", invalid="ignore"):
            sizes = 1.0 / data["vi"].to_numpy(dtype=float)
    rows = _build_rows(data, result, weights, measure, label_column, arms, groups,
                       subgroup_column, subgroup_test, show_prediction, rob, sizes, headings)
    columns = _columns(rows, measure, result, arms, arm_labels, show_weights)
    rob_keys = _rob_keys(rob)

    if ax is None:
        ax = _new_forest_axes(rows, columns, len(rob_keys), width_cm, favours)
    style.style_axes(ax, spines=("bottom",))
    limits = xlim if xlim is not None else (
        (0.0, 1.0) if no_null else _default_limits(rows, ratio, null_x))
    c.set_effect_axis(ax, limits, ratio, (limits[0] + limits[1]) / 2 if no_null else null_x)
    ax.set_yticks([])
    n = len(rows)
    ax.set_ylim(n - 0.5, -_HEADER_ROWS - 0.5)

    _draw_table(ax, rows, columns, rob_keys)
    _draw_panel_header(ax, measure, result)
    if not no_null:
        _draw_null_line(ax, rows, null_x)
    _draw_studies(ax, rows, limits)
    _draw_summaries(ax, rows, limits, ratio)
    if not no_null:
        _draw_favours(ax, favours, null_x)
    return ax


#: ``plots.forest(result)``: the same function as :func:`forest_plot`.
forest = forest_plot


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class _NotPooled:
    """Stands in for the result of data without an estimable row (nothing was pooled)."""

    level: float
    measure: str | None
    method: str = ""
    k: int = 0
    estimate: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")


@dataclass(frozen=True)
class _Headings:
    title: str | None
    min_per_subgroup: int

    def heading(self, level: str) -> str:
        return f"{self.title}: {level}" if self.title else level


def _estimable(data: pd.DataFrame) -> np.ndarray:
    yi = pd.to_numeric(data["yi"], errors="coerce").to_numpy(dtype=float)
    vi = pd.to_numeric(data["vi"], errors="coerce").to_numpy(dtype=float)
    return np.isfinite(yi) & np.isfinite(vi)


def _weights(result: Any, estimable: np.ndarray) -> np.ndarray:
    """Return percent weights per row of data.

    The result's own, or spread over the estimable rows when it was fitted to those only.
    """
    n = estimable.size
    weights = getattr(result, "weights", None)
    if weights is None:
        return np.full(n, np.nan)
    weights = np.asarray(weights, dtype=float)
    if weights.shape == (n,):
        return weights
    if weights.shape == (int(estimable.sum()),) and not estimable.all():
        out = np.full(n, np.nan)
        out[estimable] = weights
        return out
    raise ValueError(
        f"argument 'result' has {weights.size} weights but 'data' has {n} rows "
        f"({int(estimable.sum())} estimable); pool the rows of 'data' (or its estimable rows) "
        "in the same order"
    )


def _arm_kind(data: pd.DataFrame) -> str | None:
    binary = ("events_t", "n_t", "events_c", "n_c")
    continuous = ("mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c")
    if all(col in data.columns for col in binary) and data["events_t"].notna().any():
        return "binary"
    if all(col in data.columns for col in continuous) and data["mean_t"].notna().any():
        return "continuous"
    return None


def _groups(data: pd.DataFrame, subgroups: Any, column: str
            ) -> tuple[dict[str, Any] | None, SubgroupResult | None]:
    if subgroups is None:
        return None, None
    test = subgroups if isinstance(subgroups, SubgroupResult) else None
    groups = dict(subgroups.results if test is not None else subgroups)
    c.require_columns(data, [column], "data")
    unknown = sorted(set(data[column].astype(str)) - set(map(str, groups)))
    if unknown:
        raise ValueError(f"argument 'subgroups' has no result for group(s) {unknown} of "
                         f"data[{column!r}]; it has {list(groups)}")
    return groups, test


def _rob_keys(rob: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if not rob:
        return []
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [(letters[i], str(domain)) for i, domain in enumerate(rob)]


def _rob_for_rows(rob: Mapping[str, Any] | None, labels: Sequence[str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = [{} for _ in labels]
    for letter, domain in _rob_keys(rob):
        judgements = rob[domain]  # type: ignore[index]
        if isinstance(judgements, Mapping):
            values = [judgements.get(label, "") for label in labels]
        else:
            values = list(judgements)
            if len(values) != len(labels):
                raise ValueError(f"argument 'rob'[{domain!r}] has {len(values)} judgements "
                                 f"for {len(labels)} rows of 'data'")
        for row, value in zip(out, values, strict=True):
            row[letter] = "" if value is None or pd.isna(value) else str(value).strip().lower()
    return out


# ----------------------------------------------------------------------------- rows


def _build_rows(data: pd.DataFrame, result: Any, weights: np.ndarray, measure: str | None,
                label_column: str, arms: str | None, groups: dict[str, Any] | None,
                subgroup_column: str, test: SubgroupResult | None, show_prediction: bool,
                rob: Mapping[str, Any] | None, sizes: np.ndarray,
                headings: _Headings) -> list[_Row]:
    level = float(getattr(result, "level", 0.95))
    labels = data[label_column].astype(str).tolist()
    robs = _rob_for_rows(rob, labels)
    intervals = study_intervals(data, level).to_dict("records")
    ni = _sample_sizes(result, data, measure)
    study_rows = [_study_row(record, interval, w, measure, label_column, arms, r, ni=ni)
                  for (_, record), interval, w, r in zip(data.iterrows(), intervals, weights,
                                                         robs, strict=True)]
    for row, size in zip(study_rows, sizes, strict=True):
        row.size = float(size)
    rows: list[_Row] = []
    if groups is None:
        rows += study_rows
        rows += _summary_rows(result, data, weights, measure, arms, show_prediction,
                              "Total", overall=True, ni=ni)
    else:
        membership = data[subgroup_column].astype(str).to_numpy()
        for name, group_result in groups.items():
            mask = membership == str(name)
            rows.append(_Row("group", {"label": headings.heading(str(name))}, bold=True))
            rows += [row for row, keep in zip(study_rows, mask, strict=True) if keep]
            rows += _summary_rows(group_result, data[mask], weights[mask], measure, arms,
                                  show_prediction, "Subtotal", overall=False, ni=ni)
            rows.append(_Row("blank"))
        rows += _summary_rows(result, data, weights, measure, arms, show_prediction,
                              "Total", overall=True, ni=ni)
        if test is not None:
            rows += [_Row("note", {"label": line})
                     for line in _subgroup_test_lines(test, data, headings.min_per_subgroup)]
    if any(row.published for row in study_rows):
        rows.append(_Row("note", {"label": PUBLISHED_NOTE}))
    rows += _not_estimable_rows(data, study_rows, measure, arms)
    rows += _rob_key_rows(rob)
    return rows


def _not_estimable_rows(data: pd.DataFrame, study_rows: list[_Row], measure: str | None,
                        arms: str | None) -> list[_Row]:
    """Return the footnote of rows drawn as "Not estimable": which rule left them out."""
    missing = [row.cells.get("effect") == "Not estimable" for row in study_rows]
    if not any(missing):
        return []
    double_zero = np.zeros(len(data), dtype=bool)
    if arms == "binary" and c.is_ratio(measure):
        counts = data[["events_t", "n_t", "events_c", "n_c"]].apply(
            pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        a, n1, e, n2 = counts.T
        double_zero = ((a == 0) & (e == 0)) | ((a == n1) & (e == n2))
    notes = []
    if any(m and z for m, z in zip(missing, double_zero, strict=True)):
        notes.append(DOUBLE_ZERO_NOTE.format(name=c.measure_name(measure).lower()))
    if any(m and not z for m, z in zip(missing, double_zero, strict=True)):
        notes.append(NOT_ESTIMABLE_NOTE)
    return [_Row("note", {"label": line}) for note in notes
            for line in textwrap.wrap(note, width=110)]


def _sample_sizes(result: Any, data: pd.DataFrame, measure: str | None) -> Any:
    """Return the sample sizes a back-transformation needs (PFT), else None.

    The result's, else the data's ``ni`` column; every row then uses their harmonic mean,
    as metafor's ``forest(res, transf=transf.ipft.hm, targs=list(ni=...))``.
    """
    if not needs_ni(measure):
        return None
    sizes = getattr(result, "ni", None)
    if sizes is None and "ni" in data.columns:
        sizes = data["ni"].to_numpy(dtype=float)
    if sizes is None:
        raise ValueError(
            "measure 'PFT' is shown as a proportion through the harmonic mean of the sample "
            "sizes: give them as an 'ni' column of the data or fit with pool(..., ni=...)"
        )
    return sizes


def _study_row(record: pd.Series, interval: Mapping[Any, Any], weight: float,
               measure: str | None, label_column: str, arms: str | None,
               rob: dict[str, str], *, ni: Any = None) -> _Row:
    yi, vi = float(record["yi"]), float(record["vi"])
    cells = {"label": str(record[label_column])}
    cells.update(_arm_cells(record, arms))
    row = _Row("study", cells, weight=weight, rob=rob)
    if np.isfinite(yi) and np.isfinite(vi):
        if interval["published"]:
            row.published = True
            cells["label"] += f" {PUBLISHED_MARK}"
        row.est, row.low, row.high = c.display([yi, interval["ci_low"], interval["ci_high"]],
                                               measure, ni)
        cells["effect"] = c.fmt_interval(row.est, row.low, row.high)
        cells["weight"] = f"{weight:.1f}%" if np.isfinite(weight) else ""
    else:
        cells["effect"] = "Not estimable"
    return row


def _arm_cells(record: pd.Series, arms: str | None) -> dict[str, str]:
    if arms == "binary":
        keys = ("events_t", "n_t", "events_c", "n_c")
        return {key: c.fmt_count(_as_float(record[key])) for key in keys}
    if arms == "continuous":
        cells = {key: c.fmt_sig(_as_float(record[key]))
                 for key in ("mean_t", "sd_t", "mean_c", "sd_c")}
        cells.update({key: c.fmt_count(_as_float(record[key])) for key in ("n_t", "n_c")})
        return cells
    return {}


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _summary_rows(result: Any, data: pd.DataFrame, weights: np.ndarray,
                  measure: str | None, arms: str | None, show_prediction: bool,
                  prefix: str, *, overall: bool, ni: Any = None) -> list[_Row]:
    level = float(getattr(result, "level", 0.95))
    est, low, high = c.display([result.estimate, result.ci_low, result.ci_high], measure, ni)
    pooled = not isinstance(result, _NotPooled)
    cells = {"label": f"{prefix} ({level * 100:g}% CI)",
             "effect": c.fmt_interval(est, low, high) if pooled else "Not estimable"}
    if np.isfinite(weights).any():
        cells["weight"] = f"{np.nansum(weights):.1f}%"
    if arms is not None:
        cells["n_t"] = c.fmt_count(float(data["n_t"].sum()))
        cells["n_c"] = c.fmt_count(float(data["n_c"].sum()))
    rows = [_Row("summary", cells, est, low, high, bold=True, overall=overall)]
    if arms == "binary":
        rows += _events_rows(data)
    pi = c.display([getattr(result, "pi_low", np.nan), getattr(result, "pi_high", np.nan)],
                   measure, ni)
    if (show_prediction and not _is_fixed(result) and np.all(np.isfinite(pi))
            and getattr(result, "k", 0) >= 2):
        rows.append(_Row("prediction", {
            "label": "Prediction interval",
            "effect": f"[{c.fmt_number(pi[0])}, {c.fmt_number(pi[1])}]"},
            low=float(pi[0]), high=float(pi[1])))
    if not pooled:
        rows.append(_Row("note", {"label": "Heterogeneity: not applicable"}))
        rows.append(_Row("note", {"label": "Test for overall effect: not applicable"}))
        return rows
    rows.append(_Row("note", {"label": heterogeneity_text(result)}))
    rows.append(_Row("note", {"label": overall_effect_text(result)}))
    return rows


def _is_fixed(result: Any) -> bool:
    """Tell a fixed-effect model (its prediction interval is its CI, so none is drawn)."""
    return (str(getattr(result, "method", "")).upper() in _FIXED_METHODS
            or str(getattr(result, "model", "")) == "fixed")


def _events_rows(data: pd.DataFrame) -> list[_Row]:
    """"Total events" over the rows with arm counts (none when no row has them)."""
    events = data[["events_t", "events_c"]].apply(pd.to_numeric, errors="coerce")
    counted = events.notna().all(axis=1).to_numpy()
    if not counted.any():
        return []
    label = "Total events"
    if not counted.all():
        label += f" ({int(counted.sum())} of {counted.size} with counts)"
    return [_Row("events", {"label": label,
                            "events_t": c.fmt_count(float(events["events_t"][counted].sum())),
                            "events_c": c.fmt_count(float(events["events_c"][counted].sum()))})]


def _subgroup_test_text(test: SubgroupResult) -> str:
    df = tuple(int(d) for d in test.qb_df)
    if len(df) == 2:
        stat = f"F = {test.qb:.2f} (df = {df[0]}, {df[1]}"
    else:
        stat = f"Chi² = {test.qb:.2f} (df = {df[0] if df else 'NA'}"
    return f"Test for subgroup differences: {stat}, {c.fmt_p(test.qb_pvalue)})"


def _subgroup_test_lines(test: SubgroupResult, data: pd.DataFrame, minimum: int) -> list[str]:
    """Return the test for subgroup differences with its caveat, or why it is not given."""
    sizes = test.subgroups["k"] if "k" in test.subgroups.columns else pd.Series(
        [getattr(r, "k", 0) for r in test.results.values()])
    if len(sizes) < 2 or int(np.min(sizes)) < minimum:
        return [f"Test for subgroup differences: not applicable (needs at least 2 subgroups "
                f"of at least {minimum} studies each)"]
    studies = (data["study_id"].nunique() if "study_id" in data.columns
               else int(np.sum(sizes)))
    caveat = subgroup_test_caveat(int(studies))
    return [_subgroup_test_text(test), *textwrap.wrap(
        caveat[0].upper() + caveat[1:] + ".", width=110)]


def _rob_key_rows(rob: Mapping[str, Any] | None) -> list[_Row]:
    keys = _rob_keys(rob)
    if not keys:
        return []
    text = "Risk of bias: " + "; ".join(f"({letter}) {domain}" for letter, domain in keys)
    text += ". + low, ? some concerns, \u2212 high."
    return [_Row("note", {"label": line}) for line in textwrap.wrap(text, width=110)]


# ----------------------------------------------------------------------------- layout


def _columns(rows: list[_Row], measure: str | None, result: Any, arms: str | None,
             arm_labels: tuple[str, str], show_weights: bool) -> list[_Column]:
    columns = [_Column("label", "Study or subgroup", align="left")]
    if arms == "binary":
        for suffix, group in zip(("t", "c"), arm_labels, strict=True):
            columns += [_Column(f"events_{suffix}", "Events", group),
                        _Column(f"n_{suffix}", "Total", group)]
    elif arms == "continuous":
        for suffix, group in zip(("t", "c"), arm_labels, strict=True):
            columns += [_Column(f"mean_{suffix}", "Mean", group),
                        _Column(f"sd_{suffix}", "SD", group),
                        _Column(f"n_{suffix}", "Total", group)]
    if show_weights and any(row.cells.get("weight") for row in rows):
        columns.append(_Column("weight", "Weight"))
    columns.append(_Column("effect", _method_label(result), c.measure_name(measure),
                           align="center"))
    for col in columns:
        texts = [row.cells.get(col.key, "") for row in rows if row.kind != "note"]
        bold_texts = [row.cells.get(col.key, "") for row in rows
                      if row.bold and row.kind != "note"]
        col.width = max(c.max_width_in(texts), c.max_width_in(bold_texts, bold=True),
                        c.text_width_in(col.header, bold=True)) + _PAD_IN
    _place(columns)
    return columns


def _place(columns: list[_Column]) -> None:
    """Positions relative to the panel's left edge; group headers must fit their span."""
    for group in {col.group for col in columns if col.group and col.key != "effect"}:
        members = [col for col in columns if col.group == group]
        need = c.text_width_in(group, bold=True) + _PAD_IN
        have = sum(col.width for col in members)
        if need > have:
            for col in members:
                col.width += (need - have) / len(members)
    effect = columns[-1]
    effect.width = max(effect.width, c.text_width_in(effect.group, bold=True) + _PAD_IN)
    x = -_GAP_IN
    for col in reversed(columns):
        x -= col.width
        col.left = x


_METHOD_LABELS = {"MH": "Mantel-Haenszel", "PETO": "Peto", "MH-DL": "M-H, DL"}


def _method_label(result: Any) -> str:
    if isinstance(result, _NotPooled):
        return f"{result.level * 100:g}% CI"
    method = str(getattr(result, "method", ""))
    model = "fixed" if method.upper() in ("FE", "EE", "MH", "PETO") else "random"
    level = float(getattr(result, "level", 0.95)) * 100
    hksj = ", HKSJ" if str(getattr(result, "ci_method", "")).startswith("hksj") else ""
    if method.upper() == "MH-DL":
        model = "random"
    return f"{_METHOD_LABELS.get(method.upper(), method)}, {model}{hksj}, {level:g}% CI"


def _new_forest_axes(rows: list[_Row], columns: list[_Column], n_rob: int,
                     width_cm: float, favours: tuple[str, str]) -> Axes:
    width, height = forest_figure_size(len(rows), width_cm=width_cm)
    left = _SIDE_IN - columns[0].left
    right = _SIDE_IN + (_GAP_IN + _rob_block_in(n_rob) if n_rob else 0.0) + 0.05
    panel = width - left - right
    panel, width = fit_favours(left, panel, right, favours, _MIN_PANEL_IN)
    body = (len(rows) + _HEADER_ROWS) * style.ROW_HEIGHT_IN
    rect = (left / width, _BOTTOM_IN / height, panel / width, body / height)
    return style.new_axes(width, height, rect)


def fit_favours(left: float, panel: float, right: float, favours: tuple[str, str] | None,
                min_panel: float) -> tuple[float, float]:
    """Panel width and figure width (inches) so that the right "favours" text fits.

    The text starts at the panel's centre (the null of symmetric limits); the panel is
    narrowed until it fits, but not below ``min_panel`` (the figure widens instead).
    """
    need = (c.text_width_in(favours[1], style.TICK_LABEL_SIZE) + 4 / 72 + _SIDE_IN
            if favours else 0.0)
    overflow = need - (panel / 2 + right)
    if overflow > 0:
        panel -= 2 * overflow
        right += 2 * overflow
    if panel < min_panel:
        right += max(0.0, need - (min_panel / 2 + right))
        panel = min_panel
    return panel, left + panel + right


def _rob_block_in(n_rob: int) -> float:
    """Width of the risk-of-bias block: its columns, or its header if that is wider."""
    return max(n_rob * _ROB_COL_IN, c.text_width_in("Risk of bias", bold=True) + 0.04)


def _panel_width_in(ax: Axes) -> float:
    return ax.get_position().width * c.figure_width_in(ax)


def _default_limits(rows: list[_Row], ratio: bool, null_x: float) -> tuple[float, float]:
    studies = [row for row in rows if row.kind == "study" and np.isfinite(row.est)]
    values = [v for row in rows if row.kind in ("summary", "prediction")
              for v in (row.low, row.high)]
    values += [row.est for row in studies]
    bounds = np.array([v for row in studies for v in (row.low, row.high)], dtype=float)
    if bounds.size:
        distance = np.abs(np.log10(bounds / null_x)) if ratio else np.abs(bounds - null_x)
        order = np.argsort(distance)
        values.append(float(bounds[order[int(0.8 * (bounds.size - 1))]]))
    return c.symmetric_limits(values, ratio, null_x)


# ----------------------------------------------------------------------------- drawing


def _xfrac(ax: Axes, inches: float) -> float:
    return inches / _panel_width_in(ax)


def _draw_table(ax: Axes, rows: list[_Row], columns: list[_Column],
                rob_keys: list[tuple[str, str]]) -> None:
    trans = ax.get_yaxis_transform()  # x: axes fraction, y: rows
    for col in columns:
        x = _anchor(ax, col)
        ax.text(x, -1, col.header, transform=trans, ha=col.align, va="center",
                **style.text_kwargs(weight="bold"))
    for group in dict.fromkeys(col.group for col in columns if col.group):
        members = [col for col in columns if col.group == group]
        centre = (members[0].left + members[-1].left + members[-1].width - _PAD_IN) / 2
        ax.text(_xfrac(ax, centre), -2, group, transform=trans, ha="center", va="center",
                **style.text_kwargs(weight="bold"))
    label_x = _xfrac(ax, columns[0].left)
    for y, row in enumerate(rows):
        if row.kind == "note":
            ax.text(label_x, y, row.cells["label"], transform=trans, ha="left",
                    va="center", **style.text_kwargs(_NOTE_SIZE))
            continue
        for col in columns:
            text = row.cells.get(col.key, "")
            if text:
                weight = "bold" if row.bold and col.key in ("label", "effect") else "normal"
                ax.text(_anchor(ax, col), y, text, transform=trans, ha=col.align,
                        va="center", **style.text_kwargs(weight=weight))
    right = 1 + _xfrac(ax, _GAP_IN + _rob_block_in(len(rob_keys))) if rob_keys else 1.0
    ax.plot([label_x, right], [-0.55, -0.55], transform=trans, color="black",
            lw=style.THIN_LINE_WIDTH, clip_on=False, solid_capstyle="butt")
    if rob_keys:
        _draw_rob(ax, rows, rob_keys)


def _anchor(ax: Axes, col: _Column) -> float:
    if col.align == "left":
        return _xfrac(ax, col.left)
    if col.align == "center":
        return _xfrac(ax, col.left + (col.width - _PAD_IN) / 2)
    return _xfrac(ax, col.left + col.width - _PAD_IN)


def _draw_rob(ax: Axes, rows: list[_Row], rob_keys: list[tuple[str, str]]) -> None:
    trans = ax.get_yaxis_transform()
    centre = 1 + _xfrac(ax, _GAP_IN + _rob_block_in(len(rob_keys)) / 2)
    step = _xfrac(ax, _ROB_COL_IN)
    start = centre - step * (len(rob_keys) - 1) / 2
    ax.text(centre, -2, "Risk of bias", transform=trans, ha="center", va="center",
            **style.text_kwargs(weight="bold"))
    xs, ys, colours = [], [], []
    for i, (letter, _domain) in enumerate(rob_keys):
        x = start + i * step
        ax.text(x, -1, letter, transform=trans, ha="center", va="center",
                **style.text_kwargs(weight="bold"))
        for y, row in enumerate(rows):
            judgement = row.rob.get(letter)
            if row.kind != "study" or judgement is None:
                continue
            symbol, colour, text_colour = ROB_SYMBOLS.get(judgement, ("", "rob_unknown", "k"))
            xs.append(x)
            ys.append(y)
            colours.append(style.COLOURS[colour])
            if symbol:
                ax.text(x, y, symbol, transform=trans, ha="center", va="center",
                        color=text_colour, **style.text_kwargs(style.MIN_FONT_SIZE,
                                                               weight="bold"))
    ax.scatter(xs, ys, s=8.5**2, c=colours, marker="o", transform=trans, clip_on=False,
               linewidths=0, gid="rob-circles", zorder=2)


def _draw_panel_header(ax: Axes, measure: str | None, result: Any) -> None:
    trans = ax.get_yaxis_transform()
    ax.text(0.5, -2, c.measure_name(measure), transform=trans, ha="center", va="center",
            **style.text_kwargs(weight="bold"))
    ax.text(0.5, -1, _method_label(result), transform=trans, ha="center", va="center",
            **style.text_kwargs(weight="bold"))


def _draw_null_line(ax: Axes, rows: list[_Row], null_x: float) -> None:
    last = max((y for y, row in enumerate(rows) if row.kind in ("summary", "prediction")),
               default=len(rows) - 1)
    ax.plot([null_x, null_x], [-0.5, last + 0.5], color=style.COLOURS["null"],
            lw=style.THIN_LINE_WIDTH, zorder=1, gid="null-line")


def _draw_studies(ax: Axes, rows: list[_Row], limits: tuple[float, float]) -> None:
    studies = [(y, row) for y, row in enumerate(rows)
               if row.kind == "study" and np.isfinite(row.est)]
    if not studies:
        return
    low_lim, high_lim = min(limits), max(limits)
    segments = [[(max(row.low, low_lim), y), (min(row.high, high_lim), y)]
                for y, row in studies]
    ax.add_collection(LineCollection(segments, colors=style.COLOURS["ci"],
                                     linewidths=style.LINE_WIDTH, gid="study-ci", zorder=2),
                      autolim=False)
    weights = np.array([row.size for _, row in studies], dtype=float)
    top = np.nanmax(weights) if np.isfinite(weights).any() else 1.0
    relative = np.where(np.isfinite(weights), weights / top, 0.0)
    sides = 2.5 + 5.5 * np.sqrt(np.clip(relative, 0, 1))  # points
    ax.scatter([row.est for _, row in studies], [y for y, _ in studies], s=sides**2,
               marker="s", c=style.COLOURS["study"], linewidths=0, zorder=3,
               gid="study-squares")
    c.edge_arrows(ax, [y for y, _ in studies], [row.low for _, row in studies],
                  [row.high for _, row in studies], limits, colour=style.COLOURS["ci"],
                  gid="ci-arrows")


def _clip_diamond(vertices: list[tuple[float, float]], limits: tuple[float, float],
                  ratio: bool) -> list[tuple[float, float]]:
    """Cut a polygon at the axis limits (straight edges on the drawn scale: log for ratios)."""
    forward = np.log10 if ratio else (lambda v: v)
    back = (lambda v: 10.0 ** v) if ratio else (lambda v: v)
    points = [(float(forward(x)), y) for x, y in vertices]
    for bound, keep in ((float(forward(min(limits))), lambda x, b: x >= b),
                        (float(forward(max(limits))), lambda x, b: x <= b)):
        clipped: list[tuple[float, float]] = []
        for i, (x1, y1) in enumerate(points):
            x0, y0 = points[i - 1]
            if keep(x1, bound) != keep(x0, bound):
                t = (bound - x0) / (x1 - x0)
                clipped.append((bound, y0 + t * (y1 - y0)))
            if keep(x1, bound):
                clipped.append((x1, y1))
        points = clipped
    return [(float(back(x)), y) for x, y in points]


def _draw_summaries(ax: Axes, rows: list[_Row], limits: tuple[float, float],
                    ratio: bool) -> None:
    lo_lim, hi_lim = min(limits), max(limits)
    for y, row in enumerate(rows):
        if row.kind == "summary" and np.isfinite(row.est):
            colour = style.COLOURS["pooled" if row.overall else "subtotal"]
            vertices = [(row.low, y), (row.est, y - 0.38), (row.high, y), (row.est, y + 0.38)]
            clipped = _clip_diamond(vertices, limits, ratio)
            if clipped:
                ax.add_patch(Polygon(clipped, closed=True, facecolor=colour, edgecolor=colour,
                                     lw=0.5, zorder=3, gid="diamond-overall" if row.overall
                                     else "diamond-subtotal"))
            c.edge_arrows(ax, [y], [row.low], [row.high], limits, colour=colour,
                          gid="diamond-arrows", size=c.ARROW_SIZE * 1.3)
        elif row.kind == "prediction":
            colour = style.COLOURS["prediction"]
            low, high = max(row.low, lo_lim), min(row.high, hi_lim)
            if low < high:
                ax.plot([low, high], [y, y], color=colour, lw=style.LINE_WIDTH * 1.5,
                        solid_capstyle="butt", zorder=3, gid="prediction-interval")
            ends = [x for x, inside in ((row.low, row.low >= lo_lim),
                                        (row.high, row.high <= hi_lim)) if inside]
            if ends:
                ax.plot(ends, [y] * len(ends), linestyle="none", marker="|",
                        markersize=5, markeredgewidth=style.LINE_WIDTH * 1.5, color=colour,
                        zorder=3)
            c.edge_arrows(ax, [y], [row.low], [row.high], limits, colour=colour,
                          gid="prediction-arrows")


def _draw_favours(ax: Axes, favours: tuple[str, str], null_x: float) -> None:
    left, right = favours
    kwargs = {"xycoords": ("data", "axes fraction"), "textcoords": "offset points",
              "va": "top", **style.text_kwargs(style.TICK_LABEL_SIZE)}
    ax.annotate(left, xy=(null_x, 0), xytext=(-4, -14), ha="right", **kwargs)
    ax.annotate(right, xy=(null_x, 0), xytext=(4, -14), ha="left", **kwargs)
