"""Ask the teacher's data generator for every request of the plan; attach provenance."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from teachgraph.graph.context import TeachContext
from teachgraph.graph.state import TeachState
from teachgraph.io import write_jsonl_atomic
from teachgraph.nodes.common import Step


def generate(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    target = state["plan"]["cycle"]
    step = Step("generate", state, runtime, target)
    skills = (state.get("skills") or {}).get("skills")
    examples = step.services.teacher.generator.generate_many(state["plan"]["requests"], target, step.ctx.seed, skills,
                                                             progress=step.progress)
    if getattr(step.services.domain, "modality", "text") == "image":
        from teachgraph.domains.image_engine import engine_for, store_images

        engine = engine_for(getattr(step.services.domain, "image_engine", "procedural"))
        store_images(examples, step.paths.cycle(target) / "images", engine)  # each picture kept with its provenance
    path = step.paths.generated(target)
    write_jsonl_atomic(path, examples)
    return step.done({"generated_path": str(path), "budget_used": state.get("budget_used", 0) + len(examples)},
                     stats={"generated": len(examples)}, generated=len(examples))
