"""What the teaching loop needs from a student model."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from teachgraph.domains.base import Example

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TrainSettings:
    """One cycle's optimisation settings (fields mirror the run configuration's `train_*` fields).

    `batch_size` is the number of examples per optimizer step whatever the other settings: packing and
    gradient accumulation change how a step's examples are laid out and computed, not which examples a
    step sees nor the loss (the mean over the step's answer tokens).
    """

    epochs: float = 1.0
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    max_grad_norm: float = 1.0
    seed: int = 0
    # Pack each step's examples into rows as wide as its longest example (first-fit decreasing; position
    # ids restart at 0 per example and attention stays inside each example), instead of one padded row
    # per example. Same examples, same loss; fewer padding tokens computed.
    pack: bool = True
    # Split each step's examples into this many micro-batches, computed one after another with their
    # gradients summed (less activation memory; same effective batch and loss).
    grad_accum_steps: int = 1
    # "fp32"; "bf16": autocast forward/backward to bfloat16, trainable weights and optimizer state stay
    # fp32 (master weights); "auto": bf16 on CUDA devices that support it, fp32 on CPU.
    precision: str = "auto"
    gradient_checkpointing: bool = False  # recompute activations in backward (less memory, ~1/3 more compute)
    compile: bool = False                 # torch.compile the training forward (opt-in; compile time first)

    def __post_init__(self) -> None:
        if self.grad_accum_steps < 1:
            raise ValueError(f"grad_accum_steps must be >= 1, not {self.grad_accum_steps}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")

    def total_steps(self, examples: int) -> int:
        """Optimizer steps for `examples` examples: batches per epoch times epochs, at least one."""
        return max(1, round(math.ceil(examples / self.batch_size) * self.epochs))

    def learning_rate_at(self, step: int, total_steps: int) -> float:
        """Linear warmup over the first warmup_fraction of the steps, then cosine decay to 10% of the rate."""
        warmup = max(1, int(total_steps * self.warmup_fraction))
        if step < warmup:
            return self.learning_rate * (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return self.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


ProgressFn = Callable[[int, int, float], None]  # (step, total_steps, loss)


class Student(Protocol):
    def predict(self, prompts: Sequence[str], batch_size: int = 256) -> list[str]:
        """Greedy answers, one per prompt, in order."""

    def train(self, examples: Sequence[Example], settings: TrainSettings, progress: ProgressFn | None = None) -> dict:
        """Fine-tune in place on (prompt, answer) pairs; returns step/loss/token counts."""

    def save(self, path: str) -> None:
        """Write weights (or a peft adapter) so that `load_student(path)` restores this student."""

    # Optional: predict_examples(examples, batch_size) -> list[str], for students that need more of an
    # example than its prompt (a vision-language student reads its image); see `predict_examples` below.


def predict_examples(student: Student, examples: Sequence[Example]) -> list[str]:
    """The student's answers to examples: through its own `predict_examples` where it has one (it reads more
    than the prompt, e.g. the image), else from the prompts alone."""
    if hasattr(student, "predict_examples"):
        return student.predict_examples(examples)
    return student.predict([e["prompt"] for e in examples])
