# charrnn: `make demo` sets up .venv and runs fetch -> train -> sample offline; `make test` runs
# the linters and the tests. Both bootstrap .venv themselves on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch build to install when the venv has none. The default is the CPU wheel that lies on
# this project's machines; elsewhere pick yours (see README: CUDA, ROCm or CPU index URLs).
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=

.PHONY: setup demo test lint bench completions mutate clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: setup
	$(VENV)/bin/charrnn fetch pysrc
	$(VENV)/bin/charrnn train --corpus pysrc --run demo-$$(date +%Y%m%d-%H%M%S) --max-minutes 1 \
		--hidden-size 128 --eval-every 200
	$(VENV)/bin/charrnn eval
	$(VENV)/bin/charrnn sample --len 600 --seed "def " --temperature 0.7 --random-seed 1

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest -q

bench: setup
	$(PY) -m benchmarks

# mutation testing (mutmut, not in CI: minutes a module) of the modules behind docs/reliability.md,
# each against its own tests: the table is [tool.charrnn.mutate] in pyproject.toml. One module:
# `make mutate MODULES=charrnn_cli/storage/locks.py`; figures in .mutate/summary.json
MODULES ?=
mutate: setup
	nice -n 10 $(PY) tests/mutate.py $(MODULES)

completions: setup
	$(PY) completions/generate.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
