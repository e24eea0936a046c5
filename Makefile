# promo-codes: `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON313 = $(shell tools/find-python313)
# sam build needs the runtime's interpreter on PATH; the venv's is exactly that.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-10s %s\n", $$1, $$2}'

RUN_STAMP := $(VENV)/.installed-run

# The runtime set first (enough for `make run`), the development tools on top for tests.
$(RUN_STAMP): requirements-run.txt layers/promo/requirements.txt pyproject.toml
	@python=$$(tools/find-python313) && \
	  { [ -x $(BIN)/python ] && $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' \
	    || { rm -rf $(VENV) && "$$python" -m venv $(VENV); }; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-run.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(STAMP): $(RUN_STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

.PHONY: install
install: $(STAMP) node_modules/.package-lock.json ## Create .venv (Python 3.13) and install pinned dependencies

# Fuzzing (tests/fuzz, docs/openapi.md): `make test` sends every route at least 1,000 requests
# with a fixed seed, each route bounded in time (a route short of its count when the bound
# passes fails); `make fuzz` goes further with a new seed each run.
FUZZ_REQUESTS_PER_ROUTE ?= 1000
FUZZ_ROUTE_SECONDS ?= 240
export FUZZ_REQUESTS_PER_ROUTE FUZZ_ROUTE_SECONDS

# Tests run in TEST_WORKERS pytest-xdist workers, each with its own DynamoDB Local (and its own
# fuzz stack); much of a test's time is spent waiting on DynamoDB Local, another process or a
# socket, so two workers on two cores finish the suite in about three quarters of the time.
# TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2

.PHONY: test
test: install ## Run unit, protocol, integration, security and (bounded) fuzz tests
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

.PHONY: unit
unit: $(STAMP) ## Run the tests that need no DynamoDB Local (no Java), in seconds
	$(BIN)/pytest -m "not integration" -q $(PYTEST_ARGS)

.PHONY: fuzz
fuzz: install ## Fuzz every route with 5,000 requests and a new seed (FUZZ_SEED=N repeats a run)
	@seed=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')} && echo "FUZZ_SEED=$$seed" && \
	  FUZZ_SEED=$$seed FUZZ_REQUESTS_PER_ROUTE=5000 FUZZ_ROUTE_SECONDS=1200 $(BIN)/pytest tests/fuzz

# The history checker (tests/integration/test_history.py): `make test` runs separate processes
# through injected faults with a fixed seed, bounded in time; `make chaos` runs more processes,
# operations and faults, with a new seed each run (printed; CHAOS_SEED=N repeats a run).
.PHONY: chaos
chaos: install ## Run the history checker longer: 8 processes, 8,000 operations, more faults, a new seed (CHAOS_SEED=N repeats)
	@seed=$${CHAOS_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')} && echo "CHAOS_SEED=$$seed" && \
	  CHAOS_SEED=$$seed HISTORY_WORKERS=8 HISTORY_OPERATIONS=8000 HISTORY_MIN_OPERATIONS=6000 \
	  HISTORY_SECONDS=300 HISTORY_FAULT_RATE=0.08 HISTORY_MIN_FAULTS=400 HISTORY_LARGE_ADDS=4 \
	  $(BIN)/pytest tests/integration/test_history.py

.PHONY: lint
lint: install ## ruff (lint + format check), mypy, sam validate --lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/promo/promo tools tests bench $(wildcard functions/*/app.py)
	$(BIN)/sam validate --lint

.PHONY: format
format: install ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: build
build: install ## sam build (no Docker needed; the layer gets arm64 wheels)
	$(BIN)/sam build

.PHONY: clean
clean: ## Remove build output and caches (keeps .venv and .local data)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis

.PHONY: run
run: $(RUN_STAMP) node_modules/.package-lock.json ## Start the whole service on http://127.0.0.1:3000 over DynamoDB Local (PORT=N: another port; FRESH=1: empty database)
	$(BIN)/python -m tools.local_stack

.PHONY: sam-local-db
sam-local-db: $(RUN_STAMP) node_modules/.package-lock.json ## DynamoDB Local on port 8000 for `sam local` (table PromoTable, demo data, filled events in .local/events; FRESH=1: empty database)
	$(BIN)/python -m tools.sam_local

.PHONY: bench
bench: install ## Measure issue, bulk add, validate, cold import and memory against DynamoDB's own floor
	$(BIN)/python -m bench
