"""RevMan 5 import (analysis.data.revman) and reanalysis (analysis.rm5_reanalysis).

tests/fixtures/revman/fleiss1993_excerpt.rm5 is an excerpt of a REAL RevMan 5.0.23 file:
inst/extdata/Fleiss1993.rm5 of R meta, github.com/guido-s/meta at commit
6f708f262e815d85d2178a7007c5953553e741e2 (the stored totals are RevMan's own).
tests/fixtures/revman/example.rm5 is a SYNTHETIC format example written by hand (made-up
studies, not trial data), its names checked against that file and against
test/data/antibiotics-for-sore-throat.rm5 of github.com/IEBH/revman-replicant (commit
4bc542dbd65913fcb25a0b8ef8c5a51620d8752d). Its stored totals, and
tests/reference/revman_reference.json (both files), come from metafor 3.8.1 computing as
RevMan 5 does (tests/reference/make_revman_reference.R).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import analysis as ma
from analysis.data.revman import read_rm5, rm5_to_trials, trials_files
from analysis.errors import DataValidationError
from analysis.report.cli import main
from analysis.rm5_reanalysis import reanalyse_rm5

HERE = Path(__file__).parent
EXAMPLE = HERE / "fixtures" / "revman" / "example.rm5"
FLEISS = HERE / "fixtures" / "revman" / "fleiss1993_excerpt.rm5"
REFERENCE = json.loads((HERE / "reference" / "revman_reference.json").read_text())
#: metafor's closed-form MH/DL/IV totals against ours: both are exact formulas.
RTOL = 1e-10
#: RevMan's stored estimate, CI, |z|, Chi2 and I2 against ours: RevMan writes Java doubles
#: of the same closed forms (they agree with metafor to the last digits).
REVMAN_RTOL = 1e-12
#: RevMan's stored p-values: its own normal / chi-square tail routine differs from
#: scipy's and R's in the 7th significant digit (P_CHI2 0.1269422521561745 in the file,
#: 0.12694217790629492 from R's pchisq).
REVMAN_P_RTOL = 1e-5


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.rm5"
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_every_data_type_with_meta_columns() -> None:
    review = read_rm5(EXAMPLE)
    assert list(review.studies["id"]) == ["STD-Alpha-2001", "STD-Beta-2005", "STD-Gamma-2010",
                                          "STD-Delta-2015"]
    out = review.outcomes.set_index(["comp.no", "outcome.no"])
    assert out.loc[(1, 1), ["type", "method", "sm", "model"]].tolist() == ["D", "MH", "OR", "Fixed"]
    assert out.loc[(1, 2), ["type", "method", "sm", "model"]].tolist() == [
        "C", "Inverse", "MD", "Random"]
    assert out.loc[(1, 3), ["type", "sm"]].tolist() == ["I", "HR"]  # from <EFFECT_MEASURE> text
    assert out.loc[(1, 1), "label.e"] == "Drug A" and out.loc[(2, 1), "label.c"] == "Usual care"
    data = review.data
    gamma = data[(data["id"] == "STD-Gamma-2010") & (data["outcome.no"] == 1)
                 & (data["comp.no"] == 1)].iloc[0]
    assert (gamma["event.e"], gamma["n.e"], gamma["event.c"], gamma["n.c"]) == (0, 30, 4, 31)
    assert gamma["group.no"] == 2 and gamma["grplab"] == "High dose"
    assert gamma["studlab"] == "Gamma 2010" and gamma["year"] == "2010"
    beta = data[(data["id"] == "STD-Beta-2005") & (data["outcome.no"] == 2)].iloc[0]
    assert (beta["mean.e"], beta["sd.e"], beta["n.e"], beta["mean.c"]) == (9.8, 5.0, 78, 11.1)
    delta = data[(data["id"] == "STD-Delta-2015") & (data["outcome.no"] == 3)].iloc[0]
    assert (delta["TE"], delta["seTE"]) == (-0.357, 0.25)
    assert delta["xpath"].endswith("COMPARISON[1]/IV_OUTCOME[1]/IV_DATA[3]")
    assert list(review.subgroups["grplab"]) == ["Low dose", "High dose"]


def test_conversion_validates_and_cites_every_row(tmp_path: Path) -> None:
    trials = rm5_to_trials(read_rm5(EXAMPLE))
    for name, data in trials_files(trials).items():
        (tmp_path / name).write_bytes(data)
    tables = ma.validate_trials(tmp_path)
    outcomes = tables["outcomes"]
    # two arms per 2x2 / continuous datum (outcome 1.2's row without data is left out), 3 IV
    assert len(outcomes) == 2 * (4 + 3 + 2 + 2) + 3
    assert trials["skipped"][["study_id", "outcome"]].values.tolist() == [
        ["Delta2015", "rm5_1_2"]]
    assert outcomes["source"].str.contains("example.rm5").all()
    assert outcomes["source_location"].str.contains(r"line \d+: /COCHRANE_REVIEW\[1\]/").all()
    zero = outcomes[(outcomes["study_id"] == "Gamma2010")
                    & (outcomes["arm_id"] == "c1_experimental")
                    & (outcomes["outcome"] == "rm5_1_1")].iloc[0]
    assert (zero["events"], zero["total"], zero["subgroup"]) == (0, 30, "1.1.2 High dose")
    assert zero["comparison"] == "1 Drug A versus placebo"
    hr = outcomes[outcomes["data_type"] == "contrast"].set_index("study_id").loc["Delta2015"]
    assert hr["estimate"] == pytest.approx(math.exp(-0.357), rel=1e-15)
    assert hr["ci_high"] == pytest.approx(math.exp(-0.357 + 1.959963984540054 * 0.25), rel=1e-12)
    arms = tables["arms"].set_index(["study_id", "arm_id"])
    assert arms.loc[("Alpha2001", "c2_control"), "intervention"] == "usual care"
    assert arms.loc[("Alpha2001", "c1_control"), "intervention"] == "placebo"
    # byte-deterministic
    assert trials_files(rm5_to_trials(read_rm5(EXAMPLE))) == trials_files(trials)


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=lambda c: c["id"])
def test_reanalysis_matches_metafor_and_stored_totals(case: dict) -> None:
    result = reanalyse_rm5(EXAMPLE)
    comp, out = (int(x) for x in case["id"].split("."))
    mine = result[(result["comp.no"] == comp) & (result["outcome.no"] == out)]
    expected = [("total", case["total"])] + [("subgroup", s) for s in case.get("subgroups", [])]
    assert len(mine) == len(expected)
    for (scope, ref), (_, row) in zip(expected, mine.iterrows(), strict=True):
        assert row["scope"] == scope
        for ours, theirs in (("estimate", "estimate"), ("ci_low", "ci_low"),
                             ("ci_high", "ci_high"), ("q", "q"), ("i2", "i2"),
                             ("tau2", "tau2"), ("z", "z")):
            assert row[ours] == pytest.approx(ref[theirs], rel=RTOL, abs=1e-12), ours
        # the totals stored in the .rm5 (natural scale for ratios) read back on the same scale
        assert row["revman_estimate"] == pytest.approx(row["estimate"], rel=1e-12, abs=1e-14)
        assert row["revman_q"] == pytest.approx(row["q"], rel=1e-12)


def test_cli_writes_directory_and_refuses_overwrite(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "imported"
    assert main(["import-rm5", str(EXAMPLE), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "arms.csv", "datapackage.json", "outcomes.csv", "studies.csv"]
    assert main(["validate", str(out)]) == 0
    assert main(["import-rm5", str(EXAMPLE), "--out", str(out)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_cli_malformed_file_writes_nothing(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE.read_text().replace('EVENTS_1="20"', 'EVENTS_1="twenty"')
    bad = _write(tmp_path, text)
    out = tmp_path / "imported"
    assert main(["import-rm5", str(bad), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate(text.splitlines(), 1) if 'EVENTS_1="twenty"' in t)
    assert f"bad.rm5:{line}: column 'EVENTS_1' value 'twenty'" in err
    assert "element DICH_DATA" in err and "DICH_SUBGROUP[1]/DICH_DATA[2]" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


@pytest.mark.parametrize(("change", "attribute", "needle"), [
    (('EVENTS_1="12"', 'EVENTS_1="60"'), "EVENTS_1", "more events than TOTAL_1"),
    (('SD_1="4.1"', 'SD_1="0"'), "SD_1", "must be greater than 0"),
    (('STUDY_ID="STD-Beta-2005" TOTAL_1="80"', 'STUDY_ID="STD-Nobody" TOTAL_1="80"'),
     "STUDY_ID", "not an included study"),
    (('RANDOM="NO" STUDIES="4" SUBGROUPS="YES"', 'RANDOM="MAYBE" STUDIES="4" SUBGROUPS="YES"'),
     "RANDOM", "must be YES or NO"),
    (('EVENTS_1="20"', 'EVENTS_1="NaN"'), "EVENTS_1", "not a finite number"),
    (('ESTIMABLE="NO" EVENTS_1="0" EVENTS_2="0" LOG_CI_END="0.0" LOG_CI_START="0.0" '
      'LOG_EFFECT_SIZE="0.0" ORDER="14"', 'ESTIMABLE="N" EVENTS_1="0" EVENTS_2="0" '
      'LOG_CI_END="0.0" LOG_CI_START="0.0" LOG_EFFECT_SIZE="0.0" ORDER="14"'), "ESTIMABLE",
     "must be YES or NO"),
    (('EFFECT_MEASURE="RR"', 'EFFECT_MEASURE="XYZ"'), "EFFECT_MEASURE", "unknown effect measure"),
    (('<IV_DATA EFFECT_SIZE="-0.105" ORDER="9" SE="0.15"',
      '<IV_DATA EFFECT_SIZE="-0.105" ORDER="9"'), "SE", "the attribute is required"),
])
def test_malformed_attributes_are_located(tmp_path: Path, change: tuple[str, str],
                                          attribute: str, needle: str) -> None:
    text = EXAMPLE.read_text()
    assert change[0] in text
    bad = _write(tmp_path, text.replace(change[0], change[1], 1))
    with pytest.raises(DataValidationError) as info:
        read_rm5(bad)
    (problem,) = info.value.problems
    assert problem.column == attribute and needle in problem.rule
    assert problem.line is not None
    assert change[1] in bad.read_text().splitlines()[problem.line - 1]
    assert "element " in problem.rule and "(/COCHRANE_REVIEW[1]/" in problem.rule


def test_not_xml_and_wrong_root_are_located(tmp_path: Path) -> None:
    broken = _write(tmp_path, "<COCHRANE_REVIEW>\n<STUDIES>\n</COCHRANE_REVIEW>\n")
    with pytest.raises(DataValidationError, match=r"bad.rm5:3: malformed XML: mismatched tag"):
        read_rm5(broken)
    other = _write(tmp_path, "<?xml version='1.0'?>\n<html/>\n")
    with pytest.raises(DataValidationError, match="root element must be COCHRANE_REVIEW"):
        read_rm5(other)
    with pytest.raises(DataValidationError, match="cannot be read"):
        read_rm5(tmp_path / "missing.rm5")


def test_study_without_year_is_refused_by_the_conversion(tmp_path: Path) -> None:
    bad = _write(tmp_path, EXAMPLE.read_text().replace('YEAR="2005"', 'YEAR=""'))
    review = read_rm5(bad)  # meta's reader accepts it ...
    with pytest.raises(DataValidationError, match=r"YEAR.*four-digit year"):
        rm5_to_trials(review)  # ... the trials layout requires a year


def test_real_file_reads_with_revman_names() -> None:
    review = read_rm5(FLEISS)
    assert review.title == "Examples from Fleiss 1993"
    assert len(review.studies) == 12
    out = review.outcomes.set_index("outcome.no")
    # CONT_OUTCOME has no METHOD attribute in the real file: inverse variance
    assert out.loc[1, ["type", "method", "sm", "model"]].tolist() == ["D", "MH", "OR", "Fixed"]
    assert out.loc[2, ["type", "method", "sm", "model"]].tolist() == [
        "C", "Inverse", "SMD", "Fixed"]
    # heterogeneity from CHI2 / P_CHI2; Q / P_Q hold the test for subgroup differences
    assert (out.loc[1, "Q"], out.loc[1, "pval.Q"]) == (9.946055983220074, 0.1269422521561745)
    assert (out.loc[1, "Q.b"], out.loc[1, "studies"], out.loc[1, "df"]) == (0.0, 7, 6)
    assert math.isnan(out.loc[2, "TE.pooled"])  # RevMan left the SMD totals empty
    assert review.data["estimable"].all()
    trials = rm5_to_trials(review)
    # RevMan's _xHHHH_ escapes in study IDs are decoded: STD-ISIS_x002d_2 is ISIS-2
    assert sorted(trials["studies"]["study_id"])[6:10] == ["Hart", "ISIS2", "MRC1", "MRC2"]


def test_real_file_reanalysis_matches_revman_and_metafor() -> None:
    result = reanalyse_rm5(FLEISS).set_index("outcome.no")
    mh = result.loc[1]
    assert mh["k"] == 7
    for ours, revman in (("estimate", "revman_estimate"), ("ci_low", "revman_ci_low"),
                         ("ci_high", "revman_ci_high"), ("q", "revman_q"), ("i2", "revman_i2")):
        assert mh[ours] == pytest.approx(mh[revman], rel=REVMAN_RTOL), ours
    assert abs(mh["z"]) == pytest.approx(mh["revman_z"], rel=REVMAN_RTOL)  # RevMan keeps |z|
    assert mh["p_z"] == pytest.approx(mh["revman_p_z"], rel=REVMAN_P_RTOL)
    for case in REFERENCE["real_cases"]:
        row = result.loc[int(case["id"].split(".")[1])]
        for key in ("estimate", "ci_low", "ci_high", "z", "q", "i2", "tau2"):
            assert row[key] == pytest.approx(case["total"][key], rel=RTOL, abs=1e-12), key


def test_not_estimable_rows_and_nonfinite_totals(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    review = read_rm5(EXAMPLE)  # TAU2="NaN", LOG_*="-Infinity", zero SD and totals: no problem
    out = review.outcomes.set_index(["comp.no", "outcome.no"])
    assert not out.loc[(2, 2), "estimable"] and math.isnan(out.loc[(2, 2), "tau2"])
    data = review.data
    assert (~data["estimable"]).sum() == 3 and (data.loc[~data["estimable"], "weight"] == 0).all()
    result = reanalyse_rm5(review)
    assert not ((result["comp.no"] == 2) & (result["outcome.no"] == 2)).any()
    assert result.set_index(["comp.no", "outcome.no"]).loc[(1, 2), "k"] == 3
    outcomes = rm5_to_trials(review)["outcomes"]
    double_zero = outcomes[outcomes["outcome"] == "rm5_2_2"]
    assert len(double_zero) == 4 and set(double_zero["events"]) == {"0"}
    assert double_zero["notes"].str.contains("ESTIMABLE='NO'").all()
    assert main(["import-rm5", str(EXAMPLE), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "left out Delta2015 rm5_1_2" in err and "no data entered" in err


def test_subgroup_difference_test_is_not_the_heterogeneity_q() -> None:
    out = read_rm5(EXAMPLE).outcomes.set_index(["comp.no", "outcome.no"]).loc[(1, 1)]
    case = REFERENCE["cases"][0]
    assert case["id"] == "1.1"
    assert out["Q"] == pytest.approx(case["total"]["q"], rel=1e-15)
    assert out["Q.b"] == pytest.approx(case["total"]["between"]["q"], rel=1e-15)
    assert out["pval.Q.b"] == pytest.approx(case["total"]["between"]["p_q"], rel=1e-15)


def test_windows_1252_bytes_in_an_iso_8859_1_file(tmp_path: Path) -> None:
    data = EXAMPLE.read_bytes().replace(b"<NAME>Low dose</NAME>",
                                        b"<NAME>Low dose \x96 \x93caf\xe9\x94</NAME>")
    path = tmp_path / "cp1252.rm5"
    path.write_bytes(data)
    groups = read_rm5(path).subgroups
    assert groups.loc[0, "grplab"] == "Low dose \u2013 \u201ccaf\u00e9\u201d"
    utf8 = tmp_path / "utf8.rm5"  # a UTF-8 file keeps what it says
    utf8.write_bytes(data.replace(b"ISO-8859-1", b"UTF-8").replace(
        b"\x96 \x93caf\xe9\x94", "\u0096".encode()))
    assert read_rm5(utf8).subgroups.loc[0, "grplab"] == "Low dose \u0096"


def test_other_review_types_and_written_years(tmp_path: Path) -> None:
    dta = _write(tmp_path, EXAMPLE.read_text().replace('TYPE="INTERVENTION"', 'TYPE="DIAGNOSTIC"'))
    with pytest.raises(DataValidationError, match="only intervention reviews"):
        read_rm5(dta)
    dotted = _write(tmp_path, EXAMPLE.read_text().replace('YEAR="2005"', 'YEAR="2005."'))
    studies = rm5_to_trials(read_rm5(dotted))["studies"].set_index("study_id")
    assert studies.loc["Beta2005", "year"] == "2005"
    assert "YEAR written '2005.'" in studies.loc["Beta2005", "notes"]
