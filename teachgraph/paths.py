"""Where a run keeps its artifacts.

The run's own files (configuration, checkpoints, event log, dedup store, teacher cache) sit at the root
of the run directory. What the teaching loop writes (cycles, skills, skill tree, test results, summary)
belongs to a branch of the run's checkpoint history: the main line writes at the root, a fork from an
earlier checkpoint (`Run.fork`) under `branches/NAME/`, so a fork never overwrites what the branch it
left wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teachgraph.io import read_jsonl


@dataclass(frozen=True)
class RunPaths:
    root: Path
    branch: str = ""

    @classmethod
    def of(cls, run_dir: str | Path, branch: str | None = None) -> "RunPaths":
        return cls(Path(run_dir), branch or "")

    @property
    def home(self) -> Path:
        """Where this branch's artifacts go: the run directory for the main line."""
        return self.root / "branches" / self.branch if self.branch else self.root

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
        return self.home / "skills.json"

    @property
    def skill_tree(self) -> Path:
        return self.home / "skill_tree.json"

    @property
    def summary(self) -> Path:
        return self.home / "summary.json"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def test_eval(self) -> Path:
        return self.home / "eval_test.jsonl"

    def cycle(self, k: int) -> Path:
        return self.home / "cycles" / f"cycle_{k:03d}"

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

    def lineage(self, recorded: list[str] | None, before: int) -> list[str]:
        """The accepted.jsonl files of this branch's trained cycles before `before`, in order: the graph
        state's record (`accepted_paths`, which a fork inherits), or, for a run whose state predates that
        record, the files of this branch on disk."""
        if recorded is not None:
            return list(recorded)
        return [str(self.accepted(c)) for c in range(1, before) if self.accepted(c).exists()]

    def accepted_until(self, k: int) -> list[dict[str, Any]]:
        """Every accepted training example of this branch's cycles 1..k, in cycle order (runs whose state
        predates `accepted_paths`)."""
        rows: list[dict[str, Any]] = []
        for c in range(1, k + 1):
            if self.accepted(c).exists():
                rows += read_jsonl(self.accepted(c))
        return rows
