"""Command line of the toolkit (``python -m analysis``): the only code that writes files.

Usage::

    python -m analysis validate [DIR] [--snapshot build/trials.pickle]
    python -m analysis table characteristics [--trials DIR] --out PREFIX
    python -m analysis datapackage DIR
    python -m analysis makefile --plan PLAN --out build/plan.mk
    python -m analysis figures --plan PLAN --analysis ID [--analysis ID ...] --outdir figures
    python -m analysis rob-figures --plan PLAN --outdir figures
    python -m analysis tables --plan PLAN --outdir tables
    python -m analysis report --plan PLAN --figures figures --out figures/report.html
    python -m analysis import-rm5 REVIEW.rm5 --out DIR

Every command that reads the trials also takes ``--validated build/trials.pickle``: the
snapshot ``validate --snapshot`` wrote (:mod:`analysis.report.snapshot`), so that a build
validates the trials once; a snapshot that no longer matches the trials or the code is
refused. Without it a command validates the trials itself. Likewise ``makefile --runs-out
build/runs.pickle`` keeps the plan's analysis runs, and ``tables``, ``figures`` and ``report``
read them with ``--runs build/runs.pickle`` instead of running the analyses again.

Every error a user can cause (invalid data, an invalid plan, a file that cannot be read or
written, a bad argument) is printed as a message naming the file, row, column or key,
without a traceback; ``--debug`` (before the command) shows the traceback instead. Exit
codes: 0 success, 1 invalid data or a file that cannot be read or written, 2 an invalid
plan or argument, 3 an internal error (a bug: please report it with the ``--debug``
output).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.data import default_trials_path, summarise_trials, validate_trials
from analysis.errors import ConvergenceError, DataValidationError
from analysis.report.output import (
    TABLE_FORMATS,
    OutputError,
    render_table,
    write_bytes_atomic,
    write_files_atomic,
    write_table,
)
from analysis.report.snapshot import (
    StaleSnapshotError,
    load_validated,
    read_runs,
    runs_bytes,
    snapshot_bytes,
)

#: Exit codes (see the module docstring).
EXIT_DATA = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def _validate(args: argparse.Namespace) -> int:
    try:
        tables = validate_trials(args.directory)
    except DataValidationError:  # main prints it
        if args.snapshot is not None:  # a snapshot of the previous data must not outlive it
            Path(args.snapshot).unlink(missing_ok=True)
        raise
    where = args.directory or "the shipped trials/"
    print(f"{where}: valid: {summarise_trials(tables)}")
    if args.snapshot is not None:
        directory = args.directory if args.directory is not None else default_trials_path()
        write_bytes_atomic(Path(args.snapshot), snapshot_bytes(tables, directory))
    return 0


def _table(args: argparse.Namespace) -> int:
    from analysis.report import render

    data = load_validated(args.trials, args.validated)  # main prints a DataValidationError
    if args.name == "characteristics":
        frame = render.study_characteristics(data["studies"], data["arms"])
        caption = "Characteristics of included studies"
    else:  # pragma: no cover - argparse restricts the choices
        raise AssertionError(args.name)
    write_table(frame, Path(args.out), caption=caption, formats=args.formats)
    return 0


def _datapackage(args: argparse.Namespace) -> int:
    from analysis.data.schema import descriptor_bytes

    target = Path(args.directory) / "datapackage.json"
    write_bytes_atomic(target, descriptor_bytes())
    print(f"wrote {target}")
    return 0


def _import_rm5(args: argparse.Namespace) -> int:
    from analysis.data.revman import read_rm5, rm5_to_trials, trials_files
    from analysis.report.output import write_directory_atomic

    trials = rm5_to_trials(read_rm5(args.file))  # errors: main prints them
    files = trials_files(trials)
    for row in trials["skipped"].to_dict("records"):
        print(f"left out {row['study_id']} {row['outcome']} ({row['source_location']}): "
              f"{row['reason']}", file=sys.stderr)
    try:
        write_directory_atomic(Path(args.out), files, check=validate_trials)
    except FileExistsError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {', '.join(sorted(files))} from {args.file}")
    return 0


class _UsageError(Exception):
    """A command-line argument that the parser cannot check (printed, exit code 2)."""


def _load_plan(args: argparse.Namespace,
               only: Sequence[str] | None = None) -> tuple[Any, Any, Any]:
    """Read the plan and its trials and run its analyses (only those whose ids are ``only``).

    Returns the plan, the validated tables (read once, for the tables and the report; from
    the snapshot ``args.validated`` when given) and the analysis runs, in the plan's order
    (from the cache ``args.runs`` when given).
    """
    from analysis.data import join_trials
    from analysis.report.plan import read_plan, run_analysis

    plan = read_plan(args.plan)
    ids = {spec.id for spec in plan.analyses}
    unknown = [name for name in dict.fromkeys(only or ()) if name not in ids]
    if unknown:
        raise _UsageError("argument --analysis: " + ", ".join(map(repr, unknown))
                          + f" {'is not an analysis' if len(unknown) == 1 else 'are not analyses'}"
                          f" of {args.plan}; its analyses: "
                          + ", ".join(spec.id for spec in plan.analyses))
    specs = plan.analyses if only is None else tuple(
        spec for spec in plan.analyses if spec.id in set(only))
    tables = load_validated(plan.trials, args.validated)
    if getattr(args, "runs", None) is not None:
        wanted = {spec.id for spec in specs}
        runs = [run for run in read_runs(args.runs, args.plan, plan.trials)
                if run.spec.id in wanted]
        return plan, tables, runs
    trials = join_trials(tables)
    rob = tables.get("risk_of_bias")
    runs = [run_analysis(trials, spec, plan, rob) for spec in specs]
    return plan, tables, runs


def figure_groups(sizes: Sequence[tuple[str, int]]) -> list[list[str]]:
    """Group analyses into figure recipes: fewer processes, none longer than the largest.

    Every ``python -m analysis figures`` process pays about a second to import the
    libraries and read the runs, more than drawing a small analysis' figures takes; so the
    analyses are packed, first fit in decreasing order of their number of figures, into
    groups of at most as many figures as the analysis with the most. The largest analysis
    stays alone, so ``make`` of one of its figures draws no other analysis'.

    Parameters
    ----------
    sizes : sequence of (str, int)
        Analysis id and its number of figures (> 0), in the plan's order.

    Returns
    -------
    list of list of str
        The groups, largest first; the ids of a group in the plan's order.
    """
    if not sizes:
        return []
    capacity = max(n for _, n in sizes)
    order = {name: i for i, (name, _) in enumerate(sizes)}
    groups: list[tuple[int, list[str]]] = []
    for name, n in sorted(sizes, key=lambda item: (-item[1], order[item[0]])):
        for i, (total, members) in enumerate(groups):
            if total + n <= capacity:
                groups[i] = (total + n, [*members, name])
                break
        else:
            groups.append((n, [name]))
    groups.sort(key=lambda group: -group[0])  # stable: ties keep their first-fit order
    return [sorted(members, key=order.__getitem__) for _, members in groups]


def _makefile(args: argparse.Namespace) -> int:
    from analysis.report.figures import FIGURE_FORMATS, figure_stems, rob_figure_stems

    plan, data, runs = _load_plan(args)
    if args.runs_out is not None:
        write_bytes_atomic(Path(args.runs_out), runs_bytes(runs, args.plan, plan.trials))
    lines = ["# Generated by `python -m analysis makefile` from the analysis plan and the data;",
             "# do not edit. Lists exactly the figures each analysis produces.", ""]
    groups = []  # the files of one recipe each
    files_of: dict[str, list[str]] = {}
    stems_of = {run.spec.id: figure_stems(run) for run in runs}
    none = [f"# {run.spec.id}: no figure ({run.note})" for run in runs
            if not stems_of[run.spec.id]]
    lines += [*none, ""] if none else []
    for name, stems in stems_of.items():
        if stems:
            files_of[name] = [f"$(FIGURES)/{stem}.{fmt}" for stem in stems
                              for fmt in FIGURE_FORMATS]
    for members in figure_groups([(name, len(stems)) for name, stems in stems_of.items()
                                  if stems]):
        files = [f for name in members for f in files_of[name]]
        groups.append(files)
        lines.append(f"{' '.join(files)} &: $(TRIALS) $(PLAN) $(FIGURE_CODE) | $(ENV_STAMP) "
                     "$(SNAPSHOT) $(RUNS)")
        lines.append("\t$(PY) -m analysis figures --plan $(PLAN) "
                     + " ".join(f"--analysis {name}" for name in members)
                     + " --validated $(SNAPSHOT) --runs $(RUNS) --outdir $(FIGURES) $(FAIL_STALE)")
        lines.append("")
    rob_files = [f"$(FIGURES)/{stem}.{fmt}" for stem in rob_figure_stems(
        data.get("risk_of_bias")) for fmt in FIGURE_FORMATS]
    if rob_files:
        groups.append(rob_files)
        lines.append(f"{' '.join(rob_files)} &: $(TRIALS) $(PLAN) $(FIGURE_CODE) | "
                     "$(ENV_STAMP) $(SNAPSHOT)")
        lines.append("\t$(PY) -m analysis rob-figures --plan $(PLAN) --validated $(SNAPSHOT) "
                     "--outdir $(FIGURES) $(FAIL_STALE)")
        lines.append("")
    # Make starts parallel jobs in the order of the prerequisites: the recipes with the most
    # figures first, so that a long one does not start last and leave a core idle.
    groups.sort(key=len, reverse=True)
    lines.insert(3, "PLAN_FIGURES := " + " ".join(f for files in groups for f in files))
    lines.insert(4, "")
    write_bytes_atomic(Path(args.out), ("\n".join(lines) + "\n").encode("utf-8"))
    return 0


def _figures(args: argparse.Namespace) -> int:
    from analysis.report.figures import draw_figure, figure_stems
    plan, _, runs = _load_plan(args, only=args.analysis)
    _write_figures(args.outdir, ((stem, lambda run=run, stem=stem: draw_figure(run, plan, stem))
                                 for run in runs for stem in figure_stems(run)))
    return 0


def _write_figures(outdir: str, drawers: Any) -> None:
    """Render every ``(stem, draw)`` in each figure format first, then write them all."""
    from analysis.plots.style import rc_context, savefig_kwargs
    from analysis.report.figures import FIGURE_FORMATS

    rendered: dict[Path, bytes] = {}
    with rc_context():
        for stem, draw in drawers:
            figure = draw()
            for fmt in FIGURE_FORMATS:
                buffer = io.BytesIO()
                figure.savefig(buffer, **savefig_kwargs(fmt))
                rendered[Path(outdir) / f"{stem}.{fmt}"] = buffer.getvalue()
    write_files_atomic(rendered)


def _rob_figures(args: argparse.Namespace) -> int:
    from analysis.report.figures import draw_rob_figure, rob_figure_stems
    from analysis.report.plan import read_plan

    plan = read_plan(args.plan)  # a PlanError is printed by main
    data = load_validated(plan.trials, args.validated)
    rob = data.get("risk_of_bias")
    if rob is not None:  # no table, no figures (rob_figure_stems gives none)
        _write_figures(args.outdir, ((stem, lambda stem=stem: draw_rob_figure(
            stem, rob, data["studies"])) for stem in rob_figure_stems(rob)))
    return 0


def _read_grade(path: Path) -> Any:
    """Read the optional ``grade.csv`` as text cells (an empty frame when there is none)."""
    import pandas as pd

    from analysis.data.csv_reader import file_problem, is_absent
    from analysis.errors import Problem

    if is_absent(path):
        return pd.DataFrame()
    reason = file_problem(path)
    if reason is None:
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        except (OSError, ValueError) as exc:  # pandas' ParserError and bad bytes: ValueErrors
            reason = f"cannot be read as CSV: {str(exc).strip()}"
    raise DataValidationError([Problem(path.name, None, None, None, reason)],
                              str(path.parent))


def _grade_table(plan: Any) -> Any:
    """Read the plan's GRADE judgements (``grade.csv`` beside the trials; may be absent)."""
    return _read_grade(Path(plan.trials) / "grade.csv")


def _report_tables(plan: Any, data: Any, runs: Any) -> dict[str, tuple[str, Any]]:
    from analysis.report import render, rob_tables, robustness_tables, tables
    from analysis.report.captions import MIN_STUDIES_FUNNEL

    certainty = _grade_table(plan)
    return {
        "characteristics": ("Characteristics of included studies",
                            render.study_characteristics(data["studies"], data["arms"])),
        "pooled_results": ("Pooled results (primary model)", tables.pooled_table(runs, plan.level)),
        "study_effects": ("Per-study effects, as in the forest plots (a study that entered by "
                          "its published estimate keeps its published CI; pooling used vi)",
                          tables.study_table(runs, plan.level)),
        "summary_of_findings": ("Summary of findings (GRADE)", rob_tables.with_grade_column(
            tables.summary_of_findings(runs, certainty, plan.level), runs)),
        "estimator_sensitivity": ("Estimator sensitivity",
                                  tables.estimator_table(runs, plan.level)),
        "subgroups": ("Subgroup analyses", tables.subgroup_table(runs, plan.level)),
        "dose_response": ("Dose-response meta-regression",
                          tables.dose_response_table(runs, plan.dose_per, plan.level)),
        "multiverse": ("Multiverse (specification-curve) analysis: feasible specifications, "
                       "shares by conclusion and the choices that move the estimate most "
                       "(medians over the levels of each choice)",
                       tables.multiverse_table(runs)),
        "risk_of_bias": ("Risk of bias (RoB 2): study-level judgements per domain",
                         rob_tables.judgement_table(data.get("risk_of_bias"))),
        "risk_of_bias_sensitivity": (
            "Sensitivity analysis: studies at low risk of bias or with some concerns only, "
            "and GRADE's risk-of-bias domain",
            rob_tables.sensitivity_table(runs, plan.level)),
        "small_study": ("Small-study effects and publication bias (each test with its k; "
                        "outcomes pooled from at least two comparisons; with fewer than "
                        f"{MIN_STUDIES_FUNNEL} studies no test is interpretable)",
                        robustness_tables.small_study_table(runs, plan.level)),
        "bayesian": ("Bayesian random-effects meta-analysis: posterior under the primary and "
                     "two sensitivity priors for tau (flat prior for mu)",
                     robustness_tables.bayes_table(runs, plan)),
        "sequential": ("Trial sequential analysis (the anticipated effect is an assumption of "
                       "the analysis plan)", robustness_tables.tsa_table(runs)),
    }


def _tables(args: argparse.Namespace) -> int:
    plan, data, runs = _load_plan(args)
    frames = _report_tables(plan, data, runs)
    frames.pop("characteristics")
    rendered: dict[Path, bytes] = {}
    for name, (caption, frame) in frames.items():  # every table rendered before any is written
        rendered.update(render_table(frame, Path(args.outdir) / name, caption=caption,
                                     formats=TABLE_FORMATS))
    write_files_atomic(rendered)
    return 0


def _report(args: argparse.Namespace) -> int:
    """Write the HTML report; if that fails, remove the old one so it cannot look current.

    Only an HTML file is removed: a mistyped ``--out`` (the plan, a CSV) is never deleted.
    """
    try:
        return _write_report(args)
    except BaseException:
        stale = Path(args.out)
        if stale.suffix.lower() in (".html", ".htm") and stale.is_file():
            stale.unlink()
            print(f"{stale}: removed the previous report (this build failed)", file=sys.stderr)
        raise


class _InputError(Exception):
    """An input file of the command (not the trials data) that cannot be read."""


def _read_figure(folder: Path, stem: str) -> bytes:
    """Read one PNG figure of the report, or say which one is missing and how to draw it."""
    from analysis.data.csv_reader import file_problem

    path = folder / f"{stem}.png"
    reason = file_problem(path)
    if reason is None:
        try:
            return path.read_bytes()
        except OSError as exc:
            reason = f"cannot be read: {exc.strerror or exc}"
    raise _InputError(f"{path}: {reason} (the report embeds the figures: draw them first with "
                      "`python -m analysis figures` / `rob-figures`, or `make figures`)")


def _write_report(args: argparse.Namespace) -> int:
    from analysis.data import OPTIONAL_RESOURCES, RESOURCES, join_trials
    from analysis.report.captions import figure_caption
    from analysis.report.figures import ROB_FIGURES, figure_stems, rob_figure_stems
    from analysis.report.html import data_hash, render_report, software_versions
    from analysis.report.narrative import narrative
    from analysis.report.rob_tables import rule_text

    plan, data, runs = _load_plan(args)
    figures = {}
    for run in runs:
        figures[run.spec.id] = [
            (stem, figure_caption(run, plan, stem), _read_figure(Path(args.figures), stem))
            for stem in figure_stems(run)
        ]
    rob_figures = [
        (stem, ROB_FIGURES[stem], _read_figure(Path(args.figures), stem))
        for stem in rob_figure_stems(data.get("risk_of_bias"))
    ]
    inputs = [Path(plan.trials) / f"{name}.csv" for name in RESOURCES]
    inputs += [Path(plan.trials) / f"{name}.csv" for name in OPTIONAL_RESOURCES
               if name in data]
    page = render_report(
        plan, runs, _report_tables(plan, data, runs), figures,
        summary=str(summarise_trials(data)),
        input_hash=data_hash([*inputs, Path(args.plan)]), versions=software_versions(),
        risk_of_bias=(rule_text(), rob_figures, ("risk_of_bias", "risk_of_bias_sensitivity")),
        narrative=narrative(runs, plan, studies=data["studies"], trials=join_trials(data),
                            grade=_grade_table(plan), rob=data.get("risk_of_bias")),
    )
    write_bytes_atomic(Path(args.out), page.encode("utf-8"))
    return 0


def _validated_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--validated", default=None, metavar="SNAPSHOT",
                        help="read the trials from this snapshot (written by `validate "
                        "--snapshot`) instead of validating them again")


def _runs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", default=None, metavar="CACHE",
                        help="read the analysis runs from this cache (written by `makefile "
                        "--runs-out`) instead of running the analyses again")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``python -m analysis``."""
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of its message")
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser("validate", help="check a trials directory and summarise it")
    validate.add_argument("directory", nargs="?", default=None,
                          help="trials directory (default: the shipped trials/)")
    validate.add_argument("--snapshot", default=None, metavar="PATH",
                          help="also write the validated tables there (e.g. "
                          "build/trials.pickle), for the other commands' --validated")
    validate.set_defaults(func=_validate)

    table = sub.add_parser("table", help="write a table as CSV, Markdown, LaTeX and Word")
    table.add_argument("name", choices=["characteristics"])
    table.add_argument("--trials", default=None, help="trials directory")
    table.add_argument("--out", required=True,
                       help="output path without extension, e.g. tables/characteristics")
    table.add_argument("--formats", nargs="+", default=["csv", "md", "tex", "docx"],
                       choices=list(TABLE_FORMATS))
    _validated_option(table)
    table.set_defaults(func=_table)

    package = sub.add_parser("datapackage",
                             help="write the schema's datapackage.json into a trials directory")
    package.add_argument("directory")
    package.set_defaults(func=_datapackage)

    rm5 = sub.add_parser("import-rm5", help="convert a RevMan 5 review (.rm5) into a new "
                         "trials directory (all files or none)")
    rm5.add_argument("file", help="the .rm5 file")
    rm5.add_argument("--out", required=True, help="the trials directory to create (new or empty)")
    rm5.set_defaults(func=_import_rm5)

    makefile = sub.add_parser("makefile", help="write the Make rules of the plan's figures")
    makefile.add_argument("--plan", required=True)
    makefile.add_argument("--out", required=True)
    makefile.add_argument("--runs-out", default=None, metavar="PATH",
                          help="also keep the analysis runs there (e.g. build/runs.pickle), "
                          "for the other commands' --runs")
    _validated_option(makefile)
    makefile.set_defaults(func=_makefile)

    figures = sub.add_parser("figures", help="draw the figures (PDF, SVG, PNG) of one or more "
                             "analyses, written together")
    figures.add_argument("--plan", required=True)
    figures.add_argument("--analysis", required=True, action="append",
                         help="an analysis id of the plan (repeat for several)")
    figures.add_argument("--outdir", required=True)
    _validated_option(figures)
    _runs_option(figures)
    figures.set_defaults(func=_figures)

    rob_figures = sub.add_parser("rob-figures",
                                 help="draw the risk-of-bias figures (PDF, SVG, PNG)")
    rob_figures.add_argument("--plan", required=True)
    rob_figures.add_argument("--outdir", required=True)
    _validated_option(rob_figures)
    rob_figures.set_defaults(func=_rob_figures)

    result_tables = sub.add_parser("tables", help="write the plan's result tables")
    result_tables.add_argument("--plan", required=True)
    result_tables.add_argument("--outdir", required=True)
    _validated_option(result_tables)
    _runs_option(result_tables)
    result_tables.set_defaults(func=_tables)

    report = sub.add_parser("report", help="write the self-contained HTML report")
    report.add_argument("--plan", required=True)
    report.add_argument("--figures", required=True, help="folder holding the PNG figures")
    report.add_argument("--out", required=True)
    _validated_option(report)
    _runs_option(report)
    report.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (see the module docstring).

    Every error a user can cause is printed to stderr as a message without a traceback:
    invalid data (:class:`~analysis.errors.DataValidationError`, every problem with file,
    row, column and value; exit 1), an invalid plan
    (:class:`~analysis.report.plan.PlanError`, every problem with plan file, key and value;
    exit 2), an output file or folder that cannot be written
    (:class:`~analysis.report.output.OutputError`; exit 1, nothing written), an input that
    cannot be read (exit 1), an argument the parser cannot check (exit 2), a value the
    statistics refuse or a model that does not converge (exit 1). Anything else is a bug:
    a one-line message and exit 3. A stale snapshot
    (:class:`analysis.report.snapshot.StaleSnapshotError`) exits with 2. With ``--debug``
    every error is re-raised.
    """
    args = build_parser().parse_args(argv)
    command = f"python -m analysis {args.command}"
    try:
        return int(args.func(args))
    except Exception as exc:
        if args.debug:
            raise
        # Only a command that read a plan imported the plan module (and can raise its
        # PlanError); `validate` and the characteristics table never load the statistics.
        plan_module = sys.modules.get("analysis.report.plan")
        if isinstance(exc, StaleSnapshotError) or (
                plan_module is not None and isinstance(exc, plan_module.PlanError)):
            code, message = EXIT_USAGE, str(exc)
        elif isinstance(exc, _UsageError):
            code, message = EXIT_USAGE, f"{command}: error: {exc}"
        elif isinstance(exc, DataValidationError | OutputError | _InputError):
            code, message = EXIT_DATA, str(exc)
        elif isinstance(exc, OSError):  # an input that could not be read
            where = exc.filename if exc.filename else "a file"
            code, message = EXIT_DATA, f"{where}: cannot be read: {exc.strerror or exc}"
        elif isinstance(exc, ValueError | ConvergenceError):
            code, message = EXIT_DATA, f"{command}: {type(exc).__name__}: {exc}"
        else:
            code = EXIT_INTERNAL
            message = (f"{command}: internal error (a bug; please report it with the output "
                       f"of `python -m analysis --debug {args.command} ...`): "
                       f"{type(exc).__name__}: {exc}")
        print(message, file=sys.stderr)
        return code
