"""The review gate (nodes/review.py): with `review=True` the run pauses after deduplicate with an
interrupt showing the plan and a sample of accepted examples; `Command(resume=...)` approves, edits
(drops examples by id) or stops the run. Driven through the real graph with a SqliteSaver, resuming
from a fresh connection to show the pause survives the process.

Needs the node wired into graph/graph.py (deduplicate -> review -> train | finalize) and the context
field `review: bool = False` in graph/context.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from teachgraph.graph import build_graph, make_context
from teachgraph.paths import RunPaths

from .conftest import read_events, read_jsonl, tiny

pytestmark = pytest.mark.slow


def _graph(run_dir: Path):
    conn = sqlite3.connect(str(run_dir / "checkpoints.sqlite"), check_same_thread=False)
    return build_graph(checkpointer=SqliteSaver(conn)), conn


def _start(tmp_path: Path, base_student_ready) -> dict[str, Any]:
    """Run until the review interrupt of cycle 1; return what the test needs to resume."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    ctx = make_context(tiny(cycles=1, budget=300, review=True, run_dir=str(run_dir)))
    config = {"configurable": {"thread_id": "review-test"}}
    graph, conn = _graph(run_dir)
    out = graph.invoke({"run_dir": str(run_dir)}, config, context=ctx)
    snapshot = graph.get_state(config)
    conn.close()
    assert "__interrupt__" in out, "review=True must pause the run"
    assert snapshot.next == ("review",)
    assert len(snapshot.interrupts) == 1
    return {"ctx": ctx, "config": config, "run_dir": run_dir, "payload": snapshot.interrupts[0].value}


def _resume(started: dict[str, Any], answer: Any) -> dict[str, Any]:
    graph, conn = _graph(started["run_dir"])  # a new connection: as after a restart
    try:
        out = graph.invoke(Command(resume=answer), started["config"], context=started["ctx"])
        return {"out": out, "state": graph.get_state(started["config"])}
    finally:
        conn.close()


def test_review_is_off_by_default():
    assert make_context({}).review is False


def test_interrupt_payload_shows_plan_and_sample(tmp_path, base_student_ready):
    started = _start(tmp_path, base_student_ready)
    payload, paths = started["payload"], RunPaths.of(started["run_dir"])
    assert payload["type"] == "review"
    assert payload["cycle"] == 1
    assert payload["plan"]["requests"] > 0 and sum(payload["plan"]["examples_by_skill"].values()) > 0
    accepted = read_jsonl(paths.accepted(1))
    assert payload["kept"] == len(accepted) > 0
    ids = {ex["id"] for ex in accepted}
    assert payload["sample"] and all(s["id"] in ids and s["prompt"] for s in payload["sample"])
    assert not paths.student(1).exists(), "nothing may be trained before the review"


def test_approve_trains_on_the_data_as_is(tmp_path, base_student_ready):
    started = _start(tmp_path, base_student_ready)
    paths = RunPaths.of(started["run_dir"])
    before = paths.accepted(1).read_bytes()
    resumed = _resume(started, {"action": "approve"})
    state = resumed["state"]
    assert not state.next
    assert "test_accuracy" in state.values["result"]
    assert state.values["stop_reason"] == "max_cycles"
    assert paths.accepted(1).read_bytes() == before
    assert paths.student(1).exists()
    assert state.values["train_examples_total"] == len(read_jsonl(paths.accepted(1)))
    assert [e["action"] for e in read_events(started["run_dir"]) if e["node"] == "review"] == ["approve"]


def test_edit_drops_ids_then_trains(tmp_path, base_student_ready):
    started = _start(tmp_path, base_student_ready)
    paths = RunPaths.of(started["run_dir"])
    accepted = read_jsonl(paths.accepted(1))
    drop = [s["id"] for s in started["payload"]["sample"][:3]]

    # a malformed answer and unknown ids are asked again, with the problem stated; nothing changes
    graph, conn = _graph(started["run_dir"])
    graph.invoke(Command(resume={"action": "edit", "drop_ids": ["no-such-id"]}), started["config"],
                 context=started["ctx"])
    snapshot = graph.get_state(started["config"])
    conn.close()
    assert snapshot.next == ("review",)
    assert "unknown example ids" in snapshot.interrupts[0].value["error"]
    assert len(read_jsonl(paths.accepted(1))) == len(accepted)

    resumed = _resume(started, {"action": "edit", "drop_ids": drop})
    state = resumed["state"]
    assert not state.next and "test_accuracy" in state.values["result"]
    kept = read_jsonl(paths.accepted(1))
    assert len(kept) == len(accepted) - len(drop)
    assert not {ex["id"] for ex in kept} & set(drop)
    reviewer_drops = [ex for ex in read_jsonl(paths.dropped(1)) if ex["drop_reason"] == "reviewer"]
    assert sorted(ex["id"] for ex in reviewer_drops) == sorted(drop)
    assert state.values["train_examples_total"] == len(kept)
    record = next(r for r in state.values["history"] if r["cycle"] == 1)
    assert record["kept"] == len(kept)
    assert record["dropped"].get("reviewer") == len(drop)


def test_stop_ends_the_run_without_training(tmp_path, base_student_ready):
    started = _start(tmp_path, base_student_ready)
    paths = RunPaths.of(started["run_dir"])
    resumed = _resume(started, {"action": "stop"})
    state = resumed["state"]
    assert not state.next
    assert state.values["stop_reason"] == "stopped_by_reviewer"
    assert state.values["result"]["best_cycle"] == 0
    assert "test_accuracy" in state.values["result"]
    assert paths.summary.exists()
    assert not paths.student(1).exists()
    assert not [e for e in read_events(started["run_dir"]) if e["node"] == "train"]
