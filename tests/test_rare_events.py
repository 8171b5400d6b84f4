"""The summary of findings' rare-events model (issue 16, item 2, last sentence).

An [[analysis]] with ``rare_events = "CM.EL"`` (or ``"UM.FS"``) and a zero cell in its 2x2
tables is also fitted with :func:`analysis.glmm.glmm_or`; the summary-of-findings cell shows
that OR beside the main effect, with a footnote naming the model, and the narrative says it.
The fits are checked against metafor's ``rma.glmm(measure = "OR", method = "ML")`` on exactly
the tables the pipeline fitted (``tests/reference/make_rare_events_reference.R``), and so are
the cases where metafor, too, cannot fit (k = 0, one informative study, no finite maximum).
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rare_events_project import COMBINED_TABLES, make_project
from tolerances import ITERATIVE

from analysis import load_trials
from analysis.errors import ConvergenceError
from analysis.report import narrative, rare_events, tables
from analysis.report.plan import AnalysisSpec, PlanError, read_plan, run_analysis

REPO = Path(__file__).resolve().parent.parent
FIXTURE = json.loads((Path(__file__).parent / "reference" / "rare_events_reference.json")
                     .read_text(encoding="utf-8"))
CASES = {case["id"]: case for case in FIXTURE["cases"]}
#: UM.FS ML: lme4's optimiser stops short of the maximum on sparse data (tests/test_glmm.py's
#: UM_ML_ATOL); the estimates agree to 1e-4 on the log OR, far below the 2 decimals shown.
UM_ML_ATOL = 1e-4
#: metafor's CM.EL SE comes from numDeriv's Hessian of BiasedUrn's pmf inside integrate():
#: about 1e-4 relative from ours here (ours is stable to 1e-7 over step sizes 1e-2 to 3e-4),
#: tests/test_glmm.py's CM_SE_RTOL. Enough to move the upper limit's second decimal
#: (metafor 16.2146, ours 16.219: shown 16.22).
CM_SE_RTOL = 1e-3
#: The summary of findings shows ORs to 2 decimals.
HALF_UNIT = 0.005
EFFECT = "relative effect (95% CI)"


def _runs(tmp_path: Path, **options: str) -> dict[str, object]:
    plan = read_plan(make_project(tmp_path, **options))
    trials = load_trials(plan.trials)
    return {"plan": plan, **{spec.id: run_analysis(trials, spec, plan)
                             for spec in plan.analyses}}


def _tables_of(case: dict) -> list[tuple[str, float, float, float, float]]:
    i = case["input"]
    return list(zip(i["study"], i["ai"], i["bi"], i["ci"], i["di"], strict=True))


def _shown_or(cell: str) -> tuple[float, float, float]:
    """The rare-events OR and its limits as a summary-of-findings cell shows them."""
    match = re.search(r"; OR ([0-9.]+) \(([0-9.]+) to ([0-9.]+)\) \[a\]$", cell)
    assert match, cell
    return float(match[1]), float(match[2]), float(match[3])


def test_fixture_holds_the_project_tables() -> None:
    for model in ("CM.EL", "UM.FS"):
        case = CASES[f"synthetic_{model}"]
        assert [(s.replace(" ", ""), *x) for s, *x in _tables_of(case)] == [
            tuple(row) for row in COMBINED_TABLES]


@pytest.mark.parametrize("model", ["CM.EL", "UM.FS"])
def test_sof_cell_is_metafors_rare_events_or(tmp_path: Path, model: str) -> None:
    runs = _runs(tmp_path, rare=f'rare_events = "{model}"')
    run = runs["harm"]
    case = CASES[f"synthetic_{model}"]
    fit = run.rare_events
    assert fit is not None and fit.result is not None and fit.model == model
    # exactly the tables metafor was given (Beta2005's dose arms combined, the double zero kept)
    got = list(fit.tables.itertuples(index=False, name=None))
    assert got == _tables_of(case)
    expected = case["expected"]
    assert fit.result.k == expected["k"] == 3
    # log-scale tolerance of the limits: CM.EL's SE differs by metafor's numerical Hessian
    # (CM_SE_RTOL), UM.FS's estimates by lme4's early stop (UM_ML_ATOL)
    z = 1.959963984540054
    log_tol = (z * expected["se"] * CM_SE_RTOL + ITERATIVE if model == "CM.EL"
               else UM_ML_ATOL * (1 + z))
    assert fit.result.estimate == pytest.approx(expected["estimate"], abs=ITERATIVE
                                                if model == "CM.EL" else UM_ML_ATOL)
    assert fit.result.ci_low == pytest.approx(expected["ci_lb"], abs=log_tol)
    assert fit.result.ci_high == pytest.approx(expected["ci_ub"], abs=log_tol)
    sof = tables.summary_of_findings([run], pd.DataFrame())
    main = run.result
    assert main is not None
    cell = sof[EFFECT].iloc[0]
    rr = "RR " + tables.format_effect(main.estimate, main.ci_low, main.ci_high, "RR")
    assert cell.startswith(f"{rr}; OR ") and cell.endswith(" [a]")
    # the numbers shown are metafor's, to half a unit of the 2 decimals shown (plus the
    # log-scale tolerance carried to the OR scale)
    for shown, reference in zip(_shown_or(cell), (expected["OR"], expected["OR_lb"],
                                                  expected["OR_ub"]), strict=True):
        assert abs(shown - reference) <= HALF_UNIT + reference * np.expm1(log_tol)
    comments = sof["comments"].iloc[0]
    footnote = comments[comments.index("[a] "):]
    name = ("conditional logistic regression (non-central hypergeometric, exact likelihood)"
            if model == "CM.EL" else "binomial-normal model")
    assert name in footnote and "no continuity correction" in footnote
    assert "3 studies, 1 double-zero study (Gamma 2012) excluded because it carries no " \
        "information about the OR" in footnote
    assert "sensitivity check on a different scale" in footnote
    # the narrative paragraph of the analysis says the same, with the tables' formatter
    text = " ".join(narrative.analysis_paragraphs(run, runs["plan"]))
    assert cell.split("; ")[1].removesuffix(" [a]") in text and footnote[4:] in text


def test_or_analysis_has_no_scale_caveat_and_no_zero_cells_no_model(tmp_path: Path) -> None:
    runs = _runs(tmp_path, measure="OR")
    harm, abstinence = runs["harm"], runs["abstinence"]
    footnote = tables.rare_events_footnote(harm)
    assert footnote.startswith("Rare-events model CM.EL: conditional logistic")
    assert "different scale" not in footnote
    # abstinence asks for the model too, but none of its tables has a zero cell
    assert abstinence.rare_events is None
    sof = tables.summary_of_findings([harm, abstinence], pd.DataFrame())
    assert _shown_or(sof[EFFECT].iloc[0])[0] == round(CASES["synthetic_CM.EL"]["expected"]
                                                      ["OR"], 2)
    assert "[a]" not in sof[EFFECT].iloc[1] + sof["comments"].iloc[1]


def test_without_the_key_nothing_changes(tmp_path: Path) -> None:
    runs = _runs(tmp_path, rare="")
    assert runs["harm"].rare_events is None
    sof = tables.summary_of_findings([runs["harm"]], pd.DataFrame())
    assert "[a]" not in sof[EFFECT].iloc[0] and "OR" not in sof[EFFECT].iloc[0]


def test_run_with_the_fit_pickles(tmp_path: Path) -> None:
    run = _runs(tmp_path)["harm"]
    again = pickle.loads(pickle.dumps(run))
    assert again.rare_events.result.estimate == run.rare_events.result.estimate
    assert tables.rare_events_footnote(again) == tables.rare_events_footnote(run)


@pytest.mark.parametrize("ident", ["dropout_adverse_event", "any_adverse_event"])
def test_shipped_harms_are_double_zero_as_metafor_finds(ident: str) -> None:
    plan = read_plan(REPO / "analysis_plan.toml")
    spec = plan.analysis(ident)
    assert spec.rare_events == "CM.EL"
    run = run_analysis(load_trials(plan.trials), spec, plan)
    case = CASES[f"shipped_{ident}"]
    assert "k = 0" in case["expected"]["error"]  # metafor stops too
    fit = run.rare_events
    assert fit is not None and fit.result is None
    assert list(fit.tables.itertuples(index=False, name=None)) == _tables_of(case)
    assert fit.note.endswith("has no events in either arm (double zero), which carries no "
                             "information about the OR")
    sof = tables.summary_of_findings([run], pd.DataFrame())
    assert sof[EFFECT].iloc[0] == "not estimable [a]"
    assert sof["comments"].iloc[0].endswith(f"[a] Rare-events model CM.EL {fit.note}.")
    assert f"Rare-events model CM.EL {fit.note}." in narrative.analysis_paragraphs(run, plan)


def _contrasts(case: dict) -> pd.DataFrame:
    """Comparisons as analysis.contrasts gives them, from a fixture case's tables."""
    i = case["input"]
    a, b, c, d = (np.asarray(i[x], float) for x in ("ai", "bi", "ci", "di"))
    return pd.DataFrame({"study_id": i["study"], "label": i["study"], "events_t": a,
                         "n_t": a + b, "events_c": c, "n_c": c + d,
                         "from_reported_estimate": False})


SPEC = AnalysisSpec("harm", "harm", "RR", "Harm", ("a", "b"), rare_events="CM.EL")


class _Plan:
    level = 0.95


@pytest.mark.parametrize(("ident", "says"), [
    ("one_study", "1 informative study after excluding double-zero studies"),
    ("separated", "the OR has no finite estimate (it is 0)"),
])
def test_not_fitted_where_metafor_cannot_fit(ident: str, says: str) -> None:
    case = CASES[ident]
    assert case["expected"]["error"]  # metafor stops on these tables too
    fit = rare_events.fit_rare_events(_contrasts(case), SPEC, _Plan())  # type: ignore[arg-type]
    assert fit is not None and fit.result is None
    assert fit.note.startswith("not fitted: ") and says in fit.note


@pytest.mark.parametrize("failure", ["raise", "nan"])
def test_non_convergence_is_a_note_not_a_crash(monkeypatch, failure: str) -> None:
    case = CASES["synthetic_CM.EL"]
    real = rare_events.glmm_or

    def broken(*args, **kwargs):
        if failure == "raise":
            raise ConvergenceError("optimiser stopped after 4000 iterations")
        result = real(*args, **kwargs)
        return type(result)(**{**{f: getattr(result, f) for f in result.__slots__},
                               "se": float("nan")})

    monkeypatch.setattr(rare_events, "glmm_or", broken)
    fit = rare_events.fit_rare_events(_contrasts(case), SPEC, _Plan())  # type: ignore[arg-type]
    assert fit is not None and fit.result is None
    assert fit.note.startswith("not fitted: the CM.EL model did not converge (")
    if failure == "raise":
        assert "optimiser stopped after 4000 iterations" in fit.note


def test_counts_that_are_not_whole_are_said_and_data_errors_are_not_convergence(
        monkeypatch) -> None:
    """Split or derived counts (e.g. 8.5 events) cannot enter the model: the note names the
    studies; an input error of glmm_or is worded as such, not as non-convergence."""
    case = CASES["synthetic_CM.EL"]
    data = _contrasts(case)
    data.loc[0, "events_c"] = data.loc[0, "events_c"] + 0.5
    fit = rare_events.fit_rare_events(data, SPEC, _Plan())  # type: ignore[arg-type]
    assert fit is not None and fit.result is None
    assert fit.note == ("not fitted: the model needs whole counts; not whole in "
                        f"{data.loc[0, 'label']}")

    def refuses(*args, **kwargs):
        raise ValueError("argument 'ai' must hold non-negative whole counts; got [-1.0]")

    monkeypatch.setattr(rare_events, "glmm_or", refuses)
    fit = rare_events.fit_rare_events(_contrasts(case), SPEC, _Plan())  # type: ignore[arg-type]
    assert fit is not None and fit.note.startswith(
        "not fitted: the CM.EL model cannot use these counts (argument 'ai'")


def test_published_estimates_without_counts_are_left_out_and_said() -> None:
    data = _contrasts(CASES["synthetic_CM.EL"])
    extra = data.iloc[:1].assign(study_id="Eps", label="Eps", events_t=np.nan,
                                 events_c=np.nan, from_reported_estimate=True)
    fit = rare_events.fit_rare_events(pd.concat([data, extra], ignore_index=True), SPEC,
                                      _Plan())  # type: ignore[arg-type]
    assert fit is not None and fit.without_counts == 1 and fit.result is not None
    assert fit.result.estimate == pytest.approx(
        CASES["synthetic_CM.EL"]["expected"]["estimate"], abs=ITERATIVE)


@pytest.mark.parametrize(("line", "measure", "says"), [
    ('rare_events = "Peto"', "RR", 'rare_events = "Peto": must be one of "CM.EL", "UM.FS"'),
    ("rare_events = true", "RR", "rare_events = true: must be a string"),
    ('rare_events = "CM.EL"', "MD", 'rare_events = "CM.EL": needs a binary measure (OR, RR, '
                                    'RD) for 2x2 counts; this analysis has measure = "MD"'),
])
def test_plan_key_is_validated(tmp_path: Path, line: str, measure: str, says: str) -> None:
    with pytest.raises(PlanError) as caught:
        read_plan(make_project(tmp_path, measure=measure, rare=line))
    assert f'[[analysis]] number 1 (id "harm").{says}' in str(caught.value)
