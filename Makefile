# Steward: `make run` starts everything locally, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# No pip self-check against the index; byte-compile modules on first import, not all at install.
PIP := $(PY) -m pip --disable-pip-version-check
PIP_INSTALL := $(PIP) install --quiet --no-compile
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test lint format bench chaos clean venv

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' || \
		{ echo "Steward needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	@# The pip that comes with Python 3.11+ does editable installs from pyproject.toml already.
	$(PYTHON) -m venv $(VENV)

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PIP_INSTALL) -e .
	@touch $@

$(STAMP_DEV): pyproject.toml | $(PY)
	$(PIP_INSTALL) -e '.[dev]'
	@touch $@ $(STAMP_RUN)

venv: $(STAMP_DEV)

run: $(STAMP_RUN)
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo
	$(PY) manage.py runlocal

test: $(STAMP_DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP_DEV)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP_DEV)
	@set -e; shopt -s nullglob; scripts=(bench/[!_]*.py); \
	if [ $${#scripts[@]} -eq 0 ]; then echo "No benchmarks in bench/ yet."; exit 0; fi; \
	for script in "$${scripts[@]}"; do echo "== $$script"; $(PY) "$$script"; done

# The engine's chaos loop, 50 times each scenario (5 in `make test`). Needs PostgreSQL and
# Redis: DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... make chaos
chaos: $(STAMP_DEV)
	CHAOS_REPEAT=$${CHAOS_REPEAT:-50} $(VENV)/bin/pytest -p no:cacheprovider -q \
		tests/integration/test_engine_workers.py -k "chaos or broker_is_down" --durations=0

clean:
	rm -rf var .pytest_cache
