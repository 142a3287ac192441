"""Students: the `Student` protocol and a Hugging Face causal-LM implementation."""

from __future__ import annotations

from typing import Any, Callable

from teachgraph.students.base import Student, TrainSettings
from teachgraph.students.hf import HFStudent, LoraSettings, load_student
from teachgraph.students.tiny import TinyConfig


def base_student_path(ctx: Any, domain: Any, progress: Callable | None = None, log: Callable[[str], None] = print) -> str:
    """The student every run of this configuration starts from: the cached tiny base student of the
    domain for student='tiny', the cached Hugging Face folder of a GGUF student (a .gguf file or an installed
    model name, see teachgraph.models), else the given local path or Hugging Face id."""
    from teachgraph.models import is_gguf_reference

    if is_gguf_reference(ctx.student):
        from teachgraph.students.gguf import gguf_student_dir

        return gguf_student_dir(ctx.student, log=log)
    if ctx.student != "tiny":
        return ctx.student
    from teachgraph.students.pretrain import ensure_base_student

    # a domain may ask for longer sequences (its prompt + answer) and fewer pretraining examples than the
    # synthetic default; a configuration that sets base_examples_per_skill wins
    examples = ctx.base_examples_per_skill if "base_examples_per_skill" in ctx.model_fields_set else \
        getattr(domain, "base_examples_per_skill", ctx.base_examples_per_skill)
    if getattr(domain, "modality", "text") == "image":
        from teachgraph.students.vlm import TinyVLMConfig

        tiny_vlm = TinyVLMConfig(hidden_size=ctx.tiny_hidden_size, num_layers=ctx.tiny_layers,
                                 num_heads=max(1, ctx.tiny_hidden_size // 32), intermediate_size=4 * ctx.tiny_hidden_size)
        return ensure_base_student(domain, tiny_vlm, examples, ctx.base_epochs, progress=progress, log=log)
    tiny = TinyConfig(hidden_size=ctx.tiny_hidden_size, num_layers=ctx.tiny_layers,
                      num_heads=max(1, ctx.tiny_hidden_size // 32), intermediate_size=4 * ctx.tiny_hidden_size,
                      max_length=getattr(domain, "tiny_max_length", TinyConfig.max_length))
    return ensure_base_student(domain, tiny, examples, ctx.base_epochs, progress=progress, log=log)


def student_from_context(ctx: Any, path: str, domain: Any) -> Any:
    """The student saved at `path`, loaded with the run's fine-tuning, LoRA, answer-length and device settings:
    a vision-language student (students.vlm) for a domain of images, else a causal LM (students.hf)."""
    lora = LoraSettings(r=ctx.lora_r, alpha=ctx.lora_alpha, dropout=ctx.lora_dropout)
    max_new_tokens = ctx.max_new_tokens or getattr(domain, "default_max_new_tokens", 32)
    if getattr(domain, "modality", "text") == "image":
        from teachgraph.students.vlm import load_vlm_student

        return load_vlm_student(path, finetune=ctx.finetune, lora=lora, max_new_tokens=max_new_tokens,
                                device=ctx.device)
    return load_student(path, finetune=ctx.finetune, lora=lora, max_new_tokens=max_new_tokens, device=ctx.device)


__all__ = ["HFStudent", "LoraSettings", "Student", "TinyConfig", "TrainSettings", "base_student_path",
           "load_student", "student_from_context"]
