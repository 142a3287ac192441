"""Backpressure: the teacher client's in-flight limit follows the server's latency (a real HTTP server that
queues like SGLang when overloaded, tests/fake_teacher_server.py with `slots`)."""

from __future__ import annotations

import pytest

from teachgraph.graph.context import make_context
from teachgraph.teachers import prompts
from teachgraph.teachers.backpressure import AdaptiveLimit
from teachgraph.teachers.llm_client import TeacherClient
from teachgraph.teachers.schemas import PlanResponse
from teachgraph.domains import get_domain


def _burst(client: TeacherClient, n: int) -> None:
    messages = prompts.messages("planner", get_domain("synthetic"), {"budget": 5, "skills": [{"skill": "a"}]}, budget=5)
    answers = client.map(lambda _: client.ask("planner", messages, PlanResponse), list(range(n)))
    assert len(answers) == n and all(isinstance(a, PlanResponse) for a in answers)


@pytest.mark.timeout(120)
def test_the_in_flight_limit_drops_when_the_server_queues_and_recovers(tmp_path, monkeypatch):
    import teachgraph.nodes.common
    from tests.fake_teacher_server import FakeTeacher

    events: list[dict] = []
    monkeypatch.setattr(teachgraph.nodes.common, "emit", events.append)
    with FakeTeacher("--latency", "0.2") as server:  # 0.2 s: a busy machine's jitter is no overload
        ctx = make_context(teacher="llm", teacher_url=server.url, teacher_model=server.model, run_dir=str(tmp_path),
                           teacher_concurrency=16, teacher_max_retries=0)
        client = TeacherClient(ctx, None)
        limiter = client.limiter
        # a healthy server: the ramp takes the limit from 8 to teacher_concurrency, and no further
        assert limiter.slots == 8
        _burst(client, 64)
        assert max(limit for _, limit in limiter.history) == 16, limiter.history
        assert server.stats()["peak_in_flight"] == 16
        client.take_usage()

        # overloaded: 2 requests worked on at once, the rest queue (latency grows with the queue, no 429)
        server.control(slots=2, reset_stats=True)
        changes, seen, decreased = len(limiter.history), len(events), limiter.decreases
        _burst(client, 100)
        during = [limit for _, limit in limiter.history[changes:]]
        assert limiter.decreases >= decreased + 2 and min(during) <= 4, limiter.history
        assert limiter.slots <= 6, limiter.history  # it stays down while the server queues
        usage = client.take_usage()
        assert usage["concurrency_decreases"] == limiter.decreases - decreased, usage
        assert usage["overloaded_requests"] >= 2, usage
        decreases = [e for e in events[seen:] if e["type"] == "teacher_concurrency" and e["direction"] == "decrease"]
        assert len(decreases) == usage["concurrency_decreases"], events
        assert decreases[0]["limit"] == decreases[0]["previous"] // 2 and "baseline" in decreases[0]["reason"], decreases

        # the server has room again: additive increase back up to teacher_concurrency
        server.control(slots=None, reset_stats=True)
        changes, seen = len(limiter.history), len(events)
        _burst(client, 300)
        assert max(limit for _, limit in limiter.history[changes:]) == 16, limiter.history
        assert [e for e in events[seen:] if e["direction"] == "recovered"][-1]["limit"] == 16
        assert server.stats()["peak_in_flight"] == 16
        client.close()


def test_a_timeout_or_429_halves_the_limit_once_per_round_trip():
    now = [0.0]
    limiter = AdaptiveLimit(16, initial=16, clock=lambda: now[0])
    tickets = [limiter.acquire("generator") for _ in range(16)]
    assert limiter.acquire("generator", deadline=0.0) is None  # full: no slot before the deadline
    now[0] = 1.0
    limiter.release(tickets.pop(), None)        # answered in 1 s: the baseline
    limiter.release(tickets.pop(), "http_429")  # overload: 16 -> 8
    assert limiter.slots == 8 and limiter.decreases == 1
    limiter.release(tickets.pop(), "http_429")  # started before the decrease: no second halving
    assert limiter.slots == 8 and limiter.decreases == 1
    limiter.release(tickets.pop(), "http_5xx")  # a server error is no latency signal
    limiter.release(tickets.pop(), "connection")
    assert limiter.decreases == 1
    while tickets:
        limiter.release(tickets.pop(), None)
    ticket = limiter.acquire("generator")
    now[0] = 4.0
    limiter.release(ticket, "timeout")  # timed out after 3 s, 3 x the baseline: overload
    assert limiter.slots == 4 and limiter.decreases == 2
    fresh = AdaptiveLimit(4, initial=4, clock=lambda: now[0])
    ticket = fresh.acquire("generator")
    now[0] = 100.0
    fresh.release(ticket, "timeout")  # no baseline yet (a server that hangs from the start): not a latency signal
    assert fresh.slots == 4 and fresh.decreases == 0


def test_one_slow_answer_is_no_overload_but_a_queue_is():
    now = [0.0]
    limiter = AdaptiveLimit(16, initial=16, clock=lambda: now[0])

    def answered(seconds: float) -> None:
        ticket = limiter.acquire("planner")
        now[0] += seconds
        limiter.release(ticket, None)

    for _ in range(5):
        answered(1.0)           # the baseline: 1 s
    answered(2.5)               # one slow answer (a busy machine): the moving average stays under 2 s
    assert limiter.decreases == 0 and limiter.slots == 16
    answered(4.0)               # the server queues: the average (2.2 s) passes 2 x the baseline
    assert limiter.decreases == 1 and limiter.slots == 8
