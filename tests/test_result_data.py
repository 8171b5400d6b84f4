"""Results keep the data they were fitted to, and metafor-style calling of pool/MH/Peto.

Reference values: ``tests/reference/result_data_reference.json`` from the committed script
``tests/reference/make_result_data_reference.R`` (metafor 3.8-1: ``rma.mh``/``rma.peto``
``$yi``/``$vi``, ``escalc("PETO")``, ``rma(yi, sei=, data=, slab=)``).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis as ma
from tests.tolerances import CLOSED_FORM_FIXTURE, ITERATIVE

REF = json.loads((Path(__file__).parent / "reference" / "result_data_reference.json")
                 .read_text(encoding="utf-8"))
CASES = {case["id"]: case for case in REF["cases"]}


def _arr(values):
    return np.array([np.nan if x is None else x for x in values], dtype=float)


def _counts(case):
    inp = case["input"]
    return dict(events_t=inp["ai"], n_t=inp["n1i"], events_c=inp["ci"], n_c=inp["n2i"])


@pytest.mark.parametrize("case_id", [c for c in CASES if "/mh/" in c])
def test_mantel_haenszel_keeps_metafors_per_study_data(case_id):
    case = CASES[case_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ma.mantel_haenszel(**_counts(case), measure=case_id.rsplit("/", 1)[1])
    np.testing.assert_allclose(res.yi, _arr(case["expected"]["yi"]), rtol=CLOSED_FORM_FIXTURE)
    np.testing.assert_allclose(res.vi, _arr(case["expected"]["vi"]), rtol=CLOSED_FORM_FIXTURE)
    assert res.study == tuple(str(i + 1) for i in range(len(case["input"]["ai"])))


@pytest.mark.parametrize("case_id", [c for c in CASES if c.endswith("/peto")])
def test_peto_keeps_metafors_per_study_data(case_id):
    case = CASES[case_id]
    res = ma.peto(**_counts(case))
    np.testing.assert_allclose(res.yi, _arr(case["expected"]["yi"]), rtol=CLOSED_FORM_FIXTURE)
    np.testing.assert_allclose(res.vi, _arr(case["expected"]["vi"]), rtol=CLOSED_FORM_FIXTURE)
    np.testing.assert_allclose(res.estimate, case["expected"]["beta"], rtol=CLOSED_FORM_FIXTURE)


@pytest.mark.parametrize("case_id", [c for c in CASES if "/escalc/PETO/" in c])
def test_escalc_peto(case_id):
    case = CASES[case_id]
    es = ma.effect_sizes("PETO", **_counts(case), drop00=case_id.endswith("TRUE"))
    np.testing.assert_allclose(es["yi"], _arr(case["expected"]["yi"]), rtol=CLOSED_FORM_FIXTURE)
    np.testing.assert_allclose(es["vi"], _arr(case["expected"]["vi"]), rtol=CLOSED_FORM_FIXTURE)
    assert set(es["measure"]) == {"PETO"}


@pytest.mark.parametrize("test", ["z", "knha"])
def test_pool_with_data_sei_and_study_columns(test):
    case = CASES[f"bcg/rma/sei/{test}"]
    frame = pd.DataFrame(case["input"])
    res = ma.pool("yi", sei="sei", data=frame, study="label",
                  ci="hksj" if test == "knha" else "z")
    exp = case["expected"]
    for field in ("estimate", "se", "tau2", "ci_low", "ci_high"):
        np.testing.assert_allclose(getattr(res, field), exp[field], rtol=ITERATIVE)
    assert res.study == tuple(exp["slab"])
    np.testing.assert_allclose(res.vi, frame["sei"] ** 2)
    np.testing.assert_array_equal(res.yi, frame["yi"])


def test_pool_keeps_data_and_default_labels():
    yi, vi = [0.1, np.nan, 0.3, 0.5], [0.01, 0.02, 0.03, 0.04]
    with pytest.warns(ma.AnalysisWarning,
                      match=r"1 study with missing yi or vi omitted.*: 2$"):
        res = ma.pool(yi, vi)
    assert res.study == ("1", "2", "3", "4")
    np.testing.assert_array_equal(res.yi, yi)
    assert res.k == 3
    frame = pd.DataFrame({"yi": yi, "vi": vi, "study": ["A", "B", "C", "D"]})
    with pytest.warns(ma.AnalysisWarning, match=r"omitted from pooling: B$"):
        res = ma.pool(frame)
    assert res.study == ("A", "B", "C", "D")
    assert "yi" not in res.to_frame().columns and "study" not in res.to_frame().columns


def test_pool_measure_from_data_frame():
    es = ma.effect_sizes("OR", events_t=[3, 5, 8], n_t=[20, 20, 30], events_c=[6, 9, 12],
                         n_c=[20, 21, 30])
    assert ma.pool("yi", "vi", data=es).measure == "OR"


def test_mh_and_peto_read_columns_and_labels():
    frame = pd.DataFrame({"a": [1, 0, 5, np.nan], "n1": [20, 15, 30, 9], "c": [4, 3, 5, 2],
                          "n2": [20, 16, 30, 9], "trial": ["T1", "T2", "T3", "T4"]})
    with pytest.warns(ma.AnalysisWarning, match=r"omitted from the Peto analysis: T4$"):
        res = ma.peto("a", "n1", "c", "n2", data=frame, study="trial")
    assert res.study == ("T1", "T2", "T3", "T4") and np.isnan(res.yi[3]) and res.k == 3
    with pytest.warns(ma.AnalysisWarning, match=r"Mantel-Haenszel.*: T4$"):
        mh = ma.mantel_haenszel("a", "n1", "c", "n2", data=frame, study="trial")
    np.testing.assert_allclose(mh.estimate, ma.mantel_haenszel(
        [1, 0, 5], [20, 15, 30], [4, 3, 5], [20, 16, 30]).estimate)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(yi="yi", vi="vi"), r"argument 'yi' = 'yi' is a column name but 'data' is not given"),
    (dict(yi="y", vi="vi", data=pd.DataFrame({"yi": [1.0], "vi": [1.0]})),
     r"argument 'yi' = 'y' is not a column of 'data'; its columns are 'yi', 'vi'"),
    (dict(yi=[0.1, 0.2], vi=[0.1, 0.1], sei=[0.3, 0.3]),
     r"arguments 'vi' and 'sei' are both given"),
    (dict(yi=[0.1, 0.2], sei=[0.3, -0.3]), r"argument 'sei' has negative value\(s\) \[-0.3\]"),
    (dict(yi=[0.1, 0.2], vi=[0.1, 0.1], study=["a"]),
     r"argument 'study' has 1 labels but there are 2 studies"),
    (dict(yi=[0.1, 0.2], vi=[0.1, 0.1], data={"yi": [1]}),
     r"argument 'data' is a dict; use a pandas DataFrame"),
])
def test_calling_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ma.pool(**kwargs)
