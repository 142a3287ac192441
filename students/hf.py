"""A Hugging Face causal LM as a student: any `AutoModelForCausalLM` by id or local path.

Training is one readable loop (AdamW, warmup then cosine decay, loss on the answer tokens only; each
step's examples packed into rows without padding, optionally accumulated over micro-batches, autocast
to bf16 over fp32 master weights where it pays); fine-tuning is full or peft LoRA. Evaluation is batched greedy decoding with a KV cache.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from teachgraph.domains.base import Example
from teachgraph.students.base import ProgressFn, TrainSettings

if TYPE_CHECKING:
    from teachgraph.students.distributed import Ranks

STUDENT_META = "teachgraph_student.json"
# Packed rows hold about this many of a step's longest example: 2 leaves ~7% padding on the synthetic
# domain's data (4: ~4.5%) while attention, computed over whole rows, grows with the row width. Measured
# on the default tiny student (one epoch of a cycle, CPU seconds vs padded, median of 4 rounds): 2 ->
# 1.30x, 3 -> 1.24x, 4 -> 1.22x.
PACK_FACTOR = 2.0
hf_logging.disable_progress_bar()  # teachgraph shows its own progress


@dataclass(frozen=True)
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"


@dataclass
class HFStudent:
    model: torch.nn.Module
    tokenizer: object
    prompt_format: str = "plain"       # "plain": <bos>prompt=answer<eos>; "chat": the tokenizer's chat template
    max_new_tokens: int = 8
    finetune: str = "full"             # "full" or "lora"
    meta: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- encoding ---------------------------------------------------------------------------
    def _prompt_ids(self, prompts: Sequence[str]) -> list[list[int]]:
        return prompt_ids(self.tokenizer, self.prompt_format, prompts)

    def _answer_ids(self, answers: Sequence[str]) -> list[list[int]]:
        encoded = self.tokenizer(list(answers), add_special_tokens=False)["input_ids"]
        return [ids + [self.tokenizer.eos_token_id] for ids in encoded]

    def _training_ids(self, examples: Sequence[Example]) -> tuple[list[list[int]], list[int]]:
        """(token ids of each whole example, where its answer starts). The loss covers the answer only.
        In chat format the answer is the assistant turn as the chat template writes it (end-of-turn
        token included), so the trained model stops the way `predict` expects."""
        if self.prompt_format == "chat":
            sequences, starts = [], []
            for e in examples:
                prompt = chat_prompt_ids(self.tokenizer, e["prompt"])
                whole = list(self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": e["prompt"]}, {"role": "assistant", "content": e["answer"]}],
                    tokenize=True, return_dict=False))
                if whole[:len(prompt)] != prompt:  # a template that renders the history differently
                    whole = prompt + self._answer_ids([e["answer"]])[0]
                sequences.append(whole)
                starts.append(len(prompt))
            return sequences, starts
        prompts = self._prompt_ids([e["prompt"] for e in examples])
        targets = self._answer_ids([e["answer"] for e in examples])
        return [p + t for p, t in zip(prompts, targets)], [len(p) for p in prompts]

    def _stop_ids(self) -> list[int]:
        return stop_ids(self.tokenizer, getattr(getattr(self.model, "generation_config", None), "eos_token_id", None))

    # -- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, prompts: Sequence[str], batch_size: int = 256) -> list[str]:
        if not prompts:
            return []
        self.model.eval()
        prompt_ids = self._prompt_ids(prompts)
        order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))  # less padding per batch
        answers: list[str] = [""] * len(prompt_ids)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        stop = self._stop_ids()
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            width = max(len(prompt_ids[i]) for i in index)
            input_ids = torch.full((len(index), width), pad, dtype=torch.long)
            attention = torch.zeros((len(index), width), dtype=torch.long)
            for row, i in enumerate(index):  # left padding, so every row's answer starts at the same column
                ids = prompt_ids[i]
                input_ids[row, width - len(ids):] = torch.tensor(ids)
                attention[row, width - len(ids):] = 1
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
                output = self.model.generate(
                    input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
                    max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=pad,
                    eos_token_id=stop,
                )
            for row, i in enumerate(index):
                new = output[row, width:].tolist()
                end = next((k for k, token in enumerate(new) if token in stop), len(new))
                new = new[:end]
                answers[i] = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        return answers

    # -- training ---------------------------------------------------------------------------
    def _collate(self, sequences: Sequence[list[int]], label_start: Sequence[int], batch: Sequence[int],
                 pack: bool) -> tuple[dict, int, int]:
        """Model inputs for the examples `batch` (indices into `sequences`), their real token count and
        the count computed (padding included).

        Padded: one row per example, right-padded, with an attention mask. Packed: rows about
        PACK_FACTOR x the longest example wide (see `pack_rows`), filled first-fit decreasing; position ids restart at 0 for every example (and
        for a row's padding tail), which is how transformers marks packed sequences: without an
        attention mask it attends only within each example, so every example sees exactly the context
        it sees padded. Labels cover answer tokens only, never an example's first token (the previous
        example's last token would otherwise be trained to predict it)."""
        lengths = [len(sequences[i]) for i in batch]
        if pack:
            rows, width = pack_rows(lengths, PACK_FACTOR)
        else:
            rows, width = [[k] for k in range(len(batch))], max(lengths)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for r, members in enumerate(rows):
            col = 0
            for k in members:
                seq, start = sequences[batch[k]], max(1, label_start[batch[k]])
                n = len(seq)
                input_ids[r, col:col + n] = torch.tensor(seq)
                labels[r, col + start:col + n] = torch.tensor(seq[start:])
                positions[r, col:col + n] = torch.arange(n)
                attention[r, col:col + n] = 1
                col += n
            positions[r, col:] = torch.arange(width - col)
        device = self.device
        if pack:
            inputs = {"input_ids": input_ids.to(device), "position_ids": positions.to(device),
                      "labels": labels.to(device)}
        else:
            inputs = {"input_ids": input_ids.to(device), "attention_mask": attention.to(device),
                      "labels": labels.to(device)}
        return inputs, sum(lengths), input_ids.numel()

    def train(self, examples: Sequence[Example], settings: TrainSettings, progress: ProgressFn | None = None,
              ranks: "Ranks | None" = None) -> dict:
        """Fine-tune in place. With `ranks` (one of several torchrun processes, see students/distributed.py)
        this process computes its share of every step's examples through `ranks.module` (DDP or FSDP2),
        with the loss still divided by the whole step's answer tokens: the same steps, the same loss."""
        if not examples:
            return {"steps": 0, "examples": 0, "tokens": 0, "padded_tokens": 0, "seconds": 0.0,
                    "tokens_per_second": None, "loss_first": None, "loss_last": None}
        torch.manual_seed(settings.seed)
        generator = torch.Generator().manual_seed(settings.seed)
        sequences, label_start = self._training_ids(examples)

        params = [p for p in self.model.parameters() if p.requires_grad]
        autocast = autocast_dtype(settings, self.device)
        for p in params:  # master weights: the optimizer updates fp32 copies, whatever the compute dtype
            if p.dtype != torch.float32:
                p.data = p.data.float()
        optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
        total_steps = settings.total_steps(len(sequences))

        if settings.gradient_checkpointing:
            self.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        attention_before = getattr(self.model.config, "_attn_implementation", None)
        if autocast is not None and self.device.type == "cpu" and attention_before == "sdpa":
            # torch's CPU sdpa kernels are slower in bf16 than fp32 at these sizes (its backward above
            # all); plain matmul-softmax attention gets the bf16 matmul speed. Same math.
            self.model.set_attn_implementation("eager")
        module = ranks.module if ranks is not None else self.model
        forward = torch.compile(module, dynamic=True) if settings.compile else module
        device_type = self.device.type
        self.model.train()
        started, tokens, padded, losses = time.perf_counter(), 0, 0, []
        order: list[int] = []
        try:
            for step in range(total_steps):
                if not order:
                    order = torch.randperm(len(sequences), generator=generator).tolist()
                batch, order = order[:settings.batch_size], order[settings.batch_size:]
                # answer tokens the loss averages over: the whole step's, also when accumulated
                answer_tokens = sum(len(sequences[i]) - max(1, label_start[i]) for i in batch)
                # this process's examples of the step (all of them in one process); a rank left without
                # any computes one with weight 0, since every rank must take part in the gradient sync
                mine, weight = (batch, 1.0) if ranks is None else ranks.share(batch)
                micro = math.ceil(len(mine) / settings.grad_accum_steps)
                for group in optimizer.param_groups:
                    group["lr"] = settings.learning_rate_at(step, total_steps)
                optimizer.zero_grad(set_to_none=True)
                step_loss = 0.0
                for start in range(0, len(mine), micro):
                    inputs, real, computed = self._collate(sequences, label_start, mine[start:start + micro],
                                                           settings.pack)
                    last = start + micro >= len(mine)
                    with (ranks.sync(last) if ranks is not None else contextlib.nullcontext()):
                        with torch.autocast(device_type, dtype=autocast or torch.float32, enabled=autocast is not None):
                            out = forward(**inputs, use_cache=False,
                                          num_items_in_batch=torch.tensor(answer_tokens, device=self.device))
                        # DDP and FSDP average the ranks' gradients: x world size makes that their sum
                        (out.loss * (weight * ranks.world_size) if ranks is not None else out.loss).backward()
                    step_loss += out.loss.item() * weight
                    if weight:
                        tokens, padded = tokens + real, padded + computed
                if ranks is not None:
                    step_loss = ranks.sum(step_loss)
                torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
                optimizer.step()
                losses.append(step_loss)
                if progress is not None:
                    progress(step + 1, total_steps, losses[-1])
        finally:
            if settings.gradient_checkpointing:
                self.model.activation_checkpointing_disable()
            if getattr(self.model.config, "_attn_implementation", None) != attention_before:
                self.model.set_attn_implementation(attention_before)
            self.model.eval()
        seconds = time.perf_counter() - started
        if ranks is not None:  # the whole job's tokens, from every process
            tokens, padded = int(ranks.sum(tokens)), int(ranks.sum(padded))
        return {"steps": total_steps, "examples": len(sequences), "tokens": tokens, "padded_tokens": padded,
                "seconds": round(seconds, 3), "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
                "loss_first": round(losses[0], 4), "loss_last": round(sum(losses[-10:]) / len(losses[-10:]), 4),
                "losses": losses}

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        meta = dict(self.meta, prompt_format=self.prompt_format, max_new_tokens=self.max_new_tokens,
                    finetune=self.finetune)
        Path(path, STUDENT_META).write_text(json.dumps(meta, indent=2))


def autocast_dtype(settings: TrainSettings, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for this device and setting (None: plain fp32)."""
    if settings.precision == "bf16":
        return torch.bfloat16
    if settings.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def chat_prompt_ids(tokenizer, prompt: str) -> list[int]:
    return list(tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                              tokenize=True, return_dict=False))


def prompt_ids(tokenizer, prompt_format: str, prompts: Sequence[str]) -> list[list[int]]:
    """The token ids a student is prompted with ("plain": <bos>prompt=; "chat": the chat template's user turn
    and generation prompt), the same in training, in-process evaluation and served evaluation."""
    if prompt_format == "chat":
        return [chat_prompt_ids(tokenizer, p) for p in prompts]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    encoded = tokenizer([p + "=" for p in prompts], add_special_tokens=False)["input_ids"]
    return [bos + ids for ids in encoded]


def stop_ids(tokenizer, configured_eos: int | list[int] | None) -> list[int]:
    """Tokens that end an answer: the tokenizer's eos plus the model's generation eos ids (chat models end a
    turn with their own token, e.g. <|eot_id|> or <end_of_turn>)."""
    ids = {tokenizer.eos_token_id}
    ids.update(configured_eos if isinstance(configured_eos, (list, tuple)) else [configured_eos])
    return sorted(i for i in ids if i is not None)


def first_fit_decreasing(lengths: Sequence[int], width: int) -> list[list[int]]:
    """Indices of `lengths` in rows of at most `width` tokens, longest first into the first row with room
    (ties keep their order, so the layout is deterministic)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for k in sorted(range(len(lengths)), key=lambda k: -lengths[k]):
        row = next((r for r, free in enumerate(room) if free >= lengths[k]), None)
        if row is None:
            rows.append([])
            room.append(width)
            row = len(rows) - 1
        rows[row].append(k)
        room[row] -= lengths[k]
    return rows


def pack_rows(lengths: Sequence[int], factor: float = PACK_FACTOR) -> tuple[list[list[int]], int]:
    """(rows of indices, row width) packing sequences of these lengths with little padding: as many rows
    as `factor` x the longest sequence per row needs, made just wide enough to hold everything (widened
    a token or 1% at a time until first-fit decreasing fits them into that many rows), or one sequence
    per row where that computes no more."""
    longest, total = max(lengths), sum(lengths)
    count = max(1, math.ceil(total / (factor * longest)))
    width = max(longest, math.ceil(total / count))
    while len(rows := first_fit_decreasing(lengths, width)) > count:
        width += max(1, width // 100)
    if len(rows) * width >= len(lengths) * longest:  # e.g. equal lengths: one per row wastes nothing
        return [[k] for k in range(len(lengths))], longest
    return rows, width


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_student(path_or_id: str, *, finetune: str = "full", lora: LoraSettings | None = None,
                 prompt_format: str | None = None, max_new_tokens: int | None = None,
                 device: str = "auto") -> HFStudent:
    """Load a student saved by `HFStudent.save`, a local HF model directory, or a hub id.

    With finetune="lora", a directory holding a peft adapter continues training that adapter;
    a plain model gets a fresh adapter on every linear layer (or `lora.target_modules`).
    """
    try:
        return _load_student(path_or_id, finetune, lora, prompt_format, max_new_tokens, device)
    except OSError as error:
        if Path(path_or_id).exists():
            raise
        raise StudentUnavailable(
            f"student {path_or_id!r} is not a local directory and could not be loaded from the Hugging Face hub "
            f"({str(error).splitlines()[0]}). Offline, download it elsewhere and pass its local path "
            "(--set student=/path/to/model).") from None


class StudentUnavailable(RuntimeError):
    """A student given by hub id that cannot be reached (offline), with what to do instead."""


def load_weights(model_class: Any, path_or_id: str, finetune: str, lora: LoraSettings | None, device: str,
                 task_type: str | None = None) -> tuple[torch.nn.Module, dict]:
    """(the model, on its device in eval mode, and the teachgraph record saved beside it) for a causal LM or a
    vision-language student alike: a saved peft adapter over its base (merged for full fine-tuning), or a
    plain model with a fresh LoRA adapter on every linear layer (or `lora.target_modules`) when asked."""
    target = pick_device(device)
    # Full fine-tuning keeps fp32 weights (the optimizer's master weights; compute is autocast to bf16 on
    # CUDA, see TrainSettings.precision). LoRA trains fp32 adapters over a frozen base, which may be bf16.
    dtype = torch.bfloat16 if target.type == "cuda" and finetune == "lora" else torch.float32
    local = Path(path_or_id)
    meta = json.loads((local / STUDENT_META).read_text()) if (local / STUDENT_META).exists() else {}
    adapter = local / "adapter_config.json"
    if adapter.exists():
        from peft import PeftModel

        base_path = json.loads(adapter.read_text())["base_model_name_or_path"]
        base = model_class.from_pretrained(base_path, dtype=dtype)
        model = PeftModel.from_pretrained(base, str(local), is_trainable=(finetune == "lora"))
        if finetune != "lora":
            model = model.merge_and_unload().requires_grad_(True)
    else:
        model = model_class.from_pretrained(path_or_id, dtype=dtype)
        if finetune == "lora":
            from peft import LoraConfig, get_peft_model

            lora = lora or LoraSettings()
            model = get_peft_model(model, LoraConfig(
                r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules,
                task_type=task_type))
    model.to(target)
    for p in model.parameters():  # peft upcasts fresh adapters itself; loaded ones are made sure of here
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
    model.eval()
    return model, meta


def _load_student(path_or_id: str, finetune: str, lora: LoraSettings | None, prompt_format: str | None,
                  max_new_tokens: int | None, device: str) -> HFStudent:
    model, meta = load_weights(AutoModelForCausalLM, path_or_id, finetune, lora, device, task_type="CAUSAL_LM")
    local = Path(path_or_id)
    tokenizer = AutoTokenizer.from_pretrained(str(local) if local.exists() else path_or_id)
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token  # batched (left-padded) generation needs a pad token
    # A model of its own (not one saved by teachgraph) is prompted through its chat template when it
    # has one (instruction-tuned models), identically before and after training.
    default_format = "chat" if getattr(tokenizer, "chat_template", None) else "plain"
    return HFStudent(model=model, tokenizer=tokenizer,
                     prompt_format=prompt_format or meta.get("prompt_format", default_format),
                     max_new_tokens=max_new_tokens or meta.get("max_new_tokens", 8),
                     finetune=finetune, meta={k: v for k, v in meta.items() if k not in {"finetune"}})
