"""The offline VQA domain (domains/scenes.py, domains/vqa.py): deterministic pictures, answers verified from
the scene, disjoint splits; image-aware deduplication (dedup/store.py with images=True)."""

from __future__ import annotations

import hashlib
import random

import pytest

from teachgraph.dedup import DedupStore
from teachgraph.domains import get_domain
from teachgraph.domains.base import example_key
from teachgraph.domains.images import example_image, fingerprint
from teachgraph.domains.scenes import Unanswerable, answer_question, random_scene, render


def _png_digest(scene) -> str:
    return hashlib.sha256(render(scene).tobytes()).hexdigest()


def test_scenes_and_their_pictures_are_the_same_for_a_seed_and_differ_across_seeds():
    first = [random_scene(random.Random(7), n) for n in (1, 3, 6)]
    again = [random_scene(random.Random(7), n) for n in (1, 3, 6)]
    other = [random_scene(random.Random(8), n) for n in (1, 3, 6)]
    assert first == again
    assert [_png_digest(s) for s in first] == [_png_digest(s) for s in again]
    assert [_png_digest(s) for s in first] != [_png_digest(s) for s in other]
    image = render(first[2])
    assert image.mode == "RGB" and image.size == (48, 48)


def test_domain_splits_are_fixed_by_the_seed_disjoint_and_every_answer_follows_from_its_scene():
    domain = get_domain("vqa", seed=0, val_per_subskill=3, test_per_subskill=3)
    val, test = domain.load_split("val"), domain.load_split("test")
    assert len(val) == len(test) == 5 * 3 * 3
    assert {e["id"] for e in val}.isdisjoint({e["id"] for e in test})
    assert [e["id"] for e in val] == [e["id"] for e in get_domain("vqa", seed=0, val_per_subskill=3).load_split("val")]
    assert [e["id"] for e in val] != [e["id"] for e in get_domain("vqa", seed=1, val_per_subskill=3).load_split("val")]
    assert all(domain.verify(e) is None for e in val + test)
    counts = {sub: {len(e["scene"]["objects"]) for e in val if e["subskill"] == sub} for sub in {e["subskill"] for e in val}}
    assert max(counts["1-2 objects"]) <= 2 and min(counts["5-6 objects"]) >= 5
    assert {e["answer"] for e in val if e["skill"] == "exists"} == {"yes", "no"}


def test_generated_examples_are_verified_and_wrong_or_ambiguous_ones_are_named():
    domain = get_domain("vqa")
    made = domain.generate("count", "3-4 objects", None, 10, seed=3)
    assert len(made) == 10 and all(domain.verify(e) is None for e in made)
    assert made == domain.generate("count", "3-4 objects", None, 10, seed=3)
    wrong = dict(made[0], answer=str(int(made[0]["answer"]) + 1))
    assert domain.verify(wrong) == "wrong_answer"
    scene = {"canvas": 48, "objects": [{"shape": "circle", "color": "red", "size": "small", "x": 8, "y": 8},
                                       {"shape": "circle", "color": "blue", "size": "small", "x": 40, "y": 8}]}
    assert answer_question(scene, "is the red circle left of the blue one?") == "yes"
    assert answer_question(scene, "how many circles?") == "2"
    with pytest.raises(Unanswerable):
        answer_question(scene, "what color is the circle?")  # two circles: no single object
    assert domain.verify({"prompt": "what color is the circle?", "answer": "red", "scene": scene}) == "ambiguous_reference"
    assert domain.verify({"prompt": "why is the sky blue?", "answer": "red", "scene": scene}) == "not_answerable"
    assert domain.verify({"prompt": "how many circles?", "answer": "2", "scene": {"objects": [{"shape": "hexagon"}]}}) == "bad_scene"
    assert domain.verify({"prompt": "how many circles?", "answer": "2"}) == "no_scene"


def test_an_llm_item_becomes_an_example_whose_scene_the_renderer_draws():
    from teachgraph.domains.vqa import VQAItem

    domain = get_domain("vqa")
    item = VQAItem(question="How many  squares?", answer="1", image_description="one red square",
                   objects=[{"shape": "square", "color": "red", "size": "large", "x": 24, "y": 24}])
    example = domain.from_generated(item, "count", None)
    assert example["prompt"] == "how many squares?" and example["subskill"] == "1-2 objects"
    assert domain.verify(example) is None
    assert example_image(example).getpixel((24, 24)) == (220, 40, 40)
    assert domain.verify(dict(example, answer="3")) == "wrong_answer"


def test_dedup_keeps_the_same_question_about_another_picture_and_drops_a_repeat(tmp_path):
    domain = get_domain("vqa", val_per_subskill=2, test_per_subskill=2)
    store = DedupStore(str(tmp_path / "chroma"), "hashing", images=True)
    store.add_eval(domain.load_split("val"), "val")
    val0 = domain.load_split("val")[0]
    scenes = [random_scene(random.Random(100 + k), 4) for k in range(3)]
    same_question = [{"prompt": "how many circles?", "answer": answer_question(s, "how many circles?"), "scene": s,
                      "skill": "count"} for s in scenes]
    assert len({example_key(e) for e in same_question}) == 3
    kept, dropped = store.filter(same_question + [dict(same_question[1])] + [dict(val0)], 1, 0.05, 0.05)
    assert [e["scene"] for e in kept] == scenes  # one question, three pictures: three examples
    assert sorted(reason for _, reason in dropped) == ["eval_exact", "exact_duplicate"]
    assert fingerprint(example_image(same_question[0])) != fingerprint(example_image(same_question[1]))


def test_unknown_options_and_skills_fail_before_work():
    with pytest.raises(ValueError, match="domain_options.skills"):
        get_domain("vqa", skills=["colour"])
    with pytest.raises(ValueError, match="unknown subskill"):
        get_domain("vqa").generate("count", "7 objects", None, 3, seed=0)


def test_the_diffusers_image_engine_is_a_clear_error_before_work_without_its_package():
    import importlib.util

    if importlib.util.find_spec("diffusers") is None:
        with pytest.raises(ValueError, match="domain_options.image_engine: 'diffusers' needs the diffusers package"):
            get_domain("vqa", image_engine="diffusers")
    with pytest.raises(ValueError, match="domain_options.image_engine"):
        get_domain("vqa", image_engine="dalle")


def test_stored_images_carry_their_provenance_and_bad_scenes_are_left_to_the_verifier(tmp_path):
    from teachgraph.domains.image_engine import store_images

    examples = get_domain("vqa").generate("shape", None, None, 3, seed=0)
    broken = {"prompt": "how many circles?", "answer": "1", "scene": {"canvas": 48, "objects": [{"shape": "star"}]}}
    assert store_images(examples + [broken], tmp_path) == 3
    for e in examples:
        image = e["provenance"]["image"]
        assert image["engine"] == "procedural-renderer" and image["description"].startswith("a ")
        assert fingerprint(example_image({"image": image["path"]})) == image["phash"]
    assert "provenance" not in broken


def test_served_evaluation_is_refused_for_a_domain_of_images_naming_the_field():
    from teachgraph.graph import make_context

    with pytest.raises(ValueError, match="student_eval_url"):
        make_context({"domain": "vqa", "student_eval_url": "http://127.0.0.1:30001", "finetune": "lora"})
    assert make_context({"domain": "vqa", "domain_options": {"val_per_subskill": 2}}).domain == "vqa"
