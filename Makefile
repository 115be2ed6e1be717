VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALL_STAMP := $(VENV)/.install.stamp
EMULATOR_PORT := 5000

.DEFAULT_GOAL := help

.PHONY: help install chromium serve emulator test lint format bench clean

help:
	@echo "make install   create $(VENV) with the plugin, its tests' and its tools' packages"
	@echo "make serve     Kinto with the plugin on 127.0.0.1:8888, and a local Step Functions on :$(EMULATOR_PORT)"
	@echo "make emulator  only the local Step Functions, preloaded with the README's examples"
	@echo "make test      lint, then the whole test suite (memory and PostgreSQL)"
	@echo "make bench     benchmarks of the answer endpoint"
	@echo "make format    format the code"

install: $(INSTALL_STAMP)
$(INSTALL_STAMP): setup.py
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --editable ".[testing]"
	touch $(INSTALL_STAMP)

serve: install
	$(PYTHON) -m stepfunction.testing --port $(EMULATOR_PORT) & emulator=$$!; \
	trap 'kill $$emulator 2>/dev/null' EXIT INT TERM; \
	$(VENV)/bin/kinto start --ini config.ini

emulator: install
	$(PYTHON) -m stepfunction.testing --port $(EMULATOR_PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The dashboard's browser tests drive Debian's Chromium (Playwright cannot download one here).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

test: install chromium lint
	$(PYTHON) -m pytest --durations=10

bench: install
	$(PYTHON) -m pytest bench --benchmark-only --benchmark-columns=min,median,mean,max,rounds

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .benchmarks
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
