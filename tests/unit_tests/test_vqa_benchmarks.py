"""GQA and NaturalBench (domains/vqa_benchmarks.py) on the shipped samples, in their exact row formats (the
sample pictures are drawn by our own renderer: teachgraph/domains/data/make_vqa_samples.py): loaders,
seeded disjoint splits, scorers, NaturalBench's reference metrics, and bad input skipped and counted."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from teachgraph.domains import get_domain
from teachgraph.domains.loaders import DATA_DIR, DatasetUnavailable
from teachgraph.domains.vqa_benchmarks import choice_of, naturalbench_scores, normalize_answer


def test_gqa_sample_loads_in_dataenvgym_layout_with_question_types_as_skills_and_disjoint_splits():
    domain = get_domain("gqa", seed=0)
    val, test = domain.load_split("val"), domain.load_split("test")
    assert domain.report.kept == 48 and domain.report.skipped == 0
    assert len(val) + len(test) == 48
    assert {e["group"] for e in val}.isdisjoint({e["group"] for e in test})  # no picture in both
    assert set(domain.skill_catalog()) == {"existAttr", "queryAttr", "queryObject", "relVerify"}
    assert [e["id"] for e in val] == [e["id"] for e in get_domain("gqa", seed=0).load_split("val")]
    assert [e["id"] for e in val] != [e["id"] for e in get_domain("gqa", seed=1).load_split("val")]
    assert Image.open(val[0]["image"]).mode == "RGB"


def test_gqa_scoring_is_exact_match_after_answer_normalisation():
    domain = get_domain("gqa")
    assert normalize_answer("The  Red.") == "red" and normalize_answer("two") == "2"
    assert domain.score("Yes.", {"answer": "yes"}) and domain.score("a triangle", {"answer": "triangle"})
    assert not domain.score("yes, red", {"answer": "yes"}) and not domain.score("blue", {"answer": "red"})


def test_naturalbench_sample_unrolls_groups_into_four_examples_split_by_group():
    domain = get_domain("naturalbench", seed=0)
    val, test = domain.load_split("val"), domain.load_split("test")
    assert domain.report.kept == 8 and len(val) + len(test) == 32
    assert {e["group"] for e in val}.isdisjoint({e["group"] for e in test})
    assert all(e["prompt"].endswith("Please answer Yes or No.") for e in val)
    by_group = {}
    for e in val:
        by_group.setdefault(e["group"], set()).add(e["slot"])
    assert all(slots == {"q0_i0", "q0_i1", "q1_i0", "q1_i1"} for slots in by_group.values())


def test_naturalbench_metrics_follow_the_reference_definitions():
    assert choice_of("Yes, it is.", "yes_no") == 1 and choice_of("no. yes", "yes_no") == 0
    assert choice_of("maybe", "yes_no") == -1 and choice_of("B) the cat", "multiple_choice") == 0
    # reference: question score needs a question right on both images, image score an image right on both
    # questions, group score all four
    group = lambda g, q0i0, q0i1, q1i0, q1i1: [  # noqa: E731
        {"group": g, "slot": s, "correct": c} for s, c in zip(("q0_i0", "q0_i1", "q1_i0", "q1_i1"), (q0i0, q0i1, q1i0, q1i1))]
    results = group("a", True, True, True, True) + group("b", True, True, False, True) + group("c", True, False, True, False)
    scores = naturalbench_scores(results)
    assert scores["group_score"] == pytest.approx(1 / 3)
    assert scores["question_score"] == pytest.approx((2 + 1 + 0) / 6)
    assert scores["image_score"] == pytest.approx((2 + 1 + 1) / 6)
    assert scores["binary_score"] == pytest.approx(9 / 12)
    domain = get_domain("naturalbench")
    assert domain.headline_score(results) == scores["group_score"]
    example = domain.load_split("val")[0]
    assert domain.score("Yes" if example["answer"] == "Yes" else "No", example)
    assert not domain.score("I cannot tell", example)


def _copy(name: str, tmp_path):
    target = tmp_path / name
    shutil.copytree(DATA_DIR / name, target)
    return target


def test_gqa_bad_rows_and_bad_images_are_skipped_and_counted(tmp_path):
    folder = _copy("gqa", tmp_path)
    path = folder / "dataenvgym-gqa" / "val.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    (folder / "images" / "empty.png").write_bytes(b"")
    (folder / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.new("F", (8, 8)).save(folder / "images" / "float.tiff")
    rows[0]["image"] = "images/missing.png"
    rows[1]["image"] = "images/empty.png"
    rows[2]["image"] = "images/corrupt.png"
    rows[3]["image"] = "images/float.tiff"
    del rows[4]["ground_truth_label"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    domain = get_domain("gqa", dataset=str(folder))
    assert domain.report.skipped == 5 and domain.report.kept == 43
    text = " ".join(domain.report.problems)
    for reason in ("not found", "empty", "cannot be read", "mode 'F'", "no answer"):
        assert reason in text


def test_naturalbench_bad_groups_are_skipped_and_counted(tmp_path):
    folder = _copy("naturalbench", tmp_path)
    path = folder / "naturalbench.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["Image_1"] = "images/none.png"
    rows[1]["Image_1_Question_1"] = ""
    rows[2]["Question Type"] = "open"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    domain = get_domain("naturalbench", dataset=str(folder))
    assert domain.report.skipped == 3 and domain.report.kept == 5
    assert len(domain.load_split("val")) + len(domain.load_split("test")) == 20


def test_a_hub_id_that_cannot_be_reached_is_a_clear_error_before_work(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailable, match="--dataset PATH"):
        get_domain("gqa", dataset="codezakh/dataenvgym-gqa")
    with pytest.raises(DatasetUnavailable, match="--dataset PATH"):
        get_domain("naturalbench", dataset="BaiqiL/NaturalBench")
