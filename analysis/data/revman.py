"""Read a RevMan 5 review file (``.rm5``, XML) and convert its data into the trials layout.

:func:`read_rm5` reads the analysis data of a Cochrane intervention review as R meta's
``read.rm5`` does. No published XML schema of the RM5 format was found; the element and
attribute names were checked against (1) meta's reader, ``R/read.rm5.R`` and
``R/read.rm5-internal.R`` of github.com/guido-s/meta at commit
025947fa1b5adc595f6b7eeae56315016f4b8101, and (2) two real RevMan 5 files: meta's
``inst/extdata/Fleiss1993.rm5`` (commit 6f708f262e815d85d2178a7007c5953553e741e2, RevMan
5.0.23; an excerpt is ``tests/fixtures/revman/fleiss1993_excerpt.rm5``) and the Cochrane
review CD000023 "Antibiotics for sore throat" (RevMan 5.2.11), stored as
``test/data/antibiotics-for-sore-throat.rm5`` of github.com/IEBH/revman-replicant (commit
4bc542dbd65913fcb25a0b8ef8c5a51620d8752d). Read are: the included studies
(``STUDIES_AND_REFERENCES/STUDIES/INCLUDED_STUDIES/STUDY``: ``ID``, ``NAME``, ``YEAR``), the
comparisons (``ANALYSES_AND_DATA/COMPARISON``: ``NO`` and child ``NAME``), their outcomes
(``DICH_OUTCOME``, ``CONT_OUTCOME``, ``IV_OUTCOME``: ``NO``, ``NAME``, ``EFFECT_MEASURE`` --
an attribute for dichotomous and continuous outcomes, a child element for generic inverse
variance --, ``METHOD`` (absent: inverse variance), ``RANDOM``, ``GROUP_LABEL_1/2``,
``GRAPH_LABEL_1/2`` and the totals RevMan stored: ``EFFECT_SIZE``, ``CI_START``, ``CI_END``,
``Z``, ``P_Z``, the heterogeneity ``CHI2``, ``P_CHI2``, ``I2``, ``TAU2``, ``DF``, the test
for subgroup differences ``Q``, ``P_Q``, ``I2_Q``, ``STUDIES``, ``ESTIMABLE``), their
subgroups (``DICH_SUBGROUP``, ``CONT_SUBGROUP``, ``IV_SUBGROUP``, with totals of their own)
and one row per study datum (``DICH_DATA``: ``EVENTS_1``, ``TOTAL_1``, ``EVENTS_2``,
``TOTAL_2``; ``CONT_DATA``: ``MEAN_1``, ``SD_1``, ``TOTAL_1``, ``MEAN_2``, ``SD_2``,
``TOTAL_2``; ``IV_DATA``: ``EFFECT_SIZE``, ``SE``; all: ``STUDY_ID``, ``ORDER``,
``WEIGHT``, ``ESTIMABLE``). Group 1 is the experimental group, group 2 the control group
(meta's ``.e`` and ``.c``). Column names are meta's (``comp.no``, ``outcome.no``,
``group.no``, ``studlab``, ``event.e``, ``n.e``, ..., ``TE.pooled``, ``lower.pooled``,
``upper.pooled``); every row also keeps the XML path and line of its element.

What the real files showed (and the synthetic ``tests/fixtures/revman/example.rm5`` now
follows):

* the heterogeneity test is ``CHI2``/``P_CHI2``; the attributes ``Q``/``P_Q``/``I2_Q`` hold
  the test for subgroup differences (``Q="0.0"`` without subgroups). meta's reader (commit
  above) reads ``Q`` into its column ``Q``; here ``Q``/``pval.Q`` come from ``CHI2``/``P_CHI2``
  and the subgroup test is ``Q.b``/``pval.Q.b``/``I2.b``;
* ``Z`` is stored as ``|z|``; ratio measures' ``EFFECT_SIZE``, ``CI_START``, ``CI_END`` are
  on the natural scale and the ``LOG_EFFECT_SIZE``, ``LOG_CI_START``, ``LOG_CI_END``
  attributes are base-10 logs (not read); every number is a Java double, and a total RevMan
  could not compute is ``NaN``, ``-Infinity`` or ``""`` (read as NaN);
* a datum RevMan cannot use (a double-zero 2x2 table, a row without data) has
  ``ESTIMABLE="NO"`` and ``WEIGHT="0.0"``; such rows may hold zero totals or SDs;
* files declare ``encoding="ISO-8859-1"`` (Windows-1252 bytes 0x80-0x9F are mapped to their
  characters, as meta's ``oct2txt`` does); study IDs escape characters as ``_xHHHH_``
  (``STD-ISIS_x002d_2`` for ISIS-2); ``COCHRANE_REVIEW/@TYPE`` is ``INTERVENTION`` (other
  review types are refused).

Generic inverse-variance data (``IV_DATA``) are taken to be on the analysis scale (log for
ratio measures: ``LOG_DATA="YES"``, RevMan's entry of log estimates and their SE; a file with
``LOG_DATA="NO"`` and a ratio measure is refused rather than guessed at). Neither real file
has an ``IV_OUTCOME``, so this part, ``LOG_DATA`` and the ``IV_SUBGROUP`` name follow meta's
reader and the synthetic example only.

:func:`rm5_to_trials` turns a review into the trials layout (studies, arms, outcomes) with a
data-package descriptor that keeps the core schema and adds the RevMan names (comparison,
outcome, subgroup, effect measure, model and method) to the outcomes; every row cites the
``.rm5`` file and the XML element (path, line, attributes) its numbers come from.
:func:`trials_files` renders the tables and descriptor as file contents (the command line
writes them: ``python -m analysis import-rm5 FILE --out DIR``).

Malformed input raises one :class:`~analysis.errors.DataValidationError` listing every
problem with the file, line, attribute, value and element.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

import pandas as pd

from analysis.data.schema import datapackage_descriptor
from analysis.errors import DataValidationError, Problem

__all__ = ["Rm5Review", "read_rm5", "rm5_to_trials", "trials_files"]

#: RevMan's outcome element kinds and meta's ``type`` codes.
OUTCOME_TYPES = {"DICH": "D", "CONT": "C", "IV": "I"}
#: ``EFFECT_MEASURE`` attribute codes and their (meta ``sm``, forced ``method``).
_MEASURE_CODES = {"OR": ("OR", None), "RR": ("RR", None), "RD": ("RD", None),
                  "MD": ("MD", None), "SMD": ("SMD", None), "HR": ("HR", None),
                  "PETO_OR": ("OR", "Peto")}
#: ``EFFECT_MEASURE`` element text (generic inverse variance), as meta maps it.
_MEASURE_NAMES = {"odds ratio": "OR", "peto odds ratio": "OR", "peto_or": "OR",
                  "odds ratio (non-event)": "OR", "risk ratio": "RR", "risk difference": "RD",
                  "mean difference": "MD", "standardized mean difference": "SMD",
                  "std. mean difference": "SMD", "hazard ratio": "HR"}
_METHODS = {"MH": "MH", "IV": "Inverse", "PETO": "Peto"}
RATIO_MEASURES = ("OR", "RR", "HR")
#: Stored totals of an outcome or subgroup: meta column -> attribute. In real files the
#: heterogeneity test is ``CHI2``/``P_CHI2`` (with ``I2``); ``Q``/``P_Q``/``I2_Q`` hold the test
#: for subgroup differences (``Q="0.0"`` without subgroups); ``Z`` is stored as ``|z|``.
_TOTALS = {"TE.pooled": "EFFECT_SIZE", "lower.pooled": "CI_START", "upper.pooled": "CI_END",
           "weight.pooled": "WEIGHT", "Z.pooled": "Z", "pval.TE.pooled": "P_Z", "Q": "CHI2",
           "pval.Q": "P_CHI2", "I2": "I2", "tau2": "TAU2", "df": "DF", "studies": "STUDIES",
           "Q.b": "Q", "pval.Q.b": "P_Q", "I2.b": "I2_Q",
           "event.e.pooled": "EVENTS_1", "n.e.pooled": "TOTAL_1",
           "event.c.pooled": "EVENTS_2", "n.c.pooled": "TOTAL_2"}
#: Java's spellings of non-finite numbers, which RevMan writes where it could not compute a
#: total (e.g. ``TAU2="NaN"``, ``LOG_EFFECT_SIZE="-Infinity"`` when no study is estimable).
_NONFINITE = ("NaN", "Infinity", "-Infinity")
#: RevMan 5's ``_xHHHH_`` escapes of characters not allowed in an ID (``STD-ISIS_x002d_2``).
_ID_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
#: Data attributes per type: (meta column, attribute, integer, minimum, exclusive minimum).
_DATA_FIELDS: dict[str, tuple[tuple[str, str, bool, float, bool], ...]] = {
    "DICH": (("event.e", "EVENTS_1", True, 0, False), ("n.e", "TOTAL_1", True, 1, False),
             ("event.c", "EVENTS_2", True, 0, False), ("n.c", "TOTAL_2", True, 1, False)),
    "CONT": (("mean.e", "MEAN_1", False, -math.inf, False), ("sd.e", "SD_1", False, 0, True),
             ("n.e", "TOTAL_1", True, 1, False), ("mean.c", "MEAN_2", False, -math.inf, False),
             ("sd.c", "SD_2", False, 0, True), ("n.c", "TOTAL_2", True, 1, False)),
    "IV": (("TE", "EFFECT_SIZE", False, -math.inf, False), ("seTE", "SE", False, 0, True)),
}
_Z95 = 1.959963984540054  # the 97.5% normal quantile (RevMan's 95% intervals)


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    line: int
    path: str
    children: list[_Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def find(self, tag: str) -> list[_Node]:
        return [child for child in self.children if child.tag == tag]

    def child_text(self, tag: str) -> str | None:
        found = self.find(tag)
        return "".join(found[0].text).strip() if found else None


_C1 = re.compile("[\x80-\x9f]")


def _cp1252(match: re.Match[str]) -> str:
    try:
        return bytes([ord(match.group())]).decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d: undefined in Windows-1252
        return match.group()


def _text(value: str, latin1: bool) -> str:
    """Undo Windows-1252 bytes read as ISO-8859-1 C1 controls (RevMan writes both)."""
    return _C1.sub(_cp1252, value) if latin1 else value


def _parse(path: Path, name: str) -> _Node:
    """Parse the XML into nodes that know their line and XPath (expat, no entity expansion).

    RevMan 5 declares ``encoding="ISO-8859-1"`` (checked: both real files cited in the module
    docstring) but may write Windows-1252 bytes 0x80-0x9F (curly quotes, dashes; R meta's
    ``oct2txt`` in read.rm5-internal.R maps them); expat decodes those as C1 control
    characters, which this parser maps back to the Windows-1252 characters.
    """
    parser = expat.ParserCreate()
    root = _Node("", {}, 0, "")
    stack = [root]
    counts: list[dict[str, int]] = [{}]
    latin1 = [False]

    def declaration(version: str, encoding: str | None, standalone: int) -> None:
        latin1[0] = (encoding or "").strip().lower() in ("iso-8859-1", "latin-1", "latin1")

    def start(tag: str, attrs: dict[str, str]) -> None:
        attrs = {key: _text(value, latin1[0]) for key, value in attrs.items()}
        parent = stack[-1]
        number = counts[-1].get(tag, 0) + 1
        counts[-1][tag] = number
        node = _Node(tag, dict(attrs), parser.CurrentLineNumber, f"{parent.path}/{tag}[{number}]")
        parent.children.append(node)
        stack.append(node)
        counts.append({})

    def end(tag: str) -> None:
        stack.pop()
        counts.pop()

    def chars(data: str) -> None:
        stack[-1].text.append(_text(data, latin1[0]))

    def no_entities(*_: Any) -> None:
        raise ValueError("entity declarations are not allowed in a RevMan file")

    parser.XmlDeclHandler = declaration
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.EntityDeclHandler = no_entities
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataValidationError([Problem(name, None, None, None,
                                           f"cannot be read: {exc.strerror or exc}")]) from exc
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise DataValidationError([Problem(
            name, exc.lineno, None, None,
            f"malformed XML: {expat.ErrorString(exc.code)} (column {exc.offset + 1})")]) from exc
    except ValueError as exc:
        raise DataValidationError([Problem(name, parser.CurrentLineNumber, None, None,
                                           str(exc))]) from exc
    if len(root.children) != 1 or root.children[0].tag != "COCHRANE_REVIEW":
        tag = root.children[0].tag if root.children else None
        raise DataValidationError([Problem(
            name, root.children[0].line if root.children else None, None, tag,
            "the root element must be COCHRANE_REVIEW (a RevMan 5 review file)")])
    review = root.children[0]
    kind = review.attrs.get("TYPE", "INTERVENTION")
    if kind != "INTERVENTION":
        raise DataValidationError([Problem(
            name, review.line, "TYPE", kind,
            "element COCHRANE_REVIEW: only intervention reviews (TYPE='INTERVENTION') hold "
            "the comparisons this reader reads")])
    return review


@dataclass(frozen=True)
class Rm5Review:
    """The analysis data of a RevMan 5 review, in meta ``read.rm5``'s columns.

    Attributes
    ----------
    path : str
        The file read.
    title : str
        The review's title (``COVER_SHEET/TITLE``), empty if absent.
    studies : pandas.DataFrame
        One row per included study: ``id``, ``studlab``, ``year`` (as written), ``line``,
        ``xpath``.
    comparisons : pandas.DataFrame
        ``comp.no``, ``complab``, ``line``, ``xpath``.
    outcomes : pandas.DataFrame
        One row per outcome: ``comp.no``, ``outcome.no``, ``outclab``, ``complab``, ``type``
        (D, C, I), ``method`` (MH, Inverse, Peto), ``sm``, ``model`` (Fixed, Random),
        ``common``, ``random``, ``overall``, ``test.subgroup``, ``label.e``, ``label.c``,
        ``label.left``, ``label.right``, ``logscale``, ``swap.events``, the stored totals
        (``TE.pooled``, ``lower.pooled``, ``upper.pooled``, ``weight.pooled``, ``Z.pooled``
        (``|z|``), ``pval.TE.pooled``, ``Q``, ``pval.Q``, ``I2`` (heterogeneity: ``CHI2``,
        ``P_CHI2``, ``I2``), ``tau2``, ``df``, ``studies``, ``Q.b``, ``pval.Q.b``, ``I2.b``
        (test for subgroup differences: ``Q``, ``P_Q``, ``I2_Q``), ``event.e.pooled``,
        ``n.e.pooled``, ``event.c.pooled``, ``n.c.pooled``; NaN when absent or not finite),
        ``estimable``, ``line``, ``xpath``.
    subgroups : pandas.DataFrame
        One row per subgroup: ``comp.no``, ``outcome.no``, ``group.no``, ``grplab``, the
        subgroup's stored totals (same names), ``line``, ``xpath``.
    data : pandas.DataFrame
        One row per study datum: ``comp.no``, ``outcome.no``, ``group.no`` (NaN without
        subgroups), ``id``, ``studlab``, ``year``, ``event.e``, ``n.e``, ``event.c``,
        ``n.c``, ``mean.e``, ``sd.e``, ``mean.c``, ``sd.c``, ``TE``, ``seTE``,
        ``estimable`` (False for ``ESTIMABLE="NO"``), ``weight`` (RevMan's percent), ``order``,
        ``grplab``, ``type``, ``method``, ``sm``, ``model``, ``outclab``, ``complab``,
        ``line``, ``xpath``, and ``attributes`` (the attributes as written).
    """

    path: str
    title: str
    studies: pd.DataFrame
    comparisons: pd.DataFrame
    outcomes: pd.DataFrame
    subgroups: pd.DataFrame
    data: pd.DataFrame


class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[Problem] = []

    def problem(self, node: _Node, attribute: str | None, value: str | None, rule: str) -> None:
        where = f"element {node.tag} ({node.path})"
        self.problems.append(Problem(self.name, node.line, attribute, value, f"{where}: {rule}"))

    def number(self, node: _Node, attribute: str, *, required: bool = False,
               integer: bool = False, minimum: float = -math.inf,
               exclusive: bool = False, nonfinite: bool = False) -> float:
        text = node.attrs.get(attribute)
        if text is None or text.strip() == "":
            if required:
                self.problem(node, attribute, None, "the attribute is required")
            return math.nan
        if nonfinite and text.strip() in _NONFINITE:
            return math.nan  # a total RevMan could not compute
        try:
            value = float(text)
        except ValueError:
            self.problem(node, attribute, text, "not a number")
            return math.nan
        if not math.isfinite(value):
            self.problem(node, attribute, text, "not a finite number")
            return math.nan
        if integer and value != int(value):
            self.problem(node, attribute, text, "must be a whole number")
        if value < minimum or (exclusive and value == minimum):
            bound = f"greater than {minimum:g}" if exclusive else f"at least {minimum:g}"
            self.problem(node, attribute, text, f"must be {bound}")
        return value

    def name_of(self, node: _Node) -> str:
        text = node.child_text("NAME")
        if not text:
            self.problem(node, None, None, "has no NAME child element (or it is empty)")
        return text or ""

    def yes_no(self, node: _Node, attribute: str, default: str) -> bool:
        value = node.attrs.get(attribute, default)
        if value not in ("YES", "NO"):
            self.problem(node, attribute, value, "must be YES or NO")
        return value != "NO"

    def totals(self, node: _Node) -> dict[str, Any]:
        values: dict[str, Any] = {column: self.number(node, attribute, nonfinite=True)
                                  for column, attribute in _TOTALS.items()}
        values["estimable"] = self.yes_no(node, "ESTIMABLE", "YES")
        return values

    def settings(self, node: _Node, kind: str) -> dict[str, Any]:
        code = node.attrs.get("EFFECT_MEASURE")
        forced = None
        if code is not None:
            if code not in _MEASURE_CODES:
                self.problem(node, "EFFECT_MEASURE", code,
                             f"unknown effect measure; allowed: {sorted(_MEASURE_CODES)}")
                sm = code
            else:
                sm, forced = _MEASURE_CODES[code]
        else:
            text = node.child_text("EFFECT_MEASURE")
            sm = _MEASURE_NAMES.get((text or "").lower(), "")
            if not sm:
                self.problem(node, "EFFECT_MEASURE", text,
                             "no known effect measure (attribute EFFECT_MEASURE or element "
                             f"EFFECT_MEASURE, one of {sorted(_MEASURE_NAMES)})")
        method_code = node.attrs.get("METHOD", "IV")
        if method_code not in _METHODS:
            self.problem(node, "METHOD", method_code, f"allowed: {sorted(_METHODS)}")
        method = forced or _METHODS.get(method_code, method_code)
        random_code = node.attrs.get("RANDOM", "NO")
        self.yes_no(node, "RANDOM", "NO")
        log_data = node.attrs.get("LOG_DATA")
        if kind == "IV" and sm in RATIO_MEASURES and log_data == "NO":
            self.problem(node, "LOG_DATA", log_data, "generic inverse-variance data of a ratio "
                         "measure must be on the log scale (LOG_DATA='YES')")
        if kind != "DICH" and method == "MH":
            self.problem(node, "METHOD", method_code, "Mantel-Haenszel needs dichotomous data")
        random = random_code == "YES"
        return {
            "type": OUTCOME_TYPES[kind], "method": method, "sm": sm,
            "model": "Random" if random else "Fixed", "common": not random, "random": random,
            "overall": node.attrs.get("TOTALS", "YES") == "YES",
            "test.subgroup": node.attrs.get("SUBGROUP_TEST") == "YES",
            "label.e": node.child_text("GROUP_LABEL_1") or "",
            "label.c": node.child_text("GROUP_LABEL_2") or "",
            "label.left": node.child_text("GRAPH_LABEL_1") or "",
            "label.right": node.child_text("GRAPH_LABEL_2") or "",
            "logscale": log_data != "NO", "swap.events": node.attrs.get("SWAP_EVENTS") == "YES",
        }

    def datum(self, node: _Node, kind: str, studies: dict[str, dict[str, Any]]) -> dict[str, Any]:
        study = node.attrs.get("STUDY_ID")
        if not study:
            self.problem(node, "STUDY_ID", None, "the attribute is required")
        elif study not in studies:
            self.problem(node, "STUDY_ID", study, "not an included study "
                         "(STUDIES_AND_REFERENCES/STUDIES/INCLUDED_STUDIES/STUDY ID)")
        row: dict[str, Any] = {column: math.nan for column in (
            "event.e", "n.e", "event.c", "n.c", "mean.e", "sd.e", "mean.c", "sd.c", "TE",
            "seTE")}
        # RevMan marks a datum it cannot use ESTIMABLE="NO" (a double-zero 2x2 table, or a row
        # without data: zero totals, SD or SE), with weight 0; such rows may hold zeros.
        estimable = self.yes_no(node, "ESTIMABLE", "YES")
        for column, attribute, integer, minimum, exclusive in _DATA_FIELDS[kind]:
            if not estimable and (minimum > 0 or exclusive):
                minimum, exclusive = 0, False
            row[column] = self.number(node, attribute, required=True, integer=integer,
                                      minimum=minimum, exclusive=exclusive)
        if kind == "DICH":
            for events, total, group in (("event.e", "n.e", "1"), ("event.c", "n.c", "2")):
                if row[events] > row[total]:
                    total_text = node.attrs.get(f"TOTAL_{group}")
                    self.problem(node, f"EVENTS_{group}", node.attrs.get(f"EVENTS_{group}"),
                                 f"more events than TOTAL_{group} ({total_text})")
        if kind == "IV":  # the optional group sizes of generic inverse-variance data
            for column, attribute in (("n.e", "TOTAL_1"), ("n.c", "TOTAL_2")):
                size = self.number(node, attribute, integer=True, minimum=0)
                row[column] = math.nan if size == 0 else size  # 0: not entered
        info = studies.get(study or "", {})
        row.update({"id": study or "", "studlab": info.get("studlab", ""),
                    "year": info.get("year", ""), "estimable": estimable,
                    "weight": self.number(node, "WEIGHT", nonfinite=True),
                    "order": self.number(node, "ORDER"),
                    "line": node.line, "xpath": node.path, "attributes": dict(node.attrs)})
        return row


def _studies(review: _Node, reader: _Reader) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for container in review.find("STUDIES_AND_REFERENCES"):
        for studies in container.find("STUDIES"):
            for included in studies.find("INCLUDED_STUDIES"):
                for study in included.find("STUDY"):
                    ident = study.attrs.get("ID", "")
                    if not ident:
                        reader.problem(study, "ID", None, "the attribute is required")
                    if any(row["id"] == ident for row in rows):
                        reader.problem(study, "ID", ident, "a second study with this ID")
                    rows.append({"id": ident, "studlab": study.attrs.get("NAME", ""),
                                 "year": study.attrs.get("YEAR", ""), "line": study.line,
                                 "xpath": study.path})
    return rows


def read_rm5(path: str | Path) -> Rm5Review:
    """Read the analysis data of a RevMan 5 review file (R meta ``read.rm5``).

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.rm5`` file (XML, root element ``COCHRANE_REVIEW``).

    Returns
    -------
    Rm5Review
        Studies, comparisons, outcomes (settings and stored totals), subgroups and study data,
        in meta's column names (see :class:`Rm5Review`).

    Raises
    ------
    DataValidationError
        The file cannot be read, is not well-formed XML, is not a RevMan review, or has
        elements with missing or invalid attributes; each problem names the file, the line,
        the attribute, the value and the element with its XML path.

    Notes
    -----
    As in meta, outcome and subgroup numbers are RevMan's ``NO`` attributes; a study datum
    refers to a study by ``STUDY_ID`` and takes ``studlab`` and ``year`` from the study's
    ``NAME`` and ``YEAR``. Individual patient data (``IPD_OUTCOME``, O - E and variance) are
    not read (meta reads them as type P); a file with them is refused with a located message.
    """
    path = Path(path)
    name = str(path)
    review = _parse(path, name)
    reader = _Reader(name)
    studies = _studies(review, reader)
    by_id = {row["id"]: row for row in studies}
    title = ""
    for cover in review.find("COVER_SHEET"):
        title = cover.child_text("TITLE") or title
    comparisons: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    subgroups: list[dict[str, Any]] = []
    data: list[dict[str, Any]] = []
    for analyses in review.find("ANALYSES_AND_DATA"):
        for comparison in analyses.find("COMPARISON"):
            comp_no = reader.number(comparison, "NO", required=True, integer=True, minimum=1)
            complab = reader.name_of(comparison)
            comparisons.append({"comp.no": comp_no, "complab": complab,
                                "line": comparison.line, "xpath": comparison.path})
            for ipd in comparison.find("IPD_OUTCOME"):
                reader.problem(ipd, None, None, "individual patient data (O - E and variance) "
                               "are not supported")
            for node in comparison.children:
                kind = node.tag.removesuffix("_OUTCOME")
                if kind not in OUTCOME_TYPES or not node.tag.endswith("_OUTCOME"):
                    continue
                outcome = {"comp.no": comp_no, "complab": complab,
                           "outcome.no": reader.number(node, "NO", required=True, integer=True,
                                                       minimum=1),
                           "outclab": reader.name_of(node), **reader.settings(node, kind),
                           **reader.totals(node), "line": node.line, "xpath": node.path}
                outcomes.append(outcome)
                common = {key: outcome[key] for key in (
                    "comp.no", "outcome.no", "type", "method", "sm", "model", "outclab",
                    "complab")}
                groups = node.find(f"{kind}_SUBGROUP")
                for datum in node.find(f"{kind}_DATA"):
                    data.append({**reader.datum(datum, kind, by_id), **common,
                                 "group.no": math.nan, "grplab": ""})
                for group in groups:
                    group_no = reader.number(group, "NO", required=True, integer=True,
                                             minimum=1)
                    grplab = reader.name_of(group)
                    subgroups.append({"comp.no": comp_no, "outcome.no": outcome["outcome.no"],
                                      "group.no": group_no, "grplab": grplab,
                                      **reader.totals(group), "line": group.line,
                                      "xpath": group.path})
                    for datum in group.find(f"{kind}_DATA"):
                        data.append({**reader.datum(datum, kind, by_id), **common,
                                     "group.no": group_no, "grplab": grplab})
    if not review.find("ANALYSES_AND_DATA"):
        reader.problem(review, None, None, "no ANALYSES_AND_DATA element (no study data)")
    if reader.problems:
        raise DataValidationError(reader.problems, directory=name)
    data_frame = pd.DataFrame(data)
    frames = [pd.DataFrame(rows) for rows in (comparisons, outcomes, subgroups)]
    for table in (*frames, data_frame):
        for column in ("comp.no", "outcome.no"):
            if column in table:
                table[column] = table[column].astype(int)
    if not data_frame.empty:
        data_frame = data_frame.sort_values(["comp.no", "outcome.no", "group.no", "order"],
                                            kind="stable", na_position="first")
        data_frame = data_frame.reset_index(drop=True)
    return Rm5Review(path=name, title=title, studies=pd.DataFrame(studies),
                     comparisons=frames[0], outcomes=frames[1], subgroups=frames[2],
                     data=data_frame)


# --- conversion into the trials layout -------------------------------------------------------

_ID = re.compile(r"[^A-Za-z0-9]+")
#: Outcome fields the import adds to the core schema (the RevMan names of each row).
EXTRA_OUTCOME_FIELDS = (
    ("comparison", "RevMan comparison, with its number (e.g. '1 Drug A versus placebo')."),
    ("outcome_name", "RevMan outcome name, with its number (e.g. '1.1 Response')."),
    ("subgroup", "RevMan subgroup, with its number (e.g. '1.1.2 High dose'); empty without."),
    ("effect_measure", "The outcome's effect measure in RevMan (OR, RR, RD, MD, SMD, HR)."),
    ("model", "The outcome's model in RevMan: fixed or random."),
    ("pooling_method", "The outcome's pooling method in RevMan: MH, Inverse or Peto."),
)


class _Record:
    """Attribute access to one row of :attr:`Rm5Review.studies`."""

    def __init__(self, record: dict[Any, Any]) -> None:
        self.id, self.studlab, self.year = record["id"], record["studlab"], record["year"]
        self.line, self.xpath = int(record["line"]), str(record["xpath"])


def _study_id(ident: str) -> str:
    """Turn a RevMan study ID (e.g. ``STD-Smith-2001``) into a study_id (``Smith2001``)."""
    stem = _ID_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), ident.removeprefix("STD-"))
    cleaned = _ID.sub("_", stem).strip("_").replace("_", "")
    return cleaned if cleaned[:1].isalpha() else f"S{cleaned}"


def _intervention(label: str, fallback: str) -> str:
    text = re.sub(r"[^a-z0-9 -]+", " ", label.lower())
    text = re.sub(r" +", " ", text).strip()
    return text if text[:1].isalpha() else fallback


def _number_text(value: float) -> str:
    if math.isnan(value):
        return ""
    return str(int(value)) if value == int(value) and abs(value) < 2**53 else repr(value)


def _descriptor(review: Rm5Review) -> dict[str, Any]:
    descriptor = copy.deepcopy(datapackage_descriptor())
    descriptor["name"] = "rm5-import"
    descriptor["title"] = f"Imported from RevMan 5: {review.title or Path(review.path).name}"
    descriptor["description"] = (
        f"Studies, arms and outcomes imported from the RevMan 5 file {Path(review.path).name} "
        "by `python -m analysis import-rm5` (analysis.data.revman); every row's source_location "
        "names the XML element and attributes its numbers come from.")
    outcomes = next(r for r in descriptor["resources"] if r["name"] == "outcomes")
    for name, description in EXTRA_OUTCOME_FIELDS:
        outcomes["schema"]["fields"].append(
            {"name": name, "type": "string", "description": description})
    return descriptor


def _unusable(datum: dict[Any, Any], kind: str) -> str:
    """Why a not-estimable datum cannot become a trials row ('' if it can)."""
    if datum["estimable"]:
        return ""
    if kind == "I":
        return "" if datum["seTE"] > 0 else "ESTIMABLE='NO' and SE not positive (no data)"
    if min(datum["n.e"], datum["n.c"]) < 1:
        return "ESTIMABLE='NO' and a group total of 0 (no data entered)"
    if kind == "C" and min(datum["sd.e"], datum["sd.c"]) <= 0:
        return "ESTIMABLE='NO' and an SD of 0 (no data entered)"
    return ""


def rm5_to_trials(
    review: Rm5Review, *, timepoint_weeks: float = 0.0, treatment_weeks: float = 0.0
) -> dict[str, Any]:
    """Convert a RevMan 5 review into the trials layout (studies, arms, outcomes).

    Each comparison gives every study with data in it two arms, ``c<comparison>_experimental``
    (role treatment, intervention = the outcome's ``GROUP_LABEL_1``) and ``c<comparison>_control``
    (role control, ``GROUP_LABEL_2``); dichotomous data become binary rows (events, total),
    continuous data continuous rows (mean, sd, n), generic inverse-variance data a contrast
    row on the experimental arm (estimate and 95% CI from ``EFFECT_SIZE`` and ``SE``,
    exponentiated for ratio measures; ``derived`` true). The outcome code is
    ``rm5_<comparison>_<outcome>``; the outcome detail is the RevMan outcome name (with the
    subgroup's name), and the comparison, outcome, subgroup, effect measure, model and method
    are kept in added columns.

    Parameters
    ----------
    review : Rm5Review
        From :func:`read_rm5`.
    timepoint_weeks, treatment_weeks : float
        A RevMan file records neither; these values fill the required fields and every row's
        ``notes`` says that they stand for "not recorded in the RevMan file".

    Returns
    -------
    dict
        ``"studies"``, ``"arms"``, ``"outcomes"`` (DataFrames of strings, as the CSV files
        hold them), ``"datapackage"`` (the descriptor: the core schema plus the added
        outcome fields) and ``"skipped"``: the data rows left out, with ``study_id``,
        ``outcome``, ``source_location`` and ``reason`` -- only rows RevMan marked
        ``ESTIMABLE="NO"`` whose numbers the trials layout cannot hold (a group total of 0,
        an SD or SE of 0: no data entered). A not-estimable row with real counts (a
        double-zero 2x2 table) is kept, its ``notes`` saying RevMan gave it no weight.

    Raises
    ------
    DataValidationError
        A study whose ID cannot become a unique study_id, or without a usable ``YEAR``
        (a required field of the trials layout); located as :func:`read_rm5`'s messages.
    """
    file_name = Path(review.path).name
    source = f"{file_name} (RevMan 5 review: {review.title})" if review.title else file_name
    problems: list[Problem] = []
    ids: dict[str, str] = {}
    seen: dict[str, str] = {}
    studies = []
    for record in review.studies.to_dict("records"):
        row = _Record(record)
        study_id = _study_id(str(row.id))
        where = f"element STUDY ({row.xpath})"
        if study_id.lower() in seen:
            problems.append(Problem(review.path, int(row.line), "ID", str(row.id),
                                    f"{where}: gives the same study_id {study_id!r} as "
                                    f"{seen[study_id.lower()]!r}"))
        seen[study_id.lower()] = str(row.id)
        ids[str(row.id)] = study_id
        written = str(row.year).strip()
        year = written.removesuffix(".")  # RevMan files hold e.g. YEAR="2006." too
        if not re.fullmatch(r"[0-9]{4}", year):
            problems.append(Problem(review.path, int(row.line), "YEAR", written or None,
                                    f"{where}: a four-digit year is required by the trials "
                                    "layout"))
        name = str(row.studlab).strip() or str(row.id)
        author = re.sub(r"\s*[0-9]{4}[a-z]?$", "", name).strip() or name
        studies.append({
            "study_id": study_id, "first_author": author, "year": year,
            "treatment_weeks": _number_text(treatment_weeks),
            "citation": f"{name}, as listed in {source}",
            "source_location": f"{file_name} line {row.line}: {row.xpath} (attributes ID, NAME, "
                               "YEAR)",
            "notes": f"RevMan study ID {row.id}; "
                     + (f"YEAR written {written!r}; " if written != year else "")
                     + f"treatment_weeks {_number_text(treatment_weeks)} "
                     "stands for 'not recorded in the RevMan file'",
        })
    if problems:
        raise DataValidationError(problems, directory=review.path)
    outcomes_by_key = {(o["comp.no"], o["outcome.no"]): o
                       for o in review.outcomes.to_dict("records")}
    complabs = {c["comp.no"]: c["complab"] for c in review.comparisons.to_dict("records")}
    arms: dict[tuple[str, str], dict[str, str]] = {}
    rows = []
    skipped: list[dict[str, str]] = []
    note = (f"timepoint_weeks {_number_text(timepoint_weeks)} stands for 'not recorded in the "
            "RevMan file'")
    for datum in review.data.to_dict("records"):
        outcome = outcomes_by_key[(datum["comp.no"], datum["outcome.no"])]
        comp, out = int(datum["comp.no"]), int(datum["outcome.no"])
        study_id = ids[datum["id"]]
        where = f"{file_name} line {datum['line']}: {datum['xpath']}"
        reason = _unusable(datum, outcome["type"])
        if reason:
            skipped.append({"study_id": study_id, "outcome": f"rm5_{comp}_{out}",
                            "source_location": where, "reason": reason})
            continue
        for group, role, label_key in (("experimental", "treatment", "label.e"),
                                       ("control", "control", "label.c")):
            key = (study_id, f"c{comp}_{group}")
            if key not in arms:
                label = str(outcome[label_key])
                arms[key] = {
                    "study_id": study_id, "arm_id": key[1], "role": role,
                    "intervention": _intervention(label, group),
                    "source": source,
                    "source_location": f"{file_name} line {outcome['line']}: "
                                       f"{outcome['xpath']} (GROUP_LABEL_"
                                       f"{1 if group == 'experimental' else 2})",
                    "notes": f"the {group} group of RevMan comparison {comp} "
                             f"({complabs.get(datum['comp.no'], '')}), labelled {label!r}",
                }
        subgroup = "" if math.isnan(datum["group.no"]) else (
            f"{comp}.{out}.{int(datum['group.no'])} {datum['grplab']}")
        base = {
            "study_id": study_id, "outcome": f"rm5_{comp}_{out}",
            "outcome_detail": str(outcome["outclab"]) + (
                f" [subgroup: {datum['grplab']}]" if subgroup else ""),
            "timepoint_weeks": _number_text(timepoint_weeks), "analysis_set": "other",
            "analysis_set_note": "as analysed in the RevMan review (not recorded in the file)",
            "source": source,
            "notes": note if datum["estimable"] else (
                f"{note}; RevMan marked this datum not estimable (ESTIMABLE='NO', weight 0)"),
            "comparison": f"{comp} {complabs.get(datum['comp.no'], '')}",
            "outcome_name": f"{comp}.{out} {outcome['outclab']}", "subgroup": subgroup,
            "effect_measure": outcome["sm"], "model": outcome["model"].lower(),
            "pooling_method": outcome["method"],
        }
        if outcome["type"] == "I":
            te, se = float(datum["TE"]), float(datum["seTE"])
            low, high = te - _Z95 * se, te + _Z95 * se
            ratio = outcome["sm"] in RATIO_MEASURES
            shown = [math.exp(v) if ratio else v for v in (te, low, high)]
            scale = "exp(EFFECT_SIZE)" if ratio else "EFFECT_SIZE"
            rows.append({**base, "arm_id": f"c{comp}_experimental", "data_type": "contrast",
                         "comparator_arm_id": f"c{comp}_control",
                         "contrast_measure": outcome["sm"],
                         "estimate": repr(shown[0]), "ci_low": repr(shown[1]),
                         "ci_high": repr(shown[2]), "derived": "true",
                         "derivation": f"estimate = {scale}; 95% CI = "
                                       f"{'exp' if ratio else ''}(EFFECT_SIZE -/+ {_Z95} * SE) "
                                       "from the generic inverse-variance data",
                         "source_location": f"{where} (attributes EFFECT_SIZE, SE)"})
            continue
        for group, number in (("experimental", "1"), ("control", "2")):
            attrs = datum["attributes"]
            arm_row = {**base, "arm_id": f"c{comp}_{group}", "derived": "false"}
            if outcome["type"] == "D":
                arm_row.update({"data_type": "binary", "events": attrs[f"EVENTS_{number}"].strip(),
                            "total": attrs[f"TOTAL_{number}"].strip(),
                            "source_location": f"{where} (attributes EVENTS_{number}, "
                                               f"TOTAL_{number})"})
            else:
                arm_row.update({"data_type": "continuous", "mean": attrs[f"MEAN_{number}"].strip(),
                            "sd": attrs[f"SD_{number}"].strip(),
                            "n": attrs[f"TOTAL_{number}"].strip(),
                            "source_location": f"{where} (attributes MEAN_{number}, "
                                               f"SD_{number}, TOTAL_{number})"})
            rows.append(arm_row)
    descriptor = _descriptor(review)
    columns = {r["name"]: [f["name"] for f in r["schema"]["fields"]]
               for r in descriptor["resources"]}

    def frame(records: list[dict[str, str]], name: str) -> pd.DataFrame:
        table = pd.DataFrame(records, columns=columns[name], dtype=object)
        return table.fillna("").astype(str)

    arm_rows = sorted(arms.values(), key=lambda a: (a["study_id"], a["arm_id"]))
    return {"studies": frame(studies, "studies"), "arms": frame(arm_rows, "arms"),
            "outcomes": frame(rows, "outcomes"), "datapackage": descriptor,
            "skipped": pd.DataFrame(skipped, columns=["study_id", "outcome", "source_location",
                                                      "reason"], dtype=object)}


def trials_files(trials: dict[str, Any]) -> dict[str, bytes]:
    """Render :func:`rm5_to_trials`'s tables and descriptor as the files of a trials directory.

    Returns
    -------
    dict of str to bytes
        ``studies.csv``, ``arms.csv``, ``outcomes.csv`` (UTF-8, newline line ends, minimal
        quoting) and ``datapackage.json``; byte-identical for the same input.
    """
    files = {f"{name}.csv": trials[name].to_csv(index=False, lineterminator="\n").encode("utf-8")
             for name in ("studies", "arms", "outcomes")}
    files["datapackage.json"] = (json.dumps(trials["datapackage"], indent=2,
                                            ensure_ascii=False) + "\n").encode("utf-8")
    return files
