"""Throughput of the LLM teacher's data generator against the fake teacher server with a fixed latency.

    python benchmarks/teacher_throughput.py [--latency 0.5] [--concurrency 16] [--rounds 10] [--batch 25]
                                            [--out benchmarks/results/teacher_throughput.json]

Every generator request takes `latency` seconds on the server, so with `concurrency` requests in flight
the ideal is concurrency / latency requests per second (x batch examples). The script reports the
achieved rate and its fraction of the ideal (target >= 0.85): how well the client's bounded
concurrency keeps the server busy (the same pool that lets SGLang batch requests). The client runs as in
a real run: structured outputs, validation, the response cache in a fresh run directory, token counts.
One untimed warm-up request comes first (lazy imports, the first connection). Client and server share
the machine's CPUs, so on a small machine the server's own work counts against the client.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.5, help="server seconds per request (L)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=10, help="requests per concurrency slot")
    parser.add_argument("--batch", type=int, default=25, help="examples per request")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "teacher_throughput.json"))
    args = parser.parse_args(argv)

    from agents.llm import LLMGenerator
    from agents.llm_client import TeacherClient
    from domains import get_domain
    from graph.context import make_context
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
    result = {
        "latency_s": args.latency, "concurrency": args.concurrency, "batch": args.batch,
        "requests": stats["answered"], "examples": len(examples), "seconds": round(seconds, 3),
        "requests_per_s": round(requests_per_s, 3), "examples_per_s": round(len(examples) / seconds, 1),
        "ideal_requests_per_s": ideal_requests_per_s,
        "ideal_examples_per_s": ideal_requests_per_s * args.batch,
        "fraction_of_ideal": round(requests_per_s / ideal_requests_per_s, 4),
        "target": 0.85,
        "client_usage": client.usage(),
    }
    result["meets_target"] = result["fraction_of_ideal"] >= result["target"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "client_usage"}, indent=2))
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
