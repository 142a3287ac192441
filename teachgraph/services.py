"""The live objects of one run, built once per process run and handed to the nodes through LangGraph's
runtime: the teacher environment, the domain (its data loaded once), the teacher team (one server
client), the students (each loaded once per cycle), and the deduplication store (one Chroma client).

The graph's state stays JSON; these objects ride on the run's context object (`TeachContext.bind`),
which LangGraph hands unchanged to every node of an invocation. `teachgraph.run.Run` builds them and
closes them at the end; a graph invoked without them (LangGraph Studio, a plain `graph.invoke`)
gets a set built on first use for that invocation. A test can pass its own domain, students or
teacher: `RunServices(ctx, domain=..., students=...)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from teachgraph.domains import Domain, load_domain
from teachgraph.environments import TeacherEnvironment, get_environment


class StudentCache:
    """Loads each student once. Evaluation and the drop-solved filter share the loaded current student;
    training always starts from a fresh load (a new LoRA adapter's initial weights then follow the train
    seed, in a resumed process too), and the trained student is kept for the next cycle's evaluation."""

    def __init__(self, ctx: Any, domain: Domain, loader: Callable[[str], Any] | None = None):
        self.ctx, self.domain = ctx, domain
        self._load = loader or self._load_student
        self._path: str | None = None
        self._student: Any = None
        self._server: Any = None
        self.loads = 0

    def _load_student(self, path: str) -> Any:
        from teachgraph.students import student_from_context

        return student_from_context(self.ctx, path, self.domain)

    def _served(self, path: str) -> Any:
        """With `student_eval_url`: the student answering through the run's SGLang server (students.served)."""
        from teachgraph.students.served import ServedStudent, StudentServer, adapter_base

        if self._server is None:
            server = StudentServer(self.ctx.student_eval_url)
            server.check_serves(adapter_base(path))
            self._server = server
        max_new = self.ctx.max_new_tokens or getattr(self.domain, "default_max_new_tokens", 32)
        return ServedStudent(self._server, path, max_new_tokens=max_new)

    def get(self, path: str) -> Any:
        """The student saved at `path`, loaded on first use (with `student_eval_url`: a client of the server
        that holds its adapter)."""
        if self._path != str(path):
            self._student, self._path = None, None  # free the old one before loading the next
            load = self._served if self.ctx.student_eval_url else self._load
            self._student, self._path = load(str(path)), str(path)
            self.loads += 1
        return self._student

    def for_training(self, path: str) -> Any:
        """A fresh copy of the student at `path`, to be trained in place."""
        self._student, self._path = None, None
        self.loads += 1
        return self._load(str(path))

    def keep(self, path: str, student: Any) -> None:
        """The student just saved at `path` (the next evaluation uses it without loading it again, unless
        evaluation is served: then the trained copy is freed and the server loads the saved adapter)."""
        if self.ctx.student_eval_url:
            self._student, self._path = None, None
            return
        self._student, self._path = student, str(path)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


class RunServices:
    def __init__(self, ctx: Any, *, environment: TeacherEnvironment | None = None, domain: Domain | None = None,
                 students: StudentCache | None = None, teacher: Any = None, dedup: Any = None):
        self.ctx = ctx
        if ctx.threads:
            import torch

            torch.set_num_threads(ctx.threads)
        self.environment = environment or get_environment(ctx.environment)
        self.domain = domain if domain is not None else load_domain(ctx)
        self.students = students or StudentCache(ctx, self.domain)
        self._teacher = teacher
        self._dedup = dedup
        self._dedup_path: str | None = None
        self._base_student: str | None = None

    @property
    def teacher(self) -> Any:
        """The teacher team the configuration asks for (built on first use: one server client per run)."""
        if self._teacher is None:
            from teachgraph.teachers import build_teacher

            self._teacher = build_teacher(self.ctx, self.domain)
        return self._teacher

    def teacher_usage(self) -> dict[str, Any]:
        """Teacher calls and tokens so far in this process (empty before the teacher is first used)."""
        return self._teacher.usage() if self._teacher is not None else {}

    def base_student(self, progress: Callable | None = None, log: Callable[[str], None] = print) -> str:
        """The student every run of this configuration starts from (the tiny base student is built and
        cached on first use)."""
        if self._base_student is None:
            from teachgraph.students import base_student_path

            self._base_student = base_student_path(self.ctx, self.domain, progress=progress, log=log)
        return self._base_student

    def dedup(self, run_dir: str | Path) -> Any:
        """The run's deduplication store (the Chroma store under RUN_DIR/chroma, or on the server at
        chroma_url: the run's own collections, or the shared chroma_collection), opened once, with the
        validation and test prompts added on first use."""
        from teachgraph.paths import RunPaths

        if self.ctx.chroma_url is not None:
            return self._server_dedup(run_dir)
        path = str(RunPaths.of(run_dir).chroma)
        if self._dedup is not None and not Path(path).exists():  # the store's folder was lost under the run:
            self._dedup.close()                                    # open a new one (deduplicate rebuilds it)
            self._dedup = None
        if self._dedup is None or self._dedup_path != path:
            from teachgraph.dedup import DedupStore

            store = DedupStore(path, self.ctx.embedding, images=self._visual())
            store.add_eval(self.domain.load_split("val"), "val")
            store.add_eval(self.domain.load_split("test"), "test")
            self._dedup, self._dedup_path = store, path
        return self._dedup

    def _visual(self) -> bool:
        return getattr(self.domain, "modality", "text") == "image"

    def _server_dedup(self, run_dir: str | Path) -> Any:
        from teachgraph.dedup import DedupStore

        run_id = run_id_of(run_dir)
        if self._dedup is None or self._dedup_path != run_id:
            if self.ctx.chroma_collection:  # a team's store: every run's items, this run's owned by it
                store = DedupStore(embedding=self.ctx.embedding, url=self.ctx.chroma_url,
                                   prefix=self.ctx.chroma_collection, owner=run_id, images=self._visual())
            else:
                store = DedupStore(embedding=self.ctx.embedding, url=self.ctx.chroma_url, prefix=f"teachgraph_{run_id}",
                                   images=self._visual())
            self._dedup, self._dedup_path = store, run_id
        else:
            self._dedup.refresh(always=False)  # a server that lost its data has new, empty collections
        self._dedup.add_eval(self.domain.load_split("val"), "val")  # no Chroma call when all are stored
        self._dedup.add_eval(self.domain.load_split("test"), "test")
        return self._dedup

    def close(self) -> None:
        self.students.close()
        if self._teacher is not None:
            self._teacher.close()
        if self._dedup is not None:
            self._dedup.close()
        self._teacher = self._dedup = None
        self._dedup_path = None


def run_id_of(run_dir: str | Path) -> str:
    """The run id (the LangGraph thread id) in RUN_DIR/config.json; a graph run without one (Studio) is
    named by its directory."""
    import hashlib
    import os

    from teachgraph.io import read_json
    from teachgraph.paths import RunPaths

    config = RunPaths.of(run_dir).config
    if config.exists():
        return str(read_json(config)["run_id"])
    return "dir-" + hashlib.sha256(os.path.realpath(run_dir).encode()).hexdigest()[:16]


def services_of(runtime: Any) -> RunServices:
    """The services of the run a node belongs to (built on first use when the run brought none)."""
    from teachgraph.graph.context import TeachContext, context_of

    raw = getattr(runtime, "context", None)
    if isinstance(raw, TeachContext):
        if raw.services is None:
            raw.attach(RunServices(context_of(runtime)))
        return raw.services
    return RunServices(context_of(runtime))
