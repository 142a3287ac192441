"""Skill-tree environment: update the forest with the latest accuracies and take one action per skill."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from teachgraph.teachers import build_teacher, skill_tree
from teachgraph.teachers.observations import discovered_skill_stats
from teachgraph.graph.context import TeachContext, context_of
from teachgraph.graph.state import TeachState
from teachgraph.io import write_json_atomic
from teachgraph.paths import RunPaths, domain_of, emit, log_event, with_stage_seconds, with_teacher_usage


def organize_skills(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    ctx = context_of(runtime)
    started = time.perf_counter()
    cycle = state["cycle"]
    skills = state["skills"]["skills"]
    stats = discovered_skill_stats(state)

    forest = skill_tree.sync_skills(state.get("skill_tree") or skill_tree.new_forest(list(skills)), list(skills))
    forest = skill_tree.observe(forest, stats, cycle)
    teacher = build_teacher(ctx, domain_of(ctx))
    forest, actions, invalid = teacher.organizer.organize(forest, {s: v["subskills"] for s, v in skills.items()}, cycle,
                                                  ctx.subskill_cap, ctx.skill_cap)
    write_json_atomic(RunPaths.of(state["run_dir"]).skill_tree, forest)  # the latest forest, for people and reports
    explored = sum(a["type"] == "explore" for a in actions)
    emit({"type": "stage", "node": "organize_skills", "cycle": cycle,
          "message": f"{explored} explore, {len(actions) - explored} exploit, {invalid} invalid"})
    log_event(state["run_dir"], "organize_skills", cycle, explore=explored, invalid=invalid)
    stats = with_stage_seconds(state.get("cycle_stats"), "organize_skills", time.perf_counter() - started,
                               organizer={"explore": explored, "exploit": len(actions) - explored,
                                          "invalid_actions": invalid, "actions": actions})
    return {"skill_tree": forest, **with_teacher_usage(state, stats, "organize_skills", teacher.usage())}
