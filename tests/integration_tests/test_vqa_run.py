"""`teachgraph run --domain vqa` end to end on the CPU: a tiny VLM (built from a config, pretrained on some
skills), the offline teacher and the LLM teacher (the simulated OpenAI server writing questions, answers and
scenes), rendered pictures stored in the run directory with provenance, and the report's image grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fake_teacher_server import FakeTeacher
from tests.integration_tests.conftest import read_jsonl, run_cli

pytestmark = pytest.mark.slow

SMALL = ["--set", "tiny_hidden_size=32", "--set", "tiny_layers=1", "--set", "base_examples_per_skill=200",
         "--set", "base_epochs=1", "--set", 'domain_options={"val_per_subskill": 2, "test_per_subskill": 2}',
         "--set", "epochs=1", "--quiet"]


def _check_images(run_dir: Path) -> list[dict]:
    accepted = read_jsonl(run_dir / "cycles" / "cycle_001" / "accepted.jsonl")
    assert accepted
    for e in accepted:
        image = e["provenance"]["image"]
        assert Path(image["path"]).is_file() and Path(image["path"]).parent == run_dir / "cycles" / "cycle_001" / "images"
        assert image["engine"] == "procedural-renderer" and image["description"] and len(image["phash"]) >= 16
        assert e["scene"]["objects"]
    return accepted


def test_the_offline_vqa_run_trains_a_tiny_vlm_and_reports_generated_images(tmp_path):
    run_dir = tmp_path / "vqa"
    done = run_cli("run", "--domain", "vqa", "--cycles", "1", "--budget", "60", "--run-dir", str(run_dir), *SMALL,
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [r["cycle"] for r in summary["cycles"]] == [0, 1]
    assert set(summary["cycles"][0]["per_skill"]) == {"exists", "count", "color", "shape", "spatial"}
    _check_images(run_dir)
    assert (run_dir / "report" / "generated_images.png").stat().st_size > 0
    assert "Sample generated images" in (run_dir / "report" / "report.md").read_text()


def test_the_llm_teacher_writes_scenes_and_a_wrong_answer_is_dropped_by_the_scene_verifier(tmp_path):
    with FakeTeacher("--faults", "wrong_answer") as server:
        run_dir = tmp_path / "vqa-llm"
        done = run_cli("run", "--domain", "vqa", "--cycles", "1", "--budget", "20", "--run-dir", str(run_dir),
                       "--teacher-url", server.url, "--teacher-model", server.model, *SMALL, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((run_dir / "summary.json").read_text())["cycles"][1]
    assert record["dropped"].get("verifier:wrong_answer") == 1, record["dropped"]
    accepted = _check_images(run_dir)
    assert all("image_description" in e for e in accepted)
