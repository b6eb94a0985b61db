# aiida-mlfail: the two commands.
#   make demo   set everything up and run the main job on the embedded default (SQLite + ZeroMQ, localhost)
#   make test   set everything up, start the local one-node SLURM cluster (scripts/slurm-cluster.sh),
#               build the documentation and run the whole test suite, the SLURM tests included
#   make docs   install, then build the documentation (Sphinx) into docs/build/html, warnings as errors
# Both are idempotent: a second run installs nothing again.
SHELL := /bin/bash
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export AIIDA_PATH := $(ROOT)/.aiida
export PATH := $(VENV)/bin:$(PATH)
STAMP := $(VENV)/.mlfail-installed

.PHONY: demo test docs docs-html setup install system aiida slurm stop

demo: setup
	$(PY) $(ROOT)/workflows/nacl_active_learning.py

# the cluster first, so that setup-aiida.sh also sets up the `slurm` computer and its codes;
# outside CI a machine without SLURM (not root) still runs the other tests
test: install
	@bash $(ROOT)/scripts/slurm-cluster.sh start || [ "$${CI:-}" != true ]
	@bash $(ROOT)/scripts/setup-aiida.sh
	$(MAKE) --no-print-directory docs-html
	bash $(ROOT)/scripts/run-tests.sh

# the documentation: `docs` installs first (the [dev] extra has sphinx and myst-parser), `docs-html` only
# builds, with the Python of PY (e.g. `make docs-html PY=/path/to/venv/bin/python`). The build needs no
# AiiDA profile (docs/source/conf.py loads a temporary one); docs/source/reference/_autosummary is generated.
DOCS_SOURCE := $(ROOT)/docs/source
DOCS_BUILD := $(ROOT)/docs/build
docs: install
	$(MAKE) --no-print-directory docs-html

docs-html:
	rm -rf $(DOCS_BUILD) $(DOCS_SOURCE)/reference/_autosummary
	$(PY) -m sphinx -W --keep-going -q -b html $(DOCS_SOURCE) $(DOCS_BUILD)/html
	@echo "documentation: $(DOCS_BUILD)/html/index.html"

setup: install aiida

system:
	@bash $(ROOT)/scripts/install-system.sh

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(MAKE) system
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '$(ROOT)[dev]'
	touch $(STAMP)

install: $(STAMP)

aiida: install
	@bash $(ROOT)/scripts/setup-aiida.sh

slurm:
	@bash $(ROOT)/scripts/slurm-cluster.sh start

stop:
	-$(VENV)/bin/verdi -p mlfail daemon stop
	-@bash $(ROOT)/scripts/slurm-cluster.sh stop
