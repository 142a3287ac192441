"""The LLM teacher's client: an OpenAI-compatible server (SGLang) through langchain-openai's ChatOpenAI.

One `TeacherClient.ask(role, messages, schema)` call returns a validated pydantic object:

  * structured output: `response_format` json_schema; a server that rejects json_schema (HTTP 400) is
    asked with json_object plus the schema in the prompt from then on; any answer is validated against
    the schema, and an answer that is not valid JSON for it (or was cut off) gets a repair prompt;
  * retries with exponential backoff on HTTP 429, 5xx, timeouts and refused connections;
  * bounded time: a request ends at its wall-clock deadline (`teacher_timeout_s`) however slowly the
    server trickles its answer (httpx's timeouts are per read; here every socket read and write of a
    request gets what is left of its deadline), and a call (retries and repairs together) ends once its
    budget (`call_budget_s`: at most CALL_BUDGET_TIMEOUTS request timeouts) is spent;
  * health: a node whose calls fail too often (`max_teacher_failure_rate`, counted from
    MIN_CALLS_FOR_FAILURE_RATE calls on) stops with `TeacherFailing` (see `check_teacher_health`);
  * a response cache in the run directory (SQLite, keyed by a hash of model, messages, schema,
    temperature and seed), so a resumed run never pays twice for a call it already made;
  * backpressure: the requests in flight follow an adaptive limit within `teacher_concurrency`
    (teachgraph.teachers.backpressure: a start-up ramp, additive increase, multiplicative decrease when
    latency says the server is queueing); every decrease and recovery is a `teacher_concurrency` event;
  * counters (calls, requests, cache hits, prompt/completion tokens, retries, repairs, fallbacks, errors
    by kind, failed calls by kind, concurrency decreases, overloaded requests) for the run's summary.

`TeacherClient.map` runs calls concurrently on a bounded thread pool, so that SGLang can batch them.
"""

from __future__ import annotations

import contextlib
import contextvars
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
from typing import Any, Callable, Iterable, Iterator, TypeVar

import httpcore
import httpx
import openai
from langchain_core.messages import BaseMessage, SystemMessage
from pydantic import BaseModel, ValidationError

from teachgraph.teachers import prompts
from teachgraph.teachers.backpressure import AdaptiveLimit
from teachgraph.domains.base import stable_hash

T = TypeVar("T", bound=BaseModel)

MAX_REPAIRS = 2          # repair prompts after an unusable answer, per call
BACKOFF_BASE_S = 0.25    # first retry waits this long, then twice as long each time ...
BACKOFF_MAX_S = 8.0      # ... up to this
CALL_BUDGET_TIMEOUTS = 3  # a call's time budget: at most this many request timeouts (retries, repairs included)
MIN_CALLS_FOR_FAILURE_RATE = 8  # the failure rate of fewer calls never stops a run (one early timeout must not)
DEFAULT_MAX_FAILURE_RATE = 0.5  # TeachContext.max_teacher_failure_rate's default, for callers without a context
# failures: calls without a usable answer (any reason); valid_first_try / valid_repaired: calls whose answer
# the server gave valid at once / only after one or more repair prompts (cache hits are neither)
COUNTERS = ("calls", "requests", "cache_hits", "prompt_tokens", "completion_tokens", "retries", "repairs",
            "format_fallbacks", "fallbacks", "failures",  # failures: calls without a usable answer (any reason)
            "valid_first_try", "valid_repaired",  # answers valid as first written, or after a repair prompt
            "concurrency_decreases", "overloaded_requests")  # backpressure (teachgraph.teachers.backpressure)

# servers found to reject json_schema, per (url, model): remembered for the whole process
_JSON_MODE_ONLY: set[tuple[str, str]] = set()


class TeacherCallFailed(RuntimeError):
    """A call gave no usable answer after all retries and repairs (the agent falls back)."""

    def __init__(self, message: str = "", kind: str = "other"):
        super().__init__(message)
        self.kind = kind  # why: timeout, connection, http_5xx, ..., or invalid_json / schema / truncated_answer


class TeacherFailing(RuntimeError):
    """Too many of a node's (or a cycle's) teacher calls failed: the run stops at its last checkpoint,
    and `teachgraph resume RUN_DIR` re-runs the node once the teacher answers again. Never caught by the
    agents (they catch TeacherCallFailed only); the CLI reports it as one line and exits 2."""


class TeacherUnavailable(RuntimeError):
    """The teacher server cannot be reached at all."""


def call_budget_s(timeout_s: float, max_retries: int) -> float:
    """The most one call may take, retries and repair prompts included: min(1 + max_retries,
    CALL_BUDGET_TIMEOUTS) request timeouts (360 s with the defaults, 120 s x 3)."""
    return float(timeout_s) * min(1 + int(max_retries), CALL_BUDGET_TIMEOUTS)


# -- a wall-clock deadline per request ----------------------------------------------------------------------
# httpx's timeouts bound each socket operation, not a request: a server that sends its headers and then one
# byte a second holds a request for as long as its Content-Length says. Requests run synchronously on the
# calling thread, so the deadline of the request in progress lives in a thread-local, and the network
# backend below gives every connect, read and write only what is left of it (an httpcore timeout once
# nothing is left: openai turns it into APITimeoutError, kind "timeout", and the connection is closed).
_DEADLINE = threading.local()


@contextlib.contextmanager
def request_deadline(at: float | None) -> Iterator[None]:
    """Requests made on this thread inside the block end by time.monotonic() == at."""
    previous = getattr(_DEADLINE, "at", None)
    _DEADLINE.at = at
    try:
        yield
    finally:
        _DEADLINE.at = previous


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    at = getattr(_DEADLINE, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the request's deadline passed (teacher_timeout_s)")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend):
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_tcp(host, port, _left(timeout, httpcore.ConnectTimeout),
                                                       local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, _left(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport, whose connections honour `request_deadline`."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        pool = self._pool  # httpcore.ConnectionPool (or HTTPProxy); connections are made lazily with its backend
        pool._network_backend = _DeadlineBackend(pool._network_backend)


@lru_cache(maxsize=16)
def teacher_http_client(url: str) -> httpx.Client:
    """One pooled HTTP client per teacher URL for the whole process (the nodes' clients share it)."""
    import urllib.request

    parsed = httpx.URL(url)
    proxy = None if urllib.request.proxy_bypass(parsed.host or "") else urllib.request.getproxies().get(parsed.scheme)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
    return httpx.Client(transport=DeadlineTransport(limits=limits, proxy=proxy), follow_redirects=True)


# -- teacher health ---------------------------------------------------------------------------------------------
def failure_summary(usage: dict[str, Any]) -> str | None:
    """'12 of 12 calls failed (timeout 12); 12 fallbacks to the offline agents', or None if nothing failed
    or fell back."""
    calls, failed, fallbacks = (int(usage.get(k) or 0) for k in ("calls", "failures", "fallbacks"))
    if not failed and not fallbacks:
        return None
    kinds = ", ".join(f"{k} {v}" for k, v in sorted((usage.get("failed") or {}).items(), key=lambda kv: (-kv[1], kv[0])))
    text = f"{failed} of {calls} calls failed" + (f" ({kinds})" if kinds else "")
    if fallbacks:
        text += f"; {fallbacks} fallback{'s' if fallbacks != 1 else ''} to the offline agents"
    return text


def is_failing(usage: dict[str, Any], max_failure_rate: float, min_calls: int = MIN_CALLS_FOR_FAILURE_RATE) -> bool:
    """More than max_failure_rate of at least min_calls calls failed (a rate of 1 never fails)."""
    calls, failed = int(usage.get("calls") or 0), int(usage.get("failures") or 0)
    return calls >= min_calls and failed > max_failure_rate * calls


def failing_message(scope: str, usage: dict[str, Any], max_failure_rate: float, url: str | None,
                    run_dir: str | None) -> str:
    where = f" at {url}" if url else ""
    resume = f"`teachgraph resume {run_dir}`" if run_dir else "`teachgraph resume RUN_DIR`"
    return (f"teacher failing in {scope}: {failure_summary(usage) or 'calls failed'}; more than "
            f"max_teacher_failure_rate={max_failure_rate:g} allows. Check the teacher server{where}; the run "
            f"stopped at its last checkpoint: once the teacher answers again, continue it with {resume}.")


def _run_context() -> Any:
    """The context of the graph run in progress (None outside one)."""
    try:
        from langgraph.runtime import get_runtime

        return get_runtime().context
    except Exception:  # noqa: BLE001 - outside a graph run there is none
        return None


def check_teacher_health(node: str, usage: dict[str, Any], cycle_usage: dict[str, dict[str, Any]] | None = None,
                         run_dir: str | None = None, cycle: int | None = None,
                         max_failure_rate: float | None = None) -> str | None:
    """What every node that called the teacher passes its usage through (nodes.common.Step.done):
    a warning event on the console when calls failed or fell back, and TeacherFailing when more than
    max_failure_rate (the run's max_teacher_failure_rate) of the node's calls, or of the cycle's so far
    (cycle_usage: usage by node, this node's included), failed, and this node's calls failed too.
    Returns the warning, if any."""
    from teachgraph.nodes.common import emit
    from teachgraph.teachers.usage import add_usage

    ctx = _run_context()
    get = (lambda k: ctx.get(k)) if isinstance(ctx, dict) else (lambda k: getattr(ctx, k, None))
    warning = failure_summary(usage)
    if warning:
        emit({"type": "warning", "node": node, "cycle": cycle, "message": f"teacher: {warning}"})
    if max_failure_rate is None:
        max_failure_rate = get("max_teacher_failure_rate")
        max_failure_rate = DEFAULT_MAX_FAILURE_RATE if max_failure_rate is None else float(max_failure_rate)
    run_dir = run_dir or get("run_dir")
    cycle_total: dict[str, Any] = {}
    for one in (cycle_usage or {node: usage}).values():
        cycle_total = add_usage(cycle_total, one)
    if not usage.get("failures"):  # earlier nodes' failures alone never stop this one (a resumed node that
        return warning                # succeeds must pass, whatever the cycle's checkpointed numbers say)
    for scope, counted in ((f"node {node}", usage), (f"the cycle so far (up to node {node})", cycle_total)):
        if is_failing(counted, max_failure_rate):
            raise TeacherFailing(failing_message(scope, counted, max_failure_rate, get("teacher_url"), run_dir))
    return warning


def check_reachable(url: str, api_key: str = "EMPTY", timeout: float = 5.0) -> list[str]:
    """GET {url}/models; returns the served model ids, or raises TeacherUnavailable naming the URL."""
    request = urllib.request.Request(url.rstrip("/") + "/models", headers={"Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read().decode("utf-8") or "{}")
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise TeacherUnavailable(f"the teacher server at {url} is unreachable ({reason}); start one with "
                                 "`teachgraph serve-teacher --model-path MODEL` (GPU, SGLang) or `teachgraph serve-teacher "
                                 "--backend llama-cpp --model FILE.gguf` (CPU), or check --teacher-url") from None
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
        self.timeout_s = float(ctx.teacher_timeout_s)
        self.call_budget_s = call_budget_s(ctx.teacher_timeout_s, ctx.teacher_max_retries)
        rate = getattr(ctx, "max_teacher_failure_rate", None)
        self.max_failure_rate = DEFAULT_MAX_FAILURE_RATE if rate is None else float(rate)
        self.run_dir = getattr(ctx, "run_dir", None)
        self.cache = ResponseCache(cache_path) if cache_path else None
        if llm is None:
            from langchain_openai import ChatOpenAI

            llm = ChatOpenAI(base_url=ctx.teacher_url, model=ctx.teacher_model, api_key=ctx.api_key(),
                             temperature=ctx.teacher_temperature, seed=ctx.teacher_seed,
                             # without a limit a small model under a JSON grammar can fill the whole context
                             max_completion_tokens=getattr(ctx, "teacher_max_completion_tokens", None),
                             timeout=ctx.teacher_timeout_s, max_retries=0,  # retries are ours, and counted
                             http_client=teacher_http_client(ctx.teacher_url))  # honours request_deadline
        self.llm = llm
        self._lock = threading.Lock()
        self.counts: Counter = Counter()
        self.errors: Counter = Counter()
        self.failed: Counter = Counter()     # calls without a usable answer, by why
        self.tripped: str | None = None      # the TeacherFailing message once too many calls failed
        self.limiter = AdaptiveLimit(self.concurrency, on_change=self._concurrency_changed)
        self._limiter_seen = (0, 0)          # (decreases, overloaded) already counted

    def _concurrency_changed(self, event: dict[str, Any]) -> None:
        from teachgraph.nodes.common import emit

        emit({"type": "teacher_concurrency", **event})

    # -- accounting ---------------------------------------------------------------------------
    def count(self, **amounts: int) -> None:
        with self._lock:
            self.counts.update({k: v for k, v in amounts.items() if v})

    def _error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def _take_limiter_counts(self) -> None:
        decreases, overloaded = self.limiter.decreases, self.limiter.overloaded
        seen_decreases, seen_overloaded = self._limiter_seen
        self.counts.update({"concurrency_decreases": decreases - seen_decreases,
                            "overloaded_requests": overloaded - seen_overloaded})
        self._limiter_seen = (decreases, overloaded)

    def usage(self) -> dict[str, Any]:
        with self._lock:
            self._take_limiter_counts()
            return self._usage()

    def take_usage(self) -> dict[str, Any]:
        """usage() since the last take_usage(), then count afresh: each node reads (and is judged by) its
        own share of the run's one client."""
        with self._lock:
            self._take_limiter_counts()
            out = self._usage()
            self.counts.clear()
            self.errors.clear()
            self.failed.clear()
            self.tripped = None
        return out

    def _usage(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: int(self.counts.get(k, 0)) for k in COUNTERS}
        out.update({k: int(v) for k, v in sorted(self.counts.items()) if k not in out})
        out["errors"] = dict(sorted(self.errors.items()))
        out["failed"] = dict(sorted(self.failed.items()))
        return out

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def _check_health(self, role: str) -> None:
        """Past the failure rate (at a call's start or failure), stop the node: TeacherFailing, now and for
        every later call of this client."""
        usage = self.usage()
        with self._lock:
            if self.tripped is None and is_failing(usage, self.max_failure_rate):
                self.tripped = failing_message(f"the node making {role} calls", usage,
                                               self.max_failure_rate, self.url, self.run_dir)
        if self.tripped is not None:
            raise TeacherFailing(self.tripped)

    def _call_failed(self, role: str, kind: str) -> None:
        """Count a call without a usable answer, then check the node's health."""
        with self._lock:
            self.counts["failures"] += 1
            self.failed[kind] += 1
        self._check_health(role)

    # -- one call -----------------------------------------------------------------------------
    @property
    def json_mode_only(self) -> bool:
        return (self.url, self.model) in _JSON_MODE_ONLY

    def _response_format(self, schema: type[BaseModel]) -> dict[str, Any]:
        if self.json_mode_only:
            return {"type": "json_object"}
        return {"type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": schema_json(schema), "strict": False}}

    def _send(self, conversation: list[BaseMessage], schema: type[BaseModel], deadline: float,
              role: str = "unknown") -> tuple[str, bool]:
        """One answer (content, truncated), with retries on transient errors and the json_mode fallback;
        each request ends by its own deadline (timeout_s) and by the call's (`deadline`, monotonic)."""
        attempt, kind = 0, "timeout"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TeacherCallFailed(f"teacher call gave up after {attempt} retries: its budget of "
                                        f"{self.call_budget_s:g} s is spent ({kind})", kind)
            messages = conversation
            if self.json_mode_only:  # the schema goes into the prompt instead
                system = conversation[0]
                messages = [SystemMessage(content=str(system.content)
                                          + prompts.json_mode_instructions(schema_json(schema))),
                            *conversation[1:]]
            ticket = self.limiter.acquire(role, deadline)
            if ticket is None:
                raise TeacherCallFailed(f"teacher call gave up after {attempt} retries: its budget of "
                                        f"{self.call_budget_s:g} s was spent waiting for a free slot "
                                        f"(the server is overloaded)", "timeout")
            self.count(requests=1)
            try:
                with request_deadline(time.monotonic() + min(self.timeout_s, deadline - time.monotonic())):
                    message = self.llm.invoke(messages, response_format=self._response_format(schema))
                self.limiter.release(ticket)
                self._count_tokens(getattr(message, "usage_metadata", None))
                return str(message.content or ""), False
            except Exception as error:  # noqa: BLE001 - classified below; unknown kinds are re-raised
                kind = classify(error)
                self.limiter.release(ticket, None if kind == "truncated" else kind)
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
                    raise TeacherCallFailed(f"teacher request failed ({kind}): {error}", kind) from error
                if attempt >= self.max_retries:
                    raise TeacherCallFailed(f"teacher request failed after {attempt} retries ({kind}): {error}",
                                            kind) from error
                pause = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** attempt)
                if self.tripped is not None:
                    raise TeacherCallFailed(f"teacher request failed ({kind}); not retried: the teacher is failing",
                                            kind) from error
                if time.monotonic() + pause >= deadline:
                    raise TeacherCallFailed(f"teacher request failed after {attempt} retries ({kind}); no time left "
                                            f"in the call's budget of {self.call_budget_s:g} s", kind) from error
                attempt += 1
                self.count(retries=1)
                time.sleep(pause)

    def _count_tokens(self, usage: dict[str, Any] | None) -> None:
        if usage:
            self.count(prompt_tokens=int(usage.get("input_tokens") or 0),
                       completion_tokens=int(usage.get("output_tokens") or 0))

    def ask(self, role: str, messages: list[BaseMessage], schema: type[T]) -> T:
        """A validated answer to one agent call (from the cache when this exact call was made before).
        Raises TeacherCallFailed when no usable answer came after retries and repairs (or within the
        call's budget), and TeacherFailing once too many of this client's calls failed."""
        if self.tripped is not None:  # the node stops: calls still queued fail at once
            raise TeacherFailing(self.tripped)
        self.count(calls=1)
        self._check_health(role)  # e.g. 5 failed calls, then this 8th one: more than half failed
        deadline = time.monotonic() + self.call_budget_s
        key = cache_key(self.model, messages, schema, self.temperature, self.seed)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.count(cache_hits=1)
                return schema.model_validate(hit)
        before = self.usage()
        conversation = messages
        for repair in range(MAX_REPAIRS + 1):
            try:
                content, truncated = self._send(conversation, schema, deadline, role)
            except TeacherCallFailed as error:
                self._call_failed(role, error.kind)
                raise
            try:
                if truncated:
                    raise ValueError("the answer was cut off (finish_reason=length); write a shorter answer")
                result = parse_json(content, schema)
            except ValidationError as error:
                problem, kind = f"the JSON does not match the schema: {error}", "schema"
            except ValueError as error:
                problem, kind = str(error), ("truncated_answer" if truncated else "invalid_json")
            else:
                self.count(**{"valid_first_try" if repair == 0 else "valid_repaired": 1})
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
        self._call_failed(role, kind)
        raise TeacherCallFailed(f"{role}: no valid answer after {MAX_REPAIRS} repairs ({problem[:300]})", kind)

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """fn over items on at most `concurrency` threads, results in order (the requests themselves are
        also bounded by the adaptive limit). Each item runs in a copy of the caller's context, so that events
        from the threads reach the run's stream."""
        if len(items) <= 1 or self.concurrency <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items)), thread_name_prefix="teacher") as pool:
            futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
            try:
                return [future.result() for future in futures]
            except BaseException:  # e.g. TeacherFailing: what has not started yet never starts
                for future in futures:
                    future.cancel()
                raise
