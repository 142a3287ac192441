"""Deduplication: checks per second as the Chroma store grows, and how right its duplicate decision is.

    python benchmarks/dedup.py [--smoke] [--no-minilm] [--out benchmarks/results/dedup.json]

Speed. A `teachgraph.dedup.DedupStore` (hashing embedding, as in the default run) holding the synthetic
domain's validation and test prompts is filled with distinct generated prompts through `filter` (the
deduplicate node's own path: verify nothing, check, insert the kept) up to 1k, 10k and 100k stored
training examples; the fill time of each stage is recorded. At each size, batches of 1,000 candidates
(90% new prompts, 10% case/spacing variants of stored ones) go through `filter` as a cycle would, timed,
then are rolled back (`rollback(cycle)`), so the store keeps its size. Checks/s = candidates / seconds
(median of 3 batches); a check includes embedding the candidate, the exact-id look-up, the
nearest-neighbour searches in both collections and inserting the kept ones (into Chroma, the store of
record, and the store's in-memory copy). Target >= 10,000/s at 100k.

The searches are exact up to `teachgraph.dedup.store.EXACT_MAX` stored vectors and go through an
inverted file above it; at each size the benchmark also decides 1,000 near variants of stored prompts
(a character or two added: not exact duplicates) with the store's search and with exact search over the
same vectors, and reports the share of exact search's near-duplicates the store's search found.

Quality. A labelled set of pairs (a, b), built deterministically from the synthetic domain's prompts and
a few natural-language question templates:

- duplicates: case variants, spacing variants (extra, doubled, leading/trailing spaces), reordered
  whitespace (tabs/newlines for spaces, the space between a word and a number removed, a space before
  the question mark), and case + spacing together;
- paraphrases (templates only): the same question and numbers in other words. Labelled **duplicates**:
  same question, same answer, so as training data it adds nothing and next to an evaluation prompt it
  is contamination. They are reported as their own category, and precision/recall are given with and
  without them;
- distinct: pairs that differ only in one number (one digit changed), and for the letter skills only in
  one letter.

Every a goes into a fresh store (as training data); each b is then decided alone by `filter` at the
default thresholds (dedup and decontamination 0.05) and rolled back. A b dropped as exact or near
duplicate is a positive. Precision and recall for the hashing embedding, and for minilm unless
--no-minilm (or --smoke).
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "dedup"
TARGET_CHECKS = 10_000
LEVELS = (1_000, 10_000, 100_000)
SMOKE_LEVELS = (200, 1_000)
BIG_SUBSKILLS = [("max_digit", "8 digits"), ("min_digit", "8 digits"), ("first_letter", "8 letters"),
                 ("last_letter", "8 letters"), ("parity", "7 digits"), ("length", "8-10 letters"),
                 ("larger", "4 digits"), ("max_digit", "6 digits"), ("first_letter", "6 letters")]

# (question, paraphrase) with {a} and {b} numbers
TEMPLATES = [
    ("What is {a} plus {b}?", "Compute the sum of {a} and {b}."),
    ("A shop sold {a} apples on Monday and {b} apples on Tuesday. How many apples did it sell in total?",
     "How many apples were sold altogether if a shop sold {a} on Monday and {b} on Tuesday?"),
    ("Convert {a} kilometres to metres.", "How many metres are there in {a} kilometres?"),
    ("A train travels at {a} km/h for {b} hours. How far does it go?",
     "How far does a train go in {b} hours at a speed of {a} km/h?"),
    ("What is the remainder when {a} is divided by {b}?", "Find {a} modulo {b}."),
    ("Tom has {a} marbles and gives away {b}. How many marbles does he have left?",
     "After giving away {b} of his {a} marbles, how many marbles does Tom have?"),
]


# -- speed ----------------------------------------------------------------------------------------

def distinct_prompts(domain, n: int, seed: int) -> list[dict]:
    """n generated examples from subskills with large instance spaces (distinct within one call)."""
    per = n // len(BIG_SUBSKILLS) + 1
    out = []
    for i, (skill, sub) in enumerate(BIG_SUBSKILLS):
        out += domain.generate(skill, sub, None, per, seed=seed * 100 + i)
    random.Random(seed).shuffle(out)
    return out[:n]


def variant(prompt: str, rng: random.Random) -> str:
    """A case/spacing variant: the same question for the deduplicator."""
    words = prompt.split()
    return rng.choice([prompt.upper(), "  ".join(words), " " + prompt + " ", prompt.title()])


NEAR_EDITS = (lambda p: p + "?", lambda p: p + " !", lambda p: "? " + p, lambda p: p + ".",
              lambda p: p.replace(" ", " : ", 1))


def stored_prompts(store, ids: list[str]) -> list[str]:
    """The prompts of stored training items (the store keeps each prompt in its item's metadata)."""
    return [m["prompt"] for m in store.collections["train"].get(ids=ids, include=["metadatas"])["metadatas"]]


def near_recall(store, rng: random.Random, n: int = 1000) -> dict:
    """Near variants of stored prompts decided by the store's search and by exact search (same vectors)."""
    from teachgraph.dedup.store import _exact

    index = store.indexes["train"]
    docs = [index.ids[i] for i in rng.sample(range(len(index)), min(n, len(index)))]
    got = stored_prompts(store, docs)
    queries = store.embed([rng.choice(NEAR_EDITS)(d) for d in got])
    exact = _exact(queries, index.vectors)
    started = time.perf_counter()
    found = index.nearest(queries)
    seconds = time.perf_counter() - started
    should = (1.0 - exact) <= 0.05
    hit = should & ((1.0 - found) <= 0.05)
    cells = index._cells
    return {"search": "exact" if cells is None else f"inverted file ({len(cells.centroids)} cells, {index.nprobe} probed)",
            "near_variants": len(queries), "near_by_exact": int(should.sum()), "near_found": int(hit.sum()),
            "near_recall_vs_exact": round(float(hit.sum() / should.sum()), 4) if should.any() else None,
            "search_ms_per_1000": round(1000 * seconds * 1000 / max(1, len(queries)), 2)}


class _ChromaWriteClock:
    """Seconds spent in a collection's `add` (Chroma's write of the kept items: the store of record)."""

    def __init__(self, collection):
        self.collection, self.original, self.seconds = collection, collection.add, 0.0

        def add(*args, **kwargs):
            started = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        collection.add = add

    def close(self) -> None:
        self.collection.add = self.original


def speed(levels: tuple[int, ...], batch: int, batches: int, domain, root: Path) -> list[dict]:
    from teachgraph.dedup import DedupStore

    store = DedupStore(str(root / "speed"), "hashing")
    store.add_eval(domain.load_split("val"), "val")
    store.add_eval(domain.load_split("test"), "test")
    pool = distinct_prompts(domain, levels[-1] + levels[-1] // 10 + 5 * batch, seed=1)
    rng = random.Random(0)
    rows, fill_seconds, used = [], 0.0, 0
    for level in levels:
        started = time.perf_counter()
        while store.collections["train"].count() < level:
            need = level - store.collections["train"].count()
            chunk = pool[used:used + min(need, 5000)]
            used += len(chunk)
            store.filter(chunk, 0, 0.05, 0.05)
        stage = time.perf_counter() - started
        fill_seconds += stage
        stored = store.collections["train"].count()
        timings, in_chroma = [], []
        writes = _ChromaWriteClock(store.collections["train"])
        for k in range(batches):
            fresh = pool[used:used + batch - batch // 10]
            used += len(fresh)
            stored_rows = store.collections["train"].get(limit=batch // 10, offset=rng.randrange(max(1, stored - batch)),
                                                         include=["metadatas"])
            near = [{"prompt": variant(m["prompt"], rng), "answer": "x"} for m in stored_rows["metadatas"]]
            candidates = fresh + near
            rng.shuffle(candidates)
            writes.seconds = 0.0
            started = time.perf_counter()
            kept, dropped = store.filter(candidates, 1000 + k, 0.05, 0.05)
            timings.append(time.perf_counter() - started)
            in_chroma.append(writes.seconds)
            store.rollback(1000 + k)
        writes.close()
        assert store.collections["train"].count() == stored == len(store.indexes["train"])
        checks = batch / common.median(timings)
        own = [t - w for t, w in zip(timings, in_chroma)]
        rows.append({"stored": stored, "fill_seconds": round(stage, 2), "fill_seconds_total": round(fill_seconds, 2),
                     "fill_per_s": round((stored - (rows[-1]["stored"] if rows else 0)) / stage, 1) if stage else None,
                     "batch": batch, "batch_seconds": [round(t, 4) for t in timings],
                     "checks_per_s": round(checks, 1), "last_batch_dropped": len(dropped),
                     "chroma_write_seconds": [round(w, 4) for w in in_chroma],
                     "chroma_write_share": round(sum(in_chroma) / sum(timings), 3),
                     "checks_per_s_without_chroma_write": round(batch / common.median(own), 1),
                     **near_recall(store, rng, batch)})
        print(f"{stored:>7,} stored (filled in {stage:.1f} s): {checks:,.0f} checks/s "
              f"({rows[-1]['checks_per_s_without_chroma_write']:,.0f}/s without Chroma's write, "
              f"{rows[-1]['chroma_write_share']:.0%} of the time), {rows[-1]['search']}, "
              f"near recall vs exact {rows[-1]['near_recall_vs_exact']}")
    return rows


# -- quality --------------------------------------------------------------------------------------

def _change_digit(text: str, rng: random.Random) -> str:
    """One digit of one number changed (never a leading digit to 0)."""
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    i = rng.choice(digits)
    leading = i == 0 or not text[i - 1].isdigit()
    choices = [d for d in "0123456789" if d != text[i] and not (leading and d == "0")]
    return text[:i] + rng.choice(choices) + text[i + 1:]


def _change_letter(text: str, rng: random.Random) -> str:
    keyword, argument = text.split(" ", 1)
    i = rng.randrange(len(argument))
    letter = rng.choice([c for c in "abcdefghijkl" if c != argument[i]])
    return f"{keyword} {argument[:i]}{letter}{argument[i + 1:]}"


def _rewhitespace(text: str, rng: random.Random) -> str:
    """Same characters, whitespace changed: tabs/newlines, a word glued to its number, a space before '?'."""
    options = [text.replace(" ", "\t", 1), text.replace(" ", "\n", 1) + "\n"]
    glued = text.split(" ", 1)
    if len(glued) == 2 and glued[1][:1].isdigit():
        options.append(glued[0] + glued[1])
    if text.endswith("?"):
        options.append(text[:-1] + " ?")
    return rng.choice(options)


def _respace(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    i = rng.randrange(max(1, len(words) - 1))
    return rng.choice([" ".join(words[:i + 1]) + "   " + " ".join(words[i + 1:]), "  " + text + "  ",
                       "  ".join(words)])


def _recase(text: str, rng: random.Random) -> str:
    return rng.choice([text.upper(), text.title(), text.swapcase(), text[:1].upper() + text[1:]])


def labelled_pairs(domain, per_subskill: int, per_template: int) -> list[dict]:
    """[{"a", "b", "kind", "duplicate"}], deterministic."""
    rng = random.Random(2024)
    pairs = []
    bases = []
    for i, (skill, subs) in enumerate(domain.skill_catalog().items()):
        for j, sub in enumerate(subs):
            for ex in domain.generate(skill, sub, None, per_subskill, seed=7_000 + 10 * i + j):
                bases.append(("synthetic", ex["prompt"], None))
    for t, (question, paraphrase) in enumerate(TEMPLATES):
        for _ in range(per_template):
            a, b = rng.randint(12, 9999), rng.randint(2, 999)
            bases.append(("template", question.format(a=a, b=b), paraphrase.format(a=a, b=b)))
    for source, a, para in bases:
        pairs += [{"a": a, "b": _recase(a, rng), "kind": "case", "duplicate": True},
                  {"a": a, "b": _respace(a, rng), "kind": "spacing", "duplicate": True},
                  {"a": a, "b": _rewhitespace(a, rng), "kind": "reordered whitespace", "duplicate": True},
                  {"a": a, "b": _recase(_respace(a, rng), rng), "kind": "case + spacing", "duplicate": True}]
        if para:
            pairs.append({"a": a, "b": para, "kind": "paraphrase", "duplicate": True})
        if any(c.isdigit() for c in a):
            pairs.append({"a": a, "b": _change_digit(a, rng), "kind": "one number differs", "duplicate": False})
        else:
            pairs.append({"a": a, "b": _change_letter(a, rng), "kind": "one letter differs", "duplicate": False})
    for p in pairs:
        p["source"] = next(s for s, a, _ in bases if a == p["a"])
    return pairs


def decide(pairs: list[dict], embedding: str, root: Path) -> list[bool]:
    """Whether the deduplicator drops each b given every a stored (b alone per call, then rolled back)."""
    from teachgraph.domains.base import example_id
    from teachgraph.dedup import DedupStore

    store = DedupStore(str(root / f"quality-{embedding}"), embedding)
    anchors = list(dict.fromkeys(p["a"] for p in pairs))
    kept, _ = store.filter([{"prompt": a, "answer": "x"} for a in anchors], 0, 0.05, 0.05)
    stored = {example_id(e["prompt"]) for e in kept}
    decisions = []
    for p in pairs:
        if example_id(p["a"]) not in stored:  # an anchor the store itself found a duplicate of another
            decisions.append(None)
            continue
        kept, dropped = store.filter([{"prompt": p["b"], "answer": "x"}], 1, 0.05, 0.05)
        decisions.append(bool(dropped))
        if kept:
            store.rollback(1)
    return decisions


def scores(pairs: list[dict], decisions: list[bool | None], with_paraphrases: bool = True) -> dict:
    tp = fp = fn = tn = 0
    for p, d in zip(pairs, decisions):
        if d is None or (not with_paraphrases and p["kind"] == "paraphrase"):
            continue
        if p["duplicate"]:
            tp, fn = tp + d, fn + (not d)
        else:
            fp, tn = fp + d, tn + (not d)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None}


def quality(pairs: list[dict], embedding: str, root: Path) -> dict:
    started = time.perf_counter()
    decisions = decide(pairs, embedding, root)
    by_kind: dict[str, dict] = {}
    for p, d in zip(pairs, decisions):
        row = by_kind.setdefault(p["kind"], {"duplicate": p["duplicate"], "pairs": 0, "flagged": 0, "skipped": 0})
        if d is None:
            row["skipped"] += 1
            continue
        row["pairs"] += 1
        row["flagged"] += d
    for row in by_kind.values():
        row["flagged_share"] = round(row["flagged"] / row["pairs"], 4) if row["pairs"] else None
    misses, shown = [], {}
    for p, d in zip(pairs, decisions):  # a few of each kind of mistake
        if d is not None and d != p["duplicate"] and shown.get(p["kind"], 0) < 3:
            shown[p["kind"]] = shown.get(p["kind"], 0) + 1
            misses.append({"a": p["a"], "b": p["b"], "kind": p["kind"]})
    return {"embedding": embedding, "all": scores(pairs, decisions), "surface_only": scores(pairs, decisions, False),
            "by_kind": by_kind, "errors_sample": misses, "seconds": round(time.perf_counter() - started, 2)}


def markdown(speed_rows: list[dict], qualities: list[dict], pairs: list[dict]) -> str:
    out = [common.md_table(["stored", "fill s (stage)", "fill s (total)", "fill/s", "checks/s",
                            "Chroma write share", "checks/s without it", "search", "near variants found (store / exact)"],
                           [(r["stored"], r["fill_seconds"], r["fill_seconds_total"], r["fill_per_s"],
                             f"{r['checks_per_s']:,.0f}", f"{100 * r['chroma_write_share']:.0f}%",
                             f"{r['checks_per_s_without_chroma_write']:,.0f}", r["search"],
                             f"{r['near_found']} / {r['near_by_exact']}") for r in speed_rows]), ""]
    kinds = list(dict.fromkeys(p["kind"] for p in pairs))
    header = ["pair kind", "label", "pairs"] + [f"flagged ({q['embedding']})" for q in qualities]
    rows = []
    for kind in kinds:
        first = qualities[0]["by_kind"][kind]
        rows.append([kind, "duplicate" if first["duplicate"] else "distinct", first["pairs"]] +
                    [f"{100 * q['by_kind'][kind]['flagged_share']:.1f}%" for q in qualities])
    for label, key in (("precision (all)", ("all", "precision")), ("recall (all)", ("all", "recall")),
                       ("recall (without paraphrases)", ("surface_only", "recall")),
                       ("precision (without paraphrases)", ("surface_only", "precision"))):
        rows.append([f"**{label}**", "", ""] + [q[key[0]][key[1]] for q in qualities])
    out.append(common.md_table(header, rows))
    out.append("\nDefault thresholds (dedup 0.05, decontamination 0.05). Paraphrases are labelled duplicates.")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(NAME, __doc__)
    p.add_argument("--no-minilm", action="store_true", help="precision/recall for the hashing embedding only")
    args = p.parse_args(argv)
    clock, machine = common.Stopwatch(), common.machine_record()
    from teachgraph.domains import get_domain

    domain = get_domain("synthetic", seed=0)  # the default run's domain and splits
    levels = SMOKE_LEVELS if args.smoke else LEVELS
    batch, batches = (100, 1) if args.smoke else (1000, 3)
    embeddings = ["hashing"] if args.smoke or args.no_minilm else ["hashing", "minilm"]
    pairs = labelled_pairs(domain, 1 if args.smoke else 2, 2 if args.smoke else 8)
    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as tmp:
        speed_rows = speed(levels, batch, batches, domain, Path(tmp))
        qualities = []
        for embedding in embeddings:
            qualities.append(quality(pairs, embedding, Path(tmp)))
            q = qualities[-1]
            print(f"{embedding}: precision {q['all']['precision']}, recall {q['all']['recall']} "
                  f"(without paraphrases {q['surface_only']['recall']}) in {q['seconds']} s")
    last = speed_rows[-1]
    hashing = qualities[0]
    result = {
        "benchmark": NAME, "smoke": args.smoke,
        "what": "DedupStore checks/s with 1k/10k/100k training examples stored (and fill time), and precision/"
                "recall of the duplicate decision on a labelled set of pairs",
        "config": {"levels": list(levels), "batch": batch, "batches_per_level": batches, "embedding_speed": "hashing",
                   "embeddings_quality": embeddings, "dedup_threshold": 0.05, "decontamination_threshold": 0.05,
                   "eval_prompts_stored": len(domain.load_split("val")) + len(domain.load_split("test")),
                   "pairs": len(pairs), "paraphrases_are_duplicates": True},
        "results": {"speed": speed_rows, "quality": qualities},
        "targets": [
            common.target(f"checks/s with {last['stored']:,} stored", last["checks_per_s"], TARGET_CHECKS, ">=", "/s"),
            common.target(f"near variants found vs exact search, {last['stored']:,} stored",
                          last["near_recall_vs_exact"], 1.0, ">="),
            common.target("spacing/case variants detected (hashing)",
                          min(hashing["by_kind"][k]["flagged_share"] for k in ("case", "spacing", "case + spacing")),
                          1.0, ">="),
        ],
        "machine": machine,
    }
    result["seconds"] = clock.seconds()
    md = markdown(speed_rows, qualities, pairs)
    common.write_result(common.out_path(NAME, args), result, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
