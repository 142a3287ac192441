"""Image engines: what turns a generated example's image description into its picture.

`ProceduralEngine` (the offline default) draws the example's structured scene with `domains.scenes.render`
(so its answer can be verified from the scene). `DiffusersEngine` prompts a diffusers text-to-image
pipeline (SDXL-Turbo, as DataEnvGym) with the description; it is an optional GPU path, needs the
`diffusers` package and the weights, and its pictures cannot be checked against a scene.

Either way the picture is stored in the run directory (`store_images`), and the example records where
it is and how it was made in its provenance (`provenance.image`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from teachgraph.domains.base import stable_hash
from teachgraph.domains.images import BadImage, example_image, fingerprint, save_png_atomic


class ProceduralEngine:
    name = "procedural-renderer"

    def draw(self, example: dict[str, Any]) -> Image.Image:
        return example_image(example)


class DiffusersEngine:
    """Text-to-image with diffusers (default model: stabilityai/sdxl-turbo, 1 step, guidance 0)."""

    name = "diffusers"

    def __init__(self, model: str = "stabilityai/sdxl-turbo", device: str = "cuda", steps: int = 1, size: int = 512):
        try:
            import torch
            from diffusers import AutoPipelineForText2Image
        except ImportError:
            raise RuntimeError("the diffusers image engine needs the `diffusers` package (pip install diffusers) "
                               "and a GPU; the offline default is the procedural renderer") from None
        self.model, self.steps, self.size = model, steps, size
        self.pipeline = AutoPipelineForText2Image.from_pretrained(model, torch_dtype=torch.float16).to(device)

    def draw(self, example: dict[str, Any]) -> Image.Image:
        from teachgraph.domains.scenes import describe_scene

        description = example.get("image_description") or (
            describe_scene(example["scene"]) if example.get("scene") else example["prompt"])
        return self.pipeline(prompt=description, num_inference_steps=self.steps, guidance_scale=0.0,
                             height=self.size, width=self.size).images[0]


_ENGINES: dict[str, Any] = {}


def engine_for(name: str) -> Any:
    """The image engine of that name, built once per process (a diffusers pipeline is large)."""
    if name not in _ENGINES:
        _ENGINES[name] = DiffusersEngine() if name == "diffusers" else ProceduralEngine()
    return _ENGINES[name]


def store_images(examples: list[dict[str, Any]], folder: Path, engine: Any = None) -> int:
    """Draw every example that has a scene or an image description into `folder` (PNG, named by content),
    recording path, engine, description and perceptual hash in its provenance. Returns how many."""
    from teachgraph.domains.scenes import describe_scene

    engine = engine or ProceduralEngine()
    stored = 0
    for ex in examples:
        if ex.get("scene") is None and not ex.get("image_description"):
            continue
        try:
            image = engine.draw(ex)
        except BadImage:
            continue  # a scene that cannot be drawn: the domain's verifier drops it, counted
        path = folder / f"{stable_hash({'scene': ex.get('scene'), 'q': ex.get('prompt')})}.png"
        if not path.exists():
            save_png_atomic(image, path)
        description = ex.get("image_description") or (describe_scene(ex["scene"]) if ex.get("scene") else None)
        provenance = dict(ex.get("provenance") or {})
        provenance["image"] = {"path": str(path), "engine": engine.name, "description": description,
                               "phash": fingerprint(image)}
        ex["provenance"] = provenance
        if ex.get("scene") is None:
            ex["image"] = str(path)  # a picture without a scene is read back from the file
        stored += 1
    return stored
