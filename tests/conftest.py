"""Shared fixtures: a tiny, fast configuration of the real pipeline (same code, smaller numbers)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One base-student cache for the whole session (CI points it at the checkout's .cache).
os.environ.setdefault("TEACHGRAPH_CACHE", str(ROOT / ".cache" / "teachgraph-tests"))

# A configuration that runs a whole cycle in a couple of seconds: a 1-layer, 32-wide student,
# 4 validation and 4 test examples per subskill, 300 examples per cycle.
TINY = {
    "cycles": 2,
    "budget": 600,
    "tiny_hidden_size": 32,
    "tiny_layers": 1,
    "base_examples_per_skill": 300,
    "base_epochs": 1,
    "epochs": 1,
    "domain_options": {"val_per_subskill": 4, "test_per_subskill": 4},
}


@pytest.fixture
def tiny_config() -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}


@pytest.fixture
def tiny_ctx(tmp_path, tiny_config):
    from teachgraph.graph import make_context

    return make_context(dict(tiny_config, run_dir=str(tmp_path / "run")))


@pytest.fixture
def base_student(tiny_ctx) -> str:
    from teachgraph.students import base_student_path
    from teachgraph.domains import load_domain

    return base_student_path(tiny_ctx, load_domain(tiny_ctx), log=lambda _: None)
