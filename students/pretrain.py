"""The base student of a domain: a tiny model pretrained on a few of its skills, built once and cached.

Deterministic: the same settings give the same weights, stored under a key made of those settings,
so every run (and every seed) of a comparison starts from the same student.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from teachgraph.domains.base import Domain, stable_hash
from teachgraph.students.base import TrainSettings
from teachgraph.students.hf import HFStudent
from teachgraph.students.tiny import TinyConfig, build_tiny_student
from teachgraph.io import write_dir_atomic, write_jsonl_atomic
from teachgraph.teachers.replay import REPLAY_FILE  # written here, read by the replay policy

BASE_VERSION = 2


def cpu_model() -> str:
    """The CPU's model name (benchmarks record it too)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def build_fingerprint(domain: Domain) -> dict[str, str]:
    """What else decides the base student's weights besides its settings: the source of the code that
    builds it (the domain's generator, the tiny model, the training loop), the library versions and the
    CPU (fp32 kernels differ in rounding between CPU families). Part of the cache key, so that a cached
    base student built by other code, other libraries or another CPU is never reused."""
    import inspect
    import sys

    import torch
    import transformers

    from teachgraph.domains import base as domain_base
    from teachgraph.students import base as student_base, hf, tiny

    modules = [sys.modules[__name__], hf, tiny, student_base, domain_base, sys.modules[type(domain).__module__]]
    if getattr(domain, "modality", "text") == "image":
        from teachgraph.domains import images, scenes
        from teachgraph.students import vlm

        modules += [vlm, images, scenes]
    sources = {m.__name__: stable_hash(Path(inspect.getsourcefile(m)).read_text(encoding="utf-8")) for m in modules}
    return {"code": stable_hash(sources), "torch": torch.__version__, "transformers": transformers.__version__,
            "cpu": cpu_model()}


def cache_root() -> Path:
    return Path(os.environ.get("TEACHGRAPH_CACHE", Path.home() / ".cache" / "teachgraph"))


def base_student_key(domain: Domain, tiny: Any, examples_per_skill: int, epochs: float) -> str:
    return stable_hash({"v": BASE_VERSION, "domain": domain.name, "seed": getattr(domain, "seed", 0),
                        "skills": list(getattr(domain, "base_skills", ())),
                        "tiny": {k: v for k, v in asdict(tiny).items() if k != "text" or v},
                        "n": examples_per_skill, "epochs": epochs, "build": build_fingerprint(domain)})


def ensure_base_student(domain: Domain, tiny: Any = TinyConfig(), examples_per_skill: int = 10000,
                        epochs: float = 2.0, progress: Callable[[int, int, float], None] | None = None,
                        log: Callable[[str], None] = print) -> str:
    """Path of the cached base student, building it first if needed (about a minute on 2 cores). `tiny` is a
    TinyConfig (a character-level causal LM) or, for a domain of images, a TinyVLMConfig (students.vlm)."""
    key = base_student_key(domain, tiny, examples_per_skill, epochs)
    final = cache_root() / "base_students" / f"{domain.name}-{key}"
    if (final / "config.json").exists():
        return str(final)
    skills = list(getattr(domain, "base_skills", ()))
    if not skills:
        return _untrained_student(domain, tiny, key, final, log)
    log(f"building the base student ({', '.join(skills)}; {examples_per_skill} examples each) -> {final}")
    data = []
    for i, skill in enumerate(skills):
        data += domain.generate(skill, None, None, examples_per_skill, seed=10_000 + i)
    meta = {"base_skills": skills, "base_key": key, "build": build_fingerprint(domain)}
    if getattr(domain, "modality", "text") == "image":
        from teachgraph.students.vlm import VLMStudent, build_tiny_vlm

        model, processor = build_tiny_vlm(tiny, seed=0)
        student: Any = VLMStudent(model=model, processor=processor, max_new_tokens=domain.default_max_new_tokens,
                                  meta=meta)
    else:
        model, tokenizer = build_tiny_student(tiny, seed=0)
        student = HFStudent(model=model, tokenizer=tokenizer, max_new_tokens=domain.default_max_new_tokens, meta=meta)
    learning_rate = getattr(domain, "base_learning_rate", 3e-3)  # a domain's own where it needs one (vqa)
    stats = student.train(data, TrainSettings(epochs=epochs, learning_rate=learning_rate, seed=0), progress=progress)
    step = max(1, len(data) // 3000)

    def write(tmp: str) -> None:
        student.save(tmp)
        write_jsonl_atomic(Path(tmp, REPLAY_FILE), data[::step])

    write_dir_atomic(final, write, prefix=".building-")
    log(f"base student ready: loss {stats['loss_first']} -> {stats['loss_last']} in {stats['seconds']:.0f}s")
    return str(final)


def _untrained_student(domain: Domain, tiny: Any, key: str, final: Path, log: Callable[[str], None]) -> str:
    """A domain without a program for its skills (a real dataset) gets a tiny student with random weights (a
    text student with a chat template, or a tiny VLM for a domain of images): the whole pipeline runs end to
    end, though such a student scores ~0."""
    from dataclasses import replace

    log(f"building an untrained tiny student for {domain.name} (random weights; it will score ~0 - pass "
        f"--student MODEL for a real one) -> {final}")
    meta = {"base_skills": [], "base_key": key}
    if getattr(domain, "modality", "text") == "image":
        from teachgraph.students.vlm import VLMStudent, build_tiny_vlm

        model, processor = build_tiny_vlm(tiny, seed=0)
        student: Any = VLMStudent(model=model, processor=processor, max_new_tokens=domain.default_max_new_tokens,
                                  meta=meta)
    else:
        model, tokenizer = build_tiny_student(replace(tiny, text=True, max_length=4096), seed=0)
        student = HFStudent(model=model, tokenizer=tokenizer, prompt_format="chat",
                            max_new_tokens=domain.default_max_new_tokens, meta=meta)
    write_dir_atomic(final, student.save, prefix=".building-")
    return str(final)
