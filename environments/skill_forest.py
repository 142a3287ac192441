"""The skill forest of the skill-tree environment: plain JSON data and the operations on it.

forest = {"skills": {skill: {"accuracy": float | None,
                             "subskills": {name: {"allocation": int, "accuracy": float | None,
                                                  "n_val": int, "data_total": int}},
                             "history": [{"cycle", "action", "accuracy_before", "accuracy_after", "reward",
                                          "allocated"}]}}}

An action is {"type": "explore", "subskills": [names], "allocation": int} (add subskills) or
{"type": "exploit", "allocations": {subskill: int}} (reallocate; 0 prunes a subskill).
Its reward is the change in the skill's validation accuracy by the next evaluation; `allocated` is the
skill's total allocation after the action (what the reward was bought with).
"""

from __future__ import annotations

import copy
from typing import Any


class InvalidAction(ValueError):
    pass


def new_forest(skills: list[str]) -> dict[str, Any]:
    return {"skills": {s: {"accuracy": None, "subskills": {}, "history": []} for s in skills}}


def sync_skills(forest: dict[str, Any], skills: list[str]) -> dict[str, Any]:
    """After (re)discovery: keep trees of skills that remain, add empty trees for new ones."""
    forest = copy.deepcopy(forest)
    kept = {s: t for s, t in forest["skills"].items() if s in skills}
    for s in skills:
        kept.setdefault(s, {"accuracy": None, "subskills": {}, "history": []})
    forest["skills"] = kept
    return forest


def observe(forest: dict[str, Any], stats: dict[str, dict[str, Any]], cycle: int) -> dict[str, Any]:
    """Write the latest accuracies into the forest and settle the reward of each skill's last action."""
    forest = copy.deepcopy(forest)
    for skill, tree in forest["skills"].items():
        s = stats.get(skill)
        if not s:
            continue
        tree["accuracy"] = s["accuracy"]
        for name, sub in tree["subskills"].items():
            sub_stats = s.get("subskills", {}).get(name)
            if sub_stats:
                sub["accuracy"], sub["n_val"] = sub_stats["accuracy"], sub_stats["n"]
        if tree["history"] and tree["history"][-1].get("reward") is None and tree["history"][-1]["cycle"] < cycle:
            last = tree["history"][-1]
            last["accuracy_after"] = s["accuracy"]
            if last.get("accuracy_before") is not None:
                last["reward"] = round(s["accuracy"] - last["accuracy_before"], 6)
    return forest


def apply_action(forest: dict[str, Any], skill: str, action: dict[str, Any], cycle: int,
                 subskill_cap: int, skill_cap: int, max_subskills: int) -> dict[str, Any]:
    """Validate and apply one action; allocations are clamped to [0, subskill_cap] and the skill's
    total to skill_cap. Raises InvalidAction for an unknown skill, an unknown subskill in an exploit,
    or an explore past max_subskills."""
    if skill not in forest["skills"]:
        raise InvalidAction(f"unknown skill {skill!r}")
    forest = copy.deepcopy(forest)
    tree = forest["skills"][skill]
    kind = action.get("type")
    if kind == "explore":
        names = [n for n in action.get("subskills", []) if n not in tree["subskills"]]
        if not names:
            raise InvalidAction(f"explore on {skill!r} adds no new subskill")
        if len(tree["subskills"]) + len(names) > max_subskills:
            raise InvalidAction(f"explore on {skill!r} would exceed {max_subskills} subskills")
        allocation = _clamp(action.get("allocation", 0), subskill_cap)
        for name in names:
            tree["subskills"][name] = {"allocation": allocation, "accuracy": None, "n_val": 0, "data_total": 0}
    elif kind == "exploit":
        allocations = action.get("allocations", {})
        unknown = sorted(set(allocations) - set(tree["subskills"]))
        if unknown:
            raise InvalidAction(f"exploit on {skill!r} names unknown subskills {unknown}")
        for name, value in allocations.items():
            tree["subskills"][name]["allocation"] = _clamp(value, subskill_cap)
    else:
        raise InvalidAction(f"action type must be 'explore' or 'exploit', got {kind!r}")
    total = sum(s["allocation"] for s in tree["subskills"].values())
    if total > skill_cap:  # scale the whole skill down to its cap, keeping proportions
        for sub in tree["subskills"].values():
            sub["allocation"] = int(sub["allocation"] * skill_cap / total)
    tree["history"].append({"cycle": cycle, "action": action, "accuracy_before": tree["accuracy"],
                            "accuracy_after": None, "reward": None,
                            "allocated": sum(s["allocation"] for s in tree["subskills"].values())})
    return forest


def record_planned(forest: dict[str, Any], requests: list[dict[str, Any]]) -> dict[str, Any]:
    """Add a plan's counts to each subskill's running data total (used by the fill-balanced policy)."""
    forest = copy.deepcopy(forest)
    for r in requests:
        sub = forest["skills"].get(r.get("skill"), {}).get("subskills", {}).get(r.get("subskill"))
        if sub is not None:
            sub["data_total"] += int(r["count"])
    return forest


def allocations(forest: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(skill, name, sub["allocation"]) for skill, tree in forest["skills"].items()
            for name, sub in tree["subskills"].items() if sub["allocation"] > 0]


def _clamp(value: Any, cap: int) -> int:
    try:
        number = int(round(float(value)))
    except (TypeError, ValueError):
        raise InvalidAction(f"allocation must be a number, got {value!r}") from None
    return max(0, min(cap, number))
