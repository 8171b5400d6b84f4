"""Tables: assemble tidy DataFrames for reports and render them as CSV, Markdown, LaTeX, HTML, Word.

Formatting only: nothing here computes a statistic or writes a file (:func:`to_docx` returns
the bytes of the document). Every cell is escaped for its format, so text from the data (a
study label with ``<script>``, ``|``, ``&`` or ``%``) always shows as text; in CSV a cell a
spreadsheet would run as a formula is neutralised (:func:`neutralise_formula`).

HTML tables are rendered from the Jinja2 template ``templates/table.html.j2`` (autoescaped),
the same macro the report page uses. Each column is classified from its content
(:func:`numeric_columns`): columns of numbers, intervals, p-values and counts are
right-aligned, and any such cell never wraps; in text cells every word that holds a
character a browser may break after (``-``, ``/``, brackets) is kept whole, so text wraps
only at spaces.
"""

from __future__ import annotations

import html
import io
import math
import re
import zipfile
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jinja2
import pandas as pd

__all__ = [
    "escape_html",
    "escape_latex",
    "escape_markdown",
    "is_numeric_text",
    "neutralise_formula",
    "numeric_columns",
    "study_characteristics",
    "table_context",
    "template_environment",
    "to_csv",
    "to_docx",
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
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?%?"
#: Numbers, intervals and pairs as the tables print them (``-10.90 (-23.70 to 1.90)``,
#: ``-7.99 to 50.78``, ``-0.5 [-1.2, 0.3]``): no letter but ``to`` and no operator between
#: numbers, so no spreadsheet can read them as a formula that calls anything.
_NUMERIC_TEXT = re.compile(
    rf"{_NUMBER}(?:\s*(?:to|,)\s*{_NUMBER})?"
    rf"(?:\s*[(\[]\s*{_NUMBER}(?:\s*(?:to|,)\s*{_NUMBER})?\s*[)\]])?"
)


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
    returned unchanged, and so is a number with its interval as the tables print it
    (``"-10.90 (-23.70 to 1.90)"``, ``"-7.99 to 50.78"``: numbers, ``to``, commas and
    brackets only, nothing a spreadsheet could call). Any other text starting so is
    neutralised, also when a digit follows the sign (``"-1+cmd|..."``).

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
            and not _PLAIN_NUMBER.fullmatch(value) and not _NUMERIC_TEXT.fullmatch(value)):
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


# A number: optional comparison sign and sign (ASCII or Unicode minus), digits, decimals,
# exponent, percent. Cells made only of numbers joined as intervals ("0.52 [0.31, 0.86]",
# "2.98 (1.10 to 8.05)", "0.34 to 25.89"), counts ("12 / 40", "645 (5)"), an optional
# measure code in front ("OR 2.98 (...)"), statistics ("Q = 0.05, df = 1, p = 0.831") and a
# trailing ", k=4" are numeric cells.
_NUMBER = r"[<>≤≥]?\s?[-−+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?%?"
_INTERVAL = rf"(?:\(|\[)?{_NUMBER}(?:,\s|\s(?:to|-|–)\s|\s?[-–]\s?){_NUMBER}(?:\)|\])?"
_VALUE = rf"(?:{_NUMBER}(?:\s(?:\({_NUMBER}\)|{_INTERVAL}|/\s{_NUMBER}))?|{_INTERVAL})"
_STATISTIC = rf"[A-Za-z][\w²]*\s?=\s?{_NUMBER}"
_NUMERIC_CELL = re.compile(
    rf"(?:[A-Z]{{2,5}}\s)?(?:{_VALUE}(?:,\s?k\s?=\s?\d+)?|{_STATISTIC}(?:,\s{_STATISTIC})*)"
)
# Placeholders that do not decide a column's kind.
_PLACEHOLDERS = frozenset({"", "-", "–", "—", "NA", "n/a", "NR", "not estimable"})
# A word a browser could break inside (after a hyphen, slash, bracket, ...) is kept whole.
_BREAKABLE_WORD = re.compile(r"[^\w.,;:'\"]")


def is_numeric_text(text: str) -> bool:
    """Whether a cell's text is a number, an interval, a p-value, a count or a statistic.

    Examples of numeric cells: ``12``, ``-0.31``, ``<0.001``, ``76.8%``, ``12 / 40``,
    ``645 (5)``, ``0.34 to 25.89``, ``0.52 [0.31, 0.86]``, ``OR 2.98 (1.10 to 8.05)``,
    ``4.13 (1.53 to 11.14), k=4``, ``Q = 0.05, df = 1, p = 0.831``.
    """
    return _NUMERIC_CELL.fullmatch(text.strip()) is not None


def numeric_columns(frame: pd.DataFrame) -> list[bool]:
    """Per column, whether every filled cell is numeric (:func:`is_numeric_text`).

    A column of placeholders only (empty, ``NA``, dashes) is not numeric.
    """
    kinds = []
    for column in frame.columns:
        texts = [_text(v).strip() for v in frame[column]]
        filled = [t for t in texts if t not in _PLACEHOLDERS]
        kinds.append(bool(filled) and all(is_numeric_text(t) for t in filled))
    return kinds


def _tokens(text: str) -> list[dict[str, Any]]:
    return [{"text": word, "keep": _BREAKABLE_WORD.search(word) is not None}
            for word in text.split()]


#: A text column is given a minimum width of (its longest cell's characters) / this many
#: lines, in ems at most :data:`TEXT_COLUMN_MAX_EM`: a table wider than the page scrolls
#: instead of squeezing its text into one word per line.
TEXT_COLUMN_LINES = 4
TEXT_COLUMN_MAX_EM = 24.0


def _min_width_em(texts: list[str]) -> float | None:
    longest = max((len(t) for t in texts), default=0)
    width = min(TEXT_COLUMN_MAX_EM, 0.5 * longest / TEXT_COLUMN_LINES)
    return round(width, 1) if width >= 3 else None


def table_context(frame: pd.DataFrame, *, caption: str = "", anchor: str = "") -> dict[str, Any]:
    """Return the data the ``table`` template macro renders: header, cells and their kinds.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table.
    caption : str
        Table caption.
    anchor : str
        ``id`` of the table element (none if empty).

    Returns
    -------
    dict
        ``caption``, ``anchor``, ``columns`` (each ``name``, ``numeric`` and the
        ``min_width`` in ems of a text column with long cells) and ``rows``
        (each a list of cells with ``text``, ``numeric`` and the ``tokens`` of a text cell).
    """
    numeric = numeric_columns(frame)
    columns = [{"name": str(c), "numeric": n, "tokens": _tokens(str(c)),
                "min_width": None if n else _min_width_em([_text(v) for v in frame[c]])}
               for c, n in zip(frame.columns, numeric, strict=True)]
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            text = _text(value)
            number = is_numeric_text(text)
            cells.append({"text": text, "numeric": number,
                          "tokens": [] if number else _tokens(text)})
        rows.append(cells)
    return {"caption": caption, "anchor": anchor, "columns": columns, "rows": rows}


@lru_cache(maxsize=1)
def template_environment() -> jinja2.Environment:
    """Return the Jinja2 environment of the report templates (package data, autoescaped)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("analysis.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def to_html(frame: pd.DataFrame, *, caption: str = "") -> str:
    """Render ``frame`` as an HTML ``<table>`` fragment with escaped cells.

    Numeric columns carry ``class="num"`` (right-aligned) and numeric cells never wrap; the
    fragment is the same markup the report page uses, without its stylesheet.
    """
    template = template_environment().get_template("table.html.j2")
    return template.render(table=table_context(frame, caption=caption))


#: Fixed date of the Word files' core properties and zip entries (byte-determinism).
DOCX_DATE = datetime(2000, 1, 1, tzinfo=UTC)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
#: Above this estimated width (characters of the widest cell per column, each capped at 30)
#: or this many columns, a Word table goes on a landscape page.
DOCX_PORTRAIT_CHARACTERS = 90
DOCX_PORTRAIT_COLUMNS = 7


#: Width of one character of 8 pt table text (cm), generous for digits in Word's fonts.
DOCX_CHARACTER_CM = 0.16
#: Narrowest text column (cm).
DOCX_MIN_TEXT_CM = 1.4
#: Page margins of the Word tables (cm).
DOCX_MARGIN_CM = 2.0


def _docx_column_characters(frame: pd.DataFrame, numeric: list[bool]) -> list[int]:
    """Per column, the characters of its widest cell or header (text capped at 30), plus 1."""
    counts = []
    for column, number in zip(frame.columns, numeric, strict=True):
        cells = [len(_text(v)) for v in frame[column]]
        header = max((len(w) for w in str(column).split()), default=0)
        longest = max([header, *cells])
        counts.append((longest if number else min(30, longest)) + 1)
    return counts


def _docx_is_wide(characters: list[int]) -> bool:
    return (sum(characters) - len(characters) > DOCX_PORTRAIT_CHARACTERS
            or len(characters) > DOCX_PORTRAIT_COLUMNS)


def _docx_widths_cm(characters: list[int], numeric: list[bool], text_cm: float) -> list[float]:
    """Numeric columns as wide as their longest cell; text columns share the rest."""
    fixed = sum(n * DOCX_CHARACTER_CM for n, number in zip(characters, numeric, strict=True)
                if number)
    text = sum(n for n, number in zip(characters, numeric, strict=True) if not number)
    rest = max(text_cm - fixed, 0.0)
    return [n * DOCX_CHARACTER_CM if number else max(DOCX_MIN_TEXT_CM, rest * n / text)
            for n, number in zip(characters, numeric, strict=True)]


def _deterministic_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed dates and permissions and sorted entries."""
    source = zipfile.ZipFile(io.BytesIO(data))
    names = sorted(source.namelist(), key=lambda n: (n != "[Content_Types].xml", n))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            target.writestr(info, source.read(name), compresslevel=9)
    return out.getvalue()


def to_docx(frame: pd.DataFrame, *, caption: str = "") -> bytes:
    """Render ``frame`` as a Word document holding one real table; return its bytes.

    The caption is a "Caption" paragraph above the table; the header row is bold and
    repeats on every page; numeric columns (:func:`numeric_columns`) are right-aligned;
    a numeric column is as wide as its longest cell, whose spaces are no-break spaces (a
    number or interval never wraps), and text columns share the rest of the page by their
    content; a wide table gets a landscape A4 page. The document's dates are :data:`DOCX_DATE`
    and its zip entries carry fixed dates in sorted order, so the same table always gives
    the same bytes.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table.
    caption : str
        Table caption.

    Returns
    -------
    bytes
        The ``.docx`` file.
    """
    import docx
    from docx.enum.section import WD_ORIENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Cm, Pt

    document = docx.Document()
    package_rels = document.part.package.rels
    for key, relationship in list(package_rels.items()):  # python-docx's logo as thumbnail
        if relationship.reltype == RELATIONSHIP_TYPE.THUMBNAIL:
            package_rels.pop(key)
    section = document.sections[0]
    short, long = Cm(21.0), Cm(29.7)
    numeric = numeric_columns(frame)
    characters = _docx_column_characters(frame, numeric)
    if _docx_is_wide(characters):
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = long, short
    else:
        section.orientation = WD_ORIENT.PORTRAIT
        section.page_width, section.page_height = short, long
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Cm(DOCX_MARGIN_CM))
    if caption:
        document.add_paragraph(caption, style="Caption")
    table = document.add_table(rows=1, cols=len(frame.columns), style="Table Grid")
    header = table.rows[0]
    flag = OxmlElement("w:tblHeader")
    flag.set(qn("w:val"), "true")
    header._tr.get_or_add_trPr().append(flag)

    def fill(cell: Any, text: str, right: bool, bold: bool = False) -> None:
        paragraph = cell.paragraphs[0]
        run = paragraph.add_run(text)
        run.font.size = Pt(8)
        run.bold = bold
        if right:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT

    page_cm = (long if section.orientation == WD_ORIENT.LANDSCAPE else short).cm
    widths = [Cm(cm) for cm in _docx_widths_cm(characters, numeric, page_cm - 2 * DOCX_MARGIN_CM)]
    table.autofit = False
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width
    for cell, name, right, width in zip(header.cells, frame.columns, numeric, widths,
                                        strict=True):
        cell.width = width
        fill(cell, str(name), right, bold=True)
    for row in frame.itertuples(index=False):
        cells = table.add_row().cells
        for cell, value, right, width in zip(cells, row, numeric, widths, strict=True):
            cell.width = width
            text = _text(value)
            # A number or interval never wraps: its spaces are no-break spaces.
            fill(cell, text.replace(" ", "\u00a0") if is_numeric_text(text) else text, right)
    properties = document.core_properties
    properties.created = properties.modified = DOCX_DATE.replace(tzinfo=None)
    properties.last_printed = DOCX_DATE.replace(tzinfo=None)
    properties.author = properties.last_modified_by = ""
    properties.title = caption
    properties.comments = ""
    properties.revision = 1
    buffer = io.BytesIO()
    document.save(buffer)
    return _deterministic_zip(buffer.getvalue())


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
