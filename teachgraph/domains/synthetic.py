"""The offline default domain: ten short-answer skills a ~1M-parameter character model learns on a CPU.

Every prompt names its skill ("min 4821"), every skill has three graded subskills (easiest first),
and the domain's own programs write correct examples for any (skill, subskill) request, which makes
this domain its own offline teacher. Splits are fixed by the seed; test prompts never repeat
validation prompts.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable

from teachgraph.domains.base import DIFFICULTIES, Example, distinct_splits, example_id

LETTERS = "abcdefghijkl"  # a small alphabet with repeats is learned faster than 26 distinct letters


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(n - 1))


def _number(rng: random.Random, n_digits: int) -> int:
    return rng.randint(10 ** (n_digits - 1), 10**n_digits - 1)


def _letters(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(n))


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    keyword: str                              # the word every prompt of the skill starts with
    subskills: tuple[str, ...]                # easiest first
    sizes: tuple[tuple[int, int], ...]        # per subskill: (min, max) size drawn for an instance
    make: Callable[[random.Random, int], tuple[str, str]]  # (rng, size) -> (argument text, answer)


def _max_digit(rng, n):
    s = _digits(rng, n)
    return s, max(s)


def _min_digit(rng, n):
    s = _digits(rng, n)
    return s, min(s)


def _last_letter(rng, n):
    s = _letters(rng, n)
    return s, s[-1]


def _first_letter(rng, n):
    s = _letters(rng, n)
    return s, s[0]


def _successor(rng, n):
    x = _number(rng, n)
    return str(x), str(x + 1)


def _predecessor(rng, n):
    x = _number(rng, n)
    return str(x), str(x - 1)


def _larger(rng, n):
    a, b = _number(rng, n), _number(rng, n)
    while a == b:
        b = _number(rng, n)
    return f"{a} {b}", str(max(a, b))


def _add_reversed(rng, code):
    # the size encodes the digit pattern, not a length: 2 -> 1+1 digits, 3 -> 2+1, 4 -> 2+2
    da, db = {2: (1, 1), 3: (2, 1), 4: (2, 2)}[code]
    a, b = _number(rng, da), _number(rng, db)
    return f"{a} {b}", str(a + b)[::-1]


def _parity(rng, n):
    x = _number(rng, n)
    return str(x), "even" if x % 2 == 0 else "odd"


def _length(rng, n):
    s = _letters(rng, n)
    return s, str(len(s))


SKILLS: tuple[Skill, ...] = (
    Skill("max_digit", "the largest digit of a number", "max", ("4 digits", "6 digits", "8 digits"), ((4, 4), (6, 6), (8, 8)), _max_digit),
    Skill("min_digit", "the smallest digit of a number", "min", ("4 digits", "6 digits", "8 digits"), ((4, 4), (6, 6), (8, 8)), _min_digit),
    Skill("last_letter", "the last letter of a word", "last", ("4 letters", "6 letters", "8 letters"), ((4, 4), (6, 6), (8, 8)), _last_letter),
    Skill("first_letter", "the first letter of a word", "first", ("4 letters", "6 letters", "8 letters"), ((4, 4), (6, 6), (8, 8)), _first_letter),
    Skill("successor", "a number plus one", "succ", ("3 digits", "4 digits", "5 digits"), ((3, 3), (4, 4), (5, 5)), _successor),
    Skill("predecessor", "a number minus one", "pred", ("3 digits", "4 digits", "5 digits"), ((3, 3), (4, 4), (5, 5)), _predecessor),
    Skill("larger", "the larger of two numbers", "larger", ("2 digits", "3 digits", "4 digits"), ((2, 2), (3, 3), (4, 4)), _larger),
    Skill("add_reversed", "the sum of two numbers, digits written least significant first", "add", ("1+1 digits", "2+1 digits", "2+2 digits"), ((2, 2), (3, 3), (4, 4)), _add_reversed),
    Skill("parity", "whether a number is even or odd", "parity", ("3 digits", "5 digits", "7 digits"), ((3, 3), (5, 5), (7, 7)), _parity),
    Skill("length", "the number of letters in a word", "len", ("2-4 letters", "5-7 letters", "8-10 letters"), ((2, 4), (5, 7), (8, 10)), _length),
)

BY_NAME = {s.name: s for s in SKILLS}

# phrasing="natural": each skill's question in plain English (for a pretrained chat student), one template
# per skill; {x} is the argument's first part, {y} its second. Parsed back exactly (case and spacing aside).
NATURAL_TEMPLATES = {
    "max_digit": "What is the largest digit in {x}?",
    "min_digit": "What is the smallest digit in {x}?",
    "last_letter": "What is the last letter of the word {x}?",
    "first_letter": "What is the first letter of the word {x}?",
    "successor": "What is {x} plus one?",
    "predecessor": "What is {x} minus one?",
    "larger": "Which number is larger, {x} or {y}?",
    "add_reversed": "What is {x} plus {y}, with the digits of the sum written in reverse order?",
    "parity": "Is {x} even or odd?",
    "length": "How many letters are in the word {x}?",
}
# the shape of a skill's answer, for extracting it from a sentence (the last match wins: "... is 8.")
ANSWER_SHAPES = {"max_digit": r"\d", "min_digit": r"\d", "last_letter": r"[a-z]", "first_letter": r"[a-z]",
                 "successor": r"-?\d+", "predecessor": r"-?\d+", "larger": r"-?\d+", "add_reversed": r"\d+",
                 "parity": r"even|odd", "length": r"\d+"}


def _natural_pattern(template: str) -> "re.Pattern[str]":
    body = re.escape(template).replace(r"\{x\}", r"(?P<x>\S+?)").replace(r"\{y\}", r"(?P<y>\S+?)")
    return re.compile(r"\s*" + body.replace(r"\ ", r"\s+") + r"\s*", re.IGNORECASE)


NATURAL_PATTERNS = {name: _natural_pattern(t) for name, t in NATURAL_TEMPLATES.items()}
BY_KEYWORD = {s.keyword: s for s in SKILLS}
BASE_SKILLS = ("max_digit", "last_letter", "successor")  # what the base student is pretrained on


class SyntheticDomain:
    """Ten skills x three subskills; `val_per_subskill` examples of each in validation and test."""

    name = "synthetic"
    default_max_new_tokens = 6
    base_skills = BASE_SKILLS
    # what an LLM teacher is told about the task (teachgraph.teachers.prompts puts it into every agent's prompt)
    teacher_brief = (
        "The student is a tiny character-level model that answers short prompts. Each prompt is a keyword "
        "followed by its argument, and the answer is one short token: 'max 4821' -> '8' (largest digit), "
        "'min 4821' -> '1', 'last abcd' -> 'd', 'first abcd' -> 'a', 'succ 199' -> '200', 'pred 200' -> '199', "
        "'larger 12 34' -> '34', 'add 12 34' -> '64' (the sum written least significant digit first), "
        "'parity 123' -> 'odd', 'len abcd' -> '4'. Words use only the letters a-l. Answers are checked exactly.")

    def __init__(self, seed: int = 0, val_per_subskill: int = 20, test_per_subskill: int = 20,
                 skills: list[str] | None = None, phrasing: str = "keyword", base_skills: list[str] | None = None):
        if phrasing not in ("keyword", "natural"):
            raise ValueError(f"domain_options.phrasing: {phrasing!r} is not 'keyword' or 'natural'")
        self.phrasing = phrasing
        if phrasing == "natural":
            self.default_max_new_tokens = 16
            self.teacher_brief = (
                "The student is a small pretrained chat model that answers short questions in plain English. "
                "Every question follows one of these templates exactly, and the answer is one short token: "
                + "; ".join(f"'{NATURAL_TEMPLATES[k.name].format(x=ex[0], y=ex[1])}' -> '{ex[2]}'"
                            for k, ex in zip(SKILLS, _NATURAL_EXAMPLES))
                + ". Words use only the letters a-l. Answers are checked exactly; the student must answer "
                "with the answer alone, no sentence.")
        unknown = sorted(set(skills or []) - set(BY_NAME))
        if unknown:
            raise ValueError(f"domain_options.skills: unknown skills {unknown}; allowed: {sorted(BY_NAME)}")
        self.skills = [BY_NAME[s] for s in (skills or [s.name for s in SKILLS])]
        if base_skills is not None:  # what the tiny base student is pretrained on (default BASE_SKILLS)
            outside = sorted(set(base_skills) - {s.name for s in self.skills})
            if outside:
                raise ValueError(f"domain_options.base_skills: {outside} are not skills of this domain; "
                                 f"allowed: {sorted(s.name for s in self.skills)}")
            self.base_skills = tuple(dict.fromkeys(base_skills))
        self.seed = seed
        self.val_per_subskill = val_per_subskill
        self.test_per_subskill = test_per_subskill
        self._splits: dict[str, list[Example]] | None = None

    # -- data -------------------------------------------------------------------------------
    def _instance(self, skill: Skill, sub_index: int, rng: random.Random) -> Example:
        lo, hi = skill.sizes[sub_index]
        argument, answer = skill.make(rng, rng.randint(lo, hi))
        prompt = self.phrase(skill.name, argument)
        return Example(id=example_id(prompt), prompt=prompt, answer=answer, skill=skill.name,
                       subskill=skill.subskills[sub_index], difficulty=DIFFICULTIES[sub_index])

    def _build_splits(self) -> dict[str, list[Example]]:
        rng = random.Random(f"synthetic-splits-{self.seed}")
        cells = [(skill, i) for skill in self.skills for i in range(len(skill.subskills))]
        return distinct_splits((("val", self.val_per_subskill), ("test", self.test_per_subskill)), cells,
                               lambda cell: self._instance(*cell, rng))

    def load_split(self, split: str) -> list[Example]:
        if self._splits is None:
            self._splits = self._build_splits()
        if split not in self._splits:
            raise ValueError(f"split must be one of {sorted(self._splits)}, got {split!r}")
        return [dict(e) for e in self._splits[split]]  # type: ignore[misc]

    def generate(self, skill: str, subskill: str | None, difficulty: str | None, n: int, seed: int) -> list[Example]:
        spec = BY_NAME.get(skill)
        if spec is None:
            raise ValueError(f"unknown skill {skill!r}; known: {sorted(BY_NAME)}")
        if subskill is not None and subskill not in spec.subskills:
            raise ValueError(f"unknown subskill {subskill!r} of {skill}; known: {list(spec.subskills)}")
        rng = random.Random(f"generate-{seed}")
        out: list[Example] = []
        seen: set[str] = set()
        for _ in range(n * 20):
            if len(out) == n:
                break
            if subskill is not None:
                index = spec.subskills.index(subskill)
            elif difficulty in DIFFICULTIES:
                index = DIFFICULTIES.index(difficulty)
            else:
                index = rng.randrange(len(spec.subskills))
            ex = self._instance(spec, index, rng)
            if ex["id"] not in seen:
                seen.add(ex["id"])
                out.append(ex)
        return out

    def phrase(self, skill: str, argument: str) -> str:
        """The prompt of a skill's instance in this domain's phrasing."""
        if self.phrasing == "keyword":
            return f"{BY_NAME[skill].keyword} {argument}"
        parts = argument.split()
        return NATURAL_TEMPLATES[skill].format(x=parts[0], y=parts[1] if len(parts) > 1 else "")

    def _keyword_form(self, prompt: str) -> str | None:
        """A prompt in the keyword form ('max 4821'), whatever the phrasing; None if it follows no template."""
        if self.phrasing == "keyword":
            return prompt
        for name, pattern in NATURAL_PATTERNS.items():
            match = pattern.fullmatch(prompt)
            if match:
                groups = [g for g in (match.groupdict().get("x"), match.groupdict().get("y")) if g is not None]
                return " ".join([BY_NAME[name].keyword, *groups])
        return None

    # -- scoring and metadata ---------------------------------------------------------------
    def extract_answer(self, prediction: str, example: Example) -> str:
        """The answer in a prediction: itself (keyword phrasing); in natural phrasing the one value of the
        skill's answer shape the reply commits to ('The largest digit is 8.' -> '8'). Letters count only as
        the whole reply or quoted ('is "d"'), since 'a' is also a word; a reply naming two different values
        (an echoed 'even or odd', both numbers of 'larger') has no answer."""
        if self.phrasing == "keyword":
            return prediction.strip()
        skill = example.get("skill", "")
        shape = ANSWER_SHAPES.get(skill, r"\S+")
        text = prediction.strip().lower()
        if self.answer_format_valid(prediction, example):
            return text.strip("'\"").rstrip(".")
        if skill == "parity":  # the question echoed back ("... is even or") commits to nothing
            text = re.sub(r"\b(even|odd)\s+or\b(\s+(even|odd)\b)?", " ", text)
        if shape == "[a-z]":
            found = re.findall(r"[\"'\u201c\u2018]([a-z])[\"'\u201d\u2019]", text)
        else:
            found = re.findall(rf"(?<![\w-])(?:{shape})(?!\w)", text)
        values = set(found)
        return found[-1] if len(values) == 1 else ""

    def answer_format_valid(self, prediction: str, example: Example) -> bool:
        """Whether the prediction is the answer alone (quotes and a final full stop aside), right or wrong."""
        shape = ANSWER_SHAPES.get(example.get("skill", ""), r"\S+")
        return re.fullmatch(rf"(?:{shape})", prediction.strip().strip("'\"").rstrip(".").lower()) is not None

    def score(self, prediction: str, example: Example) -> bool:
        return self.extract_answer(prediction, example) == example["answer"]

    def skill_catalog(self) -> dict[str, list[str]]:
        return {s.name: list(s.subskills) for s in self.skills}

    def describe_skill(self, skill: str) -> str:
        spec = BY_NAME.get(skill)
        return spec.description if spec else skill

    def infer_skill(self, prompt: str) -> tuple[str, str] | None:
        prompt = self._keyword_form(prompt)
        if prompt is None:
            return None
        keyword, _, argument = prompt.partition(" ")
        spec = BY_KEYWORD.get(keyword)
        if spec is None:
            return None
        parts = argument.split()
        size = {"add_reversed": lambda: {(1, 1): 2, (2, 1): 3, (2, 2): 4}.get(tuple(len(p) for p in parts), 4)}.get(
            spec.name, lambda: len(parts[0]) if parts else 0)()
        for i, (lo, hi) in enumerate(spec.sizes):
            if lo <= size <= hi:
                return spec.name, spec.subskills[i]
        return spec.name, spec.subskills[-1] if size > spec.sizes[-1][1] else spec.subskills[0]

    def verify(self, example: Example) -> str | None:
        inferred = self.infer_skill(example.get("prompt", ""))
        if inferred is None:
            return "unknown_skill"
        spec = BY_NAME[inferred[0]]
        argument = self._keyword_form(example["prompt"]).partition(" ")[2]
        try:
            expected = _answer_for(spec.name, argument)
        except (ValueError, IndexError):
            return "malformed_prompt"
        return None if expected == example.get("answer", "").strip() else "wrong_answer"


# one worked instance per skill (in SKILLS order) for the natural-phrasing teacher brief: (x, y, answer)
_NATURAL_EXAMPLES = (("4821", "", "8"), ("4821", "", "1"), ("abcd", "", "d"), ("abcd", "", "a"),
                     ("199", "", "200"), ("200", "", "199"), ("12", "34", "34"), ("12", "34", "64"),
                     ("123", "", "odd"), ("abcd", "", "4"))


def _answer_for(skill: str, argument: str) -> str:
    """The correct answer computed from the prompt alone: the verifier for any generator's output."""
    parts = argument.split()
    x = parts[0]
    if skill == "max_digit":
        return max(x)
    if skill == "min_digit":
        return min(x)
    if skill == "last_letter":
        return x[-1]
    if skill == "first_letter":
        return x[0]
    if skill == "successor":
        return str(int(x) + 1)
    if skill == "predecessor":
        return str(int(x) - 1)
    if skill == "larger":
        return str(max(int(parts[0]), int(parts[1])))
    if skill == "add_reversed":
        return str(int(parts[0]) + int(parts[1]))[::-1]
    if skill == "parity":
        return "even" if int(x) % 2 == 0 else "odd"
    if skill == "length":
        return str(len(x))
    raise ValueError(skill)
