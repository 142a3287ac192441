"""Deduplication and decontamination of generated data: a Chroma store and its local embeddings."""

from teachgraph.dedup.store import DedupStore, drop_counts

__all__ = ["DedupStore", "drop_counts"]
