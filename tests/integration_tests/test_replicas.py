"""`teachgraph serve-teacher --replicas 2`: two teacher workers (tests/fake_teacher_server.py, real HTTP
servers) behind a real sglang-router (in its own venv, created on first use); one worker is killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration_tests.conftest import ONE_THREAD, cli_command, cli_env, read_events, tiny


@pytest.fixture(scope="session")
def router_python() -> str:
    from teachgraph.replicas import router_python as find

    started = time.monotonic()
    python = find(log=print)
    print(f"sglang-router ready in {time.monotonic() - started:.1f} s ({python})")
    return python


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> str:
    """What the workers report as their model path: a local tokenizer folder (so the router loads no other)."""
    from teachgraph.students.tiny import char_tokenizer

    path = tmp_path_factory.mktemp("teacher-tokenizer")
    char_tokenizer().save_pretrained(str(path))
    return str(path)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(log_dir: Path) -> dict[int, list[dict]]:
    out = {}
    for index in (0, 1):
        path = log_dir / f"answers-{index}.jsonl"
        out[index] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_run_through_the_router_survives_a_killed_worker(tmp_path, base_student_ready, router_python, tokenizer_dir):
    log_dir = tmp_path / "replicas"
    port = free_port()
    worker = (f"{{python}} {ROOT / 'tests' / 'fake_teacher_server.py'} --port {{port}} --model-path {{model_path}} "
              f"--latency 0.2 --answer-log {log_dir}/answers-{{index}}.jsonl")
    started = time.monotonic()
    serve = subprocess.Popen(cli_command("serve-teacher", "--replicas", "2", "--port", str(port), "--worker-base-port",
                                         str(free_port()), "--model-path", tokenizer_dir, "--worker-command", worker,
                                         "--router-python", router_python, "--router-policy", "round_robin",
                                         "--log-dir", log_dir, "--wait", "120"),
                             cwd=str(ROOT), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = serve.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}/v1", (url, serve.poll())
        print(f"2 workers and the router ready in {time.monotonic() - started:.1f} s (CLI start-up included)")
        state = json.loads((log_dir / "replicas.json").read_text())
        victim = state["workers"][0]["pid"]

        config = tmp_path / "config.json"
        config.write_text(json.dumps(tiny(cycles=1, budget=300, teacher_concurrency=4, teacher_batch_size=10)))
        run_dir = tmp_path / "run"
        run = subprocess.Popen(cli_command("run", "--config", config, "--run-dir", run_dir, "--quiet", "--teacher-url",
                                           url, "--teacher-model", "fake-teacher"),
                               cwd=str(ROOT), env=cli_env(**ONE_THREAD), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        deadline = time.monotonic() + 300
        while len(answers(log_dir)[0]) < 3:  # worker 0 has answered some of the run's requests: kill it
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)
        at_kill = answers(log_dir)
        out, err = run.communicate(timeout=400)
        assert run.returncode == 0, err[-3000:]

        after = answers(log_dir)
        assert len(after[1]) > len(at_kill[1]), "worker 1 answered nothing after the kill: not mid-run"
        summary = json.loads((run_dir / "summary.json").read_text())
        totals = summary["teacher"]["totals"]
        assert totals["failures"] == 0 and totals["fallbacks"] == 0, totals  # nothing lost
        hashes = [a["hash"] for index in (0, 1) for a in after[index]]
        assert len(hashes) == len(set(hashes)), "a request was answered twice"
        assert len(hashes) == totals["calls"] - totals["cache_hits"], (len(hashes), totals)  # every call answered once
        assert "generate" in [e["node"] for e in read_events(run_dir)]

        # the launcher restarted the killed worker, and the router takes it back
        deadline = time.monotonic() + 60
        while True:
            state = json.loads((log_dir / "replicas.json").read_text())
            if state["workers"][0]["restarts"] == 1:
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.2)
        assert state["workers"][0]["pid"] != victim
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=60)
    assert code == 0, serve.stderr.read()[-3000:]
    state = json.loads((log_dir / "replicas.json").read_text())
    assert not any(alive(p) for p in [state["router"]["pid"], *(w["pid"] for w in state["workers"])])
