VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALL_STAMP := $(VENV)/.install.stamp
KINTO_PORT := 8888
EMULATOR_PORT := 5000
MAIL_PORT := 1025
MAILBOX_PORT := 8025

.DEFAULT_GOAL := help

.PHONY: help install chromium serve emulator test lint format bench clean

help:
	@echo "make install   create $(VENV) with the plugin, its tests' and its tools' packages"
	@echo "make serve     Kinto with the plugin on 127.0.0.1:$(KINTO_PORT), and a local Step Functions on :$(EMULATOR_PORT)"
	@echo "make emulator  only the local Step Functions, preloaded with the README's examples"
	@echo "make test      lint, then the whole test suite (memory and PostgreSQL: the local one, else an embedded one)"
	@echo "make bench     benchmarks against their floors (bench/run.py)"
	@echo "make format    format the code"

install: $(INSTALL_STAMP)
$(INSTALL_STAMP): setup.py
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --editable ".[testing]"
	touch $(INSTALL_STAMP)

# The local Step Functions first, then Kinto (its worker polls it at once); Ctrl-C stops both,
# as does SIGTERM to make (which passes it on). One command, no shell: make runs it itself.
serve: install
	$(PYTHON) -m stepfunction.testing.serve --ini config.ini --port $(KINTO_PORT) --emulator-port $(EMULATOR_PORT) --mail-port $(MAIL_PORT) --mailbox-port $(MAILBOX_PORT)

emulator: install
	$(PYTHON) -m stepfunction.testing --port $(EMULATOR_PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The dashboard's browser tests need a Chromium: Playwright's own build, else the system's
# (never `playwright install`: it downloads from Playwright's site). With none, root gets
# Debian's; anyone else is told what to install, and the browser tests fail saying so.
chromium: install
	@$(PYTHON) -m stepfunction.testing.browser || \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian's chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium && \
	  $(PYTHON) -m stepfunction.testing.browser; \
	else \
	  echo "Going on without a browser: the dashboard's browser tests will fail."; \
	fi

# On a database of its own: on $STEPFUNCTION_TEST_POSTGRESQL_URL's server if set, else
# on 127.0.0.1:5432, else on an embedded PostgreSQL (see stepfunction/testing/postgresql.py).
test: install chromium lint
	$(PYTHON) -m stepfunction.testing.postgresql -- $(PYTHON) -m pytest --durations=10

bench: install
	$(PYTHON) bench/run.py

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .benchmarks
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
