"""The dedup store on a real Chroma server (`chroma run`, `--chroma-url`): embeddings computed here and sent
explicitly, data that survives a restart of the server, runs isolated by default and sharing one store
when they name the same collection (each run owning, rolling back and rebuilding only its own items).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest

from teachgraph.dedup import DedupStore
from teachgraph.dedup.embeddings import embedding_function
from teachgraph.domains.base import example_id

from tests.servers import ChromaServer

from .conftest import ONE_THREAD, cli_command, cli_env, read_jsonl, run_cli, write_config


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    server = ChromaServer(tmp_path_factory.mktemp("chroma") / "data").start()
    try:
        yield server
    finally:
        server.stop()


def _client(server: ChromaServer):
    return chromadb.HttpClient(host="127.0.0.1", port=server.port)


def _examples(prefix: str, n: int) -> list[dict]:
    return [{"prompt": f"{prefix} question number {i * 7919 % 100003} about item {i}", "answer": str(i),
             "skill": "s"} for i in range(n)]


def _close(*stores: DedupStore) -> None:
    for store in stores:
        store.close()


def test_store_on_the_server_sends_its_embeddings_and_survives_a_restart(chroma, tmp_path):
    store = DedupStore(url=chroma.url, prefix="t-restart")
    kept, dropped = store.filter(_examples("restart", 50), 1, 0.05, 0.05)
    assert len(kept) == 50 and not dropped
    got = _client(chroma).get_collection("t-restart_train").get(include=["embeddings", "metadatas"])
    expected = np.asarray(embedding_function("hashing")([m["prompt"] for m in got["metadatas"]]), dtype=np.float32)
    assert np.allclose(np.asarray(got["embeddings"]), expected, atol=1e-6)  # ours, not a server-side function
    _close(store)
    chroma.restart()
    again = DedupStore(url=chroma.url, prefix="t-restart")  # a fresh copy, read back from the restarted server
    assert len(again.indexes["train"]) == 50
    kept, dropped = again.filter([{"prompt": e["prompt"].upper(), "answer": "x"} for e in _examples("restart", 5)]
                                 + [{"prompt": e["prompt"] + "?", "answer": "x"} for e in _examples("restart", 5)],
                                 2, 0.05, 0.05)  # the ids and the vectors came back
    assert not kept and Counter(reason for _, reason in dropped) == {"exact_duplicate": 5, "near_duplicate": 5}
    _close(again)


def test_runs_are_isolated_unless_they_share_a_collection(chroma):
    data = _examples("shared", 40)
    a, b = DedupStore(url=chroma.url, prefix="teachgraph_runA"), DedupStore(url=chroma.url, prefix="teachgraph_runB")
    assert len(a.filter(data, 1, 0.05, 0.05)[0]) == 40
    assert len(b.filter(data, 1, 0.05, 0.05)[0]) == 40  # its own collections: A's items are not there
    _close(a, b)

    team_a = DedupStore(url=chroma.url, prefix="team-api", owner="runA")
    team_b = DedupStore(url=chroma.url, prefix="team-api", owner="runB")  # opened before A writes anything
    assert len(team_a.filter(data[:20], 1, 0.05, 0.05)[0]) == 20
    kept, dropped = team_b.filter(data[:10] + [dict(e, prompt=e["prompt"] + "?") for e in data[10:20]]
                                  + data[20:], 1, 0.05, 0.05)
    assert Counter(r for _, r in dropped) == {"exact_duplicate": 10, "near_duplicate": 10}  # A's items, seen by B
    assert [e["prompt"] for e in kept] == [e["prompt"] for e in data[20:]]
    # a run's rollback and rebuild touch only what it owns
    assert team_b.train_ids_by_cycle() == {1: {example_id(e["prompt"]) for e in data[20:]}}
    team_b.rollback(1)
    assert team_b.follow({}, 1) == "in_step"
    assert team_a.follow({1: data[:20]}, 2) == "in_step"  # A's own items are all still there
    collection = _client(chroma).get_collection("team-api_train")
    assert Counter(m["run"] for m in collection.get(include=["metadatas"])["metadatas"]) == {"runA": 20}
    # the same prompt accepted by both runs: each owns its item, and one run's rollback keeps the other's
    team_b.add_accepted(data[:3], 1)
    assert collection.count() == 23
    team_b.rollback(1)
    assert collection.count() == 20 and team_a.follow({1: data[:20]}, 2) == "in_step"
    _close(team_a, team_b)


def test_a_store_follows_what_another_writer_deleted_and_added(chroma):
    mine = DedupStore(url=chroma.url, prefix="team2", owner="me")
    other = chromadb.HttpClient(host="127.0.0.1", port=chroma.port).get_collection("team2_train")
    first = _examples("writer", 10)
    mine.filter(first, 1, 0.05, 0.05)
    later = _examples("other", 2)
    embed = embedding_function("hashing")
    # another process: deletes one of its own (none here: it deletes one of mine) and adds two, count unchanged
    other.delete(ids=[f"{example_id(first[0]['prompt'])}@me"])
    other.add(ids=[f"{example_id(e['prompt'])}@you" for e in later[:1]],
              embeddings=np.asarray(embed([later[0]["prompt"]])),
              metadatas=[{"cycle": 1, "run": "you", "prompt": later[0]["prompt"]}])
    assert other.count() == len(mine.indexes["train"])
    assert mine.follow({1: first}, 2) == "rebuilt"  # the id comparison saw both; its lost item is written again
    kept, dropped = mine.filter(later, 2, 0.05, 0.05)
    assert [e["prompt"] for e in kept] == [later[1]["prompt"]] and dropped[0][1] == "exact_duplicate"
    _close(mine)


def test_a_server_that_lost_its_collections_is_refilled(chroma, tmp_path, tiny_config):
    from teachgraph.graph import make_context
    from teachgraph.services import RunServices

    ctx = make_context(dict(tiny_config, run_dir=str(tmp_path / "run"), chroma_url=chroma.url))
    services = RunServices(ctx)
    try:
        store = services.dedup(ctx.run_dir)
        evals = len(store.indexes["eval"])
        assert evals == len(services.domain.load_split("val")) + len(services.domain.load_split("test"))
        accepted = _examples("lost", 30)
        assert store.follow({}, 1) == "in_step" and len(store.filter(accepted, 1, 0.05, 0.05)[0]) == 30
        client = _client(chroma)
        names = sorted(c.name for c in client.list_collections() if c.name.startswith(store.collections["eval"].name[:-5]))
        for name in names:  # the server's data is gone (made anew, empty)
            client.delete_collection(name)
        store = services.dedup(ctx.run_dir)  # the next cycle's deduplicate: validation and test stored again
        assert client.get_collection(names[0]).count() == evals and len(store.indexes["train"]) == 0
        assert store.follow({1: accepted}, 2) == "rebuilt"  # and the run's accepted data, from its lineage
        assert client.get_collection(names[1]).count() == 30
    finally:
        services.close()


def test_a_shared_collection_of_another_embedding_is_refused_before_work(chroma):
    from teachgraph.dedup.store import ChromaUnavailable, check_chroma_server

    check_chroma_server(chroma.url, "team-emb", "hashing")  # made now, with the hashing embedding
    with pytest.raises(ChromaUnavailable, match="team-emb_eval .*embedding='minilm'"):
        check_chroma_server(chroma.url, "team-emb", "minilm")


def test_unreachable_server_fails_before_work(tmp_path):
    from tests.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    done = run_cli("run", "--run-dir", "run", "--chroma-url", url, "--quiet", cwd=tmp_path)
    assert done.returncode == 2 and url in done.stderr and "does not answer" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "run").exists()


def _popen(root: Path, name: str, *extra: str):
    import subprocess

    log = open(root / f"{name}.log", "w")
    try:
        return subprocess.Popen(cli_command("run", "--config", "tiny.yaml", "--run-dir", name, "--quiet", *extra),
                                cwd=str(root), stdout=log, stderr=subprocess.STDOUT, env=cli_env(**ONE_THREAD))
    finally:
        log.close()


def _finish(root: Path, *procs_and_names) -> None:
    for proc, name in procs_and_names:
        assert proc.wait(timeout=300) == 0, (root / f"{name}.log").read_text()[-3000:]


def _kept(root: Path, name: str) -> list[int]:
    return [c["kept"] for c in json.loads((root / name / "summary.json").read_text())["cycles"]]


def _run_id(root: Path, name: str) -> str:
    return json.loads((root / name / "config.json").read_text())["run_id"]


@pytest.fixture(scope="module")
def team(chroma, tmp_path_factory, base_student_ready) -> dict[str, Any]:
    """Four real runs on one server: solo and solo-again (own collections, same seed), team-first and
    team-second (one shared collection, seeds 0 and 1). The server restarts between the two pairs."""
    root = tmp_path_factory.mktemp("chroma-runs")
    write_config(root / "tiny.yaml")
    url = ["--chroma-url", chroma.url]
    first = [(_popen(root, "solo", *url), "solo"), (_popen(root, "team-first", *url, "--chroma-collection", "team"),
                                                     "team-first")]
    _finish(root, *first)
    client = _client(chroma)
    before = {c.name: c.count() for c in client.list_collections()}
    chroma.restart()
    after = {c.name: c.count() for c in _client(chroma).list_collections()}
    second = [(_popen(root, "solo-again", *url), "solo-again"),
              (_popen(root, "team-second", *url, "--chroma-collection", "team", "--seed", "1"), "team-second")]
    _finish(root, *second)
    return {"root": root, "before_restart": before, "after_restart": after, "client": _client(chroma)}


@pytest.mark.slow
def test_a_run_deduplicates_against_the_server(team):
    root, client = team["root"], team["client"]
    assert not (root / "solo" / "chroma").exists()  # nothing in-process
    train = client.get_collection(f"teachgraph_{_run_id(root, 'solo')}_train")
    assert train.count() == sum(_kept(root, "solo"))
    by_cycle = Counter(m["cycle"] for m in train.get(include=["metadatas"])["metadatas"])
    assert dict(by_cycle) == {k: n for k, n in enumerate(_kept(root, "solo")) if n}
    dropped = read_jsonl(root / "solo" / "cycles" / "cycle_002" / "dropped.jsonl")
    assert any(e["drop_reason"] in ("exact_duplicate", "near_duplicate") for e in dropped)
    evals = client.get_collection(f"teachgraph_{_run_id(root, 'solo')}_eval")
    assert evals.count() > 0


@pytest.mark.slow
def test_the_server_keeps_the_data_across_a_restart(team):
    assert team["before_restart"] == team["after_restart"]
    assert sum(team["after_restart"].values()) > 0


@pytest.mark.slow
def test_runs_have_their_own_collections_by_default(team):
    root = team["root"]
    assert _kept(root, "solo-again") == _kept(root, "solo")  # the same data, kept again: nothing shared
    assert _kept(root, "team-first") == _kept(root, "solo")  # the first run of a team store: nothing in it yet


@pytest.mark.slow
def test_runs_naming_one_collection_share_it(team):
    root, client = team["root"], team["client"]
    first, second = _run_id(root, "team-first"), _run_id(root, "team-second")
    owners = Counter(m["run"] for m in client.get_collection("team_train").get(include=["metadatas"])["metadatas"])
    assert owners == {first: sum(_kept(root, "team-first")), second: sum(_kept(root, "team-second"))}
    # in its first cycle the second run had stored nothing of its own: a duplicate of a prompt it generated
    # once can only be the first run's
    generated = Counter(e["prompt"] for e in read_jsonl(root / "team-second" / "cycles" / "cycle_001" / "generated.jsonl"))
    theirs = {e["prompt"] for k in (1, 2) for e in read_jsonl(root / "team-first" / "cycles" / f"cycle_{k:03d}" / "accepted.jsonl")}
    dropped = read_jsonl(root / "team-second" / "cycles" / "cycle_001" / "dropped.jsonl")
    from_team = [e for e in dropped if e["drop_reason"] == "exact_duplicate" and generated[e["prompt"]] == 1]
    assert from_team and all(e["prompt"] in theirs for e in from_team)
