"""Resume: how soon a SIGKILLed run is working again, and whether it redoes anything that had finished.

    python benchmarks/resume.py [--smoke] [--out benchmarks/results/resume.json]

A real `python -m teachgraph run` (the default configuration with 2 cycles and a budget of 3,200, i.e. the
default run's 1,600 examples per cycle; --smoke: the tests' TINY configuration with 2 cycles, budget
1,200 and 10 epochs, its processes on one torch thread each) runs as a subprocess. When events.jsonl says deduplicate of cycle 2 finished and the
checkpoint says train is next, the process gets SIGKILL: it dies while cycle 2 trains (the pattern of
tests/integration_tests/test_resume.py). Then `python -m teachgraph resume RUN_DIR` is launched and timed:

- to the resume point: its "resuming RUN at NODE" line (imports done, checkpoint read, graph built);
- to the first new work: the first stage message of the interrupted node ("cycle 2 · train: ...");
- to the first new event: the first line appended to events.jsonl (the interrupted node finished);
- total: until the resume process exits (the rest of the run, finalize and the report included).

Finished nodes re-executed = (node, cycle) pairs that appear more than once in events.jsonl (target 0).
For scale, the bare start-up cost of the CLI (`python -m teachgraph graph`: imports, build the graph) is
measured too. The base student is built first, untimed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "resume"
FULL = {"cycles": 2, "budget": 3200}
SMOKE = {"cycles": 2, "budget": 1200, "epochs": 10}
KILL_CYCLE = 2
TIMEOUT = 900


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "teachgraph", *args]


def cli_env(smoke: bool = False) -> dict[str, str]:
    """The CLI's environment; smoke runs use one torch thread, so that a busy machine (CI) cannot make
    the short training window vanish into thread oversubscription."""
    one_thread = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} if smoke else {}
    return dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(common.ROOT), **one_thread)


def read_events(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def next_nodes(run_dir: Path) -> tuple[str, ...]:
    """What the run's latest checkpoint executes next (read while the run writes it)."""
    from teachgraph.run import Run

    with Run.open(run_dir) as run:
        return tuple(run.snapshot().next)


def kill_while_training(proc: subprocess.Popen, run_dir: Path, cycle: int) -> dict:
    """SIGKILL the run once deduplicate of `cycle` is logged and its checkpoint says train is next."""
    started = time.perf_counter()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the run ended (rc {proc.returncode}) before cycle {cycle} trained")
        if time.perf_counter() - started > TIMEOUT:
            raise RuntimeError(f"cycle {cycle} was never deduplicated in {TIMEOUT} s")
        if ("deduplicate", cycle) in {(e["node"], e["cycle"]) for e in read_events(run_dir)}:
            try:
                ready = next_nodes(run_dir) == ("train",)
            except sqlite3.OperationalError:  # the writer holds a lock for a moment
                ready = False
            if ready:
                break
        time.sleep(0.03)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return {"returncode": proc.returncode, "run_seconds_before_kill": round(time.perf_counter() - started, 2),
            "next_at_kill": list(next_nodes(run_dir))}


def timed_resume(run_dir: Path, cwd: Path, env: dict[str, str]) -> dict:
    """Launch `teachgraph resume`, stamp every stdout line and the first new events.jsonl line."""
    events_before = len(read_events(run_dir))
    lines: list[tuple[float, str]] = []
    launched = time.perf_counter()
    proc = subprocess.Popen(cli("resume", str(run_dir)), cwd=str(cwd), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)

    def reader() -> None:
        for line in proc.stdout:
            lines.append((time.perf_counter() - launched, line.rstrip()))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    first_event = None
    while proc.poll() is None and time.perf_counter() - launched < TIMEOUT:
        if first_event is None and len(read_events(run_dir)) > events_before:
            first_event = time.perf_counter() - launched
        time.sleep(0.01)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    total = time.perf_counter() - launched
    thread.join(timeout=10)
    if first_event is None and len(read_events(run_dir)) > events_before:
        first_event = total

    def first(pattern: str) -> float | None:
        return next((round(t, 3) for t, line in lines if re.search(pattern, line)), None)

    return {"returncode": proc.returncode, "resume_point_s": first(r"^resuming "),
            "first_node_start_s": first(r"^cycle \d+ · \w+:"),
            "first_node_line": next((line for _, line in lines if re.search(r"^cycle \d+ · \w+:", line)), None),
            "first_event_s": round(first_event, 3) if first_event is not None else None,
            "total_s": round(total, 3), "output_tail": [line for _, line in lines[-5:]]}


def startup_cost(cwd: Path, env: dict[str, str]) -> float:
    """Seconds of `python -m teachgraph graph`: interpreter, imports, building the graph."""
    started = time.perf_counter()
    subprocess.run(cli("graph"), cwd=str(cwd), capture_output=True, check=True, env=env, timeout=300)
    return round(time.perf_counter() - started, 3)


def main(argv: list[str] | None = None) -> int:
    args = common.parser(NAME, __doc__).parse_args(argv)
    clock, machine = common.Stopwatch(), common.machine_record()
    import yaml

    from teachgraph.graph import make_context
    from teachgraph.students import base_student_path
    from teachgraph.domains import load_domain

    values = dict(common.tiny_config(), **SMOKE) if args.smoke else dict(FULL)
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as tmp:
        root = Path(tmp)
        ctx = make_context(dict(values, run_dir=str(root / "run")))
        base_student_path(ctx, load_domain(ctx), log=print)  # built or found first, untimed
        (root / "config.yaml").write_text(yaml.safe_dump(values), encoding="utf-8")
        run_dir, env = root / "run", cli_env(args.smoke)
        print(f"running {ctx.cycles} cycles, budget {ctx.budget}; SIGKILL while cycle {KILL_CYCLE} trains")
        with open(root / "run.log", "w") as log:
            victim = subprocess.Popen(cli("run", "--config", "config.yaml", "--run-dir", "run", "--quiet"),
                                      cwd=str(root), stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            kill = kill_while_training(victim, run_dir, KILL_CYCLE)
        except RuntimeError as error:
            raise SystemExit(f"{error}:\n" + (root / "run.log").read_text()[-3000:]) from None
        finally:
            if victim.poll() is None:
                victim.kill()
                victim.wait()
        before = read_events(run_dir)
        print(f"killed (rc {kill['returncode']}) with {kill['next_at_kill']} next; resuming")
        resumed = timed_resume(run_dir, root, env)
        events = read_events(run_dir)
        finished = Counter((e["node"], e["cycle"]) for e in events)
        repeated = {f"{node}@{cycle}": n - 1 for (node, cycle), n in finished.items() if n > 1}
        completed = (run_dir / "summary.json").exists()
        startup = startup_cost(root, env)
    results = {
        "kill": kill, "events_before_kill": len(before), "events_after_resume": len(events) - len(before),
        "first_new_event": [events[len(before)]["node"], events[len(before)]["cycle"]] if len(events) > len(before) else None,
        "resume": resumed, "finished_nodes_reexecuted": sum(repeated.values()), "reexecuted": repeated,
        "run_completed": completed and resumed["returncode"] == 0, "cli_startup_s": startup,
    }
    result = {
        "benchmark": NAME, "smoke": args.smoke,
        "what": "teachgraph resume after SIGKILL during training: time to the first new work, and finished "
                "nodes re-executed",
        "config": {"configuration": ("TINY (tests/conftest.py) + " if args.smoke else "TeachContext() default + ")
                   + json.dumps(SMOKE if args.smoke else FULL), "kill": f"SIGKILL while cycle {KILL_CYCLE} trains"},
        "results": results,
        "targets": [common.target("finished nodes re-executed", results["finished_nodes_reexecuted"], 0, "==")],
        "machine": machine,
    }
    result["seconds"] = clock.seconds()
    r = resumed
    table = common.md_table(
        ["from launching `teachgraph resume` to", "seconds"],
        [("the resume point (\"resuming ... at train\")", r["resume_point_s"]),
         ("the first new work (the interrupted node's first message)", r["first_node_start_s"]),
         ("the first new event (the interrupted node finished)", r["first_event_s"]),
         ("the end of the run (resume process total)", r["total_s"]),
         ("for scale: `python -m teachgraph graph` (start-up and imports only)", startup)])
    notes = (f"\n\nKilled with {kill['next_at_kill']} next after {len(before)} finished nodes; the resume ran "
             f"{results['events_after_resume']} nodes, first {results['first_new_event']}, and re-executed "
             f"**{results['finished_nodes_reexecuted']}** finished nodes; the run "
             f"{'completed' if results['run_completed'] else 'did NOT complete'}.")
    common.write_result(common.out_path(NAME, args), result, table + notes)
    print(table + notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
