"""teachers/discovery.py, teachers/generator.py and environments/observations.py."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from teachgraph.teachers.discovery import ClusterSkillDiscoverer, GoldSkillDiscoverer, kmeans, name_clusters, silhouette
from teachgraph.teachers.generator import ProgramGenerator, request_seed
from teachgraph.environments.observations import errors, errors_by_skill, skill_stats
from teachgraph.domains import SyntheticDomain, stable_hash


@pytest.fixture(scope="module")
def domain() -> SyntheticDomain:
    return SyntheticDomain(seed=0)  # the real validation split: 20 per subskill, 600 prompts


@pytest.fixture(scope="module")
def val(domain):
    return domain.load_split("val")


@pytest.fixture(scope="module")
def minilm_vectors(val):
    from teachgraph.dedup.embeddings import minilm_embed

    return minilm_embed([e["prompt"] for e in val])


# -- skill discovery --------------------------------------------------------------------------

def test_gold_discovery_maps_every_example_to_its_skill(domain, val):
    out = GoldSkillDiscoverer().discover(domain, val, seed=0)
    assert out["method"] == "gold"
    assert out["assignment"] == {e["id"]: e["skill"] for e in val}
    assert len(out["assignment"]) == len(val)
    assert set(out["skills"]) == set(domain.skill_catalog())
    for name, info in out["skills"].items():
        assert info["subskills"] == domain.skill_catalog()[name]
        assert info["n_val"] == 60
        assert 1 <= len(info["exemplars"]) <= 3
        assert all(domain.infer_skill(p)[0] == name for p in info["exemplars"])
        assert info["description"] == domain.describe_skill(name)


def test_cluster_discovery_recovers_the_gold_skills(domain, val, minilm_vectors):
    prompts = [e["prompt"] for e in val]
    lookup = {p: v for p, v in zip(prompts, minilm_vectors)}
    calls = []

    def embed(texts):  # the real MiniLM vectors, computed once for the module
        calls.append(len(texts))
        return np.stack([lookup[t] for t in texts])

    out = ClusterSkillDiscoverer(num_clusters=10, embed=embed).discover(domain, val, seed=0)
    assert calls == [len(val)]
    assert out["method"] == "cluster"
    assert set(out["assignment"]) == {e["id"] for e in val}  # every example assigned
    assert len(out["skills"]) == 10
    assert len(set(out["skills"])) == 10
    assert set(out["assignment"].values()) == set(out["skills"])
    members = defaultdict(Counter)
    for e in val:
        members[out["assignment"][e["id"]]][e["skill"]] += 1
    purity = sum(c.most_common(1)[0][1] for c in members.values()) / len(val)
    assert purity >= 0.8, dict(members)
    for name, info in out["skills"].items():
        assert info["n_val"] == sum(members[name].values())
        assert info["exemplars"] and all(out["assignment"][e["id"]] == name for e in val if e["prompt"] in info["exemplars"])
        # subskills of a cluster come from the domain's own labels of its members
        assert set(info["subskills"]) <= {s for subs in domain.skill_catalog().values() for s in subs}
    assert sum(info["n_val"] for info in out["skills"].values()) == len(val)


def test_cluster_discovery_with_real_minilm_embeddings_end_to_end(domain):
    small = SyntheticDomain(seed=0, val_per_subskill=2, test_per_subskill=1, skills=["parity", "first_letter"])
    examples = small.load_split("val")
    out = ClusterSkillDiscoverer(num_clusters=2).discover(small, examples, seed=0)
    groups = defaultdict(set)
    for e in examples:
        groups[out["assignment"][e["id"]]].add(e["skill"])
    assert sorted(len(v) for v in groups.values()) == [1, 1]  # the two skills are the two clusters


def test_cluster_count_is_chosen_by_silhouette_without_num_clusters(domain, val):
    # four well-separated blobs: the silhouette picks k = 4
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    subset = val[:80]
    points = {e["prompt"]: centres[i % 4] + rng.normal(0, 0.3, 2) for i, e in enumerate(subset)}
    out = ClusterSkillDiscoverer(embed=lambda texts: np.stack([points[t] for t in texts])).discover(domain, subset, seed=0)
    assert len(out["skills"]) == 4
    for i, e in enumerate(subset):
        same_blob = [f for j, f in enumerate(subset) if j % 4 == i % 4]
        assert {out["assignment"][f["id"]] for f in same_blob} == {out["assignment"][e["id"]]}


def test_kmeans_is_deterministic_in_seed(minilm_vectors):
    a = kmeans(minilm_vectors, 10, seed=0)
    b = kmeans(minilm_vectors, 10, seed=0)
    assert np.array_equal(a, b)
    assert a.shape == (len(minilm_vectors),)
    assert set(a.tolist()) <= set(range(10))


def test_kmeans_separates_obvious_clusters():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 0.1, (30, 3)), rng.normal(5, 0.1, (30, 3))])
    labels = kmeans(x, 2, seed=3)
    assert len(set(labels[:30].tolist())) == 1 and len(set(labels[30:].tolist())) == 1
    assert labels[0] != labels[30]
    assert silhouette(x, labels) > 0.9
    assert silhouette(x, np.array([0, 1] * 30)) < 0.1


def test_cluster_names_are_unique_and_descriptive():
    prompts = ["max 1", "max 2", "min 1", "min 2", "max 3"]
    labels = np.array([0, 0, 1, 1, 2])
    names = name_clusters(prompts, labels)
    assert len(set(names.values())) == 3
    assert names[0].startswith("max") and names[1].startswith("min")
    assert names[2] != names[0] and names[2].startswith("max")


# -- the program generator --------------------------------------------------------------------

def test_generator_output_carries_provenance_and_is_deterministic(domain):
    gen = ProgramGenerator(domain)
    request = {"skill": "larger", "subskill": "3 digits", "difficulty": "medium", "count": 25, "exemplars": []}
    out = gen.generate(request, cycle=2, seed=7)
    assert len(out) == 25
    assert len({e["id"] for e in out}) == 25
    for ex in out:
        assert domain.verify(ex) is None
        assert ex["skill"] == "larger" and ex["subskill"] == "3 digits"
        p = ex["provenance"]
        assert {"cycle", "skill", "subskill", "generator", "teacher_model", "prompt_hash", "seed"} <= set(p)
        assert p["cycle"] == 2 and p["skill"] == "larger" and p["subskill"] == "3 digits"
        assert p["generator"] == gen.name and p["teacher_model"] == gen.teacher_model
        assert p["prompt_hash"] == stable_hash(request)
        assert p["seed"] == request_seed(7, 2, request)
    assert gen.generate(dict(request), cycle=2, seed=7) == out
    assert [e["prompt"] for e in gen.generate(request, cycle=2, seed=8)] != [e["prompt"] for e in out]
    assert [e["prompt"] for e in gen.generate(request, cycle=3, seed=7)] != [e["prompt"] for e in out]


def test_request_seed_ignores_position_and_count_but_not_content():
    r = {"skill": "parity", "subskill": None, "difficulty": None, "count": 5, "exemplars": []}
    assert request_seed(0, 1, r) == request_seed(0, 1, dict(r, count=50))
    assert request_seed(0, 1, r) != request_seed(0, 1, dict(r, skill="length"))
    assert request_seed(0, 1, r) != request_seed(1, 1, r)


@pytest.mark.parametrize("count", [1, 10, 37])
def test_generator_counts_match_the_request(domain, count):
    gen = ProgramGenerator(domain)
    for skill in ("parity", "add_reversed", "first_letter"):
        out = gen.generate({"skill": skill, "subskill": None, "difficulty": None, "count": count}, cycle=1, seed=0)
        assert len(out) == count
        assert all(e["skill"] == skill for e in out)


def test_difficulty_is_honoured_when_no_subskill(domain):
    out = ProgramGenerator(domain).generate({"skill": "successor", "subskill": None, "difficulty": "hard",
                                             "count": 12}, cycle=1, seed=0)
    assert {e["subskill"] for e in out} == {domain.skill_catalog()["successor"][2]}


def test_exemplar_requests_produce_examples_of_the_exemplars_skill(domain, val):
    gen = ProgramGenerator(domain)
    for exemplar in val[::97]:
        out = gen.generate({"skill": None, "subskill": None, "difficulty": None, "count": 8,
                            "exemplars": [exemplar["prompt"]]}, cycle=1, seed=0)
        assert len(out) == 8
        for ex in out:
            assert (ex["skill"], ex["subskill"]) == (exemplar["skill"], exemplar["subskill"])
            assert domain.verify(ex) is None
            assert ex["provenance"]["skill"] == exemplar["skill"]
            assert ex["provenance"]["domain_skill"] == exemplar["skill"]


def test_exemplar_counts_are_shared_between_exemplars(domain):
    exemplars = ["max 4821", "len abcdef", "parity 1234567"]
    out = ProgramGenerator(domain).generate({"skill": None, "count": 10, "exemplars": exemplars}, cycle=1, seed=0)
    assert len(out) == 10
    assert Counter(e["skill"] for e in out) == {"max_digit": 4, "length": 3, "parity": 3}


def test_discovered_skill_requests_use_the_skills_exemplars(domain):
    skills = {"max_stuff": {"exemplars": ["max 123456"]}}
    out = ProgramGenerator(domain).generate({"skill": "max_stuff", "count": 6}, cycle=1, seed=0, skills=skills)
    assert len(out) == 6
    assert {(e["skill"], e["subskill"]) for e in out} == {("max_digit", "6 digits")}
    assert {e["provenance"]["skill"] for e in out} == {"max_stuff"}  # provenance keeps the discovered name


def test_requests_the_domain_cannot_serve_give_nothing(domain):
    gen = ProgramGenerator(domain)
    assert gen.generate({"skill": None, "count": 5, "exemplars": ["juggle 3 balls"]}, cycle=1, seed=0) == []
    assert gen.generate({"skill": "unknown_cluster", "count": 5}, cycle=1, seed=0, skills={}) == []


# -- observations -----------------------------------------------------------------------------

RESULTS = [
    {"id": "1", "prompt": "max 12", "answer": "2", "prediction": "2", "correct": True, "skill": "max_digit", "subskill": "easy"},
    {"id": "2", "prompt": "max 34", "answer": "4", "prediction": "3", "correct": False, "skill": "max_digit", "subskill": "easy"},
    {"id": "3", "prompt": "max 5678", "answer": "8", "prediction": "8", "correct": True, "skill": "max_digit", "subskill": "hard"},
    {"id": "4", "prompt": "len ab", "answer": "2", "prediction": "3", "correct": False, "skill": "length", "subskill": "easy"},
    {"id": "5", "prompt": "len abc", "answer": "3", "prediction": "3", "correct": True, "skill": "length"},
]


def test_skill_stats_from_gold_labels():
    stats = skill_stats(RESULTS)
    assert list(stats) == ["length", "max_digit"]
    assert stats["max_digit"]["accuracy"] == pytest.approx(2 / 3) and stats["max_digit"]["n"] == 3
    assert stats["max_digit"]["subskills"] == {"easy": {"accuracy": 0.5, "n": 2}, "hard": {"accuracy": 1.0, "n": 1}}
    assert stats["length"]["accuracy"] == 0.5 and stats["length"]["n"] == 2
    assert stats["length"]["subskills"] == {"easy": {"accuracy": 0.0, "n": 1}}  # no subskill: skill only


def test_skill_stats_from_an_assignment():
    assignment = {"1": "c0", "2": "c1", "3": "c1", "4": "c1"}  # id 5 is not assigned: left out
    stats = skill_stats(RESULTS, assignment)
    assert set(stats) == {"c0", "c1"}
    assert stats["c0"]["accuracy"] == 1.0 and stats["c0"]["n"] == 1
    assert stats["c1"]["accuracy"] == pytest.approx(1 / 3) and stats["c1"]["n"] == 3
    assert stats["c1"]["subskills"]["easy"] == {"accuracy": 0.0, "n": 2}
    assert skill_stats([]) == {}


def test_errors_lists_every_wrong_answer():
    assert errors(RESULTS) == [
        {"question": "max 34", "student_answer": "3", "gold_answer": "4"},
        {"question": "len ab", "student_answer": "3", "gold_answer": "2"},
    ]
    assert errors([r for r in RESULTS if r["correct"]]) == []


def test_errors_by_skill_groups_and_limits():
    many = [dict(RESULTS[1], id=str(i), prompt=f"max {i}") for i in range(10)]
    grouped = errors_by_skill(many + RESULTS, None, per_skill=3)
    assert len(grouped["max_digit"]) == 3
    assert grouped["length"] == [{"question": "len ab", "student_answer": "3", "gold_answer": "2"}]
    by_cluster = errors_by_skill(RESULTS, {"2": "cx"})
    assert by_cluster == {"cx": [{"question": "max 34", "student_answer": "3", "gold_answer": "4"}]}
