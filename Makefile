# The two quick-start commands (see README.md):
#   make course   set up a virtual environment in .venv and open the course in JupyterLab
#   make test     set up the same environment with the test tools and run every test
# Without make: python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: course test setup setup-test clean-notebooks lint benchmarks

$(PY):
	$(PYTHON) -m venv $(VENV)

setup: $(PY)
	$(PY) -m pip install -e .

setup-test: $(PY)
	$(PY) -m pip install -e ".[test]"

course: setup
	$(VENV)/bin/jupyter lab lessons/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

test: setup-test
	$(PY) -m pytest

lint: setup-test
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean-notebooks: $(PY)
	$(PY) -m vgcourse.notebooks clean lessons/*.ipynb

benchmarks: setup-test
	$(PY) benchmarks/lesson_runtime.py
