"""Throughput of the LLM teacher's data generator against the fake teacher server with a fixed latency.

    python benchmarks/teacher_throughput.py [--smoke] [--latency 0.5] [--concurrency 16] [--rounds 10] [--batch 25]
                                            [--out benchmarks/results/teacher_throughput.json]

Every generator request takes `latency` seconds on the server, so with `concurrency` requests in flight
the ideal is concurrency / latency requests per second (x batch examples). The script reports the
achieved rate and its fraction of the ideal (target >= 0.85): how well the client's bounded
concurrency keeps the server busy (the same pool that lets SGLang batch requests). The client runs as in
a real run: structured outputs, validation, the response cache in a fresh run directory, token counts.
One untimed warm-up request comes first (lazy imports, the first connection). Client and server share
the machine's CPUs, so on a small machine the server's own work counts against the client.

--smoke: latency 0.1 s, concurrency 4, 2 rounds (a check that it works; the numbers mean nothing).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "teacher_throughput"
TARGET = 0.85


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(NAME, __doc__)
    parser.add_argument("--latency", type=float, help="server seconds per request (L; default 0.5, smoke 0.1)")
    parser.add_argument("--concurrency", type=int, help="default 16, smoke 4")
    parser.add_argument("--rounds", type=int, help="requests per concurrency slot (default 10, smoke 2)")
    parser.add_argument("--batch", type=int, default=25, help="examples per request")
    args = parser.parse_args(argv)
    clock, machine = common.Stopwatch(), common.machine_record()
    for field, full, smoke in (("latency", 0.5, 0.1), ("concurrency", 16, 4), ("rounds", 10, 2)):
        if getattr(args, field) is None:
            setattr(args, field, smoke if args.smoke else full)

    from teachgraph.teachers.llm import LLMGenerator
    from teachgraph.teachers.llm_client import TeacherClient
    from teachgraph.domains import get_domain
    from teachgraph.graph.context import make_context
    from tests.fake_teacher_server import FakeTeacher

    requests_total = args.concurrency * args.rounds
    val = get_domain("synthetic").load_split("val")  # distinct requests (identical ones would hit the cache)
    requests = [{"skill": val[i % len(val)]["skill"], "subskill": None, "difficulty": None, "count": args.batch,
                 "exemplars": [val[i % len(val)]["prompt"], f"variant {i}"]} for i in range(requests_total)]
    with FakeTeacher("--latency", str(args.latency)) as server, tempfile.TemporaryDirectory() as run_dir:
        ctx = make_context(teacher="llm", teacher_url=server.url, teacher_model=server.model, run_dir=run_dir,
                           teacher_concurrency=args.concurrency, teacher_batch_size=args.batch)
        client = TeacherClient(ctx, Path(run_dir) / "teacher" / "cache.sqlite")
        generator = LLMGenerator(client, get_domain("synthetic"), batch_size=args.batch, topups=0)
        # one untimed request first: lazy imports and the first connection are a one-off cost per process
        generator.generate_many([{"skill": "parity", "count": 1, "exemplars": ["warm-up"]}], cycle=0, seed=0)
        server.control(reset_stats=True)
        started = time.perf_counter()
        examples = generator.generate_many(requests, cycle=1, seed=0)
        seconds = time.perf_counter() - started
        stats = server.stats()
    ideal_requests_per_s = args.concurrency / args.latency
    requests_per_s = stats["answered"] / seconds
    results = {
        "requests": stats["answered"], "examples": len(examples), "seconds": round(seconds, 3),
        "requests_per_s": round(requests_per_s, 3), "examples_per_s": round(len(examples) / seconds, 1),
        "ideal_requests_per_s": ideal_requests_per_s,
        "ideal_examples_per_s": ideal_requests_per_s * args.batch,
        "fraction_of_ideal": round(requests_per_s / ideal_requests_per_s, 4),
        "client_usage": client.usage(),
    }
    result = {
        "benchmark": NAME, "smoke": args.smoke,
        "what": "LLM teacher generator throughput against the fake teacher server with a fixed latency, "
                "as a fraction of concurrency / latency",
        "config": {"latency_s": args.latency, "concurrency": args.concurrency, "rounds": args.rounds,
                   "batch": args.batch},
        "results": results,
        "targets": [common.target("fraction of ideal request rate", results["fraction_of_ideal"], TARGET, ">=")],
        "machine": machine,
    }
    result["seconds"] = clock.seconds()
    table = common.md_table(
        ["latency s", "concurrency", "requests", "examples/s", "requests/s", "ideal requests/s", "fraction"],
        [(args.latency, args.concurrency, results["requests"], results["examples_per_s"], results["requests_per_s"],
          ideal_requests_per_s, results["fraction_of_ideal"])])
    common.write_result(common.out_path(NAME, args), result, table)
    print(json.dumps({k: v for k, v in results.items() if k != "client_usage"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
