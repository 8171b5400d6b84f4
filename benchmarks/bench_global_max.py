"""Scale check of the tau^2 solver against the brute-force global maximum (benchmarks/global_max).

Run: ``python benchmarks/bench_global_max.py`` (or ``make bench``). Sizes: GLOBAL_MAX_BENCH_N
intercept-only data sets (default 1,000,000; batched ``ma.pool``, ML and REML) and
GLOBAL_MAX_BENCH_NREG meta-regressions (default 20,000; single ``ma.meta_regression`` fits);
GLOBAL_MAX_WORKERS processes (default 2). Prints the counts: data sets checked, failures
(shortfall > 1e-8 in the log-likelihood), data sets with more than one local maximum, the
worst shortfall. Returns timing rows for ``run_all.py``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.global_max import run_checks, summary_rows

N_POOL = int(os.environ.get("GLOBAL_MAX_BENCH_N", "1000000"))
N_REG = int(os.environ.get("GLOBAL_MAX_BENCH_NREG", "20000"))


def main() -> list[tuple[str, float, str]]:
    start = time.perf_counter()
    res = run_checks(N_POOL, N_REG)
    wall = time.perf_counter() - start
    for line in summary_rows(res):
        print("  " + line)
    rows = []
    for kind, r in res.items():
        fails = ", ".join(f"{m.upper()} {r[m]['fail']} failures, {r[m]['multi']} multi-modal"
                          for m in ("ml", "reml"))
        rows.append((f"{kind}: solver, {r['n']:,} data sets x ML+REML (CPU)",
                     r["seconds_solver"], fails))
        rows.append((f"{kind}: brute force, {r['n']:,} data sets (CPU)", r["seconds_bf"],
                     f"{r['seconds_bf'] / max(r['seconds_solver'], 1e-12):.0f}x the solver"))
    rows.append(("global-max check, wall time", wall, ""))
    return rows


if __name__ == "__main__":
    for label, seconds, note in main():
        print(f"  {label:60s} {seconds * 1000:12.3f} ms  {note}")
