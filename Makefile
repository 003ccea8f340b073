# Credence developer commands. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help run test test-deps unit integration lint typecheck bench bench-diff clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(STAMP) ## embedded broker + worker + demo traffic; prints deltas (Ctrl-C stops all)
	$(BIN)/credence run --demo

test: $(STAMP) test-deps ## every test: unit, ops, integration on Tansu and Apache Kafka
	$(BIN)/python -m pytest

test-deps: ## Debian packages the tests drive (chromium, prometheus/promtool)
	tools/install-test-deps

unit: $(STAMP) ## unit tests only (no broker)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP) ## integration tests only
	$(BIN)/python -m pytest tests/integration

lint: $(STAMP) ## ruff over the code and tests
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/ruff check scoring streams tests bench

typecheck: $(STAMP) ## mypy --strict over scoring/ and streams/
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/mypy

BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(BENCH_STAMP) ## throughput and latency benchmark beside Quix Streams (prints figures, asserts nothing)
	$(BENCH_VENV)/bin/python -m bench.throughput

bench-diff: $(STAMP) ## `rules diff` against one replay of the same 1 M events (prints figures)
	$(BIN)/python -m bench.rules_diff --serial

clean: ## remove the virtualenv, caches and local state
	rm -rf $(VENV) $(BENCH_VENV) .cache data .pytest_cache .hypothesis
