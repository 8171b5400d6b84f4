"""The shipped plan's multiverse: ours versus a loop of single ``ma.pool`` calls, same run.

Run: ``python benchmarks/bench_multiverse.py`` (or ``make bench``). For each analysis of the
plan's ``[multiverse]`` table: the whole :func:`analysis.multiverse` (selection of every
combination's data with :func:`analysis.contrasts`, then the batched fits of each distinct
selection), and as the baseline the fitting alone done the plain way: one ``ma.pool`` call
per feasible specification on the same selections (``result.datasets``), no batching and no
sharing of identical selections. The baseline leaves out the selection time, so it flatters
the loop.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import analysis as ma
from analysis.report.multiverse_plan import run_multiverse
from analysis.report.plan import read_plan

REPEATS = 3
PLAN = Path(__file__).resolve().parent.parent / "analysis_plan.toml"


def _timed(fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(REPEATS):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def _loop(result) -> None:
    for row in result.table.itertuples():
        data = result.datasets[row.dataset]
        ma.pool(data["yi"].to_numpy(float), data["vi"].to_numpy(float), method=row.method,
                ci=row.ci, tau2_ci=False)


def main() -> list[tuple[str, float, str]]:
    plan = read_plan(PLAN)
    trials = ma.load_trials(plan.trials)
    rows = []
    for spec in plan.multiverse:
        ours, result = _timed(lambda spec=spec: run_multiverse(trials, spec, plan))
        loop, _ = _timed(lambda result=result: _loop(result))
        note = (f"{len(result)} feasible of {result.n_total} specifications, "
                f"{len(result.datasets)} distinct selections")
        rows.append((f"multiverse {spec.analysis}: ours (selection + batched fits)", ours,
                     note))
        rows.append((f"multiverse {spec.analysis}: loop of ma.pool (fits only)", loop,
                     f"{len(result)} calls"))
    return rows


if __name__ == "__main__":
    for label, seconds, note in main():
        print(f"  {label:60s} {seconds * 1000:12.3f} ms  {note}")
