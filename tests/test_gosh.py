"""Tests of analysis.gosh (metafor gosh.rma), its diagnostics, plot and executors."""

from __future__ import annotations

import json
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tolerances import CLOSED_FORM, CLOSED_FORM_FIXTURE, ITERATIVE, ZERO

import analysis as ma
from analysis.algebra import ScalarIntercept, loglik
from analysis.gosh import CHUNK, CLOSED_FORMS
from analysis.results import GoshResult

REF = Path(__file__).parent / "reference"
#: Copied from ../shared/reference/r_fixtures/influence_gosh_permutest.json (metafor 3.8-1):
#: per case fit_call `res <- rma(yi, vi, data = dat, method = "EE"|"DL")`, then
#: `gosh(res, progbar = FALSE)`.
SHARED = json.loads((REF / "gosh_permutest_reference.json").read_text(encoding="utf-8"))
#: tests/reference/make_gosh_reference.R: `gosh(rma(yi, vi, method = "REML"|"PM"|"ML",
#: control = list(threshold = 1e-12, ...)))`.
LOCAL = json.loads((REF / "gosh_reference.json").read_text(encoding="utf-8"))
METHOD = {"EE": "FE"}
FIELDS = {"estimate": "estimate", "QE": "q", "I2": "i2", "H2": "h2", "tau2": "tau2"}
#: metafor's iteration stops at tau² of about 1e-12 where ours returns 0 exactly: I² (percent)
#: of about 1e-10 then; an absolute floor of 1e-8 percent covers it.
I2_ZERO = 1e-8


def _floats(values: list) -> np.ndarray:
    return np.array([np.nan if x is None else x for x in values], dtype=float)


def _check(res: GoshResult, case: dict, rtol: float,
           rows: np.ndarray | slice = slice(None)) -> None:
    np.testing.assert_array_equal(res.incl, np.array(case["incl"], dtype=bool))
    for theirs, ours in FIELDS.items():
        np.testing.assert_allclose(getattr(res, ours)[rows], _floats(case[theirs])[rows],
                                   rtol=rtol, atol=I2_ZERO if ours == "i2" else ZERO,
                                   err_msg=theirs)


@pytest.mark.parametrize("name", sorted(SHARED["gosh"]))
def test_gosh_agrees_with_metafor_fe_dl(name: str) -> None:
    # Closed forms (FE, DL) on every one of the 255 subsets, in metafor's order.
    case = SHARED["gosh"][name]
    data = SHARED["datasets"][case["dataset"]]["data"]
    res = ma.gosh(data["yi"], data["vi"], method=METHOD.get(case["method"], case["method"]))
    assert res.exact and len(res) == case["n_subsets"]
    np.testing.assert_array_equal(res.k, case["k"])
    _check(res, case, CLOSED_FORM_FIXTURE)


@pytest.mark.parametrize("case", LOCAL["gosh"], ids=[c["id"] for c in LOCAL["gosh"]])
def test_gosh_agrees_with_metafor_iterative(case: dict) -> None:
    # REML, PM, ML: metafor run with threshold 1e-12, so both reach the same root; ITERATIVE.
    # Where metafor's Fisher scoring stops at a lower (restricted) likelihood than the global
    # maximum this engine returns (one ML subset of BCG 1-8: metafor tau² = 0), the test
    # checks that ours is the higher one instead.
    y, v = np.array(case["yi"]), np.array(case["vi"])
    res = ma.gosh(y, v, method=case["method"])
    theirs = _floats(case["tau2"])
    differ = ~np.isclose(res.tau2, theirs, rtol=ITERATIVE, atol=ZERO)
    assert differ.sum() <= 1
    for row in np.flatnonzero(differ):
        d = ScalarIntercept.build(y[res.incl[row]], v[res.incl[row]])
        reml = case["method"] == "REML"
        assert loglik(d, res.tau2[row], reml) > loglik(d, theirs[row], reml) + 1e-3
    _check(res, case, ITERATIVE, ~differ)


def test_gosh_takes_a_fitted_model_and_keeps_its_labels_and_measure() -> None:
    bcg = ma.datasets.load("bcg")
    es = ma.effect_sizes("RR", events_t=bcg["tpos"], n_t=bcg["tpos"] + bcg["tneg"],
                         events_c=bcg["cpos"], n_c=bcg["cpos"] + bcg["cneg"]).iloc[:6]
    fit = ma.pool(es["yi"].to_numpy(), es["vi"].to_numpy(), method="DL", measure="RR",
                  study=[f"s{i}" for i in range(6)])
    res = ma.gosh(fit)
    assert res.method == "DL" and res.measure == "RR" and res.study[0] == "s0"
    # the subset of all studies is the model itself
    full = res.k == 6
    assert res.estimate[full][0] == pytest.approx(fit.estimate, rel=1e-12)
    assert res.tau2[full][0] == pytest.approx(fit.tau2, rel=1e-12)
    frame = res.to_frame(inclusion=True)
    assert list(frame.columns[:6]) == ["k", "q", "i2", "h2", "tau2", "estimate"]
    assert frame["s3"].sum() == 2**5
    text = res.summary()
    assert "Model fits attempted: 63" in text and "all possible subsets" in text


def _pool_subset(y: np.ndarray, v: np.ndarray, method: str) -> dict[str, float]:
    if y.size == 1:
        return {"estimate": float(y[0]), "tau2": 0.0, "q": 0.0, "i2": 0.0, "h2": 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ma.pool(y, v, method=method, tau2_ci=False)
    assert isinstance(fit, ma.PoolResult)
    # metafor's gosh() gives FE and DL subsets the Q-based H² = Q/df (see analysis.gosh)
    h2 = fit.q / fit.q_df if method in ("FE", "DL") else fit.h2
    return {"estimate": fit.estimate, "tau2": fit.tau2, "q": fit.q, "i2": fit.i2, "h2": h2}


def _brute_force(res: GoshResult, y: np.ndarray, v: np.ndarray, method: str,
                 rtol: float = ITERATIVE) -> None:
    for row in range(len(res)):
        m = res.incl[row]
        try:
            want = _pool_subset(y[m], v[m], method)
        except ma.ConvergenceError:  # pool() refuses: the subset is NaN, flagged, not raised
            assert not res.converged[row] and np.isnan(res.estimate[row])
            continue
        assert res.converged[row]
        for name, value in want.items():
            got = getattr(res, name)[row]
            assert got == pytest.approx(value, rel=rtol, abs=1e-9), (row, name)


_data = st.integers(min_value=2, max_value=6).flatmap(lambda k: st.tuples(
    st.lists(st.floats(-3, 3), min_size=k, max_size=k),
    st.lists(st.floats(1e-3, 2), min_size=k, max_size=k),
    st.sampled_from(["FE", "DL", "REML", "PM", "ML", "HE", "SJ", "HS", "EB"]),
    st.sampled_from([1e-4, 1.0, 1e3])))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_data)
def test_gosh_equals_pool_on_every_subset(data: tuple) -> None:
    # Property: every subset's fit is pool() of that subset (the single-fit scalar path), on
    # random data whose spread ranges from tau² = 0 (scale 1e-4) to huge (scale 1e3).
    yi, vi, method, scale = data
    y, v = np.array(yi) * scale, np.array(vi)
    res = ma.gosh(y, v, method=method)
    assert res.exact and len(res) == 2**y.size - 1
    _brute_force(res, y, v, method)


def test_gosh_hard_cases_equal_pool() -> None:
    # identical effects (Q = 0, tau² = 0 everywhere) and one study far away with a tiny
    # variance (I² near 100 %)
    y0 = np.full(5, 0.3)
    v0 = np.array([0.1, 0.2, 0.05, 0.3, 0.1])
    y1 = np.array([0.0, 0.1, -0.1, 0.05, 50.0])
    v1 = np.array([0.1, 0.2, 0.05, 0.3, 1e-6])
    for y, v in ((y0, v0), (y1, v1)):
        for method in ("DL", "REML", "PM"):
            _brute_force(ma.gosh(y, v, method=method), y, v, method)


@pytest.mark.parametrize("method", sorted(CLOSED_FORMS))
def test_gosh_closed_forms_on_subset_sums_equal_pool(method: str) -> None:
    # Every closed-form estimator runs on the subset sums (SubsetRows): each of the 127
    # subsets equals pool() of it, on data with weights spread over 1e4 and effects far
    # from 0 (where a one-pass Q would cancel).
    rng = np.random.default_rng(21)
    v = rng.uniform(0.01, 0.3, 7) * np.exp(rng.normal(0, 2, 7))
    y = 50.0 + rng.normal(0, 0.4, 7) + rng.normal(0, np.sqrt(v))
    # both sides closed forms in double precision: only the summation order differs
    _brute_force(ma.gosh(y, v, method=method), y, v, method, rtol=CLOSED_FORM)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["DL", "REML"])
def test_gosh_equals_pool_on_every_subset_k10(method: str) -> None:
    rng = np.random.default_rng(11)
    y, v = rng.normal(0, 0.6, 10), rng.uniform(0.005, 0.5, 10)
    _brute_force(ma.gosh(y, v, method=method), y, v, method)


def test_random_subsets_are_seeded_non_empty_and_chunk_independent(monkeypatch) -> None:
    rng = np.random.default_rng(2)
    y, v = rng.normal(0, 0.5, 25), rng.uniform(0.01, 0.2, 25)
    a = ma.gosh(y, v, method="DL", subsets=5000, seed=7)
    b = ma.gosh(y, v, method="DL", subsets=5000, seed=7)
    c = ma.gosh(y, v, method="DL", subsets=5000, seed=8)
    assert not a.exact and len(a) == 5000 and a.seed == 7
    np.testing.assert_array_equal(a.incl, b.incl)
    np.testing.assert_array_equal(a.estimate, b.estimate)
    assert not np.array_equal(a.incl, c.incl)
    assert a.k.min() >= 1
    # each study is in about half of the subsets (metafor's Binomial(k, 1/2) sizes)
    assert np.all(np.abs(a.incl.mean(axis=0) - 0.5) < 0.05)
    # subsets of k = 25 drawn at random are refitted exactly like pool() would
    for row in range(0, 5000, 997):
        m = a.incl[row]
        assert a.estimate[row] == pytest.approx(_pool_subset(y[m], v[m], "DL")["estimate"],
                                                rel=1e-10)
    # metafor's rule: all subsets when 2^k - 1 <= subsets
    assert ma.gosh(y[:6], v[:6], method="DL", subsets=63).exact
    assert not ma.gosh(y[:6], v[:6], method="DL", subsets=62, seed=1).exact


def test_gosh_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2 studies"):
        ma.gosh([0.1], [0.1])
    with pytest.raises(ValueError, match="at least 2 studies"), \
            pytest.warns(ma.AnalysisWarning, match="omitted from GOSH: 2"):
        ma.gosh([0.1, np.nan], [0.1, 0.1])
    with pytest.raises(ValueError, match="'subsets'"):
        ma.gosh([0.1, 0.2], [0.1, 0.1], subsets=1)
    with pytest.raises(ValueError, match="'method'"):
        ma.gosh([0.1, 0.2], [0.1, 0.1], method="XX")
    with pytest.raises(ValueError, match="'executor'"):
        ma.gosh([0.1, 0.2], [0.1, 0.1], executor=object())


def _outlier_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    y = np.r_[rng.normal(-0.5, 0.05, 9), 1.5]
    return y, rng.uniform(0.01, 0.05, 10)


def test_diagnostics_name_the_study_that_separates_the_clusters() -> None:
    y, v = _outlier_data()
    res = ma.gosh(y, v, method="DL", study=[f"t{i}" for i in range(10)])
    diag = ma.gosh_diagnostics(res)
    assert diag["separates"].tolist() == [False] * 9 + [True]
    row = diag.iloc[9]
    assert row["study"] == "t9" and row["n_with"] == 2**9 and row["n_without"] == 2**9 - 1
    # shifts from the definition: mean with minus mean without
    has = res.incl[:, 9]
    assert row["estimate_shift"] == pytest.approx(res.estimate[has].mean()
                                                  - res.estimate[~has].mean())
    assert row["i2_median_shift"] == pytest.approx(np.median(res.i2[has])
                                                   - np.median(res.i2[~has]))
    assert row["i2_shift"] > 50
    # homogeneous data: no study separates anything
    rng = np.random.default_rng(9)
    calm = ma.gosh(rng.normal(0, 0.05, 8), np.full(8, 0.05), method="DL")
    assert not ma.gosh_diagnostics(calm)["separates"].any()


def test_same_result_on_process_pool_and_dask() -> None:
    # executor=: identical results (bit for bit) for all subsets and for a seeded sample of
    # several chunks, with a process pool and with a Dask LocalCluster.
    distributed = pytest.importorskip("dask.distributed")
    rng = np.random.default_rng(4)
    y, v = rng.normal(0, 0.5, 30), rng.uniform(0.01, 0.2, 30)
    n = 3 * CHUNK + 17  # several chunks, the last one short
    base = ma.gosh(y, v, method="REML", subsets=n, seed=3)
    exact = ma.gosh(y[:9], v[:9], method="DL")
    with ProcessPoolExecutor(max_workers=2) as pool_ex:
        on_pool = ma.gosh(y, v, method="REML", subsets=n, seed=3, executor=pool_ex)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        on_dask = ma.gosh(y, v, method="REML", subsets=n, seed=3, executor=client)
        exact_dask = ma.gosh(y[:9], v[:9], method="DL", executor=client)
    for other in (on_pool, on_dask):
        np.testing.assert_array_equal(other.incl, base.incl)
        for name in ("estimate", "tau2", "i2", "h2", "q"):
            np.testing.assert_array_equal(getattr(other, name), getattr(base, name))
    np.testing.assert_array_equal(exact_dask.estimate, exact.estimate)


def test_progress_bar_only_when_asked_or_on_a_terminal(capsys) -> None:
    y, v = _outlier_data()
    ma.gosh(np.r_[y, y[:3]], np.r_[v, v[:3]], method="DL", subsets=20000, seed=1)
    assert capsys.readouterr().err == ""  # stderr is not a terminal under pytest
    ma.gosh(np.r_[y, y[:3]], np.r_[v, v[:3]], method="DL", subsets=20000, seed=1,
            progress=True)
    assert "GOSH" in capsys.readouterr().err


def test_gosh_plot_points_hexbin_and_highlight() -> None:
    y, v = _outlier_data()
    res = ma.gosh(y, v, method="DL", study=[f"t{i}" for i in range(10)])
    ax = ma.plots.gosh(res)
    assert ax.get_ylabel() == "I² (%)" and "all 1,023 subsets" in ax.get_title(loc="left")
    points = [col for col in ax.collections if col.get_gid() == "gosh-points-subsets"]
    assert points and points[0].get_offsets().shape[0] == 1023
    ax = ma.plots.gosh(res, study="t9")
    gids = {col.get_gid() for col in ax.collections}
    assert {"gosh-points-with t9", "gosh-points-without t9"} <= gids
    with_t9 = next(col for col in ax.collections if col.get_gid() == "gosh-points-with t9")
    assert with_t9.get_offsets().shape[0] == 512
    ax = ma.plots.gosh(res, study=9, hexbin=True)
    assert any(str(col.get_gid()).startswith("gosh-hexbin") for col in ax.collections)
    with pytest.raises(ValueError, match="not a study"):
        ma.plots.gosh(res, study="nope")
