"""The small analysis plan the report tests run on ``tests/fixtures/valid_trials``."""

from __future__ import annotations

from pathlib import Path

#: The fixture trials directory the plan's ``trials = "trials"`` is copied from.
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "valid_trials"


def fixture_plan(title: str, more: str = "") -> str:
    """Return the plan titled ``title``: abstinence (OR) and PDA (MD), then ``more`` (TOML)."""
    return f"""
[report]
title = "{title}"
trials = "trials"
comparator = "placebo"
method = "REML"

[[analysis]]
id = "abstinence"
outcome = "abstinence"
measure = "OR"
label = "Abstinence"
favours = ["Favours control", "Favours drug"]

[[analysis]]
id = "pda"
outcome = "percent_days_abstinent"
measure = "MD"
label = "PDA"
""" + more
