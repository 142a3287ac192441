"""What every benchmark shares: the machine record, result files, markdown tables, the --smoke convention.

Each benchmark is a script with the same command line:

    python benchmarks/NAME.py [--smoke] [--out benchmarks/results/NAME.json]

`--smoke` runs a tiny version of the same measurement in seconds (CI runs only that; its numbers mean
nothing) and writes under benchmarks/results/smoke/ unless --out says otherwise. A result is one JSON
file, plus a markdown file of the same name with its tables, both written atomically:

    {"benchmark": NAME, "smoke": bool, "what": one line, "config": {...}, "results": {...},
     "targets": [{"name", "value", "target", "op", "met", "unit"}], "seconds": wall, "machine": {...}}

The machine record names cores, torch threads, versions, the git commit (with a dirty flag) and the load
average when the benchmark started: the numbers are only comparable between like records.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = ROOT / "benchmarks" / "results"
SMOKE_RESULTS = RESULTS / "smoke"
PACKAGES = ("torch", "transformers", "peft", "langgraph", "langgraph-checkpoint-sqlite", "chromadb", "numpy")


# -- command line ---------------------------------------------------------------------------------

def parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The shared command line: --smoke and --out (default benchmarks/results[/smoke]/NAME.json)."""
    p = argparse.ArgumentParser(prog=f"benchmarks/{name}.py", description=(doc or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="a tiny version for CI: seconds, numbers meaningless")
    p.add_argument("--out", help=f"result JSON (default benchmarks/results/{name}.json, "
                                 f"or benchmarks/results/smoke/{name}.json with --smoke)")
    return p


def out_path(name: str, args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    return (SMOKE_RESULTS if args.smoke else RESULTS) / f"{name}.json"


def tiny_config() -> dict[str, Any]:
    """The TINY configuration of the test suite (tests/conftest.py): the smoke runs' configuration.
    Importing it also points TEACHGRAPH_CACHE at the tests' base-student cache, which is what CI has."""
    from tests.conftest import TINY

    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}


# -- the machine ----------------------------------------------------------------------------------

def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20,
                             env=dict(os.environ, GIT_OPTIONAL_LOCKS="0"))  # read-only: no index refresh
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine_record() -> dict[str, Any]:
    """Cores, torch threads, versions, git commit and dirty flag, load average, timestamp."""
    import torch

    from teachgraph.students.pretrain import cpu_model

    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    changed = _git("status", "--porcelain", "--untracked-files=no")
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        memory_gb = None
    return {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": memory_gb,
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "cuda": torch.cuda.is_available(),
        "versions": versions,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if changed is None else bool(changed),
        "git_changed_files": None if changed is None else len(changed.splitlines()),
    }


# -- results --------------------------------------------------------------------------------------

def target(name: str, value: float | None, goal: float, op: str = ">=", unit: str = "") -> dict[str, Any]:
    """One target and whether it is met (op '>=' or '<=' or '=='); a missing value is a miss."""
    met = value is not None and {">=": value >= goal, "<=": value <= goal, "==": value == goal}[op]
    return {"name": name, "value": value, "target": goal, "op": op, "met": bool(met), "unit": unit}


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats get 3 significant digits unless already strings."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}" if abs(v) >= 10000 else str(v)
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(targets: Sequence[dict[str, Any]]) -> str:
    rows = [(t["name"], t["value"], f"{t['op']} {t['target']:g}{(' ' + t['unit']) if t['unit'] else ''}",
             "met" if t["met"] else "**missed**") for t in targets]
    return md_table(["target", "measured", "goal", ""], rows)


def machine_line(machine: dict[str, Any]) -> str:
    v = machine.get("versions", {})
    commit = (machine.get("git_commit") or "?")[:10] + (" (dirty)" if machine.get("git_dirty") else "")
    load = f"load {machine.get('load_average')}"
    if machine.get("load_average_end"):
        load += f" → {machine['load_average_end']}"
    return (f"{machine.get('timestamp')} · {machine.get('cpu')} · {machine.get('cores')} cores, "
            f"{machine.get('torch_threads')} torch threads · {load} · "
            f"torch {v.get('torch')}, transformers {v.get('transformers')}, langgraph {v.get('langgraph')}, "
            f"chromadb {v.get('chromadb')} · commit {commit}")


def write_result(path: Path, result: dict[str, Any], markdown: str) -> None:
    """Write NAME.json and NAME.md next to it (atomically), adding the machine record."""
    from teachgraph.io import write_json_atomic, write_text_atomic

    result.setdefault("machine", machine_record())
    if hasattr(os, "getloadavg"):
        result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result.setdefault("targets", [])
    md = [f"## {result['benchmark']}{' (smoke)' if result.get('smoke') else ''}", "", result.get("what", ""), "",
          markdown.strip(), ""]
    if result["targets"]:
        md += [targets_table(result["targets"]), ""]
    md += [f"<sub>{machine_line(result['machine'])} · {result.get('seconds', 0):.0f} s</sub>", ""]
    write_json_atomic(path, result)
    write_text_atomic(path.with_suffix(".md"), "\n".join(md))
    print(f"wrote {path} and {path.with_suffix('.md').name}")


class Stopwatch:
    """Wall time since creation, for a benchmark's own total."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def seconds(self) -> float:
        return round(time.perf_counter() - self.started, 2)


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
