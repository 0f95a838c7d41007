# kws_assets — the commands a user runs. `make demo` materializes the whole graph on kws.yaml;
# `make test` runs the suite; `make ui` serves the Dagster UI on 127.0.0.1.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export DAGSTER_HOME
UI_PORT ?= 3000

LOCK := requirements.lock
LOCK_VENV ?= /tmp/kws_assets-lock-venv

.PHONY: install system-deps lock demo demo-real ui test fuzz check clean bench compare

# Installs the versions pinned in requirements.lock (pyproject.toml says what, the lock which).
$(VENV)/.installed: pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The Debian packages (TTS engines and voices, real dev sets, what the tests start): installed when
# run as root, else the one apt-get line to run is printed and make stops.
system-deps:
	bash .ci/system-deps

# Refreshes requirements.lock: resolves pyproject.toml afresh in a throw-away venv (newest versions
# its ranges allow) and freezes it.  Run after changing dependencies, then `make install` and commit.
lock:
	rm -rf $(LOCK_VENV) && $(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet -e ".[dev]"
	{ sed -n '/^#/p' $(LOCK); $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK) && rm -rf $(LOCK_VENV)

demo: system-deps install
	$(BIN)/python -m kws_assets.demo

# The demo on ktuberling words, scored on the recordings of people Debian's ktuberling-data
# and klettres-data ship (installed by .ci/system-deps): the real-speech numbers in the README.
# REAL picks the language: en (default), fr, de or es (configs/ktuberling_<REAL>.yaml).
REAL ?= en
demo-real: system-deps install
	KWS_CONFIG=configs/ktuberling_$(REAL).yaml $(BIN)/python -m kws_assets.demo

ui: install
	$(BIN)/python -c "from kws_assets.demo import ensure_dagster_home; ensure_dagster_home()"
	$(BIN)/dagster dev -h 127.0.0.1 -p $(UI_PORT) -w workspace.yaml

test: system-deps install
	$(BIN)/python -m pytest -q

# Long fuzzing run of the property tests over untrusted input (hypothesis profile "fuzz");
# `make test` runs the same tests with the short "ci" profile.
fuzz: install
	KWS_HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q kws_assets_tests/core/test_fuzz_inputs.py

# Static checks (CI runs them before `make test`): ruff lint and format, mypy on kws_assets/
# (config in pyproject.toml), and the Dagster definitions load and validate.
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/dg check defs

# Benchmarks against peers (librosa, python_speech_features, the machine's FLOP bound) and the
# end-to-end scaling curve; writes bench/results/report.{md,json}.  Not part of `make test`.
$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $@

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The shoot-out: the default pipeline trained on configs/compare.yaml ("alexa", "hey jarvis",
# "hey mycroft") beside openWakeWord's and microWakeWord's pretrained models of those phrases,
# each at its shipped point, on real negative speech (ktuberling, klettres) and held-out voices;
# writes bench/reports/compare.{md,json} and a DET plot per phrase.  Work folder .kws_data_compare
# (its audio and the peers' scores are reused by the next run).  COMPARE_ARGS=--tiny: a nano
# pipeline on a few minutes of audio; COMPARE_ARGS="--release <folder>": no training.
compare: system-deps install
	$(BIN)/python -m bench.compare $(COMPARE_ARGS)

clean:
	rm -rf .kws_data .dagster_home .kws_data_compare
