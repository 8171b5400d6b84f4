"""Tables: assemble tidy DataFrames for reports and render them as CSV, Markdown, LaTeX, HTML.

Formatting only: nothing here computes a statistic or writes a file. Every cell is escaped
for its format, so text from the data (a study label with ``<script>``, ``|``, ``&`` or
``%``) always shows as text; in CSV a cell a spreadsheet would run as a formula is
neutralised (:func:`neutralise_formula`).
"""

from __future__ import annotations

import html
import math
import re

import pandas as pd

__all__ = [
    "escape_html",
    "escape_latex",
    "escape_markdown",
    "neutralise_formula",
    "study_characteristics",
    "to_csv",
    "to_html",
    "to_latex",
    "to_markdown",
]

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
_LATEX_PATTERN = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIALS))
_MARKDOWN_PATTERN = re.compile(r"([\\`*_\[\]|<>&~])")
#: First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _text(value: object) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:g}"
    return str(value)


def escape_latex(text: str) -> str:
    """Escape LaTeX special characters so ``text`` typesets literally."""
    return _LATEX_PATTERN.sub(lambda m: _LATEX_SPECIALS[m.group(0)], text)


def escape_markdown(text: str) -> str:
    """Escape Markdown (GitHub-flavoured, tables included) so ``text`` renders literally.

    Backslash-escapes punctuation Markdown gives meaning to; ``<`` ``>`` ``&`` become HTML
    entities so that raw HTML in a cell never reaches a browser; newlines become spaces.
    """
    text = text.replace("\r", " ").replace("\n", " ")
    entities = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
    return _MARKDOWN_PATTERN.sub(
        lambda m: entities.get(m.group(1), "\\" + m.group(1)), text
    )


def escape_html(text: str) -> str:
    """Escape ``text`` for HTML element content and attribute values."""
    return html.escape(text, quote=True)


def neutralise_formula(value: object) -> object:
    """Prefix ``'`` to a text cell that a spreadsheet would run as a formula.

    OWASP's rule against CSV injection: a cell whose first character is one of
    :data:`FORMULA_STARTS` (``= + - @``, tab, carriage return, NUL) is read by Excel,
    LibreOffice and Google Sheets as a formula (``=HYPERLINK(...)``, ``-1+cmd|...``), unless
    it starts with a single quote, which they take as "this is text" and do not show.
    A number stays a number: a value that is not a string (a float column's ``-0.52``) and
    a string that is one plain decimal number (``"-0.52"``, ``"+3"``, ``"-1e-5"``) are
    returned unchanged. Any other text starting so is neutralised, also when a digit follows
    the sign (``"-7.99 to 50.78"`` becomes ``"'-7.99 to 50.78"``), because ``-1+cmd|...`` also
    starts with one.

    Parameters
    ----------
    value : object
        A cell.

    Returns
    -------
    object
        The cell, with ``'`` in front when it is text that would be a formula.
    """
    if (isinstance(value, str) and value.startswith(FORMULA_STARTS)
            and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def to_csv(frame: pd.DataFrame) -> str:
    """Render ``frame`` as CSV (RFC 4180 quoting, newline line ends, no index).

    Text cells and column names that a spreadsheet would run as a formula are neutralised
    (:func:`neutralise_formula`); numbers are written as numbers.
    """
    columns = [column if pd.api.types.is_numeric_dtype(column.dtype)
               else column.map(neutralise_formula)
               for column in (frame.iloc[:, i] for i in range(frame.shape[1]))]
    safe = pd.concat(columns, axis=1, ignore_index=True) if columns else frame.copy()
    safe.columns = [neutralise_formula(name) for name in frame.columns]
    return safe.to_csv(index=False, lineterminator="\n")


def to_markdown(frame: pd.DataFrame, *, caption: str = "") -> str:
    """Render ``frame`` as a GitHub-flavoured Markdown table with escaped cells."""
    header = [escape_markdown(str(c)) for c in frame.columns]
    lines = []
    if caption:
        lines += [f"**{escape_markdown(caption)}**", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(escape_markdown(_text(v)) for v in row) + " |")
    return "\n".join(lines) + "\n"


def to_latex(frame: pd.DataFrame, *, caption: str = "") -> str:
    """Render ``frame`` as a LaTeX ``table`` with ``booktabs`` rules and escaped cells."""
    columns = "l" * len(frame.columns)
    lines = [r"\begin{table}[htbp]", r"\centering", r"\small"]
    if caption:
        lines.append(rf"\caption{{{escape_latex(caption)}}}")
    lines += [rf"\begin{{tabular}}{{{columns}}}", r"\toprule"]
    lines.append(" & ".join(escape_latex(str(c)) for c in frame.columns) + r" \\")
    lines.append(r"\midrule")
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(escape_latex(_text(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_html(frame: pd.DataFrame, *, caption: str = "") -> str:
    """Render ``frame`` as an HTML ``<table>`` fragment with escaped cells."""
    lines = ["<table>"]
    if caption:
        lines.append(f"<caption>{escape_html(caption)}</caption>")
    lines.append(
        "<thead><tr>"
        + "".join(f"<th>{escape_html(str(c))}</th>" for c in frame.columns)
        + "</tr></thead>"
    )
    lines.append("<tbody>")
    for row in frame.itertuples(index=False):
        lines.append(
            "<tr>" + "".join(f"<td>{escape_html(_text(v))}</td>" for v in row) + "</tr>"
        )
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines) + "\n"


def _dose_text(arm: pd.Series) -> str:
    parts = []
    target, high, mean = arm["dose_target_mg_day"], arm["dose_max_mg_day"], arm["dose_mean_mg_day"]
    if pd.notna(target):
        parts.append(f"{target:g}")
    if pd.notna(high) and high != target:
        parts.append(f"max {high:g}")
    if pd.notna(mean):
        parts.append(f"mean {mean:g}")
    return ", ".join(parts)


def _arm_text(arm: pd.Series) -> str:
    n = "n=?" if pd.isna(arm["n_randomised"]) else f"n={int(arm['n_randomised'])}"
    dose = _dose_text(arm)
    regimen = "" if pd.isna(arm["regimen"]) else f" {arm['regimen']}"
    dose_part = f" {dose} mg/d{regimen}" if dose and arm["role"] == "treatment" else ""
    if arm["role"] == "control" and arm["intervention"] != "placebo" and dose:
        dose_part = f" {dose} mg/d"
    return f"{arm['intervention']}{dose_part} ({n})"


def study_characteristics(studies: pd.DataFrame, arms: pd.DataFrame) -> pd.DataFrame:
    """Assemble the characteristics-of-included-studies table.

    Parameters
    ----------
    studies, arms : pandas.DataFrame
        Typed tables as returned by :func:`analysis.data.validate_trials`.

    Returns
    -------
    pandas.DataFrame
        One row per study, sorted by year then study id, with columns ``study``,
        ``country``, ``design``, ``arms``, ``randomised``, ``weeks``, ``liver_disease``,
        ``detoxified``, ``psychosocial``, ``source``.
    """
    ordered_arms = arms.sort_values(["study_id", "role", "arm_id"], ascending=[True, False, True])
    arm_texts = {
        study_id: "; ".join(_arm_text(arm) for _, arm in group.iterrows())
        for study_id, group in ordered_arms.groupby("study_id", sort=False)
    }
    ordered = studies.sort_values(["year", "study_id"], kind="stable")
    rows = []
    for study in ordered.to_dict("records"):
        label = f"{study['first_author']} {study['year']}"
        if pd.notna(study["acronym"]):
            label += f" ({study['acronym']})"
        source = "; ".join(
            str(x) for x in (
                None if pd.isna(study["doi"]) else f"doi:{study['doi']}",
                None if pd.isna(study["pmid"]) else f"PMID {study['pmid']}",
            ) if x
        )
        weeks = f"{study['treatment_weeks']:g}"
        if pd.notna(study["followup_weeks"]):
            weeks += f" (follow-up {study['followup_weeks']:g})"
        rows.append(
            {
                "study": label,
                "country": study["country"],
                "design": study["design"],
                "arms": arm_texts.get(study["study_id"], ""),
                "randomised": "" if pd.isna(study["n_randomised_total"])
                else int(study["n_randomised_total"]),
                "weeks": weeks,
                "liver_disease": "" if pd.isna(study["liver_disease"])
                else study["liver_disease"],
                "detoxified": study["detoxified"],
                "psychosocial": study["psychosocial"],
                "source": source or study["citation"],
            }
        )
    return pd.DataFrame(rows)
