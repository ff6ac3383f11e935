# `make run`: set everything up and start Temporal + workers + console with demo data.
# `make test`: set everything up and run the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
export FLASK_APP := dashboard

.PHONY: setup run test test-fast lint format migrate seed bench record-histories clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

migrate: setup
	mkdir -p var
	$(BIN)/flask db upgrade

seed: migrate
	$(BIN)/flask seed-demo

run: seed
	$(BIN)/python scripts/run_dev.py

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Histories of every workflow from the current code, for the replay test (commit them).
record-histories: setup
	$(BIN)/python scripts/record_histories.py

# Figures beside their anchors measured in the same run (docs/performance.md says how to
# read them); BENCH_DATABASE_URL=postgresql+psycopg://... puts the app database on PostgreSQL.
bench: setup
	$(BIN)/python bench/batch_payout.py $(BENCH_BATCH_ARGS)
	$(BIN)/python bench/runs_page.py $(BENCH_RUNS_ARGS)
	$(BIN)/python bench/history_render.py $(BENCH_HISTORY_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
