# The two commands a newcomer runs: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-dev lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e ".[local]"

install-dev: $(BIN)/python
	$(BIN)/pip install -q -e ".[local,dev]"

demo: install
	$(BIN)/agent-budget demo

test: install-dev
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check agent_budget tests benchmarks
	$(BIN)/ruff format --check agent_budget tests benchmarks
	$(BIN)/mypy

bench: install-dev
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) build *.egg-info
