"""The offline data generator: the domain's own programs write correct examples for each request."""

from __future__ import annotations

from typing import Any

from teachgraph.domains.base import Domain, Example, stable_hash


def request_seed(seed: int, cycle: int, request: dict[str, Any]) -> int:
    """A request's seed depends on what it asks for, not on its position in the plan."""
    key = {k: request.get(k) for k in ("skill", "subskill", "difficulty", "exemplars")}
    return int(stable_hash({"seed": seed, "cycle": cycle, "request": key}, 12), 16)


class ProgramGenerator:
    name = "offline-program"
    teacher_model = "offline"

    def __init__(self, domain: Domain):
        self.domain = domain

    def generate_many(self, requests: list[dict[str, Any]], cycle: int, seed: int,
                      skills: dict[str, Any] | None = None, progress=None) -> list[Example]:
        out: list[Example] = []
        for i, request in enumerate(requests):
            out += self.generate(request, cycle, seed, skills)
            if progress:
                progress(i + 1, len(requests))
        return out

    def generate(self, request: dict[str, Any], cycle: int, seed: int,
                 skills: dict[str, Any] | None = None) -> list[Example]:
        """Examples for one plan request. A request for a discovered skill (or an open-ended request)
        is served through exemplar prompts, mapped to the domain's own skills."""
        base_seed = request_seed(seed, cycle, request)
        catalog = self.domain.skill_catalog()
        count = int(request["count"])
        targets: list[tuple[str, str | None, str | None, int]] = []
        if request.get("skill") in catalog:
            targets.append((request["skill"], request.get("subskill") if request.get("subskill") in catalog[request["skill"]] else None,
                            request.get("difficulty"), count))
        else:
            exemplars = list(request.get("exemplars") or [])
            if not exemplars and skills and request.get("skill") in skills:
                exemplars = skills[request["skill"]].get("exemplars", [])
            inferred = [self.domain.infer_skill(p) for p in exemplars]
            inferred = [x for x in inferred if x is not None]
            if not inferred:
                return []
            for i, (skill, subskill) in enumerate(inferred):
                share = count // len(inferred) + (1 if i < count % len(inferred) else 0)
                if share:
                    targets.append((skill, subskill, None, share))
        prompt_hash = stable_hash(request)
        out: list[Example] = []
        for j, (skill, subskill, difficulty, n) in enumerate(targets):
            for ex in self.domain.generate(skill, subskill, difficulty, n, seed=base_seed + j):
                ex["provenance"] = {
                    "cycle": cycle, "skill": request.get("skill") or skill, "subskill": request.get("subskill") or ex.get("subskill"),
                    "domain_skill": skill, "generator": self.name, "teacher_model": self.teacher_model,
                    "prompt_hash": prompt_hash, "seed": base_seed + j,
                }
                out.append(ex)
        return out
