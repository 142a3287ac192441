"""The offline VQA domain end to end: does `teachgraph run --domain vqa` raise a tiny VLM's validation accuracy
on this CPU within 10 minutes, and how does the no-state control do at the same budget?

    python benchmarks/vqa_teaching.py [--smoke] [--seeds 0,1,2] [--out benchmarks/results/vqa_teaching.json]

The base student (a tiny Llava from a config: CLIP tower over 8-pixel patches of 48x48 pictures, a
character-level Llama, pretrained on exists/color/shape) is built first and timed apart; then the same
configuration runs twice per seed as real `python -m teachgraph run` subprocesses, one after the other: the
skill-tree environment and the no-state control (skills drawn uniformly at random), same seed, same budget;
per environment, the mean gain over seeds with a Student-t 95% interval and its ratio to no-state's mean gain
(a point estimate: three seeds give no useful interval for a ratio). Recorded per
run: wall seconds, validation accuracy at cycle 0 and at the best cycle, test accuracy at the best cycle,
per-skill accuracy, generated and kept examples. --smoke: a 32-wide, 1-layer student, one small cycle.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

NAME = "vqa_teaching"
FULL = {"domain": "vqa", "cycles": 3, "budget": 3000, "epochs": 3, "learning_rate": 1e-3, "tiny_hidden_size": 128,
        "tiny_layers": 2, "base_examples_per_skill": 2500, "base_epochs": 2,
        "domain_options": {"val_per_subskill": 10, "test_per_subskill": 10}}
SMOKE = {"domain": "vqa", "cycles": 1, "budget": 40, "epochs": 1, "tiny_hidden_size": 32, "tiny_layers": 1,
         "base_examples_per_skill": 100, "base_epochs": 1,
         "domain_options": {"val_per_subskill": 2, "test_per_subskill": 2}}
ENVIRONMENTS = ("skill-tree", "no-state")
WALL_TARGET_S = 600


def build_base(config: dict, work: Path) -> float:
    from teachgraph.domains import load_domain
    from teachgraph.graph import make_context
    from teachgraph.students import base_student_path

    started = time.perf_counter()
    ctx = make_context(dict(config, run_dir=str(work / "base")))
    base_student_path(ctx, load_domain(ctx), log=print)
    return round(time.perf_counter() - started, 1)


def run_environment(config: dict, environment: str, seed: int, work: Path) -> dict:
    run_dir = work / environment
    work.mkdir(parents=True, exist_ok=True)
    config_path = work / f"{environment}.json"
    config_path.write_text(json.dumps(dict(config, environment=environment, seed=seed)))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "teachgraph", "run", "--config", str(config_path), "--run-dir",
                           str(run_dir), "--quiet"], capture_output=True, text=True, cwd=str(common.ROOT))
    wall = round(time.perf_counter() - started, 1)
    if done.returncode != 0:
        raise RuntimeError(f"{environment} run failed: {done.stderr[-2000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    cycles = summary["cycles"]
    best = max(cycles, key=lambda r: r["val_accuracy"])
    return {"environment": environment, "wall_s": wall, "val_base": cycles[0]["val_accuracy"],
            "val_best": best["val_accuracy"], "best_cycle": best["cycle"],
            "val_gain_points": round(100 * (best["val_accuracy"] - cycles[0]["val_accuracy"]), 1),
            "test_at_best": summary["test_accuracy"], "per_skill_base": cycles[0]["per_skill"],
            "per_skill_best": best["per_skill"], "generated": sum(r["generated"] for r in cycles),
            "kept": sum(r["kept"] for r in cycles), "val_by_cycle": [r["val_accuracy"] for r in cycles]}


def summarize(runs: list[dict]) -> dict[str, dict]:
    """Per environment: the gain's and the test accuracy's mean and Student-t 95% interval over seeds, the mean
    wall time, and the ratio of its mean gain to no-state's (None where no-state's is not positive)."""
    from teaching_efficiency import t_interval

    out = {}
    for env in ENVIRONMENTS:
        mine = [r for r in runs if r["environment"] == env]
        out[env] = {"gain_points": t_interval([r["val_gain_points"] for r in mine]),
                    "test_at_best": t_interval([100 * r["test_at_best"] for r in mine]),
                    "wall_s_mean": round(sum(r["wall_s"] for r in mine) / len(mine), 1), "seeds": len(mine)}
    control = out["no-state"]["gain_points"]["mean"]
    for env in ENVIRONMENTS:
        out[env]["ratio_to_no_state"] = round(out[env]["gain_points"]["mean"] / control, 3) if control > 0 else None
    return out


def interval_text(t: dict) -> str:
    return f"{t['mean']:.1f}" + (f" ± {t['half_width']:.1f}" if t["half_width"] is not None else "")


def main() -> int:
    p = common.parser(NAME, __doc__)
    p.add_argument("--seeds", default=None, help="comma-separated run seeds (default 0,1,2; --smoke: 0)")
    args = p.parse_args()
    seeds = [int(x) for x in (args.seeds or ("0" if args.smoke else "0,1,2")).split(",")]
    clock = common.Stopwatch()
    config = SMOKE if args.smoke else FULL
    machine = common.machine_record()
    with tempfile.TemporaryDirectory(prefix="teachgraph-vqa-bench-") as tmp:
        work = Path(tmp)
        base_s = build_base(config, work)
        runs = []
        for seed in seeds:
            for env in ENVIRONMENTS:
                runs.append(dict(run_environment(config, env, seed, work / f"seed{seed}"), seed=seed))
                r = runs[-1]
                print(f"{env:>10} seed {seed}: val {100 * r['val_base']:.1f}% -> {100 * r['val_best']:.1f}% "
                      f"({r['val_gain_points']:+.1f}), test {100 * r['test_at_best']:.1f}%, {r['wall_s']:.0f} s", flush=True)
    summary = summarize(runs)
    rows = [(r["environment"], r["seed"], f"{100 * r['val_base']:.1f}% → {100 * r['val_best']:.1f}%",
             r["val_gain_points"], f"{100 * r['test_at_best']:.1f}%", r["kept"], r["wall_s"]) for r in runs]
    summary_rows = [(env, s["seeds"], interval_text(s["gain_points"]), interval_text(s["test_at_best"]),
                     s["ratio_to_no_state"], s["wall_s_mean"]) for env, s in summary.items()]
    skills = sorted(runs[0]["per_skill_base"])
    skill_rows = [(s, f"{100 * runs[0]['per_skill_base'][s]:.0f}%",
                   *(f"{100 * sum(r['per_skill_best'][s] for r in runs if r['environment'] == env) / len(seeds):.0f}%"
                     for env in ENVIRONMENTS)) for s in skills]
    markdown = "\n\n".join([
        f"Seeds {seeds}; configuration `{json.dumps(config)}`; base student built in {base_s} s (untimed in the runs; "
        "0 when cached). Gain = best-cycle validation accuracy minus cycle 0's, points; ± = Student-t 95% over seeds.",
        common.md_table(["environment", "seeds", "validation gain (points)", "test at best (%)",
                         "gain / no-state gain", "wall s (mean)"], summary_rows),
        common.md_table(["environment", "seed", "validation (cycle 0 → best)", "gain (points)", "test at best", "kept",
                         "wall s"], rows),
        common.md_table(["skill", "base"] + [f"best, {env} (mean over seeds)" for env in ENVIRONMENTS], skill_rows)])
    tree_runs = [r for r in runs if r["environment"] == "skill-tree"]
    result = {"benchmark": NAME, "smoke": args.smoke, "seeds": seeds, "config": config, "base_build_s": base_s,
              "machine": machine, "results": runs, "summary": summary, "seconds": clock.seconds(),
              "what": "teachgraph run --domain vqa (tiny VLM, offline teacher) vs the no-state control, same budget",
              "targets": [common.target("skill-tree run wall seconds (slowest seed)", max(r["wall_s"] for r in tree_runs),
                                        WALL_TARGET_S, "<=", "s"),
                          common.target("skill-tree validation gain (mean over seeds)",
                                        summary["skill-tree"]["gain_points"]["mean"], 0.1, ">=", "points")]}
    common.write_result(common.out_path(NAME, args), result, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
