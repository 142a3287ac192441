"""Skill-Tree environment: a forest with one tree per skill; the organizer explores (adds subskills) or
exploits (reallocates data) each cycle, and the plan follows the tree's allocations."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from teachgraph.domains.base import DIFFICULTIES
from teachgraph.environments import skill_forest
from teachgraph.environments.base import EvaluationView, Observation, TeacherEnvironment, request, split_budget


@dataclass(frozen=True)
class Allocation:
    skill: str
    subskill: str
    allocation: int
    difficulty: str


@dataclass(frozen=True)
class SkillTreeObservation(Observation):
    allocations: list[Allocation]   # every subskill with data allocated to it, in forest order


class SkillTree(TeacherEnvironment):
    name = "skill-tree"
    description = ("a forest, one tree per skill: subskills with data allocations and accuracy; per skill, explore "
                   "(add subskills) or exploit (reallocate; 0 prunes), rewarded by the change in its accuracy")
    organizes_skills = True
    sees_skill_accuracy = True

    def observe(self, view: EvaluationView) -> SkillTreeObservation:
        rows = []
        for skill, name, allocation in skill_forest.allocations(view.forest or skill_forest.new_forest([])):
            catalog = (view.skills or {}).get(skill, {}).get("subskills", [])
            level = catalog.index(name) if name in catalog else 0
            rows.append(Allocation(skill, name, allocation, DIFFICULTIES[min(level, len(DIFFICULTIES) - 1)]))
        return SkillTreeObservation(allocations=rows)

    def offline_plan(self, observation: SkillTreeObservation, budget: int, rng: random.Random,
                     min_skill_share: float):
        rows = observation.allocations
        counts = split_budget(budget, [r.allocation for r in rows])
        return ([request(r.skill, c, subskill=r.subskill, difficulty=r.difficulty) for r, c in zip(rows, counts)],
                "the skill tree's allocations scaled to the cycle budget")

    def teacher_view(self, observation: SkillTreeObservation, budget: int, max_errors: int):
        rows = [{"skill": r.skill, "subskill": r.subskill, "allocation": r.allocation, "difficulty": r.difficulty}
                for r in observation.allocations]
        return {"budget": budget, "allocations": rows}, {r["skill"] for r in rows}

    def has_signal(self, observation: SkillTreeObservation) -> bool:
        return bool(observation.allocations)

    def after_plan(self, state: dict[str, Any], requests: list[dict[str, Any]]) -> dict[str, Any]:
        return {"skill_tree": skill_forest.record_planned(state["skill_tree"], requests)}


ENVIRONMENT = SkillTree()
