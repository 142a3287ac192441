"""Real database servers for the scale-out tests: a PostgreSQL server (the Debian image's binaries) and a
`chroma run` server, each started in a fresh data folder on a free 127.0.0.1 port and stopped at the end.

Neither is ever skipped: missing binaries fail the test loudly (CI runs on this same image, which has
them). Each start-up is timed (`startup_s`) and printed, so that the note on fixture costs stays measured.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl, no pg_ctl on PATH): "
                       "the Postgres checkpointer tests need it (apt-get install postgresql)")


class PostgresServer:
    """initdb + pg_ctl start, as the `postgres` user when this process is root (both refuse root), with
    data under /var/tmp, listening on 127.0.0.1 only; trust authentication for local test connections."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="teachgraph-pg-", dir="/var/tmp"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, user="postgres")

    def _run(self, *args: str) -> None:
        command = ([shutil.which("runuser") or "runuser", "-u", "postgres", "--"] if self.as_postgres else []) + list(args)
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}\n{log}")

    def start(self) -> "PostgresServer":
        started = time.monotonic()
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off", "start")
        self.startup_s = time.monotonic() - started
        print(f"[postgres {self.bin.parent.name} on 127.0.0.1:{self.port} started in {self.startup_s:.2f} s]",
              file=sys.stderr)
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            if self.data.exists():
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class ChromaServer:
    """`chroma run --path DIR --host 127.0.0.1 --port P` (the CLI that ships with chromadb)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = self.path.parent / f"{self.path.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "ChromaServer":
        # the `chroma` console script of this interpreter's chromadb (chromadb.cli.cli:app)
        command = [sys.executable, "-c", "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; "
                   "sys.exit(app())"]
        started = time.monotonic()
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([*command, "run", "--path", str(self.path), "--host", "127.0.0.1",
                                          "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT,
                                         env=dict(os.environ, ANONYMIZED_TELEMETRY="False"))
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma run exited ({self.proc.returncode}):\n{self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"chroma run did not answer in {timeout} s:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        self.startup_s = time.monotonic() - started
        print(f"[chroma run on {self.url} started in {self.startup_s:.2f} s]", file=sys.stderr)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> "ChromaServer":
        """Stop and start again on the same folder and port."""
        self.stop()
        return self.start()
