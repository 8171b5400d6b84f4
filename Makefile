# baclofen-meta: every output is a file target whose prerequisites are the data and the code
# that makes it. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ENV_STAMP := $(VENV)/.installed
TRIALS_DIR := trials
TRIALS := $(TRIALS_DIR)/studies.csv $(TRIALS_DIR)/arms.csv $(TRIALS_DIR)/outcomes.csv
TABLES := tables
# Code every data-reading target depends on.
DATA_CODE := analysis/__main__.py analysis/data.py analysis/schema.py analysis/csv_reader.py \
             analysis/errors.py analysis/output.py analysis/schema/datapackage.json

CHARACTERISTICS := $(addprefix $(TABLES)/characteristics.,csv md tex)

.PHONY: help env report tables figures validate test lint bench reference clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(ENV_STAMP): pyproject.toml
	@echo "Building $(VENV) from pyproject.toml"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

env: $(ENV_STAMP) ## create or update .venv from pyproject.toml (done by every target that needs it)

report: tables figures ## rebuild every figure and table that is out of date

tables: $(CHARACTERISTICS) ## rebuild the tables in tables/

figures: | $(ENV_STAMP) ## rebuild the figures in figures/

$(CHARACTERISTICS) &: $(TRIALS) $(DATA_CODE) analysis/tables.py | $(ENV_STAMP)
	$(PY) -m analysis table characteristics --trials $(TRIALS_DIR) --out $(TABLES)/characteristics

validate: | $(ENV_STAMP) ## check trials/ against the schema and the semantic rules
	$(PY) -m analysis validate $(TRIALS_DIR)

lint: | $(ENV_STAMP) ## ruff on the whole project
	$(VENV)/bin/ruff check .

test: lint | $(ENV_STAMP) ## lint, then the whole test suite
	$(PY) -m pytest -q

bench: | $(ENV_STAMP) ## benchmarks (timings as ratios to baselines measured in the same run)
	$(PY) benchmarks/run_all.py

reference: | $(ENV_STAMP) ## regenerate the metafor fixtures in tests/reference/ (needs Rscript and metafor)
	$(PY) tests/reference/export_baclofen_contrasts.py
	Rscript tests/reference/make_reference.R
	test ! -f tests/reference/make_dose_reference.R || Rscript tests/reference/make_dose_reference.R

clean: ## remove generated tables and figures (keeps .venv)
	rm -rf $(TABLES) figures/*.pdf figures/*.svg figures/*.png build
