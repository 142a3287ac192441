"""LangGraph Studio / `langgraph dev`: the server loads langgraph.json, shows the whole graph, and runs
it to the end through the SDK with a TINY context (the same path Studio's UI takes).

`langgraph dev` runs as a real subprocess in its own process group (killed as a group at the end);
`--no-reload` keeps edits made while the test runs from restarting it, `--no-browser` keeps it
headless. No `--allow-blocking` is needed: the nodes are sync functions, which the API runs in
worker threads, outside the event loop that blockbuster watches.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import tiny

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NODES = {"evaluate", "discover_skills", "organize_skills", "plan", "generate", "deduplicate", "train", "finalize"}
START_TIMEOUT = 180  # seconds: the server imports torch, transformers and chromadb with the graph
RUN_TIMEOUT = 300


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _langgraph_cli() -> list[str]:
    exe = Path(sys.executable).with_name("langgraph")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from langgraph_cli.cli import cli; sys.exit(cli())"]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory, base_student_ready):
    import httpx

    port = _free_port()
    log_path = tmp_path_factory.mktemp("studio") / "langgraph-dev.log"
    env = dict(os.environ, LANGGRAPH_CLI_NO_ANALYTICS="1", LANGSMITH_TRACING="false", LANGCHAIN_TRACING_V2="false",
               TEACHGRAPH_CACHE=os.environ["TEACHGRAPH_CACHE"], PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*_langgraph_cli(), "dev", "--port", str(port), "--host", "127.0.0.1", "--no-browser", "--no-reload"],
            cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)  # its own process group: uvicorn's workers die with it
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev did not answer /ok within {START_TIMEOUT}s:\n{log_path.read_text()[-4000:]}")
            time.sleep(1)
        yield {"url": url, "log": log_path}
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def client(server):
    from langgraph_sdk import get_sync_client

    return get_sync_client(url=server["url"], timeout=RUN_TIMEOUT)


@pytest.fixture(scope="module")
def assistant(client) -> dict:
    found = client.assistants.search(graph_id="teachgraph")
    assert found, "langgraph.json's graph 'teachgraph' has no assistant"
    return found[0]


def test_graph_is_listed_with_every_node(client, assistant):
    drawn = client.assistants.get_graph(assistant["assistant_id"])
    nodes = {n["id"] for n in drawn["nodes"]}
    assert NODES <= nodes, f"missing nodes: {sorted(NODES - nodes)}"
    edges = {(e["source"], e["target"]) for e in drawn["edges"]}
    assert ("__start__", "evaluate") in edges and ("finalize", "__end__") in edges


def test_run_to_the_end_with_a_tiny_context(client, assistant, server, tmp_path):
    run_dir = tmp_path / "studio-run"
    context = tiny(cycles=1, run_dir=str(run_dir))
    thread = client.threads.create()
    started = time.monotonic()
    final = client.runs.wait(thread["thread_id"], assistant["assistant_id"], input={"run_dir": str(run_dir)},
                             context=context, raise_error=True)
    assert isinstance(final, dict), final
    assert "test_accuracy" in final.get("result", {}), (final, server["log"].read_text()[-4000:])
    assert final["stop_reason"] == "max_cycles"
    assert [r["cycle"] for r in final["history"]] == [0, 1]  # the TINY context was used: one cycle
    assert (run_dir / "summary.json").exists()
    state = client.threads.get_state(thread["thread_id"])
    assert not state["next"]
    assert time.monotonic() - started < RUN_TIMEOUT
    client.threads.delete(thread["thread_id"])  # keep the server's .langgraph_api store small
