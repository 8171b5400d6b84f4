"""The public API after any import order, and the import directions of DESIGN.md.

Python binds every imported submodule as an attribute of its package, so a submodule named
like an exported function (``analysis.dose_response`` once, ``analysis.contrasts`` now) can
replace the function: ``ma.gl_covariance(...)`` then ``ma.dose_response(...)`` used to raise
"TypeError: 'module' object is not callable". These tests import every submodule in several
orders, interleaved with public-name look-ups, each in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import random
import subprocess
import sys
from pathlib import Path

import pytest

import analysis

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "analysis"


def _module_name(path: Path) -> tuple[str, bool]:
    """Dotted name of a source file and whether it is a package's ``__init__``."""
    parts = path.relative_to(REPO).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _submodules() -> list[str]:
    """Every module of the package, found on disk (importing nothing)."""
    return sorted(_module_name(path)[0] for path in PACKAGE.rglob("*.py"))


MODULES = _submodules()

#: Runs in a fresh interpreter: perform the steps (import a module / look up a public name),
#: then check every public name, and call gl_covariance then dose_response.
_CHILD = r"""
import importlib, json, sys, types
import numpy as np
import analysis as ma

def check(name):
    value = getattr(ma, name)
    assert not isinstance(value, types.ModuleType), f"ma.{name} is the module {value!r}"
    assert callable(value), f"ma.{name} is not callable: {value!r}"
    defining = importlib.import_module(ma._EXPORTS[name])
    assert value is getattr(defining, name), f"ma.{name} is not {ma._EXPORTS[name]}.{name}"

for kind, name in json.loads(sys.argv[1]):
    if kind == "module":
        importlib.import_module(name)
    else:
        check(name)
for name in ma.__all__:
    check(name)
assert sorted(ma.__all__) == sorted(ma._EXPORTS), "__all__ and _EXPORTS differ"
for name in ma._SUBPACKAGES:  # ma.plots / ma.datasets work without importing them
    assert getattr(ma, name) is importlib.import_module(f"analysis.{name}"), name

V = ma.gl_covariance([30, 45, 60], [1000, 900, 800], [0, 0.4, 0.7], [0, 0.05, 0.04], type="ci")
fit = ma.dose_response([0.4, 0.7], V, [10.0, 20.0], [1, 1], method="FE")
assert np.isfinite(np.asarray(fit.coef)).all(), fit
print("ok")
"""


def _orders() -> dict[str, list[tuple[str, str]]]:
    modules = [("module", m) for m in MODULES]
    names = [("name", n) for n in analysis.__all__]
    orders = {
        "sorted": sorted(modules),
        "reversed": sorted(modules, reverse=True),
        "names_first": [*names, *sorted(modules)],
        "gl_covariance_then_dose": [("name", "gl_covariance"), ("module", "analysis.dose"),
                                    ("name", "dose_response"), ("module", "analysis.contrasts"),
                                    ("name", "contrasts")],
    }
    for seed in (1, 2, 3, 4):
        steps = modules + names
        random.Random(seed).shuffle(steps)
        orders[f"shuffle_{seed}"] = steps
    return orders


ORDERS = _orders()


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_public_names_survive_any_import_order(order: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(ORDERS[order])],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"


def test_every_submodule_is_found() -> None:
    found = {m.name for m in pkgutil.walk_packages(analysis.__path__, "analysis.")}
    assert found | {"analysis"} == set(MODULES)
    for sub in ("analysis.data", "analysis.report", "analysis.dose", "analysis.plots"):
        assert sub in MODULES


def test_the_metafor_users_names_are_exported() -> None:
    # issue 10: baujat and design_matrix were not exported; anova and influence are new
    for name in ("anova", "baujat", "design_matrix", "influence", "PoolResult",
                 "MetaRegressionResult"):
        assert name in analysis.__all__, name
    assert set(analysis._SUBPACKAGES) == {"bayesian", "datasets", "plots"}


def test_no_exported_name_is_also_a_subpackage() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert not packages & set(analysis.__all__)


# --- import directions (DESIGN.md: "A test checks the import directions") -----------------


def _imports(source: str, module: str, is_package: bool) -> set[str]:
    """Every module an ``import`` statement names, lazy and relative imports included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            stem = node.module or ""
            if node.level:  # relative: resolve against the module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = package[: len(package) - (node.level - 1)]
                stem = ".".join([*base, stem] if stem else base)
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("data", "report", "plots", "dose"):
        return parts[1]
    return "core"


def _within(imported: str, prefix: str) -> bool:
    return imported == prefix or imported.startswith(prefix + ".")


FILES = {_module_name(p)[0]: p for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(FILES))
def test_import_directions(module: str) -> None:
    path = FILES[module]
    imports = _imports(path.read_text(encoding="utf-8"), *_module_name(path))
    layer = _layer(module)
    if layer in ("core", "dose", "data") and module not in ("analysis", "analysis.__main__"):
        bad = {i for i in imports if _within(i, "analysis.report") or _within(i, "analysis.plots")}
        assert not bad, f"{module} ({layer}) imports the report or plot layer: {sorted(bad)}"
    if layer not in ("plots", "report"):
        bad = {i for i in imports if _within(i, "matplotlib")}
        assert not bad, f"{module} imports matplotlib; only analysis.plots and analysis.report may"
    if layer == "data":
        # The Makefile's characteristics table depends on analysis/data/, analysis/errors.py
        # and the report package only, so the data package may import nothing else.
        bad = {i for i in imports if _within(i, "analysis")
               and not (_within(i, "analysis.data") or _within(i, "analysis.errors"))}
        assert not bad, f"{module} imports outside analysis.data and analysis.errors: {bad}"
    if layer == "plots":
        bad = {i for i in imports if _within(i, "analysis.report")}
        assert not bad, f"{module} (plots) imports the report layer: {sorted(bad)}"


def test_import_scan_sees_lazy_and_relative_imports() -> None:
    source = (
        "def f():\n"
        "    import matplotlib.pyplot as plt\n"
        "    from analysis.report import cli\n"
        "    from . import _basis\n"
        "    from ..plots import forest\n"
    )
    found = _imports(source, "analysis.dose._fit", is_package=False)
    assert {"matplotlib.pyplot", "analysis.report.cli", "analysis.dose._basis",
            "analysis.plots.forest"} <= found
    assert "analysis.plots" in _imports("from .plots import x\n", "analysis", is_package=True)
