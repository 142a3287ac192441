"""MnMs: the loader on the shipped sample (MnMs's exact row format), strict plan parsing, signature
checks, and the static metrics against MnMs's reference definitions (mnms/evaluation/metrics.py: sklearn's
precision_recall_fscore_support over flattened per-example label sets)."""

from __future__ import annotations

import json

import pytest
from sklearn.metrics import precision_recall_fscore_support

from teachgraph.domains import get_domain
from teachgraph.domains.loaders import DATA_DIR, DatasetUnavailable
from teachgraph.domains.mnms import CATALOGUE, FILES, MnmsDomain, MnmsItem
from teachgraph.domains.tool_plans import ParsedPlan, parse_mnms, plan_labels, plan_metrics, tool_macro_prf


@pytest.fixture(scope="module")
def domain() -> MnmsDomain:
    return get_domain("mnms")


def test_the_sample_splits_as_dataenvgym_does(domain):
    val, test, pool = domain.load_split("val"), domain.load_split("test"), domain.load_split("train")
    assert (len(val), len(test), len(pool)) == (12, 12, 12)
    ids = [{e["task_id"] for e in split} for split in (val, test, pool)]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    filtered = [json.loads(line)["id"] for line in (DATA_DIR / "mnms" / FILES["test"]).read_text().splitlines()]
    assert sorted(ids[1]) == sorted(map(str, filtered))  # test = the human-verified filtered set
    assert domain.report.skipped == 0


def test_the_catalogue_is_mnms_33_tools_with_their_signatures():
    assert len(CATALOGUE) == 33
    assert CATALOGUE["image_editing"].arg_names == ("image", "prompt")
    assert CATALOGUE["get_location"].output == "lon,lat"
    assert CATALOGUE["select_object"].arg_types == ("list[dict]", "text")


def test_rows_become_examples_with_tool_tuple_skills(domain):
    example = next(e for e in domain.load_split("test") if e["task_id"] == "28")
    assert example["skill"] == "image editing > image captioning" and example["subskill"] == "2 steps"
    request = ("\"Could you take the image, specifically 'image 17320.jpg', and adjust it so the green ball in the "
               "picture becomes blue, then describe for me what the resulting image looks like?\"")
    assert example["prompt"] == request
    with_catalogue = get_domain("mnms", catalogue_in_prompt=True)
    prompted = next(e for e in with_catalogue.load_split("test") if e["task_id"] == "28")
    assert prompted["prompt"].endswith("User request: " + request)
    assert "image editing(image, prompt) -> image" in prompted["prompt"]
    assert domain.score(example["answer"], example)
    assert all(domain.verify(e) is None for e in domain.load_split("val") + domain.load_split("test"))


def test_a_prediction_is_parsed_strictly_with_a_verdict(domain):
    example = next(e for e in domain.load_split("test") if e["task_id"] == "28")
    nodes = json.loads(example["answer"])["nodes"]
    assert domain.judge(json.dumps(nodes), example) == "correct"                   # a bare list of nodes
    assert domain.judge(json.dumps({"nodes": nodes[::-1]}), example) == "wrong_plan"
    assert domain.judge("The plan: image editing then captioning", example) == "unparseable"
    assert domain.judge(json.dumps({"nodes": []}), example) == "not_a_plan"
    assert domain.judge(json.dumps({"nodes": [{"id": 0, "args": {}}]}), example) == "not_a_plan"


def test_generated_plans_are_checked_against_the_signatures(domain):
    def verdict(nodes):
        return domain.verify(domain.from_generated(MnmsItem.model_validate(
            {"user_request": "Describe 1.jpg", "nodes": nodes}), None, None))

    assert verdict([{"id": 0, "name": "image captioning", "args": {"image": "1.jpg"}}]) is None
    assert verdict([{"id": 0, "name": "image teleport", "args": {"image": "1.jpg"}}]) == "unknown_tool"
    assert verdict([{"id": 0, "name": "image captioning", "args": {"picture": "1.jpg"}}]) == "wrong_arguments"
    assert verdict([{"id": 0, "name": "image captioning", "args": {"image": 7}}]) == "wrong_type"
    assert verdict([{"id": 0, "name": "get year fact", "args": {"year": "a year"}}]) == "wrong_type"
    assert verdict([{"id": 0, "name": "image captioning", "args": {"image": "1.jpg"}},
                    {"id": 1, "name": "count", "args": {"objects": "<node-0>.objects"}}]) == "bad_reference"
    assert verdict([{"id": 0, "name": "image captioning", "args": {"image": "<node-0>.image"}}]) == "bad_reference"
    generated = domain.from_generated(MnmsItem.model_validate(
        {"user_request": "Count the dogs in 2.jpg", "nodes": [
            {"id": 0, "name": "object detection", "args": {"image": "2.jpg"}},
            {"id": 1, "name": "count", "args": {"objects": "<node-0>.objects"}}]}), None, None)
    assert domain.verify(generated) is None and generated["skill"] == "object detection > count"


def test_a_local_folder_in_the_same_format_loads_and_bad_rows_are_counted(tmp_path):
    rows = [json.loads(line) for line in (DATA_DIR / "mnms" / FILES["verified"]).read_text().splitlines()]
    (tmp_path / FILES["test"]).write_text(json.dumps(rows[:3]))          # a JSON array, as `datasets` writes
    rows[5]["plan_str"] = str(json.loads(rows[5]["plan_str"]))             # a Python-literal plan string
    lines = [json.dumps(r) for r in rows[3:]] + ["{not json", json.dumps({"id": 1, "user_request": "x",
                                                                          "plan_str": "[]"})]
    (tmp_path / FILES["verified"]).write_text("\n".join(lines) + "\n")
    loaded = get_domain("mnms", dataset=str(tmp_path))
    assert len(loaded.load_split("test")) == 3 and len(loaded.load_split("val")) == len(rows) - 3
    assert loaded.load_split("train") == []                               # no test_raw.json: no pool
    assert loaded.report.skipped == 2
    with pytest.raises(DatasetUnavailable, match="no test_human_verified"):
        get_domain("mnms", dataset=str(tmp_path / "nowhere"))


# -- metrics against MnMs's reference definitions ------------------------------------------------------
def _reference_tool_macro(gold, pred, categories):
    """MnMs's PRFMetrics(categories, average='macro') with its flatten_labels, verbatim in behaviour."""
    gold_flat, pred_flat = [], []
    for g, p in zip(gold, pred):
        for label in set(g + p):
            gold_flat.append(categories.index(label) + 1 if label in g and label in categories else 0)
            pred_flat.append(categories.index(label) + 1 if label in p and label in categories else 0)
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold_flat, pred_flat, labels=list(range(1, len(categories) + 1)), average="macro", zero_division=0)
    return {"precision": round(100 * precision, 2), "recall": round(100 * recall, 2), "f1": round(100 * f1, 2)}


def _reference_binary(gold, pred):
    gold_flat, pred_flat = [], []
    for g, p in zip(gold, pred):
        for label in set(g + p):
            gold_flat.append(1 if label in g else 0)
            pred_flat.append(1 if label in p else 0)
    precision, recall, f1, _ = precision_recall_fscore_support(gold_flat, pred_flat, average="binary", zero_division=0)
    return {"precision": round(100 * precision, 2), "recall": round(100 * recall, 2), "f1": round(100 * f1, 2)}


def _plan(*calls) -> ParsedPlan:
    return ParsedPlan(calls=[(tool, args) for tool, args in calls])


def test_tool_macro_by_hand():
    # tools a, b, c: a is right (P=R=1), b missed (P=R=0), c spurious (P=R=0) -> macro 1/3 each
    assert tool_macro_prf([["a", "b"]], [["a", "c"]], ["a", "b", "c"]) == {"precision": 33.33, "recall": 33.33,
                                                                            "f1": 33.33}
    # two examples: a right twice; b predicted once wrongly -> a: P=R=1; b: P=0/1, R=0 (no positives)
    assert tool_macro_prf([["a"], ["a"]], [["a"], ["a", "b"]], ["a", "b"]) == {"precision": 50.0, "recall": 50.0,
                                                                                "f1": 50.0}
    # a repeated tool counts once per example (MnMs flattens each example's labels to a set)
    assert tool_macro_prf([["a", "a"]], [["a"]], ["a"]) == {"precision": 100.0, "recall": 100.0, "f1": 100.0}


CASES = [
    # (gold plans, predicted plans)
    ([_plan(("image_editing", {"image": "1.jpg", "prompt": "blue"}), ("image_captioning", {"image": "<node-0>.image"}))],
     [_plan(("image_editing", {"image": "1.jpg", "prompt": "Blue"}), ("image_captioning", {"image": "<node-0>.image"}))]),
    ([_plan(("object_detection", {"image": "2.jpg"}), ("count", {"objects": "<node-0>.objects"})),
      _plan(("get_year_fact", {"year": "1969"}))],
     [_plan(("image_segmentation", {"image": "2.jpg"}), ("count", {"objects": "<node-0>.objects"})),
      ParsedPlan(verdict="unparseable")]),
    ([_plan(("get_location", {"city": "Paris"}), ("get_weather", {"lon": "<node-0>.lon", "lat": "<node-0>.lat"})),
      _plan(("text_generation", {"text": "a story about <node-0>.text"}))],
     [_plan(("get_location", {"city": "paris"}), ("get_weather", {"lat": "<node-0>.lat", "lon": "<node-0>.lon"})),
      _plan(("text_generation", {"text": "a story"}), ("text_summarization", {"text": "<node-0>.text"}))]),
]


@pytest.mark.parametrize("gold, pred", CASES)
def test_metrics_agree_with_mnms_reference_definitions(gold, pred):
    tools = list(CATALOGUE)
    ours = plan_metrics(pred, gold, tools)
    g_tool, p_tool = [plan_labels(p) for p in gold], [plan_labels(p) for p in pred]
    assert ours["tool_macro"] == _reference_tool_macro(g_tool, p_tool, tools)
    for key, names, values in (("argname", True, False), ("argvalue", True, True)):
        g, p = [plan_labels(x, names, values) for x in gold], [plan_labels(x, names, values) for x in pred]
        assert ours[key] == _reference_binary(g, p)
        assert ours[f"plan_{key}_accuracy"] == round(100 * sum(a == b for a, b in zip(g, p)) / len(g), 2)
    assert ours["plan_accuracy"] == round(100 * sum(a == b for a, b in zip(g_tool, p_tool)) / len(gold), 2)


def test_labels_follow_mnms_code_labels_by_hand():
    plan = _plan(("image_editing", {"prompt": "Make it BLUE", "image": "1.jpg"}),
                 ("image_generation", {"text": "a picture of <node-0>.text"}),
                 ("get_year_fact", {"year": 1969}))
    assert plan_labels(plan) == ["image_editing", "image_generation", "get_year_fact"]
    assert plan_labels(plan, names=True) == ["image_editing--image--prompt", "image_generation--text",
                                             "get_year_fact--year"]
    # values as MnMs's generated code writes them, lower-cased: quoted strings, output{k}['key'] references
    assert plan_labels(plan, names=True, values=True) == [
        "image_editing--image='1.jpg'--prompt='make it blue'",
        "image_generation--text=f\"a picture of {output0['text']}\"",
        "get_year_fact--year='1969'"]
    # hand-checked case: argument values differ only by case (MnMs lower-cases them) -> all metrics 100
    first = plan_metrics(CASES[0][1], CASES[0][0], list(CATALOGUE))
    assert first["plan_argvalue_accuracy"] == 100.0 and first["argvalue"]["f1"] == 100.0
    # second case by hand: tool labels {object_detection, count} vs {image_segmentation, count}; year fact missed.
    second = plan_metrics(CASES[1][1], CASES[1][0], list(CATALOGUE))
    assert second["plan_accuracy"] == 0.0 and second["invalid"] == 1
    # count right (P=R=1); object detection, image segmentation, get year fact wrong; 29 tools never seen: 1/33
    assert second["tool_macro"] == {"precision": round(100 / 33, 2), "recall": round(100 / 33, 2),
                                    "f1": round(100 / 33, 2)}


def test_mnms_metrics_per_skill(domain):
    test = domain.load_split("test")
    predictions = [e["answer"] for e in test[:6]] + ["{}"] * (len(test) - 6)
    metrics = domain.metrics_of(predictions, test)
    assert metrics["plan_accuracy"] == 50.0 and metrics["invalid"] == 6
    assert set(metrics["per_skill_plan_accuracy"]) == {e["skill"] for e in test}
    assert parse_mnms("{}").verdict == "not_a_plan"
