"""Command line of the toolkit: the only code that writes files.

Usage::

    python -m analysis validate [DIR]
    python -m analysis table characteristics [--trials DIR] --out PREFIX
    python -m analysis datapackage DIR
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from analysis.data import summarise_trials, validate_trials
from analysis.errors import DataValidationError
from analysis.output import write_bytes_atomic, write_table


def _validate(args: argparse.Namespace) -> int:
    try:
        tables = validate_trials(args.directory)
    except DataValidationError as exc:
        print(exc, file=sys.stderr)
        return 1
    where = args.directory or "the shipped trials/"
    print(f"{where}: valid: {summarise_trials(tables)}")
    return 0


def _table(args: argparse.Namespace) -> int:
    from analysis import tables

    try:
        data = validate_trials(args.trials)
    except DataValidationError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.name == "characteristics":
        frame = tables.study_characteristics(data["studies"], data["arms"])
        caption = "Characteristics of included studies"
    else:  # pragma: no cover - argparse restricts the choices
        raise AssertionError(args.name)
    write_table(frame, Path(args.out), caption=caption, formats=args.formats)
    return 0


def _datapackage(args: argparse.Namespace) -> int:
    from analysis.schema import descriptor_bytes

    target = Path(args.directory) / "datapackage.json"
    write_bytes_atomic(target, descriptor_bytes())
    print(f"wrote {target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``python -m analysis``."""
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser("validate", help="check a trials directory and summarise it")
    validate.add_argument("directory", nargs="?", default=None,
                          help="trials directory (default: the shipped trials/)")
    validate.set_defaults(func=_validate)

    table = sub.add_parser("table", help="write a table as CSV, Markdown and LaTeX")
    table.add_argument("name", choices=["characteristics"])
    table.add_argument("--trials", default=None, help="trials directory")
    table.add_argument("--out", required=True,
                       help="output path without extension, e.g. tables/characteristics")
    table.add_argument("--formats", nargs="+", default=["csv", "md", "tex"],
                       choices=["csv", "md", "tex", "html"])
    table.set_defaults(func=_table)

    package = sub.add_parser("datapackage",
                             help="write the schema's datapackage.json into a trials directory")
    package.add_argument("directory")
    package.set_defaults(func=_datapackage)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
