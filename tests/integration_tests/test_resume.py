"""The crash test: SIGKILL a real `teachgraph run` while cycle 2 trains, resume it, and check that
nothing finished is redone, nothing accepted changes, and the results equal an uninterrupted run."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from teachgraph.run import Run

from .conftest import CLI_TIMEOUT, ONE_THREAD, cli_command, cli_env, read_events, run_cli, write_config

# TINY, but each cycle trains on ~1500 examples for 6 epochs: a couple of seconds of training in
# which to kill the process.
CRASH_CONFIG = {"budget": 3000, "cycles": 3, "epochs": 6}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _popen(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    handle = open(log, "w")
    try:
        return subprocess.Popen(cli_command(*args), cwd=str(cwd), stdout=handle, stderr=subprocess.STDOUT,
                                env=cli_env(**ONE_THREAD))
    finally:
        handle.close()  # the child holds its own descriptor


def _next_nodes(run_dir: Path) -> tuple[str, ...]:
    """What the run's latest checkpoint will execute next (read while the run writes it)."""
    with Run.open(run_dir) as run:
        return tuple(run.snapshot().next)


def _kill_while_cycle_2_trains(proc: subprocess.Popen, run_dir: Path, log: Path, deadline: float) -> None:
    """Poll events.jsonl until deduplicate of cycle 2 is logged and its checkpoint says train is next,
    then SIGKILL the process."""
    while True:
        assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before cycle 2 trained:\n" + log.read_text()[-3000:]
        assert time.monotonic() < deadline, "cycle 2 was never deduplicated:\n" + log.read_text()[-3000:]
        finished = {(e["node"], e["cycle"]) for e in read_events(run_dir)}
        if ("deduplicate", 2) in finished:
            try:
                ready = _next_nodes(run_dir) == ("train",)
            except sqlite3.OperationalError:  # the writer holds a lock for a moment
                ready = False
            if ready:
                break
        time.sleep(0.03)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


@pytest.fixture(scope="module")
def crash(tmp_path_factory, base_student_ready) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("crash")
    write_config(root / "crash.yaml", **CRASH_CONFIG)
    run_dir, reference_dir = root / "run", root / "reference"
    # the uninterrupted run of the same configuration, concurrently (results do not depend on timing;
    # every process trains on one thread, so the two runs compare like with like)
    reference = _popen(["run", "--config", "crash.yaml", "--run-dir", "reference", "--quiet"], root,
                       root / "reference.log")
    try:
        victim = _popen(["run", "--config", "crash.yaml", "--run-dir", "run", "--quiet"], root, root / "run.log")
        try:
            _kill_while_cycle_2_trains(victim, run_dir, root / "run.log", time.monotonic() + CLI_TIMEOUT)
        finally:
            if victim.poll() is None:
                victim.kill()
                victim.wait()
        at_kill = {
            "returncode": victim.returncode,
            "events": read_events(run_dir),
            "accepted": {k: _digest(run_dir / "cycles" / f"cycle_{k:03d}" / "accepted.jsonl") for k in (1, 2)},
            "student_2_exists": (run_dir / "cycles" / "cycle_002" / "student").exists(),
        }
        resumed = run_cli("resume", "run", "--quiet", cwd=root, env=cli_env(**ONE_THREAD))
        reference.wait(timeout=CLI_TIMEOUT)
    finally:
        if reference.poll() is None:
            reference.kill()
            reference.wait()
    return {"root": root, "run_dir": run_dir, "reference_dir": reference_dir, "at_kill": at_kill,
            "resumed": resumed, "reference_rc": reference.returncode,
            "reference_log": (root / "reference.log").read_text()}


def test_killed_during_cycle_2_training(crash):
    at_kill = crash["at_kill"]
    assert at_kill["returncode"] == -signal.SIGKILL
    finished = [(e["node"], e["cycle"]) for e in at_kill["events"]]
    assert ("evaluate", 1) in finished and ("deduplicate", 2) in finished
    assert ("train", 2) not in finished, "the kill should land while cycle 2 trains"
    assert not at_kill["student_2_exists"]


def test_resume_finishes_every_cycle_once(crash):
    resumed = crash["resumed"]
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr
    assert "resuming" in resumed.stdout and "train" in resumed.stdout
    summary = json.loads((crash["run_dir"] / "summary.json").read_text())
    assert [c["cycle"] for c in summary["cycles"]] == [0, 1, 2, 3]
    assert summary["stop_reason"] == "max_cycles"
    assert sum(c["generated"] for c in summary["cycles"]) <= CRASH_CONFIG["budget"]
    for k in (1, 2, 3):
        assert (crash["run_dir"] / "cycles" / f"cycle_{k:03d}" / "student" / "config.json").exists()


def test_resume_leaves_accepted_data_unchanged(crash):
    run_dir = crash["run_dir"]
    for k, digest in crash["at_kill"]["accepted"].items():
        assert _digest(run_dir / "cycles" / f"cycle_{k:03d}" / "accepted.jsonl") == digest, k
    summary = json.loads((run_dir / "summary.json").read_text())
    for k in (1, 2, 3):
        rows = (run_dir / "cycles" / f"cycle_{k:03d}" / "accepted.jsonl").read_text().splitlines()
        assert len(rows) == summary["cycles"][k]["kept"]


def test_resume_reexecutes_no_finished_node(crash):
    events = read_events(crash["run_dir"])
    before = crash["at_kill"]["events"]
    assert events[:len(before)] == before  # the log is only appended to
    finished = Counter((e["node"], e["cycle"]) for e in events)
    repeated = {pair: n for pair, n in finished.items() if n > 1}
    assert not repeated, f"re-executed after resume: {repeated}"
    assert finished[("train", 2)] == 1
    assert finished[("deduplicate", 2)] == 1
    after = [(e["node"], e["cycle"]) for e in events[len(before):]]
    assert after[0] == ("train", 2)  # resume starts exactly where the kill interrupted
    assert after[-1][0] == "finalize"


def test_resumed_run_equals_uninterrupted_run(crash):
    assert crash["reference_rc"] == 0, crash["reference_log"][-3000:]
    resumed = json.loads((crash["run_dir"] / "summary.json").read_text())
    reference = json.loads((crash["reference_dir"] / "summary.json").read_text())
    assert [c["val_accuracy"] for c in resumed["cycles"]] == [c["val_accuracy"] for c in reference["cycles"]]
    assert resumed["test_accuracy"] == reference["test_accuracy"]
    assert resumed["best_cycle"] == reference["best_cycle"]
    assert [c["kept"] for c in resumed["cycles"]] == [c["kept"] for c in reference["cycles"]]
    for k in (1, 2, 3):
        name = Path("cycles") / f"cycle_{k:03d}" / "accepted.jsonl"
        assert _digest(crash["run_dir"] / name) == _digest(crash["reference_dir"] / name), k
