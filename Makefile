# The two commands of the README:  make demo  and  make test.
# Both create .venv if it is missing and install only what is missing: a second run starts at once.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# A CPU wheel here; a GPU user's CUDA torch already in the venv is kept (never reinstalled).
TORCH  ?= torch==2.13.0

.PHONY: demo test install install-dev lint clean-venv

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

lint: install-dev
	$(BIN)/ruff check teachgym tests

clean-venv:
	rm -rf $(VENV)
