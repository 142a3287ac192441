"""train_processes: the train node's training under `torchrun --nproc-per-node 2` (real processes, gloo)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from teachgraph.domains import SyntheticDomain
from teachgraph.students.base import TrainSettings
from teachgraph.students.distributed import train_in_processes
from teachgraph.students.hf import HFStudent, load_student
from teachgraph.students.tiny import TinyConfig, build_tiny_student
from tests.conftest import ROOT
from tests.integration_tests.conftest import ONE_THREAD, cli_command, cli_env, read_events, run_cli, tiny

LOAD = {"finetune": "full", "lora": None, "max_new_tokens": 6, "device": "cpu"}


@pytest.fixture(scope="module")
def small_student(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("student") / "base"
    model, tokenizer = build_tiny_student(TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64),
                                          seed=0)
    HFStudent(model=model, tokenizer=tokenizer, max_new_tokens=6).save(str(path))
    return str(path)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_processes_give_the_single_process_loss_curve(tmp_path, small_student, parallel):
    """The same global batch in 2 processes: the same loss at every step (within 1e-5) and the same trained
    weights. 61 examples in steps of 15 with 2 micro-batches: uneven shares (8 and 7), and a last step of
    one example, where rank 1 has none."""
    examples = SyntheticDomain(seed=0).generate("first_letter", "4 letters", None, 61, seed=1)
    settings = TrainSettings(epochs=1, batch_size=15, learning_rate=3e-3, seed=3, grad_accum_steps=2)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = load_student(small_student, **LOAD)
        one = single.train(examples, settings)
    finally:
        torch.set_num_threads(before)
    seen = []
    started = time.monotonic()
    two = train_in_processes(small_student, examples, settings, processes=2, parallel=parallel,
                             out_dir=tmp_path / "out", job_dir=tmp_path / "job", load=LOAD,
                             progress=lambda *p: seen.append(p))
    print(f"torchrun with 2 processes ({parallel}): {time.monotonic() - started:.1f} s, start-up included")
    assert two["processes"] == 2 and two["parallel"] == parallel and two["steps"] == one["steps"] == 5
    assert len(two["losses"]) == len(one["losses"])
    assert max(abs(a - b) for a, b in zip(one["losses"], two["losses"])) < 1e-5, (one["losses"], two["losses"])
    assert two["tokens"] == one["tokens"] and two["padded_tokens"] <= one["padded_tokens"] + 64
    assert seen and seen[-1][:2] == (5, 5)
    trained = load_student(str(tmp_path / "out"), **LOAD).model.state_dict()
    for name, value in single.model.state_dict().items():
        assert torch.allclose(trained[name], value, atol=1e-5), name
    assert not (tmp_path / "job").exists()  # removed once training succeeded


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_killed_rank_fails_the_train_node_and_resume_retrains_the_cycle(tmp_path, base_student_ready):
    """SIGKILL rank 1 mid-training: the run stops with one clear line (exit 2), no student of the cycle is
    written and train is not recorded as done; `teachgraph resume` trains the cycle again and finishes."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny(cycles=1, budget=300, epochs=60, train_processes=2)))
    run_dir = tmp_path / "run"
    job = run_dir / "cycles" / "cycle_001" / "train-job"
    process = subprocess.Popen(cli_command("run", "--config", config, "--run-dir", run_dir, "--quiet"), cwd=str(ROOT),
                               env=cli_env(**ONE_THREAD), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not ((job / "progress.json").exists() and (job / "rank-1.pid").exists()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.2)
    os.kill(int((job / "rank-1.pid").read_text()), signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert lines[0].startswith("error: cycle 1: training in 2 processes failed"), lines
    assert "failed first, exit code" in lines[0] and "SIGKILL" in lines[0], lines
    assert f"teachgraph resume {run_dir}" in lines[0] and str(job / "torchrun.log") in lines[0]
    assert not (run_dir / "cycles" / "cycle_001" / "student").exists()
    assert not list((run_dir / "cycles" / "cycle_001").glob(".student-*"))  # no half-written student
    assert "train" not in [e["node"] for e in read_events(run_dir)]

    resumed = run_cli("resume", run_dir, "--quiet", cwd=ROOT, env=cli_env(**ONE_THREAD), timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    events = read_events(run_dir)
    assert [(e["node"], e["cycle"]) for e in events].count(("train", 1)) == 1
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["cycles"][1]["train"]["steps"] == events[[e["node"] for e in events].index("train")]["steps"]
    assert Path(run_dir / "cycles" / "cycle_001" / "student" / "config.json").exists()
    assert not job.exists()
