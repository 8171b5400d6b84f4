"""Benchmark of analysis.pooling.pool (REML, k = 16): single fits, batched fits, metafor.

Run: ``python benchmarks/bench_pooling.py``. Prints a table; not a unit test. When ``Rscript``
is on PATH (with metafor installed) the per-fit time of metafor's ``rma()`` is measured in the
same run on the same data and the ratio is reported.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.pooling import pool

K = 16
N_BATCH = 10_000
N_R = 200


def _data(n: int, seed: int = 20240601) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.2, size=(n, K))
    y = rng.normal(-0.3, 0.3, size=(n, K)) + rng.normal(0, np.sqrt(v))
    return y, v


def per_fit_ms(y: np.ndarray, v: np.ndarray, tau2_ci: bool, repeats: int = 15,
               number: int = 200) -> float:
    """Median over repeats of the mean time of one single fit (ms)."""
    times = []
    for r in range(repeats):
        yy, vv = y[r % len(y)], v[r % len(v)]
        pool(yy, vv, method="REML", tau2_ci=tau2_ci)
        start = time.perf_counter()
        for _ in range(number):
            pool(yy, vv, method="REML", tau2_ci=tau2_ci)
        times.append((time.perf_counter() - start) / number * 1e3)
    return statistics.median(times)


def batch_s(y: np.ndarray, v: np.ndarray, tau2_ci: bool, repeats: int = 5) -> float:
    """Median wall time (s) of one batched call fitting every row."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        pool(y, v, method="REML", tau2_ci=tau2_ci)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


R_SCRIPT = """
suppressMessages(library(metafor))
d <- as.matrix(read.csv("{path}", header = FALSE))
k <- {k}; n <- nrow(d)
y <- d[, 1:k]; v <- d[, (k + 1):(2 * k)]
invisible(rma(y[1, ], v[1, ], method = "REML"))
t1 <- system.time(for (i in 1:n) rma(y[i, ], v[i, ], method = "REML"))[["elapsed"]]
t2 <- system.time(for (i in 1:n) confint(rma(y[i, ], v[i, ], method = "REML")))[["elapsed"]]
cat(sprintf("%.9f %.9f\\n", 1000 * t1 / n, 1000 * t2 / n))
"""


def metafor_ms(y: np.ndarray, v: np.ndarray) -> tuple[float, float] | None:
    """Per-fit ms of metafor rma() and rma()+confint() over the first N_R rows, or None."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        np.savetxt(path, np.hstack([y[:N_R], v[:N_R]]), delimiter=",", fmt="%.17g")
        code = R_SCRIPT.format(path=path.as_posix(), k=K)
        proc = subprocess.run([rscript, "-e", code], capture_output=True, text=True,
                              check=False, timeout=600)
    if proc.returncode != 0:
        print("Rscript failed:", proc.stderr.strip()[-300:])
        return None
    fit, with_ci = (float(x) for x in proc.stdout.split())
    return fit, with_ci


def main() -> None:
    y, v = _data(N_BATCH)
    single = per_fit_ms(y, v, tau2_ci=False)
    single_ci = per_fit_ms(y, v, tau2_ci=True)
    batch = batch_s(y, v, tau2_ci=False)
    batch_ci = batch_s(y, v, tau2_ci=True)
    rows = [
        ("pool(REML), single fit, k=16 (median)", f"{single:.3f} ms", ""),
        ("pool(REML) + Q-profile CI, single fit", f"{single_ci:.3f} ms", ""),
        (f"pool(REML), {N_BATCH:,} fits batched", f"{batch:.3f} s",
         f"{batch / N_BATCH * 1e6:.1f} us/fit"),
        (f"pool(REML) + Q-profile CI, {N_BATCH:,} batched", f"{batch_ci:.3f} s",
         f"{batch_ci / N_BATCH * 1e6:.1f} us/fit"),
    ]
    mf = metafor_ms(y, v)
    if mf is not None:
        rows += [
            (f"metafor rma(REML), per fit ({N_R} fits)", f"{mf[0]:.3f} ms",
             f"ratio metafor/ours single {mf[0] / single:.1f}x, "
             f"batched {mf[0] / (batch / N_BATCH * 1e3):.0f}x"),
            ("metafor rma()+confint(), per fit", f"{mf[1]:.3f} ms",
             f"ratio metafor/ours single {mf[1] / single_ci:.1f}x"),
        ]
    else:
        rows.append(("metafor rma()", "Rscript not found", ""))
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'time':>12}  note")
    print("-" * (width + 40))
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")


if __name__ == "__main__":
    main()
