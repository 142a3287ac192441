"""End of the run: pick the best cycle by validation accuracy, test it once, write summary.json."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from teachgraph.teachers import skill_tree
from teachgraph.teachers.observations import discovered_skill_stats
from teachgraph.graph.context import TeachContext, context_of
from teachgraph.graph.state import TeachState
from teachgraph.nodes.evaluate import score_split
from teachgraph.io import write_json_atomic, write_jsonl_atomic
from teachgraph.paths import RunPaths, add_usage, emit, log_event, teacher_tokens


def teacher_summary(ctx: TeachContext, state: TeachState) -> dict[str, Any]:
    """The teacher section of summary.json: who taught, and (LLM) calls, tokens, retries, repairs and
    fallbacks in total, by node and by cycle, and what the response cache holds."""
    if ctx.teacher != "llm":
        return {"kind": ctx.teacher, "model": "offline"}
    by_node = state.get("teacher_usage") or {}
    section: dict[str, Any] = {
        "kind": "llm", "model": ctx.teacher_model, "url": ctx.teacher_url,
        "temperature": ctx.teacher_temperature, "seed": ctx.teacher_seed,
        "max_teacher_tokens": ctx.max_teacher_tokens,
        "total_tokens": teacher_tokens(by_node),
        "totals": _sum(by_node),
        "by_node": by_node,
        "by_cycle": [{"cycle": r["cycle"], "total_tokens": teacher_tokens(r.get("teacher")),
                      **_sum(r.get("teacher"))} for r in state["history"]],
    }
    from teachgraph.teachers import teacher_dir

    cache = teacher_dir(ctx) / "cache.sqlite"
    if cache.exists():
        import sqlite3

        with sqlite3.connect(str(cache)) as conn:
            rows = conn.execute("SELECT role, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) FROM responses "
                                "GROUP BY role").fetchall()
        section["cache"] = {"path": str(cache), "entries": sum(r[1] for r in rows),
                            "by_role": {r[0]: {"entries": r[1], "prompt_tokens": r[2] or 0, "completion_tokens": r[3] or 0}
                                        for r in rows}}
    return section


def _sum(by_node: dict[str, Any] | None) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for usage in (by_node or {}).values():
        total = add_usage(total, usage)
    return total


def build_summary(ctx: TeachContext, state: TeachState, best: dict[str, Any], test_accuracy: float,
                  test_per_skill: dict[str, float]) -> dict[str, Any]:
    paths = RunPaths.of(state["run_dir"])
    history = state["history"]
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
        "teacher": teacher_summary(ctx, state),
        "per_example": {
            "evaluations": [r["eval_path"] for r in history] + [str(paths.test_eval)],
            "accepted": [str(paths.accepted(r["cycle"])) for r in history if paths.accepted(r["cycle"]).exists()],
            "dropped": [str(paths.dropped(r["cycle"])) for r in history if paths.dropped(r["cycle"]).exists()],
        },
    }


def finalize(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    ctx = context_of(runtime)
    started = time.perf_counter()
    best = max(state["history"], key=lambda r: r["val_accuracy"])  # the earliest of equals (DataEnvGym's rule)
    emit({"type": "stage", "node": "finalize", "cycle": best["cycle"], "message": f"testing cycle {best['cycle']}"})
    results = score_split(ctx, best["student_path"], "test")
    paths = RunPaths.of(state["run_dir"])
    write_jsonl_atomic(paths.test_eval, results)
    test_accuracy = round(sum(r["correct"] for r in results) / max(1, len(results)), 6)
    per_skill: dict[str, list[bool]] = {}
    for r in results:
        per_skill.setdefault(r["skill"], []).append(r["correct"])
    summary = build_summary(ctx, state, best, test_accuracy,
                            {s: round(sum(v) / len(v), 6) for s, v in sorted(per_skill.items())})
    if state.get("skill_tree"):  # settle the rewards of the last actions with the last evaluation
        write_json_atomic(paths.skill_tree, skill_tree.observe(state["skill_tree"], discovered_skill_stats(state),
                                                               state["cycle"]))
    summary["seconds_finalize"] = round(time.perf_counter() - started, 3)
    write_json_atomic(paths.summary, summary)
    log_event(state["run_dir"], "finalize", best["cycle"], test_accuracy=test_accuracy)
    return {"result": {"best_cycle": best["cycle"], "test_accuracy": test_accuracy,
                       "val_accuracy": best["val_accuracy"], "summary_path": str(paths.summary)}}
