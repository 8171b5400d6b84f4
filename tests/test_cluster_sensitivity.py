"""Study-level (cluster) leave-one-out and cumulative meta-analysis (issue 12, item 3).

A multi-arm trial contributes several comparisons; ``cluster=`` removes or adds the whole
trial at each step, as metafor's ``leave1out(res, cluster=)`` (metafor >= 4.0) and RevMan.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tolerances import ITERATIVE, ZERO

import analysis as ma

FIXTURE = Path(__file__).parent / "reference" / "cluster_reference.json"
CASES = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]
CI = {"z": "z", "knha": "hksj"}
STATS = ("k", "estimate", "se", "zval", "pvalue", "ci_low", "ci_high", "q", "q_pvalue",
         "tau2", "i2", "h2")
#: Fisher scoring as metafor's own iteration, so each REML refit stops where metafor's does.
FISHER = {"algorithm": "fisher", "maxiter": 10000}


def _control(method: str) -> dict | None:
    return FISHER if method == "REML" else None


def _assert_steps(result: object, expected: dict) -> None:
    frame = result.to_frame()  # type: ignore[attr-defined]
    stat = "tval" if "tval" in frame.columns else "zval"
    assert list(frame["study"]) == expected["study"]
    for name in STATS:
        ours = frame[stat if name == "zval" else name].to_numpy(float)
        np.testing.assert_allclose(ours, np.array(expected[name], dtype=float),
                                   rtol=ITERATIVE, atol=ZERO, err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_cluster_leave_one_out_agrees_with_metafor_refits(case: dict) -> None:
    # Reference: R 4.2.2, metafor 3.8-1, rma() refitted on each subset without one cluster
    # (tests/reference/make_cluster_reference.R; metafor 3.8 has no leave1out(cluster=)).
    # Tolerance ITERATIVE: REML refits stop at each program's own tolerance.
    inp, opt = case["input"], case["options"]
    res = ma.leave_one_out(inp["yi"], inp["vi"], method=opt["method"], ci=CI[opt["test"]],
                           control=_control(opt["method"]), cluster=inp["cluster"])
    _assert_steps(res, case["expected"]["leave_one_out"])
    assert res.cluster == tuple(inp["cluster"])
    assert res.full is not None
    np.testing.assert_allclose(res.full.estimate, case["expected"]["full"]["estimate"],
                               rtol=ITERATIVE)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_cluster_cumulative_agrees_with_metafor_refits(case: dict) -> None:
    # Reference: as above; each step adds every row of the next cluster, clusters ordered by
    # their first row under `order` (stable). Tolerance ITERATIVE as above.
    inp, opt = case["input"], case["options"]
    res = ma.cumulative(inp["yi"], inp["vi"], order=inp["order"], method=opt["method"],
                        ci=CI[opt["test"]], control=_control(opt["method"]),
                        cluster=inp["cluster"])
    _assert_steps(res, case["expected"]["cumulative"])
    ids = list(dict.fromkeys(inp["cluster"]))
    assert [ids[i] for i in res.order] == case["expected"]["cumulative"]["study"]


def _frame(case: dict) -> pd.DataFrame:
    inp = case["input"]
    return pd.DataFrame({"yi": inp["yi"], "vi": inp["vi"], "study_id": inp["cluster"],
                         "label": [f"{c} (arm {i})" for i, c in enumerate(inp["cluster"])]})


def test_cluster_from_fitted_result_and_column_names() -> None:
    # The same refits whether the ids come as an array, a column of the yi/vi frame, or a
    # column of `data` next to a fitted PoolResult (which keeps only row labels).
    case = next(c for c in CASES if c["id"] == "generated_multiarm/DL/knha")
    frame = _frame(case)
    by_array = ma.leave_one_out(frame, method="DL", ci="hksj", cluster=frame["study_id"])
    by_column = ma.leave_one_out(frame, method="DL", ci="hksj", cluster="study_id")
    fit = ma.pool(frame["yi"], frame["vi"], method="DL", ci="hksj", study=frame["label"])
    from_fit = ma.leave_one_out(fit, cluster="study_id", data=frame)
    from_fit_ids = ma.leave_one_out(fit, cluster=frame["study_id"].to_numpy())
    for res in (by_array, by_column, from_fit, from_fit_ids):
        _assert_steps(res, case["expected"]["leave_one_out"])
        assert res.labels == tuple(frame["label"])
    cum = ma.cumulative(fit, order=case["input"]["order"], cluster="study_id", data=frame)
    _assert_steps(cum, case["expected"]["cumulative"])


def test_singleton_clusters_reproduce_row_wise_results() -> None:
    case = CASES[0]
    inp = case["input"]
    rows = ma.leave_one_out(inp["yi"], inp["vi"], method="DL")
    ids = [f"s{i}" for i in range(len(inp["yi"]))]
    clustered = ma.leave_one_out(inp["yi"], inp["vi"], method="DL", cluster=ids)
    assert clustered.study == tuple(ids)
    np.testing.assert_array_equal(rows.estimate, clustered.estimate)
    assert rows.cluster is None
    rows_c = ma.cumulative(inp["yi"], inp["vi"], order=inp["order"], method="DL")
    clustered_c = ma.cumulative(inp["yi"], inp["vi"], order=inp["order"], method="DL",
                                cluster=ids)
    np.testing.assert_array_equal(rows_c.estimate, clustered_c.estimate)
    np.testing.assert_array_equal(rows_c.order, clustered_c.order)


def test_cluster_with_missing_rows() -> None:
    # A cluster whose only row is missing gets a NaN leave-one-out row; missing rows of other
    # clusters are left out of every refit (k counts the comparisons used).
    yi = [0.1, 0.3, np.nan, -0.2, 0.5]
    vi = [0.05, 0.04, 0.06, 0.03, 0.02]
    res = ma.leave_one_out(yi, vi, method="DL", cluster=["a", "a", "b", "c", "c"])
    assert res.study == ("a", "b", "c")
    np.testing.assert_array_equal(res.k[[0, 2]], [2, 2])
    assert np.isnan(res.estimate[1])
    cum = ma.cumulative(yi, vi, method="DL", cluster=["b", "a", "a", "b", "c"])
    assert cum.study == ("b", "a", "c")
    np.testing.assert_array_equal(cum.k, [2, 3, 4])


@pytest.mark.parametrize("func", [ma.leave_one_out, ma.cumulative])
def test_cluster_errors(func: object) -> None:
    yi, vi = [0.1, 0.3, -0.2], [0.05, 0.04, 0.03]
    with pytest.raises(ValueError, match="'cluster' has 2 ids but there are 3 rows"):
        func(yi, vi, cluster=["a", "b"])  # type: ignore[operator]
    with pytest.raises(ValueError, match="'cluster' has missing ids"):
        func(yi, vi, cluster=["a", None, "b"])  # type: ignore[operator]
    with pytest.raises(ValueError, match="no frame to take it from"):
        func(yi, vi, cluster="study_id")  # type: ignore[operator]
    frame = pd.DataFrame({"yi": yi, "vi": vi})
    with pytest.raises(ValueError, match="'study_id' is not a column"):
        func(frame, cluster="study_id")  # type: ignore[operator]
    with pytest.raises(ValueError, match="must be 1-D"):
        func(yi, vi, cluster=[["a", "b", "c"]])  # type: ignore[operator]


def test_leave_one_out_needs_two_clusters() -> None:
    with pytest.raises(ValueError, match="at least 2 studies \\(clusters\\)"):
        ma.leave_one_out([0.1, 0.3, -0.2], [0.05, 0.04, 0.03], cluster=["a", "a", "a"])


def test_report_study_labels() -> None:
    # the report's cluster labels: first_author + year, else the label without " (arm)",
    # else study_id; a label two studies share gets the id appended
    from analysis.report.plan import study_labels

    frame = pd.DataFrame({"study_id": ["a", "b", "b", "c"],
                          "label": ["Smith 2000", "Smith 2000 (low)", "Smith 2000 (high)",
                                    "Jones 2001 (90 mg)"]})
    assert study_labels(frame).tolist() == ["Smith 2000 [a]", "Smith 2000 [b]",
                                            "Smith 2000 [b]", "Jones 2001"]
    frame = frame.assign(first_author=["Ann", "Bo", "Bo", "Cy"], year=[2000, 2001, 2001, 2002])
    assert study_labels(frame).tolist() == ["Ann 2000", "Bo 2001", "Bo 2001", "Cy 2002"]
    assert study_labels(frame[["study_id"]]).tolist() == ["a", "b", "b", "c"]


def test_summary_counts_studies_and_comparisons() -> None:
    import analysis as ma

    yi, vi = [0.1, 0.2, 0.3, -0.1, 0.5], [0.04, 0.05, 0.03, 0.06, 0.05]
    text = ma.leave_one_out(yi, vi, cluster=["a", "a", "b", "c", "d"]).summary()
    assert "All 4 studies (5 comparisons)" in text
    assert "All 5 studies:" in ma.leave_one_out(yi, vi).summary()
