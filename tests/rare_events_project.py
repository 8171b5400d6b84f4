"""A small trials project with zero cells for the rare-events tests (tests/test_rare_events.py).

The synthetic fixture tests/fixtures/valid_trials plus two two-arm studies and a harm outcome,
``dropout_adverse_event``, whose 2x2 tables hold single-zero arms (Alpha2001, the three-arm
Beta2005), a double-zero study (Gamma2012) and one without zero cells (Delta2015).
``tests/reference/make_rare_events_reference.R`` fits metafor on :data:`COMBINED_TABLES`,
the tables the pipeline builds from these rows (Beta2005's two dose arms combined).
"""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "valid_trials"

#: (study, arm, events, total) of the harm outcome.
HARM_ROWS = (
    ("Alpha2001", "placebo", 2, 30), ("Alpha2001", "drug30", 0, 30),
    ("Beta2005", "placebo", 0, 30), ("Beta2005", "drug_low", 1, 30),
    ("Beta2005", "drug_high", 3, 30),
    ("Gamma2012", "placebo", 0, 25), ("Gamma2012", "drug30", 0, 25),
    ("Delta2015", "placebo", 3, 40), ("Delta2015", "drug30", 1, 40),
)
#: The tables fitted, in the order of the contrasts (year): study, ai, bi, ci, di.
COMBINED_TABLES = (
    ("Alpha2001", 0, 30, 2, 28), ("Beta2005", 4, 56, 0, 30),
    ("Gamma2012", 0, 25, 0, 25), ("Delta2015", 1, 39, 3, 37),
)

PLAN = """
[report]
title = "Rare events"
trials = "trials"
comparator = "placebo"
method = "REML"

[[analysis]]
id = "harm"
outcome = "dropout_adverse_event"
measure = "{measure}"
label = "Dropout due to adverse events"
favours = ["Favours drug", "Favours placebo"]
{rare}

[[analysis]]
id = "abstinence"
outcome = "abstinence"
measure = "OR"
label = "Abstinence"
rare_events = "CM.EL"
"""


def _add_study(folder: Path, study: str, year: int, n: int) -> None:
    """Append a two-arm copy of Alpha2001 (studies, arms, risk of bias) as ``study``."""
    for name in ("studies.csv", "arms.csv", "risk_of_bias.csv"):
        path = folder / name
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [line for line in lines[1:] if line.startswith("Alpha2001,")]
        new = []
        for row in rows:
            row = row.replace("Alpha2001", study, 1)
            if name == "studies.csv":
                row = row.replace(",ALPHA,Alpha,2001,", f",,{study[:-4]},{year},")
                row = row.replace(",12,,60,", f",12,,{2 * n},")
            elif name == "arms.csv":
                row = row.replace(",30,10.0000", f",{n},10.0000")
            new.append(row)
        path.write_text("\n".join([*lines, *new]) + "\n", encoding="utf-8")


def make_project(root: Path, *, measure: str = "RR", rare: str = 'rare_events = "CM.EL"'
                 ) -> Path:
    """Write the project (``trials/`` and ``plan.toml``) under ``root``; return the plan."""
    trials = root / "trials"
    shutil.copytree(FIXTURE, trials)
    _add_study(trials, "Gamma2012", 2012, 25)
    _add_study(trials, "Delta2015", 2015, 40)
    outcomes = trials / "outcomes.csv"
    rows = [f"{study},{arm},dropout_adverse_event,stopped for adverse events,12,ITT,,binary,"
            f"{events},{total},,,,,,,,,false,,synthetic,table 3," for study, arm, events, total
            in HARM_ROWS]
    outcomes.write_text(outcomes.read_text(encoding="utf-8") + "\n".join(rows) + "\n",
                        encoding="utf-8")
    plan = root / "plan.toml"
    plan.write_text(PLAN.format(measure=measure, rare=rare), encoding="utf-8")
    return plan
