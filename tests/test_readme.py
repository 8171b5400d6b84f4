"""The README's "Use it in your own study" runs as written and says what metafor says.

Every ``python`` block of that section is executed in order (the first holds the imports,
each later block runs in a copy of its namespace, as a reader pastes them), with matplotlib's
Agg back-end. Three checks hold the README to the references:

- every number in a ``# metafor:`` comment appears, as printed there, in what the block
  prints (metafor 3.8-1's printed output; the full-precision values are in
  ``tests/reference/classic_reference.json`` from ``make_classic_reference.R``);
- the results the blocks leave in their namespace (see ``FIXTURE_OF``) agree with the
  fixture to 1e-6;
- every ``plots.*(...)`` call returns a matplotlib Axes or Figure (one call draws it).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
from tolerances import ITERATIVE, ZERO

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Use it in your own study", 1)[1].split("\n## ", 1)[0]
BLOCKS = re.findall(r"```python\n(.*?)```", SECTION, flags=re.S)
CASES = {c["id"]: c for c in json.loads(
    (ROOT / "tests" / "reference" / "classic_reference.json").read_text(encoding="utf-8")
)["cases"]}
NUMBER = re.compile(r"-?\d+\.\d+")

#: (block heading keyword, variable) -> fixture case id and the fields compared.
FIXTURE_OF: dict[tuple[str, str], str] = {
    ("BCG", "res"): "bcg/RR/rma/REML",
    ("BCG", "reg"): "bcg/RR/metareg/ablat/REML",
    ("Normand", "res"): "normand1999/MD/rma/REML",
    ("Hackshaw", "res"): "hackshaw1998/OR/rma/DL",
    ("Yusuf", "res"): "yusuf1985/peto/table6",
    ("Collins", "res"): "collins1985b/peto/pre",
    ("Raudenbush", "res"): "raudenbush1985/SMD/rma/REML",
    ("Raudenbush", "reg"): "raudenbush1985/SMD/metareg/weeks.c/REML",
}


def _headed_blocks() -> list[tuple[str, str]]:
    """Each code block with the ``###`` heading above it ("" for the first)."""
    out = []
    for part in re.split(r"\n### ", SECTION):
        heading = part.split("\n", 1)[0]
        for block in re.findall(r"```python\n(.*?)```", part, flags=re.S):
            out.append((heading, block))
    return out


HEADED = _headed_blocks()


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[dict[str, Any], str]]:
    assert HEADED, "README section 'Use it in your own study' has no python blocks"
    base: dict[str, Any] = {}
    results = {}
    for i, (heading, code) in enumerate(HEADED):
        ns = base if i == 0 else dict(base)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), warnings.catch_warnings(), \
                contextlib.chdir(ROOT):  # paths in the README are from the repository root
            warnings.simplefilter("ignore")
            exec(compile(code, f"README block {i} ({heading})", "exec"), ns)
        results[heading] = (ns, out.getvalue())
    return results


def test_section_has_the_six_classic_data_sets() -> None:
    headings = " ".join(h for h, _ in HEADED)
    for name in ("BCG", "Normand", "Hackshaw", "Yusuf", "Collins", "Raudenbush"):
        assert name in headings, f"README lacks the {name} example"


@pytest.mark.parametrize("heading", [h for h, _ in HEADED if h], ids=lambda h: h[:20])
def test_block_prints_the_numbers_metafor_prints(runs, heading: str) -> None:
    _, printed = runs[heading]
    code = dict(HEADED)[heading]
    quoted = [m for line in code.splitlines() if "# metafor:" in line
              for m in NUMBER.findall(line.split("# metafor:", 1)[1])]
    assert quoted, f"block {heading!r} quotes no metafor numbers"
    tokens = set(NUMBER.findall(printed))
    missing = [q for q in quoted if q not in tokens]
    assert not missing, f"{heading}: metafor's {missing} not in the printed output:\n{printed}"


@pytest.mark.parametrize(("key", "case_id"), FIXTURE_OF.items(), ids=lambda x: str(x))
def test_block_results_agree_with_metafor(runs, key: tuple[str, str], case_id: str) -> None:
    word, name = key
    heading = next(h for h in runs if word in h)
    res = runs[heading][0][name]
    exp = CASES[case_id]["expected"]
    ours = np.atleast_1d(np.asarray(res.coef if hasattr(res, "coef") else res.estimate, float))
    se = np.atleast_1d(np.asarray(res.se, float))
    for what, mine, theirs in (("estimate", ours, exp["estimate"]), ("se", se, exp["se"])):
        np.testing.assert_allclose(mine, np.atleast_1d(np.asarray(theirs, float)),
                                   rtol=ITERATIVE, atol=ZERO, err_msg=f"{case_id} {what}")
    if exp.get("tau2") is not None:
        # metafor stops at tau2 = 3e-14 where we give 0 (Raudenbush ~ weeks.c): atol 1e-12
        np.testing.assert_allclose(res.tau2, exp["tau2"], rtol=ITERATIVE, atol=1e-12,
                                   err_msg=f"{case_id} tau2")


def test_every_plot_call_draws(runs) -> None:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    drawn = 0
    for heading, (ns, _) in runs.items():
        code = dict(HEADED)[heading]
        for name in re.findall(r"^(\w+)\s*=\s*ma\.plots\.\w+\(", code, flags=re.M):
            assert isinstance(ns[name], Axes | Figure), f"{heading}: {name} is {ns[name]!r}"
            drawn += 1
    assert drawn >= 6
    for word in ("BCG", "Normand", "Hackshaw", "Yusuf", "Collins", "Raudenbush"):
        code = next(block for heading, block in HEADED if word in heading)
        assert re.search(r"^\w+ = ma\.plots\.forest\(res\)", code, flags=re.M), (
            f"the {word} example does not draw its forest plot in one call")


def test_notebook_06_follows_the_readme_path() -> None:
    # The notebook for other studies computes the BCG analysis with the README's own calls:
    # the effect sizes and the pooled model are the same statements (whitespace aside).
    notebook = json.loads((ROOT / "notebooks" / "06_your_own_data.ipynb")
                          .read_text(encoding="utf-8"))
    code = " ".join("".join(c["source"]) for c in notebook["cells"]
                    if c["cell_type"] == "code")
    flat = " ".join(code.split())
    bcg = next(block for heading, block in HEADED if heading.startswith("BCG"))
    statements = re.findall(r"^((?:dat|res) = ma\.[^\n]*(?:\n +[^\n]*)*)", bcg, flags=re.M)
    assert len(statements) >= 2
    for statement in statements:
        one_line = " ".join(statement.split("#")[0].split())
        assert one_line in flat, f"notebook 06 lacks the README's {one_line!r}"
