# keel: `make run` starts a local cluster, `make test` runs every test.
# Both create .venv on first use, with the host and every plugin under
# plugins/ installed editable.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
STAMP := $(VENV)/.installed
SEEDS ?= 1000
PYTEST_ARGS ?=

.PHONY: run test bench conformance clean

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGIN_DIRS))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --quiet -e '.[test]' $(foreach p,$(PLUGIN_DIRS),-e '$(p)[test]')
	touch $@

## run: start the default local cluster (3 core + 3 data nodes) with a live status view
run: $(STAMP)
	$(BIN)/keel up

## test: run the whole suite (host, every plugin, simulated and real-process tests)
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## conformance: the seeded conformance checks with $(SEEDS) seeds each
conformance: $(STAMP)
	$(BIN)/python -m pytest -m conformance --seeds=$(SEEDS) -q $(PYTEST_ARGS)

## bench: measure, print JSON, and write docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/keel bench all --json --write-docs docs/benchmarks.md

clean:
	rm -rf $(VENV) .keel .hypothesis platform/*.egg-info plugins/*/*.egg-info
