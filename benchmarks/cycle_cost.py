"""Cycle cost breakdown: where the seconds of a teaching cycle go, and how much of it is orchestration.

    python benchmarks/cycle_cost.py [--smoke] [--out benchmarks/results/cycle_cost.json]

Runs the offline default configuration (`TeachContext()`: skill-tree, 5 cycles, budget 8,000) in this
process, the way `teachgraph run` does: `teachgraph.run.Run` with a SqliteSaver, streamed with
`durability="sync"`. The base student is built (or found in the cache) first, untimed.

Per cycle k (from the end of evaluate k-1 to the end of evaluate k, both read from events.jsonl):

- stage seconds: what each node measured itself (summary.json, `history[k]["seconds"]`): discover_skills,
  organize_skills, plan, generate, deduplicate, train, evaluate;
- checkpoint writes: wall time during which a SqliteSaver put / put_writes was running (serialising the
  state included; the union of their intervals, since LangGraph runs put_writes in a background thread),
  measured by a thin timing subclass of the saver the CLI uses;
- unaccounted: wall minus both, i.e. LangGraph's own work between nodes (and the review node, which
  does nothing with review off).

Orchestration overhead = everything but train, evaluate and generate (discovery, organizer, planner,
deduplication, checkpoint writes, unaccounted), as a share of the cycle's wall time. Target <= 3%.
The base evaluation (cycle 0) and finalize are reported apart. --smoke: the tests' TINY configuration.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "cycle_cost"
STAGES = ("evaluate", "discover_skills", "organize_skills", "plan", "generate", "deduplicate", "train")
WORK = ("train", "evaluate", "generate")  # what a cycle is for; everything else is orchestration
TARGET_OVERHEAD = 0.03


def timed_saver(path: Path):
    """The CLI's SqliteSaver with every put / put_writes / get_tuple timed: (method, start time.time(), seconds)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    class TimedSqliteSaver(SqliteSaver):
        calls: list[tuple[str, float, float]]

        def _timed(self, method: str, fn, *args, **kwargs):
            wall, started = time.time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.calls.append((method, wall, time.perf_counter() - started))

        def put(self, *args, **kwargs):
            return self._timed("put", super().put, *args, **kwargs)

        def put_writes(self, *args, **kwargs):
            return self._timed("put_writes", super().put_writes, *args, **kwargs)

        def get_tuple(self, *args, **kwargs):
            return self._timed("get_tuple", super().get_tuple, *args, **kwargs)

    saver = TimedSqliteSaver(sqlite3.connect(str(path), check_same_thread=False))
    saver.calls = []
    saver.setup()
    return saver


def run_graph(ctx) -> dict:
    """Run ctx's teaching loop as the CLI does; return the timeline the breakdown is computed from."""
    from teachgraph.io import read_json, read_jsonl
    from teachgraph.paths import RunPaths
    from teachgraph.run import Run

    paths = RunPaths.of(ctx.run_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    saver = timed_saver(paths.checkpoints)
    started = time.time()
    with Run.create(ctx, checkpointer=saver) as run:
        run.invoke()
        steps = run.steps
    ended = time.time()
    summary = read_json(paths.summary)
    return {"started": started, "ended": ended, "steps": steps, "calls": saver.calls,
            "history": summary["cycles"], "events": read_jsonl(paths.events),
            "checkpoint_bytes": paths.checkpoints.stat().st_size,
            "val_accuracy": [c["val_accuracy"] for c in summary["cycles"]]}


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end] intervals. LangGraph runs put_writes in a background thread,
    concurrently with the checkpoint put that follows, so summing their durations would count twice."""
    total, end = 0.0, float("-inf")
    for lo, hi in sorted(intervals):
        if hi > end:
            total += hi - max(lo, end)
            end = hi
    return total


def breakdown(timeline: dict) -> tuple[list[dict], dict]:
    """One row per cycle (seconds by stage, checkpoint writes, unaccounted, overhead share) and the totals."""
    evaluated = {e["cycle"]: e["time"] for e in timeline["events"] if e["node"] == "evaluate"}
    cycles = sorted(evaluated)
    bounds = {0: (timeline["started"], evaluated[0])}
    bounds.update({k: (evaluated[prev], evaluated[k]) for prev, k in zip(cycles, cycles[1:])})
    records = {r["cycle"]: r for r in timeline["history"]}
    rows = []
    for k in cycles:
        lo, hi = bounds[k]
        stages = {s: float(records[k]["seconds"].get(s, 0.0)) for s in STAGES}
        writes = [(m, t, d) for m, t, d in timeline["calls"] if lo < t <= hi]
        checkpoint = busy_seconds([(t, t + d) for m, t, d in writes if m in {"put", "put_writes"}])
        wall = hi - lo
        overhead = wall - sum(stages[s] for s in WORK)
        rows.append({"cycle": k, "wall": round(wall, 3), "kept": records[k].get("kept", 0),
                     **{s: round(v, 3) for s, v in stages.items()},
                     "checkpoint_writes": round(checkpoint, 4),
                     "checkpoint_calls": sum(m in {"put", "put_writes"} for m, _, _ in writes),
                     "checkpoint_reads": round(sum(d for m, _, d in writes if m == "get_tuple"), 4),
                     "unaccounted": round(wall - sum(stages.values()) - checkpoint, 4),
                     "overhead": round(overhead, 3), "overhead_share": round(overhead / wall, 5) if wall else None})
    teaching = [r for r in rows if r["cycle"] > 0]
    total = {key: round(sum(r[key] for r in teaching), 4)
             for key in ("wall", *STAGES, "checkpoint_writes", "checkpoint_calls", "checkpoint_reads",
                         "unaccounted", "overhead")}
    total["overhead_share"] = round(total["overhead"] / total["wall"], 5) if total["wall"] else None
    total["cycles"] = len(teaching)
    total["finalize_wall"] = round(timeline["ended"] - evaluated[cycles[-1]], 3)
    total["run_wall"] = round(timeline["ended"] - timeline["started"], 3)
    return rows, total


def markdown(rows: list[dict], total: dict) -> str:
    headers = ["cycle", "wall s", "train", "evaluate", "generate", "discover", "organize", "plan", "dedup",
               "ckpt writes", "unaccounted", "overhead", "share"]

    def line(label, r):
        return [label, r["wall"], r["train"], r["evaluate"], r["generate"], r["discover_skills"],
                r["organize_skills"], r["plan"], r["deduplicate"], r["checkpoint_writes"], r["unaccounted"],
                r["overhead"], f"{100 * r['overhead_share']:.2f}%"]

    table = [line(str(r["cycle"]) + (" (base eval)" if r["cycle"] == 0 else ""), r) for r in rows]
    table.append(line(f"**cycles 1-{total['cycles']}**", total))
    return (common.md_table(headers, table) +
            f"\n\nSeconds. Overhead = wall - train - evaluate - generate; share = overhead / wall. "
            f"Whole run {total['run_wall']:.1f} s (finalize {total['finalize_wall']:.1f} s); "
            f"{total['checkpoint_calls']} checkpoint writes in cycles 1-{total['cycles']}.")


def main(argv: list[str] | None = None) -> int:
    args = common.parser(NAME, __doc__).parse_args(argv)
    clock, machine = common.Stopwatch(), common.machine_record()
    from teachgraph.graph import make_context
    from teachgraph.students import base_student_path
    from teachgraph.domains import load_domain

    values = common.tiny_config() if args.smoke else {}
    with tempfile.TemporaryDirectory(prefix="bench-cycle-cost-") as tmp:
        ctx = make_context(dict(values, run_dir=str(Path(tmp) / "run")))
        base_student_path(ctx, load_domain(ctx), log=print)  # built or found first, untimed
        print(f"running {ctx.cycles} cycles, budget {ctx.budget} ({'TINY' if args.smoke else 'default'} configuration)")
        timeline = run_graph(ctx)
    rows, total = breakdown(timeline)
    result = {
        "benchmark": NAME, "smoke": args.smoke,
        "what": "seconds per stage per teaching cycle of the default run, and orchestration overhead "
                "(all but train, evaluate, generate) as a share of cycle wall time",
        "config": {"configuration": "TINY (tests/conftest.py)" if args.smoke else "TeachContext() default",
                   **{k: getattr(ctx, k) for k in ("environment", "cycles", "budget", "epochs", "batch_size",
                                                   "embedding", "tiny_hidden_size", "tiny_layers")},
                   "durability": "sync", "checkpointer": "SqliteSaver (timed subclass)"},
        "results": {"cycles": rows, "total": total, "graph_steps": timeline["steps"],
                    "checkpoint_bytes": timeline["checkpoint_bytes"], "val_accuracy": timeline["val_accuracy"]},
        "targets": [common.target("orchestration overhead share (cycles 1-N)", total["overhead_share"],
                                  TARGET_OVERHEAD, "<=")],
        "machine": machine,
    }
    result["seconds"] = clock.seconds()
    common.write_result(common.out_path(NAME, args), result, markdown(rows, total))
    print(markdown(rows, total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
