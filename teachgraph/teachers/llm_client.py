"""The LLM teacher's client: an OpenAI-compatible server (SGLang) through langchain-openai's ChatOpenAI.

One `TeacherClient.ask(role, messages, schema)` call returns a validated pydantic object:

  * structured output: `response_format` json_schema; a server that rejects json_schema (HTTP 400) is
    asked with json_object plus the schema in the prompt from then on; any answer is validated against
    the schema, and an answer that is not valid JSON for it (or was cut off) gets a repair prompt;
  * retries with exponential backoff on HTTP 429, 5xx, timeouts and refused connections;
  * a response cache in the run directory (SQLite, keyed by a hash of model, messages, schema,
    temperature and seed), so a resumed run never pays twice for a call it already made;
  * counters (calls, requests, cache hits, prompt/completion tokens, retries, repairs, fallbacks, errors
    by kind) for the run's summary.

`TeacherClient.map` runs calls concurrently on a bounded thread pool, so that SGLang can batch them.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import openai
from langchain_core.messages import BaseMessage, SystemMessage
from pydantic import BaseModel, ValidationError

from teachgraph.teachers import prompts
from teachgraph.domains.base import stable_hash

T = TypeVar("T", bound=BaseModel)

MAX_REPAIRS = 2          # repair prompts after an unusable answer, per call
BACKOFF_BASE_S = 0.25    # first retry waits this long, then twice as long each time ...
BACKOFF_MAX_S = 8.0      # ... up to this
COUNTERS = ("calls", "requests", "cache_hits", "prompt_tokens", "completion_tokens", "retries", "repairs",
            "format_fallbacks", "fallbacks", "failures")

# servers found to reject json_schema, per (url, model): remembered for the whole process
_JSON_MODE_ONLY: set[tuple[str, str]] = set()


class TeacherCallFailed(RuntimeError):
    """A call gave no usable answer after all retries and repairs (the agent falls back)."""


class TeacherUnavailable(RuntimeError):
    """The teacher server cannot be reached at all."""


def check_reachable(url: str, api_key: str = "EMPTY", timeout: float = 5.0) -> list[str]:
    """GET {url}/models; returns the served model ids, or raises TeacherUnavailable naming the URL."""
    request = urllib.request.Request(url.rstrip("/") + "/models", headers={"Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read().decode("utf-8") or "{}")
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise TeacherUnavailable(f"the teacher server at {url} is unreachable ({reason}); start one with "
                                 "`teachgraph serve-teacher --model-path MODEL` or check --teacher-url") from None
    return [m.get("id") for m in body.get("data", []) if isinstance(m, dict)]


def _chain(error: BaseException) -> Iterable[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def classify(error: BaseException) -> str:
    """What went wrong with a request: timeout, connection, http_429, http_5xx, truncated,
    format_rejected (the server does not take json_schema), or http_<code> (not retried)."""
    for e in _chain(error):
        if isinstance(e, openai.LengthFinishReasonError):
            return "truncated"
        if isinstance(e, openai.APITimeoutError):
            return "timeout"
        if isinstance(e, openai.APIConnectionError):
            return "connection"
        if isinstance(e, openai.APIStatusError):
            if e.status_code == 429:
                return "http_429"
            if e.status_code >= 500:
                return "http_5xx"
            text = str(e).lower()
            if e.status_code == 400 and ("json_schema" in text or "response_format" in text):
                return "format_rejected"
            return f"http_{e.status_code}"
    return "other"


RETRYABLE = {"timeout", "connection", "http_429", "http_5xx"}


def parse_json(content: str, schema: type[T]) -> T:
    """Validate an answer against a schema; tolerates code fences and prose around one JSON object.
    Raises ValueError (not JSON) or pydantic.ValidationError (JSON, but not the schema's)."""
    text = (content or "").strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            raise ValueError(f"not JSON: {text[:200]!r}") from None
        try:
            data = json.loads(text[start:end + 1])
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON ({error})") from None
    return schema.model_validate(data)


class ResponseCache:
    """Validated answers by request key, in one SQLite file (safe across threads and processes)."""

    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, role TEXT, "
                               "value TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER, created REAL)")
            self._conn.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, role: str, value: dict[str, Any], prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                               (key, role, json.dumps(value, ensure_ascii=False), prompt_tokens, completion_tokens,
                                time.time()))
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def cache_summary(path: str | Path) -> dict[str, Any] | None:
    """What a response cache file holds, by role (None when there is no cache file)."""
    if not Path(path).exists():
        return None
    with sqlite3.connect(str(path)) as conn:
        rows = conn.execute("SELECT role, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) FROM responses "
                            "GROUP BY role").fetchall()
    return {"path": str(path), "entries": sum(r[1] for r in rows),
            "by_role": {r[0]: {"entries": r[1], "prompt_tokens": r[2] or 0, "completion_tokens": r[3] or 0}
                        for r in rows}}


@lru_cache(maxsize=64)
def schema_json(schema: type[BaseModel]) -> dict[str, Any]:
    return schema.model_json_schema()


def cache_key(model: str, messages: list[BaseMessage], schema: type[BaseModel], temperature: float,
              seed: int | None) -> str:
    return stable_hash({"model": model, "messages": [[m.type, m.content] for m in messages],
                        "schema": schema_json(schema), "temperature": temperature, "seed": seed}, 32)


class TeacherClient:
    """One per run: the agents of a teacher share it (and its counters)."""

    def __init__(self, ctx: Any, cache_path: str | Path | None = None, llm: Any = None):
        self.url, self.model = ctx.teacher_url, ctx.teacher_model
        self.temperature, self.seed = ctx.teacher_temperature, ctx.teacher_seed
        self.max_retries, self.concurrency = ctx.teacher_max_retries, ctx.teacher_concurrency
        self.cache = ResponseCache(cache_path) if cache_path else None
        if llm is None:
            from langchain_openai import ChatOpenAI

            llm = ChatOpenAI(base_url=ctx.teacher_url, model=ctx.teacher_model, api_key=ctx.api_key(),
                             temperature=ctx.teacher_temperature, seed=ctx.teacher_seed,
                             timeout=ctx.teacher_timeout_s, max_retries=0)  # retries are ours, and counted
        self.llm = llm
        self._lock = threading.Lock()
        self.counts: Counter = Counter()
        self.errors: Counter = Counter()

    # -- accounting ---------------------------------------------------------------------------
    def count(self, **amounts: int) -> None:
        with self._lock:
            self.counts.update({k: v for k, v in amounts.items() if v})

    def _error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def usage(self) -> dict[str, Any]:
        with self._lock:
            return self._usage()

    def take_usage(self) -> dict[str, Any]:
        """usage() since the last take_usage(), then count afresh (each node reads its own share)."""
        with self._lock:
            out = self._usage()
            self.counts.clear()
            self.errors.clear()
        return out

    def _usage(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: int(self.counts.get(k, 0)) for k in COUNTERS}
        out.update({k: int(v) for k, v in sorted(self.counts.items()) if k not in out})
        out["errors"] = dict(sorted(self.errors.items()))
        return out

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    # -- one call -----------------------------------------------------------------------------
    @property
    def json_mode_only(self) -> bool:
        return (self.url, self.model) in _JSON_MODE_ONLY

    def _response_format(self, schema: type[BaseModel]) -> dict[str, Any]:
        if self.json_mode_only:
            return {"type": "json_object"}
        return {"type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": schema_json(schema), "strict": False}}

    def _send(self, conversation: list[BaseMessage], schema: type[BaseModel]) -> tuple[str, bool]:
        """One answer (content, truncated), with retries on transient errors and the json_mode fallback."""
        attempt = 0
        while True:
            messages = conversation
            if self.json_mode_only:  # the schema goes into the prompt instead
                system = conversation[0]
                messages = [SystemMessage(content=str(system.content)
                                          + prompts.json_mode_instructions(schema_json(schema))),
                            *conversation[1:]]
            self.count(requests=1)
            try:
                message = self.llm.invoke(messages, response_format=self._response_format(schema))
                self._count_tokens(getattr(message, "usage_metadata", None))
                return str(message.content or ""), False
            except Exception as error:  # noqa: BLE001 - classified below; unknown kinds are re-raised
                kind = classify(error)
                if kind == "truncated":
                    completion = next(e for e in _chain(error) if isinstance(e, openai.LengthFinishReasonError)).completion
                    usage = completion.usage
                    if usage is not None:
                        self.count(prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0)
                    self._error("truncated")
                    return str(completion.choices[0].message.content or ""), True
                if kind == "format_rejected" and not self.json_mode_only:
                    _JSON_MODE_ONLY.add((self.url, self.model))
                    self._error(kind)
                    self.count(format_fallbacks=1)
                    continue
                self._error(kind)
                if kind not in RETRYABLE:
                    raise TeacherCallFailed(f"teacher request failed ({kind}): {error}") from error
                if attempt >= self.max_retries:
                    raise TeacherCallFailed(f"teacher request failed after {attempt} retries ({kind}): {error}") from error
                attempt += 1
                self.count(retries=1)
                time.sleep(min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))

    def _count_tokens(self, usage: dict[str, Any] | None) -> None:
        if usage:
            self.count(prompt_tokens=int(usage.get("input_tokens") or 0),
                       completion_tokens=int(usage.get("output_tokens") or 0))

    def ask(self, role: str, messages: list[BaseMessage], schema: type[T]) -> T:
        """A validated answer to one agent call (from the cache when this exact call was made before).
        Raises TeacherCallFailed when no usable answer came after retries and repairs."""
        self.count(calls=1)
        key = cache_key(self.model, messages, schema, self.temperature, self.seed)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.count(cache_hits=1)
                return schema.model_validate(hit)
        before = self.usage()
        conversation = messages
        for repair in range(MAX_REPAIRS + 1):
            content, truncated = self._send(conversation, schema)
            try:
                if truncated:
                    raise ValueError("the answer was cut off (finish_reason=length); write a shorter answer")
                result = parse_json(content, schema)
            except ValidationError as error:
                problem, kind = f"the JSON does not match the schema: {error}", "schema"
            except ValueError as error:
                problem, kind = str(error), ("truncated_answer" if truncated else "invalid_json")
            else:
                if self.cache is not None:
                    after = self.usage()
                    self.cache.put(key, role, result.model_dump(mode="json"),
                                   after["prompt_tokens"] - before["prompt_tokens"],
                                   after["completion_tokens"] - before["completion_tokens"])
                return result
            if kind != "truncated_answer":
                self._error(kind)
            if repair == MAX_REPAIRS:
                break
            self.count(repairs=1)
            conversation = prompts.repair_messages(messages, content, problem)
        self.count(failures=1)
        raise TeacherCallFailed(f"{role}: no valid answer after {MAX_REPAIRS} repairs ({problem[:300]})")

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """fn over items on at most `concurrency` threads, results in order."""
        if len(items) <= 1 or self.concurrency <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items)), thread_name_prefix="teacher") as pool:
            return list(pool.map(fn, items))
