"""GPU training: tokens/s and peak memory of `HFStudent.train` for a ~1.1B Llama on one CUDA device.

    python benchmarks/gpu_train.py [--out benchmarks/results/gpu_train.json] [--steps 48] [--compile]
    python benchmarks/gpu_train.py --device cpu --size tiny     # the same code path on a small model (CI)

Prepared for a machine with a GPU (one H200: about 2-3 minutes, well under 5); without a CUDA device it
prints why and exits 0, measuring nothing (unless --device cpu asks for the small CPU rehearsal).

Model: a random-weight Llama from a config (TinyLlama-1.1B's shape: hidden 2048, 22 layers, 32 heads,
4 KV heads, MLP 5632, vocab 32000), saved once in bf16 and loaded through `load_student` as a run
loads a student: full fine-tuning gets fp32 weights (master weights; AdamW state fp32), LoRA a bf16
frozen base with fp32 adapters (r 16 on every linear layer). Training is `HFStudent.train` itself with
`precision="auto"` (bf16 autocast on CUDA), packing on unless the run says otherwise.

Data: plain-format examples of random printable text (the character tokenizer of the tiny student, so
no download), prompts 64-448 and answers 16-192 tokens, uniform: varied lengths as real tasks have, so
padding (and what packing saves) shows. Runs, each after an untimed warm-up of 3 steps on a fresh model:
full fine-tuning packed, the same padded, full packed with gradient checkpointing, LoRA packed.

Reported per run: useful (non-padding) tokens/s from `train`'s own timer, the padding share computed,
peak allocated memory (`torch.cuda.max_memory_allocated`), trainable parameters and their dtype, and
model FLOP/s = 6 x parameters x useful tokens / s (full; LoRA: 4 x, no weight gradients of the frozen
base; attention not counted) against a timed 8192² bf16 `torch.mm` on the same device.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIZES = {  # LlamaConfig fields
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
               num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, vocab_size=512, max_position_embeddings=2048),
}
RUNS = [  # (name, finetune, TrainSettings overrides)
    ("full, packed", "full", {}),
    ("full, padded", "full", {"pack": False}),
    ("full, packed, gradient checkpointing", "full", {"gradient_checkpointing": True}),
    ("lora, packed", "lora", {}),
]


def examples(n: int, seed: int, scale: float) -> list[dict]:
    rng = random.Random(seed)
    chars = string.ascii_letters + string.digits + " +-*/=().,"
    text = lambda lo, hi: "".join(rng.choice(chars) for _ in range(rng.randint(max(1, int(lo * scale)), max(1, int(hi * scale)))))
    return [{"prompt": text(64, 448), "answer": text(16, 192)} for _ in range(n)]


def matmul_peak(device, n: int, dtype) -> float:
    import torch

    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        torch.mm(a, b)
    best = float("inf")
    for _ in range(10):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (a rehearsal; use with --size tiny)")
    p.add_argument("--size", choices=sorted(SIZES), default="1b")
    p.add_argument("--steps", type=int, default=48, help="optimizer steps per timed run (default 48)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--compile", action="store_true", help="also a full packed run with torch.compile")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_train.json"))
    args = p.parse_args(argv)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_train: no CUDA device here (torch.cuda.is_available() is False); nothing measured. "
              "Run it on a machine with a GPU, or rehearse the code path with --device cpu --size tiny.")
        return 0
    from transformers import LlamaConfig, LlamaForCausalLM

    from teachgraph.students.base import TrainSettings
    from teachgraph.students.hf import LoraSettings, load_student
    from teachgraph.students.tiny import char_tokenizer

    device = torch.device(args.device)
    started_all = time.perf_counter()
    tokenizer = char_tokenizer()
    config = LlamaConfig(**SIZES[args.size], pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    scale = 1.0 if args.size != "tiny" else 0.125
    data = examples(args.steps * args.batch_size, seed=0, scale=scale)
    warm = examples(3 * args.batch_size, seed=1, scale=scale)
    runs = list(RUNS) + ([("full, packed, torch.compile", "full", {"compile": True})] if args.compile else [])
    peak_bf16 = matmul_peak(device, 8192 if device.type == "cuda" else 512, torch.bfloat16)
    peak_fp32 = matmul_peak(device, 8192 if device.type == "cuda" else 512, torch.float32)
    results = []
    with tempfile.TemporaryDirectory(prefix="gpu-train-") as tmp:
        torch.manual_seed(0)
        LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(tmp)  # random weights, saved once
        tokenizer.save_pretrained(tmp)
        for name, finetune, overrides in runs:
            student = load_student(tmp, finetune=finetune, lora=LoraSettings(dropout=0.0), prompt_format="plain",
                                   device=args.device)
            settings = TrainSettings(epochs=1, batch_size=args.batch_size, learning_rate=1e-5, seed=0, **overrides)
            warm_started = time.perf_counter()
            student.train(warm, settings)  # allocations, kernel selection (and compilation) untimed
            warm_seconds = time.perf_counter() - warm_started
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            stats = student.train(data, settings)
            if device.type == "cuda":
                torch.cuda.synchronize()
            trainable = [q for q in student.model.parameters() if q.requires_grad]
            n_trainable = sum(q.numel() for q in trainable)
            n_all = sum(q.numel() for q in student.model.parameters())
            per_token = 6 * n_all if finetune == "full" else 4 * n_all
            rate = stats["tokens_per_second"]
            row = {"run": name, "finetune": finetune, "settings": overrides, "steps": stats["steps"],
                   "tokens": stats["tokens"], "padded_tokens": stats["padded_tokens"],
                   "padding_share": round(1 - stats["tokens"] / stats["padded_tokens"], 4),
                   "seconds": stats["seconds"], "warmup_seconds": round(warm_seconds, 2),
                   "useful_tokens_per_s": rate,
                   "model_flops_per_s": round(per_token * rate), "of_bf16_matmul_peak": round(per_token * rate / peak_bf16, 4),
                   "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None,
                   "parameters": n_all, "trainable_parameters": n_trainable,
                   "trainable_dtypes": sorted({str(q.dtype) for q in trainable}),
                   "frozen_dtypes": sorted({str(q.dtype) for q in student.model.parameters() if not q.requires_grad}),
                   "loss_first": stats["loss_first"], "loss_last": stats["loss_last"]}
            results.append(row)
            print(json.dumps(row), flush=True)
            del student
            if device.type == "cuda":
                torch.cuda.empty_cache()
    result = {"benchmark": "gpu_train", "size": args.size, "config": SIZES[args.size], "device": str(device),
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "batch_size": args.batch_size, "steps": args.steps,
              "matmul_peak_flops_per_s": {"bf16": round(peak_bf16), "fp32": round(peak_fp32)},
              "runs": results, "seconds": round(time.perf_counter() - started_all, 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'run':40s} {'tok/s':>10s} {'padding':>8s} {'peak GiB':>9s} {'of bf16 peak':>13s}")
    for row in results:
        print(f"{row['run']:40s} {row['useful_tokens_per_s']:>10,.0f} {100 * row['padding_share']:>7.1f}% "
              f"{row['peak_memory_gib'] if row['peak_memory_gib'] is not None else '-':>9} "
              f"{100 * row['of_bf16_matmul_peak']:>12.1f}%")
    print(f"wrote {out} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
