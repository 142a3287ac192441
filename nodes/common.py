"""What every node does besides its own step: find its configuration and the run's services, time
itself, tell the user what it is doing, log that it finished, and fold its seconds, numbers and
teacher usage into the cycle's stats.

    step = Step("plan", state, runtime, cycle=target)
    ...                                         # the node's own work, using step.ctx / step.services
    step.say("12 requests, 1600 examples")      # a progress line on the custom stream
    return step.done({"plan": ...}, requests=12)   # state update + seconds, stats, teacher usage, event
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from teachgraph.domains.base import stable_hash
from teachgraph.paths import RunPaths
from teachgraph.services import services_of
from teachgraph.teachers.usage import add_usage


def check_teacher_health(*args: Any, **kwargs: Any) -> None:
    """teachers.llm_client.check_teacher_health, imported on first use: the LLM client pulls in openai and
    langchain, which an offline run never needs."""
    from teachgraph.teachers.llm_client import check_teacher_health as check

    check(*args, **kwargs)


def emit(event: dict[str, Any]) -> None:
    """A progress event on LangGraph's custom stream (a no-op outside a streamed run)."""
    try:
        from langgraph.config import get_stream_writer

        get_stream_writer()(event)
    except Exception:  # noqa: BLE001 - outside a runnable context there is nobody to tell
        pass


def log_event(run_dir: str | Path, node: str, cycle: int, **fields: Any) -> None:
    """Append-only record of finished nodes (what tests and benchmarks count re-executions with)."""
    path = RunPaths.of(run_dir).events
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"node": node, "cycle": cycle, "time": time.time(), **fields}) + "\n")


def derive_seed(seed: int, *parts: Any) -> int:
    """A seed for one purpose of one cycle, derived from the run's seed (stable across processes)."""
    return int(stable_hash({"seed": seed, "parts": list(parts)}, 8), 16)


def with_stage_seconds(cycle_stats: dict[str, Any] | None, stage: str, seconds: float, **updates: Any) -> dict[str, Any]:
    stats = dict(cycle_stats or {})
    stats["seconds"] = dict(stats.get("seconds", {}), **{stage: round(seconds, 3)})
    stats.update(updates)
    return stats


def with_teacher_usage(state: dict[str, Any], cycle_stats: dict[str, Any], node: str,
                       usage: dict[str, Any]) -> dict[str, Any]:
    """State updates of a node that called the teacher: its usage in the cycle's stats
    (cycle_stats["teacher"][node]) and in the run's running totals (teacher_usage[node])."""
    if not usage:
        return {"cycle_stats": cycle_stats}
    teacher = dict(cycle_stats.get("teacher") or {})
    teacher[node] = add_usage(teacher.get(node), usage)
    totals = dict(state.get("teacher_usage") or {})
    totals[node] = add_usage(totals.get(node), usage)
    return {"cycle_stats": dict(cycle_stats, teacher=teacher), "teacher_usage": totals}


class Step:
    """One run of one node."""

    def __init__(self, name: str, state: dict[str, Any], runtime: Any, cycle: int):
        self.name, self.state, self.cycle = name, state, cycle
        self.services = services_of(runtime)
        self.ctx = self.services.ctx
        self.run_dir = state.get("run_dir") or self.ctx.run_dir
        self.branch = state.get("branch") or ""
        self.paths = RunPaths.of(self.run_dir, self.branch)
        self._started = time.perf_counter()
        if self.services._teacher is not None:
            self.services.teacher.take_usage()  # what an earlier, interrupted step spent is not this one's

    def say(self, message: str) -> None:
        emit({"type": "stage", "node": self.name, "cycle": self.cycle, "message": message})

    def progress(self, step: int, total: int, **fields: Any) -> None:
        emit({"type": "progress", "node": self.name, "step": step, "total": total, **fields})

    def emit_cycle(self, record: dict[str, Any], stop_reason: str | None) -> None:
        emit({"type": "cycle", "record": record, "stop_reason": stop_reason})

    def seconds(self) -> float:
        return time.perf_counter() - self._started

    def done(self, update: dict[str, Any], stats: dict[str, Any] | None = None, **event: Any) -> dict[str, Any]:
        """The node's state update, with its seconds and `stats` in the cycle's stats, its teacher usage,
        and a line in the run's event log."""
        cycle_stats = with_stage_seconds(self.state.get("cycle_stats"), self.name, self.seconds(), **(stats or {}))
        usage = self.services.teacher.take_usage() if self.services._teacher is not None else {}
        teacher_update = with_teacher_usage(self.state, cycle_stats, self.name, usage)
        if usage:  # warn about failed teacher calls; past max_teacher_failure_rate, stop before the node counts as done
            check_teacher_health(self.name, usage, teacher_update["cycle_stats"]["teacher"], run_dir=self.run_dir,
                                 cycle=self.cycle, max_failure_rate=self.ctx.max_teacher_failure_rate)
        log_event(self.run_dir, self.name, self.cycle, **({"branch": self.branch} if self.branch else {}), **event)
        return {**update, **teacher_update}
