"""A test server in its own process: started with `--port-file PATH`, ready once PATH holds its port and
`/health` answers; stopped with SIGTERM (then SIGKILL). Shared by the fake teacher and student servers."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any


class ServerProcess:
    def __init__(self, script: str | Path, *args: str, name: str = "server", timeout: float = 20.0):
        port_file = Path(tempfile.mkdtemp(prefix=f"{name}-")) / "port"
        self.process = subprocess.Popen([sys.executable, str(script), "--port", "0", "--port-file", str(port_file), *args],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {name} did not start: {self.process.stderr.read() if self.process.stderr else ''}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        self.base = f"http://127.0.0.1:{self.port}"
        while True:  # listening once /health answers
            try:
                self._get("/health")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.base + path, timeout=10) as response:
            return json.loads(response.read())

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
