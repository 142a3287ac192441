"""What the teaching loop needs from a student model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from teachgraph.domains.base import Example


@dataclass(frozen=True)
class TrainSettings:
    """One cycle's optimisation settings (fields mirror the run configuration's `train_*` fields)."""

    epochs: float = 1.0
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    max_grad_norm: float = 1.0
    seed: int = 0


ProgressFn = Callable[[int, int, float], None]  # (step, total_steps, loss)


class Student(Protocol):
    def predict(self, prompts: Sequence[str], batch_size: int = 256) -> list[str]:
        """Greedy answers, one per prompt, in order."""

    def train(self, examples: Sequence[Example], settings: TrainSettings, progress: ProgressFn | None = None) -> dict:
        """Fine-tune in place on (prompt, answer) pairs; returns step/loss/token counts."""

    def save(self, path: str) -> None:
        """Write weights (or a peft adapter) so that `load_student(path)` restores this student."""
