"""GOSH and permutation tests, ours versus metafor, same data, same run (issue 14, item 4).

Run: ``python benchmarks/bench_gosh.py`` (or ``make bench``). k = 16 studies:

* GOSH of all 65,535 subsets, FE, DL and REML (``ma.gosh``; metafor ``gosh(rma(...))``,
  ``method = "EE"`` for FE);
* ``permutest`` with 1,000 random sign flips of a REML model (metafor ``permutest(res,
  iter = 1000)``).

metafor is timed inside R (``system.time``) by one Rscript call, and skipped with a message
when Rscript or metafor is missing. metafor's REML GOSH takes about ten minutes, so it is
timed on 2,000 random subsets (``gosh(res, subsets = 2000)``) and scaled per subset to
65,535 (its time per subset does not depend on which subsets). The arithmetic limit is the
bare NumPy DL formulas over the same 65,535 x 16 inclusion matrix, already as floats, in the
same cache-sized blocks (one product with four per-study vectors for the fixed-effect sums,
Q as the one-pass sum, then one weighted pass), with nothing else: no subset enumeration,
no cancellation-free Q, no I² or H², no result object.

Every time is the median of wall-clock runs (``FAST_REPEATS``; REML ``REPEATS``); the
machine may be shared, so compare ratios from the same run.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import analysis as ma
from analysis.gosh import CHUNK, _masks, subset_codes

K = 16
REML_SAMPLE = 2000
PERM_ITER = 1000
REPEATS = 5
#: Repeats of the timings that take milliseconds: a median of more runs is steadier on a
#: shared machine, and costs nothing.
FAST_REPEATS = 21

R_SCRIPT = r"""
suppressPackageStartupMessages(library(metafor))
dat <- read.csv(commandArgs(TRUE)[1])
t <- function(expr) unname(system.time(expr)["elapsed"])
res_fe <- rma(yi, vi, data = dat, method = "EE")
res_dl <- rma(yi, vi, data = dat, method = "DL")
res_reml <- rma(yi, vi, data = dat, method = "REML")
cat("gosh_fe", t(gosh(res_fe, progbar = FALSE)), "\n")
cat("gosh_dl", t(gosh(res_dl, progbar = FALSE)), "\n")
cat("gosh_reml_sample", t(gosh(res_reml, subsets = REML_SAMPLE, progbar = FALSE, seed = 1)), "\n")
cat("permutest_reml", t(permutest(res_reml, iter = PERM_ITER, progbar = FALSE, seed = 1)), "\n")
""".replace("REML_SAMPLE", str(REML_SAMPLE)).replace("PERM_ITER", str(PERM_ITER))


def _data(seed: int = 20260601) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.2, K)
    return rng.normal(-0.3, 0.3, K) + rng.normal(0, np.sqrt(v)), v


def _timed(fn, repeats: int = FAST_REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _arithmetic_dl(m: np.ndarray, y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The DL GOSH formulas and nothing else (no checks, no I², no chunks)."""
    w = 1.0 / v
    sums = m @ np.column_stack([w, w * y, w * y * y, w * w])
    sw, swy, swy2, sw2 = sums.T
    q = swy2 - swy * swy / sw
    k = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):  # one-study subsets: 0/0
        tau2 = np.where(k > 1, np.maximum(0.0, (q - (k - 1)) / (sw - sw2 / sw)), 0.0)
    ws = m / (v + tau2[:, None])
    return (ws @ y) / ws.sum(axis=1)


def _metafor(y: np.ndarray, v: np.ndarray) -> dict[str, float] | None:
    if shutil.which("Rscript") is None:
        print("  (Rscript not found: metafor not timed)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "dat.csv", Path(tmp) / "bench.R"
        lines = ["yi,vi", *(f"{float(a)!r},{float(b)!r}" for a, b in zip(y, v, strict=True))]
        csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
        script.write_text(R_SCRIPT, encoding="utf-8")
        run = subprocess.run(["Rscript", str(script), str(csv)], capture_output=True,
                             text=True, check=False)
    if run.returncode != 0:
        print(f"  (metafor not timed: {run.stderr.strip()[:200]})")
        return None
    out = {}
    for line in run.stdout.splitlines():
        name, value = line.split()
        out[name] = float(value)
    out["gosh_reml"] = out.pop("gosh_reml_sample") * (2**K - 1) / REML_SAMPLE
    return out


def main() -> list[tuple[str, float, str]]:
    y, v = _data()
    fit = ma.pool(y, v, method="REML")
    ours = {
        "gosh_fe": _timed(lambda: ma.gosh(y, v, method="FE")),
        "gosh_dl": _timed(lambda: ma.gosh(y, v, method="DL")),
        "gosh_reml": _timed(lambda: ma.gosh(y, v, method="REML"), REPEATS),
        "permutest_reml": _timed(lambda: ma.permutest(fit, iter=PERM_ITER, seed=1)),
    }
    m = _masks(subset_codes(K), K).astype(float)
    blocks = [m[a:a + CHUNK] for a in range(0, m.shape[0], CHUNK)]  # cache-sized, as ours

    def limit_run() -> np.ndarray:
        return np.concatenate([_arithmetic_dl(b, y, v) for b in blocks])

    limit = _timed(limit_run)
    check = ma.gosh(y, v, method="DL")
    assert np.allclose(limit_run(), check.estimate, rtol=1e-9)
    theirs = _metafor(y, v)
    labels = {"gosh_fe": f"GOSH k={K}, all {2**K - 1:,} subsets, FE",
              "gosh_dl": f"GOSH k={K}, all {2**K - 1:,} subsets, DL",
              "gosh_reml": f"GOSH k={K}, all {2**K - 1:,} subsets, REML",
              "permutest_reml": f"permutest REML, {PERM_ITER} sign flips (k={K})"}
    rows = []
    for key, label in labels.items():
        note = ""
        if theirs is not None:
            scaled = " (scaled from 2,000 subsets)" if key == "gosh_reml" else ""
            note = (f"metafor {theirs[key]:.2f} s{scaled}, "
                    f"metafor/ours = {theirs[key] / ours[key]:,.0f}x")
        if key in ("gosh_fe", "gosh_dl"):
            note += f"; ours/arithmetic limit (DL) = {ours[key] / limit:.1f}x"
        rows.append((label, ours[key], note))
    rows.append((f"arithmetic limit: bare NumPy DL formulas, {2**K - 1:,} x {K}", limit, ""))
    return rows


if __name__ == "__main__":
    for label, seconds, note in main():
        print(f"  {label:60s} {seconds * 1000:12.3f} ms  {note}")
