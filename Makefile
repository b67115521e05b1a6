# dunwell: `make run` starts everything, `make test` checks everything. Both install what they need.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3

# uv from PATH, else a private copy installed from PyPI into .uv/ (no installer script, no internet
# beyond the package registry).
UV := $(shell command -v uv 2>/dev/null || echo .uv/bin/uv)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help run test lint bench clean chromium

help:
	@echo "make run    start Temporal (with UI), worker and API on embedded defaults"
	@echo "make test   lint, type-check and run every test"
	@echo "make lint   ruff and mypy only"
	@echo "make bench  measure start throughput, dispute latency and history size"

.uv/bin/uv:
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv

$(BIN)/dunwell: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

run: $(BIN)/dunwell
	$(BIN)/dunwell dev

lint: $(BIN)/dunwell
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# The browser tests drive Debian's Chromium through Playwright (nothing downloaded by Playwright).
CHROMIUM ?= $(shell command -v chromium 2>/dev/null || echo /usr/bin/chromium)

chromium:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	else \
		echo "make test needs Chromium for its browser tests: run 'sudo apt-get install chromium' (or set CHROMIUM=/path/to/chromium)" >&2; exit 1; \
	fi

test: lint chromium
	DUNWELL_TEST_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest

bench: $(BIN)/dunwell
	$(BIN)/python -m bench

clean:
	rm -rf .venv .uv .pytest_cache .mypy_cache .ruff_cache
