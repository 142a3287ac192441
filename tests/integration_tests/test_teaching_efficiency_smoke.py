"""benchmarks/teaching_efficiency.py --smoke as a real subprocess: the JSON and markdown it writes have
the promised structure and sane values (no timings asserted, no results hard-coded)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from tests.conftest import ROOT, TINY

from .conftest import CLI_TIMEOUT, cli_env

SCRIPT = ROOT / "benchmarks" / "teaching_efficiency.py"


def test_smoke_config_is_the_tests_tiny_config():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import teaching_efficiency
    finally:
        sys.path.remove(str(SCRIPT.parent))
    assert teaching_efficiency.SMOKE == TINY
    assert teaching_efficiency.t_interval([1.0, 3.0])["half_width"] == 12.706  # t(0.975, 1) x sd 1.414 / sqrt 2
    one = teaching_efficiency.t_interval([2.0])
    assert one["mean"] == 2.0 and one["half_width"] is None


def test_teaching_efficiency_smoke(tmp_path, base_student_ready):
    out = tmp_path / "te.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out)], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=CLI_TIMEOUT, env=cli_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert out.with_suffix(".md").exists() and "| environment |" in out.with_suffix(".md").read_text()

    settings = result["settings"]
    assert result["smoke"] is True
    assert settings["config"]["cycles"] == TINY["cycles"] and settings["config"]["budget"] == TINY["budget"]
    envs, seeds = settings["envs"], settings["seeds"]
    assert "no-state" in envs and len(envs) >= 2 and len(seeds) >= 2
    assert {"cpu_count", "torch_threads", "versions", "git"} <= set(result["machine"])
    assert result["wall_seconds"] > 0

    runs = result["runs"]
    assert sorted((r["env"], r["seed"]) for r in runs) == sorted((e, s) for e in envs for s in seeds)
    base = {r["base_val"] for r in runs}
    assert len(base) == 1  # every run starts from the same base student
    for r in runs:
        assert 0 <= r["base_val"] <= r["best_val"] <= 1 and 0 <= r["final_val"] <= r["best_val"]
        assert 0 <= r["test_at_best"] <= 1
        assert math.isclose(r["gain"], r["best_val"] - r["base_val"], abs_tol=1e-6)
        assert r["generated"] == TINY["budget"] and 0 < r["kept"] <= r["generated"]
        assert len(r["val_per_cycle"]) == TINY["cycles"] + 1 and r["seconds"] > 0
        assert set(r["skill_gains"]) == set(r["base_per_skill"]) and r["skill_gains"]

    summary = result["summary"]
    assert set(summary["environments"]) == set(envs) and summary["weakest_skills"]
    for env, e in summary["environments"].items():
        assert e["runs"] == len(seeds)
        gains = [100 * r["gain"] for r in runs if r["env"] == env]
        assert math.isclose(e["gain_pp"]["mean"], sum(gains) / len(gains), abs_tol=1e-6)
        assert e["gain_pp"]["low"] <= e["gain_pp"]["mean"] <= e["gain_pp"]["high"]
        assert math.isclose(e["gain_per_1k_pp"]["mean"], e["gain_pp"]["mean"] * 1000 / TINY["budget"], abs_tol=1e-9)
        assert 0 <= e["test_at_best_pct"]["mean"] <= 100
        assert ("ratio_to_no_state" in e) == (env != "no-state")
