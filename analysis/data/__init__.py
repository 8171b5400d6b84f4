"""Reading and validating a trials directory: the schema, the CSV reader and the loader.

This package reads and validates; it never writes. :func:`load_trials` returns one tidy
frame, :func:`validate_trials` the typed tables, :func:`join_trials` joins them and
:func:`summarise_trials` counts them; :func:`load_risk_of_bias` returns the optional RoB 2
table (rules in :mod:`analysis.data.risk_of_bias`). The Frictionless descriptor
``datapackage.json`` (the core schema plus the shipped subject's fields) lives next to these
modules, in :mod:`analysis.data.schema`'s care; :mod:`analysis.data.csv_reader` reads cells
as strings.
"""

from __future__ import annotations

from analysis.data.trials import (
    OPTIONAL_RESOURCES,
    RESOURCES,
    TrialsSummary,
    default_trials_path,
    join_trials,
    load_risk_of_bias,
    load_trials,
    summarise_trials,
    validate_trials,
)

__all__ = [
    "OPTIONAL_RESOURCES",
    "RESOURCES",
    "TrialsSummary",
    "default_trials_path",
    "join_trials",
    "load_risk_of_bias",
    "load_trials",
    "summarise_trials",
    "validate_trials",
]
