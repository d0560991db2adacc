# regsweep: every set-up step lives here, so a fresh clone needs only `make run` / `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench build system-deps clean

run: build
	@bash scripts/run-demo.sh $(BIN)

test: system-deps build
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: build
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@mkdir -p build/typecheck/regsweep
	@for d in crawler matcher cli; do ln -sfn ../../../$$d build/typecheck/regsweep/$$d; done
	$(BIN)/mypy

bench: build
	$(BIN)/python -m benchmarks.bench_versions

# The venv and the editable install; re-done when the dependency list changes.
$(STAMP): pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "regsweep needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel "Cython>=3.0.11,<4"
	$(BIN)/pip install -q --no-build-isolation -e '.[dev]'
	touch $(STAMP)

# Cython recompiles only the modules whose sources changed.
build: $(STAMP)
	$(BIN)/python setup.py -q build_ext --inplace

# Reference tools the tests use as oracles (python3-apt, python3-rpm, …), from .ci/apt-packages.txt.
system-deps:
	@bash scripts/system-deps.sh .ci/apt-packages.txt

clean:
	rm -rf build $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find matcher -name '*.so' -delete -o -name '*.c' -delete -o -name '*.html' -delete
