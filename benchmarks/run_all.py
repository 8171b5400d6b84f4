"""Run every benchmark and print one table (``make bench``). Benchmarks are not tests."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCHMARKS = [
    "benchmarks.bench_loader",
    "benchmarks.bench_pooling",
    "benchmarks.bench_engine_history",
    "benchmarks.bench_pymare",
    "benchmarks.bench_global_max",
    "benchmarks.bench_emax",
    "benchmarks.bench_gosh",
    "benchmarks.bench_bayes",
    "benchmarks.bench_tsa",
    "benchmarks.bench_multiverse",
    "benchmarks.bench_report",
]


def main() -> int:
    """Run the benchmarks that exist and print their rows."""
    for name in BENCHMARKS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            print(f"# {name}: not present")
            continue
        print(f"# {name}")
        rows = module.main()  # a benchmark returns rows, or prints its own table
        for label, seconds, note in rows or ():
            print(f"  {label:60s} {seconds * 1000:12.3f} ms  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
