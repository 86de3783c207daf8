# Two commands do all the set-up on a fresh machine:
#   make demo   - run the main job (initial + periodic sync) against the built-in emulator
#   make test   - lint (ruff), then run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The benchmark runs what a user installs (`pip install cgsync`): no test or optional extras,
# whose packages (SQLAlchemy, dagster) dlt would import on the way.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: demo lint test bench emulator clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cgsync demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

# One pytest worker per core and one more (pytest-xdist): the suite is mostly syncs against
# emulators, and each worker also waits (process starts, locks, the emulator's held requests).
# make turns any failing status into 2, so pytest's 5 (no tests collected) is named here.
PYTEST_WORKERS ?= $(shell expr $$(nproc 2>/dev/null || echo 1) + 1)
test: lint
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing the run" >&2; fi; \
	exit $$status

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -e .
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks $(BENCH_ARGS)

emulator: $(STAMP)
	$(BIN)/cgsync emulator

clean:
	rm -rf $(VENV) $(BENCH_VENV) cgsync-demo.duckdb .pytest_cache
