"""The bubble plot in the style of metafor's regplot(): bands, labels, weights, axis.

Reference: ``tests/reference/regplot_reference.json``, written by
``tests/reference/make_regplot_reference.R`` (metafor 3.8-1 ``predict(rma(yi, vi, mods = ~
ablat, data = dat.bcg), newmods = <regplot's 100 xvals>)``, REML, z and Knapp-Hartung).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text
from tolerances import CLOSED_FORM, ITERATIVE

from analysis import plots
from analysis.plots.diagnostics import regplot_bands
from analysis.regression import meta_regression

FIXTURE = Path(__file__).parent / "reference" / "regplot_reference.json"
CASES = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]


def _by_gid(ax: Any, gid: str) -> list[Any]:
    return [a for a in ax.figure.findobj() if getattr(a, "get_gid", None) and a.get_gid() == gid]


def _fit(case: dict[str, Any]) -> tuple[pd.DataFrame, Any]:
    data = pd.DataFrame({"yi": case["input"]["yi"], "vi": case["input"]["vi"],
                         "ablat": case["input"]["ablat"], "measure": "RR"})
    data["label"] = [f"Trial {i + 1}" for i in range(len(data))]
    result = meta_regression(data["yi"].to_numpy(), data["vi"].to_numpy(),
                             data[["ablat"]], method="REML", ci=case["options"]["ci"])
    return data, result


def _band_edges(band: Any, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper y of a fill_between polygon at each of ``xs`` (from its vertices)."""
    vertices = np.concatenate([path.vertices for path in band.get_paths()])
    low, high = np.empty(xs.size), np.empty(xs.size)
    for i, x in enumerate(xs):
        ys = vertices[np.isclose(vertices[:, 0], x, rtol=0, atol=1e-9 * max(1, abs(x))), 1]
        low[i], high[i] = ys.min(), ys.max()
    return low, high


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bands_agree_with_metafor(case: dict[str, Any]) -> None:
    data, result = _fit(case)
    expected = case["expected"]
    np.testing.assert_allclose(float(result.tau2), expected["tau2"], rtol=ITERATIVE)
    bands = regplot_bands(result, expected["x"])
    for column in ("pred", "ci_low", "ci_high", "pi_low", "pi_high"):
        np.testing.assert_allclose(bands[column], expected[column], rtol=ITERATIVE,
                                   err_msg=column)

    ax = plots.bubble_plot(data, result, "ablat")  # the default grid: regplot's xvals
    (line,) = _by_gid(ax, "bubble-line")
    xs = np.asarray(line.get_xdata(), dtype=float)
    np.testing.assert_allclose(xs, expected["x"], rtol=CLOSED_FORM)
    np.testing.assert_allclose(np.log(line.get_ydata()), expected["pred"], rtol=ITERATIVE)
    for kind in ("ci", "pi"):
        (band,) = _by_gid(ax, f"bubble-{kind}-band")
        low, high = _band_edges(band, xs)
        # drawn on the ratio scale (log axis): compare on the log scale, as metafor fits
        np.testing.assert_allclose(np.log(low), expected[f"{kind}_low"], rtol=ITERATIVE)
        np.testing.assert_allclose(np.log(high), expected[f"{kind}_high"], rtol=ITERATIVE)
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "Risk ratio (log scale)"
    assert ax.get_xlabel() == "ablat"


def test_points_labels_weights_and_legend() -> None:
    data, result = _fit(CASES[0])
    ax = plots.bubble_plot(data, result, "ablat", xlabel="Absolute latitude")
    (points,) = _by_gid(ax, "bubble-points")
    weights = 1.0 / (data["vi"].to_numpy() + result.tau2)
    sizes = np.asarray(points.get_sizes(), dtype=float)
    np.testing.assert_allclose(sizes / sizes.max(), weights / weights.max(), rtol=CLOSED_FORM)
    labels = {t.get_text() for t in _by_gid(ax, "bubble-label")}
    assert labels and labels <= set(data["label"])
    assert len(labels) >= len(data) // 2  # most points labelled; none where none fits
    legend = ax.get_legend()
    assert legend is not None
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["Fitted line", "95% PI", "95% CI", "Study, area ∝ 1/(vi + τ²)"]
    # labels do not overlap each other
    ax.figure.draw_without_rendering()
    boxes = [t.get_window_extent() for t in ax.figure.findobj(Text)
             if t.get_gid() == "bubble-label"]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)
    # no labels asked for: none drawn; the bands can be switched off (metafor pi = FALSE)
    bare = plots.bubble_plot(data, result, "ablat", labels=False, pi=False)
    assert not _by_gid(bare, "bubble-label") and not _by_gid(bare, "bubble-pi-band")
    assert _by_gid(bare, "bubble-ci-band")


def test_the_level_of_the_model_names_the_bands() -> None:
    data, _ = _fit(CASES[0])
    result = meta_regression(data["yi"].to_numpy(), data["vi"].to_numpy(), data[["ablat"]],
                             method="REML", level=0.90)
    ax = plots.bubble_plot(data, result, "ablat")
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "90% CI" in texts and "90% PI" in texts
