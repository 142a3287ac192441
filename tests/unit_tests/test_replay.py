"""The training set of a cycle: replay of old data, uniform or weighted towards the skills at risk."""

from __future__ import annotations

from collections import Counter

from teachgraph.io import write_jsonl_atomic
from teachgraph.teachers.replay import REPLAY_FILE, at_risk_weights, training_set


def _history(*per_skill):
    return [{"cycle": c, "per_skill": p} for c, p in enumerate(per_skill)]


def test_at_risk_weights_follow_the_drop_below_each_skills_best():
    history = _history({"a": 0.9, "b": 0.2, "c": 0.5}, {"a": 0.6, "b": 0.4, "c": 0.5}, {"a": 0.7, "b": 0.3, "c": 0.6})
    weights = at_risk_weights(history)
    assert weights == {"a": 1 + 10 * 0.2, "b": 1 + 10 * 0.1, "c": 1.0}  # a: best 0.9, now 0.7; c never lost
    assert at_risk_weights([]) == {}
    assert at_risk_weights(_history({"a": 0.5})) == {"a": 1.0}  # the base student: nothing lost yet


def _files(tmp_path, old_skills):
    base = tmp_path / "base"
    base.mkdir()
    write_jsonl_atomic(base / REPLAY_FILE, [{"prompt": f"base {i}", "skill": "kept"} for i in range(200)])
    accepted = tmp_path / "accepted.jsonl"
    write_jsonl_atomic(accepted, [{"prompt": f"new {i}", "skill": "new"} for i in range(100)])
    earlier = tmp_path / "earlier.jsonl"
    write_jsonl_atomic(earlier, [{"prompt": f"old {s} {i}", "skill": s} for s in old_skills for i in range(200)])
    return str(accepted), [str(earlier)], str(base)


def test_weighted_replay_replays_the_skill_at_risk_most_and_is_reproducible(tmp_path):
    accepted, earlier, base = _files(tmp_path, ["forgotten", "fine"])
    uniform, start = training_set("replay", 1.0, accepted, earlier, base, seed=3)
    assert start is None and len(uniform) == 200  # 100 new + 100 replayed (1.0 per new example)
    weighted, _ = training_set("replay", 1.0, accepted, earlier, base, seed=3, replay_weights={"forgotten": 5.0})
    again, _ = training_set("replay", 1.0, accepted, earlier, base, seed=3, replay_weights={"forgotten": 5.0})
    assert weighted == again and len(weighted) == 200
    replayed = Counter(r["skill"] for r in weighted[100:])
    plain = Counter(r["skill"] for r in uniform[100:])
    # a third of the pool each; weight 5 against 1 and 1 gives ~5/7 of the draws
    assert plain["forgotten"] < 50 and replayed["forgotten"] > 60 and replayed["forgotten"] > 2 * replayed["fine"]
    assert len({r["prompt"] for r in weighted}) == 200  # without replacement
    assert [r["prompt"] for r in weighted[:100]] == [f"new {i}" for i in range(100)]


def test_retrain_mode_ignores_replay_weights(tmp_path):
    accepted, earlier, base = _files(tmp_path, ["x"])
    rows, start = training_set("retrain", 0.5, accepted, earlier, base, seed=0, replay_weights={"x": 9.0})
    assert start == base and len(rows) == 200 + 200 + 100
