# llmcompiler: every set-up step a fresh machine needs is here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test unit lint typecheck bench bench-engine clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,local]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its extras

demo: $(STAMP)  ## answer a question with the demo tools
	$(PY) -m llmcompiler.demo

lint: $(STAMP)  ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)  ## mypy --strict
	$(VENV)/bin/mypy

unit: $(STAMP)  ## the test suite alone
	$(PY) -m pytest -q

test: lint typecheck unit  ## lint, typecheck and every test

bench-engine: $(STAMP)  ## engine overhead, dispatch latency, makespan vs critical path
	$(PY) -m benchmarks.engine

bench: bench-engine  ## every benchmark

clean:  ## remove the venv and caches
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
