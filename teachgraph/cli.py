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

from teachgraph.environments import ENVIRONMENTS  # noqa: E402 - after the environment defaults above
from teachgraph.run import RunError  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teachgraph", description=__doc__)
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run the teaching loop (the offline default with no arguments)")
    run.add_argument("--env", dest="environment", choices=sorted(ENVIRONMENTS))
    run.add_argument("--domain", help="synthetic (the offline default), tools (offline tool use), vqa (rendered "
                     "scenes), math, code, mnms, gqa or naturalbench")
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
    run.add_argument("--checkpointer", metavar="postgresql://USER@HOST:PORT/DB",
                     help="keep the checkpoints in this PostgreSQL database (default RUN_DIR/checkpoints.sqlite)")
    run.add_argument("--chroma-url", metavar="http://HOST:PORT",
                     help="the dedup store on this Chroma server (`chroma run`), not in-process under RUN_DIR/chroma")
    run.add_argument("--chroma-collection", metavar="NAME",
                     help="with --chroma-url: a collection shared by every run that names it (default: this run's own)")
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

    serve = sub.add_parser("serve-teacher", help="launch a server for the LLM teacher (SGLang on GPUs, llama.cpp "
                                                  "on CPUs) and print its base URL")
    serve.add_argument("--backend", choices=("sglang", "llama-cpp"), default="sglang",
                       help="sglang (GPUs) or llama-cpp (llama.cpp's server through xllamacpp; CPUs, GGUF files)")
    serve.add_argument("--model", help="llama-cpp: a .gguf file or an installed model name (`teachgraph models`)")
    serve.add_argument("--model-path", help="sglang: local path or Hugging Face id of the teacher model")
    serve.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1),
                       help="llama-cpp: CPU threads for decoding and prompt processing (default: up to 2)")
    serve.add_argument("--poll", type=int, default=0, choices=range(0, 101), metavar="0-100",
                       help="llama-cpp: spin-polling of idle threads (0 = off, the default: polling on a shared CPU "
                            "starves the other processes and the server itself)")
    serve.add_argument("--ctx", type=int, default=4096, help="llama-cpp: context tokens, shared by the parallel slots")
    serve.add_argument("--parallel", type=int, default=1, help="llama-cpp: requests decoded at once")
    serve.add_argument("--verbose", action="store_true", help="llama-cpp: llama.cpp's own load and timing logs")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=30000)
    serve.add_argument("--tp", type=int, default=1, help="tensor-parallel size")
    serve.add_argument("--dp", type=int, default=1, help="data-parallel size")
    serve.add_argument("--mem-fraction-static", type=float, help="GPU memory fraction for weights and KV cache")
    serve.add_argument("--served-model-name", help="the model name clients use (default: --model-path)")
    serve.add_argument("--wait", type=float, default=900, help="seconds to wait for the server to become healthy")
    serve.add_argument("--replicas", type=int, default=1, help="start this many workers with sglang-router in "
                       "front on --port (the run points at the router; see teachgraph/replicas.py)")
    serve.add_argument("--worker-command", help="with --replicas: each worker's command line instead of SGLang's, "
                       "with {port}, {host}, {model_path}, {index}, {python} filled in")
    serve.add_argument("--worker-base-port", type=int, help="with --replicas: the first worker's port (default --port + 1)")
    serve.add_argument("--router-policy", default="cache_aware",
                       choices=["cache_aware", "round_robin", "power_of_two", "random"], help="with --replicas")
    serve.add_argument("--router-python", help="with --replicas: a Python that has sglang-router (default: its own "
                       "venv in the teachgraph cache, created on first use)")
    serve.add_argument("--log-dir", help="with --replicas: the workers' and router's logs and replicas.json")
    serve.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                       help="everything after --extra goes to sglang.launch_server unchanged")

    sub.add_parser("models", help="list the pretrained model packages (installed or not) and their GGUF files")

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


def show_models() -> int:
    """`teachgraph models`: each model package, installed or not, with its GGUF file (a split model's parts
    are joined into the cache on first listing) and how to install the missing ones."""
    from teachgraph.models import list_models

    rows = list_models()
    for row in rows:
        print(f"{row['name']}: {row['model']}")
        if row.get("path"):
            print(f"  installed: {row['path']}" + (f"\n  sha256: {row['sha256']}" if row.get("sha256") else ""))
        elif row.get("error"):
            print(f"  broken: {row['error']}")
        else:
            print(f"  not installed: `make models` or `{row['install']}`")
        print(f"  source: {row['source']}")
    return 0


def _parse_value(field: str, text: str) -> Any:
    """A --set value, read as YAML (numbers, booleans, lists, mappings; anything else is a string)."""
    import yaml

    from teachgraph.graph.context import ConfigError

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = str(getattr(error, "problem", None) or error).splitlines()[0]
        raise ConfigError(f"--set {field}: the value {text!r} cannot be read ({problem}); quote it to pass a string") from None


def _context_from_args(args: argparse.Namespace):
    from teachgraph.graph.context import ConfigError, load_config_file, make_context

    values = load_config_file(args.config) if getattr(args, "config", None) else {}
    for item in getattr(args, "set", []):
        if "=" not in item:
            raise ConfigError(f"--set expects FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        values[key.strip()] = _parse_value(key.strip(), value)
    for field in ("environment", "domain", "cycles", "budget", "seed", "teacher_url", "teacher_model", "student",
                  "checkpointer", "chroma_url", "chroma_collection"):
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


def check_chroma(ctx) -> None:
    """Before any work: a Chroma server given by --chroma-url must answer, else a RunError naming it."""
    if ctx.chroma_url is None:
        return
    from teachgraph.dedup.store import ChromaUnavailable, check_chroma_server

    try:
        check_chroma_server(ctx.chroma_url, ctx.chroma_collection, ctx.embedding)
    except ChromaUnavailable as error:
        raise RunError(str(error)) from None


def run_services(ctx):
    """Before any work: the run's services; the domain's data must load (malformed rows are reported:
    they were skipped)."""
    from teachgraph.domains.loaders import DatasetUnavailable
    from teachgraph.services import RunServices

    try:
        services = RunServices(ctx)
    except (DatasetUnavailable, ValueError) as error:
        raise RunError(f"domain {ctx.domain!r}: {error}") from None
    report = getattr(services.domain, "report", None)
    if report is not None and report.skipped:
        print(f"warning: {report.summary()}", file=sys.stderr)
    return services


def check_student(ctx) -> None:
    """Before any work: a student given by hub id must be reachable (this machine may be offline)."""
    from teachgraph.models import ModelUnavailable, is_gguf_reference, resolve_gguf

    if is_gguf_reference(ctx.student):  # a .gguf file or an installed model name: converted on first use
        try:
            resolve_gguf(ctx.student)
        except ModelUnavailable as error:
            raise RunError(f"student: {error}") from None
        return
    if ctx.student == "tiny" or Path(ctx.student).expanduser().exists():
        return
    try:
        from transformers import AutoConfig

        AutoConfig.from_pretrained(ctx.student)
    except Exception as error:  # noqa: BLE001 - offline, unknown id, gated model: one clear line
        raise RunError(f"student {ctx.student!r} is not a local folder and could not be reached on the Hugging Face "
                       f"hub ({type(error).__name__}). Offline, download it elsewhere and pass its local path "
                       "(--student /path/to/model).") from None


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


def _review_answer(payload: dict[str, Any], answer: str | None, display) -> dict[str, Any] | None:
    """The answer to the review pause: from --answer, or asked at the terminal; None if nobody can answer."""
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
    return parse_answer(answer)


def execute(run, quiet: bool = False, answer: str | None = None) -> dict[str, Any]:
    """Run (or continue) a run to its end or its next review pause, showing progress; returns the state's values."""
    from teachgraph.reporting.console import Display

    display = Display(quiet=quiet)
    with display.live():
        run.services.base_student(progress=display.callback("pretrain base student"), log=display.log)
    if run.finished:
        display.log(f"{run.ctx.run_dir} already finished; its summary is {run.paths.summary}")
        display.table(run.values().get("history", []))
        return run.values()
    position = run.position()
    if position is not None:
        display.log(f"resuming {run.ctx.run_dir} at {position[0]} (cycle {position[1]})")
    while True:
        payload = run.waiting_review
        reply = None
        if payload is not None:
            reply = _review_answer(payload, answer, display)
            answer = None  # a --answer answers the pause it was given for, not later ones
            if reply is None:  # nobody to answer: say how, without running the review node again
                display.log(_WAITING.format(run_dir=run.ctx.run_dir))
                return run.values()
        with display.live():
            for event in run.stream(answer=reply):
                display.event(event)
        if run.waiting_review is None:
            break
    values = run.values()
    display.table(values.get("history", []))
    result = values.get("result") or {}
    display.log(f"best cycle {result.get('best_cycle')}: validation {result.get('val_accuracy', 0):.1%}, "
                f"test {result.get('test_accuracy', 0):.1%} (stopped: {values.get('stop_reason')}); summary: {run.paths.summary}")
    if result:
        try:
            from teachgraph.reporting.report import write_report

            display.log(f"report: {write_report([str(run.ctx.run_dir)])}")
        except Exception as error:  # noqa: BLE001 - the run succeeded; a report problem is only a warning
            display.log(f"warning: the report could not be written ({type(error).__name__}: {error}); "
                        f"try `teachgraph report {run.ctx.run_dir}`")
    return values


def _store_errors() -> tuple[type[BaseException], ...]:
    """A lost connection to a PostgreSQL checkpointer or a Chroma server (both optional engines)."""
    errors: list[type[BaseException]] = []
    try:
        from psycopg import OperationalError

        errors.append(OperationalError)
    except ImportError:
        pass
    from httpx import TransportError

    return (*errors, TransportError)


def main(argv: list[str] | None = None) -> int:
    from teachgraph.graph.context import ConfigError
    from teachgraph.run import Run

    args = _parser().parse_args(argv)
    try:
        if args.command == "run" or args.command is None:
            if args.command is None:
                args = _parser().parse_args(["run", *(argv or [])])
            ctx = _context_from_args(args)
            args.run_dir = ctx.run_dir
            services = run_services(ctx)
            check_student(ctx)
            check_teacher(ctx)
            check_chroma(ctx)
            with Run.create(ctx, services=services) as run:
                execute(run, quiet=args.quiet)
        elif args.command == "resume":
            from teachgraph.run import read_run_config

            _, ctx = read_run_config(args.run_dir)
            services = run_services(ctx)
            check_student(ctx)
            check_teacher(ctx)
            check_chroma(ctx)
            with Run.open(args.run_dir, services=services) as run:
                if not run.started:
                    raise RunError(f"{args.run_dir} has no checkpoint to resume from; start it with "
                                   f"`teachgraph run --run-dir {args.run_dir}`.")
                execute(run, quiet=args.quiet, answer=args.answer)
        elif args.command == "base-student":
            ctx = _context_from_args(args)
            print(run_services(ctx).base_student())
        elif args.command == "report":
            from teachgraph.reporting.report import ReportError, write_report

            try:
                print(write_report(args.run_dirs, args.out))
            except ReportError as error:
                raise RunError(str(error)) from None
            except OSError as error:
                raise RunError(f"the report could not be written: {error}") from None
        elif args.command == "serve-teacher" and (args.replicas > 1 or args.worker_command):
            from teachgraph.replicas import ReplicasError, serve_replicas

            try:
                return serve_replicas(args)
            except ReplicasError as error:
                raise RunError(str(error)) from None
        elif args.command == "serve-teacher":
            from teachgraph.serve import ServeError, serve_teacher

            try:
                return serve_teacher(args)
            except ServeError as error:
                raise RunError(str(error)) from None
        elif args.command == "models":
            return show_models()
        elif args.command == "graph":
            from teachgraph.graph import graph

            print(graph.get_graph().draw_mermaid())
        elif args.command == "bench":
            return run_benchmarks(args)
    except (ConfigError, RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.OperationalError) as error:  # a full disk, a read-only or vanished run directory
        where = f" ({error.filename})" if getattr(error, "filename", None) else ""
        run_dir = getattr(args, "run_dir", None)
        print(f"error: {getattr(error, 'strerror', None) or error}{where}; the run stopped at its last checkpoint"
              + (f". Once fixed, continue with `teachgraph resume {run_dir}`" if run_dir else ""), file=sys.stderr)
        return 2
    except _store_errors() as error:  # the checkpoint database or the Chroma server went away mid-run
        run_dir = getattr(args, "run_dir", None)
        print(f"error: {type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}; "
              "the run stopped at its last checkpoint"
              + (f". Once the server answers, continue with `teachgraph resume {run_dir}`" if run_dir else ""),
              file=sys.stderr)
        return 2
    except RuntimeError as error:  # a student or dataset that cannot be reached offline: one clear line
        from teachgraph.domains.loaders import DatasetUnavailable
        from teachgraph.students.hf import StudentUnavailable

        from teachgraph.students.distributed import TrainingFailed  # a training process crashed: resumable
        from teachgraph.teachers.llm_client import TeacherFailing  # a failing teacher: resumable once it is back
        if not isinstance(error, (DatasetUnavailable, StudentUnavailable, TeacherFailing, TrainingFailed)):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
