# huiqi — two commands: `make run` starts the platform with demo data, `make test` checks everything.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export HUIQI_DATA_DIR ?= data

.PHONY: run test fuzz lint fmt bench clean venv dev screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The stamp files re-run the install whenever pyproject.toml changes.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

venv: $(VENV)/.installed-run
dev: $(VENV)/.installed-dev

run: $(VENV)/.installed-run
	$(BIN)/huiqi db upgrade
	$(BIN)/huiqi demo load
	$(BIN)/huiqi serve --with-dispatcher

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src

# One worker per core (pytest-xdist); each worker migrates its own SQLite file and PostgreSQL database.
# The slow modules are collected first (tests/conftest.py); a worker that runs out of tests takes
# half of another's queue (worksteal), so both end together.
test: lint
	$(BIN)/pytest -n auto --dist worksteal

# Schemathesis over every API operation for every role, asserting no 5xx (tests/test_fuzz_api.py);
# CI runs it as its own step after `make test`.
fuzz: $(VENV)/.installed-dev
	$(BIN)/pytest -n 2 -m fuzz tests/test_fuzz_api.py

fmt: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

screenshots: $(VENV)/.installed-dev
	HUIQI_UPDATE_SCREENSHOTS=1 $(BIN)/pytest -q tests/web/test_browser_portal.py -k screenshots

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
