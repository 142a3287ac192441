"""Deduplication and decontamination in a persistent Chroma collection.

Every stored item's id is the hash of its normalised prompt, so an exact duplicate is one id
look-up; near-duplicates are the nearest neighbour in cosine space. Evaluation prompts (validation
and test) are stored too, so that a generated example close to one of them is dropped.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import numpy as np

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb  # noqa: E402
from chromadb.config import Settings  # noqa: E402

from domains.base import Example, example_id  # noqa: E402
from teachgraph.embeddings import embedding_function  # noqa: E402

COLLECTION = "teachgraph_examples"


class DedupStore:
    def __init__(self, path: str, embedding: str = "hashing"):
        self.client = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))
        self.embedder = embedding_function(embedding)
        self.collection = self.client.get_or_create_collection(
            COLLECTION, embedding_function=self.embedder,
            configuration={"hnsw": {"space": "cosine", "ef_construction": 64, "batch_size": 1000, "sync_threshold": 5000}})
        self.batch = max(1, min(5000, self.client.get_max_batch_size()))
        self.sources = {source: bool(self.collection.get(where={"source": source}, limit=1, include=[])["ids"])
                        for source in ("eval", "train")}

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embedder(texts), dtype=np.float32)

    def count(self) -> int:
        return self.collection.count()

    def _existing(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), self.batch):
            got = self.collection.get(ids=ids[i:i + self.batch], include=["metadatas"])
            found.update(zip(got["ids"], got["metadatas"]))
        return found

    def _add(self, ids: list[str], docs: list[str], vectors: np.ndarray, metas: list[dict[str, Any]]) -> None:
        """Insert items known to be absent (callers check ids first; `add` skips upsert's look-up)."""
        for meta in metas[:1]:
            self.sources[meta["source"]] = True
        for i in range(0, len(ids), self.batch):
            self.collection.add(ids=ids[i:i + self.batch], documents=docs[i:i + self.batch],
                                   embeddings=vectors[i:i + self.batch], metadatas=metas[i:i + self.batch])

    def add_eval(self, examples: list[Example], split: str) -> int:
        """Store evaluation prompts (idempotent). Returns how many were new."""
        ids = list(dict.fromkeys(example_id(e["prompt"]) for e in examples))
        missing = [i for i in ids if i not in self._existing(ids)]
        if not missing:
            return 0
        by_id = {example_id(e["prompt"]): e for e in examples}
        docs = [by_id[i]["prompt"] for i in missing]
        self._add(missing, docs, self.embed(docs), [{"source": "eval", "split": split, "cycle": -1} for _ in missing])
        return len(missing)

    def rollback(self, cycle: int) -> None:
        """Forget training examples stored for `cycle` (a node re-run after a crash starts clean)."""
        self.collection.delete(where={"$and": [{"source": "train"}, {"cycle": cycle}]})
        self.sources["train"] = bool(self.collection.get(where={"source": "train"}, limit=1, include=[])["ids"])

    def filter(self, examples: list[Example], cycle: int, dedup_threshold: float,
               decontamination_threshold: float) -> tuple[list[Example], list[tuple[Example, str]]]:
        """Keep examples that are neither duplicates of stored items nor of each other; store the kept ones."""
        dropped: list[tuple[Example, str]] = []
        candidates: list[Example] = []
        seen: set[str] = set()
        for ex in examples:
            key = example_id(ex["prompt"])
            if key in seen:
                dropped.append((ex, "exact_duplicate"))
            else:
                seen.add(key)
                candidates.append(ex)
        existing = self._existing([example_id(e["prompt"]) for e in candidates])
        fresh = []
        for ex in candidates:
            meta = existing.get(example_id(ex["prompt"]))
            if meta is None:
                fresh.append(ex)
            else:
                dropped.append((ex, "eval_exact" if meta.get("source") == "eval" else "exact_duplicate"))
        kept: list[Example] = []
        for i in range(0, len(fresh), 1000):  # chunks see the kept examples of earlier chunks in the store
            chunk_kept, chunk_dropped = self._filter_chunk(fresh[i:i + 1000], cycle, dedup_threshold,
                                                           decontamination_threshold)
            kept += chunk_kept
            dropped += chunk_dropped
        return kept, dropped

    def _filter_chunk(self, fresh: list[Example], cycle: int, dedup_threshold: float,
                      decontamination_threshold: float) -> tuple[list[Example], list[tuple[Example, str]]]:
        dropped: list[tuple[Example, str]] = []
        vectors = self.embed([e["prompt"] for e in fresh])
        near = np.zeros(len(fresh), dtype=bool)
        # Evaluation prompts and training data are searched apart, each against its own threshold, so
        # that a nearer training example can never hide a contaminated evaluation prompt.
        for source, threshold, reason in (("eval", decontamination_threshold, "eval_near"),
                                          ("train", dedup_threshold, "near_duplicate")):
            if not self.sources.get(source):
                continue
            res = self.collection.query(query_embeddings=vectors, n_results=1, where={"source": source},
                                        include=["distances"])
            for j, dist in enumerate(res["distances"]):
                if not near[j] and dist and dist[0] <= threshold:
                    near[j] = True
                    dropped.append((fresh[j], reason))
        similar = (vectors @ vectors.T) >= 1.0 - dedup_threshold
        keep = np.zeros(len(fresh), dtype=bool)
        for i in range(len(fresh)):  # greedy within the chunk: the first of a near-duplicate group stays
            if near[i]:
                continue
            if similar[i, :i][keep[:i]].any():
                dropped.append((fresh[i], "near_duplicate"))
                continue
            keep[i] = True
        kept = [e for e, k in zip(fresh, keep) if k]
        if kept:
            self._add([example_id(e["prompt"]) for e in kept], [e["prompt"] for e in kept], vectors[keep],
                      [{"source": "train", "cycle": cycle, "skill": str(e.get("skill"))} for e in kept])
        return kept, dropped


def drop_counts(dropped: list[tuple[Example, str]]) -> dict[str, int]:
    return dict(sorted(Counter(reason for _, reason in dropped).items()))
