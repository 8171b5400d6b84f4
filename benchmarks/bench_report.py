"""Benchmark the report pipeline: import time, a no-op and a from-clean ``make report``.

Run by ``make bench`` or ``python -m benchmarks.bench_report`` from the repository root.

Each time is set beside a baseline measured in the same run: ``python -c pass`` for the
import, and ``make --version`` for the no-op (process start-up of make itself). The
from-clean build runs in a temporary copy of the project that borrows this ``.venv``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.project_copy import copy_project

REPO = Path(__file__).resolve().parent.parent


def _best(command: list[str], cwd: Path, repeats: int = 5, env: dict | None = None) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> list[tuple[str, float, str]]:
    """Run the benchmark and return rows (name, seconds, note)."""
    python = sys.executable
    base = _best([python, "-c", "pass"], REPO)
    imported = _best([python, "-c", "import analysis"], REPO)
    probe = subprocess.run(
        [python, "-c", "import sys, analysis; print('matplotlib' in sys.modules)"],
        cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()
    rows = [("python -c pass (baseline)", base, ""),
            ("python -c 'import analysis'", imported,
             f"{imported - base:.3f} s over the baseline; matplotlib imported: {probe}")]
    with tempfile.TemporaryDirectory() as tmp:
        copy = copy_project(Path(tmp))
        start = time.perf_counter()
        subprocess.run([*copy.make, "report"], cwd=copy.root, check=True,
                       capture_output=True, env=copy.env)
        clean = time.perf_counter() - start
        noop = _best([*copy.make, "report"], copy.root, env=copy.env)
        make_base = _best(["make", "--version"], copy.root, env=copy.env)
    rows += [("make report from clean (environment built)", clean,
              f"{os.cpu_count()} cores, parallel jobs"),
             ("make --version (baseline)", make_base, ""),
             ("make report, nothing to do", noop, f"{noop / make_base:.1f}x the baseline")]
    return rows


if __name__ == "__main__":
    for label, seconds, note in main():
        print(f"{label:48s} {seconds:8.3f} s  {note}")
