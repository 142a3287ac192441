"""Open-Ended environment: the teacher sees the student's validation errors and writes examples like them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from teachgraph.environments.base import EvaluationView, Observation, TeacherEnvironment, request, split_budget
from teachgraph.environments.observations import errors


@dataclass(frozen=True)
class ErrorsObservation(Observation):
    errors: list[dict[str, str]]   # every validation error: question, student_answer, gold_answer


class OpenEnded(TeacherEnvironment):
    name = "open-ended"
    description = "the list of validation errors (question, student answer, gold); the plan asks for examples like each"
    uses_skills = False
    requests_by_exemplar = True

    def observe(self, view: EvaluationView) -> ErrorsObservation:
        return ErrorsObservation(errors=errors(view.results))

    def offline_plan(self, observation: ErrorsObservation, budget: int, rng: random.Random, min_skill_share: float):
        if not observation.errors:
            return [], "no errors to learn from"
        counts = split_budget(budget, [1.0] * len(observation.errors))
        return ([request(None, c, exemplars=[e["question"]]) for e, c in zip(observation.errors, counts)],
                "examples like each validation error, in equal shares")

    def teacher_view(self, observation: ErrorsObservation, budget: int, max_errors: int):
        return {"budget": budget, "errors": observation.errors[:max_errors]}, None

    def has_signal(self, observation: ErrorsObservation) -> bool:
        return bool(observation.errors)


ENVIRONMENT = OpenEnded()
