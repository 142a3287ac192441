"""environments/skill_forest.py and teachers/organizer.py: the skill forest, its actions and the organizer policies."""

from __future__ import annotations

import copy

import pytest

from teachgraph.environments import skill_forest
from teachgraph.teachers.organizer import (HandwrittenOrganizer, balanced_allocations, error_weighted_allocations, learning_progress,
                              learning_progress_allocations)
from teachgraph.environments.skill_forest import InvalidAction, allocations, apply_action, new_forest, observe, record_planned, sync_skills

CAPS = dict(subskill_cap=500, skill_cap=1200, max_subskills=3)


def act(forest, skill, action, cycle=0, **caps):
    return apply_action(forest, skill, action, cycle, **{**CAPS, **caps})


def subs(forest, skill):
    return {name: s["allocation"] for name, s in forest["skills"][skill]["subskills"].items()}


def test_new_forest_and_sync():
    forest = new_forest(["a", "b"])
    assert set(forest["skills"]) == {"a", "b"}
    assert forest["skills"]["a"] == {"accuracy": None, "subskills": {}, "history": []}
    forest = act(forest, "a", {"type": "explore", "subskills": ["x"], "allocation": 10})
    synced = sync_skills(forest, ["a", "c"])
    assert list(synced["skills"]) == ["a", "c"]
    assert subs(synced, "a") == {"x": 10}  # kept tree keeps its subskills
    assert synced["skills"]["c"]["subskills"] == {}
    assert "b" in forest["skills"]  # the input is not modified


def test_explore_adds_subskills_with_clamped_allocation():
    forest = new_forest(["a"])
    out = act(forest, "a", {"type": "explore", "subskills": ["x", "y"], "allocation": 10_000})
    assert subs(out, "a") == {"x": 500, "y": 500}
    for sub in out["skills"]["a"]["subskills"].values():
        assert sub == {"allocation": 500, "accuracy": None, "n_val": 0, "data_total": 0}
    out = act(out, "a", {"type": "explore", "subskills": ["x", "z"], "allocation": -5})
    assert subs(out, "a") == {"x": 500, "y": 500, "z": 0}  # only the new one is added, clamped at 0
    assert forest["skills"]["a"]["subskills"] == {}  # the input is untouched
    out = act(out, "a", {"type": "exploit", "allocations": {"z": "12.6"}})
    assert subs(out, "a")["z"] == 13


def test_explore_records_history_with_accuracy_before():
    forest = new_forest(["a"])
    forest["skills"]["a"]["accuracy"] = 0.25
    out = act(forest, "a", {"type": "explore", "subskills": ["x"], "allocation": 5}, cycle=3)
    (entry,) = out["skills"]["a"]["history"]
    assert entry["cycle"] == 3 and entry["accuracy_before"] == 0.25
    assert entry["accuracy_after"] is None and entry["reward"] is None
    assert entry["action"]["type"] == "explore"


def test_exploit_changes_and_clamps_allocations():
    forest = act(new_forest(["a"]), "a", {"type": "explore", "subskills": ["x", "y", "z"], "allocation": 100})
    out = act(forest, "a", {"type": "exploit", "allocations": {"x": 250, "y": -40, "z": 9999}})
    assert subs(out, "a") == {"x": 250, "y": 0, "z": 500}
    assert allocations(out) == [("a", "x", 250), ("a", "z", 500)]  # a zero allocation prunes
    # subskills the action does not name keep their allocation
    out2 = act(out, "a", {"type": "exploit", "allocations": {"y": 30}})
    assert subs(out2, "a") == {"x": 250, "y": 30, "z": 500}


def test_skill_total_is_scaled_down_to_skill_cap():
    forest = act(new_forest(["a"]), "a", {"type": "explore", "subskills": ["x", "y", "z"], "allocation": 100})
    out = act(forest, "a", {"type": "exploit", "allocations": {"x": 800, "y": 400, "z": 200}},
              subskill_cap=1000, skill_cap=700)
    got = subs(out, "a")
    assert sum(got.values()) <= 700
    assert sum(got.values()) >= 700 - 3  # rounding down loses at most one per subskill
    assert got["x"] == pytest.approx(2 * got["y"], abs=1) and got["y"] == pytest.approx(2 * got["z"], abs=1)
    # explore is capped the same way
    out = act(new_forest(["a"]), "a", {"type": "explore", "subskills": ["x", "y", "z"], "allocation": 500},
              skill_cap=600)
    assert subs(out, "a") == {"x": 200, "y": 200, "z": 200}


def test_under_the_cap_nothing_is_scaled():
    forest = act(new_forest(["a"]), "a", {"type": "explore", "subskills": ["x", "y"], "allocation": 300})
    assert subs(forest, "a") == {"x": 300, "y": 300}


@pytest.mark.parametrize("skill, action", [
    ("nope", {"type": "exploit", "allocations": {}}),
    ("a", {"type": "exploit", "allocations": {"ghost": 5}}),
    ("a", {"type": "prune", "subskills": ["x"]}),
    ("a", {"subskills": ["w"]}),
    ("a", {"type": "explore", "subskills": ["x"], "allocation": 5}),           # adds nothing new
    ("a", {"type": "explore", "subskills": ["u", "v"], "allocation": 5}),      # 2 + 2 > 3
    ("a", {"type": "exploit", "allocations": {"x": "lots"}}),
    ("a", {"type": "explore", "subskills": ["u"], "allocation": None}),
])
def test_invalid_actions_raise(skill, action):
    forest = act(new_forest(["a"]), "a", {"type": "explore", "subskills": ["x", "y"], "allocation": 10})
    before = copy.deepcopy(forest)
    with pytest.raises(InvalidAction):
        act(forest, skill, action)
    assert forest == before


def test_explore_up_to_max_subskills_is_allowed_and_past_it_is_not():
    forest = act(new_forest(["a"]), "a", {"type": "explore", "subskills": ["x", "y", "z"], "allocation": 1})
    assert len(forest["skills"]["a"]["subskills"]) == 3
    with pytest.raises(InvalidAction):
        act(forest, "a", {"type": "explore", "subskills": ["w"], "allocation": 1})
    with pytest.raises(InvalidAction):
        act(new_forest(["a"]), "a", {"type": "explore", "subskills": ["x", "y"], "allocation": 1}, max_subskills=1)


def test_observe_writes_accuracies_and_settles_the_reward():
    forest = act(new_forest(["a", "b"]), "a", {"type": "explore", "subskills": ["x", "y"], "allocation": 10})
    stats0 = {"a": {"accuracy": 0.4, "n": 10, "subskills": {"x": {"accuracy": 0.6, "n": 5}, "y": {"accuracy": 0.2, "n": 5}}}}
    forest = observe(forest, stats0, cycle=0)
    tree = forest["skills"]["a"]
    assert tree["accuracy"] == 0.4
    assert tree["subskills"]["x"]["accuracy"] == 0.6 and tree["subskills"]["x"]["n_val"] == 5
    assert tree["subskills"]["y"]["accuracy"] == 0.2
    # the explore was taken before any accuracy: no reward can be settled
    assert tree["history"][-1]["reward"] is None
    assert forest["skills"]["b"]["accuracy"] is None  # no stats for b: untouched

    forest = act(forest, "a", {"type": "exploit", "allocations": {"x": 5}}, cycle=1)
    assert forest["skills"]["a"]["history"][-1]["accuracy_before"] == 0.4
    same_cycle = observe(forest, {"a": {"accuracy": 0.9, "subskills": {}}}, cycle=1)
    assert same_cycle["skills"]["a"]["history"][-1]["reward"] is None  # not settled in its own cycle

    stats2 = {"a": {"accuracy": 0.7, "n": 10, "subskills": {"x": {"accuracy": 0.8, "n": 5}}}}
    after = observe(forest, stats2, cycle=2)
    last = after["skills"]["a"]["history"][-1]
    assert last["accuracy_after"] == 0.7
    assert last["reward"] == pytest.approx(0.7 - 0.4)
    assert after["skills"]["a"]["subskills"]["y"]["accuracy"] == 0.2  # no new stats for y: kept
    # a settled reward is not changed by later observations
    later = observe(after, {"a": {"accuracy": 0.1, "subskills": {}}}, cycle=3)
    assert later["skills"]["a"]["history"][-1]["reward"] == pytest.approx(0.3)
    assert forest["skills"]["a"]["history"][-1]["reward"] is None  # input untouched


def test_negative_reward():
    forest = new_forest(["a"])
    forest = observe(forest, {"a": {"accuracy": 0.5, "subskills": {}}}, cycle=0)
    forest = act(forest, "a", {"type": "explore", "subskills": ["x"], "allocation": 3}, cycle=0)
    forest = observe(forest, {"a": {"accuracy": 0.3, "subskills": {}}}, cycle=1)
    assert forest["skills"]["a"]["history"][-1]["reward"] == pytest.approx(-0.2)


def test_record_planned_adds_counts():
    forest = act(new_forest(["a", "b"]), "a", {"type": "explore", "subskills": ["x", "y"], "allocation": 10})
    requests = [{"skill": "a", "subskill": "x", "count": 30}, {"skill": "a", "subskill": "x", "count": 5},
                {"skill": "a", "subskill": "y", "count": 7}, {"skill": "b", "subskill": "x", "count": 99},
                {"skill": "zzz", "subskill": "x", "count": 1}, {"skill": None, "subskill": None, "count": 4}]
    out = record_planned(forest, requests)
    assert out["skills"]["a"]["subskills"]["x"]["data_total"] == 35
    assert out["skills"]["a"]["subskills"]["y"]["data_total"] == 7
    out = record_planned(out, [{"skill": "a", "subskill": "y", "count": 3}])
    assert out["skills"]["a"]["subskills"]["y"]["data_total"] == 10
    assert forest["skills"]["a"]["subskills"]["x"]["data_total"] == 0


# -- the organizer ----------------------------------------------------------------------------

CANDIDATES = {"a": ["a1", "a2", "a3"], "b": ["b1", "b2", "b3"]}


def organize(org, forest, cycle, candidates=CANDIDATES, subskill_cap=1000, skill_cap=3000):
    return org.organize(forest, candidates, cycle, subskill_cap, skill_cap)


def test_error_weighted_explores_to_fill_then_favours_errors():
    org = HandwrittenOrganizer("error-weighted", unit=200, max_subskills=3)
    forest, actions, invalid = organize(org, new_forest(["a", "b"]), 0)
    assert invalid == 0
    assert [a["type"] for a in actions] == ["explore", "explore"]
    assert subs(forest, "a") == {"a1": 220, "a2": 220, "a3": 220}  # no accuracy yet: error 1, 1.1 units
    stats = {"a": {"accuracy": 0.5, "subskills": {"a1": {"accuracy": 1.0, "n": 4}, "a2": {"accuracy": 0.5, "n": 4},
                                                  "a3": {"accuracy": 0.0, "n": 4}}},
             "b": {"accuracy": 0.25, "subskills": {"b1": {"accuracy": 0.25, "n": 4}}}}
    forest = observe(forest, stats, 1)
    forest, actions, invalid = organize(org, forest, 1)
    assert invalid == 0 and [a["type"] for a in actions] == ["exploit", "exploit"]
    a = subs(forest, "a")
    assert a["a3"] > a["a2"] > a["a1"] > 0  # mastered subskills keep a little data
    assert a == error_weighted_allocations(forest["skills"]["a"], 200)
    b = subs(forest, "b")
    # subskills without their own accuracy fall back on the skill's
    assert b["b1"] == b["b2"] == b["b3"]


def test_error_weighted_stays_the_default_policy_and_learning_progress_is_selectable():
    # learning-progress did not beat error-weighted on mean gain over 3 seeds at budget 2000
    # (18.6 vs 19.0 points), so the default stays; see benchmarks/README.md.
    from teachgraph.graph.context import TeachContext, make_context

    assert TeachContext().organizer_policy == "error-weighted"
    assert HandwrittenOrganizer().policy == "error-weighted"
    assert make_context(organizer_policy="learning-progress").organizer_policy == "learning-progress"


@pytest.mark.parametrize("policy", ["learning-progress", "error-weighted", "fill-balanced"])
def test_explore_allocates_by_the_skills_error(policy):
    org = HandwrittenOrganizer(policy, unit=200, max_subskills=3)
    forest = observe(new_forest(["a", "b", "c"]), {"a": {"accuracy": 1.0, "subskills": {}},
                                                   "b": {"accuracy": 0.0, "subskills": {}},
                                                   "c": {"accuracy": 0.5, "subskills": {}}}, 0)
    forest, actions, invalid = organize(org, forest, 0, candidates={s: [s + "1", s + "2"] for s in "abc"})
    assert invalid == 0 and [a["type"] for a in actions] == ["explore"] * 3
    a, b, c = (subs(forest, s) for s in "abc")
    assert a == {"a1": 20, "a2": 20}  # mastered: a tenth of a unit
    assert b == {"b1": 220, "b2": 220} and c == {"c1": 120, "c2": 120}
    assert forest["skills"]["b"]["history"][-1]["allocated"] == 440


def test_uniform_explore_gives_every_new_subskill_a_full_unit_and_by_error_is_the_default():
    from teachgraph.graph.context import TeachContext

    assert TeachContext().organizer_explore == "by-error" and HandwrittenOrganizer().explore == "by-error"
    org = HandwrittenOrganizer("error-weighted", unit=200, max_subskills=3, explore="uniform")
    forest = observe(new_forest(["a", "b"]), {"a": {"accuracy": 1.0, "subskills": {}},
                                              "b": {"accuracy": 0.0, "subskills": {}}}, 0)
    forest, actions, _ = organize(org, forest, 0)
    assert subs(forest, "a") == {"a1": 200, "a2": 200, "a3": 200}
    assert subs(forest, "b") == {"b1": 200, "b2": 200, "b3": 200}


def _settled(rewards_and_allocated, accuracy=0.5, unit=100):
    """One skill with two subskills at `accuracy`, whose past actions got these (reward, allocated)."""
    return {"accuracy": accuracy,
            "subskills": {n: {"allocation": unit, "accuracy": accuracy, "n_val": 20, "data_total": 0} for n in "xy"},
            "history": [{"cycle": i, "action": {}, "accuracy_before": 0.0, "accuracy_after": 0.0, "reward": r,
                         "allocated": spent} for i, (r, spent) in enumerate(rewards_and_allocated)]}


def test_learning_progress_is_gain_per_nominal_allocation():
    assert learning_progress(_settled([]), 100) is None
    assert learning_progress(_settled([(0.2, 200)]), 100) == pytest.approx(0.2)      # nominal: 2 subskills x 100
    assert learning_progress(_settled([(0.2, 400)]), 100) == pytest.approx(0.1)      # twice the data, half the rate
    assert learning_progress(_settled([(0.2, 10)]), 100) == pytest.approx(0.4)       # a trickle counts as half
    assert learning_progress(_settled([(-0.3, 200)]), 100) == 0.0                    # forgetting is no progress
    assert learning_progress(_settled([(0.9, 200), (0.0, 200), (0.2, 200)]), 100) == pytest.approx(0.1)  # last two
    pending = _settled([(0.2, 200)])
    pending["history"].append({"cycle": 9, "action": {}, "accuracy_before": 0.5, "accuracy_after": None,
                               "reward": None, "allocated": 200})
    assert learning_progress(pending, 100) == pytest.approx(0.2)  # an unsettled action is not counted


def test_learning_progress_allocations_favour_skills_being_learned():
    fast = learning_progress_allocations(_settled([(0.3, 200)]), 100)
    stalled = learning_progress_allocations(_settled([(0.0, 200)]), 100)
    fresh = learning_progress_allocations(_settled([]), 100)
    assert fast == fresh == {"x": 72, "y": 72}  # 100 x (0.1 + 0.5 x (0.25 + 1))
    assert stalled == {"x": 22, "y": 22}  # 100 x (0.1 + 0.5 x 0.25): still explored
    mastered = learning_progress_allocations(_settled([(0.3, 200)], accuracy=1.0), 100)
    assert mastered == {"x": 10, "y": 10}
    tree = _settled([(0.1, 200)])
    tree["subskills"]["y"]["accuracy"] = 0.0
    uneven = learning_progress_allocations(tree, 100)
    assert uneven["y"] > uneven["x"]  # within a skill: by each subskill's error


def test_learning_progress_policy_exploits_after_exploring():
    org = HandwrittenOrganizer("learning-progress", unit=100, max_subskills=2)
    forest = observe(new_forest(["a", "b"]), {"a": {"accuracy": 0.0, "subskills": {}},
                                              "b": {"accuracy": 0.0, "subskills": {}}}, 0)
    candidates = {"a": ["a1", "a2"], "b": ["b1", "b2"]}
    forest, _, _ = organize(org, forest, 0, candidates=candidates)
    stats = {"a": {"accuracy": 0.4, "subskills": {"a1": {"accuracy": 0.4, "n": 20}, "a2": {"accuracy": 0.4, "n": 20}}},
             "b": {"accuracy": 0.0, "subskills": {"b1": {"accuracy": 0.0, "n": 20}, "b2": {"accuracy": 0.0, "n": 20}}}}
    forest = observe(forest, stats, 1)
    forest, actions, invalid = organize(org, forest, 1, candidates=candidates)
    assert invalid == 0 and [a["type"] for a in actions] == ["exploit", "exploit"]
    a, b = subs(forest, "a"), subs(forest, "b")
    assert a["a1"] > b["b1"]  # a learned from its data, b did not: a gets more despite its smaller error
    assert b["b1"] > 0


def test_organizer_never_proposes_more_subskills_than_allowed():
    org = HandwrittenOrganizer("error-weighted", unit=50, max_subskills=2)
    forest, actions, invalid = organize(org, new_forest(["a"]), 0, candidates={"a": ["a1", "a2", "a3", "a4"]})
    assert invalid == 0
    assert list(subs(forest, "a")) == ["a1", "a2"]
    forest, actions, invalid = organize(org, forest, 1, candidates={"a": ["a1", "a2", "a3", "a4"]})
    assert invalid == 0 and actions[0]["type"] == "exploit"
    assert list(subs(forest, "a")) == ["a1", "a2"]


def test_fill_balanced_equalises_data_total():
    org = HandwrittenOrganizer("fill-balanced", unit=100, max_subskills=3)
    forest, actions, _ = organize(org, new_forest(["a"]), 0, candidates={"a": ["x", "y", "z"]})
    assert actions[0]["type"] == "explore"
    forest = record_planned(forest, [{"skill": "a", "subskill": "x", "count": 400},
                                     {"skill": "a", "subskill": "y", "count": 150},
                                     {"skill": "a", "subskill": "z", "count": 50}])
    forest, actions, invalid = organize(org, forest, 1, candidates={"a": ["x", "y", "z"]})
    assert invalid == 0 and actions[0]["type"] == "exploit"
    got = subs(forest, "a")
    assert got["z"] > got["y"] > got["x"]
    totals = {n: s["data_total"] + s["allocation"] for n, s in forest["skills"]["a"]["subskills"].items()}
    # every subskill below the target is brought to the same total; the new data adds up to ~unit each
    assert totals["y"] == totals["z"]
    assert got["x"] == 0 and totals["x"] >= totals["z"]  # already above the target: no new data
    assert sum(got.values()) >= 3 * 100 - 3
    assert got == balanced_allocations(forest["skills"]["a"], 100)


def test_balanced_allocations_when_everything_is_equal():
    tree = {"subskills": {n: {"allocation": 0, "data_total": 70, "accuracy": None} for n in "pqr"}}
    assert balanced_allocations(tree, 40) == {"p": 40, "q": 40, "r": 40}


def test_alternating_explores_one_subskill_at_a_time_then_exploits():
    org = HandwrittenOrganizer("alternating", unit=100, max_subskills=3)
    forest = new_forest(["a"])
    kinds, sizes = [], []
    for cycle in range(7):
        forest = observe(forest, {"a": {"accuracy": 0.1 * cycle, "subskills": {}}}, cycle)
        forest, actions, invalid = organize(org, forest, cycle, candidates={"a": ["x", "y", "z"]})
        assert invalid == 0
        kinds.append(actions[0]["type"])
        if actions[0]["type"] == "explore":
            assert len(actions[0]["subskills"]) == 1
        sizes.append(len(forest["skills"]["a"]["subskills"]))
    assert kinds == ["explore", "exploit", "explore", "exploit", "explore", "exploit", "exploit"]
    assert sizes == [1, 1, 2, 2, 3, 3, 3]
    assert list(subs(forest, "a")) == ["x", "y", "z"]
    # every action but the latest was rewarded with the accuracy change by the next cycle (+0.1 each)
    history = forest["skills"]["a"]["history"]
    assert [h["reward"] for h in history[:-1]] == pytest.approx([0.1] * 6)
    assert history[-1]["reward"] is None


def test_invalid_proposal_is_replaced_and_counted(monkeypatch):
    org = HandwrittenOrganizer("error-weighted", unit=100, max_subskills=3)
    forest, _, _ = organize(org, new_forest(["a", "b"]), 0)
    forest = act(forest, "a", {"type": "exploit", "allocations": {"a1": 10, "a2": 20, "a3": 30}}, cycle=0,
                 subskill_cap=1000, skill_cap=3000)
    before = subs(forest, "a")
    real_decide = org.decide

    def decide(skill, tree, candidates, cycle):
        if skill == "a":
            return {"type": "explore", "subskills": ["a4", "a5"], "allocation": 100}  # past max_subskills
        return real_decide(skill, tree, candidates, cycle)

    monkeypatch.setattr(org, "decide", decide)
    new, actions, invalid = organize(org, forest, 1)
    assert invalid == 1
    assert actions[0] == {"skill": "a", "type": "exploit", "allocations": before}
    assert subs(new, "a") == before  # the replacement keeps the allocations as they are
    assert new["skills"]["a"]["history"][-1]["action"]["type"] == "exploit"
    assert actions[1]["skill"] == "b" and actions[1]["type"] == "exploit"


def test_several_invalid_proposals_are_all_counted(monkeypatch):
    org = HandwrittenOrganizer("fill-balanced", unit=100, max_subskills=3)
    monkeypatch.setattr(org, "decide", lambda *a: {"type": "mystery"})
    forest, actions, invalid = organize(org, new_forest(["a", "b", "c"]), 0)
    assert invalid == 3
    assert all(a["type"] == "exploit" for a in actions)
    assert allocations(forest) == []


@pytest.mark.parametrize("skill, action, problem", [
    ("zzz", {"type": "explore", "subskills": ["x"], "allocation": 5}, "unknown skill 'zzz'"),
    ("a", {"type": "exploit", "allocations": {"nope": 5}}, "unknown subskills \\['nope'\\]"),
    ("a", {"type": "grow"}, "must be 'explore' or 'exploit'"),
    ("a", {"type": "explore", "subskills": ["x"], "allocation": "lots"}, "must be a number"),
])
def test_an_invalid_action_is_a_value_error_naming_the_problem_and_changes_nothing(skill, action, problem):
    forest = new_forest(["a"])
    before = copy.deepcopy(forest)
    with pytest.raises(ValueError, match=problem):
        apply_action(forest, skill, action, cycle=0, subskill_cap=100, skill_cap=200, max_subskills=3)
    assert forest == before


def _focus_cycle(org, forest, cycle, accuracies):
    """One organize step after an evaluation that gave these skill accuracies."""
    forest = observe(forest, {s: {"accuracy": a, "subskills": {}} for s, a in accuracies.items()}, cycle)
    forest, actions, invalid = organize(org, forest, cycle, candidates={s: [s + "1"] for s in accuracies})
    assert invalid == 0
    return forest, {a["skill"]: a for a in actions}


def _skill_allocation(forest, skill):
    return sum(subs(forest, skill).values())


def test_focus_spreads_the_first_cycle_then_focuses_two_skills_by_what_they_gained():
    from teachgraph.teachers.organizer import focus_skills

    org = HandwrittenOrganizer("focus", unit=200, max_subskills=1, focus=2)
    forest = new_forest(["known", "quick", "slow", "stuck"])
    forest, actions = _focus_cycle(org, forest, 0, {"known": 1.0, "quick": 0.0, "slow": 0.0, "stuck": 0.1})
    # nothing is known of what data buys: every skill its error-weighted share, none focused
    assert not any(a["focus"] for a in actions.values())
    assert [_skill_allocation(forest, s) for s in ("known", "quick", "slow", "stuck")] == [20, 220, 220, 200]
    forest, actions = _focus_cycle(org, forest, 1, {"known": 1.0, "quick": 0.3, "slow": 0.0, "stuck": 0.1})
    # quick gained most; slow and stuck gained nothing, and slow has more error
    assert focus_skills(forest, 2) == ["quick", "slow"]
    assert {s for s, a in actions.items() if a["focus"]} == {"quick", "slow"}
    assert _skill_allocation(forest, "quick") == 160 and _skill_allocation(forest, "slow") == 220
    assert _skill_allocation(forest, "stuck") == _skill_allocation(forest, "known") == 20  # a tenth of a unit


def test_focus_keeps_a_skill_until_it_is_learned_or_stalls():
    org = HandwrittenOrganizer("focus", unit=200, max_subskills=1, focus=1)
    forest = new_forest(["a", "b", "c"])
    forest, _ = _focus_cycle(org, forest, 0, {"a": 0.0, "b": 0.0, "c": 0.0})
    forest, actions = _focus_cycle(org, forest, 1, {"a": 0.0, "b": 0.0, "c": 0.0})
    assert [s for s, a in actions.items() if a["focus"]] == ["a"]  # a tie: by name
    # one focused cycle without progress is within its patience (2): a stays
    forest, actions = _focus_cycle(org, forest, 2, {"a": 0.02, "b": 0.0, "c": 0.0})
    assert [s for s, a in actions.items() if a["focus"]] == ["a"]
    # two focused cycles without gaining 0.05 over where its focus began: stalled, b takes its place
    forest, actions = _focus_cycle(org, forest, 3, {"a": 0.04, "b": 0.0, "c": 0.0})
    assert [s for s, a in actions.items() if a["focus"]] == ["b"]
    # b progresses, so it is kept past its patience
    forest, _ = _focus_cycle(org, forest, 4, {"a": 0.04, "b": 0.2, "c": 0.0})
    forest, actions = _focus_cycle(org, forest, 5, {"a": 0.04, "b": 0.5, "c": 0.0})
    assert [s for s, a in actions.items() if a["focus"]] == ["b"]
    # learned (>= 0.9): c, never focused, comes before a, which stalled
    forest, actions = _focus_cycle(org, forest, 6, {"a": 0.04, "b": 0.95, "c": 0.0})
    assert [s for s, a in actions.items() if a["focus"]] == ["c"]
    assert _skill_allocation(forest, "b") == 20  # learned, so not focused: a tenth of a unit


def test_focus_is_selectable_and_its_width_is_a_checked_field():
    from teachgraph.graph.context import make_context

    assert make_context(organizer_policy="focus", focus_skills=3).focus_skills == 3
    with pytest.raises(ValueError, match="focus_skills"):
        make_context(focus_skills=0)
