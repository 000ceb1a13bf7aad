# The two commands of the README:  make demo  and  make test  (which also builds the docs: make docs).
# Both create .venv if it is missing and install only what is missing: a second run starts at once.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# A CPU wheel here; a GPU user's CUDA torch already in the venv is kept (never reinstalled).
TORCH  ?= torch==2.13.0

.PHONY: demo test docs install install-dev lint clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH)"
	touch $@

$(VENV)/.installed: setup.cfg pyproject.toml $(VENV)/.torch
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: setup.cfg pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/teachgym bench toy

test: install-dev
	$(BIN)/python -m pytest -q -n 2
	$(MAKE) docs

# The documentation site (mkdocs-material, API reference from the docstrings) into site/; --strict
# turns every warning (a broken link or reference, a docstring griffe cannot parse) into a failure.
docs: install-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

lint: install-dev
	$(BIN)/ruff check teachgym tests

clean-venv:
	rm -rf $(VENV)
