"""The code domain (LiveCodeBench format) on the shipped sample: releases, test decoding, pass@1 in the
sandbox, the reference-solution verifier, the offline pool, bad rows."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib
from collections import Counter

import pytest

from teachgraph.domains.code import CodeDomain, CodeItem, decode_tests
from teachgraph.domains.loaders import DATA_DIR, DatasetUnavailable


@pytest.fixture(scope="module")
def domain() -> CodeDomain:
    return CodeDomain(seed=0)


@pytest.fixture(scope="module")
def solutions() -> dict[str, str]:
    rows = [json.loads(line) for line in (DATA_DIR / "code" / "solutions.jsonl").read_text().splitlines() if line.strip()]
    return {r["question_id"]: r["solution"] for r in rows}


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA_DIR / "code" / name).read_text().splitlines() if line.strip()]


def test_validation_is_the_later_release_minus_the_earlier_one(domain):
    v1, v2_only = _rows("test.jsonl"), _rows("test2.jsonl")
    assert {e["question_id"] for e in domain.load_split("test")} == {r["question_id"] for r in v1}
    assert {e["question_id"] for e in domain.load_split("val")} == {r["question_id"] for r in v2_only}
    assert domain.report.skipped == 0


def test_public_and_private_tests_are_decoded_in_both_encodings(domain):
    for row in _rows("test.jsonl") + _rows("test2.jsonl"):
        public, private = decode_tests(row["public_test_cases"]), decode_tests(row["private_test_cases"])
        assert public and private
        example = next(e for e in domain.load_split("test") + domain.load_split("val")
                       if e["question_id"] == row["question_id"])
        assert len(example["tests"]) == len(public) + len(private)
    kinds = Counter(t["testtype"] for e in domain.load_split("val") + domain.load_split("test") for t in e["tests"])
    assert kinds["stdin"] > 0 and kinds["functional"] > 0


def test_a_test_blob_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    blob = base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()
    with pytest.raises(pickle.UnpicklingError):
        decode_tests(blob)
    assert not marker.exists()


def test_gold_skills_are_platform_and_difficulty(domain):
    catalog = domain.skill_catalog()
    assert set(catalog) <= {"atcoder", "codeforces", "leetcode"} and len(catalog) >= 2
    order = {"easy": 0, "medium": 1, "hard": 2}
    assert all([order[d] for d in subs] == sorted(order[d] for d in subs) for subs in catalog.values())


def test_reference_solutions_pass_and_wrong_programs_fail_in_the_sandbox(domain, solutions):
    examples = domain.load_split("val") + domain.load_split("test")
    right = domain.score_many([f"Here it is:\n```python\n{solutions[e['question_id']]}\n```" for e in examples], examples)
    assert all(right), [e["question_id"] for e, ok in zip(examples, right) if not ok]
    wrong = domain.score_many(["print(42)"] * len(examples), examples)
    assert not any(wrong)


def test_the_verifier_keeps_an_example_only_when_its_reference_passes_its_tests(domain):
    item = CodeItem(question_content="Read n and print n squared.", tests=[
        {"input": "3\n", "output": "9\n", "testtype": "stdin"}, {"input": "12\n", "output": "144\n", "testtype": "stdin"}],
        reference_solution="```python\nn = int(input())\nprint(n * n)\n```")
    example = domain.from_generated(item, "atcoder", "easy")
    assert domain.verify(example) is None
    assert domain.verify(dict(example, answer="```python\nn = int(input())\nprint(n + n)\n```")) == "reference_wrong_answer"
    assert domain.verify(dict(example, answer="```python\nprint(1 / 0)\n```")) == "reference_runtime_error"
    assert domain.verify(dict(example, tests=[])) == "no_tests"


def test_the_offline_teacher_draws_from_the_reference_pool(domain):
    pool = domain.load_split("train")
    assert pool and all(e["answer"].startswith("```python") for e in pool)
    held_out = {e["question_id"] for e in domain.load_split("val") + domain.load_split("test")}
    assert not held_out & {e["question_id"] for e in pool}
    skill = pool[0]["skill"]
    drawn = domain.generate(skill, None, None, 3, seed=1)
    assert drawn and all(e["skill"] == skill for e in drawn)
    assert [e["id"] for e in drawn] == [e["id"] for e in domain.generate(skill, None, None, 3, seed=1)]


def test_releases_must_be_ordered_and_known():
    with pytest.raises(ValueError, match="val_release"):
        CodeDomain(val_release="release_v1", test_release="release_v2")
    with pytest.raises(ValueError, match="unknown release"):
        CodeDomain(val_release="release_v9")


def test_malformed_rows_are_skipped_and_counted(tmp_path):
    rows = _rows("test.jsonl")
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:-2]) + "{broken\n"
                                         + json.dumps(dict(rows[-1], public_test_cases="[]", private_test_cases=""))
                                         + "\n")
    (tmp_path / "test2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows("test2.jsonl")))
    d = CodeDomain(dataset=str(tmp_path))
    assert d.report.skipped == 2 and "no test cases" in d.report.summary()
    assert len(d.load_split("test")) == len(rows) - 2


def test_the_hub_dataset_offline_says_to_pass_a_local_path():
    with pytest.raises(DatasetUnavailable, match="--dataset PATH"):
        CodeDomain(dataset="livecodebench/code_generation_lite")


# A program that solves nothing but reaches for what decided the verdict in the old in-process
# harness: its frames (the test's expected output) and its module globals (the comparison).
FORGED_STDIN = """
import sys
frame, found = sys._getframe(), None
while frame is not None:
    for value in list(frame.f_locals.values()):
        if isinstance(value, dict) and "output" in value:
            found = value["output"]
    frame = frame.f_back
for module in list(sys.modules.values()):
    for name in ("_lines_match", "_values_match"):
        if hasattr(module, name):
            setattr(module, name, lambda *args: True)
print(found if found is not None else "wrong")
"""


@pytest.mark.parametrize("mode", ["full", "fallback"])
def test_a_forging_program_neither_scores_nor_passes_the_verifier(domain, mode, monkeypatch):
    if mode == "fallback":
        monkeypatch.setenv("TEACHGRAPH_SANDBOX_DISABLE", "bwrap,netns,landlock,seccomp,caps")
    stdin_problems = [e for e in domain.load_split("val") + domain.load_split("test")
                      if e["tests"][0]["testtype"] == "stdin"]
    assert stdin_problems
    forged = f"```python\n{FORGED_STDIN}\n```"
    assert not any(domain.score_many([forged] * len(stdin_problems), stdin_problems))
    item = CodeItem(question_content="Read n and print n squared.", tests=[
        {"input": "3\n", "output": "9\n", "testtype": "stdin"}, {"input": "12\n", "output": "144\n", "testtype": "stdin"}],
        reference_solution=forged)
    assert domain.verify(domain.from_generated(item, "atcoder", "easy")) == "reference_wrong_answer"
