# Two commands do all setup on a fresh machine: `make run` (the offline default) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.teachgraph-installed
# pip prints one warning per package for the machine's extra index folders; hide only those lines.
QUIET_PIP := grep -v "is ignored: it is neither a file nor a directory" || true
ARGS ?=

.PHONY: setup run test bench clean

setup: $(STAMP)

# torch first, from its CPU build; then everything else pinned to that torch (a newer torch pulls ~3 GB of CUDA wheels).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q torch==2.13.0 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]" 2>&1 | $(QUIET_PIP)
	$(PY) -c "import torch, transformers, peft, langgraph, chromadb; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

run: setup
	$(VENV)/bin/teachgraph run $(ARGS)

test: setup
	$(PY) -m pytest -q -p no:cacheprovider $(ARGS)

# every benchmark (benchmarks/README.md): ARGS="--smoke" for the quick CI version, ARGS="--only dedup,resume" for some
bench: setup
	$(PY) benchmarks/run_all.py $(ARGS)

clean:
	rm -rf runs .pytest_cache
