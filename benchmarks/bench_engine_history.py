"""The rma.uni core against the engine it replaced, in the same run (``make bench``).

The previous engine (separate scalar and batched code, local ML/REML solver) is taken from
git history (commit ``BASELINE``) into a temporary folder and timed in a child process on the
same data, alternating with the current one, so both see the same machine load. The global
maximum search may not make the common case more than 25% slower (issue 9). Skipped where git
or the commit is not available (a source archive without history).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The last commit before the rma.uni core (pool with its own scalar fast path).
BASELINE = "617ebd6"

_CHILD = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import analysis as ma
rng = np.random.default_rng(20240601)
n, k = 10_000, 16
v = rng.uniform(0.01, 0.2, size=(n, k))
y = rng.normal(-0.3, 0.3, size=(n, k)) + rng.normal(0, np.sqrt(v))

def best(f, number, repeats=5):
    f()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(number):
            f()
        out.append((time.perf_counter() - t) / number)
    return min(out)

res = {}
for m in ("REML", "ML", "DL", "PM"):
    res[f"batch {m}"] = best(lambda: ma.pool(y, v, method=m, tau2_ci=False), 2)
for ci in (False, True):
    res[f"single REML tau2_ci={ci}"] = best(
        lambda: [ma.pool(y[i], v[i], method="REML", tau2_ci=ci) for i in range(50)], 4) / 50
print(json.dumps(res))
"""


def _run(path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                         text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> list[tuple[str, float, str]]:
    """Time both engines twice each, alternating; report the best of each and the ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "baseline"
        old.mkdir()
        try:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE, "analysis"],
                                     capture_output=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            print(f"  (git commit {BASELINE} not available: comparison skipped)")
            return []
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        runs_new, runs_old = [], []
        for _ in range(2):
            runs_old.append(_run(old))
            runs_new.append(_run(ROOT))
    rows = []
    for key in runs_new[0]:
        new = min(r[key] for r in runs_new)
        base = min(r[key] for r in runs_old)
        rows.append((f"pool {key} (k = 16{', 10,000 rows' if 'batch' in key else ''})", new,
                     f"previous engine {base * 1e3:.3f} ms; ratio new/previous {new / base:.2f}"))
    return rows


if __name__ == "__main__":
    for label, seconds, note in main():
        print(f"  {label:60s} {seconds * 1000:12.3f} ms  {note}")
