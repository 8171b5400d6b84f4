"""Benchmark: validate and load a generated trials directory of 10,000 studies.

Reported as seconds and as a ratio to a baseline measured in the same run: plain
``pandas.read_csv`` of the same three files (no validation), so the ratio says what the
validation costs on this machine whatever its speed today.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from analysis.data import load_trials
from benchmarks.generate_trials import write_generated_trials


def _best_of(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> list[tuple[str, float, str]]:
    """Run the benchmark and return rows (name, seconds, note)."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = write_generated_trials(Path(tmp) / "trials", n_studies=10_000, seed=1)
        rows = sum(1 for _ in (directory / "outcomes.csv").open()) - 1

        def baseline() -> None:
            for name in ("studies", "arms", "outcomes"):
                pd.read_csv(directory / f"{name}.csv", dtype=str, keep_default_na=False)

        base = _best_of(baseline)
        full = _best_of(lambda: load_trials(directory))
    return [
        ("pandas.read_csv of the 3 files (baseline)", base, f"{rows} outcome rows"),
        ("load_trials: read + validate + join", full, f"{full / base:.1f}x baseline"),
    ]


if __name__ == "__main__":
    for name, seconds, note in main():
        print(f"{name:48s} {seconds:8.3f} s  {note}")
