"""Deduplication and decontamination in a persistent Chroma store.

Two collections: the evaluation prompts (validation and test) and the accepted training data.
Every stored item's id is the hash of its normalised prompt, so an exact duplicate is one id
look-up; a near-duplicate is the nearest neighbour in cosine space within a threshold, searched in
each collection apart (a metadata filter would make Chroma search slowly, and a nearer training
example must never hide a contaminated evaluation prompt).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import numpy as np

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb  # noqa: E402
from chromadb.config import Settings  # noqa: E402

from teachgraph.domains.base import Example, example_id  # noqa: E402
from teachgraph.dedup.embeddings import embedding_function  # noqa: E402

COLLECTIONS = {"eval": "teachgraph_eval", "train": "teachgraph_train"}
# ef_search 16 (Chroma's default is 100): the query is only ever for the single nearest neighbour
# within a small distance, which a narrow search finds; it makes checks ~3x faster at 100k stored with the
# same decisions on the labelled pairs (benchmarks/dedup.py).
HNSW = {"space": "cosine", "ef_construction": 64, "ef_search": 16, "batch_size": 1000, "sync_threshold": 5000}


class DedupStore:
    def __init__(self, path: str, embedding: str = "hashing"):
        self.client = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))
        self.embedder = embedding_function(embedding)
        self.collections = {source: self.client.get_or_create_collection(
            name, embedding_function=self.embedder, configuration={"hnsw": dict(HNSW)})
            for source, name in COLLECTIONS.items()}
        self.batch = max(1, min(5000, self.client.get_max_batch_size()))

    def close(self) -> None:
        """Release the Chroma client (the process keeps one system per path until its last client closes)."""
        self.client.close()

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embedder(texts), dtype=np.float32)

    def count(self) -> int:
        return sum(c.count() for c in self.collections.values())

    def _existing(self, ids: list[str]) -> dict[str, str]:
        """{id: source} of the ids already stored."""
        found: dict[str, str] = {}
        for source, collection in self.collections.items():
            for i in range(0, len(ids), self.batch):
                found.update(dict.fromkeys(collection.get(ids=ids[i:i + self.batch], include=[])["ids"], source))
        return found

    def _add(self, source: str, ids: list[str], docs: list[str], vectors: np.ndarray,
             metas: list[dict[str, Any]]) -> None:
        """Insert items known to be absent (callers check ids first; `add` skips upsert's look-up)."""
        for i in range(0, len(ids), self.batch):
            self.collections[source].add(ids=ids[i:i + self.batch], documents=docs[i:i + self.batch],
                                         embeddings=vectors[i:i + self.batch], metadatas=metas[i:i + self.batch])

    def add_eval(self, examples: list[Example], split: str) -> int:
        """Store evaluation prompts (idempotent). Returns how many were new."""
        ids = list(dict.fromkeys(example_id(e["prompt"]) for e in examples))
        existing = self._existing(ids)
        missing = [i for i in ids if i not in existing]
        if not missing:
            return 0
        by_id = {example_id(e["prompt"]): e for e in examples}
        docs = [by_id[i]["prompt"] for i in missing]
        self._add("eval", missing, docs, self.embed(docs), [{"split": split} for _ in missing])
        return len(missing)

    def rollback(self, cycle: int) -> None:
        """Forget training examples stored for `cycle` (a node re-run after a crash starts clean)."""
        self.collections["train"].delete(where={"cycle": cycle})

    def train_ids_by_cycle(self) -> dict[int, set[str]]:
        """The stored training examples' ids, by the cycle that accepted them."""
        out: dict[int, set[str]] = {}
        got = self.collections["train"].get(include=["metadatas"])
        for item_id, meta in zip(got["ids"], got["metadatas"]):
            out.setdefault(int(meta["cycle"]), set()).add(item_id)
        return out

    def add_accepted(self, examples: list[Example], cycle: int) -> None:
        """Store examples accepted earlier (rebuilding the store from a run's accepted data), unfiltered."""
        by_id = {example_id(e["prompt"]): e for e in examples}
        ids = [i for i in by_id if i not in self._existing(list(by_id))]
        if ids:
            docs = [by_id[i]["prompt"] for i in ids]
            self._add("train", ids, docs, self.embed(docs),
                      [{"cycle": cycle, "skill": str(by_id[i].get("skill"))} for i in ids])

    def follow(self, lineage: dict[int, list[Example]], cycle: int) -> str:
        """Make the training examples stored exactly the accepted data of `lineage` ({cycle: examples} of the
        cycles before `cycle` on the branch being taught), before deduplicating `cycle`'s data: entries of
        `cycle` and later (a re-run after a crash, or a branch this one forked from went further) are
        forgotten, and a store that disagrees with the lineage (another branch's history, or a store
        lost or damaged) is rebuilt from it. Returns what was done: "in_step", "rolled_back" or "rebuilt"."""
        stored = self.train_ids_by_cycle()
        later = [c for c in stored if c >= cycle]
        for c in later:
            self.rollback(c)
        expected = {c: {example_id(e["prompt"]) for e in rows} for c, rows in lineage.items() if c < cycle}
        if {c: ids for c, ids in stored.items() if c < cycle} == {c: ids for c, ids in expected.items() if ids}:
            return "rolled_back" if later else "in_step"
        for c in [c for c in stored if c < cycle]:
            self.rollback(c)
        for c, rows in sorted(lineage.items()):
            if c < cycle:
                self.add_accepted(rows, c)
        return "rebuilt"

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
            source = existing.get(example_id(ex["prompt"]))
            if source is None:
                fresh.append(ex)
            else:
                dropped.append((ex, "eval_exact" if source == "eval" else "exact_duplicate"))
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
            if not self.collections[source].count():
                continue
            res = self.collections[source].query(query_embeddings=vectors, n_results=1, include=["distances"])
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
            self._add("train", [example_id(e["prompt"]) for e in kept], [e["prompt"] for e in kept], vectors[keep],
                      [{"cycle": cycle, "skill": str(e.get("skill"))} for e in kept])
        return kept, dropped


def drop_counts(dropped: list[tuple[Example, str]]) -> dict[str, int]:
    return dict(sorted(Counter(reason for _, reason in dropped).items()))
