# msht-broker: the two commands a fresh machine needs are `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA := bash deploy/kafka/kafka.sh
# Re-install only when the dependency list changes.
STAMP := $(VENV)/.installed

.PHONY: help setup kafka lint unit test demo stop wipe bench

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-6s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv, install the package with dev tools, fetch the Kafka jars
	$(KAFKA) fetch

kafka: setup ## start the local Kafka (reuses a running one)
	$(KAFKA) start

lint: $(STAMP) ## ruff, ruff format, mypy --strict and the import-linter layer contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: lint ## lint and every test that needs no broker (under a minute)
	$(BIN)/pytest tests/unit -q

test: kafka lint ## lint, type-check and run every test (starts Kafka when none is running)
	@# pytest exits 5 when it collected no tests; that is a failure too, like any non-zero code.
	@status=0; MSHT_DEV=1 $(BIN)/pytest || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$status

demo: kafka ## start Kafka and run the demo
	MSHT_DEV=1 $(BIN)/msht demo

stop: ## stop the local Kafka
	$(KAFKA) stop

wipe: ## stop the local Kafka and delete its data
	$(KAFKA) wipe
# Options for the harness, e.g. make bench BENCH_ARGS="--profile --out /tmp/bench"
BENCH_ARGS ?=
bench: kafka ## run the benchmark harness (options: BENCH_ARGS="...", see --help)
	$(BIN)/python -m pip install -q -e '.[dev,bench]' && $(BIN)/python -m benchmarks.harness $(BENCH_ARGS)
