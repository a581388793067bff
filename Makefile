# Undersigned: `make run` serves the app on http://127.0.0.1:5000; `make test` runs the whole test suite.
# Both set up everything they need first (virtual environment, packages, database, browser for tests).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
# pytest arguments, e.g. `make test PYTEST_ARGS="-k letters -x"`
PYTEST_ARGS ?=
# Test processes (pytest-xdist); each builds its app once per database and gets its own SQLite files and
# PostgreSQL databases. Three on two cores: some tests wait on a browser, an SMTP server or a subprocess. The slow
# tests start first (conftest), two at a time (--maxschedchunk=2 in pyproject.toml). Every test runs on SQLite, the
# ones marked bothdb and the smoke pass on PostgreSQL too (tests/conftest.py). Four processes were slower than
# three on this CPU-bound machine (9:02 vs 7:47 in back-to-back runs); the README has the suite's times.
JOBS ?= 3

.PHONY: run test setup install dev browser lint clean help

help:
	@echo "make run    set up (venv, install, migrate, seed, first admin) and serve on http://$(HOST):$(PORT)"
	@echo "make test   install the test dependencies (and Chromium when missing) and run the test suite"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Undersigned needs Python 3.11 or newer; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[postgres]'
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[postgres,celery,dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

dev: $(VENV)/.installed-dev

setup: install
	$(BIN)/crm setup

run: setup
	$(BIN)/crm run --host $(HOST) --port $(PORT)

browser:
	@bash scripts/ensure-chromium.sh

# Python's bytecode cache on, even where the environment turns it off (PYTHONDONTWRITEBYTECODE): every test
# process and every worker, Celery and CLI process a test starts would otherwise compile crm/ and rewrite the
# tests' asserts from source again (collecting the tests: 16 s of CPU without the cache, 7 s with it).
test: dev browser
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n $(JOBS) $(PYTEST_ARGS)

lint: dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
