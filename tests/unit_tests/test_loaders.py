"""domains/loaders.py: JSONL rows that cannot be read are skipped, counted and reported with file and line."""

from __future__ import annotations

import json

import pytest

from teachgraph.domains.loaders import DatasetUnavailable, LoadReport, read_rows


def _jsonl(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines)


GOOD = [json.dumps({"k": k, "text": "caf\u00e9 \u221a2"}).encode("utf-8") for k in range(4)]


@pytest.mark.parametrize("bad, byte", [
    (b'{"k": "caf\xe9"}', "0xe9"),  # Latin-1 e-acute
    (b'{"k": "\xff\xfe"}', "0xff"),  # a stray byte that starts no UTF-8 sequence
    (b'{"k": "\xe2\x88"}', "0xe2"),  # a multi-byte sequence cut short
    (b'\x80{"k": 1}', "0x80"),  # a continuation byte first
])
def test_a_non_utf8_line_is_skipped_counted_and_reported_with_file_and_line(tmp_path, bad, byte):
    path = tmp_path / "train.jsonl"
    path.write_bytes(_jsonl(GOOD[0], GOOD[1], bad, GOOD[2], GOOD[3]))
    report = LoadReport(source="test")
    rows = read_rows(path, report)
    assert [row["k"] for row in rows] == [0, 1, 2, 3]
    assert rows[0]["text"] == "caf\u00e9 \u221a2"  # real UTF-8 still decodes
    assert report.skipped == 1
    assert report.problems == [f"train.jsonl:3: not UTF-8 (byte {byte} at column {bad.index(bytes([int(byte, 16)])) + 1})"]
    assert "train.jsonl:3" in report.summary() and "not UTF-8" in report.summary()


def test_non_utf8_lines_count_like_other_malformed_lines_and_the_first_five_are_reported(tmp_path):
    lines = [GOOD[0]] + [b'{"k": "\xe9"}'] * 4 + [b"{not json", b"[1, 2]"] + [b'{"k": "\xe9"}'] * 3 + [GOOD[1]]
    path = tmp_path / "rows.jsonl"
    path.write_bytes(_jsonl(*lines))
    report = LoadReport(source="test")
    rows = read_rows(path, report)
    assert len(rows) == 2 and report.skipped == 9
    assert [p.split(":")[1] for p in report.problems] == ["2", "3", "4", "5", "6"]
    assert "9 malformed rows skipped" in report.summary()


def test_a_byte_order_mark_and_crlf_line_ends_are_not_malformed(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD[0] + b"\r\n" + GOOD[1] + b"\r\n\r\n")
    report = LoadReport(source="test")
    assert [row["k"] for row in read_rows(path, report)] == [0, 1]
    assert report.skipped == 0


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetUnavailable, match="not found"):
        read_rows(tmp_path / "nope.jsonl", LoadReport(source="test"))
