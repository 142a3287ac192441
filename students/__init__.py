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

    tiny = TinyConfig(hidden_size=ctx.tiny_hidden_size, num_layers=ctx.tiny_layers,
                      num_heads=max(1, ctx.tiny_hidden_size // 32), intermediate_size=4 * ctx.tiny_hidden_size)
    return ensure_base_student(domain, tiny, ctx.base_examples_per_skill, ctx.base_epochs, progress=progress, log=log)


def student_from_context(ctx: Any, path: str, domain: Any) -> HFStudent:
    """The student saved at `path`, loaded with the run's fine-tuning, LoRA, answer-length and device settings."""
    return load_student(path, finetune=ctx.finetune,
                        lora=LoraSettings(r=ctx.lora_r, alpha=ctx.lora_alpha, dropout=ctx.lora_dropout),
                        max_new_tokens=ctx.max_new_tokens or getattr(domain, "default_max_new_tokens", 32),
                        device=ctx.device)


__all__ = ["HFStudent", "LoraSettings", "Student", "TinyConfig", "TrainSettings", "base_student_path",
           "load_student", "student_from_context"]
