"""`python -m teachgraph` as a real subprocess: configuration errors, run-directory checks, resume errors,
the graph diagram and a full tiny run. Independent commands run concurrently to keep the suite fast."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from teachgraph.graph import make_context

from .conftest import CLI_TIMEOUT, ONE_THREAD, cli_command, cli_env, read_events, run_cli, tiny, write_config

NODES = ("evaluate", "discover_skills", "organize_skills", "plan", "generate", "deduplicate", "train", "finalize")


def run_concurrently(commands: dict[str, list[str]], cwd: Path) -> dict[str, subprocess.CompletedProcess]:
    """Start every command at once (2 cores, mostly import time), wait for all."""
    procs = {name: subprocess.Popen(cli_command(*args), cwd=str(cwd), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=cli_env(**ONE_THREAD))
             for name, args in commands.items()}
    results = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=CLI_TIMEOUT)
            results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_clean_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.stderr.startswith("error: "), result.stderr[-2000:]
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def _run_dir_with(root: Path, name: str, config_json: str | None, checkpoint: bytes | None) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    if config_json is not None:
        (run_dir / "config.json").write_text(config_json)
    if checkpoint is not None:
        (run_dir / "checkpoints.sqlite").write_bytes(checkpoint)
    return run_dir


@pytest.fixture(scope="module")
def error_cases(tmp_path_factory, base_student_ready) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("cli_errors")
    write_config(root / "unknown.yaml", bogus_field=3)
    write_config(root / "environment.json", environment="skill-forest")
    valid = json.dumps({"run_id": "skill-tree-s0-test",
                        "config": make_context(tiny(run_dir=str(root / "x"))).model_dump()})
    _run_dir_with(root, "not_a_run", None, None)
    _run_dir_with(root, "garbage_checkpoint", valid, bytes(range(256)) * 16)
    _run_dir_with(root, "damaged_checkpoint", valid, b"SQLite format 3\x00" + b"\xff\x13garbage" * 600)
    _run_dir_with(root, "garbage_config", "{not json", None)
    commands = {
        "unknown_field": ["run", "--config", "unknown.yaml", "--run-dir", "run_unknown", "--quiet"],
        "wrong_environment": ["run", "--config", "environment.json", "--run-dir", "run_environment", "--quiet"],
        "resume_not_a_run": ["resume", "not_a_run", "--quiet"],
        "resume_garbage_checkpoint": ["resume", "garbage_checkpoint", "--quiet"],
        "resume_damaged_checkpoint": ["resume", "damaged_checkpoint", "--quiet"],
        "resume_garbage_config": ["resume", "garbage_config", "--quiet"],
        "mermaid": ["graph", "--mermaid"],
    }
    return {"root": root, "results": run_concurrently(commands, root)}


def test_unknown_field_is_refused_before_any_work(error_cases):
    result = error_cases["results"]["unknown_field"]
    assert_clean_error(result, "bogus_field", "unknown field")
    assert not (error_cases["root"] / "run_unknown").exists()


def test_wrong_environment_is_refused_before_any_work(error_cases):
    result = error_cases["results"]["wrong_environment"]
    assert_clean_error(result, "environment")
    assert "skill-tree" in result.stderr  # the allowed values are named
    assert not (error_cases["root"] / "run_environment").exists()


def test_resume_of_a_non_run_dir_is_one_clear_line(error_cases):
    result = error_cases["results"]["resume_not_a_run"]
    assert_clean_error(result, "not a teachgraph run directory")
    assert len(error_lines(result.stderr)) == 1


@pytest.mark.parametrize("case", ["resume_garbage_checkpoint", "resume_damaged_checkpoint"])
def test_resume_with_garbage_checkpoint_is_one_clear_line(error_cases, case):
    result = error_cases["results"][case]
    assert_clean_error(result, "checkpoint")
    assert len(error_lines(result.stderr)) == 1


def test_resume_with_garbage_config_is_one_clear_line(error_cases):
    """A run directory whose config.json is not JSON must give the same kind of clean error."""
    result = error_cases["results"]["resume_garbage_config"]
    assert_clean_error(result, "config.json")
    assert len(error_lines(result.stderr)) == 1


def test_graph_mermaid_prints_every_node(error_cases):
    result = error_cases["results"]["mermaid"]
    assert result.returncode == 0, result.stderr[-2000:]
    assert "graph TD" in result.stdout
    for node in NODES:
        assert f"{node}({node})" in result.stdout, node
    assert "train --> evaluate" in result.stdout


# -- a real run -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, base_student_ready) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("cli_run")
    write_config(root / "tiny.yaml")
    result = run_cli("run", "--config", "tiny.yaml", "--run-dir", "run", cwd=root)
    return {"root": root, "run_dir": root / "run", "result": result}


@pytest.fixture(scope="module")
def second_runs(finished_run) -> dict[str, Any]:
    """After the first run finished: the same configuration again, and a different one, in its directory."""
    root, run_dir = finished_run["root"], finished_run["run_dir"]
    write_config(root / "other.json", seed=1, epochs=2)
    before = {"events": read_events(run_dir), "summary": (run_dir / "summary.json").read_text(),
              "config": (run_dir / "config.json").read_text()}
    results = run_concurrently({
        "same": ["run", "--config", "tiny.yaml", "--run-dir", "run"],
        "different": ["run", "--config", "other.json", "--run-dir", "run", "--quiet"],
    }, root)
    return {"before": before, "results": results}


def test_full_run_prints_table_and_writes_summary(finished_run):
    result, run_dir = finished_run["result"], finished_run["run_dir"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "teaching cycles" in out  # the per-cycle table's title
    for column in ("cycle", "val acc", "gen", "kept", "dropped"):
        assert column in out
    for k in range(3):
        assert f"cycle {k}: validation" in out
    assert "best cycle" in out and "summary.json" in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [c["cycle"] for c in summary["cycles"]] == [0, 1, 2]
    assert summary["stop_reason"] == "max_cycles"
    assert sum(c["generated"] for c in summary["cycles"]) <= 600
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["run_id"] and stored["config"]["budget"] == 600 and stored["config"]["cycles"] == 2
    conn = sqlite3.connect(str(run_dir / "checkpoints.sqlite"))
    try:
        threads = {row[0] for row in conn.execute("select distinct thread_id from checkpoints")}
    finally:
        conn.close()
    assert threads == {stored["run_id"]}
    table_rows = [line for line in out.splitlines() if line.strip().startswith("│")]
    assert len(table_rows) >= 3


def test_same_config_again_is_already_finished(finished_run, second_runs):
    result, run_dir = second_runs["results"]["same"], finished_run["run_dir"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "already finished" in result.stdout
    assert "teaching cycles" in result.stdout  # the table of the finished run is shown again
    assert read_events(run_dir)[:len(second_runs["before"]["events"])] == second_runs["before"]["events"]
    new_events = read_events(run_dir)[len(second_runs["before"]["events"]):]
    assert new_events == [], "no node may run again"
    assert (run_dir / "summary.json").read_text() == second_runs["before"]["summary"]


def test_different_config_in_the_same_run_dir_is_refused(finished_run, second_runs):
    result, run_dir = second_runs["results"]["different"], finished_run["run_dir"]
    assert_clean_error(result, "different configuration", "seed", "epochs")
    differing = result.stderr.split("fields differ:")[1].split(")")[0]
    assert "budget" not in differing and "cycles" not in differing
    assert (run_dir / "config.json").read_text() == second_runs["before"]["config"]
    assert (run_dir / "summary.json").read_text() == second_runs["before"]["summary"]
