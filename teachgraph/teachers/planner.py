"""The offline planner: the environment's own policy turns what it lets the teacher see into a plan.

A plan is {"requests": [{"skill", "subskill", "difficulty", "count", "exemplars"}], "notes": str};
counts always add up to the cycle's budget exactly.
"""

from __future__ import annotations

import random
from typing import Any

from teachgraph.environments import TeacherEnvironment


class OfflinePlanner:
    def __init__(self, min_skill_share: float = 0.03):
        self.min_skill_share = min_skill_share

    def plan(self, environment: TeacherEnvironment, observation: Any, budget: int, seed: int) -> dict[str, Any]:
        requests, notes = environment.offline_plan(observation, budget, random.Random(seed), self.min_skill_share)
        return {"requests": [r for r in requests if r["count"] > 0], "notes": notes, "budget": budget}
