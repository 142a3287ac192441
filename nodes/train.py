"""Fine-tune the student on this cycle's accepted data (with replay, or retrained on all data), in this
process or, with train_processes > 1, in that many torchrun processes (students/distributed.py)."""

from __future__ import annotations

from typing import Any

import torch
from langgraph.runtime import Runtime

from teachgraph.graph.context import TeachContext
from teachgraph.graph.state import TeachState
from teachgraph.io import read_jsonl, write_dir_atomic
from teachgraph.nodes.common import Step, derive_seed
from teachgraph.students import TrainSettings
from teachgraph.students.distributed import TrainingFailed, load_options, train_in_processes
from teachgraph.teachers.replay import training_set

TRAIN_STATS = ("steps", "examples", "tokens", "padded_tokens", "tokens_per_second", "loss_first", "loss_last")


def train(state: TeachState, runtime: Runtime[TeachContext]) -> dict[str, Any]:
    target = state["plan"]["cycle"]
    step = Step("train", state, runtime, target)
    ctx, paths = step.ctx, step.paths
    earlier = paths.lineage(state.get("accepted_paths"), target)
    examples, start_from = training_set(ctx.train_mode, ctx.replay_fraction, str(paths.accepted(target)), earlier,
                                        step.services.base_student(), derive_seed(ctx.seed, "replay", target),
                                        replay_weights=state["plan"].get("replay_weights"))
    settings = TrainSettings(epochs=ctx.epochs, batch_size=ctx.batch_size, learning_rate=ctx.learning_rate,
                             seed=derive_seed(ctx.seed, "train", target), pack=ctx.train_pack,
                             grad_accum_steps=ctx.train_grad_accum_steps, precision=ctx.train_precision,
                             gradient_checkpointing=ctx.train_gradient_checkpointing, compile=ctx.train_compile)
    start_path = start_from or state["student_path"]
    final = paths.student(target)

    def progress(done: int, total: int, loss: float) -> None:
        if done == total or done % 10 == 0:
            step.progress(done, total, loss=round(loss, 4))

    if ctx.train_processes > 1:
        step.say(f"training on {len(examples)} examples in {ctx.train_processes} processes ({ctx.train_parallel})")
        stats: dict[str, Any] = {}

        def train_and_save(out_dir: str) -> None:  # rank 0 saves into the atomic write's folder
            stats.update(train_in_processes(
                start_path, examples, settings, processes=ctx.train_processes, parallel=ctx.train_parallel,
                out_dir=out_dir, job_dir=paths.cycle(target) / "train-job", progress=progress,
                load=load_options(ctx, step.services.domain)))

        try:
            write_dir_atomic(final, train_and_save, prefix=".student-")  # a failed rank leaves nothing behind
        except TrainingFailed as error:
            raise TrainingFailed(f"cycle {target}: {error}. The run stopped at its last checkpoint; "
                                 f"`teachgraph resume {step.run_dir}` retrains the cycle") from None
        step.services.students.get(str(final))  # loaded once, for the next evaluation
    else:
        torch.manual_seed(settings.seed)  # a fresh LoRA adapter's initial weights too, also in a resumed process
        student = step.services.students.for_training(start_path)
        step.say(f"training on {len(examples)} examples")
        stats = student.train(examples, settings, progress=progress)
        write_dir_atomic(final, student.save, prefix=".student-")  # a crash leaves the last good student in place
        step.services.students.keep(str(final), student)
    new_examples = len(read_jsonl(paths.accepted(target)))
    return step.done({"cycle": target, "student_path": str(final),
                      "accepted_paths": earlier + [str(paths.accepted(target))],
                      "train_examples_total": state.get("train_examples_total", 0) + new_examples},
                     stats={"train": {k: stats[k] for k in TRAIN_STATS}}, steps=stats["steps"])
