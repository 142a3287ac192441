"""The run configuration: a typed, validated context object (LangGraph `context_schema`).

Every field has a default, so `TeachContext()` is the offline default run. Unknown fields,
wrong types, unknown environments or domains and impossible budgets fail here, before any work,
with the field named.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from teachgraph.environments import DEFAULT_ENVIRONMENT, ENVIRONMENTS

# Training defaults for a pretrained student (anything but 'tiny'), as in DataEnvGym: peft LoRA, r 16,
# alpha 32, dropout 0.05 (the field defaults), lr 1e-4, 3 epochs. They apply to the fields a
# configuration leaves unset; the field defaults themselves suit the tiny from-config student.
PRETRAINED_STUDENT_DEFAULTS = {"finetune": "lora", "learning_rate": 1e-4, "epochs": 3.0, "batch_size": 16}

class ConfigError(ValueError):
    """A configuration problem, found before any work starts."""


class TeachContext(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # -- the run ----------------------------------------------------------------------------
    environment: str = Field(DEFAULT_ENVIRONMENT, description="Teacher environment: what state the teacher sees "
                             "(one module of teachgraph.environments each: skill-tree, skill-list, open-ended, no-state).")
    domain: str = Field("synthetic", description="Task domain (see `domains.DOMAINS`).")
    domain_options: dict[str, Any] = Field(default_factory=dict, description="Keyword options for the domain.")
    data_seed: int = Field(0, description="Seed of the validation/test splits (fixed across run seeds).")
    seed: int = Field(0, description="Seed of generation, planning and training.")
    run_dir: str = Field("runs/default", description="Where checkpoints and artifacts go.")
    checkpointer: str | None = Field(None, description="Where the checkpoints go: None, RUN_DIR/checkpoints.sqlite "
                                     "(SQLite); a postgresql://USER@HOST:PORT/DB URL, that PostgreSQL database "
                                     "(LangGraph's PostgresSaver; one thread per run). Its password is never written "
                                     "to disk: give it by $PGPASSWORD or ~/.pgpass.")

    # -- when to stop -----------------------------------------------------------------------
    cycles: int = Field(5, ge=1, le=1000, description="Training cycles after the base evaluation.")
    budget: int = Field(8000, ge=1, description="Total generated examples for the whole run.")
    target_accuracy: float | None = Field(None, gt=0, le=1, description="Stop once validation accuracy reaches it.")
    patience: int | None = Field(None, ge=1, description="Stop after this many cycles without improvement.")

    # -- teacher ----------------------------------------------------------------------------
    teacher: Literal["offline", "llm"] = Field("offline", description="Which teacher agents run: the offline programs, "
                                               "or LLM agents served by an OpenAI-compatible server (SGLang).")
    teacher_url: str | None = Field(None, description="LLM teacher: the server's OpenAI base URL, e.g. http://127.0.0.1:30000/v1.")
    teacher_model: str | None = Field(None, description="LLM teacher: the served model name.")
    teacher_api_key: str = Field("EMPTY", description="LLM teacher: API key (SGLang ignores it). Never written to "
                                 "disk; a key can also come from $TEACHGRAPH_TEACHER_API_KEY.")
    teacher_temperature: float = Field(0.0, ge=0, le=2, description="LLM teacher: sampling temperature of every call.")
    teacher_seed: int = Field(0, description="LLM teacher: sampling seed of every call.")
    teacher_timeout_s: float = Field(120.0, gt=0, le=3600, description="LLM teacher: wall-clock limit of one request, "
                                     "connect to last byte, however slowly the server trickles its answer. One call "
                                     "(retries and repair prompts together) gets at most min(1 + teacher_max_retries, 3) "
                                     "times this: 360 s worst case with the defaults.")
    teacher_max_retries: int = Field(4, ge=0, le=20, description="LLM teacher: retries of a request on 429/5xx/timeouts/"
                                     "refused connections, while the call's time budget (see teacher_timeout_s) lasts.")
    max_teacher_failure_rate: float = Field(0.5, ge=0, le=1, description="LLM teacher: stop the run (exit 2; `teachgraph "
                                            "resume RUN_DIR` continues it once the teacher answers again) when more than "
                                            "this share of a node's teacher calls, or of the cycle's so far, failed (no "
                                            "usable answer), counted from 8 calls on; 1 never stops (failures are still "
                                            "printed as warnings).")
    teacher_max_completion_tokens: int = Field(1024, ge=16, le=32768, description="LLM teacher: most tokens one "
                                               "answer may have (max_completion_tokens); a longer one is cut off and "
                                               "counted as truncated, then repaired or falls back. Without a limit a "
                                               "small model can loop inside the JSON grammar until the context is full.")
    teacher_concurrency: int = Field(16, ge=1, le=512, description="LLM teacher: requests in flight at once.")
    teacher_batch_size: int = Field(25, ge=1, le=500, description="LLM teacher: most examples one generator request asks for.")
    max_teacher_tokens: int | None = Field(None, ge=1, description="Stop the run at the next cycle boundary once the teacher "
                                                                  "has used this many prompt+completion tokens.")
    teacher_discovery: Literal["llm", "offline"] = Field("llm", description="LLM teacher: skills discovered by the "
                                                         "LLM (DataEnvGym's labelling agent), or by the offline "
                                                         "discoverer that skill_discovery names (no teacher tokens).")
    skill_discovery: Literal["gold", "cluster"] = Field("gold", description="Skills from domain labels, or by clustering validation prompts.")
    num_clusters: int | None = Field(None, ge=2, le=64, description="Clusters for skill discovery (None: chosen by silhouette).")
    rediscover_every: int = Field(0, ge=0, description="Rediscover skills every N cycles (0: only in the first cycle).")
    organizer_policy: Literal["learning-progress", "error-weighted", "focus", "fill-balanced", "alternating"] = Field(
        "error-weighted", description="Skill-tree action policy (teachgraph.teachers.organizer).")
    organizer_explore: Literal["by-error", "uniform"] = Field(
        "by-error", description="Data for each subskill an explore action adds: by the skill's error (little for "
        "what the student knows), or uniform (a full unit each, DataEnvGym's; the first cycle is then spread evenly).")
    focus_skills: int = Field(2, ge=1, le=1000, description="organizer_policy focus: how many skills a cycle's data "
                              "is focused on (the rest keep a tenth of a unit each).")
    max_subskills: int = Field(3, ge=1, le=32, description="Most subskills per skill in the skill tree.")
    subskill_cap: int = Field(2000, ge=1, description="Most examples one subskill may be allocated in a cycle.")
    skill_cap: int = Field(4000, ge=1, description="Most examples one skill may be allocated in a cycle.")
    min_skill_share: float = Field(0.03, ge=0, lt=1, description="Share of a cycle's budget every known skill keeps.")
    review: bool = Field(False, description="Pause before each training step for a human to approve, edit or stop (interrupt).")

    # -- deduplication ----------------------------------------------------------------------
    embedding: Literal["hashing", "minilm"] = Field("hashing", description="Embedding for near-duplicate search.")
    dedup_threshold: float = Field(0.05, ge=0, le=2, description="Cosine distance at or below which a training example is a near-duplicate.")
    decontamination_threshold: float = Field(0.05, ge=0, le=2, description="Cosine distance at or below which an example contaminates validation/test.")
    drop_solved: bool | None = Field(None, description="Drop generated examples the current student already answers "
                                     "correctly (DataEnvGym's quality check). None: the domain's default (on for "
                                     "math and code, off for synthetic).")

    chroma_url: str | None = Field(None, description="A Chroma server (http://HOST:PORT, `chroma run`) for the dedup "
                                   "store, instead of the in-process store under RUN_DIR/chroma; embeddings are computed "
                                   "here and sent with every item.")
    chroma_collection: str | None = Field(None, description="With chroma_url: a collection name shared by every run "
                                          "that gives it (a team's store: each run deduplicates against all of it); "
                                          "None: collections of this run only.")

    # -- the student ------------------------------------------------------------------------
    student: str = Field("tiny", description="'tiny' (the cached base student of the domain), a local path or a Hugging Face id.")
    tiny_hidden_size: int = Field(128, ge=8, le=4096, description="Width of the tiny base student.")
    tiny_layers: int = Field(4, ge=1, le=64, description="Depth of the tiny base student.")
    base_examples_per_skill: int = Field(10000, ge=10, description="Pretraining examples per base skill of the tiny student.")
    base_epochs: float = Field(2.0, gt=0, le=100, description="Pretraining epochs of the tiny base student.")
    finetune: Literal["full", "lora"] = Field("full", description="Full fine-tuning or peft LoRA.")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    train_mode: Literal["replay", "retrain"] = Field(
        "replay", description="replay: continue from the last cycle with replayed old data; retrain: from the base on all data.")
    replay_fraction: float = Field(0.5, ge=0, le=4, description="Replayed old examples per new example (replay mode).")
    replay_policy: Literal["uniform", "at-risk"] = Field(
        "uniform", description="What replay samples: uniform over old data, or (at-risk) weighted towards the skills "
        "whose validation accuracy fell below their best, for environments whose teacher sees per-skill accuracy "
        "(skill-list, skill-tree); the others replay uniformly either way.")
    epochs: float = Field(4.0, gt=0, le=100)
    batch_size: int = Field(64, ge=1, le=4096)
    learning_rate: float = Field(2e-3, gt=0, le=1)
    train_pack: bool = Field(True, description="Pack each training step's examples into shared rows (position ids "
                             "restart per example, no attention across examples): the same loss, less padding computed.")
    train_grad_accum_steps: int = Field(1, ge=1, le=1024, description="Micro-batches per optimizer step (batch_size "
                                        "stays the examples per step): less activation memory, the same loss.")
    train_precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="bf16 autocast over fp32 master weights; auto: bf16 on CUDA, fp32 on CPU (bf16 is ~1.5x "
        "faster on CPUs with AMX-BF16, opt-in there).")
    train_gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass "
                                               "(less memory, more compute; for big students).")
    train_compile: bool = Field(False, description="torch.compile the training forward (opt-in).")
    train_processes: int = Field(1, ge=1, le=64, description="Processes the train node trains in: above 1, "
                                 "`torchrun --nproc-per-node N` (gloo on CPU, one thread each; NCCL on GPUs, one "
                                 "GPU each) with the same global batch and the same loss curve.")
    train_parallel: Literal["ddp", "fsdp"] = Field("ddp", description="With train_processes > 1: DDP (a copy of "
                                                   "the student per process), or FSDP2 fully_shard (parameters, "
                                                   "gradients and optimizer state sharded: students too big for one device).")
    max_new_tokens: int | None = Field(None, ge=1, le=4096, description="Answer length limit (None: the domain's).")
    device: str = Field("auto", description="'auto', 'cpu' or 'cuda[:N]'.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: all cores).")
    student_eval_url: str | None = Field(None, description="Evaluate each cycle's LoRA adapter through this SGLang server "
                                         "(started with the student's base model, --enable-lora, --max-lora-rank and "
                                         "--lora-target-modules) instead of in-process generate; training stays here.")

    # The run's live services (teachgraph.services.RunServices): not configuration, never serialised.
    _services: Any = PrivateAttr(default=None)

    @property
    def services(self) -> Any:
        return self._services

    def bind(self, services: Any) -> "TeachContext":
        """This configuration carrying a run's live services, to pass as the graph's context."""
        bound = self.model_copy()
        bound._services = services
        return bound

    def attach(self, services: Any) -> None:
        self._services = services

    @model_validator(mode="after")
    def _check(self) -> "TeachContext":
        from teachgraph.domains import DOMAINS

        if self.environment not in ENVIRONMENTS:
            raise ValueError(f"environment: unknown environment {self.environment!r}; allowed: {sorted(ENVIRONMENTS)}")
        if self.domain not in DOMAINS:
            raise ValueError(f"domain: unknown domain {self.domain!r}; allowed: {sorted(DOMAINS)}")
        if self.budget < self.cycles:
            raise ValueError(f"budget: {self.budget} examples cannot feed {self.cycles} cycles (need at least one per cycle)")
        if self.teacher == "llm":
            for field in ("teacher_url", "teacher_model"):
                if not getattr(self, field):
                    raise ValueError(f"{field}: required when teacher is 'llm' (e.g. --teacher-url "
                                     "http://127.0.0.1:30000/v1 --teacher-model NAME)")
        if self.teacher_url is not None:
            from urllib.parse import urlparse

            url = urlparse(self.teacher_url)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise ValueError(f"teacher_url: {self.teacher_url!r} is not an http(s) URL (e.g. http://127.0.0.1:30000/v1)")
        if self.student_eval_url is not None:
            from urllib.parse import urlparse

            url = urlparse(self.student_eval_url)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise ValueError(f"student_eval_url: {self.student_eval_url!r} is not an http(s) URL "
                                 "(e.g. http://127.0.0.1:30001)")
            if getattr(_domain_class(self.domain), "modality", "text") == "image":
                raise ValueError(f"student_eval_url: served evaluation sends token ids only; domain {self.domain!r} "
                                 "has images, which its vision-language student reads in process")
            pretrained_default = self.student != "tiny" and "finetune" not in self.model_fields_set
            if self.finetune != "lora" and not pretrained_default:
                raise ValueError("student_eval_url: served evaluation loads each cycle's LoRA adapter into the server; "
                                 "it needs finetune=lora")
        if self.checkpointer is not None:
            _check_checkpointer(self.checkpointer)
        if self.chroma_url is not None:
            _check_chroma_url(self.chroma_url)
        if self.chroma_collection is not None:
            if self.chroma_url is None:
                raise ValueError("chroma_collection: a shared collection needs a Chroma server (chroma_url)")
            if not _CHROMA_NAME.fullmatch(self.chroma_collection):
                raise ValueError(f"chroma_collection: {self.chroma_collection!r} is not a Chroma collection name "
                                 "(3-50 characters of a-z, A-Z, 0-9, '.', '_', '-', starting and ending with a "
                                 "letter or digit)")
        if self.skill_cap < self.subskill_cap and self.max_subskills == 1:
            raise ValueError("skill_cap: must be at least subskill_cap when a skill has one subskill")
        _check_domain_options(self.domain, self.domain_options)
        return self

    def with_student_defaults(self) -> "TeachContext":
        """This configuration with the pretrained-student training defaults filled in where unset; for the
        tiny student, the domain's own defaults (`tiny_run_defaults`: a domain with longer answers than the
        synthetic one asks for a smaller budget, so that its default run stays minutes on a CPU)."""
        if self.student == "tiny":
            from teachgraph.domains import domain_class

            defaults = getattr(domain_class(self.domain), "tiny_run_defaults", {})
            unset = {k: v for k, v in defaults.items() if k not in self.model_fields_set}
            return self.model_copy(update=unset) if unset else self
        unset = {k: v for k, v in PRETRAINED_STUDENT_DEFAULTS.items() if k not in self.model_fields_set}
        return self.model_copy(update=unset) if unset else self

    def public_dump(self) -> dict[str, Any]:
        """The configuration as written to config.json and summary.json: everything but the API key."""
        dump = self.model_dump(exclude={"teacher_api_key"})
        if self.checkpointer is not None:
            dump["checkpointer"] = redact_password(self.checkpointer)
        return dump

    def api_key(self) -> str:
        return os.environ.get("TEACHGRAPH_TEACHER_API_KEY") or self.teacher_api_key

    def fingerprint(self) -> dict[str, Any]:
        """The fields that define a run's results (where it is written, and where and how fast the
        teacher is served, do not)."""
        return self.model_dump(exclude={"run_dir", "threads", "device", "train_processes", "train_parallel",
                                        "teacher_url", "teacher_api_key",
                                        "teacher_timeout_s", "teacher_max_retries", "teacher_concurrency",
                                        "max_teacher_failure_rate", "student_eval_url", "checkpointer", "chroma_url"})


_CHROMA_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,48}[a-zA-Z0-9]")


def redact_password(url: str) -> str:
    """A database URL without its password (config.json and summary.json never hold one)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _check_checkpointer(value: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres") or not (parts.hostname or parts.query):
        raise ValueError(f"checkpointer: {redact_password(value)!r} is not a PostgreSQL URL "
                         "(postgresql://USER@HOST:PORT/DATABASE); leave it unset for RUN_DIR/checkpoints.sqlite")


def _check_chroma_url(value: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        raise ValueError(f"chroma_url: {value!r} is not a URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.username or parts.query:
        raise ValueError(f"chroma_url: {value!r} is not a Chroma server address (http://HOST:PORT, e.g. "
                         "http://127.0.0.1:8000 for `chroma run --port 8000`)")
    del port


def _domain_class(domain: str) -> type:
    from teachgraph.domains import domain_class

    return domain_class(domain)


def _check_domain_options(domain: str, options: dict[str, Any]) -> None:
    """Unknown keyword options of a domain fail here, naming the allowed ones."""
    import inspect

    from teachgraph.domains import domain_class

    parameters = inspect.signature(domain_class(domain)).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    allowed = sorted(name for name in parameters if name != "seed")
    for key in options:
        if key not in allowed:
            raise ValueError(f"domain_options.{key}: unknown option of domain {domain!r}; allowed: {allowed}")


def _explain(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "config"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown field; allowed fields: {', '.join(sorted(TeachContext.model_fields))}"
        lines.append(f"{field}: {message}" if not message.startswith(f"{field}:") else message)
    return "invalid configuration:\n  " + "\n  ".join(lines)


def make_context(values: dict[str, Any] | None = None, **overrides: Any) -> TeachContext:
    """Validate a configuration; raises ConfigError naming each bad field and what it allows."""
    merged = dict(values or {})
    merged.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TeachContext(**merged).with_student_defaults()
    except ValidationError as error:
        raise ConfigError(_explain(error)) from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON file with the same fields as TeachContext."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if not path.is_file():
        raise ConfigError(f"config file {path} is a directory, not a YAML or JSON file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[:error.start].count(b"\n") + 1
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {error.object[error.start]:#04x} on line "
                          f"{line})") from None
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error.strerror or error}") from None
    try:
        if path.suffix in {".yaml", ".yml"}:
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as error:  # noqa: BLE001 - any parse error becomes one clear message
        raise ConfigError(f"config file {path} could not be parsed: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of field: value, not {type(data).__name__}")
    return data


def context_of(runtime: Any) -> TeachContext:
    """The run's context inside a node; a graph started without one (Studio) gets the defaults."""
    ctx = getattr(runtime, "context", None)
    if ctx is None:
        return TeachContext()
    if isinstance(ctx, dict):
        return make_context(ctx)
    return ctx.with_student_defaults()
