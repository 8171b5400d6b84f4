r"""Frequentist network meta-analysis: netmeta's graph-theoretical method (Rücker 2012).

:func:`network_meta_analysis` (common and random effects, generalised DL or REML/ML
:math:`\tau^2`), :func:`network_pairwise` (arm-level data to comparisons, as meta's
``pairwise``), :func:`decomp_design` (Q within and between designs), :func:`p_scores`
(``netrank``), :func:`netsplit` (direct versus indirect evidence), :func:`league_table`.
The network graph is :func:`analysis.plots.network_graph`.
"""

from __future__ import annotations

from analysis.network.decomposition import decomp_design
from analysis.network.league import league_table
from analysis.network.model import network_meta_analysis
from analysis.network.pairwise import network_pairwise
from analysis.network.ranking import p_scores
from analysis.network.results import (
    DesignDecompositionResult,
    NetSplitResult,
    NetworkFit,
    NetworkResult,
    PScoreResult,
)
from analysis.network.split import netsplit

__all__ = [
    "DesignDecompositionResult",
    "NetSplitResult",
    "NetworkFit",
    "NetworkResult",
    "PScoreResult",
    "decomp_design",
    "league_table",
    "netsplit",
    "network_meta_analysis",
    "network_pairwise",
    "p_scores",
]
