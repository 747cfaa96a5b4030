# `make run` starts the demo; `make test` runs lint, types and the tests. Both create .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/wharf up -c examples/demo/wharf.toml

lint: $(STAMP)
	$(BIN)/ruff check wharf tests bench examples
	$(BIN)/mypy wharf

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/supervise.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache examples/demo/.wharf
