"""Offline skill-tree organizers: DataEnvGym's handwritten action policies, one for all domains.

Each policy looks at one skill's tree and the subskills the proposer can still add, and returns an
action (see `teachgraph.environments.skill_forest`). The organizer applies the actions, replacing an invalid one by
an exploit that keeps the allocations as they are (and counting it).
"""

from __future__ import annotations

from typing import Any

from teachgraph.environments import skill_forest

def _error(sub: dict[str, Any], tree: dict[str, Any]) -> float:
    accuracy = sub.get("accuracy")
    if accuracy is None:  # no validation examples for this subskill: fall back on the skill's accuracy
        accuracy = tree.get("accuracy") or 0.0
    return 1.0 - accuracy


def stall_factor(tree: dict[str, Any], min_gain: float = 0.02) -> float:
    """Halve a skill's data for each of its last two actions that did not raise its accuracy by
    min_gain: the rewards of the skill-tree environment steer data away from skills the student
    is not learning (yet), towards the ones it is."""
    rewards = [h["reward"] for h in tree["history"] if h.get("reward") is not None][-2:]
    return 0.5 ** sum(1 for r in rewards if r < min_gain)


def error_weighted_allocations(tree: dict[str, Any], unit: int) -> dict[str, int]:
    """More data where the student fails: unit x error (x the stall factor), with a tenth of a
    unit to keep what is mastered."""
    factor = stall_factor(tree)
    return {name: max(1, round(unit * (0.1 + factor * _error(sub, tree))))
            for name, sub in tree["subskills"].items()}


def learning_progress(tree: dict[str, Any], unit: int, window: int = 2) -> float | None:
    """The accuracy a skill gained per nominal allocation (`unit` per subskill) over its last `window`
    settled actions, or None before any action is settled. Losses count as no progress; the data a
    reward was bought with is floored at half the nominal allocation, so a skill kept on a trickle of
    data cannot look fast from one noisy evaluation."""
    nominal = unit * max(1, len(tree["subskills"]))
    rates = []
    for h in [h for h in tree["history"] if h.get("reward") is not None][-window:]:
        spent = h.get("allocated")
        share = max(0.5, spent / nominal) if spent is not None else 1.0
        rates.append(max(0.0, h["reward"]) / share)
    return sum(rates) / len(rates) if rates else None


def learning_progress_allocations(tree: dict[str, Any], unit: int, explore: float = 0.25,
                                  full_speed: float = 0.2) -> dict[str, int]:
    """More data where the last data paid off: unit x (0.1 + error x (explore + progress)), where
    progress is the skill's learning progress relative to `full_speed` (accuracy gained per nominal
    allocation), capped at 1. A skill the student is not learning keeps `explore` of an error-weighted
    share, so it is tried again; one it is learning fast gets up to (1 + explore) / explore times more;
    a mastered subskill keeps a tenth of a unit."""
    progress = learning_progress(tree, unit)
    speed = 1.0 if progress is None else min(1.0, progress / full_speed)
    return {name: max(1, round(unit * (0.1 + _error(sub, tree) * (explore + speed))))
            for name, sub in tree["subskills"].items()}


def balanced_allocations(tree: dict[str, Any], unit: int) -> dict[str, int]:
    """Equalise the data each subskill has received so far, adding about `unit` per subskill."""
    subs = tree["subskills"]
    target = (sum(s["data_total"] for s in subs.values()) + unit * len(subs)) / max(1, len(subs))
    return {name: max(0, round(target - s["data_total"])) for name, s in subs.items()}


def focus_run(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """The skill's latest actions that focused it, oldest first (empty when its last action did not)."""
    run: list[dict[str, Any]] = []
    for h in reversed(tree["history"]):
        if not h["action"].get("focus"):
            break
        run.insert(0, h)
    return run


def focus_skills(forest: dict[str, Any], k: int, patience: int = 2, min_gain: float = 0.05,
                 learned: float = 0.9) -> list[str] | None:
    """The k skills to focus the next cycle's data on, or None in the first cycle (nothing is known yet of
    what the data buys: every skill gets its error-weighted share, and the next evaluation shows which ones
    respond). Few at a time, because this student learns a skill in a jump once it has seen enough of it
    in a short time; spreading the same data over every weak skill keeps each below that point. A focused
    skill stays until it is learned (accuracy >= learned) or it has stalled: `patience` focused cycles
    without gaining min_gain over its accuracy when its focus began. Free places go to the unlearned
    skills that gained most since the first cycle (then: most error) and have not stalled; a stalled skill
    is focused again only when no other is left."""
    trees = forest["skills"]
    if not any(h.get("reward") is not None for t in trees.values() for h in t["history"]):
        return None
    accuracy = {skill: tree.get("accuracy") or 0.0 for skill, tree in trees.items()}
    fresh, stalled, kept = [], [], []
    for skill, tree in trees.items():
        if accuracy[skill] >= learned:
            continue
        run = focus_run(tree)
        began = run[0]["accuracy_before"] if run and run[0].get("accuracy_before") is not None else accuracy[skill]
        if run and (len(run) < patience or accuracy[skill] >= began + min_gain):
            kept.append(skill)
        elif any(h["action"].get("focus") for h in tree["history"]):
            stalled.append(skill)
        else:
            fresh.append(skill)

    def gained(skill: str) -> float:
        first = next((h["accuracy_before"] for h in trees[skill]["history"] if h.get("accuracy_before") is not None),
                     accuracy[skill])
        return accuracy[skill] - first

    def order(skill: str) -> tuple[float, float, str]:
        return (-round(gained(skill), 6), accuracy[skill], skill)
    return (sorted(kept, key=order) + sorted(fresh, key=order) + sorted(stalled, key=order))[:k]


class HandwrittenOrganizer:
    """policy: 'focus' (after one error-weighted cycle, `focus` skills at a time get the data; see
    focus_skills), 'learning-progress' (explore to fill the tree, then allocate by error x learning progress),
    'error-weighted' (explore to fill the tree, then allocate by error, halving a stalled skill's data),
    'fill-balanced' (explore to fill, then balance data across subskills), or 'alternating' (explore one
    subskill, then exploit by error, in turn). explore: what each new subskill gets, 'by-error' (the
    skill's error, as exploiting would give it) or 'uniform' (a full unit: the first cycle's data is then
    spread evenly whatever the student knows)."""

    def __init__(self, policy: str = "error-weighted", unit: int = 200, max_subskills: int = 3,
                 explore: str = "by-error", focus: int = 2):
        self.policy, self.unit, self.max_subskills, self.explore = policy, unit, max_subskills, explore
        self.focus = focus

    def explore_allocation(self, tree: dict[str, Any]) -> int:
        """Examples for each subskill an explore action adds: by the skill's error (its accuracy is known
        before its subskills' are; a tenth of a unit keeps a mastered skill), or (uniform) a full unit."""
        if self.explore == "uniform":
            return self.unit
        return max(1, round(self.unit * (0.1 + _error({}, tree))))  # no subskill accuracy yet: the skill's

    def decide(self, skill: str, tree: dict[str, Any], candidates: list[str], cycle: int) -> dict[str, Any]:
        room = self.max_subskills - len(tree["subskills"])
        fresh = [c for c in candidates if c not in tree["subskills"]][:max(0, room)]
        if self.policy == "alternating":
            explore_turn = len(tree["history"]) % 2 == 0
            if fresh and (explore_turn or not tree["subskills"]):
                return {"type": "explore", "subskills": fresh[:1], "allocation": self.explore_allocation(tree)}
            return {"type": "exploit", "allocations": error_weighted_allocations(tree, self.unit)}
        if fresh:
            return {"type": "explore", "subskills": fresh, "allocation": self.explore_allocation(tree)}
        if self.policy == "learning-progress":
            return {"type": "exploit", "allocations": learning_progress_allocations(tree, self.unit)}
        if self.policy == "fill-balanced":
            return {"type": "exploit", "allocations": balanced_allocations(tree, self.unit)}
        return {"type": "exploit", "allocations": error_weighted_allocations(tree, self.unit)}

    def focus_action(self, action: dict[str, Any], tree: dict[str, Any], focused: bool) -> dict[str, Any]:
        """The focus policy's version of an action: a focused skill's subskills get unit x (0.1 + error),
        every other one a tenth of a unit (what keeps a known skill from being forgotten)."""
        def share(sub: dict[str, Any]) -> int:
            return max(1, round(self.unit * (0.1 + (_error(sub, tree) if focused else 0.0))))
        if action["type"] == "explore":
            return {**action, "allocation": share({}), "focus": focused}
        return {"type": "exploit", "allocations": {n: share(sub) for n, sub in tree["subskills"].items()},
                "focus": focused}

    def organize(self, forest: dict[str, Any], candidates: dict[str, list[str]], cycle: int,
                 subskill_cap: int, skill_cap: int) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
        """Returns (new forest, the actions taken, how many proposed actions were invalid)."""
        actions, invalid = [], 0
        focused = focus_skills(forest, self.focus) if self.policy == "focus" else None
        for skill in list(forest["skills"]):
            tree = forest["skills"][skill]
            action = self.decide(skill, tree, candidates.get(skill, []), cycle)
            if self.policy == "focus":
                action = (self.focus_action(action, tree, skill in focused) if focused is not None
                          else {**action, "focus": False})
            try:
                forest = skill_forest.apply_action(forest, skill, action, cycle, subskill_cap, skill_cap,
                                                 self.max_subskills)
            except skill_forest.InvalidAction:
                invalid += 1
                action = {"type": "exploit", "allocations": {n: s["allocation"] for n, s in tree["subskills"].items()}}
                forest = skill_forest.apply_action(forest, skill, action, cycle, subskill_cap, skill_cap,
                                                 self.max_subskills)
            actions.append({"skill": skill, **action})
        return forest, actions, invalid
