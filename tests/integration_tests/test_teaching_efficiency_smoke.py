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


def test_seed_sets_tuning_and_report_are_disjoint():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import teaching_efficiency as te
    finally:
        sys.path.remove(str(SCRIPT.parent))
    assert not set(te.TUNE_SEEDS) & set(te.REPORT_SEEDS) and len(te.REPORT_SEEDS) == 10
    assert te.parse_seeds(None, smoke=False) == (list(te.REPORT_SEEDS), "report")
    assert te.parse_seeds("tune", smoke=False) == (list(te.TUNE_SEEDS), "tune")
    assert te.parse_seeds("100,101", smoke=False)[1] == "report" and te.parse_seeds("0,100", smoke=False)[1] == "mixed"
    # the paired bootstrap: an environment with twice every seed's no-state gain has ratio 2 and a point interval
    boot = te.bootstrap_ratio({0: 0.2, 1: 0.4, 2: 0.3}, {0: 0.1, 1: 0.2, 2: 0.15})
    assert abs(boot["ratio"] - 2) < 1e-9 and abs(boot["low"] - 2) < 1e-9 and abs(boot["high"] - 2) < 1e-9
    noisy = te.bootstrap_ratio({0: 0.3, 1: 0.1, 2: 0.2}, {0: 0.1, 1: 0.2, 2: 0.1})
    assert noisy["low"] < noisy["ratio"] < noisy["high"]
    assert te.bootstrap_ratio({0: 0.2}, {0: -0.1})["ratio"] is None
    # the second regime's base student knows 7 of the 10 skills; the first is the default run's
    from teachgraph.domains import SyntheticDomain

    assert te.REGIMES["3-of-10"]["domain_options"] == {}
    known = te.REGIMES["7-of-10"]["domain_options"]["base_skills"]
    assert len(known) == 7 and set(known) <= {s.name for s in SyntheticDomain().skills}
    assert SyntheticDomain(base_skills=known).base_skills == tuple(known)


def test_teaching_efficiency_smoke(tmp_path, base_student_ready):
    out = tmp_path / "te.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out)], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=CLI_TIMEOUT, env=cli_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    md = out.with_suffix(".md").read_text()
    assert "| environment |" in md and "Forgetting per skill" in md
    assert result["smoke"] is True and result["seed_role"] == "smoke"
    assert {"cpu_count", "torch_threads", "versions", "git"} <= set(result["machine"])
    assert result["wall_seconds"] > 0
    assert set(result["regimes"]) == {"3-of-10", "7-of-10"}
    base_students = set()

    for name, regime in result["regimes"].items():
        assert f"## Regime {name}" in md and regime["why"]
        settings = regime["settings"]
        assert settings["config"]["cycles"] == TINY["cycles"] and settings["config"]["budget"] == TINY["budget"]
        envs, seeds = settings["envs"], settings["seeds"]
        assert "no-state" in envs and len(envs) >= 2 and len(seeds) >= 2
        base_students.add(settings["base_student"])

        runs = regime["runs"]
        assert sorted((r["env"], r["seed"]) for r in runs) == sorted((e, s) for e in envs for s in seeds)
        base = {r["base_val"] for r in runs}
        assert len(base) == 1  # every run of a regime starts from the same base student
        for r in runs:
            assert 0 <= r["base_val"] <= r["best_val"] <= 1 and 0 <= r["final_val"] <= r["best_val"]
            assert 0 <= r["test_at_best"] <= 1
            assert math.isclose(r["gain"], r["best_val"] - r["base_val"], abs_tol=1e-6)
            assert r["generated"] == TINY["budget"] and 0 < r["kept"] <= r["generated"]
            assert len(r["val_per_cycle"]) == TINY["cycles"] + 1 and r["seconds"] > 0
            assert set(r["skill_gains"]) == set(r["base_per_skill"]) == set(r["skill_worst_drop"]) and r["skill_gains"]
            for skill, drop in r["skill_worst_drop"].items():
                assert drop >= 0 and drop >= -r["skill_gains"][skill] - 1e-9  # the best cycle is one of the cycles

        summary = regime["summary"]
        assert set(summary["environments"]) == set(envs) and summary["weakest_skills"]
        for env, e in summary["environments"].items():
            assert e["runs"] == len(seeds)
            gains = [100 * r["gain"] for r in runs if r["env"] == env]
            assert math.isclose(e["gain_pp"]["mean"], sum(gains) / len(gains), abs_tol=1e-6)
            assert e["gain_pp"]["low"] <= e["gain_pp"]["mean"] <= e["gain_pp"]["high"]
            assert math.isclose(e["gain_per_1k_pp"]["mean"], e["gain_pp"]["mean"] * 1000 / TINY["budget"], abs_tol=1e-9)
            assert 0 <= e["test_at_best_pct"]["mean"] <= 100
            assert ("ratio_to_no_state" in e) == (env != "no-state")
            assert all(v >= 0 for v in e["skill_forgetting_pp"].values())
    assert len(base_students) == 2  # the two regimes' base students are different students
