"""Meta-analysis of clinical-trial evidence, checked against R's metafor."""

__version__ = "0.1.0"
