"""Time travel: continuing a run from an earlier checkpoint forks a branch whose artifacts belong to it
(RUN_DIR/branches/NAME); the branch it left keeps every file it wrote, and the dedup store follows the
branch's own history."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from teachgraph.graph import make_context
from teachgraph.run import Run

from .conftest import read_jsonl, tiny

pytestmark = pytest.mark.slow


def _digests(root: Path) -> dict[str, str]:
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and "branches" not in p.relative_to(root).parts
             and p.parts[len(root.parts)] in ("cycles", "summary.json", "skills.json", "skill_tree.json", "eval_test.jsonl")]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_a_fork_writes_its_own_branch_and_leaves_the_original_as_it_was(tmp_path, base_student_ready):
    run_dir = tmp_path / "run"
    with Run.create(make_context(tiny(run_dir=str(run_dir)))) as run:
        original = run.invoke()
        before = _digests(run_dir)
        assert any(k.endswith("cycle_002/accepted.jsonl") for k in before)
        chosen = next(s for s in reversed(run.history())
                      if s.values.get("cycle") == 1 and s.next and s.next[0] not in ("evaluate", "train"))
        forked = run.invoke(checkpoint=chosen.config)

    branch = forked["branch"]
    assert branch and original.get("branch", "") == ""
    assert _digests(run_dir) == before, "the fork changed files of the branch it left"
    home = run_dir / "branches" / branch
    assert (home / "summary.json").exists() and (home / "cycles" / "cycle_002" / "accepted.jsonl").exists()
    assert not (home / "cycles" / "cycle_001").exists()  # cycle 1 is shared history, not redone
    assert forked["accepted_paths"][0] == original["accepted_paths"][0]
    assert forked["accepted_paths"][1] == str(home / "cycles" / "cycle_002" / "accepted.jsonl")
    # same seeds, same shared history: the branch re-teaches cycle 2 exactly as the original did, which it
    # can only do if the dedup store was rolled back to the fork point (else cycle 2's data are duplicates)
    main_2 = read_jsonl(run_dir / "cycles" / "cycle_002" / "accepted.jsonl")
    fork_2 = read_jsonl(home / "cycles" / "cycle_002" / "accepted.jsonl")
    assert [e["id"] for e in fork_2] == [e["id"] for e in main_2]
    assert [r["val_accuracy"] for r in forked["history"]] == [r["val_accuracy"] for r in original["history"]]
    assert forked["history"][-1]["student_path"].startswith(str(home))

    with Run.open(run_dir) as run:  # the thread's latest checkpoint is now the branch's end
        assert run.finished and run.values()["branch"] == branch
