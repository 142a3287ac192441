"""What each environment lets the teacher see, computed from per-example evaluation results."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


def skill_stats(results: list[dict[str, Any]], assignment: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """{skill: {"accuracy", "n", "subskills": {subskill: {"accuracy", "n"}}}}; skills come from
    `assignment` (example id -> discovered skill) when given, else from the examples' gold labels."""
    correct: dict[str, list[int]] = defaultdict(list)
    sub_correct: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        skill = assignment.get(r["id"]) if assignment is not None else r.get("skill")
        if skill is None:
            continue
        correct[skill].append(int(r["correct"]))
        if r.get("subskill"):
            sub_correct[skill][r["subskill"]].append(int(r["correct"]))
    return {s: {"accuracy": sum(v) / len(v), "n": len(v),
                "subskills": {sub: {"accuracy": sum(x) / len(x), "n": len(x)} for sub, x in sorted(sub_correct[s].items())}}
            for s, v in sorted(correct.items())}


def discovered_skill_stats(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """skill_stats of the latest validation results, by the discovered skills (graph state paths)."""
    from teachgraph.io import read_json, read_jsonl

    assignment = read_json(state["skills"]["path"])["assignment"]
    return skill_stats(read_jsonl(state["evaluation"]["path"]), assignment)


def errors(results: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The open-ended environment's state: every validation error as (question, student answer, gold)."""
    return [{"question": r["prompt"], "student_answer": r["prediction"], "gold_answer": r["answer"]}
            for r in results if not r["correct"]]


def errors_by_skill(results: list[dict[str, Any]], assignment: dict[str, str] | None, per_skill: int = 5) -> dict[str, list[dict[str, str]]]:
    grouped: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in results:
        skill = assignment.get(r["id"]) if assignment is not None else r.get("skill")
        if not r["correct"] and skill is not None and len(grouped[skill]) < per_skill:
            grouped[skill].append({"question": r["prompt"], "student_answer": r["prediction"], "gold_answer": r["answer"]})
    return dict(grouped)
