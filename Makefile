# `make run` starts the demo; `make test` runs lint, types and the tests. Both create .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The proxy's request path, compiled with mypyc (setup.py); rebuilt when its sources change.
HOT_PATH := $(addprefix wharf/proxy/,server.py reader.py downstream.py exchange.py request.py \
            forward.py relay.py upstream.py pool.py routing.py http1.py \
            rewrite.py plane.py services.py https.py tlsconn.py counters.py ratelimit.py date.py buffering.py \
            accesslog.py) $(wildcard wharf/proxy/balancers/*.py) \
            wharf/registry/snapshot.py
COMPILED := build/.compiled

.PHONY: run install test lint bench bench-proxy clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(COMPILED): $(STAMP) $(HOT_PATH)
	$(BIN)/python setup.py --quiet build_ext --inplace
	# An edit that leaves the generated C alone (a comment) relinks nothing: mark it built.
	touch *__mypyc.*.so
	mkdir -p build && touch $(COMPILED)

run: $(COMPILED)
	$(BIN)/wharf up -c examples/demo/wharf.toml

# Link the wharf command into ~/.local/bin, so that it is on the PATH.
install: $(COMPILED)
	mkdir -p $(HOME)/.local/bin
	ln -sf $(abspath $(BIN))/wharf $(HOME)/.local/bin/wharf
	@echo "wharf -> $(HOME)/.local/bin/wharf"

lint: $(STAMP)
	$(BIN)/ruff check wharf tests bench examples setup.py
	$(BIN)/mypy wharf

test: lint $(COMPILED)
	WHARF_EXPECT_COMPILED=1 $(BIN)/pytest -q

bench: $(COMPILED)
	$(BIN)/python bench/supervise.py

bench-proxy: $(COMPILED)
	$(BIN)/python bench/proxy.py

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .mypy_cache examples/demo/.wharf
	find wharf -name '*.so' -delete
	rm -f *__mypyc.*.so
