"""Evaluation throughput: batched greedy decoding (`HFStudent.predict`) against one prompt at a time.

    python benchmarks/eval_throughput.py [--smoke] [--repeats 3] [--out benchmarks/results/eval_throughput.json]

The default tiny base student (cached; built first) answers the synthetic domain's validation split,
as the evaluate node does: `predict(prompts)` (left-padded batches of 256, KV cache, stop at eos), and
the same prompts through `predict([prompt])` one by one. Prompts/s for both (median of --repeats
alternating runs after an untimed warm-up), their ratio, and whether both give the same answers.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "eval_throughput"


def main(argv: list[str] | None = None) -> int:
    p = common.parser(NAME, __doc__)
    p.add_argument("--repeats", type=int, help="alternating runs of each (default 3; 1 with --smoke)")
    args = p.parse_args(argv)
    clock, machine = common.Stopwatch(), common.machine_record()
    repeats = args.repeats or (1 if args.smoke else 3)

    from teachgraph.graph import make_context
    from teachgraph.students import base_student_path, student_from_context
    from teachgraph.domains import load_domain

    ctx = make_context(common.tiny_config() if args.smoke else {})
    domain = load_domain(ctx)
    student = student_from_context(ctx, base_student_path(ctx, domain, log=print), domain)
    prompts = [e["prompt"] for e in domain.load_split("val")]

    def batched() -> list[str]:
        return student.predict(prompts)

    def one_by_one() -> list[str]:
        return [student.predict([prompt])[0] for prompt in prompts]

    student.predict(prompts[:32])  # warm-up, untimed
    student.predict(prompts[:1])
    seconds: dict[str, list[float]] = {"batched": [], "one_by_one": []}
    answers: dict[str, list[str]] = {}
    for round_ in range(repeats):
        for name, fn in ((("batched", batched), ("one_by_one", one_by_one)) if round_ % 2 == 0 else
                         (("one_by_one", one_by_one), ("batched", batched))):
            started = time.perf_counter()
            answers[name] = fn()
            seconds[name].append(time.perf_counter() - started)
        print(f"round {round_ + 1}/{repeats}: batched {len(prompts) / seconds['batched'][-1]:,.1f} prompts/s, "
              f"one by one {len(prompts) / seconds['one_by_one'][-1]:,.1f} prompts/s")

    median = {k: common.median(v) for k, v in seconds.items()}
    rate = {k: len(prompts) / s for k, s in median.items()}
    agree = sum(a == b for a, b in zip(answers["batched"], answers["one_by_one"])) / len(prompts)
    correct = {k: sum(domain.score(a, e) for a, e in zip(v, domain.load_split("val"))) / len(prompts)
               for k, v in answers.items()}
    results = {
        "prompts": len(prompts), "batch_size": 256, "max_new_tokens": student.max_new_tokens,
        "seconds": {k: [round(x, 4) for x in v] for k, v in seconds.items()},
        "median_seconds": {k: round(v, 4) for k, v in median.items()},
        "prompts_per_s": {k: round(v, 2) for k, v in rate.items()},
        "speedup": round(rate["batched"] / rate["one_by_one"], 3),
        "answer_agreement": round(agree, 4),
        "accuracy": {k: round(v, 4) for k, v in correct.items()},
    }
    result = {
        "benchmark": NAME, "smoke": args.smoke,
        "what": "validation prompts/s of batched HFStudent.predict against one-by-one generation",
        "config": {"configuration": "TINY (tests/conftest.py)" if args.smoke else "TeachContext() default",
                   "split": "val", "repeats": repeats, "tiny_hidden_size": ctx.tiny_hidden_size,
                   "tiny_layers": ctx.tiny_layers},
        "results": results,
        "targets": [],  # the issue sets none; the batched/one-by-one ratio is what to watch
        "machine": machine,
    }
    result["seconds"] = clock.seconds()
    table = common.md_table(
        ["", "median s", "prompts/s", "accuracy"],
        [("batched `predict` (batch 256)", median["batched"], rate["batched"], correct["batched"]),
         ("one prompt at a time", median["one_by_one"], rate["one_by_one"], correct["one_by_one"])])
    notes = (f"\n\n{len(prompts)} validation prompts, up to {student.max_new_tokens} new tokens, median of {repeats}. "
             f"Batched is **{results['speedup']:.1f}x** faster; the two agree on {100 * agree:.1f}% of answers.")
    common.write_result(common.out_path(NAME, args), result, table + notes)
    print(table + notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
