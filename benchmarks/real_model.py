"""Real models end to end: a pretrained student taught by a real LLM teacher over HTTP, on this CPU.

    python benchmarks/real_model.py [--smoke] [--out benchmarks/results/real_model.json] [--envs skill-tree,no-state]
                                    [--budget B] [--cycles C] [--seed S] [--per-subskill N] [--threads T]
                                    [--teacher NAME|FILE.gguf] [--student NAME|FILE.gguf|DIR] [--runs-dir DIR]
                                    [--set FIELD=JSON]
    make bench ARGS="--only real_model"      # not in the default set: 6 minutes quiet, ~45 loaded; needs `make models`

The student is SmolLM2-135M-Instruct (dequantised from its GGUF, LoRA, its chat template); the teacher is
Qwen2.5-Coder-1.5B-Instruct served by llama.cpp (`teachgraph serve-teacher --backend llama-cpp`, 2 threads,
spin-polling off), reached by the run's ordinary OpenAI client. The domain is the synthetic skills written as
plain-English questions (`domain_options.phrasing=natural`), scored by extracting the answer from the
student's reply; the share of replies that are the answer alone (format-valid) is reported apart from
accuracy, since much of an early gain can be the format. Each environment (by default skill-tree, the
state-conditioned teacher, against the no-state control) runs through the real graph with the same example
budget, cycles and seed. Reported per run: base -> best validation accuracy, test accuracy at the best cycle,
format-valid rates, examples generated / verified by the domain / kept, teacher tokens and tokens/s, seconds
per stage, and per agent how many teacher answers were valid on the first try, after repair prompts, or not
at all (the agent fell back to its offline program). The JSON is rewritten after every run (complete=false
until the last one), atomically.

--smoke: SmolLM2-135M as teacher and student, one environment, 1 cycle, 4 examples: a check that the
benchmark works (the numbers mean nothing).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import common

NAME = "real_model"
TEACHER = "qwen2.5-coder-1.5b-instruct"
STUDENT = "smollm2-135m-instruct"
FULL = {"envs": "skill-tree,no-state", "budget": 16, "cycles": 1, "per_subskill": 4}
FULL_SKILLS = ("first_letter", "last_letter", "parity", "larger")
SMOKE_SKILLS = ("first_letter", "parity")
SMOKE = {"envs": "skill-tree", "budget": 4, "cycles": 1, "per_subskill": 1}
# The runs' configuration beyond the command line. One slot on the server, so one request at a time
# (more only queue there, into their timeouts); small generator batches keep each answer short on 2 cores.
RUN_CONFIG = {"teacher_concurrency": 1, "teacher_batch_size": 8, "teacher_timeout_s": 600.0,
              "teacher_max_retries": 1, "teacher_max_completion_tokens": 768, "max_teacher_failure_rate": 1.0,
              "teacher_discovery": "offline",  # the domain's gold skills: labelling 32+ questions costs ~15 min here
              "learning_rate": 5e-4, "epochs": 4.0, "batch_size": 8}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TeacherServer:
    """`teachgraph serve-teacher --backend llama-cpp` as a child process: started, its base URL read from
    its stdout, stopped with SIGTERM (the launcher stops llama.cpp)."""

    def __init__(self, model: str, threads: int, log: Path, wait_s: float = 600.0):
        self.port = _free_port()
        command = [sys.executable, "-m", "teachgraph.cli", "serve-teacher", "--backend", "llama-cpp", "--model", model,
                   "--threads", str(threads), "--poll", "0", "--port", str(self.port), "--wait", str(wait_s)]
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log, "w", encoding="utf-8")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.model = model
        ready, _, _ = select.select([self.process.stdout], [], [], wait_s + 30)
        line = self.process.stdout.readline().strip() if ready else ""
        if not line.startswith("http"):
            self.stop()
            raise RuntimeError(f"the teacher server did not start (exit {self.process.poll()}); see {log}")
        self.url = line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def probe_speed(url: str, model: str, max_tokens: int = 64) -> dict[str, Any]:
    """llama.cpp's own timings of one short free-text answer: decode and prompt tokens/s."""
    body = json.dumps({"model": model, "max_tokens": max_tokens, "temperature": 0, "messages": [
        {"role": "user", "content": "List five short English words that start with the letter b, one per line."}]})
    request = urllib.request.Request(url + "/chat/completions", data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        answer = json.loads(response.read())
    timings = answer.get("timings", {})
    return {"wall_s": round(time.perf_counter() - started, 2), "completion_tokens": answer["usage"]["completion_tokens"],
            "decode_tokens_per_s": round(timings.get("predicted_per_second", 0.0), 2),
            "prompt_tokens_per_s": round(timings.get("prompt_per_second", 0.0), 2)}


def format_valid_rate(domain: Any, eval_path: Path) -> float | None:
    rows = [json.loads(line) for line in Path(eval_path).read_text().splitlines() if line.strip()]
    if not rows:
        return None
    examples = {e["id"]: e for e in domain.load_split("val")} | {e["id"]: e for e in domain.load_split("test")}
    ok = sum(domain.answer_format_valid(r["prediction"], examples.get(r["id"], r)) for r in rows)
    return round(ok / len(rows), 4)


def agent_counts(by_node: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per agent (graph node): calls, answers valid first time, valid after repair, failed (-> fallback)."""
    keys = ("calls", "cache_hits", "valid_first_try", "valid_repaired", "failures", "fallbacks", "repairs",
            "retries", "prompt_tokens", "completion_tokens")
    out = {}
    for node, usage in sorted((by_node or {}).items()):
        row = {k: int(usage.get(k, 0) or 0) for k in keys}
        row["errors"] = usage.get("errors", {})
        answered = row["calls"] - row["cache_hits"]
        row["first_try_rate"] = round(row["valid_first_try"] / answered, 4) if answered else None
        out[node] = row
    return out


def run_one(config: dict[str, Any], env: str, run_dir: Path, reuse: bool = False) -> dict[str, Any]:
    """One run through the real graph (or, with reuse, the finished run already in run_dir) and its record."""
    from teachgraph.domains import load_domain
    from teachgraph.graph import make_context
    from teachgraph.io import read_json, write_json_atomic
    from teachgraph.run import Run

    ctx = make_context(dict(config, environment=env, run_dir=str(run_dir)))
    timing = run_dir / "benchmark_seconds.json"
    if not (reuse and (run_dir / "summary.json").exists() and timing.exists()):
        if run_dir.exists():
            shutil.rmtree(run_dir)
        started = time.perf_counter()
        with Run.create(ctx) as run:
            run.invoke()
        write_json_atomic(timing, {"seconds": time.perf_counter() - started})
    seconds = read_json(timing)["seconds"]
    from teachgraph.paths import RunPaths

    paths = RunPaths.of(run_dir)
    summary = read_json(run_dir / "summary.json")
    domain = load_domain(ctx)
    cycles = summary["cycles"]
    base = cycles[0]
    best = next(c for c in cycles if c["cycle"] == summary["best_cycle"])
    teacher = summary.get("teacher", {})
    totals = teacher.get("totals", {})
    stage_seconds: dict[str, float] = {}
    for c in cycles:
        for stage, s in (c.get("seconds") or {}).items():
            stage_seconds[stage] = round(stage_seconds.get(stage, 0.0) + float(s), 2)
    teacher_seconds = sum(stage_seconds.get(s, 0.0) for s in ("discover_skills", "organize_skills", "plan", "generate"))
    completion = int(totals.get("completion_tokens", 0) or 0)
    dropped: dict[str, int] = {}
    for c in cycles:
        for reason, n in (c.get("dropped") or {}).items():
            dropped[reason] = dropped.get(reason, 0) + int(n)
    return {
        "env": env, "seed": ctx.seed, "seconds": round(seconds, 1),
        "base_val": base["val_accuracy"], "best_val": summary["best_val_accuracy"], "best_cycle": summary["best_cycle"],
        "val_per_cycle": [c["val_accuracy"] for c in cycles], "test_at_best": summary["test_accuracy"],
        "base_format_valid": format_valid_rate(domain, paths.eval_val(base["cycle"])),
        "best_format_valid": format_valid_rate(domain, paths.eval_val(best["cycle"])),
        "test_format_valid": format_valid_rate(domain, paths.test_eval) if paths.test_eval.exists() else None,
        "generated": summary.get("budget_used"), "kept": summary.get("train_examples_total"),
        "dropped": dropped, "stop_reason": summary.get("stop_reason"),
        "teacher_tokens": teacher.get("total_tokens"), "teacher_completion_tokens": completion,
        "teacher_seconds": round(teacher_seconds, 1),
        "teacher_tokens_per_s": round(completion / teacher_seconds, 2) if teacher_seconds else None,
        "agents": agent_counts(teacher.get("by_node", {})),
        "seconds_per_stage": stage_seconds,
        "base_per_skill": base["per_skill"], "best_per_skill": best["per_skill"],
    }


def markdown(result: dict[str, Any]) -> str:
    runs = result["results"]["runs"]
    rows = [(r["env"], r["seed"], f"{r['base_val']:.1%} → {r['best_val']:.1%}", r["best_cycle"],
             f"{r['test_at_best']:.1%}", f"{r['base_format_valid']:.0%} → {r['best_format_valid']:.0%}"
             if r["base_format_valid"] is not None and r["best_format_valid"] is not None else "",
             f"{r['generated']} / {r['kept']}", r["teacher_tokens"], r["teacher_tokens_per_s"], r["seconds"])
            for r in runs]
    lines = [common.md_table(["environment", "seed", "val base → best", "best cycle", "test at best",
                              "format-valid base → best", "generated / kept", "teacher tokens", "teacher tok/s",
                              "run s"], rows), ""]
    agent_rows = []
    for r in runs:
        for node, a in r["agents"].items():
            agent_rows.append((r["env"], node, a["calls"], a["valid_first_try"], a["valid_repaired"], a["failures"],
                               a["fallbacks"], "" if a["first_try_rate"] is None else f"{a['first_try_rate']:.0%}"))
    lines += ["Teacher answers per agent (first try / after repair / no valid answer; fallbacks = the offline "
              "program answered instead):", "",
              common.md_table(["environment", "agent", "calls", "valid 1st try", "valid repaired", "failed",
                               "fallbacks", "first-try rate"], agent_rows), ""]
    stage_rows = [(r["env"], *(r["seconds_per_stage"].get(s, "") for s in
                               ("evaluate", "discover_skills", "organize_skills", "plan", "generate", "deduplicate",
                                "train", "finalize"))) for r in runs]
    lines += ["Seconds per stage (all cycles):", "",
              common.md_table(["environment", "evaluate", "discover", "organize", "plan", "generate", "dedup",
                               "train", "finalize"], stage_rows), ""]
    probe = result["results"].get("server_probe") or {}
    lines += [f"Teacher server probe: {probe.get('decode_tokens_per_s')} decode tokens/s, "
              f"{probe.get('prompt_tokens_per_s')} prompt tokens/s ({result['config']['teacher']}, "
              f"{result['config']['threads']} threads, poll 0). Dropped examples by reason: "
              + "; ".join(f"{r['env']}: {r['dropped'] or 'none'}" for r in runs)]
    return "\n".join(lines)


def merge_results(out: Path, others: list[Path]) -> int:
    """The runs of results written by parallel invocations, joined into `out` (rewritten atomically)."""
    result = json.loads(out.read_text())
    for other in others:
        extra = json.loads(other.read_text())
        result["results"]["runs"] += extra["results"]["runs"]
        result["results"].setdefault("merged", []).append(
            {"from": str(other), "server_probe": extra["results"].get("server_probe"),
             "machine": extra.get("machine"), "seconds": extra.get("seconds")})
        result["config"]["envs"] = list(dict.fromkeys(result["config"]["envs"] + extra["config"]["envs"]))
    result["results"]["complete"] = True
    result["seconds"] = max([result.get("seconds", 0)] + [json.loads(o.read_text()).get("seconds", 0) for o in others])
    common.write_result(out, result, markdown(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(NAME, __doc__)
    parser.add_argument("--envs")
    parser.add_argument("--budget", type=int)
    parser.add_argument("--cycles", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-subskill", type=int, help="validation and test examples per subskill")
    parser.add_argument("--threads", type=int, default=2, help="the teacher server's threads")
    parser.add_argument("--teacher")
    parser.add_argument("--student", default=STUDENT)
    parser.add_argument("--runs-dir")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON")
    parser.add_argument("--reuse", action="store_true", help="take finished runs already in --runs-dir as they are")
    parser.add_argument("--probe", action="append", default=[], metavar="JSON",
                        help="with --reuse and every run finished: no server is started; these earlier server "
                             "probes (the 'server probe:' lines of the runs' logs, as JSON) are recorded instead")
    parser.add_argument("--merge", nargs="+", metavar="RESULT.json",
                        help="no runs: add the runs of these results (the same benchmark run in parallel, e.g. one "
                             "environment each) to --out's, and mark it complete")
    args = parser.parse_args(argv)
    if args.merge:
        return merge_results(common.out_path(NAME, args), [Path(m) for m in args.merge])
    mode = SMOKE if args.smoke else FULL
    teacher = args.teacher or (STUDENT if args.smoke else TEACHER)
    envs = (args.envs or mode["envs"]).split(",")
    per = args.per_subskill or mode["per_subskill"]
    config = dict(RUN_CONFIG, domain="synthetic", student=args.student, seed=args.seed,
                  budget=args.budget or mode["budget"], cycles=args.cycles or mode["cycles"], threads=2,
                  domain_options={"phrasing": "natural", "val_per_subskill": per, "test_per_subskill": per})
    # few skills: fewer organizer calls per cycle, more validation examples per skill
    config["domain_options"]["skills"] = list(SMOKE_SKILLS if args.smoke else FULL_SKILLS)
    if args.smoke:
        config["teacher_max_completion_tokens"] = 160
    for item in args.set:
        key, value = item.split("=", 1)
        config[key] = json.loads(value)
    out = common.out_path(NAME, args)
    runs_dir = Path(args.runs_dir) if args.runs_dir else out.parent / "runs" / NAME
    clock = common.Stopwatch()
    machine = common.machine_record()

    from teachgraph.models import file_sha256, resolve_gguf

    teacher_file = resolve_gguf(teacher)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated benchmark stops its server too
    finished = all((runs_dir / f"{env}-s{args.seed}" / name).exists() for env in envs
                   for name in ("summary.json", "benchmark_seconds.json"))
    server = None
    if not (args.reuse and args.probe and finished):
        server = TeacherServer(teacher, args.threads, runs_dir / "teacher-server.log")
        print(f"teacher {teacher} at {server.url}", flush=True)
    url = server.url if server else "http://127.0.0.1:9/v1"  # every run is reused: nothing is sent
    config.update(teacher="llm", teacher_url=url, teacher_model=teacher)
    result: dict[str, Any] = {
        "benchmark": NAME, "smoke": args.smoke,
        "what": "a pretrained student (SmolLM2-135M-Instruct, LoRA) taught by a real LLM teacher over llama.cpp HTTP, "
                "state-conditioned environment vs the no-state control at the same budget",
        "config": {**{k: v for k, v in config.items() if k not in {"teacher_url"}}, "envs": envs,
                   "threads": args.threads, "teacher_file": str(teacher_file),
                   "teacher_sha256": file_sha256(teacher_file)},
        "results": {"runs": [], "complete": False}, "machine": machine,
    }
    try:
        if server is None:
            probes = [json.loads(p) for p in args.probe]
            result["results"]["server_probe"] = dict(probes[0], note="from the runs' own processes")
            result["results"]["server_probes"] = probes
        else:
            result["results"]["server_probe"] = probe_speed(server.url, teacher)
        print(f"server probe: {result['results']['server_probe']}", flush=True)
        for env in envs:
            print(f"run {env} (seed {args.seed})", flush=True)
            record = run_one(config, env, runs_dir / f"{env}-s{args.seed}", reuse=args.reuse)
            print(json.dumps({k: record[k] for k in ("env", "base_val", "best_val", "test_at_best", "seconds")}),
                  flush=True)
            result["results"]["runs"].append(record)
            result["results"]["complete"] = env == envs[-1]
            result["seconds"] = clock.seconds()
            common.write_result(out, dict(result, machine=dict(machine)), markdown(result))
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
