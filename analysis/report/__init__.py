"""The application behind ``make report``: the only layer that writes files.

Modules, in the order data flows through them:

- :mod:`analysis.report.plan`: read the analysis plan (TOML) and run its analyses;
- :mod:`analysis.report.tables`: the result tables of the runs (tidy DataFrames);
- :mod:`analysis.report.render`: the characteristics table and the CSV, Markdown, LaTeX and
  HTML renderers of any table;
- :mod:`analysis.report.figures`: which figures an analysis gets, and drawing them;
- :mod:`analysis.report.html`: the self-contained HTML report;
- :mod:`analysis.report.output`: atomic file writing;
- :mod:`analysis.report.snapshot`: the validated trials and the analysis runs of one build,
  kept in ``build/`` with a digest of their inputs so that a build reads them once;
- :mod:`analysis.report.cli`: the command line (``python -m analysis``).

Importing this package imports none of them (the command line imports what each command
needs), so the characteristics table never loads the statistics.
"""
