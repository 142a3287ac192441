"""Teacher usage counters (calls, tokens, retries, repairs, fallbacks, errors by kind), summed by node and cycle."""

from __future__ import annotations

from typing import Any


def add_usage(total: dict[str, Any] | None, usage: dict[str, Any]) -> dict[str, Any]:
    """Teacher counters summed key by key (nested dicts, such as errors by kind, too)."""
    out = dict(total or {})
    for key, value in usage.items():
        if isinstance(value, dict):
            out[key] = add_usage(out.get(key), value)
        elif isinstance(value, (int, float)):
            out[key] = out.get(key, 0) + value
    return out


def sum_usage(by_node: dict[str, Any] | None) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for usage in (by_node or {}).values():
        total = add_usage(total, usage)
    return total


def teacher_tokens(usage_by_node: dict[str, Any] | None) -> int:
    return sum(int(u.get("prompt_tokens", 0)) + int(u.get("completion_tokens", 0)) for u in (usage_by_node or {}).values())


def teacher_summary(ctx: Any, by_node: dict[str, Any] | None, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The teacher section of summary.json: who taught, and (LLM) calls, tokens, retries, repairs and
    fallbacks in total, by node and by cycle, and what the response cache holds."""
    if ctx.teacher != "llm":
        return {"kind": ctx.teacher, "model": "offline"}
    from teachgraph.teachers import teacher_dir
    from teachgraph.teachers.llm_client import cache_summary

    by_node = by_node or {}
    section: dict[str, Any] = {
        "kind": "llm", "model": ctx.teacher_model, "url": ctx.teacher_url,
        "temperature": ctx.teacher_temperature, "seed": ctx.teacher_seed,
        "max_teacher_tokens": ctx.max_teacher_tokens,
        "total_tokens": teacher_tokens(by_node),
        "totals": sum_usage(by_node),
        "by_node": by_node,
        "by_cycle": [{"cycle": r["cycle"], "total_tokens": teacher_tokens(r.get("teacher")),
                      **sum_usage(r.get("teacher"))} for r in history],
    }
    cache = cache_summary(teacher_dir(ctx) / "cache.sqlite")
    if cache is not None:
        section["cache"] = cache
    return section
