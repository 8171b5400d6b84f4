"""The report page in a real browser: no table cell breaks a word or a number, the page never
overflows horizontally (desktop 1280 px, phone 390 px), and figures show at physical size.

The page has no scripts, so a checking script is injected into a temporary copy; it measures
the laid-out page and posts JSON to a wrapper page, which writes it into an element that
``chromium --dump-dom`` prints. Headless Chromium lays out no window narrower than 500 px
(a 390 px screenshot is a crop of a 500 px layout), so the page is shown in an ``<iframe>``
of exactly the width under test. Screenshots at both widths and a print PDF are written
next to it (kept in pytest's tmp directory for a reader to look at).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.report.plan import read_plan

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: CSS pixels per inch (CSS 2.1: 1in = 96px at any zoom level).
CSS_PX_PER_INCH = 96
#: Rendered widths are compared to the physical width within a pixel (rounding of cm).
PX_TOLERANCE = 1.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install "
                       "chromium; .ci/run installs it)"),
]

# Runs on load in the report's copy, measures, and posts the findings to the wrapper page.
CHECK_SCRIPT = r"""
<script>
window.addEventListener("load", function () {
  function lines(range) {
    var tops = new Set();
    for (const rect of range.getClientRects()) {
      if (rect.width > 0) { tops.add(Math.round(rect.top)); }
    }
    return tops.size;
  }
  function numeric(text) {
    var t = text.trim().replace(/^[A-Z]{2,5} /, "").replace(/\bto\b|\bk=/g, " ");
    return /\d/.test(t) && /^[\d\s.,%()\[\]\/<>≤≥+=\-−–]+$/.test(t);
  }
  var broken = [], numbers = 0, words = 0;
  for (const cell of document.querySelectorAll("td, th")) {
    var walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT), node;
    while ((node = walker.nextNode())) {
      var pattern = /\S+/g, match;
      while ((match = pattern.exec(node.textContent))) {
        var range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        words += 1;
        if (lines(range) > 1) { broken.push({word: match[0], cell: cell.textContent.trim()}); }
      }
    }
    if (cell.tagName === "TD" && numeric(cell.textContent)) {
      var whole = document.createRange();
      whole.selectNodeContents(cell);
      numbers += 1;
      if (lines(whole) > 1) { broken.push({number: cell.textContent.trim()}); }
    }
  }
  var images = [];
  for (const img of document.querySelectorAll("figure img")) {
    images.push({id: img.parentElement.id, width: img.getBoundingClientRect().width});
  }
  var result = {innerWidth: window.innerWidth,
                scrollWidth: document.documentElement.scrollWidth,
                broken: broken, numbers: numbers, words: words, images: images};
  parent.postMessage(JSON.stringify(result), "*");
});
</script>
"""
# Shows a page in a frame WIDTH px wide and writes what the frame posts into <pre>.
WRAPPER = """<!DOCTYPE html>
<html><head><meta charset="utf-8"></head><body style="margin: 0">
<iframe src="{src}" style="border: 0; display: block; width: {width}px; height: {height}px">
</iframe><pre id="layout-check"></pre>
<script>
window.addEventListener("message", function (event) {{
  document.getElementById("layout-check").textContent = event.data;
}});
</script></body></html>
"""
#: Headless Chromium's narrowest window.
MIN_WINDOW = 500


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=180, check=False,
    )


def _png_physical_width_px(png: bytes) -> float:
    """Width in CSS px of a PNG at its recorded density (pHYs, pixels per metre)."""
    (width,) = struct.unpack(">I", png[16:20])
    at = png.index(b"pHYs")
    (per_metre,) = struct.unpack(">I", png[at + 4:at + 8])
    return width / per_metre * 39.37007874015748 * CSS_PX_PER_INCH


@pytest.fixture(scope="module")
def shipped_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the shipped plan and data, built into a temporary directory."""
    out = tmp_path_factory.mktemp("shipped")
    plan_path = REPO / "analysis_plan.toml"
    commands = [["figures", "--plan", str(plan_path), "--analysis", spec.id,
                 "--outdir", str(out / "figures")] for spec in read_plan(plan_path).analyses]
    commands.append(["rob-figures", "--plan", str(plan_path), "--outdir", str(out / "figures")])
    commands.append(["report", "--plan", str(plan_path), "--figures", str(out / "figures"),
                     "--out", str(out / "report.html")])
    for command in commands:
        done = subprocess.run([sys.executable, "-m", "analysis", *command], cwd=REPO,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    return out / "report.html"


def _framed(page: Path, width: int, height: int, tmp_path: Path) -> Path:
    wrapper = tmp_path / f"frame_{page.stem}_{width}.html"
    wrapper.write_text(WRAPPER.format(src=page.as_uri(), width=width, height=height),
                       encoding="utf-8")
    return wrapper


def _layout(report: Path, width: int, tmp_path: Path) -> dict:
    page = report.read_text(encoding="utf-8")
    checked = tmp_path / f"checked_{width}.html"
    checked.write_text(page.replace("</body>", CHECK_SCRIPT + "</body>", 1), encoding="utf-8")
    wrapper = _framed(checked, width, 900, tmp_path)
    done = _chromium(f"--window-size={max(width, MIN_WINDOW)},1000",
                     "--virtual-time-budget=10000", "--dump-dom", wrapper.as_uri(),
                     profile=tmp_path / f"profile_{width}")
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="layout-check">(.+?)</pre>', done.stdout, re.S)
    assert found, "the checking script wrote no result"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&lt;", "<")
                      .replace("&gt;", ">").replace("&amp;", "&"))


@pytest.mark.parametrize("width", [1280, 390])
def test_no_cell_breaks_a_word_or_number_and_no_horizontal_overflow(
    shipped_report: Path, tmp_path: Path, width: int
) -> None:
    screenshot = tmp_path / f"report_{width}.png"
    shot = _chromium(f"--window-size={width},6000", f"--screenshot={screenshot}",
                     _framed(shipped_report, width, 6000, tmp_path).as_uri(),
                     profile=tmp_path / "profile_shot")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 10_000

    layout = _layout(shipped_report, width, tmp_path)
    assert layout["innerWidth"] == width
    assert layout["numbers"] > 100 and layout["words"] > 1000  # the check saw the tables
    assert layout["broken"] == [], layout["broken"][:10]
    assert layout["scrollWidth"] <= layout["innerWidth"], layout


def test_figures_show_at_their_physical_size(shipped_report: Path, tmp_path: Path) -> None:
    layout = _layout(shipped_report, 1280, tmp_path)
    figures = shipped_report.parent / "figures"
    widths = {image["id"]: image["width"] for image in layout["images"]}
    assert any(k.startswith("forest_") for k in widths)
    assert any(k.startswith("funnel_") for k in widths)
    for stem, width in widths.items():
        expected = _png_physical_width_px((figures / f"{stem}.png").read_bytes())
        assert width == pytest.approx(expected, abs=PX_TOLERANCE), stem
    # On a phone no figure is wider than the window.
    phone = _layout(shipped_report, 390, tmp_path)
    assert all(image["width"] <= 390 for image in phone["images"])


def test_report_prints_to_a4_pdf(shipped_report: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    done = _chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                     shipped_report.as_uri(), profile=tmp_path / "profile_pdf")
    assert done.returncode == 0, done.stderr[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    # A4 in points (595 x 842), from the print stylesheet's @page rule.
    boxes = set(re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", data))
    assert boxes and all(abs(float(w) - 595.3) < 1 and abs(float(h) - 841.9) < 1
                         for w, h in boxes), boxes
