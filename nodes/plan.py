"""Turn what the environment lets the teacher see into this cycle's data-generation plan."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from teachgraph.environments import EvaluationView
from teachgraph.graph.context import TeachContext
from teachgraph.graph.state import TeachState
from teachgraph.io import read_json, read_jsonl, write_json_atomic
from teachgraph.nodes.common import Step, derive_seed
from teachgraph.teachers.replay import at_risk_weights


def cycle_budget(ctx: TeachContext, state: TeachState) -> int:
    """The remaining budget spread evenly over the remaining cycles."""
    remaining = ctx.budget - state.get("budget_used", 0)
    cycles_left = max(1, ctx.cycles - state["cycle"])
    return max(0, remaining // cycles_left)


def evaluation_view(state: TeachState) -> EvaluationView:
    """The latest evaluation, discovered skills and skill forest, as an environment reads them."""
    skills = state.get("skills")
    return EvaluationView(results=read_jsonl(state["evaluation"]["path"]),
                          skills=skills["skills"] if skills else None,
                          assignment=read_json(skills["path"])["assignment"] if skills else None,
                          forest=state.get("skill_tree"))


def plan(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    target = state["cycle"] + 1  # the data planned now trains the student of the next cycle
    step = Step("plan", state, runtime, target)
    ctx, environment = step.ctx, step.services.environment
    budget = cycle_budget(ctx, state)
    observation = environment.observe(evaluation_view(state))
    new_plan = step.services.teacher.planner.plan(environment, observation, budget, derive_seed(ctx.seed, "plan", target))
    targeted = ctx.replay_policy == "at-risk" and environment.sees_skill_accuracy
    replay_weights = at_risk_weights(state.get("history", [])) if targeted else None
    path = step.paths.plan(target)
    write_json_atomic(path, dict(new_plan, cycle=target, environment=environment.name, replay_weights=replay_weights))
    step.say(f"{len(new_plan['requests'])} requests, {budget} examples")
    return step.done({"plan": {"cycle": target, "budget": budget, "requests": new_plan["requests"],
                               "notes": new_plan["notes"], "path": str(path), "replay_weights": replay_weights},
                      **environment.after_plan(state, new_plan["requests"])},
                     requests=len(new_plan["requests"]))
