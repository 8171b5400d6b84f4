"""PDF font subsets made from a per-file base subset (analysis.plots.font_subsets)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from matplotlib import font_manager
from matplotlib.backends import _backend_pdf_ps
from matplotlib.ft2font import FT2Font

import analysis.plots.style as style
from analysis.plots.font_subsets import BASE_RANGES, _BaseSubsets, _FontBytes, use_base_subsets

patched = _backend_pdf_ps.get_glyphs_subset
pytestmark = pytest.mark.skipif(not isinstance(patched, _BaseSubsets),
                                reason="this matplotlib subsets fonts otherwise")
#: The font file as matplotlib's PDF backend names it (path and face index).
REGULAR = font_manager.FontPath(str(style.FONT_FILES[0]), 0)


def _gids(text: str) -> set[int]:
    charmap = FT2Font(str(REGULAR)).get_charmap()
    return {charmap[ord(c)] for c in text}


def _glyphs(font: Any, index_map: dict[int, int], gids: set[int]) -> dict[int, Any]:
    """Per requested glyph: its outline (compiled), advance width and side bearing."""
    order = font.getGlyphOrder()
    glyf, hmtx = font["glyf"], font["hmtx"]
    out = {}
    for gid in gids:
        name = order[index_map[gid]]
        glyph = glyf[name]
        out[gid] = (glyph.compile(glyf), hmtx[name])
    return out


def test_base_subset_keeps_every_glyph_as_the_whole_file_does() -> None:
    """The same outlines (compiled glyph data, components resolved by name order), widths and
    side bearings, and the same tables, as subsetting the whole font file."""
    text = "Odds ratio (95% CI) τ² = 0.12; I² ≥ 50% – Hartung-Knapp ▲ → ±×√µ"
    gids = _gids(text)
    with patched.original(REGULAR, gids) as whole:
        expected = _glyphs(whole.font, whole.glyph_index_map, gids)
        tables = sorted(whole.font.keys())
    calls: list[Any] = []
    wrapped = _BaseSubsets(lambda f, g: (calls.append(f), patched.original(f, g))[1],
                           _backend_pdf_ps.SubsetResults)
    with wrapped(REGULAR, gids) as subset:
        got = _glyphs(subset.font, subset.glyph_index_map, gids)
        assert sorted(subset.font.keys()) == tables
        assert set(subset.glyph_index_map) >= gids
    assert got == expected
    assert isinstance(calls[-1], _FontBytes)  # made from the base, not the file
    assert [c for c in calls if not isinstance(c, _FontBytes)] == [REGULAR]  # the base, once
    with wrapped(REGULAR, _gids("abc")):
        pass
    assert [c for c in calls if not isinstance(c, _FontBytes)] == [REGULAR]


def test_glyph_outside_the_base_uses_the_whole_file() -> None:
    cyrillic = "Ж"
    assert not any(first <= ord(cyrillic) <= last for first, last in BASE_RANGES)
    gids = _gids("A" + cyrillic)
    calls: list[Any] = []
    wrapped = _BaseSubsets(lambda f, g: (calls.append(f), patched.original(f, g))[1],
                           _backend_pdf_ps.SubsetResults)
    with wrapped(REGULAR, gids) as subset, patched.original(REGULAR, gids) as whole:
        assert _glyphs(subset.font, subset.glyph_index_map, gids) == _glyphs(
            whole.font, whole.glyph_index_map, gids)
    assert calls[-1] == REGULAR


def test_pdf_with_base_subsets_is_deterministic_and_installed_once() -> None:
    from analysis.plots.style import new_axes, savefig_kwargs

    def pdf() -> bytes:
        ax = new_axes(3, 2)
        ax.set_title("Risk ratio τ² ≥ 0.5 → Ж")  # one glyph outside the base
        ax.text(0.1, 0.5, "Abstinence (95% CI)", fontweight="bold")
        buffer = io.BytesIO()
        ax.figure.savefig(buffer, **savefig_kwargs("pdf"))
        return buffer.getvalue()

    first = pdf()
    use_base_subsets()  # a second call changes nothing
    assert _backend_pdf_ps.get_glyphs_subset is patched
    assert pdf() == first
