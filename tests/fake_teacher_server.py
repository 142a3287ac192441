"""A simulated teacher server for tests: a real HTTP server speaking OpenAI chat completions.

    python tests/fake_teacher_server.py --port 0 --model fake-teacher [--latency 0.05] [--slots N]
        [--reject-json-schema] [--faults invalid_json,http_500,...] [--port-file PATH]

Routes: POST /v1/chat/completions (response_format json_schema / json_object, usage counts),
GET /v1/models, GET /health, GET /stats (request counts), POST /control (fault injection), and the routes
sglang-router probes on a worker: GET /server_info, /get_server_info, /model_info, /get_model_info.

Overload like a self-hosted engine (SGLang, llama.cpp): with `slots` N, at most N chat requests are worked
on at once, each for `latency` seconds; the others queue (no HTTP 429), so latency grows with the requests
in flight. /stats reports `in_flight` and `peak_in_flight` (since the last reset).

It recognises the calling agent from the `[teachgraph:<role>]` marker of the system prompt, reads the
JSON between <input> and </input> of the last user message, and answers with schema-valid content;
for the synthetic domain its examples are CORRECT (computed with domains.synthetic), so a run with it
as the teacher improves the student. For the math and code domains (recognised by the domain's brief in
the system prompt) the generator writes correct items in the domain's schema: arithmetic problems with
a boxed answer; small stdin and LeetCode-style problems with tests and a reference solution; for the
tool-use domains, requests with plans (tools: computed with domains.tools; mnms: MnMs's node format).

Faults (each consumed by one chat request, in order; optionally only by requests of one role):
  invalid_json, schema (valid JSON, wrong shape), http_500, http_429, slow (sleeps `slow_s`, longer than
  the client's timeout), truncated (half the content, finish_reason "length"), disconnect (the connection
  is closed without an answer), wrong_answer (a generator batch whose first example has a wrong answer:
  math, a final answer that contradicts the solution; code, a reference solution that fails its tests;
  tools, a wrong final answer, then a plan calling an unknown tool, then one passing a wrongly typed
  argument; mnms, a plan calling an unknown tool).
  drip (the headers at once, then the body one byte every `drip_s` seconds, its Content-Length padded to a
  day's worth: per-read timeouts never fire), hang (the request is read and never answered; the handler
  waits until the client goes away).
  "Connection refused" is the server stopped. With "every": N, only every N-th chat request may take a
  fault (so that each faulty answer is followed by a good one).
  An outage is a fault that every chat request (of `outage_role`, if given) takes until it is switched
  off with {"outage": null}: the teacher is down, then back.
POST /control {"faults": [...], "role": null, "every": 1, "slow_s": 3, "drip_s": 1, "reject_json_schema": bool,
               "latency": s, "slots": N | null,
               "outage": fault | null, "outage_role": role | null,
               "hold": {"role": "generator", "after": N} | null, "release": bool, "reset_stats": bool}
Hold: requests of the role after the first N block until {"release": true}; then they get HTTP 503.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from teachgraph.domains.synthetic import BY_KEYWORD, BY_NAME, SyntheticDomain  # noqa: E402
from teachgraph.domains.tools import BY_NAME as TOOL_FAMILIES, ToolsDomain  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402

FAULTS = ("invalid_json", "schema", "http_500", "http_429", "slow", "truncated", "disconnect", "wrong_answer", "drip",
          "hang")
DRIP_LENGTH = 86_400  # bytes a dripped answer claims: a day at one byte a second
_MARKER = re.compile(r"\[teachgraph:(\w+)\]")
_INPUT = re.compile(r"<input>\s*(.*?)\s*</input>", re.S)


def _domain_skill(name: str | None, exemplars: list[str]) -> tuple[str | None, str | None]:
    """The synthetic (skill, subskill) a request means: by name, else from its exemplar prompts."""
    domain = SyntheticDomain()
    if name in BY_NAME:
        return name, None
    for prompt in exemplars:
        inferred = domain.infer_skill(prompt)
        if inferred:
            return inferred
    if name:
        for keyword, spec in BY_KEYWORD.items():
            if keyword in name.split("_") or spec.name in name:
                return spec.name, None
    return None, None


# -- the agents' answers ---------------------------------------------------------------------------
def answer_skill_label(data: dict[str, Any]) -> dict[str, Any]:
    domain = SyntheticDomain()
    labels = []
    for ex in data["examples"]:
        inferred = domain.infer_skill(ex["prompt"])
        labels.append({"id": ex["id"], "skill": inferred[0] if inferred else "unknown",
                       "reason": f"the prompt starts with {ex['prompt'].split(' ')[0]!r}"})
    return {"labels": labels}


def answer_skill_group(data: dict[str, Any]) -> dict[str, Any]:
    categories = []
    for label in data["labels"]:
        spec = BY_NAME.get(label)
        categories.append({"name": label, "description": spec.description if spec else label, "labels": [label],
                           "subskills": list(spec.subskills) if spec else ["short", "long"]})
    return {"categories": categories}


def answer_skill_map(data: dict[str, Any]) -> dict[str, Any]:
    domain = SyntheticDomain()
    names = [c["name"] for c in data["categories"]]
    out = []
    for ex in data["examples"]:
        inferred = domain.infer_skill(ex["prompt"])
        out.append({"id": ex["id"], "category": inferred[0] if inferred and inferred[0] in names else names[0]})
    return {"assignments": out}


def answer_organizer(data: dict[str, Any]) -> dict[str, Any]:
    tree = data["tree"]
    fresh = [c for c in data["candidates"] if c not in tree["subskills"]][: data["room"]]
    unit = data["unit"]
    if fresh:
        return {"action": "explore", "new_subskills": [{"name": n, "data": unit} for n in fresh],
                "rationale": "fill the tree first"}
    allocations = []
    for name, sub in tree["subskills"].items():
        accuracy = sub.get("accuracy")
        error = 1.0 - (accuracy if accuracy is not None else (tree.get("accuracy") or 0.0))
        allocations.append({"subskill": name, "value": max(1, round(unit * (0.1 + error)))})
    return {"action": "exploit", "allocation_kind": "set", "allocations": allocations,
            "rationale": "more data where the student fails"}


def answer_planner(data: dict[str, Any]) -> dict[str, Any]:
    budget = data["budget"]
    if data.get("allocations"):
        rows = data["allocations"]
        total = sum(r["allocation"] for r in rows) or 1
        # floor only: the counts fall a little short of the budget, which the planner must repair
        return {"requests": [{"skill": r["skill"], "subskill": r["subskill"], "difficulty": r.get("difficulty"),
                              "count": budget * r["allocation"] // total} for r in rows],
                "notes": "the tree's allocations"}
    if data.get("errors") is not None:
        errors = data["errors"][:20]
        return {"requests": [{"count": budget // max(1, len(errors)), "exemplars": [e["question"]]} for e in errors],
                "notes": "like each error"}
    skills = data["skills"]
    weights = {s["skill"]: 0.1 + 1.0 - (s.get("accuracy") if s.get("accuracy") is not None else 0.5) for s in skills}
    total = sum(weights.values()) or 1.0
    return {"requests": [{"skill": s, "count": int(budget * w / total)} for s, w in weights.items()],
            "notes": "by error"}


def answer_generator(data: dict[str, Any], wrong: bool = False) -> dict[str, Any]:
    skill, subskill = _domain_skill(data.get("skill"), data.get("exemplars") or [])
    if skill is None:
        return {"examples": []}
    spec = BY_NAME[skill]
    if data.get("subskill") in spec.subskills:
        subskill = data["subskill"]
    avoid = set(data.get("avoid") or [])
    count = int(data["count"])
    made = SyntheticDomain().generate(skill, subskill, data.get("difficulty"), count + len(avoid),
                                      seed=int(data.get("seed", 0)))
    examples = [{"prompt": e["prompt"], "answer": e["answer"]} for e in made if e["prompt"] not in avoid][:count]
    if wrong and examples:
        examples[0]["answer"] = examples[0]["answer"] + "9"
    return {"examples": examples}


def answer_math_generator(data: dict[str, Any], wrong: bool = False) -> dict[str, Any]:
    """Correct arithmetic problems in the MATH format (problem, solution ending in a boxed answer)."""
    rng = random.Random(int(data.get("seed", 0)))
    avoid = set(data.get("avoid") or [])
    examples = []
    while len(examples) < int(data["count"]):
        a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 9)
        problem = f"Compute ${a} + {b} \\cdot {c}$."
        if any(problem in prior for prior in avoid) or any(e["problem"] == problem for e in examples):
            continue
        answer = a + b * c
        examples.append({"problem": problem, "final_answer": str(answer),
                         "solution": f"First ${b} \\cdot {c} = {b * c}$, then ${a} + {b * c} = {answer}$. "
                                     f"The answer is $\\boxed{{{answer}}}$."})
    if wrong and examples:
        examples[0]["final_answer"] = str(int(examples[0]["final_answer"]) + 1)
    return {"examples": examples}


def answer_code_generator(data: dict[str, Any], wrong: bool = False) -> dict[str, Any]:
    """Small correct problems with tests and reference solutions: stdin ones and LeetCode-style ones."""
    rng = random.Random(int(data.get("seed", 0)))
    avoid = set(data.get("avoid") or [])
    examples = []
    while len(examples) < int(data["count"]):
        k = rng.randint(2, 999)
        if rng.random() < 0.5:
            statement = f"Read integers a and b (one line, space separated). Print a * b + {k}."
            tests = [{"input": f"{x} {y}\n", "output": f"{x * y + k}\n", "testtype": "stdin"}
                     for x, y in ((rng.randint(0, 99), rng.randint(0, 99)) for _ in range(3))]
            item = {"question_content": statement, "starter_code": "", "func_name": "", "tests": tests,
                    "reference_solution": f"a, b = map(int, input().split())\nprint(a * b + {k})\n"}
        else:
            statement = f"Given a list of integers nums, return the sum of its elements plus {k}."
            tests = []
            for _ in range(3):
                nums = [rng.randint(-50, 50) for _ in range(rng.randint(1, 6))]
                tests.append({"input": json.dumps(nums), "output": json.dumps(sum(nums) + k), "testtype": "functional"})
            item = {"question_content": statement, "func_name": "sumPlus", "tests": tests,
                    "starter_code": "class Solution:\n    def sumPlus(self, nums: List[int]) -> int:\n        ",
                    "reference_solution": ("class Solution:\n    def sumPlus(self, nums: List[int]) -> int:\n"
                                           f"        return sum(nums) + {k}\n")}
        if any(item["question_content"] in prior for prior in avoid) or any(
                e["question_content"] == item["question_content"] for e in examples):
            continue
        examples.append(item)
    if wrong and examples:
        examples[0]["reference_solution"] = examples[0]["reference_solution"].replace(" + ", " - ", 1)
    return {"examples": examples}


def answer_tools_generator(data: dict[str, Any], wrong: bool = False) -> dict[str, Any]:
    """Correct requests and plans of the offline tool-use domain (computed with domains.tools), with their
    final answers. `wrong`: the first example states a wrong answer, the second calls a tool the catalogue
    lacks, the third passes a string where the tool takes an integer."""
    domain = ToolsDomain()
    skill = data.get("skill") if data.get("skill") in TOOL_FAMILIES else None
    subskill = data.get("subskill")
    for prompt in data.get("exemplars") or []:
        inferred = domain.infer_skill(prompt)
        if skill is None and inferred:
            skill, subskill = inferred[0], subskill or inferred[1]
    if skill is None:
        return {"examples": []}
    if subskill not in domain.skill_catalog()[skill]:
        subskill = None
    avoid = set(data.get("avoid") or [])
    count = int(data["count"])
    made = domain.generate(skill, subskill, data.get("difficulty"), count + len(avoid), seed=int(data.get("seed", 0)))
    examples = [{"request": e["prompt"], "plan": [{"tool": step[0], "args": step[1:]} for step in json.loads(e["answer"])],
                 "final_answer": json.loads(e["result"])} for e in made if e["prompt"] not in avoid][:count]
    if wrong:
        if examples:
            answer = examples[0]["final_answer"]
            examples[0]["final_answer"] = answer + 1 if isinstance(answer, int) else str(answer) + "x"
        if len(examples) > 1:
            examples[1]["plan"][0]["tool"] = "teleport"
        if len(examples) > 2:
            step = examples[2]["plan"][0]
            step["args"] = [str(a) if isinstance(a, int) else 7 for a in step["args"]]
    return {"examples": examples}


def answer_mnms_generator(data: dict[str, Any], wrong: bool = False) -> dict[str, Any]:
    """Requests and plans in MnMs's node format over its real tools; `wrong`: the first calls an unknown tool."""
    rng = random.Random(int(data.get("seed", 0)))
    avoid = set(data.get("avoid") or [])
    examples = []
    while len(examples) < int(data["count"]):
        n = rng.randint(1, 99999)
        if rng.random() < 0.5:
            request = f"Describe the image {n}.jpg and summarize the description in one sentence."
            nodes = [{"id": 0, "name": "image captioning", "args": {"image": f"{n}.jpg"}},
                     {"id": 1, "name": "text summarization", "args": {"text": "<node-0>.text"}}]
        else:
            request = f"How many objects are there in {n}.jpg?"
            nodes = [{"id": 0, "name": "object detection", "args": {"image": f"{n}.jpg"}},
                     {"id": 1, "name": "count", "args": {"objects": "<node-0>.objects"}}]
        if any(request in prior for prior in avoid) or any(e["user_request"] == request for e in examples):
            continue
        examples.append({"user_request": request, "nodes": nodes})
    if wrong and examples:
        examples[0]["nodes"][0]["name"] = "image teleportation"
    return {"examples": examples}


def answer_vqa_generator(data: dict[str, Any], wrong: bool = False) -> dict[str, Any]:
    """Correct visual questions with their scenes (question, answer, image description, objects), as an LLM
    teacher writes them for the rendered VQA domain."""
    from teachgraph.domains.scenes import describe_scene, question_skill
    from teachgraph.domains.vqa import SKILLS, SUBSKILLS, VQADomain

    skill = data.get("skill") if data.get("skill") in SKILLS else next(
        (question_skill(p) for p in data.get("exemplars") or [] if question_skill(p)), "count")
    subskill = data.get("subskill") if data.get("subskill") in SUBSKILLS else None
    made = VQADomain().generate(skill, subskill, None, int(data["count"]), seed=int(data.get("seed", 0)))
    examples = [{"question": e["prompt"], "answer": e["answer"], "image_description": describe_scene(e["scene"]),
                 "objects": e["scene"]["objects"]} for e in made]
    if wrong and examples:
        examples[0]["answer"] = "purple"
    return {"examples": examples}


GENERATORS = {"synthetic": answer_generator, "math": answer_math_generator, "code": answer_code_generator,
              "tools": answer_tools_generator, "mnms": answer_mnms_generator, "vqa": answer_vqa_generator}


def domain_of_prompt(system: str) -> str:
    """Which domain a request is for, from the domain's brief in the system prompt."""
    for name in ("math", "code", "tools", "mnms", "vqa"):
        if f"Task domain {name}" in system:
            return name
    return "synthetic"


ANSWERS = {"skill_label": answer_skill_label, "skill_group": answer_skill_group, "skill_map": answer_skill_map,
           "organizer": answer_organizer, "planner": answer_planner, "generator": answer_generator}


# -- the server ------------------------------------------------------------------------------------
class State:
    def __init__(self, model: str, latency: float, reject_json_schema: bool, faults: list[str],
                 slots: int | None = None, model_path: str | None = None):
        self.model, self.latency, self.reject_json_schema = model, latency, reject_json_schema
        self.model_path = model_path or model  # what /server_info reports (sglang-router loads its tokenizer)
        self.lock = threading.Lock()
        self.slots = slots                      # chat requests worked on at once (None: no limit)
        self.working = 0
        self.slot_free = threading.Condition(self.lock)
        self.in_flight = 0
        self.answer_log: Any = None  # --answer-log: a line per answered request
        self.faults: list[str] = list(faults)
        self.fault_role: str | None = None
        self.every = 1
        self.slow_s = 3.0
        self.drip_s = 1.0
        self.outage: str | None = None
        self.outage_role: str | None = None
        self.hold: dict[str, Any] | None = None
        self.released = threading.Event()
        self.open_stalls = 0  # drip and hang handlers still holding a connection
        self.reset()

    def reset(self) -> None:
        self.peak_in_flight = getattr(self, "in_flight", 0)
        self.requests = 0
        self.by_role: Counter = Counter()
        self.answered_by_role: Counter = Counter()
        self.by_status: Counter = Counter()
        self.faults_served: Counter = Counter()
        self.bodies: Counter = Counter()     # answered (HTTP 200, complete) per request-body hash
        self.seen_by_role: Counter = Counter()

    def next_fault(self, role: str, number: int) -> str | None:
        with self.lock:
            if self.outage and self.outage_role in (None, role):
                self.faults_served[self.outage] += 1
                return self.outage
            if number % max(1, self.every):
                return None
            if self.faults and (self.fault_role is None or self.fault_role == role):
                if self.faults[0] == "wrong_answer" and role != "generator":
                    return None
                fault = self.faults.pop(0)
                self.faults_served[fault] += 1
                return fault
        return None

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": self.requests, "by_role": dict(self.by_role), "answered_by_role": dict(self.answered_by_role),
                    "by_status": {str(k): v for k, v in self.by_status.items()},
                    "faults_served": dict(self.faults_served), "faults_pending": list(self.faults),
                    "answered": sum(self.bodies.values()), "distinct_answered": len(self.bodies),
                    "repeated_answered": sum(1 for v in self.bodies.values() if v > 1),
                    "held": self.hold is not None and not self.released.is_set(), "outage": self.outage,
                    "open_stalls": self.open_stalls, "in_flight": self.in_flight, "peak_in_flight": self.peak_in_flight,
                    "slots": self.slots, "latency": self.latency}

    @contextlib.contextmanager
    def work(self) -> Any:
        """One chat request's `latency` seconds of work, in one of `slots` slots (queued until one is free)."""
        with self.slot_free:
            while self.slots is not None and self.working >= self.slots:
                self.slot_free.wait(0.5)
            self.working += 1
            latency = self.latency
        try:
            if latency:
                time.sleep(latency)
            yield
        finally:
            with self.slot_free:
                self.working -= 1
                self.slot_free.notify_all()


def _completion(model: str, content: str, prompt_tokens: int, finish_reason: str = "stop") -> dict[str, Any]:
    return {"id": f"chatcmpl-{hashlib.md5(content.encode()).hexdigest()[:12]}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason,
                         "logprobs": None}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": max(1, len(content) // 4),
                      "total_tokens": prompt_tokens + max(1, len(content) // 4)}}


class Handler(BaseHTTPRequestHandler):
    server_version = "FakeTeacher/1.0"
    disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed-ACK stall)
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    @property
    def state(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:  # noqa: N802
        if self.path in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
        elif self.path in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [{"id": self.state.model, "object": "model", "owned_by": "fake"}]})
        elif self.path == "/stats":
            self._send(200, self.state.stats())
        elif self.path in ("/server_info", "/get_server_info"):
            self._send(200, {"model_path": self.state.model_path, "tokenizer_path": self.state.model_path,
                             "served_model_name": self.state.model, "max_total_num_tokens": 65536,
                             "dp_size": 1, "tp_size": 1, "version": "fake"})
        elif self.path in ("/model_info", "/get_model_info"):
            self._send(200, {"model_path": self.state.model_path, "tokenizer_path": self.state.model_path,
                             "is_generation": True, "served_model_name": self.state.model})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        raw = self._body()
        if self.path == "/control":
            self._control(json.loads(raw or b"{}"))
        elif self.path in ("/v1/chat/completions", "/chat/completions"):
            state = self.state
            with state.lock:
                state.in_flight += 1
                state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
            try:
                self._chat(raw)
            finally:
                with state.lock:
                    state.in_flight -= 1
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def _control(self, body: dict[str, Any]) -> None:
        state = self.state
        with state.lock:
            if body.get("reset_stats"):
                state.reset()
            if "faults" in body:
                unknown = sorted(set(body["faults"]) - set(FAULTS))
                if unknown:
                    return self._send(400, {"error": {"message": f"unknown faults {unknown}; known {FAULTS}"}})
                state.faults = list(body["faults"])
                state.fault_role = body.get("role")
            if "outage" in body:
                if body["outage"] is not None and body["outage"] not in FAULTS:
                    return self._send(400, {"error": {"message": f"unknown outage {body['outage']!r}; known {FAULTS}"}})
                state.outage, state.outage_role = body["outage"], body.get("outage_role")
            for key in ("slow_s", "drip_s", "latency", "reject_json_schema", "every", "slots"):
                if key in body:
                    setattr(state, key, body[key])
            state.slot_free.notify_all()  # queued requests see a changed slot count at once
            if "hold" in body:
                state.hold = body["hold"]
                state.released.clear()
            if body.get("release"):
                state.released.set()
                state.hold = None
        self._send(200, state.stats())

    def _chat(self, raw: bytes) -> None:
        state = self.state
        request = json.loads(raw)
        messages = request.get("messages", [])
        system = next((m.get("content") or "" for m in messages if m.get("role") == "system"), "")
        match = _MARKER.search(system)
        role = match.group(1) if match else "unknown"
        body_hash = hashlib.sha256(raw).hexdigest()
        with state.lock:
            state.requests += 1
            number = state.requests
            state.by_role[role] += 1
            state.seen_by_role[role] += 1
            seen = state.seen_by_role[role]
            hold = state.hold
        if hold and hold.get("role") in (None, role) and seen > int(hold.get("after", 0)):
            state.released.wait()
            return self._reply(503, {"error": {"message": "held and released"}}, None)
        with state.work():
            pass
        fmt = (request.get("response_format") or {}).get("type")
        if fmt == "json_schema" and state.reject_json_schema:
            return self._reply(400, {"error": {"message": "response_format of type 'json_schema' is not supported by "
                                                          "this server", "type": "invalid_request_error"}}, None)
        if role not in ANSWERS:
            return self._reply(400, {"error": {"message": "no [teachgraph:<role>] marker in the system prompt"}}, None)
        fault = state.next_fault(role, number)
        if fault == "disconnect":
            import socket

            self.close_connection = True
            with state.lock:
                state.by_status["disconnect"] += 1
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        if fault == "hang":
            return self._stall(self._hang)
        if fault in ("http_500", "http_429"):
            return self._reply(int(fault[-3:]), {"error": {"message": f"injected {fault}"}}, None)
        if fault == "slow":
            time.sleep(state.slow_s)
        users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
        found = _INPUT.search(users[0] if users else "")
        try:
            data = json.loads(found.group(1)) if found else {}
            answer_fn = GENERATORS[domain_of_prompt(system)] if role == "generator" else ANSWERS[role]
            answer = answer_fn(data, wrong=True) if fault == "wrong_answer" else answer_fn(data)
        except Exception as error:  # noqa: BLE001 - a bad request is the client's problem: say what
            return self._reply(400, {"error": {"message": f"fake teacher could not read the input: {error!r}"}}, None)
        content = json.dumps(answer)
        finish = "stop"
        if fault == "invalid_json":
            content = "Sure! Here is the JSON you asked for: {" + content[:40]
        elif fault == "schema":
            content = json.dumps({"unexpected": "shape", "items": [1, 2, 3]})
        elif fault == "truncated":
            content, finish = content[: len(content) // 2], "length"
        prompt_tokens = max(1, sum(len(m.get("content") or "") for m in messages) // 4)
        if fault == "drip":
            return self._stall(lambda: self._drip(_completion(state.model, content, prompt_tokens, finish)))
        self._reply(200, _completion(state.model, content, prompt_tokens, finish), body_hash if fault is None else None,
                    role)

    def _stall(self, how) -> None:
        state = self.state
        with state.lock:
            state.open_stalls += 1
        try:
            how()
        finally:
            self.close_connection = True
            with state.lock:
                state.open_stalls -= 1

    def _hang(self) -> None:
        """Never answer: wait until the client closes the connection (or a day passes)."""
        import select
        import socket

        with self.state.lock:
            self.state.by_status["hang"] += 1
        deadline = time.monotonic() + DRIP_LENGTH
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.2)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return  # the client went away
                except OSError:
                    return
                time.sleep(0.2)

    def _drip(self, body: dict[str, Any]) -> None:
        """Headers now, then the answer (padded in front with whitespace to a day's worth of bytes) one byte
        every drip_s seconds, until the client goes away."""
        data = json.dumps(body).encode("utf-8")
        data = b" " * max(0, DRIP_LENGTH - len(data)) + data
        with self.state.lock:
            self.state.by_status["drip"] += 1
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.flush()
            for i in range(len(data)):
                time.sleep(self.state.drip_s)
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            return

    def _reply(self, status: int, body: dict[str, Any], answered_hash: str | None, role: str = "unknown") -> None:
        state = self.state
        try:
            self._send(status, body)
        except (BrokenPipeError, ConnectionResetError):
            status = -1
        with state.lock:
            state.by_status[status] += 1
            if status == 200 and answered_hash:
                state.bodies[answered_hash] += 1
                state.answered_by_role[role] += 1
                if state.answer_log is not None:  # on disk at once: it outlives a killed server
                    state.answer_log.write(json.dumps({"hash": answered_hash, "role": role}) + "\n")
                    state.answer_log.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="fake-teacher")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every chat request")
    parser.add_argument("--slots", type=int, default=None, help="chat requests worked on at once; the others queue")
    parser.add_argument("--model-path", default=None, help="the model path /server_info reports (default: --model)")
    parser.add_argument("--reject-json-schema", action="store_true", help="answer json_schema requests with HTTP 400")
    parser.add_argument("--faults", default="", help="comma-separated faults for the next requests")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--answer-log", help="append a JSON line (body hash, role) per answered chat request")
    args = parser.parse_args(argv)
    faults = [f for f in args.faults.split(",") if f]
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        parser.error(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    server.state = State(args.model, args.latency, args.reject_json_schema, faults, args.slots,  # type: ignore[attr-defined]
                         args.model_path)
    if args.answer_log:
        server.state.answer_log = open(args.answer_log, "a", encoding="utf-8")  # type: ignore[attr-defined]
    port = server.server_address[1]
    if args.port_file:
        Path(args.port_file).write_text(str(port), encoding="utf-8")
    print(f"fake teacher listening on http://{args.host}:{port}/v1", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0



# -- for tests and benchmarks: the server as a subprocess --------------------------------------------
class FakeTeacher(ServerProcess):
    """A fake teacher server running in its own process: `url` (OpenAI base URL), `control`, `stats`, `stop`."""

    def __init__(self, *args: str, model: str = "fake-teacher", timeout: float = 20.0):
        self.model = model
        super().__init__(Path(__file__).resolve(), "--model", model, *args, name="fake-teacher", timeout=timeout)
        self.url = self.base + "/v1"

    def stats(self) -> dict[str, Any]:
        return self._get("/stats")

    def control(self, **body: Any) -> dict[str, Any]:
        return self._post("/control", body)


if __name__ == "__main__":
    sys.exit(main())
