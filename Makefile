# keel: `make run` starts a local cluster, `make test` runs every test.
# Both create .venv on first use, with the host and every plugin under
# plugins/ installed editable.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
STAMP := $(VENV)/.installed
SEEDS ?= 1000
CHECK_SEEDS ?= 100
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

## conformance: the conformance suite with $(SEEDS) seeds per engine (core half) and per store x engine
## (data half) and its summary, then the
## other seeded checks (each engine's own simulations, the checker's properties) with $(CHECK_SEEDS) seeds
conformance: $(STAMP)
	$(BIN)/keel conformance --seeds $(SEEDS)
	$(BIN)/python -m pytest -m conformance --seeds=$(CHECK_SEEDS) -q --ignore=platform/keel/conformance/suite $(PYTEST_ARGS)

## bench: measure, print JSON, and write docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/keel bench all --json --write-docs docs/benchmarks.md

clean:
	rm -rf $(VENV) .keel .hypothesis platform/*.egg-info plugins/*/*.egg-info
