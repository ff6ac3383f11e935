# `make run`: set everything up and start Temporal + workers + console with demo data.
# `make test`: set everything up and run the whole suite.
# `make lock`: recompile requirements.txt / requirements-dev.txt from pyproject.toml.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The dev lock (runtime + dev tools, every package pinned with its hashes) is what the
# venv gets; the stamp names its hash, so a changed lock reinstalls.
LOCK := requirements-dev.txt
STAMP := $(VENV)/.installed-$(shell sha1sum $(LOCK) | cut -c1-12)
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command "make lock"
export FLASK_APP := estuary_ops

.PHONY: setup run test test-fast lint format migrate seed bench record-histories lock clean

$(STAMP): $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

migrate: setup
	mkdir -p "$${ESTUARY_VAR_DIR:-var}"
	$(BIN)/flask db upgrade

seed: migrate
	$(BIN)/flask seed-demo

# The supervisor checks the ports first, then migrates and seeds, then starts everything.
run: setup
	$(BIN)/python scripts/run_dev.py

test: setup
	bash scripts/ensure_chromium.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

# The import contracts (pyproject.toml [tool.importlinter]) are the layer diagram.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Histories of every workflow from the current code, for the replay test (commit them).
record-histories: setup
	$(BIN)/python scripts/record_histories.py

# Figures beside their anchors measured in the same run (docs/performance.md says how to
# read them); BENCH_DATABASE_URL=postgresql+psycopg://... puts the app database on PostgreSQL.
# Two batch rounds, ours first and then the anchor first (the side that runs second finds
# the in-memory dev server fuller and tends to pay more of its CPU); about 10 minutes in all.
# BENCH_BATCH_ARGS="--rounds 4" for more.
BENCH_BATCH_ARGS ?= --rounds 2
bench: setup
	$(BIN)/python bench/batch_payout.py $(BENCH_BATCH_ARGS)
	$(BIN)/python bench/runs_page.py $(BENCH_RUNS_ARGS)
	$(BIN)/python bench/history_render.py $(BENCH_HISTORY_ARGS)
	$(BIN)/python bench/console_load.py $(BENCH_LOAD_ARGS)

# Runtime lock (the production install) and dev lock, from pyproject.toml. Run it after
# changing a dependency there; `make` then installs the new dev lock.
lock: setup
	$(UV_COMPILE) -o requirements.txt
	$(UV_COMPILE) --group dev -o requirements-dev.txt

clean:
	rm -rf $(VENV) var .pytest_cache
