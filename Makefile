# baclofen-meta: every output is a file target whose prerequisites are the data and the code
# that makes it. `make help` lists the targets.
SHELL := /bin/bash
# Independent targets (the figure groups of build/plan.mk, the tables) build in parallel.
MAKEFLAGS += --jobs=$(shell nproc 2>/dev/null || echo 2) --output-sync=target
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ENV_STAMP := $(VENV)/.installed
TRIALS_DIR := trials
TRIALS := $(TRIALS_DIR)/studies.csv $(TRIALS_DIR)/arms.csv $(TRIALS_DIR)/outcomes.csv \
          $(TRIALS_DIR)/datapackage.json $(wildcard $(TRIALS_DIR)/risk_of_bias.csv)
TABLES := tables
FIGURES := figures
PLAN := analysis_plan.toml
BUILD := build
# Code prerequisites are patterns over the package's folders, never hand-kept lists, so a new
# module cannot escape the graph: every file of the package (Python and the shipped schema).
CODE := $(shell find analysis -type f \( -name '*.py' -o -name '*.json' \) \
          -not -path '*/__pycache__/*' | LC_ALL=C sort)
# Figures depend on everything; the statistics and the tables on everything but the plots.
FIGURE_CODE := $(CODE)
TABLE_CODE := $(filter-out analysis/plots/%,$(CODE))
REPORT_CODE := $(TABLE_CODE)
# The characteristics table reads and formats the data and runs no statistics: the data package,
# the report package (command line, renderers, writer) and the entry points and errors that
# analysis.data may import (tests/test_public_api.py checks that it imports nothing else).
DATA_CODE := $(filter analysis/data/% analysis/report/% analysis/__init__.py analysis/__main__.py \
               analysis/errors.py,$(CODE))
# The trials are read and validated once per build, into a snapshot the other commands read
# (--validated); it records a digest of the trial files, of the validating code and of the
# library versions, and is refused when stale (analysis/report/snapshot.py). Its users name it
# as an order-only prerequisite: it exists and is current before they run, while their own
# prerequisites decide when they run.
SNAPSHOT := $(BUILD)/trials.pickle
SNAPSHOT_CODE := $(filter analysis/data/% analysis/errors.py analysis/report/snapshot.py,$(CODE))
# The analyses are run once too, by the step that writes build/plan.mk (it needs their results
# to know which figures exist); it keeps them in a cache checked the same way.
RUNS := $(BUILD)/runs.pickle

CHARACTERISTICS := $(addprefix $(TABLES)/characteristics.,csv md tex docx)
RESULT_TABLES := $(foreach t,pooled_results study_effects summary_of_findings estimator_sensitivity subgroups dose_response multiverse \
                   risk_of_bias risk_of_bias_sensitivity small_study bayesian sequential,\
                   $(addprefix $(TABLES)/$(t).,csv md tex html docx))
REPORT := $(FIGURES)/report.html
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
NOTEBOOK_HTML := $(patsubst notebooks/%.ipynb,$(BUILD)/notebooks/%.html,$(NOTEBOOKS))

# The figures each analysis produces depend on the plan and on the data (an outcome without
# estimable comparisons has none), so their rules are generated into build/plan.mk. It is
# read for every goal but those that need no figure (so `make figures/forest_x.pdf` works and
# `make help`, `make clean` or `make test` neither build it nor the environment).
NO_PLAN_GOALS := help env tables validate notebooks test test-fast lint bench reference clean \
                 $(TABLES)/% $(BUILD)/notebooks/% $(SNAPSHOT) $(RUNS) $(ENV_STAMP)
ifneq ($(filter-out $(NO_PLAN_GOALS),$(MAKECMDGOALS)),)
include $(BUILD)/plan.mk
endif

.PHONY: help env report tables figures html notebooks validate test test-fast lint bench reference clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(ENV_STAMP): pyproject.toml
	@echo "Building $(VENV) from pyproject.toml"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	touch $@

env: $(ENV_STAMP) ## create or update .venv from pyproject.toml (done by every target that needs it)

# Figures first: they are the longest jobs (the tables fill the cores at the end).
report: figures tables html ## rebuild every figure, table and the HTML report that is out of date

tables: $(CHARACTERISTICS) $(RESULT_TABLES) ## rebuild the tables in tables/

figures: $(PLAN_FIGURES) ## rebuild the figures in figures/ (PDF, SVG, PNG)

html: $(REPORT) ## rebuild the self-contained HTML report figures/report.html

# A failed step removes the previous report, so a stale figures/report.html never looks current.
FAIL_STALE = || { rm -f $(REPORT); exit 1; }

$(SNAPSHOT): $(TRIALS) $(SNAPSHOT_CODE) $(ENV_STAMP)
	$(PY) -m analysis validate $(TRIALS_DIR) --snapshot $@ $(FAIL_STALE)

$(BUILD)/plan.mk $(RUNS) &: $(TRIALS) $(PLAN) $(FIGURE_CODE) | $(ENV_STAMP) $(SNAPSHOT)
	$(PY) -m analysis makefile --plan $(PLAN) --validated $(SNAPSHOT) --runs-out $(RUNS) --out $(BUILD)/plan.mk $(FAIL_STALE)

$(CHARACTERISTICS) &: $(TRIALS_DIR)/studies.csv $(TRIALS_DIR)/arms.csv $(DATA_CODE) | $(ENV_STAMP) $(SNAPSHOT)
	$(PY) -m analysis table characteristics --trials $(TRIALS_DIR) --validated $(SNAPSHOT) --out $(TABLES)/characteristics $(FAIL_STALE)

$(RESULT_TABLES) &: $(TRIALS) $(PLAN) $(wildcard $(TRIALS_DIR)/grade.csv) $(TABLE_CODE) | $(ENV_STAMP) $(SNAPSHOT) $(RUNS)
	$(PY) -m analysis tables --plan $(PLAN) --validated $(SNAPSHOT) --runs $(RUNS) --outdir $(TABLES) $(FAIL_STALE)

$(REPORT): $(TRIALS) $(PLAN) $(wildcard $(TRIALS_DIR)/grade.csv) $(REPORT_CODE) $(filter %.png,$(PLAN_FIGURES)) | $(ENV_STAMP) $(SNAPSHOT) $(RUNS)
	$(PY) -m analysis report --plan $(PLAN) --validated $(SNAPSHOT) --runs $(RUNS) --figures $(FIGURES) --out $@

notebooks: $(NOTEBOOK_HTML) ## execute the notebooks and write HTML copies to build/notebooks/

$(BUILD)/notebooks/%.html: notebooks/%.ipynb notebooks/export_html.py $(TRIALS) $(PLAN) \
    $(TRIALS_DIR)/published_meta_analyses.csv $(CODE) | $(ENV_STAMP)
	$(PY) notebooks/export_html.py --out $(BUILD)/notebooks $<

validate: | $(ENV_STAMP) ## check trials/ against the schema and the semantic rules
	$(PY) -m analysis validate $(TRIALS_DIR)

lint: | $(ENV_STAMP) ## ruff on the whole project, mypy on the package (it ships py.typed)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy analysis

test: lint | $(ENV_STAMP) ## lint, then the whole test suite
	$(PY) -m pytest -q --durations=15

test-fast: | $(ENV_STAMP) ## the test suite without the slow tests (Make runs, browser, notebooks, wheel install)
	$(PY) -m pytest -q -m "not slow"

bench: | $(ENV_STAMP) ## benchmarks (timings as ratios to baselines measured in the same run)
	$(PY) benchmarks/run_all.py

reference: | $(ENV_STAMP) ## regenerate the metafor fixtures in tests/reference/ (needs Rscript and metafor)
	$(PY) tests/reference/export_baclofen_contrasts.py
	Rscript tests/reference/make_reference.R
	$(PY) tests/test_dose_response.py export
	Rscript tests/reference/make_dose_reference.R
	Rscript tests/reference/make_global_max_reference.R
	Rscript tests/reference/make_influence_reference.R
	Rscript tests/reference/make_result_data_reference.R
	Rscript tests/reference/make_classic_reference.R
	Rscript tests/reference/make_model_reference.R
	Rscript tests/reference/make_cluster_reference.R
	Rscript tests/reference/make_regplot_reference.R
	Rscript tests/reference/make_mh_weights_reference.R
	Rscript tests/reference/make_gosh_reference.R
	Rscript tests/reference/make_extreme_reference.R
	Rscript tests/reference/make_small_study_reference.R
	Rscript tests/reference/make_measures_reference.R
	Rscript tests/reference/make_selmodel_reference.R
	Rscript tests/reference/make_glmm_reference.R
	Rscript tests/reference/make_rare_events_reference.R
	Rscript tests/reference/make_revman_reference.R
	Rscript tests/reference/make_rma_mv_reference.R
	@echo "Fixtures changed by this run (against the last commit):"
	@git diff --stat -- tests/reference
	@$(PY) tests/reference/fixture_diff.py

clean: ## remove generated tables and figures and any temporary file of a killed write (keeps .venv)
	rm -rf $(TABLES) $(BUILD) $(FIGURES)/*.pdf $(FIGURES)/*.svg $(FIGURES)/*.png $(REPORT)
	find . -path ./$(VENV) -prune -o -path ./.git -prune -o -type f -name '.*.analysis-tmp' \
	  -exec rm -f {} +
