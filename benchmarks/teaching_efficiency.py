"""Teaching efficiency: how much each teacher environment raises the student per generated example.

    python benchmarks/teaching_efficiency.py [--out benchmarks/results/teaching_efficiency.json] [--smoke]
                                             [--seeds N] [--envs skill-tree,no-state] [--budget B] [--cycles C]
                                             [--set FIELD=JSON] [--runs-dir DIR]

The paper's main claim (DataEnvGym, Khan et al. 2025), reproduced on the offline CPU domain: every
environment in {skill-tree, skill-list, open-ended, no-state} x several seeds runs through the real graph
(`graph.build_graph`, in this process, one run directory per run) with the same generated-data budget, the
same number of cycles and the same cached base student. Per environment it reports the mean and a Student-t
95% interval over seeds of the validation gain (best cycle minus base), the test accuracy of the best
cycle, the gain per 1,000 generated examples, the ratio of each environment's gain to no-state's (mean of
per-seed-pair ratios, seed s of an environment against seed s of no-state, with a Student-t 95% interval
over the pairs, next to the ratio of the mean gains), and the share of the gain that comes from the weakest
skills (the half of the skills the base student scores lowest on). Writes the JSON given by --out and a markdown table
next to it (same name, .md).

--smoke runs the tiny test configuration (tests/conftest.py's TINY: 2 cycles, budget 600, a 1-layer
student) for 2 environments x 2 seeds in well under a minute: a check that the benchmark works, not a result.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENVS = ("skill-tree", "skill-list", "open-ended", "no-state")
BASELINE = "no-state"
WEAKEST_SHARE = 0.5  # "the weakest skills": the half of the skills the base student scores lowest on (ties: by name)

# The full mode: 4 environments x 5 seeds, about 20 s a run on an idle 2-core machine. Teaching
# efficiency is measured where data is scarce: a quarter of the default run's budget (2,000 generated
# examples instead of 8,000) in 4 cycles instead of 5, the same for every run. At the default budget
# every environment gets about half of the headroom (README), which leaves no room for a 2x ratio;
# pass --budget 8000 --cycles 5 to measure it there.
FULL = {"cycles": 4, "budget": 2000}
FULL_SEEDS = 5
# tests/conftest.py's TINY configuration (a 1-layer, 32-wide student; 4 val/test examples per subskill)
SMOKE = {"cycles": 2, "budget": 600, "tiny_hidden_size": 32, "tiny_layers": 1, "base_examples_per_skill": 300,
         "base_epochs": 1, "epochs": 1, "domain_options": {"val_per_subskill": 4, "test_per_subskill": 4}}

# two-sided 95% Student-t quantiles t_{0.975, df}, df = 1..30 (scipy is not a dependency)
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)


def t_interval(values: list[float]) -> dict[str, Any]:
    """Mean and Student-t 95% interval of the mean (half-width None for fewer than 2 values)."""
    values = [float(v) for v in values]
    mean = statistics.fmean(values) if values else float("nan")
    if len(values) < 2:
        return {"mean": mean, "half_width": None, "low": None, "high": None, "n": len(values)}
    df = len(values) - 1
    t = T975[df - 1] if df <= len(T975) else 1.960
    half = t * statistics.stdev(values) / math.sqrt(len(values))
    return {"mean": mean, "half_width": half, "low": mean - half, "high": mean + half, "n": len(values)}


def machine_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "platform": platform.platform(), "python": platform.python_version(),
                            "processor": platform.processor() or platform.machine()}
    try:
        with open("/proc/loadavg") as handle:
            info["load_average_at_start"] = [float(x) for x in handle.read().split()[:3]]
    except OSError:
        pass
    versions = {}
    for name in ("torch", "transformers", "langgraph", "chromadb", "peft"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - a missing optional package is just not reported
            pass
    info["versions"] = versions
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip())
        info["git"] = {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.CalledProcessError):
        info["git"] = None
    return info


RECORD = "benchmark_record.json"  # a finished run's record, kept in its run directory


def run_one(config: dict[str, Any], env: str, seed: int, run_dir: Path) -> dict[str, Any]:
    """One run through the real graph, in its own run directory; returns its per-run record. A run
    directory (under --runs-dir) that already holds the record of the same configuration is reused,
    so an interrupted benchmark continues where it stopped."""
    from teachgraph.graph import make_context
    from teachgraph.io import read_json, write_json_atomic
    from teachgraph.run import Run

    ctx = make_context(dict(config, environment=env, seed=seed, run_dir=str(run_dir)))
    if (run_dir / RECORD).exists():
        stored = read_json(run_dir / RECORD)
        if stored.get("fingerprint") == ctx.fingerprint():
            return stored["record"]
    if run_dir.exists():
        shutil.rmtree(run_dir)
    started = time.perf_counter()
    with Run.create(ctx) as run:
        run.invoke()
    record = record_of(run_dir, env, seed, time.perf_counter() - started)
    write_json_atomic(run_dir / RECORD, {"fingerprint": ctx.fingerprint(), "record": record})
    return record


def record_of(run_dir: Path, env: str, seed: int, seconds: float) -> dict[str, Any]:
    """The per-run record, from a finished run's summary.json."""
    from teachgraph.io import read_json

    summary = read_json(run_dir / "summary.json")
    cycles = summary["cycles"]
    base, best = cycles[0], next(c for c in cycles if c["cycle"] == summary["best_cycle"])
    return {
        "env": env, "seed": seed,
        "base_val": base["val_accuracy"], "best_val": summary["best_val_accuracy"], "final_val": cycles[-1]["val_accuracy"],
        "best_cycle": summary["best_cycle"], "gain": summary["val_gain"], "test_at_best": summary["test_accuracy"],
        "generated": summary["budget_used"], "kept": summary["train_examples_total"], "seconds": round(seconds, 1),
        "val_per_cycle": [c["val_accuracy"] for c in cycles],
        "base_per_skill": base["per_skill"],
        "skill_gains": {s: round(best["per_skill"].get(s, 0.0) - a, 6) for s, a in base["per_skill"].items()},
    }


def weakest_skills(runs: list[dict[str, Any]]) -> list[str]:
    """The half of the skills the (shared) base student scores lowest on, ties broken by name."""
    base = runs[0]["base_per_skill"]
    return sorted(base, key=lambda s: (base[s], s))[:max(1, round(WEAKEST_SHARE * len(base)))]


def summarize(runs: list[dict[str, Any]], envs: list[str]) -> dict[str, Any]:
    weakest = weakest_skills(runs)
    by_env = {e: sorted((r for r in runs if r["env"] == e), key=lambda r: r["seed"]) for e in envs}
    baseline = {r["seed"]: r["gain"] for r in by_env.get(BASELINE, [])}
    out: dict[str, Any] = {}
    for env, rows in by_env.items():
        gains = [100 * r["gain"] for r in rows]
        per_1k = [100 * r["gain"] / (r["generated"] / 1000) for r in rows if r["generated"]]
        shares = []
        for r in rows:
            total = sum(r["skill_gains"].values())
            shares.append(sum(r["skill_gains"][s] for s in weakest) / total if total > 0 else float("nan"))
        entry = {
            "runs": len(rows),
            "gain_pp": t_interval(gains),
            "test_at_best_pct": t_interval([100 * r["test_at_best"] for r in rows]),
            "best_val_pct": t_interval([100 * r["best_val"] for r in rows]),
            "gain_per_1k_pp": t_interval(per_1k),
            "weakest_share": t_interval([s for s in shares if not math.isnan(s)]),
            "weakest_gain_pp": t_interval([100 * sum(r["skill_gains"][s] for s in weakest) / len(weakest) for r in rows]),
            "skill_gain_pp": {s: round(100 * statistics.fmean(r["skill_gains"][s] for r in rows), 2)
                              for s in sorted(rows[0]["skill_gains"])} if rows else {},
            "seconds_mean": round(statistics.fmean(r["seconds"] for r in rows), 1) if rows else None,
        }
        pairs = [r["gain"] / baseline[r["seed"]] for r in rows if baseline.get(r["seed"], 0) > 0]
        if baseline and env != BASELINE:
            mean_base = statistics.fmean(baseline.values())
            entry["ratio_to_no_state"] = dict(
                t_interval(pairs), ratio_of_means=statistics.fmean(r["gain"] for r in rows) / mean_base if mean_base > 0 else None)
        out[env] = entry
    return {"weakest_skills": weakest, "environments": out}


def _fmt(ci: dict[str, Any], digits: int = 1) -> str:
    if ci["half_width"] is None:
        return f"{ci['mean']:.{digits}f}"
    return f"{ci['mean']:.{digits}f} ± {ci['half_width']:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    summary = result["summary"]
    lines = [
        f"# Teaching efficiency{' (smoke)' if result['smoke'] else ''}{'' if result['complete'] else ' (partial: stopped early)'}",
        "",
        f"{len(s['envs'])} environments x {len(s['seeds'])} seeds ({', '.join(map(str, s['seeds']))}); every run: "
        f"{s['config']['cycles']} cycles, budget {s['config']['budget']} generated examples, the same base student. "
        f"Intervals: Student-t 95% over seeds; ratio: mean of per-seed-pair ratios (env seed s / no-state seed s) "
        f"with a Student-t 95% interval over the pairs, and the ratio of mean gains in brackets. Weakest skills: "
        f"{', '.join(summary['weakest_skills'])} (lowest base accuracy). Wall: {result['wall_seconds']:.0f} s.",
        "",
        "| environment | val gain (pp) | test at best (%) | gain per 1k examples (pp) | ratio to no-state | "
        "share of gain from weakest skills | s/run |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for env, e in summary["environments"].items():
        ratio = e.get("ratio_to_no_state")
        ratio_text = "1 (baseline)" if env == BASELINE else (
            f"{_fmt(ratio, 2)} [{ratio['ratio_of_means']:.2f}]" if ratio and ratio["n"] else "n/a")
        share = e["weakest_share"]
        share_text = f"{100 * share['mean']:.0f}%" + (f" ± {100 * share['half_width']:.0f}" if share["half_width"] is not None else "") \
            if share["n"] else "n/a"
        lines.append(f"| {env} | {_fmt(e['gain_pp'])} | {_fmt(e['test_at_best_pct'])} | {_fmt(e['gain_per_1k_pp'], 2)} | "
                     f"{ratio_text} | {share_text} | {e['seconds_mean']} |")
    lines += ["", "Mean validation gain per skill (pp, best cycle minus base):", "",
              "| environment | " + " | ".join(sorted(next(iter(summary["environments"].values()))["skill_gain_pp"])) + " |",
              "| --- " * (1 + len(next(iter(summary["environments"].values()))["skill_gain_pp"])) + "|"]
    for env, e in summary["environments"].items():
        lines.append(f"| {env} | " + " | ".join(f"{v:+.1f}" for _, v in sorted(e["skill_gain_pp"].items())) + " |")
    lines += ["", "Per run:", "", "| env | seed | base val | best val (cycle) | final val | test at best | generated | kept | s |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["runs"]:
        lines.append(f"| {r['env']} | {r['seed']} | {100 * r['base_val']:.1f} | {100 * r['best_val']:.1f} ({r['best_cycle']}) | "
                     f"{100 * r['final_val']:.1f} | {100 * r['test_at_best']:.1f} | {r['generated']} | {r['kept']} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "teaching_efficiency.json"))
    parser.add_argument("--smoke", action="store_true", help="tiny configuration, 2 environments x 2 seeds")
    parser.add_argument("--seeds", type=int, default=None, help=f"seeds 0..N-1 (default {FULL_SEEDS}; smoke 2)")
    parser.add_argument("--envs", default=None, help="comma-separated environments (default all four; smoke skill-tree,no-state)")
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--cycles", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="any other configuration field")
    parser.add_argument("--runs-dir", default=None, help="keep the run directories here (default: a temporary directory)")
    args = parser.parse_args(argv)

    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    config = json.loads(json.dumps(SMOKE if args.smoke else FULL))
    for field, value in (("budget", args.budget), ("cycles", args.cycles)):
        if value is not None:
            config[field] = value
    for item in args.set:
        field, _, text = item.partition("=")
        try:
            config[field] = json.loads(text)
        except json.JSONDecodeError:
            config[field] = text
    envs = args.envs.split(",") if args.envs else (["skill-tree", BASELINE] if args.smoke else list(ENVS))
    unknown = sorted(set(envs) - set(ENVS))
    if unknown:
        parser.error(f"unknown environments {unknown}; allowed: {list(ENVS)}")
    seeds = list(range(args.seeds if args.seeds is not None else (2 if args.smoke else FULL_SEEDS)))

    from teachgraph.graph import make_context
    from teachgraph.students import base_student_path
    from teachgraph.domains import load_domain

    started = time.perf_counter()
    info = machine_info()
    ctx = make_context(dict(config, run_dir="unused"))
    t0 = time.perf_counter()
    base_path = base_student_path(ctx, load_domain(ctx), log=lambda m: print(m, file=sys.stderr))
    base_seconds = time.perf_counter() - t0
    runs_root = Path(args.runs_dir) if args.runs_dir else Path(tempfile.mkdtemp(prefix="teaching-efficiency-"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(runs: list[dict[str, Any]], complete: bool) -> dict[str, Any]:
        """The JSON and markdown of the runs so far (after every seed, so a stopped benchmark leaves results)."""
        done_seeds = sorted({r["seed"] for r in runs})
        result = {
            "benchmark": "teaching_efficiency",
            "smoke": args.smoke,
            "complete": complete,
            "settings": {"envs": envs, "seeds": done_seeds, "config": config, "baseline": BASELINE,
                         "weakest_share_of_skills": WEAKEST_SHARE, "interval": "Student-t 95% over seeds",
                         "ratio_interval": "Student-t 95% over per-seed-pair ratios (env seed s / no-state seed s)",
                         "context": {k: v for k, v in ctx.public_dump().items() if k not in {"run_dir", "environment", "seed"}},
                         "base_student": base_path, "base_student_seconds": round(base_seconds, 1),
                         "note": "gain = best-cycle validation accuracy minus the base student's, in percentage points; "
                                 "test accuracy is that of the best cycle's student"},
            "machine": info,
            "runs": runs,
            "summary": summarize(runs, envs),
            "run_seconds_total": round(sum(r["seconds"] for r in runs), 1),
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
        out.write_text(json.dumps(result, indent=2) + "\n")
        out.with_suffix(".md").write_text(markdown(result))
        return result

    runs: list[dict[str, Any]] = []
    try:
        for seed in seeds:  # seed-major, so a stopped benchmark still has complete seed pairs
            for env in envs:
                record = run_one(config, env, seed, runs_root / f"{env}-s{seed}")
                runs.append(record)
                print(f"{env:>10} seed {seed}: val {100 * record['base_val']:.1f} -> {100 * record['best_val']:.1f} "
                      f"(gain {100 * record['gain']:+.1f}), test {100 * record['test_at_best']:.1f}, {record['seconds']:.0f} s",
                      file=sys.stderr, flush=True)
            write(runs, complete=False)
    finally:
        if not args.runs_dir:
            shutil.rmtree(runs_root, ignore_errors=True)
    print(markdown(write(runs, complete=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
