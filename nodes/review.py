"""Optional human review of a cycle's data before training (context field `review: bool`).

With review on, the node pauses the run with `langgraph.types.interrupt` showing the plan and a sample
of the accepted examples, and applies the reviewer's answer (`Command(resume=...)`):

    {"action": "approve"}                        train on the data as it is
    {"action": "edit", "drop_ids": ["id", ...]}  remove those examples from accepted.jsonl, then train
    {"action": "stop"}                           end the run here (stop_reason "stopped_by_reviewer")

("approve" and "stop" may also be given as bare strings.) An answer that is not one of these, or an
edit naming unknown ids, is asked again with the problem stated. With review off the node only routes to train.

Idempotent: a re-run after a crash gets the same answer back from the checkpoint and leaves the same
files (examples the reviewer removed are recorded in dropped.jsonl with drop_reason "reviewer").
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from teachgraph.graph.context import TeachContext, context_of
from teachgraph.graph.state import TeachState
from teachgraph.io import read_jsonl, write_jsonl_atomic
from teachgraph.nodes.common import emit, log_event
from teachgraph.paths import RunPaths

SAMPLE_PER_SKILL = 2
SAMPLE_MAX = 20
REVIEWER_REASON = "reviewer"
ACTIONS = ("approve", "edit", "stop")


def review_payload(state: TeachState, accepted: list[dict[str, Any]]) -> dict[str, Any]:
    """What the reviewer sees: the plan by skill, the cycle's counts and a sample of accepted examples."""
    plan = state.get("plan") or {}
    by_skill: dict[str, int] = {}
    for request in plan.get("requests", []):
        key = str(request.get("skill"))
        by_skill[key] = by_skill.get(key, 0) + int(request.get("count", 0))
    stats = state.get("cycle_stats") or {}
    sample: list[dict[str, Any]] = []
    seen: Counter = Counter()
    for ex in accepted:
        skill = (ex.get("provenance") or {}).get("skill") or ex.get("skill")
        if seen[skill] < SAMPLE_PER_SKILL and len(sample) < SAMPLE_MAX:
            seen[skill] += 1
            sample.append({"id": ex.get("id"), "skill": skill,
                           "subskill": (ex.get("provenance") or {}).get("subskill") or ex.get("subskill"),
                           "prompt": ex.get("prompt"), "answer": ex.get("answer"),
                           **({"image": ex["provenance"]["image"]["path"]}
                              if (ex.get("provenance") or {}).get("image") else {})})
    return {
        "type": "review",
        "cycle": plan.get("cycle"),
        "plan": {"budget": plan.get("budget"), "requests": len(plan.get("requests", [])),
                 "examples_by_skill": by_skill, "notes": plan.get("notes"), "path": plan.get("path")},
        "generated": stats.get("generated"),
        "kept": len(accepted),
        "dropped": stats.get("dropped", {}),
        "accepted_path": state.get("accepted_path"),
        "sample": sample,
        "validation_accuracy": (state.get("evaluation") or {}).get("accuracy"),
        "answer_with": [{"action": "approve"}, {"action": "edit", "drop_ids": ["<id>", "..."]}, {"action": "stop"}],
    }


def _check(answer: Any, known_ids: set[str]) -> tuple[dict[str, Any] | None, str | None]:
    """(the normalised answer, None) or (None, what is wrong with it)."""
    if isinstance(answer, str):
        answer = {"action": answer}
    if not isinstance(answer, dict) or answer.get("action") not in ACTIONS:
        return None, f"expected {{'action': one of {list(ACTIONS)}}}, got {answer!r}"
    if answer["action"] != "edit":
        return {"action": answer["action"]}, None
    ids = answer.get("drop_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return None, f"an edit needs 'drop_ids': a list of example ids, got {ids!r}"
    unknown = sorted(set(ids) - known_ids)
    if unknown:
        return None, f"unknown example ids {unknown[:10]}{' ...' if len(unknown) > 10 else ''}; nothing was dropped"
    return {"action": "edit", "drop_ids": list(dict.fromkeys(ids))}, None


def review(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    ctx = context_of(runtime)
    if not getattr(ctx, "review", False):
        return {"route": "train"}
    target = state["plan"]["cycle"]
    paths = RunPaths.of(state["run_dir"], state.get("branch"))
    accepted_path = state.get("accepted_path") or str(paths.accepted(target))
    accepted = read_jsonl(accepted_path)
    dropped_path = paths.dropped(target)
    dropped = read_jsonl(dropped_path) if dropped_path.exists() else []
    # ids removed by this reviewer already (a re-run after a crash) are still valid answers
    known = {str(ex.get("id")) for ex in accepted} | {str(ex.get("id")) for ex in dropped
                                                      if ex.get("drop_reason") == REVIEWER_REASON}

    payload = review_payload(state, accepted)
    emit({"type": "stage", "node": "review", "cycle": target,
          "message": f"waiting for review of {len(accepted)} accepted examples"})
    while True:  # each interrupt() call has its own resume value, so asking again is safe on replay
        decision, problem = _check(interrupt(payload), known)
        if decision is not None:
            break
        payload = dict(payload, error=problem)

    stats = dict(state.get("cycle_stats") or {})
    action = decision["action"]
    if action == "stop":
        log_event(state["run_dir"], "review", target, action="stop")
        emit({"type": "stage", "node": "review", "cycle": target, "message": "stopped by the reviewer"})
        return {"stop_reason": "stopped_by_reviewer", "route": "finalize",
                "cycle_stats": dict(stats, review={"action": "stop"})}
    if action == "approve":
        log_event(state["run_dir"], "review", target, action="approve")
        return {"route": "train", "cycle_stats": dict(stats, review={"action": "approve", "dropped": 0})}

    drop = set(decision["drop_ids"])
    kept = [ex for ex in accepted if str(ex.get("id")) not in drop]
    removed = [dict(ex, drop_reason=REVIEWER_REASON) for ex in accepted if str(ex.get("id")) in drop]
    already = {str(ex.get("id")) for ex in dropped if ex.get("drop_reason") == REVIEWER_REASON}
    dropped += [ex for ex in removed if str(ex.get("id")) not in already]
    write_jsonl_atomic(dropped_path, dropped)   # first: a crash in between loses no example
    write_jsonl_atomic(accepted_path, kept)
    n_reviewer = sum(1 for ex in dropped if ex.get("drop_reason") == REVIEWER_REASON)
    counts = dict(stats.get("dropped") or {})
    counts[REVIEWER_REASON] = n_reviewer
    log_event(state["run_dir"], "review", target, action="edit", dropped=n_reviewer)
    emit({"type": "stage", "node": "review", "cycle": target,
          "message": f"reviewer dropped {n_reviewer}; {len(kept)} examples go to training"})
    return {"accepted_path": accepted_path, "route": "train",
            "cycle_stats": dict(stats, kept=len(kept), dropped=dict(sorted(counts.items())),
                                review={"action": "edit", "dropped": n_reviewer})}
