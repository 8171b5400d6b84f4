"""One definition of each analysis: what the notebooks and the README print is the report's.

The report's tables are computed by ``python -m analysis tables`` into a temporary folder;
the notebooks are executed (once per session, :mod:`notebook_runner`) and the README's
"The report's analyses in your own code" block is run. Then:

- every effect with its interval a notebook prints (``OR 2.98 (1.10 to 8.05)``) is one of
  the report's (pooled results, without derived rows, estimator sensitivity, subgroups,
  study effects), except the notebook-only analyses listed in :data:`NOT_IN_THE_REPORT`;
- the counts, p-values, tau², I² and subgroup tests that notebooks print next to the pooled
  results (:data:`CLAIMS`) equal the report's tables at the precision printed;
- notebook 05's Bayesian posterior (every prior of the plan, with P(effect > null) and
  P(benefit)) and trial sequential analysis (required and accrued information, final Z,
  conclusion) are the report's ``bayesian`` and ``sequential`` tables.

Before the notebooks and the README called the plan's selection (``plan_contrasts`` /
``run_analysis``), notebook 03 pooled dropout from 8 comparisons of 7 trials, the report
from 6 of 5, and its dose-class test had another p-value.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import subprocess
import sys
from collections.abc import Callable

import pandas as pd
import pytest
from notebook_runner import NOTEBOOKS_DIR, ROOT, execute, output_text

pytestmark = pytest.mark.slow

NUMBER = r"-?\d+(?:\.\d+)?"
EFFECT = re.compile(rf"\b(OR|RR|RD|MD|SMD) ({NUMBER} \({NUMBER} to {NUMBER}\))")
#: Phrases (in the 80 characters before an effect) that introduce an analysis the report does
#: not tabulate: notebook 04's explorations of the abstinence heterogeneity.
NOT_IN_THE_REPORT = ("Pooling only the ITT trials gives", "without BACLAD,")
TABLES = ("pooled_results", "estimator_sensitivity", "subgroups", "study_effects",
          "dose_response", "bayesian", "sequential")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    out = tmp_path_factory.mktemp("tables")
    subprocess.run([sys.executable, "-m", "analysis", "tables", "--plan",
                    str(ROOT / "analysis_plan.toml"), "--outdir", str(out)],
                   check=True, cwd=ROOT)
    return {name: pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
            for name in TABLES}


def notebook_text(name: str) -> str:
    run = execute(NOTEBOOKS_DIR / name)
    assert not run.error, f"{name} failed:\n{run.error}"
    return output_text(run.notebook)


def readme_output() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The report's analyses in your own code", 1)[1]
    (block,) = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], flags=re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.chdir(ROOT):
        exec(compile(block, "README report block", "exec"), {})
    return out.getvalue()


def report_effects(report: dict[str, pd.DataFrame]) -> set[str]:
    """Every ``MEASURE estimate (low to high)`` the report's tables show."""
    effects = set()
    pooled = report["pooled_results"]
    for _, row in pooled.iterrows():
        effects.add(f"{row['measure']} {row['effect (95% CI)']}")
        if row["without derived rows"]:
            effects.add(f"{row['measure']} {row['without derived rows'].split(', k=')[0]}")
    for name in ("estimator_sensitivity", "study_effects"):
        for _, row in report[name].iterrows():
            effects.add(f"{row['measure']} {row['effect (95% CI)']}")
    measure = dict(zip(pooled["outcome"], pooled["measure"], strict=True))
    for _, row in report["subgroups"].iterrows():
        if row["effect (95% CI)"]:
            effects.add(f"{measure[row['outcome']]} {row['effect (95% CI)']}")
    return {e for e in effects if not e.endswith(" ")}


def same(printed: str, expected: str) -> bool:
    """``printed`` is ``expected`` (a table cell) rounded to the decimals printed."""
    if " to " in expected:  # an interval, printed as the table shows it
        return printed == expected
    if printed.startswith("<") or expected.startswith("<"):
        return printed.replace(" ", "") == expected.replace(" ", "")
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return f"{float(expected):.{decimals}f}" == printed


def pooled(report: dict[str, pd.DataFrame], analysis: str, column: str) -> str:
    table = report["pooled_results"].set_index("outcome")
    return str(table.loc[analysis, column])


@functools.cache
def _title(column: str) -> str:
    """The report names a subgrouping by its display title (e.g. "Detoxified")."""
    from analysis.data import join_trials, validate_trials
    from analysis.report.plan import read_plan, subgroup_title

    plan = read_plan(ROOT / "analysis_plan.toml")
    return subgroup_title(column, join_trials(validate_trials(plan.trials)), plan)


def subgroup_test(report: dict[str, pd.DataFrame], analysis: str, column: str,
                  part: str) -> str:
    table = report["subgroups"]
    rows = table[(table["outcome"] == analysis) & (table["subgrouping"] == _title(column))]
    test = rows["test for subgroup differences"].iloc[0]
    found = re.search(rf"{part} [=<] ({NUMBER})", test)
    assert found, f"no {part} in the report's test for {analysis} / {column}: {test!r}"
    return found.group(1)


def dose_p(report: dict[str, pd.DataFrame], analysis: str, model: str) -> str:
    table = report["dose_response"]
    rows = table[(table["outcome"] == analysis) & (table["model"] == model)
                 & (table["dose metric"] == "dose_target_mg_day")]
    return str(rows["p (dose terms)"].iloc[0])


ABSTINENCE, DROPOUT = "Abstinence (end of treatment)", "Dropout, any reason"
Lookup = Callable[[dict[str, pd.DataFrame], re.Match[str]], list[tuple[str, str]]]


def _counts(analysis: str) -> Lookup:
    return lambda r, m: [(m["k"], pooled(r, analysis, "comparisons")),
                         (m["trials"], pooled(r, analysis, "studies"))]


#: (notebook, pattern, the printed numbers and the report's cells they must equal).
CLAIMS: list[tuple[str, str, Lookup]] = [
    ("02_pooled_efficacy_and_harms.ipynb",
     rf"Pooled \(REML\): OR [^,]*, p = (?P<p>{NUMBER});.*?I² = (?P<i2>{NUMBER})%, "
     rf"τ² = (?P<tau2>{NUMBER})\).*?prediction interval runs from (?P<pi>{NUMBER} to {NUMBER})",
     lambda r, m: [(m["p"], pooled(r, ABSTINENCE, "p")), (m["i2"], pooled(r, ABSTINENCE,
                   "I2 (%)")), (m["tau2"], pooled(r, ABSTINENCE, "tau2")),
                   (m["pi"], pooled(r, ABSTINENCE, "prediction interval"))]),
    ("02_pooled_efficacy_and_harms.ipynb",
     rf"Pooled: RR [^,]*, p = (?P<p>{NUMBER}); τ² = (?P<tau2>{NUMBER}), I² = (?P<i2>{NUMBER})%",
     lambda r, m: [(m["p"], pooled(r, DROPOUT, "p")), (m["tau2"], pooled(r, DROPOUT, "tau2")),
                   (m["i2"], pooled(r, DROPOUT, "I2 (%)"))]),
    ("02_pooled_efficacy_and_harms.ipynb",
     rf"{re.escape(ABSTINENCE)}: (?P<k>\d+) comparisons from (?P<trials>\d+) trials",
     _counts(ABSTINENCE)),
    ("02_pooled_efficacy_and_harms.ipynb",
     rf"{re.escape(DROPOUT)}: (?P<k>\d+) comparisons from (?P<trials>\d+) trials",
     _counts(DROPOUT)),
    ("03_dose_response.ipynb", r"abstinence: (?P<k>\d+) comparisons from (?P<trials>\d+) trials",
     _counts(ABSTINENCE)),
    ("03_dose_response.ipynb", r"dropout: (?P<k>\d+) comparisons from (?P<trials>\d+) trials",
     _counts(DROPOUT)),
    ("03_dose_response.ipynb",
     rf"abstinence \(OR\): Q_between = (?P<q>{NUMBER}), df = \d+, p = (?P<p>{NUMBER})",
     lambda r, m: [(m["q"], subgroup_test(r, ABSTINENCE, "dose_class", "Q")),
                   (m["p"], subgroup_test(r, ABSTINENCE, "dose_class", "p"))]),
    ("03_dose_response.ipynb",
     rf"dropout \(RR\): Q_between = (?P<q>{NUMBER}), df = \d+, p = (?P<p>{NUMBER})",
     lambda r, m: [(m["q"], subgroup_test(r, DROPOUT, "dose_class", "Q")),
                   (m["p"], subgroup_test(r, DROPOUT, "dose_class", "p"))]),
    ("03_dose_response.ipynb",
     rf"The linear slope [^,]*, p = (?P<lin>{NUMBER}).*?the log slope [^,]*, p = (?P<log>{NUMBER})",
     lambda r, m: [(m["lin"], dose_p(r, ABSTINENCE, "linear")),
                   (m["log"], dose_p(r, ABSTINENCE, "log"))]),
    ("03_dose_response.ipynb",
     rf"Dropout: across-trial linear slope [^,]* per mg/day,\s+p = (?P<p>{NUMBER})",
     lambda r, m: [(m["p"], dose_p(r, DROPOUT, "linear"))]),
    ("04_heterogeneity_and_subgroups.ipynb",
     rf"Abstinence: (?P<trials>\d+) trials, (?P<k>\d+) comparisons\*\*, OR [^,]*, "
     rf"I² = (?P<i2>{NUMBER})% \(τ² = (?P<tau2>{NUMBER})\)",
     lambda r, m: [*_counts(ABSTINENCE)(r, m), (m["i2"], pooled(r, ABSTINENCE, "I2 (%)")),
                   (m["tau2"], pooled(r, ABSTINENCE, "tau2"))]),
    ("04_heterogeneity_and_subgroups.ipynb",
     rf"Dropout: (?P<trials>\d+) trials, (?P<k>\d+) comparisons\*\*, RR [^,]*, "
     rf"I² = (?P<i2>{NUMBER})%", lambda r, m: [*_counts(DROPOUT)(r, m),
                                                (m["i2"], pooled(r, DROPOUT, "I2 (%)"))]),
    ("04_heterogeneity_and_subgroups.ipynb",
     rf"detoxified p = (?P<detox>{NUMBER}) and dose_class p = (?P<dose>{NUMBER})",
     lambda r, m: [(m["detox"], subgroup_test(r, DROPOUT, "detoxified", "p")),
                   (m["dose"], subgroup_test(r, DROPOUT, "dose_class", "p"))]),
]
#: The notebooks that print pooled effects with their intervals (03 prints slopes and tests).
PRINTING_EFFECTS = ("02_pooled_efficacy_and_harms.ipynb", "04_heterogeneity_and_subgroups.ipynb")


@pytest.mark.parametrize("name", PRINTING_EFFECTS)
def test_every_effect_a_notebook_prints_is_the_reports(
        name: str, report: dict[str, pd.DataFrame]) -> None:
    text = notebook_text(name)
    effects = report_effects(report)
    printed = [(m.group(0), text[max(0, m.start() - 80):m.start()])
               for m in EFFECT.finditer(text)]
    assert printed, f"{name} prints no effect"
    foreign = [effect for effect, before in printed if effect not in effects
               and not any(phrase in before for phrase in NOT_IN_THE_REPORT)]
    assert not foreign, f"{name} prints effects that are in no report table: {foreign}"


@pytest.mark.parametrize(("name", "pattern", "lookup"), CLAIMS,
                         ids=[f"{n[:2]}-{i}" for i, (n, _, _) in enumerate(CLAIMS)])
def test_numbers_next_to_the_pooled_results_are_the_reports(
        name: str, pattern: str, lookup: Lookup, report: dict[str, pd.DataFrame]) -> None:
    text = notebook_text(name)
    found = re.search(pattern, text, flags=re.S)
    assert found, f"{name} no longer prints {pattern!r}: update CLAIMS with the narrative"
    wrong = [(p, e) for p, e in lookup(report, found) if not same(p, e)]
    assert not wrong, f"{name}: printed vs report: {wrong} in {found.group(0)!r}"


def test_readme_example_prints_the_reports_dropout_analysis(
        report: dict[str, pd.DataFrame]) -> None:
    out = readme_output()
    k = re.search(r"k = (\d+);", out)
    effect = re.search(rf"RR ({NUMBER}) \(95% CI ({NUMBER}) to ({NUMBER})\)", out)
    p = re.search(rf"z = {NUMBER}, p = ({NUMBER})", out)
    counts = re.search(r"(\d+) comparisons from (\d+) trials", out)
    assert k and effect and p and counts, out
    assert k.group(1) == counts.group(1) == pooled(report, DROPOUT, "comparisons")
    assert counts.group(2) == pooled(report, DROPOUT, "studies")
    shown = "{:.2f} ({:.2f} to {:.2f})".format(*(float(g) for g in effect.groups()))
    assert shown == pooled(report, DROPOUT, "effect (95% CI)")
    assert same(f"{float(p.group(1)):.3f}", pooled(report, DROPOUT, "p"))


PUBLISHED = "05_published_results.ipynb"
PRIOR = re.compile(rf"tau ~ (?P<prior>[^:;]+?)(?: \(primary\))?: (?P<m>OR|RR|MD|SMD) "
                   rf"(?P<mu>{NUMBER} \({NUMBER} to {NUMBER}\)), P\((?P=m) > (?P<null>[01])\) = "
                   rf"(?P<p>[<>]? ?{NUMBER}), P\(benefit\) = (?P<benefit>[<>]? ?{NUMBER})")
TSA = re.compile(rf"required information size (?P<ris>[\d,]+) participants, accrued "
                 rf"(?P<accrued>[\d,]+) \((?P<share>\d+)%\), final Z = (?P<z>{NUMBER}); "
                 r"boundary crossed: (?P<crossed>no|yes[^;]*); (?P<conclusion>[^.]+)\.")


def _paragraph(text: str, label: str) -> str:
    found = re.search(rf"\*\*{re.escape(label)}\.\*\*(.*?)(?:\n\n|$)", text, flags=re.S)
    assert found, f"{PUBLISHED} prints no Bayesian/TSA paragraph for {label!r}"
    return found.group(1)


def _complement(p: str) -> str:
    """P(benefit) when benefit is the side below the null: 1 - P(effect > null), as printed."""
    flipped = {"> 0.99": "< 0.01", "< 0.01": "> 0.99"}
    return flipped.get(p) or f"{1 - float(p):.2f}"


def test_notebook_05_bayesian_numbers_are_the_reports(report: dict[str, pd.DataFrame]) -> None:
    text = notebook_text(PUBLISHED)
    table = report["bayesian"]
    assert not table.empty
    interval = next(c for c in table.columns if c.startswith("mu median"))
    for label, rows in table.groupby("outcome", sort=False):
        printed = list(PRIOR.finditer(_paragraph(text, str(label))))
        expected = [(row["prior (tau)"].removesuffix(" [primary]"), row)
                    for _, row in rows.iterrows()]
        assert [m["prior"] for m in printed] == [prior for prior, _ in expected], label
        for m, (_, row) in zip(printed, expected, strict=True):
            assert f"{m['m']} {m['mu']}" == f"{row['measure']} {row[interval]}", (label, m[0])
            assert f"P({m['m']} > {m['null']}) = {m['p']}" == row["P(effect > null)"], m[0]
            # benefit is the side the report's table names when that favours the intervention
            benefit_above = "placebo" not in row["side"].lower()
            assert m["benefit"] == (m["p"] if benefit_above else _complement(m["p"])), m[0]
        frequentist = re.search(rf"frequentist primary model \(\w+\) gives "
                                rf"((?:OR|RR|MD|SMD) {NUMBER} \({NUMBER} to {NUMBER}\))",
                                _paragraph(text, str(label)))
        assert frequentist, label
        assert frequentist.group(1) == (f"{pooled(report, str(label), 'measure')} "
                                        f"{pooled(report, str(label), 'effect (95% CI)')}")


def test_notebook_05_tsa_numbers_are_the_reports(report: dict[str, pd.DataFrame]) -> None:
    text = notebook_text(PUBLISHED)
    table = report["sequential"]
    assert not table.empty
    for _, row in table.iterrows():
        m = TSA.search(_paragraph(text, row["outcome"]))
        assert m, f"{PUBLISHED} prints no TSA numbers for {row['outcome']!r}"
        assert (m["ris"], m["accrued"], m["share"], m["z"], m["conclusion"]) == (
            row["RIS (participants)"], row["accrued"], row["information (%)"], row["final Z"],
            row["conclusion"]), (row["outcome"], m[0])
        assert (m["crossed"] == "no") == row["conclusion"].startswith("not enough"), m[0]
