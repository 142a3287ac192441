"""The teacher: four agent roles behind small interfaces, and the offline (rule-based) team.

LLM implementations (served by SGLang) drop in behind the same protocols.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from domains.base import Domain, Example


class SkillDiscoverer(Protocol):
    method: str

    def discover(self, domain: Domain, examples: list[Example], seed: int) -> dict[str, Any]: ...


class SkillOrganizer(Protocol):
    def organize(self, forest: dict[str, Any], candidates: dict[str, list[str]], cycle: int,
                 subskill_cap: int, skill_cap: int) -> tuple[dict[str, Any], list[dict[str, Any]], int]: ...


class Planner(Protocol):
    def plan(self, environment: str, observation: dict[str, Any], budget: int, seed: int) -> dict[str, Any]: ...


class DataGenerator(Protocol):
    name: str
    teacher_model: str

    def generate(self, request: dict[str, Any], cycle: int, seed: int,
                 skills: dict[str, Any] | None = None) -> list[Example]: ...


@dataclass
class Teacher:
    discoverer: SkillDiscoverer
    organizer: SkillOrganizer
    planner: Planner
    generator: DataGenerator


def build_teacher(ctx: Any, domain: Domain) -> Teacher:
    """The team of agents a run's configuration asks for."""
    from agents.discovery import ClusterSkillDiscoverer, GoldSkillDiscoverer
    from agents.generator import ProgramGenerator
    from agents.organizer import HandwrittenOrganizer
    from agents.planner import OfflinePlanner

    discoverer = (ClusterSkillDiscoverer(ctx.num_clusters) if ctx.skill_discovery == "cluster"
                  else GoldSkillDiscoverer())
    return Teacher(discoverer=discoverer,
                   organizer=HandwrittenOrganizer(ctx.organizer_policy, max_subskills=ctx.max_subskills),
                   planner=OfflinePlanner(ctx.min_skill_share),
                   generator=ProgramGenerator(domain))
