"""The font subsets embedded in PDFs leave out the OpenType layout tables no viewer reads.

``analysis.plots.style.lean_pdf_fonts`` (run on import) makes matplotlib's subsetter drop
GSUB/GPOS/GDEF/kern: about half of the time of writing a PDF went into decompiling DejaVu's
kerning tables. The glyphs and metrics embedded stay the same.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager
from matplotlib.backends import _backend_pdf_ps

from analysis.plots import style


def test_embedded_subsets_have_no_layout_tables_but_keep_the_glyphs() -> None:
    path = font_manager.findfont(style.FONT_FAMILY)
    font = font_manager.get_font(path)
    glyphs = {font.get_char_index(ord(c)) for c in "Odds ratio 0.12 [0.03, 1.5]"}
    with _backend_pdf_ps.get_glyphs_subset(font_manager.FontPath(path, 0) if hasattr(
            font_manager, "FontPath") else path, glyphs) as result:
        subset = result[0] if isinstance(result, tuple) else getattr(result, "font", result)
        tables = set(subset.keys())
    assert not tables & set(style.UNUSED_LAYOUT_TABLES)
    assert {"glyf", "hmtx", "cmap", "loca"} <= tables  # the outlines and metrics stay


def test_patch_is_idempotent_and_pdfs_are_written() -> None:
    style.lean_pdf_fonts()
    style.lean_pdf_fonts()
    assert isinstance(_backend_pdf_ps.subset, style._LeanSubset)
    assert not isinstance(_backend_pdf_ps.subset._module, style._LeanSubset)
    from matplotlib.figure import Figure

    with style.rc_context():
        figure = Figure()
        figure.add_subplot().set_title("Risk ratio 0.85 [0.67, 1.08]")
        buffer = io.BytesIO()
        figure.savefig(buffer, **style.savefig_kwargs("pdf"))
    assert buffer.getvalue().startswith(b"%PDF") and b"/FontFile2" in buffer.getvalue()
