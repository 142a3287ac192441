"""Every node function called directly, in the order the graph runs them, on the TINY configuration.

One module-scoped pipeline runs evaluate -> discover_skills -> organize_skills -> plan -> generate ->
deduplicate (twice) -> train -> evaluate -> finalize on a shared state; each test checks one step.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langgraph.runtime import Runtime

from teachgraph.graph import make_context
from teachgraph.nodes import deduplicate, discover_skills, evaluate, finalize, generate, organize_skills, plan, train
from teachgraph.domains import load_domain
from teachgraph.paths import RunPaths

from .conftest import read_events, read_jsonl, tiny

PROVENANCE_KEYS = {"cycle", "skill", "subskill", "generator", "teacher_model", "prompt_hash"}


def _digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict[str, Any]:
    run_dir = tmp_path_factory.mktemp("nodes") / "run"
    ctx = make_context(tiny(run_dir=str(run_dir)))
    runtime = Runtime(context=ctx)
    state: dict[str, Any] = {"run_dir": str(run_dir)}
    steps: dict[str, dict[str, Any]] = {}

    def step(label: str, node) -> dict[str, Any]:
        before = copy.deepcopy(state)
        update = node(state, runtime)
        steps[label] = {"before": before, "update": copy.deepcopy(update)}
        state.update(update)
        return update

    step("evaluate_0", evaluate)
    step("discover_skills", discover_skills)
    step("organize_skills", organize_skills)
    step("plan", plan)
    step("generate", generate)
    first = step("deduplicate", deduplicate)
    accepted = first["accepted_path"]
    steps["deduplicate"]["accepted_digest"] = _digest(accepted)
    # The same node again for the same cycle (as after a crash before its checkpoint): the rollback
    # must make it see the store as it was before the first run.
    again = deduplicate(copy.deepcopy(steps["deduplicate"]["before"]), runtime)
    steps["deduplicate_again"] = {"update": again, "accepted_digest": _digest(again["accepted_path"])}
    step("train", train)
    step("evaluate_1", evaluate)
    step("finalize", finalize)
    return {"ctx": ctx, "runtime": runtime, "paths": RunPaths.of(run_dir), "run_dir": run_dir,
            "steps": steps, "state": state}


def test_evaluate_base_student(pipeline):
    update = pipeline["steps"]["evaluate_0"]["update"]
    paths, ctx = pipeline["paths"], pipeline["ctx"]
    assert update["cycle"] == 0
    assert update["stop_reason"] is None
    assert update["run_dir"] == str(pipeline["run_dir"])
    assert [r["cycle"] for r in update["history"]] == [0]
    record = update["history"][0]
    assert 0.0 <= record["val_accuracy"] <= 1.0
    assert record["generated"] == 0 and record["kept"] == 0
    assert "evaluate" in record["seconds"]
    eval_file = paths.eval_val(0)
    assert eval_file.exists()
    rows = read_jsonl(eval_file)
    val = load_domain(ctx).load_split("val")
    assert len(rows) == len(val) == update["evaluation"]["n"]
    assert {r["id"] for r in rows} == {e["id"] for e in val}
    assert all(isinstance(r["correct"], bool) for r in rows)
    assert update["evaluation"]["errors"] == sum(not r["correct"] for r in rows)
    assert record["val_accuracy"] == pytest.approx(sum(r["correct"] for r in rows) / len(rows), abs=1e-6)
    assert set(record["per_skill"]) == set(load_domain(ctx).skill_catalog())
    assert update["student_path"] and (Path(update["student_path"]) / "config.json").exists()


def test_discover_skills_assigns_every_val_example(pipeline):
    update = pipeline["steps"]["discover_skills"]["update"]
    ctx, paths = pipeline["ctx"], pipeline["paths"]
    skills = update["skills"]
    assert skills["method"] == "gold"
    assert skills["path"] == str(paths.skills) and paths.skills.exists()
    stored = json.loads(paths.skills.read_text())
    val = load_domain(ctx).load_split("val")
    assert set(stored["assignment"]) == {e["id"] for e in val}
    assert set(stored["assignment"].values()) <= set(skills["skills"])
    assert set(skills["skills"]) == set(load_domain(ctx).skill_catalog())
    for info in skills["skills"].values():
        assert info["subskills"] and info["description"]
    assert "discover_skills" in update["cycle_stats"]["seconds"]


def test_organize_skills_builds_forest_with_allocations(pipeline):
    update = pipeline["steps"]["organize_skills"]["update"]
    ctx = pipeline["ctx"]
    forest = update["skill_tree"]
    skills = pipeline["steps"]["discover_skills"]["update"]["skills"]["skills"]
    assert set(forest["skills"]) == set(skills)
    for name, tree in forest["skills"].items():
        assert 1 <= len(tree["subskills"]) <= ctx.max_subskills
        assert set(tree["subskills"]) <= set(skills[name]["subskills"])
        for sub in tree["subskills"].values():
            assert 0 < sub["allocation"] <= ctx.subskill_cap
        assert len(tree["history"]) == 1 and tree["history"][0]["cycle"] == 0
        assert tree["history"][0]["action"]["type"] == "explore"
        assert tree["accuracy"] is not None  # observed from cycle 0's evaluation
    organizer = update["cycle_stats"]["organizer"]
    assert organizer["explore"] == len(forest["skills"]) and organizer["invalid_actions"] == 0


def test_plan_spends_the_cycle_budget(pipeline):
    step = pipeline["steps"]["plan"]
    update, before, ctx, paths = step["update"], step["before"], pipeline["ctx"], pipeline["paths"]
    expected = (ctx.budget - before.get("budget_used", 0)) // (ctx.cycles - before["cycle"])
    assert expected == 300  # 600 examples over 2 cycles
    new_plan = update["plan"]
    assert new_plan["cycle"] == 1
    assert new_plan["budget"] == expected
    assert sum(r["count"] for r in new_plan["requests"]) == expected
    assert all(r["count"] > 0 for r in new_plan["requests"])
    forest = pipeline["steps"]["organize_skills"]["update"]["skill_tree"]
    planned = {(r["skill"], r["subskill"]) for r in new_plan["requests"]}
    in_tree = {(s, n) for s, t in forest["skills"].items() for n in t["subskills"]}
    assert planned <= in_tree
    assert new_plan["path"] == str(paths.plan(1)) and paths.plan(1).exists()
    on_disk = json.loads(paths.plan(1).read_text())
    assert on_disk["cycle"] == 1 and on_disk["environment"] == "skill-tree"
    assert sum(r["count"] for r in on_disk["requests"]) == expected
    # the skill tree records what was planned for each subskill
    totals = {(s, n): sub["data_total"] for s, t in update["skill_tree"]["skills"].items()
              for n, sub in t["subskills"].items()}
    for r in new_plan["requests"]:
        assert totals[(r["skill"], r["subskill"])] >= r["count"]


def test_generate_writes_examples_with_provenance(pipeline):
    update = pipeline["steps"]["generate"]["update"]
    paths, ctx = pipeline["paths"], pipeline["ctx"]
    assert update["generated_path"] == str(paths.generated(1))
    rows = read_jsonl(paths.generated(1))
    assert len(rows) == update["cycle_stats"]["generated"] == update["budget_used"]
    assert 0 < len(rows) <= 300
    requests = pipeline["steps"]["plan"]["update"]["plan"]["requests"]
    for ex in rows:
        prov = ex["provenance"]
        assert PROVENANCE_KEYS <= set(prov)
        assert prov["cycle"] == 1
        assert prov["generator"] == "offline-program" and prov["teacher_model"] == "offline"
        assert prov["skill"] in load_domain(ctx).skill_catalog()
        assert ex["prompt"] and ex["answer"]
    assert {(ex["provenance"]["skill"], ex["provenance"]["subskill"]) for ex in rows} <= {
        (r["skill"], r["subskill"]) for r in requests}
    assert all(load_domain(ctx).verify(ex) is None for ex in rows)


def test_deduplicate_accounts_for_every_example(pipeline):
    update = pipeline["steps"]["deduplicate"]["update"]
    paths = pipeline["paths"]
    generated = read_jsonl(paths.generated(1))
    accepted = read_jsonl(paths.accepted(1))
    dropped = read_jsonl(paths.dropped(1))
    stats = update["cycle_stats"]
    assert update["accepted_path"] == str(paths.accepted(1))
    assert stats["kept"] == len(accepted) > 0
    assert len(accepted) + len(dropped) == len(generated)
    assert sum(stats["dropped"].values()) == len(dropped)
    assert dict(Counter(r["drop_reason"] for r in dropped)) == stats["dropped"]
    assert stats["generated"] == len(generated)  # earlier stages' numbers are carried along
    assert {"plan", "generate", "deduplicate"} <= set(stats["seconds"])
    prompts = [r["prompt"] for r in accepted]
    assert len(set(prompts)) == len(prompts)
    val_test = {e["prompt"] for split in ("val", "test") for e in load_domain(pipeline["ctx"]).load_split(split)}
    assert not val_test & set(prompts)
    for ex in accepted:
        assert PROVENANCE_KEYS <= set(ex["provenance"])


def test_deduplicate_rerun_for_same_cycle_is_idempotent(pipeline):
    first = pipeline["steps"]["deduplicate"]
    again = pipeline["steps"]["deduplicate_again"]
    assert again["update"]["cycle_stats"]["kept"] == first["update"]["cycle_stats"]["kept"]
    assert again["update"]["cycle_stats"]["dropped"] == first["update"]["cycle_stats"]["dropped"]
    assert again["accepted_digest"] == first["accepted_digest"]


def test_deduplicate_drops_and_counts_bad_examples(tmp_path):
    """Wrong answers, exact duplicates and copies of validation prompts are dropped, each reason counted."""
    run_dir = tmp_path / "run"
    ctx = make_context(tiny(run_dir=str(run_dir)))
    domain = load_domain(ctx)
    good = domain.generate("parity", "7 digits", None, 20, seed=123)  # 9 million prompts: no clashes
    wrong = dict(good[0], prompt="parity 1234567", answer="even")
    val_copy = dict(domain.load_split("val")[0])
    spaced = dict(good[2], prompt=good[2]["prompt"].replace(" ", "   "))  # the same question, spaced out
    rows = good + [dict(good[1]), spaced, wrong, val_copy]
    generated = tmp_path / "generated.jsonl"
    generated.write_text("".join(json.dumps(r) + "\n" for r in rows))
    state = {"run_dir": str(run_dir), "plan": {"cycle": 1}, "generated_path": str(generated)}
    runtime = Runtime(context=ctx)
    update = deduplicate(state, runtime)
    counts = update["cycle_stats"]["dropped"]
    assert counts.get("verifier:wrong_answer") == 1
    assert counts.get("exact_duplicate") == 2
    assert counts.get("eval_exact") == 1
    kept = read_jsonl(RunPaths.of(run_dir).accepted(1))
    assert update["cycle_stats"]["kept"] == len(kept) == len(good)
    # a later cycle sees cycle 1's examples in the store: all of them are duplicates now
    later = deduplicate(dict(state, plan={"cycle": 2}), runtime)
    assert later["cycle_stats"]["kept"] == 0
    assert later["cycle_stats"]["dropped"].get("exact_duplicate", 0) >= len(good)
    # and re-running cycle 1 still keeps what it kept the first time
    assert deduplicate(state, runtime)["cycle_stats"]["kept"] == len(good)


def test_deduplicate_drops_what_the_student_already_answers_when_asked(tmp_path, base_student):
    """DataEnvGym's second quality check, used as a filter: a student taught max_digit for a few
    seconds answers many max_digit examples and no 8-digit min_digit ones; with drop_solved on, the
    ones it answers go and the rest stay."""
    from teachgraph.students import TrainSettings, student_from_context

    run_dir = tmp_path / "run"
    ctx = make_context(tiny(run_dir=str(run_dir), drop_solved=True))
    domain = load_domain(ctx)
    student = student_from_context(ctx, base_student, domain)
    student.train(domain.generate("max_digit", "4 digits", None, 640, seed=1),
                  TrainSettings(epochs=4, batch_size=64, learning_rate=1e-2, seed=0))
    student.save(str(tmp_path / "student"))
    known = domain.generate("max_digit", "4 digits", None, 40, seed=7)
    unknown = domain.generate("min_digit", "8 digits", None, 40, seed=7)
    generated = tmp_path / "generated.jsonl"
    generated.write_text("".join(json.dumps(r) + "\n" for r in known + unknown))
    state = {"run_dir": str(run_dir), "plan": {"cycle": 1}, "generated_path": str(generated),
             "student_path": str(tmp_path / "student")}
    update = deduplicate(state, Runtime(context=ctx))
    solved = update["cycle_stats"]["dropped"].get("student_already_correct", 0)
    kept = read_jsonl(RunPaths.of(run_dir).accepted(1))
    kept_known = sum(e["skill"] == "max_digit" for e in kept)
    assert solved >= 8 and kept_known == 40 - solved and len(kept) == 80 - solved
    dropped = read_jsonl(RunPaths.of(run_dir).dropped(1))
    for row in dropped:  # every drop is an example the student really answers correctly
        assert row["drop_reason"] == "student_already_correct"
        assert domain.score(student.predict([row["prompt"]])[0], row)
    off = deduplicate(dict(state, run_dir=str(tmp_path / "off")), Runtime(context=make_context(tiny(run_dir=str(tmp_path / "off")))))
    assert "student_already_correct" not in off["cycle_stats"]["dropped"] and off["cycle_stats"]["kept"] == 80


def test_train_writes_next_student(pipeline):
    step = pipeline["steps"]["train"]
    update, paths = step["update"], pipeline["paths"]
    assert update["cycle"] == step["before"]["cycle"] + 1 == 1
    assert update["student_path"] == str(paths.student(1))
    student = Path(update["student_path"])
    assert (student / "config.json").exists()
    assert any(student.glob("*.safetensors")) or any(student.glob("*.bin"))
    kept = len(read_jsonl(paths.accepted(1)))
    assert update["train_examples_total"] == kept
    train_stats = update["cycle_stats"]["train"]
    assert train_stats["steps"] > 0 and train_stats["examples"] >= kept
    assert not list(student.parent.glob(".student-*"))  # no temporary directory left behind
    events = [(e["node"], e["cycle"]) for e in read_events(pipeline["run_dir"])]
    assert ("train", 1) in events


def test_evaluate_after_training_closes_cycle_record(pipeline):
    update = pipeline["steps"]["evaluate_1"]["update"]
    assert update["cycle"] == 1
    assert update["stop_reason"] is None  # 1 of 2 cycles, budget left
    assert [r["cycle"] for r in update["history"]] == [0, 1]
    record = update["history"][1]
    dedup_stats = pipeline["steps"]["deduplicate"]["update"]["cycle_stats"]
    assert record["generated"] == dedup_stats["generated"] > 0
    assert record["kept"] == dedup_stats["kept"]
    assert record["dropped"] == dedup_stats["dropped"]
    assert record["train_examples_total"] == dedup_stats["kept"]
    assert {"plan", "generate", "deduplicate", "train", "evaluate"} <= set(record["seconds"])
    assert record["train"]["steps"] > 0
    assert record["organizer"]["explore"] > 0
    assert pipeline["paths"].eval_val(1).exists()
    assert update["cycle_stats"] == {}  # the next cycle starts from empty stats


def test_finalize_writes_summary(pipeline):
    update = pipeline["steps"]["finalize"]["update"]
    paths, ctx, state = pipeline["paths"], pipeline["ctx"], pipeline["state"]
    assert paths.summary.exists()
    assert update["result"]["summary_path"] == str(paths.summary)
    summary = json.loads(paths.summary.read_text())
    for key in ("config", "environment", "seed", "cycles", "best_cycle", "test_accuracy", "per_example"):
        assert key in summary
    assert summary["config"]["budget"] == ctx.budget and summary["config"]["run_dir"] == ctx.run_dir
    assert summary["environment"] == "skill-tree" and summary["seed"] == ctx.seed
    cycles = summary["cycles"]
    assert [c["cycle"] for c in cycles] == [0, 1]
    for c in cycles:
        assert 0.0 <= c["val_accuracy"] <= 1.0
        for key in ("per_skill", "generated", "kept", "dropped", "train_examples_total", "seconds"):
            assert key in c
        assert "student_path" not in c and "eval_path" not in c
    best = max(cycles, key=lambda c: c["val_accuracy"])
    assert summary["best_cycle"] == best["cycle"] == update["result"]["best_cycle"]
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert summary["test_accuracy"] == update["result"]["test_accuracy"]
    test_rows = read_jsonl(paths.test_eval)
    assert len(test_rows) == len(load_domain(ctx).load_split("test"))
    assert summary["test_accuracy"] == pytest.approx(sum(r["correct"] for r in test_rows) / len(test_rows), abs=1e-6)
    per_example = summary["per_example"]
    files = per_example["evaluations"] + per_example["accepted"] + per_example["dropped"]
    assert per_example["evaluations"][-1] == str(paths.test_eval)
    assert per_example["accepted"] == [str(paths.accepted(1))]
    for f in files:
        assert Path(f).exists(), f
    assert summary["budget_used"] == state["budget_used"]


# -- stop conditions ---------------------------------------------------------------------------

def _record(cycle: int, accuracy: float) -> dict[str, Any]:
    return {"cycle": cycle, "val_accuracy": accuracy, "per_skill": {}}


def _evaluate_with(tmp_path: Path, student_path: str, state: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    ctx = make_context(tiny(run_dir=str(tmp_path / "run"), **overrides))
    return evaluate(dict(state, run_dir=ctx.run_dir, student_path=student_path), Runtime(context=ctx))


def test_stop_reason_max_cycles(tmp_path, base_student):
    update = _evaluate_with(tmp_path, base_student, {"cycle": 2, "budget_used": 600}, cycles=2, budget=600)
    assert update["stop_reason"] == "max_cycles"  # checked before the (also exhausted) budget
    update = _evaluate_with(tmp_path, base_student, {"cycle": 1, "budget_used": 10}, cycles=2, budget=600)
    assert update["stop_reason"] is None


def test_stop_reason_budget_exhausted(tmp_path, base_student):
    update = _evaluate_with(tmp_path, base_student, {"cycle": 1, "budget_used": 600}, cycles=3, budget=600)
    assert update["stop_reason"] == "budget"
    update = _evaluate_with(tmp_path, base_student, {"cycle": 1, "budget_used": 599}, cycles=3, budget=600)
    assert update["stop_reason"] is None


def test_stop_reason_target_accuracy(tmp_path, base_student):
    """A student trained briefly on parity (answers: even / odd) reaches a target on parity's validation set."""
    from teachgraph.students import student_from_context
    from teachgraph.students.base import TrainSettings

    options = {"val_per_subskill": 10, "test_per_subskill": 4, "skills": ["parity"]}
    ctx = make_context(tiny(run_dir=str(tmp_path / "run"), domain_options=options))
    domain = load_domain(ctx)
    student = student_from_context(ctx, base_student, domain)
    student.train(domain.generate("parity", None, None, 800, seed=7),
                  TrainSettings(epochs=4, batch_size=32, learning_rate=1e-2, seed=0))
    trained = str(tmp_path / "parity_student")
    student.save(trained)

    measured = _evaluate_with(tmp_path, trained, {"cycle": 1}, cycles=5, domain_options=options)
    accuracy = measured["history"][-1]["val_accuracy"]
    assert measured["stop_reason"] is None
    assert accuracy > 0, "a student that answers even/odd gets some parity prompts right"
    reached = _evaluate_with(tmp_path, trained, {"cycle": 1}, cycles=5, domain_options=options,
                             target_accuracy=accuracy)
    assert reached["history"][-1]["val_accuracy"] == accuracy
    assert reached["stop_reason"] == "target_accuracy"
    if accuracy < 1.0:
        higher = _evaluate_with(tmp_path, trained, {"cycle": 1}, cycles=5, domain_options=options,
                                target_accuracy=min(1.0, accuracy + 1e-3))
        assert higher["stop_reason"] is None


def test_stop_reason_patience(tmp_path, base_student):
    earlier = [_record(0, 1.0)]  # nothing can beat a perfect cycle 0
    update = _evaluate_with(tmp_path, base_student, {"cycle": 1, "history": earlier}, cycles=5, patience=1)
    assert update["stop_reason"] == "no_improvement"
    update = _evaluate_with(tmp_path, base_student, {"cycle": 1, "history": earlier}, cycles=5, patience=2)
    assert update["stop_reason"] is None
    assert [r["cycle"] for r in update["history"]] == [0, 1]
