"""metafor-style calling of meta_regression/pool and the model interface, against metafor.

Reference: ``tests/reference/model_reference.json``, written by
``tests/reference/make_model_reference.R`` (metafor 3.8-1 ``rma(yi, vi | sei, mods = ~ ...,
data = dat)``, ``predict()``, ``confint()``, ``fitstats()``/``logLik()``, ``anova()`` on
BCG (``dat.bcg``, escalc RR) and ``dat.bangertdrowns2004``). The formula strings of the
fixture are given to :func:`analysis.meta_regression` unchanged. Tolerance: ``ITERATIVE``
(everything depends on the iterated tau^2) with the ``ZERO`` floor for values that are 0.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import analysis as ma
from analysis.results import MetaRegressionResult, PoolResult
from tests.tolerances import ITERATIVE, PRINTED_7_SIGNIFICANT, ZERO

REF = json.loads((Path(__file__).parent / "reference" / "model_reference.json").read_text())
FITS = {case["id"]: case for case in REF["fits"]}
TESTS = REF["tests"]


def _frame(name: str) -> pd.DataFrame:
    cols = {key: [np.nan if v is None else v for v in values]
            for key, values in REF["datasets"][name].items()}
    frame = pd.DataFrame(cols)
    frame["sei"] = np.sqrt(frame["vi"])
    return frame


DATA = {name: _frame(name) for name in REF["datasets"]}


def _ci(test: str) -> str:
    return "hksj" if test == "knha" else "z"


def _num(values: Any) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in np.atleast_1d(values)], dtype=float)


def close(actual: Any, expected: Any) -> None:
    actual, expected = np.atleast_1d(np.asarray(actual, dtype=float)), _num(expected)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=ITERATIVE, atol=ZERO, equal_nan=True)


#: Designs without the intercept in their column space: metafor 3.8-1 computes QE from yi
#: centred at its mean (``Ymc`` in rma.uni), not from the model's residuals; this package
#: reports the model's :math:`y^\top P y` (checked by hand below), so QE is not compared.
CENTRED_QE = ("bcg/ablat-1/",)


_CACHE: dict[str, PoolResult | MetaRegressionResult] = {}


def fit(case_id: str) -> PoolResult | MetaRegressionResult:
    """The fixture's model fitted by this package (metafor's call, our spelling)."""
    if case_id not in _CACHE:
        case = FITS[case_id]
        df = DATA[case["dataset"]]
        var = {"sei": "sei"} if case["sei"] else {"vi": "vi"}
        opts = {"method": case["method"], "ci": _ci(case["test"]), "data": df,
                "study": "study", **var}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # omitted studies: tested below
            if case["formula"] is None:
                res = ma.pool("yi", **opts)
            else:
                res = ma.meta_regression("yi", moderators=case["formula"], **opts)
        assert isinstance(res, (PoolResult, MetaRegressionResult))
        _CACHE[case_id] = res
    return _CACHE[case_id]


REGRESSIONS = [c for c in REF["fits"] if c["formula"] is not None]
POOLS = [c for c in REF["fits"] if c["formula"] is None]
WITH_NEWMODS = [c for c in REGRESSIONS if "newmods" in c]
RANDOM = [c for c in REF["fits"] if c["confint"] is not None]


def ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in cases]


# --------------------------------------------------------------------------------------------
# formula moderators, data=, sei=, study=
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", REGRESSIONS, ids=ids(REGRESSIONS))
def test_formula_coefficients_match_metafor(case):
    res = fit(case["id"])
    assert isinstance(res, MetaRegressionResult)
    assert list(res.coef.index) == case["coef_names"]
    assert list(res.X.columns) == case["coef_names"]
    assert res.k == case["k"]
    assert res.study == tuple(case["study"])
    for ours, theirs in (("coef", "coef"), ("se", "se"), ("ci_low", "ci_low"),
                         ("ci_high", "ci_high")):
        close(getattr(res, ours).to_numpy(), case[theirs])
    for name in ("tau2", "qm", "qm_pvalue", "qe"):
        if name == "qe" and case["id"].startswith(CENTRED_QE):
            continue
        close(getattr(res, name), case[name])
    assert list(res.qm_df) == [int(d) for d in case["qm_df"]]


@pytest.mark.parametrize("case", POOLS, ids=ids(POOLS))
def test_pool_by_column_names_matches_metafor(case):
    res = fit(case["id"])
    assert isinstance(res, PoolResult)
    close([res.estimate, res.se, res.ci_low, res.ci_high, res.tau2, res.q],
          [*case["coef"], *case["se"], *case["ci_low"], *case["ci_high"], case["tau2"],
           case["qe"]])


def test_formula_equals_dataframe_moderators():
    df = DATA["bcg"]
    by_formula = fit("bcg/ablat+alloc/REML/z")
    frame = ma.meta_regression(df["yi"].to_numpy(), df["vi"].to_numpy(),
                               moderators=df[["ablat", "alloc"]])
    np.testing.assert_allclose(by_formula.coef.to_numpy(), frame.coef.to_numpy(), rtol=1e-12)
    assert list(frame.coef.index) == ["intrcpt", "ablat", "allocrandom", "allocsystematic"]


def test_c_and_factor_spellings_agree():
    df = DATA["bcg"]
    a = ma.meta_regression("yi", "vi", moderators="~ ablat + C(alloc)", data=df)
    b = fit("bcg/ablat+alloc/REML/z")
    assert list(a.coef.index) == ["intrcpt", "ablat", "C(alloc)random", "C(alloc)systematic"]
    np.testing.assert_allclose(a.coef.to_numpy(), b.coef.to_numpy(), rtol=1e-12)


def test_missing_moderators_omitted_with_a_warning_naming_the_studies():
    df = DATA["bd2004"]
    missing = df.loc[df["length"].isna(), "study"].tolist()
    assert len(missing) == 2
    with pytest.warns(UserWarning, match="2 stud.*omitted.*" + ".*".join(missing)):
        res = ma.meta_regression("yi", "vi", moderators="~ length", data=df, study="study")
    assert res.k == FITS["bd2004/length/REML/z"]["k"]
    assert not set(missing) & set(res.study)


# --------------------------------------------------------------------------------------------
# fitstats(), logLik(), confint(), predict()
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", REF["fits"], ids=ids(REF["fits"]))
def test_fitstats_match_metafor(case):
    res = fit(case["id"])
    expected = case["fitstats"]
    close([res.loglik, res.deviance, res.aic, res.bic, res.aicc],
          [expected[n] for n in ("loglik", "deviance", "aic", "bic", "aicc")])


@pytest.mark.parametrize("case", RANDOM, ids=ids(RANDOM))
def test_confint_random_matches_metafor(case):
    table = fit(case["id"]).confint()
    assert list(table.index) == ["tau2", "tau", "i2", "h2"]
    for column in ("estimate", "ci_low", "ci_high"):
        close(table[column].to_numpy(), case["confint"][column])


@pytest.mark.parametrize("case", REGRESSIONS, ids=ids(REGRESSIONS))
def test_confint_fixed_matches_metafor(case):
    res = fit(case["id"])
    assert isinstance(res, MetaRegressionResult)
    table = res.confint(fixed=True)
    assert list(table.index) == case["coef_names"]
    for column in ("estimate", "ci_low", "ci_high"):
        close(table[column].to_numpy(), case["confint_fixed"][column])


def _check_prediction(frame: pd.DataFrame, expected: dict[str, Any]) -> None:
    assert list(frame.columns) == [c for c in ("pred", "se", "ci_low", "ci_high", "pi_low",
                                               "pi_high") if c in expected]
    for column in frame.columns:
        if column.startswith("pi_") and not expected[column]:
            # metafor gives no PI for FE models; ours is the CI (tau^2 = 0)
            np.testing.assert_array_equal(frame[column], frame[column.replace("pi", "ci")])
            continue
        close(frame[column].to_numpy(), expected[column])


@pytest.mark.parametrize("case", REF["fits"], ids=ids(REF["fits"]))
def test_fitted_values_match_metafor(case):
    res = fit(case["id"])
    frame = res.predict()
    _check_prediction(frame, case["fitted"])
    if isinstance(res, MetaRegressionResult):
        assert list(frame.index) == case["study"]


@pytest.mark.parametrize("case", WITH_NEWMODS + POOLS, ids=ids(WITH_NEWMODS + POOLS))
def test_predict_newmods_and_transf_match_metafor(case):
    res = fit(case["id"])
    if isinstance(res, PoolResult):
        _check_prediction(res.predict(), case["predict"])
        _check_prediction(res.predict(transf=np.exp), case["predict_exp"])
        return
    newmods = np.array(case["newmods"], dtype=float)
    _check_prediction(res.predict(newmods), case["predict"])
    _check_prediction(res.predict(newmods, transf=np.exp), case["predict_exp"])
    if newmods.shape[1] == 1:  # metafor newmods=c(10, 30, 50): a vector for one moderator
        _check_prediction(res.predict(newmods[:, 0]), case["predict"])


RAW_NEWMODS = {
    "bcg/ablat+alloc": {"ablat": [10, 30, 50], "alloc": ["systematic", "random", "alternate"]},
    "bd2004/grade+length": {"grade": [4, 2], "length": [5, 15]},
    "bcg/ablat": {"ablat": [10, 30, 50]},
}


@pytest.mark.parametrize("case", [c for c in WITH_NEWMODS
                                  if c["id"].rsplit("/", 2)[0] in RAW_NEWMODS],
                         ids=lambda c: c["id"])
def test_predict_raw_moderator_values_through_the_formula(case):
    raw = RAW_NEWMODS[case["id"].rsplit("/", 2)[0]]
    res = fit(case["id"])
    _check_prediction(res.predict(pd.DataFrame(raw)), case["predict"])
    _check_prediction(res.predict(raw, transf=np.exp), case["predict_exp"])


def test_predict_raw_values_through_the_dataframe_coding():
    df = DATA["bcg"]
    res = ma.meta_regression(df["yi"].to_numpy(), df["vi"].to_numpy(),
                             moderators=df[["ablat", "alloc"]], method="REML",
                             control={"threshold": 1e-12})
    case = FITS["bcg/ablat+alloc/REML/z"]
    raw = RAW_NEWMODS["bcg/ablat+alloc"]
    _check_prediction(res.predict(pd.DataFrame(raw)), case["predict"])


def test_predict_without_intercept_zeroes_the_intercept_column():
    res = fit("bcg/ablat/REML/z")
    with_int = res.predict([10.0, 30.0])
    without = res.predict([10.0, 30.0], intercept=False)
    np.testing.assert_allclose(with_int["pred"] - without["pred"], res.coef["intrcpt"],
                               rtol=1e-12)


def test_predict_level_changes_the_limits():
    res = fit("bcg/ablat/REML/z")
    wide = res.predict([10.0], level=0.99)
    narrow = res.predict([10.0])
    assert wide["ci_low"].iloc[0] < narrow["ci_low"].iloc[0]


# --------------------------------------------------------------------------------------------
# anova
# --------------------------------------------------------------------------------------------

LRT = [t for t in TESTS if t["type"] == "LRT"]
WALD = [t for t in TESTS if t["type"] == "Wald"]
LINCOMB = [t for t in TESTS if t["type"] == "Wald.L"]


@pytest.mark.parametrize("case", LRT, ids=ids(LRT))
def test_anova_lrt_matches_metafor(case):
    full, reduced = fit(case["full"]), fit(case["reduced"])
    differ = (full.method == "REML" and isinstance(full, MetaRegressionResult)
              and isinstance(reduced, MetaRegressionResult)
              and list(full.coef.index) != list(reduced.coef.index))
    if differ:
        with pytest.warns(UserWarning, match="REML comparisons are not meaningful"):
            out = ma.anova(full, reduced)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = ma.anova(reduced, full)  # either order, as metafor
    table = out.table
    assert list(table["df"]) == [int(d) for d in case["df"]]
    for name in ("loglik", "deviance", "aic", "bic", "aicc", "qe", "tau2"):
        close(table[name].to_numpy(), case[name])
    close([out.statistic, out.pvalue, table["r2"].iloc[1]],
          [case["lrt"], case["pvalue"], case["r2"]])
    assert out.test == "LRT"
    assert "LRT" in str(out)
    assert list(out.to_frame().columns)[-1] == "test"


@pytest.mark.parametrize("case", WALD, ids=ids(WALD))
def test_anova_wald_btt_matches_metafor(case):
    res = fit(case["model"])
    btt = [int(b) for b in case["btt"]]
    out = ma.anova(res, btt=btt)
    close([out.statistic, out.pvalue], [case["qm"], case["pvalue"]])
    assert list(out.df) == [int(d) for d in case["qm_df"]]
    by_name = ma.anova(res, btt=[res.coef.index[b] for b in btt])
    assert by_name.statistic == out.statistic
    assert "Test of moderators" in str(out)


@pytest.mark.parametrize("case", LINCOMB, ids=ids(LINCOMB))
def test_anova_linear_combinations_match_metafor(case):
    res = fit(case["model"])
    out = ma.anova(res, L=np.array(case["L"], dtype=float))
    for name in ("estimate", "se", "zval", "pvalue"):
        close(out.table[name].to_numpy(), case[name])
    close([out.statistic, out.pvalue], [case["qm"], case["qm_pvalue"]])
    if case["qm"] is not None:
        assert list(out.df) == [int(d) for d in case["qm_df"]]
    assert "Hypotheses" in str(out)


def test_anova_default_is_the_models_omnibus_test():
    res = fit("bcg/ablat+alloc/REML/knha")
    assert isinstance(res, MetaRegressionResult)
    out = ma.anova(res)
    assert out.statistic == pytest.approx(res.qm, rel=1e-12)
    assert out.df == res.qm_df


# --------------------------------------------------------------------------------------------
# errors name the argument, the value and what is allowed
# --------------------------------------------------------------------------------------------

BCG = DATA["bcg"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"moderators": "~ ablat"}, r"'moderators' = '~ ablat' is a formula but 'data' is not"),
        ({"moderators": "ablat", "data": BCG}, r"'moderators' = 'ablat' is not allowed.*formula"),
        ({"moderators": "yi ~ ablat", "data": BCG}, r"'yi ~ ablat' is not a one-sided formula"),
        ({"moderators": "~ latitude", "data": BCG},
         r"'~ latitude' could not be evaluated on 'data'.*'ablat'"),
        ({"moderators": "~ ablat", "data": BCG.iloc[:5]}, r"'data' has 5 rows but .* 13"),
    ],
)
def test_formula_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ma.meta_regression(BCG["yi"].to_numpy(), BCG["vi"].to_numpy(), **kwargs)


def test_predict_errors():
    res = fit("bcg/ablat+alloc/REML/z")
    with pytest.raises(ValueError, match=r"'newmods' has shape \(2,\); the model has 3"):
        res.predict([1.0, 2.0])
    with pytest.raises(ValueError, match=r"'newmods' could not be run through the formula"):
        res.predict(pd.DataFrame({"ablat": [10.0]}))
    with pytest.raises(ValueError, match=r"'newmods' could not be run through the formula "
                                         r"'~ ablat \+ factor\(alloc\)'.*blind"):
        res.predict({"ablat": [10.0], "alloc": ["blind"]})
    df = BCG
    frame_fit = ma.meta_regression(df["yi"].to_numpy(), df["vi"].to_numpy(),
                                   moderators=df[["ablat", "alloc"]])
    with pytest.raises(ValueError, match=r"level\(s\) \['blind'\] of moderator 'alloc'"):
        frame_fit.predict({"ablat": [10.0], "alloc": ["blind"]})
    with pytest.raises(ValueError, match=r"'newmods' lacks the moderator\(s\) \['alloc'\]"):
        frame_fit.predict({"ablat": [10.0]})


def test_confint_errors():
    with pytest.raises(ValueError, match=r"method='FE'.*confint\(fixed=True\)"):
        fit("bcg/ablat/FE/z").confint()
    with pytest.raises(ValueError, match=r"method='FE'"):
        fit("bcg/pool/FE/z").confint()
    res = ma.meta_regression("yi", "vi", moderators="~ ablat", data=BCG, tau2_ci=False)
    with pytest.raises(ValueError, match=r"tau2_ci=False.*refit with tau2_ci=True"):
        res.confint()


def test_anova_errors():
    ml = fit("bcg/ablat/ML/z")
    ml_pool = fit("bcg/pool/ML/z")
    reml_pool = fit("bcg/pool/REML/z")
    other = ma.pool("yi", "vi", data=DATA["bd2004"], method="ML")
    with pytest.raises(ValueError, match=r"fitted to different data"):
        ma.anova(ml, other)
    with pytest.raises(ValueError, match=r"method='ML' and the reduced model method='REML'"):
        ma.anova(ml, reml_pool)
    dl = ma.pool("yi", "vi", data=BCG, method="DL")
    with pytest.raises(ValueError, match=r"'model_reduced' was fitted with method='DL'.*"
                                         r"\['FE', 'ML', 'REML'\]"):
        ma.anova(ml, dl)
    with pytest.raises(ValueError, match=r"same number of parameters \(3\)"):
        ma.anova(ml, fit("bcg/ablat/ML/knha"))
    with pytest.raises(ValueError, match=r"'model_full' uses method='FE'.*random-effects"):
        ma.anova(fit("bcg/ablat+alloc/FE/z"), ml_pool)
    with pytest.raises(ValueError, match=r"'btt' and 'L' test one model"):
        ma.anova(ml, ml_pool, btt=[1])
    with pytest.raises(ValueError, match=r"'btt' and 'L' are both given"):
        ma.anova(ml, btt=[1], L=[[0, 1]])
    with pytest.raises(ValueError, match=r"'btt' names the coefficient 'year'.*'ablat'"):
        ma.anova(ml, btt=["year"])
    with pytest.raises(ValueError, match=r"'btt' has the position 5; allowed are 0..1"):
        ma.anova(ml, btt=[5])
    with pytest.raises(ValueError, match=r"'btt' is empty"):
        ma.anova(ml, btt=[])
    with pytest.raises(ValueError, match=r"'L' has 3 column\(s\); the model has 2"):
        ma.anova(ml, L=[[1, 2, 3]])
    with pytest.raises(ValueError, match=r"'model_full' is a str; anova\(\) takes"):
        ma.anova("res")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'model_reduced' is a int"):
        ma.anova(ml, 3)  # type: ignore[arg-type]


def test_no_intercept_qe_is_the_model_residual_sum_of_squares():
    # Reference: R 4.2.2, l <- lm(yi ~ 0 + ablat, weights = 1/vi, data = bcg);
    # sum(resid(l)^2 / bcg$vi) printed 48.70208561 (metafor's QE is 209.6856, from yi
    # centred at its mean; see CENTRED_QE).
    res = fit("bcg/ablat-1/FE/z")
    assert isinstance(res, MetaRegressionResult)
    assert res.qe == pytest.approx(48.70208561, rel=PRINTED_7_SIGNIFICANT)
