"""Offline tool use: plan a short sequence of calls to deterministic tools for a user request.

The student reads a request ("cost of 3 sku 417 plus 2 fee") and writes a plan in the compact strict-JSON
format of `domains.tool_plans` (`[["price",417],["mul","$0",3],["add","$1",2]]`). Scoring
(`score_by`): "plan" (the default) is MnMs's plan accuracy over well-formed plans: the plan validates
against the catalogue (known tools, the right number and types of arguments, references to earlier
calls of the right output type) and calls the gold sequence of tools; "execution" asks more: running
the plan gives the gold final answer (another plan that computes it counts too). `metrics` reports
both, with MnMs's other static metrics (tool macro F1, argument accuracy) and each verdict's count.

Skills are tool families; each has three graded subskills, the tool tuples of its plans, one, two and
three calls long (easiest first), so plan length and tool combination grow together. The domain's own
programs write correct examples for any (skill, subskill), which makes it its own offline teacher; a
generated example (an LLM teacher's too) is kept only when its plan validates and runs to its stated
answer (`verify`, counted per reason by the deduplicate node). The base student is pretrained on the
arithmetic and text families, so it knows the format and half the tools but not the others.
"""

from __future__ import annotations

import datetime
import json
import random
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from pydantic import BaseModel, Field

from teachgraph.domains.base import DIFFICULTIES, Example, distinct_splits, example_id
from teachgraph.domains.tool_plans import ParsedPlan, Tool, execute, parse_compact, plan_metrics, validate

LETTERS = "abcdefghijkl"
# the shop's price table: stock-keeping unit 100..999 -> unit price 1..9 (fixed for every run)
_price_rng = random.Random("tools-price-table")
PRICES = {sku: _price_rng.randint(1, 9) for sku in range(100, 1000)}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _date(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


CATALOGUE: dict[str, Tool] = {t.name: t for t in (
    Tool("add", ("a", "b"), ("int", "int"), "int", "a + b", lambda a, b: a + b),
    Tool("sub", ("a", "b"), ("int", "int"), "int", "a - b", lambda a, b: a - b),
    Tool("mul", ("a", "b"), ("int", "int"), "int", "a * b", lambda a, b: a * b),
    Tool("upper", ("s",), ("str",), "str", "s in capitals", lambda s: s.upper()),
    Tool("rev", ("s",), ("str",), "str", "s reversed", lambda s: s[::-1]),
    Tool("cat", ("s", "t"), ("str", "str"), "str", "s followed by t", lambda s, t: s + t),
    Tool("price", ("sku",), ("int",), "int", "the unit price of a stock-keeping unit (100-999) in the shop's "
         "price table", lambda sku: PRICES[sku]),
    Tool("km2m", ("km",), ("int",), "int", "kilometres to metres", lambda km: km * 1000),
    Tool("m2cm", ("m",), ("int",), "int", "metres to centimetres", lambda m: m * 100),
    Tool("weekday", ("date",), ("str",), "str", "the weekday (mon..sun) of a YYYY-MM-DD date",
         lambda d: WEEKDAYS[_date(d).weekday()]),
    Tool("addday", ("date", "n"), ("str", "int"), "str", "the YYYY-MM-DD date n days later",
         lambda d, n: (_date(d) + datetime.timedelta(days=n)).isoformat()),
)}


def catalogue_text() -> str:
    return "; ".join(t.signature() + ": " + t.description for t in CATALOGUE.values())


def plan_text(calls: Sequence[Sequence[Any]]) -> str:
    """The compact plan exactly as the student writes it (no spaces)."""
    return json.dumps([list(c) for c in calls], separators=(",", ":"))


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(3, 5)))


def _day(rng: random.Random) -> str:
    return (datetime.date(2024, 1, 1) + datetime.timedelta(days=rng.randrange(731))).isoformat()


# Each subskill: (request template, make(rng) -> (template values, plan calls)). The template's fields
# are also the pattern `infer_skill` reads a request back with.
Make = Callable[[random.Random], tuple[dict[str, Any], list[list[Any]]]]


def _arith(steps: int) -> Make:
    def make(rng):
        v = {"a": rng.randint(10, 99), "b": rng.randint(10, 99), "c": rng.randint(2, 9), "d": rng.randint(1, 99)}
        calls = [["add", v["a"], v["b"]], ["mul", "$0", v["c"]], ["sub", "$1", v["d"]]]
        return v, calls[:steps]
    return make


def _text(steps: int) -> Make:
    def make(rng):
        v = {"s": _word(rng), "t": _word(rng)}
        calls = [["upper", v["s"]]] if steps == 1 else [["rev", v["s"]], ["upper", "$0"], ["cat", "$1", v["t"]]][:steps]
        return v, calls
    return make


def _shop(steps: int) -> Make:
    def make(rng):
        v = {"sku": rng.randint(100, 999), "n": rng.randint(2, 9), "fee": rng.randint(1, 9)}
        calls = [["price", v["sku"]], ["mul", "$0", v["n"]], ["add", "$1", v["fee"]]]
        return v, calls[:steps]
    return make


def _units(steps: int) -> Make:
    def make(rng):
        v = {"x": rng.randint(1, 99), "y": rng.randint(1, 999)}
        calls = [["km2m", v["x"]], ["add", "$0", v["y"]], ["m2cm", "$1"]]
        return v, calls[:steps]
    return make


def _dates(steps: int) -> Make:
    def make(rng):
        v = {"date": _day(rng), "n": rng.randint(1, 30), "m": rng.randint(1, 30)}
        plans = {1: [["weekday", v["date"]]],
                 2: [["addday", v["date"], v["n"]], ["weekday", "$0"]],
                 3: [["add", v["n"], v["m"]], ["addday", v["date"], "$0"], ["weekday", "$1"]]}
        return v, plans[steps]
    return make


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    templates: tuple[str, str, str]      # one request template per subskill, easiest (one call) first
    makers: tuple[Make, Make, Make]

    def subskill(self, index: int) -> str:
        """The subskill's name: its plans' tool tuple (e.g. 'price>mul>add')."""
        _, calls = self.makers[index](random.Random(0))
        return ">".join(c[0] for c in calls)


FAMILIES: tuple[Family, ...] = (
    Family("arith", "integer arithmetic: add, then multiply, then subtract",
           ("{a} plus {b}", "{a} plus {b} times {c}", "{a} plus {b} times {c} minus {d}"),
           (_arith(1), _arith(2), _arith(3))),
    Family("text", "string tools: capitals, reversal, concatenation",
           ("upper {s}", "upper reversed {s}", "upper reversed {s} then {t}"),
           (_text(1), _text(2), _text(3))),
    Family("shop", "table lookup of a unit price, then quantity and fee",
           ("price of sku {sku}", "cost of {n} sku {sku}", "cost of {n} sku {sku} plus {fee} fee"),
           (_shop(1), _shop(2), _shop(3))),
    Family("units", "unit conversion of distances (km, m, cm)",
           ("{x} km in m", "{x} km plus {y} m in m", "{x} km plus {y} m in cm"),
           (_units(1), _units(2), _units(3))),
    Family("dates", "calendar tools: weekday of a date, dates n days later",
           ("weekday of {date}", "weekday {n} days after {date}", "weekday {n}+{m} days after {date}"),
           (_dates(1), _dates(2), _dates(3))),
)
BY_NAME = {f.name: f for f in FAMILIES}
BASE_SKILLS = ("arith", "text")


def _pattern(template: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^\\s+]+)", re.escape(template)) + "$")


PATTERNS = [(f, i, _pattern(t)) for f in FAMILIES for i, t in enumerate(f.templates)]


def _result_text(value: Any) -> str:
    return json.dumps(value)


class ToolStep(BaseModel):
    tool: str = Field(description="A tool of the catalogue, by name.")
    args: list[Any] = Field(description="Its arguments in order: JSON integers or strings, or the string '$k' "
                                        "for the output of step k (0-based, an earlier step).")


class ToolItem(BaseModel):
    """One example as an LLM teacher writes it (the generator's structured-output schema)."""

    request: str = Field(description="The user request, in one of the domain's phrasings.")
    plan: list[ToolStep] = Field(description="The tool calls that answer the request, in order.")
    final_answer: int | str | None = Field(None, description="What running the plan returns (a JSON integer or "
                                           "string), where you can tell; null where it needs a tool's table.")


class ToolsDomain:
    """Five tool families x three subskills; `val_per_subskill` requests of each in validation and test."""

    name = "tools"
    default_max_new_tokens = 80
    tiny_max_length = 128       # prompt + plan of the longest request, in characters, fit in this
    base_examples_per_skill = 2000
    # plans are ~4x longer than synthetic answers: a smaller default budget keeps the default run minutes
    tiny_run_defaults = {"budget": 3000, "cycles": 3}
    base_skills = BASE_SKILLS
    generation_schema = ToolItem
    teacher_brief = (
        "Task domain tools (offline tool use): the student reads a short user request and writes a plan, a "
        "strict JSON array of tool calls, each an array of the tool name and its arguments; the string '$k' "
        "is the output of call k (0-based). Example: 'cost of 3 sku 417 plus 2 fee' -> "
        '[["price",417],["mul","$0",3],["add","$1",2]]. Tools: ' + catalogue_text()
        + ". Request phrasings: " + "; ".join(t for f in FAMILIES for t in f.templates)
        + ". A plan is correct when it runs to the request's answer; a plan that calls an unknown tool or "
        "passes arguments of the wrong type is rejected.")

    def __init__(self, seed: int = 0, val_per_subskill: int = 20, test_per_subskill: int = 20,
                 skills: list[str] | None = None, catalogue_in_prompt: bool = False, score_by: str = "plan"):
        if score_by not in ("plan", "execution"):
            raise ValueError(f"domain_options.score_by: {score_by!r} is not 'plan' (MnMs's plan accuracy) or "
                             "'execution' (the plan runs to the gold answer)")
        self.score_by = score_by
        unknown = sorted(set(skills or []) - set(BY_NAME))
        if unknown:
            raise ValueError(f"domain_options.skills: unknown skills {unknown}; allowed: {sorted(BY_NAME)}")
        if val_per_subskill < 1 or test_per_subskill < 1:
            raise ValueError("domain_options.val_per_subskill: validation and test need at least one request per subskill")
        self.families = [BY_NAME[s] for s in (skills or [f.name for f in FAMILIES])]
        self.seed, self.val_per_subskill, self.test_per_subskill = seed, val_per_subskill, test_per_subskill
        self.catalogue_in_prompt = catalogue_in_prompt
        self._splits: dict[str, list[Example]] | None = None

    # -- prompts ----------------------------------------------------------------------------
    def prompt_for(self, request: str) -> str:
        """What the student sees: the request, after the catalogue for students that read one."""
        if self.catalogue_in_prompt:
            return f"Tools: {catalogue_text()}\nWrite the plan as strict JSON.\nRequest: {request}"
        return request

    def request_of(self, prompt: str) -> str:
        return prompt.rsplit("\nRequest: ", 1)[-1]

    # -- data -------------------------------------------------------------------------------
    def _instance(self, family: Family, index: int, rng: random.Random) -> Example:
        values, calls = family.makers[index](rng)
        request = family.templates[index].format(**values)
        result, problem = execute(parse_compact(plan_text(calls), CATALOGUE), CATALOGUE)
        assert problem is None, (request, problem)  # the domain's own plans always run
        prompt = self.prompt_for(request)
        return Example(id=example_id(prompt), prompt=prompt, answer=plan_text(calls), result=_result_text(result),
                       skill=family.name, subskill=family.subskill(index), difficulty=DIFFICULTIES[index])

    def _build_splits(self) -> dict[str, list[Example]]:
        rng = random.Random(f"tools-splits-{self.seed}")
        cells = [(family, index) for family in self.families for index in range(3)]
        return distinct_splits((("val", self.val_per_subskill), ("test", self.test_per_subskill)), cells,
                               lambda cell: self._instance(*cell, rng))

    def load_split(self, split: str) -> list[Example]:
        if self._splits is None:
            self._splits = self._build_splits()
        if split not in self._splits:
            raise ValueError(f"tools: unknown split {split!r}; allowed: {sorted(self._splits)}")
        return [dict(e) for e in self._splits[split]]  # type: ignore[misc]

    def generate(self, skill: str, subskill: str | None, difficulty: str | None, n: int, seed: int) -> list[Example]:
        family = BY_NAME.get(skill)
        if family is None:
            raise ValueError(f"unknown skill {skill!r}; known: {sorted(BY_NAME)}")
        names = [family.subskill(i) for i in range(3)]
        if subskill is not None and subskill not in names:
            raise ValueError(f"unknown subskill {subskill!r} of {skill}; known: {names}")
        rng = random.Random(f"tools-generate-{seed}")
        out: list[Example] = []
        seen: set[str] = set()
        for _ in range(n * 20):
            if len(out) == n:
                break
            if subskill is not None:
                index = names.index(subskill)
            elif difficulty in DIFFICULTIES:
                index = DIFFICULTIES.index(difficulty)
            else:
                index = rng.randrange(3)
            ex = self._instance(family, index, rng)
            if ex["id"] not in seen:
                seen.add(ex["id"])
                out.append(ex)
        return out

    # -- scoring ----------------------------------------------------------------------------
    def judge(self, prediction: str, example: Example) -> str:
        """'correct' (runs to the gold answer), or why not: unparseable / not_a_plan / unknown_tool /
        wrong_arguments / wrong_type / bad_reference / execution_error / wrong_answer."""
        result, problem = execute(parse_compact(prediction, CATALOGUE), CATALOGUE)
        if problem:
            return problem
        return "correct" if _result_text(result) == example["result"] else "wrong_answer"

    def plan_correct(self, prediction: str, example: Example) -> bool:
        """MnMs's plan accuracy, over well-formed plans: valid, and the gold sequence of tools."""
        plan = parse_compact(prediction, CATALOGUE)
        return validate(plan, CATALOGUE) is None and plan.tools == parse_compact(example["answer"], CATALOGUE).tools

    def score(self, prediction: str, example: Example) -> bool:
        if self.score_by == "execution":
            return self.judge(prediction, example) == "correct"
        return self.plan_correct(prediction, example)

    def metrics(self, results: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The metrics of an evaluation's results (nodes.evaluate.score_split: each prediction beside its
        example's fields), as the evaluate and finalize nodes record them."""
        return self.metrics_of([r["prediction"] for r in results], results)

    def metrics_of(self, predictions: Sequence[str], examples: Sequence[Example]) -> dict[str, Any]:
        """MnMs's static metrics plus execution accuracy and the count of each verdict."""
        predicted = [parse_compact(p, CATALOGUE) for p in predictions]
        gold = [parse_compact(e["answer"], CATALOGUE) for e in examples]
        out = plan_metrics(predicted, gold, list(CATALOGUE))
        verdicts = [self.judge(p, e) for p, e in zip(predictions, examples)]
        out["execution_accuracy"] = round(100 * verdicts.count("correct") / len(verdicts), 2) if verdicts else 0.0
        valid = [self.plan_correct(p, e) for p, e in zip(predictions, examples)]
        out["valid_plan_accuracy"] = round(100 * sum(valid) / len(valid), 2) if valid else 0.0
        out["verdicts"] = {v: verdicts.count(v) for v in sorted(set(verdicts))}
        return out

    # -- skills -----------------------------------------------------------------------------
    def skill_catalog(self) -> dict[str, list[str]]:
        return {f.name: [f.subskill(i) for i in range(3)] for f in self.families}

    def describe_skill(self, skill: str) -> str:
        family = BY_NAME.get(skill)
        return family.description if family else skill

    def infer_skill(self, prompt: str) -> tuple[str, str] | None:
        request = self.request_of(prompt)
        for family, index, pattern in PATTERNS:
            if pattern.match(request):
                return family.name, family.subskill(index)
        return None

    def verify(self, example: Example) -> str | None:
        """None when the example's plan validates against the catalogue and runs to its stated answer."""
        plan = parse_compact(str(example.get("answer", "")), CATALOGUE)
        problem = validate(plan, CATALOGUE)
        if problem:
            return problem
        result, problem = execute(plan, CATALOGUE)
        if problem:
            return problem
        if example.get("result") is not None and example["result"] != _result_text(result):
            return "wrong_answer"
        return None

    def from_generated(self, item: ToolItem, skill: str | None, subskill: str | None) -> Example:
        """An Example from what an LLM teacher wrote; `verify` then runs its plan against its answer."""
        prompt = self.prompt_for(" ".join(item.request.split()))
        calls = [[step.tool, *step.args] for step in item.plan]
        final = item.final_answer
        if isinstance(final, str) and re.fullmatch(r"-?\d+", final.strip()):
            final = int(final)  # an integer answer written as a string
        if final is None:  # no stated answer: `verify` still runs the plan, and the answer is what it returns
            final = execute(parse_compact(plan_text(calls), CATALOGUE), CATALOGUE)[0]
        inferred = self.infer_skill(prompt)
        return {"id": example_id(prompt), "prompt": prompt, "answer": plan_text(calls),
                "result": _result_text(final), "skill": skill or (inferred[0] if inferred else None),
                "subskill": subskill or (inferred[1] if inferred else None)}


def parsed_plan(prediction: str) -> ParsedPlan:
    return parse_compact(prediction, CATALOGUE)
