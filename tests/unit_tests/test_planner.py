"""environments/: budget splitting, each environment's observation and offline policy, and the offline planner."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from teachgraph.environments import get_environment
from teachgraph.environments.base import split_budget
from teachgraph.environments.no_state import SkillNamesObservation
from teachgraph.environments.open_ended import ErrorsObservation
from teachgraph.environments.skill_list import SkillAccuracyObservation, learnability
from teachgraph.environments.skill_tree import Allocation, SkillTreeObservation
from teachgraph.teachers.planner import OfflinePlanner

SKILLS = ["add_reversed", "first_letter", "larger", "length", "max_digit", "min_digit", "parity", "predecessor",
          "successor", "last_letter"]


def total(plan) -> int:
    return sum(r["count"] for r in plan["requests"])


# -- split_budget -----------------------------------------------------------------------------

def test_split_budget_sums_exactly_and_is_proportional_for_random_weights():
    for seed in range(300):
        rng = random.Random(seed)
        n = rng.randint(1, 25)
        weights = [rng.choice([0.0, rng.random(), rng.random() * 100, rng.randint(1, 5)]) for _ in range(n)]
        budget = rng.choice([1, 7, rng.randint(0, 50), rng.randint(50, 100_000)])
        counts = split_budget(budget, weights)
        assert len(counts) == n
        assert sum(counts) == budget, (seed, weights, budget)
        assert all(isinstance(c, int) and c >= 0 for c in counts)
        w_total = sum(weights)
        if w_total > 0:
            for c, w in zip(counts, weights):
                assert abs(c - budget * w / w_total) < 1.0, (seed, c, w)
        else:
            assert max(counts) - min(counts) <= 1


@pytest.mark.parametrize("budget, weights, expected", [
    (10, [1, 1], [5, 5]),
    (10, [3, 1, 1], [6, 2, 2]),
    (100, [0, 1], [0, 100]),
    (9, [0, 0, 0], [3, 3, 3]),
    (0, [1, 2], [0, 0]),
    (5, [], []),
])
def test_split_budget_exact_cases(budget, weights, expected):
    assert split_budget(budget, weights) == expected


def test_split_budget_gives_the_remainder_to_the_largest_fractions():
    counts = split_budget(10, [9, 7, 4])  # exact 4.5, 3.5, 2.0: one unit goes to a .5 remainder
    assert counts in ([5, 3, 2], [4, 4, 2])
    counts = split_budget(10, [0.46, 0.34, 0.2])  # exact 4.6, 3.4, 2.0
    assert counts == [5, 3, 2]
    counts = split_budget(3, [1, 1, 1, 1])  # ties: every count is 0 or 1
    assert sorted(counts) == [0, 1, 1, 1]


def test_split_budget_is_deterministic():
    w = [random.Random(1).random() for _ in range(12)]
    assert split_budget(1001, w) == split_budget(1001, list(w))


# -- the planner ------------------------------------------------------------------------------

def skill_list_obs(accuracies: dict[str, float]) -> SkillAccuracyObservation:
    return SkillAccuracyObservation(skills={s: {"accuracy": a, "n": 10} for s, a in accuracies.items()},
                                    errors_by_skill={})


def names_obs(names) -> SkillNamesObservation:
    return SkillNamesObservation(skills=list(names))


def errors_obs(errors) -> ErrorsObservation:
    return ErrorsObservation(errors=errors)


def tree_obs(rows) -> SkillTreeObservation:
    return SkillTreeObservation(allocations=[Allocation(*row) for row in rows])


SKILL_LIST, NO_STATE, OPEN_ENDED, SKILL_TREE = (get_environment(n) for n in ("skill-list", "no-state", "open-ended",
                                                                            "skill-tree"))


def test_skill_list_gives_more_data_to_skills_being_learned_and_a_floor_to_every_skill():
    rng = random.Random(3)
    accuracies = {s: round(rng.random(), 3) for s in SKILLS}
    accuracies["parity"] = 1.0
    planner = OfflinePlanner(min_skill_share=0.05)
    for budget in (100, 997, 5000):
        plan = planner.plan(SKILL_LIST, skill_list_obs(accuracies), budget, seed=0)
        counts = {r["skill"]: r["count"] for r in plan["requests"]}
        assert total(plan) == budget == plan["budget"]
        assert set(counts) == set(SKILLS)  # the mastered skill keeps its floor
        assert min(counts.values()) >= int(0.05 * budget)
        assert counts["parity"] == int(0.05 * budget)
        by_weight = sorted(SKILLS, key=lambda s: -learnability(accuracies[s]))
        ordered = [counts[s] for s in by_weight]
        assert ordered == sorted(ordered, reverse=True)
        # among skills past the peak of error x (accuracy + floor), the weaker gets more
        past_peak = sorted((s for s in SKILLS if accuracies[s] >= 0.375), key=lambda s: accuracies[s])
        assert [counts[s] for s in past_peak] == sorted((counts[s] for s in past_peak), reverse=True)
        for r in plan["requests"]:
            assert r["subskill"] is None and r["difficulty"] is None and r["exemplars"] == []


def test_learnability_prefers_a_half_learned_skill_to_a_hopeless_or_mastered_one():
    assert learnability(0.5) > learnability(0.0) > learnability(0.95) > learnability(1.0) == 0.0


def test_skill_list_floor_is_limited_by_the_budget():
    planner = OfflinePlanner(min_skill_share=0.5)  # 10 skills x 50% cannot all be given
    plan = planner.plan(SKILL_LIST, skill_list_obs({s: 0.5 for s in SKILLS}), 105, seed=0)
    assert total(plan) == 105
    counts = [r["count"] for r in plan["requests"]]
    assert len(counts) == 10 and min(counts) >= 10


def test_skill_list_all_mastered_spreads_evenly():
    plan = OfflinePlanner(0.0).plan(SKILL_LIST, skill_list_obs({s: 1.0 for s in SKILLS}), 1000, seed=0)
    assert [r["count"] for r in plan["requests"]] == [100] * 10


def test_no_state_ignores_accuracies_and_is_roughly_uniform():
    planner = OfflinePlanner()
    # the control's observation holds no accuracies at all, whatever the evaluation said
    from teachgraph.environments import EvaluationView
    results = [{"id": str(i), "prompt": "p", "answer": "a", "prediction": "a", "correct": i % 2 == 0,
                "skill": SKILLS[i % 10], "subskill": None} for i in range(40)]
    observed = NO_STATE.observe(EvaluationView(results=results, skills={s: {} for s in SKILLS}))
    assert observed == names_obs(SKILLS)
    a = planner.plan(NO_STATE, observed, 10_000, seed=5)
    c = planner.plan(NO_STATE, names_obs(reversed(SKILLS)), 10_000, seed=5)
    assert a["requests"] == c["requests"]
    assert total(a) == 10_000
    counts = [r["count"] for r in a["requests"]]
    assert len(counts) == 10
    assert min(counts) > 800 and max(counts) < 1200
    other = planner.plan(NO_STATE, names_obs(SKILLS), 10_000, seed=6)
    assert other["requests"] != a["requests"]  # the draw depends on the seed
    assert total(other) == 10_000


def test_open_ended_requests_examples_like_each_error():
    errors = [{"question": f"max {1000 + i}", "student_answer": "0", "gold_answer": "9"} for i in range(7)]
    plan = OfflinePlanner().plan(OPEN_ENDED, errors_obs(errors), 100, seed=0)
    assert total(plan) == 100
    assert [r["exemplars"] for r in plan["requests"]] == [[e["question"]] for e in errors]
    assert all(r["skill"] is None for r in plan["requests"])
    counts = [r["count"] for r in plan["requests"]]
    assert max(counts) - min(counts) <= 1
    # fewer examples than errors: some errors get none, the budget is still spent exactly
    small = OfflinePlanner().plan(OPEN_ENDED, errors_obs(errors), 3, seed=0)
    assert total(small) == 3 and len(small["requests"]) == 3
    assert all(r["count"] > 0 for r in small["requests"])


def test_open_ended_without_errors_plans_nothing():
    plan = OfflinePlanner().plan(OPEN_ENDED, errors_obs([]), 100, seed=0)
    assert plan["requests"] == []


def test_skill_tree_plan_is_proportional_to_allocations():
    rows = [("a", "a1", 100, "easy"), ("a", "a2", 300, "medium"), ("b", "b1", 50, "hard"), ("b", "b2", 50, "easy")]
    for budget in (500, 1000, 333):
        plan = OfflinePlanner().plan(SKILL_TREE, tree_obs(rows), budget, seed=0)
        assert total(plan) == budget
        got = {(r["skill"], r["subskill"]): r for r in plan["requests"]}
        assert set(got) == {(s, sub) for s, sub, _, _ in rows}
        for s, sub, alloc, difficulty in rows:
            assert got[(s, sub)]["difficulty"] == difficulty
            assert abs(got[(s, sub)]["count"] - budget * alloc / 500) < 1
    plan = OfflinePlanner().plan(SKILL_TREE, tree_obs(rows), 1000, seed=0)
    assert [r["count"] for r in plan["requests"]] == [200, 600, 100, 100]


def test_unknown_environment_is_rejected():
    with pytest.raises(ValueError, match="skill-forest.*allowed"):
        get_environment("skill-forest")


@pytest.mark.parametrize("seed", range(20))
def test_every_environment_spends_exactly_the_budget(seed):
    rng = random.Random(seed)
    budget = rng.randint(1, 3000)
    names = rng.sample(SKILLS, rng.randint(1, 10))
    planner = OfflinePlanner(min_skill_share=rng.choice([0.0, 0.03, 0.2]))
    observations = {
        SKILL_LIST: skill_list_obs({s: rng.random() for s in names}),
        NO_STATE: names_obs(names),
        OPEN_ENDED: errors_obs([{"question": f"succ {rng.randint(100, 999)}"} for _ in range(rng.randint(1, 40))]),
        SKILL_TREE: tree_obs([(s, "sub", rng.randint(1, 500), "easy") for s in names]),
    }
    for env, obs in observations.items():
        plan = planner.plan(env, obs, budget, seed)
        assert total(plan) == budget, env
        assert all(r["count"] > 0 for r in plan["requests"]), env
        assert plan == planner.plan(env, obs, budget, seed)  # deterministic
        assert isinstance(plan["notes"], str) and plan["notes"]
        assert Counter(tuple(sorted(r)) for r in plan["requests"]).keys() <= {
            ("count", "difficulty", "exemplars", "skill", "subskill")}
