"""The report page and the Word tables (issue 12, item 6): templates, table of contents,
numeric columns, figures at physical size, the narrative slots, deterministic .docx.

The layout itself (no word or number broken, no horizontal overflow) is measured in a browser
by tests/test_report_browser.py.
"""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib
from html.parser import HTMLParser
from pathlib import Path

import docx
import pandas as pd
import pytest
from docx.enum.section import WD_ORIENT
from docx.enum.text import WD_ALIGN_PARAGRAPH

from analysis.data import load_trials
from analysis.report import output, render
from analysis.report.html import KEY_FINDINGS, png_width_cm, render_report
from analysis.report.plan import read_plan, run_analysis

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "analysis" / "report" / "templates"


def _png(width: int, height: int, pixels_per_metre: int | None) -> bytes:
    """A white RGB PNG, with a pHYs chunk when a density is given."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    rows = b"".join(b"\0" + b"\xff" * 3 * width for _ in range(height))
    parts = [b"\x89PNG\r\n\x1a\n",
             chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))]
    if pixels_per_metre is not None:
        parts.append(chunk(b"pHYs", struct.pack(">IIB", pixels_per_metre, pixels_per_metre, 1)))
    parts += [chunk(b"IDAT", zlib.compress(rows)), chunk(b"IEND", b"")]
    return b"".join(parts)


DPI_300 = 11811  # pixels per metre that matplotlib records for dpi=300


class _Page(HTMLParser):
    """Collects ids, in-page links, elements and the classes of th/td cells."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.links: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))
        if tag == "a" and attributes.get("href"):
            self.links.append(str(attributes["href"]))


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def shipped() -> tuple:
    plan = read_plan(REPO / "analysis_plan.toml")
    trials = load_trials(plan.trials)
    runs = [run_analysis(trials, spec, plan) for spec in plan.analyses]
    return plan, runs


def _report(shipped: tuple, **kwargs) -> str:
    plan, runs = shipped
    tables = {"demo": ("Demo <table>", pd.DataFrame({
        "study": ["Smith 2001", "Jones-Brown 2003"],
        "effect (95% CI)": ["0.52 [0.31, 0.86]", "1.20 (0.58 to 2.50)"],
        "events": ["12 / 40", "3 / 33"],
        "p": ["0.119", "<0.001"],
    }))}
    figures = {runs[0].spec.id: [("forest_x", "Forest <b>caption</b>", _png(2067, 10, DPI_300)),
                                 ("funnel_x", "Funnel", _png(1004, 10, DPI_300))]}
    return render_report(plan, runs, tables, figures, summary="2 studies",
                         input_hash="0" * 64, versions={"numpy": "1"}, **kwargs)


@pytest.mark.parametrize("text", [
    "12", "-0.31", "−0.31", "<0.001", "76.8", "12 / 40", "645 (5)", "0.34 to 25.89",
    "0.52 [0.31, 0.86]", "2.98 (1.10 to 8.05)", "OR 2.98 (1.10 to 8.05)",
    "4.13 (1.53 to 11.14), k=4", "Q = 0.05, df = 1, p = 0.831", "1e-05",
])
def test_numbers_intervals_counts_and_p_values_are_numeric(text: str) -> None:
    assert render.is_numeric_text(text)


@pytest.mark.parametrize("text", [
    "", "Addolorato 2002", "baclofen30 vs placebo", "12 (follow-up 16)", "double-blind",
    "doi:10.1016/S0140-6736(07)61814-5", "arm-level", "serious (-1): most of the weight",
])
def test_text_is_not_numeric(text: str) -> None:
    assert not render.is_numeric_text(text)


def test_numeric_columns_are_decided_by_their_content() -> None:
    frame = pd.DataFrame({"study": ["A 2001", "B 2002"], "k": [3, 4],
                          "effect": ["0.5 [0.3, 0.9]", ""], "note": ["", "NA"],
                          "mixed": ["0.5", "not pooled: one study"]})
    assert render.numeric_columns(frame) == [False, True, True, False, False]


def test_html_table_right_aligns_numeric_columns_and_keeps_words_whole() -> None:
    frame = pd.DataFrame({"design": ["double-blind placebo-controlled"],
                          "effect (95% CI)": ["2.98 (1.10 to 8.05)"],
                          "mixed": ["0.5"]})
    page = _parse(render.to_html(frame, caption="c"))
    cells = [(tag, attrs.get("class")) for tag, attrs in page.tags if tag in ("th", "td")]
    assert cells == [("th", None), ("th", "num"), ("th", "num"),
                     ("td", None), ("td", "num nw"), ("td", "num nw")]
    fragment = render.to_html(frame)
    assert ('<span class="w">double-blind</span> <span class="w">placebo-controlled</span>'
            in fragment)


def test_stylesheet_never_breaks_inside_words_and_has_print_rules() -> None:
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    table_rules = css[:css.index("figure {")]
    assert "anywhere" not in table_rules and "break-all" not in table_rules
    assert "td.nw, .w { white-space: nowrap; }" in css
    assert "overflow-x: auto" in css
    assert "@media print" in css and "size: A4" in css


def test_page_has_a_table_of_contents_whose_links_all_resolve(shipped: tuple) -> None:
    page = _report(shipped)
    parsed = _parse(page)
    assert len(parsed.ids) == len(set(parsed.ids)), "duplicate ids"
    internal = [link[1:] for link in parsed.links if link.startswith("#")]
    assert set(internal) <= set(parsed.ids)
    _, runs = shipped
    headings = [attrs["id"] for tag, attrs in parsed.tags if tag in ("h2", "h3")]
    assert set(headings) - {"contents"} <= set(internal)  # every section is in the contents
    assert len([h for h in headings if h and h.startswith("analysis-")]) == len(runs)
    assert "table-demo" in internal


def test_page_is_self_contained_and_escaped(shipped: tuple) -> None:
    page = _report(shipped)
    assert "<script" not in page and "<link" not in page
    assert 'src="http' not in page and "url(" not in page
    assert "Forest &lt;b&gt;caption&lt;/b&gt;" in page and "<b>" not in page
    assert "Demo &lt;table&gt;" in page
    assert page == _report(shipped)


def test_figures_are_shown_at_their_physical_width(shipped: tuple) -> None:
    page = _report(shipped)
    assert 'style="width: 17.50cm"' in page  # 2067 px at 300 dpi
    assert 'style="width: 8.50cm"' in page   # 1004 px at 300 dpi
    assert "max-width: 100%" in (TEMPLATES / "report.css").read_text(encoding="utf-8")


def test_png_width_from_density() -> None:
    assert png_width_cm(_png(2067, 2, DPI_300)) == pytest.approx(17.5, abs=0.01)
    assert png_width_cm(_png(100, 2, None)) is None
    with pytest.raises(ValueError, match="not a PNG"):
        png_width_cm(b"GIF89a" + b"\0" * 40)


def test_narrative_fills_key_findings_and_results_escaped(shipped: tuple) -> None:
    _, runs = shipped
    first = runs[0].spec.id
    without = _report(shipped)
    assert "Key findings" not in without and ">Results</h4>" not in without
    page = _report(shipped, narrative={KEY_FINDINGS: ["Baclofen <helps> & more.", "Second."],
                                       first: ["k = 5 trials; OR 2.98."]})
    parsed = _parse(page)
    assert "key-findings" in parsed.ids and f"analysis-{first}-results".replace("_", "-") in (
        parsed.ids)
    assert "<p>Baclofen &lt;helps&gt; &amp; more.</p>" in page and "<p>Second.</p>" in page
    assert "<p>k = 5 trials; OR 2.98.</p>" in page
    # Key findings come before the methods; the results under their analysis.
    assert page.index('id="key-findings"') < page.index('id="methods"')
    assert (page.index(f'id="analysis-{first}"'.replace("_", "-"))
            < page.index("k = 5 trials") < page.index('id="forest_x"'))
    assert "#key-findings" in parsed.links


def test_narrative_with_an_unknown_key_is_refused(shipped: tuple) -> None:
    with pytest.raises(ValueError, match=r"narrative: unknown keys \['no_such_analysis'\]"):
        _report(shipped, narrative={"no_such_analysis": ["x"]})


WIDE = pd.DataFrame({
    "outcome": ["Abstinence (end of treatment)", "Relapse (as each trial defines it)"],
    "measure": ["OR", "RR"], "studies": [5, 1], "comparisons": [5, 2],
    "participants": [645, 151], "effect (95% CI)": ["2.98 (1.10 to 8.05)", "1.05 (0.75 to 1.49)"],
    "prediction interval": ["0.34 to 25.89", "0.75 to 1.49"], "p": ["0.031", "<0.001"],
    "note": ["", "only one study (Beraha2016) at low risk or with some concerns: not pooled"],
})
NARROW = pd.DataFrame({"software": ["numpy", "scipy"], "version": ["1.26.4", "1.11"]})


def test_docx_is_a_real_table_with_caption_header_and_right_aligned_numbers() -> None:
    document = docx.Document(io.BytesIO(render.to_docx(WIDE, caption="Pooled <results>")))
    first = document.paragraphs[0]
    assert first.text == "Pooled <results>" and first.style.name == "Caption"
    (table,) = document.tables
    assert len(table.rows) == 1 + len(WIDE) and len(table.columns) == len(WIDE.columns)
    assert [c.text for c in table.rows[0].cells] == list(WIDE.columns)
    assert table.rows[0].cells[0].paragraphs[0].runs[0].bold
    assert table.rows[0]._tr.xpath("./w:trPr/w:tblHeader")  # header repeats on each page
    row = table.rows[1].cells
    assert row[5].text == "2.98\u00a0(1.10\u00a0to\u00a08.05)"  # never wraps inside
    assert row[2].paragraphs[0].alignment == WD_ALIGN_PARAGRAPH.RIGHT
    assert row[5].paragraphs[0].alignment == WD_ALIGN_PARAGRAPH.RIGHT
    assert row[0].paragraphs[0].alignment is None
    assert document.sections[0].orientation == WD_ORIENT.LANDSCAPE
    assert document.sections[0].page_width > document.sections[0].page_height
    narrow = docx.Document(io.BytesIO(render.to_docx(NARROW, caption="Versions")))
    assert narrow.sections[0].orientation == WD_ORIENT.PORTRAIT
    assert round(narrow.sections[0].page_width.cm, 1) == 21.0  # A4


def test_docx_bytes_do_not_depend_on_the_clock() -> None:
    first = render.to_docx(WIDE, caption="c")
    time.sleep(2.1)  # zip times have a resolution of two seconds
    assert render.to_docx(WIDE, caption="c") == first
    archive = zipfile.ZipFile(io.BytesIO(first))
    assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    names = archive.namelist()
    assert names[0] == "[Content_Types].xml" and names[1:] == sorted(names[1:])
    assert "docProps/thumbnail.jpeg" not in names
    core = docx.Document(io.BytesIO(first)).core_properties
    assert core.created.year == 2000 and core.modified.year == 2000
    assert "python-docx" not in archive.read("docProps/core.xml").decode()


def test_write_table_writes_docx(tmp_path: Path) -> None:
    written = output.write_table(WIDE, tmp_path / "pooled", caption="c",
                                 formats=output.TABLE_FORMATS)
    assert [p.name for p in written] == [f"pooled.{f}" for f in
                                         ("csv", "md", "tex", "html", "docx")]
    assert docx.Document(str(tmp_path / "pooled.docx")).tables
    with pytest.raises(ValueError, match="formats"):
        output.write_table(WIDE, tmp_path / "x", caption="c", formats=("pdf",))


def test_methods_name_the_further_analyses_exactly_when_planned() -> None:
    # the methods paragraph named none of the GOSH, small-study, Bayesian, TSA and
    # multiverse analyses the report shows
    from dataclasses import replace

    from analysis.report.html import methods_text
    from analysis.report.plan import read_plan

    plan = read_plan(Path(__file__).parents[1] / "analysis_plan.toml")
    text = methods_text(plan)
    for phrase in ("GOSH plots", "Egger's regression", "Bayesian random-effects",
                   "half-normal(0.5) prior for tau", "Turner et al. 2015",
                   "Trial sequential analysis", "O'Brien-Fleming", "specification curve"):
        assert phrase in text
    bare = replace(plan, gosh=False, bayes_analyses=(), tsa_analyses=(), multiverse=())
    for phrase in ("GOSH", "Bayesian", "Trial sequential", "specification curve"):
        assert phrase not in methods_text(bare)
