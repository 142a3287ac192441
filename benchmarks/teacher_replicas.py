"""Teacher requests/s through sglang-router at 1 vs 2 workers with a fixed latency (fake workers).

    python benchmarks/teacher_replicas.py [--smoke] [--latency 0.1] [--requests 200] [--concurrency 8]
                                          [--out benchmarks/results/teacher_replicas.json]

Each worker (tests/fake_teacher_server.py --slots 1) works on one request at a time for `latency`
seconds and queues the rest, like an engine at capacity: one worker serves at most 1/latency requests/s.
The teacher client (as in a run: structured output, validation, backpressure within teacher_concurrency)
sends `requests` distinct planner calls through `teachgraph serve-teacher --replicas N`'s router
(teachgraph.replicas.Replicas, round-robin) for N = 1 and 2, and straight to one worker for the router's
own overhead. Reported: requests/s, the fraction of the ideal N/latency, the 2-vs-1 speed-up, and the
client's in-flight limit at the end (backpressure settles it near what the workers can take). Start-up
times (workers healthy, router with every worker registered) are reported too.

--smoke: 40 requests (a check that it works; the numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "teacher_replicas"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(url: str, model: str, run_dir: str, requests: int, concurrency: int) -> dict:
    from teachgraph.domains import get_domain
    from teachgraph.graph.context import make_context
    from teachgraph.teachers import prompts
    from teachgraph.teachers.llm_client import TeacherClient
    from teachgraph.teachers.schemas import PlanResponse

    ctx = make_context(teacher="llm", teacher_url=url, teacher_model=model, run_dir=run_dir,
                       teacher_concurrency=concurrency)
    client = TeacherClient(ctx, None)
    domain = get_domain("synthetic")

    def call(i: int):
        messages = prompts.messages("planner", domain, {"budget": 5 + i, "skills": [{"skill": "a"}]}, budget=5 + i)
        return client.ask("planner", messages, PlanResponse)

    call(-1)  # warm-up: the first connection, lazy imports
    started = time.perf_counter()
    answers = client.map(call, list(range(requests)))
    seconds = time.perf_counter() - started
    usage = client.usage()
    assert len(answers) == requests and usage["failures"] == 0, usage
    return {"requests": requests, "seconds": round(seconds, 3), "requests_per_s": round(requests / seconds, 2),
            "limit_at_end": client.limiter.slots, "peak_in_flight": client.limiter.peak_in_flight,
            "concurrency_decreases": usage["concurrency_decreases"], "retries": usage["retries"]}


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(NAME, __doc__)
    parser.add_argument("--latency", type=float, default=0.1, help="worker seconds per request")
    parser.add_argument("--requests", type=int, help="calls per measurement (default 200, smoke 40)")
    parser.add_argument("--concurrency", type=int, default=8, help="teacher_concurrency")
    args = parser.parse_args(argv)
    clock, machine = common.Stopwatch(), common.machine_record()
    requests = args.requests or (40 if args.smoke else 200)

    from teachgraph.replicas import Replicas, router_python
    from teachgraph.students.tiny import char_tokenizer

    started = time.perf_counter()
    python = router_python(log=print)
    router_ready_s = round(time.perf_counter() - started, 2)
    results: dict = {"router_python_ready_s": router_ready_s}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-teacher-replicas-") as tmp:
        char_tokenizer().save_pretrained(tmp + "/tokenizer")
        worker = (f"{{python}} {common.ROOT / 'tests' / 'fake_teacher_server.py'} --port {{port}} "
                  f"--model-path {{model_path}} --latency {args.latency} --slots 1")
        for n in (1, 2):
            ns = argparse.Namespace(host="127.0.0.1", port=free_port(), worker_base_port=free_port(), replicas=n,
                                    worker_command=worker, model_path=tmp + "/tokenizer", router_policy="round_robin",
                                    wait=120.0)
            started = time.perf_counter()
            with Replicas(ns, Path(tmp) / f"logs-{n}", python) as replicas:
                ready = round(time.perf_counter() - started, 2)
                if n == 1:  # the same worker without the router: the router's own cost
                    direct = measure(replicas.workers[0].url + "/v1", "fake-teacher", tmp, requests, args.concurrency)
                    direct["ideal_requests_per_s"] = round(1 / args.latency, 2)
                    direct["fraction_of_ideal"] = round(direct["requests_per_s"] * args.latency, 3)
                    results["1 worker, no router"] = direct
                    rows.append(("1 worker, no router", "", direct["requests_per_s"], direct["ideal_requests_per_s"],
                                 direct["fraction_of_ideal"], direct["limit_at_end"], direct["peak_in_flight"]))
                through = measure(replicas.url, "fake-teacher", tmp, requests, args.concurrency)
            through.update(start_up_s=ready, ideal_requests_per_s=round(n / args.latency, 2),
                           fraction_of_ideal=round(through["requests_per_s"] * args.latency / n, 3))
            results[f"{n} worker{'s' if n > 1 else ''} behind the router"] = through
            rows.append((f"{n} worker{'s' if n > 1 else ''} behind the router", ready, through["requests_per_s"],
                         through["ideal_requests_per_s"], through["fraction_of_ideal"], through["limit_at_end"],
                         through["peak_in_flight"]))
    speedup = round(results["2 workers behind the router"]["requests_per_s"]
                    / results["1 worker behind the router"]["requests_per_s"], 3)
    results["speedup_2_vs_1_workers"] = speedup
    result = {
        "benchmark": NAME, "smoke": args.smoke,
        "what": "teacher requests/s through sglang-router at 1 vs 2 fake workers (fixed latency, one request at a "
                "time each), client with backpressure",
        "config": {"latency_s": args.latency, "requests": requests, "teacher_concurrency": args.concurrency,
                   "worker_slots": 1, "policy": "round_robin"},
        "results": results,
        "targets": [common.target("requests/s, 2 workers vs 1 through the router", speedup, 1.7, ">=")],
        "machine": machine,
    }
    result["seconds"] = clock.seconds()
    table = common.md_table(["setup", "start-up s", "requests/s", "ideal requests/s", "fraction of ideal",
                             "client limit at end", "client peak in flight"], rows)
    table += f"\n\n2 workers vs 1 through the router: {speedup}x."
    common.write_result(common.out_path(NAME, args), result, table)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
