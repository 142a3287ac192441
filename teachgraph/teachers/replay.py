"""What the student trains on each cycle: the teacher's curriculum over new and earlier data."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from teachgraph.io import read_jsonl

REPLAY_FILE = "pretrain_sample.jsonl"  # the base student's own sample of what it was pretrained on


RISK_GAIN = 10.0  # replay weight per unit of accuracy a skill has lost: a 10-point drop triples its share


def at_risk_weights(history: list[dict[str, Any]]) -> dict[str, float]:
    """Replay weight per skill from the evaluations so far: 1 + RISK_GAIN x how far the skill's latest
    validation accuracy is below its best one (1 for a skill that has not lost anything). A teacher that
    sees per-skill accuracy replays most what the last cycles made the student forget."""
    if not history:
        return {}
    latest = history[-1]["per_skill"]
    best = {s: max(r["per_skill"].get(s, 0.0) for r in history) for s in latest}
    return {s: round(1.0 + RISK_GAIN * max(0.0, best[s] - a), 6) for s, a in sorted(latest.items())}


def _weighted_sample(rows: list[dict[str, Any]], k: int, weights: dict[str, float] | None,
                     rng: random.Random) -> list[dict[str, Any]]:
    """k rows without replacement; with weights, each row's chance follows its skill's weight (1 for a skill
    not named), by Efraimidis-Spirakis keys u^(1/w), which are reproducible under the seed."""
    if not weights:
        return rng.sample(rows, k)
    keyed = sorted(((rng.random() ** (1.0 / max(1e-9, weights.get(str(r.get("skill")), 1.0))), i)
                    for i, r in enumerate(rows)), reverse=True)
    return [rows[i] for _, i in keyed[:k]]


def training_set(train_mode: str, replay_fraction: float, accepted: str, earlier: list[str], base_path: str,
                 seed: int, replay_weights: dict[str, float] | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """(examples, the student to start from; None: the current student). Replay mode continues from the
    last student on the new data plus replayed old data (earlier cycles' accepted data and the base
    student's own sample), which keeps old skills from being forgotten; retrain mode starts from the base
    on everything. `accepted` is this cycle's accepted data, `earlier` the accepted data of the cycles before
    it on this branch, in order. `replay_weights` (skill -> weight; None: uniform) is the plan's choice of
    what to replay most."""
    new = read_jsonl(accepted)
    old = [row for path in earlier for row in read_jsonl(path)]
    base_sample = Path(base_path, REPLAY_FILE)
    base_rows = read_jsonl(base_sample) if base_sample.exists() else []
    if train_mode == "retrain":
        return base_rows + old + new, base_path
    pool = old + base_rows
    rng = random.Random(seed)
    replay = _weighted_sample(pool, min(len(pool), int(round(replay_fraction * len(new)))), replay_weights, rng)
    return new + replay, None
