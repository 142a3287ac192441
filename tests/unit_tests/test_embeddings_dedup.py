"""teachgraph/embeddings.py and teachgraph/dedup.py: stable embeddings, dedup and decontamination."""

from __future__ import annotations

import json
import os
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
        hit = coll.query(query_texts=["max  4821"], n_results=1, include=["documents", "distances"])
        print(json.dumps({{"count": count, "kept": [e["prompt"] for e in kept],
                          "dropped": [[e["prompt"], r] for e, r in dropped],
                          "ef": coll.configuration["embedding_function"].name(),
                          "hit": hit["documents"][0][0], "dist": hit["distances"][0][0]}}))
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
