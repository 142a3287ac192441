"""End of the run: pick the best cycle by validation accuracy, test it once, write summary.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from teachgraph.environments import skill_forest
from teachgraph.environments.observations import discovered_skill_stats
from teachgraph.graph.context import TeachContext
from teachgraph.graph.state import TeachState
from teachgraph.io import write_json_atomic, write_jsonl_atomic
from teachgraph.nodes.common import Step, log_event
from teachgraph.nodes.evaluate import headline_accuracy, score_split
from teachgraph.paths import RunPaths
from teachgraph.teachers.usage import teacher_summary


def build_summary(ctx: TeachContext, state: TeachState, best: dict[str, Any], test_accuracy: float,
                  test_per_skill: dict[str, float]) -> dict[str, Any]:
    paths = RunPaths.of(state["run_dir"], state.get("branch"))
    history = state["history"]
    accepted = paths.lineage(state.get("accepted_paths"), state["cycle"] + 1)
    cycles = [{k: v for k, v in r.items() if k not in {"student_path", "eval_path"}} for r in history]
    return {
        "config": ctx.public_dump(),
        "environment": ctx.environment,
        "seed": ctx.seed,
        "cycles": cycles,
        "best_cycle": best["cycle"],
        "best_val_accuracy": best["val_accuracy"],
        "test_accuracy": test_accuracy,
        "test_per_skill": test_per_skill,
        "val_gain": round(best["val_accuracy"] - history[0]["val_accuracy"], 6),
        "stop_reason": state.get("stop_reason"),
        "budget_used": state.get("budget_used", 0),
        "train_examples_total": state.get("train_examples_total", 0),
        "teacher": teacher_summary(ctx, state.get("teacher_usage"), history),
        "branch": state.get("branch") or "",
        "per_example": {
            "evaluations": [r["eval_path"] for r in history] + [str(paths.test_eval)],
            "accepted": accepted,
            "dropped": [str(Path(p).with_name("dropped.jsonl")) for p in accepted
                        if Path(p).with_name("dropped.jsonl").exists()],
        },
    }


def finalize(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    best = max(state["history"], key=lambda r: r["val_accuracy"])  # the earliest of equals (DataEnvGym's rule)
    step = Step("finalize", state, runtime, best["cycle"])
    step.say(f"testing cycle {best['cycle']}")
    results = score_split(step.services, best["student_path"], "test")
    write_jsonl_atomic(step.paths.test_eval, results)
    test_accuracy = round(headline_accuracy(step.services.domain, results), 6)
    per_skill: dict[str, list[bool]] = {}
    for r in results:
        per_skill.setdefault(r["skill"], []).append(r["correct"])
    summary = build_summary(step.ctx, state, best, test_accuracy,
                            {s: round(sum(v) / len(v), 6) for s, v in sorted(per_skill.items())})
    if state.get("skill_tree"):  # settle the rewards of the last actions with the last evaluation
        write_json_atomic(step.paths.skill_tree, skill_forest.observe(state["skill_tree"], discovered_skill_stats(state),
                                                                      state["cycle"]))
    if hasattr(step.services.domain, "metrics"):
        summary["test_metrics"] = step.services.domain.metrics(results)
    summary["seconds_finalize"] = round(step.seconds(), 3)
    write_json_atomic(step.paths.summary, summary)
    log_event(step.run_dir, "finalize", best["cycle"], test_accuracy=test_accuracy)
    return {"result": {"best_cycle": best["cycle"], "test_accuracy": test_accuracy,
                       "val_accuracy": best["val_accuracy"], "summary_path": str(step.paths.summary)}}
