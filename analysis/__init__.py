"""Meta-analysis of clinical-trial evidence, checked against R's metafor.

``import analysis as ma`` gives the public API (see ``DESIGN.md``); submodules are imported
on first use, so importing the package is cheap and never imports matplotlib.

Data: :func:`load_trials`, :func:`validate_trials`, :func:`contrasts`,
:func:`shared_control_covariance`. Effect sizes: :func:`effect_sizes`,
:func:`effect_from_estimate`, :func:`sd_from_se`, :func:`sd_from_ci`,
:func:`counts_from_percent`. Pooling: :func:`pool`, :func:`mantel_haenszel`, :func:`peto`.
Regression and subgroups: :func:`meta_regression`, :func:`subgroup_analysis`,
:func:`anova`. Bias and sensitivity: :func:`egger_test`, :func:`trim_and_fill`,
:func:`rank_test`, :func:`regtest`, :func:`pet_peese`, :func:`harbord_test`,
:func:`peters_test`, :func:`thompson_sharp_test`,
:func:`fail_safe_n`, :func:`henmi_copas`, :func:`excess_significance`,
:func:`selection_model`,
:func:`leave_one_out`, :func:`cumulative`, :func:`gosh` (with :func:`gosh_diagnostics`),
:func:`permutest`, :func:`multiverse` (specification curve). Dose-response: :func:`dose_response`,
:func:`gl_covariance`, :func:`dose_class_subgroups`. Multilevel and multivariate models:
:func:`rma_mv`, cluster-robust inference :func:`robust`. Influence: :func:`influence`,
:func:`baujat`. Trial sequential analysis: :func:`trial_sequential_analysis`,
:func:`required_information_size`. Bayesian: :func:`bayesmeta` (priors in ``ma.bayesian``).
Network meta-analysis: :func:`network_meta_analysis`, :func:`network_pairwise`,
:func:`decomp_design`, :func:`p_scores`, :func:`netsplit`, :func:`league_table`.
RevMan 5: :func:`read_rm5`, :func:`rm5_to_trials`, :func:`reanalyse_rm5`.
Figures: ``ma.plots.forest(result)`` and the other functions of
:mod:`analysis.plots`; example data: ``ma.datasets.load("bcg")``. Every result class is
exported for type hints (:class:`PoolResult`, :class:`MetaRegressionResult`, ...).
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "load_trials": "analysis.data",
    "validate_trials": "analysis.data",
    "load_risk_of_bias": "analysis.data",
    "summarise_trials": "analysis.data",
    "contrasts": "analysis.contrasts",
    "shared_control_covariance": "analysis.contrasts",
    "study_intervals": "analysis.contrasts",
    "effect_sizes": "analysis.effects",
    "effect_from_estimate": "analysis.effects",
    "sd_from_se": "analysis.effects",
    "sd_from_ci": "analysis.effects",
    "counts_from_percent": "analysis.effects",
    "pool": "analysis.pooling",
    "mantel_haenszel": "analysis.pooling",
    "glmm_or": "analysis.glmm",
    "peto": "analysis.pooling",
    "meta_regression": "analysis.regression",
    "subgroup_analysis": "analysis.regression",
    "anova": "analysis.model_comparison",
    "design_matrix": "analysis.regression",
    "baujat": "analysis.sensitivity",
    "low_risk_sensitivity": "analysis.risk_of_bias",
    "grade_risk_of_bias": "analysis.risk_of_bias",
    "egger_test": "analysis.bias",
    "trim_and_fill": "analysis.bias",
    "leave_one_out": "analysis.sensitivity",
    "cumulative": "analysis.sensitivity",
    "influence": "analysis.sensitivity",
    "gosh": "analysis.gosh",
    "gosh_diagnostics": "analysis.gosh",
    "multiverse": "analysis.multiverse",
    "MultiverseResult": "analysis.results",
    "permutest": "analysis.permutation",
    "back_transform": "analysis.results",
    "PoolResult": "analysis.results",
    "BatchPoolResult": "analysis.results",
    "MantelHaenszelResult": "analysis.results",
    "GlmmResult": "analysis.results",
    "MetaRegressionResult": "analysis.results",
    "MultilevelResult": "analysis.results",
    "RobustResult": "analysis.results",
    "rma_mv": "analysis.multilevel",
    "robust": "analysis.robust",
    "SubgroupResult": "analysis.results",
    "LeaveOneOutResult": "analysis.results",
    "CumulativeResult": "analysis.results",
    "InfluenceResult": "analysis.results",
    "EggerResult": "analysis.results",
    "TrimFillResult": "analysis.results",
    "AnovaResult": "analysis.results",
    "GoshResult": "analysis.results",
    "PermutationResult": "analysis.results",
    "DoseResponseResult": "analysis.results",
    "dose_response": "analysis.dose",
    "bayesmeta": "analysis.bayesian",
    "BayesMetaResult": "analysis.bayesian",
    "trial_sequential_analysis": "analysis.sequential",
    "required_information_size": "analysis.sequential",
    "TrialSequentialResult": "analysis.results",
    "gl_covariance": "analysis.dose",
    "dose_class_subgroups": "analysis.dose",
    "AnalysisWarning": "analysis.errors",
    "DataValidationError": "analysis.errors",
    "ConvergenceError": "analysis.errors",
    "Problem": "analysis.errors",
    "rank_test": "analysis.small_study",
    "regtest": "analysis.small_study",
    "pet_peese": "analysis.small_study",
    "harbord_test": "analysis.small_study",
    "peters_test": "analysis.small_study",
    "thompson_sharp_test": "analysis.small_study",
    "fail_safe_n": "analysis.fail_safe",
    "henmi_copas": "analysis.henmi_copas",
    "excess_significance": "analysis.excess_significance",
    "selection_model": "analysis.selection",
    "RankTestResult": "analysis.results",
    "RegTestResult": "analysis.results",
    "PetPeeseResult": "analysis.results",
    "BinaryBiasResult": "analysis.results",
    "FailSafeResult": "analysis.results",
    "HenmiCopasResult": "analysis.results",
    "ExcessSignificanceResult": "analysis.results",
    "SelectionModelResult": "analysis.results",
    "FewStudiesWarning": "analysis.errors",
    "DesignDecompositionResult": "analysis.network",
    "NetSplitResult": "analysis.network",
    "NetworkResult": "analysis.network",
    "PScoreResult": "analysis.network",
    "decomp_design": "analysis.network",
    "league_table": "analysis.network",
    "netsplit": "analysis.network",
    "network_meta_analysis": "analysis.network",
    "network_pairwise": "analysis.network",
    "p_scores": "analysis.network",
    "read_rm5": "analysis.data.revman",
    "rm5_to_trials": "analysis.data.revman",
    "reanalyse_rm5": "analysis.rm5_reanalysis",
}

#: Subpackages reachable as attributes without an explicit import (``ma.plots.forest(res)``,
#: ``ma.datasets.load("bcg")``); imported on first access, so ``import analysis`` stays cheap.
#: They are modules, not names of ``__all__``.
_SUBPACKAGES = ("bayesian", "datasets", "plots")

__all__ = [
    "AnalysisWarning",
    "AnovaResult",
    "BatchPoolResult",
    "BayesMetaResult",
    "BinaryBiasResult",
    "ConvergenceError",
    "CumulativeResult",
    "DataValidationError",
    "DesignDecompositionResult",
    "DoseResponseResult",
    "EggerResult",
    "ExcessSignificanceResult",
    "FailSafeResult",
    "FewStudiesWarning",
    "GlmmResult",
    "GoshResult",
    "HenmiCopasResult",
    "InfluenceResult",
    "LeaveOneOutResult",
    "MantelHaenszelResult",
    "MetaRegressionResult",
    "MultilevelResult",
    "MultiverseResult",
    "NetSplitResult",
    "NetworkResult",
    "PScoreResult",
    "PermutationResult",
    "PetPeeseResult",
    "PoolResult",
    "Problem",
    "RankTestResult",
    "RegTestResult",
    "RobustResult",
    "SelectionModelResult",
    "SubgroupResult",
    "TrialSequentialResult",
    "TrimFillResult",
    "anova",
    "back_transform",
    "baujat",
    "bayesmeta",
    "contrasts",
    "counts_from_percent",
    "cumulative",
    "decomp_design",
    "design_matrix",
    "dose_class_subgroups",
    "dose_response",
    "effect_from_estimate",
    "effect_sizes",
    "egger_test",
    "excess_significance",
    "fail_safe_n",
    "gl_covariance",
    "glmm_or",
    "gosh",
    "gosh_diagnostics",
    "grade_risk_of_bias",
    "harbord_test",
    "henmi_copas",
    "influence",
    "league_table",
    "leave_one_out",
    "load_risk_of_bias",
    "load_trials",
    "low_risk_sensitivity",
    "mantel_haenszel",
    "meta_regression",
    "multiverse",
    "netsplit",
    "network_meta_analysis",
    "network_pairwise",
    "p_scores",
    "permutest",
    "pet_peese",
    "peters_test",
    "peto",
    "pool",
    "rank_test",
    "read_rm5",
    "reanalyse_rm5",
    "regtest",
    "required_information_size",
    "rm5_to_trials",
    "rma_mv",
    "robust",
    "sd_from_ci",
    "sd_from_se",
    "selection_model",
    "shared_control_covariance",
    "study_intervals",
    "subgroup_analysis",
    "summarise_trials",
    "thompson_sharp_test",
    "trial_sequential_analysis",
    "trim_and_fill",
    "validate_trials",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from analysis import bayesian as bayesian
    from analysis import datasets as datasets
    from analysis import plots as plots
    from analysis.bayesian import BayesMetaResult, bayesmeta
    from analysis.bias import egger_test, trim_and_fill
    from analysis.contrasts import contrasts, shared_control_covariance, study_intervals
    from analysis.data import (
        load_risk_of_bias,
        load_trials,
        summarise_trials,
        validate_trials,
    )
    from analysis.data.revman import read_rm5, rm5_to_trials
    from analysis.dose import dose_class_subgroups, dose_response, gl_covariance
    from analysis.effects import (
        counts_from_percent,
        effect_from_estimate,
        effect_sizes,
        sd_from_ci,
        sd_from_se,
    )
    from analysis.errors import (
        AnalysisWarning,
        ConvergenceError,
        DataValidationError,
        FewStudiesWarning,
        Problem,
    )
    from analysis.excess_significance import excess_significance
    from analysis.fail_safe import fail_safe_n
    from analysis.glmm import glmm_or
    from analysis.gosh import gosh, gosh_diagnostics
    from analysis.henmi_copas import henmi_copas
    from analysis.model_comparison import anova
    from analysis.multilevel import rma_mv
    from analysis.multiverse import multiverse
    from analysis.network import (
        DesignDecompositionResult,
        NetSplitResult,
        NetworkResult,
        PScoreResult,
        decomp_design,
        league_table,
        netsplit,
        network_meta_analysis,
        network_pairwise,
        p_scores,
    )
    from analysis.permutation import permutest
    from analysis.pooling import mantel_haenszel, peto, pool
    from analysis.regression import design_matrix, meta_regression, subgroup_analysis
    from analysis.results import (
        AnovaResult,
        BatchPoolResult,
        BinaryBiasResult,
        CumulativeResult,
        DoseResponseResult,
        EggerResult,
        ExcessSignificanceResult,
        FailSafeResult,
        GlmmResult,
        GoshResult,
        HenmiCopasResult,
        InfluenceResult,
        LeaveOneOutResult,
        MantelHaenszelResult,
        MetaRegressionResult,
        MultilevelResult,
        MultiverseResult,
        PermutationResult,
        PetPeeseResult,
        PoolResult,
        RankTestResult,
        RegTestResult,
        RobustResult,
        SelectionModelResult,
        SubgroupResult,
        TrialSequentialResult,
        TrimFillResult,
        back_transform,
    )
    from analysis.risk_of_bias import grade_risk_of_bias, low_risk_sensitivity
    from analysis.rm5_reanalysis import reanalyse_rm5
    from analysis.robust import robust
    from analysis.selection import selection_model
    from analysis.sensitivity import baujat, cumulative, influence, leave_one_out
    from analysis.sequential import required_information_size, trial_sequential_analysis
    from analysis.small_study import (
        harbord_test,
        pet_peese,
        peters_test,
        rank_test,
        regtest,
        thompson_sharp_test,
    )


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first access."""
    if name in _SUBPACKAGES:
        return import_module(f"analysis.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBPACKAGES])


class _Package(ModuleType):
    """The ``analysis`` module object: importing a submodule never hides a public name.

    Python binds every imported submodule as an attribute of its package, so importing
    :mod:`analysis.contrasts` (which defines :func:`contrasts`) would replace ``ma.contrasts``
    with the module. Here the binding of a submodule named like a public function keeps the
    function; the module itself stays reachable through ``sys.modules`` (``from
    analysis.contrasts import ...`` and :func:`importlib.import_module` work as usual).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and _EXPORTS.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
