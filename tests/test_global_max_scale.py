"""Scale check: pool / meta_regression ML and REML reach the global likelihood maximum.

Brute force (benchmarks/global_max.py) over GLOBAL_MAX_N intercept-only data sets (batched
``ma.pool``) and GLOBAL_MAX_NREG meta-regressions (single ``ma.meta_regression`` fits); the
solver's (restricted) log-likelihood at its tau2 must not be below the brute-force maximum by
more than 1e-8. GLOBAL_MAX_WORKERS processes (default 2). The default sizes (200,000 and 4,000,
about two minutes on two cores) keep ``make test`` within its budget; the full search over a
million data sets is the benchmark (``benchmarks/bench_global_max.py``, ``make bench``), or
this test with ``GLOBAL_MAX_N=1000000 GLOBAL_MAX_NREG=20000``. Run:

    .venv/bin/python -m pytest -m slow tests/test_global_max_scale.py -s
"""

from __future__ import annotations

import os

import pytest

from benchmarks.global_max import TOL, run_checks, summary_rows

N_POOL = int(os.environ.get("GLOBAL_MAX_N", "200000"))
N_REG = int(os.environ.get("GLOBAL_MAX_NREG", "4000"))


@pytest.mark.slow
def test_ml_reml_reach_the_global_maximum_at_scale():
    res = run_checks(N_POOL, N_REG)
    lines = summary_rows(res)
    print("\n" + "\n".join(lines))
    problems = []
    for kind, r in res.items():
        assert r["top_hit"] == 0, f"{kind}: brute-force maximum at the top of its grid"
        for m in ("ml", "reml"):
            s = r[m]
            if s["fail"] or s["nonconv"]:
                worst = max(s["cases"], key=lambda c: c["loglik_bf"] - c["loglik_ours"],
                            default=None)
                problems.append(
                    f"{kind} {m.upper()}: {s['fail']} of {r['n']} below the maximum by > {TOL} "
                    f"({s['nonconv']} not converged); worst shortfall {s['worst']:.3g}"
                    + ("" if worst is None else
                       f" (k={len(worst['yi'])}, tau2 {worst['tau2_ours']:.6g} vs "
                       f"{worst['tau2_bf']:.6g}, chunk {worst['chunk']} row {worst['row']})"))
    assert not problems, "\n".join(problems)
