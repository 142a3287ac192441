"""The small protocol every task domain implements, and the example record they share."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Iterable, Protocol, TypedDict, runtime_checkable


class Example(TypedDict, total=False):
    """One task instance. Generated examples also carry `provenance`."""

    id: str
    prompt: str
    answer: str
    skill: str
    subskill: str
    difficulty: str
    provenance: dict[str, Any]
    scene: dict[str, Any]   # visual examples: a structured scene, drawn by domains.scenes.render
    image: str              # visual examples: a path to the image file


DIFFICULTIES = ("easy", "medium", "hard")


def normalize_text(text: str) -> str:
    """The key under which two prompts count as exact duplicates: case and spacing ignored."""
    return " ".join(text.lower().split())


def stable_hash(obj: Any, length: int = 16) -> str:
    """A hash that is the same in every process (Python's hash() is salted per process)."""
    data = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(data.encode("utf-8"), digest_size=16).hexdigest()[:length]


def example_id(prompt: str) -> str:
    return stable_hash(normalize_text(prompt))


def example_key(example: dict[str, Any]) -> str:
    """What makes two examples exact duplicates: the normalised prompt, and for a visual example also its
    image's perceptual hash (the same question about another picture is another example)."""
    if example.get("scene") is None and not example.get("image"):
        return example_id(example["prompt"])
    from teachgraph.domains.images import example_fingerprint

    return stable_hash({"prompt": normalize_text(example["prompt"]), "image": example_fingerprint(example)})


def distinct_splits(per_split: Iterable[tuple[str, int]], cells: list[Any], draw: Callable[[Any], Example],
                    tries_per_example: int = 50) -> dict[str, list[Example]]:
    """Splits of `per` distinct examples per cell (a skill's subskill), drawn with `draw(cell)` split after
    split, cell after cell: an example already in any split is drawn again (at most `tries_per_example` x
    per times per cell), so splits never overlap. Deterministic when `draw` is."""
    splits: dict[str, list[Example]] = {}
    seen: set[str] = set()
    for split, per in per_split:
        splits[split] = []
        for cell in cells:
            taken = 0
            for _ in range(per * tries_per_example):
                if taken == per:
                    break
                ex = draw(cell)
                if ex["id"] in seen:
                    continue
                seen.add(ex["id"])
                splits[split].append(ex)
                taken += 1
    return splits


@runtime_checkable
class Domain(Protocol):
    """A task family: its data splits, its scoring, and its catalogue of skills.

    `generate` is the domain's own program for writing correct examples; domains without one
    (real datasets) raise NotImplementedError and need an LLM teacher.
    """

    name: str
    # Optional: `teacher_brief: str`, what the task is, for an LLM teacher's prompts (teachgraph.teachers.prompts).

    def load_split(self, split: str) -> list[Example]:
        """'val' or 'test' (and 'train' where the domain has one); fixed for a given seed."""

    def score(self, prediction: str, example: Example) -> bool:
        """Whether the student's prediction is correct."""

    def skill_catalog(self) -> dict[str, list[str]]:
        """Gold skills and their subskills, easiest subskill first."""

    def describe_skill(self, skill: str) -> str:
        """One line a planner or a person can read."""

    def verify(self, example: Example) -> str | None:
        """None when the example is correct and well formed, else the reason it is not."""

    def generate(self, skill: str, subskill: str | None, difficulty: str | None, n: int, seed: int) -> list[Example]:
        """n distinct correct examples for the request, deterministic in seed."""

    def infer_skill(self, prompt: str) -> tuple[str, str] | None:
        """The (skill, subskill) a prompt belongs to, where the domain can tell."""

    # Optional, where a domain has them:
    #   score_many(predictions, examples) -> list[bool]: scoring in parallel (code runs sandboxes);
    #   generation_schema (a pydantic model) and from_generated(item, skill, subskill) -> Example: what an
    #     LLM teacher writes for one example, when it is more than a prompt and an answer;
    #   drop_solved_default: bool: drop generated examples the student already gets right.


def score_all(domain: Domain, predictions: list[str], examples: list[Example]) -> list[bool]:
    """The domain's verdict on each prediction, in parallel where the domain can."""
    if hasattr(domain, "score_many"):
        return [bool(v) for v in domain.score_many(predictions, examples)]
    return [bool(domain.score(p, e)) for p, e in zip(predictions, examples)]


class HeldOutDataset:
    """What the real-dataset domains share: fixed validation and test splits, and a held-out pool of
    examples with answers that the offline teacher draws from (`generate`). Subclasses fill `_val`,
    `_test` and `_pool` and then call `_index()`."""

    name: str
    _val: list[Example]
    _test: list[Example]
    _pool: list[Example]

    def _index(self) -> None:
        self._by_id = {e["id"]: e for e in self._val + self._test + self._pool}

    def load_split(self, split: str) -> list[Example]:
        splits = {"val": self._val, "test": self._test, "train": self._pool}
        if split not in splits:
            raise ValueError(f"{self.name}: unknown split {split!r}; allowed: {sorted(splits)}")
        return [dict(e) for e in splits[split]]

    def generate(self, skill: str, subskill: str | None, difficulty: str | None, n: int, seed: int) -> list[Example]:
        """The offline teacher: n distinct pool examples of the skill, narrowed to the subskill (else the
        difficulty) where the pool has such; fewer when the pool has fewer. Deterministic in seed."""
        import random

        pool = [e for e in self._pool if e["skill"] == skill]
        if subskill is not None:
            narrowed = [e for e in pool if e["subskill"] == subskill]
        else:
            narrowed = [e for e in pool if difficulty is None or e.get("difficulty") == difficulty]
        pool = narrowed or pool
        return [dict(e) for e in random.Random(seed).sample(pool, min(n, len(pool)))]

    def infer_skill(self, prompt: str) -> tuple[str, str] | None:
        known = self._by_id.get(example_id(prompt))
        return (known["skill"], known["subskill"]) if known else None
