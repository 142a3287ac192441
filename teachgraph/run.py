"""A teaching run: its directory, configuration, checkpointer and thread, its live services, and the
compiled graph that runs it. The CLI, the notebook, the benchmarks and the tests all drive runs
through this one protocol.

    from teachgraph.graph import make_context
    from teachgraph.run import Run

    with Run.create(make_context({"environment": "skill-list", "run_dir": "runs/demo"})) as run:
        for event in run.stream():             # progress events: stage, progress, cycle
            ...
        print(run.values()["result"])

    with Run.open("runs/demo") as run:         # later, in any process: continue from the last checkpoint
        if run.waiting_review:                 # paused by the review gate
            run.invoke(answer={"action": "approve"})

A run directory holds `config.json` (the validated configuration and the run id, which is the
LangGraph thread id) and, by default, `checkpoints.sqlite` (LangGraph's SqliteSaver); with
`checkpointer=postgresql://...` the checkpoints go to that database instead (PostgresSaver, the thread
id keeps runs apart), while the artifacts (cycles/, events.jsonl, students) stay under the run
directory, which a resuming process must therefore see at the same path. `Run.create`
on an existing directory continues it when the configuration is the same and refuses, naming the
fields, when it is not. `Run.fork(checkpoint_id)` continues from an earlier checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

from teachgraph.graph.context import TeachContext, make_context, redact_password
from teachgraph.io import read_json, write_json_atomic
from teachgraph.paths import RunPaths
from teachgraph.services import RunServices

RECURSION_LIMIT = 10_000
_SETUP_LOCK = 0x7465616368  # the advisory lock taken around PostgresSaver.setup() ("teach")
_SETUP_LOCK_TIMEOUT_S = 600.0
# nodes that work on the cycle after the one the state holds (the state's cycle is the last trained one)
_NEXT_CYCLE_NODES = {"discover_skills", "organize_skills", "plan", "generate", "deduplicate", "review", "train"}


class RunError(RuntimeError):
    """A problem with a run directory or its checkpoint, reported without a traceback."""


def is_postgres_url(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def open_checkpointer(path: str | Path) -> Any:
    """LangGraph's SqliteSaver on a file (created if new), or its PostgresSaver for a postgresql:// URL;
    an unreadable file or an unreachable database is a RunError."""
    if is_postgres_url(path):
        return open_postgres_checkpointer(str(path))
    from langgraph.checkpoint.sqlite import SqliteSaver

    try:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        conn.execute("PRAGMA schema_version").fetchone()
        saver = SqliteSaver(conn)
        saver.setup()
        return saver
    except sqlite3.DatabaseError as error:
        raise RunError(f"the checkpoint {path} is unreadable ({error}); resume is impossible. "
                       "Start a new run with another --run-dir (the artifacts of this one stay readable).") from None


def open_postgres_checkpointer(url: str) -> Any:
    """LangGraph's PostgresSaver on one connection (autocommit, no prepared statements, dict rows: what the
    saver needs), its tables created or migrated by `setup()`. The password may come from $PGPASSWORD or
    ~/.pgpass (libpq's own), as config.json never holds it."""
    try:
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection, OperationalError
        from psycopg.rows import dict_row
    except ImportError as error:
        raise RunError(f"--checkpointer {redact_password(url)} needs langgraph-checkpoint-postgres and psycopg "
                       f"({error}); install them with `pip install 'teachgraph[postgres]'`") from None
    try:
        conn = Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row, connect_timeout=10)
    except OperationalError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise RunError(f"the checkpoint database {redact_password(url)} cannot be reached ({reason})") from None
    saver = PostgresSaver(conn)
    _take_setup_lock(conn, url)
    try:
        saver.setup()
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
    return saver


def _take_setup_lock(conn: Any, url: str, timeout_s: float = _SETUP_LOCK_TIMEOUT_S) -> None:
    """Runs starting together on a new database would race through the migrations (CREATE TABLE IF NOT
    EXISTS is not safe against a concurrent one), so they take turns. The lock is polled, not waited for:
    the migrations build indexes CONCURRENTLY, which waits for every open transaction in the database,
    and a statement blocked on pg_advisory_lock is one, so the server would end both with DeadlockDetected."""
    deadline, pause = time.monotonic() + timeout_s, 0.02
    while not conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (_SETUP_LOCK,)).fetchone()["locked"]:
        if time.monotonic() > deadline:
            conn.close()
            raise RunError(f"the checkpoint database {redact_password(url)} was being set up by another process "
                           f"for more than {timeout_s:.0f} s; try again once it is done")
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def _checkpoints_at(ctx: TeachContext, paths: RunPaths) -> str | Path:
    """Where a run's checkpoints are: its PostgreSQL database, or RUN_DIR/checkpoints.sqlite."""
    return ctx.checkpointer or paths.checkpoints


def _checksum(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def read_run_config(run_dir: str | Path) -> tuple[str, TeachContext]:
    """(run id, configuration) of an existing run directory; RunError when it is none or was edited."""
    paths = RunPaths.of(run_dir)
    if not paths.config.exists():
        raise RunError(f"{run_dir} is not a teachgraph run directory (no config.json)")
    try:
        stored = read_json(paths.config)
        config, run_id = stored["config"], stored["run_id"]
    except Exception as error:  # noqa: BLE001 - a damaged file gets one clear line
        raise RunError(f"{paths.config} is not a readable teachgraph configuration ({error!r})") from None
    if stored.get("sha256") and stored["sha256"] != _checksum(config):
        raise RunError(f"{paths.config} was edited after the run started (its checksum no longer matches); "
                       "restore it, or start a new run with the new configuration in another --run-dir")
    return run_id, make_context(config).model_copy(update={"run_dir": str(run_dir)})


class Run:
    def __init__(self, ctx: TeachContext, run_id: str, checkpointer: Any = None, services: RunServices | None = None):
        from teachgraph.graph import build_graph

        self.ctx, self.run_id = ctx, run_id
        self.paths = RunPaths.of(ctx.run_dir)
        self._owns_checkpointer = checkpointer is None
        self.checkpointer = checkpointer if checkpointer is not None else \
            open_checkpointer(_checkpoints_at(ctx, self.paths))
        self._services = services
        self.graph = build_graph(checkpointer=self.checkpointer)
        self.config = {"configurable": {"thread_id": run_id}, "recursion_limit": RECURSION_LIMIT}
        self.steps = 0  # nodes finished by this object's streams
        self._claimed = False

    @property
    def services(self) -> RunServices:
        """The run's live services (built on first use: reading a run's state needs none)."""
        if self._services is None:
            self._services = RunServices(self.ctx)
        return self._services

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def create(cls, ctx: TeachContext, **options: Any) -> "Run":
        """A new run in ctx.run_dir (config.json written), or the existing run there when its configuration
        is the same; a different configuration is a RunError naming the fields that differ."""
        paths = RunPaths.of(ctx.run_dir)
        if paths.root.exists() and not paths.root.is_dir():
            raise RunError(f"--run-dir {ctx.run_dir} is a file, not a directory")
        if paths.config.exists():
            run_id, old = read_run_config(ctx.run_dir)
            if old.fingerprint() != ctx.fingerprint():
                diff = sorted(k for k in ctx.fingerprint() if ctx.fingerprint()[k] != old.fingerprint().get(k))
                raise RunError(f"{ctx.run_dir} holds a run with a different configuration (fields differ: "
                               f"{', '.join(diff)}). Use another --run-dir, or `teachgraph resume {ctx.run_dir}`.")
            moved = old.public_dump()["checkpointer"] != ctx.public_dump()["checkpointer"]
            # another checkpointer must hold this run's thread: else the run would start over
            run = cls(ctx, run_id, **options) if not moved or ctx.checkpointer or paths.checkpoints.exists() else None
            if moved and (run is None or not run.started):
                if run is not None:
                    run.close()
                was = old.public_dump()["checkpointer"] or "checkpoints.sqlite"
                now = ctx.public_dump()["checkpointer"] or "checkpoints.sqlite"
                raise RunError(f"{ctx.run_dir} keeps its checkpoints in {was}; {now} holds no checkpoint of its "
                               f"thread {run_id}. Use `teachgraph resume {ctx.run_dir}`.")
            return run
        if ctx.checkpointer:  # an unreachable database fails before the run directory is written
            open_checkpointer(ctx.checkpointer).conn.close()
        try:
            paths.root.mkdir(parents=True, exist_ok=True)
            run_id = f"{ctx.environment}-s{ctx.seed}-{os.urandom(4).hex()}"
            config = ctx.public_dump()
            write_json_atomic(paths.config, {"run_id": run_id, "config": config, "sha256": _checksum(config)})
        except OSError as error:
            raise RunError(f"cannot write the run directory {ctx.run_dir}: {error.strerror or error}") from None
        return cls(ctx, run_id, **options)

    @classmethod
    def open(cls, run_dir: str | Path, **options: Any) -> "Run":
        """The run in an existing directory, with the configuration it was started with."""
        run_id, ctx = read_run_config(run_dir)
        return cls(ctx, run_id, **options)

    # -- where it stands -----------------------------------------------------------------------
    def snapshot(self, config: dict[str, Any] | None = None) -> Any:
        try:
            return self.graph.get_state(config or self.config)
        except Exception as error:  # noqa: BLE001 - a damaged checkpoint must not become a traceback wall
            raise RunError(f"the checkpoint of {self.ctx.run_dir} cannot be read ({error}); start a new run "
                           "with another --run-dir.") from None

    def values(self) -> dict[str, Any]:
        return self.snapshot().values

    @property
    def started(self) -> bool:
        return bool(self.snapshot().values)

    @property
    def finished(self) -> bool:
        snapshot = self.snapshot()
        return bool(snapshot.values.get("result")) and not snapshot.next

    @property
    def waiting_review(self) -> dict[str, Any] | None:
        """What the review gate shows, while the run waits for an answer."""
        snapshot = self.snapshot()
        return snapshot.interrupts[0].value if snapshot.interrupts else None

    def position(self) -> tuple[str, int] | None:
        """(the node that runs next, the cycle it works on), or None for a run not started or finished."""
        snapshot = self.snapshot()
        if not snapshot.next:
            return None
        node = snapshot.next[0]
        cycle = snapshot.values.get("cycle", 0)
        return node, cycle + 1 if node in _NEXT_CYCLE_NODES else cycle

    def history(self) -> list[Any]:
        """Every checkpoint of the run's thread, newest first."""
        return list(self.graph.get_state_history(self.config))

    # -- running -------------------------------------------------------------------------------
    def stream(self, answer: Any = None, checkpoint: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Start, continue, or (with an answer) resume from the review gate; yields the nodes' progress
        events (dicts with "type": stage, progress or cycle) until the run ends or waits for review.
        `checkpoint` (a config from `history()`) continues from that earlier checkpoint instead, on a new
        branch (`fork`): what the branch it leaves wrote stays as it was."""
        from langgraph.types import Command

        self.claim()
        config = self.config
        if checkpoint is not None:
            latest = self.snapshot().config["configurable"].get("checkpoint_id")
            chosen = checkpoint["configurable"].get("checkpoint_id")
            config = checkpoint if chosen in (None, latest) else self.fork(checkpoint)
        snapshot = self.snapshot(config)
        if snapshot.interrupts:
            if answer is None:
                raise RunError("the run waits for review: pass an answer ({'action': 'approve'}, "
                               "{'action': 'edit', 'drop_ids': [...]} or {'action': 'stop'})")
            graph_input: Any = Command(resume=answer)
        elif snapshot.next:
            graph_input = None
        elif snapshot.values.get("result"):
            return
        else:
            graph_input = {"run_dir": str(self.ctx.run_dir)}
        for mode, data in self.graph.stream(graph_input, config, context=self.ctx.bind(self.services),
                                            stream_mode=["custom", "updates"], durability="sync"):
            if mode == "custom":
                yield data
            else:
                self.steps += 1

    def invoke(self, answer: Any = None, checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
        """`stream` to the end (or to the next review pause); returns the state's values."""
        for _ in self.stream(answer, checkpoint):
            pass
        return self.values()

    def fork(self, checkpoint: dict[str, Any] | str, name: str | None = None) -> dict[str, Any]:
        """A new branch of the run from an earlier checkpoint (a config from `history()`, or its id): the
        checkpoint's state with `branch` set, so that everything the branch writes goes to
        RUN_DIR/branches/NAME. Returns the branch's config; `stream()` and `invoke()` then continue it
        (it is the thread's latest checkpoint)."""
        if isinstance(checkpoint, str):
            checkpoint = {"configurable": dict(self.config["configurable"], checkpoint_id=checkpoint)}
        name = name or f"fork-{os.urandom(3).hex()}"
        forked = self.graph.update_state(checkpoint, {"branch": name})
        return {"configurable": forked["configurable"], "recursion_limit": RECURSION_LIMIT}

    def claim(self) -> None:
        """In PostgreSQL, only one process at a time runs a thread: a session advisory lock on the run id,
        held until this Run closes (or its process dies: the server drops a lost session's locks).
        Another process running the same run is a RunError. SQLite's file lock already serialises writes."""
        if not is_postgres_url(self.ctx.checkpointer or "") or self._claimed:
            return
        row = self.checkpointer.conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0)) AS locked",
                                             (f"teachgraph:{self.run_id}",)).fetchone()
        if not row["locked"]:
            raise RunError(f"another process is running {self.ctx.run_dir} (thread {self.run_id} in "
                           f"{self.ctx.public_dump()['checkpointer']}); wait for it to end, or stop it first")
        self._claimed = True

    # -- the end -------------------------------------------------------------------------------
    def close(self) -> None:
        if self._services is not None:
            self._services.close()
        if self._owns_checkpointer:
            self.checkpointer.conn.close()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
