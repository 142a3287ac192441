"""Training throughput: useful (non-padding) tokens/s of the student's `train` path, padded as before
and packed as now, in fp32 and bf16 autocast, against a bare PyTorch loop; useful FLOP/s against the
machine's measured matmul rates.

    python benchmarks/train_throughput.py [--smoke] [--repeats 5] [--out benchmarks/results/train_throughput.json]

Data: a realistic cycle of the default run: budget / cycles generated examples spread over every
(skill, subskill) of the synthetic domain, plus replay_fraction x as many examples replayed from the
base student's pretraining sample (what `nodes/train.py` trains on in replay mode). One epoch, the
configuration's batch size and learning rate, on the default tiny base student (cached; built first).

Paths (each `HFStudent.train` on that data, timed from the call to its return: tokenisation, collation,
lr schedule and progress callback included):
- padded: `pack=False, precision="fp32"`, one right-padded row per example (the path before issue 13);
- packed: the defaults (`pack=True`; `precision="auto"`, which is fp32 on a CPU);
- packed bf16: `pack=True, precision="bf16"` (bf16 autocast over fp32 master weights);
- bare loop: the same model weights and the padded path's batches in the same order (collated
  beforehand, untimed), and per step only forward, backward, gradient clipping and an AdamW step.

All count the same useful tokens (every example's tokens once). Runs rotate their order every round for
--repeats rounds after one untimed warm-up of each, every run starting from freshly loaded base
weights; each ratio is the median of the per-round ratios (targets: packed / padded >= 1.3, padded /
bare >= 0.9). With --accuracy, also each path's validation accuracy after a whole cycle's training
(the configuration's epochs) for seeds 0-2, and a control that changes only float rounding (the
padded path with its batches summed in two micro-batches).

FLOPs, by `torch.utils.flop_counter.FlopCounterMode` (forward + backward matmuls and attention;
optimizer and element-wise work not counted): useful FLOPs are those of every example computed alone
(one pass per distinct length, times its count); each layout's computed FLOPs are counted over one
untimed pass of its batches. Useful FLOP/s = useful FLOPs / median seconds, against the machine's fp32
and bf16 matmul rates (a timed square `torch.mm`, best of several).
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "train_throughput"
TARGET_PACKED = 1.3
TARGET_BARE = 0.9
PATHS = {"padded": {"pack": False, "precision": "fp32"}, "packed": {},
         "packed_bf16": {"pack": True, "precision": "bf16"}}
# --accuracy also trains this control: the padded path's math with the float rounding changed (the same
# batches summed in two halves), which shows how far rounding alone moves accuracy after a cycle
CONTROL = {"padded_accum2": {"pack": False, "precision": "fp32", "grad_accum_steps": 2}}


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


def collate(student, examples, settings, pack: bool = False) -> list[dict]:
    """The batches HFStudent.train builds for these settings (same order, layout and labels)."""
    import torch

    sequences, label_start = student._training_ids(examples)
    generator = torch.Generator().manual_seed(settings.seed)
    order = torch.randperm(len(sequences), generator=generator).tolist()
    return [student._collate(sequences, label_start, order[start:start + settings.batch_size], pack)[0]
            for start in range(0, len(order), settings.batch_size)]


def bare_loop(model, batches, settings) -> None:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    model.train()
    for inputs in batches:
        loss = model(**inputs, use_cache=False).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
        optimizer.step()
    model.eval()


def counted_flops(model, batches) -> int:
    """Forward + backward FLOPs of these batches (no optimizer step)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.train()
    with FlopCounterMode(display=False) as counter:
        for inputs in batches:
            model(**inputs, use_cache=False).loss.backward()
    model.zero_grad(set_to_none=True)
    model.eval()
    return counter.get_total_flops()


def useful_flops(student, examples) -> int:
    """FLOPs of computing every example alone: one counted pass per distinct length, times its count."""
    from collections import Counter

    sequences, label_start = student._training_ids(examples)
    first = {}
    for i, seq in enumerate(sequences):
        first.setdefault(len(seq), i)
    counts = Counter(len(s) for s in sequences)
    return sum(counts[n] * counted_flops(student.model, [student._collate(sequences, label_start, [i], False)[0]])
               for n, i in first.items())


def accuracy_runs(ctx, domain, base: str, examples, seeds, fresh) -> dict:
    """Validation accuracy after one cycle's training (the configuration's epochs) per path and seed:
    the same base student and data, the seed choosing the data order."""
    from teachgraph.students import TrainSettings

    val = domain.load_split("val")
    prompts = [e["prompt"] for e in val]
    out = {"epochs": ctx.epochs, "validation_examples": len(val), "base": None, "paths": {}}
    base_answers = fresh().predict(prompts)
    out["base"] = round(sum(domain.score(a, e) for a, e in zip(base_answers, val)) / len(val), 4)
    for name, overrides in {**PATHS, **CONTROL}.items():
        rows = []
        for seed in seeds:
            settings = TrainSettings(epochs=ctx.epochs, batch_size=ctx.batch_size, learning_rate=ctx.learning_rate,
                                     seed=seed, **overrides)
            student = fresh()
            stats = student.train(examples, settings)
            answers = student.predict(prompts)
            acc = sum(domain.score(a, e) for a, e in zip(answers, val)) / len(val)
            rows.append({"seed": seed, "val_accuracy": round(acc, 4), "loss_last": stats["loss_last"],
                         "useful_tokens_per_s": stats["tokens_per_second"]})
            print(f"accuracy: {name} seed {seed}: {acc:.4f} (loss {stats['loss_last']}, "
                  f"{stats['tokens_per_second']:,.0f} useful tok/s)")
        accs = [r["val_accuracy"] for r in rows]
        out["paths"][name] = {"runs": rows, "mean": round(sum(accs) / len(accs), 4)}
    return out


def matmul_flops(n: int, repeats: int, dtype_name: str) -> dict:
    """FLOP/s of a square n x n torch.mm in this dtype on this machine (best and median of `repeats`)."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - started)
    flops = 2 * n**3
    return {"n": n, "dtype": dtype_name, "repeats": repeats, "best_flops_per_s": flops / min(times),
            "median_flops_per_s": flops / common.median(times)}


def main(argv: list[str] | None = None) -> int:
    p = common.parser(NAME, __doc__)
    p.add_argument("--repeats", type=int, help="rotating rounds (default 5; 2 with --smoke)")
    p.add_argument("--threads", type=int, help="torch threads (default: the configuration's, i.e. all cores); with 1, "
                                               "CPU seconds measure the work even on a machine busy with other jobs")
    p.add_argument("--accuracy", action="store_true",
                   help="also validation accuracy after a cycle's training (configuration's epochs), every path, "
                        "seeds --seeds (a few minutes)")
    p.add_argument("--seeds", default="0,1,2", help="seeds of --accuracy (default 0,1,2)")
    args = p.parse_args(argv)
    clock, machine = common.Stopwatch(), common.machine_record()
    repeats = args.repeats or (2 if args.smoke else 5)

    import torch

    from teachgraph.graph import make_context
    from teachgraph.students import TrainSettings, base_student_path, student_from_context
    from teachgraph.domains import load_domain
    from teachgraph.nodes.common import emit

    overrides = common.tiny_config() if args.smoke else {}
    if args.threads:
        overrides["threads"] = args.threads
    ctx = make_context(overrides)
    if ctx.threads:
        torch.set_num_threads(ctx.threads)
    domain = load_domain(ctx)
    base = base_student_path(ctx, domain, log=print)
    examples = cycle_data(ctx, domain, base)
    settings = TrainSettings(epochs=1, batch_size=ctx.batch_size, learning_rate=ctx.learning_rate, seed=1)
    path_settings = {name: replace(settings, **overrides) for name, overrides in PATHS.items()}

    def fresh():
        return student_from_context(ctx, base, domain)

    def progress(step: int, total: int, loss: float) -> None:  # what nodes/train.py passes
        if step == total or step % 10 == 0:
            emit({"type": "progress", "node": "train", "step": step, "total": total, "loss": round(loss, 4)})

    student = fresh()
    batches = collate(student, examples, settings, pack=False)
    packed_batches = collate(student, examples, settings, pack=True)
    tokens = sum(len(s) for s in student._training_ids(examples)[0])
    computed = {"padded": sum(b["input_ids"].numel() for b in batches),
                "packed": sum(b["input_ids"].numel() for b in packed_batches)}
    params = sum(p.numel() for p in student.model.parameters() if p.requires_grad)
    flops = {"useful": useful_flops(student, examples), "padded": counted_flops(student.model, batches),
             "packed": counted_flops(student.model, packed_batches)}

    # warm-up of every path (first-call allocations, bf16 kernels), untimed
    for name in PATHS:
        fresh().train(examples[:4 * settings.batch_size], path_settings[name])
    bare_loop(fresh().model, batches[:4], settings)

    names = [*PATHS, "bare_loop"]
    runs = {name: [] for name in names}
    cpu = {name: [] for name in names}  # this process's CPU seconds: with one thread, the work itself
    internal = {name: [] for name in PATHS}
    losses = {name: None for name in PATHS}
    for round_ in range(repeats):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for which in order:
            student = fresh()
            started, cpu_started = time.perf_counter(), time.process_time()
            if which == "bare_loop":
                bare_loop(student.model, batches, settings)
            else:
                stats = student.train(examples, path_settings[which], progress=progress)
                assert stats["tokens"] == tokens, (stats["tokens"], tokens)
                internal[which].append(stats["seconds"])
                losses[which] = stats["loss_last"]
            runs[which].append(time.perf_counter() - started)
            cpu[which].append(time.process_time() - cpu_started)
        print(f"round {round_ + 1}/{repeats}: " + ", ".join(f"{n} {tokens / runs[n][-1]:,.0f}" for n in names)
              + " useful tok/s")

    def ratios(a: str, b: str, times=runs) -> list[float]:  # a faster than b by ...
        return [tb / ta for ta, tb in zip(times[a], times[b])]

    seconds = {k: common.median(v) for k, v in runs.items()}
    rate = {k: tokens / s for k, s in seconds.items()}
    mm = {dtype: matmul_flops(512 if args.smoke else 2048, 3 if args.smoke else 7, dtype)
          for dtype in ("float32", "bfloat16")}
    peak = {dtype: m["best_flops_per_s"] for dtype, m in mm.items()}
    layout = {"padded": "padded", "packed": "packed", "packed_bf16": "packed", "bare_loop": "padded"}
    per_path = {}
    for name in names:
        useful = flops["useful"] / seconds[name]
        per_path[name] = {
            "median_seconds": round(seconds[name], 4), "useful_tokens_per_s": round(rate[name], 1),
            "computed_tokens": computed[layout[name]],
            "padding_share": round(1 - tokens / computed[layout[name]], 4),
            "useful_flops_per_s": round(useful), "computed_flops_per_s": round(flops[layout[name]] / seconds[name]),
            "useful_of_fp32_matmul": round(useful / peak["float32"], 4),
            "useful_of_bf16_matmul": round(useful / peak["bfloat16"], 4),
            "loss_last": losses.get(name)}
    ratio = {"packed_over_padded": ratios("packed", "padded"), "packed_bf16_over_packed": ratios("packed_bf16", "packed"),
             "padded_over_bare": ratios("padded", "bare_loop"), "packed_over_bare": ratios("packed", "bare_loop")}
    cpu_ratio = {k: ratios(*pair, times=cpu) for k, pair in
                 {"packed_over_padded": ("packed", "padded"), "packed_bf16_over_packed": ("packed_bf16", "packed"),
                  "packed_bf16_over_padded": ("packed_bf16", "padded"), "padded_over_bare": ("padded", "bare_loop")}.items()}
    ratio["packed_bf16_over_padded"] = ratios("packed_bf16", "padded")
    for name in names:
        per_path[name]["median_cpu_seconds"] = round(common.median(cpu[name]), 4)
        per_path[name]["useful_tokens_per_cpu_s"] = round(tokens / common.median(cpu[name]), 1)
    results = {
        "examples": len(examples), "steps": len(batches), "tokens": tokens, "padded_tokens": computed["padded"],
        "packed_tokens": computed["packed"], "parameters": params,
        "seconds": {k: [round(x, 4) for x in v] for k, v in runs.items()},
        "train_internal_seconds": {k: [round(x, 4) for x in v] for k, v in internal.items()},
        "paths": per_path,
        "ratios_per_round": {k: [round(r, 4) for r in v] for k, v in ratio.items()},
        "ratios_median": {k: round(common.median(v), 4) for k, v in ratio.items()},
        # the keys of the benchmark before issue 13: the default train path (now packed) and the
        # padded train path against the bare loop on the same batches
        "tokens_per_s": {"train_path": round(rate["packed"], 1), "train_path_padded": round(rate["padded"], 1),
                         "bare_loop": round(rate["bare_loop"], 1)},
        "ratio_per_round": [round(r, 4) for r in ratio["padded_over_bare"]],
        "ratio_median": round(common.median(ratio["padded_over_bare"]), 4),
        "cpu_seconds": {k: [round(x, 4) for x in v] for k, v in cpu.items()},
        "cpu_ratio_per_round": {k: [round(r, 4) for r in v] for k, v in cpu_ratio.items()},
        "cpu_ratio_median": {k: round(common.median(v), 4) for k, v in cpu_ratio.items()},
        "flops": {"useful_per_epoch": flops["useful"], "padded_per_epoch": flops["padded"],
                  "counted_per_epoch": flops["padded"],
                  "fraction_of_matmul_train_path": per_path["packed"]["useful_of_fp32_matmul"],
                  "packed_per_epoch": flops["packed"], "useful_per_token": round(flops["useful"] / tokens, 1),
                  "six_n_t_per_epoch": 6 * params * tokens,
                  "matmul": {k: (round(v) if isinstance(v, float) else v) for k, v in mm["float32"].items()},
                  "matmul_bf16": {k: (round(v) if isinstance(v, float) else v) for k, v in mm["bfloat16"].items()}},
    }
    if args.accuracy:
        results["accuracy"] = accuracy_runs(ctx, domain, base, examples, [int(x) for x in args.seeds.split(",")], fresh)
    result = {
        "benchmark": NAME, "smoke": args.smoke,
        "what": "useful (non-padding) tokens/s of HFStudent.train, padded (before) vs packed (now), fp32 vs bf16 "
                "autocast, against a bare PyTorch loop; useful FLOP/s against the machine's fp32 and bf16 matmul rates",
        "config": {"configuration": "TINY (tests/conftest.py)" if args.smoke else "TeachContext() default",
                   "batch_size": ctx.batch_size, "learning_rate": ctx.learning_rate, "epochs_per_run": 1,
                   "repeats": repeats, "finetune": ctx.finetune, "tiny_hidden_size": ctx.tiny_hidden_size,
                   "tiny_layers": ctx.tiny_layers, "torch_threads": torch.get_num_threads(),
                   "paths": PATHS, "flop_count": "FlopCounterMode, forward+backward"},
        "results": results,
        "targets": [common.target("packed / padded useful tokens/s (median of rounds)",
                                  results["ratios_median"]["packed_over_padded"], TARGET_PACKED, ">="),
                    common.target("padded train path / bare loop tokens/s (median of rounds)",
                                  results["ratios_median"]["padded_over_bare"], TARGET_BARE, ">=")],
        "machine": machine,
    }
    result["seconds"] = clock.seconds()
    labels = {"padded": "`train`, padded, fp32 (before)", "packed": "`train`, packed (default; fp32 on CPU)",
              "packed_bf16": "`train`, packed, bf16 autocast", "bare_loop": "bare PyTorch loop, padded",
              "padded_accum2": "control: padded, fp32, 2 micro-batches (rounding only)"}
    table = common.md_table(
        ["", "median s / epoch", "useful tokens/s", "per CPU s", "padding computed", "useful FLOP/s", "of fp32 peak",
         "of bf16 peak", "last loss"],
        [(labels[n], per_path[n]["median_seconds"], f"{per_path[n]['useful_tokens_per_s']:,.0f}",
          f"{per_path[n]['useful_tokens_per_cpu_s']:,.0f}",
          f"{100 * per_path[n]['padding_share']:.1f}%", f"{per_path[n]['useful_flops_per_s']:.3g}",
          f"{100 * per_path[n]['useful_of_fp32_matmul']:.1f}%", f"{100 * per_path[n]['useful_of_bf16_matmul']:.1f}%",
          per_path[n]["loss_last"]) for n in names])
    rm = results["ratios_median"]
    notes = (f"\n\n{len(examples)} examples, {len(batches)} steps of batch {ctx.batch_size}, {tokens:,} useful tokens "
             f"({computed['padded']:,} computed padded, {computed['packed']:,} packed), {params:,} parameters. "
             f"Medians of {repeats} rotating rounds: packed / padded **{rm['packed_over_padded']:.3f}**, "
             f"bf16 / fp32 (packed) {rm['packed_bf16_over_packed']:.3f}, padded / bare loop {rm['padded_over_bare']:.3f}, "
             f"packed / bare loop {rm['packed_over_bare']:.3f}; packed bf16 / padded {rm['packed_bf16_over_padded']:.3f}. "
             f"The same ratios of CPU seconds (this process; {torch.get_num_threads()} thread(s)): "
             + ", ".join(f"{k.replace('_over_', ' / ')} {common.median(v):.3f}" for k, v in cpu_ratio.items()) + ". "
             f"FLOPs (FlopCounterMode): useful {flops['useful']:.3g} per epoch ({flops['useful'] / tokens:.0f} per token; "
             f"6·N·T would say {6 * params * tokens:.3g}), computed padded {flops['padded']:.3g}, packed "
             f"{flops['packed']:.3g}. Matmul rates ({mm['float32']['n']}² `torch.mm`, best of {mm['float32']['repeats']}): "
             f"fp32 {peak['float32']:.3g}, bf16 {peak['bfloat16']:.3g} FLOP/s.")
    if args.accuracy:
        acc = results["accuracy"]
        notes += (f"\n\nValidation accuracy after one cycle's training ({acc['epochs']:g} epochs on the same data, same "
                  f"base student, whose accuracy is {acc['base']:.4f}; {acc['validation_examples']} validation examples; "
                  f"the seed orders the data):\n\n" + common.md_table(
                      ["", *[f"seed {r['seed']}" for r in next(iter(acc['paths'].values()))['runs']], "mean"],
                      [(labels[n], *[f"{r['val_accuracy']:.4f}" for r in v["runs"]], f"{v['mean']:.4f}")
                       for n, v in acc["paths"].items()]))
    common.write_result(common.out_path(NAME, args), result, table + notes)
    print(table + notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
