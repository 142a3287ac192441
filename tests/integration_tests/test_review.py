"""The review gate (nodes/review.py): with `review=True` the run pauses after deduplicate with an
interrupt showing the plan and a sample of accepted examples; the answer (`Command(resume=...)`, which
`Run.stream(answer=...)` sends) approves, edits (drops examples by id) or stops the run. Driven through
the run layer with its SqliteSaver, resuming with a fresh connection and fresh services to show the
pause survives the process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from teachgraph.graph import make_context
from teachgraph.paths import RunPaths
from teachgraph.run import Run

from .conftest import read_events, read_jsonl, tiny

pytestmark = pytest.mark.slow


def _start(tmp_path: Path, base_student_ready) -> dict[str, Any]:
    """Run until the review interrupt of cycle 1; return what the test needs to resume."""
    run_dir = tmp_path / "run"
    with Run.create(make_context(tiny(cycles=1, budget=300, review=True, run_dir=str(run_dir)))) as run:
        values = run.invoke()
        snapshot = run.snapshot()
    assert "result" not in values, "review=True must pause the run"
    assert snapshot.next == ("review",)
    assert len(snapshot.interrupts) == 1
    return {"run_dir": run_dir, "payload": snapshot.interrupts[0].value}


def _resume(started: dict[str, Any], answer: Any) -> dict[str, Any]:
    with Run.open(started["run_dir"]) as run:  # a new checkpointer connection and services: as after a restart
        run.invoke(answer=answer)
        return {"state": run.snapshot()}


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
    snapshot = _resume(started, {"action": "edit", "drop_ids": ["no-such-id"]})["state"]
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
