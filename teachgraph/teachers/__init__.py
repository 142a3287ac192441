"""The teacher: four agent roles behind small interfaces; the offline (rule-based) team, and the LLM
team served by SGLang (`teachgraph.teachers.llm`), chosen by the context field `teacher`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from teachgraph.domains.base import Domain, Example
from teachgraph.environments import Observation, TeacherEnvironment


class SkillDiscoverer(Protocol):
    method: str

    def discover(self, domain: Domain, examples: list[Example], seed: int) -> dict[str, Any]: ...


class SkillOrganizer(Protocol):
    def organize(self, forest: dict[str, Any], candidates: dict[str, list[str]], cycle: int,
                 subskill_cap: int, skill_cap: int) -> tuple[dict[str, Any], list[dict[str, Any]], int]: ...


class Planner(Protocol):
    def plan(self, environment: TeacherEnvironment, observation: Observation, budget: int, seed: int) -> dict[str, Any]: ...


class DataGenerator(Protocol):
    name: str
    teacher_model: str

    def generate(self, request: dict[str, Any], cycle: int, seed: int,
                 skills: dict[str, Any] | None = None) -> list[Example]: ...

    def generate_many(self, requests: list[dict[str, Any]], cycle: int, seed: int,
                      skills: dict[str, Any] | None = None, progress: Any = None) -> list[Example]: ...


@dataclass
class Teacher:
    discoverer: SkillDiscoverer
    organizer: SkillOrganizer
    planner: Planner
    generator: DataGenerator
    client: Any = None  # the LLM team's server client (None offline)

    def usage(self) -> dict[str, Any]:
        """Teacher calls and tokens spent by this team so far (empty for the offline team)."""
        return self.client.usage() if self.client is not None else {}

    def take_usage(self) -> dict[str, Any]:
        """Calls and tokens since the last take_usage() (empty for the offline team)."""
        return self.client.take_usage() if self.client is not None else {}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def teacher_dir(ctx: Any) -> Path:
    """Where the LLM teacher keeps its response cache and skill labels inside a run directory."""
    return Path(ctx.run_dir) / "teacher"


def build_teacher(ctx: Any, domain: Domain) -> Teacher:
    """The team of agents a run's configuration asks for."""
    from teachgraph.teachers.discovery import ClusterSkillDiscoverer, GoldSkillDiscoverer
    from teachgraph.teachers.generator import ProgramGenerator
    from teachgraph.teachers.organizer import HandwrittenOrganizer
    from teachgraph.teachers.planner import OfflinePlanner

    offline_discoverer = (ClusterSkillDiscoverer(ctx.num_clusters) if ctx.skill_discovery == "cluster"
                          else GoldSkillDiscoverer())
    if getattr(ctx, "teacher", "offline") == "llm":
        from teachgraph.teachers.llm import LLMGenerator, LLMOrganizer, LLMPlanner, LLMSkillDiscoverer
        from teachgraph.teachers.llm_client import TeacherClient

        client = TeacherClient(ctx, teacher_dir(ctx) / "cache.sqlite")
        discoverer = (LLMSkillDiscoverer(client, teacher_dir(ctx) / "labels.json")
                      if getattr(ctx, "teacher_discovery", "llm") == "llm" else offline_discoverer)
        return Teacher(discoverer=discoverer,
                       organizer=LLMOrganizer(client, domain, max_subskills=ctx.max_subskills,
                                              fallback_policy=ctx.organizer_policy, explore=ctx.organizer_explore,
                                              focus=ctx.focus_skills),
                       planner=LLMPlanner(client, domain, ctx.min_skill_share),
                       generator=LLMGenerator(client, domain, batch_size=ctx.teacher_batch_size),
                       client=client)
    return Teacher(discoverer=offline_discoverer,
                   organizer=HandwrittenOrganizer(ctx.organizer_policy, max_subskills=ctx.max_subskills,
                                                  explore=ctx.organizer_explore, focus=ctx.focus_skills),
                   planner=OfflinePlanner(ctx.min_skill_share),
                   generator=ProgramGenerator(domain))
