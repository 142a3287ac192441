"""Where a run keeps its artifacts, and the helpers every node shares."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from teachgraph.domains import Domain, get_domain
from teachgraph.io import read_jsonl


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @classmethod
    def of(cls, run_dir: str | Path) -> "RunPaths":
        return cls(Path(run_dir))

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints.sqlite"

    @property
    def chroma(self) -> Path:
        return self.root / "chroma"

    @property
    def skills(self) -> Path:
        return self.root / "skills.json"

    @property
    def skill_tree(self) -> Path:
        return self.root / "skill_tree.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def test_eval(self) -> Path:
        return self.root / "eval_test.jsonl"

    def cycle(self, k: int) -> Path:
        return self.root / "cycles" / f"cycle_{k:03d}"

    def eval_val(self, k: int) -> Path:
        return self.cycle(k) / "eval_val.jsonl"

    def plan(self, k: int) -> Path:
        return self.cycle(k) / "plan.json"

    def generated(self, k: int) -> Path:
        return self.cycle(k) / "generated.jsonl"

    def accepted(self, k: int) -> Path:
        return self.cycle(k) / "accepted.jsonl"

    def dropped(self, k: int) -> Path:
        return self.cycle(k) / "dropped.jsonl"

    def student(self, k: int) -> Path:
        return self.cycle(k) / "student"

    def accepted_until(self, k: int) -> list[dict[str, Any]]:
        """Every accepted training example of cycles 1..k, in cycle order."""
        rows: list[dict[str, Any]] = []
        for c in range(1, k + 1):
            if self.accepted(c).exists():
                rows += read_jsonl(self.accepted(c))
        return rows


@lru_cache(maxsize=8)
def _domain(name: str, seed: int, options: str) -> Domain:
    return get_domain(name, seed=seed, **json.loads(options))


def domain_of(ctx: Any) -> Domain:
    return _domain(ctx.domain, ctx.data_seed, json.dumps(ctx.domain_options, sort_keys=True))


def log_event(run_dir: str | Path, node: str, cycle: int, **fields: Any) -> None:
    """Append-only record of finished nodes (what tests and benchmarks count re-executions with)."""
    path = RunPaths.of(run_dir).events
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"node": node, "cycle": cycle, "time": time.time(), **fields}) + "\n")


def emit(event: dict[str, Any]) -> None:
    """A progress event on LangGraph's custom stream (a no-op outside a streamed run)."""
    try:
        from langgraph.config import get_stream_writer

        get_stream_writer()(event)
    except Exception:  # noqa: BLE001 - outside a runnable context there is nobody to tell
        pass


def with_stage_seconds(cycle_stats: dict[str, Any] | None, stage: str, seconds: float, **updates: Any) -> dict[str, Any]:
    stats = dict(cycle_stats or {})
    stats["seconds"] = dict(stats.get("seconds", {}), **{stage: round(seconds, 3)})
    stats.update(updates)
    return stats


def add_usage(total: dict[str, Any] | None, usage: dict[str, Any]) -> dict[str, Any]:
    """Teacher counters summed key by key (nested dicts, such as errors by kind, too)."""
    out = dict(total or {})
    for key, value in usage.items():
        if isinstance(value, dict):
            out[key] = add_usage(out.get(key), value)
        elif isinstance(value, (int, float)):
            out[key] = out.get(key, 0) + value
    return out


def teacher_tokens(usage_by_node: dict[str, Any] | None) -> int:
    return sum(int(u.get("prompt_tokens", 0)) + int(u.get("completion_tokens", 0)) for u in (usage_by_node or {}).values())


def with_teacher_usage(state: dict[str, Any], cycle_stats: dict[str, Any], node: str,
                       usage: dict[str, Any]) -> dict[str, Any]:
    """State updates of a node that called the teacher: its usage in the cycle's stats
    (cycle_stats["teacher"][node]) and in the run's running totals (teacher_usage[node])."""
    if not usage:
        return {"cycle_stats": cycle_stats}
    teacher = dict(cycle_stats.get("teacher") or {})
    teacher[node] = add_usage(teacher.get(node), usage)
    # -- teacher health hook (issue 12): warn on failed calls; TeacherFailing past max_teacher_failure_rate --
    from teachgraph.teachers.llm_client import check_teacher_health
    check_teacher_health(node, usage, teacher, run_dir=state.get("run_dir"))
    totals = dict(state.get("teacher_usage") or {})
    totals[node] = add_usage(totals.get(node), usage)
    return {"cycle_stats": dict(cycle_stats, teacher=teacher), "teacher_usage": totals}


def derive_seed(seed: int, *parts: Any) -> int:
    from teachgraph.domains.base import stable_hash

    return int(stable_hash({"seed": seed, "parts": list(parts)}, 8), 16)
