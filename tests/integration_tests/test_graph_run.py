"""The compiled graph end to end, in process, with a real SqliteSaver checkpointer, in every environment."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver

from teachgraph.graph import build_graph, make_context
from teachgraph.paths import RunPaths

from .conftest import read_events, read_jsonl, tiny

ENVIRONMENTS = ("skill-tree", "skill-list", "open-ended", "no-state")
NODES = {"evaluate", "discover_skills", "organize_skills", "plan", "generate", "deduplicate", "review", "train", "finalize"}
PROVENANCE_KEYS = {"cycle", "skill", "subskill", "generator", "teacher_model", "prompt_hash"}


def _saver(run_dir: Path) -> tuple[SqliteSaver, sqlite3.Connection]:
    run_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(run_dir / "checkpoints.sqlite"), check_same_thread=False)
    return SqliteSaver(conn), conn


def run_graph(run_dir: Path, stream_custom: bool = False, **overrides: Any) -> dict[str, Any]:
    """Invoke (or stream) the graph to completion; returns the final state, the summary and,
    when streamed, the custom events."""
    ctx = make_context(tiny(run_dir=str(run_dir), **overrides))
    saver, conn = _saver(run_dir)
    try:
        graph = build_graph(checkpointer=saver)
        config = {"configurable": {"thread_id": f"test-{ctx.environment}"}, "recursion_limit": 200}
        events: list[Any] = []
        if stream_custom:
            for chunk in graph.stream({"run_dir": str(run_dir)}, config, context=ctx, stream_mode="custom"):
                events.append(chunk)
            final = graph.get_state(config).values
        else:
            final = graph.invoke({"run_dir": str(run_dir)}, config, context=ctx)
        snapshot = graph.get_state(config)
    finally:
        conn.close()
    return {"ctx": ctx, "state": final, "next": snapshot.next, "events": events,
            "summary": json.loads(RunPaths.of(run_dir).summary.read_text()), "run_dir": run_dir}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("graph_runs")
    return {env: run_graph(root / env, environment=env) for env in ENVIRONMENTS}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_full_run_summary(runs, environment):
    run = runs[environment]
    ctx, state, summary = run["ctx"], run["state"], run["summary"]
    assert run["next"] == ()  # the thread is finished
    assert state["stop_reason"] == "max_cycles"
    assert state["result"]["summary_path"] == str(RunPaths.of(run["run_dir"]).summary)
    assert summary["environment"] == environment
    assert summary["config"]["environment"] == environment
    assert summary["seed"] == ctx.seed
    cycles = summary["cycles"]
    assert [c["cycle"] for c in cycles] == list(range(ctx.cycles + 1))
    for c in cycles:
        assert 0.0 <= c["val_accuracy"] <= 1.0
        assert set(c["per_skill"])
        for key in ("generated", "kept", "dropped", "train_examples_total", "seconds"):
            assert key in c
        assert c["kept"] + sum(c["dropped"].values()) == c["generated"]
    assert cycles[0]["generated"] == 0
    assert all(c["generated"] > 0 for c in cycles[1:])
    assert summary["best_cycle"] in {c["cycle"] for c in cycles}
    assert summary["best_val_accuracy"] == max(c["val_accuracy"] for c in cycles)
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert summary["stop_reason"] == "max_cycles"
    for f in summary["per_example"]["evaluations"] + summary["per_example"]["accepted"]:
        assert Path(f).exists(), f


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_budget_respected_and_accepted_data_has_provenance(runs, environment):
    run = runs[environment]
    ctx, summary = run["ctx"], run["summary"]
    paths = RunPaths.of(run["run_dir"])
    generated = sum(c["generated"] for c in summary["cycles"])
    assert 0 < generated <= ctx.budget
    assert summary["budget_used"] == generated == run["state"]["budget_used"]
    total_kept = 0
    for cycle in range(1, ctx.cycles + 1):
        assert len(read_jsonl(paths.generated(cycle))) == summary["cycles"][cycle]["generated"]
        accepted = read_jsonl(paths.accepted(cycle))
        assert len(accepted) == summary["cycles"][cycle]["kept"] > 0
        total_kept += len(accepted)
        for ex in accepted:
            assert PROVENANCE_KEYS <= set(ex["provenance"])
            assert ex["provenance"]["cycle"] == cycle
    assert summary["train_examples_total"] == total_kept == summary["cycles"][-1]["train_examples_total"]
    prompts = [ex["prompt"] for c in range(1, ctx.cycles + 1) for ex in read_jsonl(paths.accepted(c))]
    assert len(set(prompts)) == len(prompts)  # no example is accepted twice across cycles


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_events_follow_the_environment(runs, environment):
    run = runs[environment]
    events = read_events(run["run_dir"])
    finished = Counter((e["node"], e["cycle"]) for e in events)
    assert max(finished.values()) == 1  # no node ran twice for a cycle
    nodes = {e["node"] for e in events}
    cycles = run["ctx"].cycles
    for k in range(1, cycles + 1):
        for node in ("plan", "generate", "deduplicate", "train"):
            assert finished[(node, k)] == 1
    assert finished[("finalize", run["summary"]["best_cycle"])] == 1
    if environment == "open-ended":
        assert "discover_skills" not in nodes and "organize_skills" not in nodes
        assert "skills" not in run["state"] or not run["state"].get("skills")
    else:
        assert finished[("discover_skills", 0)] == 1 and "discover_skills" in nodes
        assert sum(n == "discover_skills" for n, _ in finished.elements()) == 1  # rediscover_every=0
    if environment == "skill-tree":
        assert {("organize_skills", k) for k in range(cycles)} <= set(finished)
    else:
        assert "organize_skills" not in nodes


def test_skill_tree_state_has_history_and_rewards(runs):
    run = runs["skill-tree"]
    forest = run["state"]["skill_tree"]
    cycles = run["ctx"].cycles
    assert forest["skills"]
    rewards = 0
    for skill, tree in forest["skills"].items():
        assert tree["subskills"], skill
        history = tree["history"]
        assert [h["cycle"] for h in history] == list(range(cycles))  # one action per organize_skills
        settled = history[0]
        assert settled["reward"] is not None
        assert settled["reward"] == pytest.approx(settled["accuracy_after"] - settled["accuracy_before"], abs=1e-6)
        rewards += 1
        assert history[-1]["reward"] is None  # the last action is settled by an evaluation that never came
        assert sum(s["data_total"] for s in tree["subskills"].values()) > 0
    assert rewards == len(forest["skills"])
    for env in ("skill-list", "no-state", "open-ended"):
        assert not runs[env]["state"].get("skill_tree")


def test_open_ended_plans_from_errors(runs):
    run = runs["open-ended"]
    paths = RunPaths.of(run["run_dir"])
    plan = json.loads(paths.plan(1).read_text())
    assert plan["environment"] == "open-ended"
    assert plan["requests"] and all(r["skill"] is None and r["exemplars"] for r in plan["requests"])
    errors = {r["prompt"] for r in read_jsonl(paths.eval_val(0)) if not r["correct"]}
    assert {r["exemplars"][0] for r in plan["requests"]} <= errors


@pytest.fixture(scope="module")
def streamed_rerun(runs, tmp_path_factory) -> dict[str, Any]:
    """The skill-tree run again, same seed, another directory, streamed in custom mode."""
    return run_graph(tmp_path_factory.mktemp("graph_rerun") / "skill-tree", stream_custom=True,
                     environment="skill-tree")


def test_same_seed_gives_same_results(runs, streamed_rerun):
    first, second = runs["skill-tree"]["summary"], streamed_rerun["summary"]
    assert [c["val_accuracy"] for c in first["cycles"]] == [c["val_accuracy"] for c in second["cycles"]]
    assert first["test_accuracy"] == second["test_accuracy"]
    assert first["best_cycle"] == second["best_cycle"]
    assert [c["kept"] for c in first["cycles"]] == [c["kept"] for c in second["cycles"]]
    for k in range(1, first["config"]["cycles"] + 1):
        a = RunPaths.of(runs["skill-tree"]["run_dir"]).accepted(k).read_text()
        b = RunPaths.of(streamed_rerun["run_dir"]).accepted(k).read_text()
        assert a == b


def test_custom_stream_reports_training_progress(streamed_rerun):
    events = streamed_rerun["events"]
    assert events and all(isinstance(e, dict) for e in events)
    train = [e for e in events if e.get("type") == "progress" and e.get("node") == "train"]
    assert train, "train should stream progress events"
    assert all(0 < e["step"] <= e["total"] and "loss" in e for e in train)
    assert sum(e["step"] == e["total"] for e in train) == streamed_rerun["ctx"].cycles  # each cycle's last step
    stages = {e["node"] for e in events if e.get("type") == "stage"}
    assert {"evaluate", "plan", "deduplicate", "train", "finalize"} <= stages
    cycle_events = [e for e in events if e.get("type") == "cycle"]
    assert [e["record"]["cycle"] for e in cycle_events] == list(range(streamed_rerun["ctx"].cycles + 1))
    assert cycle_events[-1]["stop_reason"] == "max_cycles"


def test_compiled_graph_has_all_nodes():
    drawn = build_graph().get_graph()
    assert NODES <= set(drawn.nodes)
    edges = {(e.source, e.target) for e in drawn.edges}
    assert {("__start__", "evaluate"), ("generate", "deduplicate"), ("train", "evaluate"),
            ("evaluate", "finalize"), ("finalize", "__end__")} <= edges


def test_module_graph_has_no_checkpointer():
    import importlib

    import teachgraph.graph as package

    module = importlib.import_module("teachgraph.graph.graph")
    assert module.graph is package.graph
    assert module.graph.checkpointer is None
    assert NODES <= set(module.graph.get_graph().nodes)
    assert build_graph(checkpointer=SqliteSaver(sqlite3.connect(":memory:", check_same_thread=False))).checkpointer is not None
