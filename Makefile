# Forecourt: the two commands a newcomer needs are `make demo` and `make test`.
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help bootstrap demo test lint typecheck unit bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

bootstrap:  ## install system packages and the virtual environment
	@bash scripts/bootstrap.sh

demo: bootstrap  ## run the demo: cloud + edge + simulated cars on SQLite, console on localhost
	$(BIN)/forecourt demo

lint: bootstrap  ## ruff (lint + format check) and mypy --strict on the package
	$(BIN)/ruff check forecourt tests bench
	$(BIN)/ruff format --check forecourt tests bench
	$(BIN)/mypy forecourt

test: bootstrap  ## the whole suite: lint, types, then every test (PostgreSQL started if down)
	@bash scripts/ensure-postgres.sh
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest

bench: bootstrap  ## run the benchmarks in bench/ (figures and same-run baseline ratios)
	@bash scripts/ensure-postgres.sh
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:  ## remove the virtual environment and demo state
	rm -rf $(VENV) .forecourt-demo
