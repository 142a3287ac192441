"""LLM teacher pieces without a server: schemas and JSON repair, plan normalisation, organizer actions
and fallbacks, discovery fallbacks, generator top-ups/truncation, the client's cache and retries; and,
against the fake teacher server, requests bounded in time (a dripping and a silent server) and the
failure rate that stops a node (issue 12)."""

from __future__ import annotations

import socket
import time
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from teachgraph.teachers import prompts
from teachgraph.teachers.llm import LLMGenerator, LLMOrganizer, LLMPlanner, LLMSkillDiscoverer, normalize_plan, to_action
from teachgraph.teachers.llm_client import TeacherCallFailed, TeacherClient, cache_key, parse_json
from teachgraph.teachers.schemas import GeneratedBatch, OrganizerAction, PlanResponse, SkillLabels
from teachgraph.domains import get_domain
from teachgraph.graph.context import ConfigError, make_context


class StubClient:
    """Answers each role with a function of (messages, call number); counts like TeacherClient."""

    model = "stub-model"

    def __init__(self, **answers):
        self.answers, self.counts, self.asked = answers, Counter(), Counter()

    def ask(self, role, messages, schema):
        self.asked[role] += 1
        answer = self.answers[role]
        value = answer(messages, self.asked[role]) if callable(answer) else answer
        if isinstance(value, Exception):
            raise value
        try:
            return schema.model_validate(value)
        except ValidationError as error:  # as TeacherClient does once its repair prompts are spent
            raise TeacherCallFailed(f"{role}: {error}", "schema") from error

    def count(self, **amounts):
        self.counts.update(amounts)

    def map(self, fn, items):
        return [fn(i) for i in items]


def _input(messages) -> dict[str, Any]:
    import json

    text = messages[-1].content
    return json.loads(text.split("<input>")[1].split("</input>")[0])


# -- context ----------------------------------------------------------------------------------------------
def test_llm_teacher_needs_url_and_model():
    with pytest.raises(ConfigError, match="teacher_url"):
        make_context(teacher="llm", teacher_model="m")
    with pytest.raises(ConfigError, match="teacher_model"):
        make_context(teacher="llm", teacher_url="http://x/v1")
    ctx = make_context(teacher="llm", teacher_url="http://x/v1", teacher_model="m")
    assert ctx.teacher_api_key == "EMPTY" and ctx.teacher_temperature == 0.0 and ctx.max_teacher_tokens is None
    assert make_context().teacher == "offline"
    assert "teacher_url" not in ctx.fingerprint() and "teacher_model" in ctx.fingerprint()


# -- parsing and repair ---------------------------------------------------------------------------------------
def test_parse_json_tolerates_fences_and_prose():
    assert parse_json('```json\n{"examples": [{"prompt": "a", "answer": "b"}]}\n```', GeneratedBatch).examples[0].answer == "b"
    assert parse_json('Here you go: {"examples": []} hope it helps', GeneratedBatch).examples == []
    with pytest.raises(ValueError):
        parse_json("no json at all", GeneratedBatch)
    with pytest.raises(ValidationError):
        parse_json('{"examples": [{"prompt": "a"}]}', GeneratedBatch)


def test_prompts_carry_marker_brief_and_input():
    domain = get_domain("synthetic")
    messages = prompts.messages("generator", domain, {"skill": "min_digit", "count": 3}, count=3)
    assert messages[0].content.startswith("[teachgraph:generator]")
    assert domain.teacher_brief in messages[0].content
    assert _input(messages) == {"count": 3, "skill": "min_digit"}
    repair = prompts.repair_messages(messages, "{bad", "not JSON")
    assert len(repair) == 4 and "[teachgraph:repair]" in repair[-1].content


class FakeLLM:
    """Stands in for ChatOpenAI: returns scripted contents (or raises scripted errors)."""

    def __init__(self, outputs):
        self.outputs, self.calls = list(outputs), []

    def invoke(self, messages, response_format=None):
        from langchain_core.messages import AIMessage

        self.calls.append((messages, response_format))
        out = self.outputs.pop(0)
        if isinstance(out, Exception):
            raise out
        return AIMessage(content=out, usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15})


def _ctx(tmp_path, **kw):
    return make_context(teacher="llm", teacher_url="http://127.0.0.1:9/v1", teacher_model="m",
                        run_dir=str(tmp_path), **kw)


def test_client_repairs_bad_json_and_caches_the_answer(tmp_path):
    good = '{"examples": [{"prompt": "min 12", "answer": "1"}]}'
    llm = FakeLLM(["not json", '{"wrong": 1}', good])
    client = TeacherClient(_ctx(tmp_path), tmp_path / "cache.sqlite", llm=llm)
    messages = prompts.messages("generator", get_domain("synthetic"), {"count": 1}, count=1)
    assert client.ask("generator", messages, GeneratedBatch).examples[0].prompt == "min 12"
    usage = client.usage()
    assert usage["repairs"] == 2 and usage["requests"] == 3 and usage["errors"] == {"invalid_json": 1, "schema": 1}
    assert usage["prompt_tokens"] == 30 and usage["completion_tokens"] == 15
    assert llm.calls[0][1]["type"] == "json_schema" and llm.calls[0][1]["json_schema"]["name"] == "GeneratedBatch"
    # a second client on the same cache (a resumed run) pays nothing for the same call
    again = TeacherClient(_ctx(tmp_path), tmp_path / "cache.sqlite", llm=FakeLLM([]))
    assert again.ask("generator", messages, GeneratedBatch).examples[0].answer == "1"
    assert again.usage()["cache_hits"] == 1 and again.usage()["requests"] == 0


def test_cache_key_covers_model_messages_schema_temperature_seed():
    messages = prompts.messages("planner", get_domain("synthetic"), {"budget": 1}, budget=1)
    base = cache_key("m", messages, PlanResponse, 0.0, 0)
    assert base == cache_key("m", list(messages), PlanResponse, 0.0, 0)
    assert len({base, cache_key("m2", messages, PlanResponse, 0.0, 0), cache_key("m", messages[:1], PlanResponse, 0.0, 0),
                cache_key("m", messages, GeneratedBatch, 0.0, 0), cache_key("m", messages, PlanResponse, 0.7, 0),
                cache_key("m", messages, PlanResponse, 0.0, 1)}) == 6


def test_client_gives_up_after_repairs_and_on_refused_connections(tmp_path):
    client = TeacherClient(_ctx(tmp_path), None, llm=FakeLLM(["x", "y", "z"]))
    with pytest.raises(TeacherCallFailed):
        client.ask("planner", prompts.messages("planner", get_domain("synthetic"), {}, budget=1), PlanResponse)
    assert client.usage()["failures"] == 1 and client.usage()["repairs"] == 2
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = make_context(teacher="llm", teacher_url=f"http://127.0.0.1:{port}/v1", teacher_model="m",
                       teacher_max_retries=2, run_dir=str(tmp_path))
    real = TeacherClient(ctx, None)
    import teachgraph.teachers.llm_client as llm_client

    llm_client.BACKOFF_BASE_S, saved = 0.01, llm_client.BACKOFF_BASE_S
    try:
        with pytest.raises(TeacherCallFailed, match="connection"):
            real.ask("planner", prompts.messages("planner", get_domain("synthetic"), {}, budget=1), PlanResponse)
    finally:
        llm_client.BACKOFF_BASE_S = saved
    assert real.usage()["retries"] == 2 and real.usage()["errors"] == {"connection": 3}


# -- planner -------------------------------------------------------------------------------------------------
def test_normalize_plan_repairs_counts_and_drops_unknown_skills():
    requests = [{"skill": "a", "count": 10}, {"skill": "b", "count": 5}, {"skill": "zzz", "count": 50},
                {"skill": "a", "count": 5}]
    rows, repairs = normalize_plan(requests, 100, False, {"a", "b"})
    assert sum(r["count"] for r in rows) == 100
    assert {r["skill"]: r["count"] for r in rows} == {"a": 75, "b": 25}  # 15 : 5
    assert any("unknown skill" in r for r in repairs) and any("merged" in r for r in repairs)
    rows, _ = normalize_plan([{"skill": "a", "count": 0}, {"skill": "b", "count": 0}], 7, False, {"a", "b"})
    assert sum(r["count"] for r in rows) == 7
    rows, _ = normalize_plan([{"exemplars": ["min 1"], "count": 3}, {"count": 9}], 10, True, None)
    assert rows == [{"skill": None, "subskill": None, "difficulty": None, "count": 10, "exemplars": ["min 1"]}]


def test_llm_planner_falls_back_on_the_offline_planner():
    from teachgraph.environments import get_environment
    from teachgraph.environments.skill_list import SkillAccuracyObservation

    skill_list = get_environment("skill-list")
    obs = SkillAccuracyObservation(skills={"a": {"accuracy": 0.5, "n": 4}, "b": {"accuracy": 1.0, "n": 4}},
                                   errors_by_skill={})
    client = StubClient(planner={"requests": [{"skill": "nope", "count": 5}]})
    plan = LLMPlanner(client, get_domain("synthetic")).plan(skill_list, obs, 50, seed=0)
    assert plan["source"] == "offline-fallback" and sum(r["count"] for r in plan["requests"]) == 50
    assert client.counts["fallbacks"] == 1
    client = StubClient(planner={"requests": [{"skill": "a", "count": 3}, {"skill": "b", "count": 1}], "notes": "n"})
    plan = LLMPlanner(client, get_domain("synthetic")).plan(skill_list, obs, 50, seed=0)
    assert plan["source"] == "llm" and [r["count"] for r in plan["requests"]] == [38, 12]
    assert set(plan["requests"][0]) == {"skill", "subskill", "difficulty", "count", "exemplars"}


# -- organizer ----------------------------------------------------------------------------------------------
def _forest():
    from teachgraph.environments import skill_forest

    forest = skill_forest.new_forest(["s"])
    return skill_forest.apply_action(forest, "s", {"type": "explore", "subskills": ["x", "y"], "allocation": 100}, 0,
                                   2000, 4000, 3)


def test_to_action_turns_deltas_into_values():
    tree = _forest()["skills"]["s"]
    action = to_action(OrganizerAction(action="exploit", allocation_kind="delta",
                                       allocations=[{"subskill": "x", "value": -40}]), tree)
    assert action == {"type": "exploit", "allocations": {"x": 60}}
    action = to_action(OrganizerAction(action="explore", new_subskills=[{"name": "z", "data": 50},
                                                                        {"name": "w", "data": 150}]), tree)
    assert action == {"type": "explore", "subskills": ["z", "w"], "allocation": 100}


def test_invalid_organizer_action_is_replaced_by_the_handwritten_policy():
    client = StubClient(organizer={"action": "exploit", "allocations": [{"subskill": "ghost", "value": 5}]})
    organizer = LLMOrganizer(client, get_domain("synthetic"), max_subskills=3)
    forest, actions, invalid = organizer.organize(_forest(), {"s": ["x", "y", "z"]}, 1, 2000, 4000)
    assert invalid == 1 and client.counts["invalid_actions"] == 1 and client.counts["fallbacks"] == 1
    assert actions[0]["source"] == "handwritten" and actions[0]["type"] == "explore"  # z fills the tree
    assert "z" in forest["skills"]["s"]["subskills"]
    client = StubClient(organizer={"action": "exploit", "allocations": [{"subskill": "x", "value": 7}]})
    forest, actions, invalid = LLMOrganizer(client, get_domain("synthetic")).organize(_forest(), {"s": []}, 1, 2000, 4000)
    assert invalid == 0 and forest["skills"]["s"]["subskills"]["x"]["allocation"] == 7 and actions[0]["source"] == "llm"


# -- discovery ------------------------------------------------------------------------------------------------
def test_discovery_labels_groups_maps_and_falls_back(tmp_path):
    domain = get_domain("synthetic", val_per_subskill=1, test_per_subskill=1, skills=["min_digit", "parity"])
    examples = domain.load_split("val")

    def labels(messages, n):
        return {"labels": [{"id": e["id"], "skill": e["prompt"].split()[0] + " skill", "reason": "r"}
                           for e in _input(messages)["examples"]]}

    def mapping(messages, n):  # leaves the parity examples unmapped, twice
        return {"assignments": [{"id": e["id"], "category": "minimum"} for e in _input(messages)["examples"]
                                if e["prompt"].startswith("min")]}

    client = StubClient(skill_label=labels, skill_map=mapping,
                        skill_group={"categories": [{"name": "minimum", "labels": ["min_skill", "parity_skill"],
                                                     "subskills": ["short", "long"]},
                                                    {"name": "parity", "labels": ["parity_skill"]}]})
    discoverer = LLMSkillDiscoverer(client, tmp_path / "labels.json")
    found = discoverer.discover(domain, examples, seed=0)
    # mutually exclusive: parity_skill stays in the first category that claims it; "parity" is then empty
    assert set(found["skills"]) == {"minimum"} and set(found["assignment"]) == {e["id"] for e in examples}
    assert found["stats"]["unmapped"] == 3 and client.counts["fallbacks"] == 3
    assert found["skills"]["minimum"]["subskills"] == ["short", "long"]
    # labels are kept in the run directory: a second discovery does not ask for them again
    asked = client.asked["skill_label"]
    LLMSkillDiscoverer(client, tmp_path / "labels.json").discover(domain, examples, seed=0)
    assert client.asked["skill_label"] == asked


# -- generator -------------------------------------------------------------------------------------------------
def test_generator_tops_up_short_batches_truncates_long_ones_and_records_provenance():
    domain = get_domain("synthetic")

    def batch(messages, n):
        data = _input(messages)
        made = domain.generate("min_digit", None, None, 40, seed=n)
        made = [e for e in made if e["prompt"] not in data["avoid"]]
        size = 2 if n == 1 else 30  # the first answer is short, the top-up too long
        return {"examples": [{"prompt": e["prompt"], "answer": e["answer"]} for e in made[:size]]}

    client = StubClient(generator=batch)
    generator = LLMGenerator(client, domain, batch_size=10)
    out = generator.generate_many([{"skill": "min_digit", "subskill": "4 digits", "count": 10, "difficulty": None,
                                    "exemplars": []}], cycle=3, seed=1)
    assert len(out) == 10 and len({e["prompt"] for e in out}) == 10
    assert client.counts["topups"] == 1 and client.counts["truncated_batches"] == 1
    prov = out[0]["provenance"]
    assert prov["teacher_model"] == "stub-model" and prov["generator"] == "llm" and prov["cycle"] == 3
    assert {"skill", "subskill", "prompt_hash", "seed"} <= set(prov)
    assert all(domain.verify(e) is None for e in out)


def test_generator_splits_requests_into_batches_and_survives_failed_calls():
    domain = get_domain("synthetic")

    def batch(messages, n):  # the second batch's call fails (after the client's own retries and repairs)
        data = _input(messages)
        if data["count"] == 4 and n == 2:
            return TeacherCallFailed("down")
        return {"examples": [{"prompt": f"min {1000 + n * 50 + i}", "answer": "0"} for i in range(data["count"])]}

    client = StubClient(generator=batch)
    out = LLMGenerator(client, domain, batch_size=4).generate_many([{"skill": "min_digit", "count": 10}], cycle=1, seed=0)
    assert client.asked["generator"] == 3  # batches of 4, 4 and 2
    assert len(out) == 6 and client.counts["fallbacks"] == 1 and client.counts["short_batches"] == 1


# -- issue 12: bounded requests, failing teachers ---------------------------------------------------------------
# Names new in issue 12 are imported inside the tests, so that each of these tests fails on its own before it.
def _planner_messages():
    return prompts.messages("planner", get_domain("synthetic"), {"budget": 5, "skills": [{"skill": "a"}]}, budget=5)


@pytest.fixture(scope="module")
def fake_server():
    from tests.fake_teacher_server import FakeTeacher

    with FakeTeacher() as server:
        yield server


@pytest.fixture
def server(fake_server):
    fake_server.control(outage=None, faults=[], reset_stats=True, drip_s=1.0)
    yield fake_server
    fake_server.control(outage=None, faults=[])


def _real_client(tmp_path, server, **kw):
    ctx = make_context(teacher="llm", teacher_url=server.url, teacher_model=server.model, run_dir=str(tmp_path), **kw)
    return TeacherClient(ctx, None)


@pytest.mark.timeout(90)  # unbounded, the call would take a day (the dripped answer's Content-Length)
def test_a_server_that_drips_its_answer_is_cut_off_at_the_request_deadline(tmp_path, server):
    """Headers at once, then one byte a second: every read returns within httpx's read timeout, so only
    a wall-clock deadline per request ends it. It fails as a timeout, and is counted."""
    server.control(outage="drip", drip_s=1.0)
    client = _real_client(tmp_path, server, teacher_timeout_s=2.5, teacher_max_retries=0)
    started = time.monotonic()
    with pytest.raises(TeacherCallFailed) as failed:
        client.ask("planner", _planner_messages(), PlanResponse)
    elapsed = time.monotonic() - started
    assert failed.value.kind == "timeout"
    usage = client.usage()
    assert usage["requests"] == 1 and usage["errors"] == {"timeout": 1}
    assert usage["failures"] == 1 and usage["failed"] == {"timeout": 1}
    assert elapsed < 2.5 + 10, elapsed  # the budget of the call (one request) plus slack, not 86 400 s
    assert server.stats()["by_status"].get("drip") == 1
    server.control(outage=None)  # the same client answers again
    assert client.ask("planner", _planner_messages(), PlanResponse).requests[0].skill == "a"


@pytest.mark.timeout(90)
def test_a_server_that_never_answers_costs_at_most_the_call_budget(tmp_path, server):
    """With retries, a call ends once its budget (min(1 + retries, 3) request timeouts) is spent: before,
    each of 1 + 4 requests waited a full timeout (plus 3.75 s of backoff)."""
    server.control(outage="hang")
    client = _real_client(tmp_path, server, teacher_timeout_s=1.0, teacher_max_retries=4)
    started = time.monotonic()
    with pytest.raises(TeacherCallFailed) as failed:
        client.ask("planner", _planner_messages(), PlanResponse)
    elapsed = time.monotonic() - started
    usage = client.usage()
    assert 2 <= usage["requests"] <= 3 and usage["retries"] == usage["requests"] - 1, usage  # not 1 + 4
    assert usage["errors"] == {"timeout": usage["requests"]} and usage["failed"] == {"timeout": 1}
    assert elapsed < 3.0 + 2.5, elapsed  # unbounded: 5 timeouts + 3.75 s backoff = 8.75 s
    assert failed.value.kind == "timeout"
    from teachgraph.teachers.llm_client import call_budget_s

    assert client.call_budget_s == call_budget_s(1.0, 4) == 3.0
    # the defaults: 120 s a request, 3 of them at most: 360 s a call (was 5 x 120 s + backoff, and
    # unbounded for a server that trickles)
    assert TeacherClient(make_context(teacher="llm", teacher_url=server.url, teacher_model="m"), None).call_budget_s == 360


@pytest.mark.timeout(90)
def test_too_many_failed_calls_stop_the_node_with_teacher_failing(tmp_path, server):
    from teachgraph.teachers.llm_client import MIN_CALLS_FOR_FAILURE_RATE, TeacherFailing

    server.control(outage="http_500")
    client = _real_client(tmp_path, server, teacher_max_retries=0)
    for _ in range(MIN_CALLS_FOR_FAILURE_RATE - 1):  # too few calls to judge: the agents fall back
        with pytest.raises(TeacherCallFailed):
            client.ask("planner", _planner_messages(), PlanResponse)
    # the 8th call finds 7 of 8 failed: it stops the node, unsent
    with pytest.raises(TeacherFailing, match=r"failing in the node making planner calls: 7 of 8 calls failed \(http_5xx 7\).*"
                                             r"max_teacher_failure_rate=0.5.*teachgraph resume"):
        client.ask("planner", _planner_messages(), PlanResponse)
    requests = server.stats()["requests"]
    assert requests == MIN_CALLS_FOR_FAILURE_RATE - 1
    with pytest.raises(TeacherFailing):  # from now on, at once: no request is sent
        client.ask("planner", _planner_messages(), PlanResponse)
    assert server.stats()["requests"] == requests
    # concurrently: calls still queued when the node stops never start
    client = _real_client(tmp_path, server, teacher_max_retries=0, teacher_concurrency=2)

    def agent(_):  # like the agents: a failed call falls back, TeacherFailing goes through
        try:
            return client.ask("planner", _planner_messages(), PlanResponse)
        except TeacherCallFailed:
            return None

    with pytest.raises(TeacherFailing):
        client.map(agent, list(range(40)))
    assert client.usage()["calls"] < 20
    # max_teacher_failure_rate=1 never stops a node
    client = _real_client(tmp_path, server, teacher_max_retries=0, max_teacher_failure_rate=1.0)
    for _ in range(12):
        with pytest.raises(TeacherCallFailed):
            client.ask("planner", _planner_messages(), PlanResponse)
    assert client.usage()["failures"] == 12


def test_check_teacher_health_warns_and_stops_past_the_failure_rate(monkeypatch):
    import teachgraph.nodes.common
    from teachgraph.teachers.llm_client import TeacherFailing, check_teacher_health

    events = []
    monkeypatch.setattr(teachgraph.nodes.common, "emit", events.append)
    ok = {"calls": 10, "failures": 0, "fallbacks": 0}
    assert check_teacher_health("plan", ok, {"plan": ok}, max_failure_rate=0.5) is None and events == []
    # one early timeout (or a few calls that all failed) warns, and goes on
    early = {"calls": 3, "failures": 3, "fallbacks": 3, "failed": {"timeout": 3}}
    assert check_teacher_health("generate", early, {"generate": early}, cycle=1, max_failure_rate=0.5) == \
        "3 of 3 calls failed (timeout 3); 3 fallbacks to the offline agents"
    assert events == [{"type": "warning", "node": "generate", "cycle": 1,
                       "message": "teacher: 3 of 3 calls failed (timeout 3); 3 fallbacks to the offline agents"}]
    half = {"calls": 10, "failures": 5, "failed": {"http_5xx": 5}}
    check_teacher_health("generate", half, {"generate": half}, max_failure_rate=0.5)  # not more than half
    more = {"calls": 10, "failures": 6, "failed": {"timeout": 6}}
    with pytest.raises(TeacherFailing, match=r"failing in node generate: 6 of 10 calls failed \(timeout 6\).*resume runs/x"):
        check_teacher_health("generate", more, {"generate": more}, run_dir="runs/x", max_failure_rate=0.5)
    check_teacher_health("generate", more, {"generate": more}, max_failure_rate=1.0)  # 1: never stops
    # the cycle so far: 2 failed calls of this node on top of 7 failed earlier
    node = {"calls": 2, "failures": 2, "failed": {"timeout": 2}}
    cycle = {"discover_skills": {"calls": 8, "failures": 7}, "plan": node}
    with pytest.raises(TeacherFailing, match=r"in the cycle so far \(up to node plan\): 9 of 10 calls failed"):
        check_teacher_health("plan", node, cycle, max_failure_rate=0.5)
    # ... but earlier failures alone never stop a node whose own calls succeed (a resumed node passes)
    fine = {"calls": 2, "failures": 0}
    check_teacher_health("plan", fine, {"discover_skills": {"calls": 8, "failures": 7}, "plan": fine}, max_failure_rate=0.5)


def test_teacher_warnings_are_printed_even_when_quiet():
    from rich.console import Console

    from teachgraph.reporting.console import Display

    display = Display(quiet=True, console=Console(record=True, width=200))
    display.event({"type": "warning", "node": "generate", "cycle": 1,
                   "message": "teacher: 12 of 12 calls failed (timeout 12); 12 fallbacks [offline]"})
    text = display.console.export_text()
    assert "warning" in text and "generate: teacher: 12 of 12 calls failed (timeout 12); 12 fallbacks [offline]" in text


def test_generator_requests_share_a_static_prefix_and_put_what_varies_last():
    """A cycle's generator calls: one system prompt for all (no count, seed or skill in it), the input's
    fields from the most static (skill, description, exemplars) to the most varying (seed, count, avoid),
    so batches of one request differ only from their seed on, and a top-up only from its count on."""
    import json
    import os

    domain = get_domain("synthetic")
    seen = []

    def batch(messages, n):
        seen.append(messages)
        data = _input(messages)
        size = 1 if data["count"] == 5 and not data["avoid"] else data["count"]  # one short first answer
        made = domain.generate(data["skill"], data["subskill"], None, 40, seed=n)
        return {"examples": [{"prompt": e["prompt"], "answer": e["answer"]} for e in made[:size]]}

    client = StubClient(generator=batch)
    requests = [{"skill": s, "subskill": sub, "count": 12, "difficulty": None, "exemplars": []}
                for s, sub in (("min_digit", "4 digits"), ("min_digit", "6 digits"), ("parity", "3 digits"))]
    out = LLMGenerator(client, domain, batch_size=5).generate_many(requests, cycle=2, seed=7)
    assert len(out) == 36 and client.counts["topups"] >= 1
    assert len({m[0].content for m in seen}) == 1  # one system prompt, whatever the count
    assert all("Write exactly 5" not in m[0].content for m in seen)
    for m in seen:
        keys = list(json.loads(m[1].content.split("<input>")[1].split("</input>")[0]))
        assert keys == ["skill", "description", "exemplars", "subskill", "difficulty", "cycle", "seed", "count", "avoid"]
        assert m[1].content.endswith(f"Write exactly {_input(m)['count']} examples.")

    def differ_at(a, b):  # the field in which two user messages first differ: the last one begun in their common prefix
        head = a[:len(os.path.commonprefix([a, b]))]
        return max((head.rfind(f'"{k}": '), k) for k in keys)[1]

    users = [(_input(m), m[1].content) for m in seen]
    same_request = [(a, b) for i, (da, a) in enumerate(users) for db, b in users[i + 1:]
                    if (da["skill"], da["subskill"]) == (db["skill"], db["subskill"])]
    assert same_request
    for a, b in same_request:
        assert keys.index(differ_at(a, b)) >= keys.index("seed")
    topups = [(da, a) for da, a in users if da["avoid"]]
    assert topups
    for d, text in topups:
        first = next(b for db, b in users if db["seed"] == d["seed"] and not db["avoid"])
        assert keys.index(differ_at(text, first)) >= keys.index("count")
    other_skill = next(b for db, b in users if db["skill"] == "parity")
    assert differ_at(users[0][1], other_skill) == "skill"  # another skill: only the system prompt is shared


def test_other_roles_keep_sorted_inputs():
    messages = prompts.messages("planner", get_domain("synthetic"), {"budget": 4, "allocations": []}, budget=4)
    assert messages[1].content == '<input>\n{"allocations": [], "budget": 4}\n</input>'
