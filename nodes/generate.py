"""Ask the teacher's data generator for every request of the plan; attach provenance."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from teachgraph.teachers import build_teacher
from teachgraph.graph.context import TeachContext, context_of
from teachgraph.graph.state import TeachState
from teachgraph.io import write_jsonl_atomic
from teachgraph.paths import RunPaths, domain_of, emit, log_event, with_stage_seconds, with_teacher_usage


def generate(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    ctx = context_of(runtime)
    started = time.perf_counter()
    target = state["plan"]["cycle"]
    teacher = build_teacher(ctx, domain_of(ctx))
    skills = (state.get("skills") or {}).get("skills")
    requests = state["plan"]["requests"]
    examples = teacher.generator.generate_many(
        requests, target, ctx.seed, skills,
        progress=lambda step, total: emit({"type": "progress", "node": "generate", "step": step, "total": total}))
    path = RunPaths.of(state["run_dir"]).generated(target)
    write_jsonl_atomic(path, examples)
    log_event(state["run_dir"], "generate", target, generated=len(examples))
    return {
        "generated_path": str(path),
        "budget_used": state.get("budget_used", 0) + len(examples),
        **with_teacher_usage(state, with_stage_seconds(state.get("cycle_stats"), "generate", time.perf_counter() - started,
                                                       generated=len(examples)), "generate", teacher.usage()),
    }
