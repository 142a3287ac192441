"""Where a run keeps its artifacts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teachgraph.io import read_jsonl


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @classmethod
    def of(cls, run_dir: str | Path) -> "RunPaths":
        return cls(Path(run_dir))

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints.sqlite"

    @property
    def chroma(self) -> Path:
        return self.root / "chroma"

    @property
    def skills(self) -> Path:
        return self.root / "skills.json"

    @property
    def skill_tree(self) -> Path:
        return self.root / "skill_tree.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def test_eval(self) -> Path:
        return self.root / "eval_test.jsonl"

    def cycle(self, k: int) -> Path:
        return self.root / "cycles" / f"cycle_{k:03d}"

    def eval_val(self, k: int) -> Path:
        return self.cycle(k) / "eval_val.jsonl"

    def plan(self, k: int) -> Path:
        return self.cycle(k) / "plan.json"

    def generated(self, k: int) -> Path:
        return self.cycle(k) / "generated.jsonl"

    def accepted(self, k: int) -> Path:
        return self.cycle(k) / "accepted.jsonl"

    def dropped(self, k: int) -> Path:
        return self.cycle(k) / "dropped.jsonl"

    def student(self, k: int) -> Path:
        return self.cycle(k) / "student"

    def accepted_until(self, k: int) -> list[dict[str, Any]]:
        """Every accepted training example of cycles 1..k, in cycle order."""
        rows: list[dict[str, Any]] = []
        for c in range(1, k + 1):
            if self.accepted(c).exists():
                rows += read_jsonl(self.accepted(c))
        return rows
