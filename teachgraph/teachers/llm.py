"""The LLM teacher: four agents (skill discovery, skill-tree organizer, planner, data generator), one
implementation each for every domain, behind the same protocols as the offline team.

Prompts live in `teachgraph.teachers.prompts`, response schemas in `teachgraph.teachers.schemas`, and the server client (structured
outputs, retries, cache, token counts, concurrency) in `teachgraph.teachers.llm_client`. Whenever a call yields nothing
usable, an agent falls back on its offline counterpart (and counts it) instead of failing the run.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from teachgraph.environments import TeacherEnvironment, skill_forest
from teachgraph.environments.base import split_budget
from teachgraph.teachers import prompts
from teachgraph.teachers.generator import request_seed
from teachgraph.teachers.llm_client import TeacherCallFailed, TeacherClient
from teachgraph.teachers.organizer import HandwrittenOrganizer
from teachgraph.teachers.planner import OfflinePlanner
from teachgraph.teachers.schemas import (CategoryAssignments, OrganizerAction, SkillCategories, SkillLabels,
                                         generated_batch_of, organizer_action_schema, plan_response_schema)
from teachgraph.domains.base import DIFFICULTIES, Domain, Example, example_id, normalize_text, stable_hash
from teachgraph.io import write_json_atomic

UNLABELED = "unlabeled"


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# -- skill discovery ----------------------------------------------------------------------------------
def _shown(example: Example) -> dict[str, str]:
    """An example as the discovery agent sees it: id and prompt, and for a visual example a description of its
    picture (a rendered scene's objects; a file's own description where it has one)."""
    shown = {"id": example["id"], "prompt": example["prompt"]}
    if example.get("scene") is not None:
        from teachgraph.domains.scenes import describe_scene

        shown["image"] = describe_scene(example["scene"])
    elif example.get("image_description"):
        shown["image"] = str(example["image_description"])
    return shown


class LLMSkillDiscoverer:
    """DataEnvGym's metacognitive discovery: label each validation example with a skill (and why), group
    the labels into mutually exclusive categories, then map every example to a category. Labels are
    kept in the run directory (`teacher/labels.json`) and reused by later discoveries."""

    method = "llm"

    def __init__(self, client: TeacherClient, labels_path: str | Path, batch_size: int = 20,
                 max_categories: int = 16):
        self.client, self.labels_path = client, Path(labels_path)
        self.batch_size, self.max_categories = batch_size, max_categories
        self.stats: Counter = Counter()

    def _ask_labels(self, domain: Domain, batch: list[Example]) -> dict[str, dict[str, str]]:
        wanted = {e["id"] for e in batch}
        found: dict[str, dict[str, str]] = {}
        for _ in range(2):  # the second round asks again for the examples the first answer left out
            todo = [e for e in batch if e["id"] not in found]
            if not todo:
                break
            data = {"examples": [_shown(e) for e in todo]}
            try:
                answer = self.client.ask("skill_label", prompts.messages("skill_label", domain, data), SkillLabels)
            except TeacherCallFailed:
                break
            for label in answer.labels:
                name = _snake(label.skill)
                if label.id in wanted and name:
                    found.setdefault(label.id, {"skill": name, "reason": label.reason})
        return found

    def label(self, domain: Domain, examples: list[Example]) -> dict[str, dict[str, str]]:
        labels: dict[str, dict[str, str]] = {}
        if self.labels_path.exists():
            labels = json.loads(self.labels_path.read_text(encoding="utf-8"))
        todo = [e for e in examples if e["id"] not in labels]
        for found in self.client.map(lambda b: self._ask_labels(domain, b), _batches(todo, self.batch_size)):
            labels.update(found)
        missing = [e["id"] for e in examples if e["id"] not in labels]
        self.stats["unlabeled"] += len(missing)
        if todo:
            write_json_atomic(self.labels_path, {k: v for k, v in labels.items()})
        return {e["id"]: labels.get(e["id"], {"skill": UNLABELED, "reason": "no label from the teacher"})
                for e in examples}

    def group(self, domain: Domain, label_counts: Counter) -> list[dict[str, Any]]:
        """Mutually exclusive categories: a label claimed by several categories stays in the first."""
        data = {"labels": sorted(label_counts), "counts": dict(sorted(label_counts.items()))}
        try:
            answer = self.client.ask("skill_group", prompts.messages("skill_group", domain, data,
                                                                     max_categories=self.max_categories),
                                     SkillCategories)
            proposed = answer.categories
        except TeacherCallFailed:
            self.client.count(fallbacks=1)
            proposed = []
        categories: dict[str, dict[str, Any]] = {}
        claimed: set[str] = set()
        for c in proposed:
            name = _snake(c.name)
            labels = [l for l in dict.fromkeys(_snake(x) for x in c.labels) if l in label_counts and l not in claimed]
            if not name:
                continue
            entry = categories.setdefault(name, {"name": name, "description": c.description, "labels": [],
                                                 "subskills": [s for s in dict.fromkeys(c.subskills) if s][:4]})
            entry["labels"] += labels
            claimed.update(labels)
        if not categories:  # nothing usable: every label its own category
            categories = {l: {"name": l, "description": l.replace("_", " "), "labels": [l], "subskills": []}
                          for l in label_counts}
        self.stats["ungrouped_labels"] += len(set(label_counts) - claimed) if proposed else 0
        return list(categories.values())

    def _ask_map(self, domain: Domain, batch: list[Example], labels: dict[str, dict[str, str]],
                 categories: list[dict[str, Any]]) -> dict[str, str]:
        names = {c["name"] for c in categories}
        found: dict[str, str] = {}
        for _ in range(2):  # ask again for examples left out or mapped to an unknown category
            todo = [e for e in batch if e["id"] not in found]
            if not todo:
                break
            data = {"categories": [{"name": c["name"], "description": c["description"], "labels": c["labels"]}
                                   for c in categories],
                    "examples": [{"id": e["id"], "prompt": e["prompt"], "label": labels[e["id"]]["skill"]} for e in todo]}
            try:
                answer = self.client.ask("skill_map", prompts.messages("skill_map", domain, data), CategoryAssignments)
            except TeacherCallFailed:
                break
            for a in answer.assignments:
                category = _snake(a.category)
                if category in names and a.id in {e["id"] for e in todo}:
                    found.setdefault(a.id, category)
        return found

    def discover(self, domain: Domain, examples: list[Example], seed: int) -> dict[str, Any]:
        labels = self.label(domain, examples)
        categories = self.group(domain, Counter(v["skill"] for v in labels.values()))
        assignment: dict[str, str] = {}
        for found in self.client.map(lambda b: self._ask_map(domain, b, labels, categories),
                                     _batches(examples, self.batch_size)):
            assignment.update(found)
        by_label = {l: c["name"] for c in categories for l in c["labels"]}
        largest = max(categories, key=lambda c: sum(1 for v in labels.values() if v["skill"] in c["labels"]))["name"]
        for e in examples:  # fallback for unmapped examples: their label's category, else the largest
            if e["id"] not in assignment:
                self.stats["unmapped"] += 1
                assignment[e["id"]] = by_label.get(labels[e["id"]]["skill"], largest)
        if self.stats["unmapped"]:
            self.client.count(fallbacks=self.stats["unmapped"])
        members: dict[str, list[Example]] = {c["name"]: [] for c in categories}
        for e in examples:
            members[assignment[e["id"]]].append(e)
        skills = {c["name"]: {"description": c["description"] or c["name"].replace("_", " "),
                              "subskills": c["subskills"] or list(DIFFICULTIES),
                              "exemplars": [e["prompt"] for e in members[c["name"]][:8]],
                              "labels": c["labels"], "n_val": len(members[c["name"]])}
                  for c in categories if members[c["name"]]}
        return {"method": self.method, "skills": skills, "assignment": assignment,
                "labels_path": str(self.labels_path), "stats": dict(self.stats)}


def _snake(text: str) -> str:
    return "_".join("".join(ch if ch.isalnum() else " " for ch in str(text).lower()).split())[:64]


# -- skill-tree organizer -------------------------------------------------------------------------------
def to_action(proposal: OrganizerAction, tree: dict[str, Any]) -> dict[str, Any]:
    """The skill-tree action of an LLM proposal (validated afterwards by skill_forest.apply_action)."""
    if proposal.action == "explore":
        data = [s.data for s in proposal.new_subskills]
        return {"type": "explore", "subskills": [s.name for s in proposal.new_subskills],
                "allocation": round(sum(data) / len(data)) if data else 0}
    allocations: dict[str, int] = {}
    for item in proposal.allocations:
        current = tree["subskills"].get(item.subskill, {}).get("allocation", 0)
        allocations[item.subskill] = item.value + current if proposal.allocation_kind == "delta" else item.value
    if not allocations:
        raise skill_forest.InvalidAction("exploit without allocations")
    return {"type": "exploit", "allocations": allocations}


class LLMOrganizer:
    """An LLM action policy over each skill's tree: it sees the skill's subskills (allocation, accuracy,
    data so far), the history of (state, action, reward) and the subskills it may add, and answers
    explore or exploit. An invalid or missing answer is replaced by the handwritten policy, and counted."""

    def __init__(self, client: TeacherClient, domain: Domain, max_subskills: int = 3, unit: int = 200,
                 fallback_policy: str = "error-weighted", history: int = 6, explore: str = "by-error",
                 focus: int = 2):
        self.client, self.domain, self.max_subskills, self.unit, self.history = client, domain, max_subskills, unit, history
        self.fallback = HandwrittenOrganizer(fallback_policy, unit=unit, max_subskills=max_subskills, explore=explore,
                                             focus=focus)

    def _propose(self, skill: str, tree: dict[str, Any], candidates: list[str], subskill_cap: int,
                 skill_cap: int) -> OrganizerAction | None:
        room = max(0, self.max_subskills - len(tree["subskills"]))
        data = {"skill": skill, "candidates": candidates, "room": room, "unit": self.unit,
                "subskill_cap": subskill_cap, "skill_cap": skill_cap,
                "tree": {"accuracy": tree["accuracy"], "subskills": tree["subskills"]},
                "history": [{"cycle": h["cycle"], "action": h["action"], "accuracy_before": h["accuracy_before"],
                             "reward": h["reward"]} for h in tree["history"][-self.history:]]}
        try:
            schema = organizer_action_schema(candidates, list(tree["subskills"]), room)
            return self.client.ask("organizer", prompts.messages("organizer", self.domain, data, room=room), schema)
        except TeacherCallFailed:
            return None

    def organize(self, forest: dict[str, Any], candidates: dict[str, list[str]], cycle: int,
                 subskill_cap: int, skill_cap: int) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
        skills = list(forest["skills"])
        proposals = self.client.map(lambda s: self._propose(s, forest["skills"][s], candidates.get(s, []),
                                                            subskill_cap, skill_cap), skills)
        actions, invalid = [], 0
        for skill, proposal in zip(skills, proposals):
            tree = forest["skills"][skill]
            try:
                if proposal is None:
                    raise skill_forest.InvalidAction("no answer from the teacher")
                action = to_action(proposal, tree)
                forest = skill_forest.apply_action(forest, skill, action, cycle, subskill_cap, skill_cap, self.max_subskills)
                source = "llm"
            except skill_forest.InvalidAction:
                invalid += 1
                self.client.count(fallbacks=1, invalid_actions=1)
                one, [action], _ = self.fallback.organize({"skills": {skill: tree}}, {skill: candidates.get(skill, [])},
                                                          cycle, subskill_cap, skill_cap)
                forest = dict(forest, skills=dict(forest["skills"], **one["skills"]))
                action = {k: v for k, v in action.items() if k != "skill"}
                source = "handwritten"
            actions.append({"skill": skill, **action, "source": source})
        return forest, actions, invalid


# -- planner ----------------------------------------------------------------------------------------------
def normalize_plan(requests: list[dict[str, Any]], budget: int, by_exemplar: bool,
                   known_skills: set[str] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Make an LLM's plan usable: drop requests for unknown skills (or, where requests are written from
    example errors, without exemplars), merge duplicates, and scale the counts so they add up to the
    budget exactly. Returns (requests, repairs)."""
    repairs: list[str] = []
    merged: dict[tuple, dict[str, Any]] = {}
    for r in requests:
        skill = r.get("skill")
        if by_exemplar:
            if not r.get("exemplars") and not skill:
                repairs.append("dropped a request with neither skill nor exemplars")
                continue
        elif known_skills is not None and skill not in known_skills:
            repairs.append(f"dropped a request for unknown skill {skill!r}")
            continue
        key = (skill, r.get("subskill"), r.get("difficulty"), tuple(r.get("exemplars") or []))
        if key in merged:
            merged[key]["count"] += max(0, int(r.get("count") or 0))
            repairs.append(f"merged duplicate requests for {skill!r}")
        else:
            merged[key] = {"skill": skill, "subskill": r.get("subskill"), "difficulty": r.get("difficulty"),
                           "count": max(0, int(r.get("count") or 0)), "exemplars": list(r.get("exemplars") or [])}
    rows = list(merged.values())
    if not rows:
        return [], repairs + ["no usable request"]
    total = sum(r["count"] for r in rows)
    if total != budget:
        repairs.append(f"counts added up to {total}, scaled to the budget {budget}")
        for r, c in zip(rows, split_budget(budget, [r["count"] for r in rows])):
            r["count"] = c
    return [r for r in rows if r["count"] > 0], repairs


def plan_request_limit(view: dict[str, Any], skills: set[str] | None) -> int:
    """How many requests a plan may have: one per row of a skill tree's allocations, else up to three
    (subskills or difficulties) per skill the plan may name; 24 when any skill may be named."""
    rows = len(view.get("allocations") or [])
    return max(rows, 3 * len(skills)) if skills else max(rows, 24)


class LLMPlanner:
    """The planner sees what the environment shows (per-skill accuracy and sample errors, the tree's
    allocations, or errors alone) and writes the requests; the offline planner is its fallback."""

    def __init__(self, client: TeacherClient, domain: Domain, min_skill_share: float = 0.03, max_errors: int = 40):
        self.client, self.domain, self.max_errors = client, domain, max_errors
        self.fallback = OfflinePlanner(min_skill_share)

    def plan(self, environment: TeacherEnvironment, observation: Any, budget: int, seed: int) -> dict[str, Any]:
        if budget <= 0 or not environment.has_signal(observation):
            return self.fallback.plan(environment, observation, budget, seed)
        data, known = environment.teacher_view(observation, budget, self.max_errors)
        schema = plan_response_schema(known, plan_request_limit(data, known),
                                      exemplars=bool(data.get("errors") or data.get("errors_by_skill")))
        try:
            answer = self.client.ask("planner", prompts.messages("planner", self.domain, data, budget=budget), schema)
        except TeacherCallFailed:
            answer = None
        requests, repairs = normalize_plan([r.model_dump() for r in answer.requests] if answer else [], budget,
                                           environment.requests_by_exemplar, known)
        if not requests:
            self.client.count(fallbacks=1)
            planned = self.fallback.plan(environment, observation, budget, seed)
            return dict(planned, notes=f"offline fallback ({'; '.join(repairs) or 'no answer'}): {planned['notes']}",
                        source="offline-fallback")
        if repairs:
            self.client.count(plan_repairs=1)
        return {"requests": requests, "notes": answer.notes, "budget": budget, "repairs": repairs, "source": "llm"}


# -- data generator ----------------------------------------------------------------------------------------
class LLMGenerator:
    """One request per (skill, subskill) batch of at most `batch_size` examples, all batches of a plan
    concurrently; short batches are topped up (at most `topups` more asks), long ones truncated.
    Correctness is the domain's verifier's job (the deduplicate node drops and counts what it rejects)."""

    name = "llm"

    def __init__(self, client: TeacherClient, domain: Domain, batch_size: int = 25, topups: int = 2):
        self.client, self.domain, self.batch_size, self.topups = client, domain, batch_size, topups
        self.teacher_model = client.model

    def generate(self, request: dict[str, Any], cycle: int, seed: int,
                 skills: dict[str, Any] | None = None) -> list[Example]:
        return self.generate_many([request], cycle, seed, skills)

    def generate_many(self, requests: list[dict[str, Any]], cycle: int, seed: int,
                      skills: dict[str, Any] | None = None, progress=None) -> list[Example]:
        jobs = []
        for request in requests:
            count = int(request["count"])
            for chunk, start in enumerate(range(0, count, self.batch_size)):
                jobs.append((request, chunk, min(self.batch_size, count - start)))
        done = [0]
        lock = threading.Lock()

        def run(job):
            out = self._batch(*job, cycle=cycle, seed=seed, skills=skills)
            with lock:
                done[0] += 1
                if progress:
                    progress(done[0], len(jobs))
            return out

        return [ex for batch in self.client.map(run, jobs) for ex in batch]

    def _example(self, item: Any, request: dict[str, Any], domain_schema: bool) -> Example:
        """An Example from one generated item: through the domain when it has its own schema."""
        if domain_schema:
            return self.domain.from_generated(item, request.get("skill"), request.get("subskill"))
        return {"id": example_id(item.prompt), "prompt": item.prompt.strip(), "answer": item.answer.strip(),
                "skill": request.get("skill"), "subskill": request.get("subskill")}

    def _request_data(self, request: dict[str, Any], skills: dict[str, Any] | None) -> dict[str, Any]:
        skill = request.get("skill")
        known = (skills or {}).get(skill) or {}
        exemplars = list(request.get("exemplars") or known.get("exemplars", [])[:5])
        if not exemplars and skill:  # a gold skill of the domain: a few of its validation prompts
            exemplars = [e["prompt"] for e in self.domain.load_split("val") if e.get("skill") == skill][:5]
        description = known.get("description") or (self.domain.describe_skill(skill) if skill else "")
        return {"skill": skill, "description": description, "subskill": request.get("subskill"),
                "difficulty": request.get("difficulty"), "exemplars": exemplars}

    def _batch(self, request: dict[str, Any], chunk: int, n: int, cycle: int, seed: int,
               skills: dict[str, Any] | None) -> list[Example]:
        batch_seed = request_seed(seed, cycle, request) + chunk
        data = dict(self._request_data(request, skills), seed=batch_seed, cycle=cycle)
        item_schema = getattr(self.domain, "generation_schema", None)
        out: list[Example] = []
        seen: set[str] = set()
        prompt_hash = None
        for attempt in range(1 + self.topups):
            need = n - len(out)
            if attempt:
                self.client.count(topups=1)
            messages = prompts.messages("generator", self.domain,
                                        dict(data, count=need, avoid=[e["prompt"] for e in out]), count=need)
            prompt_hash = prompt_hash or stable_hash([m.content for m in messages])
            try:
                answer = self.client.ask("generator", messages, generated_batch_of(item_schema, need))
            except TeacherCallFailed:
                self.client.count(fallbacks=1)
                break
            fresh = []
            for item in answer.examples:
                example = self._example(item, request, item_schema is not None)
                # the prompt, with its scene where it has one (the same question about another picture is new)
                key = normalize_text(example["prompt"]) + stable_hash(example.get("scene") or example.get("image") or "")
                if example["prompt"].strip() and key not in seen:
                    seen.add(key)
                    fresh.append(example)
            if len(fresh) > need:
                self.client.count(truncated_batches=1)
            for example in fresh[:need]:
                example.update(difficulty=request.get("difficulty"),
                               provenance={"cycle": cycle, "skill": request.get("skill"),
                                           "subskill": request.get("subskill"), "generator": self.name,
                                           "teacher_model": self.teacher_model, "prompt_hash": prompt_hash,
                                           "seed": batch_seed, "batch": chunk, "attempt": attempt})
                out.append(example)
            if len(out) >= n:
                break
        if len(out) < n:
            self.client.count(short_batches=1)
        return out
