# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# Two locks: requirements.lock is what the bot needs to run (`make demo`);
# requirements-dev.lock adds the test and lint tools (`make test`).
RUNTIME_STAMP := $(VENV)/.runtime-stamp
DEV_STAMP := $(VENV)/.dev-stamp

.PHONY: demo test lint typecheck unit bench-search bench-recommend install clean

$(RUNTIME_STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.lock
	$(PIP) --no-deps -e .
	touch $(RUNTIME_STAMP)

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.lock
	$(PIP) -r requirements-dev.lock
	touch $(DEV_STAMP)

install: $(DEV_STAMP)

demo: $(RUNTIME_STAMP)
	$(BIN)/shuxiang demo

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy bot handlers services storage nlp sandbox

test: lint typecheck
	$(BIN)/pytest -q -rs

bench-search: $(DEV_STAMP)
	$(BIN)/python benchmarks/search.py

bench-recommend: $(DEV_STAMP)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -W ignore benchmarks/recommend.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
