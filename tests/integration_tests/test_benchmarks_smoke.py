"""`benchmarks/run_all.py --smoke` as a real subprocess over every benchmark but teaching efficiency (which has
its own smoke test): each writes the promised JSON and markdown with sane values. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY

from .conftest import cli_env

BENCHMARKS = ["cycle_cost", "train_throughput", "eval_throughput", "dedup", "dedup_server", "resume",
              "teacher_throughput", "prompt_prefix", "vqa_teaching"]
TIMEOUT = 600


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, base_student_ready) -> dict:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--smoke", "--only",
                           ",".join(BENCHMARKS), "--results-dir", str(out)],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=TIMEOUT, env=cli_env())
    results = {name: json.loads((out / f"{name}.json").read_text()) for name in BENCHMARKS
               if (out / f"{name}.json").exists()}
    return {"proc": proc, "dir": out, "results": results}


def test_run_all_runs_every_benchmark_and_writes_the_report(smoke):
    proc = smoke["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(smoke["results"]) == sorted(BENCHMARKS)
    summary = json.loads((smoke["dir"] / "run_all.json").read_text())
    for name in BENCHMARKS:
        assert summary["benchmarks"][name]["status"] == "ok"
        assert summary["benchmarks"][name]["wall_s"] > 0
        assert (smoke["dir"] / f"{name}.md").read_text().startswith(f"## {name}")
    report = (smoke["dir"] / "REPORT.md").read_text()
    assert "## Summary" in report and "## Targets" in report
    for name in BENCHMARKS:
        assert f"## {name}" in report


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_result_records_machine_versions_and_commit(smoke, name):
    result = smoke["results"][name]
    assert result["benchmark"] == name and result["smoke"] is True and result["seconds"] > 0
    machine = result["machine"]
    assert machine["cores"] >= 1 and machine["torch_threads"] >= 1 and machine["timestamp"]
    assert {"python", "torch", "transformers", "peft", "langgraph", "chromadb"} <= set(machine["versions"])
    assert machine["git_commit"] is None or len(machine["git_commit"]) == 40
    for target in result["targets"]:
        assert {"name", "value", "target", "op", "met"} <= set(target)


def test_cycle_cost(smoke):
    r = smoke["results"]["cycle_cost"]["results"]
    assert [row["cycle"] for row in r["cycles"]] == list(range(TINY["cycles"] + 1))
    for row in r["cycles"][1:]:
        assert row["wall"] > 0 and row["train"] > 0 and row["evaluate"] > 0 and row["generate"] >= 0
        assert row["checkpoint_writes"] > 0 and row["checkpoint_calls"] > 0
        assert row["wall"] >= row["train"] + row["evaluate"]
        assert 0 < row["overhead_share"] < 1
    total = r["total"]
    assert total["cycles"] == TINY["cycles"] and 0 < total["overhead_share"] < 1
    assert total["wall"] <= total["run_wall"]


def test_train_throughput(smoke):
    r = smoke["results"]["train_throughput"]["results"]
    assert r["tokens"] > 0 and r["steps"] > 0
    assert r["tokens_per_s"]["train_path"] > 0 and r["tokens_per_s"]["bare_loop"] > 0
    # a ratio of two timings on a TINY batch of a busy machine: only its sign and finiteness are meaningful here
    assert 0 < r["ratio_median"] < 100 and all(0 < x < 100 for x in r["ratio_per_round"])
    flops = r["flops"]
    assert flops["counted_per_epoch"] > 0 and flops["matmul"]["best_flops_per_s"] > 0
    assert 0 < flops["fraction_of_matmul_train_path"] < 10


def test_eval_throughput(smoke):
    r = smoke["results"]["eval_throughput"]["results"]
    assert r["prompts"] == 10 * 3 * TINY["domain_options"]["val_per_subskill"]
    assert r["prompts_per_s"]["batched"] > 0 and r["prompts_per_s"]["one_by_one"] > 0
    assert 0 < r["speedup"] < 100
    assert 0 <= r["answer_agreement"] <= 1


def test_dedup(smoke):
    r = smoke["results"]["dedup"]["results"]
    assert [row["stored"] for row in r["speed"]] == [200, 1000]
    assert all(row["checks_per_s"] > 0 and row["fill_seconds"] > 0 for row in r["speed"])
    hashing = r["quality"][0]
    assert hashing["embedding"] == "hashing"
    for scores in (hashing["all"], hashing["surface_only"]):
        assert 0 <= scores["precision"] <= 1 and 0 <= scores["recall"] <= 1
    kinds = hashing["by_kind"]
    for kind in ("case", "spacing", "case + spacing"):  # the obvious variants are always caught
        assert kinds[kind]["duplicate"] and kinds[kind]["pairs"] > 0 and kinds[kind]["flagged_share"] == 1.0
    assert not kinds["one number differs"]["duplicate"] and kinds["paraphrase"]["duplicate"]


def test_dedup_server(smoke):
    rows = smoke["results"]["dedup_server"]["results"]["rows"]
    assert [(r["mode"], r["stored"]) for r in rows] == [("in-process", 300), ("in-process", 1000),
                                                         ("server", 300), ("server", 1000)]
    assert all(r["checks_per_s"] > 0 and r["fill_seconds"] > 0 for r in rows)
    for r in rows[2:]:
        assert r["open_s"] > 0 and r["follow_s"] > 0 and r["server_query_near_found"] <= r["server_query_near_by_exact"]


def test_resume(smoke):
    r = smoke["results"]["resume"]["results"]
    assert r["kill"]["returncode"] == -9 and r["kill"]["next_at_kill"] == ["train"]
    assert r["finished_nodes_reexecuted"] == 0 and r["reexecuted"] == {}
    assert r["run_completed"] and r["first_new_event"] == ["train", 2]
    t = r["resume"]
    assert 0 < t["resume_point_s"] <= t["first_node_start_s"] <= t["first_event_s"] <= t["total_s"]
    assert r["cli_startup_s"] > 0


def test_teacher_throughput(smoke):
    r = smoke["results"]["teacher_throughput"]["results"]
    assert r["requests"] > 0 and r["examples_per_s"] > 0
    assert 0 < r["fraction_of_ideal"] < 10


def test_prompt_prefix(smoke):
    r = smoke["results"]["prompt_prefix"]["results"]
    before, after = r["shares"]["before"], r["shares"]["after"]
    for shares in (before, after):
        assert shares["calls"] > 0 and 0 < shares["radix_reusable"] <= shares["prompt_units"]
        assert 0 < shares["radix_share"] < 1 and shares["prefix_common_to_all"] > 0
    assert after["prefix_common_to_all"] > before["prefix_common_to_all"]  # the reordering is what it measures
    assert r["unit"] in ("tokens", "characters") and (r["unit"] == "tokens") == (r["server_missing"] is None)


def test_vqa_teaching(smoke):
    result = smoke["results"]["vqa_teaching"]
    assert result["base_build_s"] >= 0  # 0 when the base student is already cached (a second `make test`)
    runs = {r["environment"]: r for r in result["results"]}
    assert set(runs) == {"skill-tree", "no-state"}
    for r in runs.values():
        assert 0 <= r["val_base"] <= r["val_best"] <= 1 and 0 <= r["test_at_best"] <= 1
        assert r["wall_s"] > 0 and r["kept"] > 0 and len(r["val_by_cycle"]) == 2
        assert set(r["per_skill_base"]) == {"exists", "count", "color", "shape", "spatial"}
