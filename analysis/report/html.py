"""Assemble the self-contained HTML report (formatting only; the CLI writes it).

The page is rendered from the Jinja2 templates in ``analysis/report/templates/`` (package
data, autoescaped): ``report.html.j2`` with its inlined stylesheet ``report.css`` and the
table macro of ``table.html.j2`` that :func:`analysis.report.render.to_html` also uses.
Figures are embedded as base64 PNG ``<img>`` elements shown at their physical size (the
PNG's pixel width over the dpi recorded in its ``pHYs`` chunk), and the page carries a table
of contents, the methods text, optional results text, software versions and a hash of the
input data. No scripts, no external resources, no timestamps, so the same inputs give the
same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.report.plan import AnalysisRun, Plan
from analysis.report.render import table_context, template_environment

__all__ = [
    "KEY_FINDINGS",
    "anchor",
    "data_hash",
    "methods_text",
    "png_width_cm",
    "render_report",
    "software_versions",
]

#: The key of the key-findings paragraphs in ``render_report(narrative=...)``.
KEY_FINDINGS = "key_findings"

PACKAGES = ("numpy", "scipy", "pandas", "statsmodels", "matplotlib", "jinja2", "python-docx")


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
        "and the Q test between subgroup estimates." + _further_methods(plan)
        + " Every estimator is checked against R's metafor (or the reference package named "
        "in the test suite)."
    )


def _further_methods(plan: Plan) -> str:
    """Describe the robustness, Bayesian, sequential and multiverse analyses of the plan."""
    from analysis.report.captions import prior_label

    parts = []
    if plan.gosh:
        parts.append(f" Robustness: GOSH plots (the pooled estimate of every subset of the "
                     f"comparisons, from {plan.gosh_min_k} comparisons) and small-study tests "
                     "(Egger's regression, Begg's rank correlation, Harbord's and Peters' tests "
                     "for odds ratios, trim-and-fill, PET-PEESE, fail-safe N), interpretable "
                     "only from 10 studies.")
    if plan.bayes_analyses:
        priors = " and ".join(prior_label(p) for p in plan.bayes_sensitivity_priors)
        parts.append(f" Bayesian random-effects meta-analysis (bayesmeta's numerical "
                     f"integration, flat prior for the overall effect) with a "
                     f"{prior_label(plan.bayes_tau_prior)} "
                     f"prior for tau" + (f" and, as sensitivity analyses, {priors}" if priors
                                         else "") + "; a multi-arm trial enters once, its "
                     "treatment arms combined.")
    if plan.tsa_analyses:
        spending = {"obf": "O'Brien-Fleming", "pocock": "Pocock"}.get(plan.tsa_spending,
                                                                     plan.tsa_spending)
        parts.append(f" Trial sequential analysis: Lan-DeMets {spending} alpha-spending "
                     f"boundaries (two-sided alpha {plan.tsa_alpha:g}, power "
                     f"{100 * (1 - plan.tsa_beta):g}%), {plan.tsa_method} random-effects "
                     f"Z-curve, required information size adjusted by "
                     f"{plan.tsa_heterogeneity}; the anticipated effects are assumptions of the "
                     "plan.")
    if plan.multiverse:
        parts.append(" Multiverse: every combination of the plan's choices (outcome "
                     "definition, time point, analysis set, derived numbers, published "
                     "estimates, population, dose, measure, tau^2 estimator, CI method) is "
                     "fitted and shown as a specification curve.")
    return "".join(parts)


def png_width_cm(png: bytes) -> float | None:
    """Physical width of a PNG in centimetres, from its pixel width and ``pHYs`` density.

    Returns None when the file records no density in pixels per metre (then the page shows
    the figure at the browser's default size, no wider than the text).
    """
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG file (no PNG signature and IHDR chunk)")
    (width,) = struct.unpack(">I", png[16:20])
    offset = 8
    while offset + 8 <= len(png):
        (length,) = struct.unpack(">I", png[offset:offset + 4])
        kind = png[offset + 4:offset + 8]
        if kind == b"pHYs":
            x_per_unit, _, unit = struct.unpack(">IIB", png[offset + 8:offset + 17])
            return 100 * width / x_per_unit if unit == 1 and x_per_unit else None
        if kind in (b"IDAT", b"IEND"):  # pHYs must come before the image data
            return None
        offset += 12 + length
    return None


def anchor(*parts: str) -> str:
    """Return an HTML ``id`` made from text: lower case, other characters as ``-``."""
    return "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts)


def _figure(stem: str, caption: str, png: bytes) -> dict[str, Any]:
    width = png_width_cm(png)
    return {"anchor": stem, "caption": caption,
            "base64": base64.b64encode(png).decode("ascii"),
            "width": None if width is None else f"{width:.2f}cm"}


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
    narrative: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Return the whole HTML page.

    Parameters
    ----------
    plan : Plan
        The analysis plan (title, methods).
    runs : sequence of AnalysisRun
        The analyses, in plan order; figures are placed under their analysis.
    tables : mapping of name to (caption, DataFrame)
        Tables to include, in order; each is anchored as ``table-NAME``.
    figures : mapping of analysis id to a sequence of (stem, caption, PNG bytes)
        Figures, placed under their analysis and shown at their physical size
        (:func:`png_width_cm`); captions are shown as given.
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
    narrative : mapping of str to sequence of str, optional
        Results text, each string one paragraph of plain text (escaped): under
        :data:`KEY_FINDINGS` the "Key findings" section near the top, under an analysis id
        the "Results" paragraphs of that analysis. None (the default) or a missing key
        omits the section.

    Raises
    ------
    ValueError
        If ``narrative`` has a key that is neither :data:`KEY_FINDINGS` nor an analysis id.
    """
    narrative = dict(narrative or {})
    ids = [run.spec.id for run in runs]
    unknown = sorted(set(narrative) - {KEY_FINDINGS, *ids})
    if unknown:
        raise ValueError(f"narrative: unknown keys {unknown}; allowed: {KEY_FINDINGS!r} and "
                         f"the analysis ids {ids}")
    rob_names = list(risk_of_bias[2]) if risk_of_bias is not None else []
    main_tables = [table_context(frame, caption=caption, anchor=anchor("table", name))
                   for name, (caption, frame) in tables.items() if name not in rob_names]
    rob: dict[str, Any] | None = None
    if risk_of_bias is not None:
        rules, rob_figures, _ = risk_of_bias
        rob = {
            "rules": rules,
            "figures": [_figure(stem, caption, png) for stem, caption, png in rob_figures],
            "tables": [table_context(tables[name][1], caption=tables[name][0],
                                     anchor=anchor("table", name))
                       for name in rob_names if name in tables],
        }
    analyses = [
        {
            "anchor": anchor("analysis", run.spec.id),
            "heading": f"{run.spec.label} ({run.spec.measure})",
            "note": run.note or "",
            "results": list(narrative.get(run.spec.id, ())),
            "figures": [_figure(stem, caption, png)
                        for stem, caption, png in figures.get(run.spec.id, ())],
        }
        for run in runs
    ]
    key_findings = list(narrative.get(KEY_FINDINGS, ()))
    toc: list[dict[str, Any]] = []
    if key_findings:
        toc.append({"anchor": "key-findings", "text": "Key findings", "children": []})
    toc.append({"anchor": "methods", "text": "Methods", "children": []})
    toc.append({"anchor": "tables", "text": "Tables", "children": [
        {"anchor": t["anchor"], "text": t["caption"]} for t in main_tables]})
    if rob is not None:
        toc.append({"anchor": "risk-of-bias", "text": "Risk of bias (RoB 2)", "children": [
            {"anchor": t["anchor"], "text": t["caption"]} for t in rob["tables"]]})
    toc.append({"anchor": "analyses", "text": "Analyses", "children": [
        {"anchor": a["anchor"], "text": a["heading"]} for a in analyses]})
    toc.append({"anchor": "reproducibility", "text": "Reproducibility", "children": []})
    versions_table = table_context(
        pd.DataFrame({"software": list(versions), "version": list(versions.values())}),
        caption="Software versions", anchor="software-versions")
    template = template_environment().get_template("report.html.j2")
    return template.render(
        title=plan.title, summary=summary, toc=toc, key_findings=key_findings,
        methods=methods_text(plan), tables=main_tables, risk_of_bias=rob, analyses=analyses,
        versions=versions_table, input_hash=input_hash,
    )
