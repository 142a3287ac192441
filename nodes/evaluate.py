"""Evaluate the current student on the validation split, close the cycle's record, decide whether to stop."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from teachgraph.domains.base import score_all
from teachgraph.environments.observations import skill_stats
from teachgraph.graph.context import TeachContext
from teachgraph.graph.state import TeachState
from teachgraph.io import write_jsonl_atomic
from teachgraph.nodes.common import Step, log_event
from teachgraph.services import RunServices
from teachgraph.students.base import predict_examples
from teachgraph.teachers.usage import teacher_tokens


def score_split(services: RunServices, student_path: str, split: str) -> list[dict[str, Any]]:
    """Per-example results of a student on a split: prompt, gold answer, prediction, verdict, labels."""
    examples = services.domain.load_split(split)
    student = services.students.get(student_path)
    predictions = predict_examples(student, examples)
    verdicts = score_all(services.domain, predictions, examples)
    return [{"id": e["id"], "prompt": e["prompt"], "answer": e["answer"], "prediction": p,
             "correct": correct, "skill": e.get("skill"), "subskill": e.get("subskill"),
             **{k: e[k] for k in RESULT_EXTRAS if k in e}}
            for e, p, correct in zip(examples, predictions, verdicts)]


# carried from an example into its result where it has them: its picture (reports, a VLM teacher's
# discovery) and what a domain's own metrics need (NaturalBench: group and slot; tools: the plan's result)
RESULT_EXTRAS = ("scene", "image", "group", "slot", "result")


def headline_accuracy(domain: Any, results: list[dict[str, Any]]) -> float:
    """The number a run optimises: the domain's headline metric where it has one (NaturalBench: the group
    score), else the share of correct answers."""
    if hasattr(domain, "headline_score"):
        return float(domain.headline_score(results))
    return sum(r["correct"] for r in results) / max(1, len(results))


def stop_reason(ctx: TeachContext, history: list[dict[str, Any]], budget_used: int, tokens_used: int = 0) -> str | None:
    cycle = history[-1]["cycle"]
    best = max(history, key=lambda r: r["val_accuracy"])  # max() keeps the earliest of equals
    if cycle >= ctx.cycles:
        return "max_cycles"
    if budget_used >= ctx.budget:
        return "budget"
    if ctx.max_teacher_tokens is not None and tokens_used >= ctx.max_teacher_tokens:
        return "teacher_tokens"  # checked here, at a cycle boundary, so the run ends with a checkpointed state
    if ctx.target_accuracy is not None and history[-1]["val_accuracy"] >= ctx.target_accuracy:
        return "target_accuracy"
    if ctx.patience is not None and cycle - best["cycle"] >= ctx.patience:
        return "no_improvement"
    return None


def next_node(ctx: TeachContext, environment: Any, state: TeachState, stop: str | None) -> str:
    """finalize when a stop condition holds; else discover skills (first cycle, or every N) where the
    environment uses skills, then organize them where it keeps a skill tree, then plan."""
    if stop:
        return "finalize"
    cycle = state.get("cycle", 0)
    rediscover = ctx.rediscover_every and cycle > 0 and cycle % ctx.rediscover_every == 0
    if environment.uses_skills and (not state.get("skills") or rediscover):
        return "discover_skills"
    return "organize_skills" if environment.organizes_skills else "plan"


def evaluate(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    cycle = state.get("cycle", 0)
    step = Step("evaluate", state, runtime, cycle)
    ctx, paths = step.ctx, step.paths
    student_path = state.get("student_path") or step.services.base_student()
    step.say(f"evaluating cycle {cycle}")

    results = score_split(step.services, student_path, "val")
    write_jsonl_atomic(paths.eval_val(cycle), results)
    per_skill = skill_stats(results)
    accuracy = headline_accuracy(step.services.domain, results)

    # evaluate closes the cycle: its record takes the cycle's stats, which then start afresh
    stats = dict(state.get("cycle_stats") or {})
    record = {
        "cycle": cycle,
        "val_accuracy": round(accuracy, 6),
        "per_skill": {s: round(v["accuracy"], 6) for s, v in per_skill.items()},
        **({"metrics": step.services.domain.metrics(results)} if hasattr(step.services.domain, "metrics") else {}),
        "per_subskill": {s: {sub: round(x["accuracy"], 6) for sub, x in v["subskills"].items()} for s, v in per_skill.items()},
        "generated": stats.get("generated", 0),
        "kept": stats.get("kept", 0),
        "dropped": stats.get("dropped", {}),
        "train_examples_total": state.get("train_examples_total", 0),
        "train": stats.get("train", {}),
        "organizer": stats.get("organizer", {}),
        "teacher": stats.get("teacher", {}),
        "seconds": dict(stats.get("seconds", {}), evaluate=round(step.seconds(), 3)),
        "student_path": student_path,
        "eval_path": str(paths.eval_val(cycle)),
    }
    history = [r for r in state.get("history", []) if r["cycle"] != cycle] + [record]
    reason = stop_reason(ctx, history, state.get("budget_used", 0), teacher_tokens(state.get("teacher_usage")))
    log_event(step.run_dir, "evaluate", cycle, val_accuracy=record["val_accuracy"])
    step.emit_cycle(record, reason)
    return {
        "run_dir": step.run_dir,
        "cycle": cycle,
        "student_path": student_path,
        "evaluation": {"cycle": cycle, "accuracy": record["val_accuracy"], "per_skill": record["per_skill"],
                       "n": len(results), "errors": sum(not r["correct"] for r in results),
                       "path": str(paths.eval_val(cycle))},
        "history": history,
        "budget_used": state.get("budget_used", 0),
        "train_examples_total": state.get("train_examples_total", 0),
        "stop_reason": reason,
        "route": next_node(ctx, step.services.environment, state, reason),
        "cycle_stats": {},
    }
