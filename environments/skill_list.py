"""Skill-List environment: the teacher sees per-skill accuracy (and sample errors per skill)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from teachgraph.environments.base import EvaluationView, Observation, TeacherEnvironment, request, split_budget
from teachgraph.environments.observations import errors_by_skill, skill_stats


@dataclass(frozen=True)
class SkillAccuracyObservation(Observation):
    skills: dict[str, dict[str, Any]]                   # skill -> {"accuracy", "n", "subskills"}
    errors_by_skill: dict[str, list[dict[str, str]]]    # skill -> a few of its validation errors


def learnability(accuracy: float, floor: float = 0.25) -> float:
    """Weight of a skill at this accuracy: its error x (accuracy + floor). Mastered skills get
    nothing extra, skills the student is failing get the most, and a skill at 0% gets less than one
    halfway there, whose next examples are the likeliest to pay off."""
    return (1.0 - accuracy) * (accuracy + floor)


class SkillList(TeacherEnvironment):
    name = "skill-list"
    description = "per-skill accuracy and sample errors per skill; data per skill by its error, with a floor for every skill"
    sees_skill_accuracy = True

    def observe(self, view: EvaluationView) -> SkillAccuracyObservation:
        stats = skill_stats(view.results, view.assignment)
        return SkillAccuracyObservation(
            skills={s: stats.get(s, {"accuracy": 0.0, "n": 0}) for s in view.skills or {}},
            errors_by_skill=errors_by_skill(view.results, view.assignment))

    def offline_plan(self, observation: SkillAccuracyObservation, budget: int, rng: random.Random,
                     min_skill_share: float):
        stats = observation.skills
        names = sorted(stats)
        reserved = min(int(min_skill_share * budget), budget // max(1, len(names)))
        extra = split_budget(budget - reserved * len(names), [learnability(stats[s]["accuracy"]) for s in names])
        return ([request(s, reserved + e) for s, e in zip(names, extra)],
                "a small share for every skill, the rest by error, favouring skills being learned")

    def teacher_view(self, observation: SkillAccuracyObservation, budget: int, max_errors: int):
        view = [{"skill": s, **{k: v for k, v in stats.items() if k in ("accuracy", "n", "subskills")}}
                for s, stats in sorted(observation.skills.items())]
        data: dict[str, Any] = {"budget": budget, "skills": view}
        if observation.errors_by_skill:
            data["errors_by_skill"] = observation.errors_by_skill
        return data, set(observation.skills)

    def has_signal(self, observation: SkillAccuracyObservation) -> bool:
        return bool(observation.skills)


ENVIRONMENT = SkillList()
