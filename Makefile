# Silverflow: `make run` sets everything up and serves the app; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PACKAGES := engine api connectors crm
LINT_PATHS := $(PACKAGES) tests bench migrations/env.py

.PHONY: install run migrate demo-data test lint typecheck pytest bench screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/silverflow migrate

demo-data: migrate
	$(BIN)/silverflow demo-data --local-systems

run: demo-data
	@echo "Open http://127.0.0.1:8000/ (API docs: http://127.0.0.1:8000/api/docs)"
	$(BIN)/silverflow serve --host 127.0.0.1 --port 8000 --local-systems

lint: install
	$(BIN)/ruff check $(LINT_PATHS)

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: install
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.workers
	$(BIN)/python -m bench.long_work
	$(BIN)/python -m bench.api_latency
	$(BIN)/python -m bench.crm_queries
	$(BIN)/python -m bench.ui_pages

# docs/screenshots/*.png: every page at 1366x768 in Debian's Chromium (apt-get install chromium); not part of test
screenshots: install
	$(BIN)/python -m scripts.screenshots

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
