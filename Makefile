# The README's two commands: `make demo` and `make test`. Both do all set-up on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint format venv clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Reinstall when the project metadata changes. Editable, so `src/` edits need no reinstall.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev,sweep,minigrid,craftax]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m wnet_seg.demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .ruff_cache
