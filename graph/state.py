"""The graph's state: JSON-serialisable values and paths to artifacts, never live objects."""

from __future__ import annotations

from typing import Any, TypedDict


class TeachState(TypedDict, total=False):
    run_dir: str                     # every artifact of the run lives under it
    branch: str                      # "" for the main line; a fork's name (its artifacts go to run_dir/branches/NAME)
    cycle: int                       # training cycles finished; the student evaluated next has had this many
    student_path: str                # weights (or adapter) of the current student
    evaluation: dict[str, Any]       # latest validation result: accuracy, per-skill accuracy, file of per-example results
    skills: dict[str, Any]           # discovered skills: method, {skill: description, subskills, exemplars}, assignment file
    skill_tree: dict[str, Any]       # skill-tree environment only: the forest (see teachgraph.environments.skill_forest)
    plan: dict[str, Any]             # this cycle's data-generation plan (requests) and its file
    generated_path: str              # this cycle's generated examples
    accepted_path: str               # this cycle's examples that passed verification and deduplication
    cycle_stats: dict[str, Any]      # numbers of the cycle in progress: generated, kept, dropped, seconds per stage
    history: list[dict[str, Any]]    # one record per evaluated cycle (cycle 0 is the base student)
    budget_used: int                 # generated examples so far
    train_examples_total: int        # accepted examples so far
    accepted_paths: list[str]        # accepted.jsonl of every trained cycle of this branch's history, in order
    teacher_usage: dict[str, Any]    # LLM teacher: calls, tokens, retries, repairs, fallbacks so far, by node
    route: str                       # the node that runs next, decided by evaluate, discover_skills and review
    stop_reason: str | None          # why the loop ended: max_cycles, budget, target_accuracy, no_improvement, teacher_tokens
    result: dict[str, Any]           # best cycle, its test accuracy, and the summary file
