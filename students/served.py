"""Evaluation through a serving engine: a LoRA student's adapter, loaded into an SGLang server, answers the
evaluation prompts instead of `model.generate` (for students too big to decode quickly in-process).

The server runs the student's base model with LoRA enabled and room for adapters loaded later:

    python -m sglang.launch_server --model-path BASE --enable-lora --max-lora-rank 16 \\
        --lora-target-modules all --max-loras-per-batch 2

and the run names it with `student_eval_url`. Each cycle's saved adapter is loaded under a name derived
from its folder (`POST /load_lora_adapter`), the previous cycle's is unloaded (`/unload_lora_adapter`),
and the prompts go to SGLang's native `/generate` as token ids: the same ids `HFStudent.predict` feeds
the model (`students.hf.prompt_ids`), greedy, stopping at the same stop tokens, so the two paths are
interchangeable. The base student (cycle 0, no adapter) is the served model itself. Training stays
in-process (transformers + peft); only evaluation moves.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import httpx

from teachgraph.domains.base import stable_hash
from teachgraph.students.hf import STUDENT_META, prompt_ids, stop_ids

RETRIES = 3


class StudentServerError(RuntimeError):
    """The student's evaluation server is unreachable, serves another model, or rejected a request."""


class StudentServer:
    """One SGLang server for the run's evaluations: checks what it serves, and keeps one adapter loaded."""

    def __init__(self, url: str, timeout_s: float = 600.0):
        self.url = url.rstrip("/").removesuffix("/v1")
        self.client = httpx.Client(timeout=timeout_s)
        self.loaded: str | None = None
        self.model_path: str | None = None

    def _post(self, route: str, body: dict[str, Any]) -> Any:
        error: Exception | None = None
        for attempt in range(RETRIES):
            try:
                response = self.client.post(self.url + route, json=body)
            except httpx.TransportError as exc:  # refused, reset, timed out: the server may be restarting
                error = exc
                time.sleep(min(4.0, 0.5 * 2 ** attempt))
                continue
            if response.status_code >= 500:
                error = StudentServerError(f"HTTP {response.status_code}: {response.text[:200]}")
                time.sleep(min(4.0, 0.5 * 2 ** attempt))
                continue
            if response.status_code != 200:
                raise StudentServerError(f"student_eval_url: {self.url}{route} answered HTTP {response.status_code}: "
                                         f"{response.text[:300]}")
            return response.json()
        raise StudentServerError(f"student_eval_url: {self.url}{route} failed {RETRIES} times ({error})")

    def check_serves(self, base: str) -> None:
        """Fail before any evaluation when the server runs a model other than the student's base."""
        try:
            response = self.client.get(self.url + "/model_info", timeout=10.0)
            if response.status_code == 404:
                response = self.client.get(self.url + "/get_model_info", timeout=10.0)
            info = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise StudentServerError(f"student_eval_url: no SGLang server answers at {self.url} ({exc}). Start one "
                                     f"with `python -m sglang.launch_server --model-path {base} --enable-lora "
                                     "--max-lora-rank R --lora-target-modules all`.") from None
        served = str(info.get("model_path", ""))
        if _same_model(served, base):
            self.model_path = served
            return
        raise StudentServerError(f"student_eval_url: {self.url} serves {served!r}, but the student's base model is "
                                 f"{base!r}; its adapters would be applied to the wrong weights")

    def use_adapter(self, adapter_dir: str | None) -> str | None:
        """Load the adapter saved in `adapter_dir` (None: the base model) and unload the previous one.
        Returns the name requests pass as `lora_path`."""
        name = None if adapter_dir is None else "student-" + stable_hash(os.path.realpath(adapter_dir), 12)
        if name == self.loaded:
            return name
        if name is not None:
            self._post("/load_lora_adapter", {"lora_name": name, "lora_path": os.path.realpath(adapter_dir)})
        if self.loaded is not None:
            self._post("/unload_lora_adapter", {"lora_name": self.loaded})
        self.loaded = name
        return name

    def generate(self, ids: list[list[int]], adapter: str | None, max_new_tokens: int, stop: list[int]) -> list[str]:
        body = {"input_ids": ids, "sampling_params": {"max_new_tokens": max_new_tokens, "temperature": 0.0,
                                                       "stop_token_ids": stop, "skip_special_tokens": True}}
        if adapter is not None:
            body["lora_path"] = [adapter] * len(ids)
        answers = self._post("/generate", body)
        if isinstance(answers, dict):
            answers = [answers]
        if len(answers) != len(ids):
            raise StudentServerError(f"student_eval_url: /generate answered {len(answers)} outputs for {len(ids)} prompts")
        return [str(a["text"]).strip() for a in answers]

    def close(self) -> None:
        self.client.close()


def _same_model(served: str, base: str) -> bool:
    if not served:
        return False
    if Path(served).exists() and Path(base).exists():
        return os.path.realpath(served) == os.path.realpath(base)
    return served.rstrip("/") == base.rstrip("/")


def adapter_base(path: str) -> str:
    """The base model a saved student runs on: its adapter's base for a LoRA student, else itself."""
    config = Path(path, "adapter_config.json")
    return json.loads(config.read_text())["base_model_name_or_path"] if config.exists() else path


class ServedStudent:
    """The student saved at `path`, answering through the run's `StudentServer` (see module doc)."""

    def __init__(self, server: StudentServer, path: str, max_new_tokens: int, batch_size: int = 64):
        from transformers import AutoTokenizer, GenerationConfig

        self.server, self.path, self.batch_size = server, path, batch_size
        self.adapter_dir = path if Path(path, "adapter_config.json").exists() else None
        base = adapter_base(path)
        if self.adapter_dir is None and not _same_model(server.model_path or "", path):
            raise StudentServerError(f"student_eval_url: the student at {path} is not a LoRA adapter of the served "
                                     f"model {server.model_path!r} (set finetune=lora)")
        meta = json.loads(Path(path, STUDENT_META).read_text()) if Path(path, STUDENT_META).exists() else {}
        self.tokenizer = AutoTokenizer.from_pretrained(path if Path(path, "tokenizer_config.json").exists() else base)
        default_format = "chat" if getattr(self.tokenizer, "chat_template", None) else "plain"
        self.prompt_format = meta.get("prompt_format", default_format)
        self.max_new_tokens = max_new_tokens
        try:
            configured = GenerationConfig.from_pretrained(base).eos_token_id
        except OSError:
            configured = None
        self.stop = stop_ids(self.tokenizer, configured)

    def predict(self, prompts: Sequence[str]) -> list[str]:
        if not prompts:
            return []
        adapter = self.server.use_adapter(self.adapter_dir)
        ids = prompt_ids(self.tokenizer, self.prompt_format, prompts)
        answers: list[str] = []
        for start in range(0, len(ids), self.batch_size):
            answers += self.server.generate(ids[start:start + self.batch_size], adapter, self.max_new_tokens, self.stop)
        return answers
