"""Assemble the self-contained HTML report (formatting only; the CLI writes it).

Figures are embedded as base64 PNG ``<img>`` elements, tables are rendered by
:func:`analysis.report.render.to_html` (every cell escaped), and the page carries the methods text,
software versions and a hash of the input data. No scripts, no external resources, no
timestamps, so the same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

import pandas as pd

from analysis.report.plan import AnalysisRun, Plan
from analysis.report.render import escape_html, to_html

__all__ = ["data_hash", "methods_text", "render_report", "software_versions"]

_STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; margin-top: 2.2rem; }
h3 { font-size: 1.05rem; }
table { border-collapse: collapse; font-size: 0.8rem; margin: 0.6rem 0 1.2rem; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.3rem; }
th, td { border-bottom: 1px solid #ccc; padding: 0.2rem 0.45rem; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
thead th { border-bottom: 2px solid #444; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: #444; }
.note { color: #8a3b00; } code { font-size: 0.85rem; }
"""

PACKAGES = ("numpy", "scipy", "pandas", "statsmodels", "matplotlib")


def data_hash(paths: Sequence[Path]) -> str:
    """SHA-256 over the bytes of the input files, in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode("utf-8") + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def software_versions() -> dict[str, str]:
    """Versions of Python packages the results depend on (and of this package)."""
    import platform

    versions = {"python": platform.python_version()}
    for name in ("baclofen-meta", *PACKAGES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def methods_text(plan: Plan) -> str:
    """Plain-language methods paragraph naming the estimator and the conventions."""
    ci = ("Wald-type z" if plan.ci == "z" else "Hartung-Knapp-Sidik-Jonkman (t on k - 1 df)")
    return (
        f"Comparisons of each treatment arm against {plan.comparator or 'any control'} arms "
        f"were built from arm-level data (events and totals; means, SDs and n), or from a "
        f"published estimate and its 95% CI where a trial reported only that. Multi-arm "
        f"trials: shared control arms were {plan.multiarm}. Effect sizes follow metafor's "
        f"escalc defaults (log odds and risk ratios with 1/2 added to every cell of a study "
        f"with a zero cell; SMD as Hedges' g with the exact correction). Pooling: "
        f"random-effects model with tau^2 estimated by {plan.method} and {ci} confidence "
        f"intervals at {100 * plan.level:g}%; I^2 from tau^2 as in metafor; Q-profile "
        f"intervals for tau^2; prediction intervals as metafor's predict(). Sensitivity: "
        f"fixed-effect (inverse variance and Mantel-Haenszel), DerSimonian-Laird, REML with "
        f"Hartung-Knapp, leave-one-out, and the primary model without derived numbers "
        f"(counts from percentages, SDs from SEs)"
        + ("; with a risk-of-bias table, the studies at low risk of bias or with some "
           "concerns only (RoB 2 overall judgement)" if plan.risk_of_bias else "")
        + ". Subgroups: separate tau^2 per subgroup "
        "and the Q test between subgroup estimates. Every estimator is checked against "
        "R's metafor in the test suite."
    )


def _figure_html(stem: str, png: bytes, caption: str) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return (f'<figure id="{escape_html(stem)}"><img alt="{escape_html(caption)}" '
            f'src="data:image/png;base64,{encoded}"><figcaption>{escape_html(caption)}'
            f"</figcaption></figure>")


def render_report(
    plan: Plan,
    runs: Sequence[AnalysisRun],
    tables: Mapping[str, tuple[str, pd.DataFrame]],
    figures: Mapping[str, Sequence[tuple[str, str, bytes]]],
    *,
    summary: str,
    input_hash: str,
    versions: Mapping[str, str],
    risk_of_bias: tuple[str, Sequence[tuple[str, str, bytes]], Sequence[str]] | None = None,
) -> str:
    """Return the whole HTML page.

    Parameters
    ----------
    plan : Plan
        The analysis plan (title, methods).
    runs : sequence of AnalysisRun
        The analyses, in plan order; figures are placed under their analysis.
    tables : mapping of name to (caption, DataFrame)
        Tables to include, in order.
    figures : mapping of analysis id to a sequence of (stem, caption, PNG bytes)
        Figures, placed under their analysis.
    summary : str
        One-line data summary (studies, arms, rows).
    input_hash : str
        SHA-256 of the input files.
    versions : mapping of str to str
        Software versions.
    risk_of_bias : tuple, optional
        ``(rules text, figures as (stem, caption, PNG bytes), names of tables)``: a section
        "Risk of bias (RoB 2)" with the rules, the figures and those tables (which then
        are not repeated under "Tables").
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape_html(plan.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape_html(plan.title)}</h1>",
        f"<p>Data: {escape_html(summary)}.</p>",
        "<h2>Methods</h2>",
        f"<p>{escape_html(methods_text(plan))}</p>",
        "<h2>Tables</h2>",
    ]
    rob_tables = set(risk_of_bias[2]) if risk_of_bias is not None else set()
    for name, (caption, frame) in tables.items():
        if name not in rob_tables:
            parts.append(to_html(frame, caption=caption))
    if risk_of_bias is not None:
        rules, rob_figures, names = risk_of_bias
        parts.append('<h2 id="risk-of-bias">Risk of bias (RoB 2)</h2>')
        parts.append(f"<p>{escape_html(rules)}</p>")
        for stem, caption, png in rob_figures:
            parts.append(_figure_html(stem, png, caption))
        for name in names:
            if name in tables:
                caption, frame = tables[name]
                parts.append(to_html(frame, caption=caption))
    parts.append("<h2>Analyses</h2>")
    for run in runs:
        parts.append(f"<h3>{escape_html(run.spec.label)} ({escape_html(run.spec.measure)})"
                     "</h3>")
        if run.note:
            parts.append(f'<p class="note">{escape_html(run.note)}</p>')
        for stem, caption, png in figures.get(run.spec.id, ()):
            parts.append(_figure_html(stem, png, caption))
    parts.append("<h2>Reproducibility</h2>")
    rows = pd.DataFrame({"software": list(versions), "version": list(versions.values())})
    parts.append(to_html(rows, caption="Software versions"))
    parts.append(f"<p>Input data SHA-256: <code>{escape_html(input_hash)}</code></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
