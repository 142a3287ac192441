"""The no-state control: the teacher sees only the names of the skills, never how the student does."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from teachgraph.environments.base import EvaluationView, Observation, TeacherEnvironment, request


@dataclass(frozen=True)
class SkillNamesObservation(Observation):
    skills: list[str]


class NoState(TeacherEnvironment):
    name = "no-state"
    description = "nothing about the student: skills drawn uniformly at random (the control)"

    def observe(self, view: EvaluationView) -> SkillNamesObservation:
        return SkillNamesObservation(skills=list(view.skills or {}))

    def offline_plan(self, observation: SkillNamesObservation, budget: int, rng: random.Random,
                     min_skill_share: float):
        names = sorted(observation.skills)
        picks = Counter(rng.randrange(len(names)) for _ in range(budget))  # skills chosen uniformly at random
        return [request(s, picks[i]) for i, s in enumerate(names)], "no feedback: skills drawn uniformly"

    def teacher_view(self, observation: SkillNamesObservation, budget: int, max_errors: int):
        return {"budget": budget, "skills": [{"skill": s} for s in sorted(observation.skills)]}, set(observation.skills)

    def has_signal(self, observation: SkillNamesObservation) -> bool:
        return bool(observation.skills)


ENVIRONMENT = NoState()
