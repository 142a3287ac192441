"""Discover the skills the task needs and map every validation example to one of them."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from teachgraph.teachers import build_teacher
from teachgraph.graph.context import TeachContext, context_of
from teachgraph.graph.state import TeachState
from teachgraph.io import write_json_atomic
from teachgraph.paths import RunPaths, derive_seed, domain_of, emit, log_event, with_stage_seconds, with_teacher_usage


def discover_skills(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    ctx = context_of(runtime)
    started = time.perf_counter()
    domain = domain_of(ctx)
    emit({"type": "stage", "node": "discover_skills", "cycle": state["cycle"], "message": f"discovering skills ({ctx.skill_discovery})"})
    teacher = build_teacher(ctx, domain)
    found = teacher.discoverer.discover(domain, domain.load_split("val"), derive_seed(ctx.seed, "discover", state["cycle"]))
    path = RunPaths.of(state["run_dir"]).skills
    write_json_atomic(path, found)
    log_event(state["run_dir"], "discover_skills", state["cycle"], skills=len(found["skills"]))
    stats = with_stage_seconds(state.get("cycle_stats"), "discover_skills", time.perf_counter() - started)
    return {
        "skills": {"method": found["method"], "cycle": state["cycle"], "skills": found["skills"], "path": str(path)},
        **with_teacher_usage(state, stats, "discover_skills", teacher.usage()),
    }
