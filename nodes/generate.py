"""Ask the teacher's data generator for every request of the plan; attach provenance."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from agents import build_teacher
from graph.context import TeachContext, context_of
from graph.state import TeachState
from teachgraph.io import write_jsonl_atomic
from teachgraph.runs import RunPaths, domain_of, emit, log_event, with_stage_seconds


def generate(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    ctx = context_of(runtime)
    started = time.perf_counter()
    target = state["plan"]["cycle"]
    generator = build_teacher(ctx, domain_of(ctx)).generator
    skills = (state.get("skills") or {}).get("skills")
    requests = state["plan"]["requests"]
    examples: list[dict[str, Any]] = []
    for i, request in enumerate(requests):
        examples += generator.generate(request, target, ctx.seed, skills)
        emit({"type": "progress", "node": "generate", "step": i + 1, "total": len(requests)})
    path = RunPaths.of(state["run_dir"]).generated(target)
    write_jsonl_atomic(path, examples)
    log_event(state["run_dir"], "generate", target, generated=len(examples))
    return {
        "generated_path": str(path),
        "budget_used": state.get("budget_used", 0) + len(examples),
        "cycle_stats": with_stage_seconds(state.get("cycle_stats"), "generate", time.perf_counter() - started,
                                          generated=len(examples)),
    }
