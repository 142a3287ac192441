"""A stand-in for an SGLang student server with LoRA enabled, for tests: a real HTTP server that runs the
student's base model with transformers + peft and records every adapter load.

    python tests/fake_student_server.py --model-path BASE --port-file PATH [--port 0]

The routes and bodies SGLang's server takes (students/served.py uses them):
  GET  /health, /model_info ({"model_path": BASE}), /get_model_info (the older name)
  POST /load_lora_adapter {"lora_name", "lora_path"}; /unload_lora_adapter {"lora_name"}
  POST /generate {"input_ids": [[...]], "sampling_params": {"max_new_tokens", "temperature": 0,
       "stop_token_ids"}, "lora_path": [name | null, ...]} -> [{"text", "meta_info"}, ...]
  GET  /stats: the adapter loads and unloads in order, and generate requests per adapter (for asserts).
Greedy decoding, one prompt at a time (SGLang does not pad either). An unknown adapter name is HTTP 400,
as in SGLang.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.server_process import ServerProcess  # noqa: E402


class StudentEngine:
    def __init__(self, model_path: str):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_path = model_path
        self.base = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model: Any = self.base  # a PeftModel once an adapter is loaded
        self.adapters: set[str] = set()
        self.lock = threading.Lock()
        self.loads: list[dict[str, str]] = []
        self.unloads: list[str] = []
        self.requests: Counter = Counter()
        self.prompts: Counter = Counter()

    def load(self, name: str, path: str) -> None:
        from peft import PeftModel

        with self.lock:
            if name in self.adapters:
                raise ValueError(f"adapter {name!r} is already loaded")
            if not self.adapters and not hasattr(self.model, "peft_config"):
                self.model = PeftModel.from_pretrained(self.base, path, adapter_name=name).eval()
            else:
                self.model.load_adapter(path, adapter_name=name)
            self.adapters.add(name)
            self.loads.append({"lora_name": name, "lora_path": path})

    def unload(self, name: str) -> None:
        with self.lock:
            if name not in self.adapters:
                raise ValueError(f"adapter {name!r} is not loaded")
            self.adapters.discard(name)
            if self.adapters:
                self.model.delete_adapter(name)
            else:  # the last one: back to the plain base model
                self.base = self.model.unload()
                self.model = self.base
            self.unloads.append(name)

    @torch.no_grad()
    def generate(self, ids: list[int], adapter: str | None, max_new_tokens: int, stop: list[int]) -> str:
        with self.lock:
            if adapter is not None and adapter not in self.adapters:
                raise ValueError(f"unknown LoRA adapter {adapter!r}; loaded: {sorted(self.adapters)}")
            self.requests[adapter or "<base>"] += 1
            inputs = torch.tensor([ids])
            if adapter is None and hasattr(self.model, "disable_adapter"):
                with self.model.disable_adapter():
                    output = self._greedy(inputs, max_new_tokens, stop)
            else:
                if adapter is not None:
                    self.model.set_adapter(adapter)
                output = self._greedy(inputs, max_new_tokens, stop)
        new = output[0, len(ids):].tolist()
        end = next((k for k, token in enumerate(new) if token in stop), len(new))
        return self.tokenizer.decode(new[:end], skip_special_tokens=True)

    def _greedy(self, inputs: torch.Tensor, max_new_tokens: int, stop: list[int]) -> torch.Tensor:
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        return self.model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs), do_sample=False,
                                   max_new_tokens=max_new_tokens, eos_token_id=stop or None, pad_token_id=pad)


def make_handler(engine: StudentEngine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                return self._reply(200, {})
            if self.path in ("/model_info", "/get_model_info"):
                return self._reply(200, {"model_path": engine.model_path, "is_generation": True})
            if self.path == "/stats":
                return self._reply(200, {"loads": engine.loads, "unloads": engine.unloads,
                                         "loaded": sorted(engine.adapters), "requests": dict(engine.requests)})
            self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            try:
                if self.path == "/load_lora_adapter":
                    engine.load(body["lora_name"], body["lora_path"])
                    return self._reply(200, {"success": True, "loaded_adapters": sorted(engine.adapters)})
                if self.path == "/unload_lora_adapter":
                    engine.unload(body["lora_name"])
                    return self._reply(200, {"success": True, "loaded_adapters": sorted(engine.adapters)})
                if self.path == "/generate":
                    ids = body["input_ids"]
                    single = bool(ids) and isinstance(ids[0], int)
                    batch = [ids] if single else ids
                    adapters = body.get("lora_path")
                    adapters = adapters if isinstance(adapters, list) else [adapters] * len(batch)
                    params = body.get("sampling_params", {})
                    started = time.monotonic()
                    texts = [engine.generate(x, a, int(params.get("max_new_tokens", 16)),
                                             list(params.get("stop_token_ids") or []))
                             for x, a in zip(batch, adapters)]
                    out = [{"text": t, "meta_info": {"prompt_tokens": len(x), "e2e_latency": time.monotonic() - started}}
                           for t, x in zip(texts, batch)]
                    return self._reply(200, out[0] if single else out)
            except (KeyError, ValueError) as error:
                return self._reply(400, {"error": {"message": str(error)}})
            self._reply(404, {"error": "not found"})

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    engine = StudentEngine(args.model_path)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(engine))
    if args.port_file:
        Path(args.port_file).write_text(str(server.server_address[1]), encoding="utf-8")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


class FakeStudentServer(ServerProcess):
    """The server in its own process: `base` (its URL), `stats()`, `stop()`."""

    def __init__(self, model_path: str, timeout: float = 120.0):
        super().__init__(Path(__file__).resolve(), "--model-path", model_path, name="fake-student", timeout=timeout)

    def stats(self) -> dict[str, Any]:
        return self._get("/stats")


if __name__ == "__main__":
    sys.exit(main())
