"""Helpers shared by the integration tests: the TINY configuration as a file, the CLI as a subprocess,
the run directory's event log, and a base student built once before any subprocess needs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import TINY

CLI_TIMEOUT = 240  # seconds; a hung subprocess fails the test instead of hanging the suite


def tiny(**overrides: Any) -> dict[str, Any]:
    """A fresh copy of the TINY configuration with overrides."""
    values = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    values.update(overrides)
    return values


def write_config(path: Path, **overrides: Any) -> Path:
    """Write TINY (plus overrides) as YAML or JSON, by the file's suffix."""
    values = tiny(**overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(values), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "teachgraph", *map(str, args)]


def cli_env(**extra: str) -> dict[str, str]:
    """The test process's environment (TEACHGRAPH_CACHE included) plus extra variables."""
    return dict(os.environ, **extra)


# For subprocesses that train at the same time: one torch thread each, so that two of them on two
# cores do not oversubscribe the CPU (which slows torch down by an order of magnitude).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_cli(*args: str, cwd: Path, timeout: float = CLI_TIMEOUT,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m teachgraph ARGS` in cwd."""
    return subprocess.run(cli_command(*args), cwd=str(cwd), capture_output=True, text=True, timeout=timeout,
                          env=env or cli_env())


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "events.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def base_student_ready(tmp_path_factory) -> str:
    """Build (or find) the cached TINY base student in this process, so that subprocesses started
    in parallel never race to build it."""
    from teachgraph.graph import make_context
    from teachgraph.students import base_student_path
    from teachgraph.domains import load_domain

    ctx = make_context(tiny(run_dir=str(tmp_path_factory.mktemp("base") / "run")))
    path = base_student_path(ctx, load_domain(ctx), log=lambda _: None)
    assert (Path(path) / "config.json").exists()
    return path
