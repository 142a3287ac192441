"""Code generation (LiveCodeBench): write a Python program that passes hidden tests; scored by pass@1.

Data: `livecodebench/code_generation_lite` by release version (release_v1 is `test.jsonl` of the
hub repository, release_v2 adds `test2.jsonl`, and so on), a local folder with the same files, or
`local`: the small sample shipped in `teachgraph/domains/data/code` (same layout). As in DataEnvGym, the
validation set is a later release minus an earlier one (`val_release` minus `test_release`) and
the test set is `test_release`, so the two never overlap. Public and private test cases are
decoded (LiveCodeBench stores private ones as base64(zlib(pickle(json)))); both stdin/stdout
(AtCoder, Codeforces) and functional (LeetCode, `metadata.func_name`) problems are supported.

Scoring runs the student's program against all the problem's tests in `teachgraph.domains.sandbox`
(a separate, network-less, resource-limited process; never inside teachgraph). Gold skills come
from the metadata: skill = platform, subskill = difficulty. A generated example (statement,
starter code, tests, reference solution) is accepted only when its reference solution passes its
own tests in the sandbox. The offline teacher draws from a pool of problems that have reference
solutions (`train.jsonl` in the shipped sample; LiveCodeBench has none, so real runs need the LLM
teacher).
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import zlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, Field

from teachgraph.domains.base import Example, HeldOutDataset, example_id
from teachgraph.domains.code_runner import CodeTest, extract_code, run_tests
from teachgraph.domains.loaders import DATA_DIR, DatasetUnavailable, LoadReport, hub_file, is_local, read_rows, validate_rows

HUB_ID = "livecodebench/code_generation_lite"
RELEASE_FILES = {f"release_v{n}": ["test.jsonl"] + [f"test{k}.jsonl" for k in range(2, n + 1)] for n in range(1, 7)}
DIFFICULTY_ORDER = ("easy", "medium", "hard")
STDIN_FORMAT = ("Read the inputs from stdin, solve the problem and write the answer to stdout. "
                "Enclose your code within delimiters as follows.")
FUNCTIONAL_FORMAT = ("You will use the following starter code to write the solution to the problem and "
                     "enclose your code within delimiters.")


def code_prompt(question: str, starter_code: str) -> str:
    """LiveCodeBench's zero-shot prompt shape; the same before and after training."""
    if starter_code.strip():
        return (f"### Question:\n{question.strip()}\n\n### Format: {FUNCTIONAL_FORMAT}\n"
                f"```python\n{starter_code.rstrip()}\n```\n\n### Answer: (use the provided format with backticks)\n")
    return (f"### Question:\n{question.strip()}\n\n### Format: {STDIN_FORMAT}\n"
            "```python\n# YOUR CODE HERE\n```\n\n### Answer: (use the provided format with backticks)\n")


class _StringsOnly(pickle.Unpickler):
    """LiveCodeBench pickles a JSON string; refuse anything that would import or call code."""

    def find_class(self, module: str, name: str):  # noqa: ANN201
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a test-case blob")


def decode_tests(value: Any) -> list[dict[str, Any]]:
    """Test cases from a JSON string, an already-decoded list, or LiveCodeBench's compressed blob."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str) or not value.strip():
        return []
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    raw = _StringsOnly(io.BytesIO(zlib.decompress(base64.b64decode(value.encode("utf-8"))))).load()
    return json.loads(raw)


class TestCaseItem(BaseModel):
    input: str = Field(description="stdin text, or (functional) one JSON value per line, one per argument")
    output: str = Field(description="the expected stdout, or (functional) the JSON of the return value")
    testtype: str = Field(description="'stdin' or 'functional'")


class CodeItem(BaseModel):
    """One example as an LLM teacher writes it (the generator's structured-output schema)."""

    question_content: str = Field(description="The problem statement with input/output format and a sample.")
    starter_code: str = Field("", description="LeetCode-style `class Solution` stub for functional problems; "
                                              "empty for stdin problems.")
    func_name: str = Field("", description="The method of class Solution the tests call (functional only).")
    tests: list[TestCaseItem] = Field(description="3-6 test cases the reference solution passes.")
    reference_solution: str = Field(description="A correct Python program (stdin) or class Solution (functional).")


class CodeDomain(HeldOutDataset):
    name = "code"
    default_max_new_tokens = 512
    drop_solved_default = True
    generation_schema = CodeItem
    teacher_brief = (
        "Task domain code (LiveCodeBench): competitive-programming problems from LeetCode (functional: implement "
        "a method of `class Solution`, tests call it with JSON arguments) and AtCoder/Codeforces (stdin/stdout "
        "programs), easy to hard. A training example is a problem statement, starter code (functional only), "
        "test cases, and a reference solution in Python that passes all of them; examples whose reference "
        "solution fails its own tests are rejected.")

    def __init__(self, seed: int = 0, dataset: str = "local", val_release: str = "release_v2",
                 test_release: str = "release_v1", timeout_per_test: float = 6.0, workers: int | None = None,
                 val_fraction: float = 0.5):
        for field, release in (("val_release", val_release), ("test_release", test_release)):
            if release not in RELEASE_FILES:
                raise ValueError(f"domain_options.{field}: unknown release {release!r}; allowed: {sorted(RELEASE_FILES)}")
        if len(RELEASE_FILES[val_release]) <= len(RELEASE_FILES[test_release]):
            raise ValueError("domain_options.val_release: must be a later release than test_release "
                             "(validation = the later release minus the earlier one)")
        self.seed, self.dataset, self.timeout_per_test = seed, dataset, timeout_per_test
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.report = LoadReport(source=f"code:{dataset}")
        self._files: dict[str, list[Example]] = {}
        if dataset == "humaneval":  # the real HumanEval problems, split by the seed (domains/humaneval.py)
            if not 0 < val_fraction < 1:
                raise ValueError(f"domain_options.val_fraction: {val_fraction} is not between 0 and 1")
            from teachgraph.domains.humaneval import humaneval_splits

            self._val, self._test = humaneval_splits(seed, val_fraction)
            self._pool = []
            self._index()
            return
        earlier = self._release(test_release)
        later = self._release(val_release)
        test_ids = {e["question_id"] for e in earlier}
        self._test = earlier
        self._val = [e for e in later if e["question_id"] not in test_ids]
        if not self._val or not self._test:
            raise DatasetUnavailable(f"code dataset {dataset!r}: empty {'validation' if not self._val else 'test'} "
                                     f"split ({self.report.summary()})")
        self._pool = self._reference_pool()
        self._index()

    # -- reading ----------------------------------------------------------------------------
    def _folder(self) -> Path | None:
        if self.dataset == "local":
            return DATA_DIR / "code"
        return Path(self.dataset).expanduser() if is_local(self.dataset) else None

    def _file(self, name: str) -> Path:
        folder = self._folder()
        if folder is None:
            return hub_file(self.dataset, name)
        path = folder / name
        if not path.exists():
            raise DatasetUnavailable(f"code dataset folder {folder} has no {name} (LiveCodeBench layout: "
                                     "test.jsonl is release_v1, test2.jsonl adds release_v2, ...)")
        return path

    def _release(self, release: str) -> list[Example]:
        """The problems of a release; each file is read (and its bad rows counted) once."""
        rows = []
        for name in RELEASE_FILES[release]:
            if name not in self._files:
                self._files[name] = validate_rows(read_rows(self._file(name), self.report), self._example,
                                                  self.report, name)
            rows += self._files[name]
        return rows

    def _reference_pool(self) -> list[Example]:
        """Problems with a reference solution (`train.jsonl`: LiveCodeBench rows plus a `solution` field)
        that are in neither validation nor test."""
        folder = self._folder()
        if folder is None or not (folder / "train.jsonl").exists():
            return []
        held_out = {e["question_id"] for e in self._val + self._test}
        rows = read_rows(folder / "train.jsonl", self.report)
        solutions = {str(r.get("question_id")): r.get("solution") for r in rows}
        pool = []
        for e in validate_rows(rows, self._example, self.report, "train.jsonl"):
            solution = solutions.get(e["question_id"])
            if e["question_id"] not in held_out and isinstance(solution, str) and solution.strip():
                pool.append(dict(e, answer=f"```python\n{solution.strip()}\n```"))
        return pool

    @staticmethod
    def _example(row: dict[str, Any]) -> Example | str:
        question, qid = row.get("question_content"), row.get("question_id")
        if not isinstance(question, str) or not question.strip():
            return "no question_content"
        if qid is None:
            return "no question_id"
        tests = decode_tests(row.get("public_test_cases")) + decode_tests(row.get("private_test_cases"))
        tests = [t for t in tests if isinstance(t, dict) and {"input", "output"} <= set(t)]
        if not tests:
            return "no test cases"
        metadata = row.get("metadata") or {}
        metadata = json.loads(metadata) if isinstance(metadata, str) and metadata.strip() else metadata or {}
        functional = any(t.get("testtype") == "functional" for t in tests)
        if functional and not metadata.get("func_name"):
            return "functional tests but no metadata.func_name"
        difficulty = str(row.get("difficulty") or "medium").lower()
        starter = row.get("starter_code") or ""
        prompt = code_prompt(question, starter)
        return {"id": example_id(prompt), "prompt": prompt, "answer": "", "question_id": str(qid),
                "tests": [{"input": t["input"], "output": t["output"],
                           "testtype": t.get("testtype") or ("functional" if functional else "stdin")} for t in tests],
                "func_name": metadata.get("func_name"), "skill": str(row.get("platform") or "unknown").lower(),
                "subskill": difficulty, "difficulty": difficulty if difficulty in DIFFICULTY_ORDER else None,
                "contest_date": row.get("contest_date")}

    # -- running programs -------------------------------------------------------------------
    def _passes(self, program: str, example: Example) -> tuple[bool, str]:
        tests = [CodeTest(t["input"], t["output"], t["testtype"]) for t in example.get("tests") or []]
        code = extract_code(program)
        if example.get("humaneval"):
            from teachgraph.domains.humaneval import humaneval_program

            code = humaneval_program(code, example)
        report = run_tests(code, tests, func_name=example.get("func_name"),
                           timeout_per_test=self.timeout_per_test)
        first_failure = next((v for v in report.verdicts if v != "passed"), "no_tests")
        return report.passed, first_failure

    # -- the Domain protocol ----------------------------------------------------------------
    def score(self, prediction: str, example: Example) -> bool:
        return self._passes(prediction, example)[0]

    def score_many(self, predictions: Sequence[str], examples: Sequence[Example]) -> list[bool]:
        """pass@1 of many programs, a few sandboxes at a time."""
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(self.score, predictions, examples))

    def skill_catalog(self) -> dict[str, list[str]]:
        catalog: dict[str, set[str]] = defaultdict(set)
        for e in self._val + self._test + self._pool:
            catalog[e["skill"]].add(e["subskill"])
        order = {d: i for i, d in enumerate(DIFFICULTY_ORDER)}
        return {s: sorted(subs, key=lambda d: (order.get(d, 9), d)) for s, subs in sorted(catalog.items())}

    def describe_skill(self, skill: str) -> str:
        kinds = {"leetcode": "LeetCode-style functional problems (implement a method of class Solution)",
                 "atcoder": "AtCoder-style stdin/stdout problems", "codeforces": "Codeforces-style stdin/stdout problems"}
        return kinds.get(skill, f"programming problems: {skill}")

    def verify(self, example: Example) -> str | None:
        """A generated example is kept only when its reference solution passes its own tests."""
        if not example.get("tests"):
            return "no_tests"
        if not str(example.get("answer", "")).strip():
            return "no_reference_solution"
        passed, verdict = self._passes(example["answer"], example)
        return None if passed else f"reference_{verdict}"

    def from_generated(self, item: CodeItem, skill: str | None, subskill: str | None) -> Example:
        """An Example from what an LLM teacher wrote (its reference solution is run by `verify`)."""
        prompt = code_prompt(item.question_content, item.starter_code)
        functional = bool(item.func_name.strip())
        return {"id": example_id(prompt), "prompt": prompt,
                "answer": f"```python\n{extract_code(item.reference_solution).strip()}\n```",
                "tests": [{"input": t.input, "output": t.output, "testtype": "functional" if functional else "stdin"}
                          for t in item.tests],
                "func_name": item.func_name.strip() or None, "skill": skill, "subskill": subskill}
