"""Network meta-analysis (analysis.network) against netmeta 2.9-0, plus properties and errors.

Reference: ``tests/reference/netmeta.json``, written by ``tests/reference/netmeta_public.R``
(with ``netmeta_lib.R`` and ``common.R``; R 4.2.2, netmeta 2.9-0, meta 7.0-0), copied from the
shared fixture set. R calls, per record ``<dataset>__<sm>__<method.tau>``:

- ``net <- netmeta(TE, seTE, treat1, treat2, studlab, data = Senn2013, sm = "MD",
  common = TRUE, random = TRUE, reference.group = "plac", method.tau = "DL"|"REML")``;
- ``p_smk <- pairwise(list(treat1, treat2, treat3), event = list(event1, event2, event3),
  n = list(n1, n2, n3), data = smokingcessation, sm = "OR")``,
  ``net <- netmeta(p_smk, common = TRUE, random = TRUE, reference.group = "A",
  method.tau = ...)``;
- ``decomp.design(net)``, ``netrank(net, small.values = "desirable"|"undesirable")``,
  ``netsplit(net)``.

Each record is refitted as netmeta fitted it: the call's ``reference.group`` is passed as
``reference``, and the REML multi-arm covariance is ``"implied"`` for ``pairwise()`` input
(netmeta builds it from the arm-level data) and ``"diagonal"`` for ``TE``/``seTE`` input
(netmeta's ``rma.mv`` then gets ``V = seTE^2`` of the contrasts against the reference).

Tolerances: ``CLOSED`` = 1e-10 absolute for closed-form quantities (graph-theoretical
estimates, standard errors, Q and its decomposition, DL tau², P-scores, back-calculated node
splitting; observed agreement ~1e-13); ``ITERATIVE`` = 5e-6 relative for REML tau² and what
follows from it (netmeta's rma.mv stops at its own optimiser tolerance; observed 1.1e-6 on
smokingcessation, 1.5e-9 on Senn2013).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import analysis as ma
from analysis.network import (
    decomp_design,
    league_table,
    netsplit,
    network_meta_analysis,
    network_pairwise,
    p_scores,
)

FIXTURE = json.loads((Path(__file__).parent / "reference" / "netmeta.json").read_text())
RECORDS = FIXTURE["netmeta"]
CLOSED = 1e-10
ITERATIVE = 5e-6


def _arr(values: Any) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _mat(m: dict[str, Any]) -> np.ndarray:
    return np.array([_arr(r) for r in m["values"]])


def _fit(key: str, **kwargs: Any) -> Any:
    r = RECORDS[key]
    inp = r["input"]
    ref = re.search(r'reference\.group = "([^"]+)"', r["call"])
    options: dict[str, Any] = {"reference": ref.group(1) if ref else None,
                               "ml_covariance": "implied" if r["prep_call"] else "diagonal"}
    options.update(kwargs)
    return network_meta_analysis(inp["TE"], inp["seTE"], inp["treat1"], inp["treat2"],
                                 inp["studlab"], method_tau=r["method.tau"], measure=r["sm"],
                                 **options)


def _close(mine: Any, ref: Any, tol: float, rel: bool = False) -> None:
    mine, ref = np.asarray(mine, float), np.asarray(ref, float)
    assert np.array_equal(np.isnan(mine), np.isnan(ref))
    ok = ~np.isnan(ref)
    scale = np.maximum(np.abs(ref[ok]), 1.0) if rel else 1.0
    assert np.max(np.abs(mine[ok] - ref[ok]) / scale, initial=0.0) <= tol


DL = ["Senn2013__MD__DL", "smokingcessation__OR__DL"]
ALL = [*DL, "Senn2013__MD__REML", "smokingcessation__OR__REML"]


@pytest.mark.parametrize("key", ALL)
def test_league_matrices_match_netmeta(key: str) -> None:
    res, r = _fit(key), RECORDS[key]
    assert res.treatments == tuple(r["trts"])
    for model in ("common", "random"):
        tol = CLOSED if model == "common" or key in DL else ITERATIVE
        fit, ref = res.fit(model), r[model]
        for mine, name in ((fit.estimate, "TE"), (fit.se, "seTE"), (fit.ci_low, "lower"),
                           (fit.ci_high, "upper"), (fit.pvalue, "pval"),
                           (fit.direct, "TE.direct"), (fit.direct_se, "seTE.direct")):
            _close(mine, _mat(ref[name]), tol, rel=True)
        np.testing.assert_allclose(1 / np.sqrt(fit.weights),
                                   r["input"][f"seTE.adj.{model}"], rtol=tol)


@pytest.mark.parametrize("key", ALL)
def test_heterogeneity_matches_netmeta(key: str) -> None:
    res, h = _fit(key), RECORDS[key]["heterogeneity"]
    tol = CLOSED if key in DL else ITERATIVE
    assert res.tau2 == pytest.approx(h["tau2"], rel=tol)
    assert res.q == pytest.approx(h["Q"], rel=CLOSED)
    assert res.df == h["df.Q"]
    assert res.pvalue == pytest.approx(h["pval.Q"], rel=1e-8)
    for mine, name in ((res.i2, "I2"), (res.i2_ci_low, "lower.I2"), (res.i2_ci_high, "upper.I2")):
        assert mine / 100 == pytest.approx(h[name], abs=CLOSED)


def test_senn_reml_needs_netmeta_contrast_covariance() -> None:
    # Willms1999 (acar, metf, plac) is the only multi-arm study; its contrast variances are
    # inconsistent, so the two covariances differ (by 1.1% in tau²), and only netmeta's
    # diagonal one with contrasts against plac gives netmeta's value.
    want = RECORDS["Senn2013__MD__REML"]["heterogeneity"]["tau2"]
    implied = _fit("Senn2013__MD__REML", ml_covariance="implied")
    assert implied.tau2 == pytest.approx(want, rel=0.02)
    assert implied.tau2 != pytest.approx(want, rel=1e-3)
    assert "REML, diagonal multi-arm covariance" in str(_fit("Senn2013__MD__REML"))
    # the diagonal covariance depends on the base arm; the implied one does not
    metf = _fit("Senn2013__MD__REML", reference="metf")
    assert metf.tau2 != pytest.approx(want, rel=1e-3)
    assert _fit("Senn2013__MD__REML", ml_covariance="implied", reference="metf").tau2 == \
        pytest.approx(implied.tau2, rel=1e-10)


def test_ml_covariance_does_not_matter_without_multiarm_studies() -> None:
    inp = RECORDS["Senn2013__MD__REML"]["input"]
    two = [i for i, s in enumerate(inp["studlab"]) if s != "Willms1999"]
    args = [[inp[c][i] for i in two] for c in ("TE", "seTE", "treat1", "treat2", "studlab")]
    fits = [network_meta_analysis(*args, method_tau=m, ml_covariance=c, reference=r)
            for m in ("REML", "ML") for c in ("implied", "diagonal") for r in ("plac", "metf")]
    assert fits[0].tau2 > 0
    for m in (0, 4):
        for f in fits[m + 1:m + 4]:
            assert f.tau2 == pytest.approx(fits[m].tau2, rel=1e-10)
    assert fits[4].tau2 < fits[0].tau2
    assert "multi-arm" not in str(fits[0])


def _design_key(design: str) -> str:
    return ":".join(sorted(design.split(":")))


@pytest.mark.parametrize("key", DL)
def test_decomp_design_matches_netmeta(key: str) -> None:
    dd, ref = decomp_design(_fit(key)), RECORDS[key]["decomp_design"]
    _close(dd.q_table["Q"], ref["Q.decomp"]["Q"], CLOSED, rel=True)
    assert dd.q_table["df"].tolist() == ref["Q.decomp"]["df"]
    _close(dd.q_table["pvalue"], ref["Q.decomp"]["pval"], 1e-8, rel=True)
    h = RECORDS[key]["heterogeneity"]
    assert dd.q_table["Q"].iloc[1] == pytest.approx(h["Q.heterogeneity"], rel=CLOSED)
    for mine, name in ((dd.within, "Q.het.design"), (dd.detached, "Q.inc.detach")):
        r = pd.DataFrame(ref[name]).assign(design=lambda f: f["design"].map(_design_key))
        merged = r.merge(mine.assign(design=mine["design"].map(_design_key)), on="design",
                         how="outer", suffixes=("_r", "_m"), validate="one_to_one")
        assert len(merged) == len(r) == len(mine)
        _close(merged["Q_m"], merged["Q_r"], CLOSED, rel=True)
        assert (merged["df_m"] == merged["df_r"]).all()
    rnd = ref["Q.inc.random"]
    assert dd.q_between_random == pytest.approx(rnd["Q"][0], rel=CLOSED)
    assert dd.df_between_random == rnd["df"][0]
    assert dd.tau_within == pytest.approx(rnd["tau.within"][0], rel=CLOSED)


@pytest.mark.parametrize("key", ALL)
def test_p_scores_match_netrank(key: str) -> None:
    r = RECORDS[key]
    ps = p_scores(_fit(key), r["pscores"]["small.values"])
    assert list(ps.treatments) == r["pscores"]["common"]["names"]
    _close(ps.common, r["pscores"]["common"]["values"], CLOSED)
    _close(ps.random, r["pscores"]["random"]["values"], CLOSED if key in DL else ITERATIVE)
    assert ps.to_frame().groupby("model")["rank"].apply(sorted).map(len).tolist() == \
        [len(ps.treatments)] * 2


@pytest.mark.parametrize("key", ALL)
def test_netsplit_matches_netmeta(key: str) -> None:
    split, ref = netsplit(_fit(key)), RECORDS[key]["netsplit"]
    for model in ("common", "random"):
        tol = CLOSED if model == "common" or key in DL else ITERATIVE
        mine = getattr(split, model).set_index("comparison")
        theirs = ref[model]
        assert len(mine) == len(theirs["direct"]["comparison"])
        for i, comp in enumerate(theirs["direct"]["comparison"]):
            t1, t2 = comp.split(":")
            sign = 1.0 if f"{t1}:{t2}" in mine.index else -1.0
            row = mine.loc[f"{t1}:{t2}" if sign > 0 else f"{t2}:{t1}"]
            for col, block, field, signed in (
                    ("direct", "direct", "TE", True), ("direct_se", "direct", "seTE", False),
                    ("indirect", "indirect", "TE", True),
                    ("indirect_se", "indirect", "seTE", False),
                    ("difference", "compare", "TE", True), ("diff_se", "compare", "seTE", False),
                    ("zval", "compare", "z", True), ("pvalue", "compare", "p", False)):
                value = theirs[block][field][i]
                expected = np.nan if value is None else value * (sign if signed else 1.0)
                _close([row[col]], [expected], tol, rel=True)


def _smoking_long() -> pd.DataFrame:
    raw = pd.DataFrame(FIXTURE["datasets"]["smokingcessation"]["data"])
    arms = []
    for s, row in enumerate(raw.itertuples(), start=1):
        for k in (1, 2, 3):
            if getattr(row, f"treat{k}"):
                arms.append({"study": str(s), "treat": getattr(row, f"treat{k}"),
                             "events": getattr(row, f"event{k}"), "n": getattr(row, f"n{k}")})
    return pd.DataFrame(arms)


def test_pairwise_matches_meta_pairwise() -> None:
    pw = network_pairwise(_smoking_long(), studlab="study", treat="treat", events="events",
                          n="n", measure="OR")
    inp = RECORDS["smokingcessation__OR__DL"]["input"]
    assert pw["studlab"].tolist() == inp["studlab"]
    assert pw["treat1"].tolist() == inp["treat1"]
    assert pw["treat2"].tolist() == inp["treat2"]
    np.testing.assert_allclose(pw["TE"], inp["TE"], rtol=1e-12)
    np.testing.assert_allclose(pw["seTE"], inp["seTE"], rtol=1e-12)
    res = ma.network_meta_analysis(data=pw, reference="A")
    assert res.measure == "OR"
    assert res.tau2 == pytest.approx(RECORDS["smokingcessation__OR__DL"]["heterogeneity"]["tau2"],
                                     rel=CLOSED)


def test_pairwise_zero_cell_study_gets_increment_in_every_comparison() -> None:
    arms = pd.DataFrame({"study": ["s"] * 3, "treat": ["A", "B", "C"], "events": [0, 5, 8],
                         "n": [20, 20, 20]})
    pw = network_pairwise(arms, studlab="study", treat="treat", events="events", n="n")
    # B vs C has no zero cell itself, but its study does: 0.5 is added there too
    b_c = pw[(pw.treat1 == "B") & (pw.treat2 == "C")].iloc[0]
    assert b_c["TE"] == pytest.approx(np.log(5.5 / 15.5 / (8.5 / 12.5)), rel=1e-12)


def test_continuous_pairwise_md_and_smd() -> None:
    arms = pd.DataFrame({"study": ["s", "s"], "treat": ["A", "B"], "mean": [1.0, 2.0],
                         "sd": [1.0, 2.0], "n": [10, 20]})
    md = network_pairwise(arms, studlab="study", treat="treat", mean="mean", sd="sd", n="n",
                          measure="MD")
    assert md["TE"].iloc[0] == -1.0
    assert md["seTE"].iloc[0] == pytest.approx(np.sqrt(1 / 10 + 4 / 20))
    smd = network_pairwise(arms, studlab="study", treat="treat", mean="mean", sd="sd", n="n",
                           measure="SMD")
    sp = np.sqrt((9 * 1 + 19 * 4) / 28)
    assert smd["TE"].iloc[0] == pytest.approx(-1 / sp * (1 - 3 / (4 * 30 - 9)))


# --- properties --------------------------------------------------------------------------

@pytest.mark.parametrize("key", DL)
def test_network_estimates_are_consistent(key: str) -> None:
    res = _fit(key)
    for fit in (res.common, res.random):
        e = fit.estimate
        for a, b, c in itertools.permutations(range(len(res.treatments)), 3):
            assert e[a, c] == pytest.approx(e[a, b] + e[b, c], abs=1e-12)


def test_invariant_to_arm_order_row_order_and_reference() -> None:
    key = "smokingcessation__OR__DL"
    inp = RECORDS[key]["input"]
    base = _fit(key)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(inp["TE"]))
    flip = rng.random(len(order)) < 0.5
    te = np.where(flip, -np.asarray(inp["TE"]), inp["TE"])[order]
    t1 = np.where(flip, inp["treat2"], inp["treat1"])[order]
    t2 = np.where(flip, inp["treat1"], inp["treat2"])[order]
    other = network_meta_analysis(te, np.asarray(inp["seTE"])[order], t1, t2,
                                  np.asarray(inp["studlab"])[order], reference="D")
    for model in ("common", "random"):
        np.testing.assert_allclose(other.fit(model).estimate, base.fit(model).estimate,
                                   atol=1e-12)
        np.testing.assert_allclose(other.fit(model).se, base.fit(model).se, atol=1e-12)
    assert other.tau2 == pytest.approx(base.tau2, rel=1e-12)
    assert decomp_design(other).q_table["Q"].tolist() == pytest.approx(
        decomp_design(base).q_table["Q"].tolist(), rel=1e-12)
    vs = other.versus()
    assert vs["reference"].iloc[0] == "D"
    np.testing.assert_allclose(vs["estimate"], base.random.estimate[:, 3], atol=1e-12)


def test_relabelling_treatments_does_not_change_results() -> None:
    key = "Senn2013__MD__DL"
    inp = RECORDS[key]["input"]
    rename = {t: f"z{9 - i}" for i, t in enumerate(RECORDS[key]["trts"])}
    res = network_meta_analysis(inp["TE"], inp["seTE"], [rename[t] for t in inp["treat1"]],
                                [rename[t] for t in inp["treat2"]], inp["studlab"])
    base = _fit(key)
    perm = [res.treatments.index(rename[t]) for t in base.treatments]
    np.testing.assert_allclose(res.random.estimate[np.ix_(perm, perm)], base.random.estimate,
                               atol=1e-12)
    assert res.tau2 == pytest.approx(base.tau2, rel=1e-12)


# --- errors ------------------------------------------------------------------------------

def test_disconnected_network_names_sub_networks() -> None:
    with pytest.raises(ValueError, match=r"2 sub-networks \(sub-network 1: A, B; "
                                         r"sub-network 2: C, D\)"):
        network_meta_analysis([0.1, 0.2], [0.1, 0.1], ["A", "C"], ["B", "D"], ["s1", "s2"])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"sete": [0.1, -1.0, 0.1]}, r"argument 'sete' is not a positive finite number in rows 2"),
    ({"te": [0.1, np.nan, 0.1]}, r"argument 'te' is not finite in rows 2"),
    ({"treat2": ["B", "C", "A"]}, r"treat1 equals treat2 in rows 3"),
    ({"studlab": ["s1", "s2"]}, r"equal lengths; got .*studlab=2"),
    ({"method_tau": "PM"}, r"argument 'method_tau' = 'PM'"),
    ({"ml_covariance": "full"}, r"argument 'ml_covariance' = 'full'"),
])
def test_bad_input_is_named(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"te": [0.1, 0.2, 0.3], "sete": [0.1, 0.1, 0.1],
                            "treat1": ["A", "B", "A"], "treat2": ["B", "C", "C"],
                            "studlab": ["s1", "s2", "s3"]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        network_meta_analysis(**args)


def test_incomplete_multiarm_study_and_missing_column() -> None:
    with pytest.raises(ValueError, match=r"multi-arm study 's1' has arms A, B, C but 2 of the 3"):
        network_meta_analysis([0.1, 0.2], [0.1, 0.1], ["A", "A"], ["B", "C"], ["s1", "s1"])
    frame = pd.DataFrame({"TE": [0.1], "seTE": [0.1], "treat1": ["A"], "treat2": ["B"]})
    with pytest.raises(ValueError, match=r"argument 'studlab' = 'studlab' is not a column"):
        network_meta_analysis(data=frame)
    with pytest.raises(ValueError, match=r"argument 'events' = 'ev' is not a column"):
        network_pairwise(frame, studlab="treat1", treat="treat2", events="ev", n="TE")


# --- presentation ------------------------------------------------------------------------

def test_summary_league_and_frames() -> None:
    res = _fit("smokingcessation__OR__DL")
    text = str(res)
    assert "tau^2 = 0.5989 (DL)" in text and "Q = 202.62, df = 23" in text
    frame = res.to_frame()
    assert len(frame) == 2 * 6 and set(frame["model"]) == {"common", "random"}
    league = league_table(res)
    assert league.loc["A", "A"] == "A"
    lo, hi = res.random.ci_low[2, 0], res.random.ci_high[2, 0]
    assert league.loc["C", "A"] == (f"{np.exp(res.random.estimate[2, 0]):.2f} "
                                    f"({np.exp(lo):.2f}; {np.exp(hi):.2f})")
    assert "Between designs" in str(decomp_design(res))
    assert "P-scores" in str(p_scores(res, "undesirable"))
    assert "back-calculation" in str(netsplit(res))


def test_network_plots_draw() -> None:
    import matplotlib

    matplotlib.use("Agg")
    res = _fit("smokingcessation__OR__DL")
    ax = ma.plots.network_graph(res)
    labels = {t.get_text() for t in ax.texts}
    assert {"A", "B", "C", "D"} <= labels
    assert "15" in labels  # A vs C: 14 two-arm studies + the three-arm A:C:D study
    widths = sorted(line.get_linewidth() for line in ax.lines)
    assert widths[-1] == pytest.approx(6.0)
    ax2 = ma.plots.netsplit_plot(netsplit(res))
    assert len(ax2.get_yticklabels()) == 6


def test_basic_contrasts_refuses_an_unknown_covariance() -> None:
    """The exported ML helpers check ``covariance`` themselves (a typo is not 'implied')."""
    from analysis.network.likelihood import basic_contrasts, ml_tau2

    fit = _fit("Senn2013__MD__REML")
    for call in (basic_contrasts, ml_tau2):
        with pytest.raises(ValueError, match="argument 'covariance' = 'diag' is not allowed"):
            call(fit.data, covariance="diag")  # type: ignore[operator]
