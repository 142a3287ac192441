"""Bad input to the CLI gets one clear line (exit 2, no traceback) before any work, naming what is wrong;
a run that cannot write its directory stops with one line and resumes once the disk has room."""

from __future__ import annotations

import json
import resource
import subprocess
from pathlib import Path

import pytest

from teachgraph.cli import main

from .conftest import CLI_TIMEOUT, cli_command, cli_env, run_cli, write_config


def clean_error(argv: list[str], capsys, *needles: str) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, (code, captured.err[-2000:])
    assert captured.err.startswith("error: ") and "Traceback" not in captured.err + captured.out, captured.err
    for needle in needles:
        assert needle in captured.err, (needle, captured.err)
    return captured.err


def test_a_config_path_naming_a_folder(tmp_path, capsys):
    clean_error(["run", "--config", str(tmp_path), "--quiet"], capsys, str(tmp_path), "directory")


def test_a_config_file_that_is_not_utf8(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"cycles: 2\nbudget: 10\xe9\n")
    clean_error(["run", "--config", str(bad), "--quiet"], capsys, "bad.yaml", "not UTF-8", "line 2")


@pytest.mark.parametrize("value", ["[1", "{a: 1", "'unterminated"])
def test_a_set_value_that_cannot_be_read_names_the_field(value, capsys):
    clean_error(["run", "--set", f"cycles={value}", "--quiet"], capsys, "--set cycles", "cannot be read")


@pytest.mark.parametrize("url", ["notaurl", "ftp://127.0.0.1/v1", "http://"])
def test_a_teacher_url_that_is_no_url(url, capsys):
    clean_error(["run", "--teacher-url", url, "--teacher-model", "m", "--quiet"], capsys, "teacher_url", "not an http")


@pytest.mark.parametrize("field, value", [("learning_rate", ".nan"), ("learning_rate", ".inf"),
                                          ("dedup_threshold", ".nan"), ("replay_fraction", "-.inf")])
def test_a_number_that_is_not_a_number_says_so(field, value, capsys):
    clean_error(["run", "--set", f"{field}={value}", "--quiet"], capsys, field, "finite number")


def test_a_run_dir_naming_a_file(tmp_path, capsys, base_student_ready):
    target = tmp_path / "a-file"
    target.write_text("not a run\n")
    clean_error(["run", "--config", str(write_config(tmp_path / "c.yaml")), "--run-dir", str(target), "--quiet"],
                capsys, str(target), "is a file")


def test_an_edited_config_json_is_noticed_on_resume(tmp_path, capsys, base_student_ready):
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", cycles=1, budget=100, review=True)
    assert main(["run", "--config", str(config), "--run-dir", str(run_dir), "--quiet"]) == 0  # waits for review
    capsys.readouterr()
    stored = json.loads((run_dir / "config.json").read_text())
    stored["config"]["budget"] = 99
    (run_dir / "config.json").write_text(json.dumps(stored))
    clean_error(["resume", str(run_dir), "--quiet"], capsys, "config.json", "edited")


def test_resume_names_the_cycle_being_worked_on(tmp_path, capsys, base_student_ready):
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", cycles=1, budget=100, review=True)
    assert main(["run", "--config", str(config), "--run-dir", str(run_dir), "--quiet"]) == 0  # paused before train 1
    capsys.readouterr()
    assert main(["resume", str(run_dir), "--quiet"]) == 0  # nobody answers (no terminal): it waits again
    out = capsys.readouterr()
    assert "at review (cycle 1)" in out.out + out.err, out.out + out.err


def _limit_file_size(limit: int):
    def apply() -> None:  # Python ignores SIGXFSZ, so a write past the limit raises OSError (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_a_full_disk_stops_the_run_with_one_line_and_it_resumes_when_there_is_room(tmp_path, base_student_ready):
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", cycles=1, budget=100)
    args = ["run", "--config", str(config), "--run-dir", str(run_dir), "--quiet"]
    full = subprocess.run(cli_command(*args), cwd=str(tmp_path), capture_output=True, text=True, timeout=CLI_TIMEOUT,
                          env=cli_env(), preexec_fn=_limit_file_size(64 * 1024))
    assert full.returncode == 2, (full.returncode, full.stderr[-3000:])
    assert "Traceback" not in full.stderr and full.stderr.strip().startswith("error: "), full.stderr[-3000:]
    assert "teachgraph resume" in full.stderr
    assert not (run_dir / "summary.json").exists()
    resumed = run_cli("resume", run_dir, "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run_dir / "summary.json").read_text())["stop_reason"] == "max_cycles"
