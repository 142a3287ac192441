"""Fine-tune the student on this cycle's accepted data (with replay, or retrained on all data)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import torch
from langgraph.runtime import Runtime

from teachgraph.graph.context import TeachContext, context_of
from teachgraph.graph.state import TeachState
from teachgraph.students import TrainSettings, base_student_path, student_from_context
from teachgraph.students.pretrain import REPLAY_FILE
from teachgraph.io import read_jsonl, write_dir_atomic
from teachgraph.paths import RunPaths, derive_seed, domain_of, emit, log_event, with_stage_seconds


def training_set(ctx: TeachContext, paths: RunPaths, target: int, base_path: str) -> tuple[list[dict], str]:
    """(examples, the student to start from). Replay mode continues from the last student on the new
    data plus replayed old data (earlier cycles' accepted data and the base student's own sample),
    which keeps old skills from being forgotten; retrain mode starts from the base on everything."""
    new = read_jsonl(paths.accepted(target))
    old = paths.accepted_until(target - 1)
    base_sample = Path(base_path, REPLAY_FILE)
    base_rows = read_jsonl(base_sample) if base_sample.exists() else []
    if ctx.train_mode == "retrain":
        return base_rows + old + new, base_path
    pool = old + base_rows
    rng = random.Random(derive_seed(ctx.seed, "replay", target))
    replay = rng.sample(pool, min(len(pool), int(round(ctx.replay_fraction * len(new)))))
    return new + replay, ""


def train(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    ctx = context_of(runtime)
    started = time.perf_counter()
    target = state["plan"]["cycle"]
    paths = RunPaths.of(state["run_dir"])
    domain = domain_of(ctx)
    base_path = base_student_path(ctx, domain)
    examples, start_from = training_set(ctx, paths, target, base_path)
    settings = TrainSettings(epochs=ctx.epochs, batch_size=ctx.batch_size, learning_rate=ctx.learning_rate,
                             seed=derive_seed(ctx.seed, "train", target))
    torch.manual_seed(settings.seed)  # a fresh LoRA adapter's initial weights too, also in a resumed process
    student = student_from_context(ctx, start_from or state["student_path"], domain)
    emit({"type": "stage", "node": "train", "cycle": target, "message": f"training on {len(examples)} examples"})

    def progress(step: int, total: int, loss: float) -> None:
        if step == total or step % 10 == 0:
            emit({"type": "progress", "node": "train", "step": step, "total": total, "loss": round(loss, 4)})

    stats = student.train(examples, settings, progress=progress)
    final = paths.student(target)
    write_dir_atomic(final, student.save, prefix=".student-")  # a crash leaves the last good student in place
    total = state.get("train_examples_total", 0) + sum(1 for _ in read_jsonl(paths.accepted(target)))
    log_event(state["run_dir"], "train", target, steps=stats["steps"])
    return {
        "cycle": target,
        "student_path": str(final),
        "train_examples_total": total,
        "cycle_stats": with_stage_seconds(state.get("cycle_stats"), "train", time.perf_counter() - started,
                                          train={k: stats[k] for k in ("steps", "examples", "tokens", "tokens_per_second", "loss_first", "loss_last")}),
    }
