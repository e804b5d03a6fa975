# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test lint bench clean

$(VENV)/.core-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	touch $@

# CPU torch is pinned to the build on local disk; a bare `torch` would pull a multi-GB CUDA build.
$(VENV)/.test-installed: $(VENV)/.core-installed
	$(PIP) "torch==2.13.0" -e ".[eval,test]"
	touch $@

demo: $(VENV)/.core-installed
	@$(PY) audit.py check submissions/ ; rc=$$?; [ $$rc -le 1 ] || exit $$rc

test: $(VENV)/.test-installed
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

bench: $(VENV)/.test-installed
	$(PY) benchmarks/bench_check.py

clean:
	rm -rf $(VENV) .golfaudit-cache build *.egg-info
