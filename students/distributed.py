"""Training in several processes under torchrun: DDP, or FSDP2 (`fully_shard`) for students that do not fit
one device; gloo on CPU, NCCL on GPUs.

The train node (`train_processes: N`) calls `train_in_processes`: it writes the job (the starting
student's path, how to load it, the examples, the TrainSettings) to a job folder and runs

    python -m torch.distributed.run --standalone --nproc-per-node N -m teachgraph.students.distributed JOB.json

Every rank loads the same student under the same seed and runs the one training loop (HFStudent.train)
with a `Ranks`: each step's examples (the same global batch as in one process) are dealt out to the ranks,
the loss of each is still divided by the whole step's answer tokens, and the gradients are summed across
ranks, so the loss curve equals the single-process one up to float rounding. Rank 0 saves the trained
student into the output folder (the node's atomic write) and the stats into the job folder, and prints
progress lines the node turns into its progress events. On CPU each rank gets OMP_NUM_THREADS=1 (two
threads per rank were 10x slower on 2 cores).

A rank that crashes (an exception, a kill, out of memory) makes torchrun stop the others and exit non-zero;
`train_in_processes` then raises TrainingFailed naming the rank, its exit code and the log, and the node
fails before anything is written: the run stays at its last checkpoint and `teachgraph resume` retrains
the cycle.

torchrun and its ranks run in a process group of their own: an interrupted node kills them all. The ranks
leave with os._exit after a final barrier, without tearing the process group down: gloo's teardown at exit
hung once and aborted once here under load. Once rank 0 has written the student and then the stats (after
the last collective), the training counts whatever happens on the ranks' way out; ranks that have not exited
EXIT_GRACE_S after that are killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from teachgraph.io import write_json_atomic

PROGRESS_PREFIX = "teachgraph-train-progress "
PARALLEL = ("ddp", "fsdp")
EXIT_GRACE_S = 30.0  # how long the ranks may take to exit once rank 0 has written the stats


class TrainingFailed(RuntimeError):
    """The multi-process training of a cycle failed (a rank crashed); nothing of it was kept."""


@dataclass
class Ranks:
    """This process's place among the training processes, and the wrapped model it trains through."""
    rank: int
    world_size: int
    module: Any        # DistributedDataParallel(model), or the model itself after fully_shard
    parallel: str      # "ddp" or "fsdp"

    def share(self, batch: Sequence[int]) -> tuple[list[int], float]:
        """This rank's examples of a step (every world_size-th one), with weight 1; a rank left without any
        computes the step's first example with weight 0 (it must still take part in the gradient sync)."""
        mine = list(batch[self.rank::self.world_size])
        return (mine, 1.0) if mine else ([batch[0]], 0.0)

    def sync(self, last: bool) -> contextlib.AbstractContextManager:
        """Gradient sync on a step's last micro-batch only (DDP's no_sync before it); FSDP2 reduces each one."""
        if self.parallel == "ddp" and not last:
            return self.module.no_sync()
        return contextlib.nullcontext()

    def sum(self, value: float) -> float:
        import torch
        import torch.distributed as dist

        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return float(tensor.item())


def load_options(ctx: Any, domain: Any) -> dict[str, Any]:
    """load_student's keyword arguments for a run's student (as student_from_context loads it), as JSON."""
    return {"finetune": ctx.finetune, "lora": {"r": ctx.lora_r, "alpha": ctx.lora_alpha, "dropout": ctx.lora_dropout},
            "max_new_tokens": ctx.max_new_tokens or getattr(domain, "default_max_new_tokens", 32), "device": ctx.device}


def torchrun_command(job_path: str | Path, processes: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc-per-node", str(processes), "-m", "teachgraph.students.distributed", str(job_path)]


def rank_environment(device: str) -> dict[str, str]:
    env = dict(os.environ)
    if not device.startswith("cuda"):
        env["OMP_NUM_THREADS"] = "1"  # one thread per rank on CPU
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def train_in_processes(student_path: str, examples: Sequence[dict], settings: Any, *, processes: int,
                       out_dir: str | Path, job_dir: str | Path, load: dict[str, Any], parallel: str = "ddp",
                       progress: Callable[[int, int, float], None] | None = None) -> dict[str, Any]:
    """Train the student at `student_path` on `examples` in `processes` torchrun processes; rank 0 saves the
    trained student into `out_dir`. The job folder holds, while it runs, the job, torchrun's log, each rank's
    pid (rank-R.pid) and the latest progress (progress.json); it is removed once training succeeded. `load`: load_student's keyword arguments (finetune, lora, max_new_tokens,
    device). Returns HFStudent.train's stats. Raises TrainingFailed if any rank fails."""
    if parallel not in PARALLEL:
        raise ValueError(f"parallel must be one of {PARALLEL}, not {parallel!r}")
    job_dir = Path(job_dir)
    shutil.rmtree(job_dir, ignore_errors=True)  # what a failed earlier attempt left
    job_dir.mkdir(parents=True)
    with open(job_dir / "examples.jsonl", "w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(json.dumps(dict(example), ensure_ascii=False) + "\n")
    job = {"student_path": str(student_path), "load": load, "settings": asdict(settings), "parallel": parallel,
           "out_dir": str(out_dir), "examples": str(job_dir / "examples.jsonl"), "stats": str(job_dir / "stats.json")}
    (job_dir / "job.json").write_text(json.dumps(job, indent=2), encoding="utf-8")
    log_path = job_dir / "torchrun.log"
    tail: deque[str] = deque(maxlen=60)
    device = str(load.get("device") or "auto")
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        job["load"]["device"] = device
        (job_dir / "job.json").write_text(json.dumps(job, indent=2), encoding="utf-8")
    if device.startswith("cuda"):
        import torch

        if torch.cuda.device_count() < processes:
            raise TrainingFailed(f"train_processes={processes} needs {processes} GPUs (one per process); "
                                 f"{torch.cuda.device_count()} visible")
    stats_path = Path(job["stats"])
    with open(log_path, "w", encoding="utf-8") as log:
        # its own process group: torchrun and every rank go down together (an interrupted node, a hung exit)
        process = subprocess.Popen(torchrun_command(job_dir / "job.json", processes), env=rank_environment(device),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                   start_new_session=True)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
        finished_at = None
        try:
            while True:
                try:
                    line = lines.get(timeout=0.5)
                except queue.Empty:
                    line = ""
                if line is None:  # every rank and torchrun closed the output: they are done
                    code = process.wait()
                    break
                if line.startswith(PROGRESS_PREFIX):
                    done, total, loss = json.loads(line[len(PROGRESS_PREFIX):])
                    write_json_atomic(job_dir / "progress.json", {"step": done, "steps": total, "loss": loss})
                    if progress is not None:
                        progress(done, total, loss)
                elif line:
                    log.write(line)
                    log.flush()
                    tail.append(line.rstrip("\n"))
                if finished_at is None and stats_path.exists():
                    finished_at = time.monotonic()
                elif finished_at is not None and time.monotonic() - finished_at > EXIT_GRACE_S:
                    # rank 0 saved the student and its stats after the last collective; a rank that then hangs
                    # on its way out (destroy_process_group can, pytorch#75097) costs nothing but must not block
                    log.write(f"teachgraph: the ranks had not exited {EXIT_GRACE_S:g} s after training finished; "
                              "stopped them\n")
                    _kill_group(process)
                    code = 0
                    break
        except BaseException:
            _kill_group(process)  # the node is interrupted: take the ranks down with it
            raise
    if code != 0 and stats_path.exists():
        # rank 0 wrote the stats after the student and after the last collective: what failed afterwards (a
        # rank's way out) changes nothing of the result
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"teachgraph: torchrun exited with {code} after training finished ({root_cause(list(tail))}); "
                      "the trained student is complete\n")
    elif code != 0 or not stats_path.exists():
        raise TrainingFailed(f"training in {processes} processes failed (torchrun exit code {code}; "
                             f"{root_cause(list(tail))}); its log: {log_path}")
    stats = json.loads(Path(job["stats"]).read_text(encoding="utf-8"))
    shutil.rmtree(job_dir, ignore_errors=True)
    return stats


def _pump(stream: Any, lines: "queue.Queue[str | None]") -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def root_cause(lines: list[str]) -> str:
    """The failed rank, its exit code and error from torchrun's failure summary (or the log's last line)."""
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Root Cause"))
    except StopIteration:
        last = [line for line in lines if line.strip()]
        return last[-1].strip() if last else "no output"
    fields: dict[str, str] = {}
    for line in lines[start + 1:]:
        if line.startswith("=="):
            break
        key, sep, value = line.strip().partition(":")
        if sep and key.strip() in ("rank", "exitcode", "traceback") and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return (f"rank {fields.get('rank', '?')} failed first, exit code {fields.get('exitcode', '?')}: "
            f"{fields.get('traceback', '')}").rstrip(": ")


# -- one rank ------------------------------------------------------------------------------------------------
def _shard(model: Any) -> Any:
    """FSDP2: every block of the model's `_no_split_modules` kind (the decoder layers), then the whole."""
    from torch.distributed.fsdp import fully_shard

    kinds = set(getattr(model, "_no_split_modules", None) or [])
    base = getattr(model, "get_base_model", lambda: model)()  # peft: the wrapped transformers model
    kinds |= set(getattr(base, "_no_split_modules", None) or [])
    for module in list(model.modules()):
        if type(module).__name__ in kinds:
            fully_shard(module)
    fully_shard(model)
    return model


def run_rank(job_path: str) -> None:
    import torch
    import torch.distributed as dist

    from teachgraph.students.base import TrainSettings
    from teachgraph.students.hf import LoraSettings, load_student

    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    (Path(job_path).parent / f"rank-{rank}.pid").write_text(str(os.getpid()))
    load = dict(job["load"])
    cuda = str(load.get("device", "cpu")).startswith("cuda")
    if cuda:
        torch.cuda.set_device(local_rank)
        load["device"] = f"cuda:{local_rank}"
    if load.get("lora") is not None:
        load["lora"] = LoraSettings(**load["lora"])
    settings = TrainSettings(**job["settings"])
    examples = [json.loads(line) for line in Path(job["examples"]).read_text(encoding="utf-8").splitlines() if line]
    dist.init_process_group("nccl" if cuda else "gloo")
    torch.manual_seed(settings.seed)  # a fresh LoRA adapter's initial weights: the same on every rank
    student = load_student(job["student_path"], **load)
    if job["parallel"] == "fsdp":
        module = _shard(student.model)
    else:
        from torch.nn.parallel import DistributedDataParallel

        module = DistributedDataParallel(student.model, device_ids=[local_rank] if cuda else None)

    def progress(done: int, total: int, loss: float) -> None:
        if rank == 0 and (done == total or done % 10 == 0):
            print(PROGRESS_PREFIX + json.dumps([done, total, loss]), flush=True)

    stats = student.train(examples, settings, progress=progress,
                          ranks=Ranks(rank, world_size, module, job["parallel"]))
    stats["processes"], stats["parallel"] = world_size, job["parallel"]
    if job["parallel"] == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(student.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if rank == 0:  # an unsharded copy of the student, with the trained weights, saves as usual
            plain = load_student(job["student_path"], **dict(load, device="cpu"))
            plain.model.load_state_dict(full)
            plain.save(job["out_dir"])
    elif rank == 0:
        student.save(job["out_dir"])
    if rank == 0:
        write_json_atomic(job["stats"], stats)
    dist.barrier()


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.errors import record

    record(run_rank)((argv or sys.argv[1:])[0])  # a rank's exception goes into torchrun's failure summary
    # The work is on disk. Leave without tearing the process group down: gloo's teardown at exit sometimes
    # hangs or aborts ("terminate called without an active exception", seen here under load), which would
    # turn a finished training into a failed one.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
