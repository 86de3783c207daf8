# Two commands do all the set-up on a fresh machine:
#   make demo   - run the main job (initial + periodic sync) against the built-in emulator
#   make test   - run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench emulator clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cgsync demo

test: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

emulator: $(STAMP)
	$(BIN)/cgsync emulator

clean:
	rm -rf $(VENV) cgsync-demo.duckdb .pytest_cache
