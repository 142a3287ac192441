"""Offline planners: turn the environment's state into a data-generation plan.

A plan is {"requests": [{"skill", "subskill", "difficulty", "count", "exemplars"}], "notes": str};
counts always add up to the cycle's budget exactly.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, Sequence


def split_budget(budget: int, weights: Sequence[float]) -> list[int]:
    """Integer counts proportional to weights that add up to budget (largest remainder)."""
    total = float(sum(weights))
    if budget <= 0 or not weights:
        return [0] * len(weights)
    if total <= 0:
        weights, total = [1.0] * len(weights), float(len(weights))
    exact = [budget * w / total for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (exact[i] - counts[i], -i), reverse=True)
    for i in by_remainder[: budget - sum(counts)]:
        counts[i] += 1
    return counts


def learnability(accuracy: float, floor: float = 0.25) -> float:
    """Weight of a skill at this accuracy: its error x (accuracy + floor). Mastered skills get
    nothing extra, skills the student is failing get the most, and a skill at 0% gets less than one
    halfway there, whose next examples are the likeliest to pay off."""
    return (1.0 - accuracy) * (accuracy + floor)


def _request(skill, count, subskill=None, difficulty=None, exemplars=None) -> dict[str, Any]:
    return {"skill": skill, "subskill": subskill, "difficulty": difficulty, "count": count,
            "exemplars": list(exemplars or [])}


class OfflinePlanner:
    def __init__(self, min_skill_share: float = 0.03):
        self.min_skill_share = min_skill_share

    def plan(self, environment: str, observation: dict[str, Any], budget: int, seed: int) -> dict[str, Any]:
        make = {"skill-tree": self._skill_tree, "skill-list": self._skill_list,
                "open-ended": self._open_ended, "no-state": self._no_state}[environment]
        requests, notes = make(observation, budget, random.Random(seed))
        return {"requests": [r for r in requests if r["count"] > 0], "notes": notes, "budget": budget}

    def _skill_list(self, obs, budget, rng):
        stats = obs["skills"]
        names = sorted(stats)
        reserved = min(int(self.min_skill_share * budget), budget // max(1, len(names)))
        extra = split_budget(budget - reserved * len(names), [learnability(stats[s]["accuracy"]) for s in names])
        return ([_request(s, reserved + e) for s, e in zip(names, extra)],
                "a small share for every skill, the rest by error, favouring skills being learned")

    def _skill_tree(self, obs, budget, rng):
        rows = obs["allocations"]  # [(skill, subskill, allocation, difficulty)]
        counts = split_budget(budget, [r[2] for r in rows])
        return ([_request(s, c, subskill=sub, difficulty=d) for (s, sub, _, d), c in zip(rows, counts)],
                "the skill tree's allocations scaled to the cycle budget")

    def _open_ended(self, obs, budget, rng):
        errors = obs["errors"]
        if not errors:
            return [], "no errors to learn from"
        counts = split_budget(budget, [1.0] * len(errors))
        return ([_request(None, c, exemplars=[e["question"]]) for e, c in zip(errors, counts)],
                "examples like each validation error, in equal shares")

    def _no_state(self, obs, budget, rng):
        names = sorted(obs["skills"])
        picks = Counter(rng.randrange(len(names)) for _ in range(budget))  # skills chosen uniformly at random
        return ([_request(s, picks[i]) for i, s in enumerate(names)],
                "no feedback: skills drawn uniformly")

