"""Reading real datasets: local JSONL/Parquet files, Hugging Face dataset ids, and the shipped samples.

Malformed rows (a line that is not UTF-8 or not a JSON object, a row its domain rejects) are skipped
and counted (`LoadReport`), with the first few problems kept for the message, each with its file and
line (or row). A dataset id that cannot be reached (this machine is offline) raises `DatasetUnavailable`
saying to pass a local path instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

DATA_DIR = Path(__file__).resolve().parent / "data"


class DatasetUnavailable(RuntimeError):
    """A dataset that cannot be read (no such file, hub unreachable, missing optional package)."""


@dataclass
class LoadReport:
    """What a loader read: rows kept, rows skipped, and the first few reasons (for the user)."""

    source: str
    kept: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def skip(self, where: str, reason: str) -> None:
        self.skipped += 1
        if len(self.problems) < 5:
            self.problems.append(f"{where}: {reason}")

    def summary(self) -> str:
        text = f"{self.source}: {self.kept} rows"
        if self.skipped:
            text += f", {self.skipped} malformed rows skipped (first: {'; '.join(self.problems)})"
        return text


def read_rows(path: str | Path, report: LoadReport) -> list[dict[str, Any]]:
    """Rows of a JSONL (one object per line) or Parquet file; unreadable lines (not UTF-8, not JSON, not
    an object) are skipped and counted in `report`, with file and line."""
    path = Path(path)
    if not path.exists():
        raise DatasetUnavailable(f"dataset file not found: {path}")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DatasetUnavailable(f"{path}: reading Parquet needs pyarrow (pip install 'teachgraph[data]'), "
                                     "or convert the file to JSONL") from None
        return pq.read_table(path).to_pylist()
    rows = []
    with open(path, "rb") as handle:  # decoded line by line: one bad byte costs one row, not the file
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                report.skip(f"{path.name}:{number}", f"not UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1})")
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                report.skip(f"{path.name}:{number}", f"not JSON ({error.msg})")
                continue
            if not isinstance(row, dict):
                report.skip(f"{path.name}:{number}", f"a JSON {type(row).__name__}, not an object")
                continue
            rows.append(row)
    return rows


def validate_rows(rows: Iterable[dict[str, Any]], check: Callable[[dict[str, Any]], dict[str, Any] | str],
                  report: LoadReport, where: str) -> list[dict[str, Any]]:
    """Apply `check` (a row -> a clean row, or a string saying what is wrong) and keep the good rows."""
    kept = []
    for i, row in enumerate(rows):
        try:
            clean = check(row)
        except Exception as error:  # noqa: BLE001 - any broken row is skipped, counted and reported
            clean = f"{type(error).__name__}: {error}"
        if isinstance(clean, str):
            report.skip(f"{where} row {i}", clean)
        else:
            kept.append(clean)
    report.kept += len(kept)
    return kept


def is_local(dataset: str) -> bool:
    return dataset == "local" or Path(dataset).exists() or dataset.startswith((".", "/", "~"))


def hub_dataset_rows(dataset_id: str, config: str | None, split: str) -> list[dict[str, Any]]:
    """Rows of a Hugging Face dataset split (needs the optional `datasets` package and the hub)."""
    try:
        import datasets
    except ImportError:
        raise DatasetUnavailable(
            f"reading the Hugging Face dataset {dataset_id!r} needs the `datasets` package "
            "(pip install 'teachgraph[data]'); or pass a local JSONL/Parquet path with --dataset PATH") from None
    try:
        return list(datasets.load_dataset(dataset_id, config, split=split))
    except Exception as error:  # noqa: BLE001 - offline, unknown id, missing split: one clear message
        raise DatasetUnavailable(
            f"could not load {dataset_id!r} (config {config!r}, split {split!r}) from the Hugging Face hub: "
            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}. Offline, download it "
            "elsewhere and pass a local path with --dataset PATH (or use the shipped sample: --dataset local).") from None


def hub_file(repo_id: str, filename: str) -> Path:
    """One file of a Hugging Face dataset repository (from the local HF cache when offline)."""
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=repo_id, filename=filename, repo_type="dataset"))
    except Exception as error:  # noqa: BLE001
        raise DatasetUnavailable(
            f"could not fetch {filename} of the dataset {repo_id!r} from the Hugging Face hub "
            f"({type(error).__name__}). Offline, download the repository elsewhere and pass its folder with "
            "--dataset PATH (or use the shipped sample: --dataset local).") from None
