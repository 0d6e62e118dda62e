# The two commands a newcomer runs: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# llama-cpp-python is built from source (no wheel on the registry here), portably: see
# scripts/install-llama.sh. Keep this equal to the [local] pin in pyproject.toml.
LLAMA_VERSION := 0.3.36

.PHONY: demo test install install-dev lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Installed first, from a wheel built with fixed flags: the -e install below then finds it
# satisfied and never takes a natively built wheel from pip's cache.
$(VENV)/.llama-portable: scripts/install-llama.sh | $(BIN)/python
	scripts/install-llama.sh $(VENV) $(LLAMA_VERSION)

install: $(VENV)/.llama-portable
	$(BIN)/pip install -q -e ".[local,plot]"

install-dev: $(VENV)/.llama-portable
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
