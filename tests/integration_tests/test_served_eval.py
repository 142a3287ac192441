"""Evaluation through a serving engine (student_eval_url): each cycle's LoRA adapter is loaded into the
server, the previous one unloaded, and the served predictions equal the in-process ones.

The server is tests/fake_student_server.py: SGLang's routes, run with transformers + peft, recording
every adapter load."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fake_student_server import FakeStudentServer
from tests.integration_tests.conftest import read_jsonl, tiny

pytestmark = pytest.mark.slow


# a base student that knows some skills (shared with test_llm_teacher), LoRA-trained for two cycles
KNOWING = dict(tiny_hidden_size=64, tiny_layers=2, base_examples_per_skill=1500, base_epochs=2, finetune="lora",
               learning_rate=5e-3, epochs=2, budget=400)


@pytest.fixture(scope="module")
def knowing_base(tmp_path_factory) -> str:
    from teachgraph.domains import load_domain
    from teachgraph.graph import make_context
    from teachgraph.students import base_student_path

    ctx = make_context(tiny(run_dir=str(tmp_path_factory.mktemp("base") / "run"), **KNOWING))
    return base_student_path(ctx, load_domain(ctx), log=lambda _: None)


def run_in_process(run_dir: Path, **overrides) -> dict:
    from langgraph.checkpoint.memory import InMemorySaver

    from teachgraph.graph import build_graph, make_context

    ctx = make_context(tiny(run_dir=str(run_dir), **dict(KNOWING, **overrides)))
    graph = build_graph(checkpointer=InMemorySaver())
    graph.invoke({"run_dir": ctx.run_dir}, {"configurable": {"thread_id": "t"}, "recursion_limit": 1000}, context=ctx)
    return json.loads((run_dir / "summary.json").read_text())


def predictions(run_dir: Path, cycles: int) -> list[list[tuple[str, str]]]:
    return [[(r["id"], r["prediction"]) for r in read_jsonl(run_dir / "cycles" / f"cycle_{c:03d}" / "eval_val.jsonl")]
            for c in range(cycles + 1)]


def test_served_evaluation_loads_each_adapter_once_and_matches_in_process(tmp_path, knowing_base):
    with FakeStudentServer(knowing_base) as server:
        served = run_in_process(tmp_path / "served", student_eval_url=server.base)
        stats = server.stats()
    local = run_in_process(tmp_path / "local")

    trained = [tmp_path / "served" / "cycles" / f"cycle_{c:03d}" / "student" for c in (1, 2)]
    loads = [load["lora_path"] for load in stats["loads"]]
    names = [load["lora_name"] for load in stats["loads"]]
    # each cycle's adapter loaded once for its evaluation (and the best one again to test it, if it was unloaded)
    assert loads[:2] == [os.path.realpath(p) for p in trained] and len(set(names[:2])) == 2
    assert stats["unloads"] == names[:len(stats["unloads"])] and len(stats["loaded"]) <= 1
    # cycle 0 is the served base model; every later evaluation went through that cycle's adapter
    assert stats["requests"]["<base>"] > 0 and all(stats["requests"][n] > 0 for n in names)

    assert [c["val_accuracy"] for c in served["cycles"]] == [c["val_accuracy"] for c in local["cycles"]]
    assert served["test_accuracy"] == local["test_accuracy"]
    answers = predictions(tmp_path / "served", 2)
    assert answers == predictions(tmp_path / "local", 2)
    assert answers[2] != answers[0]  # the adapters changed the student's answers: they were applied


def test_a_server_of_another_model_fails_before_evaluating(tmp_path, knowing_base, base_student_ready):
    from teachgraph.graph import make_context
    from teachgraph.services import StudentCache
    from teachgraph.students.served import StudentServerError
    from teachgraph.domains import load_domain

    other = tmp_path / "other-model"
    other.mkdir()
    for name in ("config.json", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json"):
        if (Path(base_student_ready) / name).exists():
            (other / name).write_bytes((Path(base_student_ready) / name).read_bytes())
    with FakeStudentServer(knowing_base) as server:
        ctx = make_context(tiny(run_dir=str(tmp_path / "run"), finetune="lora", student_eval_url=server.base))
        with pytest.raises(StudentServerError, match="serves .* but the student's base model is"):
            StudentCache(ctx, load_domain(ctx)).get(str(other))
        assert server.stats()["requests"] == {}


def test_an_unreachable_server_is_a_clear_error(tmp_path, base_student_ready):
    from teachgraph.graph import make_context
    from teachgraph.services import StudentCache
    from teachgraph.students.served import StudentServerError
    from teachgraph.domains import load_domain

    ctx = make_context(tiny(run_dir=str(tmp_path / "run"), finetune="lora", student_eval_url="http://127.0.0.1:9"))
    with pytest.raises(StudentServerError, match="no SGLang server answers at http://127.0.0.1:9"):
        StudentCache(ctx, load_domain(ctx)).get(base_student_ready)
