"""Export the shipped data's comparisons for tests/reference/make_reference.R.

Run from the repository root: ``.venv/bin/python tests/reference/export_baclofen_contrasts.py``
(``make reference`` does it before calling R). Writes
``tests/reference/data/baclofen_contrasts.csv`` with columns id, outcome, measure, yi, vi
and the 2x2 counts (ai, n1i, ci, n2i; empty for comparisons from a reported estimate), so
that R can recompute yi and vi with escalc.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import analysis as ma

ANALYSES = [("abstinence", "OR"), ("abstinence", "RR"), ("dropout", "RR"), ("dropout", "OR")]


def main() -> Path:
    """Write the CSV and return its path."""
    trials = ma.load_trials()
    frames = []
    for outcome, measure in ANALYSES:
        frame = ma.contrasts(trials, outcome=outcome, measure=measure, multiarm="split")
        frames.append(pd.DataFrame({
            "id": frame["label"], "outcome": f"{outcome}_{measure}", "measure": measure,
            "yi": frame["yi"], "vi": frame["vi"],
            "ai": frame["events_t"].where(~frame["from_reported_estimate"]),
            "n1i": frame["n_t"].where(~frame["from_reported_estimate"]),
            "ci": frame["events_c"].where(~frame["from_reported_estimate"]),
            "n2i": frame["n_c"].where(~frame["from_reported_estimate"]),
        }))
    target = Path(__file__).parent / "data" / "baclofen_contrasts.csv"
    pd.concat(frames).to_csv(target, index=False, float_format="%.17g", lineterminator="\n")
    return target


if __name__ == "__main__":
    print(main())
