# The README's two commands: `make demo` and `make test`. Both do all set-up on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO_STAMP := $(VENV)/.demo-stamp

.PHONY: demo test lint format venv clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Reinstall when the project metadata changes. Editable, so `src/` edits need no reinstall.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev,sweep,minigrid,craftax]'
	touch $(STAMP)

# The demo needs the core package and MiniGrid only (not jax/Craftax: a fresh clone's demo stays
# within minutes); `make test` installs every extra the suite exercises.
$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[minigrid]'
	touch $(DEMO_STAMP)

venv: $(STAMP)

demo: $(DEMO_STAMP)
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
