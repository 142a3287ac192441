"""The offline visual question answering domain: questions about procedurally rendered scenes.

Five skills (`domains.scenes`): exists, count, color, shape, spatial; each with three graded
subskills by the number of objects in the scene (1-2, 3-4, 5-6; easiest first). Every example carries
its scene (`scene`, a structured description); its picture is drawn from the scene, the same pixels
for the same scene, and its answer is computed from the scene, so any generated example (the domain's
own programs, or an LLM teacher writing question, answer and scene) is verified against its scene:
one whose answer does not follow is dropped and counted (`verify`).

Splits are fixed by the seed; test never repeats a validation (question, scene) pair.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import BaseModel, Field

from teachgraph.domains.base import DIFFICULTIES, Example, normalize_text, stable_hash
from teachgraph.domains.scenes import (COLORS, PATTERNS, SHAPES, SIZES, Unanswerable, answer_question, check_scene,
                                       describe_scene, make_question, question_skill, random_scene)

SKILLS = {
    "exists": "whether an object of a kind is in the picture (yes/no)",
    "count": "how many objects of a kind the picture shows",
    "color": "the colour of the one object described",
    "shape": "the shape of the one object described",
    "spatial": "whether one object is left of, right of, above or below another (yes/no)",
}
SUBSKILLS = ("1-2 objects", "3-4 objects", "5-6 objects")
OBJECTS = ((1, 2), (3, 4), (5, 6))
BASE_SKILLS = ("exists", "color", "shape")  # what the base student is pretrained on
# "procedural": generated scenes drawn by the renderer (answers verified from the scene); "diffusers": the
# teacher's image descriptions drawn by SDXL-Turbo (GPU; the picture is then not checked against the scene)
IMAGE_ENGINES = ("procedural", "diffusers")


def vqa_id(question: str, scene: Any) -> str:
    return stable_hash({"q": normalize_text(question), "scene": scene})


class SceneObject(BaseModel):
    shape: str = Field(description=f"One of {', '.join(SHAPES)}.")
    color: str = Field(description=f"One of {', '.join(COLORS)}.")
    size: str = Field(description=f"One of {', '.join(SIZES)}.")
    x: int = Field(description="Horizontal centre in pixels, 0-47 (left to right).")
    y: int = Field(description="Vertical centre in pixels, 0-47 (top to bottom).")


class VQAItem(BaseModel):
    """One example as an LLM teacher writes it: question, answer, an image description and the scene
    that the renderer draws (the image engine of this domain)."""

    question: str = Field(description="The question, in the domain's phrasing (see the brief).")
    answer: str = Field(description="The one-word answer.")
    image_description: str = Field(description="One sentence describing the picture.")
    objects: list[SceneObject] = Field(description="The objects of the scene (1-6), at least 12 pixels apart.")


class VQADomain:
    name = "vqa"
    modality = "image"          # examples carry images: the student must be a vision-language model
    default_max_new_tokens = 10  # per character for the tiny student: "triangle" and its end token
    base_skills = BASE_SKILLS
    base_learning_rate = 1e-3  # the tiny VLM learns to see from scratch: pretrained at a lower rate than the text students
    generation_schema = VQAItem
    teacher_brief = (
        "Task domain vqa: visual questions about small rendered pictures (48x48 pixels) of 1-6 flat shapes "
        f"({', '.join(SHAPES)}) in {', '.join(COLORS)}, small or large, on a 3x3 grid. Questions use exactly these "
        "forms, with a noun phrase [small|large] [colour] (circle|square|triangle|one): 'is there a red circle?' -> "
        "yes/no; 'how many red shapes?' / 'how many circles?' -> a number; 'what color is the small square?' -> a "
        "colour; 'what shape is the blue one?' -> a shape; 'is the red circle left of the blue one?' (left of, right "
        "of, above, below) -> yes/no. A described object must be the only one that fits. Every example gives its "
        "scene (the objects with shape, colour, size and pixel centre); the answer is checked against the scene.")

    def __init__(self, seed: int = 0, val_per_subskill: int = 20, test_per_subskill: int = 20,
                 skills: list[str] | None = None, image_engine: str = "procedural"):
        if image_engine not in IMAGE_ENGINES:
            raise ValueError(f"domain_options.image_engine: {image_engine!r}; allowed: {list(IMAGE_ENGINES)}")
        if image_engine == "diffusers":
            import importlib.util

            if importlib.util.find_spec("diffusers") is None:
                raise ValueError("domain_options.image_engine: 'diffusers' needs the diffusers package and a GPU "
                                 "(pip install 'teachgraph[diffusion]'); the offline default is 'procedural'")
        self.image_engine = image_engine
        unknown = sorted(set(skills or []) - set(SKILLS))
        if unknown:
            raise ValueError(f"domain_options.skills: unknown skills {unknown}; allowed: {sorted(SKILLS)}")
        if val_per_subskill < 1 or test_per_subskill < 1:
            raise ValueError("domain_options.val_per_subskill / test_per_subskill: must be at least 1")
        self.skills = list(skills or SKILLS)
        self.seed, self.val_per_subskill, self.test_per_subskill = seed, val_per_subskill, test_per_subskill
        self._splits: dict[str, list[Example]] | None = None

    # -- data -------------------------------------------------------------------------------
    def _instance(self, skill: str, sub_index: int, rng: random.Random) -> Example | None:
        lo, hi = OBJECTS[sub_index]
        scene = random_scene(rng, rng.randint(lo, hi))
        question = make_question(skill, scene, rng)
        if question is None:
            return None
        try:
            answer = answer_question(scene, question)
        except Unanswerable:
            return None
        return Example(id=vqa_id(question, scene), prompt=question, answer=answer, skill=skill,
                       subskill=SUBSKILLS[sub_index], difficulty=DIFFICULTIES[sub_index], scene=scene)

    def _draw(self, skill: str, sub_index: int, n: int, rng: random.Random, seen: set[str]) -> list[Example]:
        out: list[Example] = []
        for _ in range(n * 50):
            if len(out) == n:
                break
            ex = self._instance(skill, sub_index, rng)
            if ex is not None and ex["id"] not in seen:
                seen.add(ex["id"])
                out.append(ex)
        return out

    def load_split(self, split: str) -> list[Example]:
        if self._splits is None:
            rng = random.Random(f"vqa-splits-{self.seed}")
            seen: set[str] = set()
            self._splits = {"val": [], "test": []}
            for name, per in (("val", self.val_per_subskill), ("test", self.test_per_subskill)):
                for skill in self.skills:
                    for i in range(len(SUBSKILLS)):
                        self._splits[name] += self._draw(skill, i, per, rng, seen)
        if split not in self._splits:
            raise ValueError(f"vqa: unknown split {split!r}; allowed: {sorted(self._splits)}")
        return [dict(e, scene=e["scene"]) for e in self._splits[split]]  # type: ignore[misc]

    def generate(self, skill: str, subskill: str | None, difficulty: str | None, n: int, seed: int) -> list[Example]:
        if skill not in SKILLS:
            raise ValueError(f"unknown skill {skill!r}; known: {sorted(SKILLS)}")
        if subskill is not None and subskill not in SUBSKILLS:
            raise ValueError(f"unknown subskill {subskill!r} of {skill}; known: {list(SUBSKILLS)}")
        rng = random.Random(f"vqa-generate-{seed}")
        if subskill is not None:
            indices = [SUBSKILLS.index(subskill)]
        elif difficulty in DIFFICULTIES:
            indices = [DIFFICULTIES.index(difficulty)]
        else:
            indices = list(range(len(SUBSKILLS)))
        seen: set[str] = set()
        out: list[Example] = []
        for k in range(n):  # round-robin over the subskills asked for
            out += self._draw(skill, indices[k % len(indices)], 1, rng, seen)
        return out

    # -- scoring and metadata ---------------------------------------------------------------
    def score(self, prediction: str, example: Example) -> bool:
        return normalize_text(prediction).rstrip(".") == normalize_text(example["answer"])

    def skill_catalog(self) -> dict[str, list[str]]:
        return {s: list(SUBSKILLS) for s in self.skills}

    def describe_skill(self, skill: str) -> str:
        return SKILLS.get(skill, skill)

    def infer_skill(self, prompt: str) -> tuple[str, str] | None:
        """The skill a question belongs to (from its form); the subskill depends on the picture, which a
        prompt alone does not show: the easiest is returned."""
        skill = question_skill(prompt)
        return (skill, SUBSKILLS[0]) if skill else None

    def verify(self, example: Example) -> str | None:
        scene = example.get("scene")
        problem = check_scene(scene) if scene is not None else "no_scene"
        if problem:
            return "bad_scene" if scene is not None else problem
        n = len(scene["objects"])
        if not 1 <= n <= OBJECTS[-1][1]:
            return "bad_scene"
        try:
            expected = answer_question(scene, str(example.get("prompt", "")))
        except Unanswerable as error:
            return "ambiguous_reference" if "refers to" in str(error) or "level" in str(error) else "not_answerable"
        return None if normalize_text(str(example.get("answer", ""))) == expected else "wrong_answer"

    def from_generated(self, item: VQAItem, skill: str | None, subskill: str | None) -> Example:
        """An Example from what an LLM teacher wrote: its scene is what the renderer draws (checked by `verify`)."""
        scene = {"canvas": 48, "objects": [o.model_dump() for o in item.objects]}
        question = " ".join(item.question.lower().split())
        n = len(item.objects)
        sub = next((SUBSKILLS[i] for i, (lo, hi) in enumerate(OBJECTS) if lo <= n <= hi), subskill)
        return {"id": vqa_id(question, scene), "prompt": question, "answer": item.answer.strip().lower(),
                "skill": skill or question_skill(question), "subskill": subskill or sub, "scene": scene,
                "image_description": item.image_description or describe_scene(scene)}


__all__ = ["PATTERNS", "SKILLS", "SUBSKILLS", "VQADomain", "VQAItem"]
