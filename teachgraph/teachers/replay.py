"""What the student trains on each cycle: the teacher's curriculum over new and earlier data."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from teachgraph.io import read_jsonl

REPLAY_FILE = "pretrain_sample.jsonl"  # the base student's own sample of what it was pretrained on


def training_set(train_mode: str, replay_fraction: float, accepted: str, earlier: list[str], base_path: str,
                 seed: int) -> tuple[list[dict[str, Any]], str | None]:
    """(examples, the student to start from; None: the current student). Replay mode continues from the
    last student on the new data plus replayed old data (earlier cycles' accepted data and the base
    student's own sample), which keeps old skills from being forgotten; retrain mode starts from the base
    on everything. `accepted` is this cycle's accepted data, `earlier` the accepted data of the cycles before
    it on this branch, in order."""
    new = read_jsonl(accepted)
    old = [row for path in earlier for row in read_jsonl(path)]
    base_sample = Path(base_path, REPLAY_FILE)
    base_rows = read_jsonl(base_sample) if base_sample.exists() else []
    if train_mode == "retrain":
        return base_rows + old + new, base_path
    pool = old + base_rows
    rng = random.Random(seed)
    replay = rng.sample(pool, min(len(pool), int(round(replay_fraction * len(new)))))
    return new + replay, None
