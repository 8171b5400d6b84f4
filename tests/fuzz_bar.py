"""The bar every hostile input must meet (issue 13), shared by the fuzz tests and the corpus.

A case meets the bar when the toolkit either succeeds or gives a clear, located error:

- the library raises only :class:`~analysis.errors.DataValidationError`,
  :class:`~analysis.report.plan.PlanError` or a ``ValueError`` whose message names where;
- ``python -m analysis`` (run in-process through ``main(argv)``) returns 0, 1 or 2 (never
  3, the exit code of a bug), prints no traceback, and on failure prints a message of at
  most :data:`SCREEN_LINES` lines, none longer than :data:`LINE_CHARS`, naming the place;
- on failure the output folder is unchanged (no partial output), and the input files are
  unchanged in every case.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fixture_plan import FIXTURE, fixture_plan

from analysis.report.cli import main

#: The small plan of tests/fixture_plan.py on the fixture, without subgroups.
PLAN = fixture_plan("Fuzz report")
#: A message that does not fit here is not "one screen" (one line per problem, values cut).
LINE_CHARS = 1000  # a rule may list a whole vocabulary (~500 characters)
SCREEN_LINES = 60


def make_project(root: Path) -> Path:
    """Copy the fixture to ``root/trials`` and write ``root/plan.toml``; return ``root``."""
    shutil.copytree(FIXTURE, root / "trials")
    (root / "plan.toml").write_text(PLAN, encoding="utf-8")
    return root


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under ``root``, by relative path."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (_content(p) if p.is_file() else None)
            for p in sorted(root.rglob("*")) if not p.is_fifo()}


def _content(path: Path) -> bytes:
    with open(path, "rb") as handle:  # not Path.read_bytes, which a case may patch
        return handle.read()


@dataclass(frozen=True)
class Outcome:
    """What ``python -m analysis`` did with one argument list."""

    code: int
    stderr: str


def run_main(argv: Sequence[str]) -> Outcome:
    """Run ``main(argv)`` in-process, capturing stderr; argparse's exit becomes its code."""
    stream = io.StringIO()
    with contextlib.redirect_stderr(stream), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: a usage message on stderr, exit 2
            code = exc.code if isinstance(exc.code, int) else 2
    return Outcome(code, stream.getvalue())


def bar_failures(outcome: Outcome, *, names: Sequence[str] = ()) -> list[str]:
    """Return why a CLI outcome misses the bar (empty when it meets it).

    ``names``: on failure the message must contain at least one of them (the file, the
    key or the argument the case is about).
    """
    failures = []
    if outcome.code not in (0, 1, 2):
        failures.append(f"exit code {outcome.code}")
    if "Traceback" in outcome.stderr:
        failures.append("a traceback")
    if outcome.code != 0:
        lines = outcome.stderr.strip().splitlines()
        if not lines:
            failures.append("no message")
        if len(lines) > SCREEN_LINES or any(len(line) > LINE_CHARS for line in lines):
            failures.append(f"longer than one screen ({len(lines)} lines, longest "
                            f"{max(map(len, lines), default=0)} characters)")
        if names and not any(name in outcome.stderr for name in names):
            failures.append(f"the message names none of {list(names)}")
    return failures


def located(message: str, names: Sequence[str]) -> bool:
    """True when ``message`` names one of ``names`` (a file, key or argument)."""
    return any(re.search(re.escape(name), message) for name in names)


def check_command(argv: Sequence[str], *, inputs: Path, outputs: Path,
                  names: Sequence[str] = ()) -> tuple[Outcome, list[str]]:
    """Run one command and check the whole bar, inputs and outputs included."""
    inputs_before = snapshot(inputs)
    outputs_before = snapshot(outputs)
    outcome = run_main(argv)
    failures = bar_failures(outcome, names=names)
    if snapshot(inputs) != inputs_before:
        failures.append("an input file changed")
    if outcome.code != 0 and snapshot(outputs) != outputs_before:
        failures.append("partial output: the output folder changed although the command "
                        "failed")
    return outcome, failures
