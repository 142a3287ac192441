"""Deduplication in-process vs on a Chroma server: checks/s at 10k and 100k stored training examples.

    python benchmarks/dedup_server.py [--smoke] [--out benchmarks/results/dedup_server.json]

The same `DedupStore.filter` path as benchmarks/dedup.py (hashing embedding; the synthetic domain's validation
and test prompts stored; batches of 1,000 candidates, 90% new prompts and 10% case/spacing variants of stored
ones, timed, then rolled back; checks/s = candidates / median seconds of 3 batches), once with the store
in-process (`chromadb.PersistentClient` under a folder) and once on a `chroma run` server on 127.0.0.1
(`chromadb.HttpClient`, embeddings computed here and sent with every item). Both stores are filled with the
same prompts, through `filter`, to each level; the fill time is recorded (over HTTP this is most of the
benchmark's time). The embedding's n-gram hash cache is warmed on every prompt first, so that the mode
measured second does not run on a cache the first one filled. On the server a check also includes the count comparison that lets the store notice
another writer; the searches themselves run on the in-memory copy in both cases.

For the server it also records, at each level: `follow` (the once-a-cycle comparison of every stored id
with the copy, fetching nothing new), opening a fresh store (reading every item back over HTTP, as a
resumed run does), and Chroma's own server-side search (`collection.query`, its HNSW index built cheaply
as the store configures it) for 1,000 near variants of stored prompts: time, and the share of the
near-duplicates exact search finds that it finds too.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import dedup  # noqa: E402

if str(common.ROOT) not in sys.path:
    sys.path.insert(0, str(common.ROOT))

NAME = "dedup_server"
LEVELS = (10_000, 100_000)
SMOKE_LEVELS = (300, 1_000)


def fill(store, pool: list[dict], used: int, level: int) -> tuple[int, float]:
    started = time.perf_counter()
    while len(store.indexes["train"]) < level:
        chunk = pool[used:used + min(level - len(store.indexes["train"]), 5000)]
        used += len(chunk)
        store.filter(chunk, 0, 0.05, 0.05)
    return used, time.perf_counter() - started


def checks(store, pool: list[dict], used: int, batch: int, batches: int, rng: random.Random) -> tuple[int, list[float]]:
    timings = []
    train = store.indexes["train"]
    for k in range(batches):
        fresh = pool[used:used + batch - batch // 10]
        used += len(fresh)
        picked = [train.ids[i] for i in rng.sample(range(len(train)), batch // 10)]
        docs = dedup.stored_prompts(store, picked)
        candidates = fresh + [{"prompt": dedup.variant(d, rng), "answer": "x"} for d in docs]
        rng.shuffle(candidates)
        started = time.perf_counter()
        store.filter(candidates, 1000 + k, 0.05, 0.05)
        timings.append(time.perf_counter() - started)
        store.rollback(1000 + k)
    return used, timings


def server_extras(store, url: str, prefix: str, rng: random.Random, n: int) -> dict:
    from teachgraph.dedup import DedupStore
    from teachgraph.dedup.store import _exact

    started = time.perf_counter()
    store._shared.refresh()  # what `follow` does once a cycle
    follow_s = time.perf_counter() - started
    index = store.indexes["train"]
    picked = [index.ids[i] for i in rng.sample(range(len(index)), min(n, len(index)))]
    docs = dedup.stored_prompts(store, picked)
    queries = store.embed([rng.choice(dedup.NEAR_EDITS)(d) for d in docs])
    should = (1.0 - _exact(queries, index.vectors)) <= 0.05
    started = time.perf_counter()
    got = store.collections["train"].query(query_embeddings=queries, n_results=1, include=["distances"])
    query_s = time.perf_counter() - started
    found = [bool(d) and d[0] <= 0.05 for d in got["distances"]]
    hit = sum(1 for s, f in zip(should.tolist(), found) if s and f)
    store.close()
    started = time.perf_counter()
    fresh = DedupStore(url=url, prefix=prefix)
    open_s = time.perf_counter() - started
    assert len(fresh.indexes["train"]) == len(index)
    return {"store": fresh, "follow_s": round(follow_s, 4), "open_s": round(open_s, 3),
            "server_query_per_s": round(len(queries) / query_s, 1), "server_query_near_by_exact": int(should.sum()),
            "server_query_near_found": hit}


def measure(mode: str, levels: tuple[int, ...], batch: int, batches: int, domain, pool: list[dict], root: Path,
            url: str | None) -> list[dict]:
    from teachgraph.dedup import DedupStore

    prefix = "bench"
    store = DedupStore(str(root / "in-process")) if url is None else DedupStore(url=url, prefix=prefix)
    store.add_eval(domain.load_split("val"), "val")
    store.add_eval(domain.load_split("test"), "test")
    rng, used, rows, total = random.Random(0), 0, [], 0.0
    for level in levels:
        used, stage = fill(store, pool, used, level)
        total += stage
        stored = len(store.indexes["train"])
        used, timings = checks(store, pool, used, batch, batches, rng)
        assert store.collections["train"].count() == stored == len(store.indexes["train"])
        row = {"mode": mode, "stored": stored, "fill_seconds": round(stage, 2), "fill_seconds_total": round(total, 2),
               "fill_per_s": round((stored - (rows[-1]["stored"] if rows else 0)) / stage, 1),
               "batch": batch, "batch_seconds": [round(t, 4) for t in timings],
               "checks_per_s": round(batch / common.median(timings), 1)}
        if url is not None:
            extras = server_extras(store, url, prefix, rng, batch)
            store = extras.pop("store")
            row.update(extras)
        rows.append(row)
        print(f"{mode:>10}: {stored:>7,} stored (filled in {stage:.1f} s, {row['fill_per_s']:,.0f}/s): "
              f"{row['checks_per_s']:,.0f} checks/s" + (f"; follow {row['follow_s']} s, reopen {row['open_s']} s, "
                                                        f"server query {row['server_query_per_s']:,.0f}/s"
                                                        if url else ""), flush=True)
    store.close()
    return rows


def markdown(rows: list[dict], startup_s: float) -> str:
    by = {(r["mode"], r["stored"]): r for r in rows}
    levels = sorted({r["stored"] for r in rows})
    table = []
    for level in levels:
        local, server = by.get(("in-process", level)), by.get(("server", level))
        table.append((f"{level:,}", f"{local['checks_per_s']:,.0f}", f"{server['checks_per_s']:,.0f}",
                      f"{server['checks_per_s'] / local['checks_per_s']:.2f}",
                      f"{local['fill_per_s']:,.0f} / {server['fill_per_s']:,.0f}",
                      server["follow_s"], server["open_s"], f"{server['server_query_per_s']:,.0f}",
                      f"{server['server_query_near_found']} / {server['server_query_near_by_exact']}"))
    out = [common.md_table(["stored", "checks/s in-process", "checks/s via the server", "server / in-process",
                            "fill/s (in-process / server)", "follow s (server)", "reopen s (server)",
                            "server-side query/s", "near variants found by server query / exact"], table)]
    out.append(f"\nThe server: `chroma run` on 127.0.0.1 on the same machine (started in {startup_s:.1f} s); "
               "searches run on the store's in-memory copy in both modes.")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = common.parser(NAME, __doc__).parse_args(argv)
    clock, machine = common.Stopwatch(), common.machine_record()
    from teachgraph.domains import get_domain
    from tests.servers import ChromaServer

    domain = get_domain("synthetic", seed=0)
    levels = SMOKE_LEVELS if args.smoke else LEVELS
    batch, batches = (100, 1) if args.smoke else (1000, 3)
    pool = dedup.distinct_prompts(domain, levels[-1] + levels[-1] // 10 + len(levels) * batches * batch, seed=1)
    # the hashing embedding caches the hash of every n-gram it has seen: warm it for both modes alike
    from teachgraph.dedup.embeddings import embedding_function

    embedding_function("hashing")([e["prompt"] for e in pool])
    with tempfile.TemporaryDirectory(prefix="bench-dedup-server-") as tmp:
        rows = measure("in-process", levels, batch, batches, domain, pool, Path(tmp), None)
        server = ChromaServer(Path(tmp) / "server").start()
        try:
            rows += measure("server", levels, batch, batches, domain, pool, Path(tmp), server.url)
        finally:
            server.stop()
    last_local, last_server = rows[len(levels) - 1], rows[-1]
    result = {
        "benchmark": NAME, "smoke": args.smoke,
        "what": "DedupStore checks/s in-process vs on a Chroma server (chroma run, HttpClient) at 10k and 100k stored",
        "config": {"levels": list(levels), "batch": batch, "batches_per_level": batches, "embedding": "hashing",
                   "dedup_threshold": 0.05, "decontamination_threshold": 0.05, "server": "chroma run, 127.0.0.1",
                   "server_startup_s": round(server.startup_s, 2)},
        "results": {"rows": rows},
        "targets": [common.target(f"checks/s via the server with {last_server['stored']:,} stored, as a share of "
                                  "in-process", round(last_server["checks_per_s"] / last_local["checks_per_s"], 3),
                                  0.5, ">=")],
        "machine": machine,
    }
    result["seconds"] = clock.seconds()
    md = markdown(rows, server.startup_s)
    common.write_result(common.out_path(NAME, args), result, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
