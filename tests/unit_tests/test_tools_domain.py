"""The offline tool-use domain: splits, strict plan parsing, verdicts, execution, verification, skills."""

from __future__ import annotations

import json

import pytest

from teachgraph.domains import get_domain
from teachgraph.domains.tools import CATALOGUE, FAMILIES, ToolItem, ToolsDomain


@pytest.fixture(scope="module")
def domain() -> ToolsDomain:
    return get_domain("tools")


def test_splits_are_fixed_by_the_seed_disjoint_and_balanced(domain):
    val, test = domain.load_split("val"), domain.load_split("test")
    assert len(val) == len(test) == 5 * 3 * 20
    assert not {e["id"] for e in val} & {e["id"] for e in test}
    assert val == get_domain("tools", seed=0).load_split("val")
    assert val != get_domain("tools", seed=1).load_split("val")
    assert {(e["skill"], e["subskill"]) for e in val} == {(s, sub) for s, subs in domain.skill_catalog().items()
                                                          for sub in subs}


def test_every_gold_plan_runs_to_its_answer_and_every_prompt_names_its_skill(domain):
    for e in domain.load_split("val") + domain.load_split("test"):
        assert domain.verify(e) is None
        assert domain.score(e["answer"], e)
        assert domain.infer_skill(e["prompt"]) == (e["skill"], e["subskill"])
        assert e["subskill"] == ">".join(step[0] for step in json.loads(e["answer"]))


def test_subskills_are_graded_by_plan_length(domain):
    for skill, subskills in domain.skill_catalog().items():
        assert [len(s.split(">")) for s in subskills] == [1, 2, 3], skill


@pytest.fixture
def shop_example(domain):
    example = domain.generate("shop", "price>mul>add", None, 1, seed=5)[0]
    return example


@pytest.mark.parametrize("prediction, verdict", [
    ("", "unparseable"),
    ("[[\"price\",417]", "unparseable"),                      # cut off (the student ran out of tokens)
    ('[["price",NaN]]', "unparseable"),                      # not JSON
    ('{"tool": "price"}', "not_a_plan"),
    ("[]", "not_a_plan"),
    ('[["teleport",1]]', "unknown_tool"),
    ('[["price"]]', "wrong_arguments"),
    ('[["price","417"]]', "wrong_type"),                     # a string where the tool takes an integer
    ('[["price",true]]', "wrong_type"),
    ('[["upper","abc"],["mul","$0",3]]', "wrong_type"),      # a str output into an int argument
    ('[["mul","$0",3]]', "bad_reference"),                   # no step 0 before it
    ('[["price",5]]', "execution_error"),                    # no such stock-keeping unit
    ('[["add",1,2]]', "wrong_answer"),
])
def test_each_bad_plan_gets_its_verdict(domain, shop_example, prediction, verdict):
    assert domain.judge(prediction, shop_example) == verdict
    assert not domain.score(prediction, shop_example)


def test_any_plan_that_computes_the_answer_is_correct(domain):
    example = next(e for e in domain.load_split("val") if e["subskill"] == "add")
    a, b = json.loads(example["answer"])[0][1:]
    assert domain.judge(f'[["add",{b},{a}]]', example) == "correct"
    assert domain.judge(f' [["add", {a}, {b}]] ', example) == "correct"  # JSON spacing is free


def test_the_default_score_is_mnms_plan_accuracy_over_well_formed_plans(domain):
    example = next(e for e in domain.load_split("val") if e["subskill"] == "add")
    assert domain.score('[["add",1,2]]', example)                 # the gold tools, other values
    assert domain.judge('[["add",1,2]]', example) == "wrong_answer"
    assert not domain.score('[["add","1",2]]', example)            # the gold tools, but a wrongly typed argument
    assert not domain.score('[["sub",1,2]]', example)
    strict = get_domain("tools", score_by="execution")
    assert not strict.score('[["add",1,2]]', example) and strict.score(example["answer"], example)
    with pytest.raises(ValueError, match="domain_options.score_by"):
        get_domain("tools", score_by="vibes")


def test_metrics_report_plan_accuracy_and_verdicts(domain):
    val = domain.load_split("val")[:4]
    predictions = [val[0]["answer"], "garbage", val[2]["answer"], '[["sub",1,1]]']
    metrics = domain.metrics_of(predictions, val)
    assert metrics["plan_accuracy"] == metrics["valid_plan_accuracy"] == metrics["execution_accuracy"] == 50.0
    assert metrics["verdicts"] == {"correct": 2, "unparseable": 1, "wrong_answer": 1}
    assert metrics["invalid"] == 1


def test_generate_is_deterministic_and_narrows_to_the_subskill(domain):
    first = domain.generate("units", "km2m>add", None, 30, seed=3)
    assert first == domain.generate("units", "km2m>add", None, 30, seed=3)
    assert len({e["id"] for e in first}) == 30 and {e["subskill"] for e in first} == {"km2m>add"}
    assert {e["difficulty"] for e in domain.generate("dates", None, "hard", 10, seed=1)} == {"hard"}
    with pytest.raises(ValueError, match="unknown subskill"):
        domain.generate("units", "teleport", None, 1, seed=0)


def test_the_verifier_drops_wrong_answers_unknown_tools_and_wrong_types(domain, shop_example):
    assert domain.verify(shop_example) is None
    assert domain.verify(dict(shop_example, result="999")) == "wrong_answer"
    assert domain.verify(dict(shop_example, answer='[["teleport",1]]')) == "unknown_tool"
    assert domain.verify(dict(shop_example, answer='[["price","417"]]')) == "wrong_type"
    assert domain.verify(dict(shop_example, answer="not json")) == "unparseable"


def test_an_llm_teachers_item_becomes_an_example_that_is_verified(domain):
    item = ToolItem.model_validate({"request": "cost of 3 sku 417 plus 2 fee",
                                    "plan": [{"tool": "price", "args": [417]}, {"tool": "mul", "args": ["$0", 3]},
                                             {"tool": "add", "args": ["$1", 2]}],
                                    "final_answer": None})
    example = domain.from_generated(item, None, None)
    assert (example["skill"], example["subskill"]) == ("shop", "price>mul>add")
    assert example["answer"] == '[["price",417],["mul","$0",3],["add","$1",2]]'
    assert domain.verify(example) is None
    stated = domain.from_generated(item.model_copy(update={"final_answer": "1"}), "shop", "price>mul>add")
    assert domain.verify(stated) == "wrong_answer"
    typed = domain.from_generated(ToolItem.model_validate(
        {"request": "price of sku 417", "plan": [{"tool": "price", "args": ["417"]}], "final_answer": 3}), None, None)
    assert domain.verify(typed) == "wrong_type"


def test_the_catalogue_can_be_put_in_front_of_every_prompt():
    with_catalogue = get_domain("tools", catalogue_in_prompt=True)
    example = with_catalogue.load_split("val")[0]
    assert example["prompt"].startswith("Tools: add(a:int, b:int) -> int")
    assert all(t in example["prompt"] for t in CATALOGUE)
    assert with_catalogue.infer_skill(example["prompt"]) == (example["skill"], example["subskill"])


def test_bad_options_fail_naming_the_field():
    with pytest.raises(ValueError, match="domain_options.skills"):
        get_domain("tools", skills=["teleport"])
    assert [f.name for f in FAMILIES][:2] == ["arith", "text"]
    assert get_domain("tools", skills=["dates"]).skill_catalog() == {
        "dates": ["weekday", "addday>weekday", "add>addday>weekday"]}


def test_every_request_and_plan_fit_the_tiny_students_window(domain):
    longest = max(len(e["prompt"]) + len(e["answer"]) for e in domain.load_split("val") + domain.load_split("test"))
    assert longest + 3 <= domain.tiny_max_length  # <bos>, '=' and <eos>
    assert max(len(e["answer"]) for e in domain.load_split("val")) < domain.default_max_new_tokens
