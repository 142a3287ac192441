"""What a teacher environment is: what the teacher observes, what it may ask for, and how the graph
routes a cycle for it.

An environment (DataEnvGym's central idea) is one module of this package that defines
`ENVIRONMENT`, an instance of a `TeacherEnvironment` subclass. Each declares

* `observe(...)`: its typed observation (the state the teacher sees), computed from the latest
  per-example evaluation results, the discovered skills and (skill-tree) the forest;
* `offline_plan(...)`: its action space as the offline planner uses it, turning an observation into
  requests whose counts add up to the cycle's budget;
* `teacher_view(...)`: the same observation as JSON for an LLM planner, and the skills its requests
  may name;
* routing: `uses_skills` (skills are discovered before planning) and `organizes_skills` (the cycle
  goes through the organize_skills node);
* `after_plan(...)`: what the plan changes in the graph state besides the plan itself.

Requests are `{"skill", "subskill", "difficulty", "count", "exemplars"}`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence


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


def request(skill: str | None, count: int, subskill: str | None = None, difficulty: str | None = None,
            exemplars: Sequence[str] | None = None) -> dict[str, Any]:
    return {"skill": skill, "subskill": subskill, "difficulty": difficulty, "count": count,
            "exemplars": list(exemplars or [])}


@dataclass(frozen=True)
class Observation:
    """What the teacher sees; each environment has its own subclass."""


@dataclass(frozen=True)
class EvaluationView:
    """What an environment may look at to build its observation: the latest validation results (one
    dict per example: id, prompt, answer, prediction, correct, skill, subskill), the discovered skills
    ({skill: {"description", "subskills", "exemplars"}}, or None before discovery), the example ->
    skill assignment of that discovery, and the skill forest (skill-tree environment)."""

    results: list[dict[str, Any]]
    skills: dict[str, Any] | None = None
    assignment: dict[str, str] | None = None
    forest: dict[str, Any] | None = None


class TeacherEnvironment:
    name: ClassVar[str]
    description: ClassVar[str]
    uses_skills: ClassVar[bool] = True         # discover skills before planning
    organizes_skills: ClassVar[bool] = False   # route every cycle through organize_skills
    requests_by_exemplar: ClassVar[bool] = False  # requests name example errors rather than skills
    sees_skill_accuracy: ClassVar[bool] = False   # the teacher sees per-skill accuracy (and may target replay by it)

    def observe(self, view: EvaluationView) -> Observation:
        raise NotImplementedError

    def offline_plan(self, observation: Any, budget: int, rng: random.Random,
                     min_skill_share: float) -> tuple[list[dict[str, Any]], str]:
        """(requests, notes): the offline planner's policy in this environment."""
        raise NotImplementedError

    def teacher_view(self, observation: Any, budget: int, max_errors: int) -> tuple[dict[str, Any], set[str] | None]:
        """(the observation as JSON for an LLM planner, the skills its requests may name; None: any)."""
        raise NotImplementedError

    def has_signal(self, observation: Any) -> bool:
        """Whether there is anything to plan from (an LLM planner is not asked otherwise)."""
        return True

    def after_plan(self, state: dict[str, Any], requests: list[dict[str, Any]]) -> dict[str, Any]:
        """State updates that come with a new plan (none by default)."""
        return {}

    def __repr__(self) -> str:
        return f"<environment {self.name}>"
