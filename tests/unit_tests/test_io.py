"""teachgraph/io.py: atomic artifact writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from teachgraph import io


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


def test_write_text_creates_parents_and_replaces_the_whole_file(tmp_path):
    path = tmp_path / "a" / "b" / "notes.txt"
    io.write_text_atomic(path, "first version, quite a long line of text\n" * 50)
    assert path.read_text() == "first version, quite a long line of text\n" * 50
    io.write_text_atomic(str(path), "short")
    assert path.read_text() == "short"  # nothing of the longer old content survives
    assert leftovers(path.parent) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["notes.txt"]


def test_write_text_keeps_unicode(tmp_path):
    path = tmp_path / "u.txt"
    io.write_text_atomic(path, "naïve — ünïcödé ✓")
    assert path.read_text(encoding="utf-8") == "naïve — ünïcödé ✓"


def test_json_and_jsonl_round_trip(tmp_path):
    obj = {"b": [1, 2, {"c": None}], "a": "é", "n": 1.5}
    io.write_json_atomic(tmp_path / "x.json", obj)
    assert io.read_json(tmp_path / "x.json") == obj
    assert list(json.loads((tmp_path / "x.json").read_text())) == ["b", "a", "n"]  # key order kept
    rows = [{"i": i, "s": f"row {i}"} for i in range(5)]
    io.write_jsonl_atomic(tmp_path / "x.jsonl", rows)
    assert io.read_jsonl(tmp_path / "x.jsonl") == rows
    assert (tmp_path / "x.jsonl").read_text().count("\n") == 5
    io.write_jsonl_atomic(tmp_path / "x.jsonl", rows[:2])
    assert io.read_jsonl(tmp_path / "x.jsonl") == rows[:2]
    io.write_jsonl_atomic(tmp_path / "empty.jsonl", [])
    assert io.read_jsonl(tmp_path / "empty.jsonl") == []
    assert leftovers(tmp_path) == []


def test_read_jsonl_skips_blank_lines(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"a": 1}\n\n  \n{"a": 2}\n')
    assert io.read_jsonl(tmp_path / "r.jsonl") == [{"a": 1}, {"a": 2}]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    io.write_json_atomic(path, {"version": 1})
    with pytest.raises(TypeError):
        io.write_json_atomic(path, {"bad": object()})  # fails while serialising
    assert io.read_json(path) == {"version": 1}

    def failing_replace(src, dst):
        raise OSError("disk went away")

    monkeypatch.setattr(io.os, "replace", failing_replace)
    with pytest.raises(OSError):
        io.write_text_atomic(path, "new content")
    monkeypatch.undo()
    assert io.read_json(path) == {"version": 1}  # the old file is intact
    assert leftovers(tmp_path) == []  # and the temporary file was removed


def test_write_is_never_seen_half_done(tmp_path, monkeypatch):
    """While the new content is being written, the path still holds the old file."""
    path = tmp_path / "x.txt"
    io.write_text_atomic(path, "old")
    seen = []
    real_fsync = os.fsync

    def spy(fd):
        seen.append(path.read_text())
        return real_fsync(fd)

    monkeypatch.setattr(io.os, "fsync", spy)
    io.write_text_atomic(path, "new")
    assert seen == ["old"]
    assert path.read_text() == "new"


def test_replace_dir_atomic_replaces_a_directory(tmp_path):
    final = tmp_path / "student"
    final.mkdir()
    (final / "old_only.bin").write_text("old")
    (final / "shared.json").write_text("old")
    tmp = tmp_path / ".building-1"
    tmp.mkdir()
    (tmp / "shared.json").write_text("new")
    (tmp / "sub").mkdir()
    (tmp / "sub" / "w.bin").write_text("weights")
    io.replace_dir_atomic(tmp, final)
    assert not tmp.exists()
    assert sorted(p.relative_to(final).as_posix() for p in final.rglob("*")) == ["shared.json", "sub", "sub/w.bin"]
    assert (final / "shared.json").read_text() == "new"


def test_replace_dir_atomic_into_a_new_place(tmp_path):
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    (tmp / "f").write_text("x")
    io.replace_dir_atomic(str(tmp), str(tmp_path / "final"))
    assert (tmp_path / "final" / "f").read_text() == "x"
    assert not tmp.exists()


def test_write_dir_atomic_moves_a_written_directory_into_place(tmp_path):
    final = tmp_path / "deep" / "student"
    io.write_dir_atomic(final, lambda tmp: Path(tmp, "w.bin").write_text("weights"), prefix=".student-")
    assert (final / "w.bin").read_text() == "weights"
    assert [p.name for p in final.parent.iterdir()] == ["student"]  # no temporary directory left


def test_write_dir_atomic_keeps_the_previous_directory_when_writing_fails(tmp_path):
    final = tmp_path / "student"
    final.mkdir()
    (final / "w.bin").write_text("old")

    def crash(tmp: str) -> None:
        Path(tmp, "w.bin").write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="mid-write"):
        io.write_dir_atomic(final, crash)
    assert (final / "w.bin").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["student"]
