"""Skill-tree environment: update the forest with the latest accuracies and take one action per skill."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from teachgraph.environments import skill_forest
from teachgraph.environments.observations import discovered_skill_stats
from teachgraph.graph.context import TeachContext
from teachgraph.graph.state import TeachState
from teachgraph.io import write_json_atomic
from teachgraph.nodes.common import Step


def organize_skills(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    cycle = state["cycle"]
    step = Step("organize_skills", state, runtime, cycle)
    ctx = step.ctx
    skills = state["skills"]["skills"]

    forest = skill_forest.sync_skills(state.get("skill_tree") or skill_forest.new_forest(list(skills)), list(skills))
    forest = skill_forest.observe(forest, discovered_skill_stats(state), cycle)
    forest, actions, invalid = step.services.teacher.organizer.organize(
        forest, {s: v["subskills"] for s, v in skills.items()}, cycle, ctx.subskill_cap, ctx.skill_cap)
    write_json_atomic(step.paths.skill_tree, forest)  # the latest forest, for people and reports
    explored = sum(a["type"] == "explore" for a in actions)
    step.say(f"{explored} explore, {len(actions) - explored} exploit, {invalid} invalid")
    return step.done({"skill_tree": forest},
                     stats={"organizer": {"explore": explored, "exploit": len(actions) - explored,
                                          "invalid_actions": invalid, "actions": actions}},
                     explore=explored, invalid=invalid)
