"""teachgraph.services: run-scoped objects built once and handed to nodes through the runtime; a node
test passes its own domain and student without monkeypatching."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from teachgraph.graph import make_context
from teachgraph.nodes import evaluate
from teachgraph.services import RunServices, StudentCache, services_of


class ParityDomain:
    """A four-example domain: is the number even?"""

    name = "parity"

    def load_split(self, split: str) -> list[dict[str, Any]]:
        return [{"id": f"{split}{n}", "prompt": str(n), "answer": "even" if n % 2 == 0 else "odd",
                 "skill": "parity", "subskill": "one digit"} for n in range(4)]

    def score(self, prediction: str, example: dict[str, Any]) -> bool:
        return prediction == example["answer"]


class AlwaysEven:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def predict(self, prompts, batch_size: int = 256) -> list[str]:
        self.asked += list(prompts)
        return ["even"] * len(prompts)


def test_a_node_runs_on_an_injected_domain_and_student(tmp_path):
    ctx = make_context({"run_dir": str(tmp_path / "run")})
    student = AlwaysEven()
    loaded: list[str] = []
    students = StudentCache(ctx, ParityDomain(), loader=lambda path: loaded.append(path) or student)
    services = RunServices(ctx, domain=ParityDomain(), students=students)
    update = evaluate({"run_dir": str(tmp_path / "run"), "student_path": "students/s0"},
                      Runtime(context=ctx.bind(services)))
    assert update["evaluation"]["accuracy"] == 0.5 and update["evaluation"]["n"] == 4
    assert update["history"][0]["per_skill"] == {"parity": 0.5}
    assert student.asked == ["0", "1", "2", "3"] and loaded == ["students/s0"]


def test_student_cache_loads_each_student_once_and_trains_a_fresh_copy():
    ctx = make_context({})
    loads: list[str] = []
    cache = StudentCache(ctx, ParityDomain(), loader=lambda path: loads.append(path) or object())
    first = cache.get("a")
    assert cache.get("a") is first and loads == ["a"]          # evaluate and drop-solved share one load
    trained = cache.for_training("a")
    assert trained is not first and loads == ["a", "a"]       # training gets its own copy
    cache.keep("b", trained)
    assert cache.get("b") is trained and loads == ["a", "a"]  # the next evaluation does not reload
    assert cache.get("a") is not first and loads == ["a", "a", "a"]
    assert cache.loads == 3


def test_services_are_built_once_per_bound_context_and_lazily_without_one(tmp_path):
    ctx = make_context({"run_dir": str(tmp_path / "run")})
    services = RunServices(ctx, domain=ParityDomain())
    bound = ctx.bind(services)
    assert services_of(Runtime(context=bound)) is services
    assert services.teacher is services.teacher              # one teacher team (one client) per run
    assert bound.services is services and ctx.services is None  # binding copies; the configuration is untouched
    assert bound == ctx.bind(services)

    plain = make_context({"run_dir": str(tmp_path / "run")})
    lazily = services_of(Runtime(context=plain))              # a graph invoked without services (Studio)
    assert lazily is services_of(Runtime(context=plain)) and plain.services is lazily
    assert lazily.environment.name == plain.environment
