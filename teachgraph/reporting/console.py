"""What the user sees: progress bars from the graph's custom stream events, and the per-cycle table."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

def _is_terminal() -> bool:
    import sys

    return sys.stdout.isatty()




class Display:
    def __init__(self, quiet: bool = False, console: Console | None = None):
        self.quiet = quiet
        self.console = console or Console(highlight=False, width=None if _is_terminal() else 140)
        self.progress: Progress | None = None
        self.tasks: dict[str, Any] = {}

    @contextlib.contextmanager
    def live(self) -> Iterator[None]:
        if self.quiet:
            yield
            return
        self.progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=self.console,
                                 transient=True)
        with self.progress:
            yield
        self.progress, self.tasks = None, {}

    def log(self, message: str) -> None:
        self.console.print(message)

    def _bar(self, name: str, step: int, total: int, info: str = "") -> None:
        if self.progress is None:
            return
        task = self.tasks.get(name)
        if task is None or task["total"] != total or step < task["step"]:  # a new round of this stage
            if task is not None:
                self.progress.remove_task(task["id"])
            task = self.tasks[name] = {"id": self.progress.add_task(name, total=total, info=""), "total": total}
        task["step"] = step
        self.progress.update(task["id"], completed=step, info=info)

    def callback(self, name: str) -> Callable[[int, int, float], None]:
        return lambda step, total, loss: self._bar(name, step, total, f"loss {loss:.3f}")

    def event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "progress":
            info = f"loss {event['loss']:.3f}" if "loss" in event else ""
            self._bar(event["node"], event["step"], event["total"], info)
        elif kind == "stage" and not self.quiet:
            self.console.print(f"[dim]cycle {event.get('cycle')} · {event['node']}: {event.get('message', '')}[/dim]")
        elif kind == "warning":  # shown even with --quiet (e.g. teacher calls that failed and fell back)
            from rich.markup import escape

            where = f"cycle {event['cycle']} · " if event.get("cycle") is not None else ""
            self.console.print(f"[bold yellow]warning[/bold yellow]: {where}{escape(str(event.get('node', '')))}: "
                               f"{escape(str(event.get('message', '')))}")
        elif kind == "teacher_concurrency" and not self.quiet:  # backpressure (teachers.backpressure)
            self.console.print(f"[dim]teacher concurrency {event.get('previous')} -> {event.get('limit')} of "
                               f"{event.get('max')} ({event.get('reason', '')})[/dim]")
        elif kind == "cycle":
            self.console.print(cycle_line(event["record"]))

    def table(self, history: list[dict[str, Any]]) -> None:
        if history:
            self.console.print(cycle_table(history))


def weakest(per_skill: dict[str, float], n: int = 3) -> str:
    return ", ".join(f"{s} {a:.0%}" for s, a in sorted(per_skill.items(), key=lambda kv: (kv[1], kv[0]))[:n])


def cycle_line(record: dict[str, Any]) -> str:
    return (f"[bold]cycle {record['cycle']}[/bold]: validation {record['val_accuracy']:.1%} · "
            f"generated {record['generated']} kept {record['kept']} · weakest: {weakest(record['per_skill'])}")


def cycle_table(history: list[dict[str, Any]]) -> Table:
    table = Table(title="teaching cycles")
    for column in ("cycle", "val acc", "Δ", "weakest skills", "gen", "kept", "dropped", "train s", "eval s", "other s"):
        table.add_column(column, justify="left" if column in {"weakest skills", "dropped"} else "right",
                         no_wrap=column not in {"weakest skills", "dropped"})
    previous = None
    for r in history:
        seconds = r.get("seconds", {})
        other = sum(v for k, v in seconds.items() if k not in {"train", "evaluate"})
        delta = "" if previous is None else f"{(r['val_accuracy'] - previous) * 100:+.1f}"
        dropped = ", ".join(f"{k} {v}" for k, v in r.get("dropped", {}).items()) or "-"
        table.add_row(str(r["cycle"]), f"{r['val_accuracy']:.1%}", delta, weakest(r["per_skill"]),
                      str(r["generated"]), str(r["kept"]), dropped, f"{seconds.get('train', 0):.1f}",
                      f"{seconds.get('evaluate', 0):.1f}", f"{other:.1f}")
        previous = r["val_accuracy"]
    return table
