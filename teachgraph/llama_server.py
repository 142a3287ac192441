"""`python -m teachgraph.llama_server --model FILE.gguf ...`: llama.cpp's own HTTP server (xllamacpp) in a
process of its own, serving OpenAI chat completions (with `response_format` json_schema) on HOST:PORT
until SIGINT/SIGTERM. `teachgraph serve-teacher --backend llama-cpp` launches and supervises it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m teachgraph.llama_server")
    parser.add_argument("--model", required=True, help="the .gguf file")
    parser.add_argument("--alias", required=True, help="the model name clients use")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--poll", type=int, default=0, help="llama.cpp's spin-polling level 0-100 (0: off)")
    parser.add_argument("--ctx", type=int, default=4096, help="context tokens (shared by the parallel slots)")
    parser.add_argument("--parallel", type=int, default=1, help="requests decoded at once")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = [args.host]
    params.port = args.port
    for cpu in (params.cpuparams, params.cpuparams_batch):
        # spin-polling makes idle threads busy-wait; on a shared CPU that starves everyone (0.3 tokens/s)
        cpu.n_threads = args.threads
        cpu.poll = args.poll
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    params.use_jinja = True  # the model's own chat template
    params.verbosity = 3 if args.verbose else 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = xllamacpp.Server(params)
    except Exception as error:  # noqa: BLE001 - a model llama.cpp cannot load: one line, a failing exit code
        print(f"llama.cpp could not load {args.model}: {error}", file=sys.stderr, flush=True)
        return 3
    print(f"llama.cpp serving {args.alias} at {server.listening_address}", file=sys.stderr, flush=True)
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
