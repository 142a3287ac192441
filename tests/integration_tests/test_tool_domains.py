"""The tool-use domains end to end on the CPU: `teachgraph run --domain tools` (offline teacher: the
domain's own programs) and `--domain mnms --dataset local` (the shipped pool), and both with the LLM
teacher (the simulated OpenAI server), whose bad plans the verifier drops and counts by reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teachgraph.domains import get_domain
from tests.fake_teacher_server import FakeTeacher
from tests.integration_tests.conftest import read_events, read_jsonl, run_cli

pytestmark = pytest.mark.slow

SMALL = ["--set", "tiny_hidden_size=32", "--set", "tiny_layers=1", "--set", "base_examples_per_skill=200",
         "--set", "base_epochs=1", "--set", "epochs=1", "--quiet"]
FEW = ["--set", "domain_options={val_per_subskill: 2, test_per_subskill: 2}"]


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def test_tools_runs_offline_and_keeps_only_plans_that_run_to_their_answers(tmp_path):
    run_dir = tmp_path / "tools"
    done = run_cli("run", "--domain", "tools", "--cycles", "1", "--budget", "60", "--run-dir", str(run_dir),
                   *SMALL, *FEW, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = _summary(run_dir)
    assert [r["cycle"] for r in summary["cycles"]] == [0, 1]
    assert set(summary["cycles"][0]["per_skill"]) == {"arith", "text", "shop", "units", "dates"}
    accepted = read_jsonl(run_dir / "cycles" / "cycle_001" / "accepted.jsonl")
    domain = get_domain("tools")
    assert accepted and all(domain.verify(e) is None and e["provenance"]["skill"] for e in accepted)
    per_example = read_jsonl(run_dir / "cycles" / "cycle_000" / "eval_val.jsonl")
    assert len(per_example) == 5 * 3 * 2
    assert [e["node"] for e in read_events(run_dir)].count("train") == 1
    # MnMs's metrics of the test split, recomputed from the saved per-example results
    test_rows = read_jsonl(run_dir / "eval_test.jsonl")
    test_split = get_domain("tools", val_per_subskill=2, test_per_subskill=2).load_split("test")
    assert summary["test_metrics"] == domain.metrics_of([r["prediction"] for r in test_rows], test_split)
    assert sum(summary["test_metrics"]["verdicts"].values()) == len(test_rows)


def test_the_llm_teacher_writes_plans_and_bad_ones_are_dropped_and_counted(tmp_path):
    with FakeTeacher("--faults", "wrong_answer") as server:
        run_dir = tmp_path / "tools-llm"
        done = run_cli("run", "--domain", "tools", "--cycles", "1", "--budget", "75", "--run-dir", str(run_dir),
                       "--teacher-url", server.url, "--teacher-model", server.model, *SMALL, *FEW, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    record = _summary(run_dir)["cycles"][1]
    assert {k: record["dropped"].get(k) for k in ("verifier:wrong_answer", "verifier:unknown_tool",
                                                  "verifier:wrong_type")} == {
        "verifier:wrong_answer": 1, "verifier:unknown_tool": 1, "verifier:wrong_type": 1}, record["dropped"]
    accepted = read_jsonl(run_dir / "cycles" / "cycle_001" / "accepted.jsonl")
    assert len(accepted) == record["kept"] > 0
    domain = get_domain("tools")
    assert all(e["provenance"]["generator"] == "llm" and domain.verify(e) is None for e in accepted)


def test_mnms_runs_on_the_shipped_sample_offline_and_with_the_llm_teacher(tmp_path):
    offline = tmp_path / "mnms"
    done = run_cli("run", "--domain", "mnms", "--dataset", "local", "--cycles", "1", "--budget", "8",
                   "--run-dir", str(offline), *SMALL, "--set", "max_new_tokens=24", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _summary(offline)["cycles"][1]["generated"] > 0
    with FakeTeacher("--faults", "wrong_answer") as server:
        run_dir = tmp_path / "mnms-llm"
        done = run_cli("run", "--domain", "mnms", "--dataset", "local", "--cycles", "1", "--budget", "12",
                       "--run-dir", str(run_dir), "--teacher-url", server.url, "--teacher-model", server.model,
                       *SMALL, "--set", "max_new_tokens=24", cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    record = _summary(run_dir)["cycles"][1]
    assert record["dropped"].get("verifier:unknown_tool") == 1, record["dropped"]
    accepted = read_jsonl(run_dir / "cycles" / "cycle_001" / "accepted.jsonl")
    assert len(accepted) == record["kept"] > 0, record
    assert all(json.loads(e["answer"])["nodes"] and e["provenance"]["generator"] == "llm" for e in accepted)
