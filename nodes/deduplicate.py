"""Drop generated examples that are wrong, that the student already answers correctly (where the domain or
the configuration asks), duplicated, or too close to a validation/test prompt."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from teachgraph.domains.base import score_all
from teachgraph.graph.context import TeachContext, context_of
from teachgraph.graph.state import TeachState
from teachgraph.students import student_from_context
from teachgraph.dedup import DedupStore, drop_counts
from teachgraph.io import read_jsonl, write_jsonl_atomic
from teachgraph.paths import RunPaths, domain_of, emit, log_event, with_stage_seconds


def drops_solved(ctx: TeachContext, domain: Any) -> bool:
    return ctx.drop_solved if ctx.drop_solved is not None else bool(getattr(domain, "drop_solved_default", False))


def split_solved(ctx: TeachContext, domain: Any, student_path: str, examples: list[dict]) -> tuple[list[dict], list[dict]]:
    """(examples the current student gets wrong, examples it already answers correctly)."""
    emit({"type": "stage", "node": "deduplicate", "message": f"asking the student {len(examples)} generated questions"})
    student = student_from_context(ctx, student_path, domain)
    verdicts = score_all(domain, student.predict([e["prompt"] for e in examples]), examples)
    return ([e for e, solved in zip(examples, verdicts) if not solved],
            [e for e, solved in zip(examples, verdicts) if solved])


def deduplicate(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    ctx = context_of(runtime)
    started = time.perf_counter()
    target = state["plan"]["cycle"]
    paths = RunPaths.of(state["run_dir"])
    domain = domain_of(ctx)
    store = DedupStore(str(paths.chroma), ctx.embedding)
    store.add_eval(domain.load_split("val"), "val")
    store.add_eval(domain.load_split("test"), "test")
    store.rollback(target)  # this node may be re-running after a crash: start from a clean store

    dropped: list[tuple[dict, str]] = []
    valid = []
    for ex in read_jsonl(state["generated_path"]):
        problem = domain.verify(ex)
        if problem is None:
            valid.append(ex)
        else:
            dropped.append((ex, f"verifier:{problem}"))
    if drops_solved(ctx, domain) and valid:
        valid, solved = split_solved(ctx, domain, state["student_path"], valid)
        dropped += [(ex, "student_already_correct") for ex in solved]
    kept, near = store.filter(valid, target, ctx.dedup_threshold, ctx.decontamination_threshold)
    dropped += near
    write_jsonl_atomic(paths.accepted(target), kept)
    write_jsonl_atomic(paths.dropped(target), [dict(ex, drop_reason=reason) for ex, reason in dropped])
    counts = drop_counts(dropped)
    emit({"type": "stage", "node": "deduplicate", "cycle": target,
          "message": f"kept {len(kept)}, dropped {sum(counts.values())} {counts}"})
    log_event(state["run_dir"], "deduplicate", target, kept=len(kept))
    return {
        "accepted_path": str(paths.accepted(target)),
        "cycle_stats": with_stage_seconds(state.get("cycle_stats"), "deduplicate", time.perf_counter() - started,
                                          kept=len(kept), dropped=counts),
    }
