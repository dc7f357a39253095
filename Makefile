# Two commands do everything on a fresh machine with Python 3.11 and pip:
#   make demo   set up, simulate nothing (sample data is committed), run the sample evaluation from the
#               DfE/GIAS-layout files (sample_data/dfe/)
#   make test   set up and run the whole test suite
#   make docs   set up and build the documentation site into site/ (mkdocs build --strict: warnings fail)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint docs clean

$(BIN)/evaltool: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(BIN)/evaltool

setup: $(BIN)/evaltool

demo: setup
	$(BIN)/evaltool validate configs/federation_impact_dfe.yaml
	$(BIN)/evaltool run configs/federation_impact_dfe.yaml --out results/federation_impact_dfe --overwrite

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check evaltool tests benchmarks docs
	$(BIN)/lint-imports

docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) results site .pytest_cache
