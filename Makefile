# Healthcare records API. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install run serve migrate test test-unit test-integration test-e2e lint format bench bench-against bench-instructions soak clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed (found $(PYTHON))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its pinned dependencies

migrate: install ## Apply the database migrations (DATABASE_URL, or the embedded SQLite file)
	$(BIN)/healthcare upgrade

run: migrate ## Install, migrate and serve on HOST:PORT (default 127.0.0.1:8000)
	$(BIN)/healthcare serve

test: install ## Run every test (PostgreSQL ones too when TEST_DATABASE_URL's server is up)
	$(BIN)/pytest

test-unit: install ## Only the fast unit tests (no database)
	$(BIN)/pytest tests/unit

test-integration: install ## Repositories and migrations against SQLite and PostgreSQL
	$(BIN)/pytest tests/integration

test-e2e: install ## The HTTP API end to end on SQLite and PostgreSQL
	$(BIN)/pytest tests/e2e

lint: install ## ruff, strict mypy (src, tests and bench), and the architecture's import contracts
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy -p healthcare -p tests
	$(BIN)/mypy bench
	$(BIN)/lint-imports

format: install ## Format and auto-fix the code
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install ## Benchmark the API against a bare baseline on PostgreSQL (BENCH_ARGS=--quick for a smoke run)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-instructions: install ## Instructions per request (callgrind), today's tree against REF's: deterministic where throughput is not
	@test -n "$(REF)" || { echo "usage: make bench-instructions REF=<commit or source tree>"; exit 2; }
	$(BIN)/python bench/run.py --instructions $(REF) $(BENCH_ARGS)

bench-against: install ## Today's API and baseline against an earlier commit's, side by side (REF=<commit>; BENCH_ARGS as for bench)
	@test -n "$(REF)" || { echo "usage: make bench-against REF=<commit or source tree>"; exit 2; }
	$(BIN)/python bench/run.py --against $(REF) $(BENCH_ARGS)

soak: install ## 10 minutes of mixed load at half capacity (PostgreSQL, Redis, /metrics); SOAK_ARGS=--minutes 2
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean: ## Remove the virtual environment and caches (keeps var/, the local database)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
