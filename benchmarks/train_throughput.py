"""Training throughput: the student's `train` path against a bare PyTorch loop, and achieved FLOP/s.

    python benchmarks/train_throughput.py [--smoke] [--repeats 5] [--out benchmarks/results/train_throughput.json]

Data: a realistic cycle of the default run: budget / cycles generated examples spread over every
(skill, subskill) of the synthetic domain, plus replay_fraction x as many examples replayed from the
base student's pretraining sample (what `nodes/train.py` trains on in replay mode). One epoch, the
configuration's batch size and learning rate, on the default tiny base student (cached; built first).

- train path: `HFStudent.train` (students/hf.py) on that data, timed from the call to its return
  (tokenisation, collation, lr schedule and progress callback included); its own `tokens_per_second`
  (timed after tokenisation) is reported too.
- bare loop: the same model weights, the same batches in the same order (collated beforehand, untimed),
  and per step only forward, backward, gradient clipping and an AdamW step.

Both count the same tokens (non-padding tokens of each batch). Runs alternate (train, bare, bare, train,
...) for --repeats rounds after one untimed warm-up of each, every run starting from freshly loaded base
weights; the ratio is the median of the per-round ratios (target >= 0.9).

FLOPs: counted with `torch.utils.flop_counter.FlopCounterMode` over one untimed pass of the bare loop's
batches (forward + backward matmuls and attention, padding included; optimizer and element-wise work
not counted), and for comparison 6 x parameters x tokens. Achieved FLOP/s = counted FLOPs / median
seconds, against the machine's measured fp32 matmul rate (a timed square `torch.mm`, best of several).
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "train_throughput"
TARGET_RATIO = 0.9


def cycle_data(ctx, domain, base_path: str) -> list[dict]:
    """budget / cycles fresh examples over every (skill, subskill), plus the replayed share."""
    from teachgraph.students.pretrain import REPLAY_FILE
    from teachgraph.io import read_jsonl

    catalog = domain.skill_catalog()
    pairs = [(skill, sub) for skill, subs in catalog.items() for sub in subs]
    per_pair = max(1, (ctx.budget // ctx.cycles) // len(pairs))
    fresh = []
    for i, (skill, sub) in enumerate(pairs):
        fresh += domain.generate(skill, sub, None, per_pair, seed=90_000 + i)
    pool = read_jsonl(Path(base_path, REPLAY_FILE))
    replay = random.Random(0).sample(pool, min(len(pool), round(ctx.replay_fraction * len(fresh))))
    return fresh + replay


def collate(student, examples, settings) -> list[tuple]:
    """The batches HFStudent.train builds for these settings (same order, padding and labels)."""
    import torch

    sequences, label_start = student._training_ids(examples)
    generator = torch.Generator().manual_seed(settings.seed)
    order = torch.randperm(len(sequences), generator=generator).tolist()
    pad = student.tokenizer.pad_token_id
    batches = []
    for start in range(0, len(order), settings.batch_size):
        batch = order[start:start + settings.batch_size]
        width = max(len(sequences[i]) for i in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            seq = sequences[i]
            input_ids[row, :len(seq)] = torch.tensor(seq)
            labels[row, label_start[i]:len(seq)] = torch.tensor(seq[label_start[i]:])
            attention[row, :len(seq)] = 1
        batches.append((input_ids, attention, labels))
    return batches


def bare_loop(model, batches, settings) -> None:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    model.train()
    for input_ids, attention, labels in batches:
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
        optimizer.step()
    model.eval()


def matmul_flops(n: int, repeats: int) -> dict:
    """fp32 FLOP/s of a square n x n torch.mm on this machine (best and median of `repeats`)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - started)
    flops = 2 * n**3
    return {"n": n, "repeats": repeats, "best_flops_per_s": flops / min(times),
            "median_flops_per_s": flops / common.median(times)}


def main(argv: list[str] | None = None) -> int:
    p = common.parser(NAME, __doc__)
    p.add_argument("--repeats", type=int, help="alternating rounds (default 5; 2 with --smoke)")
    args = p.parse_args(argv)
    clock, machine = common.Stopwatch(), common.machine_record()
    repeats = args.repeats or (2 if args.smoke else 5)

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from teachgraph.graph import make_context
    from teachgraph.students import TrainSettings, base_student_path, student_from_context
    from teachgraph.domains import load_domain
    from teachgraph.nodes.common import emit

    ctx = make_context(common.tiny_config() if args.smoke else {})
    domain = load_domain(ctx)
    base = base_student_path(ctx, domain, log=print)
    examples = cycle_data(ctx, domain, base)
    settings = TrainSettings(epochs=1, batch_size=ctx.batch_size, learning_rate=ctx.learning_rate, seed=1)

    def fresh():
        return student_from_context(ctx, base, domain)

    def progress(step: int, total: int, loss: float) -> None:  # what nodes/train.py passes
        if step == total or step % 10 == 0:
            emit({"type": "progress", "node": "train", "step": step, "total": total, "loss": round(loss, 4)})

    student = fresh()
    batches = collate(student, examples, settings)
    tokens = sum(int(attention.sum()) for _, attention, _ in batches)
    padded = sum(attention.numel() for _, attention, _ in batches)
    params = sum(p.numel() for p in student.model.parameters() if p.requires_grad)
    with FlopCounterMode(display=False) as counter:  # untimed: one pass over the same batches
        bare_loop(student.model, batches, settings)
    counted_flops = counter.get_total_flops()

    # warm-up of both paths (first-call allocations), untimed
    student.train(examples[:4 * settings.batch_size], settings)
    bare_loop(fresh().model, batches[:4], settings)

    runs = {"train_path": [], "train_path_internal": [], "bare_loop": []}
    for round_ in range(repeats):
        order = ("train_path", "bare_loop") if round_ % 2 == 0 else ("bare_loop", "train_path")
        for which in order:
            student = fresh()
            started = time.perf_counter()
            if which == "train_path":
                stats = student.train(examples, settings, progress=progress)
                assert stats["tokens"] == tokens, (stats["tokens"], tokens)
                runs["train_path_internal"].append(stats["seconds"])
            else:
                bare_loop(student.model, batches, settings)
            runs[which].append(time.perf_counter() - started)
        print(f"round {round_ + 1}/{repeats}: train path {tokens / runs['train_path'][-1]:,.0f} tok/s, "
              f"bare loop {tokens / runs['bare_loop'][-1]:,.0f} tok/s")

    ratios = [bare / path for path, bare in zip(runs["train_path"], runs["bare_loop"])]
    seconds = {k: common.median(v) for k, v in runs.items()}
    rate = {k: tokens / s for k, s in seconds.items()}
    mm = matmul_flops(512 if args.smoke else 2048, 3 if args.smoke else 7)
    achieved = counted_flops / seconds["train_path"]
    achieved_bare = counted_flops / seconds["bare_loop"]
    results = {
        "examples": len(examples), "steps": len(batches), "tokens": tokens, "padded_tokens": padded,
        "parameters": params,
        "seconds": {k: [round(x, 4) for x in v] for k, v in runs.items()},
        "median_seconds": {k: round(v, 4) for k, v in seconds.items()},
        "tokens_per_s": {k: round(v, 1) for k, v in rate.items()},
        "ratio_per_round": [round(r, 4) for r in ratios],
        "ratio_median": round(common.median(ratios), 4),
        "ratio_of_medians": round(seconds["bare_loop"] / seconds["train_path"], 4),
        "ratio_internal": round(seconds["bare_loop"] / seconds["train_path_internal"], 4),
        "flops": {"counted_per_epoch": counted_flops, "counted_per_token": round(counted_flops / tokens, 1),
                  "six_n_t_per_epoch": 6 * params * tokens,
                  "achieved_flops_per_s_train_path": round(achieved), "achieved_flops_per_s_bare": round(achieved_bare),
                  "matmul": {k: (round(v) if isinstance(v, float) else v) for k, v in mm.items()},
                  "fraction_of_matmul_train_path": round(achieved / mm["best_flops_per_s"], 4),
                  "fraction_of_matmul_bare": round(achieved_bare / mm["best_flops_per_s"], 4)},
    }
    result = {
        "benchmark": NAME, "smoke": args.smoke,
        "what": "tokens/s of HFStudent.train against a bare PyTorch loop (same model, data, batches), "
                "and achieved FLOP/s against the machine's matmul FLOP/s",
        "config": {"configuration": "TINY (tests/conftest.py)" if args.smoke else "TeachContext() default",
                   "batch_size": ctx.batch_size, "learning_rate": ctx.learning_rate, "epochs_per_run": 1,
                   "repeats": repeats, "finetune": ctx.finetune, "tiny_hidden_size": ctx.tiny_hidden_size,
                   "tiny_layers": ctx.tiny_layers, "torch_threads": torch.get_num_threads(),
                   "flop_count": "FlopCounterMode, forward+backward, one epoch of the same batches"},
        "results": results,
        "targets": [common.target("train path / bare loop tokens/s (median of rounds)", results["ratio_median"],
                                  TARGET_RATIO, ">=")],
        "machine": machine,
    }
    result["seconds"] = clock.seconds()
    f = results["flops"]
    table = common.md_table(
        ["", "median s / epoch", "tokens/s", "achieved FLOP/s", "of matmul peak"],
        [("`HFStudent.train`", seconds["train_path"], f"{rate['train_path']:,.0f}", f"{achieved:.3g}",
          f"{100 * f['fraction_of_matmul_train_path']:.1f}%"),
         ("bare PyTorch loop", seconds["bare_loop"], f"{rate['bare_loop']:,.0f}", f"{achieved_bare:.3g}",
          f"{100 * f['fraction_of_matmul_bare']:.1f}%")])
    notes = (f"\n\n{len(examples)} examples, {len(batches)} steps of batch {ctx.batch_size}, {tokens:,} tokens "
             f"({padded:,} with padding), {params:,} parameters. Ratio (median of {repeats} alternating rounds) "
             f"**{results['ratio_median']:.3f}**; `train`'s own timer (after tokenisation): "
             f"{results['ratio_internal']:.3f}. FLOPs counted by FlopCounterMode: {counted_flops:.3g} per epoch "
             f"({f['counted_per_token']:.0f} per token; 6·N·T would say {f['six_n_t_per_epoch']:.3g}). "
             f"Matmul peak: {mm['best_flops_per_s']:.3g} FLOP/s ({mm['n']}x{mm['n']} fp32 `torch.mm`, best of "
             f"{mm['repeats']}).")
    common.write_result(common.out_path(NAME, args), result, table + notes)
    print(table + notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
