"""Checkpoints in a real PostgreSQL server (`--checkpointer postgresql://...`, LangGraph's PostgresSaver).

The crash test of test_resume.py, on Postgres: two runs (two thread ids) write to one database at once;
one is SIGKILLed while cycle 2 trains and resumed by another process, which redoes nothing, leaves the
accepted data as it was and ends with the results of the uninterrupted one. The artifacts stay under
each run directory; the checkpoints are only in the database.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from teachgraph.graph import make_context
from teachgraph.run import Run, RunError

from tests.servers import PostgresServer

from .conftest import CLI_TIMEOUT, ONE_THREAD, cli_env, read_events, run_cli, write_config
from .test_resume import CRASH_CONFIG, _digest, _kill_while_cycle_2_trains, _popen


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database(postgres) -> str:
    return postgres.create_database()


def _threads(url: str) -> Counter:
    import psycopg

    with psycopg.connect(url) as conn:
        return Counter(row[0] for row in conn.execute("SELECT thread_id FROM checkpoints"))


def test_unreachable_database_fails_before_work(tmp_path):
    with socket.socket() as s:  # nothing listens on a port just released
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://postgres:hunter2@127.0.0.1:{port}/teach"
    done = run_cli("run", "--run-dir", "run", "--checkpointer", url, "--quiet", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"postgresql://postgres@127.0.0.1:{port}/teach" in done.stderr and "cannot be reached" in done.stderr
    assert "hunter2" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()


def test_not_a_postgres_url_is_a_config_error(tmp_path):
    done = run_cli("run", "--run-dir", "run", "--checkpointer", "mysql://db/teach", cwd=tmp_path)
    assert done.returncode == 2 and "checkpointer:" in done.stderr and "PostgreSQL URL" in done.stderr
    assert not (tmp_path / "run").exists()


def test_run_in_postgres_keeps_no_password_and_reopens(database, tmp_path, tiny_config):
    secret_url = database.replace("postgres@", "postgres:s3cret@")  # trust auth: the password is not needed
    ctx = make_context(dict(tiny_config, run_dir=str(tmp_path / "run"), checkpointer=secret_url))
    with Run.create(ctx) as run:
        run.graph.update_state(run.config, {"run_dir": ctx.run_dir, "cycle": 0}, as_node="finalize")
        run_id = run.run_id
    stored = (tmp_path / "run" / "config.json").read_text()
    assert "s3cret" not in stored and json.loads(stored)["config"]["checkpointer"] == database
    assert not (tmp_path / "run" / "checkpoints.sqlite").exists()
    with Run.open(tmp_path / "run") as again:  # another Run object, the stored (password-less) URL
        assert again.values()["cycle"] == 0 and again.run_id == run_id
    assert _threads(database) == Counter({run_id: 1})
    # the same directory with the default (SQLite) checkpointer would start over: refused
    with pytest.raises(RunError, match="holds no checkpoint of its thread"):
        Run.create(ctx.model_copy(update={"checkpointer": None}))


def test_one_process_at_a_time_runs_a_thread(database, tmp_path, tiny_config):
    ctx = make_context(dict(tiny_config, run_dir=str(tmp_path / "run"), checkpointer=database))
    with Run.create(ctx) as first:
        first.claim()
        with Run.open(tmp_path / "run") as second:
            assert not second.started  # reading is free
            with pytest.raises(RunError, match="another process is running"):
                next(second.stream())
    with Run.open(tmp_path / "run") as third:  # the first one closed: its lock went with its session
        third.claim()


def test_opening_while_another_process_migrates_does_not_deadlock(database):
    """The migrations build indexes CONCURRENTLY, which waits for every open transaction in the database.
    An opener that waited on the setup lock inside a statement was such a transaction, and the server
    broke the cycle with DeadlockDetected (two runs starting together on a new database, seen on CI).
    Here one connection holds the lock and migrates while another process-like opener waits for it."""
    import threading

    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    from teachgraph.run import _SETUP_LOCK, open_postgres_checkpointer

    opened: dict[str, Any] = {}

    def open_it() -> None:
        try:
            opened["saver"] = open_postgres_checkpointer(database)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            opened["error"] = error

    with psycopg.connect(database, autocommit=True, prepare_threshold=0, row_factory=dict_row) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK,))
        waiter = threading.Thread(target=open_it, daemon=True)
        waiter.start()
        time.sleep(1.0)  # the opener is now waiting for the lock
        try:
            PostgresSaver(holder).setup()  # CREATE INDEX CONCURRENTLY: waits for open transactions
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
        waiter.join(timeout=60)
    assert not waiter.is_alive(), "the opener never got the setup lock"
    assert "error" not in opened, repr(opened.get("error"))
    saver = opened["saver"]
    try:
        versions = saver.conn.execute("SELECT max(v) AS v FROM checkpoint_migrations").fetchone()["v"]
        assert versions == len(saver.MIGRATIONS) - 1
    finally:
        saver.conn.close()


def test_a_setup_lock_held_too_long_is_a_clear_error(database):
    import psycopg
    from psycopg.rows import dict_row

    from teachgraph.run import _SETUP_LOCK, _take_setup_lock

    secret_url = database.replace("postgres@", "postgres:s3cret@")
    with psycopg.connect(database, autocommit=True) as holder, \
            psycopg.connect(database, autocommit=True, row_factory=dict_row) as opener:
        holder.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK,))
        started = time.monotonic()
        with pytest.raises(RunError, match="being set up by another process for more than 1 s") as raised:
            _take_setup_lock(opener, secret_url, timeout_s=1.0)
        assert time.monotonic() - started < 5 and opener.closed
        assert "s3cret" not in str(raised.value) and database in str(raised.value)


@pytest.fixture(scope="module")
def crash(postgres, tmp_path_factory, base_student_ready) -> dict[str, Any]:
    database = postgres.create_database()
    root = tmp_path_factory.mktemp("pg-crash")
    write_config(root / "crash.yaml", **CRASH_CONFIG)
    run_dir, reference_dir = root / "run", root / "reference"
    common = ["--config", "crash.yaml", "--checkpointer", database, "--quiet"]
    started = time.monotonic()
    reference = _popen(["run", "--run-dir", "reference", *common], root, root / "reference.log")
    try:
        victim = _popen(["run", "--run-dir", "run", *common], root, root / "run.log")
        try:
            _kill_while_cycle_2_trains(victim, run_dir, root / "run.log", time.monotonic() + CLI_TIMEOUT)
        finally:
            if victim.poll() is None:
                victim.kill()
                victim.wait()
        at_kill = {"returncode": victim.returncode, "events": read_events(run_dir),
                   "accepted": {k: _digest(run_dir / "cycles" / f"cycle_{k:03d}" / "accepted.jsonl") for k in (1, 2)},
                   "threads": _threads(database)}
        resumed = run_cli("resume", "run", "--quiet", cwd=root, env=cli_env(**ONE_THREAD))
        reference.wait(timeout=CLI_TIMEOUT)
    finally:
        if reference.poll() is None:
            reference.kill()
            reference.wait()
    print(f"[postgres crash test: {time.monotonic() - started:.1f} s]")
    run_ids = {name: json.loads((root / name / "config.json").read_text())["run_id"] for name in ("run", "reference")}
    return {"root": root, "run_dir": run_dir, "reference_dir": reference_dir, "at_kill": at_kill, "resumed": resumed,
            "reference_rc": reference.returncode, "reference_log": (root / "reference.log").read_text(),
            "database": database, "run_ids": run_ids}


@pytest.mark.slow
def test_two_runs_share_one_database(crash):
    run_ids = crash["run_ids"]
    assert run_ids["run"] != run_ids["reference"]
    threads = _threads(crash["database"])
    assert set(threads) == set(run_ids.values())
    assert crash["at_kill"]["threads"][run_ids["run"]] > 0  # the killed run had checkpointed to Postgres
    for name in ("run", "reference"):
        assert not (crash["root"] / name / "checkpoints.sqlite").exists()


@pytest.mark.slow
def test_killed_run_resumes_from_another_process_redoing_nothing(crash):
    at_kill, resumed = crash["at_kill"], crash["resumed"]
    assert at_kill["returncode"] == -signal.SIGKILL
    before = [(e["node"], e["cycle"]) for e in at_kill["events"]]
    assert ("deduplicate", 2) in before and ("train", 2) not in before
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout and "Traceback" not in resumed.stderr
    events = read_events(crash["run_dir"])
    assert events[:len(at_kill["events"])] == at_kill["events"]
    finished = Counter((e["node"], e["cycle"]) for e in events)
    assert not {pair: n for pair, n in finished.items() if n > 1}, "a node ran twice"
    after = [(e["node"], e["cycle"]) for e in events[len(at_kill["events"]):]]
    assert after[0] == ("train", 2) and after[-1][0] == "finalize"
    for k, digest in at_kill["accepted"].items():  # the artifacts of checkpointed nodes were not rewritten
        assert _digest(crash["run_dir"] / "cycles" / f"cycle_{k:03d}" / "accepted.jsonl") == digest, k


@pytest.mark.slow
def test_resumed_run_equals_the_uninterrupted_one(crash):
    assert crash["reference_rc"] == 0, crash["reference_log"][-3000:]
    resumed = json.loads((crash["run_dir"] / "summary.json").read_text())
    reference = json.loads((crash["reference_dir"] / "summary.json").read_text())
    assert [c["cycle"] for c in resumed["cycles"]] == [0, 1, 2, 3]
    assert [c["val_accuracy"] for c in resumed["cycles"]] == [c["val_accuracy"] for c in reference["cycles"]]
    assert [c["kept"] for c in resumed["cycles"]] == [c["kept"] for c in reference["cycles"]]
    assert resumed["test_accuracy"] == reference["test_accuracy"]
    for k in (1, 2, 3):
        name = Path("cycles") / f"cycle_{k:03d}" / "accepted.jsonl"
        assert _digest(crash["run_dir"] / name) == _digest(crash["reference_dir"] / name), k
    with Run.open(crash["run_dir"]) as run:  # the state in Postgres is the finished run
        assert run.finished and run.values()["result"]["test_accuracy"] == reference["test_accuracy"]
