# The two commands a newcomer needs are `make report` and `make test`.
# Everything installs into .venv beside this file; nothing is installed globally.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: report test lab bench lint clean help

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' Makefile | sed 's/:.*## /\t/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 \
		--display-name "Python 3 (hooklab)" >/dev/null
	touch $@

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

report: $(STAMP)  ## run the audit on the embedded example and print the report's path
	$(BIN)/hooklab audit

test: $(TEST_STAMP)  ## run the package tests and the notebooks under nbval
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider

lint: $(TEST_STAMP)  ## ruff and mypy
	$(BIN)/ruff check hooklab tests tools benchmarks
	$(BIN)/ruff format --check hooklab tests tools benchmarks
	$(BIN)/mypy

bench: $(TEST_STAMP)  ## speed targets, each measured beside its baseline in one run
	$(BIN)/python benchmarks/run.py

lab: $(STAMP)  ## open JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks/

clean:  ## remove the virtual environment
	rm -rf $(VENV)
