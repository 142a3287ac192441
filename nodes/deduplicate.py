"""Drop generated examples that are wrong, duplicated, or too close to a validation/test prompt."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from graph.context import TeachContext, context_of
from graph.state import TeachState
from teachgraph.dedup import DedupStore, drop_counts
from teachgraph.io import read_jsonl, write_jsonl_atomic
from teachgraph.runs import RunPaths, domain_of, emit, log_event, with_stage_seconds


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
