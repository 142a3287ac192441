"""Turn what the environment lets the teacher see into this cycle's data-generation plan."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from teachgraph.teachers import build_teacher, skill_tree
from teachgraph.teachers.observations import errors, errors_by_skill, skill_stats
from teachgraph.domains.base import DIFFICULTIES
from teachgraph.graph.context import TeachContext, context_of
from teachgraph.graph.state import TeachState
from teachgraph.io import read_json, read_jsonl, write_json_atomic
from teachgraph.paths import RunPaths, derive_seed, domain_of, emit, log_event, with_stage_seconds, with_teacher_usage


def cycle_budget(ctx: TeachContext, state: TeachState) -> int:
    """The remaining budget spread evenly over the remaining cycles."""
    remaining = ctx.budget - state.get("budget_used", 0)
    cycles_left = max(1, ctx.cycles - state["cycle"])
    return max(0, remaining // cycles_left)


def observe(ctx: TeachContext, state: TeachState) -> dict[str, Any]:
    """The environment's state space: errors (open-ended), per-skill accuracy (skill-list), the forest
    (skill-tree), or only the skill names (no-state)."""
    results = read_jsonl(state["evaluation"]["path"])
    if ctx.environment == "open-ended":
        return {"errors": errors(results)}
    skills = state["skills"]["skills"]
    if ctx.environment == "no-state":
        return {"skills": {s: {} for s in skills}}
    assignment = read_json(state["skills"]["path"])["assignment"]
    if ctx.environment == "skill-list":
        stats = skill_stats(results, assignment)
        return {"skills": {s: stats.get(s, {"accuracy": 0.0, "n": 0}) for s in skills},
                "errors_by_skill": errors_by_skill(results, assignment)}
    rows = []
    for skill, name, allocation in skill_tree.allocations(state["skill_tree"]):
        catalog = skills[skill]["subskills"]
        level = catalog.index(name) if name in catalog else 0
        rows.append((skill, name, allocation, DIFFICULTIES[min(level, len(DIFFICULTIES) - 1)]))
    return {"allocations": rows}


def plan(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    ctx = context_of(runtime)
    started = time.perf_counter()
    target = state["cycle"] + 1  # the data planned now trains the student of the next cycle
    budget = cycle_budget(ctx, state)
    teacher = build_teacher(ctx, domain_of(ctx))
    new_plan = teacher.planner.plan(ctx.environment, observe(ctx, state), budget, derive_seed(ctx.seed, "plan", target))
    path = RunPaths.of(state["run_dir"]).plan(target)
    write_json_atomic(path, dict(new_plan, cycle=target, environment=ctx.environment))
    emit({"type": "stage", "node": "plan", "cycle": target,
          "message": f"{len(new_plan['requests'])} requests, {budget} examples"})
    log_event(state["run_dir"], "plan", target, requests=len(new_plan["requests"]))
    update: dict[str, Any] = {
        "plan": {"cycle": target, "budget": budget, "requests": new_plan["requests"], "notes": new_plan["notes"],
                 "path": str(path)},
        **with_teacher_usage(state, with_stage_seconds(state.get("cycle_stats"), "plan", time.perf_counter() - started),
                             "plan", teacher.usage()),
    }
    if ctx.environment == "skill-tree":
        update["skill_tree"] = skill_tree.record_planned(state["skill_tree"], new_plan["requests"])
    return update
