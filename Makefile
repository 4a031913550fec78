# The two quick-start commands (see README.md):
#   make course   set up a virtual environment in .venv, write the learner edition into learner/
#                 (vgcourse learn: solutions folded away; your own changes are kept) and open it
#   make test     set up the same environment with the test tools and run every test
# Both install PyTorch first when .venv has none: the CPU build when no NVIDIA GPU is visible (a plain
# `pip install torch` on Linux pulls several GB of CUDA packages), the default (CUDA) build otherwise.
# Later runs reinstall nothing unless pyproject.toml changed (stamp files in .venv).

VENV ?= .venv
# where `make course` writes the learner edition (not committed; your work on the lessons lives here)
LEARNER ?= learner
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: course test test-ipywidgets7 setup setup-test clean-notebooks lint benchmarks

# ipywidgets 7.7 (what Colab ships): a second, minimal environment for the explorer tests
VENV7 ?= build/venv-ipywidgets7
EXPLORER_TESTS := tests/test_widgets.py tests/test_backprop.py tests/test_shrinkage.py \
	tests/test_activation_study.py tests/test_variance.py tests/test_resnets.py \
	tests/test_recurrent.py tests/test_clipping.py tests/test_capstone.py

$(PY):
	$(PYTHON) -m venv $(VENV)

# PyTorch, once (tools/install_torch.py: kept if importable; CPU build without an NVIDIA GPU)
$(VENV)/.torch: | $(PY)
	$(PY) tools/install_torch.py
	@touch $@

$(VENV)/.course: pyproject.toml $(VENV)/.torch
	$(PY) -m pip install -e ".[course]"
	@touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.torch
	$(PY) -m pip install -e ".[test]"
	@touch $@ $(VENV)/.course

setup: $(VENV)/.course

setup-test: $(VENV)/.test

course: setup
	$(VENV)/bin/vgcourse learn $(LEARNER)
	$(VENV)/bin/jupyter lab $(LEARNER) $$([ "$$(id -u)" = 0 ] && echo --allow-root)

test: setup-test
	$(PY) -m pytest

test-ipywidgets7:
	$(PYTHON) -m venv $(VENV7)
	$(VENV7)/bin/python tools/install_torch.py
	$(VENV7)/bin/pip install --quiet "ipywidgets==7.7.*" ipykernel numpy matplotlib pillow \
		scikit-learn scipy tqdm pytest
	$(VENV7)/bin/pip install --quiet --no-deps -e .
	$(VENV7)/bin/python -c "import ipywidgets; print('ipywidgets', ipywidgets.__version__)"
	$(VENV7)/bin/python -m pytest -o addopts="" -p no:cacheprovider -q $(EXPLORER_TESTS)

lint: setup-test
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean-notebooks: $(PY)
	$(PY) -m vgcourse.course.notebooks clean lessons/*.ipynb

benchmarks: setup-test
	$(PY) benchmarks/lesson_runtime.py
