"""Backpressure from a self-hosted teacher: an adaptive limit on the requests in flight.

SGLang (and llama.cpp, vLLM) do not answer HTTP 429 when overloaded: they queue, and every request gets
slower. So the client reads overload from latency, the way TCP reads congestion from delay and loss:

  * a start-up ramp (slow start): the limit starts at INITIAL_LIMIT (like TCP's initial window) and grows
    by one per answered request, i.e. it doubles every round trip, until the first sign of overload;
  * additive increase: after that, +1 per round trip (+1/limit per answered request);
  * multiplicative decrease: a smoothed latency (an exponential moving average, SMOOTHING, so that one
    slow answer on a busy machine is no overload) above LATENCY_TOLERANCE x the baseline (and above it by
    more than LATENCY_SLACK_S), a request that timed out after that long, or an HTTP 429 halves the limit, at most
    once per round trip (only requests started after the last decrease can decrease it again). Other
    failures (5xx, refused connections, a server that hangs from the start) are no latency signal: the
    retries and the failure rate (llm_client) deal with them;
  * the baseline is the fastest of the last BASELINE_WINDOW latencies of the same kind of request (per
    agent role: a generator's answer is longer than a planner's), so it follows the server when answers
    get longer and forgets congestion once the limit has come down.

The limit stays within [1, max_limit] (`teacher_concurrency`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

LATENCY_TOLERANCE = 2.0   # slower than this many times the baseline: the server is queueing
LATENCY_SLACK_S = 0.1     # ... and by more than this (jitter on a 5 ms answer on a busy machine is no overload)
INITIAL_LIMIT = 8         # where the ramp starts (capped by max_limit)
DECREASE_FACTOR = 0.5     # multiplicative decrease
BASELINE_WINDOW = 32      # latencies per kind kept for the baseline
SMOOTHING = 0.3           # weight of a new latency in the moving average compared with the baseline


@dataclass
class Ticket:
    """One request holding a slot: when it started and under which decrease epoch."""
    kind: str
    started: float
    epoch: int


class AdaptiveLimit:
    """Slots for requests; `acquire` blocks while `in_flight >= int(limit)`."""

    def __init__(self, max_limit: int, initial: int = INITIAL_LIMIT, on_change: Callable[[dict[str, Any]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if max_limit < 1:
            raise ValueError("max_limit must be >= 1")
        self.max_limit = int(max_limit)
        self.limit = float(max(1, min(initial, self.max_limit)))
        self.ramping = True
        self.in_flight = 0
        self.peak_in_flight = 0
        self.decreases = 0
        self.overloaded = 0          # answered requests (or errors) that signalled overload
        self.epoch = 0               # bumped by every decrease
        self.history: list[tuple[float, int]] = [(clock(), int(self.limit))]  # (time, limit) at every change
        self._baselines: dict[str, deque[float]] = {}
        self._smoothed: dict[str, float] = {}
        self._cond = threading.Condition()
        self._on_change = on_change
        self._clock = clock

    @property
    def slots(self) -> int:
        return max(1, int(self.limit))

    def acquire(self, kind: str, deadline: float | None = None) -> Ticket | None:
        """A slot for one request (None if `deadline`, monotonic, passed first)."""
        with self._cond:
            while self.in_flight >= self.slots:
                wait = None if deadline is None else deadline - self._clock()
                if wait is not None and wait <= 0:
                    return None
                self._cond.wait(wait)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            return Ticket(kind, self._clock(), self.epoch)

    def release(self, ticket: Ticket, error_kind: str | None = None) -> None:
        """The request is over: answered (error_kind None) or failed with `error_kind`."""
        event = None
        with self._cond:
            self.in_flight -= 1
            latency = self._clock() - ticket.started
            before = self.slots
            reason = self._overload(ticket.kind, latency, error_kind)
            if reason is not None:
                self.overloaded += 1
                if ticket.epoch == self.epoch:  # one decrease per round trip
                    self.limit = max(1.0, self.limit * DECREASE_FACTOR)
                    self.ramping = False
                    self.epoch += 1
                    self.decreases += 1
                    event = {"direction": "decrease", "reason": reason}
            elif error_kind is None:
                self.limit = min(float(self.max_limit), self.limit + (1.0 if self.ramping else 1.0 / self.limit))
                if self.slots == self.max_limit and before < self.max_limit:
                    event = {"direction": "recovered", "reason": f"latency {latency:.3f} s"}
            if self.slots != before:
                self.history.append((self._clock(), self.slots))
            if event is not None:
                event.update(limit=self.slots, previous=before, max=self.max_limit, in_flight=self.in_flight)
            self._cond.notify_all()
        if event is not None and self._on_change is not None:
            self._on_change(event)

    def _overload(self, kind: str, latency: float, error_kind: str | None) -> str | None:
        """Why this request says the server is overloaded (None if it does not); records its latency."""
        if error_kind == "http_429":
            return "HTTP 429"
        if error_kind not in (None, "timeout"):
            return None
        window = self._baselines.setdefault(kind, deque(maxlen=BASELINE_WINDOW))
        baseline = min(window) if window else None
        if error_kind is None:
            window.append(latency)
            before = self._smoothed.get(kind)
            latency = self._smoothed[kind] = latency if before is None else before + SMOOTHING * (latency - before)
        if baseline is not None and latency > LATENCY_TOLERANCE * baseline and latency - baseline > LATENCY_SLACK_S:
            what = "timed out after" if error_kind else "latency (moving average)"
            return f"{what} {latency:.3f} s > {LATENCY_TOLERANCE:g} x baseline {baseline:.3f} s"
        return None
