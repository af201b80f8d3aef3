# audio-oracles: every target installs what it needs first (see `install`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEB_PACKAGES := espeak-ng ffmpeg chromium

.PHONY: install demo test test-faults test-unit bench lint clean

NODE_STAMP := node_modules/.installed

UI_PAGE := exchange_oracle/ui/dist/annotate.html
UI_SOURCES := $(wildcard exchange_oracle/ui/src/*) exchange_oracle/ui/annotate.html exchange_oracle/ui/build.mjs

# VAD_ENGINE=silero's model file; the package's own torch and torchaudio are not needed.
SILERO_VAD := 6.2.3

install: $(STAMP) $(NODE_STAMP) $(UI_PAGE)

# The annotator page: wavesurfer.js and our sources bundled by esbuild (no CDN at run time).
$(UI_PAGE): $(NODE_STAMP) $(UI_SOURCES)
	npm run --silent build:ui

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

$(STAMP): pyproject.toml
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps silero-vad==$(SILERO_VAD)
	@touch $(STAMP)

demo: install
	$(BIN)/audio-oracles demo

test: install
	$(BIN)/pytest -m "not faults"

# Faults injected into real processes (SIGKILL, signals, outages): minutes of waiting on
# recoveries, so apart from `make test`; CI runs both.
test-faults: install
	$(BIN)/pytest -m faults

test-unit: install
	$(BIN)/pytest tests/unit

bench: install
	$(BIN)/python -m benchmarks

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
