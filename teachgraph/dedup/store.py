"""Deduplication and decontamination: a persistent Chroma store, searched in memory.

Two collections: the evaluation prompts (validation and test) and the accepted training data.
Every stored item's id is the hash of its normalised prompt (and, for a visual example, of its image's
perceptual hash: `domains.base.example_key`), so an exact duplicate is one id
look-up; a near-duplicate is the nearest neighbour in cosine space within a threshold, searched in
each collection apart (a nearer training example must never hide a contaminated evaluation prompt).

Chroma is the store of record: every accepted item is written to it before `filter` returns, and an
opened store reads its items back from it. The searches run on an in-memory copy of each collection's
ids and normalised vectors (`VectorIndex`), kept in step with every write: exact (one matmul per
batch) up to `EXACT_MAX` stored vectors, which covers a default run (at most its budget, 8,000, stored); above that an
inverted file of k-means cells probed `NPROBE` deep (approximate, as Chroma's HNSW was; its recall
against exact search is measured by benchmarks/dedup.py).

Every `DedupStore` on the same path in one process shares one client and one in-memory copy, so a
store may be constructed per call (cheap after the first: two counts) or once per run; each
construction compares Chroma's counts with the copy and re-reads it when another process wrote.

On a Chroma server (`DedupStore(url="http://HOST:PORT", prefix=..., owner=...)`, `chroma run`) the
same two collections are named PREFIX_eval and PREFIX_train; the embeddings are still computed here
and sent with every item (a server records a custom embedding function by name only). Other
processes may write to a server's collections at any time, so the copy follows them: `follow` (once
a cycle) compares every stored id with the copy and fetches what is new (and forgets what was
deleted); `filter` does so whenever a collection's count changed. A collection shared by a team is
opened with an `owner` (the run id): that run's training items are stored as ID@OWNER with
metadata run=OWNER, so that two runs accepting the same prompt both own their item, and the run's
`rollback` and `follow` touch only its own items, while every search and exact look-up sees the
items of every run. Two runs deciding at the same moment can each keep one of a near-duplicate
pair; the next check of either sees both.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections import Counter
from typing import Any

import numpy as np

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb  # noqa: E402
from chromadb.config import Settings  # noqa: E402

from teachgraph.domains.base import Example, example_key  # noqa: E402
from teachgraph.dedup.embeddings import embedding_function  # noqa: E402

try:  # installed with scikit-learn (a dependency of sentence-transformers)
    from threadpoolctl import ThreadpoolController

    _BLAS: Any = ThreadpoolController()
except ImportError:  # pragma: no cover - then BLAS keeps its own thread count
    _BLAS = None

COLLECTIONS = {"eval": "teachgraph_eval", "train": "teachgraph_train"}
# Chroma's own HNSW index is never queried (the in-memory copy answers every search), so new collections
# build it cheaply: construction of a good graph was most of the cost of each insert. A collection
# created before keeps its configuration (Chroma ignores a new one for an existing collection).
HNSW = {"space": "cosine", "ef_construction": 16, "max_neighbors": 8, "ef_search": 16, "batch_size": 1000,
        "sync_threshold": 5000}
EXACT_MAX = 10_000   # vectors searched exactly; above this, the inverted file
NPROBE = 6           # cells of the inverted file probed per query
IMAGE_BITS = 112     # perceptual-hash bits of an image (domains.images: 64 pHash + 48 colour-hash bits)
CHUNK = 1000         # candidates decided together; later chunks see the kept examples of earlier ones
ID_PAGE = 100_000    # ids per request when a server's ids are compared with the copy (ids only: ~2.5 MB)


@contextlib.contextmanager
def _one_blas_thread():
    """Searches run BLAS on one thread: many small products, where OpenBLAS's threads cost more than they
    give (20-40x slower on a shared 2-core machine), and even the large exact product is no slower."""
    if _BLAS is None:
        yield
        return
    with _BLAS.limit(limits=1, user_api="blas"):
        yield


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        vectors = vectors.reshape(len(vectors), -1)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.float32(1e-12))


def _exact(queries: np.ndarray, vectors: np.ndarray, rows: int = 4096) -> np.ndarray:
    best = np.full(len(queries), -np.inf, dtype=np.float32)
    for i in range(0, len(vectors), rows):
        np.maximum(best, (queries @ vectors[i:i + rows].T).max(axis=1), out=best)
    return best


class _Cells:
    """An inverted file: spherical k-means cells (about 4·sqrt(n)), each a contiguous block of its members'
    vectors. A near-duplicate lies in its query's nearest cell all but always; `nprobe` cells are searched."""

    def __init__(self, vectors: np.ndarray):
        n, dims = vectors.shape
        k = max(16, int(round(4 * math.sqrt(n))))
        rng = np.random.default_rng(0)
        sample = vectors[rng.permutation(n)[:min(n, 24 * k)]]
        centroids = sample[:k].copy()
        for _ in range(6):
            assign = (sample @ centroids.T).argmax(axis=1)
            sums = np.zeros_like(centroids)
            np.add.at(sums, assign, sample)
            filled = np.bincount(assign, minlength=k) > 0
            centroids[filled] = _normalised(sums[filled])
        self.centroids, self.dims = centroids, dims
        self.blocks = [np.zeros((0, dims), dtype=np.float32) for _ in range(k)]
        self.members = [np.zeros(0, dtype=np.int64) for _ in range(k)]
        self.sizes = np.zeros(k, dtype=np.int64)
        self.add(vectors, 0)

    def add(self, vectors: np.ndarray, first_row: int) -> None:
        """Add vectors whose rows in the index are first_row, first_row + 1, ..."""
        if not len(vectors):
            return
        assign = np.concatenate([(vectors[i:i + 8192] @ self.centroids.T).argmax(axis=1)
                                 for i in range(0, len(vectors), 8192)])
        order = np.argsort(assign, kind="stable")
        cells, starts = np.unique(assign[order], return_index=True)
        for cell, start, end in zip(cells.tolist(), starts.tolist(), [*starts[1:].tolist(), len(order)]):
            block, size, take = self.blocks[cell], int(self.sizes[cell]), order[start:end]
            if size + len(take) > len(block):
                grown = np.empty((max(2 * len(block), size + len(take), 16), self.dims), dtype=np.float32)
                grown[:size] = block[:size]
                self.blocks[cell] = block = grown
                members = np.empty(len(grown), dtype=np.int64)
                members[:size] = self.members[cell][:size]
                self.members[cell] = members
            block[size:size + len(take)] = vectors[take]
            self.members[cell][size:size + len(take)] = first_row + take
            self.sizes[cell] = size + len(take)

    def remove(self, keep: np.ndarray) -> None:
        """Drop the rows where `keep` is False and renumber the others as the index compacts them (in place:
        each cell keeps its capacity, so the next add does not regrow it)."""
        renumber = np.cumsum(keep) - 1
        for cell in range(len(self.blocks)):
            size = int(self.sizes[cell])
            members = self.members[cell][:size]
            alive = keep[members]
            if alive.all():
                self.members[cell][:size] = renumber[members]
            else:
                left = int(alive.sum())
                block = self.blocks[cell]
                block[:left] = block[:size][alive]
                self.members[cell][:left] = renumber[members[alive]]
                self.sizes[cell] = left

    def nearest(self, queries: np.ndarray, nprobe: int) -> np.ndarray:
        best = np.full(len(queries), -np.inf, dtype=np.float32)
        k = len(self.centroids)
        nprobe = min(nprobe, k)
        scores = queries @ self.centroids.T
        probe = np.argpartition(-scores, nprobe - 1, axis=1)[:, :nprobe] if nprobe < k else \
            np.tile(np.arange(k), (len(queries), 1))
        cells = probe.ravel()
        asking = np.repeat(np.arange(len(queries)), nprobe)
        order = np.argsort(cells, kind="stable")
        cells, asking = cells[order], asking[order]
        bounds = np.searchsorted(cells, np.arange(k + 1))
        for cell in np.flatnonzero((np.diff(bounds) > 0) & (self.sizes > 0)).tolist():
            who = asking[bounds[cell]:bounds[cell + 1]]
            sims = (queries[who] @ self.blocks[cell][:self.sizes[cell]].T).max(axis=1)
            best[who] = np.maximum(best[who], sims)
        return best


class VectorIndex:
    """The ids, cycles and normalised vectors of one collection, in memory, with the nearest-neighbour
    similarity of a batch of query vectors: exact up to `exact_max` vectors, else the inverted file."""

    def __init__(self, exact_max: int = EXACT_MAX, nprobe: int = NPROBE):
        self.exact_max, self.nprobe = exact_max, nprobe
        self.ids: list[str] = []
        self.row: dict[str, int] = {}
        self.owned_keys: Counter[str] = Counter()  # KEY of every stored KEY@OWNER id (a shared collection)
        self.cycles = np.zeros(0, dtype=np.int64)
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._cells: _Cells | None = None
        self._cells_built_at = 0

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.row

    def has_key(self, key: str) -> bool:
        """Whether an item of this prompt key is stored, whoever owns it."""
        return key in self.row or key in self.owned_keys

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[:len(self.ids)]

    def add(self, ids: list[str], vectors: np.ndarray, cycles: list[int] | np.ndarray) -> None:
        if not len(ids):
            return
        vectors = _normalised(vectors)
        n, need = len(self.ids), len(self.ids) + len(ids)
        if self._vectors.shape[1] != vectors.shape[1]:
            if n:
                raise ValueError(f"dedup: {vectors.shape[1]}-dimensional vectors added to a "
                                 f"{self._vectors.shape[1]}-dimensional index")
            self._vectors = np.zeros((0, vectors.shape[1]), dtype=np.float32)
        if need > len(self._vectors):
            grown = np.empty((max(need, 2 * len(self._vectors), 1024), vectors.shape[1]), dtype=np.float32)
            grown[:n] = self._vectors[:n]
            self._vectors = grown
        self._vectors[n:need] = vectors
        self.row.update((item_id, n + i) for i, item_id in enumerate(ids))
        self.owned_keys.update(i.split("@", 1)[0] for i in ids if "@" in i)
        self.ids.extend(ids)
        self.cycles = np.concatenate([self.cycles, np.asarray(cycles, dtype=np.int64)])
        if self._cells is not None:
            with _one_blas_thread():
                self._cells.add(vectors, n)

    def ids_of_cycle(self, cycle: int) -> list[str]:
        return [self.ids[i] for i in np.flatnonzero(self.cycles == cycle).tolist()]

    def remove(self, ids: list[str]) -> None:
        gone = {self.row[i] for i in ids if i in self.row}
        if not gone:
            return
        keep = np.ones(len(self.ids), dtype=bool)
        keep[list(gone)] = False
        self.owned_keys.subtract(self.ids[r].split("@", 1)[0] for r in gone if "@" in self.ids[r])
        self.owned_keys = +self.owned_keys
        left = int(keep.sum())
        self._vectors[:left] = self.vectors[keep]  # compacted in place: the buffer keeps its capacity
        self.ids = [i for i, k in zip(self.ids, keep.tolist()) if k]
        self.row = {item_id: r for r, item_id in enumerate(self.ids)}
        self.cycles = self.cycles[keep]
        if self._cells is not None:
            self._cells.remove(keep)

    def nearest(self, queries: np.ndarray) -> np.ndarray:
        """The largest cosine similarity of each query to a stored vector (-inf when nothing is stored)."""
        queries = _normalised(queries)
        n = len(self.ids)
        if not n or not len(queries):
            return np.full(len(queries), -np.inf, dtype=np.float32)
        with _one_blas_thread():
            if n <= self.exact_max:
                self._cells = None
                return _exact(queries, self.vectors)
            if self._cells is None or n > 2 * self._cells_built_at:  # (re)train the cells as the store grows
                self._cells, self._cells_built_at = _Cells(self.vectors), n
            return self._cells.nearest(queries, self.nprobe)


class ChromaUnavailable(RuntimeError):
    """A Chroma server that does not answer."""


def _server_address(url: str) -> tuple[str, int, bool]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "localhost", parts.port or (443 if parts.scheme == "https" else 8000), \
        parts.scheme == "https"


def _http_client(url: str) -> Any:
    host, port, ssl = _server_address(url)
    return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=Settings(anonymized_telemetry=False))


def check_chroma_server(url: str, prefix: str | None = None, embedding: str = "hashing") -> None:
    """The server answers its heartbeat, else ChromaUnavailable naming it; with `prefix` (a shared
    collection), its collections exist or are made now, with this embedding (another is refused)."""
    try:
        client = _http_client(url)
        client.heartbeat()
    except Exception as error:  # noqa: BLE001 - refused, timed out, not a Chroma server: one clear line
        raise ChromaUnavailable(f"the Chroma server {url} does not answer ({type(error).__name__}: "
                                f"{str(error).strip()[:200]}); start it with `chroma run --path DIR --port PORT`, "
                                "or leave chroma_url unset for the in-process store") from None
    for source in COLLECTIONS if prefix else ():
        try:
            client.get_or_create_collection(f"{prefix}_{source}", embedding_function=embedding_function(embedding),
                                            configuration={"hnsw": dict(HNSW)})
        except ValueError as error:  # its embedding function is another one
            raise ChromaUnavailable(f"the collection {prefix}_{source} on {url} cannot be used with "
                                    f"embedding={embedding!r}: {error}") from None


class _Shared:
    """What every DedupStore on one path (or server and collection names) shares in a process: the
    client, the collections, the copies."""

    def __init__(self, path: str | None, embedding: str, url: str | None = None,
                 names: dict[str, str] | None = None):
        self.path, self.url = path, url
        self.names = names or COLLECTIONS
        self.embedder = embedding_function(embedding)
        self.indexes: dict[str, VectorIndex] = {}
        self.lock = threading.RLock()
        self.loads = 0
        self.open()
        self.reload()

    def identity(self) -> tuple[int, int] | None:
        """The Chroma database file's (device, inode): another after the directory was removed and made anew."""
        if self.url is not None:  # a server's collections are followed by `refresh` instead
            return None
        try:
            st = os.stat(os.path.join(self.path, "chroma.sqlite3"))
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def open(self) -> None:
        self.client = _http_client(self.url) if self.url is not None else \
            chromadb.PersistentClient(path=self.path, settings=Settings(anonymized_telemetry=False))
        self.collections = self._collections()
        self.batch = max(1, min(5000, self.client.get_max_batch_size()))
        self.opened = self.identity()

    def _collections(self) -> dict[str, Any]:
        return {source: self.client.get_or_create_collection(
            name, embedding_function=self.embedder, configuration={"hnsw": dict(HNSW)})
            for source, name in self.names.items()}

    def refresh(self, always: bool = True) -> None:
        """A server's collections into the copy: the ids stored now are compared with the copy's, new
        items fetched, deleted ones forgotten (`always=False`: only where a count differs). A collection
        made anew on the server (its data lost) is read from scratch."""
        current = self._collections()
        if any(current[s].id != self.collections[s].id for s in current):
            self.collections = current
            self.reload()
            return
        for source, collection in self.collections.items():
            index = self.indexes[source]
            if not always and collection.count() == len(index):
                continue
            for _ in range(3):  # a concurrent writer can shift offset pages: read again until consistent
                total = collection.count()
                ids = [i for offset in range(0, total, ID_PAGE)
                       for i in collection.get(limit=ID_PAGE, offset=offset, include=[])["ids"]]
                if len(ids) == total == len(set(ids)) == collection.count():
                    break
            stored = set(ids)
            index.remove([i for i in index.ids if i not in stored])
            new = [i for i in ids if i not in index]
            for at in range(0, len(new), self.batch):
                got = collection.get(ids=new[at:at + self.batch], include=["embeddings", "metadatas"])
                if len(got["ids"]):
                    index.add(got["ids"], np.asarray(got["embeddings"], dtype=np.float32),
                              [int((m or {}).get("cycle", -1)) for m in got["metadatas"]])

    def reopen(self) -> None:
        """A fresh client and copies: Chroma's own per-process state does not see another process's writes."""
        self.client.close()
        self.open()
        self.reload()

    def reload(self) -> None:
        """Read both collections back from Chroma into fresh in-memory copies."""
        self.loads += 1
        for source, collection in self.collections.items():
            for _ in range(3):  # a concurrent writer can shift offset pages: read again until consistent
                total = collection.count()
                ids: list[str] = []
                vectors, cycles = [], []
                for offset in range(0, total, self.batch):
                    got = collection.get(limit=self.batch, offset=offset, include=["embeddings", "metadatas"])
                    ids += got["ids"]
                    if len(got["ids"]):
                        vectors.append(np.asarray(got["embeddings"], dtype=np.float32))
                    cycles += [int((m or {}).get("cycle", -1)) for m in got["metadatas"]]
                if len(ids) == total == len(set(ids)) == collection.count():
                    break
            index = VectorIndex()
            index.add(ids, np.concatenate(vectors) if vectors else np.zeros((0, 1), np.float32), cycles)
            self.indexes[source] = index

    def in_step(self) -> bool:
        return all(c.count() == len(self.indexes[s]) for s, c in self.collections.items())


_SHARED: dict[tuple[str, str], _Shared] = {}
_SHARED_LOCK = threading.Lock()


class DedupStore:
    """The deduplication store of one run directory's Chroma path; see the module docstring."""

    def __init__(self, path: str | None = None, embedding: str = "hashing", *, url: str | None = None,
                 prefix: str | None = None, owner: str | None = None, images: bool = False):
        """The store under `path` (in-process Chroma), or on the Chroma server at `url` in the collections
        PREFIX_eval and PREFIX_train; `owner` (a shared collection): the run whose items these are; `images`:
        the examples are visual (their vectors include the image's perceptual hash, see `vectors`)."""
        if (path is None) == (url is None):
            raise ValueError("dedup: give a store path or a Chroma server url, not both or neither")
        names = {source: f"{prefix}_{source}" for source in COLLECTIONS} if url is not None and prefix else None
        key = (os.path.realpath(path), embedding) if path is not None else \
            (url, tuple(sorted((names or COLLECTIONS).items())), embedding, owner)
        with _SHARED_LOCK:
            shared = _SHARED.get(key)
            if shared is None:
                shared = _SHARED[key] = _Shared(path, embedding, url, names)
        with shared.lock:
            if url is not None:
                shared.refresh(always=False)
            # another process wrote to this path since the copy was made, or the directory was made anew
            elif shared.identity() != shared.opened or not shared.in_step():
                shared.reopen()
        self._key, self._shared, self.owner, self.images = key, shared, owner, images

    # read through the shared state: a reopen (after another process wrote) replaces them for every store
    client = property(lambda self: self._shared.client)
    collections = property(lambda self: self._shared.collections)
    indexes = property(lambda self: self._shared.indexes)
    embedder = property(lambda self: self._shared.embedder)
    batch = property(lambda self: self._shared.batch)

    def refresh(self, always: bool = True) -> None:
        """On a server: bring the in-memory copy in step with what every writer stored (see the module doc)."""
        if self._shared.url is not None:
            with self._shared.lock:
                self._shared.refresh(always)

    def close(self) -> None:
        """Drop this process's in-memory copy of the path (the next DedupStore re-reads Chroma)."""
        with _SHARED_LOCK:
            if _SHARED.get(self._key) is self._shared:
                del _SHARED[self._key]
                self._shared.client.close()

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embedder(texts), dtype=np.float32)

    def vectors(self, examples: list[Example]) -> np.ndarray:
        """Each example's vector: its prompt's embedding; in a store of visual examples (`images`), joined
        with its image's perceptual-hash bits at equal weight, so that the cosine similarity of two examples
        is the mean of their questions' and their images' (a near-duplicate needs both near)."""
        text = self.embed([e["prompt"] for e in examples])
        if not self.images:
            return text
        from teachgraph.domains.images import example_fingerprint, fingerprint_vector, has_image

        text = _normalised(text) * np.float32(np.sqrt(0.5))
        picture = np.zeros((len(examples), IMAGE_BITS), dtype=np.float32)
        for i, e in enumerate(examples):
            if has_image(e):
                picture[i] = fingerprint_vector(example_fingerprint(e)) * np.float32(np.sqrt(0.5))
        return _normalised(np.concatenate([text, picture], axis=1))

    def count(self) -> int:
        return sum(len(index) for index in self.indexes.values())

    def _source(self, item_id: str) -> str | None:
        """Where an id is stored (training data first, as the look-up in both collections always said)."""
        if self.indexes["train"].has_key(item_id):
            return "train"
        return "eval" if item_id in self.indexes["eval"] else None

    def _own(self, item_id: str) -> str:
        """The id under which this store's run keeps a training item (ID@OWNER in a shared collection)."""
        return f"{item_id}@{self.owner}" if self.owner else item_id

    def _meta(self, cycle: int, skill: Any) -> dict[str, Any]:
        meta = {"cycle": cycle, "skill": str(skill)}
        return dict(meta, run=self.owner) if self.owner else meta

    def _owned(self, ids: list[str]) -> list[str]:
        return [i for i in ids if i.endswith(f"@{self.owner}")] if self.owner else ids

    def _add(self, source: str, ids: list[str], prompts: list[str], vectors: np.ndarray,
             metas: list[dict[str, Any]]) -> None:
        """Insert items known to be absent: into Chroma (the record) first, then the in-memory copy. The
        prompt is kept as metadata, not as a Chroma document: documents feed Chroma's full-text (trigram)
        index, which nothing here queries: 0.65 ms a row with the prompt as a document, 0.28 as metadata (8,000
        rows in batches of 1,600, Intel Xeon). A write-behind thread was tried and is slower: Chroma's add
        holds the GIL, and training beside it took 2.7x as long."""
        metas = [dict(m, prompt=p) for m, p in zip(metas, prompts)]
        for i in range(0, len(ids), self.batch):
            self.collections[source].add(ids=ids[i:i + self.batch], embeddings=vectors[i:i + self.batch],
                                         metadatas=metas[i:i + self.batch])
        self.indexes[source].add(ids, vectors, [int(m.get("cycle", -1)) for m in metas])

    def add_eval(self, examples: list[Example], split: str) -> int:
        """Store evaluation prompts (idempotent; no Chroma call when all are stored). Returns how many were new."""
        with self._shared.lock:
            ids = list(dict.fromkeys(example_key(e) for e in examples))
            missing = [i for i in ids if self._source(i) is None]
            if not missing:
                return 0
            by_id = {example_key(e): e for e in examples}
            prompts = [by_id[i]["prompt"] for i in missing]
            self._add("eval", missing, prompts, self.vectors([by_id[i] for i in missing]),
                      [{"split": split} for _ in missing])
            return len(missing)

    def rollback(self, cycle: int) -> None:
        """Forget training examples stored for `cycle` (a node re-run after a crash starts clean)."""
        with self._shared.lock:
            ids = self._owned(self.indexes["train"].ids_of_cycle(int(cycle)))
            if not ids:  # the copy mirrors Chroma: nothing of that cycle is stored
                return
            where = {"$and": [{"cycle": int(cycle)}, {"run": self.owner}]} if self.owner else {"cycle": int(cycle)}
            self.collections["train"].delete(where=where)
            self.indexes["train"].remove(ids)

    def train_ids_by_cycle(self) -> dict[int, set[str]]:
        """The stored training examples' ids, by the cycle that accepted them."""
        index = self.indexes["train"]
        out: dict[int, set[str]] = {}
        for item_id, cycle in zip(index.ids, index.cycles.tolist()):
            if not self.owner:
                out.setdefault(int(cycle), set()).add(item_id)
            elif item_id.endswith(f"@{self.owner}"):
                out.setdefault(int(cycle), set()).add(item_id.split("@", 1)[0])
        return out

    def add_accepted(self, examples: list[Example], cycle: int) -> None:
        """Store examples accepted earlier (rebuilding the store from a run's accepted data), unfiltered."""
        with self._shared.lock:
            by_id = {example_key(e): e for e in examples}
            # in a shared collection, what this run owns (another run may hold the same prompt)
            ids = [i for i in by_id if (self._own(i) not in self.indexes["train"] if self.owner
                                        else self._source(i) is None)]
            if ids:
                prompts = [by_id[i]["prompt"] for i in ids]
                self._add("train", [self._own(i) for i in ids], prompts, self.vectors([by_id[i] for i in ids]),
                          [self._meta(cycle, by_id[i].get("skill")) for i in ids])

    def follow(self, lineage: dict[int, list[Example]], cycle: int) -> str:
        """Make the training examples stored exactly the accepted data of `lineage` ({cycle: examples} of the
        cycles before `cycle` on the branch being taught), before deduplicating `cycle`'s data: entries of
        `cycle` and later (a re-run after a crash, or a branch this one forked from went further) are
        forgotten, and a store that disagrees with the lineage (another branch's history, or a store
        lost or damaged) is rebuilt from it. Returns what was done: "in_step", "rolled_back" or "rebuilt"."""
        with self._shared.lock:
            self.refresh()  # on a server: what other processes wrote since
            return self._follow(lineage, cycle)

    def _follow(self, lineage: dict[int, list[Example]], cycle: int) -> str:
        stored = self.train_ids_by_cycle()
        later = [c for c in stored if c >= cycle]
        for c in later:
            self.rollback(c)
        expected = {c: {example_key(e) for e in rows} for c, rows in lineage.items() if c < cycle}
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
        with self._shared.lock:
            self.refresh(always=False)
            dropped: list[tuple[Example, str]] = []
            candidates: list[tuple[str, Example]] = []  # (prompt key, example): each key computed once
            seen: set[str] = set()
            for ex in examples:
                key = example_key(ex)
                if key in seen:
                    dropped.append((ex, "exact_duplicate"))
                else:
                    seen.add(key)
                    candidates.append((key, ex))
            fresh: list[tuple[str, Example]] = []
            for key, ex in candidates:
                source = self._source(key)
                if source is None:
                    fresh.append((key, ex))
                else:
                    dropped.append((ex, "eval_exact" if source == "eval" else "exact_duplicate"))
            kept: list[Example] = []
            for i in range(0, len(fresh), CHUNK):  # chunks see the kept examples of earlier chunks in the store
                chunk_kept, chunk_dropped = self._filter_chunk(fresh[i:i + CHUNK], cycle, dedup_threshold,
                                                               decontamination_threshold)
                kept += chunk_kept
                dropped += chunk_dropped
            return kept, dropped

    def _filter_chunk(self, keyed: list[tuple[str, Example]], cycle: int, dedup_threshold: float,
                      decontamination_threshold: float) -> tuple[list[Example], list[tuple[Example, str]]]:
        dropped: list[tuple[Example, str]] = []
        fresh = [ex for _, ex in keyed]
        vectors = self.vectors(fresh)
        near = np.zeros(len(fresh), dtype=bool)
        # Evaluation prompts and training data are searched apart, each against its own threshold, so
        # that a nearer training example can never hide a contaminated evaluation prompt.
        for source, threshold, reason in (("eval", decontamination_threshold, "eval_near"),
                                          ("train", dedup_threshold, "near_duplicate")):
            if not len(self.indexes[source]):
                continue
            # cosine distance as Chroma computed it (float32), compared as Python floats were
            distances = (np.float32(1.0) - self.indexes[source].nearest(vectors)).astype(np.float64)
            for j in np.flatnonzero(distances <= threshold).tolist():
                if not near[j]:
                    near[j] = True
                    dropped.append((fresh[j], reason))
        with _one_blas_thread():
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
            self._add("train", [self._own(key) for (key, _), k in zip(keyed, keep) if k], [e["prompt"] for e in kept],
                      vectors[keep], [self._meta(cycle, e.get("skill")) for e in kept])
        return kept, dropped


def drop_counts(dropped: list[tuple[Example, str]]) -> dict[str, int]:
    return dict(sorted(Counter(reason for _, reason in dropped).items()))
