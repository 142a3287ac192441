"""A pretrained student from a GGUF file: dequantised once by transformers (through the `gguf` package) and
cached as a plain Hugging Face folder keyed by the file's sha256, so every later load is a fast local one.

transformers refuses `save_pretrained` on a GGUF-loaded model (its config carries the GGUF
`quantization_config`), so the weights go through a fresh model built from the config without it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

from teachgraph.models import file_sha256, resolve_gguf

CONVERSION_VERSION = 1


class GGUFStudentError(RuntimeError):
    """A GGUF file transformers cannot turn into a student (unsupported architecture, truncated weights)."""


def gguf_student_dir(name_or_path: str, log: Callable[[str], None] = print) -> str:
    """The cached HF folder of the student in this GGUF file (or installed model name), converted on first use."""
    path = resolve_gguf(name_or_path)
    from teachgraph.students.pretrain import cache_root

    digest = file_sha256(path)
    target = cache_root() / "students-gguf" / f"{digest[:20]}-v{CONVERSION_VERSION}"
    if (target / "student-source.json").exists():
        return str(target)
    log(f"converting the GGUF student {path.name} to a Hugging Face folder (once; cached in {target})")
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _convert(path, partial)
    except Exception as error:  # noqa: BLE001 - any loader failure becomes one clear, named error
        shutil.rmtree(partial, ignore_errors=True)
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise GGUFStudentError(f"student {name_or_path!r}: transformers could not load {path} as a causal LM "
                               f"({type(error).__name__}: {first})") from None
    (partial / "student-source.json").write_text(json.dumps(
        {"gguf": str(path), "sha256": digest, "size": path.stat().st_size, "conversion": CONVERSION_VERSION},
        indent=2))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(partial, target)
    except OSError:  # another process converted it first
        shutil.rmtree(partial, ignore_errors=True)
    return str(target)


def _convert(path: Path, out: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(path.parent), path.name
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    tied = {k for k in missing if "lm_head" in k} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise ValueError(f"weights do not match the architecture: missing {sorted(set(missing) - tied)[:3]}, "
                         f"unexpected {sorted(unexpected)[:3]}")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
