"""The review gate from the command line: a run with review on pauses before training; without a
terminal it says how to answer, and `teachgraph resume --answer` approves, edits or stops."""

from __future__ import annotations

import json

from tests.integration_tests.conftest import read_events, read_jsonl, run_cli, write_config


def test_review_gate_from_the_cli(tmp_path, base_student_ready):
    config = write_config(tmp_path / "tiny.yaml", review=True)
    run_dir = tmp_path / "run"

    first = run_cli("run", "--config", config, "--run-dir", run_dir, "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "waits for review" in first.stdout
    assert not any(e["node"] == "train" for e in read_events(run_dir))  # paused before training

    unanswered = run_cli("resume", run_dir, "--quiet", cwd=tmp_path)  # no terminal, no --answer: still waiting
    assert unanswered.returncode == 0, unanswered.stderr
    assert "waits for review" in unanswered.stdout
    assert not any(e["node"] == "train" for e in read_events(run_dir))

    accepted = read_jsonl(run_dir / "cycles" / "cycle_001" / "accepted.jsonl")
    drop = [accepted[0]["id"], accepted[1]["id"]]
    edited = run_cli("resume", run_dir, "--quiet", "--answer", "drop:" + ",".join(drop), cwd=tmp_path)
    assert edited.returncode == 0, edited.stderr
    kept = read_jsonl(run_dir / "cycles" / "cycle_001" / "accepted.jsonl")
    assert len(kept) == len(accepted) - 2 and not {e["id"] for e in kept} & set(drop)
    reasons = [e["drop_reason"] for e in read_jsonl(run_dir / "cycles" / "cycle_001" / "dropped.jsonl")]
    assert reasons.count("reviewer") == 2
    assert [e["cycle"] for e in read_events(run_dir) if e["node"] == "train"] == [1]  # cycle 2 waits again
    assert "waits for review" in edited.stdout

    stopped = run_cli("resume", run_dir, "--quiet", "--answer", "stop", cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "stopped_by_reviewer"
    assert [c["cycle"] for c in summary["cycles"]] == [0, 1]
    assert summary["cycles"][1]["dropped"].get("reviewer") == 2

    bad = run_cli("resume", run_dir, "--answer", "maybe", cwd=tmp_path)
    assert bad.returncode == 0  # the run is finished: nothing waits for an answer any more
    assert "already finished" in bad.stdout
