"""Run every benchmark, each as its own subprocess, and write one report.

    python benchmarks/run_all.py [--smoke] [--only NAME,NAME] [--results-dir DIR]
    make bench ARGS="--only dedup,resume"        # or: teachgraph bench [--smoke] [--only ...]

Each benchmark writes benchmarks/results/NAME.json and NAME.md (with --smoke: benchmarks/results/smoke/,
which git ignores); its output goes to the console and to logs/NAME.log there, and its wall time is
recorded. Then REPORT.md collects every benchmark's tables and all targets (met or missed), and
run_all.json records the machine, each benchmark's command, exit status and wall time. A benchmark not
run this time (--only) keeps its earlier result in the report, marked with its own date.

Exit status 0 when every benchmark asked for ran and wrote its result (a missed target is a result,
not a failure), 1 otherwise; a missing script is reported loudly, never skipped silently.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

HERE = Path(__file__).resolve().parent

# name: (what it measures, timeout in seconds full / smoke). Run in this order; the long one last.
BENCHMARKS = {
    "cycle_cost": ("seconds per stage per cycle, orchestration overhead", 1200, 300),
    "train_throughput": ("HFStudent.train (packed, padded, bf16) vs a bare PyTorch loop, useful FLOP/s", 900, 300),
    "eval_throughput": ("batched vs one-by-one evaluation", 600, 300),
    "dedup": ("DedupStore checks/s at 1k/10k/100k, duplicate precision/recall", 1200, 300),
    "dedup_server": ("dedup checks/s in-process vs on a Chroma server at 10k/100k", 1800, 300),
    "resume": ("time to first work after SIGKILL, nodes re-executed", 900, 300),
    "teacher_throughput": ("LLM teacher client throughput vs the fake server", 600, 300),
    "train_processes": ("training tokens/s in 1 vs 2 torchrun processes on CPU, loss curves compared", 1200, 300),
    "teacher_replicas": ("teacher requests/s through sglang-router at 1 vs 2 fake workers", 600, 300),
    "prompt_prefix": ("shared-prefix share of the generator's prompt tokens (and llama.cpp prompt reuse)", 900, 300),
    "vqa_teaching": ("teachgraph run --domain vqa: a tiny VLM's validation gain vs no-state, wall time", 1500, 300),
    "teaching_efficiency": ("validation gain per generated example, per environment, two regimes", 5400, 900),
    "real_model": ("a pretrained student (SmolLM2-135M) taught by a real LLM (Qwen2.5-Coder-1.5B, llama.cpp)",
                   4800, 900),
}
# Run only when named with --only (about 50 minutes and the `make models` packages): `make bench
# ARGS="--only real_model"`. Every other benchmark is in the default set.
OPT_IN = {"real_model"}


def run_one(name: str, smoke: bool, results: Path, index: int, total: int) -> dict:
    script = HERE / f"{name}.py"
    out = results / f"{name}.json"
    command = [sys.executable, str(script), "--out", str(out)] + (["--smoke"] if smoke else [])
    record = {"command": " ".join([Path(sys.executable).name, str(script.relative_to(common.ROOT)),
                                   *command[2:]]), "result": str(out)}
    print(f"\n[{index}/{total}] {name}: {BENCHMARKS[name][0]}", flush=True)
    if not script.exists():
        record.update(status="missing", error=f"benchmarks/{name}.py does not exist", wall_s=0.0, returncode=None)
        print(f"ERROR: {record['error']}; its result is missing from the report", file=sys.stderr, flush=True)
        return record
    print(f"  $ {record['command']}", flush=True)
    log_path = results / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    timeout = BENCHMARKS[name][2 if smoke else 1]
    started_wall, started = time.time(), time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(command, cwd=str(common.ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            for line in proc.stdout:  # the benchmark's own progress, as it comes
                log.write(line)
                if "\r" not in line:  # progress bars only go to the log
                    print(f"  {name} | {line.rstrip()}", flush=True)
            proc.wait()
        finally:
            watchdog.cancel()
    record["wall_s"] = round(time.perf_counter() - started, 2)
    record["returncode"] = proc.returncode
    fresh = out.exists() and out.stat().st_mtime >= started_wall
    if proc.returncode == 0 and fresh:
        record["status"] = "ok"
    else:
        record["status"] = "failed"
        record["error"] = (f"exit status {proc.returncode}" + ("" if fresh else ", no result written") +
                           (f" (timeout {timeout} s)" if record["wall_s"] >= timeout else "") +
                           f"; see {log_path}")
        print(f"ERROR: {name} failed: {record['error']}", file=sys.stderr, flush=True)
    print(f"  {name}: {record['status']} in {record['wall_s']:.0f} s", flush=True)
    return record


def targets_of(result: dict) -> list[dict]:
    """A result's targets; the older teacher_throughput format (meets_target) is read too."""
    if isinstance(result.get("targets"), list):
        return [t for t in result["targets"] if isinstance(t, dict) and "met" in t]
    if "meets_target" in result:
        return [common.target("fraction of ideal", result.get("fraction_of_ideal"), result.get("target", 0.85))]
    return []


def report(results: Path, records: dict, machine: dict, smoke: bool, wall: float, invocation: str) -> str:
    lines = [f"# Benchmark report{' (smoke: numbers meaningless)' if smoke else ''}", "",
             f"{common.machine_line(machine)}", "",
             f"`{invocation}` · {wall:.0f} s in all "
             f"(this invocation). Every table below is regenerated by `make bench` (see benchmarks/README.md).", ""]
    errors = [(n, r) for n, r in records.items() if r.get("status") in {"missing", "failed"}]
    for name, record in errors:
        lines += [f"> **ERROR — {name}: {record['status']}.** {record.get('error', '')}", ""]
    summary, target_rows, sections = [], [], []
    for name in BENCHMARKS:
        record = records.get(name, {})
        path = results / f"{name}.json"
        result = json.loads(path.read_text()) if path.exists() else None
        when = ((result or {}).get("machine") or {}).get("timestamp") or (
            datetime.datetime.fromtimestamp(path.stat().st_mtime).astimezone().isoformat(timespec="seconds")
            if result is not None else "")
        status = record.get("status") or ("earlier result" if result else "not run")
        targets = targets_of(result or {}) if record.get("status") != "failed" else []
        met = sum(t["met"] for t in targets)
        summary.append((name, status, record.get("wall_s", ""), when,
                        f"{met}/{len(targets)} met" if targets else "-"))
        for t in targets:
            target_rows.append((name, t["name"], t["value"], f"{t['op']} {t['target']:g}",
                                "met" if t["met"] else "**missed**"))
        md = path.with_suffix(".md")
        if result is not None and md.exists() and record.get("status") != "failed":
            text = md.read_text(encoding="utf-8").strip()
            if text.startswith("# "):  # every benchmark's section is a level-2 heading here
                text = "#" + text
            elif not text.startswith("#"):
                text = f"## {name}\n\n{text}"
            sections.append(text)
        elif record.get("status") in {"missing", "failed"}:
            sections.append(f"## {name}\n\n**ERROR: {record['status']}** — {record.get('error', '')}")
    lines += ["## Summary", "", common.md_table(["benchmark", "status", "wall s", "result from", "targets"], summary), ""]
    lines += ["## Targets", "", common.md_table(["benchmark", "target", "measured", "goal", ""], target_rows)
              if target_rows else "(none recorded)", ""]
    for text in sections:
        lines += [text, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/run_all.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="every benchmark's tiny version (CI); writes to results/smoke/")
    parser.add_argument("--only", help=f"comma-separated subset of: {','.join(BENCHMARKS)}")
    parser.add_argument("--results-dir", help="where results go (default benchmarks/results, or benchmarks/results/smoke)")
    args = parser.parse_args(argv)
    names = [n for n in BENCHMARKS if n not in OPT_IN]
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    results = Path(args.results_dir) if args.results_dir else (common.SMOKE_RESULTS if args.smoke else common.RESULTS)
    results.mkdir(parents=True, exist_ok=True)
    machine = common.machine_record()
    print(f"benchmarks: {', '.join(names)}{' (smoke)' if args.smoke else ''} -> {results}")
    print(common.machine_line(machine), flush=True)

    summary_path = results / "run_all.json"
    previous = json.loads(summary_path.read_text()).get("benchmarks", {}) if summary_path.exists() else {}
    records = {}
    started = time.perf_counter()
    for i, name in enumerate(names, 1):
        records[name] = run_one(name, args.smoke, results, i, len(names))
    wall = time.perf_counter() - started

    from teachgraph.io import write_json_atomic, write_text_atomic

    write_json_atomic(summary_path, {"machine": machine, "smoke": args.smoke, "wall_s": round(wall, 2),
                                     "ran": names, "benchmarks": {**previous, **records}})
    write_text_atomic(results / "REPORT.md", report(results, records, machine, args.smoke, wall,
                                                        " ".join(["python benchmarks/run_all.py", *(argv or sys.argv[1:])])))
    failed = [n for n in names if records[n]["status"] != "ok"]
    print(f"\n{len(names) - len(failed)}/{len(names)} benchmarks ran in {wall:.0f} s; report: {results / 'REPORT.md'}")
    for name in failed:
        print(f"ERROR: {name}: {records[name]['status']} ({records[name].get('error', '')})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
