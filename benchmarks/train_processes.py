"""Training throughput in 1 vs 2 processes on CPU (train_processes: torchrun, DDP over gloo).

    python benchmarks/train_processes.py [--smoke] [--examples 2048] [--out benchmarks/results/train_processes.json]

The default tiny student's size (hidden 128, 4 layers, 4 heads, FFN 512; freshly initialised, seed 0)
trains one epoch on synthetic-domain examples, batch 64, packed, in: one process with one torch thread,
one process with two threads, and two torchrun processes of one thread each (DDP, the same global batch;
FSDP2 too). tokens/s is HFStudent.train's own (answer+prompt tokens over the training loop's seconds;
rank 0's loop for torchrun), so process start-up is reported apart (`wall_s` includes it). Scaling
efficiency = tokens/s of 2 processes / (2 x tokens/s of 1 process x 1 thread). The loss curves are
compared step by step (max |difference| over the first 5 steps, as the train_processes test asserts
< 1e-5, and over all steps: float rounding accumulates, and one process with 2 threads differs from one
with 1 thread by as much).

--smoke: a 32-wide, 1-layer student, 256 examples (a check that it works; the numbers mean nothing).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "train_processes"


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(NAME, __doc__)
    parser.add_argument("--examples", type=int, help="training examples (default 2048, smoke 256)")
    args = parser.parse_args(argv)
    clock, machine = common.Stopwatch(), common.machine_record()
    examples_n = args.examples or (256 if args.smoke else 2048)

    import torch

    from teachgraph.domains import SyntheticDomain
    from teachgraph.students.base import TrainSettings
    from teachgraph.students.distributed import train_in_processes
    from teachgraph.students.hf import HFStudent, load_student
    from teachgraph.students.tiny import TinyConfig, build_tiny_student

    config = (TinyConfig(hidden_size=32, num_layers=1, num_heads=1, intermediate_size=64) if args.smoke
              else TinyConfig(hidden_size=128, num_layers=4, num_heads=4, intermediate_size=512))
    domain = SyntheticDomain(seed=0)
    examples = domain.load_split("val")
    examples = (examples * (examples_n // len(examples) + 1))[:examples_n]
    settings = TrainSettings(epochs=1, batch_size=64, learning_rate=2e-3, seed=0)
    load = {"finetune": "full", "lora": None, "max_new_tokens": 8, "device": "cpu"}
    rows, runs = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-train-processes-") as tmp:
        base = Path(tmp) / "base"
        model, tokenizer = build_tiny_student(config, seed=0)
        HFStudent(model=model, tokenizer=tokenizer, max_new_tokens=8).save(str(base))
        for threads in (1, 2):
            torch.set_num_threads(threads)
            started = time.perf_counter()
            stats = load_student(str(base), **load).train(examples, settings)
            runs[f"1 process x {threads} thread{'s' if threads > 1 else ''}"] = dict(stats, wall_s=round(time.perf_counter() - started, 2))
        torch.set_num_threads(machine["torch_threads"])
        for parallel in ("ddp", "fsdp"):
            started = time.perf_counter()
            stats = train_in_processes(str(base), examples, settings, processes=2, parallel=parallel,
                                       out_dir=Path(tmp) / f"out-{parallel}", job_dir=Path(tmp) / f"job-{parallel}",
                                       load=load)
            runs[f"2 processes x 1 thread ({parallel})"] = dict(stats, wall_s=round(time.perf_counter() - started, 2))
    reference = runs["1 process x 1 thread"]["losses"]
    results = {}
    for name, stats in runs.items():
        results[name] = {k: stats[k] for k in ("steps", "tokens", "seconds", "tokens_per_second", "wall_s")}
        differences = [abs(a - b) for a, b in zip(stats["losses"], reference)]
        results[name]["max_loss_difference_vs_1_process"] = max(differences)
        results[name]["max_loss_difference_first_5_steps"] = max(differences[:5])
        rows.append((name, stats["steps"], stats["tokens"], stats["seconds"], stats["tokens_per_second"],
                     stats["wall_s"], results[name]["max_loss_difference_first_5_steps"],
                     results[name]["max_loss_difference_vs_1_process"]))
    one = results["1 process x 1 thread"]["tokens_per_second"]
    for parallel in ("ddp", "fsdp"):
        two = results[f"2 processes x 1 thread ({parallel})"]["tokens_per_second"]
        results[f"scaling_efficiency_{parallel}"] = round(two / (2 * one), 3)
    results["speedup_2_processes_vs_1_process_2_threads"] = round(
        results["2 processes x 1 thread (ddp)"]["tokens_per_second"]
        / results["1 process x 2 threads"]["tokens_per_second"], 3)
    result = {
        "benchmark": NAME, "smoke": args.smoke,
        "what": "training tokens/s in 1 vs 2 processes on CPU (torchrun, gloo), the same global batch",
        "config": {"student": dataclasses.asdict(config), "examples": examples_n,
                   "batch_size": 64, "epochs": 1, "pack": True, "seed": 0},
        "results": results,
        "targets": [common.target("2-process scaling efficiency (DDP, vs 1 process x 1 thread)",
                                  results["scaling_efficiency_ddp"], 0.7, ">="),
                    common.target("max abs loss difference over the first 5 steps, 2 processes vs 1 (DDP)",
                                  results["2 processes x 1 thread (ddp)"]["max_loss_difference_first_5_steps"], 1e-5, "<="),
                    common.target("max abs loss difference over the first 5 steps, 2 processes vs 1 (FSDP2)",
                                  results["2 processes x 1 thread (fsdp)"]["max_loss_difference_first_5_steps"], 1e-5, "<=")],
        "machine": machine,
    }
    result["seconds"] = clock.seconds()
    table = common.md_table(["run", "steps", "tokens", "loop s", "tokens/s", "wall s (start-up incl.)",
                             "max abs Δloss vs 1 process, steps 1-5", "all steps"], rows)
    table += (f"\n\nScaling efficiency (2 processes vs 2 x 1 process 1 thread): DDP {results['scaling_efficiency_ddp']}, "
              f"FSDP2 {results['scaling_efficiency_fsdp']}; 2 processes vs 1 process with 2 threads: "
              f"{results['speedup_2_processes_vs_1_process_2_threads']}x.")
    common.write_result(common.out_path(NAME, args), result, table)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
