# The two commands of the README:
#   make up     set up (virtualenv, packages, Postgres/Redis binaries if missing) and run `devenv up`
#   make test   set up likewise and run the whole test suite
VENV ?= .venv
DEVENV := $(VENV)/bin/devenv
PYTHON := $(VENV)/bin/python

.PHONY: up test setup down bench

$(VENV)/.installed: pyproject.toml .ci/setup
	./.ci/setup
	touch $@

setup: $(VENV)/.installed

up: $(VENV)/.installed
	$(DEVENV) up

down: $(VENV)/.installed
	$(DEVENV) down

test: $(VENV)/.installed
	$(PYTHON) -m pytest -q -p no:cacheprovider --junitxml=test-results/junit.xml $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PYTHON) benchmarks/run.py
