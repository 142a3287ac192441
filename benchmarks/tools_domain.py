"""The offline tool-use domain: base -> best plan accuracy of finished runs, with MnMs's other metrics.

    teachgraph run --domain tools --run-dir runs/tools-skill-tree-s0
    teachgraph run --domain tools --env no-state --run-dir runs/tools-no-state-s0
    python benchmarks/tools_domain.py runs/tools-skill-tree-s0 runs/tools-no-state-s0 [--out benchmarks/results/tools_domain.json]

For each run: validation plan accuracy (the run's score) of the base student and of the best cycle, test
plan accuracy at the best cycle, the run's seconds (sum of its stages), and, from the saved per-example
predictions, `ToolsDomain.metrics` at the base and best cycles (execution accuracy, tool macro F1, verdicts).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from teachgraph.domains import get_domain
from teachgraph.io import read_jsonl, write_json_atomic
from teachgraph.students.pretrain import cpu_model


def run_report(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    config = summary["config"]
    domain = get_domain("tools", seed=config["data_seed"], **config["domain_options"])
    cycles = summary["cycles"]
    best = summary["best_cycle"]

    gold = {e["id"]: e for e in domain.load_split("val") + domain.load_split("test")}

    def metrics(path: Path) -> dict:
        rows = read_jsonl(path)  # per-example results: id, prompt, prediction, ... (the gold answer from the domain)
        out = domain.metrics_of([r["prediction"] for r in rows], [gold[r["id"]] for r in rows])
        return {k: out[k] for k in ("plan_accuracy", "valid_plan_accuracy", "execution_accuracy", "tool_macro",
                                    "argvalue", "verdicts")}

    seconds = sum(v for r in cycles for k, v in (r.get("seconds") or {}).items() if isinstance(v, (int, float)))
    return {"run_dir": str(run_dir), "environment": summary["environment"], "seed": summary["seed"],
            "budget": config["budget"], "cycles": config["cycles"],
            "val_base": cycles[0]["val_accuracy"], "val_best": summary["best_val_accuracy"], "best_cycle": best,
            "val_gain": summary["val_gain"], "test_at_best": summary["test_accuracy"],
            "val_per_cycle": [r["val_accuracy"] for r in cycles], "stage_seconds": round(seconds, 1),
            "base_metrics": metrics(run_dir / "cycles" / "cycle_000" / "eval_val.jsonl"),
            "best_metrics": metrics(run_dir / "cycles" / f"cycle_{best:03d}" / "eval_val.jsonl"),
            "test_metrics": metrics(run_dir / "eval_test.jsonl") if (run_dir / "eval_test.jsonl").exists() else None}


def markdown(reports: list[dict]) -> str:
    lines = ["| environment (seed) | val plan acc, base → best | gain | test at best | val execution acc, base → best "
             "| tool macro F1, base → best |", "| --- | --- | --- | --- | --- | --- |"]
    for r in reports:
        b, m = r["base_metrics"], r["best_metrics"]
        lines.append(f"| `{r['environment']}` ({r['seed']}) | {100 * r['val_base']:.1f}% → {100 * r['val_best']:.1f}% "
                     f"| {100 * r['val_gain']:+.1f} | {100 * r['test_at_best']:.1f}% | {b['execution_accuracy']:.1f}% → "
                     f"{m['execution_accuracy']:.1f}% | {b['tool_macro']['f1']:.1f} → {m['tool_macro']['f1']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    reports = [run_report(d) for d in args.run_dirs]
    if args.out:
        write_json_atomic(args.out, {"cpu": cpu_model(), "runs": reports})
    print(markdown(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
