"""print(result) gives a readable summary, not a dataclass dump (issue 10, first trap).

Reference numbers: metafor 3.8-1 ``print(rma(yi, vi, data=dat.bcg-escalc-RR))`` and
``confint()``/``predict(transf=exp)`` of the same model, as printed (4 decimals); the fixture
case bcg/RR/REML/z holds the same data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

import analysis as ma

CASES = {c["id"]: c for c in json.loads(
    (Path(__file__).parent / "reference" / "metafor_reference.json").read_text())["cases"]}


def _bcg() -> tuple[list[float], list[float]]:
    case = CASES["bcg/RR/REML/z"]
    return case["input"]["yi"], case["input"]["vi"]


def test_pooled_result_prints_metafor_numbers_on_both_scales() -> None:
    yi, vi = _bcg()
    text = str(ma.pool(yi, vi, measure="RR"))
    assert "dataclass" not in text and "np.float64" not in text
    for piece in ("k = 13", "REML", "tau² = 0.3132 (SE 0.1664; 95% CI 0.1197 to 1.1115)",
                  "I² = 92.22%", "H² = 12.86", "Q(df = 12) = 152.2330, p < 0.0001",
                  "-0.7145 (SE 0.1798), 95% CI -1.0669 to -0.3622",
                  "RR 0.4894 (95% CI 0.3441 to 0.6962)",
                  "95% prediction interval: RR 0.1546 to 1.5490"):
        assert piece in text, (piece, text)


def test_knapp_hartung_and_few_studies_are_named() -> None:
    yi, vi = _bcg()
    text = str(ma.pool(yi[:4], vi[:4], ci="hksj"))
    assert "Knapp-Hartung t test (df = 3)" in text
    assert "t = " in text
    assert "few studies" in text


def test_meta_regression_prints_its_tests_and_coefficients() -> None:
    case = CASES["bcg/RR/metareg/ablat/REML/z"]
    res = ma.meta_regression(case["input"]["yi"], case["input"]["vi"],
                             pd.DataFrame(case["input"]["moderators"]))
    text = str(res)
    assert "QE(df = 11) = 30.7331, p = 0.0012" in text
    assert "intrcpt" in text and "ablat" in text and "-0.0291" in text


def test_subgroups_print_each_group_and_the_test() -> None:
    case = CASES["bcg/RR/metareg/alloc/REML/z"]
    res = ma.subgroup_analysis(case["input"]["yi"], case["input"]["vi"],
                               case["input"]["moderators"]["alloc"])
    text = str(res)
    assert all(g in text for g in ("alternate", "random", "systematic"))
    assert "Test for subgroup differences: Q(df = 2)" in text


def test_batch_and_mantel_haenszel_print() -> None:
    yi, vi = _bcg()
    text = str(ma.pool(np.array([yi, yi]), np.array([vi, vi])))
    assert text.startswith("2 analyses; tau² estimator REML")
    mh = ma.mantel_haenszel([4, 6, 3], [123, 306, 231], [11, 29, 11], [139, 303, 220],
                            measure="OR")
    assert "Mantel-Haenszel" in str(mh) and "OR " in str(mh)


def test_the_measure_travels_from_effect_sizes_to_the_pooled_result() -> None:
    # Trap: effect_sizes()/effect_from_estimate() lost the measure, so pool() recorded None
    # and plots drew log odds ratios on a linear axis.
    es = ma.effect_sizes("OR", events_t=[4, 6, 3], n_t=[123, 306, 231], events_c=[11, 29, 11],
                         n_c=[139, 303, 220])
    assert (es["measure"] == "OR").all()
    assert ma.pool(es).measure == "OR"
    ef = ma.effect_from_estimate([1.5, 0.8], [1.1, 0.5], [2.0, 1.3], measure="HR")
    assert ma.pool(ef).measure == "HR"
    assert "HR " in str(ma.pool(ef))
