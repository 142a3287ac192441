"""`teachgraph` command line: run, resume, report, build the base student, print the graph, serve an LLM teacher,
run the benchmarks."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class RunError(RuntimeError):
    """A problem with a run directory or its checkpoint, reported without a traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teachgraph", description=__doc__)
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run the teaching loop (the offline default with no arguments)")
    run.add_argument("--env", dest="environment", choices=["skill-tree", "skill-list", "open-ended", "no-state"])
    run.add_argument("--domain", help="synthetic (the offline default), math or code")
    run.add_argument("--dataset", help="the domain's data: 'local' (the shipped sample), a local folder or file, "
                                       "or a Hugging Face dataset id (sets domain_options.dataset)")
    run.add_argument("--student", help="'tiny' (built from a config), a local model folder or a Hugging Face id")
    run.add_argument("--cycles", type=int, help="training cycles after the base evaluation")
    run.add_argument("--budget", type=int, help="total generated examples for the whole run")
    run.add_argument("--seed", type=int)
    run.add_argument("--run-dir", help="where checkpoints and artifacts go (default runs/ENV-sSEED)")
    run.add_argument("--config", help="YAML or JSON file with the same fields as graph.context.TeachContext")
    run.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                     help="any other configuration field, e.g. --set finetune=lora (repeatable)")
    run.add_argument("--teacher-url", help="LLM teacher: OpenAI-compatible base URL (e.g. http://127.0.0.1:30000/v1); "
                                           "sets teacher=llm")
    run.add_argument("--teacher-model", help="LLM teacher: the served model name; sets teacher=llm")
    run.add_argument("--quiet", action="store_true", help="no progress bars")

    resume = sub.add_parser("resume", help="continue a run from its last checkpoint")
    resume.add_argument("run_dir")
    resume.add_argument("--quiet", action="store_true")
    resume.add_argument("--answer", help="answer to a waiting review: approve, stop, or drop:ID,ID,...")

    base = sub.add_parser("base-student", help="build (or find) the cached base student and print its path")
    base.add_argument("--config")
    base.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")

    report = sub.add_parser("report", help="write report.md, a data card and plots for finished runs")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    report.add_argument("--out", help="output folder (default RUN_DIR/report; for several runs COMMON_PARENT/report-compare)")

    serve = sub.add_parser("serve-teacher", help="launch an SGLang server for the LLM teacher and print its base URL")
    serve.add_argument("--model-path", required=True, help="local path or Hugging Face id of the teacher model")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=30000)
    serve.add_argument("--tp", type=int, default=1, help="tensor-parallel size")
    serve.add_argument("--dp", type=int, default=1, help="data-parallel size")
    serve.add_argument("--mem-fraction-static", type=float, help="GPU memory fraction for weights and KV cache")
    serve.add_argument("--served-model-name", help="the model name clients use (default: --model-path)")
    serve.add_argument("--wait", type=float, default=900, help="seconds to wait for the server to become healthy")
    serve.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                       help="everything after --extra goes to sglang.launch_server unchanged")

    show = sub.add_parser("graph", help="print the graph")
    show.add_argument("--mermaid", action="store_true", help="as a Mermaid diagram (the default)")

    bench = sub.add_parser("bench", help="run the benchmarks of this checkout (benchmarks/run_all.py; see benchmarks/README.md)")
    bench.add_argument("--smoke", action="store_true", help="the quick version of every benchmark (numbers meaningless)")
    bench.add_argument("--only", metavar="NAME,NAME", help="a subset, e.g. dedup,resume")
    bench.add_argument("--results-dir", help="where results go (default benchmarks/results[/smoke])")
    return parser


def run_benchmarks(args: argparse.Namespace) -> int:
    """benchmarks/run_all.py of the checkout this package is installed from (editable), or of the current
    directory; benchmarks/ is not part of the installed package."""
    import subprocess

    candidates = [Path(__file__).resolve().parents[1], Path.cwd()]
    script = next((root / "benchmarks" / "run_all.py" for root in candidates
                   if (root / "benchmarks" / "run_all.py").exists()), None)
    if script is None:
        raise RunError("benchmarks/run_all.py not found: `teachgraph bench` runs the benchmarks of a source checkout "
                       "(an editable install, `pip install -e .`, or run it from the repository root); looked in "
                       + ", ".join(str(c) for c in candidates))
    command = [sys.executable, str(script)] + (["--smoke"] if args.smoke else [])
    command += ["--only", args.only] if args.only else []
    command += ["--results-dir", args.results_dir] if args.results_dir else []
    return subprocess.call(command, cwd=str(script.parents[1]))


def _parse_value(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def _context_from_args(args: argparse.Namespace):
    from teachgraph.graph.context import ConfigError, load_config_file, make_context

    values = load_config_file(args.config) if getattr(args, "config", None) else {}
    for item in getattr(args, "set", []):
        if "=" not in item:
            raise ConfigError(f"--set expects FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        values[key.strip()] = _parse_value(value)
    for field in ("environment", "domain", "cycles", "budget", "seed", "teacher_url", "teacher_model", "student"):
        if getattr(args, field, None) is not None:
            values[field] = getattr(args, field)
    if getattr(args, "dataset", None) is not None:
        values["domain_options"] = dict(values.get("domain_options") or {}, dataset=args.dataset)
    if getattr(args, "teacher_url", None) or getattr(args, "teacher_model", None):
        values["teacher"] = "llm"
    ctx = make_context(values)
    if getattr(args, "run_dir", None):
        ctx = ctx.model_copy(update={"run_dir": args.run_dir})
    elif "run_dir" not in values:
        ctx = ctx.model_copy(update={"run_dir": f"runs/{ctx.environment}-s{ctx.seed}"})
    return ctx


def check_teacher(ctx) -> None:
    """Before any work: an LLM teacher's server must answer (GET {url}/models), else a RunError naming the URL."""
    if getattr(ctx, "teacher", "offline") != "llm":
        return
    from teachgraph.teachers.llm_client import TeacherUnavailable, check_reachable

    try:
        served = check_reachable(ctx.teacher_url, ctx.api_key(), timeout=min(10.0, ctx.teacher_timeout_s))
    except TeacherUnavailable as error:
        raise RunError(str(error)) from None
    if served and ctx.teacher_model not in served:
        print(f"warning: {ctx.teacher_url} serves {served}, not {ctx.teacher_model!r}; requests may fail",
              file=sys.stderr)


def check_domain(ctx) -> None:
    """Before any work: the domain's data must load; malformed rows are reported (they were skipped)."""
    from teachgraph.domains.loaders import DatasetUnavailable
    from teachgraph.paths import domain_of

    try:
        domain = domain_of(ctx)
    except (DatasetUnavailable, ValueError) as error:
        raise RunError(f"domain {ctx.domain!r}: {error}") from None
    report = getattr(domain, "report", None)
    if report is not None and report.skipped:
        print(f"warning: {report.summary()}", file=sys.stderr)


def check_student(ctx) -> None:
    """Before any work: a student given by hub id must be reachable (this machine may be offline)."""
    if ctx.student == "tiny" or Path(ctx.student).expanduser().exists():
        return
    try:
        from transformers import AutoConfig

        AutoConfig.from_pretrained(ctx.student)
    except Exception as error:  # noqa: BLE001 - offline, unknown id, gated model: one clear line
        raise RunError(f"student {ctx.student!r} is not a local folder and could not be reached on the Hugging Face "
                       f"hub ({type(error).__name__}). Offline, download it elsewhere and pass its local path "
                       "(--student /path/to/model).") from None


def _open_checkpointer(path: Path):
    from langgraph.checkpoint.sqlite import SqliteSaver

    try:
        conn = sqlite3.connect(str(path), check_same_thread=False)
        conn.execute("PRAGMA schema_version").fetchone()
        saver = SqliteSaver(conn)
        saver.setup()
        return saver
    except sqlite3.DatabaseError as error:
        raise RunError(f"the checkpoint {path} is unreadable ({error}); resume is impossible. "
                       "Start a new run with another --run-dir (the artifacts of this one stay readable).") from None


def _prepare_run_dir(ctx, resuming: bool) -> dict[str, Any]:
    """Write config.json for a new run; for an existing one, check the configuration matches."""
    from teachgraph.graph.context import make_context
    from teachgraph.io import read_json, write_json_atomic
    from teachgraph.paths import RunPaths

    paths = RunPaths.of(ctx.run_dir)
    if paths.config.exists():
        try:
            stored = read_json(paths.config)
            old = make_context(stored["config"])
        except Exception as error:  # noqa: BLE001
            raise RunError(f"{paths.config} is not a readable teachgraph configuration ({error})") from None
        if old.fingerprint() != ctx.fingerprint() and not resuming:
            diff = sorted(k for k in ctx.fingerprint() if ctx.fingerprint()[k] != old.fingerprint()[k])
            raise RunError(f"{ctx.run_dir} holds a run with a different configuration (fields differ: "
                           f"{', '.join(diff)}). Use another --run-dir, or `teachgraph resume {ctx.run_dir}`.")
        return stored
    paths.root.mkdir(parents=True, exist_ok=True)
    stored = {"run_id": f"{ctx.environment}-s{ctx.seed}-{os.urandom(4).hex()}", "config": ctx.public_dump()}
    write_json_atomic(paths.config, stored)
    return stored


_WAITING = ("the run waits for review; answer with `teachgraph resume {run_dir} --answer approve` "
            "(or stop, or drop:ID,ID,...)")


def parse_answer(text: str) -> dict[str, Any]:
    """'approve', 'stop', or 'drop:ID,ID,...' -> the review node's resume value."""
    text = text.strip()
    if text in {"approve", "a", ""}:
        return {"action": "approve"}
    if text in {"stop", "s"}:
        return {"action": "stop"}
    if text.startswith(("drop:", "e:")):
        return {"action": "edit", "drop_ids": [i.strip() for i in text.split(":", 1)[1].split(",") if i.strip()]}
    raise RunError(f"a review answer is 'approve', 'stop' or 'drop:ID,ID,...', not {text!r}")


def _review_answer(payload: dict[str, Any], answer: str | None, display) -> Any:
    """A Command resuming the review pause: from --answer, or asked at the terminal; None if nobody can answer."""
    from langgraph.types import Command

    display.log(f"[bold]review of cycle {payload.get('cycle')}[/bold]: kept {payload.get('kept')} of "
                f"{payload.get('generated')} generated; dropped {payload.get('dropped')}")
    if payload.get("error"):
        display.log(f"[red]{payload['error']}[/red]")
    for ex in payload.get("sample", []):
        display.log(f"  {ex['id']}  [{ex['skill']} / {ex['subskill']}]  {ex['prompt']!r} -> {ex['answer']!r}")
    if answer is None:
        if not sys.stdin or not sys.stdin.isatty():
            return None
        answer = input("approve [a], stop [s], or drop:ID,ID,... > ")
    return Command(resume=parse_answer(answer))


def execute(ctx, run_id: str, quiet: bool = False, resuming: bool = False, answer: str | None = None) -> dict[str, Any]:
    """Run (or continue) the graph for a run directory; returns the final state values."""
    from teachgraph.graph import build_graph
    from teachgraph.students import base_student_path
    from teachgraph.reporting.console import Display
    from teachgraph.paths import RunPaths, domain_of

    paths = RunPaths.of(ctx.run_dir)
    display = Display(quiet=quiet)
    with display.live():
        base_student_path(ctx, domain_of(ctx), progress=display.callback("pretrain base student"), log=display.log)
    graph = build_graph(checkpointer=_open_checkpointer(paths.checkpoints))
    config = {"configurable": {"thread_id": run_id}, "recursion_limit": 10_000}
    try:
        snapshot = graph.get_state(config)
    except Exception as error:  # noqa: BLE001 - a damaged checkpoint must not become a traceback wall
        raise RunError(f"the checkpoint in {paths.checkpoints} cannot be read ({error}); start a new run "
                       "with another --run-dir.") from None
    if snapshot.values.get("result") and not snapshot.next:
        display.log(f"{ctx.run_dir} already finished; its summary is {paths.summary}")
        display.table(snapshot.values.get("history", []))
        return snapshot.values
    if resuming and not snapshot.next:
        raise RunError(f"{ctx.run_dir} has no checkpoint to resume from; start it with `teachgraph run --run-dir {ctx.run_dir}`.")
    graph_input: Any = None if snapshot.next else {"run_dir": str(ctx.run_dir)}
    if snapshot.next:
        display.log(f"resuming {ctx.run_dir} at {', '.join(snapshot.next)} (cycle {snapshot.values.get('cycle', 0)})")
        if snapshot.interrupts:
            graph_input = _review_answer(snapshot.interrupts[0].value, answer, display)
            if graph_input is None:  # nobody to answer: say how, without running the review node again
                display.log(_WAITING.format(run_dir=ctx.run_dir))
                return snapshot.values
    while True:
        with display.live():
            for mode, data in graph.stream(graph_input, config, context=ctx, stream_mode=["custom", "updates"],
                                           durability="sync"):
                if mode == "custom":
                    display.event(data)
        snapshot = graph.get_state(config)
        if not snapshot.interrupts:
            break
        graph_input = _review_answer(snapshot.interrupts[0].value, None, display)
        if graph_input is None:
            display.log(_WAITING.format(run_dir=ctx.run_dir))
            return snapshot.values
    values = snapshot.values
    display.table(values.get("history", []))
    result = values.get("result") or {}
    display.log(f"best cycle {result.get('best_cycle')}: validation {result.get('val_accuracy', 0):.1%}, "
                f"test {result.get('test_accuracy', 0):.1%} (stopped: {values.get('stop_reason')}); summary: {paths.summary}")
    if result:
        try:
            from teachgraph.reporting.report import write_report

            display.log(f"report: {write_report([str(ctx.run_dir)])}")
        except Exception as error:  # noqa: BLE001 - the run succeeded; a report problem is only a warning
            display.log(f"warning: the report could not be written ({type(error).__name__}: {error}); "
                        f"try `teachgraph report {ctx.run_dir}`")
    return values


def main(argv: list[str] | None = None) -> int:
    from teachgraph.graph.context import ConfigError

    args = _parser().parse_args(argv)
    try:
        if args.command == "run" or args.command is None:
            if args.command is None:
                args = _parser().parse_args(["run", *(argv or [])])
            ctx = _context_from_args(args)
            check_domain(ctx)
            check_student(ctx)
            check_teacher(ctx)
            stored = _prepare_run_dir(ctx, resuming=False)
            execute(ctx, stored["run_id"], quiet=args.quiet)
        elif args.command == "resume":
            from teachgraph.graph.context import make_context
            from teachgraph.io import read_json
            from teachgraph.paths import RunPaths

            paths = RunPaths.of(args.run_dir)
            if not paths.config.exists():
                raise RunError(f"{args.run_dir} is not a teachgraph run directory (no config.json)")
            try:
                stored = read_json(paths.config)
                ctx = make_context(stored["config"]).model_copy(update={"run_dir": args.run_dir})
                run_id = stored["run_id"]
            except ConfigError:
                raise
            except Exception as error:  # noqa: BLE001 - a damaged file gets one clear line
                raise RunError(f"{paths.config} is not a readable teachgraph configuration ({error!r})") from None
            check_domain(ctx)
            check_student(ctx)
            check_teacher(ctx)
            execute(ctx, run_id, quiet=args.quiet, resuming=True, answer=args.answer)
        elif args.command == "base-student":
            from teachgraph.students import base_student_path
            from teachgraph.paths import domain_of

            ctx = _context_from_args(args)
            print(base_student_path(ctx, domain_of(ctx)))
        elif args.command == "report":
            from teachgraph.reporting.report import ReportError, write_report

            try:
                print(write_report(args.run_dirs, args.out))
            except ReportError as error:
                raise RunError(str(error)) from None
            except OSError as error:
                raise RunError(f"the report could not be written: {error}") from None
        elif args.command == "serve-teacher":
            from teachgraph.serve import ServeError, serve_teacher

            try:
                return serve_teacher(args)
            except ServeError as error:
                raise RunError(str(error)) from None
        elif args.command == "graph":
            from teachgraph.graph import graph

            print(graph.get_graph().draw_mermaid())
        elif args.command == "bench":
            return run_benchmarks(args)
    except (ConfigError, RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # a student or dataset that cannot be reached offline: one clear line
        from teachgraph.domains.loaders import DatasetUnavailable
        from teachgraph.students.hf import StudentUnavailable

        from teachgraph.teachers.llm_client import TeacherFailing  # issue 12: a failing teacher, resumable
        if not isinstance(error, (DatasetUnavailable, StudentUnavailable, TeacherFailing)):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
