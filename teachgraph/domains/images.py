"""The image of a visual example, wherever it comes from, and its perceptual fingerprint.

An example carries its image as `scene` (a structured scene, drawn by `domains.scenes.render`, the same
pixels for the same scene) or as `image` (a path to a file: a dataset's picture, or one a generator
stored in the run directory). `example_image` turns either into an RGB PIL image; a file that is
missing, empty, unreadable or in a mode that is not a picture raises `BadImage` with the reason.

Deduplication compares images by a perceptual hash (pHash of the luminance, plus a colour hash: pHash
alone is blind to hue), through the maintained `imagehash` library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from teachgraph.domains.base import stable_hash

PICTURE_MODES = {"RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr"}  # converted to RGB; others are not pictures
HASH_SIZE = 8       # pHash bits: HASH_SIZE ** 2
COLOR_BINBITS = 3   # colorhash: 14 bins x 3 bits


class BadImage(ValueError):
    """An image that cannot be used, with the reason."""


def has_image(example: dict[str, Any]) -> bool:
    return example.get("scene") is not None or bool(example.get("image"))


def image_ref(example: dict[str, Any]) -> str | None:
    """A stable reference to an example's image (the scene's hash, or the file path)."""
    if example.get("scene") is not None:
        return "scene:" + stable_hash(example["scene"])
    if example.get("image"):
        return "file:" + str(example["image"])
    return None


def open_image_file(path: str | Path) -> Image.Image:
    """An RGB copy of the picture at `path` (raises BadImage: missing, empty, corrupt, not a picture's mode)."""
    path = Path(path)
    if not path.is_file():
        raise BadImage(f"image file not found: {path}")
    if path.stat().st_size == 0:
        raise BadImage(f"image file is empty: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in PICTURE_MODES:
                raise BadImage(f"image {path.name} has mode {image.mode!r}, not a picture's (RGB, L, P, ...)")
            if min(image.size) < 1:
                raise BadImage(f"image {path.name} has no pixels")
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise BadImage(f"image {path.name} cannot be read ({type(error).__name__})") from None


def example_image(example: dict[str, Any]) -> Image.Image:
    if example.get("scene") is not None:
        return _rendered(example["scene"])
    if example.get("image"):
        return open_image_file(example["image"])
    raise BadImage("the example has no image (neither 'scene' nor 'image')")


_RENDERED: dict[str, Image.Image] = {}


def _rendered(scene: dict[str, Any]) -> Image.Image:
    """The scene's picture (kept per scene: evaluation draws the same scenes every cycle)."""
    from teachgraph.domains.scenes import check_scene, render

    key = stable_hash(scene)
    image = _RENDERED.get(key)
    if image is None:
        problem = check_scene(scene)
        if problem:
            raise BadImage(f"scene: {problem}")
        if len(_RENDERED) > 20_000:
            _RENDERED.clear()
        image = _RENDERED[key] = render(scene)
    return image.copy()


def fingerprint(image: Image.Image) -> str:
    """The perceptual hash of an image, as hex (pHash, then the colour hash)."""
    import imagehash

    return f"{imagehash.phash(image, hash_size=HASH_SIZE)}{imagehash.colorhash(image, binbits=COLOR_BINBITS)}"


def example_fingerprint(example: dict[str, Any]) -> str:
    ref = image_ref(example)
    cached = _FINGERPRINTS.get(ref) if ref else None
    if cached is None:
        cached = fingerprint(example_image(example))
        if ref:
            _FINGERPRINTS[ref] = cached
    return cached


_FINGERPRINTS: dict[str, str] = {}


def fingerprint_vector(hex_hash: str) -> np.ndarray:
    """The hash's bits as a +-1 vector of unit length: cosine similarity = 1 - 2 x (Hamming distance / bits)."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(hex_hash if len(hex_hash) % 2 == 0 else hex_hash + "0"),
                                       dtype=np.uint8)).astype(np.float32)
    vector = bits * 2 - 1
    return vector / np.sqrt(len(vector))


def save_png_atomic(image: Image.Image, path: Path) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".img-", suffix=".png")
    os.close(fd)
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
