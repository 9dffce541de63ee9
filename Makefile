# llmcompiler: every set-up step a fresh machine needs is here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test unit lint typecheck bench bench-engine bench-local bench-scale bench-suites bench-quick bench-sweep bench-reliability bench-speculation bench-drafts bench-caching clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "Installing into $(VENV). The first time, pip compiles llama.cpp (llama-cpp-python) from source:"
	@echo "about 6 minutes on 2 cores, while pip shows 'Building wheel for llama-cpp-python ...'."
	$(PY) -m pip install -e '.[dev,local,ray,bench,mcp,otel]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its extras

DEMO_QUESTION ?= What is the weather and the local time in Tokyo and in Oslo?

demo: $(STAMP)  ## answer a question with the local model and the demo tools
	$(VENV)/bin/llmcompiler run "$(DEMO_QUESTION)"

lint: $(STAMP)  ## ruff and the import contract (one-way layers, no cycles: pyproject.toml [tool.importlinter])
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)  ## mypy --strict
	$(VENV)/bin/mypy

unit: $(STAMP)  ## the test suite alone
	$(PY) -m pytest -q

test: lint typecheck unit  ## lint, typecheck and every test

bench-engine: $(STAMP)  ## engine overhead, dispatch latency, makespan vs critical path
	$(PY) -m benchmarks.engine

bench-reliability: $(STAMP)  ## fuzzed plans, injected faults, cancellations, rate accuracy
	$(PY) -m benchmarks.reliability

bench-local: $(STAMP)  ## the local model: tokens/s, time to first token, the demo end to end
	$(PY) -m benchmarks.local_model

bench-scale: $(STAMP)  ## fusion, load balancing, arun_many throughput, Ray overhead
	$(PY) -m benchmarks.scale

bench-suites: $(STAMP)  ## LLMCompiler vs ReAct vs native parallel calling, and wikigold extraction: oracle mode (both profiles) and the local model
	$(PY) -m benchmarks fetch
	$(PY) -m benchmarks run --suite all --mode oracle
	$(PY) -m benchmarks run --suite all --mode oracle --profile local
	$(PY) -m benchmarks run --suite all --mode model --model local --limit 5
	$(PY) -m benchmarks run --suite wikigold --mode oracle
	$(PY) -m benchmarks run --suite wikigold --mode oracle --profile local
	$(PY) -m benchmarks run --suite wikigold --mode model --model local --limit 5

bench-quick: $(STAMP)  ## a few questions of each suite, oracle mode (under a minute)
	$(PY) -m benchmarks fetch
	$(PY) -m benchmarks run --suite all --mode oracle --limit 3 --out-dir /tmp/llmcompiler-bench-quick
	$(PY) -m benchmarks run --suite wikigold --mode oracle --limit 3 --out-dir /tmp/llmcompiler-bench-quick

bench-sweep: $(STAMP)  ## LLMCompiler vs native calling over time to first token x decode speed (virtual clock, ~3 min)
	$(PY) -m benchmarks sweep --clock-check 3

bench-caching: $(STAMP)  ## cost per question with and without OpenAI's prompt cache, gpt-4o oracle, every suite (virtual clock, under a minute)
	$(PY) -m benchmarks.caching
	$(PY) -m benchmarks.caching --min-tokens 0

SPEC_LIMIT ?= 30

bench-speculation: $(STAMP)  ## speculation: llmcompiler with/without a drafter (recorded local drafts as recorded and at idle speed, the perfect drafter), gpt-4o oracle, virtual clock; no model loaded
	$(PY) -m benchmarks fetch
	for suite in parallelqa bfcl nestful; do \
	  for drafter in local local-idle perfect; do \
	    $(PY) -m benchmarks run --suite $$suite --mode oracle --drafter $$drafter --limit $(SPEC_LIMIT) --systems llmcompiler --clock virtual || exit 1; \
	  done; \
	  $(PY) -m benchmarks run --suite $$suite --mode oracle --drafter perfect --systems llmcompiler --clock virtual --no-plots \
	    --json benchmarks/results/$$suite-oracle-speculative-perfect-all.json || exit 1; \
	done

bench-drafts: $(STAMP)  ## record the local model's draft plans for bench-speculation (loads the model; 30 questions a suite: about 9 minutes on 2 quiet cores)
	$(PY) -m benchmarks fetch
	$(PY) -m benchmarks drafts --suite all --limit $(SPEC_LIMIT)

bench: bench-engine bench-reliability bench-local bench-scale bench-suites bench-sweep  ## every benchmark

clean:  ## remove the venv and caches
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
