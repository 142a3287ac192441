"""Discover the skills the task needs and map every validation example to one of them."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from teachgraph.graph.context import TeachContext
from teachgraph.graph.state import TeachState
from teachgraph.io import write_json_atomic
from teachgraph.nodes.common import Step, derive_seed


def discover_skills(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    step = Step("discover_skills", state, runtime, state["cycle"])
    ctx, domain = step.ctx, step.services.domain
    step.say(f"discovering skills ({ctx.skill_discovery})")
    found = step.services.teacher.discoverer.discover(domain, domain.load_split("val"),
                                                      derive_seed(ctx.seed, "discover", state["cycle"]))
    write_json_atomic(step.paths.skills, found)
    return step.done({"skills": {"method": found["method"], "cycle": state["cycle"], "skills": found["skills"],
                                 "path": str(step.paths.skills)},
                      "route": "organize_skills" if step.services.environment.organizes_skills else "plan"},
                     skills=len(found["skills"]))
