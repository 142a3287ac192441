"""A vision-language student: any Hugging Face image-text-to-text model by id or local path.

The model is loaded with `AutoModelForImageTextToText` and prompted through its own processor
(`AutoProcessor`): the processor's chat template where it has one (an image entry and the question as
the user turn; the answer as the assistant turn), else the processor's plain prompt (PaliGemma: the
processor puts the image tokens before the question itself). Images reach the model only through the
processor. Training is one readable loop over (image, question, answer) triples: AdamW, warmup then
cosine decay, loss on the answer tokens only, optional bf16 autocast; full fine-tuning or peft LoRA.
Evaluation is batched greedy generation, left-padded.

`build_tiny_vlm` makes a small Llava from a config with random weights (a CLIP vision tower over 8-pixel
patches and a character-level Llama): the offline student of the rendered VQA domain and of the tests.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from teachgraph.domains.base import Example
from teachgraph.domains.images import example_image
from teachgraph.students.base import ProgressFn, TrainSettings
from teachgraph.students.hf import STUDENT_META, LoraSettings, StudentUnavailable, autocast_dtype, load_weights

IMAGE_TOKEN = "<image>"
# The tiny student's chat template: "<image>question=" then "answer<eos>" (few tokens: its text is per character).
TINY_VLM_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% if message['role'] == 'user' %}={% else %}<eos>{% endif %}"
    "{% endfor %}"
)


@dataclass(frozen=True)
class TinyVLMConfig:
    image_size: int = 48
    patch_size: int = 8
    vision_hidden_size: int = 64
    vision_layers: int = 2
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    max_length: int = 160


def build_tiny_vlm(config: TinyVLMConfig, seed: int) -> tuple[torch.nn.Module, Any]:
    """(a Llava model with random weights, its processor): CLIP vision tower, MLP projector, char Llama."""
    from transformers import (CLIPImageProcessorPil, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    from teachgraph.students.tiny import char_tokenizer

    tokenizer = char_tokenizer(text=True)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    tokenizer.chat_template = None
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": config.image_size},
                                            crop_size={"height": config.image_size, "width": config.image_size})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=config.patch_size,
                               vision_feature_select_strategy="default", chat_template=TINY_VLM_CHAT_TEMPLATE,
                               image_token=IMAGE_TOKEN, num_additional_image_tokens=1)  # CLIP's class token
    torch.manual_seed(seed)
    vision = CLIPVisionConfig(hidden_size=config.vision_hidden_size, intermediate_size=4 * config.vision_hidden_size,
                              num_hidden_layers=config.vision_layers, num_attention_heads=max(1, config.vision_hidden_size // 32),
                              image_size=config.image_size, patch_size=config.patch_size)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=config.hidden_size,
                       intermediate_size=config.intermediate_size, num_hidden_layers=config.num_layers,
                       num_attention_heads=config.num_heads, num_key_value_heads=config.num_heads,
                       max_position_embeddings=config.max_length, tie_word_embeddings=True,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id)
    model_config = LlavaConfig(vision_config=vision, text_config=text,
                               image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                               vision_feature_layer=-1, vision_feature_select_strategy="default")
    model = LlavaForConditionalGeneration(model_config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, processor


@dataclass
class VLMStudent:
    model: torch.nn.Module
    processor: Any
    max_new_tokens: int = 8
    finetune: str = "full"
    meta: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    # -- encoding ---------------------------------------------------------------------------
    def _uses_chat(self) -> bool:
        return bool(getattr(self.processor, "chat_template", None))

    def _prompt_text(self, question: str) -> str:
        if self._uses_chat():
            return self.processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}],
                add_generation_prompt=True)
        token = getattr(self.processor, "image_token", None)  # PaliGemma: "<image>" first, then the prompt
        return f"{token}{question}" if token and token not in question else question

    def _full_text(self, question: str, answer: str) -> str:
        if self._uses_chat():
            return self.processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]},
                 {"role": "assistant", "content": [{"type": "text", "text": answer}]}])
        return f"{question}\n{answer}{self.tokenizer.eos_token or ''}"

    def _encode(self, texts: list[str], images: list[Any], padding_side: str, **extra: Any) -> dict[str, torch.Tensor]:
        tokenizer = self.tokenizer
        before = tokenizer.padding_side
        tokenizer.padding_side = padding_side
        try:
            inputs = self.processor(images=images, text=texts, return_tensors="pt", padding=True, **extra)
        finally:
            tokenizer.padding_side = before
        if not extra:
            inputs.pop("labels", None)  # some processors (PaliGemma) always return labels
        return {k: v.to(self.device) for k, v in inputs.items()}

    def _stop_ids(self) -> list[int]:
        from teachgraph.students.hf import stop_ids

        return stop_ids(self.tokenizer, getattr(getattr(self.model, "generation_config", None), "eos_token_id", None))

    # -- inference --------------------------------------------------------------------------
    def predict(self, prompts: Sequence[str], batch_size: int = 64) -> list[str]:
        raise TypeError("a vision-language student answers examples with images: call predict_examples(examples)")

    @torch.no_grad()
    def predict_examples(self, examples: Sequence[Example], batch_size: int = 64) -> list[str]:
        if not examples:
            return []
        self.model.eval()
        texts = [self._prompt_text(e["prompt"]) for e in examples]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
        answers = [""] * len(texts)
        tokenizer = self.tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        stop = self._stop_ids()
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            inputs = self._encode([texts[i] for i in index], [example_image(examples[i]) for i in index], "left")
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
                output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                             pad_token_id=pad, eos_token_id=stop)
            width = inputs["input_ids"].shape[1]
            for row, i in enumerate(index):
                new = output[row, width:].tolist()
                end = next((k for k, token in enumerate(new) if token in stop), len(new))
                answers[i] = tokenizer.decode(new[:end], skip_special_tokens=True).strip()
        return answers

    # -- training ---------------------------------------------------------------------------
    def _batch(self, examples: Sequence[Example]) -> tuple[dict[str, torch.Tensor], int]:
        """Model inputs of a batch, right-padded, with labels on the answer tokens only; and their count."""
        images = [example_image(e) for e in examples]
        prompts = self._encode([self._prompt_text(e["prompt"]) for e in examples], images, "right")
        prompt_lengths = prompts["attention_mask"].sum(dim=1).tolist()
        if self._uses_chat():
            inputs = self._encode([self._full_text(e["prompt"], e["answer"]) for e in examples], images, "right")
        else:  # the processor's own format (PaliGemma): the answer as its suffix, with eos
            inputs = self._encode([self._prompt_text(e["prompt"]) for e in examples], images, "right",
                                  suffix=[e["answer"] for e in examples])
        labels = inputs["input_ids"].clone()
        for row, n in enumerate(prompt_lengths):
            labels[row, :n] = -100
        labels[inputs["attention_mask"] == 0] = -100
        if "token_type_ids" in inputs:  # PaliGemma's prefix-LM: 0 on the prompt (full attention), 1 on the answer
            inputs["token_type_ids"] = (labels != -100).long()
        inputs["labels"] = labels
        return inputs, int((labels != -100).sum())

    def train(self, examples: Sequence[Example], settings: TrainSettings, progress: ProgressFn | None = None) -> dict:
        if not examples:
            return {"steps": 0, "examples": 0, "tokens": 0, "padded_tokens": 0, "seconds": 0.0,
                    "tokens_per_second": None, "loss_first": None, "loss_last": None}
        torch.manual_seed(settings.seed)
        generator = torch.Generator().manual_seed(settings.seed)
        params = [p for p in self.model.parameters() if p.requires_grad]
        for p in params:  # master weights in fp32, whatever the compute dtype
            if p.dtype != torch.float32:
                p.data = p.data.float()
        autocast = autocast_dtype(settings, self.device)
        optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
        total_steps = settings.total_steps(len(examples))

        if settings.gradient_checkpointing:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.model.train()
        started, tokens, padded, losses, order = time.perf_counter(), 0, 0, [], []
        try:
            for step in range(total_steps):
                if not order:
                    order = torch.randperm(len(examples), generator=generator).tolist()
                batch, order = order[:settings.batch_size], order[settings.batch_size:]
                micro = math.ceil(len(batch) / settings.grad_accum_steps)
                parts = [self._batch([examples[i] for i in batch[s:s + micro]]) for s in range(0, len(batch), micro)]
                answer_tokens = sum(n for _, n in parts)
                for group in optimizer.param_groups:
                    group["lr"] = settings.learning_rate_at(step, total_steps)
                optimizer.zero_grad(set_to_none=True)
                step_loss = 0.0
                for inputs, n in parts:  # each micro-batch weighted by its share of the step's answer tokens
                    with torch.autocast(self.device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
                        out = self.model(**inputs, use_cache=False)
                    loss = out.loss * (n / max(1, answer_tokens))
                    loss.backward()
                    step_loss += loss.item()
                    tokens += int(inputs["attention_mask"].sum())
                    padded += inputs["input_ids"].numel()
                torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
                optimizer.step()
                losses.append(step_loss)
                if progress is not None:
                    progress(step + 1, total_steps, step_loss)
        finally:
            if settings.gradient_checkpointing:
                self.model.gradient_checkpointing_disable()
            self.model.eval()
        seconds = time.perf_counter() - started
        return {"steps": total_steps, "examples": len(examples), "tokens": tokens, "padded_tokens": padded,
                "seconds": round(seconds, 3), "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
                "loss_first": round(losses[0], 4), "loss_last": round(sum(losses[-10:]) / len(losses[-10:]), 4)}

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        self.model.save_pretrained(path)
        self.processor.save_pretrained(path)
        meta = dict(self.meta, kind="vlm", max_new_tokens=self.max_new_tokens, finetune=self.finetune)
        Path(path, STUDENT_META).write_text(json.dumps(meta, indent=2))


def is_vlm_dir(path: str | Path) -> bool:
    """Whether a local directory holds a student saved by VLMStudent (or a model with an image processor)."""
    path = Path(path)
    meta = path / STUDENT_META
    if meta.exists():
        return json.loads(meta.read_text()).get("kind") == "vlm"
    return (path / "preprocessor_config.json").exists() or (path / "processor_config.json").exists()


def load_vlm_student(path_or_id: str, *, finetune: str = "full", lora: LoraSettings | None = None,
                     max_new_tokens: int | None = None, device: str = "auto") -> VLMStudent:
    """A VLM student saved by `VLMStudent.save`, a local HF model directory, or a hub id. With
    finetune="lora" a saved adapter continues training; a plain model gets a fresh adapter (the paper's
    defaults: r 16, alpha 32, dropout 0.05, every linear layer of the model)."""
    try:
        return _load(path_or_id, finetune, lora, max_new_tokens, device)
    except OSError as error:
        if Path(path_or_id).exists():
            raise
        raise StudentUnavailable(
            f"student {path_or_id!r} is not a local directory and could not be loaded from the Hugging Face hub "
            f"({str(error).splitlines()[0]}). Offline, download it elsewhere and pass its local path "
            "(--set student=/path/to/model).") from None


def _load(path_or_id: str, finetune: str, lora: LoraSettings | None, max_new_tokens: int | None,
          device: str) -> VLMStudent:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model, meta = load_weights(AutoModelForImageTextToText, path_or_id, finetune, lora, device)
    local = Path(path_or_id)
    processor = AutoProcessor.from_pretrained(str(local) if local.exists() else path_or_id)
    if processor.tokenizer.pad_token_id is None and processor.tokenizer.eos_token_id is not None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    return VLMStudent(model=model, processor=processor, max_new_tokens=max_new_tokens or meta.get("max_new_tokens", 8),
                      finetune=finetune, meta={k: v for k, v in meta.items() if k not in {"finetune", "kind"}})
