"""The LLM teacher end to end against the simulated OpenAI server (tests/fake_teacher_server.py):
every environment, fault injection, kill-and-resume without repeated calls, an unreachable URL,
a wrong answer caught by the verifier, the token budget, `serve-teacher`; and a teacher that fails:
warned on the console, and past max_teacher_failure_rate a non-zero exit that `resume` continues."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fake_teacher_server import FakeTeacher
from tests.integration_tests.conftest import ONE_THREAD, cli_command, read_events, read_jsonl, tiny

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def wt_env(**extra: str) -> dict[str, str]:
    """Subprocesses import this checkout's code (not whatever `teachgraph` is installed)."""
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)


def cli(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*args), cwd=str(ROOT), capture_output=True, text=True, timeout=timeout,
                          env=env or wt_env())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def teacher():
    with FakeTeacher() as server:
        yield server


def run_in_process(run_dir: Path, server: FakeTeacher, **overrides):
    from langgraph.checkpoint.memory import InMemorySaver

    from teachgraph.graph import build_graph, make_context

    ctx = make_context(tiny(run_dir=str(run_dir), teacher="llm", teacher_url=server.url,
                            teacher_model=server.model, **overrides))
    graph = build_graph(checkpointer=InMemorySaver())
    out = graph.invoke({"run_dir": ctx.run_dir}, {"configurable": {"thread_id": "t"}, "recursion_limit": 1000},
                       context=ctx)
    return out, json.loads((run_dir / "summary.json").read_text())


def test_subprocesses_import_this_checkout():
    out = subprocess.run([sys.executable, "-c", "import teachgraph, teachgraph.teachers, teachgraph.graph; "
                          "print(teachgraph.__file__, teachgraph.teachers.__file__, teachgraph.graph.__file__)"],
                         cwd="/", capture_output=True, text=True, env=wt_env(), check=True).stdout
    assert out.split() == [str(ROOT / "teachgraph" / "__init__.py"), str(ROOT / "teachgraph" / "teachers" / "__init__.py"),
                           str(ROOT / "graph" / "__init__.py")]


@pytest.mark.parametrize("environment", ["skill-tree", "skill-list", "open-ended", "no-state"])
def test_every_environment_runs_with_the_llm_teacher(tmp_path, teacher, base_student_ready, environment):
    out, summary = run_in_process(tmp_path / "run", teacher, environment=environment)
    history = out["history"]
    assert [r["cycle"] for r in history] == [0, 1, 2]
    assert all(r["kept"] > 0 for r in history[1:]), history
    accepted = read_jsonl(tmp_path / "run" / "cycles" / "cycle_001" / "accepted.jsonl")
    assert accepted and {ex["provenance"]["teacher_model"] for ex in accepted} == {"fake-teacher"}
    assert {ex["provenance"]["generator"] for ex in accepted} == {"llm"}
    for key in ("cycle", "skill", "subskill", "prompt_hash", "seed"):
        assert all(key in ex["provenance"] for ex in accepted)
    # the fake teacher writes correct examples only: nothing is dropped by the verifier
    assert not any(k.startswith("verifier:") for r in history for k in r["dropped"])
    section = summary["teacher"]
    assert section["kind"] == "llm" and section["model"] == "fake-teacher"
    assert section["totals"]["calls"] > 0 and section["total_tokens"] > 0
    assert section["totals"]["failures"] == 0 and section["totals"]["fallbacks"] == 0
    assert {"plan", "generate"} <= set(section["by_node"])
    assert sum(c["total_tokens"] for c in section["by_cycle"]) == section["total_tokens"]
    assert summary["best_val_accuracy"] >= history[0]["val_accuracy"]


def test_fault_injection_run_counts_every_fault(tmp_path, base_student_ready):
    """Every fault once (each followed by a good answer): the run finishes, and summary.json counts
    4 retries (500, 429, timeout, disconnect), 3 repairs (invalid JSON, schema, truncated), 1 json_schema
    -> json_object fallback, and the wrong answer is dropped by the verifier."""
    faults = ["invalid_json", "schema", "http_500", "http_429", "slow", "truncated", "disconnect", "wrong_answer"]
    with FakeTeacher("--reject-json-schema") as server:
        server.control(faults=faults, every=2, slow_s=2.5)
        config = tmp_path / "config.json"
        config.write_text(json.dumps(tiny(teacher_timeout_s=1.0, teacher_concurrency=1, cycles=1, budget=300)))
        result = cli("run", "--config", config, "--run-dir", tmp_path / "run", "--quiet",
                     "--teacher-url", server.url, "--teacher-model", server.model)
        assert result.returncode == 0, result.stderr[-3000:]
        stats = server.stats()
    assert stats["faults_pending"] == [] and sum(stats["faults_served"].values()) == len(faults)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    totals = summary["teacher"]["totals"]
    assert totals["retries"] == 4, totals
    assert totals["repairs"] == 3, totals
    assert totals["format_fallbacks"] == 1, totals
    assert totals["failures"] == 0 and totals["fallbacks"] == 0, totals
    assert totals["errors"] == {"format_rejected": 1, "http_429": 1, "http_5xx": 1, "invalid_json": 1, "schema": 1,
                                "timeout": 1, "truncated": 1, "connection": 1}, totals
    assert totals["requests"] == totals["calls"] + 4 + 3 + 1
    assert summary["cycles"][1]["dropped"].get("verifier:wrong_answer") == 1
    dropped = read_jsonl(tmp_path / "run" / "cycles" / "cycle_001" / "dropped.jsonl")
    assert [d["drop_reason"] for d in dropped if d["drop_reason"].startswith("verifier")] == ["verifier:wrong_answer"]


def test_wrong_answer_is_dropped_by_the_verifier(tmp_path, base_student_ready):
    with FakeTeacher() as server:
        server.control(faults=["wrong_answer"], role="generator")
        out, summary = run_in_process(tmp_path / "run", server, cycles=1, budget=300)
    assert summary["cycles"][1]["dropped"].get("verifier:wrong_answer") == 1
    dropped = read_jsonl(tmp_path / "run" / "cycles" / "cycle_001" / "dropped.jsonl")
    wrong = [d for d in dropped if d["drop_reason"] == "verifier:wrong_answer"]
    assert len(wrong) == 1 and wrong[0]["provenance"]["teacher_model"] == "fake-teacher"


def test_killed_and_resumed_run_repeats_no_teacher_call(tmp_path, base_student_ready):
    """Kill the run while generate waits on held requests (3 answered), resume: no answered request is
    ever sent again (the server counts answers per request body), and the run finishes."""
    with FakeTeacher() as server:
        server.control(hold={"role": "generator", "after": 3})
        config = tmp_path / "config.json"
        config.write_text(json.dumps(tiny(teacher_concurrency=2)))
        run_dir = tmp_path / "run"
        process = subprocess.Popen(cli_command("run", "--config", config, "--run-dir", run_dir, "--quiet",
                                               "--teacher-url", server.url, "--teacher-model", server.model),
                                   cwd=str(ROOT), env=wt_env(**ONE_THREAD), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while True:
            stats = server.stats()
            if stats["answered_by_role"].get("generator", 0) >= 3 and stats["by_role"].get("generator", 0) >= 5:
                break
            assert process.poll() is None, process.stderr.read()[-3000:]
            assert time.monotonic() < deadline, stats
            time.sleep(0.1)
        time.sleep(1.0)  # the three answers are cached by now; two requests hang on the server
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        before = server.stats()
        assert not (run_dir / "summary.json").exists()
        server.control(release=True)

        resumed = cli("resume", run_dir, "--quiet", env=wt_env(**ONE_THREAD))
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        after = server.stats()
    assert after["repeated_answered"] == 0, after
    assert after["answered_by_role"]["generator"] > before["answered_by_role"]["generator"]
    # discovery, organizer and planner calls of cycle 0 were finished nodes: not asked again
    for role in ("skill_label", "skill_group", "skill_map"):
        assert after["by_role"][role] == before["by_role"][role]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["teacher"]["by_node"]["generate"]["cache_hits"] >= 3
    assert [e["node"] for e in read_events(run_dir)].count("generate") == 2


def test_failed_teacher_calls_are_warned_on_the_console_and_counted(tmp_path, base_student_ready):
    """Every generator call fails (HTTP 500) and the run is told to go on anyway (rate 1): it finishes,
    but the console says so during the run (even with --quiet), and summary.json counts the failures."""
    with FakeTeacher() as server:
        server.control(outage="http_500", outage_role="generator")
        config = tmp_path / "config.json"
        config.write_text(json.dumps(tiny(cycles=1, budget=300, teacher_max_retries=0, max_teacher_failure_rate=1.0)))
        result = cli("run", "--config", config, "--run-dir", tmp_path / "run", "--quiet",
                     "--teacher-url", server.url, "--teacher-model", server.model)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    generate = summary["teacher"]["by_node"]["generate"]
    calls = generate["calls"]
    assert calls >= 8 and generate["failures"] == calls and generate["failed"] == {"http_5xx": calls}, generate
    assert f"generate: teacher: {calls} of {calls} calls failed (http_5xx {calls}); {calls} fallbacks to the " \
           "offline agents" in result.stdout, result.stdout[-3000:]
    assert "warning" in result.stdout


def test_a_failing_teacher_stops_the_run_and_resume_finishes_once_it_is_back(tmp_path, base_student_ready):
    """The generator never answers (the server accepts and hangs): the run stops with one error line and
    exit 2 instead of finishing on fallbacks; with the teacher back, `teachgraph resume` re-runs generate
    and finishes, nothing done twice."""
    with FakeTeacher() as server:
        server.control(outage="hang", outage_role="generator")
        config = tmp_path / "config.json"
        config.write_text(json.dumps(tiny(teacher_timeout_s=1.0)))
        run_dir = tmp_path / "run"
        started = time.monotonic()
        failed = cli("run", "--config", config, "--run-dir", run_dir, "--quiet",
                     "--teacher-url", server.url, "--teacher-model", server.model)
        seconds = time.monotonic() - started
        assert failed.returncode == 2, (failed.returncode, failed.stdout[-2000:], failed.stderr[-3000:])
        lines = [line for line in failed.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in failed.stderr, failed.stderr[-3000:]
        assert lines[0].startswith("error: teacher failing in the node making generator calls: "), lines
        assert "calls failed (timeout" in lines[0] and "max_teacher_failure_rate=0.5" in lines[0], lines
        assert f"teachgraph resume {run_dir}" in lines[0] and server.url in lines[0]
        assert not (run_dir / "summary.json").exists()
        assert "generate" not in [e["node"] for e in read_events(run_dir)]
        assert seconds < 150, seconds  # 3 s a call (1 s x 3), the generator's calls concurrent
        before = server.stats()
        assert before["answered_by_role"].get("generator", 0) == 0 and before["by_status"].get("hang", 0) >= 8

        server.control(outage=None)  # the teacher is back
        resumed = cli("resume", run_dir, "--quiet")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        after = server.stats()
    assert "resuming" in resumed.stdout and "generate" in resumed.stdout
    assert after["repeated_answered"] == 0, after
    for role in ("skill_label", "skill_group", "skill_map"):  # cycle 0's finished discovery: not asked again
        assert after["by_role"].get(role) == before["by_role"].get(role), role
    events = [(e["node"], e["cycle"]) for e in read_events(run_dir)]
    assert len(events) == len(set(events)), events  # every node once per cycle
    assert [c for n, c in events if n == "generate"] == [1, 2] and [c for n, c in events if n == "evaluate"] == [0, 1, 2]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [c["cycle"] for c in summary["cycles"]] == [0, 1, 2] and all(c["kept"] > 0 for c in summary["cycles"][1:])
    assert summary["teacher"]["totals"]["failures"] == 0  # the failed attempt left no state behind
    ids = [ex["id"] for k in (1, 2) for ex in read_jsonl(run_dir / "cycles" / f"cycle_{k:03d}" / "accepted.jsonl")]
    assert ids and len(ids) == len(set(ids))


def test_unreachable_teacher_url_fails_before_any_work(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = cli("run", "--run-dir", tmp_path / "run", "--quiet", "--teacher-url", url, "--teacher-model", "m",
                 timeout=60)
    assert result.returncode == 2
    assert url in result.stderr and "unreachable" in result.stderr
    assert not (tmp_path / "run").exists()


def test_teacher_token_budget_stops_at_a_cycle_boundary(tmp_path, teacher, base_student_ready):
    out, summary = run_in_process(tmp_path / "run", teacher, cycles=3, budget=900, max_teacher_tokens=2000)
    assert out["stop_reason"] == "teacher_tokens"
    assert summary["stop_reason"] == "teacher_tokens"
    assert [r["cycle"] for r in out["history"]] == [0, 1]
    assert summary["teacher"]["total_tokens"] >= 2000


def test_serve_teacher_without_sglang_exits_2():
    result = cli("serve-teacher", "--model-path", "some/model", timeout=60)
    assert result.returncode == 2
    assert "sglang is not installed" in result.stderr


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_serve_teacher_launches_waits_and_stops(tmp_path, sigint):
    """With a stand-in `sglang.launch_server` (the fake teacher), serve-teacher waits on /health, prints
    the base URL, and stops the server when it is terminated; also where it was started with SIGINT ignored
    (what `nohup ... &` from a script does), which its server inherits: it must not sit out the SIGINT grace."""
    package = tmp_path / "shim" / "sglang"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "launch_server.py").write_text(
        "import argparse, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.fake_teacher_server import main\n"
        "p = argparse.ArgumentParser(); p.add_argument('--model-path'); p.add_argument('--host');"
        " p.add_argument('--port'); p.add_argument('--tp-size'); p.add_argument('--dp-size');"
        " p.add_argument('--mem-fraction-static')\n"
        "a, extra = p.parse_known_args()\n"
        "sys.exit(main(['--host', a.host, '--port', a.port, '--model', a.model_path]))\n")
    port = free_port()
    env = wt_env()
    env["PYTHONPATH"] = str(tmp_path / "shim") + os.pathsep + env["PYTHONPATH"]
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint == "ignored" else None
    process = subprocess.Popen(cli_command("serve-teacher", "--model-path", "tiny-teacher", "--port", str(port),
                                           "--mem-fraction-static", "0.8"),
                               cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=ignore)
    try:
        line = process.stdout.readline().strip()
        assert line == f"http://127.0.0.1:{port}/v1"
        from teachgraph.teachers.llm_client import check_reachable

        assert check_reachable(line) == ["tiny-teacher"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0  # the SIGINT grace alone is 30 s
        with pytest.raises(Exception):
            check_reachable(line, timeout=2)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("environment", ["skill-tree", "skill-list", "open-ended"])
def test_the_llm_teacher_makes_a_learnable_student_better(tmp_path, teacher, environment):
    """With a student big enough to learn within seconds, data written through the LLM path raises
    validation accuracy (the TINY student above is too small to show it)."""
    _, summary = run_in_process(tmp_path / "run", teacher, environment=environment, tiny_hidden_size=64,
                                tiny_layers=2, base_examples_per_skill=1500, base_epochs=2, cycles=2,
                                budget=2400, epochs=4)
    base = summary["cycles"][0]["val_accuracy"]
    assert summary["best_val_accuracy"] >= base + 0.05, [c["val_accuracy"] for c in summary["cycles"]]
