"""The real domains end to end on the CPU: `teachgraph run --domain math|code --dataset local` with a
tiny student built from a config (random weights: it scores ~0, but every stage runs for real), the
offline teacher (the shipped pool) and the LLM teacher (the simulated OpenAI server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fake_teacher_server import FakeTeacher
from tests.integration_tests.conftest import read_events, read_jsonl, run_cli

pytestmark = pytest.mark.slow

# A small tiny student and short answers: one cycle takes seconds (the smoke run uses the defaults).
SMALL = ["--set", "tiny_hidden_size=32", "--set", "tiny_layers=1", "--set", "max_new_tokens=48", "--quiet"]


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("domain", ["math", "code"])
def test_a_full_cycle_runs_offline_on_the_shipped_sample(tmp_path, domain):
    run_dir = tmp_path / domain
    done = run_cli("run", "--domain", domain, "--dataset", "local", "--cycles", "1", "--budget", "24",
                   "--run-dir", str(run_dir), *SMALL, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = _summary(run_dir)
    history = summary["cycles"]
    assert [r["cycle"] for r in history] == [0, 1]
    assert history[1]["generated"] > 0 and history[1]["kept"] > 0
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    accepted = read_jsonl(run_dir / "cycles" / "cycle_001" / "accepted.jsonl")
    assert accepted and all(e["provenance"]["cycle"] == 1 and e["provenance"]["skill"] for e in accepted)
    if domain == "code":
        assert all(e["tests"] and e["answer"].startswith("```python") for e in accepted)
    else:
        assert all(e["answer"].rstrip().endswith("$") or "\\boxed" in e["answer"] for e in accepted)
    nodes = [e["node"] for e in read_events(run_dir)]
    assert nodes.count("train") == 1 and nodes.count("evaluate") == 2
    per_example = read_jsonl(run_dir / "cycles" / "cycle_000" / "eval_val.jsonl")
    assert per_example and {"prediction", "correct", "skill", "subskill"} <= set(per_example[0])


@pytest.mark.parametrize("domain", ["math", "code"])
def test_the_llm_teacher_writes_domain_examples_and_the_verifier_drops_a_wrong_one(tmp_path, domain):
    with FakeTeacher("--faults", "wrong_answer") as server:
        run_dir = tmp_path / domain
        done = run_cli("run", "--domain", domain, "--dataset", "local", "--cycles", "1", "--budget", "12",
                       "--run-dir", str(run_dir), "--teacher-url", server.url, "--teacher-model", server.model,
                       *SMALL, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    record = _summary(run_dir)["cycles"][1]
    reason = "verifier:answer_mismatch" if domain == "math" else "verifier:reference_wrong_answer"
    assert record["dropped"].get(reason) == 1, record["dropped"]
    accepted = read_jsonl(run_dir / "cycles" / "cycle_001" / "accepted.jsonl")
    assert len(accepted) == record["kept"] > 0
    assert all(e["provenance"]["generator"] == "llm" and e["provenance"]["teacher_model"] == server.model
               for e in accepted)
    if domain == "math":
        assert all("\\boxed" in e["answer"] and e["final_answer"] for e in accepted)
    else:
        assert all(e["tests"] for e in accepted)


def test_a_dataset_that_cannot_be_read_fails_before_any_work(tmp_path):
    done = run_cli("run", "--domain", "math", "--dataset", str(tmp_path / "nowhere"), "--run-dir",
                   str(tmp_path / "run"), "--quiet", cwd=tmp_path)
    assert done.returncode == 2 and "no train.jsonl" in done.stderr
    assert not (tmp_path / "run" / "checkpoints.sqlite").exists()
    offline = run_cli("run", "--domain", "code", "--dataset", "livecodebench/code_generation_lite", "--run-dir",
                      str(tmp_path / "run2"), "--quiet", cwd=tmp_path)
    assert offline.returncode == 2 and "--dataset PATH" in offline.stderr


def test_a_hub_student_that_cannot_be_reached_fails_with_a_clear_message(tmp_path):
    done = run_cli("run", "--domain", "math", "--student", "nobody-here/no-such-model-xyz", "--run-dir",
                   str(tmp_path / "run"), "--quiet", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "local path" in done.stderr and "Traceback" not in done.stderr
