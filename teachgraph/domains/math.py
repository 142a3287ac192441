"""MATH (Hendrycks et al., 2021): competition problems with step-by-step solutions and boxed answers.

Data: a Hugging Face dataset id (the original `lighteval/MATH` is gone; its maintained mirrors
`DigitalLearningGmbH/MATH-lighteval` (one config, splits train/test) and `EleutherAI/hendrycks_math`
(one config per subject) both work), a local folder with `train.jsonl|parquet` and
`test.jsonl|parquet` in MATH's row format (problem, level, type, solution), or `local`: the small
sample shipped in `teachgraph/domains/data/math`.

Splits: validation is a balanced, seeded subset of the train split (`val_per_cell` problems per
subject x level), so it never overlaps test; test is the test split (optionally a balanced subset
of `test_limit`). The rest of the train split is the offline teacher's pool: `generate` draws
problems of the requested subject and level from it (an LLM teacher writes new ones instead).

Skills: gold skill = subject, subskill = level (easiest first). Scoring: the final answer extracted
from the student's output (`\\boxed{}` or "The final answer is"), compared with the gold answer by
`domains.math_answers` (Minerva/Hendrycks normalisation, sympy equivalence under a timeout).
The student sees the same prompt before and after training (zero-shot, no few-shot exemplars).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from teachgraph.domains.base import Example, HeldOutDataset, example_id
from teachgraph.domains.loaders import DATA_DIR, DatasetUnavailable, LoadReport, hub_dataset_rows, is_local, read_rows, validate_rows
from teachgraph.domains.math_answers import extract_answer, score_prediction, solution_consistent

SUBJECTS = ("Algebra", "Counting & Probability", "Geometry", "Intermediate Algebra", "Number Theory",
            "Prealgebra", "Precalculus")
HENDRYCKS_CONFIGS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
                     "prealgebra", "precalculus")
LEVEL = re.compile(r"^Level [1-5]$")
INSTRUCTION = "Solve the problem step by step. Put the final answer in \\boxed{}."


def math_prompt(problem: str) -> str:
    """What the student sees, for validation, test and training examples alike."""
    return f"{problem.strip()}\n{INSTRUCTION}"


def level_difficulty(level: str) -> str:
    number = int(level.split()[-1])
    return "easy" if number <= 2 else "medium" if number == 3 else "hard"


class MathItem(BaseModel):
    """One example as an LLM teacher writes it (the generator's structured-output schema)."""

    problem: str = Field(description="The problem statement, in LaTeX where needed, like a MATH problem.")
    solution: str = Field(description="A concise step-by-step solution that ends with the final answer in \\boxed{}.")
    final_answer: str = Field(description="The final answer alone, exactly as boxed in the solution.")


class MathDomain(HeldOutDataset):
    name = "math"
    default_max_new_tokens = 384
    drop_solved_default = True  # DataEnvGym's check: generated problems the student already solves teach nothing
    generation_schema = MathItem
    teacher_brief = (
        "Task domain math (the MATH benchmark): competition mathematics problems in seven subjects (Algebra, "
        "Counting & Probability, Geometry, Intermediate Algebra, Number Theory, Prealgebra, Precalculus) at "
        "difficulty levels 1-5. A training example is a problem, a step-by-step solution, and the final answer, "
        "which the solution must state in \\boxed{}. Answers are checked for mathematical equivalence.")

    def __init__(self, seed: int = 0, dataset: str = "local", hf_config: str | None = None, val_per_cell: int = 1,
                 test_limit: int | None = None):
        if val_per_cell < 1:
            raise ValueError("domain_options.val_per_cell: must be at least 1")
        self.seed, self.dataset, self.val_per_cell, self.test_limit = seed, dataset, val_per_cell, test_limit
        self.report = LoadReport(source=f"math:{dataset}")
        train = self._read("train", hf_config)
        test = self._read("test", hf_config)
        if not train or not test:
            raise DatasetUnavailable(f"math dataset {dataset!r} has no usable {'train' if not train else 'test'} rows "
                                     f"({self.report.summary()})")
        self._val, self._pool = self._split_val(train)
        self._test = self._limit(test, test_limit)
        self._index()

    # -- reading ----------------------------------------------------------------------------
    def _read(self, split: str, hf_config: str | None) -> list[Example]:
        if is_local(self.dataset):
            folder = DATA_DIR / "math" if self.dataset == "local" else Path(self.dataset).expanduser()
            files = [folder / f"{split}.jsonl", folder / f"{split}.parquet"]
            path = next((f for f in files if f.exists()), None)
            if path is None:
                raise DatasetUnavailable(f"math dataset folder {folder} has no {split}.jsonl or {split}.parquet")
            rows = read_rows(path, self.report)
        elif self.dataset == "EleutherAI/hendrycks_math" and hf_config is None:
            rows = [r for config in HENDRYCKS_CONFIGS for r in hub_dataset_rows(self.dataset, config, split)]
        else:
            rows = hub_dataset_rows(self.dataset, hf_config, split)
        return validate_rows(rows, self._example, self.report, f"{self.dataset} {split}")

    @staticmethod
    def _example(row: dict[str, Any]) -> Example | str:
        problem, solution = row.get("problem"), row.get("solution")
        subject, level = row.get("type"), row.get("level")
        if not isinstance(problem, str) or not problem.strip():
            return "no problem text"
        if not isinstance(solution, str):
            return "no solution text"
        if not isinstance(subject, str) or not subject:
            return "no subject ('type')"
        if not isinstance(level, str) or not LEVEL.match(level):
            return f"level {level!r} is not 'Level 1'..'Level 5'"
        answer = extract_answer(solution)
        if answer is None:
            return "the solution states no final answer (\\boxed{})"
        prompt = math_prompt(problem)
        return {"id": example_id(prompt), "prompt": prompt, "answer": solution.strip(), "final_answer": answer,
                "skill": subject, "subskill": level, "difficulty": level_difficulty(level)}

    def _split_val(self, train: list[Example]) -> tuple[list[Example], list[Example]]:
        cells: dict[tuple[str, str], list[Example]] = defaultdict(list)
        for e in train:
            cells[(e["skill"], e["subskill"])].append(e)
        rng = random.Random(self.seed)
        val_ids = set()
        for key in sorted(cells):
            val_ids.update(e["id"] for e in rng.sample(cells[key], min(self.val_per_cell, len(cells[key]))))
        return [e for e in train if e["id"] in val_ids], [e for e in train if e["id"] not in val_ids]

    def _limit(self, rows: list[Example], limit: int | None) -> list[Example]:
        if limit is None or limit >= len(rows):
            return rows
        rng = random.Random(self.seed + 1)
        by_cell: dict[tuple[str, str], list[Example]] = defaultdict(list)
        for e in rng.sample(rows, len(rows)):
            by_cell[(e["skill"], e["subskill"])].append(e)
        chosen, keys = [], sorted(by_cell)
        while len(chosen) < limit:  # round-robin over cells: as balanced as the data allows
            for key in keys:
                if by_cell[key] and len(chosen) < limit:
                    chosen.append(by_cell[key].pop())
        return sorted(chosen, key=lambda e: (e["skill"], e["subskill"], e["id"]))

    # -- the Domain protocol ----------------------------------------------------------------
    def score(self, prediction: str, example: Example) -> bool:
        return score_prediction(prediction, example["final_answer"])

    def skill_catalog(self) -> dict[str, list[str]]:
        catalog: dict[str, set[str]] = defaultdict(set)
        for e in self._val + self._pool + self._test:
            catalog[e["skill"]].add(e["subskill"])
        return {skill: sorted(levels) for skill, levels in sorted(catalog.items())}

    def describe_skill(self, skill: str) -> str:
        return f"MATH {skill} problems" if skill in self.skill_catalog() else f"math problems: {skill}"

    def verify(self, example: Example) -> str | None:
        if not str(example.get("prompt", "")).strip():
            return "empty_problem"
        return solution_consistent(str(example.get("answer", "")), str(example.get("final_answer", "")))

    def from_generated(self, item: MathItem, skill: str | None, subskill: str | None) -> Example:
        """An Example from what an LLM teacher wrote (checked later by `verify`)."""
        prompt = math_prompt(item.problem)
        return {"id": example_id(prompt), "prompt": prompt, "answer": item.solution.strip(),
                "final_answer": item.final_answer.strip(), "skill": skill, "subskill": subskill}
