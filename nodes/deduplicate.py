"""Drop generated examples that are wrong, that the student already answers correctly (where the domain or
the configuration asks), duplicated, or too close to a validation/test prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from teachgraph.dedup import drop_counts
from teachgraph.domains.base import score_all
from teachgraph.graph.context import TeachContext
from teachgraph.graph.state import TeachState
from teachgraph.io import read_jsonl, write_jsonl_atomic
from teachgraph.nodes.common import Step
from teachgraph.students.base import predict_examples


def drops_solved(ctx: TeachContext, domain: Any) -> bool:
    return ctx.drop_solved if ctx.drop_solved is not None else bool(getattr(domain, "drop_solved_default", False))


def split_solved(step: Step, student_path: str, examples: list[dict]) -> tuple[list[dict], list[dict]]:
    """(examples the current student gets wrong, examples it already answers correctly)."""
    step.say(f"asking the student {len(examples)} generated questions")
    student = step.services.students.get(student_path)
    verdicts = score_all(step.services.domain, predict_examples(student, examples), examples)
    return ([e for e, solved in zip(examples, verdicts) if not solved],
            [e for e, solved in zip(examples, verdicts) if solved])


def lineage(state: TeachState, paths: Any, target: int) -> dict[int, list[dict]]:
    """{cycle: accepted examples} of the cycles before `target` on this branch (the store must hold these)."""
    return {int(Path(p).parent.name.rsplit("_", 1)[1]): read_jsonl(p)
            for p in paths.lineage(state.get("accepted_paths"), target)}


def deduplicate(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    target = state["plan"]["cycle"]
    step = Step("deduplicate", state, runtime, target)
    ctx, domain, paths = step.ctx, step.services.domain, step.paths
    store = step.services.dedup(step.run_dir)
    synced = store.follow(lineage(state, paths, target), target)
    if synced == "rebuilt":
        step.say("the dedup store did not match this branch's accepted data; rebuilt it from them")

    dropped: list[tuple[dict, str]] = []
    valid = []
    for ex in read_jsonl(state["generated_path"]):
        problem = domain.verify(ex)
        if problem is None:
            valid.append(ex)
        else:
            dropped.append((ex, f"verifier:{problem}"))
    if drops_solved(ctx, domain) and valid:
        valid, solved = split_solved(step, state["student_path"], valid)
        dropped += [(ex, "student_already_correct") for ex in solved]
    kept, near = store.filter(valid, target, ctx.dedup_threshold, ctx.decontamination_threshold)
    dropped += near
    write_jsonl_atomic(paths.accepted(target), kept)
    write_jsonl_atomic(paths.dropped(target), [dict(ex, drop_reason=reason) for ex, reason in dropped])
    counts = drop_counts(dropped)
    step.say(f"kept {len(kept)}, dropped {sum(counts.values())} {counts}")
    return step.done({"accepted_path": str(paths.accepted(target))},
                     stats={"kept": len(kept), "dropped": counts, "dedup_store": synced}, kept=len(kept))
