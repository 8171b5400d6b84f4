"""Tests of analysis.sensitivity.influence (metafor influence.rma.uni) and its plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from tolerances import ITERATIVE, ZERO

import analysis as ma
from analysis import plots
from analysis.results import InfluenceResult

FIXTURE = Path(__file__).parent / "reference" / "influence_reference.json"
CASES = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]
CI = {"z": "z", "knha": "hksj"}
#: metafor column of influence(res)$inf -> our to_frame() column.
COLUMNS = {"rstudent": "rstudent", "dffits": "dffits", "cook.d": "cook_d", "cov.r": "cov_r",
           "tau2.del": "tau2_del", "QE.del": "qe_del", "hat": "hat", "weight": "weight"}


def _fit(case: dict) -> InfluenceResult:
    inp, opt = case["input"], case["options"]
    mods = pd.DataFrame(inp["moderators"]) if "moderators" in inp else None
    # ML/REML: Fisher scoring as metafor's own iteration, so each deletion refit stops where
    # metafor's stops (as in test_sensitivity's leave-one-out comparison).
    con = {"algorithm": "fisher", "maxiter": 10000} if opt["method"] in ("ML", "REML") else None
    return ma.influence(inp["yi"], inp["vi"], mods, method=opt["method"], ci=CI[opt["test"]],
                        control=con, study=inp["study"])


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_influence_agrees_with_metafor(case: dict) -> None:
    # Reference: R 4.2.2, metafor 3.8-1, case["call"] (tests/reference/
    # make_influence_reference.R): every column of $inf and $dfbs, and $is.infl exactly.
    # Tolerance ITERATIVE: everything depends on the refits' tau2 (tight control in R);
    # ZERO as absolute floor for tau2 = 0 (FE, boundary fits) and exact-zero residuals.
    frame = _fit(case).to_frame()
    expected = case["expected"]
    names = dict(COLUMNS)
    names.update({c: c for c in expected if c.startswith("dfbetas_")})
    assert [c for c in frame.columns if c.startswith("dfbetas_")] == [
        f"dfbetas_{c}" for c in case["options"]["coef"]]
    for theirs, ours in names.items():
        np.testing.assert_allclose(frame[ours].to_numpy(), np.asarray(expected[theirs], float),
                                   rtol=ITERATIVE, atol=ZERO, err_msg=f"{case['id']} {ours}")
    assert frame["influential"].tolist() == expected["is.infl"]
    assert frame["study"].tolist() == case["input"]["study"]


def test_frame_columns_and_printout() -> None:
    case = next(c for c in CASES if c["id"] == "bcg~ablat/REML/z")
    result = _fit(case)
    frame = result.to_frame()
    assert list(frame.columns) == ["study", "rstudent", "dffits", "cook_d", "cov_r",
                                   "tau2_del", "qe_del", "hat", "weight", "dfbetas_intrcpt",
                                   "dfbetas_ablat", "influential"]
    assert frame["influential"].dtype == bool
    text = str(result)
    for header in ("rstudent", "dffits", "cook.d", "cov.r", "tau2.del", "QE.del", "hat",
                   "weight", "inf"):
        assert header in text
    assert "Aronson 1948" in text


def test_frame_input_and_default_labels() -> None:
    case = CASES[0]
    y, v = case["input"]["yi"], case["input"]["vi"]
    plain = ma.influence(y, v)
    assert plain.study.tolist() == [str(i + 1) for i in range(len(y))]
    labelled = ma.influence(pd.DataFrame({"yi": y, "vi": v, "study": case["input"]["study"]}))
    assert labelled.study.tolist() == case["input"]["study"]
    np.testing.assert_array_equal(plain.rstudent, labelled.rstudent)


def test_missing_study_gets_a_nan_row() -> None:
    case = CASES[0]
    y = np.array(case["input"]["yi"])
    v = np.array(case["input"]["vi"])
    y_na = y.copy()
    y_na[2] = np.nan
    with_na = ma.influence(y_na, v).to_frame()
    without = ma.influence(np.delete(y, 2), np.delete(v, 2)).to_frame()
    assert with_na.loc[2, ["rstudent", "hat", "weight"]].isna().all()
    assert not with_na.loc[2, "influential"]
    np.testing.assert_allclose(with_na.drop(index=2)["cook_d"].to_numpy(),
                               without["cook_d"].to_numpy(), rtol=1e-12)


def test_bad_input_raises_clear_errors() -> None:
    mods = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"at least 3 studies .* 2 coefficient"):
        ma.influence([0.1, 0.2], [0.01, 0.02], mods)
    with pytest.raises(ValueError, match="at least 2 studies"):
        ma.influence([0.1], [0.01])
    with pytest.raises(ValueError, match="'study' has 1 labels"):
        ma.influence([0.1, 0.2, 0.3], [0.01, 0.02, 0.03], study=["a"])
    with pytest.raises(ValueError, match="'moderators' has 2 rows"):
        ma.influence([0.1, 0.2, 0.3], [0.01, 0.02, 0.03], mods)
    with pytest.raises(ValueError, match="method"):
        ma.influence([0.1, 0.2, 0.3], [0.01, 0.02, 0.03], method="XX")
    with pytest.raises(ValueError, match="non-positive"):
        ma.influence([0.1, 0.2, 0.3], [0.01, 0.0, 0.03])
    with pytest.raises(ValueError, match="'result'"):
        plots.influence(object())  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [2, 13, 60])
def test_plot_renders(k: int) -> None:
    from test_plots import _check_readable

    if k == 13:
        case = CASES[0]
        result = ma.influence(case["input"]["yi"], case["input"]["vi"])
    else:
        rng = np.random.default_rng(k)
        v = rng.uniform(0.01, 0.1, k)
        y = rng.normal(0.2, np.sqrt(v + 0.02))
        y[k // 2] += 1.0
        result = ma.influence(y, v)
    fig = plots.influence(result)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 8
    assert plots.influence is plots.influence_plot
    for field, ax in zip(("rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "qe_del",
                          "hat", "weight"), fig.axes, strict=True):
        (normal,) = [a for a in ax.get_lines() if a.get_gid() == f"influence-{field}"]
        (flagged,) = [a for a in ax.get_lines() if a.get_gid() == f"influence-{field}-flagged"]
        assert len(normal.get_xdata()) + len(flagged.get_xdata()) == k
        assert len(flagged.get_xdata()) == int(result.influential.sum())
    _check_readable(fig.axes[0])
