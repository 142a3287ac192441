"""teachgraph/domains/synthetic.py: splits, verification, generation and skill inference."""

from __future__ import annotations

from collections import Counter

import pytest

from teachgraph.domains import DIFFICULTIES, SyntheticDomain, example_id, get_domain
from teachgraph.domains.synthetic import SKILLS


@pytest.fixture(scope="module")
def domain() -> SyntheticDomain:
    return SyntheticDomain(seed=0, val_per_subskill=6, test_per_subskill=5)


def test_catalog_has_ten_skills_with_three_subskills(domain):
    catalog = domain.skill_catalog()
    assert len(catalog) == 10
    assert all(len(subs) == 3 for subs in catalog.values())
    assert all(len(set(subs)) == 3 for subs in catalog.values())
    assert set(catalog) == {s.name for s in SKILLS}
    for name in catalog:
        assert domain.describe_skill(name) != name  # a readable description


def test_splits_have_the_configured_size_per_subskill(domain):
    for split, per in (("val", 6), ("test", 5)):
        rows = domain.load_split(split)
        counts = Counter((e["skill"], e["subskill"]) for e in rows)
        assert len(counts) == 30
        assert set(counts.values()) == {per}
        assert len(rows) == 30 * per


def test_splits_are_deterministic_for_a_seed():
    a = SyntheticDomain(seed=3, val_per_subskill=4, test_per_subskill=4)
    b = SyntheticDomain(seed=3, val_per_subskill=4, test_per_subskill=4)
    assert a.load_split("val") == b.load_split("val")
    assert a.load_split("test") == b.load_split("test")
    c = SyntheticDomain(seed=4, val_per_subskill=4, test_per_subskill=4)
    assert [e["prompt"] for e in a.load_split("val")] != [e["prompt"] for e in c.load_split("val")]


def test_splits_are_disjoint_and_without_duplicates(domain):
    val, test = domain.load_split("val"), domain.load_split("test")
    val_ids, test_ids = [e["id"] for e in val], [e["id"] for e in test]
    assert len(set(val_ids)) == len(val_ids)
    assert len(set(test_ids)) == len(test_ids)
    assert not set(val_ids) & set(test_ids)
    assert not {e["prompt"] for e in val} & {e["prompt"] for e in test}


def test_load_split_returns_copies(domain):
    rows = domain.load_split("val")
    rows[0]["answer"] = "tampered"
    assert domain.load_split("val")[0]["answer"] != "tampered"


def test_unknown_split_is_rejected(domain):
    with pytest.raises(ValueError):
        domain.load_split("train")


def test_every_split_example_verifies_and_is_well_formed(domain):
    for split in ("val", "test"):
        for ex in domain.load_split(split):
            assert domain.verify(ex) is None, ex
            assert ex["id"] == example_id(ex["prompt"])
            assert ex["difficulty"] == DIFFICULTIES[domain.skill_catalog()[ex["skill"]].index(ex["subskill"])]
            assert domain.score(ex["answer"], ex)
            assert domain.score(f"  {ex['answer']} ", ex)


def test_verify_rejects_a_wrong_answer(domain):
    for ex in domain.load_split("val")[::7]:
        wrong = dict(ex, answer=ex["answer"] + "9")
        assert domain.verify(wrong) == "wrong_answer"
        assert not domain.score(wrong["answer"], ex)


@pytest.mark.parametrize("prompt", ["multiply 3 4", "", "hello"])
def test_verify_rejects_an_unknown_prompt(domain, prompt):
    assert domain.verify({"prompt": prompt, "answer": "1"}) == "unknown_skill"


def test_verify_rejects_a_malformed_prompt(domain):
    assert domain.verify({"prompt": "succ abc", "answer": "1"}) == "malformed_prompt"
    assert domain.verify({"prompt": "larger 12", "answer": "12"}) == "malformed_prompt"


def test_verify_checks_concrete_answers(domain):
    cases = {"max 4821": "8", "min 4821": "1", "last abcd": "d", "first abcd": "a", "succ 199": "200",
             "pred 100": "99", "larger 12 34": "34", "add 12 3": "51", "parity 123": "odd", "len abcde": "5"}
    for prompt, answer in cases.items():
        assert domain.verify({"prompt": prompt, "answer": answer}) is None, prompt
        assert domain.verify({"prompt": prompt, "answer": answer + "0"}) == "wrong_answer", prompt


@pytest.mark.parametrize("skill", [s.name for s in SKILLS])
def test_generate_gives_n_distinct_correct_examples_of_the_subskill(domain, skill):
    subskill = domain.skill_catalog()[skill][1]
    out = domain.generate(skill, subskill, None, 40, seed=1)
    assert len(out) == 40
    assert len({e["id"] for e in out}) == 40
    for ex in out:
        assert ex["skill"] == skill and ex["subskill"] == subskill
        assert domain.verify(ex) is None


def test_generate_is_deterministic_in_seed(domain):
    a = domain.generate("larger", None, None, 30, seed=5)
    b = domain.generate("larger", None, None, 30, seed=5)
    c = domain.generate("larger", None, None, 30, seed=6)
    assert a == b
    assert [e["prompt"] for e in a] != [e["prompt"] for e in c]


def test_difficulty_chooses_the_subskill_when_subskill_is_none(domain):
    subs = domain.skill_catalog()["successor"]
    for level, difficulty in enumerate(DIFFICULTIES):
        out = domain.generate("successor", None, difficulty, 20, seed=2)
        assert {e["subskill"] for e in out} == {subs[level]}
        assert {e["difficulty"] for e in out} == {difficulty}


def test_without_subskill_or_difficulty_all_subskills_appear(domain):
    out = domain.generate("parity", None, None, 90, seed=0)
    assert set(e["subskill"] for e in out) == set(domain.skill_catalog()["parity"])


def test_subskill_wins_over_difficulty(domain):
    subs = domain.skill_catalog()["length"]
    out = domain.generate("length", subs[0], "hard", 10, seed=0)
    assert {e["subskill"] for e in out} == {subs[0]}


def test_generate_many_distinct_examples(domain):
    out = domain.generate("first_letter", "4 letters", None, 500, seed=0)
    assert len(out) == 500
    assert len({e["prompt"] for e in out}) == 500


def test_infer_skill_recovers_every_validation_label(domain):
    for ex in domain.load_split("val") + domain.load_split("test"):
        assert domain.infer_skill(ex["prompt"]) == (ex["skill"], ex["subskill"])


def test_infer_skill_of_unknown_prompt_is_none(domain):
    assert domain.infer_skill("multiply 2 3") is None
    assert domain.infer_skill("") is None


def test_unknown_skill_raises(domain):
    with pytest.raises(ValueError):
        domain.generate("juggling", None, None, 3, seed=0)
    with pytest.raises(ValueError):
        domain.generate("parity", "9 digits", None, 3, seed=0)
    with pytest.raises(ValueError):
        SyntheticDomain(skills=["parity", "juggling"])


def test_skills_option_restricts_the_domain():
    d = SyntheticDomain(seed=0, val_per_subskill=2, test_per_subskill=2, skills=["parity", "length"])
    assert list(d.skill_catalog()) == ["parity", "length"]
    assert {e["skill"] for e in d.load_split("val")} == {"parity", "length"}
    assert len(d.load_split("val")) == 2 * 3 * 2


def test_get_domain():
    d = get_domain("synthetic", seed=2, val_per_subskill=1, test_per_subskill=1)
    assert isinstance(d, SyntheticDomain) and d.seed == 2
    with pytest.raises(ValueError):
        get_domain("chess")
