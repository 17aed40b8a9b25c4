# Two commands for a fresh machine (see README):
#   make demo   -> creates .venv if missing, installs, runs the main job (a demo fit)
#   make test   -> creates .venv if missing, installs, runs the default test suite
# TORCH_SPEC selects the torch build. The default takes the CPU build that lies on this
# kind of machine; a GPU user runs e.g. `make demo TORCH_SPEC="torch>=2.4"` for a CUDA build.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch>=2.4,<2.14
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-slow test-long tutorials tutorial-images lint docs-models clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m hssm_torch.demo

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m "slow and not long" --durations=25

test-long: $(STAMP)
	$(PY) -m pytest -q -m long

# every tutorial (docs/tutorials/), executed and its outputs checked; 3 and 4 are also 'long'
tutorials: $(STAMP)
	$(PY) -m pytest -q -m slow tests/docs

# rerun every tutorial, writing its PNGs into docs/images/tutorials/
tutorial-images: $(STAMP)
	for f in docs/tutorials/0*.py; do $(PY) $$f --docs-images || exit 1; done

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

docs-models: $(STAMP)
	$(PY) -m simulators.docs > docs/models.md

clean:
	rm -rf $(VENV) .pytest_cache
