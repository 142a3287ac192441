"""teachgraph/embeddings.py and teachgraph/dedup.py: stable embeddings, dedup and decontamination."""

from __future__ import annotations

import json
import os
from collections import Counter
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from teachgraph.dedup.store import COLLECTIONS, DedupStore, drop_counts
from teachgraph.dedup.embeddings import HashingEmbedding, MiniLMEmbedding, embedding_function, hashing_embed, minilm_embed

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


def run_python(code: str, timeout: int = 120) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
               PYTHONHASHSEED="random")
    proc = subprocess.run([PYTHON, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def ex(prompt: str, skill: str = "s") -> dict:
    return {"prompt": prompt, "answer": "a", "skill": skill}


def distance(a: str, b: str) -> float:
    v = hashing_embed([a, b])
    return float(1.0 - v[0] @ v[1])


# A near-duplicate pair that is not an exact duplicate (one extra character); thresholds in the tests
# are set relative to its distance, so they do not depend on the embedding's exact numbers.
NEAR_A, NEAR_B = "larger 12 34", "larger 12 34?"
NEAR_D = distance(NEAR_A, NEAR_B)
CLOSE = min(2.0, 2 * NEAR_D)  # a threshold under which the pair counts as near


def test_the_near_pair_is_near_but_not_identical():
    assert 1e-3 < NEAR_D < 0.2
    assert distance(NEAR_A, "larger 56 78") > CLOSE


# -- hashing embedding ------------------------------------------------------------------------

TEXTS = ["max 4821", "larger 12 34", "first abcdef", "add 123 456", "Hello, World!"]


def test_hashing_embedding_is_identical_in_another_process():
    here = hashing_embed(TEXTS)
    there = run_python(f"""
        import json
        from teachgraph.dedup.embeddings import hashing_embed
        print(json.dumps(hashing_embed({TEXTS!r}).tolist()))
    """)
    assert np.array_equal(here, np.asarray(json.loads(there), dtype=np.float32))


def test_hashing_embedding_is_normalised_with_the_asked_dimensions():
    v = hashing_embed(TEXTS, dims=256)
    assert v.shape == (len(TEXTS), 256)
    assert v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert hashing_embed([], dims=64).shape == (0, 64)


@pytest.mark.parametrize("a, b", [("max 4821", "MAX   4821"), ("larger 12 34", " Larger 12\t34 "),
                                  ("first abcdef", "FIRST ABCDEF")])
def test_case_and_spacing_variants_are_the_same_point(a, b):
    assert distance(a, b) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("a, b", [("max 4821", "max 4822"), ("larger 12 34", "larger 12 35"),
                                  ("add 12 3", "add 12 4"), ("succ 999", "succ 998")])
def test_prompts_differing_in_one_number_are_far(a, b):
    assert distance(a, b) > 0.2


def test_unrelated_prompts_are_farther_than_near_variants():
    assert distance("max 4821", "max 4821?") < distance("max 4821", "len abcdefgh")


def test_embedding_functions_are_registered_and_rebuild_from_config():
    fn = embedding_function("hashing")
    assert isinstance(fn, HashingEmbedding)
    assert fn.default_space() == "cosine"
    rebuilt = HashingEmbedding.build_from_config(HashingEmbedding(dims=128).get_config())
    assert rebuilt.dims == 128
    assert np.array_equal(np.asarray(rebuilt(["max 1"])), hashing_embed(["max 1"], dims=128))
    assert isinstance(embedding_function("minilm"), MiniLMEmbedding)
    with pytest.raises(ValueError):
        embedding_function("word2vec")


# -- MiniLM -----------------------------------------------------------------------------------

def test_minilm_offline_384_dims_normalised_and_semantic():
    v = minilm_embed(["The cat sits on the mat.", "A cat is sitting on a rug.",
                      "Quarterly revenue grew by eight percent."])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    paraphrase, unrelated = float(v[0] @ v[1]), float(v[0] @ v[2])
    assert paraphrase > unrelated + 0.2
    # the Chroma embedding function gives the same vectors
    assert np.allclose(np.asarray(MiniLMEmbedding()(["The cat sits on the mat."]))[0], v[0], atol=1e-5)


# -- DedupStore -------------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path) -> DedupStore:
    return DedupStore(str(tmp_path / "chroma"))


def filt(store, examples, cycle=1, dedup=0.05, decon=0.05):
    kept, dropped = store.filter(examples, cycle=cycle, dedup_threshold=dedup, decontamination_threshold=decon)
    return [e["prompt"] for e in kept], [(e["prompt"], reason) for e, reason in dropped]


def test_distinct_examples_are_kept_and_stored(store):
    prompts = ["max 4821", "min 4821", "larger 12 34", "add 12 3", "len abcdef", "parity 12345"]
    kept, dropped = filt(store, [ex(p) for p in prompts])
    assert kept == prompts
    assert dropped == []
    assert store.count() == len(prompts)


def test_exact_and_case_space_duplicates_in_a_batch_are_dropped(store):
    kept, dropped = filt(store, [ex("max 4821"), ex("max 4821"), ex("MAX  4821"), ex("min 4821")])
    assert kept == ["max 4821", "min 4821"]
    assert dropped == [("max 4821", "exact_duplicate"), ("MAX  4821", "exact_duplicate")]
    assert store.count() == 2


def test_duplicates_of_earlier_batches_are_dropped(store):
    filt(store, [ex("max 4821"), ex("larger 12 34")], cycle=1)
    kept, dropped = filt(store, [ex("Max 4821 "), ex(NEAR_B), ex("min 4821")], cycle=2, dedup=CLOSE)
    assert kept == ["min 4821"]
    assert dict(dropped) == {"Max 4821 ": "exact_duplicate", "larger 12 34?": "near_duplicate"}


def test_near_duplicates_within_a_batch_keep_the_first(store):
    kept, dropped = filt(store, [ex("larger 12 34"), ex("larger 12 34?"), ex("larger 56 78")], dedup=CLOSE)
    assert kept == ["larger 12 34", "larger 56 78"]
    assert dropped == [("larger 12 34?", "near_duplicate")]


def test_threshold_zero_keeps_near_but_not_exact_duplicates(store):
    kept, dropped = filt(store, [ex("larger 12 34"), ex("larger 12 34?")], cycle=1, dedup=0.0, decon=0.0)
    assert kept == ["larger 12 34", "larger 12 34?"]
    kept, dropped = filt(store, [ex("larger 12 34!")], cycle=2, dedup=0.0, decon=0.0)
    assert kept == ["larger 12 34!"]
    # ... while an exact duplicate is still dropped
    kept, dropped = filt(store, [ex("LARGER 12 34")], cycle=3, dedup=0.0, decon=0.0)
    assert dropped == [("LARGER 12 34", "exact_duplicate")]


def test_threshold_decides_what_counts_as_near(store, tmp_path):
    a, b, d = NEAR_A, NEAR_B, NEAR_D
    low = DedupStore(str(tmp_path / "low"))
    assert filt(low, [ex(a), ex(b)], dedup=d * 0.5)[0] == [a, b]
    high = DedupStore(str(tmp_path / "high"))
    assert filt(high, [ex(a), ex(b)], dedup=min(2.0, d * 2))[0] == [a]
    # the same across batches (the store's nearest-neighbour query)
    later_low = DedupStore(str(tmp_path / "later_low"))
    filt(later_low, [ex(a)], cycle=1)
    assert filt(later_low, [ex(b)], cycle=2, dedup=d * 0.5)[0] == [b]
    later_high = DedupStore(str(tmp_path / "later_high"))
    filt(later_high, [ex(a)], cycle=1)
    assert filt(later_high, [ex(b)], cycle=2, dedup=d * 2)[1] == [(b, "near_duplicate")]


def test_evaluation_prompts_decontaminate(store):
    val = [ex("max 4821"), ex("larger 12 34")]
    assert store.add_eval(val, "val") == 2
    assert store.add_eval(val, "val") == 0  # idempotent
    assert store.count() == 2
    kept, dropped = filt(store, [ex("MAX 4821"), ex("larger 12 34?"), ex("min 4821")], dedup=0.0, decon=CLOSE)
    assert kept == ["min 4821"]
    assert dict(dropped) == {"MAX 4821": "eval_exact", "larger 12 34?": "eval_near"}
    assert drop_counts([(ex(p), r) for p, r in dropped]) == {"eval_exact": 1, "eval_near": 1}


def test_decontamination_threshold_is_separate_from_dedup_threshold(store):
    store.add_eval([ex("larger 12 34")], "test")
    kept, dropped = filt(store, [ex("larger 12 34?")], dedup=CLOSE, decon=0.0)
    assert kept == ["larger 12 34?"]  # the eval prompt is near under the dedup threshold, not under decon


def test_decontamination_is_not_masked_by_a_nearer_training_example(store):
    """An example within decontamination_threshold of an evaluation prompt must be dropped, even when
    an earlier training example happens to be its nearest neighbour."""
    evaluation, earlier, candidate = "larger 12 34", "larger 34 12 !", "larger 34 12"
    decon = 0.13
    assert distance(candidate, evaluation) <= decon < distance(earlier, evaluation)
    assert distance(candidate, earlier) < distance(candidate, evaluation)
    store.add_eval([ex(evaluation)], "val")
    assert filt(store, [ex(earlier)], cycle=1, dedup=0.0, decon=decon)[0] == [earlier]
    kept, dropped = filt(store, [ex(candidate)], cycle=2, dedup=0.0, decon=decon)
    assert kept == [], "an example close to a validation prompt leaked into training data"
    assert dropped == [(candidate, "eval_near")]


def test_rollback_forgets_one_cycle_of_training_items(store):
    store.add_eval([ex("parity 12345")], "val")
    c1 = [ex("max 4821"), ex("min 4821")]
    c2 = [ex("larger 12 34"), ex("add 12 3")]
    filt(store, c1, cycle=1)
    filt(store, c2, cycle=2)
    assert store.count() == 5
    assert filt(store, c2, cycle=2)[0] == []  # a re-run without rollback drops everything
    store.rollback(2)
    assert store.count() == 3
    kept, dropped = filt(store, c2, cycle=2)
    assert kept == ["larger 12 34", "add 12 3"] and dropped == []
    # cycle 1 and the evaluation prompts were untouched
    assert dict(filt(store, [ex("max 4821"), ex("parity 12345")], cycle=3)[1]) == {
        "max 4821": "exact_duplicate", "parity 12345": "eval_exact"}


def test_rollback_of_an_unknown_cycle_is_harmless(store):
    filt(store, [ex("max 4821")], cycle=1)
    store.rollback(9)
    assert store.count() == 1


def test_large_batches_are_filtered_across_chunks(store):
    from teachgraph.domains import SyntheticDomain

    data = SyntheticDomain(seed=0).generate("add_reversed", "2+2 digits", None, 1200, seed=0)
    data = data + [dict(data[1100], prompt=data[1100]["prompt"].upper())]  # an exact dup in the last chunk
    kept, dropped = filt(store, data, dedup=0.0, decon=0.0)
    assert len(kept) == 1200
    assert dropped == [(data[-1]["prompt"], "exact_duplicate")]
    assert store.count() == 1200


def test_reopened_store_in_a_new_process_sees_items_and_embeds(tmp_path):
    path = tmp_path / "chroma"
    first = DedupStore(str(path))
    first.add_eval([ex("parity 12345")], "val")
    filt(first, [ex("max 4821"), ex("larger 12 34")], cycle=1)
    del first
    out = run_python(f"""
        import json
        import chromadb
        from chromadb.config import Settings
        from teachgraph.dedup.store import DedupStore, COLLECTIONS
        store = DedupStore({str(path)!r})
        count = store.count()
        kept, dropped = store.filter(
            [{{"prompt": p, "answer": "a"}} for p in ["MAX 4821", "larger 12 34?", "PARITY 12345", "min 4821"]],
            cycle=2, dedup_threshold={CLOSE!r}, decontamination_threshold=0.0)
        # the persisted collection rebuilds the registered embedding function by itself
        client = chromadb.PersistentClient(path={str(path)!r}, settings=Settings(anonymized_telemetry=False))
        coll = client.get_collection(COLLECTIONS["train"])
        hit = coll.query(query_texts=["max  4821"], n_results=1, include=["metadatas", "distances"])
        print(json.dumps({{"count": count, "kept": [e["prompt"] for e in kept],
                          "dropped": [[e["prompt"], r] for e, r in dropped],
                          "ef": coll.configuration["embedding_function"].name(),
                          "hit": hit["metadatas"][0][0]["prompt"], "dist": hit["distances"][0][0]}}))
    """)
    result = json.loads(out)
    assert result["count"] == 3
    assert result["kept"] == ["min 4821"]
    assert dict(map(tuple, result["dropped"])) == {"MAX 4821": "exact_duplicate", "larger 12 34?": "near_duplicate",
                                                  "PARITY 12345": "eval_exact"}
    assert result["ef"] == "teachgraph-hashing"
    assert result["hit"] == "max 4821"
    assert result["dist"] == pytest.approx(0.0, abs=1e-4)
    assert DedupStore(str(path)).count() == 4  # what the other process stored is visible here


def test_collection_uses_cosine_space(store):
    assert store.collections["train"].name == COLLECTIONS["train"]
    filt(store, [ex("max 4821")])
    res = store.collections["train"].query(query_embeddings=hashing_embed(["max 4822"]), n_results=1,
                                 include=["distances"])
    assert res["distances"][0][0] == pytest.approx(distance("max 4821", "max 4822"), abs=1e-3)


# -- the vectorised embedding against the original per-text one --------------------------------

def _reference_hashing_embed(texts: list[str], dims: int = 256) -> np.ndarray:
    """The per-text implementation the persisted stores were made with (copied unchanged)."""
    import hashlib
    import re

    token, number = re.compile(r"[a-z]+|\d+|[^\sa-z\d]"), re.compile(r"\d+")

    def features(text):
        text = text.lower()
        feats = {}
        padded = "^" + "".join(text.split()) + "$"
        for n in (2, 3, 4):
            for i in range(len(padded) - n + 1):
                key = "c" + padded[i:i + n]
                feats[key] = feats.get(key, 0.0) + 1.0
        for tok in token.findall(text):
            feats["w" + tok] = feats.get("w" + tok, 0.0) + 2.0
        for num in number.findall(text):
            feats["n" + num] = feats.get("n" + num, 0.0) + 6.0
        return feats

    def slot(feature):
        value = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
        return value % dims, 1.0 if (value >> 63) & 1 else -1.0

    out = np.zeros((len(texts), dims), dtype=np.float32)
    for row, text in enumerate(texts):
        for feature, weight in features(text).items():
            index, sign = slot(feature)
            out[row, index] += sign * weight
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


ODD_TEXTS = ["", " ", "MAX   4821", "ΑΣ Σ", "İstanbul 12", "emoji 😀 12 ab", "tab\tnew\nline", "١٢٣ digits",
             "a\u00a0b", "😀", "Ǆ ǅ", "What is 12 plus 7?", "x" * 300]


def _realistic_texts() -> list[str]:
    from teachgraph.domains import SyntheticDomain

    domain = SyntheticDomain(seed=0)
    texts = [e["prompt"] for e in domain.load_split("val")[::3]]
    for i, (skill, subs) in enumerate(domain.skill_catalog().items()):
        for sub in subs:
            texts += [e["prompt"] for e in domain.generate(skill, sub, None, 8, seed=i)]
    texts += [t.upper() for t in texts[:40]] + ["  " + t.replace(" ", "\t") + " ?" for t in texts[40:80]]
    texts += ["A shop sold 1234 apples on Monday and 56 on Tuesday. How many apples did it sell in total?",
              "Convert 12 kilometres to metres.", "¿Cuántos metros hay en 12 kilómetros?", "日本語 12 テキスト"]
    return texts + ODD_TEXTS


@pytest.mark.parametrize("dims", [256, 64])
def test_vectorised_hashing_embedding_is_bit_identical_to_the_original(dims):
    texts = _realistic_texts()
    assert len(texts) > 300
    new, old = hashing_embed(texts, dims=dims), _reference_hashing_embed(texts, dims=dims)
    assert new.dtype == old.dtype == np.float32 and new.shape == old.shape == (len(texts), dims)
    assert new.tobytes() == old.tobytes()
    # one text at a time, or in another batch, gives the same bits (nothing depends on the batch)
    assert hashing_embed(texts[::-1], dims=dims).tobytes() == old[::-1].tobytes()
    assert all(hashing_embed([t], dims=dims).tobytes() == old[i:i + 1].tobytes() for i, t in enumerate(texts[-20:],
                                                                                                        len(texts) - 20))


def test_hashing_embedding_matches_vectors_recorded_from_the_original():
    """Fingerprints of vectors made by the original implementation (commit b8083f6): stores persisted by
    earlier runs hold exactly these."""
    import hashlib

    from teachgraph.domains import SyntheticDomain

    def fingerprint(v):
        return hashlib.blake2b(v.tobytes(), digest_size=16).hexdigest()

    val = [e["prompt"] for e in SyntheticDomain(seed=0).load_split("val")]
    assert len(val) == 600
    assert fingerprint(hashing_embed(val)) == "4d6cab2581e7332005dcb24dccbe7eef"
    assert fingerprint(hashing_embed(ODD_TEXTS)) == "0eaa4b5a0d9151a61fab13bbc82f6519"
    assert fingerprint(hashing_embed(ODD_TEXTS, dims=64)) == "710e2818f12fb1d9b869454ad8e4689e"


# -- decisions identical to the Chroma-queried store ----------------------------------------------

class ReferenceDedupStore:
    """The store as it was before the in-memory index (commit b8083f6), copied: every look-up and every
    nearest-neighbour search is a Chroma call, with the original embedding.

    One change: that store searched HNSW with ef_search 16, which is approximate and not even repeatable
    (the same data missed a neighbour at distance 0.093 against a threshold of 0.10 in one run of two
    and found it in the other). The reference searches as wide as its collections (ef_search 4096 over at
    most ~2,400 items), so that it is exact and the comparison tests the decision rules, not HNSW's recall;
    the in-memory copy's exact search is the same answer."""

    HNSW = {"space": "cosine", "ef_construction": 200, "ef_search": 4096, "batch_size": 1000,
            "sync_threshold": 5000, "num_threads": 1}

    def __init__(self, path):
        import chromadb
        from chromadb.config import Settings

        self.client = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))
        self.embedder = HashingEmbedding()
        self.collections = {source: self.client.get_or_create_collection(
            name, embedding_function=self.embedder, configuration={"hnsw": dict(self.HNSW)})
            for source, name in COLLECTIONS.items()}
        self.batch = max(1, min(5000, self.client.get_max_batch_size()))

    def embed(self, texts):
        return _reference_hashing_embed(list(texts))

    def _existing(self, ids):
        found = {}
        for source, collection in self.collections.items():
            for i in range(0, len(ids), self.batch):
                found.update(dict.fromkeys(collection.get(ids=ids[i:i + self.batch], include=[])["ids"], source))
        return found

    def _add(self, source, ids, docs, vectors, metas):
        for i in range(0, len(ids), self.batch):
            self.collections[source].add(ids=ids[i:i + self.batch], documents=docs[i:i + self.batch],
                                         embeddings=vectors[i:i + self.batch], metadatas=metas[i:i + self.batch])

    def add_eval(self, examples, split):
        from teachgraph.domains.base import example_id

        ids = list(dict.fromkeys(example_id(e["prompt"]) for e in examples))
        existing = self._existing(ids)
        missing = [i for i in ids if i not in existing]
        if not missing:
            return 0
        by_id = {example_id(e["prompt"]): e for e in examples}
        docs = [by_id[i]["prompt"] for i in missing]
        self._add("eval", missing, docs, self.embed(docs), [{"split": split} for _ in missing])
        return len(missing)

    def rollback(self, cycle):
        self.collections["train"].delete(where={"cycle": cycle})

    def filter(self, examples, cycle, dedup_threshold, decontamination_threshold):
        from teachgraph.domains.base import example_id

        dropped, candidates, seen = [], [], set()
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
        kept = []
        for i in range(0, len(fresh), 1000):
            chunk_kept, chunk_dropped = self._filter_chunk(fresh[i:i + 1000], cycle, dedup_threshold,
                                                           decontamination_threshold)
            kept += chunk_kept
            dropped += chunk_dropped
        return kept, dropped

    def _filter_chunk(self, fresh, cycle, dedup_threshold, decontamination_threshold):
        from teachgraph.domains.base import example_id

        dropped = []
        vectors = self.embed([e["prompt"] for e in fresh])
        near = np.zeros(len(fresh), dtype=bool)
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
        for i in range(len(fresh)):
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


def _near_variant(prompt: str, i: int) -> str:
    return [prompt + "?", prompt + " !", "? " + prompt, prompt + ".", prompt.replace(" ", " : ", 1)][i % 5]


def _cycle_batches(domain, cycles: int, per_subskill: int) -> list[list[dict]]:
    """Generated data like a default run's cycles (every subskill, the domain's own generator, so with
    duplicates of earlier cycles and of the evaluation prompts), plus case/spacing and near variants of
    earlier data and of evaluation prompts, shuffled."""
    import random

    rng = random.Random(5)
    val = domain.load_split("val")
    batches, earlier = [], []
    for c in range(cycles):
        batch = []
        for i, (skill, subs) in enumerate(domain.skill_catalog().items()):
            for j, sub in enumerate(subs):
                batch += domain.generate(skill, sub, None, per_subskill, seed=1000 * c + 10 * i + j)
        sources = earlier[-300:] + val[:200]
        batch += [dict(e, prompt=_near_variant(e["prompt"], k)) for k, e in enumerate(rng.sample(sources, 150))]
        batch += [dict(e, prompt="  " + e["prompt"].upper()) for e in rng.sample(sources, 50)]
        batch += [dict(e, prompt=_near_variant(e["prompt"], k)) for k, e in enumerate(batch[:40])]  # within the batch
        rng.shuffle(batch)
        batches.append(batch)
        earlier += batch
    return batches


def _decisions(kept, dropped):
    return [e["prompt"] for e in kept], [(e["prompt"], r) for e, r in dropped]


@pytest.mark.parametrize("dedup, decon", [(0.05, 0.05), (0.15, 0.10)])
def test_decisions_are_identical_to_the_chroma_queried_store_over_cycles(tmp_path, dedup, decon):
    """The default run's thresholds and looser ones (more near decisions), three cycles of realistic data
    with a crash-style rollback and re-run of a cycle: the same kept and dropped lists, in the same order,
    with the same reasons."""
    from teachgraph.domains import SyntheticDomain

    domain = SyntheticDomain(seed=0)
    new, old = DedupStore(str(tmp_path / "new")), ReferenceDedupStore(str(tmp_path / "old"))
    for s in (new, old):
        assert s.add_eval(domain.load_split("val"), "val") == 600
        s.add_eval(domain.load_split("test"), "test")
    reasons = Counter()
    batches = _cycle_batches(domain, 3, 12)
    for cycle, batch in enumerate(batches, start=1):
        for s in (new, old):
            s.rollback(cycle)
        got, want = _decisions(*new.filter(batch, cycle, dedup, decon)), _decisions(*old.filter(batch, cycle, dedup, decon))
        assert got == want, f"cycle {cycle}"
        reasons.update(r for _, r in got[1])
        if cycle == 2:  # a re-run of cycle 2 after a crash: roll back, decide again
            for s in (new, old):
                s.rollback(2)
            again = _decisions(*new.filter(batch, 2, dedup, decon))
            assert again == _decisions(*old.filter(batch, 2, dedup, decon)) == got
    # every kind of decision was exercised
    assert {"exact_duplicate", "eval_exact", "near_duplicate", "eval_near"} <= set(reasons)
    assert len(new.indexes["train"]) == new.collections["train"].count() == old.collections["train"].count()


def test_labelled_pairs_of_the_benchmark_are_decided_as_before(tmp_path):
    """benchmarks/dedup.py's labelled pairs (small version), each b decided alone and rolled back."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import dedup as bench
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    from teachgraph.domains import get_domain

    pairs = bench.labelled_pairs(get_domain("synthetic", seed=0), 1, 3)
    outcomes = []
    for store in (DedupStore(str(tmp_path / "new")), ReferenceDedupStore(str(tmp_path / "old"))):
        anchors = list(dict.fromkeys(p["a"] for p in pairs))
        kept, _ = store.filter([{"prompt": a, "answer": "x"} for a in anchors], 0, 0.05, 0.05)
        decided = []
        for p in pairs:
            kept, dropped = store.filter([{"prompt": p["b"], "answer": "x"}], 1, 0.05, 0.05)
            decided.append([r for _, r in dropped])
            store.rollback(1)
        outcomes.append(decided)
    assert outcomes[0] == outcomes[1]
    assert sum(bool(d) for d in outcomes[0]) > len(pairs) // 2


# -- a long-lived store ---------------------------------------------------------------------------

def test_stores_on_one_path_share_one_copy_and_construction_rereads_nothing(tmp_path):
    path = str(tmp_path / "chroma")
    a = DedupStore(path)
    a.add_eval([ex("parity 12345")], "val")
    loads = a._shared.loads
    b = DedupStore(path)
    assert b._shared is a._shared and b._shared.loads == loads  # no re-read of Chroma
    assert b.add_eval([ex("parity 12345")], "val") == 0 and b.count() == 1
    filt(a, [ex("max 4821"), ex("larger 12 34")], cycle=1)
    kept, dropped = filt(b, [ex("MAX 4821"), ex(NEAR_B), ex("PARITY 12345"), ex("min 4821")], cycle=2, dedup=CLOSE)
    assert kept == ["min 4821"]
    assert dict(dropped) == {"MAX 4821": "exact_duplicate", "larger 12 34?": "near_duplicate",
                             "PARITY 12345": "eval_exact"}
    assert a.count() == b.count() == 4 == sum(c.count() for c in a.collections.values())


def test_a_long_lived_store_sees_its_own_writes_and_rollbacks(store):
    c1 = [ex("max 4821"), ex("min 4821")]
    c2 = [ex("larger 12 34"), ex("add 12 3")]
    assert filt(store, c1, cycle=1)[0] == ["max 4821", "min 4821"]
    assert filt(store, c2, cycle=2)[0] == ["larger 12 34", "add 12 3"]
    for _ in range(2):  # the same re-run twice on one instance: roll back, decide again
        store.rollback(2)
        assert len(store.indexes["train"]) == store.collections["train"].count() == 2
        assert filt(store, [ex(NEAR_B)], cycle=2, dedup=CLOSE)[0] == ["larger 12 34?"]  # its near twin is gone
        store.rollback(2)
        assert filt(store, c2, cycle=2)[0] == ["larger 12 34", "add 12 3"]
    assert filt(store, [ex(NEAR_B)], cycle=3, dedup=CLOSE)[1] == [(NEAR_B, "near_duplicate")]
    store.rollback(3)  # nothing of cycle 3 was stored: no change
    assert store.count() == 4
    assert sorted(store.indexes["train"].ids_of_cycle(2)) == sorted(store.collections["train"].get(where={"cycle": 2})["ids"])


def test_a_reopened_store_rebuilds_its_copy_from_chroma(tmp_path):
    path = str(tmp_path / "chroma")
    first = DedupStore(path)
    first.add_eval([ex("parity 12345")], "val")
    filt(first, [ex("max 4821"), ex("larger 12 34")], cycle=1)
    filt(first, [ex("min 4821")], cycle=2)
    before = {s: (list(i.ids), i.vectors.copy(), i.cycles.copy()) for s, i in first.indexes.items()}
    first.close()
    again = DedupStore(path)
    assert again._shared is not first._shared
    for source, (ids, vectors, cycles) in before.items():
        index = again.indexes[source]
        order = [index.row[i] for i in ids]
        assert sorted(index.ids) == sorted(ids)
        assert np.allclose(index.vectors[order], vectors, atol=1e-6)
        assert index.cycles[order].tolist() == cycles.tolist()
    again.rollback(2)
    kept, dropped = filt(again, [ex("MAX 4821"), ex(NEAR_B), ex("min 4821")], cycle=2, dedup=CLOSE)
    assert kept == ["min 4821"] and dict(dropped) == {"MAX 4821": "exact_duplicate", NEAR_B: "near_duplicate"}


# -- the in-memory index ----------------------------------------------------------------------------

def _synthetic_vectors(n: int, seed: int = 0):
    from teachgraph.domains import SyntheticDomain

    domain = SyntheticDomain(seed=0)
    prompts = []
    for i, (skill, subs) in enumerate(domain.skill_catalog().items()):
        for j, sub in enumerate(subs):
            prompts += [e["prompt"] for e in domain.generate(skill, sub, None, n // 25 + 1, seed=seed + 10 * i + j)]
    prompts = list(dict.fromkeys(prompts))[:n]
    return prompts, hashing_embed(prompts)


def test_inverted_file_probing_every_cell_is_exact():
    from teachgraph.dedup.store import VectorIndex, _exact

    prompts, vectors = _synthetic_vectors(3000)
    queries = hashing_embed([_near_variant(p, i) for i, p in enumerate(prompts[::7])] + ["max 1", "len abc"])
    cells = VectorIndex(exact_max=100, nprobe=10**6)
    cells.add([str(i) for i in range(len(prompts))], vectors, [1] * len(prompts))
    assert np.allclose(cells.nearest(queries), _exact(queries, vectors), atol=1e-6)
    assert cells._cells is not None  # the inverted file answered
    # after removing a cycle's rows the cells hold exactly the others
    cells.cycles[::2] = 2
    capacity, cell_capacity = len(cells._vectors), [len(b) for b in cells._cells.blocks]
    cells.remove(cells.ids_of_cycle(2))
    assert len(cells) == len(prompts) // 2
    # compacted in place: the next add (a rollback, then the cycle's re-run) does not regrow every buffer
    assert len(cells._vectors) == capacity and [len(b) for b in cells._cells.blocks] == cell_capacity
    assert np.allclose(cells.nearest(queries), _exact(queries, vectors[1::2]), atol=1e-6)
    cells.add(["new"], hashing_embed(["max 1"]), [3])  # rows added after the cells were made are found
    assert cells.nearest(hashing_embed(["max 1"]))[0] == pytest.approx(1.0, abs=1e-6)
    more_prompts, more = _synthetic_vectors(1500, seed=50)  # ... into every cell, after the removal
    cells.add([f"m{i}" for i in range(len(more))], more, [4] * len(more))
    assert len(cells) == len(prompts) // 2 + 1 + len(more)
    everything = np.concatenate([vectors[1::2], hashing_embed(["max 1"]), more])
    assert np.allclose(cells.nearest(queries), _exact(queries, everything), atol=1e-6)
    cells.remove(cells.ids_of_cycle(4))
    assert np.allclose(cells.nearest(queries), _exact(queries, everything[:-len(more)]), atol=1e-6)


def test_inverted_file_finds_the_near_duplicates_exact_search_finds():
    from teachgraph.dedup.store import VectorIndex, _exact

    prompts, vectors = _synthetic_vectors(6000, seed=3)
    index = VectorIndex(exact_max=500)
    index.add([str(i) for i in range(len(prompts))], vectors, [1] * len(prompts))
    queries = hashing_embed([_near_variant(p, i) for i, p in enumerate(prompts)])
    exact, approx = _exact(queries, vectors), index.nearest(queries)
    near = 1 - exact <= 0.05
    assert near.sum() > 100
    assert np.array_equal(near, 1 - approx <= 0.05)  # the same near-duplicate decisions
    assert (approx <= exact + 1e-5).all()  # it never finds anything closer than there is


def test_store_above_the_exact_limit_decides_like_the_reference(tmp_path):
    """The inverted-file path inside `filter`: the same decisions as the Chroma-queried store."""
    from teachgraph.domains import SyntheticDomain

    domain = SyntheticDomain(seed=0)
    new, old = DedupStore(str(tmp_path / "new")), ReferenceDedupStore(str(tmp_path / "old"))
    new.indexes["train"].exact_max = 300
    batches = _cycle_batches(domain, 2, 12)
    for cycle, batch in enumerate(batches, start=1):
        got, want = _decisions(*new.filter(batch, cycle, 0.15, 0.1)), _decisions(*old.filter(batch, cycle, 0.15, 0.1))
        assert got == want
    assert new.indexes["train"]._cells is not None


def test_a_store_on_a_directory_made_anew_starts_empty(tmp_path):
    import shutil

    path = str(tmp_path / "chroma")
    old = DedupStore(path)
    filt(old, [ex("max 4821")], cycle=1)
    shutil.rmtree(path)
    fresh = DedupStore(path)
    assert fresh.count() == 0 and len(fresh.indexes["train"]) == 0
    assert filt(fresh, [ex("max 4821")], cycle=1)[0] == ["max 4821"]
    assert fresh.collections["train"].count() == 1
