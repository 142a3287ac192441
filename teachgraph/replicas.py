"""`teachgraph serve-teacher --replicas N`: N teacher workers with `sglang-router` in front.

The workers are SGLang servers (`python -m sglang.launch_server`, as `serve-teacher` starts one) unless
`--worker-command` gives another command line, with {port}, {host}, {model_path}, {index} and {python}
filled in per worker (any OpenAI-compatible server that answers /health and /server_info or
/get_server_info, e.g. a CPU backend, or tests/fake_teacher_server.py). The router
(`python -m sglang_router.launch_router`, pip package sglang-router) listens on --port and spreads the
requests over the workers; the run points at it (`--teacher-url http://HOST:PORT/v1`).

sglang-router's Python package pulls fastapi/uvicorn/pydantic versions of its own, so it runs from a small
virtual environment of its own (ROUTER_VENV under the teachgraph cache, created on first use with
`pip install sglang-router==ROUTER_VERSION`, ~20-50 s) unless the current Python has it or --router-python
names one.

Measured with sglang-router 0.3.2: it reads each worker's model path from /server_info (or /model_info, or
the get_* names) and loads that folder's tokenizer, downloading it when the path is not a local folder;
a restarted worker stays out of rotation ~60 s unless health checks run every second and the circuit
breaker reopens after 2 s (the flags below). A worker that exits is restarted (after RESTART_DELAY_S),
and the router takes it back once it is healthy.

Every worker's and the router's output goes to a log file in --log-dir, with replicas.json (URLs, pids,
logs) beside them.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teachgraph.serve import healthy, sglang_command, stop_process_group

ROUTER_VERSION = "0.3.2"
ROUTER_FLAGS = ["--health-check-interval-secs", "1", "--cb-timeout-duration-secs", "2"]  # quick failover and return
RESTART_DELAY_S = 2.0


class ReplicasError(RuntimeError):
    pass


def cache_root() -> Path:
    return Path(os.environ.get("TEACHGRAPH_CACHE", Path.home() / ".cache" / "teachgraph"))


def router_venv() -> Path:
    return cache_root() / f"sglang-router-{ROUTER_VERSION}"


def _has_router(python: str) -> bool:
    return subprocess.run([python, "-c", "import sglang_router.launch_router"], capture_output=True).returncode == 0


def router_python(explicit: str | None = None, install: bool = True, log=print) -> str:
    """The Python that runs sglang-router: `explicit`, else this one if it has it, else the router's own
    venv (created and installed now if missing and `install`)."""
    if explicit:
        if not _has_router(explicit):
            raise ReplicasError(f"{explicit} cannot import sglang_router (pip install sglang-router=={ROUTER_VERSION})")
        return explicit
    if _has_router(sys.executable):
        return sys.executable
    venv = router_venv()
    python = venv / "bin" / "python"
    if python.exists() and _has_router(str(python)):
        return str(python)
    if not install:
        raise ReplicasError(f"sglang-router is not installed; it goes into its own venv at {venv} on first use")
    log(f"installing sglang-router {ROUTER_VERSION} into its own venv at {venv} (once)")
    started = time.monotonic()
    tmp = venv.with_name(venv.name + f".installing-{os.getpid()}")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True, capture_output=True)
        result = subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                 f"sglang-router=={ROUTER_VERSION}"], capture_output=True, text=True)
        if result.returncode != 0:
            raise ReplicasError(f"pip install sglang-router=={ROUTER_VERSION} failed: {result.stderr[-1500:]}")
        # moved into place once complete (an interrupted install leaves nothing half-done); only `python -m`
        # is used, which works from a moved venv (its console scripts' shebangs would not)
        if venv.exists():
            import shutil

            shutil.rmtree(venv)
        os.replace(tmp, venv)
    finally:
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    log(f"sglang-router installed in {time.monotonic() - started:.0f} s")
    return str(python)


def worker_command(args: Any, index: int, port: int) -> list[str]:
    """Worker `index`'s command line: --worker-command filled in, or SGLang's launch_server on `port`."""
    if getattr(args, "worker_command", None):
        fields = {"port": port, "host": args.host, "model_path": args.model_path, "index": index,
                  "python": sys.executable}
        return [part.format(**fields) for part in shlex.split(args.worker_command)]
    return sglang_command(_with(args, port=port))


def worker_environment(args: Any, index: int) -> dict[str, str] | None:
    """SGLang workers get GPUs of their own: worker i sees GPUs i*tp ... i*tp+tp-1 (unless CUDA_VISIBLE_DEVICES
    is set already, or the workers are another command, which gets the environment unchanged)."""
    if getattr(args, "worker_command", None) or "CUDA_VISIBLE_DEVICES" in os.environ:
        return None
    tp = int(getattr(args, "tp", 1) or 1) * int(getattr(args, "dp", 1) or 1)
    return dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(str(index * tp + k) for k in range(tp)))


def _with(args: Any, **changes: Any) -> Any:
    import argparse

    return argparse.Namespace(**{**vars(args), **changes})


def router_command(python: str, host: str, port: int, workers: list[str], policy: str,
                   startup_timeout: float) -> list[str]:
    return [python, "-m", "sglang_router.launch_router", "--host", host, "--port", str(port), "--worker-urls", *workers,
            "--policy", policy, "--worker-startup-timeout-secs", str(int(startup_timeout)), "--log-level", "warn",
            *ROUTER_FLAGS]


def _get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


@dataclass
class Proc:
    name: str
    command: list[str]
    log: Path
    url: str
    env: dict[str, str] | None = None
    process: subprocess.Popen | None = None
    restarts: int = 0
    exited_at: float | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                            env=self.env)
        self.exited_at = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        if self.process is not None:
            stop_process_group(self.process, grace, term_wait=5.0)


@dataclass
class Replicas:
    """N workers and the router: `start()` (returns once the router has every worker healthy), `url`
    (the OpenAI base URL), `supervise()` (restart exited workers), `stop()`."""
    args: Any
    log_dir: Path
    python: str
    workers: list[Proc] = field(default_factory=list)
    router: Proc | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1" if self.args.host in ("0.0.0.0", "::") else self.args.host

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.args.port}/v1"

    def start(self) -> "Replicas":
        args = self.args
        self.log_dir.mkdir(parents=True, exist_ok=True)
        base = args.worker_base_port or args.port + 1
        for index in range(args.replicas):
            port = base + index
            self.workers.append(Proc(f"worker-{index}", worker_command(args, index, port),
                                     self.log_dir / f"worker-{index}.log", f"http://{self.host}:{port}",
                                     env=worker_environment(args, index)))
        for worker in self.workers:
            worker.start()
        deadline = time.monotonic() + args.wait
        try:
            for worker in self.workers:
                self._wait(lambda w=worker: healthy(w.url + "/health"), worker, deadline)
            self.router = Proc("router", router_command(self.python, args.host, args.port, [w.url for w in self.workers],
                                                        args.router_policy, args.wait),
                               self.log_dir / "router.log", f"http://{self.host}:{args.port}")
            self.router.start()
            self._wait(lambda: self.healthy_workers() == len(self.workers), self.router, deadline)
        except BaseException:
            self.stop()
            raise
        self._write_state()
        return self

    def _wait(self, ready, proc: Proc, deadline: float) -> None:
        while not ready():
            if not proc.alive():
                raise ReplicasError(f"{proc.name} exited with code {proc.process.returncode} before it was ready: "
                                    f"{' '.join(map(shlex.quote, proc.command))} (see {proc.log})")
            if time.monotonic() > deadline:
                raise ReplicasError(f"{proc.name} was not ready after {self.args.wait:.0f} s (see {proc.log})")
            time.sleep(0.25)

    def healthy_workers(self) -> int:
        """Workers the router has and deems healthy (0 while it is not up)."""
        try:
            listed = _get_json(f"http://{self.host}:{self.args.port}/workers")
        except (urllib.error.URLError, OSError, ValueError):
            return 0
        return sum(1 for w in (listed or {}).get("workers", []) if w.get("is_healthy"))

    def supervise(self) -> None:
        """One pass: restart workers that exited (RESTART_DELAY_S after they did); a dead router is fatal."""
        if self.router is not None and not self.router.alive():
            raise ReplicasError(f"the router exited with code {self.router.process.returncode} (see {self.router.log})")
        for worker in self.workers:
            if worker.alive():
                continue
            now = time.monotonic()
            if worker.exited_at is None:
                worker.exited_at = now
                print(f"{worker.name} exited with code {worker.process.returncode}; restarting it", file=sys.stderr,
                      flush=True)
            elif now - worker.exited_at >= RESTART_DELAY_S:
                worker.restarts += 1
                worker.start()
                self._write_state()

    def _write_state(self) -> None:
        from teachgraph.io import write_json_atomic

        write_json_atomic(self.log_dir / "replicas.json", {
            "url": self.url,
            "router": {"url": self.router.url if self.router else None, "pid": self.router.process.pid
                       if self.router and self.router.process else None, "log": str(self.router.log) if self.router else None},
            "workers": [{"url": w.url, "pid": w.process.pid if w.process else None, "log": str(w.log),
                         "restarts": w.restarts, "command": w.command} for w in self.workers]})

    def stop(self) -> None:
        if self.router is not None:
            self.router.stop(grace=5.0)
        for worker in self.workers:
            worker.stop()

    def __enter__(self) -> "Replicas":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve_replicas(args: Any) -> int:
    """The `serve-teacher --replicas N` command: start, print the router's base URL, supervise until
    terminated, then stop everything."""
    if not args.worker_command:
        import importlib.util

        if importlib.util.find_spec("sglang") is None:
            raise ReplicasError(f"sglang is not installed in this Python ({sys.executable}); install it on a GPU "
                                "machine (`pip install 'teachgraph[sglang]'`) or give the workers' command line with "
                                "--worker-command '... {port} ...'")
    if healthy(f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}/health"):
        raise ReplicasError(f"something already answers on port {args.port}; choose another --port")
    python = router_python(args.router_python, log=lambda m: print(m, file=sys.stderr, flush=True))
    log_dir = Path(args.log_dir or (cache_root() / "replicas" / str(args.port)))
    replicas = Replicas(args, log_dir, python)

    def on_term(signum, frame):  # noqa: ARG001 - a terminated teachgraph stops its servers too
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        started = time.monotonic()
        replicas.start()
        print(replicas.url, flush=True)
        model = args.served_model_name or args.model_path
        print(f"teacher ready in {time.monotonic() - started:.1f} s: {args.replicas} workers behind sglang-router; "
              f"teachgraph run --teacher-url {replicas.url} --teacher-model {model}  (logs and pids: {log_dir}; "
              "Ctrl-C stops them)", file=sys.stderr, flush=True)
        while True:
            replicas.supervise()
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        try:
            replicas.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)
