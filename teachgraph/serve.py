"""`teachgraph serve-teacher`: launch an OpenAI-compatible teacher server, wait until it is healthy,
print the base URL for `teachgraph run --teacher-url`, and stop the server cleanly on exit.

Two backends behind one contract: `sglang` (`python -m sglang.launch_server`, for GPUs) and `llama-cpp`
(llama.cpp's own server through the `xllamacpp` wheel, `python -m teachgraph.llama_server`, for CPUs; a
.gguf file or an installed model name, see teachgraph.models). The run's client talks to both alike."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any


class ServeError(RuntimeError):
    pass


def sglang_command(args: Any) -> list[str]:
    cmd = [sys.executable, "-m", "sglang.launch_server", "--model-path", args.model_path, "--host", args.host,
           "--port", str(args.port), "--tp-size", str(args.tp), "--dp-size", str(args.dp)]
    if args.mem_fraction_static is not None:
        cmd += ["--mem-fraction-static", str(args.mem_fraction_static)]
    if args.served_model_name:
        cmd += ["--served-model-name", args.served_model_name]
    return cmd + list(args.extra or [])


def llama_cpp_command(args: Any, model_file: str, alias: str) -> list[str]:
    cmd = [sys.executable, "-m", "teachgraph.llama_server", "--model", model_file, "--alias", alias,
           "--host", args.host, "--port", str(args.port), "--threads", str(args.threads), "--poll", str(args.poll),
           "--ctx", str(args.ctx), "--parallel", str(args.parallel)]
    return cmd + (["--verbose"] if args.verbose else [])


def _launch_plan(args: Any) -> tuple[list[str], str, str]:
    """(command, served model name, what is launched) for the chosen backend; ServeError when it cannot run."""
    backend = getattr(args, "backend", "sglang")
    if backend == "llama-cpp":
        from teachgraph.models import ModelUnavailable, resolve_gguf

        if importlib.util.find_spec("xllamacpp") is None:
            raise ServeError(f"xllamacpp is not installed in this Python ({sys.executable}); install it with "
                             "`make models` or `pip install 'teachgraph[models]'`")
        model = args.model or args.model_path
        if not model:
            raise ServeError("--model: required with --backend llama-cpp (a .gguf file or a name from "
                             "`teachgraph models`)")
        try:
            path = resolve_gguf(model)
        except ModelUnavailable as error:
            raise ServeError(f"--model: {error}") from None
        alias = args.served_model_name or (model if not model.endswith(".gguf") else path.stem)
        return llama_cpp_command(args, str(path), alias), alias, "the llama.cpp server"
    if importlib.util.find_spec("sglang") is None:
        raise ServeError(f"sglang is not installed in this Python ({sys.executable}). Install it on a GPU machine "
                         "with `pip install 'teachgraph[sglang]'`, use `--backend llama-cpp` on a CPU, or serve the "
                         "teacher elsewhere and pass its URL to `teachgraph run --teacher-url URL --teacher-model NAME`.")
    args.model_path = args.model_path or args.model
    if not args.model_path:
        raise ServeError("--model-path: required with --backend sglang")
    return sglang_command(args), args.served_model_name or args.model_path, "sglang.launch_server"


def healthy(url: str) -> bool:
    """Whether GET url answers 200 within 2 s."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop_process_group(process: subprocess.Popen, grace: float = 30.0, term_wait: float = 10.0) -> None:
    """SIGINT to the server's process group (SGLang shuts its workers down), then SIGTERM, then SIGKILL.
    Where this process ignores SIGINT (started in the background by a non-interactive shell: `nohup ... &`,
    some CI runners) the server inherited that and would sit out the whole grace: SIGTERM comes first."""
    steps = [(signal.SIGINT, grace), (signal.SIGTERM, term_wait), (signal.SIGKILL, 5.0)]
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        steps = [(signal.SIGTERM, max(grace, term_wait)), (signal.SIGKILL, 5.0)]
    for sig, wait in steps:
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def serve_teacher(args: Any) -> int:
    command, model, what = _launch_plan(args)
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    health = f"http://{host}:{args.port}/health"
    if healthy(health):
        raise ServeError(f"something already answers on {health}; choose another --port")
    # the server's own output goes to stderr: stdout carries only the base URL, for scripts
    process = subprocess.Popen(command, start_new_session=True, stdout=sys.stderr)

    def on_term(signum, frame):  # noqa: ARG001 - a terminated teachgraph stops its server too
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        deadline = time.monotonic() + args.wait
        while not healthy(health):
            if process.poll() is not None:
                raise ServeError(f"{what} exited with code {process.returncode} before it was healthy "
                                 "(see its output above)")
            if time.monotonic() > deadline:
                raise ServeError(f"{what} was not healthy at {health} after {args.wait:.0f} s (--wait)")
            time.sleep(1.0)
        base_url = f"http://{host}:{args.port}/v1"
        print(base_url, flush=True)
        hint = (f" --set teacher_concurrency={args.parallel}" if getattr(args, "backend", "sglang") == "llama-cpp"
                else "")  # more requests in flight than slots only queue on the server, into their timeouts
        print(f"teacher ready: teachgraph run --teacher-url {base_url} --teacher-model {model}{hint}  (Ctrl-C stops "
              "the server)", file=sys.stderr, flush=True)
        code = process.wait()
        return 0 if code in (0, -signal.SIGINT) else 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_process_group(process)
