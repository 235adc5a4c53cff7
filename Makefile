# LiftOS: `make demo` sets up .venv and runs the main job; `make test` sets up and runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Dependencies install with uv (seconds; pip takes minutes), falling back to pip where uv cannot
# be had. uv ignores pip's configuration: a local wheel folder pip is pointed at (PIP_FIND_LINKS,
# e.g. the CPU build of torch) is passed on.
UV_FIND_LINKS ?= $(PIP_FIND_LINKS)
export UV_FIND_LINKS
# A comma inside $(call ...) would split the argument: the extras list goes in a variable.
BENCH_EXTRAS := ".[test,bench]"
INSTALL = $(PIP) install -q uv && $(BIN)/uv pip install -q --python $(BIN)/python -e $(1) \
	|| $(PIP) install -q -e $(1)

# Test processes (pytest-xdist, whole modules each): the suite waits on servers, subprocesses and
# heartbeats as much as it computes, so two processes keep 2 cores busy. 0 runs in one process.
TEST_WORKERS ?= 2
PYTEST = $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: demo test test-fast lint bench install clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "LiftOS needs Python 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(call INSTALL,".[test]")
	touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	$(call INSTALL,$(BENCH_EXTRAS))
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/liftos demo

lint: install
	$(BIN)/ruff check .

test: lint
	$(PYTEST)

test-fast: install
	$(PYTEST) -m "not slow"

bench: $(VENV)/.installed-bench
	$(BIN)/python bench/bench_fit.py
	$(BIN)/python bench/bench_orchestration.py
	$(BIN)/python bench/bench_memory.py
	$(BIN)/python bench/bench_validation.py
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_coverage.py
	$(BIN)/python bench/bench_accuracy.py
	$(BIN)/python bench/bench_planner.py
	$(BIN)/python bench/bench_recovery.py
	$(BIN)/python bench/bench_brief.py
	$(BIN)/python bench/bench_api.py
	$(BIN)/python bench/bench_sentiment.py
	$(BIN)/python bench/bench_monitor.py
	$(BIN)/python bench/bench_scale.py
	$(BIN)/python bench/bench_load.py

clean:
	rm -rf $(VENV) .liftos .pytest_cache
