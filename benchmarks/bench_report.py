"""Benchmark the report pipeline: import time, a from-clean and a no-op ``make report``.

Run by ``make bench`` or ``python -m benchmarks.bench_report`` from the repository root.

Each time is the median of several runs and is set beside a baseline measured in the same
run, so that a loaded machine slows both: ``python -c pass`` for the import; for the
from-clean build, ``python -c "import pandas, scipy.stats, matplotlib.pyplot"``, the
libraries each figure command of the build loads before it does any work (the build runs
nine commands on two cores: the figures in three groups, see ``figure_groups`` in
:mod:`analysis.report.cli`). That baseline does not depend on this package's code, so
the ratio compares versions of the code; ``make --version`` (make's own start-up) for the
no-op. The builds run in a temporary copy of the project that borrows this ``.venv``
(``make clean && make report`` each time). The goal (issue 12) is a from-clean build under
15 s on a 2-core machine; the CPU time of the build's processes is reported too, as it
depends less on what else the machine runs.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.project_copy import copy_project

REPO = Path(__file__).resolve().parent.parent
COLD_REPEATS = 3
REPEATS = 5


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``command``; return its wall time and the CPU time of its processes (seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _median(command: list[str], cwd: Path, repeats: int = REPEATS,
            env: dict[str, str] | None = None) -> float:
    return statistics.median(_run(command, cwd, env)[0] for _ in range(repeats))


def main() -> list[tuple[str, float, str]]:
    """Run the benchmark and return rows (name, seconds, note)."""
    python = sys.executable
    base = _median([python, "-c", "pass"], REPO)
    imported = _median([python, "-c", "import analysis"], REPO)
    probe = subprocess.run(
        [python, "-c", "import sys, analysis; print('matplotlib' in sys.modules)"],
        cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()
    rows = [("python -c pass (baseline)", base, ""),
            ("python -c 'import analysis'", imported,
             f"{imported - base:.3f} s over the baseline; matplotlib imported: {probe}")]
    with tempfile.TemporaryDirectory() as tmp:
        copy = copy_project(Path(tmp))
        make, env, root = copy.make, copy.env, copy.root
        libraries = [python, "-c", "import pandas, scipy.stats, matplotlib.pyplot"]
        colds, cpus, validates = [], [], []
        for _ in range(COLD_REPEATS):  # interleaved, so that both see the same load
            validates.append(_run(libraries, root, env)[0])
            _run([*make, "clean"], root, env)
            wall, cpu = _run([*make, "report"], root, env)
            colds.append(wall)
            cpus.append(cpu)
        cold, cpu = statistics.median(colds), statistics.median(cpus)
        one = statistics.median(validates)
        noop = _median([*make, "report"], root, env=env)
        make_base = _median(["make", "--version"], root, env=env)
    spread = f"runs {min(colds):.1f}-{max(colds):.1f} s"
    rows += [("import pandas, scipy.stats, matplotlib.pyplot (baseline)", one, ""),
             ("make clean && make report (environment built)", cold,
              f"{cold / one:.1f}x the baseline; {spread}; goal < 15 s; "
              f"{os.cpu_count()} cores, parallel jobs"),
             ("  CPU time of that build's processes", cpu, f"{cpu / one:.1f}x the baseline"),
             ("make --version (baseline)", make_base, ""),
             ("make report, nothing to do", noop, f"{noop / make_base:.1f}x the baseline")]
    return rows


if __name__ == "__main__":
    for label, seconds, note in main():
        print(f"{label:60s} {seconds:8.3f} s  {note}")
