# kws_assets — the commands a user runs. `make demo` materializes the whole graph on kws.yaml;
# `make test` runs the suite; `make ui` serves the Dagster UI on 127.0.0.1.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export DAGSTER_HOME
UI_PORT ?= 3000

.PHONY: install demo ui test fuzz check clean bench

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python -m kws_assets.demo

ui: install
	$(BIN)/python -c "from kws_assets.demo import ensure_dagster_home; ensure_dagster_home()"
	$(BIN)/dagster dev -h 127.0.0.1 -p $(UI_PORT) -w workspace.yaml

test: install
	$(BIN)/python -m pytest -q

# Long fuzzing run of the property tests over untrusted input (hypothesis profile "fuzz");
# `make test` runs the same tests with the short "ci" profile.
fuzz: install
	KWS_HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q kws_assets_tests/core/test_fuzz_inputs.py

check: install
	$(BIN)/dagster definitions validate -w workspace.yaml

# Benchmarks against peers (librosa, python_speech_features, the machine's FLOP bound) and the
# end-to-end scaling curve; writes bench/results/report.{md,json}.  Not part of `make test`.
$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $@

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf .kws_data .dagster_home
